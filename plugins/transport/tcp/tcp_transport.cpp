// The `tcp` transport: byte streams over TCP with Boost.Asio, on the kernel's
// event loop. Writes queued while one is in flight go out together in the
// next write, so a burst of replies costs one syscall (the write queue,
// close, listening and dialling are shared with the `tls` transport:
// plugins/transport/stream/stream_parts.hpp).
//
// Reads hold no buffer while they wait: a connection waits for its socket to
// be readable, then reads what is there into the transport's one read buffer
// (every connection runs on the one loop, and the handler copies what it
// keeps before on_data returns), until the socket would block. So an idle
// connection costs its socket and this object, not read_buffer_bytes.
#include "corral/sdk/plugin.hpp"
#include "stream_parts.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using corral::sdk::Errc;
using corral::sdk::Status;
using corral::stream::StreamOptions;

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

class TcpConnection final : public corral::stream::StreamConnection<TcpConnection> {
 public:
  TcpConnection(tcp::socket socket, const StreamOptions& opt, std::shared_ptr<ReadBuffer> buf)
      : StreamConnection(socket, /*coalesce=*/false),
        socket_(std::move(socket)),
        buf_(std::move(buf)) {
    boost::system::error_code ec;
    if (opt.no_delay) socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);  // reads below never block the loop
  }

  tcp::socket& socket() { return socket_; }

  template <class Handler>
  void write_bytes(asio::const_buffer b, Handler&& h) {
    asio::async_write(socket_, b, std::forward<Handler>(h));
  }

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

 private:
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
      if (!deliver(corral::sdk::BytesView(buf_->data(), n))) return;
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

  static constexpr int kReadsPerTurn = 16;
  tcp::socket socket_;
  std::shared_ptr<ReadBuffer> buf_;
};

class TcpListener final : public corral::sdk::Listener {
 public:
  TcpListener(asio::io_context& io, corral::sdk::Logger& log) : loop_(io, log) {}
  corral::stream::AcceptLoop& loop() { return loop_; }
  corral::sdk::Endpoint local_endpoint() const override { return loop_.local_endpoint(); }

 private:
  corral::stream::AcceptLoop loop_;
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
    if (Status st = corral::stream::read_stream_options(cfg, opt_); !st) return st;
    buf_ = std::make_shared<ReadBuffer>(opt_.read_buffer);
    return {};
  }

  corral::sdk::Result<std::unique_ptr<corral::sdk::Listener>> listen(
      const corral::sdk::Endpoint& where, const corral::sdk::ListenOptions&,
      AcceptFn on_accept) override {
    asio::io_context& io = host_->executor().io_context();
    auto ep = corral::stream::resolve_listen(io, where);
    if (!ep) return ep.status();
    auto listener = std::make_unique<TcpListener>(io, host_->logger());
    Status st = listener->loop().open(ep.value(), where.to_string(), opt_.backlog);
    if (!st) return st;
    listener->loop().start(
        [on_accept = std::move(on_accept), opt = opt_, buf = buf_](tcp::socket socket) {
          on_accept(std::make_shared<TcpConnection>(std::move(socket), opt, buf));
        });
    return std::unique_ptr<corral::sdk::Listener>(std::move(listener));
  }

  void connect(const corral::sdk::Endpoint& where, int64_t timeout_ms,
               const corral::sdk::ConnectOptions&, ConnectFn done) override {
    asio::io_context& io = host_->executor().io_context();
    using Dial = corral::stream::Dial<tcp::socket>;
    auto d = std::make_shared<Dial>(io, tcp::socket(io));
    d->start(where, timeout_ms, opt_.no_delay, std::move(done),
             [opt = opt_, buf = buf_](const std::shared_ptr<Dial>& d) {
               d->finish(std::shared_ptr<corral::sdk::Connection>(
                   std::make_shared<TcpConnection>(std::move(d->stream), opt, buf)));
             });
  }

 private:
  corral::sdk::PluginHost* host_ = nullptr;
  StreamOptions opt_;
  std::shared_ptr<ReadBuffer> buf_ = std::make_shared<ReadBuffer>(opt_.read_buffer);
};

}  // namespace

CORRAL_PLUGIN(transport, "tcp", TcpTransport, "TCP byte streams over Boost.Asio")
