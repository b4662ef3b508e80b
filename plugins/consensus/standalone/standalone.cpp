// The `standalone` consensus: one server, no replication. It numbers entries,
// makes them durable through the storage plugin and applies them in order.
#include <deque>

#include "corral/common/lifeline.hpp"
#include "corral/sdk/consensus.hpp"
#include "corral/sdk/plugin.hpp"

namespace {

using namespace corral::sdk;

class Standalone final : public Consensus {
 public:
  ConsensusTraits traits() const override { return {false}; }

  Status init(PluginHost& host) override {
    host_ = &host;
    for (const std::string& key : host.config().keys())
      return host.config().invalid(key, "absent: the standalone consensus has no settings");
    return {};
  }

  Status start(ConsensusHost& chost, const RecoveredState& recovered) override {
    chost_ = &chost;
    // Alone, every logged entry is committed: apply the log after the snapshot.
    last_applied_ = recovered.snapshot_zxid;
    Status replayed = chost.storage().read_log(recovered.snapshot_zxid, [&](const LogEntry& e) {
      chost.apply(e);
      last_applied_ = e.zxid;
      return true;
    });
    if (!replayed) return replayed;
    epoch_ = std::max(recovered.current_epoch, zxid_epoch(recovered.last_zxid));
    counter_ = zxid_epoch(recovered.last_zxid) == epoch_ ? zxid_counter(recovered.last_zxid) : 0;
    running_ = true;
    chost_->role_changed(Role::standalone, host_->server().server_id, epoch_);
    return {};
  }

  Status submit(Bytes body) override {
    if (!running_) return {Errc::unavailable, "server is stopping"};
    if (counter_ == UINT32_MAX) {
      // The counter is exhausted: continue in a new epoch, as a new leader would.
      ++epoch_;
      counter_ = 0;
      Status st = chost_->storage().save_epochs(epoch_, epoch_);
      if (!st) return st;
    }
    pending_.push_back(
        LogEntry{make_zxid(epoch_, ++counter_), host_->clock().wall_ms(), std::move(body)});
    chost_->storage().append(pending_.back(), [this, alive = alive_.ref()](const Status& st) {
      if (!alive || pending_.empty()) return;
      LogEntry done = std::move(pending_.front());
      pending_.pop_front();
      if (st) {
        last_applied_ = done.zxid;
        chost_->apply(done);
      } else {
        chost_->rejected(done, st);
      }
    });
    return {};
  }

  void sync(std::function<void(const Status&)> done) override {
    // Everything committed is applied here already.
    host_->executor().post([done = std::move(done)] { done(Status()); });
  }

  Role role() const override { return running_ ? Role::standalone : Role::looking; }
  ServerId leader() const override { return host_->server().server_id; }
  uint32_t epoch() const override { return epoch_; }
  Zxid last_applied() const override { return last_applied_; }
  ConsensusStatus status() const override {
    ConsensusStatus s;
    s.role = role();
    s.leader = leader();
    s.accepted_epoch = s.current_epoch = epoch_;
    s.last_logged = pending_.empty() ? last_applied_ : pending_.back().zxid;
    s.last_committed = s.last_logged;
    s.last_applied = last_applied_;
    s.pending_proposals = pending_.size();
    return s;
  }
  void tick(int64_t) override {}
  void stop() override {
    running_ = false;
    alive_.end();
    pending_.clear();
  }
  ~Standalone() override { alive_.end(); }

 private:
  PluginHost* host_ = nullptr;
  ConsensusHost* chost_ = nullptr;
  uint32_t epoch_ = 0, counter_ = 0;
  Zxid last_applied_ = 0;
  bool running_ = false;
  std::deque<LogEntry> pending_;
  corral::common::Lifeline alive_;
};

}  // namespace

CORRAL_PLUGIN(consensus, "standalone", Standalone, "a single server without replication")
