// The Zab core: start and stop, elections and phases, peer messages, time,
// and the client-facing calls. The leader's side is in zab_leader.cpp, the
// learner's in zab_learner.cpp, the log and syncs in zab_log.cpp.
#include "zab.hpp"

#include <algorithm>

#include "history.hpp"
#include "zab_internal.hpp"

namespace corral::zab {

Zab::Zab(uint64_t seed)
    : rng_(seed ? seed : std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32)) {}

Zab::~Zab() { alive_.end(); }

Status Zab::init(sdk::PluginHost& host) {
  host_ = &host;
  const sdk::ConfigTable& cfg = host.config();
  for (const std::string& key : cfg.keys())
    if (key != "tick_ms" && key != "init_limit" && key != "sync_limit" && key != "quorum_sync" &&
        key != "transfer_max_held_writes" && key != "transfer_max_held_bytes" &&
        key != "max_sync_bytes")
      return cfg.invalid(key,
                         "one of tick_ms, init_limit, sync_limit, quorum_sync, "
                         "transfer_max_held_writes, transfer_max_held_bytes, max_sync_bytes "
                         "(unknown key)");
  auto tick = cfg.get_int("tick_ms", host.server().tick_ms);
  if (!tick) return tick.status();
  if (tick.value() < 1) return cfg.invalid("tick_ms", "a positive number of milliseconds");
  auto init = cfg.get_int("init_limit", opt_.init_limit);
  if (!init) return init.status();
  if (init.value() < 1) return cfg.invalid("init_limit", "a positive number of ticks");
  auto sync = cfg.get_int("sync_limit", opt_.sync_limit);
  if (!sync) return sync.status();
  if (sync.value() < 1) return cfg.invalid("sync_limit", "a positive number of ticks");
  opt_.tick_ms = tick.value();
  opt_.init_limit = init.value();
  opt_.sync_limit = sync.value();
  auto quorum_sync = cfg.get_bool("quorum_sync", opt_.quorum_sync);
  if (!quorum_sync) return quorum_sync.status();
  opt_.quorum_sync = quorum_sync.value();
  auto held = cfg.get_int("transfer_max_held_writes", static_cast<int64_t>(opt_.max_held_writes));
  if (!held) return held.status();
  if (held.value() < 1 || held.value() > 10000000)
    return cfg.invalid("transfer_max_held_writes", "between 1 and 10000000");
  auto held_bytes =
      cfg.get_int("transfer_max_held_bytes", static_cast<int64_t>(opt_.max_held_bytes));
  if (!held_bytes) return held_bytes.status();
  if (held_bytes.value() < 1024 || held_bytes.value() > (int64_t{16} << 30))
    return cfg.invalid("transfer_max_held_bytes", "between 1024 and 17179869184");
  auto sync_bytes = cfg.get_int("max_sync_bytes", static_cast<int64_t>(opt_.max_sync_bytes));
  if (!sync_bytes) return sync_bytes.status();
  if (sync_bytes.value() < (int64_t{1} << 20) || sync_bytes.value() > (int64_t{1} << 40))
    return cfg.invalid("max_sync_bytes", "between 1048576 (1 MiB) and 1099511627776 (1 TiB)");
  opt_.max_held_writes = static_cast<size_t>(held.value());
  opt_.max_held_bytes = static_cast<size_t>(held_bytes.value());
  opt_.max_sync_bytes = static_cast<uint64_t>(sync_bytes.value());
  return {};
}

