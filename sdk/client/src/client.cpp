#include "corral/client/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <deque>

#include "corral/proto/jute.hpp"

namespace corral::client {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using proto::Err;
using proto::JuteReader;
using proto::JuteWriter;
using proto::OpCode;
using sdk::Errc;
using sdk::Status;

sdk::Result<Options> parse_connect_string(std::string_view hosts) {
  Options o;
  if (size_t slash = hosts.find('/'); slash != std::string_view::npos)
    return Status{Errc::invalid_argument,
                  "a chroot ('" + std::string(hosts.substr(slash)) + "') is not supported"};
  size_t start = 0;
  while (start <= hosts.size()) {
    size_t comma = hosts.find(',', start);
    std::string_view part =
        hosts.substr(start, comma == std::string_view::npos ? hosts.npos : comma - start);
    sdk::Endpoint ep;
    std::string text(part);
    if (text.find(':') == std::string::npos) text += ":2181";
    if (!sdk::parse_endpoint(text, ep) || ep.host.empty())
      return Status{Errc::invalid_argument, "'" + std::string(part) + "' is not host:port"};
    o.servers.push_back(ep);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return o;
}

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  Impl(asio::io_context& io, Options o)
      : io(io), opt(std::move(o)), socket(io), timer(io), ping(io) {}

  asio::io_context& io;
  Options opt;
  tcp::socket socket;
  // With TLS the connection is this stream (a fresh one for each server
  // tried); operations in flight hold it, so it outlives them.
  std::shared_ptr<ssl::context> ssl_ctx;
  std::shared_ptr<ssl::stream<tcp::socket>> tls;
  tcp::socket& sock() { return tls ? tls->next_layer() : socket; }
  asio::steady_timer timer, ping;
  EventFn on_event;
  bool is_connected = false, handshaking = false, writing = false, flush_posted = false;
  int64_t session = 0;
  int32_t timeout = 0;
  std::string password, connected_to;
  int32_t next_xid = 1;
  struct Pending {
    int32_t xid;
    int32_t type;
    Callback done;
  };
  std::deque<Pending> pending;
  std::deque<Callback> auth_pending;
  std::string out, writing_buf;
  std::string in;
  std::vector<char> buf = std::vector<char>(64 * 1024);
  std::function<void(const Status&)> connect_done;
  std::function<void()> close_done;
  size_t server_index = 0;
  Status last_error;

  // Each connection attempt has its number; handlers of an earlier one,
  // still completing, leave the current one alone.
  uint64_t attempt = 0;

  void try_server() {
    ++attempt;
    if (server_index >= opt.servers.size()) {
      auto done = std::move(connect_done);
      if (done) done(last_error);
      return;
    }
    const sdk::Endpoint& ep = opt.servers[server_index++];
    std::string shown = ep.to_string();
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(ep.host, std::to_string(ep.port), ec);
    if (ec) {
      last_error = Status(Errc::unavailable, "resolve " + shown + ": " + ec.message());
      try_server();
      return;
    }
    if (ssl_ctx) {
      tls = std::make_shared<ssl::stream<tcp::socket>>(io, *ssl_ctx);
      tls->set_verify_mode(ssl::verify_peer);
      if (opt.tls.verify_host) tls->set_verify_callback(ssl::host_name_verification(ep.host));
      boost::system::error_code ip_ec;
      asio::ip::make_address(ep.host, ip_ec);
      if (ip_ec) SSL_set_tlsext_host_name(tls->native_handle(), ep.host.c_str());
    }
    timer.expires_after(std::chrono::milliseconds(opt.connect_timeout_ms));
    timer.async_wait([self = shared_from_this()](boost::system::error_code e) {
      if (!e && !self->is_connected) {
        boost::system::error_code ignored;
        self->sock().close(ignored);
      }
    });
    auto failed = [self = shared_from_this(), shown](const std::string& what,
                                                     boost::system::error_code e) {
      self->timer.cancel();
      self->last_error = Status(
          Errc::unavailable, what + " " + shown + ": " +
                                 (e == asio::error::operation_aborted ? "timed out" : e.message()));
      boost::system::error_code ignored;
      self->sock().close(ignored);
      self->try_server();
    };
    asio::async_connect(sock(), results,
                        [self = shared_from_this(), shown, failed, gen = attempt](
                            boost::system::error_code e, const tcp::endpoint&) {
                          if (gen != self->attempt) return;
                          if (e) return failed("connect", e);
                          self->connected_to = shown;
                          self->sock().set_option(tcp::no_delay(true), e);
                          if (!self->tls) return self->open_session();
                          auto t = self->tls;
                          t->async_handshake(ssl::stream_base::client,
                                             [self, t, failed, gen](boost::system::error_code he) {
                                               if (gen != self->attempt) return;
                                               if (he) return failed("TLS handshake with", he);
                                               self->open_session();
                                             });
                        });
  }

  void open_session() {
    handshaking = true;
    proto::ConnectRequest req;
    req.timeout_ms = opt.session_timeout_ms;
    req.password.assign(16, '\0');
    req.has_read_only = true;
    send([&](JuteWriter& w) { proto::write(w, req); });
    read();
  }

  template <class Body>
  void send(Body&& body) {
    JuteWriter w(out);
    size_t at = w.begin_frame();
    body(w);
    w.finish_frame(at);
    if (writing) return;
    if (!tls) return flush();
    // Over TLS every write is a record, costly in itself: requests made in
    // one turn of the loop go out together at its end.
    if (flush_posted) return;
    flush_posted = true;
    asio::post(io, [self = shared_from_this()] {
      self->flush_posted = false;
      if (!self->writing) self->flush();
    });
  }

  void flush() {
    if (out.empty()) return;
    writing = true;
    writing_buf.swap(out);
    out.clear();
    auto done = [self = shared_from_this(), t = tls, gen = attempt](boost::system::error_code e,
                                                                    size_t) {
      if (gen != self->attempt) return;
      self->writing = false;
      self->writing_buf.clear();
      if (e) {
        self->lost(Status(Errc::io_error, "write to " + self->connected_to + ": " + e.message()));
        return;
      }
      self->flush();
    };
    if (tls)
      asio::async_write(*tls, asio::buffer(writing_buf), std::move(done));
    else
      asio::async_write(socket, asio::buffer(writing_buf), std::move(done));
  }

  void read() {
    auto on_read = [self = shared_from_this(), t = tls, gen = attempt](boost::system::error_code e,
                                                                       size_t n) {
      if (gen != self->attempt) return;
      if (e) {
        self->lost(Status(Errc::unavailable,
                          e == asio::error::eof
                              ? "server " + self->connected_to + " closed the connection"
                              : "read from " + self->connected_to + ": " + e.message()));
        return;
      }
      self->in.append(self->buf.data(), n);
      size_t pos = 0;
      while (self->in.size() - pos >= 4) {
        JuteReader r(std::string_view(self->in).substr(pos, 4));
        int32_t len = r.read_int();
        if (len < 0) {
          self->lost(Status(Errc::corrupt, "bad frame length from " + self->connected_to));
          return;
        }
        if (self->in.size() - pos - 4 < static_cast<size_t>(len)) break;
        if (!self->frame(std::string_view(self->in).substr(pos + 4, static_cast<size_t>(len))))
          return;
        pos += 4 + static_cast<size_t>(len);
      }
      self->in.erase(0, pos);
      self->read();
    };
    if (tls)
      tls->async_read_some(asio::buffer(buf), std::move(on_read));
    else
      socket.async_read_some(asio::buffer(buf), std::move(on_read));
  }

  // False if the connection was dropped while handling it.
  bool frame(std::string_view f) {
    JuteReader r(f);
    if (handshaking) {
      proto::ConnectResponse rsp;
      if (!proto::read(r, rsp) || rsp.timeout_ms <= 0) {
        lost(Status(Errc::unavailable, "server " + connected_to + " refused the session"));
        return false;
      }
      handshaking = false;
      is_connected = true;
      timer.cancel();
      session = rsp.session_id;
      timeout = rsp.timeout_ms;
      password = rsp.password;
      schedule_ping();
      if (on_event)
        on_event({static_cast<int32_t>(proto::EventType::none),
                  static_cast<int32_t>(proto::KeeperState::sync_connected), ""});
      auto done = std::move(connect_done);
      if (done) done(Status());
      return true;
    }
    proto::ReplyHeader h;
    if (!proto::read(r, h)) {
      lost(Status(Errc::corrupt, "malformed reply from " + connected_to));
      return false;
    }
    if (h.xid == proto::kXidNotification) {
      proto::WatcherEvent ev;
      if (proto::read(r, ev) && on_event) on_event(ev);
      return true;
    }
    if (h.xid == proto::kXidPing) return true;
    if (h.xid == proto::kXidAuth) {
      Response res;
      res.err = static_cast<Err>(h.err);
      res.type = static_cast<int32_t>(OpCode::auth);
      if (!auth_pending.empty()) {
        Callback done = std::move(auth_pending.front());
        auth_pending.pop_front();
        if (done) done(res);
      }
      return true;
    }
    if (pending.empty() || pending.front().xid != h.xid) {
      lost(Status(Errc::corrupt,
                  "reply xid " + std::to_string(h.xid) + " out of order from " + connected_to));
      return false;
    }
    Pending p = std::move(pending.front());
    pending.pop_front();
    Response res;
    if (!proto::decode_response(p.type, static_cast<Err>(h.err), f.substr(r.position()), res))
      res.err = Err::marshalling_error;
    if (p.type == static_cast<int32_t>(OpCode::close_session)) {
      finish_close();
    }
    if (p.done) p.done(res);
    return true;
  }

  void schedule_ping() {
    ping.expires_after(std::chrono::milliseconds(std::max(10, timeout / 3)));
    ping.async_wait([weak = weak_from_this()](boost::system::error_code e) {
      auto self = weak.lock();
      if (e || !self || !self->is_connected) return;
      self->send([](JuteWriter& w) {
        proto::write(w, proto::RequestHeader{proto::kXidPing, static_cast<int32_t>(OpCode::ping)});
      });
      self->schedule_ping();
    });
  }

  void lost(const Status& why) {
    bool was = is_connected || handshaking;
    is_connected = false;
    handshaking = false;
    timer.cancel();
    ping.cancel();
    boost::system::error_code ignored;
    sock().close(ignored);
    auto failed = std::move(pending);
    pending.clear();
    auto failed_auth = std::move(auth_pending);
    auth_pending.clear();
    for (auto& p : failed) {
      Response res;
      res.err = Err::connection_loss;
      if (p.done) p.done(res);
    }
    for (auto& done : failed_auth) {
      Response res;
      res.err = Err::connection_loss;
      if (done) done(res);
    }
    if (connect_done) {
      last_error = why;
      // The next server starts clean: nothing of this attempt is sent there.
      out.clear();
      in.clear();
      writing = false;
      socket = tcp::socket(io);
      tls.reset();
      try_server();
      return;
    }
    if (was && on_event)
      on_event({static_cast<int32_t>(proto::EventType::none),
                static_cast<int32_t>(proto::KeeperState::disconnected), ""});
    if (close_done) finish_close();
  }

  void finish_close() {
    is_connected = false;
    ping.cancel();
    boost::system::error_code ignored;
    sock().shutdown(tcp::socket::shutdown_both, ignored);
    sock().close(ignored);
    auto done = std::move(close_done);
    close_done = nullptr;
    if (done) done();
  }

  template <class Body>
  void call(OpCode op, Callback done, Body&& body) {
    if (!is_connected) {
      asio::post(io, [done = std::move(done)] {
        Response res;
        res.err = Err::connection_loss;
        if (done) done(res);
      });
      return;
    }
    int32_t xid = next_xid++;
    pending.push_back({xid, static_cast<int32_t>(op), std::move(done)});
    send([&](JuteWriter& w) {
      proto::write(w, proto::RequestHeader{xid, static_cast<int32_t>(op)});
      body(w);
    });
  }
};

Client::Client(asio::io_context& io, Options options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

Client::~Client() {
  impl_->on_event = nullptr;
  boost::system::error_code ignored;
  impl_->timer.cancel();
  impl_->ping.cancel();
  impl_->sock().close(ignored);
}

void Client::connect(std::function<void(const Status&)> done) {
  if (impl_->opt.tls.enabled && !impl_->ssl_ctx) {
    // The context, once: the authorities, and a client certificate if given.
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                     ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    const TlsOptions& t = impl_->opt.tls;
    std::string what;
    if (!t.ca.empty()) {
      ctx->load_verify_file(t.ca, ec);
      what = "TLS ca '" + t.ca + "'";
    } else {
      ctx->set_default_verify_paths(ec);
      what = "the system's authorities";
    }
    if (!ec && !t.certificate.empty()) {
      ctx->use_certificate_chain_file(t.certificate, ec);
      what = "TLS certificate '" + t.certificate + "'";
      if (!ec) {
        ctx->use_private_key_file(t.key.empty() ? t.certificate : t.key, ssl::context::pem, ec);
        what = "TLS key '" + (t.key.empty() ? t.certificate : t.key) + "'";
      }
    }
    if (ec) {
      if (done) done(Status(Errc::invalid_argument, "cannot read " + what + ": " + ec.message()));
      return;
    }
    impl_->ssl_ctx = std::move(ctx);
  }
  impl_->connect_done = std::move(done);
  impl_->server_index = 0;
  impl_->last_error = Status(Errc::invalid_argument, "no server to connect to");
  impl_->try_server();
}

void Client::on_event(EventFn fn) { impl_->on_event = std::move(fn); }
bool Client::connected() const { return impl_->is_connected; }
int64_t Client::session_id() const { return impl_->session; }
int32_t Client::session_timeout_ms() const { return impl_->timeout; }
std::string Client::server() const { return impl_->connected_to; }
size_t Client::outstanding() const { return impl_->pending.size(); }
asio::io_context& Client::io_context() const { return impl_->io; }

void Client::create(std::string_view path, std::string_view data, proto::CreateMode mode,
                    Callback done, const proto::AclList& acl, int64_t ttl_ms) {
  bool ttl = mode == proto::CreateMode::persistent_with_ttl ||
             mode == proto::CreateMode::persistent_sequential_with_ttl;
  OpCode op = ttl                                    ? OpCode::create_ttl
              : mode == proto::CreateMode::container ? OpCode::create_container
                                                     : OpCode::create2;
  impl_->call(op, std::move(done), [&](JuteWriter& w) {
    proto::write(w,
                 proto::CreateRequest{std::string(path), std::string(data), acl,
                                      static_cast<int32_t>(mode), ttl_ms},
                 ttl);
  });
}
void Client::set_acl(std::string_view path, const proto::AclList& acl, int32_t version,
                     Callback done) {
  impl_->call(OpCode::set_acl, std::move(done), [&](JuteWriter& w) {
    proto::write(w, proto::SetAclRequest{std::string(path), acl, version});
  });
}
void Client::add_auth(std::string_view scheme, std::string_view auth, Callback done) {
  if (!impl_->is_connected) {
    impl_->call(OpCode::auth, std::move(done), [](JuteWriter&) {});
    return;
  }
  // Auth goes with its own xid and is answered out of the request order.
  impl_->auth_pending.push_back(std::move(done));
  impl_->send([&](JuteWriter& w) {
    proto::write(w, proto::RequestHeader{proto::kXidAuth, static_cast<int32_t>(OpCode::auth)});
    proto::write(w, proto::AuthPacket{0, std::string(scheme), std::string(auth)});
  });
}
void Client::who_am_i(Callback done) {
  impl_->call(OpCode::who_am_i, std::move(done), [](JuteWriter&) {});
}
void Client::add_watch(std::string_view path, bool recursive, Callback done) {
  impl_->call(OpCode::add_watch, std::move(done), [&](JuteWriter& w) {
    proto::write(w, proto::PathModeRequest{std::string(path), recursive ? 1 : 0});
  });
}
void Client::reconfig(std::optional<std::string> joining, std::optional<std::string> leaving,
                      std::optional<std::string> members, int64_t from_config, Callback done) {
  impl_->call(OpCode::reconfig, std::move(done), [&](JuteWriter& w) {
    proto::ReconfigRequest req;
    req.joining_null = !joining;
    req.leaving_null = !leaving;
    req.new_members_null = !members;
    req.joining = joining.value_or("");
    req.leaving = leaving.value_or("");
    req.new_members = members.value_or("");
    req.cur_config_id = from_config;
    proto::write(w, req);
  });
}
void Client::remove(std::string_view path, int32_t version, Callback done) {
  impl_->call(OpCode::remove, std::move(done), [&](JuteWriter& w) {
    proto::write(w, proto::PathVersionRequest{std::string(path), version});
  });
}
void Client::set_data(std::string_view path, std::string_view data, int32_t version,
                      Callback done) {
  impl_->call(OpCode::set_data, std::move(done), [&](JuteWriter& w) {
    proto::write(w, proto::SetDataRequest{std::string(path), std::string(data), version});
  });
}
void Client::get_data(std::string_view path, bool watch, Callback done) {
  impl_->call(OpCode::get_data, std::move(done), [&](JuteWriter& w) {
    proto::write(w, proto::PathWatchRequest{std::string(path), watch});
  });
}
void Client::exists(std::string_view path, bool watch, Callback done) {
  impl_->call(OpCode::exists, std::move(done), [&](JuteWriter& w) {
    proto::write(w, proto::PathWatchRequest{std::string(path), watch});
  });
}
void Client::get_children(std::string_view path, bool watch, Callback done) {
  impl_->call(OpCode::get_children2, std::move(done), [&](JuteWriter& w) {
    proto::write(w, proto::PathWatchRequest{std::string(path), watch});
  });
}
void Client::get_acl(std::string_view path, Callback done) {
  impl_->call(OpCode::get_acl, std::move(done),
              [&](JuteWriter& w) { proto::write(w, proto::PathRequest{std::string(path)}); });
}
void Client::sync(std::string_view path, Callback done) {
  impl_->call(OpCode::sync, std::move(done),
              [&](JuteWriter& w) { proto::write(w, proto::PathRequest{std::string(path)}); });
}
void Client::multi(const std::vector<Op>& ops, Callback done) {
  impl_->call(OpCode::multi, std::move(done), [&](JuteWriter& w) {
    for (const Op& op : ops) {
      proto::write(w, proto::MultiHeader{static_cast<int32_t>(op.type), false, -1});
      switch (op.type) {
        case OpCode::create:
        case OpCode::create2:
          proto::write(w, proto::CreateRequest{op.path, op.data, proto::open_acl_unsafe(),
                                               static_cast<int32_t>(op.mode), 0});
          break;
        case OpCode::set_data:
          proto::write(w, proto::SetDataRequest{op.path, op.data, op.version});
          break;
        default:  // remove, check
          proto::write(w, proto::PathVersionRequest{op.path, op.version});
          break;
      }
    }
    proto::write(w, proto::MultiHeader{-1, true, -1});
  });
}
void Client::close(std::function<void()> done) {
  if (!impl_->is_connected) {
    if (done) asio::post(impl_->io, std::move(done));
    return;
  }
  impl_->close_done = std::move(done);
  impl_->call(OpCode::close_session, nullptr, [](JuteWriter&) {});
}

}  // namespace corral::client
