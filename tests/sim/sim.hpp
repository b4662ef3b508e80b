// A deterministic simulation of a Zab ensemble: the real `zab` consensus and
// election plugins, several servers in one process, over an in-memory
// network, disk and clock that the simulation controls.
//
// One seed fixes everything: message delays, loss, duplication and
// reordering, partitions, crashes (losing the disk's unsynced tail, or a
// random prefix of it) and restarts, disk latency, snapshots and the client
// writes. While it runs, the checker verifies Zab's invariants:
//   * at most one leader is established per epoch;
//   * every server applies the same entries in the same order (each server's
//     applied sequence is a prefix of one canonical sequence), so a
//     committed entry is never lost or changed;
//   * an entry is applied only once a quorum of voters holds it durably (of
//     the membership it was proposed in; a membership change needs a quorum
//     of the old voters and one of the new);
//   * after the faults stop, every server converges on the whole canonical
//     sequence and a new write reaches all of them (liveness).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace corral::sim {

struct SimOptions {
  int voters = 3;
  int observers = 0;
  std::string consensus = "zab";  // "zab" or "raft"
  std::string election = "fle";   // "fle" or "static" (server 1 leads); zab only
  int64_t fault_ms = 20000;       // how long faults are injected
  int64_t heal_ms = 30000;        // how long the healed ensemble has to converge
  double loss = 0.01;             // per-message drop probability while faults run
  double duplicate = 0.01;
  double reorder = 0.01;  // a message may overtake others on its link
  bool crashes = true;
  bool partitions = true;
  int64_t write_interval_ms = 15;  // a client write to a random server
  // Membership changes while the faults run: now and then a client asks a
  // random server to turn a member from participant to observer or back
  // (the leader decides it as the kernel decides a reconfig), so voter sets
  // and quorum sizes change under crashes and partitions.
  bool reconfig = false;
  bool quorum_sync = false;  // ZabOptions::quorum_sync; clients' syncs are checked
  bool pauses = false;       // SIGSTOP a server for 0.1-3 s now and then
  bool disk_full = false;    // a server's disk refuses appends for 0.1-3 s now and then
  // Now and then a client asks a random server to hand the leadership to a
  // random voter (or any): every request must be answered, and one answered
  // ok leaves the asker synced under the server asked for.
  bool transfers = false;
  // ZabOptions::max_held_writes / max_held_bytes, raft's max_forwarded /
  // max_forwarded_bytes (0: the defaults).
  size_t max_held_writes = 0;
  size_t max_held_bytes = 0;
  // max_sync_bytes of both modules (0: theirs).
  uint64_t max_sync_bytes = 0;
  // A member gone bad: records of [to, from << 1 | channel, length (2 bytes,
  // big-endian), message], each handed to server `to` as if `from` sent it
  // on the channel (0 election, 1 quorum), spread over the fault period.
  // What a lying member does to the invariants is not checked; that no
  // server crashes or throws is.
  std::string hostile;
  // When set, the first messages sent are appended here in that format
  // (seeds for fuzzing the hostile records).
  std::string* capture = nullptr;
  size_t capture_limit = 64;
};

struct SimResult {
  bool ok = true;
  std::string failure;             // the first violated invariant
  std::vector<std::string> trace;  // the last events before it, for replay
  uint64_t committed = 0;          // entries in the canonical sequence
  uint64_t elections = 0;          // leaders established
  uint64_t crashes = 0, partitions = 0, snaps = 0, truncs = 0, diffs = 0;
  uint64_t snaps_loaded = 0;  // snapshots a server received from another and loaded
  // raft: snapshots sent on from where the follower's copy stopped, after a
  // piece went missing
  uint64_t snaps_resumed = 0;
  // A learner kept more of its leader's messages than it may while a
  // snapshot arrived or loaded, and started over.
  uint64_t deferral_limits = 0;
  uint64_t reconfigs = 0;  // membership changes committed
  uint64_t pauses = 0;
  uint64_t disk_fulls = 0;
  uint64_t syncs = 0;                          // clients' quorum syncs answered (and checked)
  uint64_t hostile = 0;                        // SimOptions::hostile messages delivered
  uint64_t transfers = 0, transfers_done = 0;  // handovers asked, and answered ok
  uint64_t kept = 0;  // servers that moved to a new leader without `looking` (clients kept)
};

// Runs one seed.
SimResult run(uint64_t seed, const SimOptions& options);

// Runs a scenario (tests/sim/testdata/*.txt): a script that builds an
// ensemble and drives it step by step, checking the invariants above all
// along and the outcomes it states. `seed` picks message and disk delays
// only (no loss, duplication, reordering or faults but those scripted).
// Empty on success, else "line N: ..." with what was expected and found.
//
//   servers N [observers M] [election fle|static] [quorum-sync on|off]
//           [held-writes W] [held-bytes B] [max-sync-bytes B] [consensus zab|raft]
//                            first (held-*: a handover's bounds; max-sync-bytes:
//                            the largest sync a learner takes)
//   run MS                   let MS milliseconds pass
//   partition 1 2 | 3        cut the network into groups; heal joins them
//   crash S [keep-tail]      kill S (losing unsynced writes, or keeping some)
//   restart S
//   write S BODY             a client write submitted at S
//   expect refused A B ..    the writes refused at once (so far), in order
//   pause S / resume S       SIGSTOP / SIGCONT: nothing happens on S meanwhile
//   disk-full S / disk-free S  S's disk refuses appends and epoch saves, or takes them again
//   sync S NAME              a client sync at S
//   transfer S T|any NAME [leaving]  S asks for the leadership to go to T (or any
//                            voter); leaving: S stops after (as on SIGTERM)
//   expect transferred NAME  pending, failed, or ok [leader T] (S's leader when answered)
//   expect synced NAME ...   pending, failed, or saw [A B ..] (S's writes when answered);
//                            ok: answered, whatever it saw
//   snapshot S               S snapshots what it applied
//   expect leader S|none     the one server leading (an established leader); S|T: either
//   expect role S ROLE       leader, follower, observer, looking, ...
//   expect vote S lowest|own the candidacy S last stood with: the lowest vote
//                            ({S, 0, 0}), or its log's last zxid and epoch
//   expect applied S A B ..  the writes S applied, in order
//   expect sync S MODE       the last sync a leader sent S: DIFF, TRUNC, SNAP
//   expect committed N       entries in the ensemble's one applied history
//   expect converged         every server up applied all of it
std::string run_scenario(const std::string& script, uint64_t seed);

}  // namespace corral::sim
