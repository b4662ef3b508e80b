// One-shot data and child watches, as ZooKeeper keeps them: a watch belongs
// to a connection (not a session), fires at most once, and is forgotten when
// its connection goes away (the client re-registers with setWatches).
#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "corral/proto/records.hpp"
#include "tree/data_tree.hpp"

namespace corral::kernel {

class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void notify(const proto::WatcherEvent& event, sdk::Zxid zxid) = 0;
};

class WatchManager {
 public:
  // exists() and getData() watches share the data table, as in ZooKeeper.
  void watch_data(const std::string& path, Watcher* w);
  void watch_children(const std::string& path, Watcher* w);
  // Forgets every watch of `w`.
  void remove_watcher(Watcher* w);
  // Fires (and removes) the watches the changes trigger, in order.
  void trigger(const std::vector<Change>& changes, sdk::Zxid zxid);

  size_t watch_count() const { return count_; }
  size_t watched_paths() const { return data_.size() + child_.size(); }
  size_t watcher_count() const { return by_watcher_.size(); }

 private:
  using Table = std::unordered_map<std::string, std::unordered_set<Watcher*>>;
  void add(Table& t, bool child, const std::string& path, Watcher* w);
  // Removes the watchers of `path` from `t`, skipping those in `skip`, and
  // returns them.
  std::vector<Watcher*> take(Table& t, bool child, const std::string& path,
                             const std::vector<Watcher*>* skip = nullptr);

  Table data_, child_;
  // For removal on disconnect: each watcher's (table, path) entries.
  std::unordered_map<Watcher*, std::unordered_set<std::string>> by_watcher_;
  size_t count_ = 0;
};

}  // namespace corral::kernel
