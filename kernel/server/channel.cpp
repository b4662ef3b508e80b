#include "server/channel.hpp"

#include <algorithm>

#include "corral/proto/jute.hpp"
#include "server/audit_log.hpp"
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

namespace {

// Replies a client may leave unread before the server stops reading its
// requests.
constexpr size_t kMaxQueuedReplyBytes = 8u << 20;

// Input buffer room kept between requests; more is given back once used.
constexpr size_t kKeptInputBytes = 16u << 10;

uint32_t be32(const char* p) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(p[0])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(p[1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(p[2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(p[3]));
}

}  // namespace

Channel::Channel(ChannelHost& server, std::unique_ptr<ChannelLink> link, uint64_t id)
    : server_(server),
      tree_(server.tree()),
      watches_(server.watches()),
      stats_(server.stats()),
      clock_(server.clock()),
      executor_(server.executor()),
      link_(std::move(link)),
      id_(id) {
  // Limits, read once: a socket's peer may never read its output nor stop
  // sending; a recipe's in-process session is trusted with both.
  if (link_->bounded()) {
    const ServerConfig& sc = server_.config().server;
    max_output_ = static_cast<size_t>(sc.max_output_bytes);
    max_watch_bytes_ = static_cast<size_t>(sc.max_watch_bytes_per_connection);
    max_outstanding_here_ = sc.max_outstanding_per_session;
    max_outstanding_all_ = sc.max_outstanding;
  }
  // Every connection is known by its address, as in ZooKeeper ("ip" scheme).
  std::string remote = link_->remote_address();
  size_t colon = remote.rfind(':');
  std::string ip = colon == std::string::npos ? remote : remote.substr(0, colon);
  if (ip.size() > 2 && ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
  if (valid_ip_spec(ip)) auth_ids_.push_back({"ip", ip});
  // A verified client certificate is an identity too, as ZooKeeper's
  // X509AuthenticationProvider: "x509:<subject>", and super when it is the
  // configured superuser.
  sdk::ConnectionSecurity sec = link_->security();
  if (sec.peer_verified && !sec.peer_subject.empty()) {
    auth_ids_.push_back({"x509", sec.peer_subject});
    const std::string& su = server_.config().server.x509_superuser;
    if (!su.empty() && sec.peer_subject == su) auth_ids_.push_back({"super", ""});
  }
}

Channel::~Channel() { alive_.end(); }

void Channel::on_bytes(sdk::BytesView data) {
  if (state_ == State::closed) return;
  in_.append(data);
  if (!saw_any_bytes_) {
    if (in_.size() < 4) return;
    saw_any_bytes_ = true;
    if (try_four_letter()) return;
  }
  size_t pos = in_pos_;
  // Until a session is open only a connect request may come, and that is
  // small: a connection cannot hold a jute.maxbuffer frame without a session.
  const int64_t max_frame =
      state_ == State::handshake ? kMaxConnectFrameBytes : server_.config().server.max_frame_bytes;
  while (state_ != State::closed && !reading_paused_ && in_.size() - pos >= 4) {
    int32_t len = static_cast<int32_t>(be32(in_.data() + pos));
    if (len <= 0 || len > max_frame) {
      close("frame length " + std::to_string(len) + " is outside 1.." + std::to_string(max_frame));
      return;
    }
    if (in_.size() - pos - 4 < static_cast<size_t>(len)) break;
    handle_frame(sdk::BytesView(in_).substr(pos + 4, static_cast<size_t>(len)));
    pos += 4 + static_cast<size_t>(len);
    // A client that does not read its replies, or has too many requests
    // outstanding, stops being read: its requests wait (here and in its
    // socket) instead of their replies piling up in the server's memory.
    count_outstanding();
    if (state_ != State::closed && (out_.size() + link_->queued_bytes() > kMaxQueuedReplyBytes ||
                                    (counted_ > 0 && over_limits()))) {
      reading_paused_ = true;
      link_->pause_reading(true);
    }
  }
  if (state_ == State::closed) return;
  // What was parsed goes once it is most of the buffer. A paused channel
  // resumes one request at a time, and an in-process session (which has no
  // socket to stop) may have queued many: erasing each time would move the
  // whole backlog for every request.
  if (pos * 2 >= in_.size()) {
    in_.erase(0, pos);
    in_pos_ = 0;
  } else {
    in_pos_ = pos;
  }
  // What a burst or a large request made room for goes back once it is
  // used: an idle session keeps a small input buffer, whatever it once sent.
  if (in_.empty() && in_.capacity() > kKeptInputBytes) std::string().swap(in_);
}

bool Channel::try_four_letter() {
  if (state_ != State::handshake) return false;
  std::optional<std::string> text = server_.four_letter(std::string_view(in_).substr(0, 4));
  if (!text) return false;
  queue_output(std::move(*text));
  closing_after_flush_ = true;
  return true;
}

void Channel::handle_frame(sdk::BytesView frame) {
  if (state_ == State::handshake) {
    handle_connect(frame);
  } else {
    handle_request(frame);
  }
}

void Channel::handle_connect(sdk::BytesView frame) {
  JuteReader r(frame);
  proto::ConnectRequest req;
  // Like ZooKeeper, tolerate bytes after the record (some clients send them).
  if (!proto::read(r, req)) {
    close("malformed ConnectRequest (" + std::to_string(frame.size()) + " bytes)");
    return;
  }
  received_++;
  last_heard_ms_ = clock_.steady_ms();
  stats_.packets_received++;
  if (!server_.serving() && !(req.read_only && server_.read_only_mode())) {
    // As ZooKeeper: a server without a leader takes no sessions; the client
    // tries the next server of its connection string.
    close("this server is not serving clients: it has no leader");
    return;
  }
  if (req.last_zxid_seen > server_.last_zxid()) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "refusing session: client has seen zxid 0x%llx, our last zxid is 0x%llx; "
                  "the client must try another server",
                  static_cast<unsigned long long>(req.last_zxid_seen),
                  static_cast<unsigned long long>(server_.last_zxid()));
    close(buf);
    return;
  }
  has_read_only_ = req.has_read_only;
  timeout_ms_ = server_.negotiate_timeout(req.timeout_ms);
  if (!server_.serving()) {
    // Read-only mode: the session as this server last knew it, or a new
    // one that lives only here; reads only, until the ensemble is back.
    read_only_ = true;
    if (!server_.read_only_session(req.session_id, req.password, session_id_, password_)) {
      send_connect_response(false);
      closing_after_flush_ = true;
      state_ = State::creating;  // accept nothing more
      return;
    }
    state_ = State::established;
    send_connect_response(true);
    drain();
    return;
  }
  if (req.session_id == 0) {
    state_ = State::creating;
    sdk::Status st = server_.create_session(*this, timeout_ms_, session_id_, password_);
    if (!st) close("cannot create a session: " + st.message());
    return;
  }
  if (server_.reattach_session(*this, req.session_id, req.password, timeout_ms_)) {
    session_id_ = req.session_id;
    password_ = req.password;
    state_ = State::established;
    send_connect_response(true);
    drain();
  } else {
    send_connect_response(false);
    closing_after_flush_ = true;
    state_ = State::creating;  // accept nothing more
  }
}

void Channel::on_session_created() {
  if (state_ != State::creating) return;
  state_ = State::established;
  send_connect_response(true);
  drain();
}

void Channel::send_connect_response(bool valid) {
  proto::ConnectResponse rsp;
  rsp.timeout_ms = valid ? timeout_ms_ : 0;
  rsp.session_id = valid ? session_id_ : 0;
  rsp.password = valid ? password_ : std::string(16, '\0');
  rsp.has_read_only = has_read_only_;
  rsp.read_only = read_only_;
  std::string frame;
  JuteWriter w(frame);
  size_t at = w.begin_frame();
  proto::write(w, rsp);
  w.finish_frame(at);
  queue_output(std::move(frame));
}

void Channel::handle_request(sdk::BytesView frame) {
  JuteReader r(frame);
  proto::RequestHeader h;
  if (!proto::read(r, h)) {
    close("request of " + std::to_string(frame.size()) + " bytes has no complete header");
    return;
  }
  if (h.type == kInProcessActAs && !external()) {
    // A recipe's session acts as an HTTP caller (sdk::TreeSession::act_as):
    // later requests carry these identities. Its own requests are all
    // answered by now (the session holds this frame back until they are).
    proto::JuteReader ir(frame.substr(r.position()));
    int32_t n = ir.read_count(8);
    Ids ids;
    for (int32_t i = 0; ir.ok() && i < n; ++i) {
      proto::Id id;
      if (proto::read(ir, id)) ids.push_back(std::move(id));
    }
    if (ir.ok()) auth_ids_ = std::move(ids);
    return;
  }
  received_++;
  last_heard_ms_ = clock_.steady_ms();
  stats_.packets_received++;
  const proto::OpKind kind = proto::op_kind(h.type);
  if (read_only_ && (kind == proto::OpKind::write || h.type == static_cast<int32_t>(OpCode::sync) ||
                     h.type == static_cast<int32_t>(OpCode::reconfig))) {
    // ZooKeeper's read-only server answers every change, and sync, so.
    int64_t now = clock_.steady_ms();
    queue_.push_back({Pending::done, h.xid, h.type, now, error_frame(h.xid, Err::not_read_only)});
    drain();
    return;
  }
  if (read_only_ && h.type == static_cast<int32_t>(OpCode::close_session)) {
    close("read-only session closed by the client");
    return;
  }
  if (state_ == State::established && !read_only_ && !server_.touch_session(session_id_)) {
    close("session " + session_hex(session_id_) + " has expired");
    return;
  }
  int64_t now = clock_.steady_ms();
  sdk::BytesView payload = frame.substr(r.position());
  const bool reconfig = h.type == static_cast<int32_t>(OpCode::reconfig);
  if (kind == proto::OpKind::write || reconfig ||
      h.type == static_cast<int32_t>(OpCode::close_session)) {
    Err err = Err::ok;
    if (reconfig) {
      // As ZooKeeper answers it: disabled unless reconfigEnabled,
      // unimplemented on a standalone server; otherwise the leader decides
      // it (see Server::prepare) and the log carries the outcome.
      proto::ReconfigRequest req;
      if (!server_.config().ensemble.reconfig_enabled)
        err = Err::reconfig_disabled;
      else if (server_.members().empty())
        err = Err::unimplemented;
      else if (proto::JuteReader rr(payload); !proto::read(rr, req))
        err = Err::marshalling_error;
    } else if (h.type != static_cast<int32_t>(OpCode::close_session) &&
               !well_formed_write(h.type, payload)) {
      err = Err::marshalling_error;
    }
    if (err != Err::ok) {
      queue_.push_back({Pending::done, h.xid, h.type, now, error_frame(h.xid, err)});
    } else if (gates_ > 0 || held_ > 0) {
      Pending p{Pending::write, h.xid, h.type, now, std::string(payload)};
      p.held = true;
      ++held_;
      p.ids = std::make_unique<Ids>(auth_ids_);
      queue_.push_back(std::move(p));
    } else {
      Pending p{Pending::write, h.xid, h.type, now, {}};
      submit_write(p, payload, auth_ids_);
      queue_.push_back(std::move(p));
    }
  } else if (h.type == static_cast<int32_t>(OpCode::auth)) {
    // Handled at once, as ZooKeeper does, so that requests sent after it
    // (writes are submitted as they arrive) carry the new identity.
    handle_auth(h.xid, r, now);
  } else if (h.type == static_cast<int32_t>(OpCode::sasl) && server_.sasl_users()) {
    handle_sasl(h.xid, r, now);
    if (state_ == State::closed) return;
  } else if (h.type == static_cast<int32_t>(OpCode::sync)) {
    proto::PathRequest req;
    if (!proto::read(r, req)) {
      queue_.push_back(
          {Pending::done, h.xid, h.type, now, error_frame(h.xid, Err::marshalling_error)});
    } else {
      queue_.push_back({Pending::sync, h.xid, h.type, now, req.path});
      ++gates_;
    }
  } else if (kind == proto::OpKind::local_read) {
    Pending p{Pending::read, h.xid, h.type, now, std::string(payload)};
    if (server_.config().server.linearizable_reads && !read_only_ && reads_data(h.type)) {
      // The sync starts as the read arrives and the read runs in its turn
      // once the sync is answered: it sees every write committed before it
      // arrived. Reads in a row each ask, and consensus answers them with
      // one round.
      p.gate = std::make_shared<int8_t>(0);
      ++gates_;
      server_.sync([this, alive = alive_.ref(), gate = p.gate](const sdk::Status& st) {
        *gate = st ? 1 : 2;
        if (alive) drain();
      });
    }
    queue_.push_back(std::move(p));
  } else if (h.type == static_cast<int32_t>(OpCode::delete_container)) {
    // Only the server deletes containers; a client asking gets what
    // ZooKeeper answers.
    queue_.push_back({Pending::done, h.xid, h.type, now, error_frame(h.xid, Err::bad_arguments)});
  } else if (kind != proto::OpKind::unknown && h.type != 0 &&
             h.type != static_cast<int32_t>(OpCode::error)) {
    // Known to ZooKeeper 3.9 and not performed here: answered, session kept.
    queue_.push_back({Pending::done, h.xid, h.type, now, error_frame(h.xid, Err::unimplemented)});
  } else {
    // ZooKeeper answers an opcode it does not know with UNIMPLEMENTED (zxid
    // -1) and closes the connection; the session survives.
    std::string f;
    JuteWriter w(f);
    size_t at = w.begin_frame();
    proto::write(w, proto::ReplyHeader{h.xid, -1, static_cast<int32_t>(Err::unimplemented)});
    w.finish_frame(at);
    queue_.push_back({Pending::done, h.xid, h.type, now, std::move(f)});
    close_after_.insert(h.xid);
  }
  drain();
}

bool Channel::over_limits() {
  if (counted_ >= max_outstanding_here_) return true;  // drain() resumes
  if (server_.outstanding() >= max_outstanding_all_) {
    server_.wait_for_outstanding(*this);  // the server resumes
    return true;
  }
  return false;
}

void Channel::recount_outstanding(int64_t now) {
  server_.add_outstanding(now - counted_);
  counted_ = now;
}

void Channel::resume_reading() {
  resume_posted_ = false;
  if (!reading_paused_ || state_ == State::closed ||
      out_.size() + link_->queued_bytes() > kMaxQueuedReplyBytes || over_limits())
    return;
  reading_paused_ = false;
  link_->pause_reading(false);
  on_bytes({});  // the requests that waited
}

void Channel::drain() {
  drain_queue();
  count_outstanding();
  if (reading_paused_ && !resume_posted_ && state_ != State::closed &&
      counted_ < max_outstanding_here_) {
    resume_posted_ = true;
    executor_.post([this, alive = alive_.ref()] {
      if (alive) resume_reading();
    });
  }
}

void Channel::drain_queue() {
  if (state_ != State::established) return;
  if (held_ > 0) submit_held();
  while (!queue_.empty() && state_ != State::closed) {
    Pending& p = queue_.front();
    switch (p.kind) {
      case Pending::write:
        if (p.held) submit_held();  // the syncs and reads before it are answered
        if (queue_.front().kind == Pending::done) continue;  // refused
        return;
      case Pending::sync:
        if (!p.started) {
          p.started = true;
          server_.sync([this, alive = alive_.ref()](const sdk::Status& st) {
            if (!alive || queue_.empty() || queue_.front().kind != Pending::sync) return;
            Pending& s = queue_.front();
            std::string f;
            JuteWriter w(f);
            size_t at = w.begin_frame();
            proto::write(
                w, proto::ReplyHeader{s.xid, server_.last_zxid(),
                                      static_cast<int32_t>(st ? Err::ok : Err::connection_loss)});
            if (st) w.write_string(s.request);
            w.finish_frame(at);
            s.request = std::move(f);
            s.kind = Pending::done;
            if (gates_ > 0) --gates_;
            drain();
          });
        }
        return;
      case Pending::read: {
        if (p.gate && *p.gate == 0) return;  // its sync is still out
        if (p.gate && gates_ > 0) --gates_;
        std::string f =
            p.gate && *p.gate == 2 ? error_frame(p.xid, Err::connection_loss) : execute_read(p);
        if (state_ == State::closed) return;
        answered(p);
        queue_output(std::move(f));
        queue_.pop_front();
        break;
      }
      case Pending::done: {
        bool closing = p.type == static_cast<int32_t>(OpCode::close_session) ||
                       (!close_after_.empty() && close_after_.count(p.xid));
        answered(p);
        queue_output(std::move(p.request));
        queue_.pop_front();
        if (closing) {
          closing_after_flush_ = true;
          return;
        }
        break;
      }
    }
  }
}

bool Channel::submit_write(Pending& p, sdk::BytesView payload, const Ids& ids) {
  if (sdk::Status st = server_.submit(p.type, session_id_, p.xid, payload, ids); !st) {
    server_.log().warn("write refused for session " + session_hex(session_id_) + ": " +
                       st.to_string());
    Err e = st.code() == sdk::Errc::unavailable ? Err::connection_loss : Err::system_error;
    p.kind = Pending::done;
    p.request = error_frame(p.xid, e);
    return false;
  }
  // With the audit log on, what the change is waits there for its result.
  if (AuditLog* audit = server_.audit())
    audit->submitted(
        session_id_, p.xid,
        AuditLog::describe(session_id_, ids, link_->remote_address(), p.type, payload));
  return true;
}

void Channel::submit_held() {
  // (Submitting answers nothing at once, so the queue does not move.)
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    Pending& p = *it;
    if (p.kind == Pending::sync || (p.kind == Pending::read && p.gate && *p.gate == 0)) return;
    if (p.kind != Pending::write || !p.held) continue;
    std::string payload = std::move(p.request);
    p.request.clear();
    p.held = false;
    --held_;
    std::unique_ptr<Ids> ids = std::move(p.ids);
    submit_write(p, payload, ids ? *ids : auth_ids_);
  }
}

