// The simulated world behind sim.hpp: the event queue, the network, the
// disks, the nodes (each a real Zab with a real election) and the checker.
//
// Longer than most files on purpose: these parts share the world's state
// (time, links, disks, the canonical history) and are private to this file;
// splitting them would put that state behind interfaces that exist only for
// the split. The scenario runner at the end drives the same world.
#include "sim.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <queue>
#include <set>
#include <sstream>

#include "corral/common/msgpack.hpp"
#include "corral/sdk/consensus.hpp"
#include "fle.hpp"
#include "raft.hpp"
#include "static_election.hpp"
#include "zab.hpp"

namespace corral::sim {

using sdk::Bytes;
using sdk::BytesView;
using sdk::Errc;
using sdk::LogEntry;
using sdk::PeerChannel;
using sdk::Role;
using sdk::ServerId;
using sdk::Status;
using sdk::Zxid;

namespace {

struct Violation {
  std::string what;
};

// ---------------------------------------------------------------- events

class World;

class EventQueue {
 public:
  struct Event {
    int64_t at;
    uint64_t seq;
    std::function<void()> fn;
    ServerId owner;  // the server it happens on (0: the world), for pauses
    bool client;     // a client's request: on resume, before the rest
    int rank = 2;    // at the same time: resumed clients' (0), resumed (1), the rest (2)
    bool operator>(const Event& o) const {
      if (at != o.at) return at > o.at;
      if (rank != o.rank) return rank > o.rank;
      return seq > o.seq;
    }
  };
  void at(int64_t t, std::function<void()> fn, ServerId owner = 0, bool client = false,
          int rank = 2) {
    q_.push(Event{t, seq_++, std::move(fn), owner, client, rank});
  }
  bool run_next(int64_t until, int64_t& now) {
    if (q_.empty() || q_.top().at > until) return false;
    Event e = q_.top();
    q_.pop();
    now = std::max(now, e.at);
    if (e.owner && paused_.count(e.owner)) {
      held_[e.owner].push_back(std::move(e));  // a stopped process: it happens on resume
      return true;
    }
    e.fn();
    return true;
  }
  // SIGSTOP and SIGCONT: while paused, nothing happens on the server (no
  // message, timer or disk completion); on resume all of it, in order, but
  // clients' requests first (the worst case: a resumed server answers
  // before its timers tell it what it missed), and all of it before
  // anything else due at the same moment, so no link is reordered.
  void pause(ServerId id) { paused_.insert(id); }
  void resume(ServerId id, int64_t now) {
    paused_.erase(id);
    for (bool clients : {true, false})
      for (Event& e : held_[id])
        if (e.client == clients) at(now, std::move(e.fn), id, clients, clients ? 0 : 1);
    held_.erase(id);
  }
  bool paused(ServerId id) const { return paused_.count(id) != 0; }

 private:
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> q_;
  uint64_t seq_ = 0;
  std::set<ServerId> paused_;
  std::map<ServerId, std::vector<Event>> held_;
};

// ---------------------------------------------------------------- the disk

// What survives a crash, and what is in flight to it.
struct Disk {
  std::vector<LogEntry> log;        // durable
  std::deque<LogEntry> pending;     // written, not yet durable
  std::map<Zxid, Bytes> snapshots;  // durable
  // As the wal: a committed snapshot retires all but the newest two, and the
  // log they alone held; reading from before that fails.
  Zxid dropped_upto = 0;
  uint32_t accepted_epoch = 0, current_epoch = 0;
  // All but the newest two snapshots go, with the log before the older of
  // them.
  void retire() {
    while (snapshots.size() > 2) snapshots.erase(snapshots.begin());
    const Zxid oldest = snapshots.begin()->first;
    auto keep =
        std::find_if(log.begin(), log.end(), [&](const LogEntry& e) { return e.zxid > oldest; });
    if (keep != log.begin()) {
      dropped_upto = std::max(dropped_upto, std::prev(keep)->zxid);
      log.erase(log.begin(), keep);
    }
  }
  bool holds(const LogEntry& e) const {
    auto it = std::lower_bound(log.begin(), log.end(), e.zxid,
                               [](const LogEntry& a, Zxid z) { return a.zxid < z; });
    if (it != log.end() && it->zxid == e.zxid && it->body == e.body) return true;
    return !snapshots.empty() && snapshots.rbegin()->first >= e.zxid;
  }
};

// ---------------------------------------------------------------- plumbing

class NullCounter final : public sdk::Counter {
 public:
  void inc(uint64_t) override {}
  uint64_t value() const override { return 0; }
};
class NullGauge final : public sdk::Gauge {
 public:
  void set(int64_t) override {}
  void add(int64_t) override {}
  int64_t value() const override { return 0; }
};
class NullHistogram final : public sdk::Histogram {
 public:
  void observe(double) override {}
};
class NullMetrics final : public sdk::Metrics {
 public:
  sdk::Counter* counter(std::string_view, std::string_view) override { return &c_; }
  sdk::Gauge* gauge(std::string_view, std::string_view) override { return &g_; }
  sdk::Histogram* histogram(std::string_view, std::string_view) override { return &h_; }
  std::string exposition() override { return {}; }

 private:
  NullCounter c_;
  NullGauge g_;
  NullHistogram h_;
};

class MapConfig final : public sdk::ConfigTable {
 public:
  std::map<std::string, int64_t> ints;
  std::string_view name() const override { return "sim"; }
  bool contains(std::string_view key) const override { return ints.count(std::string(key)) != 0; }
  sdk::Result<std::string> get_string(std::string_view, std::string_view def) const override {
    return std::string(def);
  }
  sdk::Result<int64_t> get_int(std::string_view key, int64_t def) const override {
    auto it = ints.find(std::string(key));
    return it == ints.end() ? def : it->second;
  }
  sdk::Result<double> get_double(std::string_view, double def) const override { return def; }
  sdk::Result<bool> get_bool(std::string_view, bool def) const override { return def; }
  sdk::Result<std::vector<std::string>> get_string_list(
      std::string_view, const std::vector<std::string>& def) const override {
    return def;
  }
  std::vector<std::string> keys() const override {
    std::vector<std::string> k;
    for (const auto& [key, v] : ints) k.push_back(key);
    return k;
  }
  std::vector<std::string> keys_in(std::string_view) const override { return {}; }
  Status invalid(std::string_view key, std::string_view expected) const override {
    return {Errc::invalid_argument, std::string(key) + " must be " + std::string(expected)};
  }
};

// ---------------------------------------------------------------- the world

class Node;

class World {
 public:
  World(uint64_t seed, const SimOptions& o) : rng(seed), opt(o) {}

  std::mt19937_64 rng;
  SimOptions opt;
  EventQueue events;
  int64_t now = 0;
  std::vector<std::unique_ptr<Node>> nodes;  // index = id - 1
  SimResult result;
  std::deque<std::string> trace;
  bool faults = true;
  bool scripted = false;  // a scenario drives it: no random writes, faults or snapshots
  double loss = 0;
  // Every sync a leader sent: (learner, mode), in order.
  std::vector<std::pair<ServerId, zab::SyncPlan::Mode>> syncs;
  size_t captured = 0;

  // Network state: a partition puts each server in a group; links between
  // groups drop everything.
  std::vector<int> group;
  std::map<std::tuple<ServerId, ServerId, int>, int64_t> last_delivery;  // FIFO per link
  std::map<std::tuple<ServerId, ServerId, int>, uint64_t> link_epoch;    // bumps on disconnect

  // Clients' syncs not answered yet: id -> (server, its incarnation, asked at).
  std::map<uint64_t, std::tuple<ServerId, uint64_t, int64_t>> open_syncs;
  uint64_t next_sync = 0;
  // Clients' writes ("wN"): where (server, incarnation) each was submitted,
  // and the last N applied from each such place. A server's writes are
  // applied in the order it submitted them (the order its clients see):
  // what is lost is lost whole, nothing overtakes.
  std::map<std::string, std::pair<std::pair<ServerId, uint64_t>, uint64_t>> submitted;
  std::map<std::pair<ServerId, uint64_t>, uint64_t> last_ordered;
  // And no gap: the writes a server took between two `looking`s (while its
  // clients stayed connected) that are neither applied nor refused yet, by
  // (server, incarnation, connections). One applied while an earlier one
  // of the same is neither was lost under a client that never saw its
  // connection close.
  using Connection = std::tuple<ServerId, uint64_t, uint64_t>;
  std::map<std::string, Connection> taken_at;
  std::map<Connection, std::set<uint64_t>> outstanding;
  // Handovers asked and not answered yet, as syncs.
  std::map<uint64_t, std::tuple<ServerId, uint64_t, int64_t>> open_transfers;
  uint64_t next_transfer = 0;

  // Checker state.
  std::vector<LogEntry> canonical;
  std::string membership;  // the canonical sequence's current membership, as in a "M:" entry
  std::map<uint32_t, ServerId> epoch_leaders;

