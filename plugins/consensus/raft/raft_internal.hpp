// Helpers shared by the raft core's files (not part of its interface).
#pragma once

#include <cinttypes>
#include <cstdio>
#include <string>

#include "corral/sdk/types.hpp"

namespace corral::raft {

inline std::string hex(sdk::Zxid z) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, static_cast<uint64_t>(z));
  return buf;
}

}  // namespace corral::raft