bool Channel::reads_data(int32_t type) {
  // What linearizable_reads holds to a sync: reads of the tree, not pings
  // or the watch bookkeeping.
  switch (static_cast<OpCode>(type)) {
    case OpCode::exists:
    case OpCode::get_data:
    case OpCode::get_acl:
    case OpCode::get_children:
    case OpCode::get_children2:
    case OpCode::multi_read:
    case OpCode::get_ephemerals:
    case OpCode::get_all_children_number:
      return true;
    default:
      return false;
  }
}

bool Channel::on_rejected(int32_t cxid, int32_t type, Err err) {
  if (state_ == State::closed) return false;
  // Not necessarily the first write waiting: consensus fails a write and
  // every later one while earlier ones are still being committed. Its
  // reply still goes in the session's order.
  for (Pending& q : queue_) {
    if (q.kind != Pending::write || q.held || q.xid != cxid || q.type != type) continue;
    q.kind = Pending::done;
    q.request = error_frame(q.xid, err);
    drain();
    return true;
  }
  return false;
}

bool Channel::on_applied(const ApplyOutcome& outcome, sdk::Zxid zxid) {
  if (state_ == State::closed) return false;
  Pending* p = nullptr;
  for (Pending& q : queue_) {
    if (q.kind == Pending::write) {
      p = &q;
      break;
    }
  }
  // A write from an earlier connection of this session, or one this channel
  // already failed: nobody is waiting for it here.
  if (!p || p->xid != outcome.cxid || p->type != outcome.type) return false;
  std::string f;
  f.reserve(20 + outcome.response.size());
  JuteWriter w(f);
  size_t at = w.begin_frame();
  proto::write(w, proto::ReplyHeader{p->xid, zxid, static_cast<int32_t>(outcome.err)});
  f += outcome.response;
  w.finish_frame(at);
  p->request = std::move(f);
  p->kind = Pending::done;
  drain();
  return true;
}

