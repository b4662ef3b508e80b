// The `raft` consensus: Raft (Ongaro and Ousterhout) for an ensemble,
// behind the same SDK interface as `zab`.
//
// Positions in the log are zxids: an entry a leader of term T proposes gets
// zxid T << 32 | n, n counting from 1 in each term, so a zxid names Raft's
// (term, index) pair at once and is what ZooKeeper clients see. Two logs
// that hold the same zxid hold the same entry there (one leader per term
// proposes in order), and an append names the zxid before its entries, so
// Raft's log-matching check is "do you hold zxid P", with no separate index.
//
//   election     a voter that hears from no leader for an election timeout
//                (randomised in [T, 2T)) first runs a pre-vote: it asks the
//                voters whether they would vote for it in the next term,
//                which they grant only if its log is as new as theirs and
//                they have not heard from a leader within T themselves.
//                Only with a quorum of those does it raise its term and ask
//                for votes, so a member cut off and brought back never makes
//                a working leader step down;
//   replication  the leader appends each write to its log and sends it at
//                once to every follower and observer, many appends in
//                flight per follower (bounded in bytes); an entry commits
//                once a quorum of voters holds it durably and it is of the
//                leader's term (a new leader commits a no-op first);
//   check-quorum a leader that has not heard from a quorum of voters within
//                an election timeout steps down;
//   sync         ZooKeeper's sync is a ReadIndex: the leader notes its commit
//                point, confirms it still leads with a heartbeat round a
//                quorum of voters answers, and the asking server answers its
//                client once it has applied up to that point. A sync is a
//                quorum operation, so sync + read is linearizable even from
//                a leader that was paused and replaced;
//   snapshots    a follower behind the oldest entry the leader's storage
//                still holds gets the leader's newest snapshot.
// Followers forward client writes to the leader, each with a sequence
// number in a stream the follower names (a nonce); the leader takes them in
// order exactly once and says in its appends how far it has, and the
// follower sends again what it has not confirmed. Syncs are retried the same
// way. A follower that loses its leader reports `looking`, so the kernel
// closes its clients' connections, as under Zab.
//
// A leadership handover keeps clients connected, as Zab's does:
//   1. The leader sends HOLD to every member and holds its own clients' new
//      writes and syncs; each member answers HOLD_ACK, naming how far its
//      stream of forwarded writes went, and holds its clients' writes and
//      syncs from then on.
//   2. Once every member heard from lately has answered and the leader has
//      taken all it forwarded before (bounded by two heartbeats), and the
//      target holds the leader's whole log, the leader's log freezes: it
//      sends TAKE_OVER (the frozen log's last zxid) to each member that
//      answered, and TIMEOUT_NOW to the target.
//   3. A member told TAKE_OVER keeps its role through the change of term,
//      and once synced under a new leader whose log holds that zxid (so, by
//      log matching, every write of its clients before the hold), it moves
//      to it without `looking` and sends on what it held. A new leader
//      without it, or none within two election timeouts, and it looks for a
//      leader as after any failure. A handover that does not finish in time
//      is called off: RELEASE, and the held writes go to the old leader.
//
// Durable state: the term and the vote go through Storage::save_epochs
// (accepted_epoch = term, current_epoch = the vote), written before the
// server acts on them.
//
// The class is a state machine like zab's: no sockets, no clock; it acts on
// peer messages, storage acknowledgements and tick(now_ms).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "corral/common/lifeline.hpp"
#include "corral/sdk/consensus.hpp"
#include "raft_messages.hpp"

namespace corral::raft {

struct RaftOptions {
  int64_t tick_ms = 2000;                // the kernel's tick
  int64_t election_ticks = 5;            // election timeout T = election_ticks * tick_ms
  int64_t heartbeat_ms = 0;              // 0: tick_ms / 2
  int64_t retry_ms = 250;                // unanswered forwards and syncs are sent again
  size_t recent_entries = 1000;          // applied entries kept in memory for followers
  size_t recent_bytes = 64u << 20;       // … and at most this many bytes of them
  size_t max_append_bytes = 1u << 20;    // entries in one append
  size_t max_inflight_bytes = 8u << 20;  // unacknowledged append bytes per follower
  // A snapshot goes to a follower in pieces of at most this many bytes, at
  // most snap_window_bytes of them unacknowledged.
  size_t snap_piece_bytes = 1u << 20;
  size_t snap_window_bytes = 8u << 20;
  size_t max_forwarded = 10000;  // writes a follower holds unconfirmed by the leader
  // A follower holds the leader's snapshot in memory while it arrives; a
  // larger one is refused.
  uint64_t max_sync_bytes = uint64_t{8} << 30;
  size_t max_forwarded_bytes = 64u << 20;
};

// What the simulation wants to see happen.
struct RaftEvent {
  enum class Kind { snapshot_sent, snapshot_resumed, elected, leader, follower } kind;
  uint32_t term = 0;
  sdk::ServerId peer = 0;
};

class Raft final : public sdk::Consensus, public sdk::PeerListener {
 public:
  // `seed` 0 draws one from std::random_device (election timeouts).
  explicit Raft(uint64_t seed = 0);
  ~Raft() override;

