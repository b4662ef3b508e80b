#include "corral/common/docker_api.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "corral/common/http_parse.hpp"
#include "corral/common/json.hpp"

namespace corral::docker {

using common::JsonValue;
using sdk::Errc;
using sdk::Status;

namespace {

sdk::Result<std::string> dechunk(std::string_view body) {
  std::string out;
  size_t at = 0;
  for (;;) {
    size_t eol = body.find("\r\n", at);
    if (eol == std::string_view::npos)
      return Status(Errc::corrupt, "chunked body: a chunk size line without CRLF");
    std::string_view line = body.substr(at, eol - at);
    if (size_t semi = line.find(';'); semi != std::string_view::npos) line = line.substr(0, semi);
    line = common::trim_http_space(line);
    size_t size = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
    if (ec != std::errc() || p != line.data() + line.size())
      return Status(Errc::corrupt, "chunked body: bad chunk size \"" + std::string(line) + "\"");
    at = eol + 2;
    if (size == 0) return out;
    if (body.size() - at < size + 2) return Status(Errc::corrupt, "chunked body: truncated chunk");
    out.append(body.substr(at, size));
    at += size + 2;
  }
}

std::map<std::string, std::string> labels_of(const JsonValue* labels) {
  std::map<std::string, std::string> out;
  if (const auto* members = labels ? labels->as_object() : nullptr)
    for (const auto& [k, v] : *members)
      if (const std::string* s = v.as_string()) out[k] = *s;
  return out;
}

std::map<std::string, std::string> networks_of(const JsonValue& container) {
  std::map<std::string, std::string> out;
  const JsonValue* settings = container.get("NetworkSettings");
  const JsonValue* nets = settings ? settings->get("Networks") : nullptr;
  if (const auto* members = nets ? nets->as_object() : nullptr)
    for (const auto& [name, net] : *members) {
      std::string ip = net.get_string("IPAddress");
      if (!ip.empty()) out[name] = ip;
    }
  return out;
}

}  // namespace

sdk::Result<HttpResponse> parse_http_response(std::string_view raw) {
  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string_view::npos)
    return Status(Errc::corrupt, "HTTP response without a header end");
  std::string_view head = raw.substr(0, head_end);
  HttpResponse r;
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  if (status_line.substr(0, 5) != "HTTP/" || status_line.size() < 12)
    return Status(Errc::corrupt,
                  "not an HTTP status line: \"" + std::string(status_line.substr(0, 80)) + "\"");
  size_t sp = status_line.find(' ');
  auto [p, ec] = std::from_chars(status_line.data() + sp + 1,
                                 status_line.data() + status_line.size(), r.status);
  if (ec != std::errc() || r.status < 100 || r.status > 599)
    return Status(Errc::corrupt, "bad HTTP status in \"" + std::string(status_line) + "\"");
  r.headers = common::parse_http_headers(head);
  std::string_view body = raw.substr(head_end + 4);
  auto te = r.headers.find("transfer-encoding");
  if (te != r.headers.end() &&
      common::ascii_lower(te->second).find("chunked") != std::string::npos) {
    auto plain = dechunk(body);
    if (!plain) return plain.status();
    r.body = std::move(plain.value());
  } else {
    r.body = std::string(body);
  }
  return r;
}

std::string url_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string http_get(std::string_view path) {
  return "GET " + std::string(path) +
         " HTTP/1.0\r\nHost: docker\r\nUser-Agent: corrald\r\nAccept: application/json\r\n\r\n";
}

sdk::Result<std::vector<Container>> parse_container_list(std::string_view json) {
  auto doc = JsonValue::parse(json);
  if (!doc) return Status(Errc::corrupt, "container list: " + doc.status().message());
  const auto* items = doc->as_array();
  if (!items) return Status(Errc::corrupt, "container list: expected a JSON array");
  std::vector<Container> out;
  for (const JsonValue& item : *items) {
    Container c;
    c.id = item.get_string("Id");
    if (const JsonValue* names = item.get("Names");
        names && names->as_array() && !names->as_array()->empty())
      if (const std::string* n = names->as_array()->front().as_string())
        c.name = n->substr(n->rfind('/') + 1);
    c.labels = labels_of(item.get("Labels"));
    c.networks = networks_of(item);
    if (c.id.empty()) return Status(Errc::corrupt, "container list: an entry without an Id");
    out.push_back(std::move(c));
  }
  return out;
}

