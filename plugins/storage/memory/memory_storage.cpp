// The `memory` storage: keeps the log and snapshots in memory. Nothing
// survives a restart: for tests and for data that can be rebuilt.
#include <algorithm>
#include <deque>
#include <memory>

#include "corral/common/lifeline.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/storage.hpp"

namespace {

using namespace corral::sdk;

class MemoryStorage final : public Storage {
 public:
  Status init(PluginHost& host) override {
    host_ = &host;
    const ConfigTable& cfg = host.config();
    for (const std::string& key : cfg.keys())
      if (key != "retain_entries") return cfg.invalid(key, "retain_entries (unknown key)");
    auto keep = cfg.get_int("retain_entries", 100000);
    if (!keep) return keep.status();
    if (keep.value() < 1) return cfg.invalid("retain_entries", "1 or more");
    retain_ = static_cast<size_t>(keep.value());
    return {};
  }

  Result<RecoveredState> open() override { return RecoveredState{}; }

  Status read_log(Zxid after, const std::function<bool(const LogEntry&)>& visit) override {
    if (after < last_dropped_)
      return {Errc::not_found,
              "entries after zxid " + std::to_string(after) +
                  " are no longer retained in memory (storage.memory.retain_entries)"};
    for (const LogEntry& e : log_)
      if (e.zxid > after && !visit(e)) break;
    return {};
  }

  void append(const LogEntry& entry, AppendDone done) override {
    log_.push_back(entry);
    drop_retired();
    // Acknowledge on the loop, after the caller returns, in order; one post
    // covers every append made in the same loop turn.
    acks_.push_back(std::move(done));
    if (!flush_posted_) {
      flush_posted_ = true;
      host_->executor().post([this, alive = alive_.ref()] {
        if (!alive) return;
        flush_posted_ = false;
        std::deque<AppendDone> acks;
        acks.swap(acks_);
        for (auto& ack : acks) ack(Status());
      });
    }
  }

  Status truncate_after(Zxid zxid) override {
    while (!log_.empty() && log_.back().zxid > zxid) log_.pop_back();
    return {};
  }

  // Snapshots let the log shed entries (and serve Zab SNAP): one is due when
  // more than retain_entries are held.
  bool snapshot_due() const override { return retain_ > 0 && log_.size() > retain_; }

  Result<std::unique_ptr<SnapshotSink>> begin_snapshot(Zxid zxid) override {
    return std::unique_ptr<SnapshotSink>(std::make_unique<Sink>(*this, zxid));
  }

  Result<std::unique_ptr<SnapshotReader>> read_snapshot() override {
    if (snapshot_zxid_ < 0) return Status{Errc::not_found, "no snapshot taken yet"};
    return std::unique_ptr<SnapshotReader>(std::make_unique<Reader>(snapshot_zxid_, snapshot_));
  }

  Status save_epochs(uint32_t accepted, uint32_t current) override {
    accepted_epoch_ = accepted;
    current_epoch_ = current;
    return {};
  }
  Zxid latest_snapshot_zxid() const override { return snapshot_zxid_ < 0 ? 0 : snapshot_zxid_; }
  Status purge(int) override { return {}; }
  int64_t log_bytes() const override {
    int64_t n = 0;
    for (const LogEntry& e : log_) n += static_cast<int64_t>(e.body.size() + 16);
    return n;
  }
  int64_t snapshot_bytes() const override { return static_cast<int64_t>(snapshot_->size()); }
  void close() override {
    auto acks = std::move(acks_);
    acks_.clear();
    for (auto& ack : acks) ack(Status(Errc::unavailable, "storage closed"));
    alive_.end();
  }
  ~MemoryStorage() override { alive_.end(); }

 private:
  // Holds the snapshot it reads, which a newer one may replace meanwhile.
  class Reader final : public SnapshotReader {
   public:
    Reader(Zxid zxid, std::shared_ptr<const Bytes> bytes) : zxid_(zxid), bytes_(std::move(bytes)) {}
    Zxid zxid() const override { return zxid_; }
    uint64_t size() const override { return bytes_->size(); }
    Result<BytesView> next(size_t max) override {
      BytesView piece = BytesView(*bytes_).substr(at_, std::max<size_t>(max, 1));
      at_ += piece.size();
      return piece;
    }

   private:
    Zxid zxid_;
    std::shared_ptr<const Bytes> bytes_;
    size_t at_ = 0;
  };

  class Sink final : public SnapshotSink {
   public:
    Sink(MemoryStorage& s, Zxid zxid) : s_(s), zxid_(zxid) {}
    Status write(BytesView chunk) override {
      data_.append(chunk);
      return {};
    }
    void commit(std::function<void(const Status&)> done) override {
      // A slow snapshot of an older state may finish after a newer one.
      if (zxid_ >= s_.snapshot_zxid_) {
        s_.snapshot_ = std::make_shared<const Bytes>(std::move(data_));
        s_.snapshot_zxid_ = zxid_;
      }
      s_.drop_retired();
      s_.host_->executor().post([done = std::move(done)] { done(Status()); });
    }
    void abort() override { data_.clear(); }

   private:
    MemoryStorage& s_;
    Zxid zxid_;
    Bytes data_;
  };

  // Drops the oldest entries beyond retain_entries, but only those the
  // snapshot covers: the log must hold every entry after it.
  void drop_retired() {
    while (log_.size() > retain_ && !log_.empty() && log_.front().zxid <= snapshot_zxid_) {
      last_dropped_ = log_.front().zxid;
      log_.pop_front();
    }
  }

  PluginHost* host_ = nullptr;
  size_t retain_ = 100000;
  Zxid last_dropped_ = 0;  // entries up to here are gone
  std::deque<LogEntry> log_;
  std::deque<AppendDone> acks_;
  bool flush_posted_ = false;
  std::shared_ptr<const Bytes> snapshot_ = std::make_shared<const Bytes>();
  Zxid snapshot_zxid_ = -1;
  uint32_t accepted_epoch_ = 0, current_epoch_ = 0;
  corral::common::Lifeline alive_;
};

}  // namespace

CORRAL_PLUGIN(storage, "memory", MemoryStorage,
              "log and snapshots in memory; nothing survives a restart")
