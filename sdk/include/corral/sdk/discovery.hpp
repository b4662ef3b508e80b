// Discovery: how a server learns the members of its ensemble — from the
// config list, DNS names or the Docker Engine's labels.
//
// The members of an ensemble vote, so discovery never changes the set of
// server ids once the server joins (a reconfig does, through the log).
// What discovery keeps current afterwards is where each member is: a
// container that restarts with a new address is dialed at the new one.
//
// A discoverer reports the full set first — possibly later than start(),
// e.g. once enough labelled containers run — and then changes. The server
// joins its ensemble on the first report.
#pragma once

#include <vector>

#include "corral/sdk/peers.hpp"
#include "corral/sdk/plugin.hpp"

namespace corral::sdk {

class DiscoveryHost {
 public:
  virtual ~DiscoveryHost();
  // What the server's own config says: `[ensemble] servers` (possibly empty)
  // and `server.id` (0 when the config leaves it to discovery).
  virtual std::vector<PeerSpec> configured_members() const = 0;
  virtual ServerId configured_self() const = 0;
  // The complete membership and this server's id in it. The first call lets
  // the server join its ensemble; later calls update members' addresses.
  virtual void members_replaced(std::vector<PeerSpec> members, ServerId self) = 0;
  // One member's address changed: a new spec, or the same name now resolving
  // elsewhere. Links to it close and the next message dials it afresh.
  virtual void member_updated(const PeerSpec& member) = 0;
  // A member is gone for now (its container stopped). It still counts
  // towards the quorum; its links close until it is updated again.
  virtual void member_removed(ServerId id) = 0;
  // Discovery cannot go on (e.g. two containers claim one id): the server
  // stops with this error.
  virtual void discovery_failed(const Status& why) = 0;
};

class Discovery : public Plugin {
 public:
  ~Discovery() override;
  // Reports the first full set (at once or later) and keeps reporting
  // changes until stop(). An error here fails the server's start.
  virtual Status start(DiscoveryHost& host) = 0;
  virtual void stop() = 0;
};

}  // namespace corral::sdk
