// corral: a command-line client for Corral and any ZooKeeper-protocol server,
// on the SDK's C++ client. One command per run; see usage() or README.md.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "corral/client/client.hpp"
#include "corral/common/json.hpp"
#include "plugin/loader.hpp"

namespace {

using corral::client::Client;
using corral::proto::Err;
using corral::proto::Response;
using corral::common::json_quote;
namespace proto = corral::proto;
namespace asio = boost::asio;

// Exit codes a script can rely on.
enum Exit : int {
  kOk = 0,
  kFailed = 1,        // any other error the server reported
  kUsage = 2,         // the command line is wrong
  kUnreachable = 3,   // no server took the session, or the connection was lost
  kNoNode = 4,
  kNodeExists = 5,
  kBadVersion = 6,
  kNotEmpty = 7,
  kNotAuthorized = 8,  // NOAUTH, or AUTHFAILED
};

const char* kUsageText = R"(usage: corral [options] COMMAND [ARGS]

options:
  -s, --server HOSTS   host:port[,host:port...] (default $CORRAL_SERVER or 127.0.0.1:2181)
  --timeout MS         session timeout (30000); also bounds connecting
  --auth SCHEME:AUTH   add an identity first, e.g. --auth digest:alice:secret (repeatable)
  --json               print results as JSON
  -h, --help           this text

commands:
  ls [-R] [-s] PATH             children of PATH (-R: every path below; -s: and the stat)
  get [-s] PATH                 data of PATH (-s: and the stat)
  set [-v VERSION] PATH DATA    set data (only if the version matches, with -v)
  create [-e] [-s] [-c] [-t TTL_MS] PATH [DATA]
                                create: -e ephemeral, -s sequential, -c container, -t TTL
  delete [-v VERSION] PATH      delete one node
  deleteall PATH                delete PATH and everything below it
  stat PATH                     the stat of PATH
  getAcl PATH                   the ACL of PATH
  setAcl [-v VERSION] PATH ACL  ACL as scheme:id:perms[,...], perms from cdrwa
  addauth SCHEME AUTH           authenticate, and print who the session is
  whoami                        the session's identities
  sync PATH                     make the server catch up with the leader
  watch [-R] PATH               print changes to PATH (-R: and below) until interrupted
  config [-s]                   the ensemble's membership and its version (/zookeeper/config)
  reconfig [-v VERSION] [-add SERVERS] [-remove IDS] | [-members SERVERS]
                                change the membership: SERVERS as server.N=host:port:port[:type];port
                                (comma-separated), IDS comma-separated; prints the new one
  four WORD                     send a four-letter word (ruok, srvr, mntr, ...)
  health                        exit 0 when the server serves clients (has a leader)
  plugins [--plugin-dir DIR]    the plugin modules found: kind, name, ABI

exit codes: 0 ok, 1 other error, 2 usage, 3 cannot connect or connection lost,
4 no such node, 5 node exists, 6 version mismatch, 7 not empty, 8 not authorized
)";

int usage_error(const std::string& why) {
  std::fprintf(stderr, "corral: %s\n(see corral --help)\n", why.c_str());
  return kUsage;
}

std::string describe(Err e) {
  switch (e) {
    case Err::no_node: return "no such node";
    case Err::node_exists: return "node already exists";
    case Err::bad_version: return "version mismatch";
    case Err::not_empty: return "node has children";
    case Err::no_auth: return "not authorized";
    case Err::auth_failed: return "authentication failed";
    case Err::no_children_for_ephemerals: return "ephemeral nodes cannot have children";
    case Err::invalid_acl: return "invalid ACL";
    case Err::connection_loss: return "connection lost";
    case Err::session_expired: return "session expired";
    case Err::bad_arguments: return "bad arguments";
    case Err::unimplemented: return "not supported by the server";
    case Err::reconfig_disabled: return "reconfig is disabled on the server (reconfigEnabled)";
    case Err::new_config_no_quorum: return "a quorum of the new membership does not follow the leader yet";
    case Err::reconfig_in_progress: return "another reconfig is in progress";
    default: return proto::err_name(e);
  }
}

