// The arena small znodes live in.
#include "tree/slab_arena.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "tree/node.hpp"

using namespace corral::kernel;

TEST(SlabArena, ObjectsTakeTheirSizeRoundedToEightBytes) {
  SlabArena arena;
  EXPECT_EQ(arena.allocate(0), nullptr);
  EXPECT_EQ(arena.allocate(SlabArena::kMaxObject + 1), nullptr);
  void* a = arena.allocate(176);
  void* b = arena.allocate(176);
  void* c = arena.allocate(177);
  void* d = arena.allocate(1);
  ASSERT_TRUE(a && b && c && d);
  EXPECT_EQ(SlabArena::usable_size(a), 176u);
  EXPECT_EQ(SlabArena::usable_size(c), 184u);
  EXPECT_EQ(SlabArena::usable_size(d), 16u);  // the smallest class
  // No header between neighbours of one class.
  EXPECT_EQ(static_cast<char*>(b) - static_cast<char*>(a), 176);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(c) % 8, 0u);
  EXPECT_EQ(arena.stats().objects, 4u);
  EXPECT_EQ(arena.stats().pages, 3u);
  // The slot freed last is the next one given.
  arena.deallocate(a);
  EXPECT_EQ(arena.allocate(170), a);
  for (void* p : {a, b, c, d}) arena.deallocate(p);
  EXPECT_EQ(arena.stats().objects, 0u);
}

TEST(SlabArena, EmptiedPagesAndRegionsGoBack) {
  SlabArena arena;
  // Three regions' worth of one class.
  const size_t per_page = (SlabArena::kPageBytes - 64) / 256;
  const size_t pages_per_region = SlabArena::kRegionBytes / SlabArena::kPageBytes;
  std::vector<void*> objects;
  for (size_t i = 0; i < per_page * pages_per_region * 3; ++i) {
    objects.push_back(arena.allocate(256));
    ASSERT_NE(objects.back(), nullptr);
  }
  EXPECT_EQ(arena.stats().pages, pages_per_region * 3);
  EXPECT_EQ(arena.stats().regions, 3u);
  auto region_of = [](const void* p) {
    return reinterpret_cast<uintptr_t>(p) & ~(SlabArena::kRegionBytes - 1);
  };
  const uintptr_t first = region_of(objects.front()), last = region_of(objects.back());
  for (void* p : objects) arena.deallocate(p);
  // The class keeps the page that emptied first (the only one with room
  // then) and the one that emptied last (its spare); every other page went
  // back, and the region none of them is in was unmapped.
  EXPECT_EQ(arena.stats().objects, 0u);
  EXPECT_EQ(arena.stats().pages, 2u);
  EXPECT_EQ(arena.stats().regions, 2u);
  // Filling a region's worth again maps nothing new: the pages come back
  // from the two regions still mapped.
  for (size_t i = 0; i < per_page * pages_per_region; ++i) {
    objects[i] = arena.allocate(256);
    ASSERT_NE(objects[i], nullptr);
    ASSERT_TRUE(region_of(objects[i]) == first || region_of(objects[i]) == last);
  }
  EXPECT_EQ(arena.stats().regions, 2u);
  EXPECT_EQ(arena.stats().pages, pages_per_region);
  objects.resize(per_page * pages_per_region);
  for (void* p : objects) arena.deallocate(p);
}

// A page that empties while its class has another page with room is kept
// as the class's spare, not given back: a class at the edge of a page does
// not map and give back memory on every turn.
TEST(SlabArena, AClassAtAPagesEdgeKeepsASpare) {
  SlabArena arena;
  const size_t per_page = (SlabArena::kPageBytes - 64) / 512;
  std::vector<void*> full;
  for (size_t i = 0; i < per_page; ++i) full.push_back(arena.allocate(512));
  void* lone = arena.allocate(512);  // the second page's only object
  arena.deallocate(full[0]);         // the first page has room again
  EXPECT_EQ(arena.stats().pages, 2u);
  for (int turn = 0; turn < 3; ++turn) {
    arena.deallocate(lone);  // the second page empties: the spare
    EXPECT_EQ(arena.stats().pages, 2u);
    full[0] = arena.allocate(512);  // into the first page's room
    lone = arena.allocate(512);     // the spare comes back
    EXPECT_EQ(arena.stats().pages, 2u);
    EXPECT_NE(reinterpret_cast<uintptr_t>(lone) / SlabArena::kPageBytes,
              reinterpret_cast<uintptr_t>(full[0]) / SlabArena::kPageBytes);
    arena.deallocate(full[0]);
  }
  arena.deallocate(lone);
  for (size_t i = 1; i < per_page; ++i) arena.deallocate(full[i]);
  EXPECT_EQ(arena.stats().objects, 0u);
}