  sdk::Status init(sdk::PluginHost& host) override;
  sdk::Status start(sdk::ConsensusHost& host, const sdk::RecoveredState& recovered) override;
  sdk::Status submit(sdk::Bytes body) override;
  void sync(std::function<void(const sdk::Status&)> done) override;
  sdk::Role role() const override { return role_; }
  sdk::ServerId leader() const override { return serving_leader_; }
  uint32_t epoch() const override { return term_; }
  sdk::Zxid last_applied() const override { return last_applied_; }
  sdk::ConsensusStatus status() const override;
  void tick(int64_t now_ms) override;
  void stop() override;
  sdk::ConsensusTraits traits() const override { return {true}; }
  void transfer_leadership(sdk::ServerId to, bool leaving,
                           std::function<void(const sdk::Status&)> done) override;

  void on_peer_message(sdk::ServerId from, sdk::BytesView message) override;
  void on_peer_link(sdk::ServerId peer, bool up) override;

  const RaftOptions& options() const { return opt_; }
  void set_options(const RaftOptions& o) { opt_ = o; }
  void set_event_sink(std::function<void(const RaftEvent&)> sink) { events_ = std::move(sink); }

  // Internal roles (the kernel sees sdk::Role).
  enum class State { follower, pre_candidate, candidate, leader };
  State state() const { return state_; }
  uint32_t term() const { return term_; }
  sdk::ServerId voted_for() const { return voted_for_; }

 private:
  // A follower or observer as the leader tracks it.
  struct Progress {
    sdk::ServerId id = 0;
    bool observer = false;
    sdk::Zxid sent = 0;     // the last zxid sent (appends go on after it)
    sdk::Zxid matched = 0;  // known to hold the leader's log up to here
    sdk::Zxid durable = 0;  // … and durably (what counts for commit)
    bool probing = true;    // one append at a time until one matches
    uint64_t reset_id = 0;  // rejects for appends sent before this are stale
    std::deque<std::pair<sdk::Zxid, size_t>> inflight;  // (last zxid, bytes) per append
    size_t inflight_bytes = 0;
    int64_t last_heard = -1;
    uint64_t round_acked = 0;
    sdk::Zxid snapshot_zxid = 0;  // a snapshot sent and not answered
    int64_t snapshot_at = 0;      // when it was sent, or a piece of it last acknowledged
    // The snapshot on its way, read a piece at a time: `snap_sent` bytes
    // sent, `snap_acked` of them acknowledged. Null once all are sent.
    std::shared_ptr<sdk::SnapshotReader> snap;
    uint64_t snap_sent = 0, snap_acked = 0;
    // Where the follower said its copy of the snapshot at `resume_zxid`
    // stopped, when a piece went missing: the next one sent of it starts
    // there rather than from its first byte.
    sdk::Zxid resume_zxid = 0;
    uint64_t resume_at = 0;
    // The try going on from there first reads past that many bytes, a
    // window's worth a turn of the loop.
    uint64_t snap_skip_to = 0;
    bool skip_posted = false;
    int64_t last_append_at = 0;
    sdk::Zxid commit_sent = 0;  // the commit point it was last told
    uint64_t fwd_sent = 0;      // the forwarded-write confirmation it was last told
  };
  // A follower's stream of forwarded writes, as the leader takes it.
  struct ForwardIn {
    uint64_t nonce = 0;
    uint64_t next = 0;
    // Streams this follower ended (a late duplicate of their first write
    // must not start them again): the last few.
    std::deque<uint64_t> retired;
    // The write it refused in this stream: it and everything after it are
    // refused again, never taken (the follower fails them all).
    bool refused = false;
    uint64_t refused_seq = 0;
    int64_t refused_code = 0;
    std::string refused_text;
  };
  struct PendingRead {
    sdk::Zxid read_index = 0;
    uint64_t round = 0;
    sdk::ServerId from = 0;  // 0: this server's own sync
    int64_t id = 0;
    std::function<void(const sdk::Status&)> done;
  };
  struct Forwarded {
    uint64_t seq = 0;
    sdk::Bytes body;
  };

