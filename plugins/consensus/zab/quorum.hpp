// Quorum arithmetic for Zab: who votes, whether a set of servers is a quorum,
// and how far a quorum's acknowledgements reach.
//
// While a membership change is logged but not yet applied, every decision
// needs a majority of the voters in effect *and* of the voters the change
// installs, as ZooKeeper counts with its last seen config. Pure: no clock, no
// I/O, no state beyond what it is given (table tests in
// tests/unit/plugins/consensus/zab/zab_quorum_test.cpp).
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "corral/sdk/peers.hpp"
#include "corral/sdk/types.hpp"

namespace corral::zab {

// The highest zxid that at least `n` of `acks` have reached; 0 when there
// are fewer than `n` (or `n` is 0).
sdk::Zxid reached_by(std::vector<sdk::Zxid> acks, size_t n);

class Quorum {
 public:
  // `voters`: the voting members in effect. `change_zxid`: a logged membership
  // change not yet applied (0: none), which installs `next_voters` (viewed,
  // not copied: they must outlive the Quorum, which lives for one decision).
  Quorum(std::vector<sdk::ServerId> voters, sdk::Zxid change_zxid = 0,
         std::span<const sdk::ServerId> next_voters = {});
  // The voters among `members` (observers excluded).
  static std::vector<sdk::ServerId> voters_of(const std::vector<sdk::PeerSpec>& members);

  size_t majority() const { return voters_.size() / 2 + 1; }
  size_t next_majority() const { return next_.size() / 2 + 1; }
  bool changing() const { return change_zxid_ != 0; }
  sdk::Zxid change_zxid() const { return change_zxid_; }
  bool is_voter(sdk::ServerId id) const;
  bool is_next_voter(sdk::ServerId id) const;

  // True when the servers `in` accepts hold a majority of the voters and,
  // while a change is pending, a majority of the voters it installs.
  bool contains(const std::function<bool(sdk::ServerId)>& in) const;

  // One server's acknowledgement: the last zxid durable on it. `voting`: it
  // counts towards the majority in effect (the leader, and each established
  // learner that is not an observer).
  struct Ack {
    sdk::ServerId id = 0;
    sdk::Zxid zxid = 0;
    bool voting = false;
  };
  // How far the leader may commit, given every established server's
  // acknowledgement and the leader's last logged zxid: the highest zxid a
  // majority of voters reached; entries from a pending change on also need a
  // majority of the voters it installs (whatever their part today). 0 when
  // no majority acknowledged anything yet.
  sdk::Zxid commit_point(const std::vector<Ack>& acks, sdk::Zxid last_logged) const;

 private:
  std::vector<sdk::ServerId> voters_;
  sdk::Zxid change_zxid_ = 0;
  std::span<const sdk::ServerId> next_;
};

}  // namespace corral::zab
