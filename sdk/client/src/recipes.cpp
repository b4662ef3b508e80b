#include "corral/client/recipes.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "corral/common/random.hpp"

namespace corral::recipes {

using proto::CreateMode;
using proto::Err;
using proto::EventType;

namespace {

sdk::Status status_of(Err e, std::string_view what) {
  if (e == Err::ok) return {};
  sdk::Errc code = e == Err::no_node ? sdk::Errc::not_found
                   : e == Err::node_exists ? sdk::Errc::already_exists
                   : (e == Err::connection_loss || e == Err::session_expired) ? sdk::Errc::unavailable
                                                                               : sdk::Errc::invalid_argument;
  return {code, std::string(what) + ": " + proto::err_name(e)};
}

std::string basename(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// Curator sorts lock-style children by what follows the last `name`.
std::vector<std::string> sorted_by_sequence(std::vector<std::string> children, const std::string& name) {
  std::vector<std::string> out;
  for (auto& c : children)
    if (c.rfind(name) != std::string::npos) out.push_back(std::move(c));
  std::sort(out.begin(), out.end(), [&](const std::string& a, const std::string& b) {
    return a.substr(a.rfind(name) + name.size()) < b.substr(b.rfind(name) + name.size());
  });
  return out;
}

std::string int_bytes(int32_t v) {
  auto u = static_cast<uint32_t>(v);
  return {static_cast<char>(u >> 24), static_cast<char>(u >> 16), static_cast<char>(u >> 8), static_cast<char>(u)};
}

std::optional<int32_t> bytes_int(const std::string& b) {
  if (b.size() != 4) return std::nullopt;
  uint32_t u = 0;
  for (char c : b) u = (u << 8) | static_cast<unsigned char>(c);
  return static_cast<int32_t>(u);
}

}  // namespace

// ---- Recipes ----

Recipes::Recipes(client::Client& client) : client_(client) {
  client_.on_event([this](const proto::WatcherEvent& ev) {
    auto type = static_cast<EventType>(ev.type);
    if (type == EventType::none) {
      if (user_) user_(ev);
      return;
    }
    // ZooKeeper's triggers: a delete fires both kinds of watch.
    std::vector<std::function<void(const proto::WatcherEvent&)>> fns;
    auto take = [&](auto& map) {
      auto range = map.equal_range(ev.path);
      for (auto it = range.first; it != range.second; ++it) fns.push_back(std::move(it->second));
      map.erase(range.first, range.second);
    };
    if (type != EventType::node_children_changed) take(data_watches_);
    if (type == EventType::node_children_changed || type == EventType::node_deleted) take(child_watches_);
    if (fns.empty() && user_) user_(ev);
    for (auto& fn : fns) fn(ev);
  });
}

void Recipes::watch(const std::string& path, std::function<void(const proto::WatcherEvent&)> fn, bool children) {
  (children ? child_watches_ : data_watches_).emplace(path, std::move(fn));
}

std::string Recipes::protected_prefix() { return "_c_" + common::random_uuid() + "-"; }

void Recipes::create_protected_sequential(const std::string& dir, const std::string& name, std::string data,
                                          std::function<void(const sdk::Status&, const std::string&)> done) {
  std::string prefix = dir + "/" + protected_prefix() + name;
  create_parents(prefix, [this, prefix, name, data = std::move(data), done](const sdk::Status& st) {
    if (!st) return done(st, "");
    client_.create(prefix, data, CreateMode::ephemeral_sequential, [name, done](const client::Response& c) {
      done(status_of(c.err, "creating the " + name + " node"), c.path);
    });
  });
}

void Recipes::create_parents(const std::string& path, Done done) {
  auto parents = std::make_shared<std::vector<std::string>>();
  for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1))
    parents->push_back(path.substr(0, at));
  auto step = std::make_shared<std::function<void(size_t, bool)>>();
  *step = [this, parents, step, done](size_t i, bool containers) {
    if (i == parents->size()) return done({});
    client_.create((*parents)[i], "", containers ? CreateMode::container : CreateMode::persistent,
                   [step, i, containers, done](const client::Response& r) {
                     if (r.err == Err::unimplemented && containers) return (*step)(i, false);
                     if (r.err != Err::ok && r.err != Err::node_exists) return done(status_of(r.err, "creating parents"));
                     (*step)(i + 1, containers);
                   });
  };
  (*step)(0, true);
}