  // ---- roles and terms
  bool save_term(uint32_t term, sdk::ServerId vote);
  void become_follower(uint32_t term, sdk::ServerId leader, const std::string& why);
  void lose_leader(const std::string& why);
  void heard_from_leader(sdk::ServerId from);
  void start_pre_vote();
  void start_election(bool transfer);
  void become_leader();
  void step_down(const std::string& why);
  // `seamless`: from one leader to the next without `looking` (a handover).
  void set_role(sdk::Role role, sdk::ServerId leader, bool seamless = false);
  void reset_election_timer();
  bool can_campaign() const;
  bool heard_leader_recently() const;

  // ---- log
  size_t upper(sdk::Zxid z) const;  // index of the first entry after z in log_
  bool holds(sdk::Zxid z) const;
  sdk::Zxid last_logged() const { return log_.empty() ? log_base_ : log_.back().zxid; }
  sdk::Zxid hint_for(sdk::Zxid prev) const;
  void append_local(sdk::LogEntry e);
  void store(const sdk::LogEntry& e);
  void on_stored(uint64_t generation, sdk::Zxid zxid, const sdk::Status& st);
  bool truncate_from(size_t index);
  void rewrite_tail();
  void trim_log();
  void apply_committed();
  void post_ack();

  // ---- leader
  sdk::Status propose(sdk::Bytes body);
  void replicate(Progress& p, bool heartbeat);
  void broadcast(bool heartbeat);
  bool collect(sdk::Zxid after, sdk::Zxid upto, size_t max_bytes, std::vector<sdk::LogEntry>& out,
               bool& need_snapshot);
  void send_snapshot(Progress& p);
  // The next piece of the snapshot being sent to `p` (at most `max`
  // bytes), checked against the size announced; empty once all is read.
  // Nothing when it cannot be read: the try is given up (logged), and made
  // again after a timeout.
  std::optional<sdk::BytesView> next_snapshot_piece(Progress& p, size_t max);
  void pump_snapshot(Progress& p);
  void advance_commit();
  sdk::Zxid quorum_point(const std::vector<sdk::ServerId>& voters);
  void check_reads();
  void serve_read(sdk::ServerId from, int64_t id, std::function<void(const sdk::Status&)> done);
  void leader_tick();
  Progress* progress(sdk::ServerId id);
  bool leader_serving() const;

  // ---- messages
  void send(sdk::ServerId to, const Msg& m);
  void handle(sdk::ServerId from, Msg& m);
  void on_pre_vote(sdk::ServerId from, const Msg& m);
  void on_vote(sdk::ServerId from, const Msg& m);
  void on_vote_reply(sdk::ServerId from, const Msg& m);
  void on_append(sdk::ServerId from, Msg& m);
  void on_append_reply(sdk::ServerId from, const Msg& m);
  void on_snapshot(sdk::ServerId from, Msg& m);
  // Whether `m` is a piece of the snapshot being received: the same
  // snapshot and size, from the same leader's term.
  bool continues_incoming(const Msg& m) const;
  void drop_incoming_snapshot();
  void on_forward(sdk::ServerId from, Msg& m);
  void on_sync_request(sdk::ServerId from, const Msg& m);
  void on_sync_reply(const Msg& m);
  void on_timeout_now(sdk::ServerId from, const Msg& m);
  void on_transfer_request(sdk::ServerId from, const Msg& m);
  void start_transfer(sdk::ServerId to, bool leaving, sdk::ServerId requester, int64_t request_id,
                      std::function<void(const sdk::Status&)> done);
  void send_timeout_now();
  // A leader that is no voter (elected as a last resort, or voted out by a
  // membership change) hands the leadership to the most up-to-date voter.
  void hand_off(const std::string& why);
  void follower_retry();
  void fail_follower_waits(const sdk::Status& why);
  // The leader refused forwarded write `seq`: it and every later one fail,
  // in order, and a new stream begins.
  void reject_forwarded(uint64_t seq, const sdk::Status& why);
  void finish_transfer(const sdk::Status& st);
  // ---- holding writes through a handover
  bool handover_pending() const { return holding_ && handover_zxid_ != 0; }
  // The log holds the frozen log's last entry, matched with the leader's.
  bool handover_held_by_log() const;
  sdk::Status hold_write(sdk::Bytes body);
  // Stops holding: sends the held writes and syncs on (`send_on`), or drops
  // them (the caller goes `looking`, which closes their connections).
  void end_hold(bool send_on);
  // A handover that cannot finish (its deadline passed, the server taking
  // over is gone, or this server took over and lost its quorum): the held
  // writes go to the leader still followed, or with their connections.
  void give_up_hold(const std::string& why);
  // A leader whose handover cannot finish calls it off and leads on: every
  // member sends on what it held, to this leader.
  void call_off_transfer(const std::string& why);
  void on_hold(sdk::ServerId from, const Msg& m);
  void on_take_over(sdk::ServerId from, const Msg& m);
  void maybe_freeze();
  bool hold_complete(sdk::ServerId id) const;
  void send_hold(sdk::ServerId to);
  // Every answer to the kernel goes through the loop, never from inside
  // this object's own call stack (the kernel may stop it from the answer).
  void answer(std::function<void(const sdk::Status&)> done, sdk::Status st);

