// Fast leader election, one server at a time: its votes go to a recording
// network, other servers' notifications are written by hand, time moves by
// tick(). Each test is one rule of the election.
#include "fle.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <deque>

#include "corral/common/msgpack.hpp"

using namespace corral;
using sdk::ServerId;
using sdk::Zxid;

namespace {

enum State : int64_t { looking = 0, following = 1, leading = 2, observing = 3 };

struct Note {
  ServerId to = 0;
  int64_t round = 0, state = 0;
  ServerId leader = 0;
  Zxid zxid = 0;
  int64_t epoch = 0;
};

class Harness final : public sdk::PluginHost, public sdk::ElectionHost, public sdk::PeerNetwork {
 public:
  // Members 1..voters vote; ids in `observers` observe.
  Harness(ServerId self, int voters, std::vector<ServerId> observers = {}) : self_(self) {
    for (int i = 1; i <= voters; ++i) members_.push_back(member(i, false));
    for (ServerId id : observers) members_.push_back(member(id, true));
  }

  fle::FastLeaderElection& start(int64_t finalize_wait = 200, bool tick = true) {
    EXPECT_TRUE(fle_.init(*this));
    fle_.set_options(fle::FleOptions{finalize_wait, 100, 800});
    EXPECT_TRUE(fle_.start(*this));
    if (tick) fle_.tick(now_);
    return fle_;
  }
  void look(Zxid last, uint32_t epoch) { fle_.look(sdk::Candidacy{self_, last, epoch}); }
  void set_now(int64_t ms) { now_ = ms; }  // a steady clock's value: time since boot
  void hear(ServerId from, int64_t round, int64_t state, ServerId leader, Zxid zxid,
            int64_t epoch) {
    sdk::Bytes b;
    common::MsgpackWriter w(b);
    w.array(6);
    w.integer(1);
    w.integer(round);
    w.integer(state);
    w.integer(leader);
    w.integer(zxid);
    w.integer(epoch);
    listener_->on_peer_message(from, b);
  }
  void raw(ServerId from, sdk::Bytes b) { listener_->on_peer_message(from, b); }
  void advance(int64_t ms) {
    now_ += ms;
    fle_.tick(now_);
  }
  // Votes sent since the last call.
  std::vector<Note> sent() {
    std::vector<Note> out(sent_.begin(), sent_.end());
    sent_.clear();
    return out;
  }
  fle::FastLeaderElection& fle() { return fle_; }
  uint64_t fle_round() const { return fle_.round(); }
  std::vector<sdk::ElectionResult> results;
  int warnings = 0;

  // PluginHost
  sdk::Executor& executor() override { return exec_; }
  const sdk::Clock& clock() override { return clock_; }
  sdk::Logger& logger() override { return log_; }
  sdk::Metrics& metrics() override { return metrics_; }
  const sdk::ConfigTable& config() override { return config_; }
  const sdk::ServerInfo& server() override { return info_; }
  // ElectionHost
  sdk::PeerNetwork& network() override { return *this; }
  void elected(const sdk::ElectionResult& r) override { results.push_back(r); }
  // PeerNetwork
  ServerId self() const override { return self_; }
  std::vector<sdk::PeerSpec> members() const override { return members_; }
  void send(ServerId to, sdk::PeerChannel channel, sdk::Bytes m) override {
    EXPECT_EQ(channel, sdk::PeerChannel::election);
    common::MsgpackReader r(m);
    Note n;
    n.to = to;
    EXPECT_EQ(r.array(), 6u);
    EXPECT_EQ(r.integer(), 1);
    n.round = r.integer();
    n.state = r.integer();
    n.leader = r.integer();
    n.zxid = r.integer();
    n.epoch = r.integer();
    EXPECT_TRUE(r.ok());
    sent_.push_back(n);
  }
  void disconnect(ServerId, sdk::PeerChannel) override {}
  void subscribe(sdk::PeerChannel, sdk::PeerListener* l) override { listener_ = l; }

