// Consensus: orders every state change and replicates it.
//
// The kernel turns each client write into an opaque entry body and submits
// it; consensus assigns the zxid, makes the entry durable through the storage
// plugin (on a quorum, for Zab) and then hands it back through
// ConsensusHost::apply in zxid order on every server. Validation happens at
// apply time and is deterministic, so every replica reaches the same result
// (including the same error) from the same entry.
//
// Consensus decides what is committed, so it also decides what of the
// recovered log is applied: the kernel loads only the snapshot at startup.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "corral/sdk/election.hpp"
#include "corral/sdk/peers.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/storage.hpp"

namespace corral::sdk {

// What the kernel offers the consensus plugin.
class ConsensusHost {
 public:
  virtual ~ConsensusHost();
  virtual Storage& storage() = 0;
  // nullptr for a standalone server.
  virtual PeerNetwork* peers() = 0;
  // nullptr when no election plugin is configured.
  virtual Election* election() = 0;

  // Applies a committed entry to the state. Called in strictly increasing zxid
  // order, once per entry, on the loop thread.
  virtual void apply(const LogEntry& entry) = 0;
  // An entry this server submitted will never be applied (storage refused it,
  // e.g. Errc::no_space): the kernel fails the request that made it with
  // `why`. Called in submission order.
  virtual void rejected(const LogEntry& entry, const Status& why) = 0;

  // Takes a snapshot of the state as of the last applied entry through the
  // storage plugin, without stopping writes, and calls `done` with its zxid
  // once it is durable (storage().read_snapshot() then reads it, e.g.
  // for Zab SNAP). Calls made while one runs share its outcome.
  virtual void take_snapshot(std::function<void(const Result<Zxid>&)> done) = 0;
  // Replaces the state with a snapshot taken at `zxid` (a follower that
  // receives SNAP).
  virtual Status load_snapshot(Zxid zxid, BytesView snapshot) = 0;

  // This server's role changed. On `looking` the kernel stops serving clients
  // (closes their connections) until a leader is established again.
  virtual void role_changed(Role role, ServerId leader, uint32_t epoch) = 0;

  // Sessions live on the leader. A follower calls this when it pings the
  // leader to collect which sessions its clients kept alive, and the leader
  // passes what it receives to session_activity().
  virtual Bytes take_session_activity() = 0;
  virtual void session_activity(ServerId from, BytesView activity) = 0;

  // Membership changes (ZooKeeper's reconfig). The leader calls prepare() on
  // each entry it is about to propose, with its zxid and time assigned; the
  // kernel may rewrite the body (a reconfig request becomes the membership it
  // installs, or the error its client gets, decided against the leader's
  // current view).
  virtual void prepare(LogEntry& entry);
  // The members `entry` installs when it is applied, when it changes the
  // membership; nullopt for every other entry (cheap). Applying it makes the
  // PeerNetwork report the new members. Zab commits such an entry only with a
  // quorum of the old voters and one of the new, and allows one at a time.
  virtual std::optional<std::vector<PeerSpec>> membership_in(const LogEntry& entry);
};

// One server following the leader, as the leader sees it (for `mntr`, the
// admin endpoint's `leader` and `voting_view`).
struct LearnerStatus {
  ServerId id = 0;
  bool observer = false;
  bool synced = false;  // has acknowledged NEWLEADER and receives the broadcast
  Zxid last_acked = 0;  // the last zxid it reported durable
  std::string stage;    // "discovery", "sync", "broadcast"
};

// What consensus reports about itself.
struct ConsensusStatus {
  Role role = Role::looking;
  ServerId leader = 0;
  uint32_t accepted_epoch = 0;
  uint32_t current_epoch = 0;
  Zxid last_logged = 0;     // the last entry appended to storage
  Zxid last_committed = 0;  // the last entry known committed
  Zxid last_applied = 0;
  size_t pending_proposals = 0;         // logged or proposed, not yet applied
  std::vector<LearnerStatus> learners;  // the leader's followers and observers
  int64_t elections = 0;                // elections this server has taken part in
  int64_t last_election_ms = 0;         // how long the last one took
};

// What a consensus module is, declared by the module, so that the kernel acts
// on what it does rather than on its name.
struct ConsensusTraits {
  // Runs an ensemble: the kernel starts the peer network and discovery, and
  // hands the module an election.
  bool replicated = false;
};

class Consensus : public Plugin {
 public:
  ~Consensus() override;
  // Starts with the state storage recovered. The kernel has loaded the
  // snapshot (state as of `recovered.snapshot_zxid`) and applied nothing of
  // the log: consensus applies, through ConsensusHost::apply, the logged
  // entries it knows to be committed (standalone: all of them, at once; Zab:
  // once the leader has confirmed the history).
  virtual Status start(ConsensusHost& host, const RecoveredState& recovered) = 0;

  // Orders `body` as a new entry. Ok means accepted for ordering: it will reach
  // apply() on every server unless this server loses its leader first (the
  // kernel then closes client connections, as ZooKeeper does). Fails at once
  // with Errc::unavailable when this server cannot take writes now, and with
  // the storage error when the log refuses appends (e.g. Errc::no_space).
  virtual Status submit(Bytes body) = 0;

  // Calls `done` once this server has applied every entry the leader had
  // committed when sync() was called (ZooKeeper's sync).
  virtual void sync(std::function<void(const Status&)> done) = 0;

  virtual Role role() const = 0;
  virtual ServerId leader() const = 0;  // 0 when none
  virtual uint32_t epoch() const = 0;
  // The zxid of the last entry applied on this server.
  virtual Zxid last_applied() const = 0;
  // Everything above and more, for operators.
  virtual ConsensusStatus status() const = 0;

  // Periodic work (heartbeats, timeouts); `now_ms` is steady time.
  virtual void tick(int64_t now_ms) = 0;
  // Stops: no more apply() calls after it returns.
  virtual void stop() = 0;

  // What this module is (constant; read once the module is created).
  virtual ConsensusTraits traits() const = 0;
  // Hands the leadership to voter `to` (0: the voter most up to date)
  // without losing an entry and without an election: writes and syncs
  // submitted meanwhile are held and ordered by the next leader. Called on
  // any member (a follower asks its leader). `leaving`: this server stops
  // once `done` is called, so the new leader must be established without
  // it (a leader refuses when the others cannot make a quorum; elsewhere
  // there is nothing to hand over and `done` hears ok). `done` hears, on
  // the loop, ok once this server serves again under the new leader, or why
  // not (the ensemble then goes on as before, or elects as after any
  // failure); Errc::already_exists while another handover is under way (the
  // kernel's SIGTERM waits for it and asks again). The default answers
  // Errc::incompatible at once: the module cannot.
  virtual void transfer_leadership(ServerId to, bool leaving,
                                   std::function<void(const Status&)> done);
};

}  // namespace corral::sdk
