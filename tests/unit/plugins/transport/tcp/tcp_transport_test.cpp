// The tcp transport plugin, loaded as corrald loads it, on a real loopback
// socket: reads go through one small shared buffer yet every byte arrives
// in order, a paused connection keeps its bytes (and the peer's close) for
// when it resumes, and a handler that throws loses only its connection.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <optional>

#include "config/config.hpp"
#include "corral/sdk/transport.hpp"
#include "plugin/host_services.hpp"
#include "plugin/loader.hpp"

using namespace corral;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

struct Handler final : sdk::ConnectionHandler {
  std::shared_ptr<sdk::Connection> conn;
  std::string got;
  std::optional<sdk::Status> closed;
  bool pause_at_first = false, throw_at_first = false;
  int calls = 0;

  void on_data(sdk::BytesView data) override {
    ++calls;
    got.append(data);
    if (throw_at_first && calls == 1) throw std::runtime_error("a handler bug");
    if (pause_at_first && calls == 1) conn->pause_reading(true);
  }
  void on_closed(const sdk::Status& why) override { closed = why; }
};

class TcpTransportTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(load({"transport.tcp.read_buffer_bytes=512"})); }

  // Sockets first, then the loop's services (whose code is the plugin's),
  // then the plugin module itself.
  void TearDown() override {
    for (auto& h : handlers_) h->conn->close();  // an owner closes before it goes
    handlers_.clear();
    listener_.reset();
    io_->restart();
    io_->poll();
    host_.reset();
    io_.reset();
    transport_.reset();
  }

  sdk::Status load(std::vector<std::string> settings) {
    auto cfg = kernel::load_config(std::nullopt, settings);
    if (!cfg) return cfg.status();
    config_ = std::make_unique<kernel::Config>(std::move(cfg.value()));
    host_ = std::make_unique<kernel::PluginHostImpl>(
        executor_, clock_, std::make_unique<kernel::StderrLogger>("tcp"), metrics_,
        config_->plugin_table("transport", "tcp"), info_);
    auto made = kernel::PluginLoader({CORRAL_TEST_PLUGIN_DIR})
                    .create<sdk::Transport>(sdk::PluginKind::transport, "tcp");
    if (!made) return made.status();
    transport_ = made.value();
    if (sdk::Status st = transport_->init(*host_); !st) return st;
    auto l = transport_->listen({"127.0.0.1", 0}, {}, [this](std::shared_ptr<sdk::Connection> c) {
      auto h = std::make_unique<Handler>();
      h->conn = c;
      h->pause_at_first = pause_at_first_;
      h->throw_at_first = throw_at_first_ && handlers_.empty();
      c->start(h.get());
      handlers_.push_back(std::move(h));
    });
    if (!l) return l.status();
    listener_ = std::move(l.value());
    return {};
  }

  tcp::socket dial() {
    tcp::socket s(*client_io_);
    s.connect({asio::ip::make_address("127.0.0.1"), listener_->local_endpoint().port});
    return s;
  }

  // Runs the server's loop until `done` or two seconds pass.
  template <typename F>
  bool run_until(F done) {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!done() && std::chrono::steady_clock::now() < end) {
      io_->restart();
      io_->run_one_for(std::chrono::milliseconds(10));
    }
    return done();
  }

  void run_for(std::chrono::milliseconds d) {
    auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
      io_->restart();
      io_->run_one_for(std::chrono::milliseconds(5));
    }
  }

  std::unique_ptr<asio::io_context> io_ = std::make_unique<asio::io_context>(),
                                    client_io_ = std::make_unique<asio::io_context>();
  kernel::AsioExecutor executor_{*io_};
  kernel::SystemClock clock_;
  kernel::MetricsRegistry metrics_;
  sdk::ServerInfo info_;
  std::unique_ptr<kernel::Config> config_;
  std::unique_ptr<kernel::PluginHostImpl> host_;
  std::shared_ptr<sdk::Transport> transport_;
  std::unique_ptr<sdk::Listener> listener_;
  std::vector<std::unique_ptr<Handler>> handlers_;
  bool pause_at_first_ = false, throw_at_first_ = false;
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

}  // namespace

TEST_F(TcpTransportTest, EveryByteArrivesInOrderThroughASmallSharedBuffer) {
  const std::string a = pattern(300'000), b = pattern(1000) + "end";
  tcp::socket s1 = dial(), s2 = dial();
  asio::write(s1, asio::buffer(a));
  asio::write(s2, asio::buffer(b));
  ASSERT_TRUE(run_until([&] {
    return handlers_.size() == 2 && handlers_[0]->got.size() == a.size() &&
           handlers_[1]->got.size() == b.size();
  }));
  // Two connections, one 512-byte buffer: each kept only its own bytes.
  EXPECT_EQ(handlers_[0]->got, a);
  EXPECT_EQ(handlers_[1]->got, b);
  EXPECT_GE(handlers_[0]->calls, static_cast<int>(a.size() / 512));
}

TEST_F(TcpTransportTest, APausedConnectionKeepsItsBytesAndThePeersCloseForLater) {
  pause_at_first_ = true;
  tcp::socket s = dial();
  asio::write(s, asio::buffer(std::string("first")));
  ASSERT_TRUE(run_until([&] { return !handlers_.empty() && handlers_[0]->calls == 1; }));
  // More bytes and then the peer's FIN while paused: nothing is read.
  asio::write(s, asio::buffer(pattern(4000)));
  s.shutdown(tcp::socket::shutdown_send);
  run_for(std::chrono::milliseconds(200));
  Handler& h = *handlers_[0];
  EXPECT_EQ(h.got, "first");
  EXPECT_FALSE(h.closed);
  // Resumed: what waited in the socket arrives, then the close, although
  // the socket signalled both long before.
  h.conn->pause_reading(false);
  ASSERT_TRUE(run_until([&] { return h.closed.has_value(); }));
  EXPECT_EQ(h.got, "first" + pattern(4000));
  EXPECT_TRUE(*h.closed) << h.closed->to_string();  // a clean end of stream
}

TEST_F(TcpTransportTest, AHandlerThatThrowsLosesOnlyItsConnection) {
  throw_at_first_ = true;
  tcp::socket bad = dial();
  asio::write(bad, asio::buffer(std::string("boom")));
  ASSERT_TRUE(run_until([&] { return !handlers_.empty() && handlers_[0]->closed; }));
  EXPECT_EQ(handlers_[0]->closed->code(), sdk::Errc::internal);
  EXPECT_NE(handlers_[0]->closed->message().find("a handler bug"), std::string::npos);
  tcp::socket good = dial();
  asio::write(good, asio::buffer(std::string("fine")));
  ASSERT_TRUE(run_until([&] { return handlers_.size() == 2 && handlers_[1]->got == "fine"; }));
  EXPECT_FALSE(handlers_[1]->closed);
}
