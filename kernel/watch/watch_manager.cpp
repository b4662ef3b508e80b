#include "watch/watch_manager.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <tuple>

namespace corral::kernel {

using proto::EventType;
using proto::KeeperState;

WatchManager::Ref WatchManager::allocate() {
  if (!free_) {
    constexpr size_t kChunk = size_t{1} << kChunkBits;
    if (chunks_.size() >= (size_t{1} << (32 - kChunkBits)))
      throw std::length_error("too many watches");
    chunks_.push_back(std::make_unique<Watch[]>(kChunk));
    const auto first = static_cast<Ref>((chunks_.size() - 1) << kChunkBits);
    // From the top down, so that records are handed out in order; the
    // pool's first record stays unused, as 0 means none.
    for (size_t i = kChunk; i-- > 0;) {
      const Ref r = first + static_cast<Ref>(i);
      if (r == 0) continue;
      at(r).next_of_watcher = free_;
      free_ = r;
    }
  }
  const Ref r = free_;
  free_ = at(r).next_of_watcher;
  at(r) = Watch{};
  return r;
}

void WatchManager::release(Ref r) {
  at(r) = Watch{};
  at(r).next_of_watcher = free_;
  free_ = r;
}

WatchManager::Ref WatchManager::find_watch(Entry& e, Watcher* w) {
  auto bw = by_watcher_.find(w);
  if (bw == by_watcher_.end()) return 0;
  if (e.size <= bw->second.size) {
    for (Ref r = e.head; r; r = at(r).next_in_entry)
      if (at(r).watcher == w) return r;
  } else {
    for (Ref r = bw->second.head; r; r = at(r).next_of_watcher)
      if (at(r).entry == &e) return r;
  }
  return 0;
}

bool WatchManager::add(Table t, std::string_view path, Watcher* w) {
  auto [entry, fresh] = entries_.find_or_make(t, path);
  Entry& e = *entry;
  if (!fresh && find_watch(e, w)) return true;
  const size_t cost = path.size() + kWatchBytes;
  const size_t limit = w->watch_bytes_limit();
  // A watcher with no limit of its own (a recipe's in-process session) is
  // trusted with the total too.
  const bool bounded = limit != SIZE_MAX;
  const bool past_total = bounded && (cost > total_limit_ || total_bytes_ > total_limit_ - cost);
  // One lookup of the watcher serves the limit and the link; a watcher
  // added here and refused leaves again.
  std::unordered_map<Watcher*, Mine>::iterator mine;
  bool new_watcher = false;
  try {
    std::tie(mine, new_watcher) = by_watcher_.try_emplace(w);
  } catch (...) {
    if (fresh) entries_.erase(&e);
    throw;
  }
  auto undo = [&, made = fresh] {
    if (new_watcher) by_watcher_.erase(mine);
    if (made) entries_.erase(&e);
  };
  if (cost > limit || past_total || mine->second.bytes > limit - cost) {
    undo();
    ++refused_;
    return false;
  }
  // The record is allocated before anything is linked, so that running out
  // of memory leaves the lists as they were.
  Ref r = 0;
  try {
    r = allocate();
  } catch (...) {
    undo();
    throw;
  }
  Watch& x = at(r);
  x.watcher = w;
  x.entry = &e;
  x.next_in_entry = e.head;
  if (e.head) at(e.head).prev_in_entry = r;
  e.head = r;
  ++e.size;
  Mine& m = mine->second;
  x.next_of_watcher = m.head;
  if (m.head) at(m.head).prev_of_watcher = r;
  m.head = r;
  ++m.size;
  m.bytes += cost;
  total_bytes_ += cost;
  ++count_;
  return true;
}

void WatchManager::drop(Ref r) {
  Watch& x = at(r);
  Entry* e = x.entry;
  if (x.prev_in_entry)
    at(x.prev_in_entry).next_in_entry = x.next_in_entry;
  else
    e->head = x.next_in_entry;
  if (x.next_in_entry) at(x.next_in_entry).prev_in_entry = x.prev_in_entry;
  --e->size;
  auto bw = by_watcher_.find(x.watcher);
  if (x.prev_of_watcher)
    at(x.prev_of_watcher).next_of_watcher = x.next_of_watcher;
  else
    bw->second.head = x.next_of_watcher;
  if (x.next_of_watcher) at(x.next_of_watcher).prev_of_watcher = x.prev_of_watcher;
  bw->second.bytes -= e->path().size() + kWatchBytes;
  total_bytes_ -= e->path().size() + kWatchBytes;
  if (--bw->second.size == 0) by_watcher_.erase(bw);
  --count_;
  release(r);
  if (!e->head) entries_.erase(e);
}

bool WatchManager::erase(Table t, std::string_view path, Watcher* w) {
  Entry* e = entries_.find(t, path);
  if (!e) return false;
  const Ref r = find_watch(*e, w);
  if (!r) return false;
  drop(r);
  return true;
}

std::vector<Watcher*> WatchManager::watchers_of(const Entry& e) const {
  std::vector<Watcher*> out;
  for (Ref r = e.head; r; r = at(r).next_in_entry) out.push_back(at(r).watcher);
  return out;
}

bool WatchManager::watch_data(std::string_view path, Watcher* w) { return add(kData, path, w); }
bool WatchManager::watch_children(std::string_view path, Watcher* w) {
  return add(kChild, path, w);
}
bool WatchManager::watch_persistent(std::string_view path, Watcher* w, bool recursive) {
  return add(recursive ? kRecursive : kPersistent, path, w);
}

size_t WatchManager::bytes_of(Watcher* w) const {
  auto it = by_watcher_.find(w);
  return it == by_watcher_.end() ? 0 : it->second.bytes;
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
      if (Entry* e = entries_.find(t, path)) found = find_watch(*e, w) != 0;
    }
  }
  return found;
}

std::vector<std::pair<Watcher*, std::string>> WatchManager::listed_watches() const {
  std::vector<std::pair<Watcher*, std::string>> out;
  for (const auto& [w, mine] : by_watcher_)
    for (Ref r = mine.head; r; r = at(r).next_of_watcher)
      if (at(r).entry->kind() != kChild) out.emplace_back(w, std::string(at(r).entry->path()));
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
  entries_.settle();
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
    Entry* e = entries_.find(t, path);
    if (!e) return;
    std::vector<Watcher*> ws = watchers_of(*e);
    // The entry goes with its last watch.
    for (size_t n = ws.size(); n > 0; --n) drop(e->head);
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
    if (entries_.size(kPersistent) > 0)
      if (const Entry* e = entries_.find(kPersistent, c.path)) lasting(*e, type, c);
    if (entries_.size(kRecursive) > 0 && c.kind != Change::children_changed) {
      // The node itself and every ancestor.
      std::string_view p = c.path;
      while (true) {
        if (const Entry* e = entries_.find(kRecursive, p)) lasting(*e, type, c);
        if (p == "/") break;
        p = proto::parent_path(p);
      }
    }
  }
}

}  // namespace corral::kernel
