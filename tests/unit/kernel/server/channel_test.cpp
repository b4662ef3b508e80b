// A Channel driven through its one door (ChannelHost) by a host that applies
// writes to a real tree at once, over a link that records what is sent:
// the handshake, the FIFO, framing limits, four-letter words, watches and
// the outstanding-request and output limits, without a socket or consensus.
#include "server/channel.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <deque>
#include <fstream>

#include "corral/proto/jute.hpp"
#include "corral/proto/records.hpp"
#include "server/audit_log.hpp"
#include "server/channel_host.hpp"
#include "server/server_stats.hpp"
#include "tree/data_tree.hpp"
#include "tree/state_machine.hpp"
#include "tree/txn.hpp"
#include "watch/watch_manager.hpp"

using namespace corral;
using namespace corral::kernel;
using proto::Err;
using proto::OpCode;

namespace {

struct Link final : ChannelLink {
  std::string* out;
  bool* closed;
  bool* paused;
  size_t* queued;
  Link(std::string* o, bool* c, bool* p, size_t* q) : out(o), closed(c), paused(p), queued(q) {}
  void send(sdk::Bytes b) override { *out += b; }
  void close() override { *closed = true; }
  std::string remote_address() const override { return "127.0.0.1:40000"; }
  size_t queued_bytes() const override { return *queued; }
  void pause_reading(bool p) override { *paused = p; }
};

class Host final : public ChannelHost {
 public:
  Host() { sm_.set_last_applied(0); }

  // Entries submitted and not yet applied; commit() applies them in order.
  void commit() {
    while (!log_.empty()) {
      sdk::LogEntry e{++zxid_, 1700000000000, std::move(log_.front())};
      log_.pop_front();
      ApplyOutcome out = sm_.apply(e);
      watches_.trigger(out.changes, e.zxid, tree_);
      if (!channel) continue;
      if (static_cast<OpCode>(out.type) == OpCode::create_session)
        channel->on_session_created();
      else if (out.session == channel->session_id())
        if (audit_log) audit_log->applied(out.session, out.cxid, out.err == proto::Err::ok);
      channel->on_applied(out, e.zxid);
    }
  }
  void run_posted() {
    while (!posted_.empty()) {
      auto fn = std::move(posted_.front());
      posted_.pop_front();
      fn();
    }
  }
  Config cfg;
  Channel* channel = nullptr;
  int closed_channels = 0;
  std::vector<std::string> words;
  int waiting = 0;

  sdk::Executor& executor() override { return exec_; }
  const sdk::Clock& clock() const override { return clock_; }
  sdk::Logger& log() override { return log_sink_; }
  const Config& config() const override { return cfg; }
  ServerStats& stats() override { return stats_; }
  void observe_request(int32_t, double) override {}
  DataTree& tree() override { return tree_; }
  WatchManager& watches() override { return watches_; }
  sdk::Zxid last_zxid() const override { return sm_.last_applied(); }
  bool serving() const override { return true; }
  bool read_only_mode() const override { return false; }
  const std::vector<sdk::PeerSpec>& members() const override { return members_; }
  std::optional<std::string> four_letter(std::string_view w) override {
    words.emplace_back(w);
    if (w == "ruok") return std::string("imok");
    return std::nullopt;
  }
  const SaslUsers* sasl_users() const override { return nullptr; }
  std::string random_token() override { return "token"; }
  int32_t negotiate_timeout(int32_t requested) const override {
    return std::clamp(requested, 4000, 40000);
  }
  sdk::Status create_session(Channel&, int32_t timeout_ms, int64_t& id,
                             std::string& password) override {
    id = 0x1234;
    password = std::string(16, 'p');
    log_.push_back(encode_txn(static_cast<int32_t>(OpCode::create_session), id, 0,
                              session_payload(timeout_ms, password)));
    return {};
  }
  bool reattach_session(Channel&, int64_t, std::string_view, int32_t) override { return false; }
  bool read_only_session(int64_t, std::string_view, int64_t&, std::string&) override {
    return false;
  }
  bool touch_session(int64_t) override { return true; }
  void channel_closed(Channel&) override { ++closed_channels; }
  sdk::Status submit(int32_t type, int64_t session, int32_t cxid, std::string_view payload,
                     const Ids& ids) override {
    log_.push_back(encode_txn(type, session, cxid, payload, ids));
    return {};
  }
  void sync(std::function<void(const sdk::Status&)> done) override { done({}); }
  AuditLog* audit() override { return audit_log; }
  int64_t outstanding() const override { return outstanding_; }
  void add_outstanding(int64_t d) override { outstanding_ += d; }
  void wait_for_outstanding(Channel&) override { ++waiting; }
  AuditLog* audit_log = nullptr;
  sdk::Executor& exec() { return exec_; }
  const sdk::Clock& clk() { return clock_; }

