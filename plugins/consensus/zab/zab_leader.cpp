// The Zab core, the leader's side: discovery (FOLLOWERINFO, LEADERINFO,
// ACKEPOCH and fetching a newer history), sync, establishment, proposals
// and commits, and membership changes as a leader applies them.
#include <algorithm>

#include "history.hpp"
#include "zab.hpp"
#include "zab_internal.hpp"

namespace corral::zab {

void Zab::send_to(Learner& l, MsgType type, sdk::BytesView payload) {
  net_->send(l.id, PeerChannel::quorum, encode_message(type, l.nonce, l.send_seq++, payload));
}

void Zab::send_to(Learner& l, const Msg& m) {
  net_->send(l.id, PeerChannel::quorum, encode_message(m, l.nonce, l.send_seq++));
}

void Zab::drop_learner(ServerId id, const std::string& why) {
  LeaderState* lead = leading();
  if (!lead) return;  // an earlier drop ended the leadership
  auto it = lead->learners.find(id);
  if (it == lead->learners.end()) return;
  host_->logger().info("dropping server " + std::to_string(id) + ": " + why);
  lead->learners.erase(it);
  net_->disconnect(id, PeerChannel::quorum);
  if (lead->transfer_to == id) {  // (a leader that hands over fetches nothing)
    abort_transfer("server " + std::to_string(id) + " left: " + why);
    return;
  }
  if (lead->fetching_from == id)  // last: this ends the leadership
    go_looking("server " + std::to_string(id) + ", whose history was being fetched, left");
}

void Zab::on_learner_message(ServerId from, Msg& m) {
  if (m.type == MsgType::follower_info) {
    if (m.seq != 0) return;  // a session whose start was lost; the learner retries
    auto it = lead().learners.find(from);
    if (it != lead().learners.end() && it->second.nonce == m.nonce) return;  // a duplicate
    if (lead().epoch_decided && m.epoch > lead().new_epoch) {
      // It accepted the epoch of a leader that never established itself,
      // above this one's: it can never follow this epoch, so a new election
      // picks one above both (ZooKeeper's servers would wait for the next
      // failure instead).
      go_looking("server " + std::to_string(from) + " accepted epoch " + std::to_string(m.epoch) +
                 ", above this leader's " + std::to_string(lead().new_epoch) +
                 "; electing again so that it can join");
      return;
    }
    Learner l;
    l.id = from;
    // An observer that a logged change makes a voter follows: it
    // acknowledges proposals, which that change needs to commit.
    l.observer = !is_voter(from) && !seen_voter(from);
    l.nonce = m.nonce;
    l.recv_seq = 1;
    l.accepted_epoch = m.epoch;
    l.last_zxid = m.zxid;
    l.last_heard = l.step_started = now_;
    lead().learners[from] = l;
    if (lead().epoch_decided) {
      Learner& nl = lead().learners[from];
      Msg info;
      info.type = MsgType::leader_info;
      info.epoch = lead().new_epoch;
      info.zxid = last_logged_;
      nl.step = Learner::Step::leader_info_sent;
      send_to(nl, info);
    } else {
      maybe_decide_epoch();
    }
    return;
  }
  auto it = lead().learners.find(from);
  if (it == lead().learners.end()) return;
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
      if (stage_ == Stage::sync || stage_ == Stage::broadcast)
        send_sync(l);
      else
        maybe_choose_history();
      return;
    case MsgType::fetched: {
      if (from != lead().fetching_from) return;
      lead().fetching_from = 0;
      host_->logger().info("adopting the newer history of server " + std::to_string(from) + " (" +
                           std::to_string(m.plan.entries.size()) + " entries" +
                           (m.plan.mode == SyncPlan::Mode::snap ? ", a snapshot" : "") + ")");
      uint64_t gen = generation_;
      apply_sync(std::move(m.plan), commit_target_, [this, gen] {
        if (gen == generation_) begin_sync();
      });
      return;
    }
    case MsgType::stream_ack:
      // (Acknowledging more than was sent, or going back, ends the session.)
      if (m.zxid < 0 || static_cast<uint64_t>(m.zxid) > l.stream_sent ||
          static_cast<uint64_t>(m.zxid) < l.stream_acked) {
        drop_learner(from, "it acknowledged a sync stream it was not sent");
        return;
      }
      l.stream_acked = static_cast<uint64_t>(m.zxid);
      pump_stream(l);
      return;
    case MsgType::ack:
      if (l.step == Learner::Step::sync_sent && m.zxid == sdk::make_zxid(lead().new_epoch, 0)) {
        l.newleader_acked = true;
        l.acked = std::max(l.acked, l.sync_last);
        if (lead().established) {
          Msg up;
          up.type = MsgType::up_to_date;
          up.zxid = commit_target_;
          l.step = Learner::Step::broadcast;
          send_to(l, up);
          host_->logger().info(std::string(l.observer ? "observer " : "follower ") +
                               std::to_string(from) + " is synced");
          if (l.observer && seen_voter(from)) promote_observers();
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
      ++l.pongs;
      if (!m.body.empty()) chost_->session_activity(from, m.body);
      if (lead().round_open) check_sync_round();
      return;
    case MsgType::request:
      if (!lead().established) {
        Msg rej;
        rej.type = MsgType::rejected;
        rej.body = std::move(m.body);
        rej.id = static_cast<int64_t>(Errc::unavailable);
        rej.text = "the leader is not established";
        send_to(l, rej);
      } else if (Status st = order(m.body); !st) {
        Msg rej;
        rej.type = MsgType::rejected;
        rej.body = std::move(m.body);
        rej.id = static_cast<int64_t>(st.code());
        rej.text = st.message();
        // Submitting may have ended the leadership (a new epoch).
        if (LeaderState* lead = leading()) {
          auto again = lead->learners.find(from);
          if (again != lead->learners.end()) send_to(again->second, rej);
        }
      }
      return;
    case MsgType::leaving:
      l.leaving = true;
      return;
    case MsgType::hold_ack:
      // Every REQUEST it sent before this one has been ordered; it holds
      // the rest until it follows the next leader.
      // (An answer to a handover called off since does not count.)
      if (lead().transfer_to != 0 && m.id == lead().transfer_id && l.hold_sent) {
        l.hold_acked = true;
        check_transfer();
      }
      return;
    case MsgType::transfer_request: {
      Status st = m.id == self_ ? Status() : begin_transfer(m.id, from, l.nonce);
      if (st && m.id != self_) return;  // it hears by TAKE_OVER, or a reply if called off
      Msg rep;
      rep.type = MsgType::transfer_reply;
      rep.id = static_cast<int64_t>(st.code());
      rep.text = st.message();
      if (LeaderState* lead = leading()) {
        auto again = lead->learners.find(from);
        if (again != lead->learners.end()) send_to(again->second, rep);
      }
      return;
    }
    case MsgType::sync_request: {
      if (opt_.quorum_sync) {
        QuorumSync s;
        s.zxid = last_logged_;
        s.learner = from;
        s.nonce = l.nonce;
        s.id = m.id;
        queue_quorum_sync(std::move(s));
        return;
      }
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
  if (stage_ != Stage::discovery || leader_ != self_ || tail_lost_ || lead().epoch_decided) return;
  // Every learner's accepted epoch counts (an observer of the current
  // membership may vote in the one the log is changing to).
  uint32_t highest = accepted_epoch_;
  for (const auto& [id, l] : lead().learners) highest = std::max(highest, l.accepted_epoch);
  if (!is_quorum([&](ServerId id) { return id == self_ || lead().learners.count(id); })) return;
  lead().epoch_seen = seen_zxid_;
  if (highest == UINT32_MAX) {
    host_->logger().error("epochs are exhausted");
    return;
  }
  lead().new_epoch = highest + 1;
  accepted_epoch_ = lead().new_epoch;
  if (Status st = chost_->storage().save_epochs(accepted_epoch_, current_epoch_); !st) {
    go_looking("cannot save the accepted epoch: " + st.to_string());
    return;
  }
  lead().epoch_decided = true;
  Msg info;
  info.type = MsgType::leader_info;
  info.epoch = lead().new_epoch;
  info.zxid = last_logged_;
  sdk::Bytes payload = encode_payload(info);
  for (auto& [id, l] : lead().learners) {
    l.step = Learner::Step::leader_info_sent;
    l.step_started = now_;
    send_to(l, MsgType::leader_info, payload);
  }
  maybe_choose_history();
}

void Zab::maybe_choose_history() {
  if (!lead().epoch_decided || lead().history_chosen || stage_ != Stage::discovery) return;
  auto acked = [&](ServerId id) {
    if (id == self_) return true;
    auto it = lead().learners.find(id);
    return it != lead().learners.end() && it->second.step == Learner::Step::epoch_acked;
  };
  if (!is_quorum(acked)) return;
  lead().history_chosen = true;
  // Zab's rule: the initial history is the newest among the quorum, by
  // (current epoch, last zxid). A quorum holds every committed entry, so it
  // is in there.
  ServerId best = self_;
  std::pair<uint32_t, Zxid> best_key{current_epoch_, last_logged_};
  lead().compared.clear();
  for (const auto& [id, l] : lead().learners) {
    if ((l.observer && !seen_voter(id)) || l.step != Learner::Step::epoch_acked) continue;
    lead().compared.insert(id);
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
                       std::to_string(best_key.first) + ", zxid " + hex(best_key.second) +
                       ") than this leader (" + std::to_string(current_epoch_) + ", " +
                       hex(last_logged_) + "); fetching it");
  lead().fetching_from = best;
  Msg f;
  f.type = MsgType::fetch;
  f.zxid = last_logged_;
  send_to(lead().learners[best], f);
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
  // The servers whose histories the choice compared must make a quorum of
  // the membership in effect now: the history fetched may have changed it (a
  // change in its log, or a snapshot holding a newer membership than this
  // server knew), and a current epoch set over a history that too few chose
  // would win later discoveries without every committed entry (one a
  // server not compared, an observer in the old view or one that joined
  // meanwhile, may hold). Start over, knowing the new membership.
  if (!is_quorum([&](ServerId id) {
        if (id == self_) return true;
        auto it = lead().learners.find(id);
        return it != lead().learners.end() && it->second.step == Learner::Step::epoch_acked &&
               lead().compared.count(id);
      })) {
    go_looking(
        "the servers that chose this history are no quorum of the membership it holds; electing "
        "again with it");
    return;
  }
  current_epoch_ = lead().new_epoch;
  if (Status st = chost_->storage().save_epochs(accepted_epoch_, current_epoch_); !st) {
    go_looking("cannot save the current epoch: " + st.to_string());
    return;
  }
  stage_ = Stage::sync;
  lead().initial_last = last_logged_;
  lead().counter = 0;
  std::vector<ServerId> ready;
  for (auto& [id, l] : lead().learners)
    if (l.step == Learner::Step::epoch_acked) ready.push_back(id);
  for (ServerId id : ready) {
    LeaderState* lead = leading();
    if (!lead) return;  // a learner that could not be synced ended the leadership
    auto it = lead->learners.find(id);
    if (it != lead->learners.end()) send_sync(it->second);
  }
  if (leading()) maybe_establish();
}

void Zab::send_sync(Learner& l) {
  auto plan = plan_sync(l.last_zxid, /*stream=*/true);
  if (!plan) {
    drop_learner(l.id, "cannot bring it up to date: " + plan.status().to_string());
    return;
  }
  Msg m;
  m.type = MsgType::sync;
  m.epoch = lead().new_epoch;
  m.zxid = commit_target_;
  m.plan = std::move(plan.value());
  l.sync_last = last_logged_;
  l.step = Learner::Step::sync_sent;
  l.step_started = now_;
  const char* how = m.plan.mode == SyncPlan::Mode::snap    ? "SNAP"
                    : m.plan.mode == SyncPlan::Mode::trunc ? "TRUNC"
                                                           : "DIFF";
  host_->logger().info(
      "syncing server " + std::to_string(l.id) + " from " + hex(l.last_zxid) + " by " + how +
      (m.plan.mode == SyncPlan::Mode::snap ? " (snapshot at " + hex(m.plan.snap_zxid) + ", " +
                                                 std::to_string(m.plan.snap_size) + " bytes)"
                                           : "") +
      (m.plan.mode == SyncPlan::Mode::trunc ? " (truncate after " + hex(m.plan.trunc_zxid) + ")"
                                            : "") +
      (m.plan.entries_last != 0 ? ", then the entries after " + hex(m.plan.stream_after) +
                                      " up to " + hex(m.plan.entries_last)
                                : ""));
  emit(ZabEvent{ZabEvent::Kind::sync_sent, lead().new_epoch, l.id, m.plan.mode, l.last_zxid,
                m.plan.entries.size()});
  l.streaming = true;
  l.snap = std::move(m.plan.reader);
  l.stream_after = m.plan.stream_after;
  l.stream_last = m.plan.entries_last;
  l.stream_sent = l.stream_acked = 0;
  send_to(l, m);
  pump_stream(l);
}

void Zab::pump_stream(Learner& l) {
  const ServerId id = l.id;
  auto fail = [&](const std::string& why) {
    host_->logger().error("cannot sync server " + std::to_string(id) + ": " + why);
    drop_learner(id, why);
  };
  while (l.streaming && l.stream_sent - l.stream_acked < opt_.snap_window_bytes) {
    if (l.snap) {
      const uint64_t size = l.snap->size();
      auto piece = l.snap->next(opt_.snap_piece_bytes);
      if (!piece) return fail("its snapshot could not be read: " + piece.status().to_string());
      const uint64_t sent = l.stream_sent;  // all of it snapshot so far
      if (piece.value().size() > size - sent)
        return fail("the snapshot at " + hex(l.snap->zxid()) + " holds more than its " +
                    std::to_string(size) + " bytes");
      if (piece.value().empty()) {
        if (sent != size)
          return fail("the snapshot at " + hex(l.snap->zxid()) + " ended after " +
                      std::to_string(sent) + " of its " + std::to_string(size) + " bytes");
        l.snap.reset();
        continue;
      }
      l.stream_sent += piece.value().size();
      net_->send(l.id, PeerChannel::quorum,
                 encode_snap_piece(l.nonce, l.send_seq++, piece.value()));
      continue;
    }
    if (l.stream_last == 0 || l.stream_after >= l.stream_last) {
      l.streaming = false;
      return;
    }
    Msg batch;
    batch.type = MsgType::sync_entries;
    size_t bytes = 0;
    const Zxid upto = l.stream_last;
    Status st = scan_history(l.stream_after, [&](const LogEntry& e) {
      if (e.zxid > upto) return false;
      batch.plan.entries.push_back(e);
      bytes += stream_units(e);
      return bytes < opt_.snap_piece_bytes;
    });
    if (!st) return fail("its entries could not be read: " + st.to_string());
    if (batch.plan.entries.empty())
      return fail("the entries after " + hex(l.stream_after) + " up to " + hex(upto) +
                  " are no longer held");
    l.stream_after = batch.plan.entries.back().zxid;
    l.stream_sent += bytes;
    send_to(l, batch);
  }
}

void Zab::maybe_establish() {
  if (lead().established || stage_ != Stage::sync) return;
  // A learner that stops once synced does not count: the quorum must
  // stand without it.
  auto acked = [&](ServerId id) {
    if (id == self_) return last_durable_ >= lead().initial_last;
    auto it = lead().learners.find(id);
    return it != lead().learners.end() && it->second.newleader_acked && !it->second.leaving;
  };
  if (!is_quorum(acked)) return;
  lead().established = true;
  stage_ = Stage::broadcast;
  commit_target_ = lead().initial_last;
  apply_committed();
  if (stage_ != Stage::broadcast) return;  // applying made this server step down
  Msg up;
  up.type = MsgType::up_to_date;
  up.zxid = commit_target_;
  sdk::Bytes payload = encode_payload(up);
  std::string who;
  for (auto& [id, l] : lead().learners) {
    if (!l.newleader_acked) continue;
    l.step = Learner::Step::broadcast;
    send_to(l, MsgType::up_to_date, payload);
    who += (who.empty() ? "" : ", ") + std::to_string(id);
  }
  if (seen_zxid_ != 0) promote_observers();
  lead().last_ping = now_;
  role_ = Role::leading;
  host_->logger().info("established as leader of epoch " + std::to_string(current_epoch_) +
                       " with " + (who.empty() ? std::string("no followers") : "servers " + who) +
                       "; history up to " + hex(lead().initial_last) + " committed");
  chost_->role_changed(Role::leading, self_, current_epoch_);
  emit(ZabEvent{ZabEvent::Kind::leading, current_epoch_, self_});
  election_->settled(sdk::ElectionResult{self_, last_logged_, current_epoch_, 0});
  if (moving_ && leading()) end_move();  // it took over: held writes are proposed now
}

size_t Zab::live_voters() const {
  size_t n = 1;
  for (const auto& [id, l] : lead().learners)
    if (!l.observer && l.newleader_acked && is_voter(id)) ++n;
  return n;
}

bool Zab::quorum_in_touch() const {
  return is_quorum([&](ServerId id) {
    if (id == self_) return true;
    auto it = lead().learners.find(id);
    return it != lead().learners.end() && it->second.newleader_acked;
  });
}

void Zab::try_commit() {
  if (!lead().established) return;
  std::vector<Quorum::Ack> acks;
  acks.reserve(lead().learners.size() + 1);
  acks.push_back({self_, last_durable_, true});
  for (const auto& [id, l] : lead().learners)
    if (l.newleader_acked) acks.push_back({id, l.acked, !l.observer && is_voter(id)});
  Zxid candidate = quorum_rule().commit_point(acks, last_logged_);
  if (candidate <= commit_target_) return check_transfer();
  Zxid old = commit_target_;
  commit_target_ = candidate;
  Msg c;
  c.type = MsgType::commit;
  c.zxid = candidate;
  sdk::Bytes commit_payload = encode_payload(c);
  for (auto& [id, l] : lead().learners) {
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
  check_transfer();  // last: a handover ends this server's leadership
}

Status Zab::submit(sdk::Bytes body) {
  if (!running_) return {Errc::unavailable, "server is stopping"};
  if (holding_) {
    if (held_.size() >= opt_.max_held_writes)
      return {Errc::unavailable, "a leader handover is in progress and " +
                                     std::to_string(held_.size()) +
                                     " writes wait for it already (transfer_max_held_writes)"};
    if (held_bytes_ + body.size() > opt_.max_held_bytes)
      return {Errc::unavailable,
              "a leader handover is in progress and " + std::to_string(held_bytes_) +
                  " bytes of writes wait for it already (transfer_max_held_bytes)"};
    held_bytes_ += body.size();
    held_.push_back(std::move(body));
    return {};
  }
  if (role_ == Role::following || role_ == Role::observing) {
    Msg m;
    m.type = MsgType::request;
    m.body = std::move(body);
    send_to_leader(m);
    return {};
  }
  return order(std::move(body));
}

Status Zab::order(sdk::Bytes body) {
  if (role_ != Role::leading || !leading()) return {Errc::unavailable, "no leader is established"};
  if (lead().counter == UINT32_MAX) {
    go_looking("the zxid counter of epoch " + std::to_string(current_epoch_) +
               " is exhausted; a new epoch starts");
    return {Errc::unavailable, "the leader is starting a new epoch"};
  }
  const Zxid zxid = sdk::make_zxid(current_epoch_, ++lead().counter);
  LogEntry entry{zxid, host_->clock().wall_ms(), std::move(body)};
  chost_->prepare(entry);
  propose(std::move(entry));
  if (seen_zxid_ == zxid)
    host_->logger().info(
        "proposing a membership change at " + hex(seen_zxid_) + " (" +
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
  LeaderState* lead = leading();
  if (!lead) return;  // storage answered at once, and refused
  for (auto& [id, l] : lead->learners)
    if (!l.observer && (l.step == Learner::Step::sync_sent || l.step == Learner::Step::broadcast))
      send_to(l, MsgType::proposal, payload);
  if (seen_zxid_ == last_logged_) promote_observers();
}

void Zab::promote_observers() {
  // The logged change makes these observers voters, and commits only with a
  // quorum of the voters it installs: from here on each is sent proposals
  // and commits, and acknowledges them, as a follower (its own copy of the
  // change tells it to). What it has not been told yet is everything not
  // committed, INFORM having carried the rest. One still syncing has the
  // change in its SYNC, and is promoted once synced.
  for (auto& [id, l] : lead().learners) {
    if (!l.observer || !seen_voter(id) || l.step != Learner::Step::broadcast) continue;
    l.observer = false;
    for (const LogEntry& e : unapplied_) {
      if (e.zxid <= commit_target_) continue;
      Msg p;
      p.type = MsgType::proposal;
      p.entry = e;
      send_to(l, p);
    }
    host_->logger().info("observer " + std::to_string(id) + " acknowledges proposals from " +
                         hex(seen_zxid_) + " on: the change logged there makes it a voter");
  }
}

// ---------------------------------------------------------------- quorum syncs

void Zab::queue_quorum_sync(QuorumSync s) {
  lead().syncs_queued.push_back(std::move(s));
  if (!lead().round_open) start_sync_round();
}

void Zab::ping_learners() {
  // Every ping is counted: a learner answers each one, in order, so its
  // answer number n is the answer to ping n (what quorum syncs rely on).
  Msg ping;
  ping.type = MsgType::ping;
  sdk::Bytes payload = encode_payload(ping);
  for (auto& [id, l] : lead().learners) {
    send_to(l, MsgType::ping, payload);
    ++l.pings_sent;
  }
}

void Zab::start_sync_round() {
  lead().syncs_in_round = std::move(lead().syncs_queued);
  lead().syncs_queued.clear();
  lead().round_needs.clear();
  lead().round_open = true;
  // Every learner, observers too: one that a pending change makes a voter
  // counts, and a learner missing here joined after the round began.
  ping_learners();
  for (const auto& [id, l] : lead().learners) lead().round_needs[id] = {l.nonce, l.pings_sent};
  check_sync_round();
}

void Zab::check_sync_round() {
  bool confirmed = is_quorum([&](ServerId id) {
    if (id == self_) return true;
    auto l = lead().learners.find(id);
    auto need = lead().round_needs.find(id);
    if (l == lead().learners.end()) return false;
    // A learner that joined (or joined again) since the round began answers
    // only pings sent after it began.
    if (need == lead().round_needs.end() || l->second.nonce != need->second.first)
      return l->second.pongs > 0;
    return l->second.pongs >= need->second.second;
  });
  if (!confirmed) return;
  lead().round_open = false;
  std::vector<QuorumSync> done = std::move(lead().syncs_in_round);
  lead().syncs_in_round.clear();
  bool local = false;
  for (auto& s : done) {
    if (s.local) {
      applied_waiters_.emplace_back(s.zxid, std::move(s.local));
      local = true;
      continue;
    }
    auto l = lead().learners.find(s.learner);
    if (l == lead().learners.end() || l->second.nonce != s.nonce)
      continue;  // its sync failed when it left
    Msg rep;
    rep.type = MsgType::sync_reply;
    rep.id = s.id;
    rep.zxid = s.zxid;
    send_to(l->second, rep);
  }
  // Answering runs clients' callbacks, which may ask again (a pipelined
  // client's next sync) and so open the next round already.
  if (local) apply_committed();
  LeaderState* lead = leading();  // applying may have ended the leadership
  if (lead && !lead->syncs_queued.empty() && !lead->round_open) start_sync_round();
}

}  // namespace corral::zab
