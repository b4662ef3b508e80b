// Peers: who is in the ensemble and how servers talk to each other.
//
// The kernel owns peer connections (built on the transport plugin): it dials
// and accepts them, makes each side name its server id, refuses ids that are
// not in the ensemble, and hands consensus and election plugins ordered
// message streams. Those plugins therefore stay free of sockets, and a
// simulation can substitute an in-memory PeerNetwork.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "corral/sdk/types.hpp"

namespace corral::sdk {

// One member of the ensemble, as configured or discovered.
struct PeerSpec {
  ServerId id = 0;
  std::string host;            // name or address; resolved on every dial
  uint16_t quorum_port = 0;    // Zab traffic (ZooKeeper's 2888)
  uint16_t election_port = 0;  // election traffic (ZooKeeper's 3888)
  uint16_t client_port = 0;    // 0 when not advertised
  std::string client_host;     // the client address's host; empty when only the port was given
  bool observer = false;       // receives commits, never votes
};

// Parses one member as ZooKeeper writes it after "server.N=":
// "host:quorumPort:electionPort[:participant|observer][;[clientHost:]clientPort]"
// (host may be a bracketed IPv6 address). False, with `error` saying what was
// expected, when it is malformed.
bool parse_peer_spec(ServerId id, std::string_view text, PeerSpec& out, std::string& error);
// The same form back, as ZooKeeper prints it: "host:2888:3888:participant;0.0.0.0:2181"
// (a client address given as a port alone is the wildcard address).
std::string format_peer_spec(const PeerSpec& m);

// The two independent message streams between a pair of servers.
enum class PeerChannel : uint8_t { quorum = 0, election = 1 };

class PeerListener {
 public:
  virtual ~PeerListener();
  // A whole message from `from` on the channel subscribed to, in send order.
  virtual void on_peer_message(ServerId from, BytesView message) = 0;
  // The link to `peer` came up or went down. Messages sent while it is down
  // are dropped; protocols above retry on their own timers.
  virtual void on_peer_link(ServerId peer, bool up) = 0;
};

class PeerNetwork {
 public:
  virtual ~PeerNetwork();
  // This server's id.
  virtual ServerId self() const = 0;
  // The current membership (including this server).
  virtual std::vector<PeerSpec> members() const = 0;
  // Queues `message` for `to`; dials on demand. Never blocks. Loop thread only.
  virtual void send(ServerId to, PeerChannel channel, Bytes message) = 0;
  // Drops the link to `peer` on `channel` (e.g. a follower that fell silent).
  virtual void disconnect(ServerId peer, PeerChannel channel) = 0;
  // Registers the one listener of a channel; nullptr unregisters.
  virtual void subscribe(PeerChannel channel, PeerListener* listener) = 0;
};

}  // namespace corral::sdk