 private:
  struct Exec final : sdk::Executor {
    explicit Exec(Host& h) : h(h) {}
    void post(std::function<void()> fn) override { h.posted_.push_back(std::move(fn)); }
    std::unique_ptr<Timer> schedule(std::chrono::milliseconds, std::function<void()>) override {
      return nullptr;
    }
    boost::asio::io_context& io_context() override { return io; }
    Host& h;
    boost::asio::io_context io;
  } exec_{*this};
  struct Clk final : sdk::Clock {
    int64_t steady_ms() const override { return 5000; }
    int64_t wall_ms() const override { return 1700000000000; }
  } clock_;
  struct Sink final : sdk::Logger {
    bool enabled(sdk::LogLevel) const override { return false; }
    void log(sdk::LogLevel, std::string_view) override {}
  } log_sink_;
  std::deque<std::function<void()>> posted_;
  std::deque<std::string> log_;
  sdk::Zxid zxid_ = 0;
  DataTree tree_;
  StateMachine sm_{tree_};
  WatchManager watches_;
  ServerStats stats_;
  std::vector<sdk::PeerSpec> members_;
  int64_t outstanding_ = 0;
};

struct Reply {
  int32_t xid = 0;
  int64_t zxid = 0;
  int32_t err = 0;
  std::string body;
};

class ChannelTest : public ::testing::Test {
 protected:
  void open() {
    channel =
        std::make_unique<Channel>(host, std::make_unique<Link>(&out, &closed, &paused, &queued), 1);
    host.channel = channel.get();
  }
  // A connect request, committed: the session is open.
  void connect() {
    open();
    std::string f;
    proto::JuteWriter w(f);
    size_t at = w.begin_frame();
    proto::write(w, proto::ConnectRequest{0, 0, 10000, 0, std::string(16, '\0'), false, true});
    w.finish_frame(at);
    channel->on_bytes(f);
    host.commit();
    host.run_posted();
    // The connect response.
    ASSERT_GE(out.size(), 4u);
    proto::JuteReader r(std::string_view(out).substr(4));
    proto::ConnectResponse resp;
    ASSERT_TRUE(proto::read(r, resp));
    EXPECT_EQ(resp.session_id, 0x1234);
    EXPECT_EQ(resp.timeout_ms, 10000);
    out.clear();
    ASSERT_TRUE(channel->established());
  }
  template <class Rec>
  std::string request(int32_t xid, OpCode op, const Rec& rec) {
    std::string f;
    proto::JuteWriter w(f);
    size_t at = w.begin_frame();
    proto::write(w, proto::RequestHeader{xid, static_cast<int32_t>(op)});
    proto::write(w, rec);
    w.finish_frame(at);
    return f;
  }
  std::string create(int32_t xid, const std::string& path, const std::string& data = "") {
    proto::CreateRequest c;
    c.path = path;
    c.data = data;
    c.acl = proto::open_acl_unsafe();
    return request(xid, OpCode::create, c);
  }
  std::string get(int32_t xid, const std::string& path, bool watch = false) {
    return request(xid, OpCode::get_data, proto::PathWatchRequest{path, watch});
  }
  std::vector<Reply> replies() {
    host.run_posted();
    std::vector<Reply> rs;
    size_t pos = 0;
    while (out.size() - pos >= 4) {
      uint32_t n = (uint32_t(uint8_t(out[pos])) << 24) | (uint32_t(uint8_t(out[pos + 1])) << 16) |
                   (uint32_t(uint8_t(out[pos + 2])) << 8) | uint8_t(out[pos + 3]);
      proto::JuteReader r(std::string_view(out).substr(pos + 4, n));
      proto::ReplyHeader h;
      EXPECT_TRUE(proto::read(r, h));
      rs.push_back(
          {h.xid, h.zxid, h.err, std::string(std::string_view(out).substr(pos + 4 + 16, n - 16))});
      pos += 4 + n;
    }
    out.clear();
    return rs;
  }