Status Zab::start(sdk::ConsensusHost& host, const sdk::RecoveredState& r) {
  chost_ = &host;
  net_ = host.peers();
  election_ = host.election();
  if (!net_)
    return {Errc::invalid_argument,
            "zab replicates across an ensemble: list its members in [ensemble] servers"};
  if (!election_)
    return {Errc::invalid_argument,
            "zab needs an election plugin: set plugins.election (\"fle\" or \"static\")"};
  self_ = net_->self();
  bool member = false;
  for (const auto& m : net_->members()) {
    if (m.id != self_) continue;
    member = true;
    observer_ = m.observer;
  }
  if (!member)
    return {Errc::invalid_argument,
            "server id " + std::to_string(self_) + " is not in the ensemble"};
  accepted_epoch_ = r.accepted_epoch;
  current_epoch_ = r.current_epoch;
  last_applied_ = commit_target_ = r.snapshot_zxid;
  last_logged_ = last_durable_ = std::max(r.last_zxid, r.snapshot_zxid);
  // What was logged after the snapshot is applied once a leader confirms it.
  Status st = chost_->storage().read_log(last_applied_, [&](const LogEntry& e) {
    if (e.zxid <= last_logged_) unapplied_.push_back(e);
    return true;
  });
  if (!st) return st;
  if (!unapplied_.empty())
    last_logged_ = last_durable_ = std::max(last_logged_, unapplied_.back().zxid);
  recompute_seen();
  net_->subscribe(PeerChannel::quorum, this);
  st = election_->start(*this);
  if (!st) return st;
  running_ = true;
  now_ = host_->clock().steady_ms();
  host_->logger().info("starting as " + std::string(observer_ ? "an observer" : "a participant") +
                       " with last zxid " + hex(last_logged_) + ", accepted epoch " +
                       std::to_string(accepted_epoch_) + ", current epoch " +
                       std::to_string(current_epoch_) + " (" + std::to_string(unapplied_.size()) +
                       " logged entries wait for a leader)");
  go_looking("starting");
  return {};
}

void Zab::stop() {
  if (!running_) return;
  running_ = false;
  alive_.end();
  net_->subscribe(PeerChannel::quorum, nullptr);
  election_->stop();
  side_ = std::monostate{};
  stage_ = Stage::looking;  // so that no stale stage or leader points at a side that is gone
  leader_ = 0;
  pending_sync_ = PendingSync{};
  applied_waiters_.clear();
  sync_requests_.clear();
  holding_ = moving_ = false;
  held_.clear();
  held_bytes_ = 0;
  held_syncs_.clear();
  transfer_done_ = nullptr;
  early_infos_.clear();
  role_ = Role::looking;
}

Quorum Zab::quorum_rule() const {
  return Quorum(Quorum::voters_of(net_->members()), seen_zxid_, seen_voters_);
}

size_t Zab::quorum() const { return quorum_rule().majority(); }

bool Zab::is_voter(ServerId id) const {
  for (const auto& m : net_->members())
    if (m.id == id) return !m.observer;
  return false;
}

bool Zab::seen_voter(ServerId id) const {
  return std::find(seen_voters_.begin(), seen_voters_.end(), id) != seen_voters_.end();
}

bool Zab::is_quorum(const std::function<bool(ServerId)>& in) const {
  return quorum_rule().contains(in);
}

void Zab::recompute_seen() {
  seen_zxid_ = 0;
  seen_voters_.clear();
  for (auto it = unapplied_.rbegin(); it != unapplied_.rend(); ++it) {
    auto members = chost_->membership_in(*it);
    if (!members) continue;
    seen_zxid_ = it->zxid;
    for (const auto& m : *members)
      if (!m.observer) seen_voters_.push_back(m.id);
    return;
  }
}

int64_t Zab::fresh_nonce() { return static_cast<int64_t>(rng_() >> 2) | 1; }

// ---------------------------------------------------------------- phases

void Zab::go_looking(const std::string& why) {
  if (!running_) return;
  host_->logger().info("looking for a leader: " + why);
  if (LeaderState* lead = leading()) {
    for (auto& [id, l] : lead->learners) net_->disconnect(id, PeerChannel::quorum);
  } else if (stage_ != Stage::looking && leader_ != 0 && leader_ != self_) {
    net_->disconnect(leader_, PeerChannel::quorum);
  }
  fail_waiters({Errc::unavailable, "this server lost its leader"});
  // A handover that did not complete: the writes this server held are its
  // own clients' (learners hold theirs), and go with their connections,
  // which the kernel closes below, as any write in flight when a leader is
  // lost. (fail_waiters failed the held syncs.)
  if (moving_ || holding_)
    host_->logger().warn("leader handover failed (" + why + "); " + std::to_string(held_.size()) +
                         " held writes are dropped with their connections");
  holding_ = moving_ = false;
  held_.clear();
  held_bytes_ = 0;
  early_infos_.clear();
  finish_transfer(
      {Errc::unavailable, "the handover failed (" + why + "); the ensemble elects a leader"});
  side_ = std::monostate{};
  pending_sync_ = PendingSync{};
  commit_target_ = last_applied_;
  ++generation_;
  stage_ = Stage::looking;
  leader_ = 0;
  Role old = role_;
  role_ = Role::looking;
  if (old != Role::looking) {
    chost_->role_changed(Role::looking, 0, current_epoch_);
    emit(ZabEvent{ZabEvent::Kind::looking, current_epoch_});
  }
  if (removed_) return;         // no longer in the ensemble: takes part in no election
  if (storage_failed_) return;  // takes no part until restarted
  ++elections_;
  election_started_ = now_;
  // Last: a synchronous election may call elected() from here. While its
  // log is not whole (a full disk), the lowest vote there is, so that any
  // other server wins: discovery fetches the newest history from the
  // quorum whoever leads, so this is safe, and a server that cannot write
  // does not keep winning elections it cannot serve.
  if (tail_lost_)
    election_->look(sdk::Candidacy{self_, 0, 0});
  else
    election_->look(sdk::Candidacy{self_, last_logged_, current_epoch_});
}

