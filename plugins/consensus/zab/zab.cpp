#include "zab.hpp"

#include "history.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace corral::zab {

using sdk::Errc;
using sdk::LogEntry;
using sdk::PeerChannel;
using sdk::Role;
using sdk::ServerId;
using sdk::Status;
using sdk::Zxid;

namespace {

std::string hex(Zxid z) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, static_cast<uint64_t>(z));
  return buf;
}

}  // namespace

Zab::Zab(uint64_t seed) : rng_(seed ? seed : std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32)) {}

Zab::~Zab() { alive_.end(); }

Status Zab::init(sdk::PluginHost& host) {
  host_ = &host;
  const sdk::ConfigTable& cfg = host.config();
  for (const std::string& key : cfg.keys())
    if (key != "tick_ms" && key != "init_limit" && key != "sync_limit")
      return cfg.invalid(key, "one of tick_ms, init_limit, sync_limit (unknown key)");
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
  return {};
}

Status Zab::start(sdk::ConsensusHost& host, const sdk::RecoveredState& r) {
  chost_ = &host;
  net_ = host.peers();
  election_ = host.election();
  if (!net_) return {Errc::invalid_argument, "zab replicates across an ensemble: list its members in [ensemble] servers"};
  if (!election_)
    return {Errc::invalid_argument, "zab needs an election plugin: set plugins.election (\"fle\" or \"static\")"};
  self_ = net_->self();
  bool member = false;
  for (const auto& m : net_->members()) {
    if (m.id != self_) continue;
    member = true;
    observer_ = m.observer;
  }
  if (!member) return {Errc::invalid_argument, "server id " + std::to_string(self_) + " is not in the ensemble"};
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
  if (!unapplied_.empty()) last_logged_ = last_durable_ = std::max(last_logged_, unapplied_.back().zxid);
  recompute_seen();
  net_->subscribe(PeerChannel::quorum, this);
  st = election_->start(*this);
  if (!st) return st;
  running_ = true;
  now_ = host_->clock().steady_ms();
  host_->logger().info("starting as " + std::string(observer_ ? "an observer" : "a participant") + " with last zxid " +
                       hex(last_logged_) + ", accepted epoch " + std::to_string(accepted_epoch_) +
                       ", current epoch " + std::to_string(current_epoch_) + " (" +
                       std::to_string(unapplied_.size()) + " logged entries wait for a leader)");
  go_looking("starting");
  return {};
}

void Zab::stop() {
  if (!running_) return;
  running_ = false;
  alive_.end();
  net_->subscribe(PeerChannel::quorum, nullptr);
  election_->stop();
  lead_ = LeaderState{};
  learn_ = LearnerState{};
  pending_sync_ = PendingSync{};
  applied_waiters_.clear();
  sync_requests_.clear();
  role_ = Role::looking;
}

Quorum Zab::quorum_rule() const { return Quorum(Quorum::voters_of(net_->members()), seen_zxid_, seen_voters_); }

size_t Zab::quorum() const { return quorum_rule().majority(); }

bool Zab::is_voter(ServerId id) const { return quorum_rule().is_voter(id); }

bool Zab::seen_voter(ServerId id) const {
  return std::find(seen_voters_.begin(), seen_voters_.end(), id) != seen_voters_.end();
}

bool Zab::is_quorum(const std::function<bool(ServerId)>& in) const { return quorum_rule().contains(in); }

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
  if (role_ == Role::leading || (stage_ != Stage::looking && leader_ == self_)) {
    for (auto& [id, l] : lead_.learners) net_->disconnect(id, PeerChannel::quorum);
  } else if (stage_ != Stage::looking && leader_ != 0) {
    net_->disconnect(leader_, PeerChannel::quorum);
  }
  lead_ = LeaderState{};
  learn_ = LearnerState{};
  pending_sync_ = PendingSync{};
  commit_target_ = last_applied_;
  fail_waiters({Errc::unavailable, "this server lost its leader"});
  ++generation_;
  stage_ = Stage::looking;
  leader_ = 0;
  Role old = role_;
  role_ = Role::looking;
  if (old != Role::looking) {
    chost_->role_changed(Role::looking, 0, current_epoch_);
    emit(ZabEvent{ZabEvent::Kind::looking, current_epoch_});
  }
  if (removed_) return;  // no longer in the ensemble: takes part in no election
  ++elections_;
  election_started_ = now_;
  // Last: a synchronous election may call elected() from here.
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
  learn_ = LearnerState{};
  stage_started_ = learn_.last_heard = now_;
  send_follower_info();
}

void Zab::send_follower_info() {
  learn_.nonce = fresh_nonce();
  learn_.send_seq = learn_.recv_seq = 0;
  learn_.last_retry = now_;
  Msg m;
  m.type = MsgType::follower_info;
  m.epoch = accepted_epoch_;
  m.zxid = last_logged_;
  m.flag = observer_;
  send_to_leader(m);
}

void Zab::start_leading() {
  host_->logger().info("leading: waiting for a quorum of " + std::to_string(quorum()) +
                       " to join (election took " + std::to_string(last_election_ms_) + " ms)");
  stage_ = Stage::discovery;
  stage_started_ = now_;
  lead_ = LeaderState{};
  maybe_decide_epoch();
}

// ---------------------------------------------------------------- leader

