#include "fle.hpp"

#include "corral/common/msgpack.hpp"

namespace corral::fle {

using sdk::Errc;
using sdk::PeerChannel;
using sdk::ServerId;
using sdk::Status;

namespace {
constexpr int64_t kVersion = 1;
}

FastLeaderElection::~FastLeaderElection() = default;

Status FastLeaderElection::init(sdk::PluginHost& host) {
  host_ = &host;
  const sdk::ConfigTable& cfg = host.config();
  for (const std::string& key : cfg.keys())
    if (key != "finalize_wait_ms" && key != "min_notify_interval_ms" &&
        key != "max_notify_interval_ms")
      return cfg.invalid(
          key,
          "one of finalize_wait_ms, min_notify_interval_ms, max_notify_interval_ms (unknown key)");
  auto get = [&](const char* key, int64_t& out, int64_t min) -> Status {
    auto v = cfg.get_int(key, out);
    if (!v) return v.status();
    if (v.value() < min)
      return cfg.invalid(key, "at least " + std::to_string(min) + " milliseconds");
    out = v.value();
    return {};
  };
  if (Status st = get("finalize_wait_ms", opt_.finalize_wait_ms, 0); !st) return st;
  if (Status st = get("min_notify_interval_ms", opt_.min_notify_interval_ms, 1); !st) return st;
  if (Status st = get("max_notify_interval_ms", opt_.max_notify_interval_ms, 1); !st) return st;
  if (opt_.max_notify_interval_ms < opt_.min_notify_interval_ms)
    return cfg.invalid("max_notify_interval_ms", "at least min_notify_interval_ms");
  return {};
}

Status FastLeaderElection::start(sdk::ElectionHost& host) {
  ehost_ = &host;
  sdk::PeerNetwork& net = host.network();
  self_ = net.self();
  observer_ = !is_voter(self_);
  net.subscribe(PeerChannel::election, this);
  running_ = true;
  return {};
}

void FastLeaderElection::stop() {
  if (!running_) return;
  running_ = looking_ = false;
  ehost_->network().subscribe(PeerChannel::election, nullptr);
}

bool FastLeaderElection::is_voter(ServerId id) const {
  for (const auto& m : ehost_->network().members())
    if (m.id == id) return !m.observer;
  return false;
}

size_t FastLeaderElection::quorum() const {
  size_t voters = 0;
  for (const auto& m : ehost_->network().members()) voters += m.observer ? 0 : 1;
  return voters / 2 + 1;
}

bool FastLeaderElection::better(const Vote& a, const Vote& b) {
  if (a.epoch != b.epoch) return a.epoch > b.epoch;
  if (a.zxid != b.zxid) return a.zxid > b.zxid;
  return a.leader > b.leader;
}

FastLeaderElection::State FastLeaderElection::my_state() const {
  if (looking_) return State::looking;
  if (observer_) return State::observing;
  return decided_.leader == self_ ? State::leading : State::following;
}

void FastLeaderElection::send_vote(ServerId to) {
  const Vote& v = looking_ ? proposal_ : decided_;
  sdk::Bytes msg;
  common::MsgpackWriter w(msg);
  w.array(6);
  w.integer(kVersion);
  w.integer(static_cast<int64_t>(round_));
  w.integer(static_cast<int>(my_state()));
  w.integer(v.leader);
  w.integer(v.zxid);
  w.integer(v.epoch);
  ehost_->network().send(to, PeerChannel::election, std::move(msg));
}

void FastLeaderElection::broadcast() {
  last_sent_ms_ = now_;
  for (const auto& m : ehost_->network().members())
    if (m.id != self_) send_vote(m.id);
}

void FastLeaderElection::propose(const Vote& v) {
  proposal_ = v;
  finalize_at_ = -1;
  if (!observer_) received_[self_] = Heard{v, round_, State::looking};
  broadcast();
}

void FastLeaderElection::look(const sdk::Candidacy& self) {
  if (!running_) return;
  candidacy_ = self;
  observer_ = !is_voter(self_);  // a membership change may have changed this server's part
  looking_ = true;
  looking_since_ = clock_known_ ? now_ : -1;  // before the first tick: set by it
  ++round_;
  received_.clear();
  out_of_election_.clear();
  interval_ms_ = opt_.min_notify_interval_ms;
  // An observer proposes no one and adopts the participants' choice.
  propose(observer_ ? Vote{} : Vote{self.server_id, self.last_zxid, self.current_epoch});
  if (!observer_ && has_quorum(received_, proposal_)) finalize_at_ = now_ + opt_.finalize_wait_ms;
}

void FastLeaderElection::settled(const sdk::ElectionResult& leader) {
  looking_ = false;
  finalize_at_ = -1;
  decided_ = Vote{leader.leader, leader.leader_zxid, leader.leader_epoch};
  // Its part may have changed since it looked (an observer made a voter
  // follows on, and may lead after a handover): tell others the part it has.
  observer_ = !is_voter(self_);
}

bool FastLeaderElection::has_quorum(const std::map<ServerId, Heard>& votes, const Vote& v) const {
  size_t agree = 0;
  for (const auto& [id, h] : votes) {
    if (!is_voter(id)) continue;
    // Looking servers agree on the whole vote; servers already in an
    // ensemble agree when they name the same leader.
    bool same = h.state == State::looking ? h.vote == v : h.vote.leader == v.leader;
    if (same) ++agree;
  }
  return v.leader != 0 && agree >= quorum();
}

bool FastLeaderElection::leader_confirmed(const std::map<ServerId, Heard>& votes,
                                          const Vote& v) const {
  if (v.leader == self_) return !observer_;
  auto it = votes.find(v.leader);
  return it != votes.end() && it->second.state == State::leading;
}

void FastLeaderElection::decide(const Vote& v) {
  looking_ = false;
  finalize_at_ = -1;
  decided_ = v;
  // Tell everyone at once, so that servers still looking hear the outcome.
  broadcast();
  ehost_->elected(sdk::ElectionResult{v.leader, v.zxid, v.epoch, round_});
}

void FastLeaderElection::on_peer_message(ServerId from, sdk::BytesView message) {
  if (!running_ || from == self_) return;
  common::MsgpackReader r(message);
  uint32_t n = r.array();
  int64_t version = r.integer(), round = r.integer(), state = r.integer();
  Vote v;
  v.leader = r.integer();
  v.zxid = r.integer();
  int64_t epoch = r.integer();
  if (!r.ok() || n != 6 || version != kVersion || round < 0 || state < 0 || state > 3 ||
      epoch < 0 || epoch > UINT32_MAX) {
    host_->logger().warn("ignoring a malformed election message from server " +
                         std::to_string(from));
    return;
  }
  v.epoch = static_cast<uint32_t>(epoch);
  Heard h{v, static_cast<uint64_t>(round), static_cast<State>(state)};
  if (!looking_) {
    // Settled: tell a looking server who leads.
    if (h.state == State::looking) send_vote(from);
    return;
  }
  if (h.state == State::looking) {
    if (!is_voter(from)) {
      send_vote(from);
      return;
    }
    if (h.round > round_) {
      round_ = h.round;
      received_.clear();
      Vote mine = observer_
                      ? Vote{}
                      : Vote{candidacy_.server_id, candidacy_.last_zxid, candidacy_.current_epoch};
      propose(better(v, mine) ? v : mine);
    } else if (h.round < round_) {
      send_vote(from);
      return;
    } else if (better(v, proposal_)) {
      propose(v);
    }
    received_[from] = h;
    if (finalize_at_ < 0 && has_quorum(received_, proposal_))
      finalize_at_ = now_ + opt_.finalize_wait_ms;
    return;
  }
  // A server that leads, and has been heard saying so while no quorum of
  // this server's voters agreed on anything for a while, is followed all the
  // same: this server's view of the membership may be out of date (it missed
  // a reconfig), and Zab's own quorums keep following a wrong leader safe;
  // the sync that follows brings the membership up to date.
  if (h.state == State::leading && v.leader == from && looking_since_ >= 0 &&
      now_ - looking_since_ >= 2 * opt_.max_notify_interval_ms) {
    host_->logger().info("following server " + std::to_string(from) +
                         ", which says it leads, after " + std::to_string(now_ - looking_since_) +
                         " ms without a quorum of this server's view of the voters");
    round_ = std::max(round_, h.round);
    decide(v);
    return;
  }
  if (h.state == State::observing || !is_voter(from)) return;
  // `from` is in an ensemble already.
  if (h.round == round_) {
    received_[from] = h;
    if (has_quorum(received_, v) && leader_confirmed(received_, v)) {
      decide(v);
      return;
    }
  }
  out_of_election_[from] = h;
  if (has_quorum(out_of_election_, v) && leader_confirmed(out_of_election_, v) &&
      (v.leader != self_ || h.round == round_)) {
    round_ = std::max(round_, h.round);
    decide(v);
  }
}

void FastLeaderElection::tick(int64_t now_ms) {
  now_ = now_ms;
  const bool first = !clock_known_;
  clock_known_ = true;
  if (!running_ || !looking_) return;
  if (looking_since_ < 0) looking_since_ = now_;
  // A quorum heard before the clock was known waits its whole finalize
  // wait from now, not from the clock's zero.
  if (first && finalize_at_ >= 0) finalize_at_ = now_ + opt_.finalize_wait_ms;
  if (first) last_sent_ms_ = now_;
  if (finalize_at_ >= 0 && now_ >= finalize_at_) {
    if (has_quorum(received_, proposal_)) {
      decide(proposal_);
      return;
    }
    finalize_at_ = -1;
  }
  // Re-send on a backoff while looking, whatever else is heard: a looking
  // observer answering this server forever must not starve the voters of
  // its vote.
  if (now_ - last_sent_ms_ >= interval_ms_) {
    broadcast();
    interval_ms_ = std::min(interval_ms_ * 2, opt_.max_notify_interval_ms);
  }
}

}  // namespace corral::fle
