// The admin endpoint's JSON commands and Prometheus metrics. Command names
// and fields follow ZooKeeper's AdminServer; four-letter names are aliases.
#include <map>
#include <sstream>

#include "corral/common/json.hpp"
#include "server/channel.hpp"
#include "server/server.hpp"

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
    {"ruok", "ruok"},           {"srvr", "server_stats"},       {"server_stats", "server_stats"},
    {"stat", "stat"},           {"mntr", "monitor"},            {"monitor", "monitor"},
    {"conf", "configuration"},  {"configuration", "configuration"}, {"cons", "connections"},
    {"connections", "connections"}, {"wchs", "watch_summary"},  {"watch_summary", "watch_summary"},
    {"envi", "environment"},    {"environment", "environment"}, {"dirs", "dirs"},
    {"isro", "is_read_only"},   {"is_read_only", "is_read_only"}, {"srst", "stat_reset"},
    {"stat_reset", "stat_reset"}, {"crst", "connection_stat_reset"},
    {"connection_stat_reset", "connection_stat_reset"},
    {"lead", "leader"},         {"leader", "leader"},           {"voting_view", "voting_view"},
    {"consensus", "consensus"},  {"hash", "hash"},
};

}  // namespace

std::vector<std::string> Server::admin_command_names() const {
  std::vector<std::string> out;
  for (const auto& [alias, name] : kAliases)
    if (alias == name) out.push_back(name);
  return out;
}

bool Server::admin_command_allowed(std::string_view requested) const {
  auto it = kAliases.find(requested);
  if (it == kAliases.end()) return true;  // unknown: answered as such
  // Allowed as its four-letter word is, or by its own name.
  if (four_letter_allowed(it->second)) return true;
  for (const auto& [alias, name] : kAliases)
    if (name == it->second && alias.size() == 4 && four_letter_allowed(alias)) return true;
  return false;
}

std::optional<std::string> Server::admin_command(std::string_view requested) {
  auto it = kAliases.find(requested);
  if (it == kAliases.end()) return std::nullopt;
  const std::string& name = it->second;
  Json j;
  if (name == "ruok") return j.done(name);
  if (name == "is_read_only")  // as isro: a member in read-only mode while it has no leader
    return j.raw("read_only", !serving() && read_only_mode() ? "true" : "false").done(name);
  if (name == "stat_reset") {
    stats_.reset();
    return j.done(name);
  }
  if (name == "connection_stat_reset") {
    for (auto& [id, ch] : channels_) ch->reset_stats();
    return j.done(name);
  }
  if (name == "monitor") {
    for (const auto& [key, v] : monitor_values()) v.number ? j.raw(key, v.text) : j.str(key, v.text);
    return j.done(name);
  }
  if (name == "dirs") {
    return j.num("datadir_size", storage_ ? storage_->snapshot_bytes() : 0)
        .num("logdir_size", storage_ ? storage_->log_bytes() : 0)
        .done(name);
  }
  auto connections = [&] {
    std::string list = "[";
    for (const auto& [id, ch] : channels_) {
      if (ch->closed()) continue;
      Json c;
      c.str("remote_socket_address", ch->remote_address())
          .num("outstanding_requests", static_cast<int64_t>(ch->outstanding()))
          .num("packets_received", static_cast<int64_t>(ch->received()))
          .num("packets_sent", static_cast<int64_t>(ch->sent()));
      if (ch->session_id() != 0) c.str("session_id", session_hex(ch->session_id())).num("session_timeout", ch->timeout_ms());
      list += (list.size() > 1 ? "," : "") + c.object();
    }
    return list + "]";
  };
  if (name == "connections") return j.raw("connections", connections()).raw("secure_connections", "[]").done(name);
  if (name == "server_stats" || name == "stat") {
    Json stats;
    for (const auto& [key, v] : monitor_values()) v.number ? stats.raw(key, v.text) : stats.str(key, v.text);
    j.str("version", std::string(kZooKeeperVersion)).raw("read_only", "false").raw("server_stats", stats.object());
    j.num("node_count", static_cast<int64_t>(tree_.node_count()));
    if (name == "stat") j.raw("connections", connections());
    return j.done(name);
  }
  if (name == "configuration") {
    return j.num("client_port", client_endpoint().port)
        .str("client_port_address", client_endpoint().host)
        .str("data_dir", info_.data_dir)
        .num("tick_time", config_.server.tick_ms)
        .num("max_client_cnxns", config_.server.max_client_cnxns)
        .num("min_session_timeout", config_.server.min_session_timeout())
        .num("max_session_timeout", config_.server.max_session_timeout())
        .num("server_id", config_.server.id)
        .str("transport", config_.plugins.transport)
        .str("consensus", config_.plugins.consensus)
        .str("storage", config_.plugins.storage)
        .done(name);
  }
  if (name == "leader") {
    // ZooKeeper's `leader` command.
    sdk::ConsensusStatus cs = consensus_status();
    const sdk::PeerSpec* m = config_.ensemble.member(cs.leader);
    j.raw("is_leader", cs.role == sdk::Role::leading || cs.role == sdk::Role::standalone ? "true" : "false");
    j.num("leader_id", cs.role == sdk::Role::standalone ? config_.server.id : cs.leader);
    if (m) j.str("leader_ip", m->host);
    else if (cs.role == sdk::Role::standalone) j.str("leader_ip", client_endpoint().host);
    return j.done(name);
  }
  if (name == "voting_view") {
    // ZooKeeper's `voting_view`: the voting members, as zoo.cfg lists them.
    Json view;
    for (const auto& m : config_.ensemble.members)
      if (!m.observer) view.str(std::to_string(m.id), format_member(m));
    return j.raw("current_config", view.object()).done(name);
  }
  if (name == "consensus") {
    // Corral's own: what the consensus plugin reports, with each learner.
    sdk::ConsensusStatus cs = consensus_status();
    std::string learners = "[";
    for (const auto& l : cs.learners) {
      Json lj;
      lj.num("id", l.id).raw("observer", l.observer ? "true" : "false").raw("synced", l.synced ? "true" : "false");
      lj.str("last_acked_zxid", session_hex(l.last_acked)).str("stage", l.stage);
      learners += (learners.size() > 1 ? "," : "") + lj.object();
    }
    learners += "]";
    return j.str("plugin", config_.plugins.consensus)
        .str("election", config_.plugins.election)
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
    for (const auto& [zxid, digest] : digests_)
      list += (list.size() > 1 ? "," : "") + std::string("{\"zxid\":") + std::to_string(zxid) + ",\"digest\":" +
              std::to_string(digest) + "}";
    return j.raw("digests", list + "]").done(name);
  }
  if (name == "watch_summary") {
    WatchManager::Summary sum = watches_.summary();
    return j.num("num_connections", static_cast<int64_t>(sum.connections))
        .num("num_paths", static_cast<int64_t>(sum.paths))
        .num("num_total_watches", static_cast<int64_t>(sum.watches))
        .done(name);
  }
  // environment: the envi lines as key/value pairs.
  std::istringstream lines(four_letter_text("envi"));
  std::string line;
  while (std::getline(lines, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) j.str(line.substr(0, eq), line.substr(eq + 1));
  }
  return j.done(name);
}

