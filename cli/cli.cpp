// The command-line client's helpers: exit codes for errors, stat and ACL
// text, argument parsing, four-letter words and the plugin listing.
#include "cli.hpp"

#include <boost/asio/ssl.hpp>

namespace corral::cli {

int usage_error(const std::string& why) {
  std::fprintf(stderr, "corral: %s\n(see corral --help)\n", why.c_str());
  return kUsage;
}

std::string describe(Err e) {
  switch (e) {
    case Err::no_node:
      return "no such node";
    case Err::node_exists:
      return "node already exists";
    case Err::bad_version:
      return "version mismatch";
    case Err::not_empty:
      return "node has children";
    case Err::no_auth:
      return "not authorized";
    case Err::auth_failed:
      return "authentication failed";
    case Err::no_children_for_ephemerals:
      return "ephemeral nodes cannot have children";
    case Err::invalid_acl:
      return "invalid ACL";
    case Err::connection_loss:
      return "connection lost";
    case Err::session_expired:
      return "session expired";
    case Err::bad_arguments:
      return "bad arguments";
    case Err::unimplemented:
      return "not supported by the server";
    case Err::reconfig_disabled:
      return "reconfig is disabled on the server (reconfigEnabled)";
    case Err::new_config_no_quorum:
      return "a quorum of the new membership does not follow the leader yet";
    case Err::reconfig_in_progress:
      return "another reconfig is in progress";
    default:
      return proto::err_name(e);
  }
}

int exit_for(Err e) {
  switch (e) {
    case Err::ok:
      return kOk;
    case Err::no_node:
      return kNoNode;
    case Err::node_exists:
      return kNodeExists;
    case Err::bad_version:
      return kBadVersion;
    case Err::not_empty:
      return kNotEmpty;
    case Err::no_auth:
    case Err::auth_failed:
      return kNotAuthorized;
    case Err::connection_loss:
    case Err::session_expired:
      return kUnreachable;
    default:
      return kFailed;
  }
}

std::string hex(int64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

std::string time_text(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  char b[64];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(b, sizeof b, "%a %b %d %H:%M:%S UTC %Y", &tm);
  return b;
}

std::string stat_text(const proto::Stat& s) {
  std::string o;
  o += "cZxid = " + hex(s.czxid) + "\n";
  o += "ctime = " + time_text(s.ctime) + "\n";
  o += "mZxid = " + hex(s.mzxid) + "\n";
  o += "mtime = " + time_text(s.mtime) + "\n";
  o += "pZxid = " + hex(s.pzxid) + "\n";
  o += "cversion = " + std::to_string(s.cversion) + "\n";
  o += "dataVersion = " + std::to_string(s.version) + "\n";
  o += "aclVersion = " + std::to_string(s.aversion) + "\n";
  o += "ephemeralOwner = " + hex(s.ephemeral_owner) + "\n";
  o += "dataLength = " + std::to_string(s.data_length) + "\n";
  o += "numChildren = " + std::to_string(s.num_children) + "\n";
  return o;
}

std::string stat_json(const proto::Stat& s) {
  return "{\"czxid\":" + std::to_string(s.czxid) + ",\"mzxid\":" + std::to_string(s.mzxid) +
         ",\"pzxid\":" + std::to_string(s.pzxid) + ",\"ctime\":" + std::to_string(s.ctime) +
         ",\"mtime\":" + std::to_string(s.mtime) + ",\"version\":" + std::to_string(s.version) +
         ",\"cversion\":" + std::to_string(s.cversion) +
         ",\"aversion\":" + std::to_string(s.aversion) +
         ",\"ephemeralOwner\":" + std::to_string(s.ephemeral_owner) +
         ",\"dataLength\":" + std::to_string(s.data_length) +
         ",\"numChildren\":" + std::to_string(s.num_children) + "}";
}

std::string json_list(const std::vector<std::string>& items) {
  std::string o = "[";
  for (size_t i = 0; i < items.size(); ++i) o += (i ? "," : "") + json_quote(items[i]);
  return o + "]";
}

std::string perms_text(int32_t p) {
  std::string o;
  if (p & proto::perm::create) o += 'c';
  if (p & proto::perm::remove) o += 'd';
  if (p & proto::perm::read) o += 'r';
  if (p & proto::perm::write) o += 'w';
  if (p & proto::perm::admin) o += 'a';
  return o;
}

// "world:anyone:cdrwa,digest:alice:HASH=:r,ip:10.0.0.0/8:rw", as zkCli takes it.
std::optional<proto::AclList> parse_acl(const std::string& text, std::string& why) {
  proto::AclList out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string part =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t first = part.find(':'), last = part.rfind(':');
    if (first == std::string::npos || first == last) {
      why = "'" + part + "' is not scheme:id:perms";
      return std::nullopt;
    }
    proto::Acl a;
    a.id.scheme = part.substr(0, first);
    a.id.id = part.substr(first + 1, last - first - 1);
    for (char c : part.substr(last + 1)) {
      switch (c) {
        case 'c':
          a.perms |= proto::perm::create;
          break;
        case 'd':
          a.perms |= proto::perm::remove;
          break;
        case 'r':
          a.perms |= proto::perm::read;
          break;
        case 'w':
          a.perms |= proto::perm::write;
          break;
        case 'a':
          a.perms |= proto::perm::admin;
          break;
        default:
          why = std::string("unknown permission '") + c + "' in '" + part + "' (use c d r w a)";
          return std::nullopt;
      }
    }
    out.push_back(a);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::optional<Args> parse_args(const std::vector<std::string>& in,
                               const std::map<std::string, bool>& known, std::string& why) {
  Args a;
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string& s = in[i];
    if (s.size() > 1 && s[0] == '-' && a.rest.empty()) {
      auto it = known.find(s);
      if (it == known.end()) {
        why = "unknown option " + s;
        return std::nullopt;
      }
      if (it->second) {
        if (i + 1 >= in.size()) {
          why = s + " needs a value";
          return std::nullopt;
        }
        a.flags[s] = in[++i];
      } else {
        a.flags[s] = "1";
      }
    } else {
      a.rest.push_back(s);
    }
  }
  return a;
}

std::optional<int32_t> version_of(const Args& a, std::string& why) {
  auto it = a.flags.find("-v");
  if (it == a.flags.end()) return -1;
  char* end = nullptr;
  long v = std::strtol(it->second.c_str(), &end, 10);
  if (*end || it->second.empty()) {
    why = "-v takes a version number, not '" + it->second + "'";
    return std::nullopt;
  }
  return static_cast<int32_t>(v);
}

int exchange(const Global& g, const std::string& host, uint16_t port, const std::string& request,
             const std::function<bool(std::string_view)>& on_bytes, const std::string& what,
             const std::string* body) {
  asio::io_context io;
  namespace ssl = asio::ssl;
  // Over TLS (--tls-ca) through a TLS stream, the server's certificate
  // checked against the authority and the host name.
  ssl::context ctx(ssl::context::tls_client);
  boost::system::error_code ec;
  if (!g.tls_ca.empty()) {
    ctx.load_verify_file(g.tls_ca, ec);
    if (!ec && !g.tls_cert.empty()) ctx.use_certificate_chain_file(g.tls_cert, ec);
    if (!ec && !g.tls_cert.empty())
      ctx.use_private_key_file(g.tls_key.empty() ? g.tls_cert : g.tls_key, ssl::context::pem, ec);
    if (ec) return usage_error("--tls-ca/--tls-cert: " + ec.message());
  }
  ssl::stream<asio::ip::tcp::socket> stream(io, ctx);
  bool tls = !g.tls_ca.empty();
  asio::ip::tcp::resolver resolver(io);
  auto where = resolver.resolve(host, std::to_string(port), ec);
  if (!ec) asio::connect(stream.next_layer(), where, ec);
  if (!ec && tls) {
    stream.set_verify_mode(ssl::verify_peer);
    stream.set_verify_callback(ssl::host_name_verification(host));
    stream.handshake(ssl::stream_base::client, ec);
  }
  if (ec) {
    std::fprintf(stderr, "corral: cannot connect to %s:%u: %s\n", host.c_str(), port,
                 ec.message().c_str());
    return kUnreachable;
  }
  auto write_all = [&](const std::string& data) {
    if (tls)
      asio::write(stream, asio::buffer(data), ec);
    else
      asio::write(stream.next_layer(), asio::buffer(data), ec);
  };
  std::vector<char> buf(1 << 16);
  auto read_some = [&] {
    return tls ? stream.read_some(asio::buffer(buf), ec)
               : stream.next_layer().read_some(asio::buffer(buf), ec);
  };
  write_all(request);
  if (body && !ec) {
    std::string head;
    while (!ec) {
      head.append(buf.data(), read_some());
      const size_t end = head.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (head.size() > 65536) break;
        continue;
      }
      if (head.rfind("HTTP/1.1 100", 0) == 0) {
        head.erase(0, end + 4);
        write_all(*body);
      }
      break;
    }
    if (!head.empty() && !on_bytes(head)) return kFailed;
  }
  while (!ec) {
    size_t n = read_some();
    if (n && !on_bytes(std::string_view(buf.data(), n))) return kFailed;
  }
  if (ec == ssl::error::stream_truncated) ec = asio::error::eof;
  if (ec != asio::error::eof && ec != asio::error::connection_reset) {
    std::fprintf(stderr, "corral: %s: %s\n", what.c_str(), ec.message().c_str());
    return kUnreachable;
  }
  return kOk;
}

// Sends `word` to the first server and reads the reply into `out`.
int ask_four(const Global& g, const std::string& word, std::string& out) {
  auto opts = corral::client::parse_connect_string(g.hosts);
  if (!opts) return usage_error("--server " + g.hosts + ": " + opts.status().message());
  const auto& ep = opts.value().servers.front();
  return exchange(
      g, ep.host, ep.port, word,
      [&](std::string_view b) {
        out.append(b);
        return true;
      },
      word);
}

int four_letter(const Global& g, const std::string& word) {
  if (word.size() != 4) return usage_error("a four-letter word has four letters: '" + word + "'");
  std::string out;
  if (int st = ask_four(g, word, out); st != kOk) return st;
  if (g.json)
    std::printf("{\"word\":%s,\"reply\":%s}\n", json_quote(word).c_str(), json_quote(out).c_str());
  else
    std::fputs(out.c_str(), stdout);
  if (!g.json && !out.empty() && out.back() != '\n') std::fputs("\n", stdout);
  return kOk;
}

int plugins(const Global& g, const std::vector<std::string>& args, const std::string& exe) {
  std::string why;
  auto a = parse_args(args, {{"--plugin-dir", true}}, why);
  if (!a) return usage_error(why);
  std::vector<std::string> dirs;
  if (a->flags.count("--plugin-dir"))
    dirs.push_back(a->flags["--plugin-dir"]);
  else
    dirs = corral::kernel::PluginLoader::default_dirs(exe);
  corral::kernel::PluginLoader loader(dirs);
  auto found = loader.scan();
  if (g.json) {
    std::string o = "[";
    for (size_t i = 0; i < found.size(); ++i) {
      const auto& m = found[i];
      o += (i ? "," : "") + std::string("{\"path\":") + json_quote(m.path);
      if (!m.error.empty())
        o += ",\"error\":" + json_quote(m.error);
      else
        o += ",\"kind\":" + json_quote(m.kind) + ",\"name\":" + json_quote(m.name) +
             ",\"abi\":" + json_quote(m.abi) + ",\"summary\":" + json_quote(m.summary);
      o += "}";
    }
    std::printf("%s]\n", o.c_str());
    return kOk;
  }
  if (found.empty()) {
    std::string list;
    for (const auto& d : loader.dirs()) list += (list.empty() ? "" : ", ") + d;
    std::fprintf(stderr, "corral: no plugin modules under %s\n", list.c_str());
    return kFailed;
  }
  std::printf("%-10s %-16s %-16s %s\n", "KIND", "NAME", "ABI", "SUMMARY");
  for (const auto& m : found) {
    if (!m.error.empty())
      std::printf("%-10s %-16s %-16s %s\n", "?", "?", "?", m.error.c_str());
    else
      std::printf("%-10s %-16s %-16s %s\n", m.kind.c_str(), m.name.c_str(), m.abi.c_str(),
                  m.summary.c_str());
  }
  return kOk;
}

}  // namespace corral::cli
