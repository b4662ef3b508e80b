// The `zab` consensus: ZooKeeper's atomic broadcast for an ensemble.
//
// Phases, as ZooKeeper runs them:
//   election     the election plugin names a prospective leader;
//   discovery    learners send FOLLOWERINFO; once a quorum has, the leader
//                picks an epoch above every accepted epoch of that quorum
//                (LEADERINFO) and collects ACKEPOCH (current epoch, last zxid);
//                if a voter of that quorum has a newer history than its own,
//                the leader first fetches it (FETCH/FETCHED), so that the
//                initial history holds everything a quorum may have committed
//                whichever server the election named (this is what lets the
//                `static` election work);
//   sync         each learner gets one SYNC: DIFF, TRUNC+DIFF or SNAP+DIFF and
//                NEWLEADER; it makes that durable, adopts the epoch and ACKs;
//                a quorum of ACKs establishes the leader, which commits its
//                initial history and sends UPTODATE;
//   broadcast    PROPOSAL, ACK from a quorum, COMMIT, in zxid order
//                (zxid = epoch << 32 | counter); observers get INFORM with
//                each committed entry and never vote.
// Followers forward writes (REQUEST) and `sync` (SYNC_REQUEST) to the
// leader and answer its pings with their clients' session activity.
//
// The class is a state machine: it never opens sockets or reads a clock. It
// acts on peer messages (PeerListener), storage acknowledgements and
// tick(now_ms), and its effects go through the PeerNetwork, the Storage and
// the ConsensusHost it is given, so a simulation can run many of them in one
// process with an in-memory network, storage and clock.
//
// Its rooms: quorum.hpp (who votes and what a quorum reached: pure),
// history.hpp (DIFF/TRUNC/SNAP planning: pure), zab_messages.hpp (the wire
// format), and in this class the leader's and the learner's state as two
// structs in one variant (side_): one live at a time, each made whole when
// its role begins and gone when it ends.
//
// Time and I/O, exactly:
//   - time comes from tick(now_ms) and, once at start, the host's steady
//     clock; the leader stamps each proposal with the host's wall clock so
//     that every replica computes the same ctime/mtime.
//   - Storage::append is asynchronous: the acknowledgement arrives later on
//     the loop (this is the only storage call on the write path).
//   - These storage calls block the loop, and only on a role change or a
//     sync, never per write: save_epochs (an fsync; once when a leader
//     decides its epoch, and on a learner at LEADERINFO and at NEWLEADER,
//     because Zab forbids answering before the epoch is durable);
//     truncate_after (a TRUNC sync); read_log (at start, to plan a sync, and
//     for each batch of a sync's entries no longer in memory, about
//     snap_piece_bytes each); read_snapshot (opens the snapshot a
//     SNAP sync sends, which is then read a piece of at most
//     snap_piece_bytes per acknowledgement). An election therefore stalls
//     the loop for about one fsync per step; a SNAP, for no more than the
//     read of one piece at a time.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <variant>
#include <vector>

#include "corral/common/lifeline.hpp"
#include "corral/sdk/consensus.hpp"
#include "quorum.hpp"
#include "zab_messages.hpp"

namespace corral::zab {

struct ZabOptions {
  int64_t tick_ms = 2000;           // ZooKeeper's tickTime
  int64_t init_limit = 10;          // ticks a learner may take to connect and sync
  int64_t sync_limit = 5;           // ticks a server may stay silent in broadcast
  int64_t retry_ms = 250;           // how often a learner re-sends FOLLOWERINFO
  int64_t connect_attempts = 5;     // failed dials to a named leader before electing again
  size_t recent_entries = 1000;     // committed entries kept in memory for syncs
  size_t recent_bytes = 64u << 20;  // … and at most this many bytes of them
  // A client's sync is answered only once a quorum of voters has answered a
  // ping the leader sent after the sync arrived, so that sync + read is
  // linearizable even when this leader was paused and already replaced
  // (ZooKeeper answers from the leader's log alone: ZOOKEEPER-1675).
  bool quorum_sync = false;
  // While a leader handover runs, each server holds its clients' writes
  // (and syncs) until it serves under the next leader: at most this many
  // writes, and bytes of them; past either a write is refused at once.
  size_t max_held_writes = 10000;
  size_t max_held_bytes = 64u << 20;
  // A sync's snapshot goes to the learner in pieces of at most this many
  // bytes, and its entries in batches of about as many, at most
  // snap_window_bytes of them unacknowledged, read as they go: the leader's
  // loop never holds or copies a whole snapshot or history.
  size_t snap_piece_bytes = 1u << 20;
  size_t snap_window_bytes = 8u << 20;
  // What a learner keeps of the leader's other messages while a snapshot
  // arrives, to handle once it is loaded; past it the learner starts over.
  size_t max_deferred_bytes = 256u << 20;
  // A learner holds a sync (the snapshot, then the entries after it) in
  // memory while it arrives: a leader that announces or sends more than
  // this is refused, and the learner starts over.
  uint64_t max_sync_bytes = uint64_t{8} << 30;
};

// What the core did, as typed events for tests and the simulation (the
// protocol never depends on who listens).
struct ZabEvent {
  enum class Kind { looking, leading, following, sync_sent };
  Kind kind = Kind::looking;
  uint32_t epoch = 0;
  sdk::ServerId peer = 0;                      // following: the leader; sync_sent: the learner
  SyncPlan::Mode mode = SyncPlan::Mode::diff;  // sync_sent
  sdk::Zxid from = 0;                          // sync_sent: the learner's last zxid
  size_t entries = 0;  // sync_sent: entries in the plan (0 when they are streamed after it)
};

class Zab final : public sdk::Consensus, private sdk::ElectionHost, private sdk::PeerListener {
 public:
  // `seed` seeds the session nonces; 0 picks a random one.
  explicit Zab(uint64_t seed = 0);
  ~Zab() override;

