// Four-letter words and admin commands written from a read-only view, here a
// fixed one: what each reports, and that the view is all they read.
#include "ops/four_letter.hpp"

#include <gtest/gtest.h>

#include "ops/admin_commands.hpp"
#include "tree/data_tree.hpp"
#include "watch/watch_manager.hpp"

using namespace corral;
using namespace corral::kernel;

namespace {

class FixedView final : public ServerView {
 public:
  FixedView() {
    info_.data_dir = "/data";
    stats_.packets_received = 12;
    stats_.packets_sent = 11;
    stats_.record_latency(3);
    stats_.record_latency(5);
  }
  const Config& config() const override { return cfg; }
  const sdk::ServerInfo& info() const override { return info_; }
  const DataTree& tree() const override { return tree_; }
  const WatchManager& watches() const override { return watches_; }
  std::vector<std::pair<int64_t, std::string>> watches_by_session() const override {
    return {{0x11, "/a"}, {0x11, "/b"}, {0x22, "/a"}};
  }
  const ServerStats& stats() const override { return stats_; }
  std::vector<ConnectionView> connections() const override {
    return {{"127.0.0.1:5000", 0x11, 30000, 2, 12, 11}};
  }
  size_t connection_count() const override { return 1; }
  int64_t outstanding() const override { return 2; }
  sdk::Zxid last_zxid() const override { return 0x500000007; }
  sdk::ConsensusStatus consensus_status() const override { return {}; }
  std::string mode() const override { return "standalone"; }
  bool serving() const override { return serving_; }
  bool read_only_mode() const override { return read_only_; }
  bool in_ensemble() const override { return false; }
  sdk::Endpoint client_endpoint() const override { return {"127.0.0.1", 2181}; }
  sdk::Zxid config_version() const override { return 0; }
  const std::deque<std::pair<sdk::Zxid, uint64_t>>& digests() const override { return digests_; }
  uint64_t snapshot_bytes() const override { return 4096; }
  uint64_t log_bytes() const override { return 8192; }

  Config cfg;
  bool serving_ = true;
  bool read_only_ = false;

 private:
  sdk::ServerInfo info_;
  DataTree tree_;
  WatchManager watches_;
  ServerStats stats_;
  std::deque<std::pair<sdk::Zxid, uint64_t>> digests_{{0x500000007, 42}};
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(FourLetter, SrvrReportsWhatTheViewHolds) {
  FixedView v;
  std::string t = four_letter_text(v, "srvr");
  EXPECT_TRUE(has(t, "Latency min/avg/max: 3/4.0000/5\n")) << t;
  EXPECT_TRUE(has(t, "Received: 12\nSent: 11\nConnections: 1\nOutstanding: 2\n")) << t;
  EXPECT_TRUE(has(t, "Zxid: 0x500000007\nMode: standalone\n")) << t;
}

TEST(FourLetter, ConsWchcAndWchpList) {
  FixedView v;
  EXPECT_EQ(four_letter_text(v, "cons"),
            " /127.0.0.1:5000[1](queued=2,recved=12,sent=11,sid=0x11,to=30000)\n\n");
  EXPECT_EQ(four_letter_text(v, "wchc"), "0x11\n\t/a\n\t/b\n0x22\n\t/a\n\n");
  EXPECT_EQ(four_letter_text(v, "wchp"), "/a\n\t0x11\n\t0x22\n/b\n\t0x11\n\n");
  EXPECT_EQ(four_letter_text(v, "hash"), "500000007: 42\n");
  EXPECT_EQ(four_letter_text(v, "dirs"), "datadir_size: 4096\nlogdir_size: 8192\n");
}

TEST(FourLetter, WithoutALeaderTheServingWordsSaySo) {
  FixedView v;
  v.serving_ = false;
  EXPECT_EQ(four_letter_text(v, "stat"),
            "This ZooKeeper instance is not currently serving requests\n");
  EXPECT_EQ(four_letter_text(v, "srst"),
            "This ZooKeeper instance is not currently serving requests\n");
  EXPECT_EQ(four_letter_text(v, "ruok"), "imok");
  // isro, as ZooKeeper's: null until read-only mode begins.
  EXPECT_EQ(four_letter_text(v, "isro"), "null");
  v.read_only_ = true;
  EXPECT_EQ(four_letter_text(v, "isro"), "ro");
  v.serving_ = true;
  EXPECT_EQ(four_letter_text(v, "isro"), "rw");
}

TEST(FourLetter, MntrValuesInOrder) {
  FixedView v;
  auto values = monitor_values(v);
  ASSERT_GE(values.size(), 5u);
  EXPECT_EQ(values[0].first, "version");
  EXPECT_EQ(values[1].first, "server_state");
  EXPECT_EQ(values[1].second.text, "standalone");
  bool saw = false;
  for (const auto& [k, val] : values)
    if (k == "outstanding_requests") saw = val.text == "2" && val.number;
  EXPECT_TRUE(saw);
}

TEST(FourLetter, TheAllowListDecides) {
  Config c;
  c.server.four_letter_words = {"ruok", "srvr"};
  EXPECT_TRUE(four_letter_allowed(c, "ruok"));
  EXPECT_FALSE(four_letter_allowed(c, "dump"));
  EXPECT_TRUE(admin_command_allowed(c, "server_stats")) << "by its four-letter alias";
  EXPECT_FALSE(admin_command_allowed(c, "connections"));
  c.server.four_letter_words = {"*"};
  EXPECT_TRUE(four_letter_allowed(c, "dump"));
  EXPECT_TRUE(is_four_letter_word("wchp"));
  EXPECT_FALSE(is_four_letter_word("kill"));
}

TEST(AdminCommands, AnswerAsJson) {
  FixedView v;
  auto dirs = admin_command(v, "dirs");
  ASSERT_TRUE(dirs);
  EXPECT_EQ(*dirs,
            "{\"datadir_size\":4096,\"logdir_size\":8192,\"command\":\"dirs\",\"error\":null}\n");
  auto cons = admin_command(v, "cons");
  ASSERT_TRUE(cons);
  EXPECT_TRUE(has(*cons, "\"session_id\":\"0x11\",\"session_timeout\":30000")) << *cons;
  EXPECT_FALSE(admin_command(v, "nosuch"));
  EXPECT_EQ(admin_command_name("mntr"), std::optional<std::string>("monitor"));
}
