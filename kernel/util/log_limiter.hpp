// Keeps a flood of refusals (strangers on the peer ports, a client over its
// connection limit) from flooding the log: a few lines a second are written,
// and the rest are counted and summed up once the second is over.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "corral/sdk/host.hpp"

namespace corral::kernel {

class LogLimiter {
 public:
  explicit LogLimiter(int per_second = 5) : per_second_(per_second) {}

  // Writes `line` as a warning unless this second's allowance is spent.
  void warn(sdk::Logger& log, const std::string& line) {
    int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
    if (now - window_start_ >= 1000) {
      if (suppressed_ > 0)
        log.warn(std::to_string(suppressed_) + " more like it in the last second");
      window_start_ = now;
      written_ = 0;
      suppressed_ = 0;
    }
    if (++written_ <= per_second_)
      log.warn(line);
    else
      ++suppressed_;
  }

 private:
  int per_second_;
  int64_t window_start_ = 0;
  int written_ = 0, suppressed_ = 0;
};

}  // namespace corral::kernel
