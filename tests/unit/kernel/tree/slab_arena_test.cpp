// The arena small znodes live in.
#include "tree/slab_arena.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
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

namespace {
// Whether every page of the region at `base` is in memory.
bool resident(uintptr_t base) {
  std::vector<unsigned char> pages(SlabArena::kRegionBytes / 4096);
  if (::mincore(reinterpret_cast<void*>(base), SlabArena::kRegionBytes, pages.data()) != 0)
    return false;
  return std::all_of(pages.begin(), pages.end(), [](unsigned char v) { return v & 1; });
}

// Whether residency tells the thread's work apart: the kernel knows
// MADV_POPULATE_WRITE (5.14 on), and does not give a first touch a whole
// huge page anyway (transparent huge pages "always").
bool fill_is_visible() {
  void* m = ::mmap(nullptr, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return false;
  const bool populates = ::madvise(m, 1 << 16, MADV_POPULATE_WRITE) == 0;
  ::munmap(m, 1 << 16);
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode((std::istreambuf_iterator<char>(thp)), std::istreambuf_iterator<char>());
  return populates && mode.find("[always]") == std::string::npos;
}
}  // namespace

// While a FillAhead lives, the regions the arena hands out next are mapped
// ahead and faulted in by another thread; a region unmapped meanwhile is
// left by that thread first; those mapped ahead and not used go back when
// it ends. A second one at the same time does nothing.
TEST(SlabArena, FillAheadFaultsInTheNextRegionsAndGivesBackTheRest) {
  SlabArena arena;
  const size_t per_page = (SlabArena::kPageBytes - 64) / 256;
  const size_t per_region = per_page * (SlabArena::kRegionBytes / SlabArena::kPageBytes);
  auto region_of = [](const void* p) {
    return reinterpret_cast<uintptr_t>(p) & ~(SlabArena::kRegionBytes - 1);
  };
  std::vector<void*> objects;
  {
    SlabArena::FillAhead fill(arena, 2);
    {
      SlabArena::FillAhead second(arena, 5);  // one at a time: this one does nothing
    }
    objects.push_back(arena.allocate(256));
    ASSERT_NE(objects.back(), nullptr);
    EXPECT_EQ(arena.stats().regions, 3u);  // the one in use and two ahead
    // The first region full, the next object is in the second, which the
    // thread faults in whole (new_page alone faults in one 64 KiB page).
    while (objects.size() <= per_region) objects.push_back(arena.allocate(256));
    const uintptr_t second = region_of(objects.back());
    EXPECT_NE(second, region_of(objects.front()));
    if (fill_is_visible()) {
      bool filled = false;
      for (int i = 0; i < 500 && !(filled = resident(second)); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      EXPECT_TRUE(filled);
    }
    // Three regions in use, two ahead.
    while (objects.size() < 3 * per_region) objects.push_back(arena.allocate(256));
    EXPECT_EQ(arena.stats().regions, 5u);
    // Emptied, the middle region is unmapped (as without a FillAhead)
    // while the thread is still there.
    for (void* p : objects) arena.deallocate(p);
    objects.clear();
    EXPECT_EQ(arena.stats().regions, 4u);
    for (int i = 0; i < 3; ++i) objects.push_back(arena.allocate(256));
  }
  // The two regions mapped ahead went back; the two in use stay.
  EXPECT_EQ(arena.stats().regions, 2u);
  for (void* p : objects) {
    std::memset(p, 0x3c, 256);
    arena.deallocate(p);
  }
  objects.clear();
  // Without it, regions are mapped one at a time again.
  const size_t regions = arena.stats().regions;
  while (arena.stats().regions == regions) {
    objects.push_back(arena.allocate(128));
    ASSERT_NE(objects.back(), nullptr);
  }
  EXPECT_EQ(arena.stats().regions, regions + 1);
  for (void* p : objects) arena.deallocate(p);
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
