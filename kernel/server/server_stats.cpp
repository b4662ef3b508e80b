#include "server/server_stats.hpp"

#include <cstdio>

namespace corral::kernel {

void ServerStats::record_latency(int64_t ms) {
  if (ms < 0) ms = 0;
  if (latency_min_ms < 0 || ms < latency_min_ms) latency_min_ms = ms;
  if (ms > latency_max_ms) latency_max_ms = ms;
  latency_total_ms += ms;
  latency_count++;
}

void ServerStats::reset() { *this = ServerStats{}; }

std::string session_hex(int64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(id));
  return buf;
}

}  // namespace corral::kernel
