#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <tuple>

#include "session/session_tracker.hpp"
#include "watch/watch_manager.hpp"

using namespace corral::kernel;
using corral::proto::EventType;

namespace {
struct Recorder : Watcher {
  std::vector<std::pair<int32_t, std::string>> events;
  Ids ids;
  void notify(const corral::proto::WatcherEvent& e, corral::sdk::Zxid) override {
    events.emplace_back(e.type, e.path);
  }
  const Ids& identities() const override { return ids; }
};
const DataTree kTree;  // ACL 0: world:anyone
// A watcher with a limit of its own, as a client's connection has.
struct Limited : Recorder {
  size_t limit = SIZE_MAX - 1;
  size_t watch_bytes_limit() const override { return limit; }
};
}  // namespace

TEST(Watches, FireOnceWithTheRightType) {
  WatchManager wm;
  Recorder a, b;
  EXPECT_TRUE(wm.watch_data("/x", &a));
  EXPECT_TRUE(wm.watch_children("/", &b));
  EXPECT_TRUE(wm.watch_data("/x", &a));  // registering twice still fires once
  EXPECT_EQ(wm.watch_count(), 2u);
  wm.trigger({{Change::created, "/x"}, {Change::children_changed, "/"}}, 1, kTree);
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(a.events[0].first, static_cast<int32_t>(EventType::node_created));
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].first, static_cast<int32_t>(EventType::node_children_changed));
  wm.trigger({{Change::data_changed, "/x"}, {Change::children_changed, "/"}}, 2, kTree);
  EXPECT_EQ(a.events.size(), 1u);
  EXPECT_EQ(b.events.size(), 1u);
  EXPECT_EQ(wm.watch_count(), 0u);
}

TEST(Watches, DeleteNotifiesAWatcherOfBothKindsOnce) {
  WatchManager wm;
  Recorder a;
  EXPECT_TRUE(wm.watch_data("/x", &a));
  EXPECT_TRUE(wm.watch_children("/x", &a));
  wm.trigger({{Change::deleted, "/x"}}, 3, kTree);
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(a.events[0].first, static_cast<int32_t>(EventType::node_deleted));
  EXPECT_EQ(wm.watch_count(), 0u);
}

TEST(Watches, RemovingAWatcherForgetsAllItsWatches) {
  WatchManager wm;
  Recorder a, b;
  EXPECT_TRUE(wm.watch_data("/x", &a));
  EXPECT_TRUE(wm.watch_children("/y", &a));
  EXPECT_TRUE(wm.watch_data("/x", &b));
  wm.remove_watcher(&a);
  EXPECT_EQ(wm.watch_count(), 1u);
  wm.trigger({{Change::data_changed, "/x"}, {Change::children_changed, "/y"}}, 4, kTree);
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
  EXPECT_FALSE(t.touch(1, 1200));             // expiring sessions stay dead
  EXPECT_TRUE(t.take_expired(1200).empty());  // and are reported once
  EXPECT_EQ(t.take_expired(2100), std::vector<int64_t>{2});
  t.forget(1);
  t.forget(2);
  EXPECT_EQ(t.size(), 0u);
}

TEST(Watches, PersistentWatchesStayAndRecursiveOnesSeeDescendants) {
  WatchManager wm;
  Recorder p, r;
  EXPECT_TRUE(wm.watch_persistent("/a", &p, false));
  EXPECT_TRUE(wm.watch_persistent("/a", &r, true));
  wm.trigger({{Change::created, "/a/b"}, {Change::children_changed, "/a"}}, 1, kTree);
  // p hears of its node's children; r of the new descendant, not of children.
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].first, static_cast<int32_t>(EventType::node_children_changed));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0],
            std::make_pair(static_cast<int32_t>(EventType::node_created), std::string("/a/b")));
  wm.trigger(
      {{Change::data_changed, "/a"}, {Change::data_changed, "/a/b/c"}, {Change::deleted, "/a"}}, 2,
      kTree);
  EXPECT_EQ(p.events.size(), 3u);
  EXPECT_EQ(r.events.size(), 4u);
  EXPECT_EQ(wm.watch_count(), 2u);  // still there
  EXPECT_TRUE(wm.find_or_remove("/a", WatchKind::persistent_recursive, &r, false));
  EXPECT_TRUE(wm.find_or_remove("/a", WatchKind::any, &r, true));
  EXPECT_FALSE(wm.find_or_remove("/a", WatchKind::data, &p, true));
  EXPECT_EQ(wm.watch_count(), 1u);
}