  // Plugin
  sdk::Status init(sdk::PluginHost& host) override;
  // Consensus
  sdk::Status start(sdk::ConsensusHost& host, const sdk::RecoveredState& recovered) override;
  sdk::Status submit(sdk::Bytes body) override;
  void sync(std::function<void(const sdk::Status&)> done) override;
  sdk::Role role() const override { return role_; }
  sdk::ServerId leader() const override { return role_ == sdk::Role::looking ? 0 : leader_; }
  uint32_t epoch() const override { return current_epoch_; }
  sdk::Zxid last_applied() const override { return last_applied_; }
  sdk::ConsensusStatus status() const override;
  void tick(int64_t now_ms) override;
  void stop() override;
  sdk::ConsensusTraits traits() const override { return {true}; }
  void transfer_leadership(sdk::ServerId to, bool leaving,
                           std::function<void(const sdk::Status&)> done) override;

  const ZabOptions& options() const { return opt_; }
  void set_event_sink(std::function<void(const ZabEvent&)> sink) { events_ = std::move(sink); }
  void set_options(const ZabOptions& o) { opt_ = o; }
  // True once this server leads an established epoch (for tests).
  bool established_leader() const { return role_ == sdk::Role::leading; }

 private:
  enum class Stage { looking, discovery, sync, broadcast };
  struct Learner {
    enum class Step { info, leader_info_sent, epoch_acked, sync_sent, broadcast };
    sdk::ServerId id = 0;
    // Sent INFORMs, not proposals, and acknowledges nothing: an observer in
    // the leader's view, until a logged change that makes it a voter
    // promotes it.
    bool observer = false;
    int64_t nonce = 0, send_seq = 0, recv_seq = 0;
    Step step = Step::info;
    uint32_t accepted_epoch = 0, current_epoch = 0;
    sdk::Zxid last_zxid = 0;  // its log when it reported (FOLLOWERINFO, then ACKEPOCH)
    sdk::Zxid sync_last = 0;  // its log once the SYNC it was sent is applied
    sdk::Zxid acked = 0;      // durable on it, as it acknowledged
    bool newleader_acked = false;
    int64_t last_heard = 0, step_started = 0;
    bool leaving = false;  // it stops soon: not counted towards establishing
    // A handover: HOLD was sent to it, and it answered (every REQUEST it
    // sent before is ordered; it holds its clients' writes from then on).
    bool hold_sent = false, hold_acked = false;
    // Pings sent on this session and answers received: a learner answers
    // every ping, in order, so answer n is the answer to ping n.
    int64_t pings_sent = 0, pongs = 0;
    // A streamed SYNC on its way (see SyncPlan::streamed): the snapshot
    // read a piece at a time (null once all is sent), then the entries
    // after `stream_after` up to `stream_last`, read a batch at a time;
    // `stream_sent` units sent (stream_units), `stream_acked` acknowledged.
    bool streaming = false;
    std::shared_ptr<sdk::SnapshotReader> snap;
    sdk::Zxid stream_after = 0, stream_last = 0;
    uint64_t stream_sent = 0, stream_acked = 0;
  };
  // A client's sync waiting for a quorum round (ZabOptions::quorum_sync).
  struct QuorumSync {
    sdk::Zxid zxid = 0;                             // the log when it arrived
    std::function<void(const sdk::Status&)> local;  // this server's client
    sdk::ServerId learner = 0;                      // or a learner's SYNC_REQUEST
    int64_t nonce = 0, id = 0;
  };

