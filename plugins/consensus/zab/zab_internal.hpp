// Helpers shared by the Zab core's files (not part of its interface).
#pragma once

#include <cinttypes>
#include <cstdio>
#include <string>

#include "corral/sdk/peers.hpp"
#include "corral/sdk/status.hpp"
#include "corral/sdk/types.hpp"

namespace corral::zab {

// The SDK names every file of the core uses.
using sdk::Errc;
using sdk::LogEntry;
using sdk::PeerChannel;
using sdk::Role;
using sdk::ServerId;
using sdk::Status;
using sdk::Zxid;

inline std::string hex(sdk::Zxid z) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, static_cast<uint64_t>(z));
  return buf;
}

}  // namespace corral::zab
