// Sync planning, as a table: a leader's history after its newest snapshot,
// a learner's last zxid, and the plan the learner gets.
#include <gtest/gtest.h>

#include "history.hpp"

using corral::sdk::LogEntry;
using corral::sdk::Zxid;
using corral::zab::needs_snapshot;
using corral::zab::plan_diff;
using corral::zab::SyncPlan;

namespace {
constexpr Zxid z(uint32_t epoch, uint32_t counter) {
  return corral::sdk::make_zxid(epoch, counter);
}

std::vector<LogEntry> log_of(std::initializer_list<Zxid> zxids) {
  std::vector<LogEntry> out;
  for (Zxid x : zxids) out.push_back(LogEntry{x, 0, "e" + std::to_string(x)});
  return out;
}

std::vector<Zxid> zxids(const std::vector<LogEntry>& es) {
  std::vector<Zxid> out;
  for (const auto& e : es) out.push_back(e.zxid);
  return out;
}
}  // namespace

TEST(ZabHistory, NeedsSnapshotOnlyBehindTheFloor) {
  EXPECT_TRUE(needs_snapshot(z(1, 3), z(1, 4)));
  EXPECT_FALSE(needs_snapshot(z(1, 4), z(1, 4)));
  EXPECT_FALSE(needs_snapshot(z(2, 1), z(1, 4)));
  EXPECT_FALSE(needs_snapshot(0, 0));
}

TEST(ZabHistory, PlanDiff) {
  struct Row {
    const char* what;
    std::vector<LogEntry> history;
    Zxid floor, peer_last;
    SyncPlan::Mode mode;
    Zxid trunc;
    std::vector<Zxid> sent;
  } rows[] = {
      {"up to date", log_of({z(1, 1), z(1, 2)}), 0, z(1, 2), SyncPlan::Mode::diff, 0, {}},
      {"behind: the rest",
       log_of({z(1, 1), z(1, 2), z(1, 3)}),
       0,
       z(1, 1),
       SyncPlan::Mode::diff,
       0,
       {z(1, 2), z(1, 3)}},
      {"empty peer", log_of({z(1, 1), z(1, 2)}), 0, 0, SyncPlan::Mode::diff, 0, {z(1, 1), z(1, 2)}},
      {"at the floor", log_of({z(2, 1)}), z(1, 9), z(1, 9), SyncPlan::Mode::diff, 0, {z(2, 1)}},
      {"a tail no quorum accepted, then ours",
       log_of({z(1, 1), z(1, 2), z(2, 1)}),
       0,
       z(1, 3),
       SyncPlan::Mode::trunc,
       z(1, 2),
       {z(2, 1)}},
      {"ahead of us in our epoch",
       log_of({z(1, 1), z(1, 2)}),
       0,
       z(1, 5),
       SyncPlan::Mode::trunc,
       z(1, 2),
       {}},
      {"a whole abandoned epoch",
       log_of({z(1, 1), z(3, 1), z(3, 2)}),
       0,
       z(2, 4),
       SyncPlan::Mode::trunc,
       z(1, 1),
       {z(3, 1), z(3, 2)}},
      {"cut back to the floor",
       log_of({z(2, 1)}),
       z(1, 9),
       z(1, 10),
       SyncPlan::Mode::trunc,
       z(1, 9),
       {z(2, 1)}},
      {"nothing after the floor, peer at it", {}, z(4, 2), z(4, 2), SyncPlan::Mode::diff, 0, {}},
  };
  for (const auto& r : rows) {
    SyncPlan p = plan_diff(r.history, r.floor, r.peer_last);
    EXPECT_EQ(p.mode, r.mode) << r.what;
    if (r.mode == SyncPlan::Mode::trunc) EXPECT_EQ(p.trunc_zxid, r.trunc) << r.what;
    EXPECT_EQ(zxids(p.entries), r.sent) << r.what;
  }
}
