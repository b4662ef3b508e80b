#include "server/server.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "admin/admin_server.hpp"
#include "corral/common/msgpack.hpp"
#include "corral/common/random.hpp"
#include "corral/proto/jute.hpp"
#include "corral/proto/records.hpp"
#include "ensemble/reconfig.hpp"
#include "server/channel.hpp"
#include "tree/txn.hpp"

namespace corral::kernel {

using sdk::Errc;
using sdk::Status;

namespace {

// What this server proves to its peers and asks of them, from
// ensemble.secret(_file) or the JAAS file's quorum sections.
sdk::Result<PeerCredentials> peer_credentials(const Config& config) {
  const EnsembleConfig& ec = config.ensemble;
  PeerCredentials::Mode mode = PeerCredentials::Mode::required;
  parse_peer_auth_mode(ec.peer_auth, mode);
  if (!ec.secret_file.empty()) {
    auto secret = read_peer_secret(ec.secret_file);
    if (!secret) return secret.status();
    return PeerCredentials::shared(mode, std::move(secret.value()));
  }
  if (!ec.secret.empty()) return PeerCredentials::shared(mode, ec.secret);
  PeerCredentials c;
  c.mode = mode;
  if (ec.jaas_quorum_server.empty()) return c;
  const std::string& path = config.server.jaas_config;
  auto jaas = read_jaas_sections(path);
  if (!jaas) return Status{jaas.status().code(), "server.jaas_config: " + jaas.status().message()};
  auto users = jaas_users(jaas.value(), path, ec.jaas_quorum_server);
  if (!users)
    return Status{users.status().code(), "server.jaas_config: " + users.status().message()};
  for (auto& [name, password] : users.value()) c.accepted.emplace(name, password);
  auto learner = jaas.value().find(ec.jaas_quorum_learner);
  if (learner == jaas.value().end() || !learner->second.count("username") ||
      !learner->second.count("password"))
    return Status{Errc::invalid_argument,
                  "server.jaas_config: " + path + ": no \"" + ec.jaas_quorum_learner +
                      "\" section with username=\"...\" and password=\"...\" (the "
                      "name and password this server proves itself with to its peers)"};
  c.user = learner->second.at("username");
  c.key = learner->second.at("password");
  return c;
}

}  // namespace

Server::Server(boost::asio::io_context& io, Config config, std::string exe_path)
    : io_(io),
      config_(std::move(config)),
      exe_path_(std::move(exe_path)),
      executor_(io),
      log_(std::make_unique<StderrLogger>("corrald")),
      loader_(config_.server.plugin_dirs.empty() ? PluginLoader::default_dirs(exe_path_)
                                                 : config_.server.plugin_dirs),
      sessions_(config_.server.tick_ms) {
  sdk::LogLevel level;
  if (parse_log_level(config_.server.log_level, level)) log_->set_level(level);
  m_writes_ =
      metrics_.counter("corral_writes_submitted_total", "client writes handed to consensus");
  m_connections_ = metrics_.counter("corral_connections_total", "client connections accepted");
  m_refused_ =
      metrics_.counter("corral_connections_refused_total",
                       "client connections refused at a limit (max_cnxns, max_client_cnxns)");
  m_throttled_ =
      metrics_.counter("corral_requests_throttled_total",
                       "times a connection stopped being read at server.max_outstanding or "
                       "server.max_outstanding_per_session");
  m_sessions_refused_ = metrics_.counter("corral_sessions_refused_total",
                                         "new sessions refused past server.session_create_rate");
  m_watches_refused_ = metrics_.counter(
      "corral_watches_refused_total",
      "new watches refused past server.max_watch_bytes_per_connection or server.max_watch_bytes");
  metrics_.on_exposition([this] { refresh_metric_gauges(); });
  watches_.set_total_limit(static_cast<size_t>(config_.server.max_watch_bytes));
}

Server::~Server() { stop(); }

template <class Interface>
sdk::Result<std::shared_ptr<Interface>> Server::load_plugin(sdk::PluginKind kind,
                                                            const std::string& name) {
  auto made = loader_.create<Interface>(kind, name);
  if (!made) return made.status();
  std::string component = std::string(sdk::plugin_kind_name(kind)) + "." + name;
  auto host = std::make_unique<PluginHostImpl>(
      executor_, clock_, log_->child(component), metrics_,
      config_.plugin_table(sdk::plugin_kind_name(kind), name), info_);
  Status st = made.value()->init(*host);
  if (!st) return Status{st.code(), component + ": " + st.message()};
  plugin_hosts_.push_back(std::move(host));
  return made;
}

Status Server::start() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(config_.server.data_dir, ec);
  if (ec)
    return {Errc::io_error, "server.data_dir " + config_.server.data_dir + ": " + ec.message()};
  info_.server_id = config_.server.id;
  info_.version = kCorralVersion;
  info_.data_dir = fs::absolute(config_.server.data_dir).lexically_normal().string();
  info_.client_address = config_.server.client_address.to_string();
  info_.tick_ms = config_.server.tick_ms;
  looking_since_ms_ = clock_.steady_ms();