// ---- Mutex ----

Mutex::Mutex(Recipes& r, std::string path) : r_(r), path_(std::move(path)) {}

void Mutex::acquire(Done done) {
  waiting_ = std::move(done);
  r_.create_protected_sequential(path_, "lock-", "", [this](const sdk::Status& st, const std::string& path) {
    if (!st) return std::exchange(waiting_, nullptr)(st);
    node_ = path;
    check();
  });
}

void Mutex::check() {
  r_.client().get_children(path_, false, [this](const client::Response& res) {
    if (res.err != Err::ok) return std::exchange(waiting_, nullptr)(status_of(res.err, "reading the lock"));
    auto sorted = sorted_by_sequence(res.children, "lock-");
    auto mine = std::find(sorted.begin(), sorted.end(), basename(node_));
    if (mine == sorted.end()) return std::exchange(waiting_, nullptr)(sdk::Status(sdk::Errc::unavailable, "the lock node vanished (session lost?)"));
    if (mine == sorted.begin()) {
      held_ = true;
      return std::exchange(waiting_, nullptr)({});
    }
    // Wait for the node just before ours to go.
    std::string previous = path_ + "/" + *(mine - 1);
    // A watch event always follows the reply that set it: claim it there.
    r_.client().exists(previous, true, [this, previous](const client::Response& e) {
      if (e.err == Err::no_node) return check();  // gone already
      r_.watch(previous, [this](const proto::WatcherEvent&) { check(); });
    });
  });
}

void Mutex::release(Done done) {
  if (!held_) return done(sdk::Status(sdk::Errc::invalid_argument, "the mutex is not held"));
  r_.client().remove(node_, -1, [this, done](const client::Response& res) {
    held_ = false;
    node_.clear();
    done(res.err == Err::no_node ? sdk::Status{} : status_of(res.err, "releasing the lock"));
  });
}

// ---- LeaderLatch ----

LeaderLatch::LeaderLatch(Recipes& r, std::string path, std::string id)
    : r_(r), path_(std::move(path)), id_(std::move(id)) {}

void LeaderLatch::start(std::function<void(bool)> on_change, Done started) {
  on_change_ = std::move(on_change);
  r_.create_protected_sequential(path_, "latch-", id_, [this, started](const sdk::Status& st, const std::string& path) {
    if (started) started(st);
    if (!st) return;
    node_ = path;
    check();
  });
}

void LeaderLatch::set_leader(bool v) {
  if (leader_ == v) return;
  leader_ = v;
  if (on_change_) on_change_(v);
}

void LeaderLatch::check() {
  if (closed_) return;
  r_.client().get_children(path_, false, [this](const client::Response& res) {
    if (closed_ || res.err != Err::ok) return;
    auto sorted = sorted_by_sequence(res.children, "latch-");
    auto mine = std::find(sorted.begin(), sorted.end(), basename(node_));
    if (mine == sorted.end()) return set_leader(false);
    if (mine == sorted.begin()) return set_leader(true);
    set_leader(false);
    std::string previous = path_ + "/" + *(mine - 1);
    r_.client().get_data(previous, true, [this, previous](const client::Response& e) {
      if (e.err == Err::no_node) return check();
      r_.watch(previous, [this](const proto::WatcherEvent&) { check(); });
    });
  });
}

void LeaderLatch::close(Done done) {
  closed_ = true;
  set_leader(false);
  if (node_.empty()) {
    if (done) done({});
    return;
  }
  r_.client().remove(node_, -1, [done](const client::Response& res) {
    if (done) done(res.err == Err::no_node ? sdk::Status{} : status_of(res.err, "closing the latch"));
  });
}

// ---- SharedCount ----

SharedCount::SharedCount(Recipes& r, std::string path, int32_t seed) : r_(r), path_(std::move(path)), seed_(seed) {}

void SharedCount::start(Done done) {
  r_.create_parents(path_, [this, done](const sdk::Status& st) {
    if (!st) return done(st);
    r_.client().create(path_, int_bytes(seed_), CreateMode::persistent, [done](const client::Response& c) {
      done(c.err == Err::node_exists ? sdk::Status{} : status_of(c.err, "creating the count"));
    });
  });
}

