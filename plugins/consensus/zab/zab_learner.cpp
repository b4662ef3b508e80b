// The Zab core, the learner's side (follower or observer): following a
// leader through discovery and sync, then proposals, commits and pings.
#include <algorithm>

#include "history.hpp"
#include "zab.hpp"
#include "zab_internal.hpp"

namespace corral::zab {

namespace {
// What a deferred message holds, roughly. Pings are not counted: they carry
// nothing while a learner syncs, and come a few a tick, so that a small
// bound is not filled by a slow snapshot alone (sync must end within
// init_limit ticks anyway).
size_t deferred_size(const Msg& m) {
  if (m.type == MsgType::ping) return 0;
  return m.body.size() + m.entry.body.size() + m.text.size() + 64;
}
}  // namespace

void Zab::send_to_leader(const Msg& m) {
  net_->send(leader_, PeerChannel::quorum, encode_message(m, learn().nonce, learn().send_seq++));
}

void Zab::on_leader_message(Msg& m) {
  if (m.nonce != learn().nonce || m.seq < learn().recv_seq) return;
  if (m.seq > learn().recv_seq) {
    go_looking("messages from the leader were lost");
    return;
  }
  learn().recv_seq++;
  learn().last_heard = now_;
  // A sync's stream is taken at once while its SYNC is (the learner defers
  // the rest; drain_deferred takes any of the stream deferred with the SYNC
  // first); otherwise it waits in turn behind what is deferred.
  if ((m.type == MsgType::snap_piece || m.type == MsgType::sync_entries) &&
      (learn().receiving || learn().deferred.empty())) {
    on_stream(m);
    return;
  }
  // Nothing may reach the log while a snapshot from a leader is still
  // arriving or being written (even one from an earlier sync): a crash would
  // leave entries after a hole.
  if (learn().receiving || pending_sync_.in_progress || snapshot_in_flight_) {
    // Bounded: a large snapshot takes a while to arrive and to load, and
    // what the leader sends meanwhile waits here.
    learn().deferred_bytes += deferred_size(m);
    if (learn().deferred_bytes > opt_.max_deferred_bytes) {
      go_looking("the leader sent more than " + std::to_string(opt_.max_deferred_bytes) +
                 " bytes of messages while its snapshot was arriving or loading");
      return;
    }
    learn().deferred.push_back(std::move(m));
    return;
  }
  handle_leader_message(m);
}

void Zab::refuse_sync_size(uint64_t bytes) {
  // Said as an error, once for each leader's epoch: this server cannot join
  // until the bound is raised, and it tries again after each election.
  if (refused_sync_epoch_ != learn().leader_epoch) {
    refused_sync_epoch_ = learn().leader_epoch;
    host_->logger().error("the leader's sync holds more than max_sync_bytes (" +
                          std::to_string(opt_.max_sync_bytes) + " bytes; " + std::to_string(bytes) +
                          " so far): raise [consensus.zab] max_sync_bytes for a tree this large");
  }
  go_looking("the leader's sync is larger than max_sync_bytes");
}

bool Zab::stream_whole() const {
  const SyncPlan& plan = std::get<LearnerState>(side_).sync.plan;
  return plan.snapshot.size() == plan.snap_size &&
         (plan.entries_last == 0 ||
          (!plan.entries.empty() && plan.entries.back().zxid == plan.entries_last));
}

void Zab::on_stream(Msg& m) {
  LearnerState& l = learn();
  SyncPlan& plan = l.sync.plan;
  if (!l.receiving) {
    go_looking(std::string("the leader sent ") + msg_type_name(m.type) + " out of turn");
    return;
  }
  uint64_t units = 0;
  if (m.type == MsgType::snap_piece) {
    if (m.body.empty() || m.body.size() > plan.snap_size - plan.snapshot.size()) {
      go_looking("the leader sent more snapshot than it announced");
      return;
    }
    if (plan.snapshot.empty())
      // Sized as the pieces prove it, never by the announcement alone.
      plan.snapshot.reserve(std::min<uint64_t>(plan.snap_size, uint64_t{64} << 20));
    plan.snapshot.append(m.body);
    units = m.body.size();
  } else {
    // Entries come after the whole snapshot, in order, up to the last one
    // announced.
    const Zxid after = !plan.entries.empty()               ? plan.entries.back().zxid
                       : plan.mode == SyncPlan::Mode::snap ? plan.snap_zxid
                                                           : 0;
    if (plan.snapshot.size() != plan.snap_size || m.plan.entries.empty() ||
        m.plan.entries.front().zxid <= after || m.plan.entries.back().zxid > plan.entries_last) {
      go_looking("the leader sent sync entries out of order");
      return;
    }
    for (LogEntry& e : m.plan.entries) {
      units += stream_units(e);
      plan.entries.push_back(std::move(e));
    }
  }
  l.stream_units += units;
  if (l.stream_units > opt_.max_sync_bytes) {
    refuse_sync_size(l.stream_units);
    return;
  }
  Msg ack;
  ack.type = MsgType::stream_ack;
  ack.zxid = static_cast<int64_t>(l.stream_units);
  send_to_leader(ack);
  if (!stream_whole()) return;
  l.receiving = false;
  l.stream_units = 0;
  Msg sync = std::move(l.sync);
  accept_sync(sync);
  drain_deferred();
}

void Zab::drain_deferred() {
  // Handling one may end the role (go_looking), and a leader that adopted a
  // fetched history has no learner's side at all.
  while (LearnerState* learn = learning()) {
    if (learn->deferred.empty() || pending_sync_.in_progress || snapshot_in_flight_) return;
    auto it = learn->deferred.begin();
    if (learn->receiving) {
      // A SYNC taken from here: its stream comes next, in order, ahead of
      // what else waits (which waits for the whole sync anyway).
      it = std::find_if(learn->deferred.begin(), learn->deferred.end(), [](const Msg& d) {
        return d.type == MsgType::snap_piece || d.type == MsgType::sync_entries;
      });
      if (it == learn->deferred.end()) return;
    }
    Msg m = std::move(*it);
    learn->deferred.erase(it);
    learn->deferred_bytes -= std::min(learn->deferred_bytes, deferred_size(m));
    handle_leader_message(m);
  }
}

void Zab::handle_leader_message(Msg& m) {
  switch (m.type) {
    case MsgType::leader_info:
      if (stage_ != Stage::discovery || learn().got_leader_info) return;
      if (m.epoch < accepted_epoch_) {
        go_looking("server " + std::to_string(leader_) + " proposes epoch " +
                   std::to_string(m.epoch) + ", older than the accepted epoch " +
                   std::to_string(accepted_epoch_));
        return;
      }
      if (m.epoch > accepted_epoch_) {
        accepted_epoch_ = m.epoch;
        if (Status st = chost_->storage().save_epochs(accepted_epoch_, current_epoch_); !st) {
          go_looking("cannot save the accepted epoch: " + st.to_string());
          return;
        }
      }
      learn().got_leader_info = true;
      learn().leader_epoch = m.epoch;
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
      auto plan = plan_sync(m.zxid, /*stream=*/false);
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
      if (stage_ != Stage::discovery || !learn().got_leader_info ||
          m.epoch != learn().leader_epoch) {
        go_looking("the leader sent SYNC out of turn");
        return;
      }
      stage_ = Stage::sync;
      stage_started_ = now_;
      if (m.plan.streamed) {
        if (m.plan.snap_size > opt_.max_sync_bytes) {
          refuse_sync_size(m.plan.snap_size);
          return;
        }
        // The snapshot and the entries follow; the plan waits for them.
        learn().sync = std::move(m);
        learn().stream_units = 0;
        if (!stream_whole()) {
          learn().receiving = true;
          return;
        }
        Msg sync = std::move(learn().sync);
        accept_sync(sync);
        return;
      }
      {
        // A whole SYNC in one message (a leader from before syncs were
        // streamed): bounded the same way.
        uint64_t bytes = m.plan.snapshot.size();
        for (const LogEntry& e : m.plan.entries) bytes += stream_units(e);
        if (bytes > opt_.max_sync_bytes) {
          refuse_sync_size(bytes);
          return;
        }
      }
      accept_sync(m);
      return;
    }
    case MsgType::snap_piece:
    case MsgType::sync_entries:
      on_stream(m);
      return;
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
      if (stage_ != Stage::sync || !learn().newleader_acked) return;
      commit_target_ = std::max(commit_target_, std::min(m.zxid, last_logged_));
      stage_ = Stage::broadcast;
      apply_committed();
      if (stage_ != Stage::broadcast) return;
      role_ = observer_ ? Role::observing : Role::following;
      host_->logger().info(std::string("synced with leader ") + std::to_string(leader_) +
                           " in epoch " + std::to_string(current_epoch_) + " at zxid " +
                           hex(last_applied_) + "; serving clients");
      chost_->role_changed(role_, leader_, current_epoch_);
      emit(ZabEvent{ZabEvent::Kind::following, current_epoch_, leader_});
      election_->settled(sdk::ElectionResult{leader_, last_logged_, current_epoch_, 0});
      early_infos_.clear();
      if (moving_ && learning()) end_move();  // held writes go to the new leader now
      return;
    case MsgType::ping: {
      Msg pong;
      pong.type = MsgType::ping;
      if (stage_ == Stage::broadcast) pong.body = chost_->take_session_activity();
      send_to_leader(pong);
      return;
    }
    case MsgType::take_over:
      if (stage_ != Stage::broadcast || m.epoch != current_epoch_) return;
      if (!is_voter(m.id) || (m.id == self_ && (observer_ || last_logged_ < m.zxid))) {
        go_looking("server " + std::to_string(leader_) + " handed over to server " +
                   std::to_string(m.id) + ", which cannot take over at " + hex(m.zxid));
        return;
      }
      host_->logger().info(
          "server " + std::to_string(leader_) + " hands the leadership to " +
          (m.id == self_ ? std::string("this server") : "server " + std::to_string(m.id)));
      move_to(m.id);
      return;
    case MsgType::hold: {
      if (stage_ != Stage::broadcast) return;
      holding_ = true;  // until TAKE_OVER moves it, RELEASE, or it looks again
      Msg ack;
      ack.type = MsgType::hold_ack;
      ack.id = m.id;
      send_to_leader(ack);
      return;
    }
    case MsgType::release:
      if (stage_ == Stage::broadcast && holding_ && !moving_) release_held(false);
      return;
    case MsgType::transfer_reply:
      if (m.id == 0)
        finish_transfer({});
      else
        finish_transfer(Status(
            static_cast<Errc>(std::clamp<int64_t>(m.id, 1, static_cast<int64_t>(Errc::internal))),
            "the leader answered: " + m.text));
      return;
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
      host_->logger().warn("the leader sent " + std::string(msg_type_name(m.type)) +
                           ", which a learner does not expect");
      return;
  }
}

void Zab::accept_sync(Msg& m) {
  uint64_t gen = generation_;
  apply_sync(std::move(m.plan), m.zxid, [this, gen] {
    if (gen != generation_) return;
    current_epoch_ = learn().leader_epoch;
    if (Status st = chost_->storage().save_epochs(accepted_epoch_, current_epoch_); !st) {
      go_looking("cannot save the current epoch: " + st.to_string());
      return;
    }
    learn().newleader_acked = true;
    Msg ack;
    ack.type = MsgType::ack;
    ack.zxid = sdk::make_zxid(learn().leader_epoch, 0);
    send_to_leader(ack);
    learn().acked_sent = pending_sync_.target;
    flush_ack();
  });
}

void Zab::flush_ack() {
  LearnerState* learn = learning();
  // An observer acknowledges too once its log holds a change that makes it a
  // voter: the change commits only with a quorum of the voters it installs.
  if (!learn || !learn->newleader_acked || (observer_ && !seen_voter(self_)) ||
      last_durable_ <= learn->acked_sent)
    return;
  Msg ack;
  ack.type = MsgType::ack;
  ack.zxid = last_durable_;
  learn->acked_sent = last_durable_;
  send_to_leader(ack);
}

}  // namespace corral::zab