 private:
  static sdk::PeerSpec member(ServerId id, bool observer) {
    sdk::PeerSpec m;
    m.id = id;
    m.host = "127.0.0.1";
    m.observer = observer;
    return m;
  }
  struct Exec final : sdk::Executor {
    void post(std::function<void()>) override {}
    std::unique_ptr<Timer> schedule(std::chrono::milliseconds, std::function<void()>) override {
      return nullptr;
    }
    boost::asio::io_context& io_context() override { return io; }
    boost::asio::io_context io;
  } exec_;
  struct Clk final : sdk::Clock {
    int64_t steady_ms() const override { return 0; }
    int64_t wall_ms() const override { return 0; }
  } clock_;
  struct Log final : sdk::Logger {
    explicit Log(Harness& h) : h(h) {}
    bool enabled(sdk::LogLevel) const override { return false; }
    void log(sdk::LogLevel level, std::string_view) override {
      h.warnings += level == sdk::LogLevel::warn;
    }
    Harness& h;
  } log_{*this};
  struct NullMetrics final : sdk::Metrics {
    sdk::Counter* counter(std::string_view, std::string_view) override { return &c; }
    sdk::Gauge* gauge(std::string_view, std::string_view) override { return &g; }
    sdk::Histogram* histogram(std::string_view, std::string_view) override { return &h; }
    std::string exposition() override { return {}; }
    struct C final : sdk::Counter {
      void inc(uint64_t) override {}
      uint64_t value() const override { return 0; }
    } c;
    struct G final : sdk::Gauge {
      void set(int64_t) override {}
      void add(int64_t) override {}
      int64_t value() const override { return 0; }
    } g;
    struct H final : sdk::Histogram {
      void observe(double) override {}
    } h;
  } metrics_;
  struct Config final : sdk::ConfigTable {
    std::string_view name() const override { return "election.fle"; }
    bool contains(std::string_view) const override { return false; }
    sdk::Result<std::string> get_string(std::string_view, std::string_view d) const override {
      return std::string(d);
    }
    sdk::Result<int64_t> get_int(std::string_view, int64_t d) const override { return d; }
    sdk::Result<double> get_double(std::string_view, double d) const override { return d; }
    sdk::Result<bool> get_bool(std::string_view, bool d) const override { return d; }
    sdk::Result<std::vector<std::string>> get_string_list(
        std::string_view, const std::vector<std::string>& d) const override {
      return d;
    }
    std::vector<std::string> keys() const override { return {}; }
    std::vector<std::string> keys_in(std::string_view) const override { return {}; }
    sdk::Status invalid(std::string_view key, std::string_view) const override {
      return {sdk::Errc::invalid_argument, std::string(key)};
    }
  } config_;
  sdk::ServerInfo info_;

  ServerId self_;
  std::vector<sdk::PeerSpec> members_;
  sdk::PeerListener* listener_ = nullptr;
  std::deque<Note> sent_;
  int64_t now_ = 1000;
  fle::FastLeaderElection fle_;
};

constexpr Zxid z(uint32_t epoch, uint32_t counter) { return sdk::make_zxid(epoch, counter); }

}  // namespace

TEST(Fle, ALookingServerProposesItselfToEveryOtherMember) {
  Harness h(1, 3);
  h.start();
  h.look(z(1, 5), 1);
  auto s = h.sent();
  ASSERT_EQ(s.size(), 2u);
  for (const auto& n : s) {
    EXPECT_NE(n.to, 1);
    EXPECT_EQ(n.state, looking);
    EXPECT_EQ(n.leader, 1);
    EXPECT_EQ(n.zxid, z(1, 5));
    EXPECT_EQ(n.epoch, 1);
    EXPECT_EQ(n.round, 1);
  }
  EXPECT_TRUE(h.results.empty());
}

TEST(Fle, ABetterVoteIsAdoptedInTheOrderEpochZxidId) {
  struct Row {
    const char* what;
    ServerId from;
    Zxid zxid;
    int64_t epoch;
    bool adopted;
  } rows[] = {
      {"a newer epoch wins over a longer log", 2, z(1, 1), 2, true},
      {"the same epoch, a longer log", 2, z(1, 9), 1, true},
      {"the same log, a higher id", 3, z(1, 5), 1, true},
      {"the same log, a lower id", 1, z(1, 5), 1, false},
      {"a shorter log", 3, z(1, 4), 1, false},
      {"an older epoch", 3, z(0, 99), 0, false},
  };
  for (const auto& r : rows) {
    Harness h(2, 3);
    h.start();
    h.look(z(1, 5), 1);
    h.sent();
    h.hear(r.from == 2 ? 3 : r.from, 1, looking, r.from, r.zxid, r.epoch);
    auto s = h.sent();
    if (r.adopted) {
      ASSERT_EQ(s.size(), 2u) << r.what;
      EXPECT_EQ(s[0].leader, r.from) << r.what;
      EXPECT_EQ(s[0].zxid, r.zxid) << r.what;
    } else {
      EXPECT_TRUE(s.empty()) << r.what;
    }
  }
}

