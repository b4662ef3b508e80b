#include "watch/watch_manager.hpp"

#include <algorithm>

namespace corral::kernel {

using proto::EventType;
using proto::KeeperState;

namespace {
// Entries in by_watcher_ are the path prefixed by 'd' or 'c' for the table.
std::string key(bool child, const std::string& path) { return (child ? "c" : "d") + path; }
}  // namespace

void WatchManager::add(Table& t, bool child, const std::string& path, Watcher* w) {
  if (t[path].insert(w).second) {
    by_watcher_[w].insert(key(child, path));
    ++count_;
  }
}

void WatchManager::watch_data(const std::string& path, Watcher* w) { add(data_, false, path, w); }
void WatchManager::watch_children(const std::string& path, Watcher* w) { add(child_, true, path, w); }

void WatchManager::remove_watcher(Watcher* w) {
  auto it = by_watcher_.find(w);
  if (it == by_watcher_.end()) return;
  for (const std::string& k : it->second) {
    Table& t = k[0] == 'c' ? child_ : data_;
    auto e = t.find(k.substr(1));
    if (e == t.end()) continue;
    if (e->second.erase(w)) --count_;
    if (e->second.empty()) t.erase(e);
  }
  by_watcher_.erase(it);
}

std::vector<Watcher*> WatchManager::take(Table& t, bool child, const std::string& path,
                                         const std::vector<Watcher*>* skip) {
  std::vector<Watcher*> out;
  auto e = t.find(path);
  if (e == t.end()) return out;
  for (Watcher* w : e->second) {
    auto bw = by_watcher_.find(w);
    if (bw != by_watcher_.end()) {
      bw->second.erase(key(child, path));
      if (bw->second.empty()) by_watcher_.erase(bw);
    }
    --count_;
    if (skip && std::find(skip->begin(), skip->end(), w) != skip->end()) continue;
    out.push_back(w);
  }
  t.erase(e);
  return out;
}

void WatchManager::trigger(const std::vector<Change>& changes, sdk::Zxid zxid) {
  if (count_ == 0) return;
  auto fire = [&](const std::vector<Watcher*>& ws, EventType type, const std::string& path) {
    if (ws.empty()) return;
    proto::WatcherEvent ev{static_cast<int32_t>(type), static_cast<int32_t>(KeeperState::sync_connected), path};
    for (Watcher* w : ws) w->notify(ev, zxid);
  };
  for (const Change& c : changes) {
    switch (c.kind) {
      case Change::created:
        fire(take(data_, false, c.path), EventType::node_created, c.path);
        break;
      case Change::deleted: {
        // A connection watching both data and children hears one NodeDeleted.
        std::vector<Watcher*> data = take(data_, false, c.path);
        fire(data, EventType::node_deleted, c.path);
        fire(take(child_, true, c.path, &data), EventType::node_deleted, c.path);
        break;
      }
      case Change::data_changed:
        fire(take(data_, false, c.path), EventType::node_data_changed, c.path);
        break;
      case Change::children_changed:
        fire(take(child_, true, c.path), EventType::node_children_changed, c.path);
        break;
    }
  }
}

}  // namespace corral::kernel