void Zab::send_to(Learner& l, MsgType type, sdk::BytesView payload) {
  net_->send(l.id, PeerChannel::quorum, encode_message(type, l.nonce, l.send_seq++, payload));
}

void Zab::send_to(Learner& l, const Msg& m) { send_to(l, m.type, encode_payload(m)); }

void Zab::drop_learner(ServerId id, const std::string& why) {
  auto it = lead_.learners.find(id);
  if (it == lead_.learners.end()) return;
  host_->logger().info("dropping server " + std::to_string(id) + ": " + why);
  lead_.learners.erase(it);
  net_->disconnect(id, PeerChannel::quorum);
  if (lead_.fetching_from == id) go_looking("server " + std::to_string(id) + ", whose history was being fetched, left");
}

void Zab::on_learner_message(ServerId from, Msg& m) {
  if (m.type == MsgType::follower_info) {
    if (m.seq != 0) return;  // a session whose start was lost; the learner retries
    auto it = lead_.learners.find(from);
    if (it != lead_.learners.end() && it->second.nonce == m.nonce) return;  // a duplicate
    if (lead_.epoch_decided && m.epoch > lead_.new_epoch) {
      // It accepted the epoch of a leader that never established itself,
      // above this one's: it can never follow this epoch, so a new election
      // picks one above both (ZooKeeper's servers would wait for the next
      // failure instead).
      go_looking("server " + std::to_string(from) + " accepted epoch " + std::to_string(m.epoch) +
                 ", above this leader's " + std::to_string(lead_.new_epoch) + "; electing again so that it can join");
      return;
    }
    Learner l;
    l.id = from;
    l.observer = !is_voter(from);
    l.nonce = m.nonce;
    l.recv_seq = 1;
    l.accepted_epoch = m.epoch;
    l.last_zxid = m.zxid;
    l.last_heard = l.step_started = now_;
    lead_.learners[from] = l;
    if (lead_.epoch_decided) {
      Learner& nl = lead_.learners[from];
      Msg info;
      info.type = MsgType::leader_info;
      info.epoch = lead_.new_epoch;
      info.zxid = last_logged_;
      nl.step = Learner::Step::leader_info_sent;
      send_to(nl, info);
    } else {
      maybe_decide_epoch();
    }
    return;
  }
  auto it = lead_.learners.find(from);
  if (it == lead_.learners.end()) return;
  Learner& l = it->second;
  if (m.nonce != l.nonce || m.seq < l.recv_seq) return;  // another session, or a duplicate
  if (m.seq > l.recv_seq) {
    drop_learner(from, "messages were lost (expected " + std::to_string(l.recv_seq) + ", got " +
                           std::to_string(m.seq) + ")");
    return;
  }
  l.recv_seq++;
  l.last_heard = now_;
  switch (m.type) {
    case MsgType::ack_epoch:
      if (l.step != Learner::Step::leader_info_sent) return;
      l.current_epoch = m.epoch;
      l.last_zxid = m.zxid;
      l.step = Learner::Step::epoch_acked;
      l.step_started = now_;
      if (stage_ == Stage::sync || stage_ == Stage::broadcast) send_sync(l);
      else maybe_choose_history();
      return;
    case MsgType::fetched: {
      if (from != lead_.fetching_from) return;
      lead_.fetching_from = 0;
      host_->logger().info("adopting the newer history of server " + std::to_string(from) + " (" +
                           std::to_string(m.plan.entries.size()) + " entries" +
                           (m.plan.mode == SyncPlan::Mode::snap ? ", a snapshot" : "") + ")");
      uint64_t gen = generation_;
      apply_sync(std::move(m.plan), commit_target_, [this, gen] {
        if (gen == generation_) begin_sync();
      });
      return;
    }
    case MsgType::ack:
      if (l.step == Learner::Step::sync_sent && m.zxid == sdk::make_zxid(lead_.new_epoch, 0)) {
        l.newleader_acked = true;
        l.acked = std::max(l.acked, l.sync_last);
        if (lead_.established) {
          Msg up;
          up.type = MsgType::up_to_date;
          up.zxid = commit_target_;
          l.step = Learner::Step::broadcast;
          send_to(l, up);
          host_->logger().info(std::string(l.observer ? "observer " : "follower ") + std::to_string(from) +
                               " is synced");
          try_commit();
        } else {
          maybe_establish();
        }
      } else if (l.newleader_acked && m.zxid > l.acked) {
        l.acked = std::min(m.zxid, last_logged_);
        try_commit();
      }
      return;
    case MsgType::ping:
      if (!m.body.empty()) chost_->session_activity(from, m.body);
      return;
    case MsgType::request:
      if (!lead_.established) {
        Msg rej;
        rej.type = MsgType::rejected;
        rej.body = std::move(m.body);
        rej.id = static_cast<int64_t>(Errc::unavailable);
        rej.text = "the leader is not established";
        send_to(l, rej);
      } else if (Status st = submit(m.body); !st) {
        Msg rej;
        rej.type = MsgType::rejected;
        rej.body = std::move(m.body);
        rej.id = static_cast<int64_t>(st.code());
        rej.text = st.message();
        if (lead_.learners.count(from)) send_to(lead_.learners[from], rej);
      }
      return;
    case MsgType::sync_request: {
      Msg rep;
      rep.type = MsgType::sync_reply;
      rep.id = m.id;
      rep.zxid = last_logged_;
      send_to(l, rep);
      return;
    }
    default:
      host_->logger().warn("server " + std::to_string(from) + " sent " + msg_type_name(m.type) +
                           ", which a leader does not expect");
      return;
  }
}

