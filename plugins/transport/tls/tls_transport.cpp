// The `tls` transport: byte streams over TLS 1.2/1.3 (Boost.Asio's SSL over
// OpenSSL), on the kernel's event loop. Each purpose (client, peer, admin)
// has its own certificates and policy, read when first used and read again
// when their files change. A listener may also take plaintext on the same
// port, told apart by the first byte (a TLS record starts with 0x16).
// Connections are handed to their owner only once the handshake is done; a
// handshake has a deadline and only so many may be in flight.
#include "tls_transport.hpp"

#include <openssl/ssl.h>

#include <boost/asio/write.hpp>

namespace corral::tls_plugin {

using corral::stream::format;
using Stream = ssl::stream<tcp::socket>;

class TlsConnection final : public corral::stream::StreamConnection<TlsConnection> {
 public:
  TlsConnection(std::unique_ptr<Stream> stream, std::shared_ptr<ssl::context> ctx, bool encrypted,
                const Options& opt)
      : StreamConnection(stream->next_layer(), /*coalesce=*/encrypted),
        ctx_(std::move(ctx)),
        stream_(std::move(stream)),
        tls_(encrypted),
        max_read_(opt.stream.read_buffer),
        buf_size_(std::min(kMinRead, opt.stream.read_buffer)) {
    if (tls_) security_ = corral::tls::describe(stream_->native_handle());
  }

  corral::sdk::ConnectionSecurity security() const override { return security_; }

  // Why a revocation list in `ctx` refuses the certificate this connection
  // was opened with ("" when none does, or when it is closed already).
  std::string revoked(const ssl::context& ctx) {
    if (closed_ || !tls_ || !security_.peer_verified) return "";
    return corral::tls::revoked_by(stream_->native_handle(), ctx);
  }
  const ssl::context& context() const { return *ctx_; }
  // Ends the connection from this side; its owner hears why.
  void cut(const Status& why) {
    if (!closed_) fail(why);
  }

  tcp::socket& socket() { return stream_->next_layer(); }

  template <class Handler>
  void write_bytes(asio::const_buffer b, Handler&& h) {
    if (tls_)
      asio::async_write(*stream_, b, std::forward<Handler>(h));
    else
      asio::async_write(socket(), b, std::forward<Handler>(h));
  }

  void read() {
    if (paused_ || read_in_flight_) return;
    read_in_flight_ = true;
    read_some([self = shared_from_this()](boost::system::error_code ec, size_t n) {
      self->read_in_flight_ = false;
      if (self->closed_ || !self->handler_) return;
      if (ec) {
        // A peer that closes without TLS's close_notify ends the stream all
        // the same: nothing it sent is lost, the records were whole.
        bool eof = ec == asio::error::eof || ec == ssl::error::stream_truncated;
        self->fail(
            eof ? Status()
                : Status(Errc::io_error, "read from " + self->remote_ + ": " + ec.message()));
        return;
      }
      if (!self->deliver(corral::sdk::BytesView(self->buf_.get(), n))) return;
      self->fit_buffer(n);
      self->read();
    });
  }

 private:
  template <class Handler>
  void read_some(Handler&& h) {
    // A new size takes effect here, never under a read in flight.
    if (!buf_ || buf_capacity_ != buf_size_) {
      buf_.reset(new char[buf_size_]);
      buf_capacity_ = buf_size_;
    }
    if (tls_)
      stream_->async_read_some(asio::buffer(buf_.get(), buf_size_), std::forward<Handler>(h));
    else
      socket().async_read_some(asio::buffer(buf_.get(), buf_size_), std::forward<Handler>(h));
  }

  // The read buffer (held while a read waits) follows what the peer sends:
  // a read that fills it doubles it up to read_buffer_bytes, and a run of
  // reads that use under a quarter of it halves it down to kMinRead, so an
  // idle session holds a small one.
  void fit_buffer(size_t n) {
    if (n == buf_size_ && buf_size_ < max_read_) {
      buf_size_ = std::min(buf_size_ * 2, max_read_);
      small_reads_ = 0;
    } else if (n <= buf_size_ / 4 && buf_size_ > kMinRead) {
      if (++small_reads_ >= kSmallReadsToShrink) {
        buf_size_ = std::max(kMinRead, buf_size_ / 2);
        small_reads_ = 0;
      }
    } else {
      small_reads_ = 0;
    }
  }