int exit_for(Err e) {
  switch (e) {
    case Err::ok: return kOk;
    case Err::no_node: return kNoNode;
    case Err::node_exists: return kNodeExists;
    case Err::bad_version: return kBadVersion;
    case Err::not_empty: return kNotEmpty;
    case Err::no_auth:
    case Err::auth_failed: return kNotAuthorized;
    case Err::connection_loss:
    case Err::session_expired: return kUnreachable;
    default: return kFailed;
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
         ",\"cversion\":" + std::to_string(s.cversion) + ",\"aversion\":" + std::to_string(s.aversion) +
         ",\"ephemeralOwner\":" + std::to_string(s.ephemeral_owner) + ",\"dataLength\":" +
         std::to_string(s.data_length) + ",\"numChildren\":" + std::to_string(s.num_children) + "}";
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
    std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
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
        case 'c': a.perms |= proto::perm::create; break;
        case 'd': a.perms |= proto::perm::remove; break;
        case 'r': a.perms |= proto::perm::read; break;
        case 'w': a.perms |= proto::perm::write; break;
        case 'a': a.perms |= proto::perm::admin; break;
        default: why = std::string("unknown permission '") + c + "' in '" + part + "' (use c d r w a)"; return std::nullopt;
      }
    }
    out.push_back(a);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

struct Global {
  std::string hosts;
  int32_t timeout_ms = 30000;
  bool json = false;
  std::vector<std::pair<std::string, std::string>> auths;
};

// A session run to completion one call at a time.
class Session {
 public:
  explicit Session(const Global& g) : g_(g) {}

  // Connects and authenticates; prints why not and returns an exit code.
  int open() {
    auto opts = corral::client::parse_connect_string(g_.hosts);
    if (!opts) return usage_error("--server " + g_.hosts + ": " + opts.status().message());
    opts.value().session_timeout_ms = g_.timeout_ms;
    opts.value().connect_timeout_ms = std::min<int64_t>(g_.timeout_ms, 5000);
    client_ = std::make_unique<Client>(io_, opts.value());
    client_->on_event([this](const proto::WatcherEvent& e) {
      if (on_event_) on_event_(e);
    });
    std::optional<corral::sdk::Status> st;
    client_->connect([&](const corral::sdk::Status& s) { st = s; });
    while (!st && io_.run_one()) {
    }
    if (!st || !*st) {
      std::fprintf(stderr, "corral: cannot connect to %s: %s\n", g_.hosts.c_str(),
                   st ? st->message().c_str() : "no answer");
      return kUnreachable;
    }
    for (const auto& entry : g_.auths) {
      const auto& scheme = entry.first;
      Response r = call([&](auto done) { client_->add_auth(entry.first, entry.second, done); });
      if (r.err != Err::ok) return fail("addauth " + scheme, r.err);
    }
    return kOk;
  }

  Response call(const std::function<void(corral::client::Callback)>& start) {
    std::optional<Response> out;
    start([&](const Response& r) { out = r; });
    while (!out && io_.run_one()) {
    }
    if (!out) {
      Response lost;
      lost.err = Err::connection_loss;
      return lost;
    }
    return *out;
  }

  void close() {
    if (!client_ || !client_->connected()) return;
    bool done = false;
    client_->close([&] { done = true; });
    while (!done && io_.run_one()) {
    }
  }

  int fail(const std::string& what, Err e) {
    std::fprintf(stderr, "corral: %s: %s\n", what.c_str(), describe(e).c_str());
    return exit_for(e);
  }

  Client& client() { return *client_; }
  asio::io_context& io() { return io_; }
  void on_event(std::function<void(const proto::WatcherEvent&)> fn) { on_event_ = std::move(fn); }

 private:
  const Global& g_;
  asio::io_context io_;
  std::unique_ptr<Client> client_;
  std::function<void(const proto::WatcherEvent&)> on_event_;
};

