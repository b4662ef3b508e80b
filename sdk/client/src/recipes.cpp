// Curator's coordination recipes on the client: locks (Mutex, ReadWriteLock,
// Semaphore), leadership (LeaderLatch), SharedCount and barriers.
#include "corral/client/recipes.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <random>

#include "corral/common/random.hpp"
#include "recipes_internal.hpp"

namespace corral::recipes {

using namespace detail;
using proto::CreateMode;
using proto::Err;
using proto::EventType;

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
    if (type == EventType::node_children_changed || type == EventType::node_deleted)
      take(child_watches_);
    if (fns.empty() && user_) user_(ev);
    for (auto& fn : fns) fn(ev);
  });
}

void Recipes::watch(const std::string& path, std::function<void(const proto::WatcherEvent&)> fn,
                    bool children) {
  (children ? child_watches_ : data_watches_).emplace(path, std::move(fn));
}

std::string Recipes::protected_prefix() { return "_c_" + common::random_uuid() + "-"; }

void Recipes::create_protected_sequential(
    const std::string& dir, const std::string& name, std::string data,
    std::function<void(const sdk::Status&, const std::string&)> done) {
  std::string prefix = dir + "/" + protected_prefix() + name;
  create_parents(prefix, [this, prefix, name, data = std::move(data), done](const sdk::Status& st) {
    if (!st) return done(st, "");
    client_.create(prefix, data, CreateMode::ephemeral_sequential,
                   [name, done](const client::Response& c) {
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
                     if (r.err != Err::ok && r.err != Err::node_exists)
                       return done(status_of(r.err, "creating parents"));
                     (*step)(i + 1, containers);
                   });
  };
  (*step)(0, true);
}

// ---- Mutex ----

Mutex::Mutex(Recipes& r, std::string path) : r_(r), path_(std::move(path)) {}

void Mutex::acquire(Done done) {
  waiting_ = std::move(done);
  r_.create_protected_sequential(path_, "lock-", "",
                                 [this](const sdk::Status& st, const std::string& path) {
                                   if (!st) return std::exchange(waiting_, nullptr)(st);
                                   node_ = path;
                                   check();
                                 });
}

void Mutex::fail(sdk::Status why) {
  leave_line(r_.client(), node_, std::exchange(waiting_, nullptr), std::move(why));
}

void Mutex::check() {
  r_.client().get_children(path_, false, [this](const client::Response& res) {
    if (res.err != Err::ok) return fail(status_of(res.err, "reading the lock"));
    auto sorted = sorted_by_sequence(res.children, "lock-");
    auto mine = std::find(sorted.begin(), sorted.end(), basename(node_));
    if (mine == sorted.end())
      return fail(sdk::Status(sdk::Errc::unavailable, "the lock node vanished (session lost?)"));
    if (mine == sorted.begin()) {
      held_ = true;
      return std::exchange(waiting_, nullptr)({});
    }
    // Wait for the node just before ours to go.
    std::string previous = path_ + "/" + *(mine - 1);
    // A watch event always follows the reply that set it: claim it there.
    r_.client().exists(previous, true, [this, previous](const client::Response& e) {
      if (e.err == Err::no_node) return check();  // gone already
      // No watch was set (the server refused it, or the connection went):
      // no event will come.
      if (e.err != Err::ok) return fail(status_of(e.err, "watching the lock before ours"));
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

struct LeaderLatch::Retry {
  explicit Retry(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
};

LeaderLatch::LeaderLatch(Recipes& r, std::string path, std::string id)
    : r_(r), path_(std::move(path)), id_(std::move(id)) {}

LeaderLatch::~LeaderLatch() {
  if (retry_) retry_->timer.cancel();
}

void LeaderLatch::start(std::function<void(bool)> on_change, Done started) {
  on_change_ = std::move(on_change);
  join(std::move(started));
}

void LeaderLatch::join(Done started) {
  r_.create_protected_sequential(path_, "latch-", id_,
                                 [this, started](const sdk::Status& st, const std::string& path) {
                                   if (started) started(st);
                                   if (!st) {
                                     // Failed on a rejoin: try again later.
                                     if (!started && !closed_) rejoin();
                                     return;
                                   }
                                   node_ = path;
                                   if (closed_) {
                                     // Closed while joining: leave at once.
                                     leave_line(r_.client(), node_, nullptr, {});
                                     return;
                                   }
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
    if (closed_) return;
    if (res.err != Err::ok) return rejoin();
    auto sorted = sorted_by_sequence(res.children, "latch-");
    auto mine = std::find(sorted.begin(), sorted.end(), basename(node_));
    if (mine == sorted.end()) return set_leader(false);
    if (mine == sorted.begin()) {
      pause_ms_ = 0;
      return set_leader(true);
    }
    set_leader(false);
    std::string previous = path_ + "/" + *(mine - 1);
    r_.client().get_data(previous, true, [this, previous](const client::Response& e) {
      if (closed_) return;
      if (e.err == Err::no_node) return check();
      // No watch set: this latch would never learn that it leads, while
      // those after it took it for the leader.
      if (e.err != Err::ok) return rejoin();
      pause_ms_ = 0;
      r_.watch(previous, [this](const proto::WatcherEvent&) { check(); });
    });
  });
}

void LeaderLatch::rejoin() {
  set_leader(false);
  if (!r_.client().connected()) {
    node_.clear();  // it goes with the session; nothing more can be done on this client
    return;
  }
  pause_ms_ = pause_ms_ == 0 ? 250 : std::min<int64_t>(pause_ms_ * 2, 8000);
  leave_line(r_.client(), node_,
             [this](const sdk::Status&) {
               if (closed_) return;
               if (!retry_) retry_ = std::make_shared<Retry>(r_.client().io_context());
               retry_->timer.expires_after(std::chrono::milliseconds(pause_ms_));
               // An aborted wait (the latch closed or destroyed) touches
               // nothing; nor does one already due when the latch went.
               retry_->timer.async_wait([this, timer = std::weak_ptr<Retry>(retry_)](
                                            const boost::system::error_code& ec) {
                 if (!ec && timer.lock() && !closed_) join(nullptr);
               });
             },
             {});
}

void LeaderLatch::close(Done done) {
  closed_ = true;
  if (retry_) retry_->timer.cancel();
  set_leader(false);
  if (node_.empty()) {
    if (done) done({});
    return;
  }
  r_.client().remove(node_, -1, [done](const client::Response& res) {
    if (done)
      done(res.err == Err::no_node ? sdk::Status{} : status_of(res.err, "closing the latch"));
  });
}

// ---- SharedCount ----

SharedCount::SharedCount(Recipes& r, std::string path, int32_t seed)
    : r_(r), path_(std::move(path)), seed_(seed) {}

void SharedCount::start(Done done) {
  r_.create_parents(path_, [this, done](const sdk::Status& st) {
    if (!st) return done(st);
    r_.client().create(
        path_, int_bytes(seed_), CreateMode::persistent, [done](const client::Response& c) {
          done(c.err == Err::node_exists ? sdk::Status{} : status_of(c.err, "creating the count"));
        });
  });
}

void SharedCount::get(std::function<void(const sdk::Status&, int32_t, int32_t)> done) {
  r_.client().get_data(path_, false, [done](const client::Response& res) {
    if (res.err != Err::ok) return done(status_of(res.err, "reading the count"), 0, -1);
    auto v = bytes_int(res.data);
    if (!v)
      return done(sdk::Status(sdk::Errc::corrupt, "the count is not a 4-byte integer"), 0, -1);
    done({}, *v, res.stat.version);
  });
}

void SharedCount::try_set(int32_t value, int32_t version,
                          std::function<void(const sdk::Status&, bool)> done) {
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
      if (c.err != Err::ok)
        return std::exchange(entering_, nullptr)(status_of(c.err, "entering the barrier"));
      check_enter();
    });
  });
}

void DoubleBarrier::check_enter() {
  std::string ready = path_ + "/ready";
  r_.client().exists(ready, true, [this, ready](const client::Response& e) {
    // Entered (or failed) already: a second look, started by the ready
    // watch while the first was answered, has nothing left to do.
    if (!entering_) return;
    if (e.err == Err::ok) {
      entered_ = true;
      return std::exchange(entering_, nullptr)({});
    }
    if (e.err != Err::no_node) {  // no watch set: no event will come
      // Out of the barrier again, so that the others do not count us.
      return leave_line(r_.client(), node_, std::exchange(entering_, nullptr),
                        status_of(e.err, "watching the barrier"));
    }
    r_.watch(ready, [this](const proto::WatcherEvent&) {
      if (entering_) check_enter();
    });
    r_.client().get_children(path_, false, [this, ready](const client::Response& res) {
      if (!entering_) return;
      if (res.err != Err::ok)
        return leave_line(r_.client(), node_, std::exchange(entering_, nullptr),
                          status_of(res.err, "entering the barrier"));
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
  if (!entered_)
    return done(sdk::Status(sdk::Errc::invalid_argument, "leave() before enter() completed"));
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
      r_.watch(
          path_, [this](const proto::WatcherEvent&) { check_leave(); }, true);
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

void ReadWriteLock::fail(sdk::Status why) {
  leave_line(r_.client(), node_, std::exchange(waiting_, nullptr), std::move(why));
}

void ReadWriteLock::check() {
  r_.client().get_children(path_, false, [this](const client::Response& res) {
    if (!waiting_) return;
    if (res.err != Err::ok) return fail(status_of(res.err, "reading the lock"));
    // Curator sorts readers and writers together by their sequence numbers.
    std::vector<std::string> all;
    for (const auto& c : res.children)
      if (c.find("__READ__") != std::string::npos || c.find("__WRIT__") != std::string::npos)
        all.push_back(c);
    auto seq = [](const std::string& n) {
      size_t r = n.rfind("__READ__"), w = n.rfind("__WRIT__");
      size_t at = r != std::string::npos ? r : w;
      return n.substr(at + 8);
    };
    std::sort(all.begin(), all.end(),
              [&](const auto& a, const auto& b) { return seq(a) < seq(b); });
    std::string mine = basename(node_);
    auto it = std::find(all.begin(), all.end(), mine);
    if (it == all.end()) return fail(sdk::Status(sdk::Errc::unavailable, "the lock node vanished"));
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
      if (e.err != Err::ok)  // no watch set: no event will come
        return fail(status_of(e.err, "watching the lock before ours"));
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
    r_.create_protected_sequential(path_ + "/leases", "lease-", "",
                                   [this](const sdk::Status& p, const std::string& path) {
                                     if (!p) return fail(p);
                                     lease_ = path;
                                     count();
                                   });
  });
}

void Semaphore::fail(sdk::Status why) {
  // The lease goes, and the mutex held while taking it is let go.
  leave_line(
      r_.client(), lease_,
      [this](const sdk::Status& st) {
        lock_.release([this, st](const sdk::Status&) { std::exchange(waiting_, nullptr)(st); });
      },
      std::move(why));
}

void Semaphore::count() {
  std::string leases = path_ + "/leases";
  r_.client().get_children(leases, true, [this, leases](const client::Response& res) {
    if (!waiting_) return;
    if (res.err != Err::ok) return fail(status_of(res.err, "counting leases"));
    if (static_cast<int>(res.children.size()) <= max_) {
      return lock_.release([this](const sdk::Status&) { std::exchange(waiting_, nullptr)({}); });
    }
    r_.watch(
        leases, [this](const proto::WatcherEvent&) { count(); }, true);
  });
}

void Semaphore::release(Done done) {
  if (lease_.empty()) return done(sdk::Status(sdk::Errc::invalid_argument, "no lease is held"));
  r_.client().remove(lease_, -1, [this, done](const client::Response& res) {
    lease_.clear();
    done(res.err == Err::no_node ? sdk::Status{} : status_of(res.err, "returning the lease"));
  });
}

}  // namespace corral::recipes