void SharedCount::get(std::function<void(const sdk::Status&, int32_t, int32_t)> done) {
  r_.client().get_data(path_, false, [done](const client::Response& res) {
    if (res.err != Err::ok) return done(status_of(res.err, "reading the count"), 0, -1);
    auto v = bytes_int(res.data);
    if (!v) return done(sdk::Status(sdk::Errc::corrupt, "the count is not a 4-byte integer"), 0, -1);
    done({}, *v, res.stat.version);
  });
}

void SharedCount::try_set(int32_t value, int32_t version, std::function<void(const sdk::Status&, bool)> done) {
  r_.client().set_data(path_, int_bytes(value), version, [done](const client::Response& res) {
    if (res.err == Err::bad_version) return done({}, false);
    done(status_of(res.err, "setting the count"), res.err == Err::ok);
  });
}

void SharedCount::add(int32_t delta, std::function<void(const sdk::Status&, int32_t)> done) {
  get([this, delta, done](const sdk::Status& st, int32_t value, int32_t version) {
    if (!st) return done(st, 0);
    try_set(value + delta, version, [this, delta, done, value](const sdk::Status& s2, bool set) {
      if (!s2) return done(s2, 0);
      if (set) return done({}, value + delta);
      add(delta, done);  // someone else changed it first: again
    });
  });
}

// ---- Barrier ----

Barrier::Barrier(Recipes& r, std::string path) : r_(r), path_(std::move(path)) {}

void Barrier::set(Done done) {
  r_.create_parents(path_, [this, done](const sdk::Status& st) {
    if (!st) return done(st);
    r_.client().create(path_, "", CreateMode::persistent, [done](const client::Response& c) {
      done(c.err == Err::node_exists ? sdk::Status{} : status_of(c.err, "setting the barrier"));
    });
  });
}

void Barrier::remove(Done done) {
  r_.client().remove(path_, -1, [done](const client::Response& res) {
    done(res.err == Err::no_node ? sdk::Status{} : status_of(res.err, "removing the barrier"));
  });
}

void Barrier::wait(Done done) {
  r_.client().exists(path_, true, [this, done](const client::Response& res) {
    if (res.err == Err::no_node) return done({});
    if (res.err != Err::ok) return done(status_of(res.err, "waiting on the barrier"));
    r_.watch(path_, [this, done](const proto::WatcherEvent&) { wait(done); });
  });
}

// ---- DoubleBarrier ----

DoubleBarrier::DoubleBarrier(Recipes& r, std::string path, int members)
    : r_(r), path_(std::move(path)), members_(members) {}

void DoubleBarrier::enter(Done done) {
  entering_ = std::move(done);
  node_ = path_ + "/" + common::random_uuid();
  r_.create_parents(node_, [this](const sdk::Status& st) {
    if (!st) return std::exchange(entering_, nullptr)(st);
    r_.client().create(node_, "", CreateMode::ephemeral, [this](const client::Response& c) {
      if (c.err != Err::ok) return std::exchange(entering_, nullptr)(status_of(c.err, "entering the barrier"));
      check_enter();
    });
  });
}

void DoubleBarrier::check_enter() {
  std::string ready = path_ + "/ready";
  r_.client().exists(ready, true, [this, ready](const client::Response& e) {
    if (e.err == Err::ok) {
      entered_ = true;
      return std::exchange(entering_, nullptr)({});
    }
    r_.watch(ready, [this](const proto::WatcherEvent&) {
      if (entering_) check_enter();
    });
    r_.client().get_children(path_, false, [this, ready](const client::Response& res) {
      if (!entering_) return;
      if (res.err != Err::ok) return std::exchange(entering_, nullptr)(status_of(res.err, "entering the barrier"));
      size_t count = 0;
      for (const auto& c : res.children) count += c == "ready" ? 0 : 1;
      if (static_cast<int>(count) < members_) return;  // the ready watch wakes us
      r_.client().create(ready, "", CreateMode::persistent, [this](const client::Response& c) {
        if (!entering_) return;
        if (c.err != Err::ok && c.err != Err::node_exists)
          return std::exchange(entering_, nullptr)(status_of(c.err, "opening the barrier"));
        entered_ = true;
        std::exchange(entering_, nullptr)({});
      });
    });
  });
}