void Zab::maybe_decide_epoch() {
  if (lead_.epoch_decided || stage_ != Stage::discovery || leader_ != self_) return;
  // Every learner's accepted epoch counts (an observer of the current
  // membership may vote in the one the log is changing to).
  uint32_t highest = accepted_epoch_;
  for (const auto& [id, l] : lead_.learners) highest = std::max(highest, l.accepted_epoch);
  if (!is_quorum([&](ServerId id) { return id == self_ || lead_.learners.count(id); })) return;
  lead_.epoch_seen = seen_zxid_;
  if (highest == UINT32_MAX) {
    host_->logger().error("epochs are exhausted");
    return;
  }
  lead_.new_epoch = highest + 1;
  accepted_epoch_ = lead_.new_epoch;
  if (Status st = chost_->storage().save_epochs(accepted_epoch_, current_epoch_); !st) {
    go_looking("cannot save the accepted epoch: " + st.to_string());
    return;
  }
  lead_.epoch_decided = true;
  Msg info;
  info.type = MsgType::leader_info;
  info.epoch = lead_.new_epoch;
  info.zxid = last_logged_;
  sdk::Bytes payload = encode_payload(info);
  for (auto& [id, l] : lead_.learners) {
    l.step = Learner::Step::leader_info_sent;
    l.step_started = now_;
    send_to(l, MsgType::leader_info, payload);
  }
  maybe_choose_history();
}

void Zab::maybe_choose_history() {
  if (!lead_.epoch_decided || lead_.history_chosen || stage_ != Stage::discovery) return;
  auto acked = [&](ServerId id) {
    if (id == self_) return true;
    auto it = lead_.learners.find(id);
    return it != lead_.learners.end() && it->second.step == Learner::Step::epoch_acked;
  };
  if (!is_quorum(acked)) return;
  lead_.history_chosen = true;
  // Zab's rule: the initial history is the newest among the quorum, by
  // (current epoch, last zxid). A quorum holds every committed entry, so it
  // is in there.
  ServerId best = self_;
  std::pair<uint32_t, Zxid> best_key{current_epoch_, last_logged_};
  for (const auto& [id, l] : lead_.learners) {
    if ((l.observer && !seen_voter(id)) || l.step != Learner::Step::epoch_acked) continue;
    std::pair<uint32_t, Zxid> key{l.current_epoch, l.last_zxid};
    if (key > best_key) {
      best_key = key;
      best = id;
    }
  }
  if (best == self_) {
    begin_sync();
    return;
  }
  host_->logger().info("server " + std::to_string(best) + " has a newer history (epoch " +
                       std::to_string(best_key.first) + ", zxid " + hex(best_key.second) + ") than this leader (" +
                       std::to_string(current_epoch_) + ", " + hex(last_logged_) + "); fetching it");
  lead_.fetching_from = best;
  Msg f;
  f.type = MsgType::fetch;
  f.zxid = last_logged_;
  send_to(lead_.learners[best], f);
}

void Zab::begin_sync() {
  if (snapshot_in_flight_) {
    go_looking("a snapshot from the previous leader is still being written");
    return;
  }
  // The current epoch names the history it starts from: adopt it only once
  // that history is durable here, or a crash would leave a newer epoch over
  // a shorter log, which would then win the next discovery.
  if (last_durable_ < last_logged_) {
    uint64_t gen = generation_;
    pending_sync_.target = last_logged_;
    pending_sync_.awaiting_durable = true;
    pending_sync_.durable = [this, gen] {
      if (gen == generation_) begin_sync();
    };
    return;
  }
  if (seen_zxid_ != lead_.epoch_seen &&
      !is_quorum([&](ServerId id) { return id == self_ || lead_.learners.count(id); })) {
    // The history fetched holds a membership change whose voters did not
    // take part in choosing the epoch: start over, knowing it.
    go_looking("the history adopted changes the membership; electing again with it");
    return;
  }
  current_epoch_ = lead_.new_epoch;
  if (Status st = chost_->storage().save_epochs(accepted_epoch_, current_epoch_); !st) {
    go_looking("cannot save the current epoch: " + st.to_string());
    return;
  }
  stage_ = Stage::sync;
  lead_.initial_last = last_logged_;
  lead_.counter = 0;
  std::vector<ServerId> ready;
  for (auto& [id, l] : lead_.learners)
    if (l.step == Learner::Step::epoch_acked) ready.push_back(id);
  for (ServerId id : ready) {
    auto it = lead_.learners.find(id);
    if (it != lead_.learners.end()) send_sync(it->second);
  }
  maybe_establish();
}