// Parses leading flags of a command: `flags` maps each to whether it takes a value.
struct Args {
  std::map<std::string, std::string> flags;
  std::vector<std::string> rest;
};
std::optional<Args> parse_args(const std::vector<std::string>& in, const std::map<std::string, bool>& known,
                               std::string& why) {
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

// Sends `word` to the first server and reads the reply into `out`.
int ask_four(const Global& g, const std::string& word, std::string& out) {
  auto opts = corral::client::parse_connect_string(g.hosts);
  if (!opts) return usage_error("--server " + g.hosts + ": " + opts.status().message());
  const auto& ep = opts.value().servers.front();
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto where = resolver.resolve(ep.host, std::to_string(ep.port), ec);
  if (!ec) asio::connect(sock, where, ec);
  if (ec) {
    std::fprintf(stderr, "corral: cannot connect to %s: %s\n", ep.to_string().c_str(), ec.message().c_str());
    return kUnreachable;
  }
  asio::write(sock, asio::buffer(word), ec);
  char buf[4096];
  while (!ec) {
    size_t n = sock.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
  }
  if (ec != asio::error::eof && ec != asio::error::connection_reset) {
    std::fprintf(stderr, "corral: %s: %s\n", word.c_str(), ec.message().c_str());
    return kUnreachable;
  }
  return kOk;
}

int four_letter(const Global& g, const std::string& word) {
  if (word.size() != 4) return usage_error("a four-letter word has four letters: '" + word + "'");
  std::string out;
  if (int st = ask_four(g, word, out); st != kOk) return st;
  if (g.json) std::printf("{\"word\":%s,\"reply\":%s}\n", json_quote(word).c_str(), json_quote(out).c_str());
  else std::fputs(out.c_str(), stdout);
  if (!g.json && !out.empty() && out.back() != '\n') std::fputs("\n", stdout);
  return kOk;
}

int plugins(const Global& g, const std::vector<std::string>& args, const std::string& exe) {
  std::string why;
  auto a = parse_args(args, {{"--plugin-dir", true}}, why);
  if (!a) return usage_error(why);
  std::vector<std::string> dirs;
  if (a->flags.count("--plugin-dir")) dirs.push_back(a->flags["--plugin-dir"]);
  else dirs = corral::kernel::PluginLoader::default_dirs(exe);
  corral::kernel::PluginLoader loader(dirs);
  auto found = loader.scan();
  if (g.json) {
    std::string o = "[";
    for (size_t i = 0; i < found.size(); ++i) {
      const auto& m = found[i];
      o += (i ? "," : "") + std::string("{\"path\":") + json_quote(m.path);
      if (!m.error.empty()) o += ",\"error\":" + json_quote(m.error);
      else
        o += ",\"kind\":" + json_quote(m.kind) + ",\"name\":" + json_quote(m.name) + ",\"abi\":" +
             json_quote(m.abi) + ",\"summary\":" +
             json_quote(m.summary);
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
    if (!m.error.empty()) std::printf("%-10s %-16s %-16s %s\n", "?", "?", "?", m.error.c_str());
    else
      std::printf("%-10s %-16s %-16s %s\n", m.kind.c_str(), m.name.c_str(), m.abi.c_str(), m.summary.c_str());
  }
  return kOk;
}

// What a command that needs a session is given: the session, the global
// options, its name and arguments, and why a usage error happened.
struct Call {
  Session& s;
  Client& c;
  const Global& g;
  const std::string& cmd;
  const std::vector<std::string>& argv;
  std::string why;

  // The command's flags and arguments, or nullopt with `why` set.
  std::optional<Args> parsed(const std::map<std::string, bool>& known) { return parse_args(argv, known, why); }
  // True when the arguments after the flags number min..max.
  bool need(const Args& a, size_t min, size_t max, const char* shape) {
    if (a.rest.size() < min || a.rest.size() > max) {
      why = cmd + " takes " + shape;
      return false;
    }
    return true;
  }
};

int cmd_ls(Call& k) {
  auto a = k.parsed({{"-R", false}, {"-s", false}});
  if (!a || !k.need(*a, 1, 1, "PATH")) return usage_error(k.why);
  const std::string& path = a->rest[0];
  if (a->flags.count("-R")) {
    // Breadth first, children sorted, as zkCli's ls -R lists them.
    std::vector<std::string> all;
    std::deque<std::string> todo{path};
    while (!todo.empty()) {
      std::string p = todo.front();
      todo.pop_front();
      Response r = k.s.call([&](auto d) { k.c.get_children(p, false, d); });
      if (r.err == Err::no_node && p != path) continue;  // removed meanwhile
      if (r.err != Err::ok) return k.s.fail("ls " + p, r.err);
      all.push_back(p);
      std::sort(r.children.begin(), r.children.end());
      for (const auto& child : r.children) todo.push_back((p == "/" ? "" : p) + "/" + child);
    }
    if (k.g.json) std::printf("{\"path\":%s,\"paths\":%s}\n", json_quote(path).c_str(), json_list(all).c_str());
    else
      for (const auto& p : all) std::printf("%s\n", p.c_str());
    return kOk;
  }
  Response r = k.s.call([&](auto d) { k.c.get_children(path, false, d); });
  if (r.err != Err::ok) return k.s.fail("ls " + path, r.err);
  std::sort(r.children.begin(), r.children.end());
  if (k.g.json) {
    std::printf("{\"path\":%s,\"children\":%s%s}\n", json_quote(path).c_str(), json_list(r.children).c_str(),
                a->flags.count("-s") ? (",\"stat\":" + stat_json(r.stat)).c_str() : "");
  } else {
    std::string line = "[";
    for (size_t i = 0; i < r.children.size(); ++i) line += (i ? ", " : "") + r.children[i];
    std::printf("%s]\n", line.c_str());
    if (a->flags.count("-s")) std::fputs(stat_text(r.stat).c_str(), stdout);
  }
  return kOk;
}

int cmd_get(Call& k) {
  auto a = k.parsed({{"-s", false}});
  if (!a || !k.need(*a, 1, 1, "PATH")) return usage_error(k.why);
  Response r = k.s.call([&](auto d) { k.c.get_data(a->rest[0], false, d); });
  if (r.err != Err::ok) return k.s.fail("get " + a->rest[0], r.err);
  if (k.g.json) {
    std::printf("{\"path\":%s,\"data\":%s,\"stat\":%s}\n", json_quote(a->rest[0]).c_str(), json_quote(r.data).c_str(),
                stat_json(r.stat).c_str());
  } else {
    std::fwrite(r.data.data(), 1, r.data.size(), stdout);
    std::fputs("\n", stdout);
    if (a->flags.count("-s")) std::fputs(stat_text(r.stat).c_str(), stdout);
  }
  return kOk;
}

int cmd_config_reconfig(Call& k) {
  auto print = [&](const Response& r, bool with_stat) {
    if (k.g.json) {
      std::string members = "[";
      std::string version;
      size_t start = 0;
      while (start < r.data.size()) {
        size_t end = r.data.find('\n', start);
        if (end == std::string::npos) end = r.data.size();
        std::string line = r.data.substr(start, end - start);
        start = end + 1;
        if (line.rfind("version=", 0) == 0) version = line.substr(8);
        else if (!line.empty()) members += (members.size() > 1 ? "," : "") + json_quote(line);
      }
      std::printf("{\"members\":%s],\"version\":%s,\"stat\":%s}\n", members.c_str(), json_quote(version).c_str(),
                  stat_json(r.stat).c_str());
    } else {
      std::fwrite(r.data.data(), 1, r.data.size(), stdout);
      std::fputs("\n", stdout);
      if (with_stat) std::fputs(stat_text(r.stat).c_str(), stdout);
    }
  };
  if (k.cmd == "config") {
    auto a = k.parsed({{"-s", false}});
    if (!a || !k.need(*a, 0, 0, "no arguments")) return usage_error(k.why);
    Response r = k.s.call([&](auto d) { k.c.get_data("/zookeeper/config", false, d); });
    if (r.err != Err::ok) return k.s.fail("config", r.err);
    print(r, a->flags.count("-s") > 0);
    return kOk;
  }
  auto a = k.parsed({{"-v", true}, {"-add", true}, {"-remove", true}, {"-members", true}});
  if (!a || !k.need(*a, 0, 0, "only options")) return usage_error(k.why);
  auto opt = [&](const char* f) -> std::optional<std::string> {
    auto it = a->flags.find(f);
    return it == a->flags.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  auto joining = opt("-add"), leaving = opt("-remove"), members = opt("-members");
  if (members && (joining || leaving)) return usage_error("reconfig: -members replaces the whole membership; "
                                                          "give it alone, or -add/-remove");
  if (!members && !joining && !leaving) return usage_error("reconfig needs -add, -remove or -members");
  int64_t from = -1;
  if (auto v = opt("-v")) {
    // As zkCli: the version as /zookeeper/config prints it (hexadecimal).
    char* end = nullptr;
    from = static_cast<int64_t>(std::strtoull(v->c_str(), &end, 16));
    if (v->empty() || *end) return usage_error("reconfig -v takes the hexadecimal version config prints");
  }
  Response r = k.s.call([&](auto d) { k.c.reconfig(joining, leaving, members, from, d); });
  if (r.err != Err::ok) return k.s.fail("reconfig", r.err);
  print(r, false);
  return kOk;
}

int cmd_stat(Call& k) {
  auto a = k.parsed({});
  if (!a || !k.need(*a, 1, 1, "PATH")) return usage_error(k.why);
  Response r = k.s.call([&](auto d) { k.c.exists(a->rest[0], false, d); });
  if (r.err != Err::ok) return k.s.fail("stat " + a->rest[0], r.err);
  if (k.g.json) std::printf("{\"path\":%s,\"stat\":%s}\n", json_quote(a->rest[0]).c_str(), stat_json(r.stat).c_str());
  else std::fputs(stat_text(r.stat).c_str(), stdout);
  return kOk;
}

int cmd_set(Call& k) {
  auto a = k.parsed({{"-v", true}});
  if (!a || !k.need(*a, 2, 2, "PATH DATA")) return usage_error(k.why);
  auto v = version_of(*a, k.why);
  if (!v) return usage_error(k.why);
  Response r = k.s.call([&](auto d) { k.c.set_data(a->rest[0], a->rest[1], *v, d); });
  if (r.err != Err::ok) return k.s.fail("set " + a->rest[0], r.err);
  if (k.g.json) std::printf("{\"path\":%s,\"stat\":%s}\n", json_quote(a->rest[0]).c_str(), stat_json(r.stat).c_str());
  return kOk;
}

int cmd_create(Call& k) {
  auto a = k.parsed({{"-e", false}, {"-s", false}, {"-c", false}, {"-t", true}});
  if (!a || !k.need(*a, 1, 2, "PATH [DATA]")) return usage_error(k.why);
  bool eph = a->flags.count("-e"), seq = a->flags.count("-s"), container = a->flags.count("-c");
  int64_t ttl = 0;
  if (a->flags.count("-t")) {
    char* end = nullptr;
    ttl = std::strtoll(a->flags["-t"].c_str(), &end, 10);
    if (*end || ttl <= 0) return usage_error("-t takes a TTL in milliseconds, not '" + a->flags["-t"] + "'");
  }
  if (container + eph + (ttl > 0) > 1) return usage_error("create takes one of -e, -c and -t");
  if (container && seq) return usage_error("a container cannot be sequential");
  proto::CreateMode mode = container ? proto::CreateMode::container
                           : ttl ? (seq ? proto::CreateMode::persistent_sequential_with_ttl
                                        : proto::CreateMode::persistent_with_ttl)
                           : eph ? (seq ? proto::CreateMode::ephemeral_sequential : proto::CreateMode::ephemeral)
                                 : (seq ? proto::CreateMode::persistent_sequential : proto::CreateMode::persistent);
  std::string data = a->rest.size() > 1 ? a->rest[1] : "";
  Response r = k.s.call([&](auto d) { k.c.create(a->rest[0], data, mode, d, proto::open_acl_unsafe(), ttl); });
  if (r.err != Err::ok) return k.s.fail("create " + a->rest[0], r.err);
  if (k.g.json) std::printf("{\"path\":%s,\"stat\":%s}\n", json_quote(r.path).c_str(), stat_json(r.stat).c_str());
  else std::printf("Created %s\n", r.path.c_str());
  if (eph) {
    // An ephemeral lives as long as the session: this one ends now.
    std::fprintf(stderr, "corral: note: %s is ephemeral and goes when this command's session closes\n",
                 r.path.c_str());
  }
  return kOk;
}

int cmd_delete(Call& k) {
  auto a = k.parsed({{"-v", true}});
  if (!a || !k.need(*a, 1, 1, "PATH")) return usage_error(k.why);
  auto v = version_of(*a, k.why);
  if (!v) return usage_error(k.why);
  Response r = k.s.call([&](auto d) { k.c.remove(a->rest[0], *v, d); });
  if (r.err != Err::ok) return k.s.fail("delete " + a->rest[0], r.err);
  return kOk;
}

int cmd_deleteall(Call& k) {
  auto a = k.parsed({});
  if (!a || !k.need(*a, 1, 1, "PATH")) return usage_error(k.why);
  if (a->rest[0] == "/") return usage_error("deleteall / would remove the whole tree; name a node below it");
  std::function<Err(const std::string&)> remove_tree = [&](const std::string& p) -> Err {
    Response r = k.s.call([&](auto d) { k.c.get_children(p, false, d); });
    if (r.err == Err::no_node) return Err::ok;
    if (r.err != Err::ok) return r.err;
    for (const auto& child : r.children)
      if (Err e = remove_tree(p + "/" + child); e != Err::ok) return e;
    Response del = k.s.call([&](auto d) { k.c.remove(p, -1, d); });
    return del.err == Err::no_node ? Err::ok : del.err;
  };
  Response first = k.s.call([&](auto d) { k.c.exists(a->rest[0], false, d); });
  if (first.err != Err::ok) return k.s.fail("deleteall " + a->rest[0], first.err);
  if (Err e = remove_tree(a->rest[0]); e != Err::ok) return k.s.fail("deleteall " + a->rest[0], e);
  return kOk;
}

int cmd_getacl(Call& k) {
  auto a = k.parsed({});
  if (!a || !k.need(*a, 1, 1, "PATH")) return usage_error(k.why);
  Response r = k.s.call([&](auto d) { k.c.get_acl(a->rest[0], d); });
  if (r.err != Err::ok) return k.s.fail("getAcl " + a->rest[0], r.err);
  if (k.g.json) {
    std::string o = "[";
    for (size_t i = 0; i < r.acl.size(); ++i)
      o += (i ? "," : "") + std::string("{\"scheme\":") + json_quote(r.acl[i].id.scheme) + ",\"id\":" +
           json_quote(r.acl[i].id.id) + ",\"perms\":" + json_quote(perms_text(r.acl[i].perms)) + "}";
    std::printf("{\"path\":%s,\"acl\":%s]}\n", json_quote(a->rest[0]).c_str(), o.c_str());
  } else {
    for (const auto& acl : r.acl)
      std::printf("'%s,'%s\n: %s\n", acl.id.scheme.c_str(), acl.id.id.c_str(), perms_text(acl.perms).c_str());
  }
  return kOk;
}

int cmd_setacl(Call& k) {
  auto a = k.parsed({{"-v", true}});
  if (!a || !k.need(*a, 2, 2, "PATH ACL")) return usage_error(k.why);
  auto v = version_of(*a, k.why);
  if (!v) return usage_error(k.why);
  auto acl = parse_acl(a->rest[1], k.why);
  if (!acl) return usage_error(k.why);
  Response r = k.s.call([&](auto d) { k.c.set_acl(a->rest[0], *acl, *v, d); });
  if (r.err != Err::ok) return k.s.fail("setAcl " + a->rest[0], r.err);
  return kOk;
}

int cmd_whoami_addauth(Call& k) {
  auto a = k.parsed({});
  if (!a) return usage_error(k.why);
  if (k.cmd == "addauth") {
    if (!k.need(*a, 2, 2, "SCHEME AUTH")) return usage_error(k.why);
    Response r = k.s.call([&](auto d) { k.c.add_auth(a->rest[0], a->rest[1], d); });
    if (r.err != Err::ok) return k.s.fail("addauth " + a->rest[0], r.err);
  } else if (!k.need(*a, 0, 0, "no arguments")) {
    return usage_error(k.why);
  }
  Response r = k.s.call([&](auto d) { k.c.who_am_i(d); });
  if (r.err != Err::ok) return k.s.fail("whoami", r.err);
  if (k.g.json) {
    std::string o = "[";
    for (size_t i = 0; i < r.identities.size(); ++i)
      o += (i ? "," : "") + std::string("{\"scheme\":") + json_quote(r.identities[i].scheme) + ",\"user\":" +
           json_quote(r.identities[i].id) + "}";
    std::printf("%s]\n", o.c_str());
  } else {
    for (const auto& id : r.identities) std::printf("%s: %s\n", id.scheme.c_str(), id.id.c_str());
  }
  return kOk;
}

int cmd_sync(Call& k) {
  auto a = k.parsed({});
  if (!a || !k.need(*a, 1, 1, "PATH")) return usage_error(k.why);
  Response r = k.s.call([&](auto d) { k.c.sync(a->rest[0], d); });
  if (r.err != Err::ok) return k.s.fail("sync " + a->rest[0], r.err);
  if (k.g.json) std::printf("{\"path\":%s,\"synced\":true}\n", json_quote(a->rest[0]).c_str());
  else std::printf("Sync is OK\n");
  return kOk;
}

int cmd_watch(Call& k) {
  auto a = k.parsed({{"-R", false}});
  if (!a || !k.need(*a, 1, 1, "PATH")) return usage_error(k.why);
  bool recursive = a->flags.count("-R");
  int status = -1;
  k.s.on_event([&](const proto::WatcherEvent& e) {
    if (e.type == static_cast<int32_t>(proto::EventType::none)) {
      if (e.state == static_cast<int32_t>(proto::KeeperState::disconnected)) {
        std::fprintf(stderr, "corral: watch %s: connection lost\n", a->rest[0].c_str());
        status = kUnreachable;
      }
      return;
    }
    static const char* kNames[] = {"", "NodeCreated", "NodeDeleted", "NodeDataChanged", "NodeChildrenChanged"};
    const char* name = e.type >= 1 && e.type <= 4 ? kNames[e.type] : "Event";
    if (k.g.json) std::printf("{\"type\":%s,\"path\":%s}\n", json_quote(name).c_str(), json_quote(e.path).c_str());
    else std::printf("%s %s\n", name, e.path.c_str());
    std::fflush(stdout);
  });
  Response r = k.s.call([&](auto d) { k.c.add_watch(a->rest[0], recursive, d); });
  if (r.err != Err::ok) return k.s.fail("watch " + a->rest[0], r.err);
  asio::signal_set signals(k.s.io(), SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) status = kOk;
  });
  while (status < 0 && k.s.io().run_one()) {
  }
  return status < 0 ? kUnreachable : status;
}

// The commands that need a session, by name.
const std::map<std::string, int (*)(Call&), std::less<>> kSessionCommands = {
    {"ls", &cmd_ls},
    {"get", &cmd_get},
    {"config", &cmd_config_reconfig},
    {"reconfig", &cmd_config_reconfig},
    {"stat", &cmd_stat},
    {"set", &cmd_set},
    {"create", &cmd_create},
    {"delete", &cmd_delete},
    {"deleteall", &cmd_deleteall},
    {"getAcl", &cmd_getacl},
    {"setAcl", &cmd_setacl},
    {"whoami", &cmd_whoami_addauth},
    {"addauth", &cmd_whoami_addauth},
    {"sync", &cmd_sync},
    {"watch", &cmd_watch},
};

int cmd_four(const Global& g, const std::vector<std::string>& args, const char*) {
  if (args.size() != 1) return usage_error("four takes WORD");
  return four_letter(g, args[0]);
}

int cmd_plugins(const Global& g, const std::vector<std::string>& args, const char* exe) { return plugins(g, args, exe); }

int cmd_health(const Global& g, const std::vector<std::string>& args, const char*) {
  // Healthy = serving clients: a standalone server, or an ensemble member
  // that has a leader (ruok answers imok either way).
  if (!args.empty()) return usage_error("health takes no arguments");
  std::string out;
  if (int st = ask_four(g, "srvr", out); st != kOk) return st;
  if (out.find("not in the whitelist") != std::string::npos) {
    // srvr is not allowed here: ruok says at least that the server runs.
    if (int st = ask_four(g, "ruok", out); st != kOk) return st;
    out = out == "imok" ? "Mode: running (srvr not whitelisted)\n" : "";
  }
  size_t at = out.find("Mode: ");
  std::string mode = at == std::string::npos ? "" : out.substr(at + 6, out.find('\n', at) - at - 6);
  if (g.json) std::printf("{\"serving\":%s,\"mode\":%s}\n", mode.empty() ? "false" : "true", json_quote(mode).c_str());
  else std::printf("%s\n", mode.empty() ? "not serving" : ("serving (" + mode + ")").c_str());
  return mode.empty() ? kFailed : kOk;
}

// The commands that need no session: they talk to a server, or not at all.
const std::map<std::string, int (*)(const Global&, const std::vector<std::string>&, const char*), std::less<>>
    kOtherCommands = {{"four", &cmd_four}, {"plugins", &cmd_plugins}, {"health", &cmd_health}};

}  // namespace

