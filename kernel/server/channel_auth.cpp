// Who a connection is: ZooKeeper's addAuth (digest, and the ip scheme a
// connection has from its address) and SASL DIGEST-MD5.
#include <algorithm>

#include "corral/proto/jute.hpp"
#include "server/channel.hpp"
#include "server/channel_host.hpp"
#include "server/server_stats.hpp"
#include "tree/data_tree.hpp"
#include "tree/state_machine.hpp"
#include "watch/watch_manager.hpp"

namespace corral::kernel {

using proto::Err;
using proto::JuteReader;
using proto::JuteWriter;
using proto::OpCode;

void Channel::handle_auth(int32_t xid, JuteReader& r, int64_t now) {
  proto::AuthPacket auth;
  if (!proto::read(r, auth)) {
    queue_.push_back({Pending::done, xid, static_cast<int32_t>(OpCode::auth), now,
                      error_frame(xid, Err::marshalling_error)});
    return;
  }
  auto add = [&](proto::Id id) {
    if (std::find(auth_ids_.begin(), auth_ids_.end(), id) == auth_ids_.end())
      auth_ids_.push_back(std::move(id));
  };
  if (auth.scheme == "digest") {
    std::string id = digest_of(auth.auth);
    const std::string& super = server_.config().server.super_digest;
    if (!super.empty() && id == super) add({"super", ""});
    add({"digest", id});
  } else if (auth.scheme == "ip" && !auth_ids_.empty() && auth_ids_.front().scheme == "ip") {
    // ZooKeeper's ip provider authenticates the connection's own address.
  } else {
    // As ZooKeeper: AUTHFAILED, then the connection closes.
    server_.log().info("authentication with unknown scheme '" + auth.scheme + "' from " +
                       link_->remote_address());
    queue_.push_back({Pending::done, xid, static_cast<int32_t>(OpCode::auth), now,
                      error_frame(xid, Err::auth_failed)});
    close_after_.insert(xid);
    return;
  }
  std::string f;
  JuteWriter w(f);
  size_t at = w.begin_frame();
  proto::write(w, proto::ReplyHeader{xid, 0, 0});
  w.finish_frame(at);
  queue_.push_back({Pending::done, xid, static_cast<int32_t>(OpCode::auth), now, std::move(f)});
}

void Channel::handle_sasl(int32_t xid, JuteReader& r, int64_t now) {
  std::string token(r.read_buffer());
  if (!r.ok()) {
    queue_.push_back({Pending::done, xid, static_cast<int32_t>(OpCode::sasl), now,
                      error_frame(xid, Err::marshalling_error)});
    return;
  }
  if (!sasl_)
    sasl_ = std::make_unique<DigestMd5Server>(*server_.sasl_users(), server_.random_token());
  auto next = sasl_->step(token);
  if (!next) {
    // As ZooKeeper: a failed SASL authentication ends the connection, here a
    // second later, reading nothing meanwhile, so that guessing passwords
    // costs a connection and a second a guess.
    server_.log().info("SASL authentication from " + link_->remote_address() +
                       " failed: " + next.status().message());
    sasl_.reset();
    link_->pause_reading(true);
    failed_login_ = executor_.schedule(kFailedLoginDelay, [this, alive = alive_.ref()] {
      if (alive) close("SASL authentication failed");
    });
    return;
  }
  if (!sasl_->ignored_authzid().empty())
    server_.log().info("SASL user '" + sasl_->username() + "' from " + link_->remote_address() +
                       " asked to act as '" + sasl_->ignored_authzid() + "'; it acts as itself");
  if (sasl_->complete()) {
    proto::Id id{"sasl", sasl_->username()};
    if (std::find(auth_ids_.begin(), auth_ids_.end(), id) == auth_ids_.end())
      auth_ids_.push_back(std::move(id));
    sasl_.reset();
  }
  std::string f;
  JuteWriter w(f);
  size_t at = w.begin_frame();
  proto::write(w, proto::ReplyHeader{xid, 0, 0});
  w.write_buffer(next.value());
  w.finish_frame(at);
  queue_.push_back({Pending::done, xid, static_cast<int32_t>(OpCode::sasl), now, std::move(f)});
}

}  // namespace corral::kernel