  double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng); }
  int64_t between(int64_t a, int64_t b) {
    return std::uniform_int_distribution<int64_t>(a, b)(rng);
  }

  void log(ServerId id, std::string_view what) {
    if (what.find("while its snapshot was arriving") != std::string_view::npos)
      ++result.deferral_limits;
    trace.push_back("t=" + std::to_string(now) + " s" + std::to_string(id) + " " +
                    std::string(what));
    if (trace.size() > 400) trace.pop_front();
  }
  void on_zab_event(const zab::ZabEvent& e) {
    if (e.kind != zab::ZabEvent::Kind::sync_sent) return;
    syncs.emplace_back(e.peer, e.mode);
    switch (e.mode) {
      case zab::SyncPlan::Mode::snap:
        result.snaps++;
        break;
      case zab::SyncPlan::Mode::trunc:
        result.truncs++;
        break;
      case zab::SyncPlan::Mode::diff:
        result.diffs++;
        break;
    }
  }
  void on_raft_event(const raft::RaftEvent& e);
  void check_log_matching();
  std::map<uint32_t, ServerId> raft_terms;  // the one server elected in each term
  // For each canonical entry, the highest term a leader had been elected in
  // when it was first applied: it was committed in that term or before.
  std::vector<uint32_t> committed_by;
  std::set<std::string> applied_writes;
  std::set<std::string> refused_writes;
  [[noreturn]] void fail(const std::string& what) {
    throw Violation{"t=" + std::to_string(now) + ": " + what};
  }

  bool connected(ServerId a, ServerId b) const { return group[a - 1] == group[b - 1]; }
  void send(ServerId from, ServerId to, PeerChannel ch, Bytes msg);
  void link_down(ServerId at, ServerId peer, int64_t delay);
  void disconnect(ServerId from, ServerId to, PeerChannel ch);

  void on_apply(Node& n, const LogEntry& e);
  void on_snapshot_loaded(Node& n);
  void on_role(Node& n, Role role, uint32_t epoch);
  // A client's write taken by a server was applied (first, anywhere) or
  // refused there.
  void settle(const std::string& body, bool applied) {
    auto it = taken_at.find(body);
    if (it == taken_at.end()) return;
    uint64_t seq = std::stoull(body.substr(1));
    auto open = outstanding.find(it->second);
    if (open != outstanding.end()) {
      if (applied && !open->second.empty() && *open->second.begin() < seq)
        fail("the write 'w" + std::to_string(*open->second.begin()) + "' taken at server " +
             std::to_string(std::get<0>(it->second)) + " before '" + body +
             "' was neither applied nor refused when '" + body +
             "' was applied, and its client's connection stayed open between them");
      open->second.erase(seq);
      if (open->second.empty()) outstanding.erase(open);
    }
    taken_at.erase(it);
  }
};

// ---------------------------------------------------------------- one server

class Node final : public sdk::PluginHost, public sdk::ConsensusHost, public sdk::PeerNetwork {
 public:
  Node(World& w, ServerId id) : w_(w), id_(id) {
    info_.server_id = id;
    info_.tick_ms = 100;
  }

  ServerId id() const { return id_; }
  bool up() const { return consensus_ != nullptr; }
  uint64_t incarnation() const { return incarnation_; }
  // Bumped at each `looking` (when the kernel closes its clients' connections).
  uint64_t connections() const { return connections_; }
  // This server served under `leader` at some moment since `since`.
  bool served_under(ServerId leader, int64_t since) const {
    for (const auto& [at, l] : leaders_seen_)
      if (at >= since && l == leader) return true;
    return false;
  }
  Disk& disk() { return disk_; }
  std::vector<std::pair<Zxid, Bytes>>& applied() { return applied_; }
  sdk::Role role() const { return consensus_ ? consensus_->role() : Role::looking; }
  // The candidacy this server last stood with (what Zab handed look()).
  const sdk::Candidacy& last_candidacy() const { return candidacy_; }
  zab::Zab* zab() { return zab_; }
  raft::Raft* raft() { return raft_; }
  sdk::Consensus* consensus() { return consensus_.get(); }

  void boot() {
    ++incarnation_;
    role_seen_ = Role::looking;
    leader_seen_ = 0;
    alive_ = std::make_shared<bool>(true);
    applied_.clear();
    since_snapshot_ = 0;
    snapshot_every_ = w_.between(5, 60);
    if (w_.scripted) snapshot_every_ = INT32_MAX;  // a scenario takes its snapshots by name
    // Some disks are much slower than the network, so that a leader can
    // commit on its followers' acknowledgements before its own.
    static const int64_t kDiskDelays[] = {2, 8, 40, 120};
    disk_delay_ = kDiskDelays[w_.between(0, 3)];
    if (!disk_.snapshots.empty()) {
      decode_state(disk_.snapshots.rbegin()->second, applied_);
      w_.on_snapshot_loaded(*this);
    }
    // As the kernel: the membership the snapshot holds, else the configured one.
    set_members(membership_of(applied_, initial_));
    pending_ = 0;
    if (w_.opt.consensus == "raft") {
      auto r = std::make_unique<raft::Raft>(w_.rng());
      raft_ = r.get();
      r->set_event_sink([this](const raft::RaftEvent& e) { w_.on_raft_event(e); });
      consensus_ = std::move(r);
    } else {
      auto z = std::make_unique<zab::Zab>(w_.rng());
      zab_ = z.get();
      z->set_event_sink([this](const zab::ZabEvent& e) { w_.on_zab_event(e); });
      consensus_ = std::move(z);
    }
    if (w_.opt.election == "static") {
      auto e = std::make_unique<static_election::StaticElection>();
      e->set_leader(1);
      election_ = std::make_unique<NotingElection>(*this, std::move(e));
    } else {
      auto e = std::make_unique<fle::FastLeaderElection>();
      e->set_options(fle::FleOptions{50, 50, 800});
      election_ = std::make_unique<NotingElection>(*this, std::move(e));
    }
    config_.ints.clear();
    if (w_.opt.election != "static") check(election_->init(*this));
    if (raft_) {
      // Raft elects by itself: no election plugin, as in the kernel.
      election_.reset();
      config_.ints = {{"tick_ms", 100}, {"election_ticks", 5}};
      check(raft_->init(*this));
      raft::RaftOptions ro = raft_->options();
      ro.retry_ms = 50;
      ro.recent_entries = static_cast<size_t>(w_.between(0, 20));  // small, to read the log often
      ro.max_append_bytes = static_cast<size_t>(w_.between(1, 4)) * 64;  // a few entries an append
      ro.max_inflight_bytes = ro.max_append_bytes * static_cast<size_t>(w_.between(1, 8));
      // raft bounds what a handover holds, as what a follower forwards, by
      // max_forwarded (writes, syncs) and max_forwarded_bytes.
      if (w_.opt.max_held_writes) ro.max_forwarded = w_.opt.max_held_writes;
      if (w_.opt.max_held_bytes) ro.max_forwarded_bytes = w_.opt.max_held_bytes;
      if (w_.opt.max_sync_bytes) ro.max_sync_bytes = w_.opt.max_sync_bytes;
      // A snapshot in many small pieces, a few at a time.
      ro.snap_piece_bytes = static_cast<size_t>(w_.between(256, 4096));
      ro.snap_window_bytes = ro.snap_piece_bytes * static_cast<size_t>(w_.between(2, 8));
      raft_->set_options(ro);
    } else {
      config_.ints = {{"tick_ms", 100}, {"init_limit", 10}, {"sync_limit", 5}};
      check(zab_->init(*this));
      zab::ZabOptions zo = zab_->options();
      zo.retry_ms = 50;
      zo.recent_entries = static_cast<size_t>(w_.between(0, 20));  // small, to read the log often
      zo.quorum_sync = w_.opt.quorum_sync;
      if (w_.opt.max_held_writes) zo.max_held_writes = w_.opt.max_held_writes;
      if (w_.opt.max_held_bytes) zo.max_held_bytes = w_.opt.max_held_bytes;
      if (w_.opt.max_sync_bytes) zo.max_sync_bytes = w_.opt.max_sync_bytes;
      // A SNAP in many small pieces, a few at a time, interleaved with the
      // writes that follow it; and a learner that sometimes cannot keep
      // what arrives meanwhile.
      zo.snap_piece_bytes = static_cast<size_t>(w_.between(256, 4096));
      zo.snap_window_bytes = zo.snap_piece_bytes * static_cast<size_t>(w_.between(2, 8));
      zo.max_deferred_bytes = w_.uniform() < 0.25 ? static_cast<size_t>(w_.between(100, 1000))
                                                  : static_cast<size_t>(w_.between(4, 256)) << 10;
      zab_->set_options(zo);
    }
    sdk::RecoveredState r;
    r.accepted_epoch = disk_.accepted_epoch;
    r.current_epoch = disk_.current_epoch;
    if (!disk_.snapshots.empty()) {
      r.snapshot_zxid = disk_.snapshots.rbegin()->first;
      auto held = std::make_shared<std::string>(disk_.snapshots.rbegin()->second);
      r.snapshot = *held;
      r.snapshot_holder = held;
    }
    r.last_zxid = std::max(r.snapshot_zxid, disk_.log.empty() ? Zxid{0} : disk_.log.back().zxid);
    storage_ = std::make_unique<Storage>(*this);
    check(consensus_->start(*this, r));
    schedule_tick();
  }