void Zab::elected(const sdk::ElectionResult& result) {
  if (!running_ || stage_ != Stage::looking || removed_) return;
  last_election_ms_ = now_ - election_started_;
  leader_ = result.leader;
  ++generation_;
  if (leader_ == self_) {
    if (observer_) {
      host_->logger().warn("the election named this observer as leader; electing again");
      stage_ = Stage::discovery;  // so that go_looking restarts the round
      go_looking("an observer cannot lead");
      return;
    }
    start_leading();
  } else {
    start_following();
  }
}

void Zab::start_following() {
  host_->logger().info("following server " + std::to_string(leader_) + " (election took " +
                       std::to_string(last_election_ms_) + " ms)");
  stage_ = Stage::discovery;
  stage_started_ = side_.emplace<LearnerState>().last_heard = now_;
  send_follower_info();
}

void Zab::send_follower_info() {
  if (tail_lost_) return;  // tick retries once the log is whole again
  learn().nonce = fresh_nonce();
  learn().send_seq = learn().recv_seq = 0;
  learn().last_retry = now_;
  Msg m;
  m.type = MsgType::follower_info;
  m.epoch = accepted_epoch_;
  m.zxid = last_logged_;
  m.flag = observer_;
  send_to_leader(m);
  if (leaving_) {
    Msg bye;
    bye.type = MsgType::leaving;
    send_to_leader(bye);
  }
}

void Zab::start_leading() {
  host_->logger().info("leading: waiting for a quorum of " + std::to_string(quorum()) +
                       " to join (election took " + std::to_string(last_election_ms_) + " ms)");
  stage_ = Stage::discovery;
  stage_started_ = now_;
  side_.emplace<LeaderState>();
  maybe_decide_epoch();
}

// ---------------------------------------------------------------- messages

void Zab::on_peer_message(ServerId from, sdk::BytesView message) {
  if (!running_) return;
  Msg m;
  if (!decode_message(message, m)) {
    host_->logger().warn("dropping the link to server " + std::to_string(from) +
                         ": it sent a malformed message (" + std::to_string(message.size()) +
                         " bytes)");
    net_->disconnect(from, PeerChannel::quorum);
    if (leader_ == from && role_ != Role::leading) {
      go_looking("the leader sent a malformed message");
    } else if (leading()) {
      // As any learner that leaves: a fetch from it fails, and the quorum
      // is counted again.
      drop_learner(from, "it sent a malformed message");
      LeaderState* lead = leading();
      if (lead && lead->established && !quorum_in_touch()) go_looking("lost the quorum");
    }
    return;
  }
  if (stage_ == Stage::looking) return;
  if (leader_ == self_) {
    on_learner_message(from, m);
  } else if (from == leader_) {
    on_leader_message(m);
  } else if (m.type == MsgType::follower_info && m.seq == 0 && stage_ == Stage::broadcast &&
             net_->members().size() > early_infos_.size()) {
    // A server told to follow this one before this one heard it leads next.
    early_infos_[from] = {now_, std::move(m)};
  }
}

void Zab::on_peer_link(ServerId peer, bool up) {
  if (!running_ || up || stage_ == Stage::looking) return;
  if (leader_ == self_) {
    drop_learner(peer, "its link went down");
    LeaderState* lead = leading();  // the drop may have ended the leadership
    if (lead && lead->established && !quorum_in_touch()) go_looking("lost the quorum");
    return;
  }
  if (peer != leader_) return;
  if (stage_ == Stage::discovery && !learn().got_leader_info) {
    if (++learn().connect_failures >= opt_.connect_attempts)
      go_looking("cannot reach server " + std::to_string(leader_) + " after " +
                 std::to_string(learn().connect_failures) + " attempts");
    return;
  }
  go_looking("lost the link to the leader");
}

