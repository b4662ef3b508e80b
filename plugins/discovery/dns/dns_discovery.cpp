// `dns` discovery: the members are names, resolved again and again.
//
// In containers and on Kubernetes a peer's name often does not resolve when
// a server starts (its container is not up yet), and resolves to another
// address after the peer restarts. ZooKeeper resolves its server.N names
// once; here every name is looked up every `interval_ms`: a name that does
// not resolve yet is logged once and retried, and a name that resolves to a
// new address closes the links to the old one at once.
//
//   [discovery.dns]
//   interval_ms = 2000
//   # Either the config's [ensemble] servers, or a pattern for N members:
//   pattern = "corral-{ordinal}.corral-hs:2888:3888;2181"
//   replicas = 3
//   # This server's id from the trailing number of its hostname ("corral-2"),
//   # for a Kubernetes StatefulSet: id = number - ordinal_base + 1.
//   id_from_hostname = true
//   ordinal_base = 0
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "corral/common/lifeline.hpp"
#include "corral/sdk/discovery.hpp"
#include "corral/sdk/host.hpp"
#include "corral/sdk/plugin.hpp"

namespace corral::dns_discovery {

using sdk::Errc;
using sdk::Status;

// "{id}" and "{ordinal}" replaced in `pattern`.
std::string expand(std::string pattern, int64_t id, int64_t ordinal) {
  for (auto [key, value] : {std::pair<std::string, int64_t>{"{id}", id}, {"{ordinal}", ordinal}}) {
    for (size_t at = pattern.find(key); at != std::string::npos; at = pattern.find(key, at))
      pattern.replace(at, key.size(), std::to_string(value));
  }
  return pattern;
}

// The trailing decimal number of a hostname ("corral-2" -> 2), if any.
std::optional<int64_t> trailing_number(std::string_view name) {
  if (size_t dot = name.find('.'); dot != std::string_view::npos) name = name.substr(0, dot);
  size_t end = name.size(), start = end;
  while (start > 0 && name[start - 1] >= '0' && name[start - 1] <= '9') --start;
  if (start == end || end - start > 9) return std::nullopt;
  return std::stoll(std::string(name.substr(start)));
}

class DnsDiscovery final : public sdk::Discovery {
 public:
  sdk::Status init(sdk::PluginHost& host) override {
    host_ = &host;
    const sdk::ConfigTable& cfg = host.config();
    static const std::vector<std::string> kKeys = {"interval_ms", "pattern", "replicas",
                                                   "id_from_hostname", "ordinal_base"};
    for (const auto& key : cfg.keys())
      if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end())
        return cfg.invalid(key,
                           "one of interval_ms, pattern, replicas, id_from_hostname, ordinal_base");
    auto interval = cfg.get_int("interval_ms", 2000);
    if (!interval) return interval.status();
    if (interval.value() < 100 || interval.value() > 600000)
      return cfg.invalid("interval_ms", "between 100 and 600000 milliseconds");
    interval_ms_ = interval.value();
    auto pattern = cfg.get_string("pattern", "");
    if (!pattern) return pattern.status();
    pattern_ = pattern.value();
    auto replicas = cfg.get_int("replicas", 0);
    if (!replicas) return replicas.status();
    replicas_ = replicas.value();
    if (!pattern_.empty() && (replicas_ < 1 || replicas_ > 255))
      return cfg.invalid("replicas", "the ensemble's size (1..255) with a pattern");
    if (pattern_.empty() && cfg.contains("replicas"))
      return cfg.invalid("pattern", "a pattern with replicas");
    auto from_host = cfg.get_bool("id_from_hostname", false);
    if (!from_host) return from_host.status();
    id_from_hostname_ = from_host.value();
    auto base = cfg.get_int("ordinal_base", 0);
    if (!base) return base.status();
    ordinal_base_ = base.value();
    return {};
  }