  if (!config_.server.jaas_config.empty()) {
    const std::string& path = config_.server.jaas_config;
    auto jaas = read_jaas_sections(path);
    if (!jaas) return {jaas.status().code(), "server.jaas_config: " + jaas.status().message()};
    // A file that only holds the quorum's sections leaves client SASL off.
    if (jaas.value().count("Server") || config_.ensemble.jaas_quorum_server.empty()) {
      auto users = jaas_users(jaas.value(), path, "Server");
      if (!users) return {users.status().code(), "server.jaas_config: " + users.status().message()};
      sasl_users_ = std::move(users.value());
      log_->info("SASL DIGEST-MD5 on, for " + std::to_string(sasl_users_.size()) + " users of " +
                 path);
    }
  }
  state_machine_.set_extended_types(config_.server.extended_types);
  tree_.set_enforce_quota(config_.server.enforce_quota);
  auto transport =
      load_plugin<sdk::Transport>(sdk::PluginKind::transport, config_.plugins.transport);
  if (!transport) return transport.status();
  transport_ = transport.value();
  const EnsembleConfig& ens = config_.ensemble;
  bool replicated_config = config_.plugins.consensus != "standalone";
  if (!config_.server.secure_client_address.empty() || config_.server.client_port_unification ||
      config_.server.admin_tls || (replicated_config && (ens.tls || ens.tls_port_unification))) {
    auto secure =
        load_plugin<sdk::Transport>(sdk::PluginKind::transport, config_.plugins.secure_transport);
    if (!secure) return secure.status();
    secure_transport_ = secure.value();
  }
  auto storage = load_plugin<sdk::Storage>(sdk::PluginKind::storage, config_.plugins.storage);
  if (!storage) return storage.status();
  storage_ = storage.value();
  auto consensus =
      load_plugin<sdk::Consensus>(sdk::PluginKind::consensus, config_.plugins.consensus);
  if (!consensus) return consensus.status();
  consensus_ = consensus.value();
  // Election and discovery serve ensembles; a standalone server loads and
  // checks them when named, so a wrong name fails at start, but does not run them.
  if (!config_.plugins.election.empty()) {
    auto e = load_plugin<sdk::Election>(sdk::PluginKind::election, config_.plugins.election);
    if (!e) return e.status();
    election_ = e.value();
  }
  if (!config_.plugins.discovery.empty()) {
    auto d = load_plugin<sdk::Discovery>(sdk::PluginKind::discovery, config_.plugins.discovery);
    if (!d) return d.status();
    discovery_ = d.value();
  }
  for (const std::string& name : config_.plugins.recipes) {
    auto r = load_plugin<sdk::Recipe>(sdk::PluginKind::recipe, name);
    if (!r) return r.status();
    pending_recipes_.push_back(r.value());
  }

  if (consensus_->traits().replicated && discovery_) {
    // Discovery names the members (and maybe this server's id); serving
    // begins on its first report, which may come during start() or later.
    Status st = discovery_->start(*this);
    if (!st) return {st.code(), "discovery." + config_.plugins.discovery + ": " + st.message()};
    if (fatal_) return *fatal_;
    if (!joined_)
      log_->info("waiting for discovery (" + config_.plugins.discovery +
                 ") to name the ensemble's members");
    return {};
  }
  return begin_serving();
}

