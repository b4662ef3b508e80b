// The server's operator-facing side: the read-only view that four-letter
// words and admin commands are written from, the two words that reset
// statistics, request metrics and the Prometheus text.
#include "admin/http_auth.hpp"
#include "ops/admin_commands.hpp"
#include "ops/four_letter.hpp"
#include "server/channel.hpp"
#include "server/server.hpp"

namespace corral::kernel {

class Server::View final : public ServerView {
 public:
  explicit View(const Server& s) : s_(s) {}
  const Config& config() const override { return s_.config_; }
  const sdk::ServerInfo& info() const override { return s_.info_; }
  const DataTree& tree() const override { return s_.tree_; }
  const WatchManager& watches() const override { return s_.watches_; }
  std::vector<std::pair<int64_t, std::string>> watches_by_session() const override {
    std::vector<std::pair<int64_t, std::string>> out;
    for (const auto& [w, path] : s_.watches_.listed_watches())
      out.emplace_back(static_cast<const Channel*>(w)->session_id(), path);
    return out;
  }
  const ServerStats& stats() const override { return s_.stats_; }
  std::vector<ConnectionView> connections() const override {
    std::vector<ConnectionView> out;
    const int64_t steady = s_.clock_.steady_ms(), wall = s_.clock_.wall_ms();
    for (const auto& [id, ch] : s_.channels_) {
      if (ch->closed()) continue;
      int64_t heard = ch->last_heard_ms();
      out.push_back({ch->remote_address(), ch->session_id(), ch->timeout_ms(), ch->outstanding(),
                     ch->received(), ch->sent(), heard > 0 ? wall - (steady - heard) : 0});
    }
    return out;
  }
  size_t connection_count() const override { return s_.channels_.size(); }
  int64_t outstanding() const override { return s_.outstanding_; }
  sdk::Zxid last_zxid() const override { return s_.last_zxid(); }
  sdk::ConsensusStatus consensus_status() const override { return s_.consensus_status(); }
  std::string mode() const override { return s_.mode(); }
  bool serving() const override { return s_.serving(); }
  bool read_only_mode() const override { return s_.read_only_mode(); }
  bool in_ensemble() const override { return s_.peers_ != nullptr; }
  sdk::Endpoint client_endpoint() const override { return s_.client_endpoint(); }
  sdk::Zxid config_version() const override { return s_.config_version_; }
  const std::deque<std::pair<sdk::Zxid, uint64_t>>& digests() const override { return s_.digests_; }
  uint64_t snapshot_bytes() const override {
    return s_.storage_ ? s_.storage_->snapshot_bytes() : 0;
  }
  uint64_t log_bytes() const override { return s_.storage_ ? s_.storage_->log_bytes() : 0; }