  Host host;
  std::unique_ptr<Channel> channel;
  std::string out;
  bool closed = false, paused = false;
  size_t queued = 0;
};

}  // namespace

TEST_F(ChannelTest, TheHandshakeOpensASessionOnceItIsApplied) {
  open();
  std::string f;
  proto::JuteWriter w(f);
  size_t at = w.begin_frame();
  proto::write(w, proto::ConnectRequest{0, 0, 100, 0, std::string(16, '\0'), false, true});
  w.finish_frame(at);
  channel->on_bytes(f);
  host.run_posted();
  EXPECT_TRUE(out.empty()) << "nothing before createSession is applied";
  EXPECT_FALSE(channel->established());
  host.commit();
  host.run_posted();
  proto::JuteReader r(std::string_view(out).substr(4));
  proto::ConnectResponse resp;
  ASSERT_TRUE(proto::read(r, resp));
  EXPECT_EQ(resp.session_id, 0x1234);
  EXPECT_EQ(resp.timeout_ms, 4000) << "negotiated by the host";
  EXPECT_TRUE(channel->established());
}

TEST_F(ChannelTest, ARequestSplitAcrossReadsIsOneRequest) {
  connect();
  std::string f = get(1, "/");
  for (char c : f) channel->on_bytes(std::string(1, c));
  auto rs = replies();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].xid, 1);
  EXPECT_EQ(rs[0].err, 0);
}

TEST_F(ChannelTest, AReadWaitsForTheWriteBeforeItInTheSession) {
  connect();
  channel->on_bytes(create(1, "/a", "x") + get(2, "/a"));
  EXPECT_TRUE(replies().empty()) << "the read must not overtake the write";
  EXPECT_EQ(channel->outstanding(), 2u);
  host.commit();
  auto rs = replies();
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].xid, 1);
  EXPECT_EQ(rs[0].err, 0);
  EXPECT_EQ(rs[1].xid, 2);
  EXPECT_EQ(rs[1].err, 0) << "it sees the node the write created";
  EXPECT_EQ(rs[1].zxid, rs[0].zxid);
  EXPECT_EQ(channel->outstanding(), 0u);
  EXPECT_EQ(host.outstanding(), 0);
}

TEST_F(ChannelTest, AReadOfAMissingNodeIsAnsweredNoNode) {
  connect();
  channel->on_bytes(get(7, "/missing"));
  auto rs = replies();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].err, static_cast<int32_t>(Err::no_node));
}

TEST_F(ChannelTest, AMalformedWriteIsAnsweredInItsTurnAndNeverLogged) {
  connect();
  std::string f;
  proto::JuteWriter w(f);
  size_t at = w.begin_frame();
  proto::write(w, proto::RequestHeader{3, static_cast<int32_t>(OpCode::create)});
  w.write_int(1000);  // a path length with no path behind it
  w.finish_frame(at);
  channel->on_bytes(f);
  host.commit();
  auto rs = replies();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].xid, 3);
  EXPECT_EQ(rs[0].err, static_cast<int32_t>(Err::marshalling_error));
  EXPECT_EQ(host.last_zxid(), 1) << "only createSession was applied";
}

TEST_F(ChannelTest, AFrameOverTheLimitClosesTheConnectionOnly) {
  host.cfg.server.max_frame_bytes = 1024;
  connect();
  std::string f(4, '\0');
  f[2] = 0x10;  // 4096 bytes announced
  channel->on_bytes(f);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(channel->closed());
  EXPECT_EQ(host.closed_channels, 1);
}

TEST_F(ChannelTest, ALargeFirstFrameIsNoConnectRequest) {
  open();
  std::string f(4, '\0');
  f[2] = 0x20;  // 8192 bytes before any session
  channel->on_bytes(f);
  EXPECT_TRUE(closed);
}

TEST_F(ChannelTest, AFourLetterWordIsAnsweredAndTheConnectionClosed) {
  open();
  channel->on_bytes("ruok");
  host.run_posted();
  EXPECT_EQ(host.words, std::vector<std::string>{"ruok"});
  EXPECT_EQ(out, "imok");
  EXPECT_TRUE(closed);
}

