// The server's sessions: opening, re-attaching and expiring them, the
// session-creation rate, read-only sessions, the activity followers report
// to the leader, and the container sweep.
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

using sdk::Errc;
using sdk::Status;

void Server::track_all_sessions() {
  int64_t now = clock_.steady_ms();
  for (const auto& [id, s] : tree_.sessions()) sessions_.track(id, s.timeout_ms, now);
}

int32_t Server::negotiate_timeout(int32_t requested) const {
  int64_t t = std::clamp<int64_t>(requested, config_.server.min_session_timeout(),
                                  config_.server.max_session_timeout());
  return static_cast<int32_t>(t);
}

int64_t Server::next_session_id() {
  if (session_counter_ == 0) {
    // ZooKeeper's layout: server id in the top byte, start time below, so ids
    // stay unique across restarts and servers.
    uint64_t base = (static_cast<uint64_t>(clock_.wall_ms()) << 24) >> 8;
    session_counter_ =
        static_cast<int64_t>(base | (static_cast<uint64_t>(config_.server.id) << 56));
  }
  int64_t id = ++session_counter_;
  while (id == 0 || tree_.session(id)) id = ++session_counter_;
  return id;
}

bool Server::take_session_token() {
  const auto& sc = config_.server;
  if (sc.session_create_rate == 0) return true;
  int64_t now = clock_.steady_ms();
  double burst = static_cast<double>(sc.session_create_burst);
  if (session_tokens_ms_ < 0)
    session_tokens_ = burst;
  else
    session_tokens_ =
        std::min(burst, session_tokens_ + static_cast<double>(now - session_tokens_ms_) *
                                              static_cast<double>(sc.session_create_rate) / 1000.0);
  session_tokens_ms_ = now;
  if (session_tokens_ < 1.0) return false;
  session_tokens_ -= 1.0;
  return true;
}

Status Server::create_session(Channel& ch, int32_t timeout_ms, int64_t& id, std::string& password) {
  if (ch.external() && !take_session_token()) {
    m_sessions_refused_->inc();
    refusals_.warn(*log_, "refusing a new session from " + ch.remote_address() + ": more than " +
                              std::to_string(config_.server.session_create_rate) +
                              " a second (server.session_create_rate)");
    return {sdk::Errc::unavailable, "more than " +
                                        std::to_string(config_.server.session_create_rate) +
                                        " new sessions a second (server.session_create_rate)"};
  }
  id = next_session_id();
  password = common::secure_random_bytes(16);
  session_channels_[id] = &ch;
  Status st = consensus_->submit(encode_txn(static_cast<int32_t>(proto::OpCode::create_session), id,
                                            0, session_payload(timeout_ms, password)));
  if (!st) session_channels_.erase(id);
  return st;
}

bool Server::reattach_session(Channel& ch, int64_t id, std::string_view password,
                              int32_t timeout_ms) {
  const SessionRecord* s = tree_.session(id);
  if (!s || s->password != password || !sessions_.touch(id, clock_.steady_ms())) return false;
  auto it = session_channels_.find(id);
  if (it != session_channels_.end() && it->second != &ch) {
    Channel* old = it->second;
    session_channels_.erase(it);
    old->close("session " + session_hex(id) + " moved to a new connection");
  }
  session_channels_[id] = &ch;
  sessions_.track(id, timeout_ms, clock_.steady_ms());
  if (peers_) touched_sessions_.push_back(id);
  return true;
}

bool Server::touch_session(int64_t id) {
  if (!sessions_.touch(id, clock_.steady_ms())) return false;
  if (peers_) touched_sessions_.push_back(id);
  return true;
}

std::string Server::random_token() {
  unsigned char raw[16];
  common::secure_random(raw, sizeof raw);
  unsigned char b64[32];
  int n = EVP_EncodeBlock(b64, raw, sizeof raw);
  return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

bool Server::read_only_session(int64_t id, std::string_view password, int64_t& out_id,
                               std::string& out_password) {
  if (id != 0) {
    const SessionRecord* s = tree_.session(id);
    if (!s || s->password != password) return false;
    out_id = id;
    out_password = std::string(password);
    return true;
  }
  out_id = next_session_id();
  out_password = common::secure_random_bytes(16);
  return true;
}

sdk::Bytes Server::take_session_activity() {
  // Every session attached here counts as heard from: its client pings this
  // server, not the leader.
  for (const auto& [id, ch] : session_channels_) touched_sessions_.push_back(id);
  std::sort(touched_sessions_.begin(), touched_sessions_.end());
  touched_sessions_.erase(std::unique(touched_sessions_.begin(), touched_sessions_.end()),
                          touched_sessions_.end());
  sdk::Bytes out;
  common::MsgpackWriter w(out);
  w.array(static_cast<uint32_t>(touched_sessions_.size()));
  for (int64_t id : touched_sessions_) w.integer(id);
  touched_sessions_.clear();
  return out;
}

void Server::session_activity(sdk::ServerId from, sdk::BytesView activity) {
  common::MsgpackReader r(activity);
  uint32_t n = r.array();
  int64_t now = clock_.steady_ms();
  for (uint32_t i = 0; i < n && r.ok(); ++i) sessions_.touch(r.integer(), now);
  if (!r.ok())
    log_->warn("ignoring malformed session activity from server " + std::to_string(from));
}

void Server::schedule_container_check() {
  container_timer_ = executor_.schedule(
      std::chrono::milliseconds(config_.server.container_check_interval_ms), [this] {
        // The server that orders writes deletes empty containers and expired TTL
        // nodes, through the log like any write, as ZooKeeper's ContainerManager.
        if (consensus_->role() == sdk::Role::standalone ||
            consensus_->role() == sdk::Role::leading) {
          for (const std::string& path : tree_.expired_containers(clock_.wall_ms())) {
            std::string payload;
            proto::JuteWriter w(payload);
            w.write_string(path);
            Status st = consensus_->submit(
                encode_txn(static_cast<int32_t>(proto::OpCode::delete_container), 0, 0, payload));
            if (!st) break;
          }
        }
        schedule_container_check();
      });
}

void Server::tick() {
  int64_t now = clock_.steady_ms();
  abandon_stale_restore(false);
  // Only the server that orders writes expires sessions; others keep their
  // bookkeeping from growing unbounded.
  if (consensus_->role() == sdk::Role::standalone || consensus_->role() == sdk::Role::leading) {
    for (int64_t id : sessions_.take_expired(now)) {
      log_->info("session " + session_hex(id) + " expired");
      Status st = consensus_->submit(
          encode_txn(static_cast<int32_t>(proto::OpCode::close_session), id, 0, {}));
      if (!st) {
        // Try again on a later tick: an expired session must not linger.
        log_->warn("cannot expire session " + session_hex(id) + " now: " + st.to_string());
        sessions_.track(id, static_cast<int32_t>(config_.server.tick_ms), now);
      }
    }
  }
  tick_timer_ = executor_.schedule(
      std::chrono::milliseconds(std::max<int64_t>(10, config_.server.tick_ms / 2)),
      [this] { tick(); });
}

}  // namespace corral::kernel
