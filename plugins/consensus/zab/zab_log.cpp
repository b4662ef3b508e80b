// The Zab core's log: appending, durability, applying what is committed,
// the history kept in memory, and planning and applying syncs.
#include <algorithm>

#include "history.hpp"
#include "zab.hpp"
#include "zab_internal.hpp"

namespace corral::zab {

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
  store(unapplied_.back());
}

void Zab::store(const LogEntry& entry) {
  Zxid z = entry.zxid;
  chost_->storage().append(
      entry, [this, alive = alive_.ref(), lg = log_generation_, z](const Status& st) {
        if (!alive || !running_) return;
        if (!st) {
          // What storage holds from z on is unknown now (a full disk may take
          // later entries and leave a hole): leave the ensemble, and write
          // the tail again from memory once storage takes it (rewrite_tail,
          // from tick). Even a refusal from before the log was last cut
          // counts: the cut may have assumed the entry durable.
          if (lg == log_generation_) last_durable_ = std::min(last_durable_, z - 1);
          ++log_generation_;
          tail_lost_ = true;
          rewriting_ = false;
          tail_retry_at_ = now_;
          if (st.code() == sdk::Errc::io_error && !storage_failed_) {
            // Not a full disk: the storage gave up (a failed fsync), and
            // takes no write until the server restarts and recovers.
            storage_failed_ = true;
            host_->logger().error("storage refused zxid " + hex(z) + ": " + st.to_string() +
                                  "; this server takes no part in the ensemble until it is "
                                  "restarted");
          } else if (!storage_failed_) {
            host_->logger().error("storage refused zxid " + hex(z) + ": " + st.to_string() +
                                  "; the log after " + hex(last_durable_) +
                                  " is written again once storage takes it");
          }
          if (stage_ != Stage::looking) go_looking("storage refused an append");
          return;
        }
        if (lg != log_generation_) return;
        last_durable_ = std::max(last_durable_, z);
        on_durable();
      });
}

void Zab::rewrite_tail() {
  tail_retry_at_ = now_ + opt_.tick_ms;
  if (Status st = chost_->storage().truncate_after(last_durable_); !st) {
    host_->logger().warn("cannot cut the log after " + hex(last_durable_) +
                         " yet: " + st.to_string());
    return;
  }
  ++log_generation_;
  // The log is whole again once everything written now is durable
  // (on_durable); a refusal meanwhile starts over.
  rewriting_ = true;
  rewrite_until_ = last_durable_;
  size_t n = 0;
  for (const auto* entries : {&recent_, &unapplied_})
    for (const LogEntry& e : *entries)
      if (e.zxid > last_durable_) {
        store(e);
        rewrite_until_ = e.zxid;
        ++n;
      }
  host_->logger().info("writing the log after " + hex(last_durable_) + " again (" +
                       std::to_string(n) + " entries)");
  check_tail_rewritten();
}

void Zab::check_tail_rewritten() {
  if (!rewriting_ || last_durable_ < rewrite_until_) return;
  rewriting_ = false;
  tail_lost_ = false;
  host_->logger().info("the log is whole again up to " + hex(last_durable_));
  // A leader that waited for this decides its epoch now (a learner's next
  // tick sends its FOLLOWERINFO).
  if (leader_ == self_ && stage_ == Stage::discovery) maybe_decide_epoch();
}

