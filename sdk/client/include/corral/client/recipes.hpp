// Coordination recipes on the SDK's asynchronous client, in the layouts
// Apache Curator uses, so that a C++ program and a Java one using Curator
// cooperate on the same paths (a C++ Mutex and a Curator InterProcessMutex
// exclude each other).
//
//   Mutex            InterProcessMutex: <path>/_c_<uuid>-lock-<seq>
//   LeaderLatch      LeaderLatch:       <path>/_c_<uuid>-latch-<seq>
//   SharedCount      SharedCount:       <path> holding a 4-byte big-endian int
//   Barrier          DistributedBarrier: the barrier is up while <path> exists
//   DoubleBarrier    DistributedDoubleBarrier: <path>/<uuid> per member, <path>/ready
//   ReadWriteLock    InterProcessReadWriteLock: <path>/_c_<uuid>-__READ__<seq>, -__WRIT__<seq>
//   Semaphore        InterProcessSemaphoreV2: <path>/locks (a mutex),
//   <path>/leases/_c_<uuid>-lease-<seq> Queue            DistributedQueue: <path>/queue-<seq> in
//   Curator's item format TreeCache        a watched copy of a subtree (Curator's
//   TreeCache/CuratorCache) ServiceDiscovery ServiceDiscovery:  <base>/<name>/<id> holding
//   ServiceInstance JSON
//
// Threading and lifetime: as the Client's. Recipes need a Recipes hub,
// which takes the client's event callback and hands each watch to the
// recipe that set it; every object must outlive its pending callbacks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "corral/client/client.hpp"
#include "corral/common/json.hpp"

namespace corral::recipes {

using Done = std::function<void(const sdk::Status&)>;

// Owns the client's event callback and routes watch events by path.
class Recipes {
 public:
  explicit Recipes(client::Client& client);
  client::Client& client() { return client_; }
  // A one-shot handler for the next event of a data watch (exists,
  // getData: created, changed, deleted) or, with `children`, of a child
  // watch (getChildren: children changed, deleted) on `path`.
  void watch(const std::string& path, std::function<void(const proto::WatcherEvent&)> fn,
             bool children = false);
  // Events no recipe claimed (and session state changes) go here too.
  void on_event(client::EventFn fn) { user_ = std::move(fn); }
  // Creates the ancestors of `path` (not `path`), as containers when the
  // server supports them, as Curator's creatingParentContainersIfNeeded does.
  void create_parents(const std::string& path, Done done);
  // A fresh "_c_<uuid>-" prefix, as Curator's protected mode names nodes.
  std::string protected_prefix();
  // Creates <dir>/_c_<uuid>-<name><sequence>, ephemeral, with its parents
  // (Curator's withProtection().withMode(EPHEMERAL_SEQUENTIAL)); `done` gets
  // the path made.
  void create_protected_sequential(
      const std::string& dir, const std::string& name, std::string data,
      std::function<void(const sdk::Status&, const std::string& path)> done);

 private:
  client::Client& client_;
  std::multimap<std::string, std::function<void(const proto::WatcherEvent&)>> data_watches_,
      child_watches_;
  client::EventFn user_;
};

// Curator's InterProcessMutex (not reentrant here: acquire once, release once).
class Mutex {
 public:
  Mutex(Recipes& r, std::string path);
  // `done` runs once the lock is held (or with the error that prevented it).
  void acquire(Done done);
  void release(Done done);
  bool held() const { return held_; }

 private:
  void check();
  void fail(sdk::Status why);  // leaves the line, then tells the waiter
  Recipes& r_;
  std::string path_, node_;
  bool held_ = false;
  Done waiting_;
};

// Curator's LeaderLatch: the participant whose node sorts first leads.
// When it cannot follow the line (a read fails, or the server refuses the
// watch on the node before its own), it leaves the line, so that no one
// takes it for the leader, and joins again after a pause (250 ms, doubling
// up to 8 s), as Curator's resets do. Once its client's connection is lost
// (the client does not reconnect) it stops: its node goes with the session.
class LeaderLatch {
 public:
  LeaderLatch(Recipes& r, std::string path, std::string id = "");
  ~LeaderLatch();
  // `on_change(true)` when this participant becomes leader, false when it stops.
  void start(std::function<void(bool leader)> on_change, Done started = nullptr);
  void close(Done done = nullptr);
  bool leader() const { return leader_; }

 private:
  void join(Done started);
  void check();
  void rejoin();
  void set_leader(bool v);
  struct Retry;
  Recipes& r_;
  std::string path_, id_, node_;
  bool leader_ = false, closed_ = false;
  std::function<void(bool)> on_change_;
  int64_t pause_ms_ = 0;  // before the next rejoin; 0 after a watch is set
  std::shared_ptr<Retry> retry_;
};

// Curator's SharedCount: an int shared by every client, changed with
// compare-and-set on the znode's version.
class SharedCount {
 public:
  SharedCount(Recipes& r, std::string path, int32_t seed = 0);
  // Creates the node with the seed when it is missing.
  void start(Done done);
  void get(std::function<void(const sdk::Status&, int32_t value, int32_t version)> done);
  // Sets `value` only if the count is still at `version`; false when it moved.
  void try_set(int32_t value, int32_t version,
               std::function<void(const sdk::Status&, bool set)> done);
  // Adds `delta`, retrying on conflicts; gives the new value.
  void add(int32_t delta, std::function<void(const sdk::Status&, int32_t value)> done);

 private:
  Recipes& r_;
  std::string path_;
  int32_t seed_;
};

// Curator's DistributedBarrier.
class Barrier {
 public:
  Barrier(Recipes& r, std::string path);
  void set(Done done);
  void remove(Done done);
  // Runs `done` once the barrier is down (at once if it is).
  void wait(Done done);

