// Session liveness: when each session expires unless it is heard from.
// Deadlines are grouped into tick-sized buckets, as ZooKeeper's
// ExpiryQueue does, so a touch is O(1) and expiry scans only due buckets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace corral::kernel {

class SessionTracker {
 public:
  explicit SessionTracker(int64_t tick_ms) : tick_ms_(tick_ms) {}

  // Starts tracking (or re-times) `session` with `timeout_ms` from `now_ms`.
  void track(int64_t session, int32_t timeout_ms, int64_t now_ms);
  // The session was heard from: its deadline moves to now + timeout.
  // False if the session is unknown (expired or closed).
  bool touch(int64_t session, int64_t now_ms);
  void forget(int64_t session);
  // Forgets every session (the tree was replaced).
  void clear() {
    sessions_.clear();
    buckets_.clear();
  }
  bool tracked(int64_t session) const { return sessions_.count(session) != 0; }
  // Sessions whose deadline passed by `now_ms`; they stay tracked (marked
  // expiring) until forget(), so they are reported once.
  std::vector<int64_t> take_expired(int64_t now_ms);
  size_t size() const { return sessions_.size(); }

 private:
  struct Entry {
    int32_t timeout_ms;
    int64_t bucket;  // -1 once reported as expired
  };
  int64_t bucket_for(int64_t deadline) const { return (deadline / tick_ms_ + 1) * tick_ms_; }
  void place(int64_t session, Entry& e, int64_t deadline);

  int64_t tick_ms_;
  std::unordered_map<int64_t, Entry> sessions_;
  std::map<int64_t, std::unordered_set<int64_t>> buckets_;
};

}  // namespace corral::kernel
