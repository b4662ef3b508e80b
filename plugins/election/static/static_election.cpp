#include "static_election.hpp"

#include <string>

namespace corral::static_election {

using sdk::Errc;
using sdk::Status;

Status StaticElection::init(sdk::PluginHost& host) {
  const sdk::ConfigTable& cfg = host.config();
  for (const std::string& key : cfg.keys())
    if (key != "leader") return cfg.invalid(key, "leader (unknown key)");
  if (!cfg.contains("leader"))
    return cfg.invalid("leader", "the id of the server that always leads, e.g. leader = 1");
  auto id = cfg.get_int("leader", 0);
  if (!id) return id.status();
  if (id.value() <= 0) return cfg.invalid("leader", "a positive server id");
  leader_ = id.value();
  return {};
}

Status StaticElection::start(sdk::ElectionHost& host) {
  ehost_ = &host;
  bool found = false;
  for (const auto& m : host.network().members()) {
    if (m.id != leader_) continue;
    found = true;
    if (m.observer)
      return {Errc::invalid_argument,
              "election.static.leader = " + std::to_string(leader_) + " is an observer"};
  }
  if (!found)
    return {Errc::invalid_argument, "election.static.leader = " + std::to_string(leader_) +
                                        " is not a member of the ensemble"};
  running_ = true;
  return {};
}

// Decided at the next tick rather than from inside look(), so that the
// caller's state change completes first.
void StaticElection::look(const sdk::Candidacy&) {
  if (!running_) return;
  pending_ = true;
  ++round_;
}

void StaticElection::tick(int64_t) {
  if (!running_ || !pending_) return;
  pending_ = false;
  ehost_->elected(sdk::ElectionResult{leader_, 0, 0, round_});
}

}  // namespace corral::static_election