  std::shared_ptr<ssl::context> ctx_;  // outlives the stream that uses it
  std::unique_ptr<Stream> stream_;
  bool tls_;
  corral::sdk::ConnectionSecurity security_;
  static constexpr size_t kMinRead = 2048;
  static constexpr int kSmallReadsToShrink = 8;
  size_t max_read_, buf_size_;  // buf_size_: the size the next read uses
  std::unique_ptr<char[]> buf_;
  size_t buf_capacity_ = 0;
  int small_reads_ = 0;
};

namespace {

class TlsListener final : public corral::sdk::Listener {
 public:
  TlsListener(TlsTransport& t, asio::io_context& io, Profile& profile,
              const corral::sdk::ListenOptions& lo)
      : transport_(t), loop_(io, t.host().logger()), profile_(profile), lo_(lo) {}
  ~TlsListener() override { alive_.end(); }

  Status open(const tcp::endpoint& ep, const std::string& shown, int backlog) {
    return loop_.open(ep, shown, backlog);
  }

  void accept(corral::sdk::Transport::AcceptFn on_accept) {
    on_accept_ = std::move(on_accept);
    loop_.start([this](tcp::socket socket) { handshake(std::move(socket)); });
  }

  corral::sdk::Endpoint local_endpoint() const override { return loop_.local_endpoint(); }

 private:
  void handshake(tcp::socket socket);

  TlsTransport& transport_;
  corral::stream::AcceptLoop loop_;
  Profile& profile_;
  corral::sdk::ListenOptions lo_;
  corral::sdk::Transport::AcceptFn on_accept_;
  std::shared_ptr<size_t> handshaking_ = std::make_shared<size_t>(0);
  corral::common::Lifeline alive_;
};

}  // namespace

// One accepted socket on its way to a connection: the first byte tells TLS
// from plaintext (when both are taken), then the handshake, within the deadline.
struct Accepting : std::enable_shared_from_this<Accepting> {
  Accepting(TlsTransport& t, tcp::socket socket, std::shared_ptr<ssl::context> ctx,
            std::shared_ptr<size_t> count)
      : transport(t),
        in_flight(std::move(count)),
        ctx(std::move(ctx)),
        stream(std::make_unique<Stream>(std::move(socket), *this->ctx)),
        timer(stream->get_executor()) {
    boost::system::error_code ec;
    remote = format(stream->next_layer().remote_endpoint(ec));
  }
  ~Accepting() { --*in_flight; }

  TlsTransport& transport;
  std::shared_ptr<size_t> in_flight;  // the listener's handshakes in flight
  std::shared_ptr<ssl::context> ctx;
  std::unique_ptr<Stream> stream;
  asio::steady_timer timer;
  std::string remote;
  bool finished = false;

