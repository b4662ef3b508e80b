#include "console_core.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <cmath>
#include <limits>

#include "corral/common/json.hpp"

namespace corral::console {

using proto::Err;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

template <class T>
std::optional<T> number(std::string_view s) {
  s = trim(s);
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> prom_number(std::string_view s) {
  s = trim(s);
  if (s == "+Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  if (s == "NaN") return std::nullopt;
  return number<double>(s);
}

}  // namespace

std::string_view error_name(Err err) {
  switch (err) {
    case Err::ok:
      return "OK";
    case Err::system_error:
      return "SystemError";
    case Err::runtime_inconsistency:
      return "RuntimeInconsistency";
    case Err::data_inconsistency:
      return "DataInconsistency";
    case Err::connection_loss:
      return "ConnectionLoss";
    case Err::marshalling_error:
      return "MarshallingError";
    case Err::unimplemented:
      return "Unimplemented";
    case Err::operation_timeout:
      return "OperationTimeout";
    case Err::bad_arguments:
      return "BadArguments";
    case Err::unknown_session:
      return "UnknownSession";
    case Err::new_config_no_quorum:
      return "NewConfigNoQuorum";
    case Err::reconfig_in_progress:
      return "ReconfigInProgress";
    case Err::api_error:
      return "APIError";
    case Err::no_node:
      return "NoNode";
    case Err::no_auth:
      return "NoAuth";
    case Err::bad_version:
      return "BadVersion";
    case Err::no_children_for_ephemerals:
      return "NoChildrenForEphemerals";
    case Err::node_exists:
      return "NodeExists";
    case Err::not_empty:
      return "Directory not empty";
    case Err::session_expired:
      return "Session expired";
    case Err::invalid_callback:
      return "Invalid callback";
    case Err::invalid_acl:
      return "InvalidACL";
    case Err::auth_failed:
      return "AuthFailed";
    case Err::session_moved:
      return "Session moved";
    case Err::not_read_only:
      return "Not a read-only call";
    case Err::ephemeral_on_local_session:
      return "Ephemeral node on local session";
    case Err::no_watcher:
      return "No such watcher";
    case Err::reconfig_disabled:
      return "Reconfig is disabled";
    case Err::session_closed_require_sasl_auth:
      return "Session closed because client failed to authenticate";
    case Err::quota_exceeded:
      return "Quota has exceeded";
    case Err::throttled_op:
      return "Op throttled due to high load";
  }
  return "Unknown";
}

std::string error_code(Err err) {
  // The text without its spaces, in one word: "Directory not empty" is
  // ZooKeeper's NOTEMPTY, and so on.
  switch (err) {
    case Err::not_empty:
      return "NotEmpty";
    case Err::session_expired:
      return "SessionExpired";
    case Err::invalid_callback:
      return "InvalidCallback";
    case Err::session_moved:
      return "SessionMoved";
    case Err::not_read_only:
      return "NotReadOnly";
    case Err::ephemeral_on_local_session:
      return "EphemeralOnLocalSession";
    case Err::no_watcher:
      return "NoWatcher";
    case Err::reconfig_disabled:
      return "ReconfigDisabled";
    case Err::session_closed_require_sasl_auth:
      return "SessionClosedRequireSaslAuth";
    case Err::quota_exceeded:
      return "QuotaExceeded";
    case Err::throttled_op:
      return "Throttled";
    default:
      return std::string(error_name(err));
  }
}

int http_status(Err err) {
  switch (err) {
    case Err::ok:
      return 200;
    case Err::no_auth:
    case Err::auth_failed:
      return 403;
    case Err::no_node:
      return 404;
    case Err::node_exists:
    case Err::bad_version:
    case Err::not_empty:
    case Err::no_children_for_ephemerals:
    case Err::quota_exceeded:
    case Err::reconfig_in_progress:
      return 409;
    case Err::bad_arguments:
    case Err::marshalling_error:
    case Err::invalid_acl:
    case Err::unimplemented:
    case Err::reconfig_disabled:
    case Err::new_config_no_quorum:
      return 400;
    case Err::connection_loss:
    case Err::session_expired:
    case Err::operation_timeout:
    case Err::not_read_only:
    case Err::throttled_op:
      return 503;
    default:
      return 500;
  }
}

std::string error_message(Err err, std::string_view path) {
  std::string m = "KeeperErrorCode = " + std::string(error_name(err));
  if (!path.empty()) m += " for " + std::string(path);
  return m;
}

std::string perms_text(int32_t perms) {
  std::string s;
  if (perms & proto::perm::create) s += 'c';
  if (perms & proto::perm::remove) s += 'd';
  if (perms & proto::perm::read) s += 'r';
  if (perms & proto::perm::write) s += 'w';
  if (perms & proto::perm::admin) s += 'a';
  return s;
}

std::optional<int32_t> perms_from_text(std::string_view text) {
  int32_t p = 0;
  for (char c : text) {
    switch (c) {
      case 'c':
        p |= proto::perm::create;
        break;
      case 'd':
        p |= proto::perm::remove;
        break;
      case 'r':
        p |= proto::perm::read;
        break;
      case 'w':
        p |= proto::perm::write;
        break;
      case 'a':
        p |= proto::perm::admin;
        break;
      default:
        return std::nullopt;
    }
  }
  return p;
}

bool ip_in(std::string_view spec, std::string_view ip) {
  boost::system::error_code ec;
  size_t slash = spec.find('/');
  auto net = boost::asio::ip::make_address(std::string(spec.substr(0, slash)), ec);
  if (ec) return false;
  auto addr = boost::asio::ip::make_address(std::string(ip), ec);
  if (ec) return false;
  if (addr.is_v6() && addr.to_v6().is_v4_mapped() && net.is_v4())
    addr = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, addr.to_v6());
  if (net.is_v4() != addr.is_v4()) return false;
  std::vector<unsigned char> a, n;
  if (net.is_v4()) {
    auto nb = net.to_v4().to_bytes(), ab = addr.to_v4().to_bytes();
    n.assign(nb.begin(), nb.end());
    a.assign(ab.begin(), ab.end());
  } else {
    auto nb = net.to_v6().to_bytes(), ab = addr.to_v6().to_bytes();
    n.assign(nb.begin(), nb.end());
    a.assign(ab.begin(), ab.end());
  }
  int bits = static_cast<int>(n.size() * 8);
  if (slash != std::string_view::npos) {
    auto b = number<int>(spec.substr(slash + 1));
    if (!b || *b < 0 || *b > bits) return false;
    bits = *b;
  }
  for (int i = 0; i < bits; ++i) {
    int byte = i / 8, bit = 7 - i % 8;
    if (((n[byte] >> bit) & 1) != ((a[byte] >> bit) & 1)) return false;
  }
  return true;
}

int32_t rights_of(const proto::AclList& acl, const std::vector<proto::Id>& ids) {
  if (acl.empty()) return proto::perm::all;  // as the server checks an empty list
  for (const proto::Id& id : ids)
    if (id.scheme == "super") return proto::perm::all;
  int32_t rights = 0;
  for (const proto::Acl& entry : acl) {
    const proto::Id& want = entry.id;
    bool match = false;
    if (want.scheme == "world")
      match = want.id == "anyone";
    else
      for (const proto::Id& id : ids) {
        if (id.scheme != want.scheme) continue;
        // Without ADMIN the server masks digests ("alice:x"): the user
        // decides then (a hint for the page; the server checks the hash).
        bool masked = want.scheme == "digest" && want.id.size() > 2 &&
                      want.id.compare(want.id.size() - 2, 2, ":x") == 0;
        if (want.scheme == "ip" ? ip_in(want.id, id.id)
            : masked            ? id.id.rfind(want.id.substr(0, want.id.size() - 1), 0) == 0
                                : want.id == id.id) {
          match = true;
          break;
        }
      }
    if (match) rights |= entry.perms;
  }
  return rights;
}

std::string user_of(const std::vector<proto::Id>& ids) {
  for (const char* scheme : {"digest", "sasl", "x509", "super"})
    for (const proto::Id& id : ids)
      if (id.scheme == scheme) {
        if (id.scheme == "digest") return id.id.substr(0, id.id.find(':'));
        return id.id;
      }
  return {};
}

std::optional<proto::CreateMode> create_mode(std::string_view name) {
  using proto::CreateMode;
  static const std::pair<std::string_view, CreateMode> kModes[] = {
      {"persistent", CreateMode::persistent},
      {"ephemeral", CreateMode::ephemeral},
      {"persistent_sequential", CreateMode::persistent_sequential},
      {"ephemeral_sequential", CreateMode::ephemeral_sequential},
      {"container", CreateMode::container},
      {"ttl", CreateMode::persistent_with_ttl},
      {"ttl_sequential", CreateMode::persistent_sequential_with_ttl},
  };
  for (const auto& [n, m] : kModes)
    if (n == name) return m;
  return std::nullopt;
}

EnsembleConfig parse_ensemble_config(std::string_view text) {
  EnsembleConfig out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.rfind("version=", 0) == 0) {
      out.version = std::string(line.substr(8));
      continue;
    }
    if (line.rfind("server.", 0) != 0) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    auto id = number<int64_t>(line.substr(7, eq - 7));
    if (!id) continue;
    std::string_view spec = line.substr(eq + 1);
    Member m;
    m.id = *id;
    std::string_view server = spec, client;
    if (size_t semi = spec.find(';'); semi != std::string_view::npos) {
      server = spec.substr(0, semi);
      client = trim(spec.substr(semi + 1));
    }
    // host:peer:election[:role]; a bracketed IPv6 host keeps its colons.
    std::string host;
    std::string_view rest = server;
    if (!rest.empty() && rest[0] == '[') {
      size_t close = rest.find(']');
      if (close == std::string_view::npos) continue;
      host = std::string(rest.substr(0, close + 1));
      rest = rest.substr(close + 1);
      if (!rest.empty() && rest[0] == ':') rest.remove_prefix(1);
    } else {
      size_t colon = rest.find(':');
      host = std::string(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    }
    std::vector<std::string_view> parts;
    while (!rest.empty()) {
      size_t colon = rest.find(':');
      parts.push_back(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    }
    if (!parts.empty()) m.peer = host + ":" + std::string(parts[0]);
    if (parts.size() >= 3) m.observer = parts[2] == "observer";
    if (!client.empty()) {
      // "port" or "host:port" (the last colon splits, for IPv6).
      size_t colon = client.rfind(':');
      if (colon == std::string_view::npos || (client[0] == '[' && client.back() == ']'))
        m.client = host + ":" + std::string(client);
      else {
        std::string_view h = client.substr(0, colon);
        if (h == "0.0.0.0" || h == "::" || h == "[::]") h = host;
        m.client = std::string(h) + ":" + std::string(client.substr(colon + 1));
      }
    }
    out.members.push_back(std::move(m));
  }
  std::sort(out.members.begin(), out.members.end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
  return out;
}

std::optional<Srvr> parse_srvr(std::string_view text) {
  Srvr s;
  if (text.find("not currently serving requests") != std::string_view::npos) {
    s.serving = false;
    return s;
  }
  bool any = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    size_t colon = line.find(": ");
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), value = trim(line.substr(colon + 2));
    if (key == "Mode") {
      s.mode = std::string(value);
      any = true;
    } else if (key == "Zxid") {
      std::string_view hex = value;
      if (hex.rfind("0x", 0) == 0) hex.remove_prefix(2);
      uint64_t z = 0;
      auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), z, 16);
      if (ec == std::errc()) s.zxid = static_cast<int64_t>(z);
    } else if (key == "Latency min/avg/max") {
      size_t a = value.find('/'), b = value.rfind('/');
      if (a != std::string_view::npos && b != a) {
        s.latency_min = number<double>(value.substr(0, a)).value_or(0);
        s.latency_avg = number<double>(value.substr(a + 1, b - a - 1)).value_or(0);
        s.latency_max = number<double>(value.substr(b + 1)).value_or(0);
      }
    } else if (key == "Outstanding") {
      s.outstanding = number<int64_t>(value).value_or(0);
    } else if (key == "Connections") {
      s.connections = number<int64_t>(value).value_or(0);
    } else if (key == "Node count") {
      s.znodes = number<int64_t>(value).value_or(0);
    } else if (key == "Received") {
      s.received = number<int64_t>(value).value_or(0);
    } else if (key == "Sent") {
      s.sent = number<int64_t>(value).value_or(0);
    }
  }
  if (!any) return std::nullopt;
  s.serving = true;
  return s;
}

