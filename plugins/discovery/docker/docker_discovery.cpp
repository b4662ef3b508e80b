// `docker` discovery: the ensemble is the running containers that carry its
// label, found through the Docker Engine API on its unix socket.
//
//   labels:  corral.ensemble=NAME   corral.server-id=N   corral.ensemble-size=3
//   [discovery.docker]
//   socket = "/var/run/docker.sock"
//   ensemble = "NAME"      # default: this container's corral.ensemble label
//   expect = 3             # default: this container's corral.ensemble-size label
//   network = ""           # default: a network this container shares with the peer
//
// This server's id is server.id when the config names one, else its own
// container's corral.server-id label; there is no default. The server joins
// its ensemble once `expect` distinct ids run. Afterwards the engine's events
// keep addresses current: a member whose container stops is dropped from the
// links (it still counts towards the quorum) and dialed at its new address
// when it starts again.
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "corral/common/docker_api.hpp"
#include "corral/common/docker_client.hpp"
#include "corral/common/json.hpp"
#include "corral/common/lifeline.hpp"
#include "corral/sdk/discovery.hpp"
#include "corral/sdk/host.hpp"
#include "corral/sdk/plugin.hpp"

namespace corral::docker {

using sdk::Errc;
using sdk::Status;

class DockerDiscovery final : public sdk::Discovery {
 public:
  Status init(sdk::PluginHost& host) override {
    host_ = &host;
    const sdk::ConfigTable& cfg = host.config();
    static const std::set<std::string> kKeys = {"socket", "ensemble", "expect", "network",
                                                "relist_interval_ms"};
    for (const auto& key : cfg.keys())
      if (!kKeys.count(key))
        return cfg.invalid(key, "one of socket, ensemble, expect, network, relist_interval_ms");
    auto socket = cfg.get_string("socket", "/var/run/docker.sock");
    if (!socket) return socket.status();
    socket_ = socket.value();
    auto ensemble = cfg.get_string("ensemble", "");
    if (!ensemble) return ensemble.status();
    ensemble_ = ensemble.value();
    auto expect = cfg.get_int("expect", 0);
    if (!expect) return expect.status();
    if (cfg.contains("expect") && (expect.value() < 1 || expect.value() > 255))
      return cfg.invalid("expect", "the ensemble's size, 1..255");
    expect_ = expect.value();
    auto network = cfg.get_string("network", "");
    if (!network) return network.status();
    network_ = network.value();
    auto relist = cfg.get_int("relist_interval_ms", 10000);
    if (!relist) return relist.status();
    if (relist.value() < 100) return cfg.invalid("relist_interval_ms", "at least 100 milliseconds");
    relist_ms_ = relist.value();
    return {};
  }

  Status start(sdk::DiscoveryHost& dhost) override {
    dhost_ = &dhost;
    self_ = dhost.configured_self();
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    hostname_ = name;
    find_own_container(hostname_, /*tried_mountinfo=*/false);
    return {};
  }

  void stop() override {
    alive_.end();
    timer_.reset();
    events_timer_.reset();
    for (auto& r : requests_)
      if (auto p = r.lock()) p->cancel();
    requests_.clear();
  }

  ~DockerDiscovery() override { stop(); }

 private:
  void get(const std::string& path, DockerRequest::Done done,
           std::function<void(std::string_view)> on_data = nullptr) {
    auto r = std::make_shared<DockerRequest>(host_->executor().io_context(), socket_, path);
    std::erase_if(requests_, [](const std::weak_ptr<DockerRequest>& w) { return w.expired(); });
    requests_.push_back(r);
    auto alive = alive_.ref();
    r->start(
        [alive, done = std::move(done)](sdk::Result<HttpResponse> resp) {
          if (alive) done(std::move(resp));
        },
        std::move(on_data));
  }