  sdk::Status start(sdk::DiscoveryHost& dhost) override {
    dhost_ = &dhost;
    std::vector<sdk::PeerSpec> members;
    if (!pattern_.empty()) {
      for (int64_t id = 1; id <= replicas_; ++id) {
        sdk::PeerSpec m;
        std::string error, text = expand(pattern_, id, id - 1 + ordinal_base_);
        if (!sdk::parse_peer_spec(id, text, m, error))
          return host_->config().invalid(
              "pattern", "a member like " + error + " once expanded (found \"" + text + "\")");
        members.push_back(std::move(m));
      }
    } else {
      members = dhost.configured_members();
      if (members.empty())
        return {
            Errc::invalid_argument,
            "the members' names in [ensemble] servers, or [discovery.dns] pattern and replicas"};
    }
    sdk::ServerId self = dhost.configured_self();
    if (id_from_hostname_) {
      char name[256] = {};
      ::gethostname(name, sizeof name - 1);
      auto n = trailing_number(name);
      if (!n)
        return {Errc::invalid_argument,
                "id_from_hostname: hostname \"" + std::string(name) +
                    "\" does not end in a number (a StatefulSet pod's ordinal)"};
      sdk::ServerId from_name = *n - ordinal_base_ + 1;
      if (self && self != from_name)
        return {Errc::invalid_argument, "server.id is " + std::to_string(self) +
                                            " but hostname \"" + name + "\" makes it " +
                                            std::to_string(from_name)};
      self = from_name;
    }
    if (self <= 0)
      return {
          Errc::invalid_argument,
          "this server's id: server.id (myid, CORRAL_SERVER_ID or ZOO_MY_ID in a container), or "
          "[discovery.dns] id_from_hostname"};
    for (const auto& m : members)
      if (m.id != self) names_[m.id] = Name{m, std::nullopt, false};
    resolver_ = std::make_unique<boost::asio::ip::tcp::resolver>(host_->executor().io_context());
    dhost.members_replaced(members, self);
    if (!alive_.alive()) return {};
    round();
    return {};
  }

  void stop() override {
    alive_.end();
    timer_.reset();
    if (resolver_) resolver_->cancel();
  }

  ~DnsDiscovery() override { stop(); }

 private:
  struct Name {
    sdk::PeerSpec spec;
    std::optional<std::vector<std::string>> addresses;  // as last resolved
    bool warned = false;
  };

  // Looks every name up once; schedules the next round when all answered.
  void round() {
    if (!alive_.alive()) return;
    pending_ = names_.size();
    if (pending_ == 0) return;
    for (auto& [id, n] : names_) {
      sdk::ServerId member = id;
      auto alive = alive_.ref();
      resolver_->async_resolve(
          n.spec.host, "",
          [this, alive, member](const boost::system::error_code& ec,
                                boost::asio::ip::tcp::resolver::results_type r) {
            if (!alive) return;
            std::vector<std::string> found;
            if (!ec)
              for (const auto& e : r) found.push_back(e.endpoint().address().to_string());
            std::sort(found.begin(), found.end());
            found.erase(std::unique(found.begin(), found.end()), found.end());
            resolved(member, ec ? ec.message() : std::string(), std::move(found));
            if (--pending_ == 0)
              timer_ = host_->executor().schedule(std::chrono::milliseconds(interval_ms_),
                                                  [this] { round(); });
          });
    }
  }

  void resolved(sdk::ServerId id, const std::string& error, std::vector<std::string> found) {
    Name& n = names_[id];
    std::string who = "server " + std::to_string(id) + " (" + n.spec.host + ")";
    if (!error.empty() || found.empty()) {
      if (!n.warned) {
        n.warned = true;
        host_->logger().warn(who + (n.addresses ? " no longer resolves" : " does not resolve yet") +
                             " (" + (error.empty() ? "no addresses" : error) +
                             "); retrying every " + std::to_string(interval_ms_) + " ms");
      }
      return;
    }
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& a : v) s += (s.empty() ? "" : ", ") + a;
      return s;
    };
    if (!n.addresses) {
      host_->logger().info(who + " resolves to " + join(found));
    } else if (*n.addresses != found) {
      host_->logger().info(who + " now resolves to " + join(found) + " (was " + join(*n.addresses) +
                           ")");
      dhost_->member_updated(n.spec);
    } else if (n.warned) {
      host_->logger().info(who + " resolves again to " + join(found));
    }
    n.warned = false;
    n.addresses = std::move(found);
  }

  sdk::PluginHost* host_ = nullptr;
  sdk::DiscoveryHost* dhost_ = nullptr;
  int64_t interval_ms_ = 2000;
  std::string pattern_;
  int64_t replicas_ = 0;
  bool id_from_hostname_ = false;
  int64_t ordinal_base_ = 0;
  std::map<sdk::ServerId, Name> names_;
  size_t pending_ = 0;
  std::unique_ptr<boost::asio::ip::tcp::resolver> resolver_;
  std::unique_ptr<sdk::Executor::Timer> timer_;
  corral::common::Lifeline alive_;
};

}  // namespace corral::dns_discovery

CORRAL_PLUGIN(
    discovery, "dns", corral::dns_discovery::DnsDiscovery,
    "members by name, resolved again and again: names that do not resolve yet are retried, "
    "new addresses picked up")
