// Curator's recipes that carry data: DistributedQueue, TreeCache and
// ServiceDiscovery.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <random>

#include "corral/client/recipes.hpp"
#include "corral/common/random.hpp"
#include "recipes_internal.hpp"

namespace corral::recipes {

using namespace detail;
using proto::CreateMode;
using proto::Err;
using proto::EventType;
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
  if (data.size() < 5 ||
      bytes_int(std::string(data.substr(0, 4))) != static_cast<int32_t>(kQueueVersion))
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
    r_.client().create(
        prefix, data, CreateMode::persistent_sequential,
        [done](const client::Response& c) { done(status_of(c.err, "putting an item")); });
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
    if (res.err != Err::ok && res.err != Err::no_node)
      return done(status_of(res.err, "reading the queue"), "");
    auto items = sorted_by_sequence(res.children, "queue-");
    if (items.empty()) {
      if (res.err == Err::no_node) {
        // No queue yet: wait for it to appear.
        r_.client().exists(path_, true, [this, done](const client::Response& e) {
          if (e.err == Err::ok) return try_take(done);
          if (e.err != Err::no_node)  // no watch set: no event will come
            return done(status_of(e.err, "waiting for the queue"), "");
          r_.watch(path_, [this, done](const proto::WatcherEvent&) { try_take(done); });
        });
        return;
      }
      r_.watch(
          path_, [this, done](const proto::WatcherEvent&) { try_take(done); }, true);
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
        if (!decoded || decoded->empty())
          return done(sdk::Status(sdk::Errc::corrupt, "an item not in Curator's format"), "");
        pending_.insert(pending_.end(), decoded->begin() + 1, decoded->end());
        done({}, std::move(decoded->front()));
      });
    });
  });
}

// ---- TreeCache ----

struct TreeCache::Retry {
  explicit Retry(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
};

TreeCache::TreeCache(Recipes& r, std::string root) : r_(r), root_(std::move(root)) {}

TreeCache::~TreeCache() {
  if (retry_) retry_->timer.cancel();
}

void TreeCache::start(std::function<void(Event, const std::string&, const std::string&)> on_event,
                      Done ready) {
  on_event_ = std::move(on_event);
  ready_ = std::move(ready);
  load(root_);
}

void TreeCache::on_error(std::function<void(const std::string&, const sdk::Status&)> fn) {
  on_error_ = std::move(fn);
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
void TreeCache::load(const std::string& path) {
  loading_ += 2;
  read_data(path, true);
  read_children(path, true);
}

void TreeCache::failed(const std::string& path, bool children, bool counting, Err err) {
  if (stopped_) return;
  auto why = status_of(err, children ? "reading the children of " + path : "reading " + path);
  if (err == Err::connection_loss || err == Err::session_expired || !r_.client().connected()) {
    // Nothing more will be read or heard on this client.
    stopped_ = true;
    due_.clear();
    if (retry_) retry_->timer.cancel();
    if (on_error_) on_error_(path, why);
    if (auto done = std::exchange(ready_, nullptr)) {
      initialized_ = true;
      done(why);
    }
    return;
  }
  if (on_error_) on_error_(path, why);
  if (err != Err::system_error) {
    // Not a refused watch (NOAUTH, say): trying again would fail again.
    // The node is left out, and the load goes on without it.
    if (counting) loaded_one();
    return;
  }
  // The pause doubles while refusals go on, and starts again from 250 ms
  // after 30 s without one.
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  const bool lasting = pause_ms_ != 0 && now - last_failed_ms_ < 30000;
  last_failed_ms_ = now;
  const bool timer_set = !due_.empty();
  due_[{path, children}] += counting ? 1 : 0;
  if (timer_set) return;
  pause_ms_ = lasting ? std::min<int64_t>(pause_ms_ * 2, 8000) : 250;
  if (!retry_) retry_ = std::make_shared<Retry>(r_.client().io_context());
  retry_->timer.expires_after(std::chrono::milliseconds(pause_ms_));
  // A handler already due when the cache went runs all the same, with no
  // error: it finds its timer gone and touches nothing.
  retry_->timer.async_wait(
      [this, timer = std::weak_ptr<Retry>(retry_)](const boost::system::error_code& ec) {
        if (!ec && timer.lock()) retry_due();
      });
}

void TreeCache::retry_due() {
  for (auto& [key, counted] : std::exchange(due_, {})) {
    const auto& [path, children] = key;
    // Each counted failure holds one count of the initial load; one read
    // carries it on and the others are let go (that read still holds one).
    for (int i = 1; i < counted; ++i) --loading_;
    if (children)
      read_children(path, counted > 0);
    else
      read_data(path, counted > 0);
  }
}

void TreeCache::read_data(const std::string& path, bool counting) {
  r_.client().get_data(path, true, [this, path, counting](const client::Response& d) {
    if (stopped_) return;
    if (d.err == Err::ok) {
      bool known = nodes_.count(path) > 0;
      bool changed = !known || nodes_[path] != d.data;
      nodes_[path] = d.data;
      if (initialized_ && changed && on_event_)
        on_event_(known ? Event::updated : Event::added, path, d.data);
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
        if (path == root_) load(root_);  // the root may come back
      });
    } else if (d.err == Err::no_node) {
      if (path == root_) wait_for_root();
    } else {
      // No watch was set: the node would not be followed.
      return failed(path, false, counting, d.err);
    }
    if (counting) loaded_one();
  });
}