  // ElectionHost
  sdk::PeerNetwork& network() override { return *net_; }
  void elected(const sdk::ElectionResult& result) override;
  // PeerListener
  void on_peer_message(sdk::ServerId from, sdk::BytesView message) override;
  void on_peer_link(sdk::ServerId peer, bool up) override;

  // Phases.
  void go_looking(const std::string& why);
  void start_following();
  void start_leading();
  // The voters in effect and those a pending change installs.
  Quorum quorum_rule() const;
  size_t quorum() const;
  bool is_voter(sdk::ServerId id) const;
  // True when the servers `in` accepts make a quorum of the voters in effect
  // and, while the log holds a membership change not yet applied, of the
  // voters it installs too (as ZooKeeper counts with its last seen config).
  bool is_quorum(const std::function<bool(sdk::ServerId)>& in) const;
  bool seen_voter(sdk::ServerId id) const;
  // Finds the newest membership change in the unapplied log (after a start,
  // a truncation or a snapshot replaced it).
  void recompute_seen();

  // Leader.
  void on_learner_message(sdk::ServerId from, Msg& m);
  void maybe_decide_epoch();
  void maybe_choose_history();
  void begin_sync();
  // Quorum syncs: queue one, start a round of pings, answer a round's
  // syncs once a quorum of voters answered pings sent after they arrived.
  void ping_learners();  // the heartbeat, counted per learner session
  void queue_quorum_sync(QuorumSync s);
  void start_sync_round();
  void check_sync_round();
  void send_sync(Learner& l);
  // Sends the next pieces and batches of a streamed SYNC, as far as the
  // window allows.
  void pump_stream(Learner& l);
  // A learner's SYNC, whole: the plan applied, then NEWLEADER acknowledged.
  void accept_sync(Msg& m);
  // A learner's piece or batch of a streamed SYNC.
  void on_stream(Msg& m);
  bool stream_whole() const;
  // A sync larger than max_sync_bytes: said, and the learner starts over.
  void refuse_sync_size(uint64_t bytes);
  uint32_t refused_sync_epoch_ = 0;  // the leader's epoch whose sync was last refused
  void maybe_establish();
  void try_commit();
  void propose(sdk::LogEntry entry);
  // Synced observers that the logged change makes voters start receiving
  // proposals and acknowledging them (after a change is logged, and as each
  // learner is synced).
  void promote_observers();
  void drop_learner(sdk::ServerId id, const std::string& why);
  void send_to(Learner& l, const Msg& m);
  void send_to(Learner& l, MsgType type, sdk::BytesView payload);
  size_t live_voters() const;
  // The leader's followers that acknowledged NEWLEADER, and itself, make a
  // quorum (of both memberships while one is changing).
  bool quorum_in_touch() const;
  // A membership change was applied: the leader drops learners it no longer
  // has and re-reads who votes; a server whose own part changed elects again
  // (in its new part), and one taken out of the ensemble stops.
  void membership_applied(sdk::Zxid zxid);
  // Re-reads this server's part, and on a leader its learners', after the
  // membership changed (`cause` says how, for the log).
  void membership_changed(const std::string& cause);

  // Leader transfer (zab_transfer.cpp says how). The leader and, on its
  // HOLD, each learner hold their clients' writes; once the server taking
  // over has everything and all is committed, TAKE_OVER moves every learner
  // and the leader to it: the new leader runs discovery and sync with
  // whoever joins (so the handover is as safe as an election's outcome),
  // and each server sends its held writes and syncs on once synced again.
  sdk::Status begin_transfer(sdk::ServerId to, sdk::ServerId asker, int64_t asker_nonce);
  void check_transfer();
  void abort_transfer(const std::string& why);
  void hand_over();
  // Leaves the leader or the learner side for a handover to `next` (itself,
  // or the one to follow), keeping the role the kernel sees until synced.
  void move_to(sdk::ServerId next);
  // Synced under the new leader: the move is done; held writes go out.
  void end_move();
  // `after_move`: a learner asks its new leader again for the syncs the old
  // one left unanswered.
  void release_held(bool after_move);
  // The leader's path of submit(), also for learners' REQUESTs (which are
  // ordered even while this server holds its own clients' writes).
  sdk::Status order(sdk::Bytes body);
  void finish_transfer(const sdk::Status& st);

