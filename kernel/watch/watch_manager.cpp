#include "watch/watch_manager.hpp"

#include <algorithm>

namespace corral::kernel {

using proto::EventType;
using proto::KeeperState;

WatchManager::Map& WatchManager::table(Table t) {
  switch (t) {
    case kData:
      return data_;
    case kChild:
      return child_;
    case kPersistent:
      return persistent_;
    default:
      return recursive_;
  }
}

void WatchManager::add(Table t, const std::string& path, Watcher* w) {
  if (table(t)[path].insert(w).second) {
    by_watcher_[w].insert(static_cast<char>(t) + path);
    ++count_;
  }
}

bool WatchManager::erase(Table t, const std::string& path, Watcher* w) {
  Map& m = table(t);
  auto e = m.find(path);
  if (e == m.end() || !e->second.erase(w)) return false;
  if (e->second.empty()) m.erase(e);
  --count_;
  auto bw = by_watcher_.find(w);
  if (bw != by_watcher_.end()) {
    bw->second.erase(static_cast<char>(t) + path);
    if (bw->second.empty()) by_watcher_.erase(bw);
  }
  return true;
}

void WatchManager::watch_data(const std::string& path, Watcher* w) { add(kData, path, w); }
void WatchManager::watch_children(const std::string& path, Watcher* w) { add(kChild, path, w); }
void WatchManager::watch_persistent(const std::string& path, Watcher* w, bool recursive) {
  add(recursive ? kRecursive : kPersistent, path, w);
}

bool WatchManager::find_or_remove(const std::string& path, WatchKind kind, Watcher* w,
                                  bool remove) {
  std::vector<Table> tables;
  switch (kind) {
    case WatchKind::children:
      tables = {kChild};
      break;
    case WatchKind::data:
      tables = {kData};
      break;
    case WatchKind::persistent:
      tables = {kPersistent};
      break;
    case WatchKind::persistent_recursive:
      tables = {kRecursive};
      break;
    case WatchKind::any:
      tables = {kData, kChild, kPersistent, kRecursive};
      break;
  }
  bool found = false;
  for (Table t : tables) {
    if (remove) {
      found = erase(t, path, w) || found;
    } else {
      auto e = table(t).find(path);
      found = found || (e != table(t).end() && e->second.count(w));
    }
  }
  return found;
}

std::vector<std::pair<Watcher*, std::string>> WatchManager::listed_watches() const {
  std::vector<std::pair<Watcher*, std::string>> out;
  for (const auto& [w, keys] : by_watcher_)
    for (const std::string& k : keys)
      if (k[0] != kChild) out.emplace_back(w, k.substr(1));
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

WatchManager::Summary WatchManager::summary() const {
  auto listed = listed_watches();
  std::unordered_set<const Watcher*> watchers;
  std::unordered_set<std::string_view> paths;
  for (const auto& [w, path] : listed) {
    watchers.insert(w);
    paths.insert(path);
  }
  return {watchers.size(), paths.size(), listed.size()};
}

void WatchManager::remove_watcher(Watcher* w) {
  auto it = by_watcher_.find(w);
  if (it == by_watcher_.end()) return;
  std::unordered_set<std::string> keys = std::move(it->second);
  by_watcher_.erase(it);
  for (const std::string& k : keys) {
    Map& m = table(static_cast<Table>(k[0]));
    auto e = m.find(k.substr(1));
    if (e == m.end()) continue;
    if (e->second.erase(w)) --count_;
    if (e->second.empty()) m.erase(e);
  }
}

void WatchManager::trigger(const std::vector<Change>& changes, sdk::Zxid zxid,
                           const DataTree& tree) {
  if (count_ == 0) return;
  std::vector<Watcher*> fired;  // one event per watcher per change
  auto fire = [&](Watcher* w, EventType type, const std::string& path) {
    if (std::find(fired.begin(), fired.end(), w) != fired.end()) return;
    fired.push_back(w);
    w->notify({static_cast<int32_t>(type), static_cast<int32_t>(KeeperState::sync_connected), path},
              zxid);
  };
  // One-shot watches of a path: fired, then forgotten.
  auto one_shot = [&](Table t, EventType type, const std::string& path) {
    auto e = table(t).find(path);
    if (e == table(t).end()) return;
    std::unordered_set<Watcher*> ws = std::move(e->second);
    table(t).erase(e);
    for (Watcher* w : ws) {
      --count_;
      auto bw = by_watcher_.find(w);
      if (bw != by_watcher_.end()) {
        bw->second.erase(static_cast<char>(t) + path);
        if (bw->second.empty()) by_watcher_.erase(bw);
      }
      fire(w, type, path);
    }
  };
  // Persistent watches stay; they only hear of what their owner may read.
  auto lasting = [&](const std::unordered_set<Watcher*>& ws, EventType type, const Change& c) {
    for (Watcher* w : ws)
      if (permitted(tree.acl_at(c.acl), proto::perm::read, w->identities())) fire(w, type, c.path);
  };
  for (const Change& c : changes) {
    fired.clear();
    EventType type = c.kind == Change::created        ? EventType::node_created
                     : c.kind == Change::deleted      ? EventType::node_deleted
                     : c.kind == Change::data_changed ? EventType::node_data_changed
                                                      : EventType::node_children_changed;
    if (c.kind == Change::children_changed) {
      one_shot(kChild, type, c.path);
    } else {
      one_shot(kData, type, c.path);
      if (c.kind == Change::deleted) one_shot(kChild, type, c.path);
    }
    if (!persistent_.empty()) {
      auto e = persistent_.find(c.path);
      if (e != persistent_.end()) lasting(e->second, type, c);
    }
    if (!recursive_.empty() && c.kind != Change::children_changed) {
      // The node itself and every ancestor.
      std::string_view p = c.path;
      while (true) {
        auto e = recursive_.find(std::string(p));
        if (e != recursive_.end()) lasting(e->second, type, c);
        if (p == "/") break;
        p = proto::parent_path(p);
      }
    }
  }
}

}  // namespace corral::kernel