TEST(Fle, AQuorumAgreeingDecidesAfterTheFinalizeWait) {
  Harness h(1, 3);
  h.start(200);
  h.look(z(1, 5), 1);
  h.hear(2, 1, looking, 2, z(1, 9), 1);  // better: adopted; 1 and 2 agree on 2
  h.advance(199);
  EXPECT_TRUE(h.results.empty());
  h.advance(1);
  ASSERT_EQ(h.results.size(), 1u);
  EXPECT_EQ(h.results[0].leader, 2);
  EXPECT_EQ(h.results[0].leader_zxid, z(1, 9));
  EXPECT_EQ(h.results[0].round, 1u);
  // The outcome is told to everyone at once, as a follower now.
  bool told = false;
  for (const auto& n : h.sent()) told |= n.state == following && n.leader == 2;
  EXPECT_TRUE(told);
}

// A quorum heard before the election's first tick (at startup, when the
// clock has not been read yet) still waits the whole finalize wait, counted
// from that tick, not from the clock's zero.
TEST(Fle, AQuorumHeardBeforeTheFirstTickStillWaits) {
  Harness h(1, 3);
  h.set_now(62'000'000);
  h.start(200, false);
  h.look(z(1, 5), 1);
  h.hear(2, 1, looking, 2, z(1, 9), 1);
  h.advance(0);
  EXPECT_TRUE(h.results.empty()) << "decided at the first tick, without waiting";
  h.advance(199);
  EXPECT_TRUE(h.results.empty());
  h.advance(1);
  ASSERT_EQ(h.results.size(), 1u);
  EXPECT_EQ(h.results[0].leader, 2);
}

TEST(Fle, ABetterVoteDuringTheWaitMovesTheProposal) {
  Harness h(1, 5);
  h.start(200);
  h.look(z(1, 5), 1);
  h.hear(2, 1, looking, 1, z(1, 5), 1);
  h.hear(3, 1, looking, 1, z(1, 5), 1);  // 3 of 5 agree on 1: the wait begins
  h.advance(100);
  h.hear(4, 1, looking, 4, z(1, 7), 1);  // better
  h.advance(100);
  EXPECT_TRUE(h.results.empty()) << "1 no longer has a quorum behind the proposal";
  h.hear(2, 1, looking, 4, z(1, 7), 1);
  h.advance(200);
  ASSERT_EQ(h.results.size(), 1u);
  EXPECT_EQ(h.results[0].leader, 4);
}

TEST(Fle, ANewerRoundResetsWhatWasHeard) {
  Harness h(1, 3);
  h.start();
  h.look(z(1, 5), 1);
  h.sent();
  h.hear(2, 7, looking, 2, z(1, 1), 1);  // round 7, a worse vote
  auto s = h.sent();
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s[0].round, 7);
  EXPECT_EQ(s[0].leader, 1) << "its own vote is better";
  EXPECT_EQ(h.fle_round(), 7u);
}

TEST(Fle, AnOlderRoundIsAnsweredAndIgnored) {
  Harness h(1, 3);
  h.start();
  h.look(z(1, 5), 1);
  h.look(z(1, 5), 1);  // round 2
  h.sent();
  h.hear(2, 1, looking, 2, z(9, 9), 9);
  auto s = h.sent();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].to, 2);
  EXPECT_EQ(s[0].round, 2);
  EXPECT_EQ(s[0].leader, 1) << "the better vote of an old round is not adopted";
}

TEST(Fle, JoiningAWorkingEnsembleFollowsItsConfirmedLeader) {
  Harness h(1, 3);
  h.start();
  h.look(z(1, 5), 1);
  h.hear(2, 4, following, 3, z(3, 0), 3);
  EXPECT_TRUE(h.results.empty()) << "the leader itself has not said it leads";
  h.hear(3, 4, leading, 3, z(3, 0), 3);
  ASSERT_EQ(h.results.size(), 1u);
  EXPECT_EQ(h.results[0].leader, 3);
  EXPECT_EQ(h.results[0].round, 4u);
}