  // Loses the process: what was not durable is gone, except perhaps a prefix
  // the disk had written anyway.
  void crash(bool keep_some_tail) {
    *alive_ = false;
    consensus_.reset();
    zab_ = nullptr;
    raft_ = nullptr;
    election_.reset();
    storage_.reset();
    listeners_[0] = listeners_[1] = nullptr;
    size_t keep =
        keep_some_tail && !disk_.pending.empty()
            ? static_cast<size_t>(w_.between(0, static_cast<int64_t>(disk_.pending.size())))
            : 0;
    for (size_t i = 0; i < keep; ++i) disk_.log.push_back(disk_.pending[i]);
    disk_.pending.clear();
  }

  void deliver(ServerId from, PeerChannel ch, BytesView msg) {
    if (auto* l = listeners_[static_cast<int>(ch)]) l->on_peer_message(from, msg);
  }
  void link_event(ServerId peer) {
    for (auto* l : listeners_)
      if (l) l->on_peer_link(peer, false);
  }

  bool disk_full_ = false;  // appends are refused (no_space) while set

  // What the consensus module said of it (unavailable when down).
  Status submit(const std::string& body) {
    if (!consensus_) return {Errc::unavailable, "down"};
    return consensus_->submit(body);
  }
  // A client's sync: `done` gets its status and the writes applied here
  // when it was answered.
  void sync(std::function<void(const Status&)> done) {
    if (consensus_) consensus_->sync(std::move(done));
  }
  void snapshot() { take_snapshot_now(); }
  void transfer(ServerId to, bool leaving, std::function<void(const Status&)> done) {
    if (consensus_) consensus_->transfer_leadership(to, leaving, std::move(done));
  }

  // ---- PluginHost
  sdk::Executor& executor() override { return executor_; }
  const sdk::Clock& clock() override { return clock_; }
  sdk::Logger& logger() override { return logger_; }
  sdk::Metrics& metrics() override { return metrics_; }
  const sdk::ConfigTable& config() override { return config_; }
  const sdk::ServerInfo& server() override { return info_; }

  // ---- ConsensusHost
  sdk::Storage& storage() override { return *storage_; }
  sdk::PeerNetwork* peers() override { return this; }
  sdk::Election* election() override { return election_.get(); }
  void apply(const LogEntry& e) override {
    if (!applied_.empty() && e.zxid <= applied_.back().first)
      w_.fail("server " + std::to_string(id_) + " applied zxid " + std::to_string(e.zxid) +
              " after " + std::to_string(applied_.back().first));
    applied_.emplace_back(e.zxid, e.body);
    w_.on_apply(*this, e);
    if (e.zxid >= pending_) pending_ = 0;
    if (e.body.rfind("M:", 0) == 0) {
      set_members(e.body);
      take_snapshot_now();  // as the kernel does after a reconfig
    } else if (++since_snapshot_ >= snapshot_every_) {
      take_snapshot_now();
    }
  }
  // A write refused is never applied, anywhere, and one applied is never
  // refused.
  void rejected(const LogEntry& e, const Status&) override {
    if (e.body.rfind("w", 0) != 0) return;
    if (w_.applied_writes.count(e.body))
      w_.fail("server " + std::to_string(id_) + " was told '" + e.body +
              "' was refused, but it was applied");
    w_.refused_writes.insert(e.body);
    w_.settle(e.body, false);
  }
  void take_snapshot(std::function<void(const sdk::Result<Zxid>&)> done) override {
    take_snapshot_now();
    if (done) done(applied_.empty() ? Zxid{0} : applied_.back().first);
  }
  Status load_snapshot(Zxid zxid, BytesView snapshot) override {
    std::vector<std::pair<Zxid, Bytes>> state;
    if (!decode_state(snapshot, state)) return {Errc::corrupt, "bad snapshot"};
    ++w_.result.snaps_loaded;
    if (!state.empty() && state.back().first != zxid)
      w_.fail("a snapshot's zxid does not match its content");
    applied_ = std::move(state);
    w_.on_snapshot_loaded(*this);
    std::string m = membership_of(applied_, "");
    if (!m.empty()) set_members(m);
    return {};
  }
  void role_changed(Role role, ServerId leader, uint32_t epoch) override {
    pending_ = 0;
    if (role == Role::looking) ++connections_;
    if (role != Role::looking && role_seen_ != Role::looking && leader != leader_seen_)
      w_.result.kept++;
    role_seen_ = role;
    leader_seen_ = leader;
    if (role != Role::looking) {
      leaders_seen_.push_back({w_.now, leader});
      if (leaders_seen_.size() > 64) leaders_seen_.erase(leaders_seen_.begin());
    }
    w_.on_role(*this, role, epoch);
  }
  // A request "R:<id>" becomes the membership that toggles <id> between
  // participant and observer ("M:" + one letter per server), or "X" (a
  // refusal that changes nothing) when one is pending, no participant would
  // be left, or the new voters' quorum is not synced with this leader
  // (observers count: they acknowledge from a change that makes them
  // voters on), as the kernel refuses a reconfig.
  void prepare(LogEntry& e) override {
    if (e.body.rfind("R:", 0) != 0) return;
    size_t who = std::stoul(e.body.substr(2));
    std::string next = flags_;
    if (who >= 1 && who <= next.size()) next[who - 1] = next[who - 1] == 'p' ? 'o' : 'p';
    size_t voters = static_cast<size_t>(std::count(next.begin(), next.end(), 'p'));
    size_t synced = next[id_ - 1] == 'p' ? 1 : 0;
    for (const auto& l : consensus_->status().learners)
      if (l.synced && next[l.id - 1] == 'p') ++synced;
    if (pending_ || voters < 1 || synced < voters / 2 + 1) {
      e.body = "X" + e.body;
      return;
    }
    e.body = "M:" + next;
    pending_ = e.zxid;
  }
  std::optional<std::vector<sdk::PeerSpec>> membership_in(const LogEntry& e) override {
    if (e.body.rfind("M:", 0) != 0) return std::nullopt;
    return specs(e.body.substr(2));
  }
  Bytes take_session_activity() override { return {}; }
  void session_activity(ServerId, BytesView) override {}

  // ---- PeerNetwork
  ServerId self() const override { return id_; }
  std::vector<sdk::PeerSpec> members() const override { return members_; }
  const std::string& flags() const { return flags_; }
  void set_initial(std::string flags) { initial_ = std::move(flags); }

  static std::vector<sdk::PeerSpec> specs(const std::string& flags) {
    std::vector<sdk::PeerSpec> out;
    for (size_t i = 0; i < flags.size(); ++i) {
      sdk::PeerSpec p;
      p.id = static_cast<ServerId>(i + 1);
      p.host = "sim";
      p.observer = flags[i] == 'o';
      out.push_back(p);
    }
    return out;
  }
  // The last membership in `state` ("M:..." without the prefix), else `fallback`.
  static std::string membership_of(const std::vector<std::pair<Zxid, Bytes>>& state,
                                   const std::string& fallback) {
    for (auto it = state.rbegin(); it != state.rend(); ++it)
      if (it->second.rfind("M:", 0) == 0) return it->second.substr(2);
    return fallback;
  }
  void send(ServerId to, PeerChannel ch, Bytes msg) override {
    w_.send(id_, to, ch, std::move(msg));
  }
  void disconnect(ServerId peer, PeerChannel ch) override { w_.disconnect(id_, peer, ch); }
  void subscribe(PeerChannel ch, sdk::PeerListener* l) override {
    listeners_[static_cast<int>(ch)] = l;
  }

 private:
  void check(const Status& st) {
    if (!st) w_.fail("server " + std::to_string(id_) + ": " + st.to_string());
  }
  void set_members(const std::string& m) {
    flags_ = m.rfind("M:", 0) == 0 ? m.substr(2) : m;
    members_ = specs(flags_);
  }

  static Bytes encode_state(const std::vector<std::pair<Zxid, Bytes>>& s) {
    Bytes out;
    common::MsgpackWriter w(out);
    w.array(static_cast<uint32_t>(s.size()));
    for (const auto& [z, b] : s) {
      w.array(2);
      w.integer(z);
      w.bytes(b);
    }
    return out;
  }
  static bool decode_state(BytesView in, std::vector<std::pair<Zxid, Bytes>>& out) {
    common::MsgpackReader r(in);
    uint32_t n = r.array();
    out.clear();
    for (uint32_t i = 0; i < n && r.ok(); ++i) {
      if (r.array() != 2) return false;
      Zxid z = r.integer();
      out.emplace_back(z, std::string(r.bytes()));
    }
    return r.ok() && r.at_end();
  }

