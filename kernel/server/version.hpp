// Corral's version, and the ZooKeeper protocol level it reports.
#pragma once

namespace corral::kernel {

inline constexpr const char* kCorralVersion = "0.1.0";
// What `srvr` and `envi` report as the ZooKeeper version: the protocol level
// Corral speaks, then Corral's own version. Clients parse the leading digits.
inline constexpr const char* kZooKeeperVersion = "3.9.2-corral-0.1.0";

}  // namespace corral::kernel
