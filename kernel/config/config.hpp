// The server's configuration: TOML with every key defaulted, `--set`
// overrides, and ZooKeeper's zoo.cfg as an alternative source.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "corral/sdk/host.hpp"
#include "corral/sdk/peers.hpp"
#include "corral/sdk/status.hpp"
#include "corral/sdk/types.hpp"
#include "ensemble/dynamic_config.hpp"

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace corral::kernel {

struct ServerConfig {
  int64_t id = 1;
  // Whether the config named the id (server.id, zoo.cfg's myid). A member of
  // an ensemble needs its own: never a default every server would share.
  // With a discovery plugin it may come from discovery instead.
  bool id_set = false;
  // corrald --force-new-ensemble: this member starts a new ensemble of one
  // from its own data (disaster recovery). A command-line flag only, never
  // read from a file, so that it cannot stay set by accident.
  bool force_new_ensemble = false;
  std::string data_dir = "data";
  sdk::Endpoint client_address{"127.0.0.1", 2181};
  int64_t tick_ms = 2000;
  int64_t max_client_cnxns = 60;  // per client IP; 0 = unlimited
  // Client connections in all (ZooKeeper's maxCnxns); 0 = unlimited.
  int64_t max_cnxns = 16384;
  // A client connection that has not opened a session by then is closed
  // (ZooKeeper's zookeeper.nio.sessionlessCnxnTimeout).
  int64_t sessionless_timeout_ms = 10000;
  // Replies and watch notifications (or an admin event stream) waiting for a
  // client that does not read; past this the connection is closed.
  int64_t max_output_bytes = 32 << 20;
  // What one connection's watches may hold: each counts its path's bytes
  // and WatchManager::kWatchBytes. A watch past it is refused
  // (SYSTEMERROR). 128 MiB is about 1.4M watches on paths of 30 bytes.
  int64_t max_watch_bytes_per_connection = 128 << 20;
  // The same for all the server's watches: 1 GiB is about 11M such watches.
  int64_t max_watch_bytes = int64_t{1} << 30;
  // The admin endpoint: connections open at once, and how long one may take
  // to send its request (head and body).
  int64_t admin_max_connections = 256;
  // Requests received and not yet answered, in all (ZooKeeper's
  // globalOutstandingLimit) and per session: past either, the server stops
  // reading from the connection until answers catch up.
  int64_t max_outstanding = 1000;
  int64_t max_outstanding_per_session = 1000;
  // New sessions a second, with bursts of up to session_create_burst (a
  // token bucket, as ZooKeeper's connection throttle); a connect request
  // beyond it is refused and its connection closed. 0 = no limit.
  int64_t session_create_rate = 1000;
  int64_t session_create_burst = 2000;
  int64_t admin_request_timeout_ms = 10000;
  // The largest tree POST /commands/restore takes, sent and inflated (every
  // member holds it while restoring; a sync meanwhile carries it whole).
  int64_t max_restore_bytes = int64_t{512} << 20;
  // On SIGTERM or SIGINT a leader first hands the leadership to a synced voter
  // (consensus permitting), waiting up to this long; 0 stops at once.
  int64_t shutdown_handover_ms = 5000;
  int64_t min_session_timeout_ms = 0;    // 0 = 2 * tick_ms
  int64_t max_session_timeout_ms = 0;    // 0 = 20 * tick_ms
  std::vector<std::string> plugin_dirs;  // empty = next to the binary
  // Four-letter words anyone may send, and the admin commands that follow
  // them. ZooKeeper's default is srvr alone; ruok and isro say no more than
  // srvr does, and health checks use them. "*" allows every word.
  std::vector<std::string> four_letter_words{"srvr", "ruok", "isro"};
  std::string log_level = "info";
  // How the tree's snapshots are written while the server serves: "fork"
  // (a child process writes the tree as it was at the fork; the fork pauses
  // the server for a few milliseconds per 100 MB of memory, and the pages it
  // writes next are copied) or "walk" (the server writes it a slice at a time
  // between requests, keeping a copy of each node it changes before the
  // snapshot reaches it).
  std::string snapshot_method = "fork";
  // Nodes a walked snapshot writes before the server turns to other work
  // (a microsecond or two each on a tree larger than the caches): smaller
  // slices wait less in front of requests, and make the snapshot take
  // longer and keep more copies.
  int64_t snapshot_walk_slice = 256;
  int64_t max_frame_bytes = 0xfffff;  // jute.maxbuffer
  // "super:<base64 sha1>": a digest identity that passes every ACL check
  // (ZooKeeper's DigestAuthenticationProvider.superDigest). Empty: none.
  std::string super_digest;
  // ZooKeeper's extended types (TTL nodes; zookeeper.extendedTypesEnabled).
  // Needs id <= 254. Every server of an ensemble must agree.
  bool extended_types = false;
  // How often empty containers and expired TTL nodes are looked for
  // (ZooKeeper's znode.container.checkIntervalMs).
  int64_t container_check_interval_ms = 60000;
  // A JAAS login configuration whose Server section lists SASL DIGEST-MD5
  // users (user_<name>="<password>"), as ZooKeeper's DigestLoginModule reads
  // it; "" = SASL off.
  std::string jaas_config;
  // Reject creates and setData past a quota's hard limit with QUOTAEXCEEDED
  // (ZooKeeper's zookeeper.enforceQuota). Quota statistics are kept either way.
  bool enforce_quota = false;
  // Every read waits for a sync first, so that it sees every write committed
  // before it arrived (linearizable): a quorum round under raft, and under
  // zab with consensus.zab.quorum_sync; off, reads are served from this
  // server's state, as ZooKeeper serves them.
  bool linearizable_reads = false;
  // The admin HTTP endpoint ("host:port"); empty: off.
  std::string admin_address;
  // The admin endpoint speaks HTTPS, through the secure transport's admin
  // certificates (ZooKeeper's admin.forceHttps).
  bool admin_tls = false;
  // A second client port that speaks TLS, through plugins.secure_transport
  // (ZooKeeper's secureClientPort); empty: none.
  std::string secure_client_address;
  // The plaintext client port takes TLS too, told apart by the first byte
  // (ZooKeeper's client.portUnification).
  bool client_port_unification = false;
  // The subject of a client certificate that passes every ACL check, as
  // ZooKeeper's X509AuthenticationProvider.superUser; empty: none.
  std::string x509_superuser;
  // Identities that may run every admin command (those outside the
  // whitelist, backups, leader transfer) whatever the ACL on "/" says,
  // without passing every ACL in the tree as a superuser does:
  // "x509:CN=ops,O=Example", "sasl:ops", "digest:ops:<base64-sha1>".
  std::vector<std::string> admin_identities;
  // Host names the admin endpoint answers to, besides IP addresses,
  // "localhost" and this machine's own names (its host name and the names
  // /etc/hosts gives it): "corral.example.com", ".example.com" (any name
  // under it), or "*" (any); lowercased when read. A request naming another
  // host is refused with 421, so that a web page whose name an attacker
  // points at this address (DNS rebinding) cannot read or act through a
  // visitor's browser.
  std::vector<std::string> admin_hosts;
  // The audit log (ZooKeeper's audit.enable): a file of its own, under
  // data_dir unless absolute; empty: off. Rolled to <file>.1 past
  // audit_log_max_bytes.
  std::string audit_log;
  int64_t audit_log_max_bytes = 256 << 20;
  // The server's log written to a file as well as to stderr (the official
  // image's ZOO_LOG_DIR), under data_dir unless absolute; empty: stderr
  // only. Rolled to <file>.1 past log_file_max_bytes.
  std::string log_file;
  int64_t log_file_max_bytes = 256 << 20;
  // ZooKeeper's read-only mode (readonlymode.enabled): an ensemble member
  // without a leader serves reads to clients that allow it, and answers
  // writes with NOTREADONLY, until the ensemble is back.
  bool read_only_mode = false;

  int64_t min_session_timeout() const {
    return min_session_timeout_ms ? min_session_timeout_ms : 2 * tick_ms;
  }
  int64_t max_session_timeout() const {
    return max_session_timeout_ms ? max_session_timeout_ms : 20 * tick_ms;
  }
};

struct PluginsConfig {
  std::string transport = "tcp";
  // The transport for the ports that speak TLS (server.secure_client_address,
  // ensemble.tls, server.admin_tls); loaded only when one does.
  std::string secure_transport = "tls";
  std::string consensus = "standalone";
  std::string storage = "wal";
  std::string election;   // empty: none (standalone needs none)
  std::string discovery;  // empty: none
  std::vector<std::string> recipes;
};

// The members of a replicated ensemble (consensus "zab").
struct EnsembleConfig {
  std::vector<sdk::PeerSpec> members;  // sorted by id; empty for a standalone server
  // Listen for peers on every address instead of this server's own entry
  // (ZooKeeper's quorumListenOnAllIPs).
  bool listen_on_all_addresses = false;
  // Dynamic reconfiguration (ZooKeeper's reconfigEnabled): the reconfig
  // request changes the membership through the log. Off by default, as in
  // ZooKeeper; only a superuser, or an ACL opened on /zookeeper/config, may.
  bool reconfig_enabled = false;
  // How members prove to each other that they are members (peer/peer_auth.hpp):
  // "required" (the default), "optional" (proofs checked when offered, for a
  // rolling switch), or "none" (anyone who reaches the peer ports is believed,
  // ZooKeeper's default; a zoo.cfg without quorum.auth gets it, with a warning).
  std::string peer_auth = "required";
  // The key: a shared secret, best from a file every member holds...
  std::string secret_file;
  std::string secret;
  // ...or, as ZooKeeper's quorum DIGEST-MD5 (quorum.auth.enableSasl), the
  // sections of server.jaas_config that list the users a server accepts
  // (user_<name>="<password>") and the name and password it dials with.
  std::string jaas_quorum_server;   // e.g. "QuorumServer"; empty: not used
  std::string jaas_quorum_learner;  // e.g. "QuorumLearner"
  // A peer connection that has not finished its handshake by then is closed.
  int64_t handshake_timeout_ms = 5000;
  // Peers talk over mutual TLS through plugins.secure_transport (ZooKeeper's
  // sslQuorum): each proves with a certificate that names it (see
  // peer/peer_auth.hpp), which satisfies peer_auth = "required" by itself.
  bool tls = false;
  // The peer ports take plaintext and TLS alike (ZooKeeper's
  // portUnification), for switching a running ensemble to TLS one server at a
  // time; `tls` says which this server dials with.
  bool tls_port_unification = false;

  const sdk::PeerSpec* member(sdk::ServerId id) const;
};

class Config {
 public:
  Config();
  ~Config();
  Config(Config&&) noexcept;
  Config& operator=(Config&&) noexcept;

  ServerConfig server;
  PluginsConfig plugins;
  EnsembleConfig ensemble;
  // Where the settings came from, for messages: "corral.toml", "zoo.cfg", "defaults".
  std::string source = "defaults";

  // The table of one plugin ("storage.wal"), empty when absent. Owned by the Config.
  std::unique_ptr<sdk::ConfigTable> plugin_table(std::string_view kind,
                                                 std::string_view name) const;
  // The whole effective configuration as TOML, for `conf` and logs.
  std::string to_toml() const;

  toml::table& root();
  const toml::table& root() const;

 private:
  std::unique_ptr<toml::table> root_;
};

// Loads a TOML file (or nothing, for the embedded defaults), applies `--set
// section.key=value` overrides in order, and validates. Errors name the file,
// the line, the key and what was expected.
sdk::Result<Config> load_config(const std::optional<std::string>& path,
                                const std::vector<std::string>& overrides);

// Reads a ZooKeeper zoo.cfg into a Config; overrides apply on top. Unknown keys
// are reported through `warnings` and otherwise ignored.
sdk::Result<Config> load_zoo_cfg(const std::string& path, const std::vector<std::string>& overrides,
                                 std::vector<std::string>& warnings);

}  // namespace corral::kernel
