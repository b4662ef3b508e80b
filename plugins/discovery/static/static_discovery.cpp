// `static` discovery: the members are the config's `[ensemble] servers` and
// this server is `server.id`. The same as naming no discovery plugin, made
// explicit (and the base a bundle can rely on).
#include "corral/sdk/discovery.hpp"
#include "corral/sdk/host.hpp"
#include "corral/sdk/plugin.hpp"

namespace corral::static_discovery {

class StaticDiscovery final : public sdk::Discovery {
 public:
  sdk::Status init(sdk::PluginHost& host) override {
    for (const auto& key : host.config().keys())
      return host.config().invalid(
          key, "no keys: static discovery reads [ensemble] servers and server.id");
    return {};
  }

  sdk::Status start(sdk::DiscoveryHost& host) override {
    auto members = host.configured_members();
    if (members.empty())
      return {sdk::Errc::invalid_argument,
              "the ensemble's members in [ensemble] servers, e.g. [\"1=node1:2888:3888\", "
              "\"2=node2:2888:3888\", "
              "\"3=node3:2888:3888\"]"};
    if (host.configured_self() == 0)
      return {sdk::Errc::invalid_argument,
              "this server's id in server.id (or myid in the data directory)"};
    host.members_replaced(std::move(members), host.configured_self());
    return {};
  }

  void stop() override {}
};

}  // namespace corral::static_discovery

CORRAL_PLUGIN(discovery, "static", corral::static_discovery::StaticDiscovery,
              "the ensemble's members as [ensemble] servers lists them")