  // The kernel's snapshots: the applied state, written in the background.
  void take_snapshot_now() {
    since_snapshot_ = 0;
    if (applied_.empty() || !storage_) return;
    Zxid z = applied_.back().first;
    Bytes bytes = encode_state(applied_);
    w_.events.at(
        w_.now + w_.between(1, 30),
        [this, alive = alive_, z, bytes = std::move(bytes)] {
          if (!*alive) return;
          disk_.snapshots[z] = bytes;
          disk_.retire();
        },
        id_);
  }

  void schedule_tick() {
    w_.events.at(
        w_.now + 10,
        [this, alive = alive_] {
          if (!*alive) return;
          consensus_->tick(w_.now);
          schedule_tick();
        },
        id_);
  }

  class Clock final : public sdk::Clock {
   public:
    explicit Clock(World& w) : w_(w) {}
    int64_t steady_ms() const override { return w_.now; }
    int64_t wall_ms() const override { return 1700000000000 + w_.now; }

   private:
    World& w_;
  };

  class Logger final : public sdk::Logger {
   public:
    Logger(World& w, ServerId id) : w_(w), id_(id) {}
    bool enabled(sdk::LogLevel level) const override { return level >= sdk::LogLevel::info; }
    void log(sdk::LogLevel, std::string_view m) override { w_.log(id_, m); }

   private:
    World& w_;
    ServerId id_;
  };

  class Executor final : public sdk::Executor {
   public:
    explicit Executor(Node& n) : n_(n) {}
    void post(std::function<void()> fn) override {
      n_.w_.events.at(
          n_.w_.now,
          [alive = n_.alive_, fn = std::move(fn)] {
            if (*alive) fn();
          },
          n_.id_);
    }
    class SimTimer final : public Timer {
     public:
      std::shared_ptr<bool> live = std::make_shared<bool>(true);
      void cancel() override { *live = false; }
      ~SimTimer() override { *live = false; }
    };
    std::unique_ptr<Timer> schedule(std::chrono::milliseconds d,
                                    std::function<void()> fn) override {
      auto t = std::make_unique<SimTimer>();
      n_.w_.events.at(
          n_.w_.now + d.count(),
          [alive = n_.alive_, live = t->live, fn = std::move(fn)] {
            if (*alive && *live) fn();
          },
          n_.id_);
      return t;
    }
    boost::asio::io_context& io_context() override { std::abort(); }

   private:
    Node& n_;
  };

  // The sdk::Storage over this node's Disk, with the latency the world picks.
  class Storage final : public sdk::Storage {
   public:
    explicit Storage(Node& n) : n_(n) {}
    Status init(sdk::PluginHost&) override { return {}; }
    sdk::Result<sdk::RecoveredState> open() override { return sdk::RecoveredState{}; }
    Status read_log(Zxid after, const std::function<bool(const LogEntry&)>& visit) override {
      if (after < n_.disk_.dropped_upto)
        return {Errc::not_found, "the entries after " + std::to_string(after) + " are purged"};
      for (const LogEntry& e : n_.disk_.log)
        if (e.zxid > after && !visit(e)) break;
      return {};
    }
    void append(const LogEntry& e, AppendDone done) override {
      Disk& d = n_.disk_;
      if (n_.disk_full_ || refusing_) {
        // Refused, in order with the appends before it; as the wal, every
        // append made before the refusal is heard is refused too, so that
        // the log never has a hole.
        refusing_ = true;
        int64_t at = std::max(last_ack_, n_.w_.now + n_.w_.between(0, n_.disk_delay_));
        last_ack_ = at;
        n_.w_.events.at(
            at,
            [this, alive = n_.alive_, done = std::move(done)] {
              if (!*alive) return;  // (a crash took this storage with it)
              refusing_ = false;    // heard: appends from now on are tried again (as the wal)
              done(Status(Errc::no_space, "no space left on the simulated disk"));
            },
            n_.id_);
        return;
      }
      Zxid last = !d.pending.empty() ? d.pending.back().zxid
                  : d.log.empty()    ? 0
                                     : d.log.back().zxid;
      if (e.zxid <= last)
        n_.w_.fail("server " + std::to_string(n_.id_) + " appended zxid " + std::to_string(e.zxid) +
                   " after " + std::to_string(last));
      d.pending.push_back(e);
      int64_t at = std::max(last_ack_, n_.w_.now + n_.w_.between(0, n_.disk_delay_));
      last_ack_ = at;
      Zxid z = e.zxid;
      n_.w_.events.at(
          at,
          [this, alive = n_.alive_, z, done = std::move(done)] {
            if (!*alive) return;
            Disk& d = n_.disk_;
            // Durable now (unless a truncation made it durable, or dropped it, first).
            while (!d.pending.empty() && d.pending.front().zxid <= z) {
              d.log.push_back(std::move(d.pending.front()));
              d.pending.pop_front();
            }
            done(Status());
          },
          n_.id_);
    }
    bool refusing_ = false;  // a refusal not yet heard: later appends are refused too
    Status truncate_after(Zxid z) override {
      Disk& d = n_.disk_;
      // As the wal: wait for writes in flight, then cut.
      for (auto& e : d.pending) d.log.push_back(std::move(e));
      d.pending.clear();
      while (!d.log.empty() && d.log.back().zxid > z) d.log.pop_back();
      return {};
    }
    bool snapshot_due() const override { return false; }
    sdk::Result<std::unique_ptr<sdk::SnapshotSink>> begin_snapshot(Zxid z) override {
      return std::unique_ptr<sdk::SnapshotSink>(std::make_unique<Sink>(n_, z));
    }
    // Reads a copy in pieces of at most 4093 bytes, whatever is asked: a
    // reader may return less than it was asked for.
    class Reader final : public sdk::SnapshotReader {
     public:
      Reader(Zxid z, Bytes b) : z_(z), b_(std::move(b)) {}
      Zxid zxid() const override { return z_; }
      uint64_t size() const override { return b_.size(); }
      sdk::Result<BytesView> next(size_t max) override {
        BytesView piece =
            BytesView(b_).substr(at_, std::min<size_t>(std::max<size_t>(max, 1), 4093));
        at_ += piece.size();
        return piece;
      }

     private:
      Zxid z_;
      Bytes b_;
      size_t at_ = 0;
    };
    sdk::Result<std::unique_ptr<sdk::SnapshotReader>> read_snapshot() override {
      if (n_.disk_.snapshots.empty()) return Status{Errc::not_found, "no snapshot"};
      const auto& [z, b] = *n_.disk_.snapshots.rbegin();
      return std::unique_ptr<sdk::SnapshotReader>(std::make_unique<Reader>(z, b));
    }
    Zxid latest_snapshot_zxid() const override {
      return n_.disk_.snapshots.empty() ? 0 : n_.disk_.snapshots.rbegin()->first;
    }
    Status save_epochs(uint32_t a, uint32_t c) override {
      if (n_.disk_full_) return {Errc::no_space, "no space left on the simulated disk"};
      n_.disk_.accepted_epoch = a;
      n_.disk_.current_epoch = c;
      return {};
    }
    Status purge(int) override { return {}; }
    int64_t log_bytes() const override { return 0; }
    int64_t snapshot_bytes() const override { return 0; }
    void close() override {}

   private:
    class Sink final : public sdk::SnapshotSink {
     public:
      Sink(Node& n, Zxid z) : n_(n), z_(z) {}
      Status write(BytesView chunk) override {
        data_.append(chunk);
        return {};
      }
      void commit(std::function<void(const Status&)> done) override {
        n_.w_.events.at(
            n_.w_.now + n_.w_.between(1, 30),
            [&n = n_, alive = n_.alive_, z = z_, data = std::move(data_), done = std::move(done)] {
              if (!*alive) return;
              n.disk_.snapshots[z] = data;
              n.disk_.retire();
              done(Status());
            },
            n_.id_);
      }
      void abort() override {}

     private:
      Node& n_;
      Zxid z_;
      Bytes data_;
    };
    Node& n_;
    int64_t last_ack_ = 0;
  };