Status Server::begin_serving() {
  if (consensus_->traits().replicated) {
    TcpPeerNetwork::Options po;
    po.listen_on_all_addresses = config_.ensemble.listen_on_all_addresses;
    po.handshake_timeout_ms = config_.ensemble.handshake_timeout_ms;
    auto credentials = peer_credentials(config_);
    if (!credentials) return credentials.status();
    po.credentials = std::move(credentials.value());
    log_->info(std::string("peer authentication: ") + peer_auth_mode_name(po.credentials.mode) +
               (po.credentials.key.empty() ? ", no key" : ", with a key"));
    const EnsembleConfig& ens = config_.ensemble;
    po.accept_plaintext = ens.tls_port_unification;
    if (ens.tls || ens.tls_port_unification)
      log_->info(std::string("peer links: ") +
                 (ens.tls ? "dialed over TLS" : "dialed in plaintext") + ", accepted " +
                 (ens.tls_port_unification ? "in TLS and plaintext (tls_port_unification)"
                                           : "in TLS only") +
                 "; a peer's certificate must name it");
    sdk::Transport& listen_on =
        ens.tls || ens.tls_port_unification ? *secure_transport_ : *transport_;
    sdk::Transport& dial_with = ens.tls ? *secure_transport_ : *transport_;
    peers_ = std::make_unique<TcpPeerNetwork>(
        listen_on, dial_with, executor_, *log_, config_.server.id, config_.ensemble.members,
        std::move(po),
        metrics_.counter("corral_peer_messages_rejected_total",
                         "peer messages that could not be handled and closed their link"));
    Status pst = peers_->start();
    if (!pst) return pst;
  }

  if (!config_.server.audit_log.empty()) {
    std::string path = config_.server.audit_log;
    if (path[0] != '/') path = info_.data_dir + "/" + path;
    audit_ = std::make_unique<AuditLog>(executor_, clock_);
    Status ast = audit_->open(path, config_.server.audit_log_max_bytes);
    if (!ast) return ast;
    log_->info("audit log in " + path);
  }

  Status st = recover();
  if (!st) return st;

  // The client port; with client_port_unification it takes TLS as well.
  bool unify = config_.server.client_port_unification;
  auto listener =
      (unify ? *secure_transport_ : *transport_)
          .listen(config_.server.client_address,
                  sdk::ListenOptions{sdk::StreamPurpose::client, unify},
                  [this](std::shared_ptr<sdk::Connection> c) { on_accept(std::move(c)); });
  if (!listener) return listener.status();
  listener_ = std::move(listener.value());
  if (!config_.server.secure_client_address.empty()) {
    sdk::Endpoint ep;
    sdk::parse_endpoint(config_.server.secure_client_address, ep);
    auto secure = secure_transport_->listen(
        ep, sdk::ListenOptions{sdk::StreamPurpose::client, false},
        [this](std::shared_ptr<sdk::Connection> c) { on_accept(std::move(c)); });
    if (!secure)
      return {secure.status().code(), "secure client port: " + secure.status().message()};
    secure_listener_ = std::move(secure.value());
    auto e = secure_listener_->local_endpoint();
    log_->info("serving clients over TLS on " + e.host + ":" + std::to_string(e.port) +
               " (transport " + config_.plugins.secure_transport + ")");
  }

  if (!config_.server.admin_address.empty()) {
    sdk::Endpoint ep;
    sdk::parse_endpoint(config_.server.admin_address, ep);
    admin_ = std::make_unique<AdminServer>(*this);
    st = admin_->start(config_.server.admin_tls ? *secure_transport_ : *transport_, ep,
                       config_.server.admin_tls);
    if (!st) return st;
  }

  started_ = true;
  for (auto& r : pending_recipes_) {
    st = r->start(*this);
    if (!st) return {st.code(), "recipe: " + st.message()};
    recipes_.push_back(r);
  }
  pending_recipes_.clear();
  tick_timer_ = executor_.schedule(
      std::chrono::milliseconds(std::max<int64_t>(10, config_.server.tick_ms / 2)),
      [this] { tick(); });
  consensus_tick();
  schedule_container_check();
  if (admin_)
    log_->info(std::string("admin endpoint on ") +
               (config_.server.admin_tls ? "https://" : "http://") + admin_endpoint().to_string() +
               "/commands and /metrics");
  if (audit_) audit_->server_event("serverStart");
  log_->info("serving clients on " + client_endpoint().to_string() + " (transport " +
             config_.plugins.transport + ", consensus " + config_.plugins.consensus + ", storage " +
             config_.plugins.storage + ", data_dir " + info_.data_dir + ")");
  return {};
}