Reading parse_exposition(std::string_view text, int64_t wall_ms) {
  Reading r;
  r.wall_ms = wall_ms;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    if (space == std::string_view::npos) continue;
    auto value = prom_number(line.substr(space + 1));
    if (!value) continue;
    std::string_view name = line.substr(0, space);
    size_t brace = name.find('{');
    std::string_view family = name.substr(0, brace);
    std::string_view labels =
        brace == std::string_view::npos ? std::string_view{} : name.substr(brace);
    auto le = [&]() -> std::optional<double> {
      size_t at = labels.find("le=\"");
      if (at == std::string_view::npos) return std::nullopt;
      size_t end = labels.find('"', at + 4);
      if (end == std::string_view::npos) return std::nullopt;
      return prom_number(labels.substr(at + 4, end - at - 4));
    };
    if (family == "corral_requests_total") {
      r.requests += *value;
    } else if (family == "corral_writes_submitted_total") {
      r.writes += *value;
    } else if (family == "corral_snapshots_total") {
      r.snapshots += *value;
    } else if (family == "corral_request_seconds_bucket") {
      if (auto b = le()) r.request_buckets[*b] += *value;
    } else if (family == "corral_wal_fsync_seconds_bucket") {
      if (auto b = le()) r.fsync_buckets[*b] += *value;
    } else if (labels.empty()) {
      r.gauges[std::string(family)] = *value;
    }
  }
  return r;
}