void Zab::send_sync(Learner& l) {
  auto plan = plan_sync(l.last_zxid);
  if (!plan) {
    drop_learner(l.id, "cannot bring it up to date: " + plan.status().to_string());
    return;
  }
  Msg m;
  m.type = MsgType::sync;
  m.epoch = lead_.new_epoch;
  m.zxid = commit_target_;
  m.plan = std::move(plan.value());
  l.sync_last = last_logged_;
  l.step = Learner::Step::sync_sent;
  l.step_started = now_;
  const char* how = m.plan.mode == SyncPlan::Mode::snap ? "SNAP" : m.plan.mode == SyncPlan::Mode::trunc ? "TRUNC" : "DIFF";
  host_->logger().info("syncing server " + std::to_string(l.id) + " from " + hex(l.last_zxid) + " by " + how + " (" +
                       std::to_string(m.plan.entries.size()) + " entries" +
                       (m.plan.mode == SyncPlan::Mode::snap ? ", snapshot at " + hex(m.plan.snap_zxid) : "") +
                       (m.plan.mode == SyncPlan::Mode::trunc ? ", truncate after " + hex(m.plan.trunc_zxid) : "") + ")");
  emit(ZabEvent{ZabEvent::Kind::sync_sent, lead_.new_epoch, l.id, m.plan.mode, l.last_zxid, m.plan.entries.size()});
  send_to(l, m);
}

void Zab::maybe_establish() {
  if (lead_.established || stage_ != Stage::sync) return;
  auto acked = [&](ServerId id) {
    if (id == self_) return last_durable_ >= lead_.initial_last;
    auto it = lead_.learners.find(id);
    return it != lead_.learners.end() && it->second.newleader_acked;
  };
  if (!is_quorum(acked)) return;
  lead_.established = true;
  stage_ = Stage::broadcast;
  commit_target_ = lead_.initial_last;
  apply_committed();
  if (stage_ != Stage::broadcast) return;  // applying made this server step down
  Msg up;
  up.type = MsgType::up_to_date;
  up.zxid = commit_target_;
  sdk::Bytes payload = encode_payload(up);
  std::string who;
  for (auto& [id, l] : lead_.learners) {
    if (!l.newleader_acked) continue;
    l.step = Learner::Step::broadcast;
    send_to(l, MsgType::up_to_date, payload);
    who += (who.empty() ? "" : ", ") + std::to_string(id);
  }
  lead_.last_ping = now_;
  role_ = Role::leading;
  host_->logger().info("established as leader of epoch " + std::to_string(current_epoch_) + " with " +
                       (who.empty() ? std::string("no followers") : "servers " + who) + "; history up to " +
                       hex(lead_.initial_last) + " committed");
  chost_->role_changed(Role::leading, self_, current_epoch_);
  emit(ZabEvent{ZabEvent::Kind::leading, current_epoch_, self_});
  election_->settled(sdk::ElectionResult{self_, last_logged_, current_epoch_, 0});
}

size_t Zab::live_voters() const {
  size_t n = 1;
  for (const auto& [id, l] : lead_.learners)
    if (!l.observer && l.newleader_acked) ++n;
  return n;
}

bool Zab::quorum_in_touch() const {
  return is_quorum([&](ServerId id) {
    if (id == self_) return true;
    auto it = lead_.learners.find(id);
    return it != lead_.learners.end() && it->second.newleader_acked;
  });
}

void Zab::try_commit() {
  if (!lead_.established) return;
  std::vector<Quorum::Ack> acks;
  acks.reserve(lead_.learners.size() + 1);
  acks.push_back({self_, last_durable_, true});
  for (const auto& [id, l] : lead_.learners)
    if (l.newleader_acked) acks.push_back({id, l.acked, !l.observer});
  Zxid candidate = quorum_rule().commit_point(acks, last_logged_);
  if (candidate <= commit_target_) return;
  Zxid old = commit_target_;
  commit_target_ = candidate;
  Msg c;
  c.type = MsgType::commit;
  c.zxid = candidate;
  sdk::Bytes commit_payload = encode_payload(c);
  for (auto& [id, l] : lead_.learners) {
    if (l.step != Learner::Step::sync_sent && l.step != Learner::Step::broadcast) continue;
    if (!l.observer) {
      send_to(l, MsgType::commit, commit_payload);
      continue;
    }
    // An observer holds what its SYNC carried; entries after that reach it
    // as INFORM, once committed.
    if (old < l.sync_last) {
      Msg oc;
      oc.type = MsgType::commit;
      oc.zxid = std::min(candidate, l.sync_last);
      send_to(l, oc);
    }
    for (const LogEntry& e : unapplied_) {
      if (e.zxid > candidate) break;
      if (e.zxid <= std::max(old, l.sync_last)) continue;
      Msg inf;
      inf.type = MsgType::inform;
      inf.entry = e;
      send_to(l, inf);
    }
  }
  apply_committed();
}

Status Zab::submit(sdk::Bytes body) {
  if (!running_) return {Errc::unavailable, "server is stopping"};
  if (role_ == Role::following || role_ == Role::observing) {
    Msg m;
    m.type = MsgType::request;
    m.body = std::move(body);
    send_to_leader(m);
    return {};
  }
  if (role_ != Role::leading) return {Errc::unavailable, "no leader is established"};
  if (lead_.counter == UINT32_MAX) {
    go_looking("the zxid counter of epoch " + std::to_string(current_epoch_) + " is exhausted; a new epoch starts");
    return {Errc::unavailable, "the leader is starting a new epoch"};
  }
  LogEntry entry{sdk::make_zxid(current_epoch_, ++lead_.counter), host_->clock().wall_ms(), std::move(body)};
  chost_->prepare(entry);
  propose(std::move(entry));
  if (seen_zxid_ == sdk::make_zxid(current_epoch_, lead_.counter))
    host_->logger().info("proposing a membership change at " + hex(seen_zxid_) + " (" +
                         std::to_string(seen_voters_.size()) +
                         " voting); it commits with a quorum of the current voters and of the new ones");
  return {};
}

