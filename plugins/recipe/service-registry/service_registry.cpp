// The `service-registry` recipe: a service registry on the replicated tree,
// in Curator ServiceDiscovery's layout, over HTTP and DNS.
//
//   <base_path>/<service>/<instance id>  ->  Curator's ServiceInstance JSON
//
// Instances registered by Java services through Curator appear here, and
// instances registered here appear to Curator. An instance registered over
// HTTP carries a TTL: the recipe keeps it as an ephemeral znode owned by a
// session of its own and closes that session when the caller stops renewing,
// so the instance disappears after the TTL lapses — and, if this server
// dies, once the ensemble expires the session. A renewal may reach any
// server: one that does not hold the registration takes it over.
//
// HTTP (on the admin endpoint, under http_prefix, default /v1/registry):
//   GET    /services                                    the services
//   GET    /services/{s}[?healthy][&index=N&wait=30s][&consistent]
//                                                       its instances; with index, a blocking query
//   GET    /services/{s}/events                         Server-Sent Events on every change
//   GET    /services/{s}/instances/{id}                 one instance
//   PUT    /services/{s}/instances/{id}[?ttl=30s]       register (or update) with a JSON body
//   POST   /services/{s}/instances[?ttl=30s]            register with a generated id
//   PUT    /services/{s}/instances/{id}/renew           keep it for another TTL
//   DELETE /services/{s}/instances/{id}                 deregister
// DNS (optional, dns_address): SRV and A for <s>.service.<domain>, A for
// <id>.<s>.service.<domain>; enabled instances only.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <charconv>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <string>
#include <vector>

#include "corral/common/lifeline.hpp"
#include "corral/common/random.hpp"
#include "corral/sdk/http.hpp"
#include "corral/common/json.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/recipe.hpp"
#include "corral/common/docker_client.hpp"
#include "registry_core.hpp"

namespace corral::registry {

using proto::CreateMode;
using proto::Err;
using proto::err_name;
using sdk::HttpRequest;
using sdk::HttpResponder;
using common::JsonValue;
using sdk::Status;
using Responder = std::shared_ptr<HttpResponder>;

namespace {

// The labels a container carries to be registered while it runs.
constexpr const char* kServiceLabel = "corral.service";
constexpr const char* kServicePortLabel = "corral.service-port";
constexpr const char* kServiceIdLabel = "corral.service-id";            // default: the container's name
constexpr const char* kServiceAddressLabel = "corral.service-address";  // default: its network address

std::string error_json(const std::string& message) { return "{\"error\":" + common::json_quote(message) + "}\n"; }

void reply(const Responder& r, int status, const std::string& body) { r->respond(status, "application/json", body); }
void fail(const Responder& r, int status, const std::string& message) { reply(r, status, error_json(message)); }

// "30s", "500ms", "2m", "1h" or plain milliseconds.
std::optional<int64_t> parse_duration_ms(std::string_view s) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || n < 0) return std::nullopt;
  std::string_view unit = s.substr(static_cast<size_t>(p - s.data()));
  if (unit.empty() || unit == "ms") return n;
  if (unit == "s") return n * 1000;
  if (unit == "m") return n * 60000;
  if (unit == "h") return n * 3600000;
  return std::nullopt;
}

std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> out;
  while (!p.empty()) {
    if (p.front() == '/') {
      p.remove_prefix(1);
      continue;
    }
    size_t slash = p.find('/');
    out.push_back(p.substr(0, slash));
    if (slash == std::string_view::npos) break;
    p = p.substr(slash);
  }
  return out;
}


}  // namespace

