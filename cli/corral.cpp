// corral: a command-line client for Corral and any ZooKeeper-protocol server,
// on the SDK's C++ client. One command per run; see the usage text or README.md.
#include <cstdio>
#include <cstdlib>

#include "cli.hpp"

using namespace corral::cli;

namespace {

const char* kUsageText = R"(usage: corral [options] COMMAND [ARGS]

options:
  -s, --server HOSTS   host:port[,host:port...] (default $CORRAL_SERVER or 127.0.0.1:2181)
  --timeout MS         session timeout (30000); also bounds connecting
  --auth SCHEME:AUTH   add an identity first, e.g. --auth digest:alice:secret (repeatable)
  --tls-ca FILE        TLS to a secure client port, trusting this authority (PEM)
  --tls-cert FILE      a client certificate, PEM, with its key or --tls-key FILE
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
  import zookeeper --from ZKDATADIR --to DATADIR [--log-dir ZKLOGDIR]
                                a stopped ZooKeeper's data (snapshots and logs) into
                                a new Corral data directory, every stat and session kept
  export zookeeper --from DATADIR --to ZKDATADIR
                                a stopped Corral's data into a snapshot ZooKeeper starts from
  backup FILE [--admin HOST:PORT]
                                a running server's tree, consistent, from its admin endpoint
                                ($CORRAL_ADMIN, else 127.0.0.1:8080; --auth gives the user)
  restore [FILE] --to DIR [--log-from DATADIR] [--to-zxid ZXID]
                                a backup (rolled forward with DATADIR's log up to ZXID), or
                                DATADIR as it stood at ZXID, into a new data directory
  restore FILE --admin HOST:PORT
                                a backup into the running server (its whole ensemble) at
                                that admin endpoint, replacing its tree; --auth as for backup
  leader transfer [--to ID] [--admin HOST:PORT]
                                hand the leadership to server ID (or the voter most up to
                                date) without an election; --auth as a user with cdrwa on /

exit codes: 0 ok, 1 other error, 2 usage, 3 cannot connect or connection lost,
4 no such node, 5 node exists, 6 version mismatch, 7 not empty, 8 not authorized
)";

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
    } else if (a == "--tls-ca" || a == "--tls-cert" || a == "--tls-key") {
      auto v = value();
      if (!v) return usage_error(a + " takes a file");
      (a == "--tls-ca" ? g.tls_ca : a == "--tls-cert" ? g.tls_cert : g.tls_key) = *v;
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
  if (auto other = kOtherCommands.find(cmd); other != kOtherCommands.end())
    return other->second(g, args, argv[0]);
  auto command = kSessionCommands.find(cmd);
  if (command == kSessionCommands.end()) return usage_error("unknown command '" + cmd + "'");
  Session s(g);
  if (int st = s.open(); st != kOk) return st;
  Call call{s, s.client(), g, cmd, args, {}};
  int st = command->second(call);
  s.close();
  return st;
}