sdk::Result<Container> parse_container_inspect(std::string_view json) {
  auto doc = JsonValue::parse(json);
  if (!doc) return Status(Errc::corrupt, "container inspection: " + doc.status().message());
  if (!doc->is_object())
    return Status(Errc::corrupt, "container inspection: expected a JSON object");
  Container c;
  c.id = doc->get_string("Id");
  std::string name = doc->get_string("Name");
  c.name = name.substr(name.rfind('/') + 1);
  const JsonValue* config = doc->get("Config");
  c.labels = labels_of(config ? config->get("Labels") : nullptr);
  c.networks = networks_of(*doc);
  if (c.id.empty()) return Status(Errc::corrupt, "container inspection: no Id");
  return c;
}

std::optional<int64_t> parse_server_id(std::string_view text) {
  text = common::trim_http_space(text);
  int64_t id = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || p != text.data() + text.size() || id < 1 || id > 255)
    return std::nullopt;
  return id;
}

Discovered members_from(const std::vector<Container>& containers,
                        const std::set<std::string>& networks) {
  Discovered d;
  std::map<int64_t, std::string> claimed;  // id -> container name
  for (const Container& c : containers) {
    std::string who = "container " + (c.name.empty() ? c.id.substr(0, 12) : c.name);
    auto label = [&](const char* key) -> const std::string* {
      auto it = c.labels.find(key);
      return it == c.labels.end() ? nullptr : &it->second;
    };
    const std::string* id_text = label(kIdLabel);
    if (!id_text) {
      d.problems.push_back(who + " has no " + std::string(kIdLabel) + " label");
      continue;
    }
    auto id = parse_server_id(*id_text);
    if (!id) {
      d.problems.push_back(who + ": " + kIdLabel + "=\"" + *id_text +
                           "\" is not a server id (1..255)");
      continue;
    }
    if (auto it = claimed.find(*id); it != claimed.end()) {
      d.conflict = "containers " + it->second + " and " +
                   (c.name.empty() ? c.id.substr(0, 12) : c.name) + " both claim " + kIdLabel +
                   "=" + std::to_string(*id);
      return d;
    }
    std::string ip;
    for (const auto& [net, addr] : c.networks)
      if (networks.count(net)) {
        ip = addr;
        break;
      }
    if (ip.empty() && !c.networks.empty()) ip = c.networks.begin()->second;
    if (ip.empty()) {
      d.problems.push_back(who + " has no network address yet");
      continue;
    }
    sdk::PeerSpec m;
    m.id = *id;
    m.host = ip;
    auto port = [&](const char* key, uint16_t def, uint16_t& out) {
      out = def;
      const std::string* v = label(key);
      if (!v) return true;
      unsigned n = 0;
      auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (ec != std::errc() || p != v->data() + v->size() || n == 0 || n > 65535) {
        d.problems.push_back(who + ": " + key + "=\"" + *v + "\" is not a port");
        return false;
      }
      out = static_cast<uint16_t>(n);
      return true;
    };
    if (!port(kQuorumPortLabel, 2888, m.quorum_port) ||
        !port(kElectionPortLabel, 3888, m.election_port) ||
        !port(kClientPortLabel, 2181, m.client_port))
      continue;
    if (const std::string* type = label(kPeerTypeLabel)) {
      if (*type == "observer") {
        m.observer = true;
      } else if (*type != "participant") {
        d.problems.push_back(who + ": " + kPeerTypeLabel + "=\"" + *type +
                             "\" is not participant or observer");
        continue;
      }
    }
    claimed[*id] = c.name.empty() ? c.id.substr(0, 12) : c.name;
    d.members.push_back(std::move(m));
  }
  std::sort(d.members.begin(), d.members.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  return d;
}

std::optional<std::string> container_id_from_mountinfo(std::string_view text) {
  static constexpr std::string_view kMarker = "/containers/";
  for (size_t at = text.find(kMarker); at != std::string_view::npos;
       at = text.find(kMarker, at + 1)) {
    std::string_view rest = text.substr(at + kMarker.size());
    size_t n = 0;
    while (n < rest.size() && std::isxdigit(static_cast<unsigned char>(rest[n]))) ++n;
    if (n == 64 && n < rest.size() && rest[n] == '/') return std::string(rest.substr(0, 64));
  }
  return std::nullopt;
}

}  // namespace corral::docker