// ---------------------------------------------------------------- time

void Zab::tick(int64_t now) {
  now_ = now;
  if (!running_) return;
  if (tail_lost_ && !rewriting_ && !storage_failed_ && now >= tail_retry_at_) rewrite_tail();
  if (transfer_done_ && !holding_ && !moving_ && now > transfer_deadline_)
    finish_transfer({Errc::unavailable, "the leader did not answer the handover request"});
  election_->tick(now);
  if (stage_ == Stage::looking) return;
  const int64_t init_ms = opt_.init_limit * opt_.tick_ms, sync_ms = opt_.sync_limit * opt_.tick_ms;
  if (leader_ == self_) {
    if (!lead().established) {
      if (now - stage_started_ > init_ms) go_looking("no quorum synced within init_limit");
      return;
    }
    std::vector<ServerId> silent;
    for (const auto& [id, l] : lead().learners) {
      bool syncing = l.step != Learner::Step::broadcast;
      if (now - l.last_heard > sync_ms || (syncing && now - l.step_started > init_ms))
        silent.push_back(id);
    }
    for (ServerId id : silent) drop_learner(id, "silent for longer than its limit");
    if (!leading()) return;  // a drop ended the leadership
    if (!quorum_in_touch()) {
      go_looking("lost the quorum: " + std::to_string(live_voters()) + " of " +
                 std::to_string(quorum()) + " voters in touch");
      return;
    }
    if (now - lead().last_ping >= opt_.tick_ms / 2) {
      lead().last_ping = now;
      ping_learners();
    }
    check_transfer();
    return;
  }
  if (stage_ != Stage::broadcast) {
    if (now - stage_started_ > init_ms) {
      go_looking("not synced with server " + std::to_string(leader_) + " within init_limit");
    } else if (stage_ == Stage::discovery && !learn().got_leader_info &&
               now - learn().last_retry >= opt_.retry_ms) {
      send_follower_info();
    }
    return;
  }
  if (now - learn().last_heard > sync_ms)
    go_looking("the leader was silent for longer than sync_limit");
}

// ---------------------------------------------------------------- clients

void Zab::sync(std::function<void(const Status&)> done) {
  if (running_ && holding_ && held_syncs_.size() < opt_.max_held_writes) {
    held_syncs_.push_back(std::move(done));  // a handover: answered under the next leader
    return;
  }
  if (!running_ || stage_ != Stage::broadcast || holding_) {
    host_->executor().post(
        [done = std::move(done)] { done(Status(Errc::unavailable, "no leader is established")); });
    return;
  }
  if (leader_ == self_) {
    if (opt_.quorum_sync) {
      QuorumSync s;
      s.zxid = last_logged_;
      s.local = std::move(done);
      queue_quorum_sync(std::move(s));
      return;
    }
    applied_waiters_.emplace_back(last_logged_, std::move(done));
    apply_committed();
    return;
  }
  int64_t id = ++next_sync_id_;
  sync_requests_[id] = std::move(done);
  Msg m;
  m.type = MsgType::sync_request;
  m.id = id;
  send_to_leader(m);
}

sdk::ConsensusStatus Zab::status() const {
  sdk::ConsensusStatus s;
  s.role = role_;
  s.leader = leader();
  s.accepted_epoch = accepted_epoch_;
  s.current_epoch = current_epoch_;
  s.last_logged = last_logged_;
  s.last_committed = commit_target_;
  s.last_applied = last_applied_;
  s.pending_proposals = unapplied_.size();
  s.elections = elections_;
  s.last_election_ms = last_election_ms_;
  if (const LeaderState* lead = leading())
    for (const auto& [id, l] : lead->learners) {
      sdk::LearnerStatus ls;
      ls.id = id;
      ls.observer = l.observer;
      ls.synced = l.step == Learner::Step::broadcast;
      ls.last_acked = l.acked;
      ls.stage = l.step == Learner::Step::broadcast   ? "broadcast"
                 : l.step == Learner::Step::sync_sent ? "sync"
                                                      : "discovery";
      s.learners.push_back(ls);
    }
  return s;
}

}  // namespace corral::zab
