// The module's entry point; the election lives in fle.cpp.
#include "corral/sdk/plugin.hpp"

#include "fle.hpp"

CORRAL_PLUGIN(election, "fle", corral::fle::FastLeaderElection,
              "ZooKeeper's fast leader election: votes by (epoch, zxid, server id)")