void Zab::propose(LogEntry entry) {
  Msg m;
  m.type = MsgType::proposal;
  m.entry = entry;
  sdk::Bytes payload = encode_payload(m);
  m.entry = {};
  append(std::move(entry));
  for (auto& [id, l] : lead_.learners)
    if (!l.observer && (l.step == Learner::Step::sync_sent || l.step == Learner::Step::broadcast))
      send_to(l, MsgType::proposal, payload);
}

// ---------------------------------------------------------------- learner

void Zab::send_to_leader(const Msg& m) {
  net_->send(leader_, PeerChannel::quorum, encode_message(m.type, learn_.nonce, learn_.send_seq++, encode_payload(m)));
}

void Zab::on_leader_message(Msg& m) {
  if (m.nonce != learn_.nonce || m.seq < learn_.recv_seq) return;
  if (m.seq > learn_.recv_seq) {
    go_looking("messages from the leader were lost");
    return;
  }
  learn_.recv_seq++;
  learn_.last_heard = now_;
  // Nothing may reach the log while a snapshot from a leader is still being
  // written (even one from an earlier sync): a crash would leave entries
  // after a hole.
  if (pending_sync_.in_progress || snapshot_in_flight_) {
    learn_.deferred.push_back(std::move(m));
    return;
  }
  handle_leader_message(m);
}

void Zab::drain_deferred() {
  while (!learn_.deferred.empty() && !pending_sync_.in_progress && !snapshot_in_flight_ && stage_ != Stage::looking) {
    Msg m = std::move(learn_.deferred.front());
    learn_.deferred.pop_front();
    handle_leader_message(m);
  }
}

void Zab::handle_leader_message(Msg& m) {
  switch (m.type) {
    case MsgType::leader_info:
      if (stage_ != Stage::discovery || learn_.got_leader_info) return;
      if (m.epoch < accepted_epoch_) {
        go_looking("server " + std::to_string(leader_) + " proposes epoch " + std::to_string(m.epoch) +
                   ", older than the accepted epoch " + std::to_string(accepted_epoch_));
        return;
      }
      if (m.epoch > accepted_epoch_) {
        accepted_epoch_ = m.epoch;
        if (Status st = chost_->storage().save_epochs(accepted_epoch_, current_epoch_); !st) {
          go_looking("cannot save the accepted epoch: " + st.to_string());
          return;
        }
      }
      learn_.got_leader_info = true;
      learn_.leader_epoch = m.epoch;
      {
        Msg ack;
        ack.type = MsgType::ack_epoch;
        ack.epoch = current_epoch_;
        ack.zxid = last_logged_;
        send_to_leader(ack);
      }
      return;
    case MsgType::fetch: {
      if (stage_ != Stage::discovery) return;
      auto plan = plan_sync(m.zxid);
      if (!plan) {
        go_looking("cannot send the leader this server's history: " + plan.status().to_string());
        return;
      }
      Msg f;
      f.type = MsgType::fetched;
      f.plan = std::move(plan.value());
      send_to_leader(f);
      return;
    }
    case MsgType::sync: {
      if (stage_ != Stage::discovery || !learn_.got_leader_info || m.epoch != learn_.leader_epoch) {
        go_looking("the leader sent SYNC out of turn");
        return;
      }
      stage_ = Stage::sync;
      stage_started_ = now_;
      uint64_t gen = generation_;
      apply_sync(std::move(m.plan), m.zxid, [this, gen] {
        if (gen != generation_) return;
        current_epoch_ = learn_.leader_epoch;
        if (Status st = chost_->storage().save_epochs(accepted_epoch_, current_epoch_); !st) {
          go_looking("cannot save the current epoch: " + st.to_string());
          return;
        }
        learn_.newleader_acked = true;
        Msg ack;
        ack.type = MsgType::ack;
        ack.zxid = sdk::make_zxid(learn_.leader_epoch, 0);
        send_to_leader(ack);
        learn_.acked_sent = pending_sync_.target;
        flush_ack();
      });
      return;
    }
    case MsgType::proposal:
      if (stage_ == Stage::discovery || m.entry.zxid <= last_logged_) return;
      append(std::move(m.entry));
      return;
    case MsgType::commit:
      if (stage_ == Stage::discovery) return;
      commit_target_ = std::max(commit_target_, std::min(m.zxid, last_logged_));
      apply_committed();
      return;
    case MsgType::inform:
      if (stage_ == Stage::discovery) return;
      if (m.entry.zxid > last_logged_) {
        Zxid z = m.entry.zxid;
        append(std::move(m.entry));
        commit_target_ = std::max(commit_target_, z);
        apply_committed();
      }
      return;
    case MsgType::up_to_date:
      if (stage_ != Stage::sync || !learn_.newleader_acked) return;
      commit_target_ = std::max(commit_target_, std::min(m.zxid, last_logged_));
      stage_ = Stage::broadcast;
      apply_committed();
      if (stage_ != Stage::broadcast) return;
      role_ = observer_ ? Role::observing : Role::following;
      host_->logger().info(std::string("synced with leader ") + std::to_string(leader_) + " in epoch " +
                           std::to_string(current_epoch_) + " at zxid " + hex(last_applied_) + "; serving clients");
      chost_->role_changed(role_, leader_, current_epoch_);
      emit(ZabEvent{ZabEvent::Kind::following, current_epoch_, leader_});
      election_->settled(sdk::ElectionResult{leader_, last_logged_, current_epoch_, 0});
      return;
    case MsgType::ping: {
      Msg pong;
      pong.type = MsgType::ping;
      if (stage_ == Stage::broadcast) pong.body = chost_->take_session_activity();
      send_to_leader(pong);
      return;
    }
    case MsgType::rejected:
      chost_->rejected(LogEntry{0, 0, std::move(m.body)}, Status(static_cast<Errc>(m.id), m.text));
      return;
    case MsgType::sync_reply: {
      auto it = sync_requests_.find(m.id);
      if (it == sync_requests_.end()) return;
      applied_waiters_.emplace_back(m.zxid, std::move(it->second));
      sync_requests_.erase(it);
      apply_committed();
      return;
    }
    default:
      host_->logger().warn("the leader sent " + std::string(msg_type_name(m.type)) + ", which a learner does not expect");
      return;
  }
}

