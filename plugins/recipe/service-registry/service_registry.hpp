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
//
// The recipe's rooms: this header (the class), service_registry.cpp (its
// life, sessions and views), registry_http.cpp, registry_dns.cpp and
// registry_containers.cpp; registry_core.cpp holds the pure parts.
#pragma once

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <charconv>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "corral/common/docker_client.hpp"
#include "corral/common/json.hpp"
#include "corral/common/lifeline.hpp"
#include "corral/common/random.hpp"
#include "corral/sdk/http.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/recipe.hpp"
#include "registry_core.hpp"

namespace corral::registry {

using common::JsonValue;
using proto::CreateMode;
using proto::Err;
using proto::err_name;
using sdk::HttpRequest;
using sdk::HttpResponder;
using sdk::Status;
using Responder = std::shared_ptr<HttpResponder>;

// The labels a container carries to be registered while it runs.
inline constexpr const char* kServiceLabel = "corral.service";
inline constexpr const char* kServicePortLabel = "corral.service-port";
inline constexpr const char* kServiceIdLabel =
    "corral.service-id";  // default: the container's name
inline constexpr const char* kServiceAddressLabel =
    "corral.service-address";  // default: its network address

inline std::string error_json(const std::string& message) {
  return "{\"error\":" + common::json_quote(message) + "}\n";
}

inline void reply(const Responder& r, int status, const std::string& body) {
  r->respond(status, "application/json", body);
}
inline void fail(const Responder& r, int status, const std::string& message) {
  reply(r, status, error_json(message));
}

// "30s", "500ms", "2m", "1h" or plain milliseconds.
inline std::optional<int64_t> parse_duration_ms(std::string_view s) {
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

inline std::vector<std::string_view> split_path(std::string_view p) {
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

class ServiceRegistry final : public sdk::Recipe {
 public:
  Status init(sdk::PluginHost& host) override;

  Status start(sdk::RecipeHost& recipes) override;

  void stop() override;

  ~ServiceRegistry() override;

 private:
  // ---------------------------------------------------------------- state
  struct Registration {
    std::string service, id;
    std::string document;  // the ServiceInstance JSON
    int64_t ttl_ms = 0;
    int64_t deadline_ms = 0;  // steady ms at which it lapses unless renewed (0: never)
    std::unique_ptr<sdk::TreeSession> session;
    std::vector<proto::Id> caller;  // whom its writes act as
    std::unique_ptr<sdk::Executor::Timer> timer;
  };
  // A fresh tree session for a registration (its timeout: the TTL's).
  bool open_registration_session(Registration& reg);
  struct Waiter {
    Responder responder;
    bool healthy = false;
    std::unique_ptr<sdk::Executor::Timer> timer;
    uint64_t serial = 0;
  };
  struct View {
    bool exists = false;
    bool known = false;  // read from the tree at least once (else `exists` says nothing)
    int64_t index = 0;
    std::vector<Instance> instances;
    bool loading = false, dirty = false;
    std::vector<std::function<void()>> on_loaded;        // answered by the load in flight
    std::vector<std::function<void()>> after_next_load;  // asked while it was in flight
    std::deque<Waiter> waiters;
    std::vector<Responder> streams;
  };

  std::string service_path(std::string_view svc) const;
  std::string instance_path(std::string_view svc, std::string_view id) const;
  static std::string key(std::string_view svc, std::string_view id);

  // ---------------------------------------------------------------- sessions
  Status open_reader();

  void watch_fired(const std::string& path);

  // ---------------------------------------------------------------- views
  // Reads the service's instances (leaving watches), then runs `then`.
  void load(const std::string& svc, std::function<void()> then = nullptr);

  void loaded(const std::string& svc, bool exists, int64_t index, std::vector<Instance> list);

  std::string view_json(const std::string& svc, bool healthy);

  // One Server-Sent Event with the whole view (its JSON is one line).
  std::string sse_event(const std::string& svc);

  void notify(const std::string& svc);

  // ---------------------------------------------------------------- HTTP
  void handle(const HttpRequest& req, Responder r);

  // Runs `then` after a sync when the request asks for ?consistent; answers
  // 503 itself while this server has no session with the ensemble.
  void consistent(const HttpRequest& req, const Responder& r, const std::string& path,
                  std::function<void()> then);

  void list_services(Responder r);

  void get_service(const HttpRequest& req, Responder r, const std::string& svc);

  void stream(Responder r, const std::string& svc);

  // Streams get a comment now and then, so that a client that went away is noticed.
  void keepalive();

  void get_instance(Responder r, const std::string& svc, const std::string& id);

  std::optional<int64_t> ttl_of(const HttpRequest& req, const Responder& r);

  void register_instance(const HttpRequest& req, Responder r, const std::string& svc,
                         const std::string& id, int created_status);

  // Makes this server hold <svc>/<id> with `document` for `ttl_ms`: a session
  // of its own owns the ephemeral znode. Replaces a node someone else owns.
  // The tree checks its writes against `caller` (an HTTP caller's
  // identities; empty for the registry's own, a container's).
  void hold(const std::string& svc, const std::string& id, std::string document, int64_t ttl_ms,
            const std::vector<proto::Id>& caller,
            std::function<void(Err, const std::string&)> done);

  // `done`, which first puts back what this server held for `k` (or drops
  // a registration that did not exist) when the write failed: a caller the
  // tree refuses changes nothing here.
  std::function<void(Err, const std::string&)> keep_unless_written(
      const std::string& k, std::function<void(Err, const std::string&)> done);

  // Creates (or updates) the node; `attempt` bounds the replace-and-retry.
  void write_node(const std::string& k, int attempt,
                  std::function<void(Err, const std::string&)> done);

  void create_parents(std::function<sdk::TreeSession*()> current, const std::string& path,
                      const std::vector<proto::Id>& caller, std::function<void(Err)> then);

  // The TTL timer: when it fires, the registration lapses.
  void arm(const std::string& k);

  void renew(const HttpRequest& req, Responder r, const std::string& svc, const std::string& id);

  void deregister(const HttpRequest& req, Responder r, const std::string& svc,
                  const std::string& id);

  // Who may do what (see the header): false after answering 401 when the
  // request needs credentials it does not carry.
  bool allowed(const HttpRequest& req, const Responder& r);

  // A version-4 UUID, as Curator's ServiceInstanceBuilder makes ids.
  static std::string random_id();

  // ---------------------------------------------------------------- DNS
  Status start_dns();

  void receive_dns();

  // Response rate limiting per source (a token bucket per address), so the
  // responder cannot be aimed at a victim whose address a flood of queries
  // claims. Queries past the rate are dropped unanswered.
  bool dns_allowed(const boost::asio::ip::address& from);

  void answer_dns(std::string packet, boost::asio::ip::udp::endpoint peer);

  // ---------------------------------------------------------------- containers
  // Registrator-style: running containers labelled corral.service=NAME and
  // corral.service-port=PORT are instances while they run. The leader (or a
  // standalone server) keeps them, so that one server owns each.
  void docker_get(const std::string& path, docker::DockerRequest::Done done,
                  std::function<void(std::string_view)> on_data = nullptr);

  void docker_tick();

  // Closes a container registration's session: its ephemeral goes with it.
  void release(const std::string& k);

  // Container events make the next look come at once.
  void follow_docker_events();

  // ---------------------------------------------------------------- members
  sdk::PluginHost* host_ = nullptr;
  sdk::RecipeHost* recipes_ = nullptr;
  sdk::HttpRouter* router_ = nullptr;
  std::string base_, prefix_, dns_address_, dns_domain_;
  // Requests without credentials may change the registry (then the tree's
  // ACLs alone decide, and what they create is open to all), and read it.
  bool anonymous_writes_ = false, anonymous_reads_ = true;
  int64_t default_ttl_ms_ = 30000, min_ttl_ms_ = 1000, max_ttl_ms_ = 3600000, max_payload_ = 65536,
          dns_ttl_s_ = 5;
  std::unique_ptr<sdk::TreeSession> reader_;
  std::map<std::string, Registration> regs_;
  std::map<std::string, View> views_;
  uint64_t serial_ = 0;
  std::unique_ptr<sdk::Executor::Timer> ping_timer_, reopen_timer_, docker_timer_, docker_soon_,
      docker_events_timer_;
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
  sdk::Counter *m_registrations_ = nullptr, *m_lapsed_ = nullptr, *m_dns_ = nullptr,
               *m_http_ = nullptr, *m_dns_limited_ = nullptr;
  sdk::Gauge* m_local_ = nullptr;
  corral::common::Lifeline alive_;
};

}  // namespace corral::registry
