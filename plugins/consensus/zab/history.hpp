// Sync planning: how a server whose log ends at some zxid is brought in line
// with the leader's history (DIFF, TRUNC+DIFF or SNAP+DIFF). Pure: table
// tests in tests/unit/plugins/consensus/zab/zab_history_test.cpp.
#pragma once

#include <vector>

#include "corral/sdk/types.hpp"
#include "zab_messages.hpp"

namespace corral::zab {

// True when a peer whose log ends at `peer_last` can only be synced with a
// snapshot: the history this server can replay begins after `floor` (its
// newest snapshot), and the peer is behind it.
inline bool needs_snapshot(sdk::Zxid peer_last, sdk::Zxid floor) { return peer_last < floor; }

// The plan for a peer whose log ends at `peer_last`, given `history`, every
// entry this server holds after `floor`, in zxid order (needs_snapshot must
// be false). The peer holds every entry up to the newest one of ours at or
// before its last: one leader per epoch gives each zxid one entry, and a
// history is a prefix-closed chain. If its last is not such an entry, its
// log holds a tail no quorum accepted, cut with TRUNC. Either way the entries
// after that point follow (DIFF).
SyncPlan plan_diff(std::vector<sdk::LogEntry> history, sdk::Zxid floor, sdk::Zxid peer_last);

}  // namespace corral::zab