TEST(Watches, RecursiveWatchesOnlyReportReadableNodes) {
  // CVE-2024-23944: a recursive watch on / must not reveal nodes its owner
  // cannot read.
  DataTree tree;
  Journal j;
  Ids alice = {{"digest", digest_of("alice:pw")}};
  ASSERT_EQ(tree.create("/secret", "", {{corral::proto::perm::all, {"digest", alice[0].id}}},
                        corral::proto::CreateMode::persistent, 0, 1, 0, alice, nullptr, nullptr, j),
            Err::ok);
  WatchManager wm;
  Recorder anon, owner;
  owner.ids = alice;
  EXPECT_TRUE(wm.watch_persistent("/", &anon, true));
  EXPECT_TRUE(wm.watch_persistent("/", &owner, true));
  wm.trigger(j.changes, 1, tree);
  EXPECT_TRUE(anon.events.empty());
  ASSERT_EQ(owner.events.size(), 1u);
  EXPECT_EQ(owner.events[0].second, "/secret");
}

// Random registrations, removals, disconnects and changes against a model
// of which watches exist: every notification is one the model expects,
// and the count and the listing agree with it throughout.
TEST(Watches, AgreeWithAModelUnderRandomUse) {
  WatchManager wm;
  std::vector<Recorder> rs(6);
  // (table, path, watcher): 'd' data, 'c' children, 'p' persistent.
  std::set<std::tuple<char, std::string, int>> model;
  std::mt19937 rng(11);
  const std::vector<std::string> paths = {"/a", "/b", "/c", "/a/x", "/b/y"};
  for (int step = 0; step < 20000; ++step) {
    const int w = static_cast<int>(rng() % rs.size());
    const std::string& path = paths[rng() % paths.size()];
    switch (rng() % 8) {
      case 0:
      case 1:
        EXPECT_TRUE(wm.watch_data(path, &rs[w]));
        model.insert({'d', path, w});
        break;
      case 2:
        EXPECT_TRUE(wm.watch_children(path, &rs[w]));
        model.insert({'c', path, w});
        break;
      case 3:
        EXPECT_TRUE(wm.watch_persistent(path, &rs[w], false));
        model.insert({'p', path, w});
        break;
      case 4: {
        bool had = model.erase({'d', path, w}) > 0;
        EXPECT_EQ(wm.find_or_remove(path, WatchKind::data, &rs[w], true), had);
        break;
      }
      case 5:
        if (rng() % 8 == 0) {
          wm.remove_watcher(&rs[w]);
          std::erase_if(model, [&](const auto& m) { return std::get<2>(m) == w; });
        }
        break;
      default: {
        for (auto& r : rs) r.events.clear();
        const bool children = rng() % 2;
        wm.trigger({{children ? Change::children_changed : Change::data_changed, path}}, step,
                   kTree);
        for (int i = 0; i < static_cast<int>(rs.size()); ++i) {
          const bool one_shot = model.count({children ? 'c' : 'd', path, i}) > 0;
          const bool lasting = model.count({'p', path, i}) > 0;
          EXPECT_EQ(rs[i].events.size(), one_shot || lasting ? 1u : 0u) << step;
          model.erase({children ? 'c' : 'd', path, i});
        }
      }
    }
    ASSERT_EQ(wm.watch_count(), model.size()) << step;
  }
  size_t listed = 0;
  for (const auto& m : model) listed += std::get<0>(m) != 'c';
  // The listing merges a data and a persistent watch of one watcher on one path.
  std::set<std::pair<int, std::string>> pairs;
  for (const auto& m : model)
    if (std::get<0>(m) != 'c') pairs.insert({std::get<2>(m), std::get<1>(m)});
  EXPECT_EQ(wm.listed_watches().size(), pairs.size());
  EXPECT_LE(pairs.size(), listed);
}

