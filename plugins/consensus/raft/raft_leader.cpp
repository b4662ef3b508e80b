// Raft, the leader's side: taking office, proposals, replication to each
// follower (probing for the point where its log matches, then many appends
// in flight), snapshots for followers behind the leader's storage, commit
// (with both quorums while a membership change is pending), ReadIndex syncs,
// check-quorum and leadership handovers.
#include <algorithm>
#include <limits>

#include "raft.hpp"
#include "raft_internal.hpp"

namespace corral::raft {

using sdk::Errc;
using sdk::LogEntry;
using sdk::Role;
using sdk::ServerId;
using sdk::Status;
using sdk::Zxid;

Raft::Progress* Raft::progress(ServerId id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

bool Raft::leader_serving() const {
  return state_ == State::leader && noop_zxid_ != 0 && last_applied_ >= noop_zxid_;
}

void Raft::become_leader() {
  host_->logger().info("elected leader of term " + std::to_string(term_) + " with last zxid " +
                       hex(last_logged()));
  if (handover_pending()) {
    // Through a handover: the syncs it asked of the old leader are this
    // server's to answer (once it knows it keeps its clients), and those
    // the old leader answered still wait to apply up to their point. The
    // old leader took every write it forwarded (TAKE_OVER said so).
    for (auto& [id, req] : sync_requests_) held_syncs_.push_back(std::move(req.done));
    sync_requests_.clear();
    forwarded_.clear();
    forwarded_bytes_ = 0;
    acked_sent_ = 0;
  } else {
    fail_follower_waits(Status(Errc::unavailable, "this server leads a new term"));
  }
  state_ = State::leader;
  leader_ = self_;
  votes_.clear();
  progress_.clear();
  forward_in_.clear();
  reads_.clear();
  remote_reads_.clear();
  round_ = 0;
  last_heartbeat_ = last_quorum_check_ = last_leader_contact_ = now_;
  if (election_started_ >= 0) {
    last_election_ms_ = now_ - election_started_;
    election_started_ = -1;
  }
  refresh_members();  // one Progress per member
  if (events_) events_(RaftEvent{RaftEvent::Kind::elected, term_, self_});
  // The term begins with a no-op: entries of earlier terms commit only with
  // one of this term (Raft's commitment rule), and reads wait for it.
  next_counter_ = 1;
  LogEntry noop;
  noop.zxid = sdk::make_zxid(term_, next_counter_++);
  noop.time_ms = host_->clock().wall_ms();
  noop_zxid_ = noop.zxid;
  append_local(std::move(noop));
  broadcast(false);
  advance_commit();
}

void Raft::step_down(const std::string& why) {
  become_follower(term_, 0, why);
  reset_election_timer();
}

Status Raft::propose(sdk::Bytes body) {
  if (state_ != State::leader) return {Errc::unavailable, "not the leader"};
  if (rewrite_pending_)
    return {Errc::no_space, "the log is being written again after storage refused it"};
  if (frozen_)
    return {Errc::unavailable,
            "the leadership is being handed to server " + std::to_string(transfer_target_)};
  if (next_counter_ == std::numeric_limits<uint32_t>::max()) {
    step_down("term " + std::to_string(term_) + " has used every zxid it has");
    return {Errc::unavailable, "a new term is being elected"};
  }
  LogEntry e;
  e.zxid = sdk::make_zxid(term_, next_counter_++);
  e.time_ms = host_->clock().wall_ms();
  e.body = std::move(body);
  chost_->prepare(e);
  append_local(std::move(e));
  if (!flush_posted_) {
    // Every write of this turn of the loop goes out in one append per follower.
    flush_posted_ = true;
    host_->executor().post([this, alive = alive_.ref()] {
      if (!alive) return;
      flush_posted_ = false;
      if (running_ && state_ == State::leader) broadcast(false);
    });
  }
  return {};
}

void Raft::broadcast(bool heartbeat) {
  for (auto& [id, p] : progress_) replicate(p, heartbeat);
}

bool Raft::collect(Zxid after, Zxid upto, size_t max_bytes, std::vector<LogEntry>& out,
                   bool& need_snapshot) {
  size_t bytes = 0;
  if (after < log_base_) {
    // Older than memory: from storage, which holds every entry after its
    // newest snapshot.
    sdk::Storage& storage = chost_->storage();
    if (after < storage.latest_snapshot_zxid()) {
      need_snapshot = true;
      return false;
    }
    Status st = storage.read_log(after, [&](const LogEntry& e) {
      if (e.zxid > log_base_) return false;
      bytes += e.body.size() + 32;
      out.push_back(e);
      return bytes < max_bytes;
    });
    if (!st && st.code() == Errc::not_found) {
      // Retired with a snapshot newer than the one storage named a moment
      // ago: that snapshot is what the follower needs.
      need_snapshot = true;
      out.clear();
      return false;
    }
    if (!st) {
      host_->logger().warn("cannot read the log after " + hex(after) + ": " + st.to_string());
      return false;
    }
    if (out.empty() ? log_base_ != after : out.back().zxid != log_base_) {
      // Storage ended before memory begins: a gap the follower cannot be
      // sent as entries.
      if (bytes < max_bytes) {
        need_snapshot = true;
        out.clear();
        return false;
      }
      return true;
    }
  }
  for (size_t i = upper(std::max(after, log_base_)); i < log_.size() && bytes < max_bytes; ++i) {
    if (log_[i].zxid > upto) break;
    bytes += log_[i].body.size() + 32;
    out.push_back(log_[i]);
  }
  return true;
}

void Raft::replicate(Progress& p, bool heartbeat) {
  if (p.snapshot_zxid != 0 && !heartbeat) return;  // waits for the snapshot's answer
  for (;;) {
    bool data = !(p.probing && !p.inflight.empty()) && p.inflight_bytes < opt_.max_inflight_bytes &&
                p.snapshot_zxid == 0;
    if (!data && !heartbeat) return;
    Msg m;
    m.type = MsgType::append;
    m.term = term_;
    m.zxid = p.sent;
    m.commit = commit_;
    m.round = heartbeat ? round_ : 0;
    m.send_id = ++send_id_;
    if (auto f = forward_in_.find(p.id); f != forward_in_.end()) {
      m.fwd_nonce = f->second.nonce;
      m.seq = f->second.next;
    }
    if (data && p.sent < last_logged()) {
      bool need_snapshot = false;
      collect(p.sent, last_logged(), opt_.max_append_bytes, m.entries, need_snapshot);
      if (need_snapshot) {
        send_snapshot(p);
        return;
      }
    }
    bool news = !m.entries.empty() || commit_ > p.commit_sent || m.seq > p.fwd_sent;
    if (!heartbeat && !news) return;
    size_t bytes = 0;
    for (const auto& e : m.entries) bytes += e.body.size() + 32;
    if (!m.entries.empty()) {
      p.sent = m.entries.back().zxid;
      p.inflight.emplace_back(p.sent, bytes);
      p.inflight_bytes += bytes;
    }
    p.commit_sent = std::max(p.commit_sent, std::min(commit_, p.sent));
    p.fwd_sent = std::max(p.fwd_sent, m.seq);
    p.last_append_at = now_;
    send(p.id, m);
    heartbeat = false;
    if (m.entries.empty() || p.probing) return;
  }
}

void Raft::send_snapshot(Progress& p) {
  // At most once a retry period per follower (one whose store of it failed
  // asks again).
  if (p.snapshot_at != 0 && now_ - p.snapshot_at < opt_.retry_ms) return;
  p.snapshot_at = now_;
  auto snap = chost_->storage().read_snapshot();
  if (!snap) {
    host_->logger().warn("cannot read the snapshot server " + std::to_string(p.id) +
                         " needs: " + snap.status().to_string());
    return;
  }
  p.snap = std::move(snap.value());
  p.snap_sent = p.snap_acked = 0;
  // A copy the follower holds part of goes on from where it stopped: the
  // bytes before it are read past (pump_snapshot). The follower takes them
  // as the same bytes because they come from this leader, in this term, of
  // the snapshot at the same zxid and of the same size: a leader writes its
  // tree at a zxid once (a snapshot is due only after new entries), and
  // the tree at a zxid serializes to the same bytes.
  uint64_t from = 0;
  if (p.resume_zxid == p.snap->zxid() && p.resume_at < p.snap->size()) from = p.resume_at;
  p.resume_zxid = 0;
  p.resume_at = 0;
  p.snap_skip_to = from;
  host_->logger().info(
      "server " + std::to_string(p.id) + " is behind the log: sending the snapshot at " +
      hex(p.snap->zxid()) + " (" + std::to_string(p.snap->size()) + " bytes" +
      (from ? ", from byte " + std::to_string(from) + ", where its copy stopped" : "") + ")");
  p.snapshot_zxid = p.snap->zxid();
  p.sent = p.snapshot_zxid;
  p.probing = true;
  p.inflight.clear();
  p.inflight_bytes = 0;
  p.reset_id = ++send_id_;
  if (events_)
    events_(RaftEvent{from ? RaftEvent::Kind::snapshot_resumed : RaftEvent::Kind::snapshot_sent,
                      term_, p.id});
  pump_snapshot(p);
}

std::optional<sdk::BytesView> Raft::next_snapshot_piece(Progress& p, size_t max) {
  auto piece = p.snap->next(max);
  Status st = piece ? Status() : piece.status();
  if (st && piece.value().size() > p.snap->size() - p.snap_sent)
    st = Status{Errc::corrupt, "the snapshot at " + hex(p.snap->zxid()) + " holds more than its " +
                                   std::to_string(p.snap->size()) + " bytes"};
  if (st && piece.value().empty() && p.snap_sent != p.snap->size())
    st = Status{Errc::corrupt, "the snapshot at " + hex(p.snap->zxid()) + " ended after " +
                                   std::to_string(p.snap_sent) + " of its " +
                                   std::to_string(p.snap->size()) + " bytes"};
  if (!st) {
    // Unanswered, it is tried again after a timeout, from a snapshot read
    // anew (a newer one, perhaps).
    host_->logger().error("cannot read the snapshot server " + std::to_string(p.id) +
                          " needs: " + st.to_string());
    p.snap.reset();
    return std::nullopt;
  }
  return piece.value();
}

void Raft::pump_snapshot(Progress& p) {
  // Going on from where the follower's copy stopped: the bytes before are
  // read past (and checked, as every read is), a window's worth a turn of
  // the loop, so that a copy stopped gigabytes in keeps no heartbeat waiting.
  if (p.snap && p.snap_sent < p.snap_skip_to) {
    uint64_t budget = opt_.snap_window_bytes;
    while (p.snap_sent < p.snap_skip_to && budget > 0) {
      auto piece = next_snapshot_piece(
          p, static_cast<size_t>(std::min<uint64_t>(
                 {opt_.snap_piece_bytes, p.snap_skip_to - p.snap_sent, budget})));
      if (!piece) return;
      // (Never empty here: the bytes to skip lie before the snapshot's end.)
      budget -= std::min<uint64_t>(budget, piece->size());
      p.snap_sent += piece->size();
    }
    p.snap_acked = p.snap_sent;
    p.snapshot_at = now_;  // (reading past counts as no silence of the follower's)
    if (p.snap_sent < p.snap_skip_to) {
      if (!p.skip_posted) {
        p.skip_posted = true;
        host_->executor().post([this, alive = alive_.ref(), id = p.id] {
          if (!alive || state_ != State::leader) return;
          Progress* q = progress(id);
          if (!q) return;
          q->skip_posted = false;
          if (q->snap) pump_snapshot(*q);  // whichever try is on now
        });
      }
      return;
    }
  }
  // A piece at a time, read as it goes, at most snap_window_bytes of them
  // unacknowledged: the loop never holds or copies the whole snapshot.
  while (p.snap && p.snap_sent - p.snap_acked < opt_.snap_window_bytes) {
    auto piece = next_snapshot_piece(p, opt_.snap_piece_bytes);
    if (!piece) return;
    if (piece->empty()) {
      p.snap.reset();  // all sent: the follower's SNAPSHOT_REPLY ends it
      return;
    }
    Msg m;
    m.type = MsgType::snapshot;
    m.term = term_;
    m.zxid = p.snap->zxid();
    m.commit = commit_;
    m.seq = p.snap_sent;
    m.id = static_cast<int64_t>(p.snap->size());
    m.body = std::string(*piece);
    p.snap_sent += piece->size();
    send(p.id, m);
  }
}

void Raft::on_append_reply(ServerId from, const Msg& m) {
  if (state_ != State::leader) return;
  Progress* p = progress(from);
  if (!p) return;
  p->last_heard = now_;
  // (A reply cannot confirm a round not yet sent, nor match what was not.)
  p->round_acked = std::max(p->round_acked, std::min<uint64_t>(m.round, round_));
  p->durable = std::max(p->durable, std::min(m.durable, last_logged()));
  if (m.type == MsgType::snapshot_reply && m.flag) {
    // A piece taken: the follower holds `seq` bytes of the snapshot.
    if (m.zxid == p->snapshot_zxid && p->snap && m.seq <= p->snap_sent && m.seq >= p->snap_acked) {
      p->snap_acked = m.seq;
      p->snapshot_at = now_;  // (the timeout counts silence, not the transfer)
      pump_snapshot(*p);
    }
  } else if (m.type == MsgType::snapshot_reply) {
    if (m.zxid == p->snapshot_zxid) {
      p->snap.reset();
      p->snapshot_zxid = 0;
      if (m.granted) {
        p->matched = std::max(p->matched, m.zxid);
        p->sent = m.zxid;
      } else if (m.seq > 0) {
        // A piece went missing; the follower keeps the `seq` bytes before it.
        p->resume_zxid = m.zxid;
        p->resume_at = m.seq;
      }
    }
  } else if (m.type == MsgType::append_reply && m.flag) {
    // Busy with a snapshot: storing it (granted), or it failed to, and
    // needs it again.
    if (!m.granted && p->snapshot_zxid == 0) send_snapshot(*p);
  } else if (m.type == MsgType::append_reply && !m.flag) {
    if (m.granted) {
      p->matched = std::max(p->matched, std::min(m.zxid, last_logged()));
      while (!p->inflight.empty() && p->inflight.front().first <= m.zxid) {
        p->inflight_bytes -= p->inflight.front().second;
        p->inflight.pop_front();
      }
      if (p->probing && m.send_id >= p->reset_id) {
        p->probing = false;
        p->sent = std::max(p->sent, p->matched);
      }
    } else if (m.send_id >= p->reset_id && p->snapshot_zxid == 0) {
      // The follower does not hold what the append started after. Its hint
      // is the last entry it holds at or below that point; everything up to
      // its commit is held on both sides.
      Zxid h = m.zxid, back;
      if (h > log_base_) {
        size_t i = upper(h);
        back = i == 0 ? log_base_ : log_[i - 1].zxid;  // h itself when held here
      } else {
        back = std::min(h, m.commit);
      }
      back = std::max(back, std::min(m.commit, last_logged()));
      p->sent = std::min(back, p->sent);
      p->probing = true;
      p->inflight.clear();
      p->inflight_bytes = 0;
      p->commit_sent = 0;
      p->reset_id = ++send_id_;
    }
  }
  if (!m.body.empty() && leader_serving()) chost_->session_activity(from, m.body);
  advance_commit();
  if (state_ != State::leader) return;
  check_reads();
  if (Progress* q = progress(from)) {
    replicate(*q, false);
    if (transfer_target_ == from) maybe_freeze();
  }
}

Zxid Raft::quorum_point(const std::vector<ServerId>& vs) {
  if (vs.empty()) return 0;
  std::vector<Zxid> d;
  d.reserve(vs.size());
  for (ServerId v : vs) {
    if (v == self_) {
      d.push_back(last_durable_);
    } else {
      Progress* p = progress(v);
      d.push_back(p ? p->durable : 0);
    }
  }
  std::sort(d.begin(), d.end(), std::greater<Zxid>());
  return d[vs.size() / 2];
}

void Raft::advance_commit() {
  if (state_ != State::leader) return;
  Zxid n = quorum_point(voters());
  // While a membership change is in the log and not yet applied, entries
  // from it on commit only with a quorum of its voters too (ZooKeeper's
  // reconfig: the old quorum and the new).
  for (const auto& [mz, members] : pending_configs_) {
    if (n < mz) break;
    std::vector<ServerId> vs;
    for (const auto& s : members)
      if (!s.observer) vs.push_back(s.id);
    Zxid ni = quorum_point(vs);
    if (ni >= n) continue;
    if (ni >= mz) {
      n = ni;
      continue;
    }
    size_t i = upper(mz - 1);
    n = i == 0 ? log_base_ : log_[i - 1].zxid;
    break;
  }
  if (n <= commit_ || sdk::zxid_epoch(n) != term_) return;
  commit_ = n;
  apply_committed();
  if (state_ != State::leader) return;
  if (!flush_posted_) {
    flush_posted_ = true;
    host_->executor().post([this, alive = alive_.ref()] {
      if (!alive) return;
      flush_posted_ = false;
      if (running_ && state_ == State::leader) broadcast(false);
    });
  }
}

// ---------------------------------------------------------------- reads

void Raft::serve_read(ServerId from, int64_t id, std::function<void(const Status&)> done) {
  if (reads_.size() >= opt_.max_forwarded) {
    answer(std::move(done), Status(Errc::unavailable, "too many syncs wait for a quorum"));
    return;
  }
  if (from != 0 && !remote_reads_.emplace(from, id).second) return;  // asked again: queued already
  PendingRead r;
  r.read_index = commit_;
  r.round = round_ + 1;  // answered by a heartbeat round sent after it arrived
  r.from = from;
  r.id = id;
  r.done = std::move(done);
  reads_.push_back(std::move(r));
  if (quorum_of([&](ServerId v) { return v == self_; })) {
    ++round_;
    check_reads();
    return;
  }
  if (!heartbeat_posted_) {
    heartbeat_posted_ = true;
    host_->executor().post([this, alive = alive_.ref()] {
      if (!alive) return;
      heartbeat_posted_ = false;
      if (!running_ || state_ != State::leader) return;
      ++round_;
      last_heartbeat_ = now_;
      broadcast(true);
    });
  }
}

void Raft::check_reads() {
  if (!leader_serving()) return;
  while (!reads_.empty()) {
    PendingRead& r = reads_.front();
    auto confirmed = [&](const std::vector<ServerId>& vs) {
      size_t n = 0;
      for (ServerId v : vs) {
        if (v == self_) {
          ++n;
        } else if (Progress* p = progress(v); p && p->round_acked >= r.round) {
          ++n;
        }
      }
      return n >= vs.size() / 2 + 1;
    };
    if (r.round > round_ || !confirmed(voters())) return;
    for (const auto& [mz, members] : pending_configs_) {
      std::vector<ServerId> vs;
      for (const auto& s : members)
        if (!s.observer) vs.push_back(s.id);
      if (!confirmed(vs)) return;
    }
    Zxid index = std::max(r.read_index, noop_zxid_);
    if (r.from == 0) {
      applied_waiters_.emplace(index, std::move(r.done));
    } else {
      remote_reads_.erase({r.from, r.id});
      Msg m;
      m.type = MsgType::sync_reply;
      m.term = term_;
      m.id = r.id;
      m.zxid = index;
      send(r.from, m);
    }
    reads_.pop_front();
  }
  apply_committed();  // answers the local ones already applied
}

void Raft::on_sync_request(ServerId from, const Msg& m) {
  if (state_ != State::leader) return;  // the follower asks again
  serve_read(from, m.id, nullptr);
}

void Raft::on_forward(ServerId from, Msg& m) {
  if (state_ != State::leader) return;
  ForwardIn& f = forward_in_[from];
  if (m.fwd_nonce != f.nonce) {
    // A new stream starts at 0 (the rest is sent again); one this follower
    // ended does not start again.
    if (m.seq != 0 || std::find(f.retired.begin(), f.retired.end(), m.fwd_nonce) != f.retired.end())
      return;
    if (f.nonce != 0) f.retired.push_back(f.nonce);
    if (f.retired.size() > 8) f.retired.pop_front();
    f.nonce = m.fwd_nonce;
    f.next = 0;
    f.refused = false;
  }
  auto refuse = [&](uint64_t seq, int64_t code, const std::string& text) {
    Msg r;
    r.type = MsgType::rejected;
    r.term = term_;
    r.fwd_nonce = m.fwd_nonce;
    r.seq = seq;
    r.id = code;
    r.text = text;
    send(from, r);
  };
  if (f.refused && m.seq >= f.refused_seq) {
    // Sent again before the refusal was heard: refused again, even if this
    // leader could take it now (the follower fails it when it hears).
    refuse(f.refused_seq, f.refused_code, f.refused_text);
    return;
  }
  if (m.seq != f.next) return;  // a duplicate, or ahead of a loss
  Status st = propose(m.body);
  if (!st) {
    f.refused = true;
    f.refused_seq = m.seq;
    f.refused_code = static_cast<int64_t>(st.code());
    f.refused_text = st.message();
    // Refused: neither it nor anything after it in the stream is taken
    // (the session's order has no gap). The follower fails them all and
    // starts a new stream; a lost refusal is answered again when the write
    // comes again.
    refuse(m.seq, f.refused_code, f.refused_text);
    return;
  }
  ++f.next;
  if (Progress* p = progress(from); p && !flush_posted_) replicate(*p, false);
  if (transfer_target_ != 0 && state_ == State::leader) maybe_freeze();
}

// ---------------------------------------------------------------- time

void Raft::leader_tick() {
  int64_t hb = opt_.heartbeat_ms > 0 ? opt_.heartbeat_ms : std::max<int64_t>(1, opt_.tick_ms / 2);
  int64_t timeout = opt_.election_ticks * opt_.tick_ms;
  if (handover_pending() && !leader_serving() && now_ >= hold_deadline_) {
    // Elected through a handover, and this term's start not committed in
    // time: what it holds goes with its clients' connections.
    host_->logger().warn("the leader handover did not finish in time");
    end_hold(false);
    if (role_ != Role::looking) set_role(Role::looking, 0);
  }
  if (now_ - last_heartbeat_ >= hb) {
    last_heartbeat_ = now_;
    ++round_;
    broadcast(true);
    // A handover's TIMEOUT_NOW goes again each heartbeat until the target
    // stands (one lost, or one that came while its appends were on their
    // way to disk).
    if (transfer_target_ != 0 && timeout_sent_) send_timeout_now();
    if (transfer_target_ != 0 && !frozen_) {
      for (auto& [id, p] : progress_)
        if (!hold_acks_.count(id) || hold_unserving_.count(id)) send_hold(id);  // lost, or idle
      maybe_freeze();
      if (state_ != State::leader) return;
    }
  }
  for (auto& [id, p] : progress_)
    if (p.snapshot_zxid != 0 && now_ - p.snapshot_at >= timeout) {
      // Unanswered (the link broke, or the last pieces went missing): sent
      // again, from the bytes the follower acknowledged. (If it no longer
      // holds them, it answers no, and the next try starts from the first.)
      // (While the leader still reads past the bytes the follower said it
      // holds, those are what it holds.)
      const uint64_t held = std::max(p.snap_acked, p.snap_skip_to);
      if (held > 0) {
        p.resume_zxid = p.snapshot_zxid;
        p.resume_at = held;
      }
      p.snapshot_zxid = 0;
      p.snap.reset();
      replicate(p, false);
    }
  if (now_ - last_quorum_check_ >= timeout) {
    // Check-quorum: a leader a quorum no longer answers steps down, so that
    // it stops serving syncs and writes it cannot commit.
    size_t heard = 0;
    auto recent = [&](ServerId v) {
      Progress* p = progress(v);
      return v == self_ || (p && now_ - p->last_heard < timeout);
    };
    for (ServerId v : all_voters())
      if (recent(v)) ++heard;
    last_quorum_check_ = now_;
    if (!quorum_of(recent)) {
      std::string why = "heard from " + std::to_string(heard) + " of " +
                        std::to_string(all_voters().size()) + " voters within an election timeout";
      step_down(why);
      if (holding_) give_up_hold(why);  // taken over in a handover, with no quorum left
      return;
    }
    last_leader_contact_ = now_;
  }
  if (transfer_target_ != 0 && now_ >= transfer_deadline_)
    call_off_transfer("it did not finish in time");
}

void Raft::call_off_transfer(const std::string& why) {
  host_->logger().warn("the handover to server " + std::to_string(transfer_target_) +
                       " is called off (" + why + "); leading on");
  transfer_target_ = 0;
  timeout_sent_ = false;
  frozen_ = false;
  hold_acks_.clear();
  hold_unserving_.clear();
  // Every member sends on what it held, to this leader.
  Msg r;
  r.type = MsgType::release;
  r.term = term_;
  r.id = hold_id_;
  for (auto& [id, p] : progress_) send(id, r);
  end_hold(true);
  finish_transfer(Status(Errc::unavailable, "the handover was called off: " + why));
  if (leader_serving() && !is_voter_anywhere(self_)) hand_off("this server is not a voter");
}

// ---------------------------------------------------------------- handovers

void Raft::start_transfer(ServerId to, bool leaving, ServerId requester, int64_t request_id,
                          std::function<void(const Status&)> done) {
  auto reply = [&](const Status& st) {
    if (requester != 0) {
      Msg r;
      r.type = MsgType::transfer_reply;
      r.term = term_;
      r.id = request_id;
      r.target = st ? 0 : static_cast<int64_t>(st.code());
      r.text = st.message();
      send(requester, r);
    } else {
      answer(std::move(done), st);
    }
  };
  if (transfer_target_ != 0 || (transfer_done_ && requester == 0)) {
    reply(Status(Errc::already_exists, "a leader handover is in progress already"));
    return;
  }
  if (!leader_serving()) {
    reply(Status(Errc::unavailable, "this leader is not established yet"));
    return;
  }
  if (to == self_) {
    reply(Status());
    return;
  }
  std::vector<ServerId> vs = voters();
  if (leaving) {
    size_t others = 0;
    for (ServerId v : vs)
      if (v != self_ && progress(v)) ++others;
    if (others < majority()) {
      reply(Status(Errc::unavailable, "the other voters cannot make a quorum without this server"));
      return;
    }
  }
  ServerId target = 0;
  if (to != 0) {
    if (!is_voter(to) || !progress(to)) {
      reply(Status(Errc::invalid_argument,
                   "server " + std::to_string(to) + " is not a voting member of the ensemble"));
      return;
    }
    target = to;
  } else {
    Zxid best = -1;
    for (ServerId v : vs)
      if (Progress* p = progress(v); p && v != self_ && p->matched > best &&
                                     now_ - p->last_heard < opt_.election_ticks * opt_.tick_ms) {
        best = p->matched;
        target = v;
      }
    if (target == 0) {
      reply(Status(Errc::unavailable, "no other voter answers"));
      return;
    }
  }
  host_->logger().info("handing the leadership to server " + std::to_string(target));
  transfer_target_ = target;
  transfer_deadline_ = now_ + opt_.election_ticks * opt_.tick_ms;
  timeout_sent_ = false;
  // Every server holds its clients' new writes from here (this one at
  // once, the others once HOLD arrives), so that each session's writes
  // before are in the log that freezes, and those after go to the next
  // leader.
  frozen_ = false;
  hold_acks_.clear();
  hold_unserving_.clear();
  hold_id_ = static_cast<int64_t>(rng_() >> 2) + 1;
  hold_started_ = now_;
  holding_ = true;
  hold_term_ = term_;
  hold_target_ = target;
  handover_zxid_ = 0;
  handover_committed_ = false;
  hold_deadline_ = transfer_deadline_ + opt_.election_ticks * opt_.tick_ms;
  for (auto& [id, p] : progress_) send_hold(id);
  if (requester != 0) {
    reply(Status());
  } else {
    transfer_done_ = std::move(done);
    transfer_term_ = term_;
    transfer_follow_ = true;
  }
  maybe_freeze();
  if (Progress* p = progress(target); p && state_ == State::leader && !frozen_)
    replicate(*p, false);
}

void Raft::send_hold(ServerId to) {
  Msg m;
  m.type = MsgType::hold;
  m.term = term_;
  m.id = hold_id_;
  m.target = static_cast<int64_t>(hold_target_);
  send(to, m);
}

bool Raft::hold_complete(ServerId id) const {
  auto a = hold_acks_.find(id);
  if (a == hold_acks_.end()) return false;
  auto [nonce, next] = a->second;
  if (next == 0) return true;  // sent nothing in its stream
  auto f = forward_in_.find(id);
  return f != forward_in_.end() && f->second.nonce == nonce &&
         (f->second.next >= next || f->second.refused);
}

void Raft::maybe_freeze() {
  if (state_ != State::leader || transfer_target_ == 0 || frozen_) return;
  Progress* t = progress(transfer_target_);
  if (!t) return;
  // Every member heard from lately has answered HOLD, and all it sent
  // before is taken; one that does not answer within two heartbeats is
  // not waited for (it goes through `looking` at the change of term).
  int64_t hb = opt_.heartbeat_ms > 0 ? opt_.heartbeat_ms : std::max<int64_t>(1, opt_.tick_ms / 2);
  if (now_ - hold_started_ < 2 * hb)
    for (auto& [id, p] : progress_)
      if (now_ - p.last_heard < 2 * hb && !hold_complete(id)) return;
  if (t->matched < last_logged()) return;  // its next append reply calls again
  frozen_ = true;
  handover_zxid_ = last_logged();
  handover_committed_ = commit_ >= handover_zxid_;
  hold_deadline_ = now_ + 2 * opt_.election_ticks * opt_.tick_ms;
  for (auto& [id, p] : progress_) {
    if (!hold_complete(id)) continue;
    Msg m;
    m.type = MsgType::take_over;
    m.term = term_;
    m.id = hold_id_;
    m.target = static_cast<int64_t>(transfer_target_);
    m.zxid = handover_zxid_;
    if (auto f = forward_in_.find(id); f != forward_in_.end()) {
      m.fwd_nonce = f->second.nonce;
      m.seq = f->second.next;
    }
    send(id, m);
  }
  send_timeout_now();
}

void Raft::hand_off(const std::string& why) {
  if (state_ != State::leader || transfer_target_ != 0 || transfer_done_) return;
  host_->logger().info(why + ": handing the leadership over");
  start_transfer(0, false, 0, 0, nullptr);
  if (transfer_target_ == 0) step_down(why + ", and no voter can take over");
}

void Raft::send_timeout_now() {
  timeout_sent_ = true;
  Msg m;
  m.type = MsgType::timeout_now;
  m.term = term_;
  m.zxid = last_logged();
  send(transfer_target_, m);
}

void Raft::on_transfer_request(ServerId from, const Msg& m) {
  if (state_ != State::leader) return;
  start_transfer(m.target, false, from, m.id, nullptr);
}

}  // namespace corral::raft