void DoubleBarrier::leave(Done done) {
  if (!entered_) return done(sdk::Status(sdk::Errc::invalid_argument, "leave() before enter() completed"));
  leaving_ = std::move(done);
  r_.client().remove(node_, -1, [this](const client::Response& res) {
    if (res.err != Err::ok && res.err != Err::no_node)
      return std::exchange(leaving_, nullptr)(status_of(res.err, "leaving the barrier"));
    check_leave();
  });
}

void DoubleBarrier::check_leave() {
  r_.client().get_children(path_, true, [this](const client::Response& res) {
    if (!leaving_) return;
    if (res.err != Err::ok && res.err != Err::no_node)
      return std::exchange(leaving_, nullptr)(status_of(res.err, "leaving the barrier"));
    size_t others = 0;
    for (const auto& c : res.children) others += c == "ready" ? 0 : 1;
    if (others > 0) {
      r_.watch(path_, [this](const proto::WatcherEvent&) { check_leave(); }, true);
      return;
    }
    // The last one out closes the barrier for its next use.
    r_.client().remove(path_ + "/ready", -1, [this](const client::Response&) {
      entered_ = false;
      std::exchange(leaving_, nullptr)({});
    });
  });
}

// ---- ReadWriteLock ----

ReadWriteLock::ReadWriteLock(Recipes& r, std::string path) : r_(r), path_(std::move(path)) {}

void ReadWriteLock::acquire(bool write, Done done) {
  write_ = write;
  waiting_ = std::move(done);
  r_.create_protected_sequential(path_, write ? "__WRIT__" : "__READ__", "",
                                 [this](const sdk::Status& st, const std::string& path) {
                                   if (!st) return std::exchange(waiting_, nullptr)(st);
                                   node_ = path;
                                   check();
                                 });
}

void ReadWriteLock::check() {
  r_.client().get_children(path_, false, [this](const client::Response& res) {
    if (!waiting_) return;
    if (res.err != Err::ok) return std::exchange(waiting_, nullptr)(status_of(res.err, "reading the lock"));
    // Curator sorts readers and writers together by their sequence numbers.
    std::vector<std::string> all;
    for (const auto& c : res.children)
      if (c.find("__READ__") != std::string::npos || c.find("__WRIT__") != std::string::npos) all.push_back(c);
    auto seq = [](const std::string& n) {
      size_t r = n.rfind("__READ__"), w = n.rfind("__WRIT__");
      size_t at = r != std::string::npos ? r : w;
      return n.substr(at + 8);
    };
    std::sort(all.begin(), all.end(), [&](const auto& a, const auto& b) { return seq(a) < seq(b); });
    std::string mine = basename(node_);
    auto it = std::find(all.begin(), all.end(), mine);
    if (it == all.end()) return std::exchange(waiting_, nullptr)(sdk::Status(sdk::Errc::unavailable, "the lock node vanished"));
    size_t index = static_cast<size_t>(it - all.begin());
    std::string wait_for;
    if (write_) {
      if (index > 0) wait_for = all[index - 1];  // a writer goes first of all
    } else {
      for (size_t i = 0; i < index; ++i)
        if (all[i].find("__WRIT__") != std::string::npos) {
          wait_for = all[i];  // a reader waits for the first writer before it
          break;
        }
    }
    if (wait_for.empty()) {
      held_ = true;
      return std::exchange(waiting_, nullptr)({});
    }
    std::string path = path_ + "/" + wait_for;
    r_.client().exists(path, true, [this, path](const client::Response& e) {
      if (e.err == Err::no_node) return check();
      r_.watch(path, [this](const proto::WatcherEvent&) { check(); });
    });
  });
}

void ReadWriteLock::release(Done done) {
  if (!held_) return done(sdk::Status(sdk::Errc::invalid_argument, "the lock is not held"));
  r_.client().remove(node_, -1, [this, done](const client::Response& res) {
    held_ = false;
    done(res.err == Err::no_node ? sdk::Status{} : status_of(res.err, "releasing the lock"));
  });
}

// ---- Semaphore ----

Semaphore::Semaphore(Recipes& r, std::string path, int max_leases)
    : r_(r), path_(std::move(path)), max_(max_leases), lock_(r, path_ + "/locks") {}