  void refuse(const std::string& why) {
    if (finished) return;
    finished = true;
    timer.cancel();
    boost::system::error_code ec;
    stream->next_layer().close(ec);
    if (transport.failures) transport.failures->inc();
    transport.refusals.log(transport.host().logger(), "TLS: refusing " + remote + ": " + why);
  }
};

void TlsListener::handshake(tcp::socket socket) {
  const Options& opt = transport_.options();
  // Each port has its own cap, so that strangers holding handshakes open on
  // the client port cannot keep the peers from reconnecting.
  if (*handshaking_ >= opt.max_handshaking) {
    boost::system::error_code ec;
    transport_.refusals.log(transport_.host().logger(),
                            "TLS: refusing a connection on " + local_endpoint().to_string() + ": " +
                                std::to_string(*handshaking_) +
                                " handshakes are already in flight on this port");
    socket.close(ec);
    return;
  }
  if (opt.stream.no_delay) {
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
  }
  ++*handshaking_;
  auto a = std::make_shared<Accepting>(transport_, std::move(socket), profile_.material.context,
                                       handshaking_);
  a->timer.expires_after(std::chrono::milliseconds(opt.handshake_timeout_ms));
  a->timer.async_wait([a](boost::system::error_code ec) {
    if (!ec)
      a->refuse("it did not finish the TLS handshake within " +
                std::to_string(a->transport.options().handshake_timeout_ms) + " ms");
  });
  auto deliver = [this, a, alive = alive_.ref()](bool encrypted) {
    if (a->finished) return;
    a->finished = true;
    a->timer.cancel();
    if (!alive) return;
    try {
      auto conn = std::make_shared<TlsConnection>(std::move(a->stream), a->ctx, encrypted,
                                                  transport_.options());
      if (std::string why = transport_.track(profile_.purpose, conn); !why.empty()) {
        conn->cut(Status{Errc::invalid_argument, why});
        if (transport_.failures) transport_.failures->inc();
        transport_.refusals.log(transport_.host().logger(),
                                "TLS: refusing " + a->remote + ": " + why);
        return;
      }
      on_accept_(std::move(conn));
    } catch (const std::exception& e) {
      transport_.host().logger().warn("accepting a connection on " + local_endpoint().to_string() +
                                      " failed: " + e.what());
    }
  };
  auto start_tls = [a, deliver] {
    a->stream->async_handshake(
        ssl::stream_base::server, [a, deliver](boost::system::error_code ec) {
          if (a->finished) return;
          if (ec) {
            std::string why = corral::tls::verify_failure(a->stream->native_handle());
            a->refuse("TLS handshake failed: " + (why.empty() ? ec.message() : why));
            return;
          }
          deliver(true);
        });
  };
  // The first byte tells a TLS handshake (a record of type 0x16) from
  // plaintext: taken when the port takes both, else refused at once with a
  // line that says what happened.
  bool plaintext_ok = lo_.accept_plaintext;
  a->stream->next_layer().async_wait(
      tcp::socket::wait_read, [a, deliver, start_tls, plaintext_ok](boost::system::error_code ec) {
        if (a->finished) return;
        if (ec) return a->refuse("it closed before saying anything");
        unsigned char first = 0;
        boost::system::error_code pec;
        size_t n = a->stream->next_layer().receive(asio::buffer(&first, 1),
                                                   tcp::socket::message_peek, pec);
        if (pec || n == 0) return a->refuse("it closed before saying anything");
        if (first == 0x16) return start_tls();  // a TLS handshake record
        if (!plaintext_ok)
          return a->refuse("it speaks plaintext on a TLS port (a client without TLS?)");
        deliver(false);
      });
}

corral::sdk::Result<std::unique_ptr<corral::sdk::Listener>> TlsTransport::listen(
    const corral::sdk::Endpoint& where, const corral::sdk::ListenOptions& lo, AcceptFn on_accept) {
  Profile* p = profile(lo.purpose);
  if (!p) return last_error_;
  asio::io_context& io = host_->executor().io_context();
  auto ep = corral::stream::resolve_listen(io, where);
  if (!ep) return ep.status();
  auto listener = std::make_unique<TlsListener>(*this, io, *p, lo);
  Status st = listener->open(ep.value(), where.to_string(), opt_.stream.backlog);
  if (!st) return st;
  listener->accept(std::move(on_accept));
  return std::unique_ptr<corral::sdk::Listener>(std::move(listener));
}

void TlsTransport::connect(const corral::sdk::Endpoint& where, int64_t timeout_ms,
                           const corral::sdk::ConnectOptions& co, ConnectFn done) {
  Profile* p = profile(co.purpose);
  if (!p) {
    Status why = last_error_;
    host_->executor().post([done = std::move(done), why] { done(why); });
    return;
  }
  asio::io_context& io = host_->executor().io_context();
  using Dial = corral::stream::Dial<std::unique_ptr<Stream>>;
  std::shared_ptr<ssl::context> ctx = p->material.context;
  auto d = std::make_shared<Dial>(io, std::make_unique<Stream>(io, *ctx), ctx);
  // The dialer always checks the other side's certificate against its
  // authorities; whose certificate it must be is the caller's to check.
  d->stream->set_verify_mode(ssl::verify_peer);
  boost::system::error_code aec;
  asio::ip::make_address(where.host, aec);
  if (aec) SSL_set_tlsext_host_name(d->stream->native_handle(), where.host.c_str());
  auto track = [this, alive = alive_.ref(),
                purpose = co.purpose](const std::shared_ptr<TlsConnection>& c) {
    return alive ? this->track(purpose, c) : std::string();
  };
  // The deadline covers the handshake too.
  d->start(where, timeout_ms, opt_.stream.no_delay, std::move(done),
           [ctx, opt = opt_, track](const std::shared_ptr<Dial>& d) {
             d->stream->async_handshake(
                 ssl::stream_base::client, [d, ctx, opt, track](boost::system::error_code ec) {
                   if (d->finished) return;  // the deadline passed first
                   if (ec) {
                     std::string why = corral::tls::verify_failure(d->stream->native_handle());
                     return d->finish(Status{Errc::unavailable,
                                             "TLS handshake with " + d->shown +
                                                 " failed: " + (why.empty() ? ec.message() : why)});
                   }
                   auto conn =
                       std::make_shared<TlsConnection>(std::move(d->stream), ctx, true, opt);
                   if (std::string why = track(conn); !why.empty()) {
                     conn->cut(Status{Errc::invalid_argument, why});
                     return d->finish(
                         Status{Errc::unavailable, "TLS handshake with " + d->shown + ": " + why});
                   }
                   d->finish(std::shared_ptr<corral::sdk::Connection>(std::move(conn)));
                 });
           });
}

std::string TlsTransport::track(StreamPurpose purpose, const std::shared_ptr<TlsConnection>& conn) {
  // Only a purpose that checks revocation has lists that can change.
  const Profile& p = profiles_[purpose];
  if (!conn->security().peer_verified || p.settings.crl.empty()) return "";
  // A handshake that began before the lists were last read was checked
  // against the older ones: check it against those in use now.
  if (&conn->context() != p.material.context.get())
    if (std::string why = conn->revoked(*p.material.context); !why.empty())
      return "its " + why + " (revocation list " + p.settings.crl + ")";
  Live& live = live_[purpose];
  // The closed ones are forgotten once the list has doubled since the last
  // sweep: at most twice the open connections (and 64) are held.
  if (live.conns.size() >= live.sweep_at) {
    std::erase_if(live.conns, [](const std::weak_ptr<TlsConnection>& w) { return w.expired(); });
    live.sweep_at = std::max<size_t>(64, 2 * live.conns.size());
  }
  live.conns.push_back(conn);
  return "";
}

// A new revocation list applies to connections already open too: one whose
// certificate it names is closed, with a line that says whose and why.
void TlsTransport::cut_revoked(StreamPurpose purpose, const Profile& p) {
  auto it = live_.find(purpose);
  if (it == live_.end()) return;
  std::vector<std::pair<std::shared_ptr<TlsConnection>, std::string>> cut;
  std::erase_if(it->second.conns, [&](const std::weak_ptr<TlsConnection>& w) {
    auto c = w.lock();
    if (!c) return true;
    std::string why = c->revoked(*p.material.context);
    if (why.empty()) return false;
    cut.emplace_back(std::move(c), std::move(why));
    return true;
  });
  // Closed after the walk: an owner hearing of it may open or close others.
  for (auto& [conn, why] : cut) {
    host_->logger().warn("TLS: closing the " + std::string(purpose_name(purpose)) +
                         " connection with " + conn->remote_address() + ": its " + why +
                         " (revocation list " + p.settings.crl + ")");
    if (failures) failures->inc();
    conn->cut(Status{Errc::invalid_argument, "its " + why});
  }
}

}  // namespace corral::tls_plugin

CORRAL_PLUGIN(transport, "tls", corral::tls_plugin::TlsTransport,
              "TLS 1.2/1.3 byte streams over Boost.Asio and OpenSSL")
