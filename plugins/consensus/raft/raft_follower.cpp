// Raft, the follower's (and observer's) side: appends and snapshots from the
// leader, forwarded writes and syncs, and the calls the kernel makes.
#include <algorithm>

#include "raft.hpp"
#include "raft_internal.hpp"

namespace corral::raft {

using sdk::Errc;
using sdk::LogEntry;
using sdk::Role;
using sdk::ServerId;
using sdk::Status;
using sdk::Zxid;

void Raft::heard_from_leader(ServerId from) {
  early_election_ = false;
  early_used_ = false;
  leader_deadline_ = 0;
  if (state_ != State::follower || leader_ != from)
    become_follower(term_, from,
                    "server " + std::to_string(from) + " leads term " + std::to_string(term_));
  last_leader_contact_ = now_;
  reset_election_timer();
}

void Raft::on_append(ServerId from, Msg& m) {
  heard_from_leader(from);
  if (state_ != State::follower || leader_ != from) return;
  if (m.fwd_nonce == fwd_nonce_) {
    // The leader has taken our forwarded writes below m.seq.
    while (!forwarded_.empty() && forwarded_.front().seq < m.seq) {
      forwarded_bytes_ -= forwarded_.front().body.size();
      forwarded_.pop_front();
      last_forward_progress_ = now_;
    }
  }
  Msg reply;
  reply.type = MsgType::append_reply;
  reply.term = term_;
  reply.send_id = m.send_id;
  reply.round = m.round;
  if (snapshot_in_flight_ || snapshot_unsaved_) {
    reply.flag = true;  // busy with the leader's snapshot: nothing may be appended yet
    reply.granted = snapshot_in_flight_;  // storing it; else its store failed: send it again
    send(from, reply);
    return;
  }
  if (!holds(m.zxid)) {
    reply.zxid = hint_for(m.zxid);
    reply.commit = commit_;
    reply.durable = std::min(last_durable_, matched_);
    send(from, reply);
    return;
  }
  size_t i = upper(m.zxid);
  for (LogEntry& e : m.entries) {
    if (e.zxid <= log_base_) continue;  // committed: held
    if (i < log_.size()) {
      if (log_[i].zxid == e.zxid) {  // the same entry (one leader per term)
        ++i;
        continue;
      }
      if (!truncate_from(i)) {
        reply.zxid = hint_for(m.zxid);
        reply.commit = commit_;
        send(from, reply);
        return;
      }
    }
    append_local(std::move(e));
    i = log_.size();
  }
  Zxid last = m.entries.empty() ? m.zxid : std::max(m.zxid, m.entries.back().zxid);
  matched_ = std::max(matched_, last);
  commit_ = std::max(commit_, std::min(m.commit, matched_));
  if (handover_zxid_ != 0 && term_ == hold_term_ && commit_ >= handover_zxid_)
    handover_committed_ = true;
  apply_committed();
  if (!running_ || state_ != State::follower || leader_ != from) return;
  if (!synced_ && last_applied_ >= m.commit) {
    synced_ = true;
    // Through a handover, clients stay only if this leader's log holds
    // every write they sent before the hold.
    bool seamless = handover_pending() && handover_held_by_log();
    // Back with the leader that froze its log (in its term still): the
    // handover goes on, and so does the hold.
    bool still = seamless && term_ == hold_term_;
    if (holding_ && !seamless) {
      end_hold(false);
      if (role_ != Role::looking) set_role(Role::looking, 0);
    }
    host_->logger().info(
        "following server " + std::to_string(leader_) + " in term " + std::to_string(term_) +
        " at zxid " + hex(last_applied_) +
        (seamless ? "; serving clients, kept through the handover" : "; serving clients"));
    set_role(observer_ ? Role::observing : Role::following, leader_, seamless);
    if (seamless && !still) end_hold(true);
    if (events_) events_(RaftEvent{RaftEvent::Kind::follower, term_, leader_});
    if (transfer_done_ && transfer_follow_ && term_ > transfer_term_)
      finish_transfer(transfer_want_ == 0 || transfer_want_ == leader_
                          ? Status()
                          : Status(Errc::unavailable,
                                   "server " + std::to_string(leader_) + " was elected instead"));
  }
  reply.granted = true;
  reply.zxid = last;
  reply.commit = commit_;
  reply.durable = std::min(last_durable_, matched_);
  acked_sent_ = std::max(acked_sent_, reply.durable);
  if (m.round != 0 && synced_) reply.body = chost_->take_session_activity();
  send(from, reply);
  post_ack();
}

bool Raft::continues_incoming(const Msg& m) const {
  return m.id >= 0 && m.zxid == incoming_zxid_ && m.term == incoming_term_ &&
         static_cast<uint64_t>(m.id) == incoming_size_;
}

void Raft::drop_incoming_snapshot() {
  incoming_ = {};
  incoming_zxid_ = 0;
  incoming_term_ = 0;
}

void Raft::on_snapshot(ServerId from, Msg& m) {
  heard_from_leader(from);
  if (state_ != State::follower || leader_ != from || snapshot_in_flight_) return;
  Msg reply;
  reply.type = MsgType::snapshot_reply;
  reply.term = term_;
  reply.zxid = m.zxid;
  if (!snapshot_unsaved_ && holds(m.zxid)) {
    // The log already holds the snapshot's last entry, and so (log matching)
    // the leader's log up to it: what follows is kept, and the leader goes
    // on from there. Replacing it would drop entries this server may have
    // acknowledged.
    matched_ = std::max(matched_, m.zxid);
    reply.granted = true;
    reply.durable = std::min(last_durable_, matched_);
    send(from, reply);
    return;
  }
  // The snapshot comes in pieces, in order. After a gap (a piece lost, a
  // link broken) the bytes held are kept and the leader is told how many,
  // so that it goes on from there. Pieces are tied to the leader's term:
  // one leader's pieces never continue another's.
  if (m.id > 0 && static_cast<uint64_t>(m.id) > opt_.max_sync_bytes) {
    // Too large to hold: refused (unanswered, the leader sends it again),
    // and said once for each snapshot, as an error: this server cannot
    // catch up until the bound is raised.
    if (refused_snapshot_ != m.zxid)
      host_->logger().error("refusing the leader's snapshot at " + hex(m.zxid) + " of " +
                            std::to_string(m.id) + " bytes, more than max_sync_bytes (" +
                            std::to_string(opt_.max_sync_bytes) +
                            "): raise [consensus.raft] max_sync_bytes for a tree this large");
    refused_snapshot_ = m.zxid;
    drop_incoming_snapshot();
    return;
  }
  // A piece of the copy held (same snapshot, same leader's term): taken
  // from wherever it starts at or before the bytes held, since it is the
  // same file's bytes (a duplicate, or the leader sending again from an
  // earlier byte adds only what lies past them).
  if (m.seq == 0 && !continues_incoming(m)) {
    incoming_zxid_ = m.zxid;
    incoming_term_ = m.term;
    incoming_size_ = static_cast<uint64_t>(std::max<int64_t>(m.id, 0));
    incoming_.clear();
  }
  const bool fits = continues_incoming(m) && !m.body.empty() && m.body.size() <= incoming_size_ &&
                    m.seq <= incoming_size_ - m.body.size();
  if (!fits || m.seq > incoming_.size()) {
    if (fits) {
      // A piece went missing: the bytes held are kept, and the reply says
      // how many, so that the leader sends the rest from there. (Every
      // piece after the gap says so; the leader acts on the first.)
      reply.seq = incoming_.size();
      send(from, reply);
      return;
    }
    if (!incoming_.empty() || m.seq == 0)
      host_->logger().warn("dropping the leader's snapshot at " + hex(m.zxid) + ": piece at " +
                           std::to_string(m.seq) + " does not follow the " +
                           std::to_string(incoming_.size()) + " bytes held");
    drop_incoming_snapshot();
    send(from, reply);  // not granted: the leader starts again
    return;
  }
  const uint64_t reached = m.seq + m.body.size();
  if (reached > incoming_.size())
    incoming_.append(std::string_view(m.body).substr(incoming_.size() - m.seq));
  if (incoming_.size() < incoming_size_) {
    Msg ack;
    ack.type = MsgType::snapshot_reply;
    ack.term = term_;
    ack.zxid = m.zxid;
    ack.flag = true;
    ack.seq = reached;
    send(from, ack);
    return;
  }
  m.body = std::move(incoming_);
  drop_incoming_snapshot();
  if (Status st = chost_->load_snapshot(m.zxid, m.body); !st) {
    host_->logger().warn("cannot load the leader's snapshot at " + hex(m.zxid) + ": " +
                         st.to_string());
    send(from, reply);
    return;
  }
  // The state is the snapshot's now; the log before it is of no use, and
  // what follows it is sent again. Nothing is appended until the snapshot
  // is durable, or a crash would leave log entries after a hole.
  ++log_generation_;
  log_.clear();
  log_bytes_ = 0;
  pending_configs_.clear();
  log_base_ = last_applied_ = commit_ = last_durable_ = matched_ = m.zxid;
  acked_sent_ = 0;
  rewrite_pending_ = false;
  refresh_members();
  snapshot_unsaved_ = true;
  auto sink = chost_->storage().begin_snapshot(m.zxid);
  Status st = sink ? sink.value()->write(m.body) : sink.status();
  if (!st) {
    host_->logger().error("cannot store the leader's snapshot: " + st.to_string());
    send(from, reply);
    return;
  }
  host_->logger().info("loaded the leader's snapshot at " + hex(m.zxid) + " (" +
                       std::to_string(m.body.size()) + " bytes)");
  snapshot_in_flight_ = true;
  std::shared_ptr<sdk::SnapshotSink> keep(std::move(sink.value()));
  keep->commit(
      [this, alive = alive_.ref(), keep, z = m.zxid, term = term_, from](const Status& st) {
        if (!alive) return;
        snapshot_in_flight_ = false;
        Msg reply;
        reply.type = MsgType::snapshot_reply;
        reply.term = term_;
        reply.zxid = z;
        if (!st) {
          host_->logger().error("cannot store the leader's snapshot: " + st.to_string());
        } else if (Status t = chost_->storage().truncate_after(z); !t) {
          host_->logger().error("cannot cut the log after the leader's snapshot: " + t.to_string());
        } else {
          snapshot_unsaved_ = false;
          ++log_generation_;
          last_durable_ = std::max(last_durable_, z);
          reply.granted = true;
          reply.durable = z;
        }
        if (running_ && term == term_ && leader_ == from) send(from, reply);
      });
}

void Raft::on_sync_reply(const Msg& m) {
  auto it = sync_requests_.find(m.id);
  if (it == sync_requests_.end()) return;
  applied_waiters_.emplace(m.zxid, std::move(it->second.done));
  sync_requests_.erase(it);
  apply_committed();
}

void Raft::on_timeout_now(ServerId from, const Msg& m) {
  if (from != leader_ || last_logged() < m.zxid) return;
  if (!can_campaign()) {
    // Appends still on their way to disk (the leader takes no new writes
    // now, so they drain): stand once they are durable.
    if (appends_in_flight_ > 0 && !rewrite_pending_) handover_term_ = term_;
    return;
  }
  host_->logger().info("server " + std::to_string(from) + " hands this server the leadership");
  handover_term_ = 0;
  start_election(true);
}

// ---------------------------------------------------------------- handovers

void Raft::on_hold(ServerId from, const Msg& m) {
  if (state_ != State::follower || from != leader_) return;
  Msg ack;
  ack.type = MsgType::hold_ack;
  ack.term = term_;
  ack.id = m.id;
  hold_id_ = m.id;
  if (synced_) {
    ack.granted = true;
    // Serving clients: their new writes and syncs wait from now on, and
    // the leader learns how far this server's stream went before.
    // (A HOLD after TAKE_OVER: a handover called off whose RELEASE was
    // lost, and another begun; the new one's TAKE_OVER counts.)
    holding_ = true;
    hold_term_ = term_;
    handover_zxid_ = 0;
    handover_committed_ = false;
    hold_target_ = static_cast<ServerId>(m.target);
    hold_deadline_ = now_ + 2 * opt_.election_ticks * opt_.tick_ms;
    ack.fwd_nonce = fwd_nonce_;
    ack.seq = fwd_next_seq_;
  }
  // (Not serving: nothing to hold. Its clients were closed when it lost its
  // last leader, and it sends nothing before it serves.)
  send(from, ack);
}

void Raft::on_take_over(ServerId from, const Msg& m) {
  if (state_ != State::follower || from != leader_ || !holding_ || hold_term_ != term_ ||
      m.id != hold_id_)
    return;
  if (m.fwd_nonce == fwd_nonce_) {
    while (!forwarded_.empty() && forwarded_.front().seq < m.seq) {
      forwarded_bytes_ -= forwarded_.front().body.size();
      forwarded_.pop_front();
    }
  }
  // A write the leader did not take: this server looks for the next leader
  // as after a failure, when the term changes.
  if (!forwarded_.empty()) return;
  handover_zxid_ = m.zxid;
  handover_committed_ = commit_ >= m.zxid;
  hold_target_ = static_cast<ServerId>(m.target);
  hold_deadline_ = now_ + 2 * opt_.election_ticks * opt_.tick_ms;
}

bool Raft::handover_held_by_log() const {
  if (handover_zxid_ == 0) return false;
  if (handover_committed_ || handover_zxid_ == log_base_) return true;
  // A follower: matched with its leader through that entry; a leader: its
  // own log.
  if (state_ != State::leader && matched_ < handover_zxid_) return false;
  size_t i = upper(handover_zxid_);
  return i > 0 && log_[i - 1].zxid == handover_zxid_;
}

Status Raft::hold_write(sdk::Bytes body) {
  if (held_.size() >= opt_.max_forwarded || held_bytes_ + body.size() > opt_.max_forwarded_bytes)
    return {Errc::unavailable, "a leader handover is in progress and " +
                                   std::to_string(held_.size()) + " writes are held already"};
  held_bytes_ += body.size();
  held_.push_back(std::move(body));
  return {};
}

void Raft::give_up_hold(const std::string& why) {
  host_->logger().warn("the leader handover is given up: " + why);
  // The held writes go to the leader still followed, unless its link is
  // what just broke.
  if (synced_ && leader_ != 0 && state_ != State::leader && !link_down(leader_)) {
    end_hold(true);
  } else {
    end_hold(false);
    // Its leader too (the one whose link broke, if any): it serves again
    // once synced with one.
    if (state_ != State::leader) lose_leader("the leader handover failed: " + why);
  }
  if (transfer_done_ && transfer_follow_ && transfer_target_ == 0)
    finish_transfer(Status(Errc::unavailable, "the handover failed: " + why));
}

void Raft::end_hold(bool send_on) {
  holding_ = false;
  handover_zxid_ = 0;
  handover_committed_ = false;
  hold_target_ = 0;
  auto held = std::move(held_);
  held_.clear();
  held_bytes_ = 0;
  auto syncs = std::move(held_syncs_);
  held_syncs_.clear();
  if (!send_on) {
    if (!held.empty())
      host_->logger().warn("leader handover failed; " + std::to_string(held.size()) +
                           " held writes are dropped with their connections");
    for (auto& done : syncs)
      answer(std::move(done), Status(Errc::unavailable, "the leader handover failed"));
    return;
  }
  // In order; once one is refused, so is every later one (a session's
  // writes have no gap).
  Status st;
  for (sdk::Bytes& body : held) {
    if (st) st = submit(body);
    if (!st) chost_->rejected(LogEntry{0, 0, std::move(body)}, st);
  }
  for (auto& done : syncs) sync(std::move(done));
}

void Raft::follower_retry() {
  if (leader_ == 0 || now_ - last_retry_ < opt_.retry_ms) return;
  last_retry_ = now_;
  for (auto& [id, req] : sync_requests_) {
    if (now_ - req.sent_at < opt_.retry_ms) continue;  // asked recently
    req.sent_at = now_;
    Msg m;
    m.type = MsgType::sync_request;
    m.term = term_;
    m.id = id;
    send(leader_, m);
  }
  if (!forwarded_.empty() && now_ - last_forward_progress_ >= opt_.retry_ms) {
    // Unconfirmed writes go again, in order; the leader takes each once.
    size_t bytes = 0;
    for (const Forwarded& f : forwarded_) {
      Msg m;
      m.type = MsgType::forward;
      m.term = term_;
      m.fwd_nonce = fwd_nonce_;
      m.seq = f.seq;
      m.body = f.body;
      send(leader_, m);
      bytes += f.body.size();
      if (bytes >= opt_.max_append_bytes) break;
    }
    last_forward_progress_ = now_;
  }
}

void Raft::reject_forwarded(uint64_t seq, const Status& why) {
  std::deque<Forwarded> failed;
  while (!forwarded_.empty() && forwarded_.back().seq >= seq) {
    forwarded_bytes_ -= forwarded_.back().body.size();
    failed.push_front(std::move(forwarded_.back()));
    forwarded_.pop_back();
  }
  if (failed.empty()) return;  // an old refusal, already heard
  // Whatever is left before it was taken; the stream starts over.
  fwd_nonce_ = rng_() >> 1;
  fwd_next_seq_ = 0;
  forwarded_.clear();
  forwarded_bytes_ = 0;
  for (Forwarded& f : failed) chost_->rejected(LogEntry{0, 0, std::move(f.body)}, why);
}

void Raft::fail_follower_waits(const Status& why) {
  forwarded_.clear();
  forwarded_bytes_ = 0;
  fwd_nonce_ = rng_() >> 1;
  fwd_next_seq_ = 0;
  acked_sent_ = 0;
  auto syncs = std::move(sync_requests_);
  sync_requests_.clear();
  auto waiters = std::move(applied_waiters_);
  applied_waiters_.clear();
  for (auto& [id, req] : syncs) answer(std::move(req.done), why);
  for (auto& [z, done] : waiters) answer(std::move(done), why);
}

// ---------------------------------------------------------------- the kernel's calls

Status Raft::submit(sdk::Bytes body) {
  if (!running_) return {Errc::unavailable, "not running"};
  if (holding_) return hold_write(std::move(body));
  if (state_ == State::leader) return propose(std::move(body));
  if (leader_ == 0 || !synced_) return {Errc::unavailable, "no leader"};
  if (forwarded_.size() >= opt_.max_forwarded ||
      forwarded_bytes_ + body.size() > opt_.max_forwarded_bytes)
    return {Errc::unavailable, "too many writes wait for the leader to confirm them"};
  Msg m;
  m.type = MsgType::forward;
  m.term = term_;
  m.fwd_nonce = fwd_nonce_;
  m.seq = fwd_next_seq_++;
  m.body = body;
  if (forwarded_.empty()) last_forward_progress_ = now_;
  forwarded_bytes_ += body.size();
  forwarded_.push_back(Forwarded{m.seq, std::move(body)});
  send(leader_, m);
  return {};
}

void Raft::sync(std::function<void(const Status&)> done) {
  if (!running_) {
    answer(std::move(done), Status(Errc::unavailable, "not running"));
    return;
  }
  if (holding_) {
    if (held_syncs_.size() >= opt_.max_forwarded)
      answer(std::move(done), Status(Errc::unavailable, "too many syncs are held for a handover"));
    else
      held_syncs_.push_back(std::move(done));
    return;
  }
  if (state_ == State::leader) {
    serve_read(0, 0, std::move(done));
    return;
  }
  if (leader_ == 0 || !synced_) {
    answer(std::move(done), Status(Errc::unavailable, "no leader"));
    return;
  }
  if (sync_requests_.size() >= opt_.max_forwarded) {
    answer(std::move(done), Status(Errc::unavailable, "too many syncs wait for the leader"));
    return;
  }
  int64_t id = next_sync_id_++;
  sync_requests_.emplace(id, SyncRequest{std::move(done), now_});
  Msg m;
  m.type = MsgType::sync_request;
  m.term = term_;
  m.id = id;
  send(leader_, m);
}

void Raft::transfer_leadership(ServerId to, bool leaving, std::function<void(const Status&)> done) {
  if (!running_) {
    answer(std::move(done), Status(Errc::unavailable, "not running"));
    return;
  }
  if (transfer_done_ || transfer_target_ != 0) {
    answer(std::move(done),
           Status(Errc::already_exists, "a leader handover is in progress already"));
    return;
  }
  transfer_want_ = to;
  if (state_ == State::leader) {
    start_transfer(to, leaving, 0, 0, std::move(done));
    return;
  }
  if (leaving) {
    answer(std::move(done), Status());  // nothing to hand over
    return;
  }
  if (to == leader_ && synced_) {
    // Already so, if still so when the answer is heard.
    host_->executor().post([this, alive = alive_.ref(), to, done = std::move(done)] {
      if (!alive) {
        done(Status(Errc::unavailable, "stopped"));
        return;
      }
      done(serving_leader_ == to ? Status()
                                 : Status(Errc::unavailable, "the leader changed meanwhile"));
    });
    return;
  }
  if (leader_ == 0 || !synced_) {
    answer(std::move(done), Status(Errc::unavailable, "no leader to ask"));
    return;
  }
  transfer_done_ = std::move(done);
  transfer_term_ = term_;
  transfer_follow_ = false;
  transfer_deadline_ = now_ + 2 * opt_.election_ticks * opt_.tick_ms;
  Msg m;
  m.type = MsgType::transfer_request;
  m.term = term_;
  m.id = ++transfer_request_id_;
  m.target = to;
  send(leader_, m);
}

void Raft::finish_transfer(const Status& st) {
  auto done = std::move(transfer_done_);
  transfer_done_ = nullptr;
  transfer_follow_ = false;
  if (done) answer(std::move(done), st);
}

void Raft::answer(std::function<void(const Status&)> done, Status st) {
  if (!done) return;
  host_->executor().post([done = std::move(done), st = std::move(st)] { done(st); });
}

}  // namespace corral::raft
