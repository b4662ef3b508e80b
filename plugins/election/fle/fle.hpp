// `fle`: ZooKeeper's fast leader election.
//
// Each looking server proposes a vote (epoch, zxid, server id) and sends it
// to every member; a vote replaces another when it is greater in that order.
// Notifications carry a round (the logical clock): a newer round resets what
// was heard, an older one is answered with the current vote. When the votes
// heard in this round from a quorum of participants agree with this server's
// proposal, it waits `finalize_wait_ms` for a better vote and then decides.
// Servers that already follow a leader answer a looking server with their
// vote and state, so a server that (re)joins a working ensemble decides as
// soon as a quorum of them, the leader among them, agree. Observers take
// part by listening: their own votes count for nothing.
//
// A state machine: messages in through PeerListener, time through tick().
#pragma once

#include <cstdint>
#include <map>

#include "corral/sdk/election.hpp"

namespace corral::fle {

struct FleOptions {
  int64_t finalize_wait_ms = 200;         // ZooKeeper's finalizeWait
  int64_t min_notify_interval_ms = 100;   // first re-send of the vote when nothing is heard
  int64_t max_notify_interval_ms = 2000;  // re-sends back off up to this
};

class FastLeaderElection final : public sdk::Election, private sdk::PeerListener {
 public:
  FastLeaderElection() = default;
  ~FastLeaderElection() override;

  sdk::Status init(sdk::PluginHost& host) override;
  sdk::Status start(sdk::ElectionHost& host) override;
  void look(const sdk::Candidacy& self) override;
  void settled(const sdk::ElectionResult& leader) override;
  void tick(int64_t now_ms) override;
  void stop() override;

  void set_options(const FleOptions& o) { opt_ = o; }
  uint64_t round() const { return round_; }

 private:
  enum class State : uint8_t { looking = 0, following = 1, leading = 2, observing = 3 };
  struct Vote {
    sdk::ServerId leader = 0;
    sdk::Zxid zxid = 0;
    uint32_t epoch = 0;
    bool operator==(const Vote& o) const {
      return leader == o.leader && zxid == o.zxid && epoch == o.epoch;
    }
  };
  struct Heard {
    Vote vote;
    uint64_t round = 0;
    State state = State::looking;
  };

  void on_peer_message(sdk::ServerId from, sdk::BytesView message) override;
  void on_peer_link(sdk::ServerId, bool) override {}

  static bool better(const Vote& a, const Vote& b);  // a beats b
  bool is_voter(sdk::ServerId id) const;
  size_t quorum() const;
  State my_state() const;
  void send_vote(sdk::ServerId to);
  void broadcast();
  void propose(const Vote& v);
  // True when a quorum of participants in `votes` agree on `v`.
  bool has_quorum(const std::map<sdk::ServerId, Heard>& votes, const Vote& v) const;
  // A decision for someone else's leadership needs that leader to say it leads.
  bool leader_confirmed(const std::map<sdk::ServerId, Heard>& votes, const Vote& v) const;
  void decide(const Vote& v);

  sdk::PluginHost* host_ = nullptr;
  sdk::ElectionHost* ehost_ = nullptr;
  FleOptions opt_;
  sdk::ServerId self_ = 0;
  bool observer_ = false;
  bool running_ = false, looking_ = false;
  int64_t now_ = 0;
  uint64_t round_ = 0;
  sdk::Candidacy candidacy_;
  Vote proposal_;
  std::map<sdk::ServerId, Heard> received_;         // votes of this round from looking servers
  std::map<sdk::ServerId, Heard> out_of_election_;  // votes of servers that follow or lead
  int64_t interval_ms_ = 0, last_sent_ms_ = 0;
  int64_t looking_since_ = 0;  // when the current look began (-1: at the next tick)
  bool clock_known_ = false;   // a tick has told the time
  int64_t finalize_at_ = -1;   // when the current proposal may be decided
  Vote decided_;
  bool decided_leader_is_self_ = false;
};

}  // namespace corral::fle