  // ---- membership
  // The applied membership's voters.
  std::vector<sdk::ServerId> voters() const;
  bool is_voter(sdk::ServerId id) const;
  size_t majority() const { return voters().size() / 2 + 1; }
  // Every voter set a decision needs a quorum of: the applied membership's
  // and that of each membership change in the log not yet applied (Raft
  // counts a configuration from the moment it is logged; ZooKeeper's
  // reconfig takes effect when committed, so until it is applied both
  // count).
  std::vector<std::vector<sdk::ServerId>> quorum_sets() const;
  bool quorum_of(const std::function<bool(sdk::ServerId)>& counts) const;
  std::vector<sdk::ServerId> all_voters() const;  // in any of them
  bool is_voter_anywhere(sdk::ServerId id) const;
  void refresh_members();

  RaftOptions opt_;
  sdk::PluginHost* host_ = nullptr;
  sdk::ConsensusHost* chost_ = nullptr;
  sdk::PeerNetwork* net_ = nullptr;
  std::mt19937_64 rng_;
  std::function<void(const RaftEvent&)> events_;
  common::Lifeline alive_;
  bool running_ = false;
  int64_t now_ = 0;

  // Persistent (through save_epochs).
  uint32_t term_ = 0;
  sdk::ServerId voted_for_ = 0;

  sdk::ServerId self_ = 0;
  bool observer_ = false;
  std::vector<sdk::PeerSpec> members_;
  State state_ = State::follower;
  sdk::Role role_ = sdk::Role::looking;
  sdk::ServerId leader_ = 0;          // the leader of term_, when known
  sdk::ServerId serving_leader_ = 0;  // what role() reports with
  int64_t election_due_ = 0;
  bool early_election_ = false;  // the timer was shortened by a broken link to the leader
  // Peers whose link broke (when), and not heard from or up again since. A
  // break counts for an election timeout: the kernel reports only outgoing
  // links coming up, so an entry can outlive the break it records.
  std::map<sdk::ServerId, int64_t> links_down_;
  bool link_down(sdk::ServerId peer) const;
  bool early_used_ = false;      // … since the leader was last heard
  int64_t leader_deadline_ = 0;  // … and gives the leader up then, unless heard from
  int64_t last_leader_contact_ = -1000000000;
  int64_t elections_ = 0, last_election_ms_ = 0, election_started_ = -1;
  std::map<sdk::ServerId, bool> votes_;  // pre-votes or votes granted this round

