// Helpers the recipes' files share (not part of the client's interface).
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "corral/client/recipes.hpp"

namespace corral::recipes::detail {

using proto::Err;

inline sdk::Status status_of(Err e, std::string_view what) {
  if (e == Err::ok) return {};
  sdk::Errc code = e == Err::no_node       ? sdk::Errc::not_found
                   : e == Err::node_exists ? sdk::Errc::already_exists
                   : (e == Err::connection_loss || e == Err::session_expired)
                       ? sdk::Errc::unavailable
                       : sdk::Errc::invalid_argument;
  return {code, std::string(what) + ": " + proto::err_name(e)};
}

// Ends a wait that failed after its node joined the line: the node goes
// first (those queued behind it would otherwise wait for it as long as the
// session lives), then `done`, if any, hears why. `node` is left empty.
inline void leave_line(client::Client& c, std::string& node, Done done, sdk::Status why) {
  if (node.empty()) {
    if (done) done(why);
    return;
  }
  c.remove(std::exchange(node, std::string()), -1,
           [done = std::move(done), why = std::move(why)](const client::Response&) {
             if (done) done(why);
           });
}

inline std::string basename(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// Curator sorts lock-style children by what follows the last `name`.
inline std::vector<std::string> sorted_by_sequence(std::vector<std::string> children,
                                                   const std::string& name) {
  std::vector<std::string> out;
  for (auto& c : children)
    if (c.rfind(name) != std::string::npos) out.push_back(std::move(c));
  std::sort(out.begin(), out.end(), [&](const std::string& a, const std::string& b) {
    return a.substr(a.rfind(name) + name.size()) < b.substr(b.rfind(name) + name.size());
  });
  return out;
}

inline std::string int_bytes(int32_t v) {
  auto u = static_cast<uint32_t>(v);
  return {static_cast<char>(u >> 24), static_cast<char>(u >> 16), static_cast<char>(u >> 8),
          static_cast<char>(u)};
}

inline std::optional<int32_t> bytes_int(const std::string& b) {
  if (b.size() != 4) return std::nullopt;
  uint32_t u = 0;
  for (char c : b) u = (u << 8) | static_cast<unsigned char>(c);
  return static_cast<int32_t>(u);
}

}  // namespace corral::recipes::detail
