// `static`: the leader is fixed in configuration. Every server names it at
// once; followers wait for it (Zab retries until it answers), and the
// ensemble has no leader while it is down. Zab's discovery still makes the
// fixed leader adopt the newest history of its quorum, so a leader that
// restarts behind its followers loses nothing they committed.
#pragma once

#include "corral/sdk/election.hpp"

namespace corral::static_election {

class StaticElection final : public sdk::Election {
 public:
  sdk::Status init(sdk::PluginHost& host) override;
  sdk::Status start(sdk::ElectionHost& host) override;
  void look(const sdk::Candidacy& self) override;
  void settled(const sdk::ElectionResult&) override {}
  void tick(int64_t now_ms) override;
  void stop() override { running_ = false; }
  sdk::ServerId fixed_leader() const override { return leader_; }

  void set_leader(sdk::ServerId id) { leader_ = id; }

 private:
  sdk::ElectionHost* ehost_ = nullptr;
  sdk::ServerId leader_ = 0;
  bool running_ = false, pending_ = false;
  uint64_t round_ = 0;
};

}  // namespace corral::static_election
