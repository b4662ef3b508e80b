#include "session/session_tracker.hpp"

namespace corral::kernel {

void SessionTracker::place(int64_t session, Entry& e, int64_t deadline) {
  int64_t b = bucket_for(deadline);
  if (b == e.bucket) return;
  if (e.bucket >= 0) {
    auto it = buckets_.find(e.bucket);
    if (it != buckets_.end()) {
      it->second.erase(session);
      if (it->second.empty()) buckets_.erase(it);
    }
  }
  buckets_[b].insert(session);
  e.bucket = b;
}

void SessionTracker::track(int64_t session, int32_t timeout_ms, int64_t now_ms) {
  auto [it, fresh] = sessions_.try_emplace(session, Entry{timeout_ms, -2});
  it->second.timeout_ms = timeout_ms;
  if (it->second.bucket == -1) it->second.bucket = -2;  // revived
  place(session, it->second, now_ms + timeout_ms);
}

bool SessionTracker::touch(int64_t session, int64_t now_ms) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || it->second.bucket == -1) return false;
  place(session, it->second, now_ms + it->second.timeout_ms);
  return true;
}

void SessionTracker::forget(int64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  if (it->second.bucket >= 0) {
    auto b = buckets_.find(it->second.bucket);
    if (b != buckets_.end()) {
      b->second.erase(session);
      if (b->second.empty()) buckets_.erase(b);
    }
  }
  sessions_.erase(it);
}

std::vector<int64_t> SessionTracker::take_expired(int64_t now_ms) {
  std::vector<int64_t> out;
  while (!buckets_.empty() && buckets_.begin()->first <= now_ms) {
    for (int64_t s : buckets_.begin()->second) {
      out.push_back(s);
      sessions_[s].bucket = -1;
    }
    buckets_.erase(buckets_.begin());
  }
  return out;
}

}  // namespace corral::kernel
