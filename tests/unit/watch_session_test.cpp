#include <gtest/gtest.h>

#include "session/session_tracker.hpp"
#include "watch/watch_manager.hpp"

using namespace corral::kernel;
using corral::proto::EventType;

namespace {
struct Recorder : Watcher {
  std::vector<std::pair<int32_t, std::string>> events;
  void notify(const corral::proto::WatcherEvent& e, corral::sdk::Zxid) override { events.emplace_back(e.type, e.path); }
};
}  // namespace

TEST(Watches, FireOnceWithTheRightType) {
  WatchManager wm;
  Recorder a, b;
  wm.watch_data("/x", &a);
  wm.watch_children("/", &b);
  wm.watch_data("/x", &a);  // registering twice still fires once
  EXPECT_EQ(wm.watch_count(), 2u);
  wm.trigger({{Change::created, "/x"}, {Change::children_changed, "/"}}, 1);
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(a.events[0].first, static_cast<int32_t>(EventType::node_created));
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].first, static_cast<int32_t>(EventType::node_children_changed));
  wm.trigger({{Change::data_changed, "/x"}, {Change::children_changed, "/"}}, 2);
  EXPECT_EQ(a.events.size(), 1u);
  EXPECT_EQ(b.events.size(), 1u);
  EXPECT_EQ(wm.watch_count(), 0u);
}

TEST(Watches, DeleteNotifiesAWatcherOfBothKindsOnce) {
  WatchManager wm;
  Recorder a;
  wm.watch_data("/x", &a);
  wm.watch_children("/x", &a);
  wm.trigger({{Change::deleted, "/x"}}, 3);
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(a.events[0].first, static_cast<int32_t>(EventType::node_deleted));
  EXPECT_EQ(wm.watch_count(), 0u);
}

TEST(Watches, RemovingAWatcherForgetsAllItsWatches) {
  WatchManager wm;
  Recorder a, b;
  wm.watch_data("/x", &a);
  wm.watch_children("/y", &a);
  wm.watch_data("/x", &b);
  wm.remove_watcher(&a);
  EXPECT_EQ(wm.watch_count(), 1u);
  wm.trigger({{Change::data_changed, "/x"}, {Change::children_changed, "/y"}}, 4);
  EXPECT_TRUE(a.events.empty());
  EXPECT_EQ(b.events.size(), 1u);
}

TEST(Sessions, ExpireAfterTheirTimeoutUnlessTouched) {
  SessionTracker t(100);
  t.track(1, 1000, 0);
  t.track(2, 1000, 0);
  EXPECT_TRUE(t.take_expired(900).empty());
  EXPECT_TRUE(t.touch(2, 900));
  auto expired = t.take_expired(1200);
  ASSERT_EQ(expired, std::vector<int64_t>{1});
  EXPECT_FALSE(t.touch(1, 1200));        // expiring sessions stay dead
  EXPECT_TRUE(t.take_expired(1200).empty());  // and are reported once
  EXPECT_EQ(t.take_expired(2100), std::vector<int64_t>{2});
  t.forget(1);
  t.forget(2);
  EXPECT_EQ(t.size(), 0u);
}
