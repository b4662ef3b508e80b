#include "corral/client/recipes.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

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

std::string random_uuid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xF000ULL) | 0x4000ULL;
  lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

// ---- Recipes ----

Recipes::Recipes(client::Client& client) : client_(client) {
  client_.on_event([this](const proto::WatcherEvent& ev) {
    if (ev.type != static_cast<int32_t>(EventType::none)) {
      auto range = watches_.equal_range(ev.path);
      if (range.first != range.second) {
        std::vector<std::function<void(const proto::WatcherEvent&)>> fns;
        for (auto it = range.first; it != range.second; ++it) fns.push_back(std::move(it->second));
        watches_.erase(range.first, range.second);
        for (auto& fn : fns) fn(ev);
        return;
      }
    }
    if (user_) user_(ev);
  });
}

void Recipes::watch(const std::string& path, std::function<void(const proto::WatcherEvent&)> fn) {
  watches_.emplace(path, std::move(fn));
}

std::string Recipes::protected_prefix() { return "_c_" + random_uuid() + "-"; }

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
  std::string prefix = path_ + "/" + r_.protected_prefix() + "lock-";
  r_.create_parents(prefix, [this, prefix](const sdk::Status& st) {
    if (!st) return std::exchange(waiting_, nullptr)(st);
    r_.client().create(prefix, "", CreateMode::ephemeral_sequential, [this](const client::Response& c) {
      if (c.err != Err::ok) return std::exchange(waiting_, nullptr)(status_of(c.err, "creating the lock node"));
      node_ = c.path;
      check();
    });
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
  std::string prefix = path_ + "/" + r_.protected_prefix() + "latch-";
  r_.create_parents(prefix, [this, prefix, started](const sdk::Status& st) {
    if (!st) {
      if (started) started(st);
      return;
    }
    r_.client().create(prefix, id_, CreateMode::ephemeral_sequential, [this, started](const client::Response& c) {
      if (c.err != Err::ok) {
        if (started) started(status_of(c.err, "creating the latch node"));
        return;
      }
      node_ = c.path;
      if (started) started({});
      check();
    });
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

// ---- ServiceDiscovery ----

std::string ServiceInstance::to_json() const {
  sdk::JsonValue doc = sdk::JsonValue::object();
  doc.set("name", sdk::JsonValue::string(name));
  doc.set("id", sdk::JsonValue::string(id));
  doc.set("address", sdk::JsonValue::string(address));
  doc.set("port", port ? sdk::JsonValue::integer(*port) : sdk::JsonValue());
  doc.set("sslPort", ssl_port ? sdk::JsonValue::integer(*ssl_port) : sdk::JsonValue());
  doc.set("payload", payload);
  doc.set("registrationTimeUTC", sdk::JsonValue::integer(registration_time_ms));
  doc.set("serviceType", sdk::JsonValue::string(service_type));
  doc.set("uriSpec", sdk::JsonValue());
  doc.set("enabled", sdk::JsonValue::boolean(enabled));
  return doc.dump();
}

sdk::Result<ServiceInstance> ServiceInstance::from_json(std::string_view json) {
  auto doc = sdk::JsonValue::parse(json);
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
  if (instance.id.empty()) instance.id = random_uuid();
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