 private:
  Recipes& r_;
  std::string path_;
};

// Curator's DistributedDoubleBarrier: enter() returns once `members` have
// entered; leave() once all of them have left.
class DoubleBarrier {
 public:
  DoubleBarrier(Recipes& r, std::string path, int members);
  void enter(Done done);
  void leave(Done done);

 private:
  void check_enter();
  void check_leave();
  Recipes& r_;
  std::string path_, node_;
  int members_;
  Done entering_, leaving_;
  bool entered_ = false;
};

// Curator's InterProcessReadWriteLock: many readers or one writer.
class ReadWriteLock {
 public:
  ReadWriteLock(Recipes& r, std::string path);
  void acquire_read(Done done) { acquire(false, std::move(done)); }
  void acquire_write(Done done) { acquire(true, std::move(done)); }
  void release(Done done);  // whichever this object holds

 private:
  void acquire(bool write, Done done);
  void check();
  void fail(sdk::Status why);  // leaves the line, then tells the waiter
  Recipes& r_;
  std::string path_, node_;
  bool write_ = false, held_ = false;
  Done waiting_;
};

// Curator's InterProcessSemaphoreV2 with a fixed number of leases.
class Semaphore {
 public:
  Semaphore(Recipes& r, std::string path, int max_leases);
  // One lease; `done` once it is held.
  void acquire(Done done);
  void release(Done done);

 private:
  void count();
  void fail(sdk::Status why);  // returns the lease and the mutex, then tells the waiter
  Recipes& r_;
  std::string path_, lease_;
  int max_;
  Mutex lock_;
  Done waiting_;
};

// Curator's DistributedQueue (no lock path): items are byte strings.
class Queue {
 public:
  Queue(Recipes& r, std::string path);
  void put(std::string item, Done done);
  // The oldest item, removed from the queue; waits for one when empty.
  void take(std::function<void(const sdk::Status&, std::string item)> done);
  // Curator's ItemSerializer format for one item, and back.
  static std::string encode(const std::vector<std::string>& items);
  static std::optional<std::vector<std::string>> decode(std::string_view data);

 private:
  void try_take(std::function<void(const sdk::Status&, std::string)> done);
  Recipes& r_;
  std::string path_;
  std::vector<std::string> pending_;  // items of a multi-item node not yet handed out
};

// A watched copy of the subtree at `root`: every node's data, kept current.
// A read that fails is reported to `on_error`. One whose watch the server
// refused (past its limits: SYSTEMERROR) is tried again after a pause
// (250 ms, doubling up to 8 s while refusals go on), so the copy catches up
// once the server has room; `ready` waits for it. Any other failure
// (NOAUTH, say) leaves that node out. The client does
// not reconnect: a read failing for a lost connection stops the cache (no
// more reads or retries), is reported once, and a `ready` not yet given
// hears it. The session's state changes reach Recipes::on_event.
class TreeCache {
 public:
  enum class Event { added, updated, removed };
  TreeCache(Recipes& r, std::string root);
  ~TreeCache();
  // `on_event` hears every change after the initial load; `ready` runs once
  // the whole subtree is loaded.
  void start(std::function<void(Event, const std::string& path, const std::string& data)> on_event,
             Done ready);
  // Hears every failed read (before start()); without it failures are only
  // retried.
  void on_error(std::function<void(const std::string& path, const sdk::Status& why)> fn);
  std::optional<std::string> get(const std::string& path) const;
  std::vector<std::string> paths() const;

 private:
  struct Retry;
  void load(const std::string& path);
  void read_data(const std::string& path, bool counting);
  void read_children(const std::string& path, bool counting);
  void wait_for_root();
  // A read of `path` (its children when `children`) failed with `err`.
  void failed(const std::string& path, bool children, bool counting, proto::Err err);
  void retry_due();
  void loaded_one();
  Recipes& r_;
  std::string root_;
  std::map<std::string, std::string> nodes_;
  std::function<void(Event, const std::string&, const std::string&)> on_event_;
  std::function<void(const std::string&, const sdk::Status&)> on_error_;
  Done ready_;
  int loading_ = 0;
  bool initialized_ = false;
  bool stopped_ = false;  // the connection is lost: nothing is followed
  // Reads to try again: (path, children?) and how many of the initial
  // load's counts wait on it; and the pause before the next try.
  std::map<std::pair<std::string, bool>, int> due_;
  int64_t pause_ms_ = 0;
  int64_t last_failed_ms_ = 0;  // when a read was last refused (steady clock)
  std::shared_ptr<Retry> retry_;
};

// Curator's ServiceInstance, as its JsonInstanceSerializer writes it.
struct ServiceInstance {
  std::string name, id, address;
  std::optional<int32_t> port, ssl_port;
  common::JsonValue payload;  // null by default
  int64_t registration_time_ms = 0;
  std::string service_type = "DYNAMIC";
  bool enabled = true;
  std::string to_json() const;
  static sdk::Result<ServiceInstance> from_json(std::string_view json);
};

// Curator's ServiceDiscovery: instances as ephemeral znodes under
// <base>/<name>/<id>.
class ServiceDiscovery {
 public:
  ServiceDiscovery(Recipes& r, std::string base_path);
  // Registers (an ephemeral, as Curator's DYNAMIC type); fills in an id
  // (a UUID) and the registration time when they are empty.
  void register_instance(ServiceInstance& instance, Done done);
  void unregister(const ServiceInstance& instance, Done done);
  void names(std::function<void(const sdk::Status&, std::vector<std::string>)> done);
  void instances(const std::string& name,
                 std::function<void(const sdk::Status&, std::vector<ServiceInstance>)> done);

 private:
  Recipes& r_;
  std::string base_;
};

}  // namespace corral::recipes