void TreeCache::wait_for_root() {
  r_.client().exists(root_, true, [this](const client::Response& e) {
    if (stopped_) return;
    if (e.err == Err::ok) return load(root_);
    if (e.err != Err::no_node) return failed(root_, false, false, e.err);
    r_.watch(root_, [this](const proto::WatcherEvent&) { load(root_); });
  });
}

void TreeCache::read_children(const std::string& path, bool counting) {
  r_.client().get_children(path, true, [this, path, counting](const client::Response& c) {
    if (stopped_) return;
    if (c.err == Err::ok) {
      for (const auto& child : c.children) {
        std::string p = (path == "/" ? "" : path) + "/" + child;
        if (!nodes_.count(p)) load(p);
      }
      r_.watch(
          path,
          [this, path](const proto::WatcherEvent& ev) {
            if (ev.type == static_cast<int32_t>(EventType::node_children_changed))
              read_children(path, false);
          },
          true);
    } else if (c.err != Err::no_node) {
      return failed(path, true, counting, c.err);
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
  if (!doc->is_object())
    return sdk::Status(sdk::Errc::corrupt, "a ServiceInstance is a JSON object");
  ServiceInstance in;
  in.name = doc->get_string("name");
  in.id = doc->get_string("id");
  in.address = doc->get_string("address");
  if (auto* p = doc->get("port"); p && p->as_int()) in.port = static_cast<int32_t>(*p->as_int());
  if (auto* p = doc->get("sslPort"); p && p->as_int())
    in.ssl_port = static_cast<int32_t>(*p->as_int());
  if (auto* p = doc->get("payload")) in.payload = *p;
  if (auto* p = doc->get("registrationTimeUTC"); p && p->as_int())
    in.registration_time_ms = *p->as_int();
  in.service_type = doc->get_string("serviceType", "DYNAMIC");
  if (auto* p = doc->get("enabled"); p && p->as_bool()) in.enabled = *p->as_bool();
  return in;
}

ServiceDiscovery::ServiceDiscovery(Recipes& r, std::string base_path)
    : r_(r), base_(std::move(base_path)) {}

void ServiceDiscovery::register_instance(ServiceInstance& instance, Done done) {
  if (instance.id.empty()) instance.id = common::random_uuid();
  if (!instance.registration_time_ms)
    instance.registration_time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
  std::string path = base_ + "/" + instance.name + "/" + instance.id;
  std::string doc = instance.to_json();
  r_.create_parents(path, [this, path, doc, done](const sdk::Status& st) {
    if (!st) return done(st);
    auto attempt = std::make_shared<std::function<void(int)>>();
    *attempt = [this, path, doc, done, attempt](int n) {
      r_.client().create(path, doc, CreateMode::ephemeral,
                         [this, path, done, attempt, n](const client::Response& c) {
                           if (c.err == Err::node_exists &&
                               n < 2) {  // a stale one of ours: replace it, as Curator does
                             r_.client().remove(path, -1, [attempt, n](const client::Response&) {
                               (*attempt)(n + 1);
                             });
                             return;
                           }
                           done(status_of(c.err, "registering"));
                         });
    };
    (*attempt)(0);
  });
}

void ServiceDiscovery::unregister(const ServiceInstance& instance, Done done) {
  r_.client().remove(
      base_ + "/" + instance.name + "/" + instance.id, -1, [done](const client::Response& res) {
        done(res.err == Err::no_node ? sdk::Status{} : status_of(res.err, "unregistering"));
      });
}

void ServiceDiscovery::names(
    std::function<void(const sdk::Status&, std::vector<std::string>)> done) {
  r_.client().get_children(base_, false, [done](const client::Response& res) {
    if (res.err == Err::no_node) return done({}, {});
    auto names = res.children;
    std::sort(names.begin(), names.end());
    done(status_of(res.err, "listing services"), names);
  });
}

void ServiceDiscovery::instances(
    const std::string& name,
    std::function<void(const sdk::Status&, std::vector<ServiceInstance>)> done) {
  std::string dir = base_ + "/" + name;
  r_.client().get_children(dir, false, [this, dir, done](const client::Response& res) {
    if (res.err == Err::no_node) return done({}, {});
    if (res.err != Err::ok) return done(status_of(res.err, "listing instances"), {});
    auto out = std::make_shared<std::vector<ServiceInstance>>();
    auto pending = std::make_shared<size_t>(res.children.size());
    if (res.children.empty()) return done({}, {});
    for (const auto& child : res.children) {
      r_.client().get_data(dir + "/" + child, false,
                           [out, pending, done](const client::Response& d) {
                             if (d.err == Err::ok)
                               if (auto in = ServiceInstance::from_json(d.data))
                                 out->push_back(std::move(in.value()));
                             if (--*pending) return;
                             std::sort(out->begin(), out->end(),
                                       [](const auto& a, const auto& b) { return a.id < b.id; });
                             done({}, std::move(*out));
                           });
    }
  });
}

}  // namespace corral::recipes
