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

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "corral/proto/records.hpp"
#include "session/auth.hpp"
#include "tree/data_tree.hpp"

namespace corral::kernel {

class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void notify(const proto::WatcherEvent& event, sdk::Zxid zxid) = 0;
  // Who the watcher is, for the ACL check of persistent watches.
  virtual const Ids& identities() const = 0;
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
  // exists() and getData() watches share the data table, as in ZooKeeper.
  void watch_data(const std::string& path, Watcher* w);
  void watch_children(const std::string& path, Watcher* w);
  void watch_persistent(const std::string& path, Watcher* w, bool recursive);
  // checkWatches (`remove` false) and removeWatches: whether `w` has a watch
  // of `kind` on `path` (removing it). False answers NOWATCHER.
  bool find_or_remove(const std::string& path, WatchKind kind, Watcher* w, bool remove);
  // Forgets every watch of `w`.
  void remove_watcher(Watcher* w);
  // Fires the watches the changes trigger, in order; one-shot ones go.
  void trigger(const std::vector<Change>& changes, sdk::Zxid zxid, const DataTree& tree);

  size_t watch_count() const { return count_; }
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
  enum Table : char { kData = 'd', kChild = 'c', kPersistent = 'p', kRecursive = 'r' };
  using Map = std::unordered_map<std::string, std::unordered_set<Watcher*>>;
  Map& table(Table t);
  void add(Table t, const std::string& path, Watcher* w);
  bool erase(Table t, const std::string& path, Watcher* w);

  Map data_, child_, persistent_, recursive_;
  // For removal on disconnect: each watcher's entries as table tag + path.
  std::unordered_map<Watcher*, std::unordered_set<std::string>> by_watcher_;
  size_t count_ = 0;
};

}  // namespace corral::kernel
