// The ensemble's membership as text: one member as ZooKeeper writes it after
// "server.N=", and /zookeeper/config (ZooKeeper's dynamic config file).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "corral/sdk/peers.hpp"
#include "corral/sdk/types.hpp"

namespace corral::kernel {

// Parses one member as ZooKeeper writes it after "server.N=":
// "host:quorumPort:electionPort[:participant|observer][;[clientHost:]clientPort]".
// False with `error` set when it is malformed.
bool parse_member(sdk::ServerId id, std::string_view text, sdk::PeerSpec& out, std::string& error);
// The same member written back.
std::string format_member(const sdk::PeerSpec& m);

// /zookeeper/config as ZooKeeper writes it: "server.N=<member>" lines by id,
// then "version=<hex>" (the zxid of the reconfig that installed it, 0 for a
// configured membership).
std::string format_dynamic_config(const std::vector<sdk::PeerSpec>& members, sdk::Zxid version);
// Reads that text back, or a reconfig's new membership ("server.N=..." lines
// or comma-separated, a "version=" line optional). Members come out sorted by
// id. False with `error` set when a line is malformed or an id repeats.
bool parse_dynamic_config(std::string_view text, std::vector<sdk::PeerSpec>& members,
                          sdk::Zxid& version, std::string& error);

}  // namespace corral::kernel
