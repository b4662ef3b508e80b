// The service registry's containers: running containers with corral.service
// labels are registered while they run (kept by the leader).
#include "service_registry.hpp"

namespace corral::registry {

void ServiceRegistry::docker_get(const std::string& path, docker::DockerRequest::Done done,
                                 std::function<void(std::string_view)> on_data) {
  auto r =
      std::make_shared<docker::DockerRequest>(host_->executor().io_context(), docker_socket_, path);
  std::erase_if(docker_requests_, [](const auto& w) { return w.expired(); });
  docker_requests_.push_back(r);
  r->start(
      [alive = alive_.ref(), done = std::move(done)](sdk::Result<docker::HttpResponse> resp) {
        if (alive) done(std::move(resp));
      },
      std::move(on_data));
}

void ServiceRegistry::docker_tick() {
  docker_timer_ = host_->executor().schedule(std::chrono::milliseconds(docker_interval_ms_),
                                             [this] { docker_tick(); });
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
      if (why != docker_problem_)
        host_->logger().warn("listing containers failed: " + why + "; retrying");
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
      auto body =
          address.empty()
              ? sdk::Result<JsonValue>(Status(sdk::Errc::invalid_argument, "it has no address"))
              : instance_document(svc, id,
                                  "{\"address\":" + common::json_quote(address) +
                                      ",\"port\":" + (port.empty() ? "null" : port) + "}",
                                  host_->clock().wall_ms());
      if (!valid_name(svc) || !valid_name(id) || !body) {
        std::string why = !valid_name(svc) ? "\"" + svc + "\" is not a service name"
                          : !valid_name(id)
                              ? "\"" + id + "\" is not an instance id"
                              : body.status().message() + " (label " + kServicePortLabel + ")";
        if (docker_warned_.insert(who + why).second)
          host_->logger().warn(who + " is not registered: " + why);
        continue;
      }
      std::string k = key(svc, id);
      running.insert(k);
      if (containers_.count(k) && regs_.count(k)) continue;
      containers_.insert(k);
      host_->logger().info("registering " + who + " as " + k + " at " + address + ":" + port);
      hold(svc, id, body->dump(), 0, {}, [this, k](Err e, const std::string&) {
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

void ServiceRegistry::release(const std::string& k) {
  auto it = regs_.find(k);
  if (it == regs_.end()) return;
  if (it->second.session) it->second.session->close();
  regs_.erase(it);
  m_local_->set(static_cast<int64_t>(regs_.size()));
}

void ServiceRegistry::follow_docker_events() {
  std::string filters = docker::url_encode("{\"type\":[\"container\"],\"label\":[\"" +
                                           std::string(kServiceLabel) + "\"]}");
  docker_get(
      "/events?filters=" + filters,
      [this](sdk::Result<docker::HttpResponse>) {
        docker_events_timer_ = host_->executor().schedule(std::chrono::milliseconds(1000),
                                                          [this] { follow_docker_events(); });
      },
      [this, alive = alive_.ref()](std::string_view data) {
        if (!alive || data.find('\n') == std::string_view::npos || docker_soon_) return;
        docker_soon_ = host_->executor().schedule(std::chrono::milliseconds(100), [this] {
          docker_soon_.reset();
          docker_tick();
        });
      });
}

}  // namespace corral::registry
