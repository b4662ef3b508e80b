#include "ensemble/dynamic_config.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace corral::kernel {

namespace {

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r\n"));
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s;
}

}  // namespace

bool parse_member(sdk::ServerId id, std::string_view text, sdk::PeerSpec& out, std::string& error) {
  return sdk::parse_peer_spec(id, text, out, error);
}

std::string format_member(const sdk::PeerSpec& m) { return sdk::format_peer_spec(m); }

std::string format_dynamic_config(const std::vector<sdk::PeerSpec>& members, sdk::Zxid version) {
  std::vector<const sdk::PeerSpec*> sorted;
  for (const auto& m : members) sorted.push_back(&m);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->id < b->id; });
  std::string text;
  for (const auto* m : sorted)
    text += "server." + std::to_string(m->id) + "=" + format_member(*m) + "\n";
  char hex[24];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(version));
  return text + "version=" + hex;
}

bool parse_dynamic_config(std::string_view text, std::vector<sdk::PeerSpec>& members,
                          sdk::Zxid& version, std::string& error) {
  members.clear();
  version = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of(",\n", start);
    if (end == std::string_view::npos) end = text.size();
    std::string line = trim(std::string(text.substr(start, end - start)));
    start = end + 1;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) return error = "'" + line + "' is not key=value", false;
    std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (key == "version") {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), version, 16);
      if (ec != std::errc() || p != value.data() + value.size())
        return error = "version must be hexadecimal, found '" + value + "'", false;
      continue;
    }
    if (key.rfind("server.", 0) != 0) return error = "unknown key '" + key + "'", false;
    sdk::ServerId id = 0;
    std::string_view digits = std::string_view(key).substr(7);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    if (ec != std::errc() || p != digits.data() + digits.size() || id <= 0)
      return error = "'" + key + "' needs a positive server id", false;
    sdk::PeerSpec m;
    std::string why;
    if (!parse_member(id, value, m, why)) return error = key + ": expected " + why, false;
    for (const auto& o : members)
      if (o.id == id) return error = "server." + std::to_string(id) + " is listed twice", false;
    members.push_back(std::move(m));
  }
  std::sort(members.begin(), members.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  return true;
}

}  // namespace corral::kernel