void Semaphore::acquire(Done done) {
  waiting_ = std::move(done);
  // As Curator: hold the semaphore's mutex while taking a lease.
  lock_.acquire([this](const sdk::Status& st) {
    if (!st) return std::exchange(waiting_, nullptr)(st);
    r_.create_protected_sequential(path_ + "/leases", "lease-", "", [this](const sdk::Status& p, const std::string& path) {
      if (!p) return std::exchange(waiting_, nullptr)(p);
      lease_ = path;
      count();
    });
  });
}

void Semaphore::count() {
  std::string leases = path_ + "/leases";
  r_.client().get_children(leases, true, [this, leases](const client::Response& res) {
    if (!waiting_) return;
    if (res.err != Err::ok) return std::exchange(waiting_, nullptr)(status_of(res.err, "counting leases"));
    if (static_cast<int>(res.children.size()) <= max_) {
      return lock_.release([this](const sdk::Status&) { std::exchange(waiting_, nullptr)({}); });
    }
    r_.watch(leases, [this](const proto::WatcherEvent&) { count(); }, true);
  });
}

void Semaphore::release(Done done) {
  if (lease_.empty()) return done(sdk::Status(sdk::Errc::invalid_argument, "no lease is held"));
  r_.client().remove(lease_, -1, [this, done](const client::Response& res) {
    lease_.clear();
    done(res.err == Err::no_node ? sdk::Status{} : status_of(res.err, "returning the lease"));
  });
}

// ---- Queue ----

Queue::Queue(Recipes& r, std::string path) : r_(r), path_(std::move(path)) {}

namespace {
constexpr uint32_t kQueueVersion = 0x00010001;
constexpr char kItemOpcode = 0x01, kEofOpcode = 0x02;
}  // namespace

std::string Queue::encode(const std::vector<std::string>& items) {
  std::string out = int_bytes(static_cast<int32_t>(kQueueVersion));
  for (const auto& i : items) {
    out += kItemOpcode;
    out += int_bytes(static_cast<int32_t>(i.size()));
    out += i;
  }
  out += kEofOpcode;
  return out;
}

std::optional<std::vector<std::string>> Queue::decode(std::string_view data) {
  if (data.size() < 5 || bytes_int(std::string(data.substr(0, 4))) != static_cast<int32_t>(kQueueVersion))
    return std::nullopt;
  std::vector<std::string> items;
  size_t at = 4;
  while (at < data.size()) {
    char op = data[at++];
    if (op == kEofOpcode) return items;
    if (op != kItemOpcode || at + 4 > data.size()) return std::nullopt;
    auto len = bytes_int(std::string(data.substr(at, 4)));
    at += 4;
    if (!len || *len < 0 || at + static_cast<size_t>(*len) > data.size()) return std::nullopt;
    items.emplace_back(data.substr(at, static_cast<size_t>(*len)));
    at += static_cast<size_t>(*len);
  }
  return std::nullopt;
}

void Queue::put(std::string item, Done done) {
  std::string prefix = path_ + "/queue-";
  std::string data = encode({item});
  r_.create_parents(prefix, [this, prefix, data, done](const sdk::Status& st) {
    if (!st) return done(st);
    r_.client().create(prefix, data, CreateMode::persistent_sequential, [done](const client::Response& c) {
      done(status_of(c.err, "putting an item"));
    });
  });
}

void Queue::take(std::function<void(const sdk::Status&, std::string)> done) {
  if (!pending_.empty()) {
    std::string item = std::move(pending_.front());
    pending_.erase(pending_.begin());
    return done({}, std::move(item));
  }
  try_take(std::move(done));
}

void Queue::try_take(std::function<void(const sdk::Status&, std::string)> done) {
  r_.client().get_children(path_, true, [this, done](const client::Response& res) {
    if (res.err != Err::ok && res.err != Err::no_node) return done(status_of(res.err, "reading the queue"), "");
    auto items = sorted_by_sequence(res.children, "queue-");
    if (items.empty()) {
      if (res.err == Err::no_node) {
        // No queue yet: wait for it to appear.
        r_.client().exists(path_, true, [this, done](const client::Response& e) {
          if (e.err == Err::ok) return try_take(done);
          r_.watch(path_, [this, done](const proto::WatcherEvent&) { try_take(done); });
        });
        return;
      }
      r_.watch(path_, [this, done](const proto::WatcherEvent&) { try_take(done); }, true);
      return;
    }
    std::string first = path_ + "/" + items.front();
    r_.client().get_data(first, false, [this, first, done](const client::Response& d) {
      if (d.err == Err::no_node) return try_take(done);  // another consumer took it
      if (d.err != Err::ok) return done(status_of(d.err, "reading an item"), "");
      std::string data = d.data;
      r_.client().remove(first, -1, [this, data, done](const client::Response& rm) {
        if (rm.err == Err::no_node) return try_take(done);
        if (rm.err != Err::ok) return done(status_of(rm.err, "taking an item"), "");
        auto decoded = decode(data);
        if (!decoded || decoded->empty()) return done(sdk::Status(sdk::Errc::corrupt, "an item not in Curator's format"), "");
        pending_.insert(pending_.end(), decoded->begin() + 1, decoded->end());
        done({}, std::move(decoded->front()));
      });
    });
  });
}