void Channel::answered(const Pending& p) {
  int64_t ms = clock_.steady_ms() - p.received_ms;
  stats_.record_latency(ms);
  server_.observe_request(p.type, static_cast<double>(ms) / 1000.0);
}

std::string Channel::error_frame(int32_t xid, Err err) const {
  std::string f;
  JuteWriter w(f);
  size_t at = w.begin_frame();
  proto::write(w, proto::ReplyHeader{xid, server_.last_zxid(), static_cast<int32_t>(err)});
  w.finish_frame(at);
  return f;
}

void Channel::notify(const proto::WatcherEvent& event, sdk::Zxid zxid) {
  if (state_ == State::closed) return;
  std::string f;
  JuteWriter w(f);
  size_t at = w.begin_frame();
  proto::write(w, proto::ReplyHeader{proto::kXidNotification, zxid, 0});
  proto::write(w, event);
  w.finish_frame(at);
  queue_output(std::move(f));
}

void Channel::queue_output(std::string frame) {
  if (state_ == State::closed || overflowed_) return;
  if (out_.empty())
    out_ = std::move(frame);
  else
    out_ += frame;
  sent_++;
  stats_.packets_sent++;
  if (!flush_posted_) {
    flush_posted_ = true;
    executor_.post([this, alive = alive_.ref()] {
      if (alive) flush_output();
    });
  }
}

