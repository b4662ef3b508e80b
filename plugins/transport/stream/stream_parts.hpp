// What the byte-stream transports (`tcp`, `tls`) have in common, so each
// keeps only what differs — how it reads, and the TLS handshake:
//
//   StreamOptions / read_stream_options  no_delay, read_buffer_bytes,
//                                        listen_backlog from the plugin table
//   StreamConnection<Derived>            a connection's write queue, close
//                                        with a bounded flush, failure and
//                                        shutdown, and the handler calls
//   AcceptLoop                           a listening socket that accepts
//                                        forever, backing off when out of
//                                        descriptors or memory
//   Dial<Stream>                         resolve and connect within a
//                                        deadline that also covers what the
//                                        caller does next (a handshake)
//
// Header-only: each transport module compiles it into itself, so the
// modules share no code at run time and neither depends on the other.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "corral/common/lifeline.hpp"
#include "corral/sdk/host.hpp"
#include "corral/sdk/transport.hpp"

namespace corral::stream {

namespace asio = boost::asio;
using asio::ip::tcp;
using sdk::Errc;
using sdk::Status;

inline std::string format(const tcp::endpoint& ep) {
  std::string host = ep.address().to_string();
  if (ep.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

struct StreamOptions {
  bool no_delay = true;
  size_t read_buffer = 64 * 1024;
  int backlog = 1024;
};

// The keys every stream transport takes; the caller has checked that `cfg`
// holds no key it does not know.
inline Status read_stream_options(const sdk::ConfigTable& cfg, StreamOptions& out) {
  auto nd = cfg.get_bool("no_delay", true);
  if (!nd) return nd.status();
  auto rb = cfg.get_int("read_buffer_bytes", 64 * 1024);
  if (!rb) return rb.status();
  if (rb.value() < 512 || rb.value() > (64 << 20))
    return cfg.invalid("read_buffer_bytes", "between 512 and 67108864");
  auto bl = cfg.get_int("listen_backlog", 1024);
  if (!bl) return bl.status();
  if (bl.value() < 1 || bl.value() > 65535)
    return cfg.invalid("listen_backlog", "between 1 and 65535");
  out = {nd.value(), static_cast<size_t>(rb.value()), static_cast<int>(bl.value())};
  return {};
}

// The endpoint a listener binds: "" listens on every IPv4 address.
inline sdk::Result<tcp::endpoint> resolve_listen(asio::io_context& io, const sdk::Endpoint& where) {
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(where.host.empty() ? "0.0.0.0" : where.host,
                                  std::to_string(where.port), tcp::resolver::passive, ec);
  if (ec || results.empty())
    return Status{Errc::invalid_argument,
                  "listen on " + where.to_string() + ": cannot resolve: " + ec.message()};
  return results.begin()->endpoint();
}

// A connection's sending side and its end. Derived provides
//   tcp::socket& socket();                     the TCP socket underneath
//   void read();                               start or resume reading
//   template <class H> void write_bytes(asio::const_buffer, H&&);
// and reads however it likes, handing what it read to deliver(). With
// `coalesce`, what is sent during one turn of the loop goes out as one write
// at the end of the turn (a TLS record costs far more than its bytes);
// without, a send while no write is in flight is written at once and the
// ones after it wait and go out together.
template <class Derived>
class StreamConnection : public sdk::Connection, public std::enable_shared_from_this<Derived> {
 public:
  void start(sdk::ConnectionHandler* handler) override {
    handler_ = handler;
    self().read();
  }

  void send(sdk::Bytes data) override {
    if (closed_ || data.empty()) return;
    if (!coalesce_ && !write_in_flight_ && pending_.empty()) {
      writing_ = std::move(data);
      return write();
    }
    if (pending_.empty() && data.size() >= kKeptWriteBytes)
      pending_ = std::move(data);  // a large message is not copied (a SNAP)
    else
      pending_ += data;
    if (write_in_flight_ || flush_posted_) return;
    flush_posted_ = true;
    asio::post(self().socket().get_executor(), [s = this->shared_from_this()] {
      s->flush_posted_ = false;
      if (s->write_in_flight_ || s->pending_.empty() || !s->socket().is_open()) return;
      s->writing_.swap(s->pending_);
      s->write();
    });
  }
  size_t queued_bytes() const override { return writing_.size() + pending_.size(); }

  // What is queued is still sent; a peer that does not read would hold the
  // socket and its bytes for good, so a flush unfinished after
  // kFlushOnCloseLimit is abandoned.
  void close() override {
    if (closed_) return;
    closed_ = true;
    handler_ = nullptr;
    if (!write_in_flight_ && !pending_.empty()) {
      writing_.swap(pending_);
      write();
    }
    if (!write_in_flight_) return shutdown();
    linger_ = std::make_unique<asio::steady_timer>(self().socket().get_executor());
    linger_->expires_after(kFlushOnCloseLimit);
    linger_->async_wait([s = this->shared_from_this()](boost::system::error_code ec) {
      if (!ec) s->shutdown();
    });
  }

  void pause_reading(bool paused) override {
    paused_ = paused;
    if (!paused_ && !read_in_flight_ && !closed_) self().read();
  }
  std::string remote_address() const override { return remote_; }
  std::string local_address() const override { return local_; }

 protected:
  StreamConnection(tcp::socket& socket, bool coalesce) : coalesce_(coalesce) {
    boost::system::error_code ec;
    remote_ = format(socket.remote_endpoint(ec));
    local_ = format(socket.local_endpoint(ec));
  }

  Derived& self() { return static_cast<Derived&>(*this); }

  // Hands bytes read to the handler. A handler that throws loses its
  // connection, never the server. False when the connection is gone.
  bool deliver(sdk::BytesView data) {
    try {
      handler_->on_data(data);
    } catch (const std::exception& e) {
      fail(Status(Errc::internal, "handling data from " + remote_ + " failed: " + e.what()));
      return false;
    } catch (...) {
      fail(Status(Errc::internal, "handling data from " + remote_ + " failed"));
      return false;
    }
    return !closed_;
  }

  void write() {
    write_in_flight_ = true;
    self().write_bytes(asio::buffer(writing_), [s = this->shared_from_this()](
                                                   boost::system::error_code ec, size_t) {
      s->write_in_flight_ = false;
      // A large reply's room goes back once it is written.
      if (s->writing_.capacity() > kKeptWriteBytes)
        std::string().swap(s->writing_);
      else
        s->writing_.clear();
      if (ec) {
        s->pending_.clear();
        if (!s->closed_)
          s->fail(Status(Errc::io_error, "write to " + s->remote_ + ": " + ec.message()));
        else
          s->shutdown();
        return;
      }
      if (!s->pending_.empty()) {
        s->writing_.swap(s->pending_);
        s->write();
      } else if (s->closed_) {
        s->shutdown();
      } else if (s->handler_) {
        try {
          s->handler_->on_drained();
        } catch (...) {
          s->fail(Status(Errc::internal, "resuming " + s->remote_ + " failed"));
        }
      }
    });
  }

  void fail(const Status& why) {
    auto* h = handler_;
    closed_ = true;
    handler_ = nullptr;
    shutdown();
    if (h) h->on_closed(why);
  }

  // The TCP stream ends without waiting for anything from the other side,
  // which a peer that stopped reading would never send.
  void shutdown() {
    boost::system::error_code ec;
    self().socket().shutdown(tcp::socket::shutdown_both, ec);
    self().socket().close(ec);
    if (linger_) linger_->cancel();
  }

  static constexpr std::chrono::seconds kFlushOnCloseLimit{10};
  static constexpr size_t kKeptWriteBytes = 64 << 10;

  sdk::ConnectionHandler* handler_ = nullptr;
  std::string remote_, local_;
  bool read_in_flight_ = false, closed_ = false, paused_ = false;

 private:
  const bool coalesce_;
  std::unique_ptr<asio::steady_timer> linger_;
  std::string writing_, pending_;
  bool write_in_flight_ = false, flush_posted_ = false;
};

// A listening socket that hands every accepted socket to `on_socket`. Out
// of descriptors or memory, the pending connection stays in the backlog and
// the next accept would fail at once, so it waits 100 ms before trying
// again instead of spinning (said once in the log); other errors
// (ECONNABORTED) are one connection's and passed over.
class AcceptLoop {
 public:
  using OnSocket = std::function<void(tcp::socket)>;

  AcceptLoop(asio::io_context& io, sdk::Logger& log) : acceptor_(io), backoff_(io), log_(log) {}
  ~AcceptLoop() {
    alive_.end();
    boost::system::error_code ec;
    acceptor_.close(ec);
    backoff_.cancel();
  }
  AcceptLoop(const AcceptLoop&) = delete;
  AcceptLoop& operator=(const AcceptLoop&) = delete;

  Status open(const tcp::endpoint& ep, const std::string& shown, int backlog) {
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(backlog, ec);
    if (ec) return {Errc::io_error, "listen on " + shown + ": " + ec.message()};
    return {};
  }

  void start(OnSocket on_socket) {
    on_socket_ = std::move(on_socket);
    next();
  }

  sdk::Endpoint local_endpoint() const {
    boost::system::error_code ec;
    auto ep = acceptor_.local_endpoint(ec);
    return {ep.address().to_string(), ep.port()};
  }

 private:
  void next() {
    acceptor_.async_accept(
        [this, alive = alive_.ref()](boost::system::error_code ec, tcp::socket socket) {
          if (!alive || ec == asio::error::operation_aborted) return;
          if (!ec) {
            backing_off_logged_ = false;
            try {
              on_socket_(std::move(socket));
            } catch (const std::exception& e) {
              log_.warn("accepting a connection on " + local_endpoint().to_string() +
                        " failed: " + e.what());
            }
            next();
            return;
          }
          if (ec == asio::error::no_descriptors || ec.value() == ENFILE ||
              ec == asio::error::no_buffer_space || ec == asio::error::no_memory) {
            if (!backing_off_logged_)
              log_.warn("cannot accept on " + local_endpoint().to_string() + ": " + ec.message() +
                        "; accepting again every 100 ms until it can");
            backing_off_logged_ = true;
            backoff_.expires_after(std::chrono::milliseconds(100));
            backoff_.async_wait([this, alive](boost::system::error_code wec) {
              if (alive && !wec) next();
            });
            return;
          }
          backing_off_logged_ = false;
          next();
        });
  }

  tcp::acceptor acceptor_;
  asio::steady_timer backoff_;
  sdk::Logger& log_;
  bool backing_off_logged_ = false;
  OnSocket on_socket_;
  common::Lifeline alive_;
};

// One outgoing connection: resolves `where`, connects the stream's TCP
// socket, then calls `connected`, which finishes the dial (or goes on, e.g.
// with a handshake, and finishes it later). The deadline covers all of it:
// when it passes first, the socket is closed and `done` hears "timed out";
// whatever finishes second is ignored. `Stream` is tcp::socket or a
// std::unique_ptr to a stream whose lowest_layer() is the socket.
template <class Stream>
struct Dial : std::enable_shared_from_this<Dial<Stream>> {
  using Done = sdk::Transport::ConnectFn;

  Dial(asio::io_context& io, Stream s, std::shared_ptr<void> keep = nullptr)
      : keep_alive(std::move(keep)), stream(std::move(s)), resolver(io), timer(io) {}

  tcp::socket& socket() {
    if constexpr (std::is_same_v<Stream, tcp::socket>)
      return stream;
    else
      return stream->next_layer();
  }

  void finish(sdk::Result<std::shared_ptr<sdk::Connection>> r) {
    if (finished) return;
    finished = true;
    timer.cancel();
    done(std::move(r));
  }

  void start(const sdk::Endpoint& where, int64_t timeout_ms, bool no_delay, Done on_done,
             std::function<void(const std::shared_ptr<Dial>&)> on_connected) {
    done = std::move(on_done);
    connected = std::move(on_connected);
    shown = where.to_string();
    timer.expires_after(std::chrono::milliseconds(timeout_ms));
    timer.async_wait([d = this->shared_from_this()](boost::system::error_code ec) {
      if (ec || d->finished) return;
      d->resolver.cancel();
      boost::system::error_code ignored;
      d->socket().close(ignored);
      d->finish(Status{Errc::unavailable, "connect to " + d->shown + ": timed out"});
    });
    resolver.async_resolve(
        where.host, std::to_string(where.port),
        [d = this->shared_from_this(), no_delay](boost::system::error_code ec,
                                                 tcp::resolver::results_type results) {
          if (d->finished) return;
          if (ec)
            return d->finish(
                Status{Errc::unavailable, "resolve " + d->shown + ": " + ec.message()});
          asio::async_connect(
              d->socket(), results,
              [d, no_delay](boost::system::error_code ec, const tcp::endpoint&) {
                if (d->finished) return;
                if (ec)
                  return d->finish(
                      Status{Errc::unavailable, "connect to " + d->shown + ": " + ec.message()});
                if (no_delay) {
                  boost::system::error_code ignored;
                  d->socket().set_option(tcp::no_delay(true), ignored);
                }
                d->connected(d);
              });
        });
  }

  std::shared_ptr<void> keep_alive;  // outlives the stream (its TLS context)
  Stream stream;
  tcp::resolver resolver;
  asio::steady_timer timer;
  Done done;
  std::function<void(const std::shared_ptr<Dial>&)> connected;
  std::string shown;
  bool finished = false;
};

}  // namespace corral::stream
