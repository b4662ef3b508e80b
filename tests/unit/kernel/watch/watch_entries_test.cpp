#include "watch/watch_entries.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace corral::kernel;

namespace {

using Key = std::pair<WatchTable, std::string>;

WatchTable table_of(int i) { return static_cast<WatchTable>(i % 4); }

// Keys 4k to 4k + 3 share a path, one in each table.
std::string path_of(int i) {
  std::string p = "/w/p" + std::to_string(i / 4 % 100) + "/n" + std::to_string(i / 4);
  // Now and then one too long for the slab: malloc keeps it.
  if (i / 4 % 211 == 0) p += "/" + std::string(700, 'y');
  return p;
}

// Every key of the model is found, as the very entry made for it, and the
// table counts what the model holds.
void expect_all(const WatchEntries& t, const std::map<Key, WatchEntry*>& model) {
  ASSERT_EQ(t.size(), model.size());
  size_t per[4] = {};
  for (const auto& [k, e] : model) {
    ASSERT_EQ(t.find(k.first, k.second), e) << k.second;
    EXPECT_EQ(e->path(), k.second);
    EXPECT_EQ(e->kind(), k.first);
    ++per[static_cast<int>(k.first)];
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ(t.size(table_of(i)), per[i]);
}

}  // namespace

// Keys come and go at random while the table grows to tens of thousands
// and shrinks back, twice: most of the time a resize is under way, with
// entries in the old slots and in the new. Each step looks up a key that
// is there and one that is not; every few steps of a resize, every key.
TEST(WatchEntries, AgreeWithAModelWhileResizing) {
  WatchEntries t;
  std::map<Key, WatchEntry*> model;
  std::mt19937 rng(3);
  size_t grown = 0, shrunk = 0, checked_mid_resize = 0;
  int next = 0;  // keys are numbered; a key once erased may come back
  for (int cycle = 0; cycle < 2; ++cycle) {
    for (int phase = 0; phase < 2; ++phase) {
      const bool growing = phase == 0;
      const size_t goal = growing ? 40000 : 100;
      for (int step = 0; growing ? model.size() < goal : model.size() > goal; ++step) {
        const size_t before = t.capacity();
        // Growing: three inserts to one erase; shrinking the other way.
        const bool insert = model.empty() || (rng() % 4 < 3) == growing;
        if (insert) {
          const int i = rng() % 8 == 0 && next > 0 ? static_cast<int>(rng() % next) : next++;
          const Key k{table_of(i), path_of(i)};
          auto [e, made] = t.find_or_make(k.first, k.second);
          auto it = model.find(k);
          ASSERT_EQ(made, it == model.end());
          if (made) {
            model.emplace(k, e);
          } else {
            ASSERT_EQ(e, it->second);
          }
        } else {
          auto it = model.begin();
          std::advance(it, rng() % std::min<size_t>(model.size(), 64));
          t.erase(it->second);
          model.erase(it);
        }
        grown += t.capacity() > before;
        shrunk += t.capacity() < before;
        // A path, in each table: the same path in another table is
        // another key, there or not.
        const int probe = static_cast<int>(rng() % (next + 1)) / 4 * 4;
        for (int j = probe; j < probe + 4; ++j) {
          const Key k{table_of(j), path_of(j)};
          auto it = model.find(k);
          ASSERT_EQ(t.find(k.first, k.second), it == model.end() ? nullptr : it->second);
        }
        if (t.resizing() && step % 97 == 0) {
          expect_all(t, model);
          ++checked_mid_resize;
        }
      }
    }
  }
  expect_all(t, model);
  // None to 16 slots and on to 65,536, then 512 to 65,536; down to 512 twice.
  EXPECT_EQ(grown, 13u + 7u);
  EXPECT_EQ(shrunk, 2 * 7u);
  EXPECT_GE(checked_mid_resize, 50u);
}

// A large table resizes a few slots at a time: each insert or erase moves
// kMigrateStep old slots, so a resize lasts about capacity / kMigrateStep
// changes, and lookups find the entries on either side meanwhile.
TEST(WatchEntries, ResizeMovesAFewSlotsAnInsert) {
  WatchEntries t;
  std::map<Key, WatchEntry*> model;
  int i = 0;
  auto insert = [&] {
    const Key k{table_of(i), path_of(i)};
    ++i;
    model.emplace(k, t.find_or_make(k.first, k.second).first);
  };
  // Small tables resize at once.
  while (t.capacity() <= WatchEntries::kSyncResize) {
    insert();
    ASSERT_FALSE(t.resizing());
  }
  while (!t.resizing() && i < 100000) insert();
  ASSERT_TRUE(t.resizing());
  const size_t old_capacity = t.capacity() / 2;
  size_t changes = 0;
  while (t.resizing() && changes < old_capacity) {
    // Every third change an erase, of the first key in the model's order.
    if (changes % 3 == 2) {
      t.erase(model.begin()->second);
      model.erase(model.begin());
    } else {
      insert();
    }
    ++changes;
    if (changes % 7 == 0) expect_all(t, model);
  }
  // The insert that started it moved two steps' worth.
  EXPECT_EQ(changes, old_capacity / WatchEntries::kMigrateStep - 2);
  expect_all(t, model);
  // Down again: erased to under an eighth, the table halves, a few slots
  // at a time, as long as it is large.
  const size_t large = t.capacity();
  while (t.capacity() == large) {
    t.erase(model.begin()->second);
    model.erase(model.begin());
  }
  EXPECT_EQ(t.capacity(), large / 2);
  EXPECT_TRUE(t.resizing());
  expect_all(t, model);
  while (!model.empty()) {
    t.erase(model.begin()->second);
    model.erase(model.begin());
  }
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.resizing());
  EXPECT_EQ(t.capacity(), 16u);
}

// settle(), called on every write the watches hear of, ends a resize that
// no insert or erase comes to finish.
TEST(WatchEntries, SettleEndsAResize) {
  WatchEntries t;
  std::map<Key, WatchEntry*> model;
  for (int i = 0; t.capacity() <= 4 * WatchEntries::kSyncResize || !t.resizing(); ++i) {
    const Key k{table_of(i), path_of(i)};
    model.emplace(k, t.find_or_make(k.first, k.second).first);
  }
  const size_t old_capacity = t.capacity() / 2;
  size_t calls = 0;
  for (; t.resizing() && calls < old_capacity; ++calls) t.settle();
  EXPECT_FALSE(t.resizing());
  EXPECT_EQ(calls, old_capacity / WatchEntries::kMigrateStep - 2);
  expect_all(t, model);
  t.settle();  // nothing to move: a no-op
  expect_all(t, model);
}
