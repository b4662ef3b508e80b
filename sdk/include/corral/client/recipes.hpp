// Coordination recipes on the SDK's asynchronous client, in the layouts
// Apache Curator uses, so that a C++ program and a Java one using Curator
// cooperate on the same paths (a C++ Mutex and a Curator InterProcessMutex
// exclude each other).
//
//   Mutex            InterProcessMutex: <path>/_c_<uuid>-lock-<seq>
//   LeaderLatch      LeaderLatch:       <path>/_c_<uuid>-latch-<seq>
//   SharedCount      SharedCount:       <path> holding a 4-byte big-endian int
//   Barrier          DistributedBarrier: the barrier is up while <path> exists
//   ServiceDiscovery ServiceDiscovery:  <base>/<name>/<id> holding ServiceInstance JSON
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
#include "corral/sdk/json.hpp"

namespace corral::recipes {

using Done = std::function<void(const sdk::Status&)>;

// Owns the client's event callback and routes watch events by path.
class Recipes {
 public:
  explicit Recipes(client::Client& client);
  client::Client& client() { return client_; }
  // A one-shot handler for the next event on `path`.
  void watch(const std::string& path, std::function<void(const proto::WatcherEvent&)> fn);
  // Events no recipe claimed (and session state changes) go here too.
  void on_event(client::EventFn fn) { user_ = std::move(fn); }
  // Creates the ancestors of `path` (not `path`), as containers when the
  // server supports them, as Curator's creatingParentContainersIfNeeded does.
  void create_parents(const std::string& path, Done done);
  // A fresh "_c_<uuid>-" prefix, as Curator's protected mode names nodes.
  std::string protected_prefix();

 private:
  client::Client& client_;
  std::multimap<std::string, std::function<void(const proto::WatcherEvent&)>> watches_;
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
  Recipes& r_;
  std::string path_, node_;
  bool held_ = false;
  Done waiting_;
};

// Curator's LeaderLatch: the participant whose node sorts first leads.
class LeaderLatch {
 public:
  LeaderLatch(Recipes& r, std::string path, std::string id = "");
  // `on_change(true)` when this participant becomes leader, false when it stops.
  void start(std::function<void(bool leader)> on_change, Done started = nullptr);
  void close(Done done = nullptr);
  bool leader() const { return leader_; }

 private:
  void check();
  void set_leader(bool v);
  Recipes& r_;
  std::string path_, id_, node_;
  bool leader_ = false, closed_ = false;
  std::function<void(bool)> on_change_;
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
  void try_set(int32_t value, int32_t version, std::function<void(const sdk::Status&, bool set)> done);
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

// Curator's ServiceInstance, as its JsonInstanceSerializer writes it.
struct ServiceInstance {
  std::string name, id, address;
  std::optional<int32_t> port, ssl_port;
  sdk::JsonValue payload;       // null by default
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

// A version-4 UUID, as java.util.UUID.randomUUID() formats it.
std::string random_uuid();

}  // namespace corral::recipes
