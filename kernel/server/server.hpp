// The server: loads the configured plugins, recovers state from storage,
// serves clients over the transport, and applies what consensus commits.
#pragma once

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config/config.hpp"
#include "corral/sdk/consensus.hpp"
#include "corral/sdk/discovery.hpp"
#include "corral/sdk/recipe.hpp"
#include "corral/sdk/storage.hpp"
#include "corral/sdk/transport.hpp"
#include "peer/peer_network.hpp"
#include "plugin/host_services.hpp"
#include "plugin/loader.hpp"
#include "server/audit_log.hpp"
#include "server/channel_host.hpp"
#include "server/server_stats.hpp"
#include "server/snapshotter.hpp"
#include "server/version.hpp"
#include "session/sasl.hpp"
#include "session/session_tracker.hpp"
#include "tree/data_tree.hpp"
#include "tree/state_machine.hpp"
#include "util/log_limiter.hpp"
#include "watch/watch_manager.hpp"

namespace corral::kernel {

class AdminServer;
class Channel;
class ChannelLink;

class Server final : public ChannelHost,
                     private sdk::ConsensusHost,
                     private sdk::DiscoveryHost,
                     public sdk::RecipeHost {
 public:
  Server(boost::asio::io_context& io, Config config, std::string exe_path);
  ~Server() override;

  // Loads plugins, recovers state, starts listening. Errors are fatal at startup.
  sdk::Status start();
  // Stops accepting, closes connections and plugins. Idempotent.
  void stop();
  // Set when the server stopped itself after start() returned (discovery
  // failed, or joining the ensemble it named failed): why, for the exit.
  const std::optional<sdk::Status>& fatal() const { return fatal_; }

  // The bound client endpoint (port resolved when 0 was configured).
  sdk::Endpoint client_endpoint() const;

  // ---- ChannelHost ----
  DataTree& tree() override { return tree_; }
  WatchManager& watches() override { return watches_; }
  ServerStats& stats() override { return stats_; }
  const Config& config() const override { return config_; }
  const sdk::Clock& clock() const override { return clock_; }
  sdk::Executor& executor() override { return executor_; }
  sdk::Logger& log() override { return *log_; }
  sdk::Zxid last_zxid() const override { return state_machine_.last_applied(); }
  int32_t negotiate_timeout(int32_t requested) const override;
  sdk::Status create_session(Channel& ch, int32_t timeout_ms, int64_t& id,
                             std::string& password) override;
  bool reattach_session(Channel& ch, int64_t id, std::string_view password,
                        int32_t timeout_ms) override;
  bool touch_session(int64_t id) override;
  // SASL DIGEST-MD5 users from server.jaas_config; null when SASL is off.
  const SaslUsers* sasl_users() const override {
    return sasl_users_.empty() ? nullptr : &sasl_users_;
  }
  std::string random_token() override;
  bool serving() const override;
  // Read-only mode, once this member has been without a leader for a grace
  // period of max(2 s, tickTime), as ZooKeeper's: a member that is starting,
  // or between two leaders, is not yet cut off, and a client that allows
  // read-only sessions should wait for a read-write one rather than get a
  // read-only one it cannot write on.
  bool read_only_mode() const override {
    return config_.server.read_only_mode && peers_ != nullptr && looking_since_ms_ >= 0 &&
           clock_.steady_ms() - looking_since_ms_ >=
               std::max<int64_t>(2000, config_.server.tick_ms);
  }
  bool read_only_session(int64_t id, std::string_view password, int64_t& out_id,
                         std::string& out_password) override;
  // As configured or discovered, then as the last reconfig installed them.
  const std::vector<sdk::PeerSpec>& members() const override { return config_.ensemble.members; }
  sdk::Status submit(int32_t type, int64_t session, int32_t cxid, std::string_view payload,
                     const Ids& ids) override;
  void sync(std::function<void(const sdk::Status&)> done) override;
  void channel_closed(Channel& ch) override;
  int64_t outstanding() const override { return outstanding_; }
  void add_outstanding(int64_t delta) override {
    outstanding_ += delta;
    if (delta < 0 && !waiting_outstanding_.empty()) wake_outstanding();
  }
  void wait_for_outstanding(Channel& ch) override;
  std::optional<std::string> four_letter(std::string_view word) override;
  void observe_request(int32_t type, double seconds) override;

  // (zxid, tree digest) after each of the last entries applied, oldest first.
  const std::deque<std::pair<sdk::Zxid, uint64_t>>& digests() const { return digests_; }
  // What consensus reports, for srvr/mntr and the admin endpoint.
  sdk::ConsensusStatus consensus_status() const;
  // The admin endpoint's bound address (port 0 when it is off).
  sdk::Endpoint admin_endpoint() const;
  std::string mode() const;
  // The admin endpoint's commands (ZooKeeper's AdminServer names and their
  // four-letter aliases): a JSON document, or nullopt for an unknown name.
  std::optional<std::string> admin_command(std::string_view name);
  bool admin_command_allowed(std::string_view name) const;
  // Whether `ids` hold every permission on "/" (or are super, or one is in
  // server.admin_identities): what an admin command outside the whitelist
  // asks of its caller.
  bool may_administer(const Ids& ids) const;
  // Whether one of `ids` is in server.admin_identities.
  bool is_admin_identity(const Ids& ids) const;
  // Whether `ids` may take a backup, which copies every znode whatever its
  // ACL: a superuser, an admin identity, or an identity the ACL of "/"
  // names (not world or ip) with every permission.
  bool may_back_up(const Ids& ids) const;
  // A backup: a forked child serializes the tree as it stands (at the last
  // applied zxid) into the sink `make(zxid)` returns, while the server goes
  // on serving; `done` runs on the loop. One at a time: unavailable while
  // one runs.
  sdk::Status start_backup(const std::function<std::unique_ptr<sdk::SnapshotSink>(sdk::Zxid)>& make,
                           std::function<void(const sdk::Status&)> done);
  // A restore (POST /commands/restore): replaces the whole tree with the
  // one in `file` (a backup or snapshot in the wal format) through the log,
  // so that every member of an ensemble replaces its tree at the same zxid,
  // above every zxid before it (server_restore.cpp says how). `file` is
  // checked whole first: a bad one is refused (Errc::corrupt naming the
  // offset) and nothing changes. `done` runs on the loop once the restore
  // took effect here, or with why it did not. One at a time.
  struct RestoreResult {
    sdk::Zxid zxid = 0;         // where it took effect
    sdk::Zxid backup_zxid = 0;  // the backup's own
    size_t znodes = 0, sessions = 0;
  };
  sdk::Status start_restore(std::string file,
                            std::function<void(const sdk::Result<RestoreResult>&)> done);
  // Why a restore cannot start now, if it cannot.
  std::optional<sdk::Status> restore_busy() const;
  AuditLog* audit() override { return audit_.get(); }
  std::vector<std::string> admin_command_names() const;
  // Hands the leadership over (consensus permitting): `done` on the loop.
  void transfer_leadership(sdk::ServerId to, std::function<void(const sdk::Status&)> done);
  // A stop asked for by a signal: a leader of an ensemble first hands over
  // (up to server.shutdown_handover_ms), so that no election follows; then
  // `then` runs (it stops the server). A handover already under way (asked
  // by an operator) is waited for, and the leadership handed over after it
  // if this server still leads.
  void shutdown_gracefully(std::function<void()> then);
  // Prometheus text: the registry plus the tree, session and watch gauges.
  std::string metrics_text();
  // Sets the gauges computed on demand (znodes, sessions, consensus state).
  void refresh_metric_gauges();
  // Opens a channel over `link` (a TCP connection or an in-process session).
  Channel* open_channel(std::unique_ptr<ChannelLink> link);

  // ---- RecipeHost ----
  sdk::Result<std::unique_ptr<sdk::TreeSession>> open_session(int32_t timeout_ms,
                                                              sdk::WatchCallback on_event) override;
  sdk::Role role() const override;
  sdk::Zxid last_applied() const override { return state_machine_.last_applied(); }
  sdk::HttpRouter* http() override;

 private:
  // ---- ConsensusHost ----
  sdk::Storage& storage() override { return *storage_; }
  sdk::PeerNetwork* peers() override { return peers_.get(); }
  sdk::Election* election() override { return election_.get(); }
  void apply(const sdk::LogEntry& entry) override;
  void rejected(const sdk::LogEntry& entry, const sdk::Status& why) override;
  void take_snapshot(std::function<void(const sdk::Result<sdk::Zxid>&)> done) override;
  sdk::Status load_snapshot(sdk::Zxid zxid, sdk::BytesView snapshot) override;
  void role_changed(sdk::Role role, sdk::ServerId leader, uint32_t epoch) override;
  sdk::Bytes take_session_activity() override;
  void session_activity(sdk::ServerId from, sdk::BytesView activity) override;
  void prepare(sdk::LogEntry& entry) override;
  std::optional<std::vector<sdk::PeerSpec>> membership_in(const sdk::LogEntry& entry) override;

  // Reconfig, on the leader: the membership `req` asks for, as the text of
  // /zookeeper/config at version `zxid`, or the error ZooKeeper answers
  // (in ZooKeeper's order of checks).
  proto::Err plan_reconfig(std::string_view payload, int64_t session, const Ids& ids,
                           sdk::Zxid zxid, std::string& text);
  // Makes `members` (installed at `version`) this server's membership: the
  // peer network, /zookeeper/config and what consensus counts follow it.
  void adopt_membership(std::vector<sdk::PeerSpec> members, sdk::Zxid version,
                        const std::string& why);
  // After the tree was replaced (a snapshot at startup or from the leader):
  // the membership a reconfig recorded in it, if newer than this server's.
  sdk::Status adopt_membership_from_tree();
  // --force-new-ensemble: the membership becomes this server alone, at a
  // version above every one before (`last_zxid`: the last logged entry).
  sdk::Status force_new_ensemble(sdk::Zxid last_zxid);
  bool forced_snapshot_due_ = false;  // the forced membership is not in a snapshot yet

  // ---- DiscoveryHost ----
  std::vector<sdk::PeerSpec> configured_members() const override {
    return config_.ensemble.members;
  }
  sdk::ServerId configured_self() const override {
    return config_.server.id_set ? config_.server.id : 0;
  }
  void members_replaced(std::vector<sdk::PeerSpec> members, sdk::ServerId self) override;
  void member_updated(const sdk::PeerSpec& member) override;
  void member_removed(sdk::ServerId id) override;
  void discovery_failed(const sdk::Status& why) override;

  // Everything after loading plugins: peers, recovery, listeners, recipes.
  // At once, or when discovery first names the ensemble.
  sdk::Status begin_serving();
  // Stops the server from inside the loop, remembering why.
  void fail(const sdk::Status& why);

  template <class Interface>
  sdk::Result<std::shared_ptr<Interface>> load_plugin(sdk::PluginKind kind,
                                                      const std::string& name);
  sdk::Status recover();
  // Restarts every session's deadline from now (a new leader, a new tree).
  void track_all_sessions();
  // /zookeeper/config: the ensemble's members, as ZooKeeper writes them.
  void publish_config();
  void consensus_tick();
  void on_accept(std::shared_ptr<sdk::Connection> conn);
  void tick();
  void schedule_container_check();

  int64_t next_session_id();
  // What four-letter words and admin commands read (server_ops.cpp).
  class View;

  boost::asio::io_context& io_;
  Config config_;
  std::string exe_path_;
  AsioExecutor executor_;
  SystemClock clock_;
  // Since when this member has been looking for a leader; -1 while it serves.
  int64_t looking_since_ms_ = -1;
  std::unique_ptr<StderrLogger> log_;
  MetricsRegistry metrics_;
  PluginLoader loader_;
  sdk::ServerInfo info_;
  std::vector<std::unique_ptr<PluginHostImpl>> plugin_hosts_;

  std::shared_ptr<sdk::Transport> transport_;
  // plugins.secure_transport, loaded when a port speaks TLS; else null.
  std::shared_ptr<sdk::Transport> secure_transport_;
  std::shared_ptr<sdk::Storage> storage_;
  std::shared_ptr<sdk::Consensus> consensus_;
  std::shared_ptr<sdk::Election> election_;
  std::shared_ptr<sdk::Discovery> discovery_;
  std::vector<std::shared_ptr<sdk::Recipe>> recipes_;
  std::unique_ptr<sdk::Listener> listener_;
  std::unique_ptr<sdk::Listener> secure_listener_;  // server.secure_client_address
  std::unique_ptr<TcpPeerNetwork> peers_;           // an ensemble's; null when standalone
  std::vector<std::shared_ptr<sdk::Recipe>> pending_recipes_;  // started once serving begins
  bool joined_ = false;  // discovery named the ensemble and serving began
  std::optional<sdk::Status> fatal_;
  std::set<sdk::ServerId> strangers_;  // discovered ids outside the ensemble, warned about once

  DataTree tree_;
  StateMachine state_machine_{tree_};
  WatchManager watches_;
  SessionTracker sessions_;
  ServerStats stats_;

  std::unordered_map<uint64_t, std::unique_ptr<Channel>> channels_;
  std::unordered_map<int32_t, std::pair<sdk::Counter*, sdk::Histogram*>> request_metrics_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<AuditLog> audit_;                         // server.audit_log; null when off
  std::unordered_map<int64_t, Channel*> session_channels_;  // sessions held here
  std::unordered_map<std::string, int> connections_per_ip_;
  uint64_t next_channel_id_ = 1;
  int64_t session_counter_ = 0;
  std::unique_ptr<sdk::Executor::Timer> tick_timer_, container_timer_, consensus_timer_,
      handover_timer_, handover_retry_timer_;
  struct ShutdownHandover {
    std::function<void()> then;
    bool done = false, waited = false;
  };
  void try_shutdown_handover(const std::shared_ptr<ShutdownHandover>& h);
  void finish_shutdown_handover(const std::shared_ptr<ShutdownHandover>& h, const sdk::Status& st);
  // Sessions whose clients were heard from since the leader last asked
  // (a follower reports them with its pings).
  std::vector<int64_t> touched_sessions_;
  SaslUsers sasl_users_;
  // The tree's digest after each of the last entries applied, for `hash`.
  std::deque<std::pair<sdk::Zxid, uint64_t>> digests_;
  // The version of the membership (the zxid of the reconfig that installed
  // it; 0 for the configured one), and a reconfig this leader proposed that
  // is not applied yet.
  sdk::Zxid config_version_ = 0;
  sdk::Zxid pending_reconfig_ = 0;
  bool snapshot_again_ = false;  // a reconfig was applied while a snapshot ran
  // A restore's pieces applied so far (replicated state: every member has
  // the same from the same log). No snapshot starts while one is open, so
  // that every snapshot is of a tree before a restore began or after it
  // ended, and a member loading one gets the rest from the log.
  struct RestoreStage {
    int64_t id = 0, total = 0;
    int32_t chunks = 0, received = 0;
    uint32_t crc = 0;
    sdk::Zxid backup_zxid = 0, began = 0;
    bool broken = false;  // a piece out of order: the end fails
    std::string bytes;
    int64_t progress_ms = 0;  // this server's clock when a piece last came
    int64_t abort_sent_ms = 0;
  };
  std::optional<RestoreStage> restore_stage_;
  bool snapshot_after_restore_ = false;  // a snapshot waits for the stage to close
  // The restore this server drives (one at a time).
  struct RestoreOp {
    int64_t id = 0;
    std::string file;       // what was sent (or the tree inflated from it)
    std::string_view body;  // in it: the tree, as DataTree::serialize writes it
    sdk::Zxid backup_zxid = 0;
    int32_t chunks = 0, submitted = 0, in_flight = 0;
    std::function<void(const sdk::Result<RestoreResult>&)> done;
  };
  std::unique_ptr<RestoreOp> restore_op_;
  void apply_restore(const sdk::LogEntry& entry);
  void restore_pump();
  // Ends this server's restore with `r`; an error also abandons its stage.
  void finish_restore(const sdk::Result<RestoreResult>& r);
  // The leader (or a standalone server) abandons a stage nobody drives: at
  // `now` after a role change, or when no piece came for a while.
  void abandon_stale_restore(bool now);
  void close_restore_stage();
  bool recovering_ = false;
  size_t replayed_ = 0;
  bool started_ = false, stopped_ = false;
  Snapshotter snapshotter_{io_};
  // Backups stream to a reader: the child waits once 8 MiB wait for it.
  Snapshotter backup_snapshotter_{io_, 8u << 20};
  std::vector<std::function<void(const sdk::Result<sdk::Zxid>&)>> snapshot_waiters_;

  sdk::Counter* m_writes_ = nullptr;
  sdk::Counter* m_connections_ = nullptr;
  sdk::Counter* m_refused_ = nullptr;
  sdk::Counter* m_throttled_ = nullptr;         // reading paused at an outstanding-request limit
  sdk::Counter* m_sessions_refused_ = nullptr;  // new sessions past server.session_create_rate
  sdk::Counter* m_watches_refused_ = nullptr;   // brought up to the watch manager's count
  int64_t outstanding_ = 0;
  std::unordered_set<Channel*> waiting_outstanding_;
  bool outstanding_wake_posted_ = false;
  // The session-creation token bucket.
  double session_tokens_ = 0;
  int64_t session_tokens_ms_ = -1;
  bool take_session_token();
  void wake_outstanding();
  size_t client_connections_ = 0;  // accepted on the client port and still open
  LogLimiter refusals_;
};

}  // namespace corral::kernel