void Server::fail(const Status& why) {
  if (fatal_) return;
  fatal_ = why;
  log_->error(why.message());
  stop();
  io_.stop();
}

Status Server::recover() {
  auto rec = storage_->open();
  if (!rec) return rec.status();
  sdk::RecoveredState& r = rec.value();
  const int64_t load_start = clock_.steady_ms();
  if (!r.snapshot.empty()) {
    auto tree = DataTree::deserialize(r.snapshot);
    if (!tree)
      return {tree.status().code(),
              "snapshot " + std::to_string(r.snapshot_zxid) + ": " + tree.status().message()};
    tree_ = std::move(tree.value());
    tree_.set_enforce_quota(config_.server.enforce_quota);
  }
  state_machine_.set_last_applied(r.snapshot_zxid);
  if (Status ast = adopt_membership_from_tree(); !ast) return ast;
  if (config_.server.force_new_ensemble)
    if (Status fst = force_new_ensemble(r.last_zxid); !fst) return fst;
  track_all_sessions();
  r.snapshot = {};
  r.snapshot_holder.reset();  // the tree is built: the snapshot's memory goes back
  const int64_t replay_start = clock_.steady_ms();
  // Consensus applies what of the log it knows to be committed.
  recovering_ = true;
  replayed_ = 0;
  Status st = consensus_->start(*this, r);
  recovering_ = false;
  if (!st) return st;
  if (replayed_ || r.snapshot_zxid)
    log_->info("recovered " + std::to_string(tree_.node_count()) + " znodes and " +
               std::to_string(tree_.sessions().size()) + " sessions (snapshot at zxid " +
               session_hex(r.snapshot_zxid) + " loaded in " +
               std::to_string(replay_start - load_start) + " ms, " + std::to_string(replayed_) +
               " log entries replayed in " + std::to_string(clock_.steady_ms() - replay_start) +
               " ms)");
  return {};
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (discovery_) discovery_->stop();
  for (auto& r : recipes_) r->stop();
  recipes_.clear();
  tick_timer_.reset();
  container_timer_.reset();
  handover_timer_.reset();
  handover_retry_timer_.reset();
  if (audit_) audit_->server_event("serverStop");
  listener_.reset();
  secure_listener_.reset();
  if (admin_) admin_->stop();
  std::vector<Channel*> open;
  for (auto& [id, ch] : channels_) open.push_back(ch.get());
  for (Channel* ch : open) ch->close("server shutting down");
  snapshotter_.cancel();
  backup_snapshotter_.cancel();
  consensus_timer_.reset();
  if (consensus_) consensus_->stop();
  if (peers_) peers_->stop();
  if (storage_) storage_->close();
  channels_.clear();
}

sdk::HttpRouter* Server::http() { return admin_.get(); }

sdk::Endpoint Server::admin_endpoint() const {
  return admin_ ? admin_->endpoint() : sdk::Endpoint{};
}

sdk::Endpoint Server::client_endpoint() const {
  return listener_ ? listener_->local_endpoint() : config_.server.client_address;
}

bool Server::serving() const {
  sdk::Role r = consensus_ ? consensus_->role() : sdk::Role::looking;
  return r != sdk::Role::looking;
}

sdk::ConsensusStatus Server::consensus_status() const {
  return consensus_ ? consensus_->status() : sdk::ConsensusStatus{};
}

void Server::consensus_tick() {
  consensus_->tick(clock_.steady_ms());
  consensus_timer_ =
      executor_.schedule(std::chrono::milliseconds(20), [this] { consensus_tick(); });
}

