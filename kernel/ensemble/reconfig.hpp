// The reconfig policy: what membership a reconfig request asks for, and
// whether the leader may propose it now, checked in ZooKeeper's order.
// Pure: the leader's state comes in as a ReconfigState (table tests in
// tests/unit/kernel/ensemble/reconfig_test.cpp).
#pragma once

#include <string>
#include <vector>

#include "corral/proto/codes.hpp"
#include "corral/proto/records.hpp"
#include "corral/sdk/peers.hpp"
#include "corral/sdk/types.hpp"

namespace corral::kernel {

struct ReconfigState {
  bool enabled = false;                // ensemble.reconfig_enabled
  bool session_alive = true;           // the requesting session exists
  bool pending = false;                // a reconfig proposed and not yet applied
  sdk::Zxid version = 0;               // the membership's version
  std::vector<sdk::PeerSpec> members;  // the membership in effect
  sdk::ServerId self = 0;              // the leader
  // Learners that acknowledged NEWLEADER, followers and observers: an
  // observer the change makes a voter acknowledges proposals from the change
  // on, so it counts toward the new voters' quorum.
  std::vector<sdk::ServerId> synced_learners;
  bool may_write_config = false;  // the requester may write /zookeeper/config
};

struct ReconfigPlan {
  proto::Err err = proto::Err::ok;
  std::vector<sdk::PeerSpec> next;  // on ok: the new membership, by id
  std::string why;                  // on a refusal: why, for the log
};

// The plan for `req` (incremental: joining/leaving; or a whole new
// membership). Refusals, in this order: reconfig_disabled, session_expired,
// reconfig_in_progress, bad_version, bad_arguments (a malformed or clashing
// member, no participant left), new_config_no_quorum (a quorum of the
// new voters must already follow this leader), no_auth.
ReconfigPlan plan_reconfig(const proto::ReconfigRequest& req, const ReconfigState& state);

}  // namespace corral::kernel
