// The command-line client's commands, one function each, and the tables
// main() dispatches through.
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli.hpp"
#include "corral_data.hpp"
#include "wal_format.hpp"
#include "zk_data.hpp"

namespace corral::cli {

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
    if (k.g.json)
      std::printf("{\"path\":%s,\"paths\":%s}\n", json_quote(path).c_str(), json_list(all).c_str());
    else
      for (const auto& p : all) std::printf("%s\n", p.c_str());
    return kOk;
  }
  Response r = k.s.call([&](auto d) { k.c.get_children(path, false, d); });
  if (r.err != Err::ok) return k.s.fail("ls " + path, r.err);
  std::sort(r.children.begin(), r.children.end());
  if (k.g.json) {
    std::printf("{\"path\":%s,\"children\":%s%s}\n", json_quote(path).c_str(),
                json_list(r.children).c_str(),
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
    std::printf("{\"path\":%s,\"data\":%s,\"stat\":%s}\n", json_quote(a->rest[0]).c_str(),
                json_quote(r.data).c_str(), stat_json(r.stat).c_str());
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
        if (line.rfind("version=", 0) == 0)
          version = line.substr(8);
        else if (!line.empty())
          members += (members.size() > 1 ? "," : "") + json_quote(line);
      }
      std::printf("{\"members\":%s],\"version\":%s,\"stat\":%s}\n", members.c_str(),
                  json_quote(version).c_str(), stat_json(r.stat).c_str());
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
  if (members && (joining || leaving))
    return usage_error(
        "reconfig: -members replaces the whole membership; "
        "give it alone, or -add/-remove");
  if (!members && !joining && !leaving)
    return usage_error("reconfig needs -add, -remove or -members");
  int64_t from = -1;
  if (auto v = opt("-v")) {
    // As zkCli: the version as /zookeeper/config prints it (hexadecimal).
    char* end = nullptr;
    from = static_cast<int64_t>(std::strtoull(v->c_str(), &end, 16));
    if (v->empty() || *end)
      return usage_error("reconfig -v takes the hexadecimal version config prints");
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
  if (k.g.json)
    std::printf("{\"path\":%s,\"stat\":%s}\n", json_quote(a->rest[0]).c_str(),
                stat_json(r.stat).c_str());
  else
    std::fputs(stat_text(r.stat).c_str(), stdout);
  return kOk;
}

int cmd_set(Call& k) {
  auto a = k.parsed({{"-v", true}});
  if (!a || !k.need(*a, 2, 2, "PATH DATA")) return usage_error(k.why);
  auto v = version_of(*a, k.why);
  if (!v) return usage_error(k.why);
  Response r = k.s.call([&](auto d) { k.c.set_data(a->rest[0], a->rest[1], *v, d); });
  if (r.err != Err::ok) return k.s.fail("set " + a->rest[0], r.err);
  if (k.g.json)
    std::printf("{\"path\":%s,\"stat\":%s}\n", json_quote(a->rest[0]).c_str(),
                stat_json(r.stat).c_str());
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
    if (*end || ttl <= 0)
      return usage_error("-t takes a TTL in milliseconds, not '" + a->flags["-t"] + "'");
  }
  if (container + eph + (ttl > 0) > 1) return usage_error("create takes one of -e, -c and -t");
  if (container && seq) return usage_error("a container cannot be sequential");
  proto::CreateMode mode =
      container ? proto::CreateMode::container
      : ttl     ? (seq ? proto::CreateMode::persistent_sequential_with_ttl
                       : proto::CreateMode::persistent_with_ttl)
      : eph     ? (seq ? proto::CreateMode::ephemeral_sequential : proto::CreateMode::ephemeral)
                : (seq ? proto::CreateMode::persistent_sequential : proto::CreateMode::persistent);
  std::string data = a->rest.size() > 1 ? a->rest[1] : "";
  Response r = k.s.call(
      [&](auto d) { k.c.create(a->rest[0], data, mode, d, proto::open_acl_unsafe(), ttl); });
  if (r.err != Err::ok) return k.s.fail("create " + a->rest[0], r.err);
  if (k.g.json)
    std::printf("{\"path\":%s,\"stat\":%s}\n", json_quote(r.path).c_str(),
                stat_json(r.stat).c_str());
  else
    std::printf("Created %s\n", r.path.c_str());
  if (eph) {
    // An ephemeral lives as long as the session: this one ends now.
    std::fprintf(stderr,
                 "corral: note: %s is ephemeral and goes when this command's session closes\n",
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
  if (a->rest[0] == "/")
    return usage_error("deleteall / would remove the whole tree; name a node below it");
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
      o += (i ? "," : "") + std::string("{\"scheme\":") + json_quote(r.acl[i].id.scheme) +
           ",\"id\":" + json_quote(r.acl[i].id.id) +
           ",\"perms\":" + json_quote(perms_text(r.acl[i].perms)) + "}";
    std::printf("{\"path\":%s,\"acl\":%s]}\n", json_quote(a->rest[0]).c_str(), o.c_str());
  } else {
    for (const auto& acl : r.acl)
      std::printf("'%s,'%s\n: %s\n", acl.id.scheme.c_str(), acl.id.id.c_str(),
                  perms_text(acl.perms).c_str());
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
      o += (i ? "," : "") + std::string("{\"scheme\":") + json_quote(r.identities[i].scheme) +
           ",\"user\":" + json_quote(r.identities[i].id) + "}";
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
  if (k.g.json)
    std::printf("{\"path\":%s,\"synced\":true}\n", json_quote(a->rest[0]).c_str());
  else
    std::printf("Sync is OK\n");
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
    static const char* kNames[] = {"", "NodeCreated", "NodeDeleted", "NodeDataChanged",
                                   "NodeChildrenChanged"};
    const char* name = e.type >= 1 && e.type <= 4 ? kNames[e.type] : "Event";
    if (k.g.json)
      std::printf("{\"type\":%s,\"path\":%s}\n", json_quote(name).c_str(),
                  json_quote(e.path).c_str());
    else
      std::printf("%s %s\n", name, e.path.c_str());
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

int cmd_plugins(const Global& g, const std::vector<std::string>& args, const char* exe) {
  return plugins(g, args, exe);
}

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
  if (g.json)
    std::printf("{\"serving\":%s,\"mode\":%s}\n", mode.empty() ? "false" : "true",
                json_quote(mode).c_str());
  else
    std::printf("%s\n", mode.empty() ? "not serving" : ("serving (" + mode + ")").c_str());
  return mode.empty() ? kFailed : kOk;
}

// import|export zookeeper --from DIR --to DIR [--log-dir DIR]: offline, on
// files; no server is involved.
int cmd_migrate(bool importing, const std::vector<std::string>& args) {
  const std::string verb = importing ? "import" : "export";
  const std::string usage =
      verb + " zookeeper --from DIR --to DIR" + (importing ? " [--log-dir DIR]" : "");
  if (args.empty() || args[0] != "zookeeper") return usage_error(usage);
  std::string from, to, log_dir;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string* slot = a == "--from"                     ? &from
                        : a == "--to"                     ? &to
                        : (a == "--log-dir" && importing) ? &log_dir
                                                          : nullptr;
    if (!slot || i + 1 >= args.size()) return usage_error(usage);
    *slot = args[++i];
  }
  if (from.empty() || to.empty()) return usage_error(usage);
  auto say = [&](const std::string& line) { std::fprintf(stderr, "corral: %s\n", line.c_str()); };
  sdk::Status st = importing ? zk::import_zookeeper({from, log_dir, to}, say)
                             : zk::export_zookeeper({from, to}, say);
  if (!st) {
    std::fprintf(stderr, "corral: %s zookeeper: %s\n", verb.c_str(), st.message().c_str());
    return kFailed;
  }
  return kOk;
}

// HOST:PORT of an admin endpoint ([v6]:PORT too).
bool split_admin(const std::string& admin, std::string& host, uint16_t& port) {
  size_t colon = admin.rfind(':');
  char* end = nullptr;
  long p = colon == std::string::npos ? 0 : std::strtol(admin.c_str() + colon + 1, &end, 10);
  if (colon == std::string::npos || colon == 0 || !end || *end || p <= 0 || p > 65535) return false;
  host = admin.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  port = static_cast<uint16_t>(p);
  return true;
}

// An admin request's head, with the first digest or SASL credentials
// (--auth) as HTTP Basic; ends with the blank line when `end` is set.
std::string admin_request_head(const Global& g, const std::string& method,
                               const std::string& target, const std::string& admin,
                               bool end = false) {
  std::string request =
      method + " " + target + " HTTP/1.1\r\nHost: " + admin + "\r\nConnection: close\r\n";
  for (const auto& [scheme, auth] : g.auths) {
    if (scheme != "digest" && scheme != "sasl") continue;
    std::string b64(4 * ((auth.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                            reinterpret_cast<const unsigned char*>(auth.data()),
                            static_cast<int>(auth.size()));
    b64.resize(static_cast<size_t>(n));
    request += "Authorization: Basic " + b64 + "\r\n";
    break;
  }
  if (end) request += "Content-Length: 0\r\n\r\n";
  return request;
}

// backup FILE [--admin HOST:PORT]: a consistent copy of a running server's
// tree, from its admin endpoint (GET /commands/snapshot), checked before
// it is kept.
int cmd_backup(const Global& g, const std::vector<std::string>& args, const char*) {
  const std::string usage = "backup FILE [--admin HOST:PORT]";
  std::string file, admin;
  if (const char* env = std::getenv("CORRAL_ADMIN")) admin = env;
  if (admin.empty()) admin = "127.0.0.1:8080";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--admin" && i + 1 < args.size())
      admin = args[++i];
    else if (file.empty() && !args[i].empty() && args[i][0] != '-')
      file = args[i];
    else
      return usage_error(usage);
  }
  if (file.empty()) return usage_error(usage);
  std::string host;
  uint16_t port = 0;
  if (!split_admin(admin, host, port))
    return usage_error("--admin takes HOST:PORT, not '" + admin + "'");
  std::string request = admin_request_head(g, "GET", "/commands/snapshot?streaming=true", admin);
  request += "\r\n";
  const std::string tmp = file + ".part";
  FILE* out = nullptr;
  std::string head, refusal, zxid;
  int status = 0;
  uint64_t bytes = 0;
  bool write_failed = false;
  int st = exchange(
      g, host, port, request,
      [&](std::string_view b) {
        if (status == 0) {
          head.append(b);
          size_t at = head.find("\r\n\r\n");
          if (at == std::string::npos) return head.size() < 65536;
          std::sscanf(head.c_str(), "HTTP/%*s %d", &status);
          size_t z = head.find("\r\nlast_zxid: ");
          if (z != std::string::npos && z < at)
            zxid = head.substr(z + 13, head.find("\r\n", z + 2) - z - 13);
          b = std::string_view(head).substr(at + 4);
          if (status == 200) {
            out = std::fopen(tmp.c_str(), "wb");
            if (!out) {
              write_failed = true;
              return false;
            }
          }
        }
        if (status != 200) {
          if (refusal.size() < 65536) refusal.append(b);
          return true;
        }
        bytes += b.size();
        if (std::fwrite(b.data(), 1, b.size(), out) != b.size()) {
          write_failed = true;
          return false;
        }
        return true;
      },
      "backup from " + admin);
  if (out && (std::fflush(out) != 0 || ::fsync(fileno(out)) != 0)) write_failed = true;
  if (out) std::fclose(out);
  if (write_failed) {
    std::fprintf(stderr, "corral: backup: cannot write %s: %s\n", tmp.c_str(),
                 std::strerror(errno));
    std::remove(tmp.c_str());
    return kFailed;
  }
  if (st != kOk) {
    std::remove(tmp.c_str());
    return st;
  }
  if (status != 200) {
    std::fprintf(stderr, "corral: backup from %s: %s\n", admin.c_str(),
                 status == 0 ? "not an HTTP answer (is --admin the admin endpoint?)"
                             : (std::to_string(status) + " " + refusal).c_str());
    return status == 401 || status == 403 ? kNotAuthorized : kFailed;
  }
  offline::Recovered r;
  if (sdk::Status check = offline::read_backup(tmp, r); !check) {
    std::fprintf(
        stderr,
        "corral: backup: what arrived (%llu bytes) is not a whole backup, so it is not kept: %s\n",
        static_cast<unsigned long long>(bytes), check.message().c_str());
    std::remove(tmp.c_str());
    return kFailed;
  }
  if (std::rename(tmp.c_str(), file.c_str()) != 0) {
    std::fprintf(stderr, "corral: backup: %s: %s\n", file.c_str(), std::strerror(errno));
    return kFailed;
  }
  if (g.json)
    std::printf("{\"file\":%s,\"zxid\":\"%s\",\"znodes\":%zu,\"sessions\":%zu,\"bytes\":%llu}\n",
                json_quote(file).c_str(), offline::zxid_hex(r.zxid).c_str(), r.tree.node_count(),
                r.tree.sessions().size(), static_cast<unsigned long long>(bytes));
  else
    std::printf("backup at zxid %s: %zu znodes, %zu sessions, %llu bytes in %s\n",
                offline::zxid_hex(r.zxid).c_str(), r.tree.node_count(), r.tree.sessions().size(),
                static_cast<unsigned long long>(bytes), file.c_str());
  return kOk;
}

// restore FILE --admin HOST:PORT: online, into the running server (and its
// ensemble) at that admin endpoint (POST /commands/restore).
int restore_online(const Global& g, const std::string& file, const std::string& admin) {
  std::string host;
  uint16_t port = 0;
  if (!split_admin(admin, host, port))
    return usage_error("--admin takes HOST:PORT, not '" + admin + "'");
  std::string body;
  {
    FILE* in = std::fopen(file.c_str(), "rb");
    if (!in) {
      std::fprintf(stderr, "corral: restore: %s: %s\n", file.c_str(), std::strerror(errno));
      return kFailed;
    }
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, in)) > 0) body.append(buf, n);
    const bool bad = std::ferror(in);
    std::fclose(in);
    if (bad) {
      std::fprintf(stderr, "corral: restore: cannot read %s\n", file.c_str());
      return kFailed;
    }
  }
  // Its checksums, before it is sent (the server checks it whole again).
  sdk::Zxid zxid = 0;
  std::string_view tree;
  std::string inflated;
  if (sdk::Status check = wal::check_snapshot(body, zxid, &tree, &inflated); !check) {
    std::fprintf(stderr, "corral: restore: %s: %s\n", file.c_str(), check.message().c_str());
    return kFailed;
  }
  inflated.clear();
  inflated.shrink_to_fit();
  std::string request = admin_request_head(g, "POST", "/commands/restore", admin);
  request += "Content-Type: application/octet-stream\r\nExpect: 100-continue\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n";
  std::string reply;
  int st = exchange(
      g, host, port, request,
      [&](std::string_view b) {
        reply.append(b);
        return reply.size() < (1 << 20);
      },
      "restore at " + admin, &body);
  if (st != kOk) return st;
  int status = 0;
  std::sscanf(reply.c_str(), "HTTP/%*s %d", &status);
  size_t at = reply.find("\r\n\r\n");
  std::string answer = at == std::string::npos ? reply : reply.substr(at + 4);
  while (!answer.empty() && (answer.back() == '\n' || answer.back() == '\r')) answer.pop_back();
  if (status != 200) {
    std::fprintf(stderr, "corral: restore at %s: %s\n", admin.c_str(),
                 status == 0 ? "not an HTTP answer (is --admin the admin endpoint?)"
                             : ("HTTP " + std::to_string(status) + ": " + answer).c_str());
    return status == 401 || status == 403 ? kNotAuthorized : kFailed;
  }
  std::printf("%s\n", answer.c_str());
  return kOk;
}