  // Learner.
  void on_leader_message(Msg& m);
  void handle_leader_message(Msg& m);
  void drain_deferred();
  void send_follower_info();
  void send_to_leader(const Msg& m);
  void flush_ack();

  // Log and state, shared by both.
  // `stream`: a SNAP's snapshot is to follow the plan in pieces (plan.reader)
  // rather than be read into it.
  sdk::Result<SyncPlan> plan_sync(sdk::Zxid peer_last, bool stream);
  // Brings this server's log in line with a SYNC or FETCHED plan; calls
  // `durable` once all of it is on disk (unless the server moved on).
  void apply_sync(SyncPlan plan, sdk::Zxid committed, std::function<void()> durable);
  void finish_sync(std::vector<sdk::LogEntry> entries, sdk::Zxid committed);
  void check_sync_durable();
  void append(sdk::LogEntry entry);
  void store(const sdk::LogEntry& entry);  // hands one entry to storage
  void rewrite_tail();
  void check_tail_rewritten();
  void on_durable();
  void apply_committed();
  // Every entry after `after` this server holds, from memory and the log.
  sdk::Status collect_history(sdk::Zxid after, std::vector<sdk::LogEntry>& out);
  // Calls `visit` for each entry of this server's history after `after`, in
  // order (from storage, then memory), until it returns false.
  sdk::Status scan_history(sdk::Zxid after, const std::function<bool(const sdk::LogEntry&)>& visit);
  void fail_waiters(const sdk::Status& why);
  int64_t fresh_nonce();

  sdk::PluginHost* host_ = nullptr;
  sdk::ConsensusHost* chost_ = nullptr;
  sdk::PeerNetwork* net_ = nullptr;
  sdk::Election* election_ = nullptr;
  ZabOptions opt_;
  std::mt19937_64 rng_;
  sdk::ServerId self_ = 0;
  bool observer_ = false;
  bool running_ = false;
  int64_t now_ = 0;
  corral::common::Lifeline alive_;

  sdk::Role role_ = sdk::Role::looking;
  Stage stage_ = Stage::looking;
  sdk::ServerId leader_ = 0;
  uint64_t generation_ = 0;  // bumps whenever this server leaves a role

  // Persistent (mirrors storage) and the log as this server holds it.
  uint32_t accepted_epoch_ = 0, current_epoch_ = 0;
  sdk::Zxid last_logged_ = 0, last_durable_ = 0, last_applied_ = 0, commit_target_ = 0;
  uint64_t log_generation_ = 0;  // bumps when the log is cut; older acknowledgements are void
  // Storage refused an append: what it holds after last_durable_ is unknown.
  // Until rewrite_tail has cut it there and written the tail again from
  // memory, this server neither decides an epoch nor joins a leader.
  bool tail_lost_ = false;
  bool rewriting_ = false;  // rewrite_tail's appends are out, up to rewrite_until_
  sdk::Zxid rewrite_until_ = 0;
  int64_t tail_retry_at_ = 0;
  // The storage gave up for good (a failed fsync): this server takes no
  // part (no election, no role) until it is restarted.
  bool storage_failed_ = false;
  std::deque<sdk::LogEntry> unapplied_;  // exactly the entries in (last_applied_, last_logged_]
  std::deque<sdk::LogEntry> recent_;  // applied entries, newest last; all that are not durable yet
  size_t recent_held_ = 0;            // bytes of their bodies
  // The newest membership change logged and not applied (0: none) and the
  // voters it installs: every quorum counts them too until it is applied.
  sdk::Zxid seen_zxid_ = 0;
  std::vector<sdk::ServerId> seen_voters_;
  std::vector<std::pair<sdk::Zxid, std::function<void(const sdk::Status&)>>> applied_waiters_;
  bool snapshot_in_flight_ = false;

  // A SYNC (or, on a leader, a FETCHED history) being applied to the log:
  // messages that arrive meanwhile wait (LearnerState::deferred).
  struct PendingSync {
    bool in_progress = false;
    bool awaiting_durable = false;
    sdk::Zxid target = 0;
    std::function<void()> durable;
  };
  PendingSync pending_sync_;
  std::map<int64_t, std::function<void(const sdk::Status&)>>
      sync_requests_;  // clients' syncs sent to the leader
  int64_t next_sync_id_ = 0;
  int64_t stage_started_ = 0;