// A leader that no quorum of this server's view confirms is followed only
// after twice the longest notification interval of looking (this server may
// have missed a reconfig), counted from when the look began, even when the
// look began before the election's first tick (at startup).
TEST(Fle, AnUnconfirmedLeaderIsFollowedOnlyAfterLookingForAWhile) {
  for (bool ticked_first : {true, false}) {
    Harness h(1, 5);
    h.set_now(62'000'000);
    h.start(200, ticked_first);
    h.look(z(1, 5), 1);
    h.advance(10);
    h.hear(3, 4, leading, 3, z(3, 0), 3);
    EXPECT_TRUE(h.results.empty()) << "followed at once (ticked first: " << ticked_first << ")";
    h.advance(1600);
    h.hear(3, 4, leading, 3, z(3, 0), 3);
    ASSERT_EQ(h.results.size(), 1u) << "ticked first: " << ticked_first;
    EXPECT_EQ(h.results[0].leader, 3);
  }
}

TEST(Fle, FollowersAloneDoNotMakeALeader) {
  Harness h(1, 5);
  h.start();
  h.look(z(1, 5), 1);
  h.hear(2, 3, following, 5, z(3, 0), 3);
  h.hear(3, 3, following, 5, z(3, 0), 3);
  h.hear(4, 3, following, 5, z(3, 0), 3);
  EXPECT_TRUE(h.results.empty());
}

TEST(Fle, ASettledServerAnswersALookingOneWithItsLeader) {
  Harness h(1, 3);
  h.start();
  h.fle().settled(sdk::ElectionResult{2, z(2, 0), 2, 0});
  h.sent();
  h.hear(3, 5, looking, 3, z(1, 1), 1);
  auto s = h.sent();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].to, 3);
  EXPECT_EQ(s[0].state, following);
  EXPECT_EQ(s[0].leader, 2);
}

TEST(Fle, AnObserverProposesNobodyAndAdoptsTheParticipantsChoice) {
  Harness h(4, 3, {4});
  h.start();
  h.look(z(1, 5), 1);
  for (const auto& n : h.sent()) {
    EXPECT_EQ(n.leader, 0);
    EXPECT_EQ(n.state, looking);
  }
  h.hear(1, 1, following, 2, z(2, 0), 2);
  h.hear(2, 1, leading, 2, z(2, 0), 2);
  ASSERT_EQ(h.results.size(), 1u);
  EXPECT_EQ(h.results[0].leader, 2);
}

TEST(Fle, AnObserversVoteCountsForNothing) {
  Harness h(1, 3, {4});
  h.start(0);
  h.look(z(1, 5), 1);
  h.hear(4, 1, looking, 1, z(1, 5), 1);
  h.advance(1000);
  EXPECT_TRUE(h.results.empty());
}

TEST(Fle, MalformedNotificationsAreIgnoredWithAWarning) {
  Harness h(1, 3);
  h.start();
  h.look(z(1, 5), 1);
  h.sent();
  sdk::Bytes junk = "\x96\x01";
  h.raw(2, junk);
  h.raw(2, "");
  h.hear(2, 1, 9, 2, z(9, 9), 9);                       // no such state
  h.hear(2, 1, looking, 2, z(9, 9), int64_t(1) << 40);  // an epoch out of range
  h.hear(2, -1, looking, 2, z(9, 9), 9);                // a negative round
  EXPECT_EQ(h.warnings, 5);
  EXPECT_TRUE(h.sent().empty());
  h.advance(1000);
  EXPECT_TRUE(h.results.empty());
}

TEST(Fle, VotesAreSentAgainOnABackoff) {
  Harness h(1, 3);
  h.start();
  h.look(z(1, 5), 1);
  h.sent();
  std::vector<int64_t> gaps;
  int64_t last = 0, t = 0;
  for (int i = 0; i < 3000; i += 10) {
    h.advance(10);
    t += 10;
    if (!h.sent().empty()) {
      gaps.push_back(t - last);
      last = t;
    }
  }
  ASSERT_GE(gaps.size(), 5u);
  EXPECT_EQ(gaps[0], 100);
  EXPECT_EQ(gaps[1], 200);
  EXPECT_EQ(gaps[2], 400);
  EXPECT_EQ(gaps[3], 800);
  EXPECT_EQ(gaps[4], 800) << "capped at max_notify_interval_ms";
}
