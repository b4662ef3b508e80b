#include "watch/watch_manager.hpp"

#include <algorithm>
#include <functional>

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

const WatchManager::Map& WatchManager::table(Table t) const {
  return const_cast<WatchManager*>(this)->table(t);
}

WatchManager::Watch* WatchManager::allocate() {
  if (!free_) {
    constexpr size_t kChunk = 1024;
    chunks_.push_back(std::make_unique<Watch[]>(kChunk));
    Watch* c = chunks_.back().get();
    for (size_t i = 0; i < kChunk; ++i) {
      c[i].next_of_watcher = free_;
      free_ = &c[i];
    }
  }
  Watch* x = free_;
  free_ = x->next_of_watcher;
  *x = Watch{};
  return x;
}

void WatchManager::release(Watch* x) {
  *x = Watch{};
  x->next_of_watcher = free_;
  free_ = x;
}

WatchManager::Watch* WatchManager::find_watch(Entry& e, Watcher* w) {
  auto bw = by_watcher_.find(w);
  if (bw == by_watcher_.end()) return nullptr;
  if (e.size <= bw->second.size) {
    for (Watch* x = e.head; x; x = x->next_in_entry)
      if (x->watcher == w) return x;
  } else {
    for (Watch* x = bw->second.head; x; x = x->next_of_watcher)
      if (x->entry == &e) return x;
  }
  return nullptr;
}

void WatchManager::add(Table t, const std::string& path, Watcher* w) {
  auto [it, fresh] = table(t).try_emplace(path);
  Entry& e = it->second;
  if (fresh) {
    e.path = &it->first;
    e.table = t;
  } else if (find_watch(e, w)) {
    return;
  }
  // Both allocations before anything is linked, so that running out of
  // memory leaves the lists as they were.
  Watch* x = nullptr;
  Mine* mine = nullptr;
  try {
    x = allocate();
    mine = &by_watcher_[w];
  } catch (...) {
    if (x) release(x);
    if (fresh) table(t).erase(it);
    throw;
  }
  x->watcher = w;
  x->entry = &e;
  x->next_in_entry = e.head;
  if (e.head) e.head->prev_in_entry = x;
  e.head = x;
  ++e.size;
  x->next_of_watcher = mine->head;
  if (mine->head) mine->head->prev_of_watcher = x;
  mine->head = x;
  ++mine->size;
  ++count_;
}

void WatchManager::drop(Watch* x) {
  Entry* e = x->entry;
  if (x->prev_in_entry)
    x->prev_in_entry->next_in_entry = x->next_in_entry;
  else
    e->head = x->next_in_entry;
  if (x->next_in_entry) x->next_in_entry->prev_in_entry = x->prev_in_entry;
  --e->size;
  auto bw = by_watcher_.find(x->watcher);
  if (x->prev_of_watcher)
    x->prev_of_watcher->next_of_watcher = x->next_of_watcher;
  else
    bw->second.head = x->next_of_watcher;
  if (x->next_of_watcher) x->next_of_watcher->prev_of_watcher = x->prev_of_watcher;
  if (--bw->second.size == 0) by_watcher_.erase(bw);
  --count_;
  release(x);
  if (!e->head) {
    Map& m = table(e->table);
    m.erase(m.find(*e->path));  // by iterator: the key lives in the node erased
  }
}

bool WatchManager::erase(Table t, const std::string& path, Watcher* w) {
  Map& m = table(t);
  auto e = m.find(path);
  if (e == m.end()) return false;
  Watch* x = find_watch(e->second, w);
  if (!x) return false;
  drop(x);
  return true;
}

std::vector<Watcher*> WatchManager::watchers_of(const Entry& e) const {
  std::vector<Watcher*> out;
  for (const Watch* x = e.head; x; x = x->next_in_entry) out.push_back(x->watcher);
  return out;
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
    } else if (!found) {
      auto e = table(t).find(path);
      if (e != table(t).end()) found = find_watch(e->second, w) != nullptr;
    }
  }
  return found;
}

std::vector<std::pair<Watcher*, std::string>> WatchManager::listed_watches() const {
  std::vector<std::pair<Watcher*, std::string>> out;
  for (const auto& [w, mine] : by_watcher_)
    for (const Watch* x = mine.head; x; x = x->next_of_watcher)
      if (x->entry->table != kChild) out.emplace_back(w, *x->entry->path);
  // By path, and by watcher within one, so that a watcher's data and
  // persistent watch of one path are listed once.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second < b.second : std::less<Watcher*>()(a.first, b.first);
  });
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
  // drop() moves the list's head along, and erases it with the last.
  while (true) {
    auto bw = by_watcher_.find(w);
    if (bw == by_watcher_.end()) return;
    drop(bw->second.head);
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
  // One-shot watches of a path: forgotten, then fired (so that nothing
  // here depends on what a notification does to its watcher).
  auto one_shot = [&](Table t, EventType type, const std::string& path) {
    auto e = table(t).find(path);
    if (e == table(t).end()) return;
    std::vector<Watcher*> ws = watchers_of(e->second);
    while (true) {
      e = table(t).find(path);
      if (e == table(t).end()) break;
      drop(e->second.head);
    }
    for (Watcher* w : ws) fire(w, type, path);
  };
  // Persistent watches stay; they only hear of what their owner may read.
  auto lasting = [&](const Entry& entry, EventType type, const Change& c) {
    for (Watcher* w : watchers_of(entry))
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