// Watches are records in a pool of 1024-record chunks, linked by number:
// thousands of them, over several chunks and reused as they fire, link and
// unlink as a handful do. The listing walks every watcher's list.
TEST(Watches, ThousandsSpanThePoolAndAreReused) {
  WatchManager wm;
  Recorder a, b, c;
  constexpr int kPaths = 3000;
  auto path = [](int i) { return "/n" + std::to_string(i); };
  auto listing = [&] {
    std::set<std::pair<Watcher*, std::string>> out;
    for (auto& [w, p] : wm.listed_watches()) out.insert({w, p});
    return out;
  };
  for (int round = 0; round < 3; ++round) {
    for (auto* r : {&a, &b, &c}) r->events.clear();
    std::set<std::pair<Watcher*, std::string>> model;
    for (int i = 0; i < kPaths; ++i) {
      // b in the middle of each path's list, between a and c.
      for (Recorder* r : {&a, &b, &c}) {
        if (r == &c && i % 2 == 1) continue;
        EXPECT_TRUE(wm.watch_data(path(i), r));
        model.insert({r, path(i)});
      }
      EXPECT_TRUE(wm.watch_children(path(i), &c));  // not listed, as in ZooKeeper
    }
    ASSERT_EQ(wm.watch_count(), size_t{3 * kPaths + kPaths / 2});
    ASSERT_EQ(listing(), model);
    // b's watches go with it, from the middle of every path's list.
    wm.remove_watcher(&b);
    std::erase_if(model, [&](const auto& m) { return m.first == &b; });
    ASSERT_EQ(wm.watch_count(), size_t{2 * kPaths + kPaths / 2});
    ASSERT_EQ(listing(), model);
    // Some of a's from the middle of its own list.
    for (int i = 1; i < kPaths; i += 3) {
      EXPECT_TRUE(wm.find_or_remove(path(i), WatchKind::data, &a, true));
      model.erase({&a, path(i)});
    }
    ASSERT_EQ(listing(), model);
    for (int i = 0; i < kPaths; ++i) wm.trigger({{Change::deleted, path(i)}}, i, kTree);
    EXPECT_EQ(a.events.size(), size_t{kPaths - kPaths / 3});
    EXPECT_TRUE(b.events.empty());
    EXPECT_EQ(c.events.size(), size_t{kPaths});  // its data or child watch, once a path
    EXPECT_EQ(wm.watch_count(), 0u);
    EXPECT_TRUE(wm.listed_watches().empty());
  }
  // One path that thousands watch, and a watcher with a single watch: it
  // is found by walking the watcher's short list, not the path's.
  std::vector<Recorder> many(2500);
  for (auto& r : many) EXPECT_TRUE(wm.watch_data("/hot", &r));
  Recorder d;
  EXPECT_FALSE(wm.find_or_remove("/hot", WatchKind::data, &d, false));
  EXPECT_TRUE(wm.watch_data("/hot", &d));
  EXPECT_TRUE(wm.watch_data("/cold", &many[0]));
  EXPECT_TRUE(wm.find_or_remove("/hot", WatchKind::data, &d, false));
  EXPECT_TRUE(wm.find_or_remove("/hot", WatchKind::data, &many[1234], true));
  EXPECT_FALSE(wm.find_or_remove("/hot", WatchKind::data, &many[1234], false));
  EXPECT_EQ(wm.watch_count(), 2501u);
  wm.trigger({{Change::data_changed, "/hot"}}, 1, kTree);
  EXPECT_EQ(d.events.size(), 1u);
  EXPECT_EQ(many[1234].events.size(), 0u);
  EXPECT_EQ(many[2499].events.size(), 1u);
  EXPECT_EQ(wm.watch_count(), 1u);  // many[0]'s on /cold
  EXPECT_EQ(listing(), (std::set<std::pair<Watcher*, std::string>>{{&many[0], "/cold"}}));
}