  void find_own_container(const std::string& ref, bool tried_mountinfo) {
    get("/containers/" + url_encode(ref) + "/json", [this, ref,
                                                     tried_mountinfo](sdk::Result<HttpResponse> r) {
      if (!r)
        return fail_start("the Docker Engine at " + socket_ + " does not answer (" +
                          r.status().message() + ")");
      if (r->status == 404 && !tried_mountinfo) {
        std::ifstream in("/proc/self/mountinfo");
        std::stringstream text;
        text << in.rdbuf();
        if (auto id = container_id_from_mountinfo(text.str())) return find_own_container(*id, true);
      }
      if (r->status != 200) {
        if (self_ && !ensemble_.empty() && expect_) {
          // The config says all that the labels would; run outside a container.
          host_->logger().info("not in a container the engine knows (hostname " + hostname_ +
                               "); using server.id " + std::to_string(self_));
          return begin();
        }
        return fail_start("cannot find this server's own container (hostname \"" + hostname_ +
                          "\", HTTP " + std::to_string(r->status) +
                          "); run corrald in a container with the " + kIdLabel +
                          " label, or set server.id, [discovery.docker] ensemble and expect");
      }
      auto me = parse_container_inspect(r->body);
      if (!me) return fail_start(me.status().message());
      own_name_ = me->name;
      for (const auto& [net, ip] : me->networks) own_networks_.insert(net);
      auto label = [&](const char* key) -> std::string {
        auto it = me->labels.find(key);
        return it == me->labels.end() ? std::string() : it->second;
      };
      if (ensemble_.empty()) ensemble_ = label(kEnsembleLabel);
      if (ensemble_.empty())
        return fail_start("container " + own_name_ + " has no " + kEnsembleLabel +
                          " label and [discovery.docker] ensemble is not set");
      std::string id_text = label(kIdLabel);
      if (!id_text.empty()) {
        auto id = parse_server_id(id_text);
        if (!id)
          return fail_start("container " + own_name_ + ": " + kIdLabel + "=\"" + id_text +
                            "\" is not a server id (1..255)");
        if (self_ && self_ != *id)
          return fail_start("server.id is " + std::to_string(self_) + " but container " +
                            own_name_ + "'s " + kIdLabel + " label says " + std::to_string(*id));
        self_ = *id;
      }
      if (!self_)
        return fail_start("container " + own_name_ + " has no " + kIdLabel +
                          " label and server.id is not set: every server needs its own id");
      if (!expect_) {
        std::string size = label(kSizeLabel);
        auto n = parse_server_id(size);
        if (!n)
          return fail_start("the ensemble's size: [discovery.docker] expect, or a " +
                            std::string(kSizeLabel) + " label on container " + own_name_ +
                            (size.empty() ? "" : " (found \"" + size + "\")"));
        expect_ = *n;
      }
      host_->logger().info("this is container " + own_name_ + ", server " + std::to_string(self_) +
                           " of ensemble \"" + ensemble_ + "\" (" + std::to_string(expect_) +
                           " members)");
      begin();
    });
  }

  void fail_start(const std::string& why) {
    dhost_->discovery_failed(Status(Errc::unavailable, why));
  }

  void begin() {
    if (!network_.empty()) own_networks_ = {network_};
    follow_events();
    relist();
  }

  std::string filters(bool events) const {
    std::string f =
        "{\"label\":[" + common::json_quote(std::string(kEnsembleLabel) + "=" + ensemble_) + "]";
    if (events) f += ",\"type\":[\"container\"]";
    return url_encode(f + "}");
  }

  // Lists the running members; re-arms itself every relist_interval_ms.
  void relist() {
    timer_.reset();
    get("/containers/json?filters=" + filters(false), [this](sdk::Result<HttpResponse> r) {
      timer_ = host_->executor().schedule(std::chrono::milliseconds(joined_ ? relist_ms_ : 1000),
                                          [this] { relist(); });
      if (!r || r->status != 200) {
        std::string why = r ? "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 200)
                            : r.status().message();
        if (why != last_problem_)
          host_->logger().warn("listing containers failed: " + why + "; retrying");
        last_problem_ = why;
        return;
      }
      auto list = parse_container_list(r->body);
      if (!list) {
        host_->logger().warn(list.status().message());
        return;
      }
      Discovered d = members_from(list.value(), own_networks_);
      if (!d.conflict.empty())
        return dhost_->discovery_failed(Status(Errc::invalid_argument, d.conflict));
      for (const auto& p : d.problems)
        if (warned_.insert(p).second) host_->logger().warn(p);
      apply(std::move(d.members));
    });
  }