Status Server::submit(int32_t type, int64_t session, int32_t cxid, std::string_view payload,
                      const Ids& ids) {
  m_writes_->inc();
  return consensus_->submit(encode_txn(type, session, cxid, payload, ids));
}

void Server::sync(std::function<void(const Status&)> done) { consensus_->sync(std::move(done)); }

void Server::apply(const sdk::LogEntry& entry) {
  ApplyOutcome out = state_machine_.apply(entry);
  if (recovering_) ++replayed_;
  if (out.type == kRestoreTxn) apply_restore(entry);
  digests_.emplace_back(entry.zxid, tree_.digest());
  if (digests_.size() > 16) digests_.pop_front();
  if (out.type == kRestoreTxn) return;
  const auto type = static_cast<proto::OpCode>(out.type);
  if (type == proto::OpCode::create_session) {
    if (const SessionRecord* s = tree_.session(out.session))
      sessions_.track(out.session, s->timeout_ms, clock_.steady_ms());
  } else if (type == proto::OpCode::close_session) {
    sessions_.forget(out.session);
  }
  watches_.trigger(out.changes, entry.zxid, tree_);
  if (audit_) audit_->applied(out.session, out.cxid, out.err == proto::Err::ok);
  bool snapshot_now = false;
  if (type == proto::OpCode::reconfig) {
    if (entry.zxid >= pending_reconfig_) pending_reconfig_ = 0;
    if (auto members = membership_in(entry)) {
      sdk::Zxid version = entry.zxid;
      std::vector<sdk::PeerSpec> ignored;
      std::string why;
      if (const Node* n = tree_.find("/zookeeper/config"))
        parse_dynamic_config(n->data(), ignored, version, why);
      if (version <= config_version_) {
        // Older than the membership in force: a reconfig replayed after
        // --force-new-ensemble set a newer one. /zookeeper/config keeps
        // saying the one in force.
        log_->warn("the reconfig at " + session_hex(entry.zxid) +
                   " is older than the membership in force (version " +
                   session_hex(static_cast<int64_t>(config_version_)) + "); it does not apply");
        publish_config();
      } else {
        adopt_membership(std::move(*members), version,
                         "installed by the reconfig at " + session_hex(entry.zxid));
        // A restart must come back in this membership, so a snapshot holds
        // it at once rather than after the next snapshot_every_entries.
        snapshot_now = true;
      }
    }
  }
  if (snapshot_now && snapshotter_.running()) snapshot_again_ = true;
  if (!recovering_ && !snapshotter_.running() && (snapshot_now || storage_->snapshot_due()))
    take_snapshot(nullptr);
  auto it = session_channels_.find(out.session);
  if (it == session_channels_.end()) return;
  Channel* ch = it->second;
  if (type == proto::OpCode::create_session) {
    ch->on_session_created();
  } else if (type == proto::OpCode::close_session) {
    session_channels_.erase(it);
    if (!ch->on_applied(out, entry.zxid))
      ch->close("session " + session_hex(out.session) + " expired");
  } else {
    ch->on_applied(out, entry.zxid);
  }
}