void Zab::flush_ack() {
  if (!learn_.newleader_acked || observer_ || last_durable_ <= learn_.acked_sent || stage_ == Stage::looking) return;
  Msg ack;
  ack.type = MsgType::ack;
  ack.zxid = last_durable_;
  learn_.acked_sent = last_durable_;
  send_to_leader(ack);
}

// ---------------------------------------------------------------- messages

void Zab::on_peer_message(ServerId from, sdk::BytesView message) {
  if (!running_) return;
  Msg m;
  if (!decode_message(message, m)) {
    host_->logger().warn("dropping the link to server " + std::to_string(from) + ": it sent a malformed message (" +
                         std::to_string(message.size()) + " bytes)");
    net_->disconnect(from, PeerChannel::quorum);
    if (leader_ == from && role_ != Role::leading) go_looking("the leader sent a malformed message");
    else if (lead_.learners.count(from)) lead_.learners.erase(from);
    return;
  }
  if (stage_ == Stage::looking) return;
  if (leader_ == self_) on_learner_message(from, m);
  else if (from == leader_) on_leader_message(m);
}

void Zab::on_peer_link(ServerId peer, bool up) {
  if (!running_ || up || stage_ == Stage::looking) return;
  if (leader_ == self_) {
    if (lead_.learners.count(peer)) drop_learner(peer, "its link went down");
    if (lead_.established && !quorum_in_touch()) go_looking("lost the quorum");
    return;
  }
  if (peer != leader_) return;
  if (stage_ == Stage::discovery && !learn_.got_leader_info) {
    if (++learn_.connect_failures >= opt_.connect_attempts)
      go_looking("cannot reach server " + std::to_string(leader_) + " after " + std::to_string(learn_.connect_failures) +
                 " attempts");
    return;
  }
  go_looking("lost the link to the leader");
}

// ---------------------------------------------------------------- time

void Zab::tick(int64_t now) {
  now_ = now;
  if (!running_) return;
  election_->tick(now);
  if (stage_ == Stage::looking) return;
  const int64_t init_ms = opt_.init_limit * opt_.tick_ms, sync_ms = opt_.sync_limit * opt_.tick_ms;
  if (leader_ == self_) {
    if (!lead_.established) {
      if (now - stage_started_ > init_ms) go_looking("no quorum synced within init_limit");
      return;
    }
    std::vector<ServerId> silent;
    for (const auto& [id, l] : lead_.learners) {
      bool syncing = l.step != Learner::Step::broadcast;
      if (now - l.last_heard > sync_ms || (syncing && now - l.step_started > init_ms)) silent.push_back(id);
    }
    for (ServerId id : silent) drop_learner(id, "silent for longer than its limit");
    if (!quorum_in_touch()) {
      go_looking("lost the quorum: " + std::to_string(live_voters()) + " of " + std::to_string(quorum()) +
                 " voters in touch");
      return;
    }
    if (now - lead_.last_ping >= opt_.tick_ms / 2) {
      lead_.last_ping = now;
      Msg ping;
      ping.type = MsgType::ping;
      sdk::Bytes payload = encode_payload(ping);
      for (auto& [id, l] : lead_.learners) send_to(l, MsgType::ping, payload);
    }
    return;
  }
  if (stage_ != Stage::broadcast) {
    if (now - stage_started_ > init_ms) {
      go_looking("not synced with server " + std::to_string(leader_) + " within init_limit");
    } else if (stage_ == Stage::discovery && !learn_.got_leader_info && now - learn_.last_retry >= opt_.retry_ms) {
      send_follower_info();
    }
    return;
  }
  if (now - learn_.last_heard > sync_ms) go_looking("the leader was silent for longer than sync_limit");
}

// ---------------------------------------------------------------- log

void Zab::append(LogEntry entry) {
  Zxid z = entry.zxid;
  last_logged_ = z;
  if (auto members = chost_->membership_in(entry)) {
    seen_zxid_ = z;
    seen_voters_.clear();
    for (const auto& m : *members)
      if (!m.observer) seen_voters_.push_back(m.id);
  }
  unapplied_.push_back(std::move(entry));
  chost_->storage().append(unapplied_.back(), [this, alive = alive_.ref(), lg = log_generation_, z](const Status& st) {
    if (!alive || lg != log_generation_ || !running_) return;
    if (!st) {
      // The log has a hole now: leave the ensemble and rejoin through a sync.
      host_->logger().error("storage refused zxid " + hex(z) + ": " + st.to_string());
      ++log_generation_;
      if (stage_ != Stage::looking) go_looking("storage refused an append");
      return;
    }
    last_durable_ = std::max(last_durable_, z);
    on_durable();
  });
}

