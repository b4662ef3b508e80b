// The service registry's life (init, start, stop), its reading session and
// the views of each service it keeps up to date through watches.
#include "service_registry.hpp"

namespace corral::registry {

Status ServiceRegistry::init(sdk::PluginHost& host) {
  host_ = &host;
  const sdk::ConfigTable& cfg = host.config();
  static const std::set<std::string> kKeys = {
      "base_path",      "http_prefix",         "default_ttl_ms", "min_ttl_ms",
      "max_ttl_ms",     "max_payload_bytes",   "dns_address",    "dns_domain",
      "dns_ttl_s",      "dns_rate_per_source", "docker_socket",  "docker_interval_ms",
      "docker_network", "anonymous_writes",    "anonymous_reads"};
  for (const auto& key : cfg.keys())
    if (!kKeys.count(key))
      return cfg.invalid(key,
                         "one of base_path, http_prefix, default_ttl_ms, min_ttl_ms, max_ttl_ms, "
                         "max_payload_bytes, dns_address, dns_domain, dns_ttl_s, "
                         "dns_rate_per_source, docker_socket, "
                         "docker_interval_ms, docker_network, anonymous_writes, anonymous_reads");
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
      return cfg.invalid(key,
                         "an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    out = v.value();
    return {};
  };
  for (Status st :
       {str("base_path", "/services", base_), str("http_prefix", "/v1/registry", prefix_),
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
  for (auto [key, out] : {std::pair{"anonymous_writes", &anonymous_writes_},
                          std::pair{"anonymous_reads", &anonymous_reads_}}) {
    auto v = cfg.get_bool(key, *out);
    if (!v) return v.status();
    *out = v.value();
  }
  if (base_.size() < 2 || base_[0] != '/' || base_.back() == '/')
    return cfg.invalid("base_path", "an absolute znode path such as \"/services\"");
  if (prefix_.size() < 2 || prefix_[0] != '/' || prefix_.back() == '/')
    return cfg.invalid("http_prefix", "a path such as \"/v1/registry\"");
  if (min_ttl_ms_ > default_ttl_ms_ || default_ttl_ms_ > max_ttl_ms_)
    return cfg.invalid("default_ttl_ms", "between min_ttl_ms and max_ttl_ms");
  std::transform(dns_domain_.begin(), dns_domain_.end(), dns_domain_.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (!dns_domain_.empty() && dns_domain_.back() == '.') dns_domain_.pop_back();
  m_registrations_ = host.metrics().counter("corral_registry_registrations_total",
                                            "instances registered over HTTP");
  m_lapsed_ =
      host.metrics().counter("corral_registry_lapsed_total", "registrations whose TTL lapsed");
  m_local_ = host.metrics().gauge("corral_registry_local_registrations",
                                  "registrations this server keeps alive");
  m_dns_ = host.metrics().counter("corral_registry_dns_queries_total", "DNS queries answered");
  m_dns_limited_ = host.metrics().counter("corral_registry_dns_rate_limited_total",
                                          "DNS queries dropped by the per-source rate limit");
  m_http_ = host.metrics().counter("corral_registry_http_requests_total", "registry HTTP requests");
  return {};
}

Status ServiceRegistry::start(sdk::RecipeHost& recipes) {
  recipes_ = &recipes;
  sdk::HttpRouter* router = recipes.http();
  if (!router)
    return {sdk::Errc::invalid_argument,
            "service-registry answers on the admin endpoint: set server.admin_address (e.g. "
            "\"0.0.0.0:8080\")"};
  Status st =
      router->add_route(prefix_, [this, alive = alive_.ref()](const HttpRequest& req, Responder r) {
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
    dns = ", DNS on " + ep.address().to_string() + ":" + std::to_string(ep.port()) +
          " for *.service." + dns_domain_;
  }
  host_->logger().info("service registry at " + prefix_ +
                       " on the admin endpoint, instances under " + base_ + dns);
  return {};
}

void ServiceRegistry::stop() {
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

ServiceRegistry::~ServiceRegistry() { alive_.end(); }

std::string ServiceRegistry::service_path(std::string_view svc) const {
  return base_ + "/" + std::string(svc);
}

std::string ServiceRegistry::instance_path(std::string_view svc, std::string_view id) const {
  return service_path(svc) + "/" + std::string(id);
}

std::string ServiceRegistry::key(std::string_view svc, std::string_view id) {
  return std::string(svc) + "/" + std::string(id);
}

Status ServiceRegistry::open_reader() {
  auto s =
      recipes_->open_session(30000, [this, alive = alive_.ref()](const proto::WatcherEvent& ev) {
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

void ServiceRegistry::watch_fired(const std::string& path) {
  if (path.size() <= base_.size() + 1 || path.compare(0, base_.size() + 1, base_ + "/") != 0)
    return;
  std::string rest = path.substr(base_.size() + 1);
  std::string svc = rest.substr(0, rest.find('/'));
  if (views_.count(svc)) load(svc);
}

void ServiceRegistry::load(const std::string& svc, std::function<void()> then) {
  View& v = views_[svc];
  if (v.loading) {
    // The load in flight may have read before what the caller wants to see
    // (its own registration, a sync it just made): it waits for the next.
    if (then) v.after_next_load.push_back(std::move(then));
    v.dirty = true;
    return;
  }
  if (then) v.on_loaded.push_back(std::move(then));
  // A load that starts now starts after whatever those asked for.
  for (auto& fn : v.after_next_load) v.on_loaded.push_back(std::move(fn));
  v.after_next_load.clear();
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
    if (r.err == Err::ok || r.err == Err::no_node) views_[svc].known = true;
    if (r.err == Err::no_node) {
      // Watch for it to appear.
      reader_->exists(service_path(svc), true, [](const sdk::TreeResult&) {});
      return loaded(svc, false, 0, {});
    }
    if (r.err != Err::ok)
      return loaded(svc, views_[svc].exists, views_[svc].index, views_[svc].instances);
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
                          std::sort(
                              list.begin(), list.end(),
                              [](const Instance& a, const Instance& b) { return a.id < b.id; });
                          loaded(svc, true, index, std::move(list));
                        });
    }
  });
}

void ServiceRegistry::loaded(const std::string& svc, bool exists, int64_t index,
                             std::vector<Instance> list) {
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
  View& after = views_[svc];
  if (after.dirty && !after.loading) {
    after.on_loaded = std::move(after.after_next_load);
    after.after_next_load.clear();
    load(svc);
  }
}

std::string ServiceRegistry::view_json(const std::string& svc, bool healthy) {
  const View& v = views_[svc];
  std::string out = "{\"service\":" + common::json_quote(svc) +
                    ",\"index\":" + std::to_string(v.index) + ",\"instances\":[";
  bool first = true;
  for (const Instance& in : v.instances) {
    if (healthy && !in.enabled) continue;
    out += (first ? "" : ",") + in.document.dump();
    first = false;
  }
  // The TTLs of the instances this server holds, as of now.
  out += "],\"leases\":{";
  const int64_t now = host_->clock().steady_ms();
  first = true;
  for (auto it = regs_.lower_bound(key(svc, "")); it != regs_.end(); ++it) {
    const Registration& reg = it->second;
    if (reg.service != svc) break;
    if (reg.deadline_ms == 0) continue;
    out += (first ? "" : ",") + common::json_quote(reg.id) +
           ":{\"ttl_ms\":" + std::to_string(reg.ttl_ms) +
           ",\"expires_in_ms\":" + std::to_string(std::max<int64_t>(0, reg.deadline_ms - now)) +
           "}";
    first = false;
  }
  return out + "}}\n";
}

std::string ServiceRegistry::sse_event(const std::string& svc) {
  std::string doc = view_json(svc, false);
  doc.pop_back();  // the trailing newline
  return "event: instances\ndata: " + doc + "\n\n";
}

void ServiceRegistry::notify(const std::string& svc) {
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

}  // namespace corral::registry

CORRAL_PLUGIN(
    recipe, "service-registry", corral::registry::ServiceRegistry,
    "a service registry in Curator's ServiceDiscovery layout, over HTTP (TTLs, blocking queries, "
    "Server-Sent Events) and DNS (SRV and A)")