void Server::take_snapshot(std::function<void(const sdk::Result<sdk::Zxid>&)> done) {
  if (done) snapshot_waiters_.push_back(std::move(done));
  if (snapshotter_.running() || stopped_) return;
  if (restore_stage_) {
    // Not in the middle of a restore: its pieces are not in a snapshot.
    snapshot_after_restore_ = true;
    return;
  }
  int64_t t0 = clock_.steady_ms();
  sdk::Zxid zxid = state_machine_.last_applied();
  size_t nodes = tree_.node_count();
  auto finish = [this, zxid](const sdk::Result<sdk::Zxid>& r) {
    auto waiters = std::move(snapshot_waiters_);
    snapshot_waiters_.clear();
    for (auto& w : waiters) w(r);
    if (snapshot_again_ && !stopped_) {
      snapshot_again_ = false;
      executor_.post([this] {
        if (!stopped_) take_snapshot(nullptr);
      });
    }
  };
  auto sink = storage_->begin_snapshot(zxid);
  if (!sink) {
    log_->warn("cannot start a snapshot: " + sink.status().to_string());
    finish(sink.status());
    return;
  }
  auto on_done = [this, zxid, nodes, t0, finish](const Status& st) {
    if (!st) {
      log_->warn("snapshot at zxid " + session_hex(zxid) + " failed: " + st.to_string());
      finish(st);
      return;
    }
    char how[96];
    if (snapshotter_.last_walked())
      std::snprintf(how, sizeof how, "walked between requests (%zu KiB of nodes kept for it)",
                    (snapshotter_.last_kept_peak() + 1023) >> 10);
    else
      std::snprintf(how, sizeof how, "written while serving (the fork paused it %.1f ms)",
                    static_cast<double>(snapshotter_.last_fork_us()) / 1000.0);
    log_->info("snapshot at zxid " + session_hex(zxid) + ": " + std::to_string(nodes) +
               " znodes in " + std::to_string(clock_.steady_ms() - t0) + " ms, " + how);
    metrics_.counter("corral_snapshots_total", "snapshots of the tree taken")->inc();
    finish(zxid);
  };
  if (config_.server.snapshot_method == "walk") {
    snapshotter_.set_walk_slice(static_cast<size_t>(config_.server.snapshot_walk_slice));
    snapshotter_.start_walk(tree_, std::move(sink.value()), std::move(on_done));
  } else {
    snapshotter_.start(tree_, std::move(sink.value()), std::move(on_done));
  }
}

Status Server::start_backup(
    const std::function<std::unique_ptr<sdk::SnapshotSink>(sdk::Zxid)>& make,
    std::function<void(const Status&)> done) {
  if (stopped_) return {Errc::unavailable, "the server is stopping"};
  if (backup_snapshotter_.running())
    return {Errc::unavailable, "a backup is being taken already; try again when it ends"};
  if (restore_stage_ || restore_op_)
    return {Errc::unavailable, "a restore is under way; try again when it ends"};
  const sdk::Zxid zxid = state_machine_.last_applied();
  const size_t nodes = tree_.node_count();
  const int64_t t0 = clock_.steady_ms();
  log_->info("backup at zxid " + session_hex(zxid) + " (" + std::to_string(nodes) +
             " znodes) started");
  backup_snapshotter_.start(
      tree_, make(zxid), [this, zxid, t0, done = std::move(done)](const Status& st) {
        if (st)
          log_->info("backup at zxid " + session_hex(zxid) + " sent in " +
                     std::to_string(clock_.steady_ms() - t0) + " ms");
        else
          log_->warn("backup at zxid " + session_hex(zxid) + " ended: " + st.to_string());
        if (done) done(st);
      });
  return {};
}

void Server::rejected(const sdk::LogEntry& entry, const Status& why) {
  TxnHeader h;
  if (!decode_txn(entry.body, h)) return;
  if (h.type == kRestoreTxn) {
    RestorePiece p;
    if (restore_op_ && decode_restore_payload(h.payload, p) && p.id == restore_op_->id)
      finish_restore(Status{why.code(), "a piece was not logged: " + why.message()});
    return;
  }
  log_->warn("write from session " + session_hex(h.session) + " failed: " + why.to_string());
  auto it = session_channels_.find(h.session);
  if (it == session_channels_.end()) return;
  if (h.type == static_cast<int32_t>(proto::OpCode::create_session)) {
    Channel* ch = it->second;
    session_channels_.erase(it);
    ch->close("cannot create a session: " + why.to_string());
    return;
  }
  if (audit_) audit_->applied(h.session, h.cxid, false);
  it->second->on_rejected(h.cxid, h.type, proto::Err::system_error);
}

