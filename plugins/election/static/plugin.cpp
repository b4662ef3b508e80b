// The module's entry point; the election lives in static_election.cpp.
#include "corral/sdk/plugin.hpp"

#include "static_election.hpp"

CORRAL_PLUGIN(election, "static", corral::static_election::StaticElection,
              "the leader is fixed in configuration ([election.static] leader)")
