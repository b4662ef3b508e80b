// Discovery: how a server learns the members of its ensemble — from the
// config list, DNS names or the Docker Engine's labels.
//
// A discoverer reports the full set first, then changes: a member added or
// changed by id, or removed. The kernel feeds the result to its PeerNetwork.
#pragma once

#include <vector>

#include "corral/sdk/peers.hpp"
#include "corral/sdk/plugin.hpp"

namespace corral::sdk {

class DiscoveryHost {
 public:
  virtual ~DiscoveryHost();
  // The complete membership; replaces whatever was known.
  virtual void members_replaced(std::vector<PeerSpec> members) = 0;
  // One member appeared or its address changed.
  virtual void member_updated(const PeerSpec& member) = 0;
  virtual void member_removed(ServerId id) = 0;
};

class Discovery : public Plugin {
 public:
  ~Discovery() override;
  // Reports the first full set (possibly later, e.g. while names do not
  // resolve yet) and keeps reporting changes until stop().
  virtual Status start(DiscoveryHost& host) = 0;
  virtual void stop() = 0;
};

}  // namespace corral::sdk