 private:
  const Server& s_;
};

std::optional<std::string> Server::four_letter(std::string_view word) {
  if (!is_four_letter_word(word)) return std::nullopt;
  if (!four_letter_allowed(config_, word))
    return std::string(word) + " is not executed because it is not in the whitelist.\n";
  if (serving() && word == "srst") {
    stats_.reset();
    return std::string("Server stats reset.\n");
  }
  if (serving() && word == "crst") {
    for (auto& [id, ch] : channels_) ch->reset_stats();
    return std::string("Connection stats reset.\n");
  }
  return four_letter_text(View(*this), word);
}

std::optional<std::string> Server::admin_command(std::string_view requested) {
  auto name = admin_command_name(requested);
  if (!name) return std::nullopt;
  if (*name == "stat_reset") stats_.reset();
  if (*name == "connection_stat_reset")
    for (auto& [id, ch] : channels_) ch->reset_stats();
  return kernel::admin_command(View(*this), requested);
}

bool Server::admin_command_allowed(std::string_view name) const {
  return kernel::admin_command_allowed(config_, name);
}

bool Server::is_admin_identity(const Ids& ids) const {
  for (const std::string& admin : config_.server.admin_identities)
    for (const proto::Id& id : ids)
      if (admin.size() == id.scheme.size() + 1 + id.id.size() && admin.starts_with(id.scheme) &&
          admin[id.scheme.size()] == ':' && admin.ends_with(id.id))
        return true;
  return false;
}

bool Server::may_administer(const Ids& ids) const {
  if (is_admin_identity(ids)) return true;
  const Node* root = tree_.find("/");
  return root && permitted_all(tree_.acl(*root), proto::perm::all, ids);
}

bool Server::may_back_up(const Ids& ids) const {
  if (is_admin_identity(ids)) return true;
  for (const proto::Id& id : ids)
    if (id.scheme == "super") return true;
  const Node* root = tree_.find("/");
  if (!root) return false;
  for (const proto::Acl& a : tree_.acl(*root)) {
    if ((a.perms & proto::perm::all) != proto::perm::all || a.id.scheme == "world" ||
        a.id.scheme == "ip")
      continue;
    for (const proto::Id& id : ids)
      if (id.scheme == a.id.scheme && id.id == a.id.id) return true;
  }
  return false;
}

std::vector<std::string> Server::admin_command_names() const {
  std::vector<std::string> names = kernel::admin_command_names();
  names.push_back("snapshot");         // streamed (GET), superuser or cdrwa on /
  names.push_back("leader_transfer");  // POST, cdrwa on /
  names.push_back("restore");          // POST with a backup, as snapshot's rights
  return names;
}

void Server::observe_request(int32_t type, double seconds) {
  auto it = request_metrics_.find(type);
  if (it == request_metrics_.end()) {
    std::string label = std::string("{op=\"") + proto::opcode_name(type) + "\"}";
    it = request_metrics_
             .emplace(type, std::make_pair(
                                metrics_.counter("corral_requests_total" + label,
                                                 "requests answered, by operation"),
                                metrics_.histogram(
                                    "corral_request_seconds" + label,
                                    "time from a request's arrival to its reply, by operation")))
             .first;
  }
  it->second.first->inc();
  it->second.second->observe(seconds);
}

std::string Server::metrics_text() { return metrics_.exposition(); }

void Server::refresh_metric_gauges() {
  size_t ephemerals = 0;
  for (const auto& [id, sess] : tree_.sessions()) ephemerals += sess.ephemerals.size();
  auto set = [&](const char* name, const char* help, int64_t v) {
    metrics_.gauge(name, help)->set(v);
  };
  set("corral_znodes", "znodes in the tree", static_cast<int64_t>(tree_.node_count()));
  set("corral_acls", "distinct ACL lists the znodes use", static_cast<int64_t>(tree_.acl_count()));
  set("corral_data_bytes", "bytes of data and paths in the tree", tree_.approximate_data_size());
  set("corral_sessions", "live sessions", static_cast<int64_t>(tree_.sessions().size()));
  set("corral_ephemerals", "ephemeral znodes", static_cast<int64_t>(ephemerals));
  set("corral_watches", "watches set", static_cast<int64_t>(watches_.watch_count()));
  set("corral_watch_bytes",
      "bytes the watches count against server.max_watch_bytes (their paths and 64 each)",
      static_cast<int64_t>(watches_.total_bytes()));
  if (uint64_t refused = watches_.refused_count(); refused > m_watches_refused_->value())
    m_watches_refused_->inc(refused - m_watches_refused_->value());
  set("corral_connections", "client connections", static_cast<int64_t>(channels_.size()));
  set("corral_outstanding_requests", "requests received and not yet answered", outstanding_);
  set("corral_last_zxid", "zxid of the last applied change", last_zxid());
  sdk::ConsensusStatus cs = consensus_status();
  set("corral_consensus_leader", "1 when this server leads (or runs standalone)",
      cs.role == sdk::Role::leading || cs.role == sdk::Role::standalone ? 1 : 0);
  set("corral_consensus_serving", "1 when this server has a leader and takes clients",
      serving() ? 1 : 0);
  set("corral_consensus_epoch", "the epoch of the leader this server follows or is",
      cs.current_epoch);
  set("corral_consensus_pending_proposals", "entries logged or proposed and not yet applied",
      static_cast<int64_t>(cs.pending_proposals));
  if (peers_) {
    int64_t synced = 0;
    for (const auto& l : cs.learners) synced += l.synced ? 1 : 0;
    set("corral_consensus_synced_learners",
        "followers and observers in the broadcast (leader only)", synced);
    set("corral_consensus_elections", "elections this server has taken part in", cs.elections);
    set("corral_consensus_last_election_ms", "how long the last election took",
        cs.last_election_ms);
  }
}

}  // namespace corral::kernel