void Zab::on_durable() {
  if (leader_ == self_ && stage_ != Stage::looking) {
    if (lead_.established) try_commit();
    else maybe_establish();
  } else if (learn_.newleader_acked && !learn_.ack_posted) {
    // One ACK for every entry made durable in this turn of the loop.
    learn_.ack_posted = true;
    host_->executor().post([this, alive = alive_.ref()] {
      if (!alive) return;
      learn_.ack_posted = false;
      flush_ack();
    });
  }
  check_sync_durable();
}

void Zab::apply_committed() {
  while (!unapplied_.empty() && unapplied_.front().zxid <= commit_target_ && running_) {
    LogEntry e = std::move(unapplied_.front());
    unapplied_.pop_front();
    last_applied_ = e.zxid;
    chost_->apply(e);
    bool changed = chost_->membership_in(e).has_value();
    Zxid zxid = e.zxid;
    recent_.push_back(std::move(e));
    if (changed) membership_applied(zxid);
  }
  while (recent_.size() > opt_.recent_entries && recent_.front().zxid <= last_durable_) recent_.pop_front();
  if (applied_waiters_.empty()) return;
  std::vector<std::function<void(const Status&)>> ready;
  std::erase_if(applied_waiters_, [&](auto& w) {
    if (w.first > last_applied_) return false;
    ready.push_back(std::move(w.second));
    return true;
  });
  for (auto& done : ready) done(Status());
}

void Zab::membership_applied(Zxid zxid) {
  if (zxid >= seen_zxid_) {
    seen_zxid_ = 0;
    seen_voters_.clear();
  }
  membership_changed("the membership change at " + hex(zxid));
}

void Zab::membership_changed(const std::string& cause) {
  bool member = false, observer = false;
  for (const auto& m : net_->members()) {
    if (m.id != self_) continue;
    member = true;
    observer = m.observer;
  }
  if (!member) {
    host_->logger().warn(cause + " took this server out of the ensemble; it stops taking part (start it again, "
                                 "with an empty data directory, once a reconfig adds it back)");
    removed_ = true;
    go_looking("removed from the ensemble");
    election_->stop();
    return;
  }
  if (observer != observer_) {
    observer_ = observer;
    go_looking(cause + " made this server " + (observer ? "an observer" : "a participant"));
    return;
  }
  if (role_ != Role::leading && !(stage_ != Stage::looking && leader_ == self_)) return;
  std::vector<std::pair<ServerId, std::string>> drop;
  for (auto& [id, l] : lead_.learners) {
    bool known = false;
    for (const auto& m : net_->members())
      if (m.id == id) known = true;
    if (!known) drop.emplace_back(id, cause + " removed it");
    else if (l.observer != !is_voter(id)) drop.emplace_back(id, cause + " changed its part; it joins again");
  }
  for (const auto& [id, why] : drop) drop_learner(id, why);
  if (lead_.established && !quorum_in_touch()) go_looking("lost the quorum of the new membership");
}

void Zab::fail_waiters(const Status& why) {
  std::vector<std::function<void(const Status&)>> failed;
  for (auto& [z, done] : applied_waiters_) failed.push_back(std::move(done));
  for (auto& [id, done] : sync_requests_) failed.push_back(std::move(done));
  applied_waiters_.clear();
  sync_requests_.clear();
  if (failed.empty()) return;
  host_->executor().post([failed = std::move(failed), why] {
    for (auto& done : failed) done(why);
  });
}

Status Zab::collect_history(Zxid after, std::vector<LogEntry>& out) {
  // Entries not yet durable are only in memory; `recent_` keeps every applied
  // one until it is, and `unapplied_` holds the rest, so below the first
  // entry in memory the log on disk is complete.
  Zxid mem_start = !recent_.empty() ? recent_.front().zxid
                                    : !unapplied_.empty() ? unapplied_.front().zxid : last_logged_ + 1;
  if (after < mem_start) {
    Status st = chost_->storage().read_log(after, [&](const LogEntry& e) {
      if (e.zxid >= mem_start) return false;
      out.push_back(e);
      return true;
    });
    if (!st) return st;
  }
  for (const auto* q : {&recent_, &unapplied_})
    for (const LogEntry& e : *q)
      if (e.zxid > after) out.push_back(e);
  return {};
}

sdk::Result<SyncPlan> Zab::plan_sync(Zxid peer_last) {
  if (snapshot_in_flight_) return Status{Errc::unavailable, "a snapshot is still being written"};
  // The log is this server's history only after its newest snapshot (before
  // it may lie entries of an abandoned history, replaced by a SNAP).
  Zxid floor = chost_->storage().latest_snapshot_zxid();
  if (needs_snapshot(peer_last, floor)) {
    SyncPlan p;
    auto snap = chost_->storage().latest_snapshot();
    if (!snap) return snap.status();
    p.mode = SyncPlan::Mode::snap;
    p.snap_zxid = snap.value().first;
    p.snapshot = std::move(snap.value().second);
    Status st = collect_history(p.snap_zxid, p.entries);
    if (!st) return st;
    return p;
  }
  std::vector<LogEntry> history;
  Status st = collect_history(floor, history);
  if (!st) return st;
  return plan_diff(std::move(history), floor, peer_last);
}