// restore [FILE] --to DIR [--log-from DATADIR] [--to-zxid ZXID]: offline;
// restore FILE --admin HOST:PORT: online.
int cmd_restore(const Global& g, const std::vector<std::string>& args, const char*) {
  const std::string usage =
      "restore [FILE] --to DIR [--log-from DATADIR] [--to-zxid ZXID] | restore FILE --admin "
      "HOST:PORT";
  offline::RestoreOptions o;
  std::string admin;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--admin" && i + 1 < args.size()) {
      admin = args[++i];
    } else if ((a == "--to" || a == "--log-from" || a == "--to-zxid") && i + 1 < args.size()) {
      const std::string& v = args[++i];
      if (a == "--to") {
        o.to = v;
      } else if (a == "--log-from") {
        o.log_from = v;
      } else {
        char* end = nullptr;
        errno = 0;
        unsigned long long z = std::strtoull(v.c_str(), &end, 0);
        if (v.empty() || *end || errno || z > static_cast<unsigned long long>(INT64_MAX))
          return usage_error("--to-zxid takes a zxid (0x1a2b or decimal), not '" + v + "'");
        o.to_zxid = static_cast<sdk::Zxid>(z);
      }
    } else if (o.file.empty() && !a.empty() && a[0] != '-') {
      o.file = a;
    } else {
      return usage_error(usage);
    }
  }
  if (!admin.empty()) {
    if (o.file.empty() || !o.to.empty() || !o.log_from.empty() ||
        o.to_zxid != std::numeric_limits<sdk::Zxid>::max())
      return usage_error("restore FILE --admin HOST:PORT takes a backup file and nothing else");
    return restore_online(g, o.file, admin);
  }
  if (o.to.empty() || (o.file.empty() && o.log_from.empty())) return usage_error(usage);
  auto say = [&](const std::string& line) { std::fprintf(stderr, "corral: %s\n", line.c_str()); };
  if (sdk::Status st = offline::restore(o, say); !st) {
    std::fprintf(stderr, "corral: restore: %s\n", st.message().c_str());
    return kFailed;
  }
  return kOk;
}