// Random allocations and frees over every class, each object filled with a
// pattern of its own: no two live objects overlap, and none is changed by
// what happens to the others.
TEST(SlabArena, LiveObjectsNeverOverlap) {
  SlabArena arena;
  std::mt19937_64 rng(7);
  std::map<char*, std::pair<size_t, unsigned char>> live;
  std::vector<char*> order;  // the live objects, to pick one at random
  auto intact = [&](char* p) {
    const auto& [n, v] = live.at(p);
    for (size_t i = 0; i < n; ++i)
      if (static_cast<unsigned char>(p[i]) != v) return false;
    return true;
  };
  size_t most_pages = 0;
  for (int step = 0; step < 200000; ++step) {
    // Grows to a few thousand objects, then shrinks to none, twice.
    const bool growing = (step / 50000) % 2 == 0;
    if (order.empty() || rng() % 100 < (growing ? 70u : 30u)) {
      const size_t n = 1 + rng() % SlabArena::kMaxObject;
      auto* p = static_cast<char*>(arena.allocate(n));
      ASSERT_NE(p, nullptr);
      ASSERT_GE(SlabArena::usable_size(p), n);
      auto next = live.lower_bound(p);
      if (next != live.end()) {
        ASSERT_LE(p + n, next->first);
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(prev->first + prev->second.first, p);
      }
      const auto v = static_cast<unsigned char>(rng());
      std::memset(p, v, n);
      live[p] = {n, v};
      order.push_back(p);
    } else {
      const size_t i = rng() % order.size();
      char* p = order[i];
      ASSERT_TRUE(intact(p));
      arena.deallocate(p);
      live.erase(p);
      order[i] = order.back();
      order.pop_back();
    }
    most_pages = std::max(most_pages, arena.stats().pages);
  }
  for (char* p : order) {
    ASSERT_TRUE(intact(p));
    arena.deallocate(p);
  }
  EXPECT_EQ(arena.stats().objects, 0u);
  EXPECT_GT(most_pages, 100u);  // it did spread over many pages of each class
  // Each class keeps at most its page with room and its spare.
  EXPECT_LE(arena.stats().pages, 2 * SlabArena::kMaxObject / SlabArena::kGrain);
}

TEST(SlabArena, TwoThreadsShareIt) {
  SlabArena arena;
  auto work = [&](unsigned char v) {
    std::vector<char*> mine;
    for (int round = 0; round < 20; ++round) {
      for (int i = 0; i < 2000; ++i) {
        auto* p = static_cast<char*>(arena.allocate(64 + (i % 8) * 8));
        if (!p) {
          ADD_FAILURE() << "no memory";
          return;
        }
        std::memset(p, v, 64);
        mine.push_back(p);
      }
      for (char* p : mine) {
        for (int i = 0; i < 64; ++i) EXPECT_EQ(static_cast<unsigned char>(p[i]), v);
        arena.deallocate(p);
      }
      mine.clear();
    }
  };
  std::thread a(work, 0x5a), b(work, 0xa5);
  a.join();
  b.join();
  EXPECT_EQ(arena.stats().objects, 0u);
}

// A small znode is its fixed part, path and data rounded up to 8 bytes: the
// room past its data is less than 8 bytes.
TEST(SlabArena, SmallNodesComeFromIt) {
  const std::string path = "/bench/p37/n0000123";  // 19 bytes
  NodePtr n = Node::make(path, std::string(100, 'x'));
  if (!n->in_slab()) GTEST_SKIP() << "nodes come from malloc in this build (AddressSanitizer)";
  const size_t bytes = sizeof(Node) + path.size() + 100;  // 175
  EXPECT_TRUE(n->data_fits(100 + (8 - bytes % 8) % 8));
  EXPECT_FALSE(n->data_fits(100 + 8));
  // A large one still has room for its data, from malloc.
  NodePtr big = Node::make(path, std::string(4000, 'y'));
  EXPECT_FALSE(big->in_slab());
  EXPECT_TRUE(big->data_fits(4000));
  EXPECT_EQ(big->data(), std::string(4000, 'y'));
}