  void apply(std::vector<sdk::PeerSpec> members) {
    std::map<sdk::ServerId, sdk::PeerSpec> now;
    for (auto& m : members) now[m.id] = m;
    if (!joined_) {
      std::string summary =
          std::to_string(now.size()) + " of " + std::to_string(expect_) + " members running";
      bool self_seen = now.count(self_) > 0;
      if (static_cast<int64_t>(now.size()) < expect_ || !self_seen) {
        if (summary != last_wait_)
          host_->logger().info(summary +
                               (self_seen || own_name_.empty() ? "" : " (not yet this one)") +
                               "; waiting");
        last_wait_ = summary;
        return;
      }
      if (static_cast<int64_t>(now.size()) > expect_)
        host_->logger().warn(std::to_string(now.size()) +
                             " containers carry the ensemble's label but " +
                             std::to_string(expect_) + " are expected; all join");
      joined_ = true;
      known_ = now;
      dhost_->members_replaced(std::move(members), self_);
      return;
    }
    for (const auto& [id, m] : now) {
      auto it = known_.find(id);
      bool changed = it == known_.end() || it->second.host != m.host ||
                     it->second.quorum_port != m.quorum_port ||
                     it->second.election_port != m.election_port || gone_.count(id);
      if (changed && id != self_) dhost_->member_updated(m);
      gone_.erase(id);
      known_[id] = m;
    }
    for (const auto& [id, m] : known_)
      if (!now.count(id) && !gone_.count(id) && id != self_) {
        gone_.insert(id);
        dhost_->member_removed(id);
      }
  }

  // The engine's container events for the ensemble; each one triggers a
  // relist (soon, coalesced). A broken stream is reopened after a second.
  void follow_events() {
    auto alive = alive_.ref();
    get(
        "/events?filters=" + filters(true),
        [this](sdk::Result<HttpResponse> r) {
          if (!r) host_->logger().debug("event stream ended: " + r.status().message());
          events_timer_ = host_->executor().schedule(std::chrono::milliseconds(1000), [this] {
            follow_events();
            relist();
          });
        },
        [this, alive](std::string_view data) {
          if (!alive) return;
          pending_events_.append(data);
          bool any = false;
          for (size_t nl = pending_events_.find('\n'); nl != std::string::npos;
               nl = pending_events_.find('\n')) {
            auto ev = common::JsonValue::parse(std::string_view(pending_events_).substr(0, nl));
            if (ev) {
              host_->logger().debug("engine event: " + ev->get_string("Action") + " " +
                                    ev->get_string("id").substr(0, 12));
              any = true;
            }
            pending_events_.erase(0, nl + 1);
          }
          if (any && !relist_soon_) {
            relist_soon_ = host_->executor().schedule(std::chrono::milliseconds(200), [this] {
              relist_soon_.reset();
              relist();
            });
          }
        });
  }

  sdk::PluginHost* host_ = nullptr;
  sdk::DiscoveryHost* dhost_ = nullptr;
  std::string socket_, ensemble_, network_, hostname_, own_name_;
  int64_t expect_ = 0, relist_ms_ = 10000;
  sdk::ServerId self_ = 0;
  std::set<std::string> own_networks_;
  bool joined_ = false;
  std::map<sdk::ServerId, sdk::PeerSpec> known_;
  std::set<sdk::ServerId> gone_;
  std::set<std::string> warned_;
  std::string last_problem_, last_wait_, pending_events_;
  std::vector<std::weak_ptr<DockerRequest>> requests_;
  std::unique_ptr<sdk::Executor::Timer> timer_, events_timer_, relist_soon_;
  corral::common::Lifeline alive_;
};

}  // namespace corral::docker

CORRAL_PLUGIN(
    discovery, "docker", corral::docker::DockerDiscovery,
    "the running containers labelled corral.ensemble=NAME, from the Docker Engine API; ids from "
    "corral.server-id labels; follows container events")