Status Server::load_snapshot(sdk::Zxid zxid, sdk::BytesView snapshot) {
  auto tree = DataTree::deserialize(snapshot);
  if (!tree) return tree.status();
  tree_ = std::move(tree.value());
  tree_.set_enforce_quota(config_.server.enforce_quota);
  if (Status ast = adopt_membership_from_tree(); !ast) log_->warn(ast.message());
  state_machine_.set_last_applied(zxid);
  sessions_.clear();
  track_all_sessions();
  // No snapshot is taken inside a restore: a stage open here is one this
  // server will never see the rest of (the leader's snapshot is of a tree
  // before it began, whose log brings it again, or after it ended).
  if (restore_stage_) close_restore_stage();
  if (restore_op_)
    finish_restore(
        Status{Errc::unavailable,
               "this server was brought up to date from the leader's snapshot meanwhile; "
               "whether the restore took effect, the tree says"});
  log_->info("loaded the leader's snapshot at zxid " + session_hex(zxid) + ": " +
             std::to_string(tree_.node_count()) + " znodes, " +
             std::to_string(tree_.sessions().size()) + " sessions");
  return {};
}

void Server::role_changed(sdk::Role role, sdk::ServerId leader, uint32_t epoch) {
  // A reconfig this server proposed as leader is now the next leader's to
  // commit or drop.
  pending_reconfig_ = 0;
  log_->info(std::string("role is now ") + sdk::role_name(role) + " (leader " +
             std::to_string(leader) + ", epoch " + std::to_string(epoch) + ")");
  if (forced_snapshot_due_ && role == sdk::Role::leading) {
    // The forced membership lives in /zookeeper/config: a snapshot keeps it
    // across a restart without the flag.
    forced_snapshot_due_ = false;
    take_snapshot([this](const sdk::Result<sdk::Zxid>& r) {
      if (r)
        log_->warn("the new ensemble's membership is in the snapshot at zxid " +
                   session_hex(r.value()) + "; restart without --force-new-ensemble from now on");
      else
        log_->error("the snapshot that keeps the new ensemble's membership failed (" +
                    r.status().to_string() + "): restart with --force-new-ensemble again");
    });
  }
  if (role != sdk::Role::looking)
    looking_since_ms_ = -1;
  else if (looking_since_ms_ < 0)
    looking_since_ms_ = clock_.steady_ms();
  if (role == sdk::Role::looking) {
    if (restore_op_) finish_restore(Status{Errc::unavailable, "this server lost its leader"});
    std::vector<Channel*> open;
    for (auto& [id, ch] : channels_) open.push_back(ch.get());
    for (Channel* ch : open) ch->close("this server lost its leader");
  } else {
    // Read-only sessions end with the ensemble's return: their clients
    // reconnect and get read-write sessions (as ZooKeeper's read-only server
    // shuts down).
    std::vector<Channel*> read_only;
    for (auto& [id, ch] : channels_)
      if (ch->read_only()) read_only.push_back(ch.get());
    for (Channel* ch : read_only)
      ch->close("this server has a leader again: read-only session ends");
    if (restore_stage_ && (role == sdk::Role::leading || role == sdk::Role::standalone))
      executor_.post([this, id = restore_stage_->id] {
        // (Only the stage open at the role change, not one begun since.)
        if (!stopped_ && restore_stage_ && restore_stage_->id == id) abandon_stale_restore(true);
      });
    if (role == sdk::Role::leading) {
      // The new leader owns session expiry: every session gets a full timeout
      // from now, as in ZooKeeper, since its clients may be moving here.
      track_all_sessions();
      // With reconfig enabled, the configured membership (version 0) takes
      // the version of the first epoch that leads it, as ZooKeeper's does
      // (version=100000000 for epoch 1), through the log so every member
      // agrees.
      if (config_.ensemble.reconfig_enabled && config_version_ == 0) {
        executor_.post([this, epoch] {
          if (stopped_ || this->role() != sdk::Role::leading || config_version_ != 0 ||
              consensus_->epoch() != epoch)
            return;
          std::string text =
              format_dynamic_config(config_.ensemble.members, sdk::make_zxid(epoch, 0));
          if (Status st = consensus_->submit(encode_reconfig_txn(0, 0, 0, text)); !st)
            log_->warn("cannot version the configured membership: " + st.to_string());
        });
      }
    }
  }
}

sdk::Role Server::role() const { return consensus_ ? consensus_->role() : sdk::Role::looking; }

std::string Server::mode() const { return sdk::role_name(role()); }

}  // namespace corral::kernel