void Channel::flush_output() {
  flush_posted_ = false;
  if (state_ == State::closed || overflowed_) return;
  // What waits already, besides this turn's output: a turn's replies and
  // notifications go to a client that reads however large they are; one
  // that has left more than server.max_output_bytes unread is let go.
  // (Reading is paused long before replies alone reach this: what fills it
  // is notifications for a client that does not read them.)
  if (size_t waiting = link_->queued_bytes(); waiting > max_output_) {
    overflowed_ = true;
    out_.clear();
    close(std::to_string(waiting) +
          " bytes of replies and notifications wait for a client that does not read them "
          "(server.max_output_bytes)");
    return;
  }
  if (!out_.empty()) link_->send(std::move(out_));
  out_.clear();
  if (closing_after_flush_) close("");
}

void Channel::on_drained() { resume_reading(); }

void Channel::expect_session_within(std::chrono::milliseconds limit) {
  session_deadline_ = executor_.schedule(limit, [this, alive = alive_.ref(), limit] {
    if (alive && state_ == State::handshake && !closing_after_flush_)
      close("no session within " + std::to_string(limit.count()) +
            " ms (server.sessionless_timeout_ms)");
  });
}

void Channel::close(const std::string& why) {
  if (state_ == State::closed) return;
  if (!why.empty())
    server_.log().info("closing connection from " + link_->remote_address() + ": " + why);
  if (!out_.empty()) link_->send(std::move(out_));
  out_.clear();
  state_ = State::closed;
  count_outstanding();
  watches_.remove_watcher(this);
  link_->close();
  server_.channel_closed(*this);
}

void Channel::on_disconnected() {
  if (state_ == State::closed) return;
  out_.clear();
  state_ = State::closed;
  count_outstanding();
  watches_.remove_watcher(this);
  link_->close();
  server_.channel_closed(*this);
}

}  // namespace corral::kernel