// The entries of watched paths are one open-addressed table for all four
// kinds: tens of thousands of paths grow it many times and, as they go,
// shrink it again, entries moving back as others are erased in front of
// them. Every answer is checked against a model throughout, with paths
// too long for the slab (kept by malloc) among them and the same path
// watched in every kind.
TEST(Watches, ManyPathsGrowAndShrinkTheirTable) {
  WatchManager wm;
  std::vector<Recorder> rs(3);
  std::mt19937 rng(5);
  auto path = [](int i) {
    std::string p = "/p" + std::to_string(i);
    if (i % 97 == 0) p += "/" + std::string(600 + i % 50, 'x');
    return p;
  };
  // (kind, path number, watcher)
  std::set<std::tuple<char, int, int>> model;
  auto add = [&](char kind, int i, int w) {
    switch (kind) {
      case 'd':
        EXPECT_TRUE(wm.watch_data(path(i), &rs[w]));
        break;
      case 'c':
        EXPECT_TRUE(wm.watch_children(path(i), &rs[w]));
        break;
      case 'p':
        EXPECT_TRUE(wm.watch_persistent(path(i), &rs[w], false));
        break;
      default:
        EXPECT_TRUE(wm.watch_persistent(path(i), &rs[w], true));
    }
    model.insert({kind, i, w});
  };
  auto kind_of = [](char k) {
    return k == 'd'   ? WatchKind::data
           : k == 'c' ? WatchKind::children
           : k == 'p' ? WatchKind::persistent
                      : WatchKind::persistent_recursive;
  };
  auto entries = [&] {
    std::set<std::pair<char, int>> e;
    for (const auto& [k, i, w] : model) e.insert({k, i});
    return e.size();
  };
  auto check_all = [&](int paths) {
    for (int i = 0; i < paths; ++i)
      for (char k : {'d', 'c', 'p', 'r'})
        for (int w = 0; w < 3; ++w)
          ASSERT_EQ(wm.find_or_remove(path(i), kind_of(k), &rs[w], false),
                    model.count({k, i, w}) > 0)
              << k << " " << i << " " << w;
  };
  constexpr int kPaths = 20000;
  for (int i = 0; i < kPaths; ++i) {
    add("dcpr"[rng() % 4], i, static_cast<int>(rng() % 3));
    if (i % 500 == 0) add('d', i, 0), add('c', i, 0), add('p', i, 0), add('r', i, 0);
  }
  ASSERT_EQ(wm.watch_count(), model.size());
  ASSERT_EQ(wm.entry_count(), entries());
  check_all(kPaths);
  // Most go, in a random order: by removal, by firing, and with a watcher.
  std::vector<int> order(kPaths);
  for (int i = 0; i < kPaths; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (int n = 0; n < kPaths * 9 / 10; ++n) {
    const int i = order[n];
    if (n % 3 == 0) {
      // Deleting the node fires its data and child watches.
      wm.trigger({{Change::deleted, path(i)}}, n, kTree);
      std::erase_if(model, [&](const auto& m) {
        return std::get<1>(m) == i && (std::get<0>(m) == 'd' || std::get<0>(m) == 'c');
      });
    }
    for (char k : {'d', 'c', 'p', 'r'})
      for (int w = 0; w < 3; ++w)
        EXPECT_EQ(wm.find_or_remove(path(i), kind_of(k), &rs[w], true), model.erase({k, i, w}) > 0);
    if (n % 5000 == 0) {
      ASSERT_EQ(wm.entry_count(), entries()) << n;
    }
  }
  ASSERT_EQ(wm.watch_count(), model.size());
  ASSERT_EQ(wm.entry_count(), entries());
  check_all(kPaths);
  wm.remove_watcher(&rs[1]);
  std::erase_if(model, [](const auto& m) { return std::get<2>(m) == 1; });
  ASSERT_EQ(wm.entry_count(), entries());
  check_all(kPaths);
  for (int w : {0, 2}) wm.remove_watcher(&rs[w]);
  EXPECT_EQ(wm.watch_count(), 0u);
  EXPECT_EQ(wm.entry_count(), 0u);
  // The table works as fresh after emptying.
  add('d', 7, 0);
  wm.trigger({{Change::data_changed, path(7)}}, 1, kTree);
  EXPECT_EQ(wm.entry_count(), 0u);
}

// A watcher's watches hold at most its watch_bytes_limit(): each counts its
// path and kWatchBytes. One more is refused and changes nothing; one it has
// already is found as before; what fires or goes makes room again, and
// other watchers are not held to its limit.
TEST(Watches, AWatcherIsHeldToItsLimit) {
  WatchManager wm;
  Limited a;
  Recorder b;  // no limit
  const size_t each = std::string_view("/n0").size() + WatchManager::kWatchBytes;
  a.limit = 3 * each + each / 2;
  EXPECT_TRUE(wm.watch_data("/n0", &a));
  EXPECT_TRUE(wm.watch_children("/n1", &a));
  EXPECT_TRUE(wm.watch_persistent("/n2", &a, true));
  EXPECT_EQ(wm.bytes_of(&a), 3 * each);
  EXPECT_FALSE(wm.watch_data("/n3", &a));
  EXPECT_FALSE(wm.watch_persistent("/n0", &a, false));  // another kind is another watch
  EXPECT_EQ(wm.refused_count(), 2u);
  EXPECT_EQ(wm.watch_count(), 3u);
  EXPECT_EQ(wm.entry_count(), 3u);
  EXPECT_EQ(wm.bytes_of(&a), 3 * each);
  EXPECT_TRUE(wm.watch_data("/n0", &a));  // there already
  EXPECT_TRUE(wm.watch_data("/n3", &b));
  EXPECT_EQ(wm.bytes_of(&b), each);
  // A path longer than the whole limit is refused on its own.
  EXPECT_FALSE(wm.watch_data("/" + std::string(4 * each, 'x'), &a));
  // So is a watcher's first watch, and the watcher is not kept.
  Limited c;
  c.limit = each - 1;
  EXPECT_FALSE(wm.watch_data("/n0", &c));
  EXPECT_EQ(wm.watcher_count(), 2u);
  EXPECT_EQ(wm.refused_count(), 4u);
  // /n0's watch fires and goes: room for one more.
  wm.trigger({{Change::data_changed, "/n0"}}, 1, kTree);
  EXPECT_EQ(wm.bytes_of(&a), 2 * each);
  EXPECT_TRUE(wm.watch_data("/n3", &a));
  EXPECT_FALSE(wm.watch_data("/n4", &a));
  EXPECT_TRUE(wm.find_or_remove("/n1", WatchKind::children, &a, true));
  EXPECT_TRUE(wm.watch_data("/n4", &a));
  wm.remove_watcher(&a);
  EXPECT_EQ(wm.bytes_of(&a), 0u);
  EXPECT_EQ(wm.watch_count(), 1u);  // b's
  EXPECT_EQ(wm.watcher_count(), 1u);
  EXPECT_EQ(wm.refused_count(), 5u);
}

// All watches together hold at most the total limit, whichever watcher with
// a limit of its own sets them; one without (a recipe's in-process session)
// is trusted with the total too, though its watches count.
TEST(Watches, AllWatchesAreHeldToTheTotalLimit) {
  WatchManager wm;
  Limited a, b;  // limits of their own larger than the total
  const size_t each = std::string_view("/n0").size() + WatchManager::kWatchBytes;
  wm.set_total_limit(3 * each);
  EXPECT_TRUE(wm.watch_data("/n0", &a));
  EXPECT_TRUE(wm.watch_data("/n0", &b));  // a watch of its own on a watched path
  EXPECT_TRUE(wm.watch_children("/n1", &b));
  EXPECT_EQ(wm.total_bytes(), 3 * each);
  EXPECT_FALSE(wm.watch_data("/n2", &a));
  EXPECT_FALSE(wm.watch_persistent("/n0", &b, false));
  EXPECT_TRUE(wm.watch_data("/n0", &b));  // there already
  EXPECT_EQ(wm.watch_count(), 3u);
  wm.remove_watcher(&b);
  EXPECT_EQ(wm.total_bytes(), each);
  EXPECT_TRUE(wm.watch_data("/n2", &a));
  wm.trigger({{Change::deleted, "/n0"}, {Change::deleted, "/n2"}}, 1, kTree);
  EXPECT_EQ(wm.total_bytes(), 0u);
  EXPECT_EQ(a.events.size(), 2u);
  Recorder trusted;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(wm.watch_data("/n" + std::to_string(i), &trusted));
  EXPECT_EQ(wm.total_bytes(), 5 * each);
  EXPECT_FALSE(wm.watch_data("/n0", &a));
  EXPECT_EQ(wm.refused_count(), 3u);
}