// ---- TreeCache ----

TreeCache::TreeCache(Recipes& r, std::string root) : r_(r), root_(std::move(root)) {}

void TreeCache::start(std::function<void(Event, const std::string&, const std::string&)> on_event, Done ready) {
  on_event_ = std::move(on_event);
  ready_ = std::move(ready);
  load(root_, true);
}

std::optional<std::string> TreeCache::get(const std::string& path) const {
  auto it = nodes_.find(path);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> TreeCache::paths() const {
  std::vector<std::string> out;
  for (const auto& [p, d] : nodes_) out.push_back(p);
  return out;
}

void TreeCache::loaded_one() {
  if (--loading_ == 0 && !initialized_) {
    initialized_ = true;
    if (auto done = std::exchange(ready_, nullptr)) done({});
  }
}

// Reads `path`'s data and children with watches; children are loaded in turn.
void TreeCache::load(const std::string& path, bool) {
  loading_ += 2;
  read_data(path, true);
  read_children(path, true);
}

void TreeCache::read_data(const std::string& path, bool counting) {
  r_.client().get_data(path, true, [this, path, counting](const client::Response& d) {
    if (d.err == Err::ok) {
      bool known = nodes_.count(path) > 0;
      bool changed = !known || nodes_[path] != d.data;
      nodes_[path] = d.data;
      if (initialized_ && changed && on_event_) on_event_(known ? Event::updated : Event::added, path, d.data);
      r_.watch(path, [this, path](const proto::WatcherEvent& ev) {
        if (ev.type != static_cast<int32_t>(EventType::node_deleted)) return read_data(path, false);
        // The node and whatever was below it.
        std::vector<std::string> gone;
        for (auto it = nodes_.lower_bound(path);
             it != nodes_.end() && (it->first == path || it->first.rfind(path + "/", 0) == 0); ++it)
          gone.push_back(it->first);
        for (auto g = gone.rbegin(); g != gone.rend(); ++g) {
          nodes_.erase(*g);
          if (on_event_) on_event_(Event::removed, *g, "");
        }
        if (path == root_) load(root_, false);  // the root may come back
      });
    } else if (d.err == Err::no_node && path == root_) {
      // No root yet: wait for it.
      r_.client().exists(root_, true, [this](const client::Response& e) {
        if (e.err == Err::ok) return load(root_, false);
        r_.watch(root_, [this](const proto::WatcherEvent&) { load(root_, false); });
      });
    }
    if (counting) loaded_one();
  });
}

void TreeCache::read_children(const std::string& path, bool counting) {
  r_.client().get_children(path, true, [this, path, counting](const client::Response& c) {
    if (c.err == Err::ok) {
      for (const auto& child : c.children) {
        std::string p = (path == "/" ? "" : path) + "/" + child;
        if (!nodes_.count(p)) load(p, false);
      }
      r_.watch(path, [this, path](const proto::WatcherEvent& ev) {
        if (ev.type == static_cast<int32_t>(EventType::node_children_changed)) read_children(path, false);
      }, true);
    }
    if (counting) loaded_one();
  });
}

// ---- ServiceDiscovery ----

std::string ServiceInstance::to_json() const {
  common::JsonValue doc = common::JsonValue::object();
  doc.set("name", common::JsonValue::string(name));
  doc.set("id", common::JsonValue::string(id));
  doc.set("address", common::JsonValue::string(address));
  doc.set("port", port ? common::JsonValue::integer(*port) : common::JsonValue());
  doc.set("sslPort", ssl_port ? common::JsonValue::integer(*ssl_port) : common::JsonValue());
  doc.set("payload", payload);
  doc.set("registrationTimeUTC", common::JsonValue::integer(registration_time_ms));
  doc.set("serviceType", common::JsonValue::string(service_type));
  doc.set("uriSpec", common::JsonValue());
  doc.set("enabled", common::JsonValue::boolean(enabled));
  return doc.dump();
}

sdk::Result<ServiceInstance> ServiceInstance::from_json(std::string_view json) {
  auto doc = common::JsonValue::parse(json);
  if (!doc) return doc.status();
  if (!doc->is_object()) return sdk::Status(sdk::Errc::corrupt, "a ServiceInstance is a JSON object");
  ServiceInstance in;
  in.name = doc->get_string("name");
  in.id = doc->get_string("id");
  in.address = doc->get_string("address");
  if (auto* p = doc->get("port"); p && p->as_int()) in.port = static_cast<int32_t>(*p->as_int());
  if (auto* p = doc->get("sslPort"); p && p->as_int()) in.ssl_port = static_cast<int32_t>(*p->as_int());
  if (auto* p = doc->get("payload")) in.payload = *p;
  if (auto* p = doc->get("registrationTimeUTC"); p && p->as_int()) in.registration_time_ms = *p->as_int();
  in.service_type = doc->get_string("serviceType", "DYNAMIC");
  if (auto* p = doc->get("enabled"); p && p->as_bool()) in.enabled = *p->as_bool();
  return in;
}

ServiceDiscovery::ServiceDiscovery(Recipes& r, std::string base_path) : r_(r), base_(std::move(base_path)) {}

void ServiceDiscovery::register_instance(ServiceInstance& instance, Done done) {
  if (instance.id.empty()) instance.id = common::random_uuid();
  if (!instance.registration_time_ms)
    instance.registration_time_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string path = base_ + "/" + instance.name + "/" + instance.id;
  std::string doc = instance.to_json();
  r_.create_parents(path, [this, path, doc, done](const sdk::Status& st) {
    if (!st) return done(st);
    auto attempt = std::make_shared<std::function<void(int)>>();
    *attempt = [this, path, doc, done, attempt](int n) {
      r_.client().create(path, doc, CreateMode::ephemeral, [this, path, done, attempt, n](const client::Response& c) {
        if (c.err == Err::node_exists && n < 2) {  // a stale one of ours: replace it, as Curator does
          r_.client().remove(path, -1, [attempt, n](const client::Response&) { (*attempt)(n + 1); });
          return;
        }
        done(status_of(c.err, "registering"));
      });
    };
    (*attempt)(0);
  });
}

void ServiceDiscovery::unregister(const ServiceInstance& instance, Done done) {
  r_.client().remove(base_ + "/" + instance.name + "/" + instance.id, -1, [done](const client::Response& res) {
    done(res.err == Err::no_node ? sdk::Status{} : status_of(res.err, "unregistering"));
  });
}

void ServiceDiscovery::names(std::function<void(const sdk::Status&, std::vector<std::string>)> done) {
  r_.client().get_children(base_, false, [done](const client::Response& res) {
    if (res.err == Err::no_node) return done({}, {});
    auto names = res.children;
    std::sort(names.begin(), names.end());
    done(status_of(res.err, "listing services"), names);
  });
}

void ServiceDiscovery::instances(const std::string& name,
                                 std::function<void(const sdk::Status&, std::vector<ServiceInstance>)> done) {
  std::string dir = base_ + "/" + name;
  r_.client().get_children(dir, false, [this, dir, done](const client::Response& res) {
    if (res.err == Err::no_node) return done({}, {});
    if (res.err != Err::ok) return done(status_of(res.err, "listing instances"), {});
    auto out = std::make_shared<std::vector<ServiceInstance>>();
    auto pending = std::make_shared<size_t>(res.children.size());
    if (res.children.empty()) return done({}, {});
    for (const auto& child : res.children) {
      r_.client().get_data(dir + "/" + child, false, [out, pending, done](const client::Response& d) {
        if (d.err == Err::ok)
          if (auto in = ServiceInstance::from_json(d.data)) out->push_back(std::move(in.value()));
        if (--*pending) return;
        std::sort(out->begin(), out->end(), [](const auto& a, const auto& b) { return a.id < b.id; });
        done({}, std::move(*out));
      });
    }
  });
}

}  // namespace corral::recipes
