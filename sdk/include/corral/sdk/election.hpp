// Leader election: which server should lead, decided among the voters.
//
// An election plugin is a state machine over messages: it never opens sockets
// (it sends through the PeerNetwork's election channel) and never reads a
// clock (its host calls tick()). Zab asks it for a leader whenever it has none
// and tells it when that leader is established or lost.
#pragma once

#include <functional>

#include "corral/sdk/peers.hpp"
#include "corral/sdk/plugin.hpp"

namespace corral::sdk {

// What a server offers when it looks for a leader; votes compare by
// (epoch, zxid, server id), highest wins.
struct Candidacy {
  ServerId server_id = 0;
  Zxid last_zxid = 0;          // the last entry in its log
  uint32_t current_epoch = 0;  // the epoch of the last leader it followed
};

// The outcome of a round.
struct ElectionResult {
  ServerId leader = 0;
  Zxid leader_zxid = 0;
  uint32_t leader_epoch = 0;
  uint64_t round = 0;  // FLE's logical clock; 0 for elections without rounds
};

class ElectionHost {
 public:
  virtual ~ElectionHost();
  virtual PeerNetwork& network() = 0;
  // The round decided; the election stays quiet until look() is called again.
  // The decision may be wrong (the leader may fail to establish itself); Zab
  // then calls look() again.
  virtual void elected(const ElectionResult& result) = 0;
};

class Election : public Plugin {
 public:
  ~Election() override;
  // Subscribes to the election channel. Called once, after init().
  virtual Status start(ElectionHost& host) = 0;
  // Begins (or restarts) looking for a leader with this server's candidacy.
  virtual void look(const Candidacy& self) = 0;
  // This server is in a working ensemble led by `leader`; answer other
  // servers' notifications with that outcome so that they join it.
  virtual void settled(const ElectionResult& leader) = 0;
  // Advances timers (notification timeouts, backoff). `now_ms` is steady time.
  virtual void tick(int64_t now_ms) = 0;
  // Unsubscribes and stops sending.
  virtual void stop() = 0;
  // The one server this election always names, or 0 when it may name any
  // voter (the default). Leadership cannot be handed over under a fixed one.
  virtual ServerId fixed_leader() const;
};

}  // namespace corral::sdk