void Server::observe_request(int32_t type, double seconds) {
  auto it = request_metrics_.find(type);
  if (it == request_metrics_.end()) {
    std::string label = std::string("{op=\"") + proto::opcode_name(type) + "\"}";
    it = request_metrics_
             .emplace(type, std::make_pair(metrics_.counter("corral_requests_total" + label, "requests answered, by operation"),
                                           metrics_.histogram("corral_request_seconds" + label,
                                                              "time from a request's arrival to its reply, by operation")))
             .first;
  }
  it->second.first->inc();
  it->second.second->observe(seconds);
}

std::string Server::metrics_text() {
  size_t ephemerals = 0;
  for (const auto& [id, sess] : tree_.sessions()) ephemerals += sess.ephemerals.size();
  auto set = [&](const char* name, const char* help, int64_t v) { metrics_.gauge(name, help)->set(v); };
  set("corral_znodes", "znodes in the tree", static_cast<int64_t>(tree_.node_count()));
  set("corral_acls", "distinct ACL lists the znodes use", static_cast<int64_t>(tree_.acl_count()));
  set("corral_data_bytes", "bytes of data and paths in the tree", tree_.approximate_data_size());
  set("corral_sessions", "live sessions", static_cast<int64_t>(tree_.sessions().size()));
  set("corral_ephemerals", "ephemeral znodes", static_cast<int64_t>(ephemerals));
  set("corral_watches", "watches set", static_cast<int64_t>(watches_.watch_count()));
  set("corral_connections", "client connections", static_cast<int64_t>(channels_.size()));
  set("corral_outstanding_requests", "requests received and not yet answered", outstanding_);
  set("corral_last_zxid", "zxid of the last applied change", last_zxid());
  sdk::ConsensusStatus cs = consensus_status();
  set("corral_consensus_leader", "1 when this server leads (or runs standalone)",
      cs.role == sdk::Role::leading || cs.role == sdk::Role::standalone ? 1 : 0);
  set("corral_consensus_serving", "1 when this server has a leader and takes clients", serving() ? 1 : 0);
  set("corral_consensus_epoch", "the epoch of the leader this server follows or is", cs.current_epoch);
  set("corral_consensus_pending_proposals", "entries logged or proposed and not yet applied",
      static_cast<int64_t>(cs.pending_proposals));
  if (peers_) {
    int64_t synced = 0;
    for (const auto& l : cs.learners) synced += l.synced ? 1 : 0;
    set("corral_consensus_synced_learners", "followers and observers in the broadcast (leader only)", synced);
    set("corral_consensus_elections", "elections this server has taken part in", cs.elections);
    set("corral_consensus_last_election_ms", "how long the last election took", cs.last_election_ms);
  }
  return metrics_.render();
}

}  // namespace corral::kernel