  // Log: entries after log_base_ in memory; log_base_ itself is applied and
  // durable (everything up to it is committed).
  std::deque<sdk::LogEntry> log_;
  // Membership changes in the log not yet applied: (zxid, the members it installs).
  std::vector<std::pair<sdk::Zxid, std::vector<sdk::PeerSpec>>> pending_configs_;
  size_t log_bytes_ = 0;
  sdk::Zxid log_base_ = 0;
  sdk::Zxid last_durable_ = 0;
  sdk::Zxid commit_ = 0;
  sdk::Zxid last_applied_ = 0;
  sdk::Zxid matched_ = 0;  // a follower: known to match the leader of term_ up to here
  uint64_t log_generation_ = 0;
  bool rewrite_pending_ = false;  // storage refused: cut and write the tail again
  bool rewrite_posted_ = false;
  size_t appends_in_flight_ = 0;     // appends storage has not answered yet
  bool snapshot_in_flight_ = false;  // a snapshot from the leader being made durable
  bool snapshot_unsaved_ = false;    // … loaded, and not durable yet
  // A snapshot arriving in pieces from the leader: its zxid and size, and
  // what has come of it (grown as the pieces come, never by the size
  // announced alone).
  sdk::Zxid incoming_zxid_ = 0;
  uint32_t incoming_term_ = 0;  // of the leader sending it (the follower's leader_)
  uint64_t incoming_size_ = 0;
  sdk::Zxid refused_snapshot_ = 0;  // the last snapshot refused as too large (said once)
  sdk::Bytes incoming_;
  bool ack_posted_ = false;
  sdk::Zxid acked_sent_ = 0;
  bool synced_ = false;  // a follower: serving clients under leader_

  // Leader.
  std::map<sdk::ServerId, Progress> progress_;
  std::map<sdk::ServerId, ForwardIn> forward_in_;
  uint32_t next_counter_ = 1;
  sdk::Zxid noop_zxid_ = 0;  // the no-op this leader's term began with
  uint64_t round_ = 0;       // heartbeat rounds
  uint64_t send_id_ = 0;
  int64_t last_heartbeat_ = 0;
  int64_t last_quorum_check_ = 0;
  std::deque<PendingRead> reads_;
  bool flush_posted_ = false;
  bool heartbeat_posted_ = false;

  // Follower: writes and syncs sent to the leader and not yet confirmed.
  uint64_t fwd_nonce_ = 0;
  uint64_t fwd_next_seq_ = 0;
  std::deque<Forwarded> forwarded_;
  size_t forwarded_bytes_ = 0;
  int64_t last_forward_progress_ = 0;
  struct SyncRequest {
    std::function<void(const sdk::Status&)> done;
    int64_t sent_at = 0;
  };
  std::map<int64_t, SyncRequest> sync_requests_;
  std::set<std::pair<sdk::ServerId, int64_t>> remote_reads_;  // a leader: followers' syncs queued
  int64_t next_sync_id_ = 1;
  int64_t last_retry_ = 0;
  // Syncs answered with a read index, waiting to apply up to it.
  std::multimap<sdk::Zxid, std::function<void(const sdk::Status&)>> applied_waiters_;
  bool applying_ = false;  // inside apply_committed (the kernel's apply may call back)

  // Leadership handover.
  std::function<void(const sdk::Status&)> transfer_done_;
  sdk::ServerId transfer_target_ = 0;  // a leader: the voter it hands over to
  bool timeout_sent_ = false;          // … and has told to stand
  uint32_t handover_term_ = 0;         // a follower told to stand once its appends are durable
  sdk::ServerId transfer_want_ = 0;    // who was asked for (0: any)
  int64_t transfer_deadline_ = 0;
  uint32_t transfer_term_ = 0;    // the term the handover was asked in
  bool transfer_follow_ = false;  // answered once serving under a later term
  int64_t transfer_request_id_ = 0;

  // Writes and syncs held through a handover (every server).
  bool holding_ = false;
  uint32_t hold_term_ = 0;           // the term of the leader that asked
  int64_t hold_deadline_ = 0;        // held no longer than this
  sdk::ServerId hold_target_ = 0;    // the server expected to lead next
  sdk::Zxid handover_zxid_ = 0;      // TAKE_OVER: the frozen log's last entry (0: not told)
  bool handover_committed_ = false;  // … known committed under the old leader
  std::deque<sdk::Bytes> held_;
  size_t held_bytes_ = 0;
  std::vector<std::function<void(const sdk::Status&)>> held_syncs_;
  // A leader handing over: which members answered HOLD, with (nonce, next
  // seq) of their streams; the log is frozen once TAKE_OVER went out.
  std::map<sdk::ServerId, std::pair<uint64_t, uint64_t>> hold_acks_;
  std::set<sdk::ServerId> hold_unserving_;  // answered, serving no clients yet: HOLD again
  int64_t hold_id_ = 0;  // the handover's number (a member: the one it holds for)
  int64_t hold_started_ = 0;
  bool frozen_ = false;
};

}  // namespace corral::raft
