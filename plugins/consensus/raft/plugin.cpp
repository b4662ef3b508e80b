// The module's entry point; the protocol lives in raft.cpp.
#include "corral/sdk/plugin.hpp"

#include "raft.hpp"

CORRAL_PLUGIN(consensus, "raft", corral::raft::Raft,
              "Raft across an ensemble: pre-vote, check-quorum, ReadIndex syncs, learners")