std::optional<double> quantile_between(const std::map<double, double>& before,
                                       const std::map<double, double>& after, double q) {
  auto delta = [&](double bound, double count) {
    auto it = before.find(bound);
    return count - (it == before.end() ? 0 : it->second);
  };
  if (after.empty()) return std::nullopt;
  double total = delta(after.rbegin()->first, after.rbegin()->second);
  if (total <= 0) return std::nullopt;
  double want = q * total, lower = 0, below = 0;
  for (const auto& [bound, count] : after) {
    double c = delta(bound, count);
    if (c >= want) {
      if (std::isinf(bound)) return lower;
      double in = c - below;
      double f = in > 0 ? (want - below) / in : 1;
      return lower + (bound - lower) * f;
    }
    lower = bound;
    below = c;
  }
  return lower;
}

std::optional<double> max_between(const std::map<double, double>& before,
                                  const std::map<double, double>& after) {
  std::optional<double> out;
  double prev_delta = 0, lower = 0;
  for (const auto& [bound, count] : after) {
    auto it = before.find(bound);
    double d = count - (it == before.end() ? 0 : it->second);
    if (d > prev_delta) out = std::isinf(bound) ? lower : bound;
    prev_delta = d;
    lower = bound;
  }
  return out;
}

const std::vector<std::string>& History::series_names() {
  static const std::vector<std::string> kNames = {
      "ops_per_s",      "writes_per_s", "latency_p50_ms", "latency_p99_ms",
      "latency_max_ms", "fsync_p99_ms", "znodes",         "sessions",
      "connections",    "watches",      "outstanding",    "snapshots"};
  return kNames;
}

