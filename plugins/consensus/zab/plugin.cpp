// The module's entry point; the protocol lives in zab.cpp.
#include "corral/sdk/plugin.hpp"

#include "zab.hpp"

CORRAL_PLUGIN(consensus, "zab", corral::zab::Zab,
              "ZooKeeper's atomic broadcast across an ensemble (leader, followers, observers)")
