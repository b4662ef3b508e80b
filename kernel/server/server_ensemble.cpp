// The server in its ensemble: members as discovery names them, the
// membership a reconfig installs, and /zookeeper/config.
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
#include "server/server.hpp"
#include "tree/txn.hpp"

namespace corral::kernel {

void Server::transfer_leadership(sdk::ServerId to, std::function<void(const sdk::Status&)> done) {
  if (stopped_ || !consensus_)
    return executor_.post([done = std::move(done)] {
      done(sdk::Status(sdk::Errc::unavailable, "the server is stopping"));
    });
  if (!consensus_->traits().replicated)
    return executor_.post([done = std::move(done)] {
      done(sdk::Status(sdk::Errc::incompatible,
                       "a standalone server has no leadership to hand over"));
    });
  consensus_->transfer_leadership(to, false, std::move(done));
}

void Server::shutdown_gracefully(std::function<void()> then) {
  const int64_t wait = config_.server.shutdown_handover_ms;
  if (stopped_ || !consensus_ || !consensus_->traits().replicated || role() != sdk::Role::leading ||
      wait <= 0)
    return then();
  log_->info("handing the leadership over before stopping (up to " + std::to_string(wait) +
             " ms, server.shutdown_handover_ms)");
  auto h = std::make_shared<ShutdownHandover>();
  h->then = std::move(then);
  handover_timer_ = executor_.schedule(std::chrono::milliseconds(wait), [this, h, wait] {
    finish_shutdown_handover(h,
                             sdk::Status(sdk::Errc::unavailable,
                                         "no new leader within " + std::to_string(wait) + " ms"));
  });
  try_shutdown_handover(h);
}

void Server::try_shutdown_handover(const std::shared_ptr<ShutdownHandover>& h) {
  if (h->done) return;
  // The handover waited for moved the leadership: nothing is left to hand.
  if (role() != sdk::Role::leading) return finish_shutdown_handover(h, {});
  consensus_->transfer_leadership(0, true, [this, h](const sdk::Status& st) {
    if (h->done) return;
    if (st.code() != sdk::Errc::already_exists) return finish_shutdown_handover(h, st);
    if (!h->waited)
      log_->info("a leader handover is under way (" + st.message() +
                 "); waiting for it before stopping");
    h->waited = true;
    handover_retry_timer_ =
        executor_.schedule(std::chrono::milliseconds(20), [this, h] { try_shutdown_handover(h); });
  });
}

void Server::finish_shutdown_handover(const std::shared_ptr<ShutdownHandover>& h,
                                      const sdk::Status& st) {
  if (h->done) return;
  h->done = true;
  handover_retry_timer_.reset();
  if (st)
    log_->info("handed the leadership to server " + std::to_string(consensus_->leader()) +
               "; stopping");
  else
    log_->warn("cannot hand the leadership over (" + st.message() + "); stopping anyway");
  auto next = std::move(h->then);
  next();
}

using sdk::Errc;
using sdk::Status;

void Server::members_replaced(std::vector<sdk::PeerSpec> members, sdk::ServerId self) {
  if (stopped_) return;
  std::sort(members.begin(), members.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  if (joined_) {
    for (const auto& m : members) {
      const sdk::PeerSpec* known = config_.ensemble.member(m.id);
      if (!known || format_member(*known) != format_member(m)) member_updated(m);
    }
    return;
  }
  const std::string who = "discovery." + config_.plugins.discovery;
  size_t voters = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    voters += members[i].observer ? 0 : 1;
    if (members[i].id <= 0 || (i && members[i].id == members[i - 1].id))
      return fail({Errc::invalid_argument,
                   who + " named server id " + std::to_string(members[i].id) +
                       (members[i].id <= 0 ? ", which is not a positive integer" : " twice")});
  }
  if (voters == 0)
    return fail({Errc::invalid_argument, who + " named no participant (every member an observer)"});
  if (config_.server.id_set && self != config_.server.id)
    return fail({Errc::invalid_argument, who + " says this server is " + std::to_string(self) +
                                             " but server.id says " +
                                             std::to_string(config_.server.id)});
  auto mine =
      std::find_if(members.begin(), members.end(), [&](const auto& m) { return m.id == self; });
  if (self <= 0 || mine == members.end())
    return fail({Errc::invalid_argument, who + " named no entry for this server (id " +
                                             std::to_string(self) +
                                             "); give each server its own id"});
  config_.ensemble.members = std::move(members);
  config_.server.id = self;
  config_.server.id_set = true;
  info_.server_id = self;
  std::string list;
  for (const auto& m : config_.ensemble.members)
    list += (list.empty() ? "" : ", ") + std::to_string(m.id) + "=" + format_member(m);
  log_->info(who + " named the ensemble: " + list + "; this server is " + std::to_string(self));
  joined_ = true;
  Status st = begin_serving();
  if (!st) fail(st);
}

void Server::member_updated(const sdk::PeerSpec& member) {
  if (!joined_ || stopped_) return;
  auto& members = config_.ensemble.members;
  auto it = std::find_if(members.begin(), members.end(),
                         [&](const auto& m) { return m.id == member.id; });
  if (it == members.end()) {
    if (strangers_.insert(member.id).second)
      log_->warn("discovery found server " + std::to_string(member.id) + " (" +
                 format_member(member) +
                 "), which is not a member of this ensemble: its members are fixed when it starts");
    return;
  }
  if (it->observer != member.observer) {
    log_->warn("discovery says server " + std::to_string(member.id) + " is now " +
               (member.observer ? "an observer" : "a participant") +
               "; its role is fixed when the ensemble starts");
  }
  sdk::PeerSpec next = member;
  next.observer = it->observer;
  // The same spec again means its name now resolves elsewhere: links to the
  // old address close all the same.
  bool same = format_member(next) == format_member(*it);
  log_->info("server " + std::to_string(member.id) + " moved: " +
             (same ? format_member(next) + " resolves to a new address"
                   : format_member(*it) + " -> " + format_member(next)));
  *it = next;
  if (peers_) peers_->update_member(next);
  if (!same) publish_config();
}

void Server::member_removed(sdk::ServerId id) {
  if (!joined_ || stopped_) return;
  if (!config_.ensemble.member(id)) return;
  log_->info("discovery lost server " + std::to_string(id) +
             "; it still counts towards the quorum");
  if (peers_) peers_->drop_links(id);
}

void Server::discovery_failed(const Status& why) {
  fail({why.code(), "discovery." + config_.plugins.discovery + ": " + why.message()});
}

void Server::publish_config() {
  if (config_.ensemble.members.empty()) return;
  tree_.set_config(format_dynamic_config(config_.ensemble.members, config_version_));
}

// ---------------------------------------------------------------- reconfig

proto::Err Server::plan_reconfig(std::string_view payload, int64_t session, const Ids& ids,
                                 sdk::Zxid zxid, std::string& text) {
  proto::ReconfigRequest req;
  proto::JuteReader r(payload);
  if (!proto::read(r, req)) return proto::Err::marshalling_error;
  ReconfigState s;
  s.enabled = config_.ensemble.reconfig_enabled;
  s.session_alive = tree_.session(session) != nullptr;
  s.pending = pending_reconfig_ != 0;
  s.version = config_version_;
  s.members = config_.ensemble.members;
  s.self = config_.server.id;
  for (const auto& l : consensus_->status().learners)
    if (l.synced) s.synced_learners.push_back(l.id);
  const Node* n = tree_.find("/zookeeper/config");
  s.may_write_config = n && permitted(tree_.acl(*n), proto::perm::write, ids);
  ReconfigPlan plan = kernel::plan_reconfig(req, s);
  if (plan.err != proto::Err::ok) {
    log_->info("reconfig refused: " + plan.why);
    return plan.err;
  }
  text = format_dynamic_config(plan.next, zxid);
  return proto::Err::ok;
}

void Server::prepare(sdk::LogEntry& entry) {
  if (txn_type(entry.body) != static_cast<int32_t>(proto::OpCode::reconfig)) return;
  TxnHeader h;
  std::string text;
  proto::Err err = decode_txn(entry.body, h)
                       ? plan_reconfig(h.payload, h.session, h.ids, entry.zxid, text)
                       : proto::Err::marshalling_error;
  entry.body = encode_reconfig_txn(h.session, h.cxid, static_cast<int32_t>(err), text);
  if (err == proto::Err::ok) pending_reconfig_ = entry.zxid;
}

std::optional<std::vector<sdk::PeerSpec>> Server::membership_in(const sdk::LogEntry& entry) {
  if (txn_type(entry.body) != kReconfigTxn) return std::nullopt;
  TxnHeader h;
  if (!decode_txn(entry.body, h)) return std::nullopt;
  int32_t err = 0;
  std::string_view text;
  if (!decode_reconfig_payload(h.payload, err, text) || err != 0) return std::nullopt;
  std::vector<sdk::PeerSpec> members;
  sdk::Zxid version = 0;
  std::string why;
  if (!parse_dynamic_config(text, members, version, why)) return std::nullopt;
  return members;
}

void Server::adopt_membership(std::vector<sdk::PeerSpec> members, sdk::Zxid version,
                              const std::string& why) {
  std::string list;
  for (const auto& m : members)
    list += (list.empty() ? "" : ", ") + std::to_string(m.id) + "=" + format_member(m);
  log_->info("membership version " + session_hex(static_cast<int64_t>(version)) + " (" + why +
             "): " + list);
  config_.ensemble.members = std::move(members);
  config_version_ = version;
  if (peers_) peers_->set_members(config_.ensemble.members);
}

Status Server::force_new_ensemble(sdk::Zxid last_zxid) {
  if (config_.ensemble.members.empty())
    return {Errc::invalid_argument,
            "--force-new-ensemble starts a new ensemble from a member of one; this server runs "
            "standalone"};
  const sdk::PeerSpec* me = config_.ensemble.member(config_.server.id);
  if (!me)
    return {Errc::invalid_argument, "--force-new-ensemble: this server (id " +
                                        std::to_string(config_.server.id) +
                                        ") is not in its own membership"};
  sdk::PeerSpec self = *me;
  self.observer = false;  // an observer holds the committed data too: it leads now
  std::string former;
  for (const auto& m : config_.ensemble.members)
    if (m.id != self.id) former += (former.empty() ? "" : ", ") + std::to_string(m.id);
  const sdk::Zxid version = std::max(config_version_, last_zxid) + 1;
  log_->warn("==== FORCING A NEW ENSEMBLE (--force-new-ensemble) ====");
  log_->warn("server " + std::to_string(self.id) +
             " starts a new ensemble of one from its own data (last zxid " +
             session_hex(last_zxid) + "), in a new epoch; servers " +
             (former.empty() ? std::string("(none)") : former) +
             " are no longer members. What this server logged is kept; writes only the lost "
             "members held are gone. Add servers back with reconfig -add, each started with an "
             "empty data directory and the new membership; restart this one without the flag");
  adopt_membership({self}, version, "forced by --force-new-ensemble");
  publish_config();
  forced_snapshot_due_ = true;
  return {};
}

Status Server::adopt_membership_from_tree() {
  const Node* n = tree_.find("/zookeeper/config");
  std::vector<sdk::PeerSpec> members;
  sdk::Zxid version = 0;
  std::string why;
  if (n && !n->data().empty() && parse_dynamic_config(n->data(), members, version, why) &&
      version > config_version_ && !members.empty() && !config_.ensemble.members.empty()) {
    adopt_membership(std::move(members), version, "installed by a reconfig, from the snapshot");
    if (!config_.ensemble.member(config_.server.id))
      return {Errc::invalid_argument, "this server (id " + std::to_string(config_.server.id) +
                                          ") is not a member of the ensemble since the " +
                                          "reconfig at " +
                                          session_hex(static_cast<int64_t>(version)) +
                                          "; to add it back, run reconfig -add on the ensemble and "
                                          "start it with an empty data directory"};
  }
  publish_config();
  return {};
}

}  // namespace corral::kernel
