// The Zab core, leader transfer: the leader hands over to a synced voter
// without an election and without losing a write.
//
//   1. The leader holds its own clients' new writes and sends HOLD to every
//      synced learner, which answers HOLD_ACK after the last REQUEST it sent
//      and holds its clients' writes from then on (so each session's writes
//      stay in order: those sent before are ordered by this leader, those
//      after by the next). It waits for every answer and until the server
//      taking over has acknowledged every entry it logged and all of them
//      are committed and applied (bounded by two ticks; past it the handover
//      is called off, RELEASE sends the learners' held writes on, and this
//      leader proposes its own).
//   2. It sends TAKE_OVER(next, epoch, last zxid) to every synced learner and
//      becomes a learner of `next` itself. `next` starts leading at once
//      (discovery with a new epoch, as after an election: safety does not
//      depend on who leads, only on discovery and sync), the others follow it.
//      Nobody goes through `looking`, so clients stay connected; every server
//      holds its clients' writes and syncs until it is synced under the new
//      leader, then sends them on. If the new leader does not establish
//      itself within init_limit, everyone looks for a leader as after any
//      failure.
#include <algorithm>

#include "zab.hpp"
#include "zab_internal.hpp"

namespace corral::zab {

void Zab::transfer_leadership(ServerId to, bool leaving, std::function<void(const Status&)> done) {
  auto answer = [this, &done](Status st) {
    host_->executor().post([done = std::move(done), st = std::move(st)] { done(st); });
  };
  if (!running_) return answer({Errc::unavailable, "the server is stopping"});
  if (transfer_done_ || holding_)
    return answer({Errc::already_exists, "a leader handover is in progress already"});
  if (stage_ != Stage::broadcast || role_ == Role::looking)
    return answer({Errc::unavailable, "no leader is established"});
  if (to != 0 && !is_voter(to))
    return answer({Errc::invalid_argument,
                   "server " + std::to_string(to) + " is not a voting member of the ensemble"});
  if (to != 0 && to == leader_) return answer({});     // it leads already
  if (leaving && leader_ != self_) return answer({});  // only a leader has anything to hand over
  if (ServerId fixed = election_->fixed_leader(); fixed != 0)
    return answer({Errc::unavailable, "the election always names server " + std::to_string(fixed) +
                                          " (plugins.election = \"static\"): the leadership "
                                          "cannot move"});
  const int64_t limit = (2 + opt_.init_limit) * opt_.tick_ms;
  transfer_done_ = std::move(done);
  transfer_deadline_ = now_ + limit;
  transfer_target_ = to;
  leaving_ = leaving;
  if (leader_ == self_) {
    if (Status st = begin_transfer(to, 0, 0); !st) finish_transfer(st);
    return;
  }
  Msg m;
  m.type = MsgType::transfer_request;
  m.id = to;
  send_to_leader(m);
}

Status Zab::begin_transfer(ServerId to, ServerId asker, int64_t asker_nonce) {
  LeaderState& ld = lead();
  if (!ld.established) return {Errc::unavailable, "the leader is not established"};
  if (ld.transfer_to != 0 || holding_)
    return {Errc::already_exists, "a leader handover is in progress already"};
  if (seen_zxid_ != 0)
    return {Errc::unavailable,
            "a membership change is being committed; hand over once it is applied"};
  if (to == 0) {
    // The voter that has acknowledged the most, the lowest id among equals.
    Zxid best = 0;
    for (const auto& [id, l] : ld.learners)
      if (!l.observer && !l.leaving && l.step == Learner::Step::broadcast &&
          (to == 0 || l.acked > best)) {
        to = id;
        best = l.acked;
      }
    if (to == 0) return {Errc::unavailable, "no voting follower is synced to take over"};
  } else if (to == self_) {
    return {Errc::invalid_argument, "server " + std::to_string(to) + " leads already"};
  } else {
    auto it = ld.learners.find(to);
    if (it == ld.learners.end() || it->second.observer || it->second.leaving ||
        it->second.step != Learner::Step::broadcast)
      return {Errc::unavailable,
              "server " + std::to_string(to) + " is not a voting follower synced with the leader"};
  }
  if (asker == 0 && leaving_ && !is_quorum([&](ServerId id) {
        auto l = ld.learners.find(id);
        return id != self_ && l != ld.learners.end() && !l->second.leaving &&
               l->second.step == Learner::Step::broadcast;
      }))
    return {Errc::unavailable,
            "the other voters in touch do not make a quorum without this server, so no leader "
            "can take over once it stops"};
  ld.transfer_to = to;
  ld.transfer_id = ++transfers_begun_;
  ld.transfer_deadline = now_ + 2 * opt_.tick_ms;
  ld.transfer_asker = asker;
  ld.transfer_asker_nonce = asker_nonce;
  holding_ = true;
  host_->logger().info("handing the leadership of epoch " + std::to_string(current_epoch_) +
                       " to server " + std::to_string(to) +
                       (asker ? " (asked by server " + std::to_string(asker) + ")" : "") +
                       ": holding new writes until it has all " + hex(last_logged_) + " commits");
  check_transfer();
  return {};
}

void Zab::check_transfer() {
  LeaderState* ld = leading();
  if (!ld || !ld->established || ld->transfer_to == 0) return;
  auto it = ld->learners.find(ld->transfer_to);
  if (it == ld->learners.end() || it->second.step != Learner::Step::broadcast)
    return abort_transfer("server " + std::to_string(ld->transfer_to) + " left");
  if (now_ > ld->transfer_deadline)
    return abort_transfer("server " + std::to_string(ld->transfer_to) +
                          " did not catch up within " + std::to_string(2 * opt_.tick_ms) +
                          " ms (it acknowledged " + hex(it->second.acked) + " of " +
                          hex(last_logged_) + "; committed " + hex(commit_target_) + ", applied " +
                          hex(last_applied_) + ", durable " + hex(last_durable_) + ")");
  // Every synced learner holds its clients' writes (one that synced since
  // the handover began is asked now).
  bool all_hold = true;
  for (auto& [id, l] : ld->learners) {
    if (l.step != Learner::Step::broadcast) continue;
    if (!l.hold_sent) {
      l.hold_sent = true;
      Msg h;
      h.type = MsgType::hold;
      h.id = ld->transfer_id;
      send_to(l, h);
    }
    all_hold = all_hold && l.hold_acked;
  }
  // One that does not answer within a tick (paused, slow) is left behind:
  // cut off at the handover, it looks for a leader and finds the new one,
  // its clients reconnect, and nothing it sent can overtake what it holds.
  // Then only if those that did answer (and this leader, unless it is
  // stopping) are a quorum the new leader can stand on.
  if (!all_hold) {
    if (now_ <= ld->transfer_deadline - opt_.tick_ms) return;
    if (!is_quorum([&](ServerId id) {
          if (id == self_) return !leaving_;
          auto l = ld->learners.find(id);
          return l != ld->learners.end() && l->second.hold_acked && !l->second.leaving;
        }))
      return;  // called off at the deadline
  }
  if (!it->second.hold_acked || it->second.acked < last_logged_ || commit_target_ < last_logged_ ||
      last_applied_ < last_logged_ || last_durable_ < last_logged_)
    return;
  hand_over();
}

void Zab::abort_transfer(const std::string& why) {
  LeaderState& ld = lead();
  host_->logger().warn("leader handover to server " + std::to_string(ld.transfer_to) +
                       " called off: " + why + "; this server goes on leading");
  ServerId asker = ld.transfer_asker;
  int64_t nonce = ld.transfer_asker_nonce;
  ld.transfer_to = ld.transfer_asker = 0;
  Msg rel;
  rel.type = MsgType::release;
  sdk::Bytes release = encode_payload(rel);
  for (auto& [id, l] : ld.learners) {
    if (l.hold_sent) send_to(l, MsgType::release, release);
    l.hold_sent = l.hold_acked = false;
  }
  if (asker != 0) {
    auto l = ld.learners.find(asker);
    if (l != ld.learners.end() && l->second.nonce == nonce) {
      Msg r;
      r.type = MsgType::transfer_reply;
      r.id = static_cast<int64_t>(Errc::unavailable);
      r.text = why;
      send_to(l->second, r);
    }
  }
  finish_transfer({Errc::unavailable, why});
  release_held(false);
}

void Zab::hand_over() {
  LeaderState& ld = lead();
  const ServerId next = ld.transfer_to;
  Msg t;
  t.type = MsgType::take_over;
  t.id = next;
  t.epoch = current_epoch_;
  t.zxid = last_logged_;
  sdk::Bytes payload = encode_payload(t);
  std::vector<ServerId> unsynced;
  for (auto& [id, l] : ld.learners) {
    if (l.step == Learner::Step::broadcast && l.hold_acked)
      send_to(l, MsgType::take_over, payload);
    else
      unsynced.push_back(id);  // it elects, and the election (settled below) names the new one
  }
  for (ServerId id : unsynced) net_->disconnect(id, PeerChannel::quorum);
  // Local quorum syncs wait for the next leader; learners ask it again.
  for (auto* list : {&ld.syncs_queued, &ld.syncs_in_round})
    for (auto& s : *list)
      if (s.local) held_syncs_.push_back(std::move(s.local));
  host_->logger().info("handing over: server " + std::to_string(next) + " leads after epoch " +
                       std::to_string(current_epoch_) + " (everything up to " + hex(last_logged_) +
                       " is committed)");
  move_to(next);
}

void Zab::move_to(ServerId next) {
  ++generation_;
  pending_sync_ = PendingSync{};
  commit_target_ = last_applied_;
  moving_ = holding_ = true;
  leader_ = next;
  stage_ = Stage::discovery;
  stage_started_ = now_;
  if (role_ == Role::leading) role_ = Role::following;  // the kernel hears once synced
  // A server that looks meanwhile hears who leads next (not the old leader).
  election_->settled(sdk::ElectionResult{next, last_logged_, current_epoch_, 0});
  if (next == self_) {
    side_.emplace<LeaderState>();
    host_->logger().info("taking over the leadership: waiting for a quorum of " +
                         std::to_string(quorum()) + " to join");
    // Its syncs that the old leader did not answer: answered as its own
    // once it leads.
    for (auto& [id, done] : sync_requests_) held_syncs_.push_back(std::move(done));
    sync_requests_.clear();
    // FOLLOWERINFOs that came just before the TAKE_OVER did.
    auto early = std::move(early_infos_);
    early_infos_.clear();
    for (auto& [id, seen] : early) {
      if (!leading() || stage_ != Stage::discovery) break;
      if (now_ - seen.first <= 2 * opt_.retry_ms) on_learner_message(id, seen.second);
    }
    if (leading()) maybe_decide_epoch();
    return;
  }
  early_infos_.clear();
  side_.emplace<LearnerState>().last_heard = now_;
  send_follower_info();
}

void Zab::end_move() {
  moving_ = false;
  early_infos_.clear();
  release_held(true);
  // Another handover than the one this server asked for may have come first.
  if (transfer_target_ != 0 && transfer_target_ != leader_)
    finish_transfer({Errc::unavailable,
                     "another handover came first: server " + std::to_string(leader_) + " leads"});
  else
    finish_transfer({});
}

void Zab::release_held(bool after_move) {
  holding_ = false;
  std::deque<sdk::Bytes> held = std::move(held_);
  held_.clear();
  held_bytes_ = 0;
  auto syncs = std::move(held_syncs_);
  held_syncs_.clear();
  // A learner asks its new leader again for the syncs its old one did not
  // answer (the ids are its own).
  if (LearnerState* learn = learning(); after_move && learn && stage_ == Stage::broadcast)
    for (const auto& [id, done] : sync_requests_) {
      Msg m;
      m.type = MsgType::sync_request;
      m.id = id;
      send_to_leader(m);
    }
  for (auto& body : held) {
    if (!running_) return;
    sdk::Bytes copy = body;
    if (Status st = submit(std::move(body)); !st) chost_->rejected(LogEntry{0, 0, copy}, st);
  }
  for (auto& s : syncs) sync(std::move(s));
}

void Zab::finish_transfer(const Status& st) {
  leaving_ = false;
  if (!transfer_done_) return;
  auto done = std::move(transfer_done_);
  transfer_done_ = nullptr;
  host_->executor().post([done = std::move(done), st] { done(st); });
}

}  // namespace corral::zab