  // The leader's side. Replaced whole when this server starts leading and
  // when it leaves a role, so nothing of one leadership reaches the next.
  struct LeaderState {
    std::map<sdk::ServerId, Learner> learners;
    uint32_t new_epoch = 0;
    bool epoch_decided = false, history_chosen = false, established = false;
    sdk::ServerId fetching_from = 0;  // a voter whose newer history is being fetched
    sdk::Zxid initial_last = 0;       // the last zxid of the initial history
    uint32_t counter = 0;             // of the last zxid proposed in this epoch
    int64_t last_ping = 0;
    sdk::Zxid epoch_seen = 0;  // seen_zxid_ when the epoch was decided
    // The learners whose histories the choice of the initial history
    // compared (and so cannot be newer than it).
    std::set<sdk::ServerId> compared;
    // Quorum syncs (ZabOptions::quorum_sync) waiting for a round of pings:
    // those that arrived since the round in flight began wait for the next.
    std::vector<QuorumSync> syncs_queued, syncs_in_round;
    std::map<sdk::ServerId, std::pair<int64_t, int64_t>> round_needs;  // nonce, answers
    bool round_open = false;
    // A handover under way: the server taking over, until when it may take
    // to catch up, and the learner session that asked for it (if one did).
    sdk::ServerId transfer_to = 0;
    int64_t transfer_deadline = 0;
    sdk::ServerId transfer_asker = 0;
    int64_t transfer_id = 0;  // this handover's number, in HOLD and HOLD_ACK
    int64_t transfer_asker_nonce = 0;
  };

  // A learner's side (follower or observer), likewise replaced whole when it
  // starts following and when it leaves a role.
  struct LearnerState {
    int64_t nonce = 0, send_seq = 0, recv_seq = 0;  // the session with the leader
    int64_t last_heard = 0, last_retry = 0;
    int connect_failures = 0;
    bool got_leader_info = false;
    uint32_t leader_epoch = 0;
    bool newleader_acked = false;
    std::deque<Msg> deferred;   // leader messages waiting for a SYNC to be applied
    size_t deferred_bytes = 0;  // (roughly) while a snapshot arrives, bounded
    // A streamed SYNC arriving: the plan, whose snapshot and entries fill
    // as they come, and the commit point; handled once it is whole.
    bool receiving = false;
    Msg sync;
    uint64_t stream_units = 0;  // received, as acknowledged
    bool ack_posted = false;
    sdk::Zxid acked_sent = 0;
  };
  // The side this server plays, one at a time: none while looking (and
  // stopped), the leader's from start_leading, a learner's from
  // start_following, until go_looking or stop. So nothing of one role or
  // one leadership reaches the next, and the leader's fields cannot be read
  // on a learner: lead() and learn() are for code that runs only in that
  // role (a wrong one throws, which the simulation would catch); the
  // leading()/learning() pointers for code that runs in any.
  std::variant<std::monostate, LeaderState, LearnerState> side_;
  LeaderState& lead() { return std::get<LeaderState>(side_); }
  const LeaderState& lead() const { return std::get<LeaderState>(side_); }
  LearnerState& learn() { return std::get<LearnerState>(side_); }
  LeaderState* leading() { return std::get_if<LeaderState>(&side_); }
  const LeaderState* leading() const { return std::get_if<LeaderState>(&side_); }
  LearnerState* learning() { return std::get_if<LearnerState>(&side_); }
  bool removed_ = false;  // a reconfig took this server out of the ensemble

  // Leader transfer (any server). While `holding_`, writes and syncs wait
  // here (bounded by max_held_*) instead of going to a leader; `moving_` from TAKE_OVER
  // until synced under the next leader.
  bool holding_ = false, moving_ = false;
  std::deque<sdk::Bytes> held_;
  size_t held_bytes_ = 0;
  std::vector<std::function<void(const sdk::Status&)>> held_syncs_;
  // This server's own transfer request (local, or asked of its leader).
  std::function<void(const sdk::Status&)> transfer_done_;
  int64_t transfer_deadline_ = 0;
  sdk::ServerId transfer_target_ = 0;  // what it asked for (0: any voter)
  // It stops once its handover is done: the new leader is told not to count
  // it towards establishing (LEAVING after each FOLLOWERINFO).
  bool leaving_ = false;
  int64_t transfers_begun_ = 0;  // numbers the handovers this server leads
  // FOLLOWERINFOs that reached this server (when) before the TAKE_OVER that
  // makes it leader (one per server; dropped when it settles or looks again,
  // and not replayed once older than a retry or two).
  std::map<sdk::ServerId, std::pair<int64_t, Msg>> early_infos_;

  std::function<void(const ZabEvent&)> events_;
  void emit(const ZabEvent& e) {
    if (events_) events_(e);
  }

  // Statistics.
  int64_t elections_ = 0, election_started_ = 0, last_election_ms_ = 0;
};

}  // namespace corral::zab