class ServiceRegistry final : public sdk::Recipe {
 public:
  Status init(sdk::PluginHost& host) override {
    host_ = &host;
    const sdk::ConfigTable& cfg = host.config();
    static const std::set<std::string> kKeys = {"base_path", "http_prefix", "default_ttl_ms", "min_ttl_ms",
                                                "max_ttl_ms", "max_payload_bytes", "dns_address", "dns_domain",
                                                "dns_ttl_s", "dns_rate_per_source", "docker_socket", "docker_interval_ms",
                                                "docker_network"};
    for (const auto& key : cfg.keys())
      if (!kKeys.count(key))
        return cfg.invalid(key, "one of base_path, http_prefix, default_ttl_ms, min_ttl_ms, max_ttl_ms, "
                                "max_payload_bytes, dns_address, dns_domain, dns_ttl_s, dns_rate_per_source, docker_socket, "
                                "docker_interval_ms, docker_network");
    auto str = [&](const char* key, const char* def, std::string& out) -> Status {
      auto v = cfg.get_string(key, def);
      if (!v) return v.status();
      out = v.value();
      return {};
    };
    auto num = [&](const char* key, int64_t def, int64_t lo, int64_t hi, int64_t& out) -> Status {
      auto v = cfg.get_int(key, def);
      if (!v) return v.status();
      if (v.value() < lo || v.value() > hi)
        return cfg.invalid(key, "an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
      out = v.value();
      return {};
    };
    for (Status st : {str("base_path", "/services", base_), str("http_prefix", "/v1/registry", prefix_),
                      str("dns_address", "", dns_address_), str("dns_domain", "corral", dns_domain_),
                      str("docker_socket", "", docker_socket_), str("docker_network", "", docker_network_),
                      num("docker_interval_ms", 2000, 100, 600000, docker_interval_ms_),
                      num("default_ttl_ms", 30000, 1, 86400000, default_ttl_ms_),
                      num("min_ttl_ms", 1000, 1, 86400000, min_ttl_ms_),
                      num("max_ttl_ms", 3600000, 1, 86400000, max_ttl_ms_),
                      num("max_payload_bytes", 65536, 64, 1000000, max_payload_),
                      num("dns_ttl_s", 5, 0, 86400, dns_ttl_s_),
                      num("dns_rate_per_source", 100, 0, 1000000, dns_rate_per_source_)})
      if (!st) return st;
    if (base_.size() < 2 || base_[0] != '/' || base_.back() == '/')
      return cfg.invalid("base_path", "an absolute znode path such as \"/services\"");
    if (prefix_.size() < 2 || prefix_[0] != '/' || prefix_.back() == '/')
      return cfg.invalid("http_prefix", "a path such as \"/v1/registry\"");
    if (min_ttl_ms_ > default_ttl_ms_ || default_ttl_ms_ > max_ttl_ms_)
      return cfg.invalid("default_ttl_ms", "between min_ttl_ms and max_ttl_ms");
    std::transform(dns_domain_.begin(), dns_domain_.end(), dns_domain_.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    while (!dns_domain_.empty() && dns_domain_.back() == '.') dns_domain_.pop_back();
    m_registrations_ = host.metrics().counter("corral_registry_registrations_total", "instances registered over HTTP");
    m_lapsed_ = host.metrics().counter("corral_registry_lapsed_total", "registrations whose TTL lapsed");
    m_local_ = host.metrics().gauge("corral_registry_local_registrations", "registrations this server keeps alive");
    m_dns_ = host.metrics().counter("corral_registry_dns_queries_total", "DNS queries answered");
    m_dns_limited_ = host.metrics().counter("corral_registry_dns_rate_limited_total",
                                            "DNS queries dropped by the per-source rate limit");
    m_http_ = host.metrics().counter("corral_registry_http_requests_total", "registry HTTP requests");
    return {};
  }

  Status start(sdk::RecipeHost& recipes) override {
    recipes_ = &recipes;
    sdk::HttpRouter* router = recipes.http();
    if (!router)
      return {sdk::Errc::invalid_argument,
              "service-registry answers on the admin endpoint: set server.admin_address (e.g. \"0.0.0.0:8080\")"};
    Status st = router->add_route(prefix_, [this, alive = alive_.ref()](const HttpRequest& req, Responder r) {
      if (alive) handle(req, std::move(r));
    });
    if (!st) return st;
    router_ = router;
    st = open_reader();
    if (!st) return st;
    if (!dns_address_.empty()) {
      st = start_dns();
      if (!st) return st;
    }
    if (!docker_socket_.empty()) {
      host_->logger().info("registering running containers labelled " + std::string(kServiceLabel) +
                           " (engine at " + docker_socket_ + ") while this server leads");
      follow_docker_events();
      docker_tick();
    }
    std::string dns;
    if (dns_) {
      auto ep = dns_->local_endpoint();
      dns = ", DNS on " + ep.address().to_string() + ":" + std::to_string(ep.port()) + " for *.service." + dns_domain_;
    }
    host_->logger().info("service registry at " + prefix_ + " on the admin endpoint, instances under " + base_ + dns);
    return {};
  }

  void stop() override {
    alive_.end();
    if (router_) router_->remove_route(prefix_);
    router_ = nullptr;
    for (auto& [key, reg] : regs_) {
      reg.timer.reset();
      if (reg.session) reg.session->close();
    }
    regs_.clear();
    for (auto& [svc, v] : views_) {
      for (auto& w : v.waiters) {
        w.timer.reset();
        w.responder->respond(503, "application/json", error_json("the server is stopping"));
      }
      for (auto& s : v.streams) s->end();
    }
    views_.clear();
    if (reader_) reader_->close();
    reader_.reset();
    if (dns_) {
      boost::system::error_code ignored;
      dns_->close(ignored);
    }
    ping_timer_.reset();
    reopen_timer_.reset();
    docker_timer_.reset();
    docker_soon_.reset();
    for (auto& w : docker_requests_)
      if (auto p = w.lock()) p->cancel();
    docker_requests_.clear();
  }

  ~ServiceRegistry() override { alive_.end(); }

 private:
  // ---------------------------------------------------------------- state
  struct Registration {
    std::string service, id;
    std::string document;  // the ServiceInstance JSON
    int64_t ttl_ms = 0;
    std::unique_ptr<sdk::TreeSession> session;
    std::unique_ptr<sdk::Executor::Timer> timer;
  };
  struct Waiter {
    Responder responder;
    bool healthy = false;
    std::unique_ptr<sdk::Executor::Timer> timer;
    uint64_t serial = 0;
  };
  struct View {
    bool exists = false;
    int64_t index = 0;
    std::vector<Instance> instances;
    bool loading = false, dirty = false;
    std::vector<std::function<void()>> on_loaded;
    std::deque<Waiter> waiters;
    std::vector<Responder> streams;
  };

  std::string service_path(std::string_view svc) const { return base_ + "/" + std::string(svc); }
  std::string instance_path(std::string_view svc, std::string_view id) const {
    return service_path(svc) + "/" + std::string(id);
  }
  static std::string key(std::string_view svc, std::string_view id) { return std::string(svc) + "/" + std::string(id); }

  // ---------------------------------------------------------------- sessions
  Status open_reader() {
    auto s = recipes_->open_session(30000, [this, alive = alive_.ref()](const proto::WatcherEvent& ev) {
      if (!alive) return;
      if (ev.type == -1) {  // session lost: reopen, and reload what is watched
        if (ev.state == static_cast<int32_t>(proto::KeeperState::sync_connected)) return;
        reader_.reset();
        // Again shortly (no leader yet, say), then reload what is watched.
        reopen_timer_ = host_->executor().schedule(std::chrono::milliseconds(500), [this, alive] {
          if (!alive || reader_) return;
          if (!open_reader()) return;
          for (auto& [svc, v] : views_) load(svc);
        });
        return;
      }
      watch_fired(ev.path);
    });
    if (!s) return s.status();
    reader_ = std::move(s.value());
    return {};
  }

  void watch_fired(const std::string& path) {
    if (path.size() <= base_.size() + 1 || path.compare(0, base_.size() + 1, base_ + "/") != 0) return;
    std::string rest = path.substr(base_.size() + 1);
    std::string svc = rest.substr(0, rest.find('/'));
    if (views_.count(svc)) load(svc);
  }

  // ---------------------------------------------------------------- views
  // Reads the service's instances (leaving watches), then runs `then`.
  void load(const std::string& svc, std::function<void()> then = nullptr) {
    View& v = views_[svc];
    if (then) v.on_loaded.push_back(std::move(then));
    if (v.loading) {
      v.dirty = true;
      return;
    }
    if (!reader_) {
      auto waiting = std::move(v.on_loaded);
      v.on_loaded.clear();
      for (auto& fn : waiting) fn();
      return;
    }
    v.loading = true;
    v.dirty = false;
    auto alive = alive_.ref();
    reader_->get_children(service_path(svc), true, [this, alive, svc](const sdk::TreeResult& r) {
      if (!alive) return;
      if (r.err == Err::no_node) {
        // Watch for it to appear.
        reader_->exists(service_path(svc), true, [](const sdk::TreeResult&) {});
        return loaded(svc, false, 0, {});
      }
      if (r.err != Err::ok) return loaded(svc, views_[svc].exists, views_[svc].index, views_[svc].instances);
      auto acc = std::make_shared<std::vector<std::pair<int64_t, std::string>>>();
      auto pending = std::make_shared<size_t>(r.children.size());
      int64_t pzxid = r.stat.pzxid;
      if (r.children.empty()) return loaded(svc, true, pzxid, {});
      for (const std::string& child : r.children) {
        reader_->get_data(service_path(svc) + "/" + child, true,
                          [this, alive, svc, acc, pending, pzxid](const sdk::TreeResult& d) {
                            if (!alive) return;
                            if (d.err == Err::ok) acc->emplace_back(d.stat.mzxid, d.data);
                            if (--*pending) return;
                            int64_t index = pzxid;
                            std::vector<Instance> list;
                            for (const auto& [mzxid, data] : *acc) {
                              index = std::max(index, mzxid);
                              auto in = parse_instance(data);
                              if (in) list.push_back(std::move(in.value()));
                            }
                            std::sort(list.begin(), list.end(),
                                      [](const Instance& a, const Instance& b) { return a.id < b.id; });
                            loaded(svc, true, index, std::move(list));
                          });
      }
    });
  }

  void loaded(const std::string& svc, bool exists, int64_t index, std::vector<Instance> list) {
    View& v = views_[svc];
    bool changed = v.exists != exists || v.index != index;
    v.exists = exists;
    v.index = index;
    v.instances = std::move(list);
    v.loading = false;
    auto waiting = std::move(v.on_loaded);
    v.on_loaded.clear();
    if (changed) notify(svc);
    for (auto& fn : waiting) fn();
    if (views_[svc].dirty) load(svc);
  }

  std::string view_json(const std::string& svc, bool healthy) {
    const View& v = views_[svc];
    std::string out = "{\"service\":" + common::json_quote(svc) + ",\"index\":" + std::to_string(v.index) + ",\"instances\":[";
    bool first = true;
    for (const Instance& in : v.instances) {
      if (healthy && !in.enabled) continue;
      out += (first ? "" : ",") + in.document.dump();
      first = false;
    }
    return out + "]}\n";
  }

  // One Server-Sent Event with the whole view (its JSON is one line).
  std::string sse_event(const std::string& svc) {
    std::string doc = view_json(svc, false);
    doc.pop_back();  // the trailing newline
    return "event: instances\ndata: " + doc + "\n\n";
  }

  void notify(const std::string& svc) {
    View& v = views_[svc];
    auto waiters = std::move(v.waiters);
    v.waiters.clear();
    for (auto& w : waiters) {
      w.timer.reset();
      reply(w.responder, 200, view_json(svc, w.healthy));
    }
    std::vector<Responder> open;
    std::string event;
    for (auto& s : v.streams) {
      if (!s->open()) continue;
      if (event.empty()) event = sse_event(svc);
      s->send(event);
      open.push_back(s);
    }
    v.streams = std::move(open);
  }

  // ---------------------------------------------------------------- HTTP
  void handle(const HttpRequest& req, Responder r) {
    m_http_->inc();
    std::string_view rest = std::string_view(req.path).substr(prefix_.size());
    auto parts = split_path(rest);
    const std::string& m = req.method;
    for (auto p : parts)
      if (p.empty()) return fail(r, 404, "empty path segment");
    if (parts.empty() || parts[0] != "services")
      return fail(r, 404, "unknown path; see " + prefix_ + "/services");
    if (parts.size() >= 2 && !valid_name(parts[1]))
      return fail(r, 400, "\"" + std::string(parts[1]) + "\" is not a service name (letters, digits, '-', '_', '.', up to 63)");
    if (parts.size() >= 4 && !valid_name(parts[3]))
      return fail(r, 400, "\"" + std::string(parts[3]) + "\" is not an instance id (letters, digits, '-', '_', '.', up to 63)");
    if (parts.size() == 1) {
      if (m != "GET") return fail(r, 405, "GET lists the services");
      return consistent(req, base_, [this, r] { list_services(r); });
    }
    std::string svc(parts[1]);
    if (parts.size() == 2) {
      if (m != "GET") return fail(r, 405, "GET lists a service's instances; PUT or POST under /instances registers");
      return consistent(req, service_path(svc), [this, r, svc, req] { get_service(req, r, svc); });
    }
    if (parts.size() == 3 && parts[2] == "events") {
      if (m != "GET") return fail(r, 405, "GET streams a service's changes");
      return stream(r, svc);
    }
    if (parts[2] != "instances") return fail(r, 404, "unknown path under " + prefix_ + "/services/" + svc);
    if (parts.size() == 3) {
      if (m == "POST") return register_instance(req, r, svc, random_id(), 201);
      if (m == "GET") return consistent(req, service_path(svc), [this, r, svc, req] { get_service(req, r, svc); });
      return fail(r, 405, "POST registers an instance with a generated id");
    }
    std::string id(parts[3]);
    if (parts.size() == 4) {
      if (m == "PUT") return register_instance(req, r, svc, id, 200);
      if (m == "DELETE") return deregister(r, svc, id);
      if (m == "GET") return consistent(req, instance_path(svc, id), [this, r, svc, id] { get_instance(r, svc, id); });
      return fail(r, 405, "PUT registers, GET reads, DELETE deregisters");
    }
    if (parts.size() == 5 && parts[4] == "renew") {
      if (m != "PUT" && m != "POST") return fail(r, 405, "PUT renews");
      return renew(req, r, svc, id);
    }
    return fail(r, 404, "unknown path");
  }

  // Runs `then` after a sync when the request asks for ?consistent.
  void consistent(const HttpRequest& req, const std::string& path, std::function<void()> then) {
    if (!req.query.count("consistent") || !reader_) return then();
    reader_->sync(path, [then = std::move(then), alive = alive_.ref()](const sdk::TreeResult&) {
      if (alive) then();
    });
  }

  void list_services(Responder r) {
    if (!reader_) return fail(r, 503, "not connected to the ensemble");
    reader_->get_children(base_, false, [r](const sdk::TreeResult& res) {
      if (res.err != Err::ok && res.err != Err::no_node)
        return fail(r, 503, std::string("reading the registry: ") + err_name(res.err));
      std::vector<std::string> names = res.children;
      std::sort(names.begin(), names.end());
      std::string out = "{\"services\":[";
      for (size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + common::json_quote(names[i]);
      reply(r, 200, out + "]}\n");
    });
  }

  void get_service(const HttpRequest& req, Responder r, const std::string& svc) {
    bool healthy = req.query.count("healthy") && req.query.at("healthy") != "false";
    std::optional<int64_t> index;
    if (auto it = req.query.find("index"); it != req.query.end()) {
      int64_t n = 0;
      auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
      if (ec != std::errc() || p != it->second.data() + it->second.size())
        return fail(r, 400, "index must be an integer (the \"index\" of an earlier answer)");
      index = n;
    }
    int64_t wait_ms = 30000;
    if (auto it = req.query.find("wait"); it != req.query.end()) {
      auto w = parse_duration_ms(it->second);
      if (!w || *w > 600000) return fail(r, 400, "wait must be a duration up to 10m, such as 30s");
      wait_ms = *w;
    }
    load(svc, [this, r, svc, healthy, index, wait_ms] {
      View& v = views_[svc];
      if (!v.exists && !index) return fail(r, 404, "no service \"" + svc + "\"");
      if (!index || v.index > *index) return reply(r, 200, view_json(svc, healthy));
      // A blocking query: answer on the next change, or when the wait ends.
      uint64_t serial = ++serial_;
      Waiter w{r, healthy, nullptr, serial};
      w.timer = host_->executor().schedule(std::chrono::milliseconds(wait_ms), [this, svc, serial] {
        View& view = views_[svc];
        for (auto it = view.waiters.begin(); it != view.waiters.end(); ++it)
          if (it->serial == serial) {
            Waiter done = std::move(*it);
            view.waiters.erase(it);
            reply(done.responder, 200, view_json(svc, done.healthy));
            return;
          }
      });
      r->on_gone([this, alive = alive_.ref(), svc, serial] {
        if (!alive) return;
        auto& ws = views_[svc].waiters;
        ws.erase(std::remove_if(ws.begin(), ws.end(), [&](const Waiter& x) { return x.serial == serial; }), ws.end());
      });
      v.waiters.push_back(std::move(w));
    });
  }

  void stream(Responder r, const std::string& svc) {
    load(svc, [this, r, svc] {
      r->stream_start(200, "text/event-stream");
      r->send(sse_event(svc));
      views_[svc].streams.push_back(r);
      keepalive();
    });
  }

  // Streams get a comment now and then, so that a client that went away is noticed.
  void keepalive() {
    if (ping_timer_) return;
    ping_timer_ = host_->executor().schedule(std::chrono::milliseconds(15000), [this] {
      ping_timer_.reset();
      bool any = false;
      for (auto& [svc, v] : views_) {
        std::vector<Responder> open;
        for (auto& s : v.streams)
          if (s->open()) {
            s->send(": keepalive\n\n");
            open.push_back(s);
          }
        v.streams = std::move(open);
        any = any || !v.streams.empty();
      }
      if (any) keepalive();
    });
  }

  void get_instance(Responder r, const std::string& svc, const std::string& id) {
    if (!reader_) return fail(r, 503, "not connected to the ensemble");
    reader_->get_data(instance_path(svc, id), false, [r, svc, id](const sdk::TreeResult& res) {
      if (res.err == Err::no_node) return fail(r, 404, "no instance \"" + id + "\" of service \"" + svc + "\"");
      if (res.err != Err::ok) return fail(r, 503, std::string("reading the registry: ") + err_name(res.err));
      reply(r, 200, res.data + "\n");
    });
  }

  std::optional<int64_t> ttl_of(const HttpRequest& req, const Responder& r) {
    auto it = req.query.find("ttl");
    if (it == req.query.end()) return default_ttl_ms_;
    auto ttl = parse_duration_ms(it->second);
    if (!ttl || *ttl < min_ttl_ms_ || *ttl > max_ttl_ms_) {
      fail(r, 400, "ttl must be a duration from " + std::to_string(min_ttl_ms_) + "ms to " +
                       std::to_string(max_ttl_ms_) + "ms, such as 30s");
      return std::nullopt;
    }
    return ttl;
  }

  void register_instance(const HttpRequest& req, Responder r, const std::string& svc, const std::string& id,
                         int created_status) {
    auto ttl = ttl_of(req, r);
    if (!ttl) return;
    if (static_cast<int64_t>(req.body.size()) > max_payload_)
      return fail(r, 413, "the instance document is larger than max_payload_bytes (" + std::to_string(max_payload_) + ")");
    auto doc = instance_document(svc, id, req.body, host_->clock().wall_ms());
    if (!doc) return fail(r, 400, doc.status().message());
    hold(svc, id, doc->dump(), *ttl, [this, r, svc, id, ttl, created_status](Err e, const std::string& document) {
      if (e != Err::ok) return fail(r, 503, std::string("registering: ") + err_name(e));
      m_registrations_->inc();
      reply(r, created_status, "{\"service\":" + common::json_quote(svc) + ",\"id\":" + common::json_quote(id) +
                                   ",\"ttl_ms\":" + std::to_string(*ttl) + ",\"instance\":" + document + "}\n");
    });
  }

  // Makes this server hold <svc>/<id> with `document` for `ttl_ms`: a session
  // of its own owns the ephemeral znode. Replaces a node someone else owns.
  void hold(const std::string& svc, const std::string& id, std::string document, int64_t ttl_ms,
            std::function<void(Err, const std::string&)> done) {
    std::string k = key(svc, id);
    Registration& reg = regs_[k];
    reg.service = svc;
    reg.id = id;
    reg.document = std::move(document);
    reg.ttl_ms = ttl_ms;
    arm(k);
    if (!reg.session) {
      // The session outlives this server by its timeout: a TTL's, or the
      // default TTL for a container's registration.
      int64_t timeout = ttl_ms > 0 ? ttl_ms : default_ttl_ms_;
      auto s = recipes_->open_session(static_cast<int32_t>(std::clamp<int64_t>(timeout, 1, INT32_MAX)),
                                      [](const proto::WatcherEvent&) {});
      if (!s) {
        regs_.erase(k);
        return done(Err::connection_loss, "");
      }
      reg.session = std::move(s.value());
      m_local_->set(static_cast<int64_t>(regs_.size()));
    }
    write_node(k, 0, std::move(done));
  }

  // Creates (or updates) the node; `attempt` bounds the replace-and-retry.
  void write_node(const std::string& k, int attempt, std::function<void(Err, const std::string&)> done) {
    auto it = regs_.find(k);
    if (it == regs_.end()) return done(Err::no_node, "");
    Registration& reg = it->second;
    std::string path = instance_path(reg.service, reg.id);
    auto alive = alive_.ref();
    sdk::TreeSession* session = reg.session.get();
    session->exists(path, false, [this, alive, k, attempt, done, path, session](const sdk::TreeResult& st) {
      if (!alive) return;
      auto it2 = regs_.find(k);
      if (it2 == regs_.end() || it2->second.session.get() != session) return done(Err::no_node, "");
      Registration& reg = it2->second;
      const std::string doc = reg.document;
      if (st.err == Err::ok && st.stat.ephemeral_owner == session->session_id()) {
        session->set_data(path, doc, -1, [done, doc](const sdk::TreeResult& w) { done(w.err, doc); });
        return;
      }
      if (st.err == Err::ok) {
        if (attempt >= 2) return done(Err::node_exists, "");
        // Someone else's (another server's registration, or Curator's):
        // take it over.
        session->remove(path, st.stat.version, [this, alive, k, attempt, done](const sdk::TreeResult&) {
          if (alive) write_node(k, attempt + 1, done);
        });
        return;
      }
      create_parents(session, service_path(reg.service), [this, alive, k, attempt, done, path, session, doc] {
        if (!alive) return;
        session->create(path, doc, CreateMode::ephemeral,
                        [this, alive, k, attempt, done, doc](const sdk::TreeResult& c) {
                          if (!alive) return;
                          if (c.err == Err::node_exists && attempt < 2) return write_node(k, attempt + 1, done);
                          done(c.err, doc);
                        });
      });
    });
  }

  void create_parents(sdk::TreeSession* session, const std::string& path, std::function<void()> then) {
    // base_path's ancestors, base_path, the service: persistent, as Curator makes them.
    auto paths = std::make_shared<std::vector<std::string>>();
    for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1))
      paths->push_back(path.substr(0, at));
    paths->push_back(path);
    auto step = std::make_shared<std::function<void(size_t)>>();
    *step = [session, paths, step, then](size_t i) {
      if (i == paths->size()) return then();
      session->create((*paths)[i], "", CreateMode::persistent,
                      [step, i](const sdk::TreeResult&) { (*step)(i + 1); });
    };
    (*step)(0);
  }

  // The TTL timer: when it fires, the registration lapses.
  void arm(const std::string& k) {
    Registration& reg = regs_[k];
    if (reg.ttl_ms <= 0) {  // a container's: held while the container runs
      reg.timer.reset();
      return;
    }
    reg.timer = host_->executor().schedule(std::chrono::milliseconds(reg.ttl_ms), [this, k] {
      auto it = regs_.find(k);
      if (it == regs_.end()) return;
      host_->logger().info("instance " + k + " lapsed: not renewed within " + std::to_string(it->second.ttl_ms) + " ms");
      m_lapsed_->inc();
      if (it->second.session) it->second.session->close();  // its ephemeral goes with it
      regs_.erase(it);
      m_local_->set(static_cast<int64_t>(regs_.size()));
    });
  }

  void renew(const HttpRequest& req, Responder r, const std::string& svc, const std::string& id) {
    std::string k = key(svc, id);
    auto it = regs_.find(k);
    std::optional<int64_t> ttl;
    if (req.query.count("ttl")) {
      ttl = ttl_of(req, r);
      if (!ttl) return;
    }
    auto answer = [r, svc, id](int64_t ttl_ms) {
      return [r, svc, id, ttl_ms](Err e, const std::string&) {
        if (e == Err::no_node) return fail(r, 404, "instance \"" + id + "\" of \"" + svc + "\" is not registered");
        if (e != Err::ok) return fail(r, 503, std::string("renewing: ") + err_name(e));
        reply(r, 200, "{\"service\":" + common::json_quote(svc) + ",\"id\":" + common::json_quote(id) +
                          ",\"ttl_ms\":" + std::to_string(ttl_ms) + "}\n");
      };
    };
    if (it != regs_.end()) {
      if (ttl) it->second.ttl_ms = *ttl;
      arm(k);
      // Still ours? (Another server may have taken it over.) write_node checks.
      return write_node(k, 0, answer(it->second.ttl_ms));
    }
    // Held elsewhere (or lapsed): take it over if it is still there.
    if (!reader_) return fail(r, 503, "not connected to the ensemble");
    reader_->get_data(instance_path(svc, id), false,
                      [this, alive = alive_.ref(), r, svc, id, ttl, answer](const sdk::TreeResult& d) {
                        if (!alive) return;
                        if (d.err == Err::no_node)
                          return fail(r, 404, "instance \"" + id + "\" of \"" + svc +
                                                  "\" is not registered (its TTL may have lapsed); register it again");
                        if (d.err != Err::ok) return fail(r, 503, std::string("renewing: ") + err_name(d.err));
                        int64_t t = ttl.value_or(default_ttl_ms_);
                        hold(svc, id, d.data, t, answer(t));
                      });
  }

  void deregister(Responder r, const std::string& svc, const std::string& id) {
    std::string k = key(svc, id);
    auto it = regs_.find(k);
    std::unique_ptr<sdk::TreeSession> session;
    if (it != regs_.end()) {
      session = std::move(it->second.session);
      regs_.erase(it);
      m_local_->set(static_cast<int64_t>(regs_.size()));
    }
    if (!reader_) return fail(r, 503, "not connected to the ensemble");
    std::shared_ptr<sdk::TreeSession> owner(std::move(session));
    reader_->remove(instance_path(svc, id), -1, [r, svc, id, owner](const sdk::TreeResult& res) {
      if (owner) owner->close();
      if (res.err == Err::no_node)
        return fail(r, 404, "no instance \"" + id + "\" of service \"" + svc + "\"");
      if (res.err != Err::ok) return fail(r, 503, std::string("deregistering: ") + err_name(res.err));
      reply(r, 200, "{\"service\":" + common::json_quote(svc) + ",\"id\":" + common::json_quote(id) + ",\"deregistered\":true}\n");
    });
  }

  // A version-4 UUID, as Curator's ServiceInstanceBuilder makes ids.
  static std::string random_id() { return common::random_uuid(); }

  // ---------------------------------------------------------------- DNS
  Status start_dns() {
    std::string host = dns_address_;
    size_t colon = host.rfind(':');
    if (colon == std::string::npos) return {sdk::Errc::invalid_argument, "recipe.service-registry.dns_address: host:port"};
    unsigned port = 0;
    std::string port_text = host.substr(colon + 1);
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || port > 65535)
      return {sdk::Errc::invalid_argument, "recipe.service-registry.dns_address: a port 0..65535 (0: any free one)"};
    host = host.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    boost::system::error_code err;
    auto addr = boost::asio::ip::make_address(host, err);
    if (err) return {sdk::Errc::invalid_argument, "recipe.service-registry.dns_address: not an IP address: " + host};
    dns_ = std::make_unique<boost::asio::ip::udp::socket>(host_->executor().io_context());
    boost::asio::ip::udp::endpoint ep(addr, static_cast<uint16_t>(port));
    dns_->open(ep.protocol(), err);
    if (!err) dns_->bind(ep, err);
    if (err) return {sdk::Errc::io_error, "DNS on " + dns_address_ + ": " + err.message()};
    receive_dns();
    return {};
  }