// leader transfer [--to ID] [--admin HOST:PORT]: asks the server at the
// admin endpoint to have the leadership handed over, to server ID or to the
// voter most up to date, and waits until the ensemble serves under it.
int cmd_leader(const Global& g, const std::vector<std::string>& args, const char*) {
  const std::string usage = "leader transfer [--to ID] [--admin HOST:PORT]";
  std::string admin, to;
  if (const char* env = std::getenv("CORRAL_ADMIN")) admin = env;
  if (admin.empty()) admin = "127.0.0.1:8080";
  if (args.empty() || args[0] != "transfer") return usage_error(usage);
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--admin" && i + 1 < args.size()) {
      admin = args[++i];
    } else if (args[i] == "--to" && i + 1 < args.size()) {
      to = args[++i];
      char* end = nullptr;
      long id = std::strtol(to.c_str(), &end, 10);
      if (to.empty() || *end || id <= 0)
        return usage_error("--to takes a server id, not '" + to + "'");
    } else {
      return usage_error(usage);
    }
  }
  std::string host;
  uint16_t port = 0;
  if (!split_admin(admin, host, port))
    return usage_error("--admin takes HOST:PORT, not '" + admin + "'");
  std::string target = "/commands/leader_transfer" + (to.empty() ? "" : "?to=" + to);
  std::string reply;
  int st = exchange(
      g, host, port, admin_request_head(g, "POST", target, admin, true),
      [&](std::string_view b) {
        reply.append(b);
        return reply.size() < (1 << 20);
      },
      "leader transfer at " + admin);
  if (st != kOk) return st;
  int status = 0;
  std::sscanf(reply.c_str(), "HTTP/%*s %d", &status);
  size_t at = reply.find("\r\n\r\n");
  std::string body = at == std::string::npos ? reply : reply.substr(at + 4);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  if (status != 200) {
    std::fprintf(stderr, "corral: leader transfer at %s: HTTP %d: %s\n", admin.c_str(), status,
                 body.c_str());
    return kFailed;
  }
  std::printf("%s\n", body.c_str());
  return kOk;
}

int cmd_import(const Global&, const std::vector<std::string>& args, const char*) {
  return cmd_migrate(true, args);
}
int cmd_export(const Global&, const std::vector<std::string>& args, const char*) {
  return cmd_migrate(false, args);
}

const std::map<std::string, int (*)(const Global&, const std::vector<std::string>&, const char*),
               std::less<>>
    kOtherCommands = {{"four", &cmd_four},       {"plugins", &cmd_plugins}, {"health", &cmd_health},
                      {"import", &cmd_import},   {"export", &cmd_export},   {"backup", &cmd_backup},
                      {"restore", &cmd_restore}, {"leader", &cmd_leader}};

}  // namespace corral::cli
