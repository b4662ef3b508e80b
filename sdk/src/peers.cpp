#include "corral/sdk/peers.hpp"

#include <charconv>
#include <string>
#include <vector>

namespace corral::sdk {

bool parse_peer_spec(ServerId id, std::string_view text, PeerSpec& out, std::string& error) {
  auto port = [](std::string_view v, uint16_t& p) {
    unsigned n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || n == 0 || n > 65535) return false;
    p = static_cast<uint16_t>(n);
    return true;
  };
  PeerSpec m;
  m.id = id;
  std::string_view addr = text, client;
  if (size_t semi = text.find(';'); semi != std::string_view::npos) {
    addr = text.substr(0, semi);
    client = text.substr(semi + 1);
  }
  // host may be a bracketed IPv6 address.
  std::string_view rest = addr;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return error = "an IPv6 address in brackets", false;
    m.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (rest.empty() || rest[0] != ':') return error = "host:quorumPort:electionPort", false;
    rest = rest.substr(1);
  } else {
    size_t colon = rest.find(':');
    if (colon == std::string_view::npos) return error = "host:quorumPort:electionPort", false;
    m.host = std::string(rest.substr(0, colon));
    rest = rest.substr(colon + 1);
  }
  std::vector<std::string_view> parts;
  while (true) {
    size_t colon = rest.find(':');
    parts.push_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest = rest.substr(colon + 1);
  }
  if (m.host.empty() || parts.size() < 2 || parts.size() > 3 || !port(parts[0], m.quorum_port) ||
      !port(parts[1], m.election_port))
    return error = "host:quorumPort:electionPort with ports 1..65535", false;
  if (parts.size() == 3) {
    if (parts[2] == "observer")
      m.observer = true;
    else if (parts[2] != "participant")
      return error = "participant or observer after the ports", false;
  }
  if (!client.empty()) {
    size_t colon = client.rfind(':');
    std::string_view p = colon == std::string_view::npos ? client : client.substr(colon + 1);
    if (!port(p, m.client_port)) return error = "a client port 1..65535 after ';'", false;
    if (colon != std::string_view::npos) {
      std::string_view h = client.substr(0, colon);
      if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
      if (h.empty()) return error = "a client host before the client port", false;
      m.client_host = std::string(h);
    }
  }
  out = std::move(m);
  return true;
}

std::string format_peer_spec(const PeerSpec& m) {
  std::string host = m.host.find(':') != std::string::npos ? "[" + m.host + "]" : m.host;
  std::string s = host + ":" + std::to_string(m.quorum_port) + ":" +
                  std::to_string(m.election_port) + ":" + (m.observer ? "observer" : "participant");
  if (m.client_port) {
    const std::string& ch = m.client_host.empty() ? std::string("0.0.0.0") : m.client_host;
    s += ";" + (ch.find(':') != std::string::npos ? "[" + ch + "]" : ch) + ":" +
         std::to_string(m.client_port);
  }
  return s;
}

}  // namespace corral::sdk
