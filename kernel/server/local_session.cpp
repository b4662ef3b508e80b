// A recipe's in-process session: the ZooKeeper protocol without a socket.
// Requests are encoded as a client would encode them and fed to a Channel, so
// recipes get exactly the ordering, watch and session semantics of clients.
#include <deque>
#include <unordered_map>

#include "corral/proto/jute.hpp"
#include "server/channel.hpp"
#include "server/server.hpp"

namespace corral::kernel {

using proto::Err;
using proto::JuteReader;
using proto::JuteWriter;
using proto::OpCode;

namespace {

struct SessionState : std::enable_shared_from_this<SessionState> {
  Server* server = nullptr;
  Channel* channel = nullptr;  // null once closed
  int64_t session_id = 0;
  int32_t timeout_ms = 0;
  int32_t next_xid = 1;
  bool connected = false;
  bool close_requested = false;
  bool drain_posted = false;
  std::string in;
  struct Call {
    int32_t type;
    sdk::TreeCallback done;
  };
  std::unordered_map<int32_t, Call> calls;
  // act_as: the identities requests now go out with, and requests held back
  // until those sent before an identity change are answered (the channel
  // checks reads when it answers them, so a change must wait for them).
  std::vector<proto::Id> acting;
  struct Held {
    std::string frame;
    bool identity_change;
  };
  std::deque<Held> held;
  size_t unanswered = 0;  // requests sent, replies not yet in
  sdk::WatchCallback on_event;
  std::unique_ptr<sdk::Executor::Timer> ping_timer;

  void deliver(sdk::BytesView bytes);
  void drain();
  // Sends a request frame, or holds it behind an identity change.
  void send_request(std::string frame, bool identity_change);
  void flush_held();
  void handle_frame(sdk::BytesView frame);
  void lost();
};

class InProcessLink final : public ChannelLink {
 public:
  explicit InProcessLink(std::weak_ptr<SessionState> s) : s_(std::move(s)) {}
  void send(sdk::Bytes bytes) override {
    if (auto s = s_.lock()) s->deliver(bytes);
  }
  void close() override {
    if (auto s = s_.lock()) {
      // Let replies already delivered run first.
      s->server->executor().post([w = s_] {
        if (auto st = w.lock()) st->lost();
      });
    }
  }
  std::string remote_address() const override { return "in-process"; }
  bool bounded() const override { return false; }

