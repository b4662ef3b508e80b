// A log segment as recovery scans it, as the last segment (where a torn
// tail is possible) and as an earlier one.
#include <cstdint>

#include "wal_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t seen = 0;
  auto last = corral::wal::scan_segment(in, true, [&](const corral::sdk::LogEntry&, size_t) {
    ++seen;
    return true;
  });
  if (last.records != seen || last.valid_end > size) __builtin_trap();
  (void)corral::wal::scan_segment(in, false);
  return 0;
}