  World& w_;
  ServerId id_;
  std::string initial_;  // the configured membership: one 'p' or 'o' per server
  std::string flags_;    // the membership in effect here
  std::vector<sdk::PeerSpec> members_;
  Zxid pending_ = 0;  // a membership change this leader proposed, not yet applied
  uint64_t incarnation_ = 0;
  uint64_t connections_ = 0;
  Role role_seen_ = Role::looking;  // as role_changed last said
  ServerId leader_seen_ = 0;
  std::vector<std::pair<int64_t, ServerId>> leaders_seen_;  // (when, leader), the last few
  Disk disk_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(false);
  std::vector<std::pair<Zxid, Bytes>> applied_;
  int64_t since_snapshot_ = 0, snapshot_every_ = 20, disk_delay_ = 8;
  sdk::ServerInfo info_;
  MapConfig config_;
  NullMetrics metrics_;
  Clock clock_{w_};
  Logger logger_{w_, id_};
  Executor executor_{*this};
  std::unique_ptr<Storage> storage_;
  // The election as Zab sees it: the real one, with each candidacy noted
  // on the way in (for `expect vote`).
  struct NotingElection final : sdk::Election {
    NotingElection(Node& n, std::unique_ptr<sdk::Election> inner) : n(n), inner(std::move(inner)) {}
    sdk::Status init(sdk::PluginHost& h) override { return inner->init(h); }
    sdk::Status start(sdk::ElectionHost& h) override { return inner->start(h); }
    void look(const sdk::Candidacy& c) override {
      n.candidacy_ = c;
      inner->look(c);
    }
    void settled(const sdk::ElectionResult& r) override { inner->settled(r); }
    void tick(int64_t now) override { inner->tick(now); }
    void stop() override { inner->stop(); }
    ServerId fixed_leader() const override { return inner->fixed_leader(); }
    Node& n;
    std::unique_ptr<sdk::Election> inner;
  };
  std::unique_ptr<sdk::Election> election_;
  sdk::Candidacy candidacy_;
  std::unique_ptr<sdk::Consensus> consensus_;
  zab::Zab* zab_ = nullptr;
  raft::Raft* raft_ = nullptr;
  sdk::PeerListener* listeners_[2] = {nullptr, nullptr};
};

// ---------------------------------------------------------------- network

void World::send(ServerId from, ServerId to, PeerChannel ch, Bytes msg) {
  if (to < 1 || to > static_cast<ServerId>(nodes.size()) || to == from) return;
  if (opt.capture && captured < opt.capture_limit && msg.size() <= 0xffff) {
    ++captured;
    *opt.capture += static_cast<char>(to);
    *opt.capture += static_cast<char>((from << 1) | (ch == PeerChannel::quorum ? 1 : 0));
    *opt.capture += static_cast<char>(msg.size() >> 8);
    *opt.capture += static_cast<char>(msg.size() & 0xff);
    *opt.capture += msg;
  }
  if (!connected(from, to)) return;
  if (faults && uniform() < loss) return;
  auto key = std::make_tuple(from, to, static_cast<int>(ch));
  uint64_t epoch = link_epoch[key];
  // A restart on either side ends the connection that carried the message.
  uint64_t from_inc = nodes[from - 1]->incarnation(), to_inc = nodes[to - 1]->incarnation();
  int copies = faults && uniform() < opt.duplicate ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    int64_t at = now + between(1, 15);
    if (!(faults && uniform() < opt.reorder)) {
      at = std::max(at, last_delivery[key]);
      last_delivery[key] = at;
    }
    events.at(
        at,
        [this, from, to, ch, key, epoch, msg, from_inc, to_inc] {
          Node& n = *nodes[to - 1];
          if (!n.up() || !nodes[from - 1]->up() || !connected(from, to) ||
              link_epoch[key] != epoch || n.incarnation() != to_inc ||
              nodes[from - 1]->incarnation() != from_inc)
            return;
          n.deliver(from, ch, msg);
        },
        to);
  }
}

void World::link_down(ServerId at, ServerId peer, int64_t delay) {
  events.at(
      now + delay,
      [this, at, peer] {
        if (nodes[at - 1]->up()) nodes[at - 1]->link_event(peer);
      },
      at);
}

void World::disconnect(ServerId from, ServerId to, PeerChannel ch) {
  if (to < 1 || to > static_cast<ServerId>(nodes.size())) return;
  link_epoch[std::make_tuple(from, to, static_cast<int>(ch))]++;
  link_epoch[std::make_tuple(to, from, static_cast<int>(ch))]++;
  if (connected(from, to)) link_down(to, from, between(1, 10));
}

// ---------------------------------------------------------------- checks

void World::on_apply(Node& n, const LogEntry& e) {
  size_t i = n.applied().size() - 1;
  if (i < canonical.size()) {
    const LogEntry& c = canonical[i];
    if (c.zxid != e.zxid || c.body != e.body)
      fail("server " + std::to_string(n.id()) + " applied zxid " + std::to_string(e.zxid) + " '" +
           e.body + "' at position " + std::to_string(i) + " where the others applied zxid " +
           std::to_string(c.zxid) + " '" + c.body + "'");
    return;
  }
  if (i != canonical.size()) fail("server " + std::to_string(n.id()) + " skipped entries");
  if (e.body.rfind("R:", 0) == 0)
    fail("a reconfig request reached the log undecided: '" + e.body + "'");
  auto check_quorum = [&](const std::string& flags, const char* which) {
    size_t holders = 0, voters = 0;
    for (auto& m : nodes) {
      if (flags[m->id() - 1] != 'p') continue;
      ++voters;
      if (m->disk().holds(e)) ++holders;
    }
    if (holders < voters / 2 + 1)
      fail("server " + std::to_string(n.id()) + " applied zxid " + std::to_string(e.zxid) +
           " held durably by " + std::to_string(holders) + " of the " + std::to_string(voters) +
           " " + which + " voters (" + flags + "), fewer than a quorum");
  };
  check_quorum(membership, "current");
  if (e.body.rfind("M:", 0) == 0) {
    check_quorum(e.body.substr(2), "new");
    membership = e.body.substr(2);
    result.reconfigs++;
  }
  settle(e.body, true);
  if (auto it = submitted.find(e.body); it != submitted.end()) {
    auto& [where, seq] = it->second;
    uint64_t& last = last_ordered[where];
    if (seq < last)
      fail("writes submitted at server " + std::to_string(where.first) +
           " were applied out of order: '" + e.body + "' after 'w" + std::to_string(last) + "'");
    last = seq;
    submitted.erase(it);
  }
  canonical.push_back(e);
  // The first to apply an entry is most often the leader that committed
  // it (it applies as it commits); else the newest term bounds it.
  raft::Raft* r = n.raft();
  committed_by.push_back(r && r->state() == raft::Raft::State::leader
                             ? r->term()
                             : (raft_terms.empty() ? 0 : raft_terms.rbegin()->first));
  // A client's write is applied once at most.
  if (e.body.rfind("w", 0) == 0 && !applied_writes.insert(e.body).second)
    fail("the write '" + e.body + "' was applied twice");
  if (refused_writes.count(e.body))
    fail("the write '" + e.body + "' was applied after it was refused");
}

void World::on_snapshot_loaded(Node& n) {
  const auto& a = n.applied();
  if (a.size() > canonical.size())
    fail("server " + std::to_string(n.id()) + " loaded a snapshot beyond what was applied");
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].first != canonical[i].zxid || a[i].second != canonical[i].body)
      fail("server " + std::to_string(n.id()) + " loaded a snapshot that differs at position " +
           std::to_string(i));
}

// Raft's own invariants. One leader per term: checked as each is elected
// (before it serves). Leader completeness: an elected leader's log holds
// every entry committed in an earlier term (applied anywhere while only
// earlier terms had leaders) that its snapshot does not.
void World::on_raft_event(const raft::RaftEvent& e) {
  if (e.kind == raft::RaftEvent::Kind::snapshot_sent ||
      e.kind == raft::RaftEvent::Kind::snapshot_resumed) {
    result.snaps++;
    if (e.kind == raft::RaftEvent::Kind::snapshot_resumed) result.snaps_resumed++;
    return;
  }
  if (e.kind != raft::RaftEvent::Kind::elected) return;
  auto [it, fresh] = raft_terms.emplace(e.term, e.peer);
  if (!fresh)
    fail("two leaders elected in term " + std::to_string(e.term) + ": servers " +
         std::to_string(it->second) + " and " + std::to_string(e.peer));
  const Disk& d = nodes[e.peer - 1]->disk();
  Zxid floor = d.snapshots.empty() ? 0 : d.snapshots.rbegin()->first;
  for (size_t i = 0; i < canonical.size(); ++i) {
    const LogEntry& c = canonical[i];
    // (A leader of a term elected late, after a later term committed
    // entries, need not hold those: Raft's property is about higher terms.)
    if (c.zxid <= floor || committed_by[i] >= e.term) continue;
    bool held =
        d.holds(c) || std::any_of(d.pending.begin(), d.pending.end(), [&](const LogEntry& p) {
          return p.zxid == c.zxid && p.body == c.body;
        });
    if (!held)
      fail("server " + std::to_string(e.peer) + " was elected in term " + std::to_string(e.term) +
           " without the committed entry " + std::to_string(c.zxid) + " '" + c.body + "'");
  }
}

