// Raft's log: the entries after log_base_ in memory (older ones are read
// back from storage), appends and their acknowledgements, cutting a
// conflicting tail, writing the tail again after storage refused it, and
// applying what is committed.
#include <algorithm>

#include "raft.hpp"
#include "raft_internal.hpp"

namespace corral::raft {

using sdk::Errc;
using sdk::LogEntry;
using sdk::Role;
using sdk::Status;
using sdk::Zxid;

size_t Raft::upper(Zxid z) const {
  auto it = std::upper_bound(log_.begin(), log_.end(), z,
                             [](Zxid v, const LogEntry& e) { return v < e.zxid; });
  return static_cast<size_t>(it - log_.begin());
}

bool Raft::holds(Zxid z) const {
  // Everything up to log_base_ is committed, and a leader's log holds the
  // committed entries below any of its own (they are in zxid order), so an
  // append's starting point at or below it is held.
  if (z <= log_base_) return true;
  size_t i = upper(z);
  return i > 0 && log_[i - 1].zxid == z;
}

Zxid Raft::hint_for(Zxid prev) const {
  size_t i = upper(prev);
  return i == 0 ? log_base_ : log_[i - 1].zxid;
}

void Raft::append_local(LogEntry e) {
  if (auto m = chost_->membership_in(e)) pending_configs_.emplace_back(e.zxid, std::move(*m));
  log_bytes_ += e.body.size();
  log_.push_back(std::move(e));
  if (!rewrite_pending_) store(log_.back());
}

void Raft::store(const LogEntry& e) {
  ++appends_in_flight_;
  chost_->storage().append(
      e, [this, alive = alive_.ref(), gen = log_generation_, z = e.zxid](const Status& st) {
        if (!alive) return;
        --appends_in_flight_;
        on_stored(gen, z, st);
        if (rewrite_pending_ && appends_in_flight_ == 0 && !rewrite_posted_) {
          rewrite_posted_ = true;
          host_->executor().post([this, alive = alive_.ref()] {
            if (!alive) return;
            rewrite_posted_ = false;
            if (running_ && rewrite_pending_) rewrite_tail();
          });
        }
      });
}

void Raft::on_stored(uint64_t generation, Zxid zxid, const Status& st) {
  if (!running_) return;
  // A refusal counts whatever its generation: storage refuses every append
  // made before the refusal is heard, including this generation's.
  if (generation != log_generation_ && st) return;
  if (!st) {
    if (rewrite_pending_) return;
    // What storage holds after the last entry it confirmed is unknown (a
    // full disk may take a later entry and leave a hole): cut there and write
    // the tail again from memory, once a tick, until it is all durable.
    host_->logger().warn("storage refused the entry " + hex(zxid) + ": " + st.to_string() +
                         "; the log after " + hex(last_durable_) + " is written again");
    rewrite_pending_ = true;
    ++log_generation_;
    if (state_ == State::leader) step_down("storage refused an append: " + st.to_string());
    return;
  }
  last_durable_ = std::max(last_durable_, zxid);
  if (state_ == State::leader) {
    advance_commit();
  } else {
    post_ack();
    if (handover_term_ == term_ && handover_term_ != 0 && appends_in_flight_ == 0 &&
        state_ == State::follower && leader_ != 0) {
      handover_term_ = 0;
      host_->executor().post([this, alive = alive_.ref(), term = term_] {
        if (!alive || !running_ || term != term_ || state_ != State::follower || !can_campaign())
          return;
        host_->logger().info("server " + std::to_string(leader_) +
                             " hands this server the leadership");
        start_election(true);
      });
    }
  }
}

void Raft::rewrite_tail() {
  // Only once every append made before is answered: storage refuses each
  // append made before it was heard to refuse one, and one made after the
  // tail was written again would otherwise land after a hole.
  if (appends_in_flight_ > 0) return;
  if (Status st = chost_->storage().truncate_after(last_durable_); !st) return;
  ++log_generation_;
  rewrite_pending_ = false;
  for (size_t i = upper(last_durable_); i < log_.size() && !rewrite_pending_; ++i) store(log_[i]);
}

bool Raft::truncate_from(size_t index) {
  if (index >= log_.size()) return true;
  if (log_[index].zxid <= commit_) {
    host_->logger().error("refusing to cut the log at " + hex(log_[index].zxid) +
                          ": entries up to " + hex(commit_) + " are committed");
    return false;
  }
  Zxid cut = index == 0 ? log_base_ : log_[index - 1].zxid;
  // Cut at the durable prefix: an append in flight below the cut may yet be
  // refused, and its answer is void once the log is cut. What lies between
  // is written again.
  Zxid keep = std::min(last_durable_, cut);
  ++log_generation_;
  if (Status st = chost_->storage().truncate_after(keep); !st) {
    host_->logger().warn("cannot cut the log after " + hex(keep) + ": " + st.to_string());
    rewrite_pending_ = true;
  } else if (appends_in_flight_ > 0) {
    // An append still unanswered may be refused, and so every append after
    // it: what lies between is written again once all are answered.
    rewrite_pending_ = true;
  }
  while (log_.size() > index) {
    log_bytes_ -= log_.back().body.size();
    log_.pop_back();
  }
  while (!pending_configs_.empty() && pending_configs_.back().first > cut)
    pending_configs_.pop_back();
  last_durable_ = keep;
  acked_sent_ = std::min(acked_sent_, keep);
  if (!rewrite_pending_)
    for (size_t i = upper(keep); i < log_.size(); ++i) store(log_[i]);
  return true;
}

void Raft::trim_log() {
  Zxid floor = std::min(last_applied_, last_durable_);
  while (!log_.empty() && log_.front().zxid <= floor &&
         (log_.size() > opt_.recent_entries || log_bytes_ > opt_.recent_bytes)) {
    log_base_ = log_.front().zxid;
    log_bytes_ -= log_.front().body.size();
    log_.pop_front();
  }
}

void Raft::apply_committed() {
  // The kernel's apply may call back (a sync from a channel the entry
  // answered): the loop already running applies what follows.
  if (applying_) return;
  applying_ = true;
  bool members_changed = false;
  while (last_applied_ < commit_ && running_) {
    size_t i = upper(last_applied_);
    if (i >= log_.size() || log_[i].zxid > commit_) break;
    const LogEntry& e = log_[i];
    last_applied_ = e.zxid;
    // An empty body is Raft's own no-op (a new leader's first entry): the
    // kernel never writes one.
    if (!e.body.empty()) chost_->apply(e);
    if (!pending_configs_.empty() && pending_configs_.front().first <= last_applied_) {
      pending_configs_.erase(pending_configs_.begin());
      members_changed = true;
    }
  }
  applying_ = false;
  if (!running_) return;
  if (members_changed) {
    refresh_members();
    if (state_ == State::leader && !is_voter_anywhere(self_)) {
      hand_off("this server is no longer a voter");
      if (state_ != State::leader) return;
    }
    if (state_ == State::follower && synced_) {
      host_->logger().info(std::string("now ") + (observer_ ? "an observer" : "a voter") +
                           " under server " + std::to_string(leader_));
      set_role(observer_ ? Role::observing : Role::following, leader_);
    }
  }
  while (!applied_waiters_.empty() && applied_waiters_.begin()->first <= last_applied_) {
    answer(std::move(applied_waiters_.begin()->second), Status());
    applied_waiters_.erase(applied_waiters_.begin());
  }
  if (state_ == State::leader && role_ != Role::leading && noop_zxid_ != 0 &&
      last_applied_ >= noop_zxid_) {
    // Through a handover, clients stay only if this log holds every write
    // they sent before the hold.
    bool seamless = handover_pending() && handover_held_by_log();
    if (holding_ && !seamless) {
      end_hold(false);
      if (role_ != Role::looking) set_role(Role::looking, 0);
    }
    host_->logger().info(
        "leading in term " + std::to_string(term_) + " from zxid " + hex(noop_zxid_) +
        (seamless ? "; serving clients, kept through the handover" : "; serving clients"));
    set_role(Role::leading, self_, seamless);
    if (seamless) end_hold(true);
    if (state_ != State::leader) return;
    if (events_) events_(RaftEvent{RaftEvent::Kind::leader, term_, self_});
    check_reads();
    if (!is_voter_anywhere(self_)) hand_off("this server is not a voter");
  }
  trim_log();
}

void Raft::post_ack() {
  if (state_ == State::leader || leader_ == 0 || ack_posted_) return;
  if (std::min(last_durable_, matched_) <= acked_sent_) return;
  ack_posted_ = true;
  host_->executor().post([this, alive = alive_.ref()] {
    if (!alive) return;
    ack_posted_ = false;
    if (!running_ || state_ == State::leader || leader_ == 0) return;
    Zxid ack = std::min(last_durable_, matched_);
    if (ack <= acked_sent_) return;
    acked_sent_ = ack;
    Msg m;
    m.type = MsgType::ack;
    m.term = term_;
    m.durable = ack;
    m.commit = commit_;
    send(leader_, m);
  });
}

}  // namespace corral::raft
