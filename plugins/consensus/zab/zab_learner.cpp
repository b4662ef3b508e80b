// The Zab core, the learner's side (follower or observer): following a
// leader through discovery and sync, then proposals, commits and pings.
#include <algorithm>

#include "history.hpp"
#include "zab.hpp"
#include "zab_internal.hpp"

namespace corral::zab {

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
  // Nothing may reach the log while a snapshot from a leader is still being
  // written (even one from an earlier sync): a crash would leave entries
  // after a hole.
  if (pending_sync_.in_progress || snapshot_in_flight_) {
    learn().deferred.push_back(std::move(m));
    return;
  }
  handle_leader_message(m);
}

void Zab::drain_deferred() {
  // Handling one may end the role (go_looking), and a leader that adopted a
  // fetched history has no learner's side at all.
  while (LearnerState* learn = learning()) {
    if (learn->deferred.empty() || pending_sync_.in_progress || snapshot_in_flight_) return;
    Msg m = std::move(learn->deferred.front());
    learn->deferred.pop_front();
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
      if (stage_ != Stage::discovery || !learn().got_leader_info ||
          m.epoch != learn().leader_epoch) {
        go_looking("the leader sent SYNC out of turn");
        return;
      }
      stage_ = Stage::sync;
      stage_started_ = now_;
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