// Log matching, on what each server wrote (durable or in flight) above both
// servers' newest snapshots: two logs that hold the same zxid hold the same
// entry there, and the same entries before it.
void World::check_log_matching() {
  auto suffix = [](const Disk& d, Zxid floor) {
    std::vector<const LogEntry*> out;
    for (const auto& e : d.log)
      if (e.zxid > floor) out.push_back(&e);
    for (const auto& e : d.pending)
      if (e.zxid > floor) out.push_back(&e);
    return out;
  };
  for (size_t a = 0; a < nodes.size(); ++a)
    for (size_t b = a + 1; b < nodes.size(); ++b) {
      const Disk& da = nodes[a]->disk();
      const Disk& db = nodes[b]->disk();
      Zxid floor = std::max(da.snapshots.empty() ? 0 : da.snapshots.rbegin()->first,
                            db.snapshots.empty() ? 0 : db.snapshots.rbegin()->first);
      auto la = suffix(da, floor), lb = suffix(db, floor);
      // The last zxid both hold.
      size_t i = 0, j = 0, ca = 0, cb = 0;
      bool common = false;
      size_t matches = 0;
      while (i < la.size() && j < lb.size()) {
        if (la[i]->zxid == lb[j]->zxid) {
          ++matches;
          if (la[i]->body != lb[j]->body)
            fail("servers " + std::to_string(a + 1) + " and " + std::to_string(b + 1) +
                 " logged different entries at zxid " + std::to_string(la[i]->zxid));
          common = true;
          ca = i;
          cb = j;
          ++i;
          ++j;
        } else if (la[i]->zxid < lb[j]->zxid) {
          ++i;
        } else {
          ++j;
        }
      }
      if (common && (ca + 1 != matches || cb + 1 != matches)) {
        auto list = [](const std::vector<const LogEntry*>& l, size_t upto) {
          std::string out;
          for (size_t k = 0; k <= upto && k < l.size(); ++k)
            out += " " + std::to_string(l[k]->zxid >> 32) + ":" +
                   std::to_string(l[k]->zxid & 0xffffffff);
          return out;
        };
        fail("servers " + std::to_string(a + 1) + " and " + std::to_string(b + 1) +
             " both logged zxid " + std::to_string(la[ca]->zxid) +
             " after different entries (above " + std::to_string(floor) + ":" + list(la, ca) +
             " and" + list(lb, cb) + ")");
      }
    }
}

void World::on_role(Node& n, Role role, uint32_t epoch) {
  if (role != Role::leading) return;
  auto [it, fresh] = epoch_leaders.emplace(epoch, n.id());
  if (!fresh)
    fail("two leaders established in epoch " + std::to_string(epoch) + ": servers " +
         std::to_string(it->second) + " and " + std::to_string(n.id()));
  result.elections++;
}

}  // namespace

