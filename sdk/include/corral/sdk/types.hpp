// Value types shared by every layer: identifiers, byte buffers, log entries.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace corral::sdk {

// Owned bytes. std::string is used as a byte buffer: cheap moves, small-buffer
// optimisation for short payloads, and no conversions at the codec boundary.
using Bytes = std::string;
using BytesView = std::string_view;

// ZooKeeper transaction id: epoch in the high 32 bits, counter in the low 32.
using Zxid = int64_t;
inline constexpr Zxid make_zxid(uint32_t epoch, uint32_t counter) {
  return static_cast<Zxid>((static_cast<uint64_t>(epoch) << 32) | counter);
}
inline constexpr uint32_t zxid_epoch(Zxid z) {
  return static_cast<uint32_t>(static_cast<uint64_t>(z) >> 32);
}
inline constexpr uint32_t zxid_counter(Zxid z) { return static_cast<uint32_t>(z); }

// The `myid` of a server in an ensemble (1..255 in ZooKeeper; any positive int64 here).
using ServerId = int64_t;

enum class Role { looking, standalone, leading, following, observing };
const char* role_name(Role role) noexcept;  // "standalone", "leader", "follower", ...

// One committed (or proposed) state change as consensus and storage see it.
// `body` is opaque to both: the kernel encodes and applies it. `time_ms` is the
// wall-clock time the leader stamped on it, so every replica computes the same
// ctime/mtime when it applies the entry.
struct LogEntry {
  Zxid zxid = 0;
  int64_t time_ms = 0;
  Bytes body;
};

// A network endpoint as written in configuration: "host:port", "[v6]:port".
struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const;
};
// Parses "host:port", "[::1]:port" or ":port" (host empty). False on error.
bool parse_endpoint(std::string_view text, Endpoint& out);

}  // namespace corral::sdk