void Zab::on_durable() {
  check_tail_rewritten();
  if (leader_ == self_ && stage_ != Stage::looking) {
    if (lead().established)
      try_commit();
    else
      maybe_establish();
  } else if (LearnerState* learn = learning();
             learn && learn->newleader_acked && !learn->ack_posted) {
    // One ACK for every entry made durable in this turn of the loop.
    learn->ack_posted = true;
    host_->executor().post([this, alive = alive_.ref()] {
      if (!alive) return;
      if (LearnerState* learn = learning()) {  // else the role ended meanwhile
        learn->ack_posted = false;
        flush_ack();
      }
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
    recent_held_ += e.body.size();
    recent_.push_back(std::move(e));
    if (changed) membership_applied(zxid);
  }
  // Large entries (a restore's pieces, say) are not all kept.
  while ((recent_.size() > opt_.recent_entries || recent_held_ > opt_.recent_bytes) &&
         !recent_.empty() && recent_.front().zxid <= last_durable_) {
    recent_held_ -= recent_.front().body.size();
    recent_.pop_front();
  }
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
    host_->logger().warn(
        cause +
        " took this server out of the ensemble; it stops taking part (start it again, "
        "with an empty data directory, once a reconfig adds it back)");
    removed_ = true;
    go_looking("removed from the ensemble");
    election_->stop();
    return;
  }
  if (observer != observer_) {
    observer_ = observer;
    LearnerState* learn = learning();
    if (!observer && learn && stage_ == Stage::broadcast && is_voter(leader_)) {
      // An observer made a participant has acknowledged proposals since the
      // change was logged: it follows the same leader, now as a voter (a
      // leader that still informed it drops it, and it joins again).
      role_ = Role::following;
      host_->logger().info(cause + " made this server a participant; it follows server " +
                           std::to_string(leader_) + " as a voter");
      chost_->role_changed(role_, leader_, current_epoch_);
      election_->settled(sdk::ElectionResult{leader_, last_logged_, current_epoch_, 0});
      flush_ack();
      return;
    }
    go_looking(cause + " made this server " + (observer ? "an observer" : "a participant"));
    return;
  }
  LeaderState* lead = leading();
  if (!lead) return;
  std::vector<std::pair<ServerId, std::string>> drop;
  for (auto& [id, l] : lead->learners) {
    bool known = false;
    for (const auto& m : net_->members())
      if (m.id == id) known = true;
    if (!known) drop.emplace_back(id, cause + " removed it");
    // A learner follows while it votes, or a logged change makes it a voter
    // (promoted); one that changed part otherwise joins again in its new one.
    else if (l.observer ? is_voter(id) : !is_voter(id) && !seen_voter(id))
      drop.emplace_back(id, cause + " changed its part; it joins again");
  }
  for (const auto& [id, why] : drop) drop_learner(id, why);
  lead = leading();  // a drop may have ended the leadership
  if (lead && lead->established && !quorum_in_touch())
    go_looking("lost the quorum of the new membership");
}

void Zab::fail_waiters(const Status& why) {
  std::vector<std::function<void(const Status&)>> failed;
  for (auto& [z, done] : applied_waiters_) failed.push_back(std::move(done));
  for (auto& [id, done] : sync_requests_) failed.push_back(std::move(done));
  for (auto& done : held_syncs_) failed.push_back(std::move(done));
  held_syncs_.clear();
  if (LeaderState* lead = leading()) {
    for (auto* list : {&lead->syncs_queued, &lead->syncs_in_round})
      for (auto& s : *list)
        if (s.local) failed.push_back(std::move(s.local));
    lead->syncs_queued.clear();
    lead->syncs_in_round.clear();
    lead->round_open = false;
  }
  applied_waiters_.clear();
  sync_requests_.clear();
  if (failed.empty()) return;
  host_->executor().post([failed = std::move(failed), why] {
    for (auto& done : failed) done(why);
  });
}

Status Zab::scan_history(Zxid after, const std::function<bool(const LogEntry&)>& visit) {
  // Entries not yet durable are only in memory; `recent_` keeps every applied
  // one until it is, and `unapplied_` holds the rest, so below the first
  // entry in memory the log on disk is complete.
  Zxid mem_start = !recent_.empty()      ? recent_.front().zxid
                   : !unapplied_.empty() ? unapplied_.front().zxid
                                         : last_logged_ + 1;
  bool more = true;
  if (after < mem_start) {
    Status st = chost_->storage().read_log(after, [&](const LogEntry& e) {
      if (e.zxid >= mem_start) return false;
      return more = visit(e);
    });
    if (!st) return st;
  }
  for (const auto* q : {&recent_, &unapplied_})
    for (const LogEntry& e : *q)
      if (more && e.zxid > after) more = visit(e);
  return {};
}

Status Zab::collect_history(Zxid after, std::vector<LogEntry>& out) {
  return scan_history(after, [&](const LogEntry& e) {
    out.push_back(e);
    return true;
  });
}

sdk::Result<SyncPlan> Zab::plan_sync(Zxid peer_last, bool stream) {
  if (snapshot_in_flight_) return Status{Errc::unavailable, "a snapshot is still being written"};
  // The log is this server's history only after its newest snapshot (before
  // it may lie entries of an abandoned history, replaced by a SNAP).
  Zxid floor = chost_->storage().latest_snapshot_zxid();
  if (stream) {
    // Only what the plan decides on is read now: the snapshot and the
    // entries follow it, read as they are sent (pump_stream).
    SyncPlan p;
    p.streamed = true;
    Zxid common = floor;
    bool snap = needs_snapshot(peer_last, floor);
    if (!snap) {
      // As plan_diff: the peer holds our history up to the newest entry of
      // ours at or before its last; if that is not its last, its tail goes.
      Status st = scan_history(floor, [&](const LogEntry& e) {
        if (e.zxid > peer_last) return false;
        common = e.zxid;
        return true;
      });
      // A log retired with a snapshot newer than the one storage named a
      // moment ago (it says so once that snapshot is committed): send that.
      if (!st && st.code() == Errc::not_found)
        snap = true;
      else if (!st)
        return st;
    }
    if (snap) {
      auto reader = chost_->storage().read_snapshot();
      if (!reader) return reader.status();
      p.reader = std::move(reader.value());
      p.mode = SyncPlan::Mode::snap;
      p.snap_zxid = p.reader->zxid();
      p.snap_size = p.reader->size();
      p.stream_after = p.snap_zxid;
    } else {
      if (common != peer_last) {
        p.mode = SyncPlan::Mode::trunc;
        p.trunc_zxid = common;
      }
      p.stream_after = common;
    }
    p.entries_last = last_logged_ > p.stream_after ? last_logged_ : 0;
    return p;
  }
  if (needs_snapshot(peer_last, floor)) {
    SyncPlan p;
    auto snap = chost_->storage().read_snapshot();
    if (!snap) return snap.status();
    std::shared_ptr<sdk::SnapshotReader> reader = std::move(snap.value());
    p.mode = SyncPlan::Mode::snap;
    p.snap_zxid = reader->zxid();
    while (true) {
      auto piece = reader->next(opt_.snap_piece_bytes);
      if (!piece) return piece.status();
      if (piece.value().empty()) break;
      p.snapshot.append(piece.value());
    }
    if (p.snapshot.size() != reader->size())
      return Status{Errc::corrupt, "the snapshot at " + hex(p.snap_zxid) + " ended after " +
                                       std::to_string(p.snapshot.size()) + " of its " +
                                       std::to_string(reader->size()) + " bytes"};
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
      host_->logger().error("refusing to truncate the log after " + hex(plan.trunc_zxid) +
                            ": entries up to " + hex(last_applied_) +
                            " are committed and the log ends at " + hex(last_logged_));
      go_looking("inconsistent TRUNC");
      return;
    }
    // Cut at the durable prefix, not at the TRUNC point: an append in
    // flight below it may yet be refused (a full disk), and its answer is
    // void once the log is cut. What lies between is written again.
    Zxid keep = std::min(last_durable_, plan.trunc_zxid);
    if (Status st = storage.truncate_after(keep); !st) {
      go_looking("cannot truncate the log: " + st.to_string());
      return;
    }
    ++log_generation_;
    while (!unapplied_.empty() && unapplied_.back().zxid > plan.trunc_zxid) unapplied_.pop_back();
    last_logged_ = plan.trunc_zxid;
    last_durable_ = keep;
    for (const auto* entries : {&recent_, &unapplied_})
      for (const LogEntry& e : *entries)
        if (e.zxid > keep) store(e);
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
  recent_held_ = 0;
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
  keep->commit(
      [this, alive = alive_.ref(), keep, gen, entries, committed, snap_zxid](const Status& st) {
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
        if (gen == generation_ && stage_ != Stage::looking)
          finish_sync(std::move(*entries), committed);
        else
          drain_deferred();
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

}  // namespace corral::zab