SimResult run(uint64_t seed, const SimOptions& opt) {
  World w(seed, opt);
  int n = opt.voters + opt.observers;
  for (int i = 1; i <= n; ++i) w.membership += i > opt.voters ? 'o' : 'p';
  for (int i = 1; i <= n; ++i) {
    w.nodes.push_back(std::make_unique<Node>(w, i));
    w.nodes.back()->set_initial(w.membership);
  }
  w.group.assign(static_cast<size_t>(n), 0);
  w.loss = opt.loss;
  uint64_t writes = 0;
  try {
    for (auto& node : w.nodes) node->boot();
    std::function<void(Node&, uint64_t)> ask_sync;
    std::function<void()> write = [&] {
      if (!w.faults) return;
      Node& target = *w.nodes[static_cast<size_t>(w.between(0, n - 1))];
      if (w.events.paused(target.id()))
        ;  // a stopped process takes no request
      else if (opt.reconfig && w.uniform() < 0.02)
        (void)target.submit("R:" + std::to_string(w.between(1, n)));
      else {
        std::string body = "w" + std::to_string(++writes);
        w.submitted[body] = {{target.id(), target.incarnation()}, writes};
        World::Connection at{target.id(), target.incarnation(), target.connections()};
        // (The kernel takes no client's write while `looking`: it serves
        // no connection then. This one submits to the module anyway.)
        bool serving = target.role() != Role::looking;
        if (target.submit(body) && serving) {
          w.taken_at[body] = at;
          w.outstanding[at].insert(writes);
        }
      }
      // Quorum syncs: a sync answered at a server has it applied at least
      // what was committed anywhere when the sync was asked (sync + read is
      // linearizable), whatever the pauses and partitions.
      Node* asking =
          opt.quorum_sync ? w.nodes[static_cast<size_t>(w.between(0, n - 1))].get() : nullptr;
      if (asking && asking != &target && asking->up() && w.uniform() < 0.2) {
        Node& asked = *asking;
        uint64_t inc = asked.incarnation();
        w.events.at(
            w.now, [&ask_sync, &asked, inc] { ask_sync(asked, inc); }, asked.id(), true);
      }
      int64_t next = w.between(1, 2 * opt.write_interval_ms);
      // Quiet spells, so that a leader has everything it logged committed
      // when it is paused (the moment a stale sync is possible).
      if (opt.pauses && w.uniform() < 0.02) next = w.between(300, 2000);
      w.events.at(w.now + next, write);
    };
    w.events.at(1, write);
    std::function<void()> matching = [&] {
      w.check_log_matching();
      if (w.faults) w.events.at(w.now + 200, matching);
    };
    if (opt.consensus == "raft") w.events.at(100, matching);
    // A client's sync at `target`; answered, it may ask again at once from
    // its callback (a pipelined client), so the next round opens while the
    // last one is being answered. Every sync must be answered or failed.
    ask_sync = [&](Node& target, uint64_t inc) {
      if (!target.up() || target.incarnation() != inc) return;
      size_t committed = w.canonical.size();
      uint64_t id = ++w.next_sync;
      w.open_syncs[id] = {target.id(), inc, w.now};
      target.sync([&w, &ask_sync, &target, committed, inc, id](const Status& st) {
        w.open_syncs.erase(id);
        if (!st || target.incarnation() != inc) return;
        w.result.syncs++;
        if (target.applied().size() < committed)
          w.fail("a sync at server " + std::to_string(target.id()) + " was answered with " +
                 std::to_string(target.applied().size()) + " entries applied, but " +
                 std::to_string(committed) + " were committed before it was asked");
        if (w.faults && w.uniform() < 0.5) ask_sync(target, inc);
      });
    };
    // Leader handovers, asked of random servers.
    std::function<void()> ask_transfer = [&] {
      if (!w.faults) return;
      Node& asked = *w.nodes[static_cast<size_t>(w.between(0, n - 1))];
      if (asked.up() && !w.events.paused(asked.id())) {
        ServerId to = w.uniform() < 0.3 ? 0 : static_cast<ServerId>(w.between(1, n));
        // A leader stopped by SIGTERM: it hands over, then stops.
        bool leaving = asked.role() == Role::leading && w.uniform() < 0.3;
        uint64_t inc = asked.incarnation(), id = ++w.next_transfer;
        w.open_transfers[id] = {asked.id(), inc, w.now};
        w.result.transfers++;
        w.log(asked.id(), "SIM transfer to " + std::to_string(to) + (leaving ? ", then stop" : ""));
        int64_t asked_at = w.now;
        asked.transfer(to, leaving, [&w, &asked, inc, id, to, leaving, asked_at](const Status& st) {
          w.open_transfers.erase(id);
          if (asked.incarnation() != inc) return;
          if (leaving && asked.up() && w.faults) {
            w.log(asked.id(), "SIM stop after the handover");
            w.events.resume(asked.id(), w.now);
            asked.crash(false);
            for (auto& m : w.nodes)
              if (m->id() != asked.id()) w.link_down(m->id(), asked.id(), w.between(1, 5));
            w.events.at(w.now + w.between(100, 2000), [&w, &asked] {
              if (!asked.up() && w.faults) {
                w.log(asked.id(), "SIM restart");
                asked.boot();
              }
            });
          }
          if (!st) return;
          w.result.transfers_done++;
          ServerId leader = asked.consensus() ? asked.consensus()->leader() : 0;
          // (0: it lost that leader since the answer was posted; or it moved
          // on to another through a later handover, having served under it)
          if (to != 0 && leader != 0 && leader != to && !asked.served_under(to, asked_at))
            w.fail("a handover to server " + std::to_string(to) + " asked at server " +
                   std::to_string(asked.id()) + " was answered ok under leader " +
                   std::to_string(leader));
        });
      }
      w.events.at(w.now + w.between(100, 1500), ask_transfer);
    };
    if (opt.transfers) w.events.at(w.between(300, 1000), ask_transfer);
    // Faults.
    std::function<void()> fault = [&] {
      if (!w.faults) return;
      double r = w.uniform();
      size_t victim = static_cast<size_t>(w.between(0, n - 1));
      Node& v = *w.nodes[victim];
      if (opt.pauses && r < 0.12) {
        if (v.up() && !w.events.paused(v.id())) {
          w.log(v.id(), "SIM pause");
          w.events.pause(v.id());
          w.result.pauses++;
          w.events.at(w.now + w.between(100, 3000), [&w, &v] {
            w.log(v.id(), "SIM resume");
            w.events.resume(v.id(), w.now);
          });
        }
      } else if (r < 0.30 && opt.crashes) {
        if (v.up()) {
          w.events.resume(v.id(), w.now);  // a paused server can be killed too
          w.log(v.id(), "SIM crash");
          v.crash(w.uniform() < 0.5);
          w.result.crashes++;
          for (auto& m : w.nodes)
            if (m->id() != v.id()) w.link_down(m->id(), v.id(), w.between(1, 20));
          w.events.at(w.now + w.between(100, 3000), [&w, &v] {
            if (!v.up() && w.faults) {
              w.log(v.id(), "SIM restart");
              v.boot();
            }
          });
        }
      } else if (r < 0.45 && opt.partitions) {
        for (auto& g : w.group) g = static_cast<int>(w.between(0, 1));
        w.result.partitions++;
        std::string desc;
        for (int g : w.group) desc += std::to_string(g);
        w.log(0, "SIM partition " + desc);
        // Some cut links are noticed (a reset), others only by silence.
        for (auto& a : w.nodes)
          for (auto& b : w.nodes)
            if (a != b && !w.connected(a->id(), b->id()) && w.uniform() < 0.5)
              w.link_down(a->id(), b->id(), w.between(1, 50));
      } else if (r < 0.60) {
        std::fill(w.group.begin(), w.group.end(), 0);
        w.log(0, "SIM heal partition");
      } else if (r < 0.70) {
        w.loss = w.uniform() < 0.5 ? 0 : opt.loss * 10;
      } else if (opt.disk_full && r < 0.80) {
        if (v.up() && !v.disk_full_) {
          w.log(v.id(), "SIM disk full");
          v.disk_full_ = true;
          w.result.disk_fulls++;
          w.events.at(w.now + w.between(100, 3000), [&w, &v] {
            w.log(v.id(), "SIM disk has space again");
            v.disk_full_ = false;
          });
        }
      }
      w.events.at(w.now + w.between(50, 800), fault);
    };
    w.events.at(w.between(100, 500), fault);
    // A member gone bad.
    std::vector<std::tuple<ServerId, ServerId, PeerChannel, std::string>> hostile;
    for (size_t at = 0; at + 4 <= opt.hostile.size();) {
      auto byte = [&](size_t i) { return static_cast<uint8_t>(opt.hostile[at + i]); };
      size_t len = std::min<size_t>((size_t{byte(2)} << 8) | byte(3), opt.hostile.size() - at - 4);
      ServerId to = 1 + byte(0) % n, from = 1 + (byte(1) >> 1) % n;
      hostile.emplace_back(to, from, byte(1) & 1 ? PeerChannel::quorum : PeerChannel::election,
                           opt.hostile.substr(at + 4, len));
      at += 4 + len;
    }
    for (size_t k = 0; k < hostile.size(); ++k) {
      int64_t when = 50 + static_cast<int64_t>(k + 1) * opt.fault_ms /
                              static_cast<int64_t>(hostile.size() + 1);
      w.events.at(when, [&w, &hostile, k] {
        auto& [to, from, ch, msg] = hostile[k];
        if (to == from || !w.nodes[to - 1]->up()) return;
        w.result.hostile++;
        w.nodes[to - 1]->deliver(from, ch, msg);
      });
    }
    while (w.events.run_next(opt.fault_ms, w.now)) {
    }
    // Heal: every server up, every link whole, no loss; then one more write.
    w.faults = false;
    w.now = opt.fault_ms;
    std::fill(w.group.begin(), w.group.end(), 0);
    w.log(0, "SIM heal all");
    for (auto& node : w.nodes) {
      w.events.resume(node->id(), w.now);
      node->disk_full_ = false;
      if (!node->up()) node->boot();
    }
    std::string marker = "final";
    bool marker_sent = false;
    int64_t deadline = opt.fault_ms + opt.heal_ms;
    auto converged = [&] {
      for (auto& node : w.nodes) {
        if (node->role() == Role::looking) return false;
        const auto& a = node->applied();
        if (a.size() != w.canonical.size() || a.empty() || a.back().second != marker) return false;
      }
      return true;
    };
    while (w.now < deadline && !converged()) {
      if (!marker_sent) {
        for (auto& node : w.nodes) {
          if (node->role() == Role::leading) {
            (void)node->submit(marker);
            marker_sent = true;
          }
        }
      }
      int64_t step = w.now + 10;
      while (w.events.run_next(step, w.now)) {
      }
      w.now = step;
      // A marker lost with a leader that failed is sent again.
      if (marker_sent && (w.now - opt.fault_ms) % 3000 == 0) marker_sent = false;
    }
    if (opt.consensus == "raft") w.check_log_matching();
    if (!converged()) {
      std::string state;
      for (auto& node : w.nodes) {
        state += " s" + std::to_string(node->id()) + ":" + sdk::role_name(node->role()) + "/" +
                 std::to_string(node->applied().size()) + "/" + node->flags();
        if (node->consensus()) {
          auto st = node->consensus()->status();
          state += "/logged " + std::to_string(st.last_logged & 0xffffffff) + ",committed " +
                   std::to_string(st.last_committed & 0xffffffff);
        }
      }
      w.fail("no convergence " + std::to_string(opt.heal_ms) +
             " ms after the faults stopped (canonical " + std::to_string(w.canonical.size()) +
             " entries;" + state + ")");
    }
    // Runs the world `ms` more (the checks below look at what is left open).
    auto settle_for = [&w](int64_t ms) {
      int64_t until = w.now + ms;
      while (w.events.run_next(until, w.now)) {
      }
      w.now = until;
    };
    if (opt.transfers) {
      // A handover's answer comes within its limits (tick + init_limit).
      settle_for(3000);
      for (const auto& [id, open] : w.open_transfers) {
        const auto& [server, inc, asked] = open;
        Node& nd = *w.nodes[server - 1];
        if (nd.up() && nd.incarnation() == inc)
          w.fail("a handover asked at server " + std::to_string(server) +
                 " at t=" + std::to_string(asked) + " was never answered");
      }
    }
    {
      // A few seconds more: a write a live server took, on a connection
      // still open, and neither applied nor refused by then was lost
      // without its client knowing.
      settle_for(3000);
      for (const auto& [at, seqs] : w.outstanding) {
        const auto& [server, inc, conn] = at;
        Node& nd = *w.nodes[server - 1];
        if (!seqs.empty() && nd.up() && nd.incarnation() == inc && nd.connections() == conn)
          w.fail("the write 'w" + std::to_string(*seqs.begin()) + "' taken at server " +
                 std::to_string(server) +
                 " was neither applied nor refused, and its client's connection is still open");
      }
    }
    if (opt.quorum_sync) {
      // A few seconds more: a sync still open at a live server then was lost.
      settle_for(3000);
      for (const auto& [id, open] : w.open_syncs) {
        const auto& [server, inc, asked] = open;
        Node& nd = *w.nodes[server - 1];
        if (nd.up() && nd.incarnation() == inc)
          w.fail("a sync asked at server " + std::to_string(server) +
                 " at t=" + std::to_string(asked) + " was never answered");
      }
    }
  } catch (const Violation& v) {
    w.result.ok = false;
    w.result.failure = v.what;
    w.result.trace.assign(w.trace.begin(), w.trace.end());
  }
  w.result.committed = w.canonical.size();
  return w.result;
}

// ---------------------------------------------------------------- scenarios

