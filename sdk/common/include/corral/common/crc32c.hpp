// CRC-32C (Castagnoli), the checksum of log records and snapshots. Uses the
// SSE4.2 instruction when the processor has it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace corral::common {

// Extends `crc` (0 to start) over `data`.
uint32_t crc32c(uint32_t crc, const void* data, size_t size) noexcept;
inline uint32_t crc32c(std::string_view data) noexcept {
  return crc32c(0, data.data(), data.size());
}

}  // namespace corral::common