void History::add(Reading r) {
  if (last_ && r.wall_ms > last_->wall_ms) {
    const Reading& a = *last_;
    double dt = static_cast<double>(r.wall_ms - a.wall_ms) / 1000.0;
    auto gauge = [&](const char* name) -> std::optional<double> {
      auto it = r.gauges.find(name);
      if (it == r.gauges.end()) return std::nullopt;
      return it->second;
    };
    auto ms = [](std::optional<double> s) -> std::optional<double> {
      if (!s) return std::nullopt;
      return *s * 1000.0;
    };
    auto rate = [&](double now, double then) -> std::optional<double> {
      if (now < then) return std::nullopt;  // counters reset (a restart)
      return (now - then) / dt;
    };
    Point p;
    p.wall_ms = r.wall_ms;
    p.values = {rate(r.requests, a.requests),
                rate(r.writes, a.writes),
                ms(quantile_between(a.request_buckets, r.request_buckets, 0.5)),
                ms(quantile_between(a.request_buckets, r.request_buckets, 0.99)),
                ms(max_between(a.request_buckets, r.request_buckets)),
                ms(quantile_between(a.fsync_buckets, r.fsync_buckets, 0.99)),
                gauge("corral_znodes"),
                gauge("corral_sessions"),
                gauge("corral_connections"),
                gauge("corral_watches"),
                gauge("corral_outstanding_requests"),
                r.snapshots >= a.snapshots ? std::optional<double>(r.snapshots - a.snapshots)
                                           : std::nullopt};
    points_.push_back(std::move(p));
    while (points_.size() > capacity_) points_.pop_front();
  }
  last_ = std::move(r);
}

std::string History::json(int64_t interval_ms) const {
  std::string out = "{\"interval_ms\":" + std::to_string(interval_ms) + ",\"t\":[";
  for (size_t i = 0; i < points_.size(); ++i)
    out += (i ? "," : "") + std::to_string(points_[i].wall_ms);
  out += "],\"series\":{";
  const auto& names = series_names();
  for (size_t s = 0; s < names.size(); ++s) {
    out += (s ? ",\"" : "\"") + names[s] + "\":[";
    for (size_t i = 0; i < points_.size(); ++i) {
      if (i) out += ',';
      const auto& v = points_[i].values[s];
      if (!v || !std::isfinite(*v)) {
        out += "null";
        continue;
      }
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", *v);
      out += buf;
    }
    out += ']';
  }
  return out + "}}\n";
}

}  // namespace corral::console
