// Watches, as ZooKeeper keeps them. A watch belongs to a connection (not a
// session) and is forgotten when its connection goes away (the client
// re-registers with setWatches).
//
// * one-shot data watches (getData, exists) and child watches (getChildren)
//   fire at most once;
// * persistent watches (addWatch PERSISTENT) report every event on their
//   node — created, deleted, data and children changed — and stay;
// * persistent recursive watches report created, deleted and data changed
//   for their node and every node below it, and stay. Like ZooKeeper since
//   CVE-2024-23944, they only report nodes their owner may read.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "corral/proto/records.hpp"
#include "session/auth.hpp"
#include "tree/data_tree.hpp"
#include "watch/watch_entries.hpp"

namespace corral::kernel {

class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void notify(const proto::WatcherEvent& event, sdk::Zxid zxid) = 0;
  // Who the watcher is, for the ACL check of persistent watches.
  virtual const Ids& identities() const = 0;
  // The bytes its watches may hold, each counting its path's bytes and
  // WatchManager::kWatchBytes; no limit unless it says.
  virtual size_t watch_bytes_limit() const { return SIZE_MAX; }
};

// ZooKeeper's WatcherType, as checkWatches/removeWatches name it.
enum class WatchKind : int32_t {
  children = 1,
  data = 2,
  any = 3,
  persistent = 4,
  persistent_recursive = 5
};

class WatchManager {
 public:
  // What a watch counts against its watcher's limit besides its path: about
  // what its record, its share of an entry and of the table take.
  static constexpr size_t kWatchBytes = 64;
  // The bytes all watches together may hold (no limit until set).
  void set_total_limit(size_t bytes) { total_limit_ = bytes; }
  size_t total_bytes() const { return total_bytes_; }
  // New watches refused at either limit since the manager began.
  uint64_t refused_count() const { return refused_; }
  // Each adds a watch, or finds it there already; false when a new one
  // would take the watcher past its watch_bytes_limit(), or all watches
  // past the total limit (nothing changes then). A watcher without a limit
  // of its own is held to neither.
  // exists() and getData() watches share the data table, as in ZooKeeper.
  [[nodiscard]] bool watch_data(std::string_view path, Watcher* w);
  [[nodiscard]] bool watch_children(std::string_view path, Watcher* w);
  [[nodiscard]] bool watch_persistent(std::string_view path, Watcher* w, bool recursive);
  // The bytes `w`'s watches count against the limit.
  size_t bytes_of(Watcher* w) const;
  // checkWatches (`remove` false) and removeWatches: whether `w` has a watch
  // of `kind` on `path` (removing it). False answers NOWATCHER.
  bool find_or_remove(const std::string& path, WatchKind kind, Watcher* w, bool remove);
  // Forgets every watch of `w`.
  void remove_watcher(Watcher* w);
  // Fires the watches the changes trigger, in order; one-shot ones go.
  void trigger(const std::vector<Change>& changes, sdk::Zxid zxid, const DataTree& tree);

  size_t watch_count() const { return count_; }
  // Distinct (kind, path) pairs watched: an entry each, gone with its last
  // watch.
  size_t entry_count() const { return entries_.size(); }
  // Watchers with at least one watch.
  size_t watcher_count() const { return by_watcher_.size(); }
  // For wchs, wchc and wchp: every (watcher, path) pair with a data or
  // persistent watch. Like ZooKeeper's, these listings leave out one-shot
  // child watches.
  std::vector<std::pair<Watcher*, std::string>> listed_watches() const;
  // wchs: how many connections watch how many paths with how many watches,
  // over the listed watches.
  struct Summary {
    size_t connections = 0, paths = 0, watches = 0;
  };
  Summary summary() const;

 private:
  // Memory is what bounds how many watches a server holds, so a watch is
  // one small record, not entries in several hash sets: each (table, path)
  // has an entry heading a list of its watches, and each watcher heads a
  // list of its own, so that firing or forgetting a watch unlinks it from
  // both in constant time. Records come from a pool, reused as watches come
  // and go, and link to each other by their 32-bit numbers in it rather
  // than by address: 32 bytes a watch where four pointers made it 48. The
  // entries are in WatchEntries.
  using Table = WatchTable;
  static constexpr Table kData = Table::data, kChild = Table::child,
                         kPersistent = Table::persistent, kRecursive = Table::recursive;
  using Ref = WatchRef;
  using Entry = WatchEntry;
  using Entries = WatchEntries;
  struct Mine {  // a watcher's list
    Ref head = 0;
    size_t size = 0;
    size_t bytes = 0;  // counted against the limit
  };
  struct Watch {
    Watcher* watcher = nullptr;
    Entry* entry = nullptr;
    Ref prev_in_entry = 0, next_in_entry = 0;
    Ref prev_of_watcher = 0, next_of_watcher = 0;
  };
  static_assert(sizeof(Watch) == 32, "a watch is meant to fill 32 bytes");
  bool add(Table t, std::string_view path, Watcher* w);
  bool erase(Table t, std::string_view path, Watcher* w);
  // Unlinks record `r` from both lists and frees it; erases its entry when
  // that was the entry's last watch.
  void drop(Ref r);
  // `w`'s watch in `e`, if it has one (0 if not): whichever of the two
  // lists is shorter is walked (a hot path with thousands of watchers, or a
  // watcher with thousands of watches, costs the other side nothing).
  Ref find_watch(Entry& e, Watcher* w);
  // The watchers of an entry.
  std::vector<Watcher*> watchers_of(const Entry& e) const;
  static constexpr size_t kChunkBits = 10;  // records in a chunk: 1024
  Watch& at(Ref r) { return chunks_[r >> kChunkBits][r & ((Ref{1} << kChunkBits) - 1)]; }
  const Watch& at(Ref r) const {
    return chunks_[r >> kChunkBits][r & ((Ref{1} << kChunkBits) - 1)];
  }
  Ref allocate();
  void release(Ref r);

  Entries entries_;
  std::unordered_map<Watcher*, Mine> by_watcher_;  // each watcher's list
  size_t count_ = 0;
  size_t total_bytes_ = 0;
  size_t total_limit_ = SIZE_MAX;
  uint64_t refused_ = 0;
  std::vector<std::unique_ptr<Watch[]>> chunks_;  // record 0 is never handed out
  Ref free_ = 0;                                  // linked through next_of_watcher
};

}  // namespace corral::kernel
