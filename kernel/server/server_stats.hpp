// Request statistics for srvr/stat/mntr, and how session ids are printed.
#pragma once

#include <cstdint>
#include <string>

namespace corral::kernel {

// Request statistics for srvr/stat/mntr.
struct ServerStats {
  uint64_t packets_received = 0;
  uint64_t packets_sent = 0;
  int64_t latency_min_ms = -1;
  int64_t latency_max_ms = 0;
  int64_t latency_total_ms = 0;
  uint64_t latency_count = 0;
  void record_latency(int64_t ms);
  void reset();
};

// "0x1000a5b2c3d0001", as ZooKeeper prints session ids.
std::string session_hex(int64_t id);

}  // namespace corral::kernel