int main(int argc, char** argv) {
  Global g;
  if (const char* env = std::getenv("CORRAL_SERVER")) g.hosts = env;
  if (g.hosts.empty()) g.hosts = "127.0.0.1:2181";
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsageText, stdout);
      return kOk;
    } else if (a == "-s" || a == "--server") {
      auto v = value();
      if (!v) return usage_error(a + " needs host:port[,host:port...]");
      g.hosts = *v;
    } else if (a == "--timeout") {
      auto v = value();
      char* end = nullptr;
      long t = v ? std::strtol(v->c_str(), &end, 10) : 0;
      if (!v || *end || t <= 0) return usage_error("--timeout takes milliseconds");
      g.timeout_ms = static_cast<int32_t>(t);
    } else if (a == "--auth") {
      auto v = value();
      size_t colon = v ? v->find(':') : std::string::npos;
      if (!v || colon == std::string::npos || colon == 0)
        return usage_error("--auth takes SCHEME:AUTH, e.g. digest:alice:secret");
      g.auths.emplace_back(v->substr(0, colon), v->substr(colon + 1));
    } else if (a == "--json") {
      g.json = true;
    } else if (!a.empty() && a[0] == '-') {
      return usage_error("unknown option " + a);
    } else {
      break;
    }
  }
  if (i >= argc) {
    std::fputs(kUsageText, stderr);
    return kUsage;
  }
  std::string cmd = argv[i++];
  std::vector<std::string> args(argv + i, argv + argc);
  if (auto other = kOtherCommands.find(cmd); other != kOtherCommands.end()) return other->second(g, args, argv[0]);
  auto command = kSessionCommands.find(cmd);
  if (command == kSessionCommands.end()) return usage_error("unknown command '" + cmd + "'");
  Session s(g);
  if (int st = s.open(); st != kOk) return st;
  Call call{s, s.client(), g, cmd, args, {}};
  int st = command->second(call);
  s.close();
  return st;
}