TEST_F(ChannelTest, AWatchFiresOnceWhenTheDataChanges) {
  connect();
  channel->on_bytes(create(1, "/w", "a"));
  host.commit();
  replies();
  channel->on_bytes(get(2, "/w", true));
  ASSERT_EQ(replies().size(), 1u);
  proto::SetDataRequest s;
  s.path = "/w";
  s.data = "b";
  channel->on_bytes(request(3, OpCode::set_data, s));
  host.commit();
  auto rs = replies();
  ASSERT_EQ(rs.size(), 2u);
  // The notification comes before the reply to the write that caused it.
  EXPECT_EQ(rs[0].xid, proto::kXidNotification);
  proto::JuteReader r(rs[0].body);
  proto::WatcherEvent ev;
  ASSERT_TRUE(proto::read(r, ev));
  EXPECT_EQ(ev.path, "/w");
  EXPECT_EQ(rs[1].xid, 3);
  s.data = "c";
  channel->on_bytes(request(4, OpCode::set_data, s));
  host.commit();
  rs = replies();
  ASSERT_EQ(rs.size(), 1u) << "a one-shot watch fires once";
}

TEST_F(ChannelTest, ReadingPausesAtTheOutstandingLimitAndResumes) {
  host.cfg.server.max_outstanding_per_session = 3;
  connect();
  std::string many;
  for (int i = 0; i < 6; ++i) many += create(10 + i, "/n" + std::to_string(i));
  channel->on_bytes(many);
  EXPECT_TRUE(paused);
  EXPECT_EQ(channel->outstanding(), 3u) << "the rest waits unread";
  host.commit();
  replies();
  channel->resume_reading();
  host.run_posted();
  host.commit();
  auto rs = replies();
  EXPECT_FALSE(paused);
  EXPECT_EQ(rs.size(), 3u) << "the requests that waited are taken and answered";
}

TEST_F(ChannelTest, AClientThatDoesNotReadIsClosedAtTheOutputCap) {
  host.cfg.server.max_output_bytes = 1000;
  connect();
  queued = 5000;  // the socket holds this much unread
  channel->on_bytes(get(1, "/"));
  host.run_posted();
  EXPECT_TRUE(closed);
  EXPECT_TRUE(channel->closed());
}

TEST_F(ChannelTest, ClosingStopsEverythingAndCountsNothingOutstanding) {
  connect();
  channel->on_bytes(create(1, "/z"));
  EXPECT_EQ(host.outstanding(), 1);
  channel->on_disconnected();
  EXPECT_EQ(host.outstanding(), 0);
  EXPECT_EQ(host.closed_channels, 1);
  host.commit();  // applied after the client left: nothing is sent, nothing breaks
  EXPECT_TRUE(replies().empty());
}

TEST_F(ChannelTest, TheAuditLogHasALinePerChangeWithWhoAndTheResult) {
  std::string path = ::testing::TempDir() + "channel_audit.log";
  std::remove(path.c_str());
  AuditLog audit(host.exec(), host.clk());
  ASSERT_TRUE(audit.open(path, 1 << 20));
  host.audit_log = &audit;
  connect();
  channel->on_bytes(create(1, "/audited", "x") + create(2, "/audited") + get(3, "/audited"));
  host.commit();
  ASSERT_EQ(replies().size(), 3u);
  host.run_posted();  // the flush
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("session=0x1234\tuser=127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/"
                     "audited\tznode_type=persistent\tresult=success\n"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("operation=create\tznode=/audited\tznode_type=persistent\tresult=failure"),
            std::string::npos)
      << "the second create met NODEEXISTS: " << all;
  EXPECT_EQ(audit.lines(), 2u) << "reads are not audited";
  // A client that sends a change and goes at once is audited all the same.
  channel->on_bytes(create(4, "/left-behind"));
  channel->on_disconnected();
  host.commit();
  host.run_posted();
  std::ifstream again(path);
  std::string now((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  EXPECT_NE(now.find("znode=/left-behind\tznode_type=persistent\tresult=success"),
            std::string::npos)
      << now;
  host.audit_log = nullptr;
}

TEST_F(ChannelTest, AClientCannotSendTheInProcessActAsFrame) {
  connect();
  std::string f;
  proto::JuteWriter w(f);
  size_t at = w.begin_frame();
  proto::write(w, proto::RequestHeader{9, kInProcessActAs});
  w.write_count(1);
  proto::write(w, proto::Id{"super", ""});
  w.finish_frame(at);
  channel->on_bytes(f);
  auto rs = replies();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].err, static_cast<int32_t>(Err::unimplemented))
      << "an unknown opcode, as ZooKeeper";
  EXPECT_TRUE(closed);
  for (const auto& id : channel->identities()) EXPECT_NE(id.scheme, "super");
}