  void receive_dns() {
    dns_->async_receive_from(boost::asio::buffer(dns_buf_), dns_peer_,
                             [this, alive = alive_.ref()](const boost::system::error_code& ec, size_t n) {
                               if (!alive || ec == boost::asio::error::operation_aborted) return;
                               if (!ec) answer_dns(std::string(dns_buf_, n), dns_peer_);
                               receive_dns();
                             });
  }

  // Response rate limiting per source (a token bucket per address), so the
  // responder cannot be aimed at a victim whose address a flood of queries
  // claims. Queries past the rate are dropped unanswered.
  bool dns_allowed(const boost::asio::ip::address& from) {
    if (dns_rate_per_source_ <= 0) return true;
    int64_t now = host_->clock().steady_ms();
    if (dns_buckets_.size() >= kMaxDnsBuckets) {
      // Forget sources that have been quiet long enough to have a full bucket.
      std::erase_if(dns_buckets_, [&](const auto& kv) { return now - kv.second.last_ms >= 2000; });
      if (dns_buckets_.size() >= kMaxDnsBuckets) return false;
    }
    auto [it, fresh] = dns_buckets_.try_emplace(from.to_string());
    DnsBucket& b = it->second;
    double burst = 2.0 * static_cast<double>(dns_rate_per_source_);
    if (fresh) b.tokens = burst;
    else b.tokens = std::min(burst, b.tokens + static_cast<double>(now - b.last_ms) * dns_rate_per_source_ / 1000.0);
    b.last_ms = now;
    if (b.tokens < 1.0) {
      m_dns_limited_->inc();
      return false;
    }
    b.tokens -= 1.0;
    return true;
  }

