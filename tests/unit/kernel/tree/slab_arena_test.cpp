// The arena small znodes live in.
#include "tree/slab_arena.hpp"

#include <gtest/gtest.h>

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
  EXPECT_EQ(SlabArena::usable_size(d), 16u);  // room for the free list's link
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
  for (void* p : objects) arena.deallocate(p);
  // The class keeps one page, and the region it is in; the rest went back.
  EXPECT_EQ(arena.stats().objects, 0u);
  EXPECT_EQ(arena.stats().pages, 1u);
  EXPECT_EQ(arena.stats().regions, 1u);
  // Filling them again takes pages back from that region first.
  for (size_t i = 0; i < per_page * pages_per_region; ++i) {
    objects[i] = arena.allocate(256);
    ASSERT_NE(objects[i], nullptr);
  }
  EXPECT_EQ(arena.stats().regions, 1u);
  objects.resize(per_page * pages_per_region);
  for (void* p : objects) arena.deallocate(p);
}

// Random allocations and frees over every class, each object filled with a
// pattern of its own: no two live objects overlap, and none is changed by
// what happens to the others.
TEST(SlabArena, LiveObjectsNeverOverlap) {
  SlabArena arena;
  std::mt19937_64 rng(7);
  std::map<char*, std::pair<size_t, unsigned char>> live;
  auto check = [&](char* p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; ++i)
      if (static_cast<unsigned char>(p[i]) != v) return false;
    return true;
  };
  for (int step = 0; step < 200000; ++step) {
    if (live.empty() || rng() % 100 < 55) {
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
    } else {
      auto it = live.lower_bound(reinterpret_cast<char*>(rng()));
      if (it == live.end()) it = live.begin();
      ASSERT_TRUE(check(it->first, it->second.first, it->second.second));
      arena.deallocate(it->first);
      live.erase(it);
    }
  }
  for (auto& [p, f] : live) {
    ASSERT_TRUE(check(p, f.first, f.second));
    arena.deallocate(p);
  }
  EXPECT_EQ(arena.stats().objects, 0u);
  EXPECT_LE(arena.stats().pages, SlabArena::kMaxObject / SlabArena::kGrain);
}

TEST(SlabArena, TwoThreadsShareIt) {
  SlabArena arena;
  auto work = [&](unsigned char v) {
    std::vector<char*> mine;
    for (int round = 0; round < 20; ++round) {
      for (int i = 0; i < 2000; ++i) {
        auto* p = static_cast<char*>(arena.allocate(64 + (i % 8) * 8));
        if (!p) return;
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