void Zab::apply_sync(SyncPlan plan, Zxid committed, std::function<void()> durable) {
  pending_sync_.durable = std::move(durable);
  sdk::Storage& storage = chost_->storage();
  if (plan.mode == SyncPlan::Mode::trunc) {
    if (plan.trunc_zxid < last_applied_ || plan.trunc_zxid > last_logged_) {
      host_->logger().error("refusing to truncate the log after " + hex(plan.trunc_zxid) + ": entries up to " +
                            hex(last_applied_) + " are committed and the log ends at " + hex(last_logged_));
      go_looking("inconsistent TRUNC");
      return;
    }
    if (Status st = storage.truncate_after(plan.trunc_zxid); !st) {
      go_looking("cannot truncate the log: " + st.to_string());
      return;
    }
    ++log_generation_;
    while (!unapplied_.empty() && unapplied_.back().zxid > plan.trunc_zxid) unapplied_.pop_back();
    last_logged_ = last_durable_ = plan.trunc_zxid;
    recompute_seen();
  }
  if (plan.mode != SyncPlan::Mode::snap) {
    finish_sync(std::move(plan.entries), committed);
    return;
  }
  if (plan.snap_zxid < last_applied_) {
    go_looking("the leader sent a snapshot older than what this server applied");
    return;
  }
  if (Status st = chost_->load_snapshot(plan.snap_zxid, plan.snapshot); !st) {
    go_looking("cannot load the leader's snapshot: " + st.to_string());
    return;
  }
  ++log_generation_;
  unapplied_.clear();
  recent_.clear();
  recompute_seen();
  last_applied_ = commit_target_ = last_logged_ = last_durable_ = plan.snap_zxid;
  auto sink = storage.begin_snapshot(plan.snap_zxid);
  Status st = sink ? sink.value()->write(plan.snapshot) : sink.status();
  if (!st) {
    go_looking("cannot store the leader's snapshot: " + st.to_string());
    return;
  }
  // Nothing may be appended before the snapshot is durable: a crash would
  // otherwise leave log entries after a hole.
  pending_sync_.in_progress = true;
  snapshot_in_flight_ = true;
  std::shared_ptr<sdk::SnapshotSink> keep(std::move(sink.value()));
  uint64_t gen = generation_;
  auto entries = std::make_shared<std::vector<LogEntry>>(std::move(plan.entries));
  Zxid snap_zxid = plan.snap_zxid;
  keep->commit([this, alive = alive_.ref(), keep, gen, entries, committed, snap_zxid](const Status& st) {
    if (!alive) return;
    snapshot_in_flight_ = false;
    if (!st) {
      host_->logger().error("cannot store the leader's snapshot: " + st.to_string());
      ++generation_;
      if (stage_ != Stage::looking) go_looking("storing the snapshot failed");
      return;
    }
    // Entries of the abandoned history after the snapshot, if any, go.
    if (Status t = chost_->storage().truncate_after(snap_zxid); !t) {
      if (stage_ != Stage::looking) go_looking("cannot truncate the log: " + t.to_string());
      return;
    }
    if (gen == generation_ && stage_ != Stage::looking) finish_sync(std::move(*entries), committed);
    else drain_deferred();
  });
}

void Zab::finish_sync(std::vector<LogEntry> entries, Zxid committed) {
  pending_sync_.in_progress = false;
  for (LogEntry& e : entries)
    if (e.zxid > last_logged_) append(std::move(e));
  commit_target_ = std::max(commit_target_, std::min(committed, last_logged_));
  apply_committed();
  if (stage_ == Stage::looking) return;
  // A snapshot from the leader may have brought a newer membership.
  membership_changed("the membership in the leader's snapshot");
  if (stage_ == Stage::looking || removed_) return;
  pending_sync_.target = last_logged_;
  pending_sync_.awaiting_durable = true;
  check_sync_durable();
  // Messages that arrived while the snapshot was written, in order.
  drain_deferred();
}

void Zab::check_sync_durable() {
  if (!pending_sync_.awaiting_durable || last_durable_ < pending_sync_.target) return;
  pending_sync_.awaiting_durable = false;
  auto done = std::move(pending_sync_.durable);
  pending_sync_.durable = nullptr;
  if (done) done();
}

// ---------------------------------------------------------------- clients

void Zab::sync(std::function<void(const Status&)> done) {
  if (!running_ || stage_ != Stage::broadcast) {
    host_->executor().post([done = std::move(done)] { done(Status(Errc::unavailable, "no leader is established")); });
    return;
  }
  if (leader_ == self_) {
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
  for (const auto& [id, l] : lead_.learners) {
    sdk::LearnerStatus ls;
    ls.id = id;
    ls.observer = l.observer;
    ls.synced = l.step == Learner::Step::broadcast;
    ls.last_acked = l.acked;
    ls.stage = l.step == Learner::Step::broadcast ? "broadcast"
               : l.step == Learner::Step::sync_sent ? "sync"
                                                    : "discovery";
    s.learners.push_back(ls);
  }
  return s;
}

}  // namespace corral::zab
