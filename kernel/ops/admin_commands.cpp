// The admin endpoint's JSON commands, from a read-only view of the server. Command names
// and fields follow ZooKeeper's AdminServer; four-letter names are aliases.
#include "ops/admin_commands.hpp"

#include <map>
#include <set>
#include <sstream>

#include "corral/common/json.hpp"
#include "ensemble/dynamic_config.hpp"
#include "ops/four_letter.hpp"
#include "server/version.hpp"
#include "tree/data_tree.hpp"
#include "watch/watch_manager.hpp"

namespace corral::kernel {

namespace {

using common::json_quote;

// Builds one JSON object, fields in insertion order.
class Json {
 public:
  Json& raw(std::string_view key, const std::string& value) {
    body_ += (body_.empty() ? "" : ",") + json_quote(key) + ":" + value;
    return *this;
  }
  Json& str(std::string_view key, std::string_view value) { return raw(key, json_quote(value)); }
  Json& num(std::string_view key, int64_t value) { return raw(key, std::to_string(value)); }
  std::string done(std::string_view command) {
    raw("command", json_quote(command));
    raw("error", "null");
    return "{" + body_ + "}\n";
  }
  std::string object() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

// ZooKeeper's AdminServer names, and the four-letter words that alias them.
const std::map<std::string, std::string, std::less<>> kAliases = {
    {"ruok", "ruok"},
    {"srvr", "server_stats"},
    {"server_stats", "server_stats"},
    {"stat", "stat"},
    {"mntr", "monitor"},
    {"monitor", "monitor"},
    {"conf", "configuration"},
    {"configuration", "configuration"},
    {"cons", "connections"},
    {"connections", "connections"},
    {"wchs", "watch_summary"},
    {"watch_summary", "watch_summary"},
    {"wchc", "watches"},
    {"watches", "watches"},
    {"wchp", "watches_by_path"},
    {"watches_by_path", "watches_by_path"},
    {"envi", "environment"},
    {"environment", "environment"},
    {"dirs", "dirs"},
    {"isro", "is_read_only"},
    {"is_read_only", "is_read_only"},
    {"srst", "stat_reset"},
    {"stat_reset", "stat_reset"},
    {"crst", "connection_stat_reset"},
    {"connection_stat_reset", "connection_stat_reset"},
    {"lead", "leader"},
    {"leader", "leader"},
    {"voting_view", "voting_view"},
    {"consensus", "consensus"},
    {"hash", "hash"},
};

}  // namespace

std::vector<std::string> admin_command_names() {
  std::vector<std::string> out;
  for (const auto& [alias, name] : kAliases)
    if (alias == name) out.push_back(name);
  return out;
}

bool admin_command_allowed(const Config& config, std::string_view requested) {
  auto it = kAliases.find(requested);
  if (it == kAliases.end()) return true;  // unknown: answered as such
  // Allowed as its four-letter word is, or by its own name.
  if (four_letter_allowed(config, it->second)) return true;
  for (const auto& [alias, name] : kAliases)
    if (name == it->second && alias.size() == 4 && four_letter_allowed(config, alias)) return true;
  return false;
}

std::optional<std::string> admin_command_name(std::string_view requested) {
  auto it = kAliases.find(requested);
  if (it == kAliases.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> admin_command(const ServerView& v, std::string_view requested) {
  auto it = kAliases.find(requested);
  if (it == kAliases.end()) return std::nullopt;
  const std::string& name = it->second;
  Json j;
  if (name == "ruok") return j.done(name);
  if (name == "is_read_only")  // as isro: a member in read-only mode while it has no leader
    return j.raw("read_only", !v.serving() && v.read_only_mode() ? "true" : "false").done(name);
  // The resets are the server's to do; this only answers them.
  if (name == "stat_reset" || name == "connection_stat_reset") return j.done(name);
  if (name == "monitor") {
    for (const auto& [key, v] : monitor_values(v))
      v.number ? j.raw(key, v.text) : j.str(key, v.text);
    return j.done(name);
  }
  if (name == "dirs") {
    return j.num("datadir_size", v.snapshot_bytes()).num("logdir_size", v.log_bytes()).done(name);
  }
  auto connections = [&] {
    std::string list = "[";
    for (const ConnectionView& ch : v.connections()) {
      Json c;
      c.str("remote_socket_address", ch.remote)
          .num("outstanding_requests", static_cast<int64_t>(ch.outstanding))
          .num("packets_received", static_cast<int64_t>(ch.received))
          .num("packets_sent", static_cast<int64_t>(ch.sent));
      if (ch.session_id != 0)
        c.str("session_id", session_hex(ch.session_id)).num("session_timeout", ch.timeout_ms);
      if (ch.last_heard_wall_ms > 0) c.num("last_activity", ch.last_heard_wall_ms);
      list += (list.size() > 1 ? "," : "") + c.object();
    }
    return list + "]";
  };
  if (name == "connections")
    return j.raw("connections", connections()).raw("secure_connections", "[]").done(name);
  if (name == "server_stats" || name == "stat") {
    Json stats;
    for (const auto& [key, v] : monitor_values(v))
      v.number ? stats.raw(key, v.text) : stats.str(key, v.text);
    j.str("version", std::string(kZooKeeperVersion))
        .raw("read_only", "false")
        .raw("server_stats", stats.object());
    j.num("node_count", static_cast<int64_t>(v.tree().node_count()));
    if (name == "stat") j.raw("connections", connections());
    return j.done(name);
  }
  if (name == "configuration") {
    return j.num("client_port", v.client_endpoint().port)
        .str("client_port_address", v.client_endpoint().host)
        .str("data_dir", v.info().data_dir)
        .num("tick_time", v.config().server.tick_ms)
        .num("max_client_cnxns", v.config().server.max_client_cnxns)
        .num("min_session_timeout", v.config().server.min_session_timeout())
        .num("max_session_timeout", v.config().server.max_session_timeout())
        .num("server_id", v.config().server.id)
        .str("transport", v.config().plugins.transport)
        .str("consensus", v.config().plugins.consensus)
        .str("storage", v.config().plugins.storage)
        .done(name);
  }
  if (name == "leader") {
    // ZooKeeper's `leader` command.
    sdk::ConsensusStatus cs = v.consensus_status();
    const sdk::PeerSpec* m = v.config().ensemble.member(cs.leader);
    j.raw("is_leader",
          cs.role == sdk::Role::leading || cs.role == sdk::Role::standalone ? "true" : "false");
    j.num("leader_id", cs.role == sdk::Role::standalone ? v.config().server.id : cs.leader);
    if (m)
      j.str("leader_ip", m->host);
    else if (cs.role == sdk::Role::standalone)
      j.str("leader_ip", v.client_endpoint().host);
    return j.done(name);
  }
  if (name == "voting_view") {
    // ZooKeeper's `voting_view`: the voting members, as zoo.cfg lists them.
    Json view;
    for (const auto& m : v.config().ensemble.members)
      if (!m.observer) view.str(std::to_string(m.id), format_member(m));
    return j.raw("current_config", view.object()).done(name);
  }
  if (name == "consensus") {
    // Corral's own: what the consensus plugin reports, with each learner.
    sdk::ConsensusStatus cs = v.consensus_status();
    std::string learners = "[";
    for (const auto& l : cs.learners) {
      Json lj;
      lj.num("id", l.id)
          .raw("observer", l.observer ? "true" : "false")
          .raw("synced", l.synced ? "true" : "false");
      lj.str("last_acked_zxid", session_hex(l.last_acked)).str("stage", l.stage);
      learners += (learners.size() > 1 ? "," : "") + lj.object();
    }
    learners += "]";
    return j.str("plugin", v.config().plugins.consensus)
        .str("election", v.config().plugins.election)
        .str("role", sdk::role_name(cs.role))
        .num("leader_id", cs.leader)
        .num("accepted_epoch", cs.accepted_epoch)
        .num("current_epoch", cs.current_epoch)
        .str("last_logged_zxid", session_hex(cs.last_logged))
        .str("last_committed_zxid", session_hex(cs.last_committed))
        .str("last_applied_zxid", session_hex(cs.last_applied))
        .num("pending_proposals", static_cast<int64_t>(cs.pending_proposals))
        .num("elections", cs.elections)
        .num("last_election_ms", cs.last_election_ms)
        .raw("learners", learners)
        .done(name);
  }
  if (name == "hash") {
    std::string list = "[";
    for (const auto& [zxid, digest] : v.digests())
      list += (list.size() > 1 ? "," : "") + std::string("{\"zxid\":") + std::to_string(zxid) +
              ",\"digest\":" + std::to_string(digest) + "}";
    return j.raw("digests", list + "]").done(name);
  }
  if (name == "watch_summary") {
    WatchManager::Summary sum = v.watches().summary();
    return j.num("num_connections", static_cast<int64_t>(sum.connections))
        .num("num_paths", static_cast<int64_t>(sum.paths))
        .num("num_total_watches", static_cast<int64_t>(sum.watches))
        .done(name);
  }
  if (name == "watches" || name == "watches_by_path") {
    // wchc and wchp: each session's watched paths, or each path's sessions.
    // At most kMaxListed pairs are listed ("truncated" says when more are set).
    constexpr size_t kMaxListed = 100000;
    std::map<std::string, std::set<std::string>> groups;
    size_t listed = 0;
    bool truncated = false;
    for (const auto& [session, path] : v.watches_by_session()) {
      if (listed == kMaxListed) {
        truncated = true;
        break;
      }
      ++listed;
      if (name == "watches")
        groups[session_hex(session)].insert(path);
      else
        groups[path].insert(session_hex(session));
    }
    Json g;
    for (const auto& [key, items] : groups) {
      std::string list = "[";
      for (const auto& item : items) list += (list.size() > 1 ? "," : "") + json_quote(item);
      g.raw(key, list + "]");
    }
    return j.raw(name, g.object()).raw("truncated", truncated ? "true" : "false").done(name);
  }
  // environment: the envi lines as key/value pairs.
  std::istringstream lines(four_letter_text(v, "envi"));
  std::string line;
  while (std::getline(lines, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) j.str(line.substr(0, eq), line.substr(eq + 1));
  }
  return j.done(name);
}

}  // namespace corral::kernel
