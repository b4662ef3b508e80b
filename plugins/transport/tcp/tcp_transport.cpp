// The `tcp` transport: byte streams over TCP with Boost.Asio, on the kernel's
// event loop. Writes queued while one is in flight go out together in the
// next write, so a burst of replies costs one syscall.
//
// Reads hold no buffer while they wait: a connection waits for its socket to
// be readable, then reads what is there into the transport's one read buffer
// (every connection runs on the one loop, and the handler copies what it
// keeps before on_data returns), until the socket would block. So an idle
// connection costs its socket and this object, not read_buffer_bytes.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "corral/common/lifeline.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/transport.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using corral::sdk::Errc;
using corral::sdk::Status;

std::string format(const tcp::endpoint& ep) {
  boost::system::error_code ec;
  std::string host = ep.address().to_string();
  if (ep.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

struct Options {
  bool no_delay = true;
  size_t read_buffer = 64 * 1024;
  int backlog = 1024;
};

// The read buffer every connection of one transport reads into, made on
// first use (a transport that never reads allocates nothing).
struct ReadBuffer {
  explicit ReadBuffer(size_t size) : size(size) {}
  char* data() {
    if (!bytes) bytes = std::make_unique<char[]>(size);
    return bytes.get();
  }
  size_t size;
  std::unique_ptr<char[]> bytes;
};

class TcpConnection final : public corral::sdk::Connection,
                            public std::enable_shared_from_this<TcpConnection> {
 public:
  TcpConnection(tcp::socket socket, const Options& opt, std::shared_ptr<ReadBuffer> buf)
      : socket_(std::move(socket)), buf_(std::move(buf)) {
    boost::system::error_code ec;
    if (opt.no_delay) socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);  // reads below never block the loop
    remote_ = format(socket_.remote_endpoint(ec));
    local_ = format(socket_.local_endpoint(ec));
  }

  void start(corral::sdk::ConnectionHandler* handler) override {
    handler_ = handler;
    read();
  }

  void send(corral::sdk::Bytes data) override;
  size_t queued_bytes() const override { return writing_.size() + pending_.size(); }

  void close() override {
    if (closed_) return;
    closed_ = true;
    handler_ = nullptr;
    if (!write_in_flight_) return shutdown();
    // The write completion flushes what is queued, then shuts down; a peer
    // that does not read would hold the socket and its bytes for good, so a
    // flush still unfinished after kFlushOnCloseLimit is abandoned.
    linger_ = std::make_unique<asio::steady_timer>(socket_.get_executor());
    linger_->expires_after(kFlushOnCloseLimit);
    linger_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->shutdown();
    });
  }

  void pause_reading(bool paused) override {
    paused_ = paused;
    if (!paused_ && !read_in_flight_ && !closed_) read();
  }
  std::string remote_address() const override { return remote_; }
  std::string local_address() const override { return local_; }

 private:
  // Starts reading (or resumes it) on a later turn of the loop, so that
  // on_data never runs inside start() or pause_reading().
  void read() {
    if (paused_ || read_in_flight_ || closed_) return;
    read_in_flight_ = true;
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->read_in_flight_ = false;
      self->drain();
    });
  }

  // Reads what the socket holds until it would block, then waits for more.
  // Only then, as the edge-triggered epoll under the loop wants it: readiness
  // signalled while no wait was pending (bytes, or the peer's FIN, that came
  // during a pause) is not promised to be signalled again. A connection takes
  // at most kReadsPerTurn reads in a row before the others get a turn.
  void drain() {
    boost::system::error_code ec;
    for (int i = 0; i < kReadsPerTurn; ++i) {
      if (paused_ || closed_ || !handler_) return;
      size_t n = socket_.read_some(asio::buffer(buf_->data(), buf_->size), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) return wait();
      if (ec == asio::error::interrupted) continue;
      if (ec) {
        fail(ec == asio::error::eof
                 ? Status()
                 : Status(Errc::io_error, "read from " + remote_ + ": " + ec.message()));
        return;
      }
      // A handler that throws loses its connection, never the server.
      try {
        handler_->on_data(corral::sdk::BytesView(buf_->data(), n));
      } catch (const std::exception& e) {
        fail(Status(Errc::internal, "handling data from " + remote_ + " failed: " + e.what()));
        return;
      } catch (...) {
        fail(Status(Errc::internal, "handling data from " + remote_ + " failed"));
        return;
      }
    }
    read();
  }

  void wait() {
    if (paused_ || read_in_flight_ || closed_) return;
    read_in_flight_ = true;
    socket_.async_wait(
        tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
          self->read_in_flight_ = false;
          if (self->closed_ || !self->handler_) return;
          if (ec && ec != asio::error::operation_aborted) {
            self->fail(Status(Errc::io_error, "read from " + self->remote_ + ": " + ec.message()));
            return;
          }
          if (!ec) self->drain();
        });
  }

  void write() {
    write_in_flight_ = true;
    asio::async_write(
        socket_, asio::buffer(writing_),
        [self = shared_from_this()](boost::system::error_code ec, size_t) {
          self->write_in_flight_ = false;
          // A large reply's room goes back once it is written.
          if (self->writing_.capacity() > kKeptWriteBytes)
            std::string().swap(self->writing_);
          else
            self->writing_.clear();
          if (ec) {
            self->pending_.clear();
            if (!self->closed_)
              self->fail(Status(Errc::io_error, "write to " + self->remote_ + ": " + ec.message()));
            else
              self->shutdown();
            return;
          }
          if (!self->pending_.empty()) {
            self->writing_.swap(self->pending_);
            self->write();
          } else if (self->closed_) {
            self->shutdown();
          } else if (self->handler_) {
            try {
              self->handler_->on_drained();
            } catch (...) {
              self->fail(Status(Errc::internal, "resuming " + self->remote_ + " failed"));
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

  void shutdown() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    if (linger_) linger_->cancel();
  }

  static constexpr std::chrono::seconds kFlushOnCloseLimit{10};
  static constexpr int kReadsPerTurn = 16;
  static constexpr size_t kKeptWriteBytes = 64 << 10;
  std::unique_ptr<asio::steady_timer> linger_;

  tcp::socket socket_;
  std::shared_ptr<ReadBuffer> buf_;
  corral::sdk::ConnectionHandler* handler_ = nullptr;
  std::string writing_, pending_;
  std::string remote_, local_;
  bool write_in_flight_ = false, read_in_flight_ = false, closed_ = false, paused_ = false;
};

void TcpConnection::send(corral::sdk::Bytes data) {
  if (closed_ || data.empty()) return;
  if (write_in_flight_) {
    pending_ += data;
    return;
  }
  writing_ = std::move(data);
  write();
}

class TcpListener final : public corral::sdk::Listener {
 public:
  TcpListener(asio::io_context& io, const Options& opt, std::shared_ptr<ReadBuffer> buf,
              corral::sdk::Logger& log)
      : acceptor_(io), backoff_(io), opt_(opt), buf_(std::move(buf)), log_(log) {}
  ~TcpListener() override {
    alive_.end();
    boost::system::error_code ec;
    acceptor_.close(ec);
    backoff_.cancel();
  }

  Status open(const tcp::endpoint& ep, const std::string& shown) {
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(opt_.backlog, ec);
    if (ec) return {Errc::io_error, "listen on " + shown + ": " + ec.message()};
    return {};
  }

  void accept(corral::sdk::Transport::AcceptFn on_accept) {
    on_accept_ = std::move(on_accept);
    next();
  }

  corral::sdk::Endpoint local_endpoint() const override {
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
              on_accept_(std::make_shared<TcpConnection>(std::move(socket), opt_, buf_));
            } catch (const std::exception& e) {
              log_.warn("accepting a connection on " + local_endpoint().to_string() +
                        " failed: " + e.what());
            }
            next();
            return;
          }
          // Out of descriptors or memory: the pending connection stays in the
          // backlog and the next accept would fail at once, so wait before trying
          // again instead of spinning. Other errors (ECONNABORTED) are one
          // connection's and passed over.
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
  bool backing_off_logged_ = false;
  Options opt_;
  std::shared_ptr<ReadBuffer> buf_;
  corral::sdk::Logger& log_;
  corral::sdk::Transport::AcceptFn on_accept_;
  corral::common::Lifeline alive_;
};

class TcpTransport final : public corral::sdk::Transport {
 public:
  Status init(corral::sdk::PluginHost& host) override {
    host_ = &host;
    const auto& cfg = host.config();
    for (const std::string& key : cfg.keys()) {
      if (key != "no_delay" && key != "read_buffer_bytes" && key != "listen_backlog")
        return cfg.invalid(key, "one of no_delay, read_buffer_bytes, listen_backlog (unknown key)");
    }
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
    opt_ = {nd.value(), static_cast<size_t>(rb.value()), static_cast<int>(bl.value())};
    buf_ = std::make_shared<ReadBuffer>(opt_.read_buffer);
    return {};
  }

  corral::sdk::Result<std::unique_ptr<corral::sdk::Listener>> listen(
      const corral::sdk::Endpoint& where, const corral::sdk::ListenOptions&,
      AcceptFn on_accept) override {
    asio::io_context& io = host_->executor().io_context();
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(where.host.empty() ? "0.0.0.0" : where.host,
                                    std::to_string(where.port), tcp::resolver::passive, ec);
    if (ec || results.empty())
      return Status{Errc::invalid_argument,
                    "listen on " + where.to_string() + ": cannot resolve: " + ec.message()};
    auto listener = std::make_unique<TcpListener>(io, opt_, buf_, host_->logger());
    Status st = listener->open(results.begin()->endpoint(), where.to_string());
    if (!st) return st;
    listener->accept(std::move(on_accept));
    return std::unique_ptr<corral::sdk::Listener>(std::move(listener));
  }

  void connect(const corral::sdk::Endpoint& where, int64_t timeout_ms,
               const corral::sdk::ConnectOptions&, ConnectFn done) override {
    asio::io_context& io = host_->executor().io_context();
    struct Attempt {
      Attempt(asio::io_context& io) : resolver(io), socket(io), timer(io) {}
      tcp::resolver resolver;
      tcp::socket socket;
      asio::steady_timer timer;
      ConnectFn done;
      bool finished = false;
      void finish(corral::sdk::Result<std::shared_ptr<corral::sdk::Connection>> r) {
        if (finished) return;
        finished = true;
        timer.cancel();
        done(std::move(r));
      }
    };
    auto a = std::make_shared<Attempt>(io);
    a->done = std::move(done);
    std::string shown = where.to_string();
    Options opt = opt_;
    std::shared_ptr<ReadBuffer> buf = buf_;
    a->timer.expires_after(std::chrono::milliseconds(timeout_ms));
    a->timer.async_wait([a, shown](boost::system::error_code ec) {
      if (ec) return;
      a->resolver.cancel();
      boost::system::error_code ignored;
      a->socket.close(ignored);
      a->finish(Status{Errc::unavailable, "connect to " + shown + ": timed out"});
    });
    a->resolver.async_resolve(
        where.host, std::to_string(where.port),
        [a, shown, opt, buf](boost::system::error_code ec, tcp::resolver::results_type results) {
          if (a->finished) return;
          if (ec) {
            a->finish(Status{Errc::unavailable, "resolve " + shown + ": " + ec.message()});
            return;
          }
          asio::async_connect(
              a->socket, results,
              [a, shown, opt, buf](boost::system::error_code ec, const tcp::endpoint&) {
                if (a->finished) return;
                if (ec) {
                  a->finish(Status{Errc::unavailable, "connect to " + shown + ": " + ec.message()});
                  return;
                }
                a->finish(std::shared_ptr<corral::sdk::Connection>(
                    std::make_shared<TcpConnection>(std::move(a->socket), opt, buf)));
              });
        });
  }

 private:
  corral::sdk::PluginHost* host_ = nullptr;
  Options opt_;
  std::shared_ptr<ReadBuffer> buf_ = std::make_shared<ReadBuffer>(opt_.read_buffer);
};

}  // namespace

CORRAL_PLUGIN(transport, "tcp", TcpTransport, "TCP byte streams over Boost.Asio")
