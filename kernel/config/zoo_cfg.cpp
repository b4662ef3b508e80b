// zoo.cfg, read as ZooKeeper reads it and mapped onto Corral's keys: what
// has a Corral equivalent is set, what has none is warned about, except
// security keys, which stop the start when Corral cannot honour them
// (zoo_cfg_security.cpp).
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <fstream>

#include "config/config.hpp"
#include "config/config_internal.hpp"

namespace corral::kernel {

using sdk::Errc;
using sdk::Result;
using sdk::Status;

namespace {
std::string trim(std::string s) { return config_trim(std::move(s)); }
}  // namespace

Result<Config> load_zoo_cfg(const std::string& path, const std::vector<std::string>& overrides,
                            std::vector<std::string>& warnings) {
  std::ifstream in(path);
  if (!in) return Status{Errc::not_found, path + ": cannot open zoo.cfg"};
  Config c;
  c.source = path;
  toml::table& root = c.root();
  std::string host = "0.0.0.0";  // ZooKeeper listens on every address unless told
  int64_t port = 2181;
  // ZooKeeper's AdminServer: on by default, 0.0.0.0:8080.
  std::string admin_host = "0.0.0.0";
  int64_t admin_port = 8080;
  bool admin_enabled = true;
  std::vector<std::string> servers;  // "N=host:port:port..."
  std::string peer_type;
  bool standalone_enabled = true;
  // Quorum authentication (ZooKeeper's quorum.auth.*, DIGEST-MD5 from JAAS).
  bool quorum_sasl = false, learner_require_sasl = false, server_require_sasl = false;
  std::string server_login_context = "QuorumServer", learner_login_context = "QuorumLearner";
  // ZooKeeper's connection throttle (a token bucket; 0 tokens = off).
  int64_t throttle_tokens = -1, throttle_fill_time = 1, throttle_fill_count = 1;
  ZooSecurity security;
  std::string data_dir;
  std::string line;
  int lineno = 0;
  auto number = [&](const std::string& key, const std::string& v, int64_t& out) -> Status {
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || end != v.data() + v.size())
      return {Errc::invalid_argument, path + ":" + std::to_string(lineno) + ": " + key +
                                          " must be a number, found '" + v + "'"};
    return {};
  };
  while (std::getline(in, line)) {
    ++lineno;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      warnings.push_back(path + ":" + std::to_string(lineno) + ": ignored line without '='");
      continue;
    }
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    int64_t n = 0;
    Status st;
    if (key == "clientPort") {
      st = number(key, value, port);
    } else if (key == "clientPortAddress") {
      host = value;
    } else if (key == "dataDir") {
      data_dir = value;
      (void)set_dotted(root, "server.data_dir", toml::value<std::string>(value));
    } else if (key == "tickTime") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.tick_ms", toml::value<int64_t>(n));
    } else if (key == "maxClientCnxns") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.max_client_cnxns", toml::value<int64_t>(n));
    } else if (key == "maxCnxns") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.max_cnxns", toml::value<int64_t>(n));
    } else if (key == "zookeeper.nio.sessionlessCnxnTimeout") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.sessionless_timeout_ms", toml::value<int64_t>(n));
    } else if (key == "globalOutstandingLimit" || key == "zookeeper.globalOutstandingLimit") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.max_outstanding", toml::value<int64_t>(n));
    } else if (key == "jute.maxbuffer") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.max_frame_bytes", toml::value<int64_t>(n));
    } else if (key == "connection_throttle_tokens" ||
               key == "zookeeper.connection_throttle_tokens") {
      st = number(key, value, throttle_tokens);
    } else if (key == "connection_throttle_fill_time" ||
               key == "zookeeper.connection_throttle_fill_time") {
      st = number(key, value, throttle_fill_time);
    } else if (key == "connection_throttle_fill_count" ||
               key == "zookeeper.connection_throttle_fill_count") {
      st = number(key, value, throttle_fill_count);
    } else if (key == "minSessionTimeout") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.min_session_timeout_ms", toml::value<int64_t>(n));
    } else if (key == "maxSessionTimeout") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.max_session_timeout_ms", toml::value<int64_t>(n));
    } else if (key == "DigestAuthenticationProvider.superDigest" ||
               key == "zookeeper.DigestAuthenticationProvider.superDigest") {
      (void)set_dotted(root, "server.super_digest", toml::value<std::string>(value));
    } else if (key == "zookeeper.enforceQuota" || key == "enforceQuota") {
      (void)set_dotted(root, "server.enforce_quota", toml::value<bool>(value == "true"));
    } else if (key == "zookeeper.extendedTypesEnabled" || key == "extendedTypesEnabled") {
      (void)set_dotted(root, "server.extended_types", toml::value<bool>(value == "true"));
    } else if (key == "admin.serverPort") {
      st = number(key, value, n);
      admin_port = n;
    } else if (key == "admin.serverAddress") {
      admin_host = value;
    } else if (key == "admin.enableServer") {
      admin_enabled = value != "false";
    } else if (key == "znode.container.checkIntervalMs") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.container_check_interval_ms", toml::value<int64_t>(n));
    } else if (key.rfind("server.", 0) == 0) {
      sdk::ServerId id = 0;
      std::string_view digits = std::string_view(key).substr(7);
      sdk::PeerSpec m;
      std::string error;
      if (std::from_chars(digits.data(), digits.data() + digits.size(), id).ptr !=
              digits.data() + digits.size() ||
          id <= 0)
        return Status{Errc::invalid_argument, path + ":" + std::to_string(lineno) + ": '" + key +
                                                  "' must be server.N with N a positive server id"};
      if (!parse_member(id, value, m, error))
        return Status{Errc::invalid_argument, path + ":" + std::to_string(lineno) + ": " + key +
                                                  " must be " + error + ", found '" + value + "'"};
      servers.push_back(std::to_string(id) + "=" + value);
    } else if (key == "initLimit" || key == "syncLimit") {
      st = number(key, value, n);
      if (st)
        (void)set_dotted(
            root, key == "initLimit" ? "consensus.zab.init_limit" : "consensus.zab.sync_limit",
            toml::value<int64_t>(n));
    } else if (key.rfind("authProvider.", 0) == 0 &&
               value.find("SASLAuthenticationProvider") != std::string::npos) {
      // The sasl scheme is always known here; its users come from the JAAS
      // file (server.jaas_config, ZooKeeper's java.security.auth.login.config).
    } else if (key == "dataLogDir") {
      // ZooKeeper's log on a disk of its own: the wal's log there, its
      // snapshots under dataDir as ZooKeeper keeps them.
      if (value.empty() || value[0] != '/')
        return Status{Errc::invalid_argument, path + ":" + std::to_string(lineno) +
                                                  ": dataLogDir must be an absolute path, found '" +
                                                  value + "'"};
      (void)set_dotted(root, "storage.wal.dir", toml::value<std::string>(value));
      (void)set_dotted(root, "storage.wal.snapshot_dir", toml::value<std::string>("wal"));
    } else if (key == "snapCount") {
      // Transactions between snapshots: the wal's policy.
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "storage.wal.snapshot_every_entries", toml::value<int64_t>(n));
    } else if (key == "peerType") {
      peer_type = value;
    } else if (key == "standaloneEnabled") {
      standalone_enabled = value != "false";
    } else if (key == "quorumListenOnAllIPs") {
      (void)set_dotted(root, "ensemble.listen_on_all_addresses",
                       toml::value<bool>(value == "true"));
    } else if (key == "reconfigEnabled") {
      if (value != "true" && value != "false")
        return Status{Errc::invalid_argument,
                      path + ":" + std::to_string(lineno) +
                          ": reconfigEnabled must be true or false, found '" + value + "'"};
      (void)set_dotted(root, "ensemble.reconfig_enabled", toml::value<bool>(value == "true"));
    } else if (key == "quorum.auth.enableSasl") {
      quorum_sasl = value == "true";
    } else if (key == "quorum.auth.learnerRequireSasl") {
      learner_require_sasl = value == "true";
    } else if (key == "quorum.auth.serverRequireSasl") {
      server_require_sasl = value == "true";
    } else if (key == "quorum.auth.server.loginContext") {
      server_login_context = value;
    } else if (key == "quorum.auth.learner.loginContext") {
      learner_login_context = value;
    } else if (key == "audit.enable") {
      // ZooKeeper's audit log goes to zookeeper_audit.log; here, in dataDir.
      if (value == "true")
        (void)set_dotted(root, "server.audit_log", toml::value<std::string>("zookeeper_audit.log"));
    } else if (security.take(key, value, path + ":" + std::to_string(lineno), st)) {
      // TLS and identity: zoo_cfg_security.cpp
    } else if (key == "electionAlg") {
      warnings.push_back(path + ":" + std::to_string(lineno) + ": ignored '" + key +
                         "' (Corral elects with plugins.election)");
    } else if (key == "dynamicConfigFile") {
      warnings.push_back(
          path + ":" + std::to_string(lineno) + ": ignored '" + key +
          "' (Corral keeps the membership a reconfig installs in its snapshots and log)");
    } else if (key == "4lw.commands.whitelist") {
      toml::array words;
      std::stringstream ss(value);
      std::string w;
      while (std::getline(ss, w, ',')) {
        w = trim(w);
        if (!w.empty()) words.push_back(w);
      }
      (void)set_dotted(root, "server.four_letter_words", std::move(words));
    } else {
      // Fail closed: an authentication key Corral does not know would leave
      // the server more open than the file asks.
      std::string lower = key;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      for (const char* word : {"auth", "sasl", "kerberos", "jaas", "ssl", "tls", "x509", "secure"})
        if (lower.find(word) != std::string::npos)
          return Status{Errc::invalid_argument,
                        path + ":" + std::to_string(lineno) + ": '" + key +
                            "' is a security setting Corral does not support; remove it, or "
                            "the server would be less protected than the file asks"};
      warnings.push_back(path + ":" + std::to_string(lineno) + ": ignored unsupported key '" + key +
                         "'");
    }
    if (!st) return st;
  }
  if (port <= 0 || port > 65535)
    return Status{Errc::invalid_argument, path + ": clientPort must be 1..65535"};
  // An ensemble, as ZooKeeper reads it: the server.N lines and dataDir/myid.
  // One server with standaloneEnabled (the default) runs standalone.
  if (servers.size() > 1 || (servers.size() == 1 && !standalone_enabled)) {
    std::string myid_path = (data_dir.empty() ? std::string("data") : data_dir) + "/myid";
    std::ifstream myid(myid_path);
    std::string text;
    int64_t id = 0;
    if (!myid || !std::getline(myid, text))
      return Status{Errc::invalid_argument,
                    path + " lists an ensemble (server.N lines) but " + myid_path +
                        " cannot be read: write this server's id there, as ZooKeeper needs"};
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc() || end != text.data() + text.size() || id <= 0)
      return Status{
          Errc::invalid_argument,
          myid_path + ": must hold this server's id, a positive integer; found '" + text + "'"};
    (void)set_dotted(root, "server.id", toml::value<int64_t>(id));
    toml::array list;
    for (const auto& s : servers) list.push_back(s);
    (void)set_dotted(root, "ensemble.servers", std::move(list));
    (void)set_dotted(root, "plugins.consensus", toml::value<std::string>("zab"));
    (void)set_dotted(root, "plugins.election", toml::value<std::string>("fle"));
    if (quorum_sasl) {
      (void)set_dotted(root, "ensemble.peer_auth",
                       toml::value<std::string>(
                           learner_require_sasl && server_require_sasl ? "required" : "optional"));
      (void)set_dotted(root, "ensemble.jaas_quorum_server",
                       toml::value<std::string>(server_login_context));
      (void)set_dotted(root, "ensemble.jaas_quorum_learner",
                       toml::value<std::string>(learner_login_context));
    } else if (security.ssl_quorum && !security.quorum_unification) {
      // Peers over TLS only: each proves itself with its certificate.
      (void)set_dotted(root, "ensemble.peer_auth", toml::value<std::string>("required"));
    } else {
      (void)set_dotted(root, "ensemble.peer_auth", toml::value<std::string>("none"));
      warnings.push_back(
          path +
          ": no quorum.auth.enableSasl: the peer ports believe anyone who reaches them, as "
          "ZooKeeper's do by default; turn on quorum.auth.enableSasl with QuorumServer and "
          "QuorumLearner sections in server.jaas_config, or --set ensemble.secret_file=FILE "
          "--set ensemble.peer_auth=required");
    }
    // peerType=observer must agree with the server's own line, as in ZooKeeper.
    std::string own = std::to_string(id) + "=";
    for (const auto& s : servers) {
      if (s.rfind(own, 0) != 0) continue;
      bool line_observer = s.find(":observer") != std::string::npos;
      if (!peer_type.empty() && (peer_type == "observer") != line_observer)
        return Status{Errc::invalid_argument,
                      path + ": peerType=" + peer_type + " but server." + std::to_string(id) +
                          " is " + (line_observer ? "an observer" : "a participant")};
    }
  }
  (void)set_dotted(
      root, "server.client_address",
      toml::value<std::string>(sdk::Endpoint{host, static_cast<uint16_t>(port)}.to_string()));
  if (throttle_tokens == 0) {
    (void)set_dotted(root, "server.session_create_rate", toml::value<int64_t>(0));
  } else if (throttle_tokens > 0) {
    if (throttle_fill_time <= 0 || throttle_fill_count <= 0)
      return Status{Errc::invalid_argument, path +
                                                ": connection_throttle_fill_time and "
                                                "connection_throttle_fill_count must be positive"};
    (void)set_dotted(root, "server.session_create_burst", toml::value<int64_t>(throttle_tokens));
    (void)set_dotted(root, "server.session_create_rate",
                     toml::value<int64_t>(
                         std::max<int64_t>(1, throttle_fill_count * 1000 / throttle_fill_time)));
  }
  bool is_ensemble = servers.size() > 1 || (servers.size() == 1 && !standalone_enabled);
  if (Status sst = security.apply(root, host, is_ensemble, path); !sst) return sst;
  if (admin_enabled && admin_port > 0 && admin_port <= 65535)
    (void)set_dotted(root, "server.admin_address",
                     toml::value<std::string>(
                         sdk::Endpoint{admin_host, static_cast<uint16_t>(admin_port)}.to_string()));
  for (const std::string& o : overrides) {
    Status st = apply_override(root, o);
    if (!st) return st;
  }
  Status st = extract(c);
  if (!st) return st;
  return c;
}

}  // namespace corral::kernel