std::string run_scenario(const std::string& script, uint64_t seed) {
  SimOptions opt;
  opt.loss = opt.duplicate = opt.reorder = 0;
  std::unique_ptr<World> w;
  int line_no = 0;
  auto node = [&](const std::string& s) -> Node& {
    long id = std::strtol(s.c_str(), nullptr, 10);
    if (id < 1 || id > static_cast<long>(w->nodes.size()))
      throw std::invalid_argument("no server " + s);
    return *w->nodes[static_cast<size_t>(id - 1)];
  };
  auto number = [](const std::string& s) -> int64_t {
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end) throw std::invalid_argument("not a number: " + s);
    return v;
  };
  auto bodies = [](Node& n) {
    std::vector<std::string> out;
    for (const auto& [z, b] : n.applied())
      if (b.rfind("M:", 0) != 0 && b.rfind("X", 0) != 0) out.push_back(b);
    return out;
  };
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
    return "[" + s + "]";
  };
  auto mode_name = [](zab::SyncPlan::Mode m) {
    return m == zab::SyncPlan::Mode::snap    ? "SNAP"
           : m == zab::SyncPlan::Mode::trunc ? "TRUNC"
                                             : "DIFF";
  };
  std::map<std::string, std::string>
      syncs;  // a scenario's syncs by name: pending, failed, saw [...]
  std::map<std::string, std::string> transfers;  // by name: pending, failed, ok leader T
  std::vector<std::string> refused;  // writes the consensus module refused at once, in order
  std::istringstream in(script);
  std::string line;
  try {
    while (std::getline(in, line)) {
      ++line_no;
      if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      std::istringstream words(line);
      std::vector<std::string> a;
      for (std::string x; words >> x;) a.push_back(x);
      if (a.empty()) continue;
      const std::string& cmd = a[0];
      auto need = [&](size_t n) {
        if (a.size() < n) throw std::invalid_argument(cmd + ": too few arguments");
      };
      if (cmd == "servers") {
        need(2);
        opt.voters = static_cast<int>(number(a[1]));
        for (size_t i = 2; i + 1 < a.size(); i += 2) {
          if (a[i] == "observers")
            opt.observers = static_cast<int>(number(a[i + 1]));
          else if (a[i] == "election")
            opt.election = a[i + 1];
          else if (a[i] == "quorum-sync")
            opt.quorum_sync = a[i + 1] == "on";
          else if (a[i] == "held-writes")
            opt.max_held_writes = static_cast<size_t>(number(a[i + 1]));
          else if (a[i] == "held-bytes")
            opt.max_held_bytes = static_cast<size_t>(number(a[i + 1]));
          else if (a[i] == "max-sync-bytes")
            opt.max_sync_bytes = static_cast<uint64_t>(number(a[i + 1]));
          else if (a[i] == "consensus" && (a[i + 1] == "zab" || a[i + 1] == "raft"))
            opt.consensus = a[i + 1];
          else
            throw std::invalid_argument("servers: unknown option " + a[i]);
        }
        w = std::make_unique<World>(seed, opt);
        w->faults = false;
        w->scripted = true;
        int n = opt.voters + opt.observers;
        for (int i = 1; i <= n; ++i) w->membership += i > opt.voters ? 'o' : 'p';
        for (int i = 1; i <= n; ++i) {
          w->nodes.push_back(std::make_unique<Node>(*w, i));
          w->nodes.back()->set_initial(w->membership);
        }
        w->group.assign(static_cast<size_t>(n), 0);
        for (auto& nd : w->nodes) nd->boot();
        continue;
      }
      if (!w) throw std::invalid_argument("the first command must be `servers N`");
      if (cmd == "run") {
        need(2);
        int64_t until = w->now + number(a[1]);
        while (w->events.run_next(until, w->now)) {
        }
        w->now = until;
      } else if (cmd == "partition") {
        int g = 0;
        std::vector<bool> seen(w->nodes.size(), false);
        for (size_t i = 1; i < a.size(); ++i) {
          if (a[i] == "|") {
            ++g;
            continue;
          }
          Node& nd = node(a[i]);
          w->group[static_cast<size_t>(nd.id() - 1)] = g;
          seen[static_cast<size_t>(nd.id() - 1)] = true;
        }
        for (size_t i = 0; i < seen.size(); ++i)
          if (!seen[i])
            throw std::invalid_argument("partition: server " + std::to_string(i + 1) +
                                        " is in no group");
        w->log(0, "SCENARIO " + line);
        for (auto& x : w->nodes)
          for (auto& y : w->nodes)
            if (x != y && !w->connected(x->id(), y->id())) w->link_down(x->id(), y->id(), 1);
      } else if (cmd == "heal") {
        std::fill(w->group.begin(), w->group.end(), 0);
        w->log(0, "SCENARIO heal");
      } else if (cmd == "crash") {
        need(2);
        Node& nd = node(a[1]);
        if (!nd.up()) throw std::invalid_argument("crash: server " + a[1] + " is down already");
        w->log(nd.id(), "SCENARIO crash");
        nd.crash(a.size() > 2 && a[2] == "keep-tail");
        for (auto& m : w->nodes)
          if (m->id() != nd.id()) w->link_down(m->id(), nd.id(), 1);
      } else if (cmd == "restart") {
        need(2);
        Node& nd = node(a[1]);
        if (nd.up()) throw std::invalid_argument("restart: server " + a[1] + " is up");
        w->log(nd.id(), "SCENARIO restart");
        nd.boot();
      } else if (cmd == "write") {
        need(3);
        Status st = node(a[1]).submit(a[2]);
        if (!st) {
          refused.push_back(a[2]);
          w->log(node(a[1]).id(), "SCENARIO write " + a[2] + " refused: " + st.message());
        }
      } else if (cmd == "snapshot") {
        need(2);
        node(a[1]).snapshot();
      } else if (cmd == "disk-full" || cmd == "disk-free") {
        need(2);
        Node& nd = node(a[1]);
        w->log(nd.id(), "SCENARIO " + cmd);
        nd.disk_full_ = cmd == "disk-full";
      } else if (cmd == "pause" || cmd == "resume") {
        need(2);
        Node& nd = node(a[1]);
        w->log(nd.id(), "SCENARIO " + cmd);
        if (cmd == "pause")
          w->events.pause(nd.id());
        else
          w->events.resume(nd.id(), w->now);
      } else if (cmd == "sync") {
        need(3);
        Node& nd = node(a[1]);
        std::string name = a[2];
        syncs[name] = "pending";
        nd.sync([&syncs, &nd, &bodies, &join, name](const Status& st) {
          syncs[name] = st ? "saw " + join(bodies(nd)) : "failed";
        });
      } else if (cmd == "transfer") {
        need(4);
        Node& nd = node(a[1]);
        ServerId to = a[2] == "any" ? 0 : static_cast<ServerId>(number(a[2]));
        std::string name = a[3];
        transfers[name] = "pending";
        w->log(nd.id(), "SCENARIO " + line);
        bool leaving = a.size() > 4 && a[4] == "leaving";
        nd.transfer(to, leaving, [&transfers, &nd, name](const Status& st) {
          transfers[name] =
              st ? "ok leader " + std::to_string(nd.consensus() ? nd.consensus()->leader() : 0)
                 : "failed";
        });
      } else if (cmd == "expect") {
        need(2);
        const std::string& what = a[1];
        std::string got, want;
        if (what == "leader") {
          need(3);
          std::vector<std::string> leaders;
          for (auto& nd : w->nodes)
            if (nd->role() == Role::leading) leaders.push_back(std::to_string(nd->id()));
          got = join(leaders);
          want = a[2] == "none" ? "[]" : "[" + std::to_string(node(a[2]).id()) + "]";
          // `expect leader 1|2`: any one of them.
          if (a[2].find('|') != std::string::npos) {
            want = "one of " + a[2];
            std::istringstream alternatives(a[2]);
            for (std::string one; std::getline(alternatives, one, '|');)
              if (got == "[" + std::to_string(node(one).id()) + "]") want = got;
          }
        } else if (what == "role") {
          need(4);
          got = sdk::role_name(node(a[2]).role());
          want = a[3];
        } else if (what == "vote") {
          // lowest: it stood with {id, 0, 0}, so that any other server wins;
          // own: with its log's last zxid and its epoch.
          need(4);
          const sdk::Candidacy& c = node(a[2]).last_candidacy();
          got = c.last_zxid == 0 && c.current_epoch == 0 ? "lowest" : "own";
          want = a[3];
        } else if (what == "applied") {
          need(3);
          got = join(bodies(node(a[2])));
          want = join(std::vector<std::string>(a.begin() + 3, a.end()));
        } else if (what == "sync") {
          need(4);
          ServerId id = node(a[2]).id();
          got = "none";
          for (auto it = w->syncs.rbegin(); it != w->syncs.rend(); ++it)
            if (it->first == id) {
              got = mode_name(it->second);
              break;
            }
          want = a[3];
        } else if (what == "synced") {
          need(4);
          got = syncs.count(a[2]) ? syncs[a[2]] : "no such sync";
          want = a[3];
          for (size_t i = 4; i < a.size(); ++i) want += " " + a[i];
          // `ok`: answered, whatever it saw.
          if (want == "ok" && got.rfind("saw ", 0) == 0) got = "ok";
        } else if (what == "transferred") {
          need(4);
          got = transfers.count(a[2]) ? transfers[a[2]] : "no such transfer";
          want = a[3];
          for (size_t i = 4; i < a.size(); ++i) want += " " + a[i];
        } else if (what == "refused") {
          got = join(refused);
          want = join(std::vector<std::string>(a.begin() + 2, a.end()));
        } else if (what == "committed") {
          need(3);
          got = std::to_string(w->canonical.size());
          want = a[2];
        } else if (what == "converged") {
          for (auto& nd : w->nodes)
            if (nd->up() && nd->applied().size() != w->canonical.size())
              got += "server " + std::to_string(nd->id()) + " applied " +
                     std::to_string(nd->applied().size()) + " of " +
                     std::to_string(w->canonical.size()) + "; ";
        } else {
          throw std::invalid_argument("expect: unknown check " + what);
        }
        if (got != want) {
          std::string last;
          for (size_t i = w->trace.size() > 12 ? w->trace.size() - 12 : 0; i < w->trace.size(); ++i)
            last += "\n    " + w->trace[i];
          return "line " + std::to_string(line_no) + ": " + line + ": got " +
                 (got.empty() ? "nothing" : got) + (want.empty() ? "" : ", want " + want) +
                 " (seed " + std::to_string(seed) + "); last events:" + last;
        }
      } else {
        throw std::invalid_argument("unknown command " + cmd);
      }
    }
  } catch (const Violation& v) {
    return "line " + std::to_string(line_no) + ": invariant violated: " + v.what + " (seed " +
           std::to_string(seed) + ")";
  } catch (const std::exception& e) {
    return "line " + std::to_string(line_no) + ": " + e.what();
  }
  return {};
}

}  // namespace corral::sim