 private:
  std::weak_ptr<SessionState> s_;
};

void SessionState::deliver(sdk::BytesView bytes) {
  in.append(bytes);
  // Replies reach the recipe from the loop, never from inside the channel
  // that is still sending them: a callback may issue the next request at once.
  if (drain_posted) return;
  drain_posted = true;
  server->executor().post([weak = weak_from_this()] {
    if (auto s = weak.lock()) s->drain();
  });
}

void SessionState::drain() {
  drain_posted = false;
  size_t pos = 0;
  while (in.size() - pos >= 4) {
    JuteReader r(std::string_view(in).substr(pos, 4));
    size_t len = static_cast<size_t>(r.read_int());
    if (in.size() - pos - 4 < len) break;
    std::string frame = in.substr(pos + 4, len);
    pos += 4 + len;
    handle_frame(frame);
  }
  in.erase(0, pos);
}

void SessionState::handle_frame(sdk::BytesView frame) {
  JuteReader r(frame);
  if (!connected) {
    proto::ConnectResponse rsp;
    proto::read(r, rsp);
    session_id = rsp.session_id;
    timeout_ms = rsp.timeout_ms;
    connected = true;
    return;
  }
  proto::ReplyHeader h;
  if (!proto::read(r, h)) return;
  if (h.xid == proto::kXidNotification) {
    proto::WatcherEvent ev;
    if (proto::read(r, ev) && on_event) on_event(ev);
    return;
  }
  auto it = calls.find(h.xid);
  if (it == calls.end()) return;  // pings
  Call call = std::move(it->second);
  calls.erase(it);
  if (unanswered > 0) --unanswered;
  flush_held();
  sdk::TreeResult res;
  if (!proto::decode_response(call.type, static_cast<Err>(h.err), frame.substr(r.position()), res))
    res.err = Err::marshalling_error;
  if (call.done) call.done(res);
}

void SessionState::send_request(std::string frame, bool identity_change) {
  if (!channel) return;
  if (!held.empty() || (identity_change && unanswered > 0)) {
    held.push_back({std::move(frame), identity_change});
    return;
  }
  if (!identity_change) ++unanswered;
  channel->on_bytes(frame);
}

void SessionState::flush_held() {
  while (channel && !held.empty()) {
    if (held.front().identity_change && unanswered > 0) return;
    Held h = std::move(held.front());
    held.pop_front();
    if (!h.identity_change) ++unanswered;
    channel->on_bytes(h.frame);
  }
}

void SessionState::lost() {
  if (!channel && calls.empty()) return;
  channel = nullptr;
  connected = false;
  ping_timer.reset();
  auto pending = std::move(calls);
  calls.clear();
  held.clear();
  unanswered = 0;
  for (auto& [xid, call] : pending) {
    sdk::TreeResult res;
    res.err = Err::connection_loss;
    if (call.done) call.done(res);
  }
  if (!close_requested && on_event) {
    bool expired = server->tree().session(session_id) == nullptr;
    on_event({static_cast<int32_t>(proto::EventType::none),
              static_cast<int32_t>(expired ? proto::KeeperState::expired
                                           : proto::KeeperState::disconnected),
              ""});
  }
}

class LocalSession final : public sdk::TreeSession {
 public:
  LocalSession(Server& server, int32_t timeout_ms, sdk::WatchCallback on_event)
      : s_(std::make_shared<SessionState>()) {
    s_->server = &server;
    s_->on_event = std::move(on_event);
    s_->channel = server.open_channel(std::make_unique<InProcessLink>(s_));
    proto::ConnectRequest req;
    req.timeout_ms = timeout_ms;
    req.password.assign(16, '\0');
    req.last_zxid_seen = server.last_zxid();
    send_frame([&](JuteWriter& w) { proto::write(w, req); });
    schedule_ping(server.negotiate_timeout(timeout_ms));
  }
  ~LocalSession() override { close(); }

  int64_t session_id() const override { return s_->session_id; }

  void create(std::string_view path, sdk::BytesView data, proto::CreateMode mode,
              sdk::TreeCallback done) override {
    call(OpCode::create2, std::move(done), [&](JuteWriter& w) {
      proto::CreateRequest req{std::string(path), std::string(data), creation_acl(),
                               static_cast<int32_t>(mode), 0};
      proto::write(w, req);
    });
  }
  void remove(std::string_view path, int32_t version, sdk::TreeCallback done) override {
    call(OpCode::remove, std::move(done), [&](JuteWriter& w) {
      proto::write(w, proto::PathVersionRequest{std::string(path), version});
    });
  }
  void set_data(std::string_view path, sdk::BytesView data, int32_t version,
                sdk::TreeCallback done) override {
    call(OpCode::set_data, std::move(done), [&](JuteWriter& w) {
      proto::write(w, proto::SetDataRequest{std::string(path), std::string(data), version});
    });
  }
  void get_data(std::string_view path, bool watch, sdk::TreeCallback done) override {
    path_watch(OpCode::get_data, path, watch, std::move(done));
  }
  void exists(std::string_view path, bool watch, sdk::TreeCallback done) override {
    path_watch(OpCode::exists, path, watch, std::move(done));
  }
  void get_children(std::string_view path, bool watch, sdk::TreeCallback done) override {
    path_watch(OpCode::get_children2, path, watch, std::move(done));
  }
  void sync(std::string_view path, sdk::TreeCallback done) override {
    call(OpCode::sync, std::move(done),
         [&](JuteWriter& w) { proto::write(w, proto::PathRequest{std::string(path)}); });
  }
  void request(OpCode op, std::string body, sdk::TreeCallback done) override {
    bool session_business = false;
    switch (op) {
      case OpCode::create_session:
      case OpCode::close_session:
      case OpCode::ping:
      case OpCode::auth:
      case OpCode::sasl:
      case OpCode::set_watches:
      case OpCode::set_watches2:
      case OpCode::notification:
      case OpCode::error:
        session_business = true;
        break;
      default:
        break;
    }
    // Only operations ZooKeeper's protocol knows (not the kernel's own).
    if (!session_business && proto::op_kind(static_cast<int32_t>(op)) != proto::OpKind::unknown) {
      call(op, std::move(done), [&](JuteWriter& w) { w.bytes().append(body); });
      return;
    }
    if (done)
      s_->server->executor().post([done = std::move(done)] {
        sdk::TreeResult res;
        res.err = Err::bad_arguments;
        done(res);
      });
  }
  void act_as(std::vector<proto::Id> identities) override {
    if (identities == s_->acting) return;
    s_->acting = identities;
    std::string f;
    JuteWriter w(f);
    size_t at = w.begin_frame();
    proto::write(w, proto::RequestHeader{0, kInProcessActAs});
    w.write_count(static_cast<int32_t>(identities.size()));
    for (const proto::Id& id : identities) proto::write(w, id);
    w.finish_frame(at);
    s_->send_request(std::move(f), /*identity_change=*/true);
  }
  void close() override {
    if (!s_->channel || s_->close_requested) return;
    s_->close_requested = true;
    s_->ping_timer.reset();
    call(OpCode::close_session, nullptr, [](JuteWriter&) {});
  }