  void answer_dns(std::string packet, boost::asio::ip::udp::endpoint peer) {
    auto q = parse_dns_query(packet);
    if (!q) return;  // not a query we can answer: drop, as servers do with garbage
    if (!dns_allowed(peer.address())) return;
    m_dns_->inc();
    auto send = [this, peer](std::string out) {
      auto buf = std::make_shared<std::string>(std::move(out));
      dns_->async_send_to(boost::asio::buffer(*buf), peer, [buf](const boost::system::error_code&, size_t) {});
    };
    std::string suffix = ".service." + dns_domain_;
    const std::string& name = q->name;
    if (q->klass != 1 || name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      return send(dns_response(*q, packet, 5 /* REFUSED: not our zone */, {}, {}));
    std::string head = name.substr(0, name.size() - suffix.size());
    std::string svc = head, only_id;
    if (size_t dot = head.rfind('.'); dot != std::string::npos) {
      // <id>.<service>: ids may hold dots, services too; try the longest service first.
      svc = head.substr(dot + 1);
      only_id = head.substr(0, dot);
    }
    if (!valid_dns_name(head) || !valid_name(svc)) return send(dns_response(*q, packet, 3, {}, {}));
    auto answer = [this, q = *q, packet, svc, only_id, send, name] {
      const View& v = views_[svc];
      if (!v.exists) return send(dns_response(q, packet, 3, {}, {}));
      std::vector<DnsRecord> answers, additional;
      bool found_id = only_id.empty();
      for (const Instance& in : v.instances) {
        if (!in.enabled) continue;
        if (!only_id.empty() && in.id != only_id) continue;
        found_id = true;
        auto ip = ipv4_bytes(in.address);
        std::string target = ip ? in.id + "." + svc + ".service." + dns_domain_ : in.address;
        bool want_srv = q.type == static_cast<uint16_t>(DnsType::srv) || q.type == static_cast<uint16_t>(DnsType::any);
        bool want_a = q.type == static_cast<uint16_t>(DnsType::a) || q.type == static_cast<uint16_t>(DnsType::any);
        if (want_srv && only_id.empty() && in.port > 0)
          answers.push_back({name, static_cast<uint16_t>(DnsType::srv), static_cast<uint32_t>(dns_ttl_s_), "", 1, 1,
                             static_cast<uint16_t>(in.port), target});
        if (ip && want_a)
          answers.push_back({name, static_cast<uint16_t>(DnsType::a), static_cast<uint32_t>(dns_ttl_s_), *ip});
        else if (ip && want_srv && only_id.empty())
          additional.push_back({target, static_cast<uint16_t>(DnsType::a), static_cast<uint32_t>(dns_ttl_s_), *ip});
      }
      send(dns_response(q, packet, found_id ? 0 : 3, answers, additional));
    };
    // A service already watched answers from its view. Any other name is
    // looked up without a watch, and only a service that exists gets a view:
    // queries for names that do not exist leave nothing behind.
    auto known = views_.find(svc);
    if ((known != views_.end() && known->second.exists) || !reader_) return load(svc, answer);
    reader_->exists(service_path(svc), false,
                    [this, alive = alive_.ref(), svc, answer, q = *q, packet, send](const sdk::TreeResult& r) {
                      if (!alive) return;
                      if (r.err == Err::no_node) return send(dns_response(q, packet, 3, {}, {}));
                      load(svc, answer);
                    });
  }

  // ---------------------------------------------------------------- containers
  // Registrator-style: running containers labelled corral.service=NAME and
  // corral.service-port=PORT are instances while they run. The leader (or a
  // standalone server) keeps them, so that one server owns each.
  void docker_get(const std::string& path, docker::DockerRequest::Done done,
                  std::function<void(std::string_view)> on_data = nullptr) {
    auto r = std::make_shared<docker::DockerRequest>(host_->executor().io_context(), docker_socket_, path);
    std::erase_if(docker_requests_, [](const auto& w) { return w.expired(); });
    docker_requests_.push_back(r);
    r->start([alive = alive_.ref(), done = std::move(done)](sdk::Result<docker::HttpResponse> resp) {
      if (alive) done(std::move(resp));
    }, std::move(on_data));
  }

  void docker_tick() {
    docker_timer_ = host_->executor().schedule(std::chrono::milliseconds(docker_interval_ms_), [this] { docker_tick(); });
    bool leads = recipes_->role() == sdk::Role::leading || recipes_->role() == sdk::Role::standalone;
    if (!leads) {
      // Another server keeps them; let go of any this one held.
      for (const auto& k : containers_) release(k);
      containers_.clear();
      return;
    }
    std::string filters = docker::url_encode("{\"label\":[\"" + std::string(kServiceLabel) + "\"]}");
    docker_get("/containers/json?filters=" + filters, [this](sdk::Result<docker::HttpResponse> r) {
      if (!r || r->status != 200) {
        std::string why = r ? "HTTP " + std::to_string(r->status) : r.status().message();
        if (why != docker_problem_) host_->logger().warn("listing containers failed: " + why + "; retrying");
        docker_problem_ = why;
        return;
      }
      docker_problem_.clear();
      auto list = docker::parse_container_list(r->body);
      if (!list) return host_->logger().warn(list.status().message());
      std::set<std::string> running;
      for (const auto& c : list.value()) {
        auto label = [&](const char* key) {
          auto it = c.labels.find(key);
          return it == c.labels.end() ? std::string() : it->second;
        };
        std::string svc = label(kServiceLabel), port = label(kServicePortLabel);
        std::string id = label(kServiceIdLabel);
        if (id.empty()) id = c.name.empty() ? c.id.substr(0, 12) : c.name;
        std::string address = label(kServiceAddressLabel);
        if (address.empty()) {
          auto net = docker_network_.empty() ? c.networks.begin() : c.networks.find(docker_network_);
          if (net != c.networks.end()) address = net->second;
        }
        std::string who = "container " + (c.name.empty() ? c.id.substr(0, 12) : c.name);
        auto body = address.empty() ? sdk::Result<JsonValue>(Status(sdk::Errc::invalid_argument, "it has no address"))
                                    : instance_document(svc, id, "{\"address\":" + common::json_quote(address) +
                                                                     ",\"port\":" + (port.empty() ? "null" : port) + "}",
                                                        host_->clock().wall_ms());
        if (!valid_name(svc) || !valid_name(id) || !body) {
          std::string why = !valid_name(svc) ? "\"" + svc + "\" is not a service name"
                            : !valid_name(id) ? "\"" + id + "\" is not an instance id"
                                              : body.status().message() + " (label " + kServicePortLabel + ")";
          if (docker_warned_.insert(who + why).second) host_->logger().warn(who + " is not registered: " + why);
          continue;
        }
        std::string k = key(svc, id);
        running.insert(k);
        if (containers_.count(k) && regs_.count(k)) continue;
        containers_.insert(k);
        host_->logger().info("registering " + who + " as " + k + " at " + address + ":" + port);
        hold(svc, id, body->dump(), 0, [this, k](Err e, const std::string&) {
          if (e != Err::ok) {
            host_->logger().warn("registering " + k + " failed: " + err_name(e) + "; retrying");
            containers_.erase(k);
          }
        });
      }
      std::vector<std::string> gone;
      for (const auto& k : containers_)
        if (!running.count(k)) gone.push_back(k);
      for (const auto& k : gone) {
        host_->logger().info("deregistering " + k + ": its container stopped");
        release(k);
        containers_.erase(k);
      }
    });
  }

  // Closes a container registration's session: its ephemeral goes with it.
  void release(const std::string& k) {
    auto it = regs_.find(k);
    if (it == regs_.end()) return;
    if (it->second.session) it->second.session->close();
    regs_.erase(it);
    m_local_->set(static_cast<int64_t>(regs_.size()));
  }

  // Container events make the next look come at once.
  void follow_docker_events() {
    std::string filters = docker::url_encode("{\"type\":[\"container\"],\"label\":[\"" +
                                                       std::string(kServiceLabel) + "\"]}");
    docker_get(
        "/events?filters=" + filters,
        [this](sdk::Result<docker::HttpResponse>) {
          docker_events_timer_ = host_->executor().schedule(std::chrono::milliseconds(1000), [this] { follow_docker_events(); });
        },
        [this, alive = alive_.ref()](std::string_view data) {
          if (!alive || data.find('\n') == std::string_view::npos || docker_soon_) return;
          docker_soon_ = host_->executor().schedule(std::chrono::milliseconds(100), [this] {
            docker_soon_.reset();
            docker_tick();
          });
        });
  }

  // ---------------------------------------------------------------- members
  sdk::PluginHost* host_ = nullptr;
  sdk::RecipeHost* recipes_ = nullptr;
  sdk::HttpRouter* router_ = nullptr;
  std::string base_, prefix_, dns_address_, dns_domain_;
  int64_t default_ttl_ms_ = 30000, min_ttl_ms_ = 1000, max_ttl_ms_ = 3600000, max_payload_ = 65536, dns_ttl_s_ = 5;
  std::unique_ptr<sdk::TreeSession> reader_;
  std::map<std::string, Registration> regs_;
  std::map<std::string, View> views_;
  uint64_t serial_ = 0;
  std::unique_ptr<sdk::Executor::Timer> ping_timer_, reopen_timer_, docker_timer_, docker_soon_, docker_events_timer_;
  std::string docker_socket_, docker_network_, docker_problem_;
  int64_t docker_interval_ms_ = 2000;
  std::set<std::string> containers_;  // registrations this server keeps for containers
  std::set<std::string> docker_warned_;
  std::vector<std::weak_ptr<docker::DockerRequest>> docker_requests_;
  std::unique_ptr<boost::asio::ip::udp::socket> dns_;
  char dns_buf_[1500];
  boost::asio::ip::udp::endpoint dns_peer_;
  struct DnsBucket {
    double tokens = 0;
    int64_t last_ms = 0;
  };
  static constexpr size_t kMaxDnsBuckets = 65536;
  int64_t dns_rate_per_source_ = 100;  // responses a second per source address; 0: unlimited
  std::unordered_map<std::string, DnsBucket> dns_buckets_;
  sdk::Counter *m_registrations_ = nullptr, *m_lapsed_ = nullptr, *m_dns_ = nullptr, *m_http_ = nullptr,
               *m_dns_limited_ = nullptr;
  sdk::Gauge* m_local_ = nullptr;
  corral::common::Lifeline alive_;
};

}  // namespace corral::registry

CORRAL_PLUGIN(recipe, "service-registry", corral::registry::ServiceRegistry,
              "a service registry in Curator's ServiceDiscovery layout, over HTTP (TTLs, blocking queries, "
              "Server-Sent Events) and DNS (SRV and A)")