 private:
  template <class Body>
  void send_frame(Body&& body) {
    if (!s_->channel) return;
    std::string f;
    JuteWriter w(f);
    size_t at = w.begin_frame();
    body(w);
    w.finish_frame(at);
    s_->channel->on_bytes(f);
  }
  template <class Body>
  void call(OpCode op, sdk::TreeCallback done, Body&& body) {
    auto fail = [this](sdk::TreeCallback done, Err err) {
      if (done)
        s_->server->executor().post([done = std::move(done), err] {
          sdk::TreeResult res;
          res.err = err;
          done(res);
        });
    };
    if (!s_->channel) return fail(std::move(done), Err::session_expired);
    int32_t xid = s_->next_xid;
    std::string f;
    JuteWriter w(f);
    size_t at = w.begin_frame();
    proto::write(w, proto::RequestHeader{xid, static_cast<int32_t>(op)});
    body(w);
    w.finish_frame(at);
    // A request over the frame limit would make the channel close the whole
    // session (as it closes a client's connection): refuse only the request,
    // as a client library refuses a packet it cannot send.
    if (static_cast<int64_t>(f.size() - 4) > s_->server->config().server.max_frame_bytes)
      return fail(std::move(done), Err::marshalling_error);
    ++s_->next_xid;
    s_->calls[xid] = {static_cast<int32_t>(op), std::move(done)};
    s_->send_request(std::move(f), false);
  }
  void path_watch(OpCode op, std::string_view path, bool watch, sdk::TreeCallback done) {
    call(op, std::move(done), [&](JuteWriter& w) {
      proto::write(w, proto::PathWatchRequest{std::string(path), watch});
    });
  }
  void schedule_ping(int32_t timeout_ms) {
    std::weak_ptr<SessionState> weak = s_;
    s_->ping_timer = s_->server->executor().schedule(
        std::chrono::milliseconds(std::max(10, timeout_ms / 3)), [this, weak, timeout_ms] {
          auto s = weak.lock();
          if (!s || !s->channel) return;
          send_frame([](JuteWriter& w) {
            proto::write(w,
                         proto::RequestHeader{proto::kXidPing, static_cast<int32_t>(OpCode::ping)});
          });
          schedule_ping(timeout_ms);
        });
  }

  // Nodes belong to whom the session acts as, when that is someone: all
  // rights to them (ZooKeeper's CREATOR_ALL_ACL), reading to anyone.
  proto::AclList creation_acl() const {
    for (const proto::Id& id : s_->acting) {
      if (id.scheme == "digest" || id.scheme == "sasl" || id.scheme == "x509")
        return {{proto::perm::all, {"auth", ""}}, {proto::perm::read, {"world", "anyone"}}};
    }
    return proto::open_acl_unsafe();
  }

  std::shared_ptr<SessionState> s_;
};

}  // namespace

sdk::Result<std::unique_ptr<sdk::TreeSession>> Server::open_session(int32_t timeout_ms,
                                                                    sdk::WatchCallback on_event) {
  if (!started_ || stopped_) return sdk::Status{sdk::Errc::unavailable, "server is not running"};
  return std::unique_ptr<sdk::TreeSession>(
      std::make_unique<LocalSession>(*this, timeout_ms, std::move(on_event)));
}

}  // namespace corral::kernel
