// The Raft core: start and stop, terms and elections (pre-vote, votes,
// check-quorum stickiness), membership, messages in, time, and the calls the
// kernel makes. The log is in raft_log.cpp, the leader's side in
// raft_leader.cpp, the follower's in raft_follower.cpp.
#include "raft.hpp"

#include <algorithm>
#include <limits>

#include "raft_internal.hpp"

namespace corral::raft {

using sdk::Errc;
using sdk::LogEntry;
using sdk::PeerChannel;
using sdk::Role;
using sdk::ServerId;
using sdk::Status;
using sdk::Zxid;

Raft::Raft(uint64_t seed)
    : rng_(seed ? seed : std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32)) {}

Raft::~Raft() { alive_.end(); }

Status Raft::init(sdk::PluginHost& host) {
  host_ = &host;
  const sdk::ConfigTable& cfg = host.config();
  for (const std::string& key : cfg.keys())
    if (key != "tick_ms" && key != "election_ticks" && key != "max_forwarded_writes" &&
        key != "max_sync_bytes")
      return cfg.invalid(
          key,
          "one of tick_ms, election_ticks, max_forwarded_writes, max_sync_bytes (unknown key)");
  auto tick = cfg.get_int("tick_ms", host.server().tick_ms);
  if (!tick) return tick.status();
  if (tick.value() < 1) return cfg.invalid("tick_ms", "a positive number of milliseconds");
  auto election = cfg.get_int("election_ticks", opt_.election_ticks);
  if (!election) return election.status();
  if (election.value() < 2 || election.value() > 1000)
    return cfg.invalid("election_ticks", "between 2 and 1000 ticks");
  auto fwd = cfg.get_int("max_forwarded_writes", static_cast<int64_t>(opt_.max_forwarded));
  if (!fwd) return fwd.status();
  if (fwd.value() < 1 || fwd.value() > 10000000)
    return cfg.invalid("max_forwarded_writes", "between 1 and 10000000");
  opt_.tick_ms = tick.value();
  opt_.election_ticks = election.value();
  auto sync_bytes = cfg.get_int("max_sync_bytes", static_cast<int64_t>(opt_.max_sync_bytes));
  if (!sync_bytes) return sync_bytes.status();
  if (sync_bytes.value() < (int64_t{1} << 20) || sync_bytes.value() > (int64_t{1} << 40))
    return cfg.invalid("max_sync_bytes", "between 1048576 (1 MiB) and 1099511627776 (1 TiB)");
  opt_.max_forwarded = static_cast<size_t>(fwd.value());
  opt_.max_sync_bytes = static_cast<uint64_t>(sync_bytes.value());
  return {};
}

Status Raft::start(sdk::ConsensusHost& host, const sdk::RecoveredState& r) {
  chost_ = &host;
  net_ = host.peers();
  if (!net_)
    return {Errc::invalid_argument,
            "raft replicates across an ensemble: list its members in [ensemble] servers"};
  self_ = net_->self();
  refresh_members();
  bool member = false;
  for (const auto& m : members_) {
    if (m.id == self_) member = true;
    if (m.id <= 0 || m.id > std::numeric_limits<uint32_t>::max())
      return {Errc::invalid_argument, "raft takes server ids from 1 to 4294967295; " +
                                          std::to_string(m.id) + " is outside"};
  }
  if (!member)
    return {Errc::invalid_argument,
            "server id " + std::to_string(self_) + " is not in the ensemble"};
  term_ = r.accepted_epoch;
  voted_for_ = static_cast<ServerId>(r.current_epoch);
  log_base_ = last_applied_ = commit_ = r.snapshot_zxid;
  Status st = chost_->storage().read_log(log_base_, [&](const LogEntry& e) {
    if (e.zxid > last_logged()) {
      log_bytes_ += e.body.size();
      log_.push_back(e);
    }
    return true;
  });
  if (!st) return st;
  for (const LogEntry& e : log_)
    if (auto m = chost_->membership_in(e)) pending_configs_.emplace_back(e.zxid, std::move(*m));
  if (sdk::zxid_epoch(last_logged()) > term_) {
    // The term is saved before any entry of it is logged; a log ahead of it
    // means the epochs file is not this log's.
    return {Errc::corrupt, "the log ends at " + hex(last_logged()) + ", in term " +
                               std::to_string(sdk::zxid_epoch(last_logged())) +
                               ", after the saved term " + std::to_string(term_)};
  }
  last_durable_ = acked_sent_ = last_logged();
  net_->subscribe(PeerChannel::quorum, this);
  running_ = true;
  now_ = host_->clock().steady_ms();
  last_leader_contact_ = now_;
  fwd_nonce_ = rng_() >> 1;
  // Sync ids differ from those of this server's earlier runs (the leader
  // tells queued ones apart by them).
  next_sync_id_ = static_cast<int64_t>(rng_() >> 2) + 1;
  // The first pre-vote comes within a tick, not an election timeout: a
  // server that starts knows of no leader, and a pre-vote is harmless where
  // one leads (its voters refuse). An ensemble started at once elects in
  // about a tick, as Zab's does at once.
  election_due_ = now_ + 50 + std::uniform_int_distribution<int64_t>(0, opt_.tick_ms)(rng_);
  host_->logger().info("starting as " + std::string(observer_ ? "an observer" : "a voter") +
                       " in term " + std::to_string(term_) + " with last zxid " +
                       hex(last_logged()) + " (" + std::to_string(log_.size()) +
                       " logged entries wait for a leader)");
  if (host.election())
    host_->logger().info("raft elects its leaders itself: the [election] plugin takes no part");
  return {};
}

bool Raft::link_down(ServerId peer) const {
  auto it = links_down_.find(peer);
  return it != links_down_.end() && now_ - it->second < opt_.election_ticks * opt_.tick_ms;
}

void Raft::stop() {
  if (!running_) return;
  running_ = false;
  links_down_.clear();
  alive_.end();
  net_->subscribe(PeerChannel::quorum, nullptr);
  progress_.clear();
  reads_.clear();
  remote_reads_.clear();
  applied_waiters_.clear();
  sync_requests_.clear();
  forwarded_.clear();
  transfer_done_ = nullptr;
  holding_ = frozen_ = false;
  handover_zxid_ = 0;
  held_.clear();
  held_bytes_ = 0;
  held_syncs_.clear();
  hold_acks_.clear();
  hold_unserving_.clear();
  state_ = State::follower;
  leader_ = serving_leader_ = 0;
  role_ = Role::looking;
}

// ---------------------------------------------------------------- roles

bool Raft::save_term(uint32_t term, ServerId vote) {
  if (term == term_ && vote == voted_for_) return true;
  Status st = chost_->storage().save_epochs(term, static_cast<uint32_t>(vote));
  if (!st) {
    host_->logger().warn("cannot save term " + std::to_string(term) + ": " + st.to_string());
    return false;
  }
  term_ = term;
  voted_for_ = vote;
  if (incoming_term_ != 0 && incoming_term_ != term_) {
    drop_incoming_snapshot();  // a copy from an earlier term is never continued
  }
  return true;
}

void Raft::set_role(Role role, ServerId leader, bool seamless) {
  if (role == role_ && leader == serving_leader_) return;
  if (!seamless && role_ != Role::looking && role != Role::looking && leader != serving_leader_) {
    // A server moves from one leader to another through `looking`, so the
    // kernel closes the connections whose writes may have gone with the old.
    // (A follower made an observer, or back, keeps its leader and clients.)
    role_ = Role::looking;
    serving_leader_ = 0;
    chost_->role_changed(Role::looking, 0, term_);
  }
  role_ = role;
  serving_leader_ = leader;
  chost_->role_changed(role, leader, term_);
}

void Raft::reset_election_timer() {
  int64_t t = opt_.election_ticks * opt_.tick_ms;
  election_due_ = now_ + t + std::uniform_int_distribution<int64_t>(0, t - 1)(rng_);
}

bool Raft::heard_leader_recently() const {
  if (state_ == State::leader) return true;
  return leader_ != 0 && now_ - last_leader_contact_ < opt_.election_ticks * opt_.tick_ms;
}

bool Raft::can_campaign() const {
  // A voter of any membership in force may stand: it needs a quorum of
  // each, and a leader that applies a change leaving it out steps down.
  // (Only a voter of the newest would deadlock when the one server whose
  // log holds a pending change is a voter of the old membership alone.)
  // A server that is a voter of none stands only when no leader has been
  // heard of for three election timeouts: its log may hold the entries the
  // voters need (a leader voted out after it logged more), and once elected
  // it hands over to a voter at once.
  bool voter = is_voter_anywhere(self_) ||
               now_ - last_leader_contact_ >= 3 * opt_.election_ticks * opt_.tick_ms;
  // And only with its whole log durable, so that it leads with the log it
  // would recover (after storage refused appends, once all is written again).
  return voter && !rewrite_pending_ && appends_in_flight_ == 0 && !snapshot_in_flight_ &&
         !snapshot_unsaved_;
}

void Raft::lose_leader(const std::string& why) {
  drop_incoming_snapshot();  // a copy half received from that leader is of no use now
  if (leader_ != 0 && leader_ != self_)
    host_->logger().info("no longer following server " + std::to_string(leader_) + ": " + why);
  leader_ = 0;
  synced_ = false;
  matched_ = 0;
  if (handover_pending()) {
    // A handover: this server keeps its clients (and its syncs, asked
    // again of the next leader) until it serves under one.
    acked_sent_ = 0;
    return;
  }
  if (holding_) end_hold(false);
  fail_follower_waits(Status(Errc::unavailable, "the leader was lost: " + why));
  set_role(Role::looking, 0);
}

void Raft::become_follower(uint32_t term, ServerId leader, const std::string& why) {
  bool new_term = term > term_;
  if (new_term && !save_term(term, 0)) return;
  bool was_leader = state_ == State::leader;
  // A pre-candidate that hears from the leader it had again: back to it.
  bool same_leader =
      !new_term && leader != 0 && leader == leader_ && state_ == State::pre_candidate;
  if (was_leader) {
    host_->logger().info("stepping down as leader of term " + std::to_string(term_) + ": " + why);
    progress_.clear();
    forward_in_.clear();
    auto reads = std::move(reads_);
    reads_.clear();
    remote_reads_.clear();
    for (auto& r : reads) {
      if (!r.done) continue;
      if (handover_pending())
        held_syncs_.push_back(std::move(r.done));  // answered under the next leader
      else
        answer(std::move(r.done), Status(Errc::unavailable, "the leader stepped down: " + why));
    }
    // A handover this leader started is answered once it serves under the
    // next leader (on_append), or at its deadline.
    transfer_target_ = 0;
    timeout_sent_ = false;
    frozen_ = false;
    hold_acks_.clear();
    hold_unserving_.clear();
    if (transfer_done_ && !transfer_follow_)
      finish_transfer(Status(Errc::unavailable, "the leader stepped down: " + why));
  }
  if (!same_leader &&
      (state_ != State::follower || (leader_ != leader && leader_ != 0) || was_leader || new_term))
    lose_leader(why);
  state_ = State::follower;
  votes_.clear();
  if (leader != 0 && leader_ != leader) {
    leader_ = leader;
    matched_ = 0;
    synced_ = false;
    fwd_nonce_ = rng_() >> 1;
    fwd_next_seq_ = 0;
    if (election_started_ >= 0) {
      last_election_ms_ = now_ - election_started_;
      election_started_ = -1;
    }
  }
  // A leader that handed over serves its clients as a follower of the
  // server taking over (as a Zab leader becomes a learner of the next).
  // (Its leader is named once it serves under one.)
  if (was_leader && handover_pending() && role_ == Role::leading)
    set_role(observer_ ? Role::observing : Role::following, leader, true);
}

void Raft::start_pre_vote() {
  // The leader is given up only once the pre-vote wins (start_election):
  // a pre-vote the voters refuse (they still hear the leader) leaves this
  // server following it, clients and all.
  if (election_started_ < 0) election_started_ = now_;
  ++elections_;
  state_ = State::pre_candidate;
  votes_.clear();
  votes_[self_] = true;
  reset_election_timer();
  if (quorum_of([&](ServerId v) { return votes_.count(v) > 0; })) {
    start_election(false);
    return;
  }
  Msg m;
  m.type = MsgType::pre_vote;
  m.term = term_ + 1;
  m.zxid = last_logged();
  for (ServerId v : all_voters())
    if (v != self_) send(v, m);
}

void Raft::start_election(bool transfer) {
  if (term_ == std::numeric_limits<uint32_t>::max()) {
    host_->logger().error("the term cannot go above 4294967295");
    return;
  }
  if (!save_term(term_ + 1, self_)) {
    state_ = State::follower;
    reset_election_timer();
    return;
  }
  if (election_started_ < 0) election_started_ = now_;
  if (leader_ != 0) lose_leader("standing for election in term " + std::to_string(term_));
  state_ = State::candidate;
  votes_.clear();
  votes_[self_] = true;
  reset_election_timer();
  host_->logger().info("standing for election in term " + std::to_string(term_) +
                       " with last zxid " + hex(last_logged()) +
                       (transfer ? " (handed the leadership)" : ""));
  if (quorum_of([&](ServerId v) { return votes_.count(v) > 0; })) {
    become_leader();
    return;
  }
  Msg m;
  m.type = MsgType::vote;
  m.term = term_;
  m.zxid = last_logged();
  m.flag = transfer;
  for (ServerId v : all_voters())
    if (v != self_) send(v, m);
}

void Raft::on_pre_vote(ServerId from, const Msg& m) {
  Msg reply;
  reply.type = MsgType::pre_vote_reply;
  // Whether this server votes is the candidate's membership to say, not
  // this server's: it may not have logged the change that made it a voter.
  // A vote the candidate's membership does not count decides nothing.
  bool grant = m.term > term_ && m.zxid >= last_logged() && !heard_leader_recently();
  reply.term = grant ? m.term : term_;
  reply.granted = grant;
  send(from, reply);
}

void Raft::on_vote(ServerId from, const Msg& m) {
  Msg reply;
  reply.type = MsgType::vote_reply;
  if (m.term > term_ && !m.flag && heard_leader_recently()) {
    // A leader is alive as far as this server knows: a candidate that could
    // not hear it must not depose it (check-quorum's lease).
    reply.term = term_;
    send(from, reply);
    return;
  }
  if (m.term > term_)
    become_follower(m.term, 0,
                    "server " + std::to_string(from) + " stands in term " + std::to_string(m.term));
  if (m.term == term_ && (voted_for_ == 0 || voted_for_ == from) && m.zxid >= last_logged() &&
      state_ == State::follower) {
    if (save_term(term_, from)) {
      reply.granted = true;
      reset_election_timer();
    }
  }
  reply.term = term_;
  send(from, reply);
}

void Raft::on_vote_reply(ServerId from, const Msg& m) {
  if (m.type == MsgType::pre_vote_reply) {
    if (state_ != State::pre_candidate) return;
    if (m.granted && m.term == term_ + 1) {
      votes_[from] = true;
    } else if (!m.granted && m.term > term_) {
      become_follower(m.term, 0,
                      "server " + std::to_string(from) + " is in term " + std::to_string(m.term));
      return;
    }
  } else {
    if (m.term > term_) {
      become_follower(m.term, 0,
                      "server " + std::to_string(from) + " is in term " + std::to_string(m.term));
      return;
    }
    if (state_ != State::candidate || m.term != term_ || !m.granted) return;
    votes_[from] = true;
  }
  if (!quorum_of([&](ServerId v) { return votes_.count(v) > 0; })) return;
  if (state_ == State::pre_candidate)
    start_election(false);
  else
    become_leader();
}

// ---------------------------------------------------------------- membership

void Raft::refresh_members() {
  members_ = net_->members();
  observer_ = true;
  for (const auto& m : members_)
    if (m.id == self_) observer_ = m.observer;
  if (state_ != State::leader) return;
  // The leader tracks every member but itself.
  for (auto it = progress_.begin(); it != progress_.end();) {
    bool still = false;
    for (const auto& m : members_)
      if (m.id == it->first) still = true;
    it = still ? std::next(it) : progress_.erase(it);
  }
  for (const auto& m : members_) {
    if (m.id == self_) continue;
    auto [it, fresh] = progress_.try_emplace(m.id);
    it->second.id = m.id;
    it->second.observer = m.observer;
    if (fresh) {
      it->second.sent = last_logged();
      it->second.last_heard = now_;
    }
  }
}

std::vector<ServerId> Raft::voters() const {
  std::vector<ServerId> out;
  for (const auto& m : members_)
    if (!m.observer) out.push_back(m.id);
  return out;
}

bool Raft::is_voter(ServerId id) const {
  for (const auto& m : members_)
    if (m.id == id) return !m.observer;
  return false;
}

std::vector<std::vector<ServerId>> Raft::quorum_sets() const {
  std::vector<std::vector<ServerId>> out{voters()};
  for (const auto& [z, members] : pending_configs_) {
    std::vector<ServerId> vs;
    for (const auto& s : members)
      if (!s.observer) vs.push_back(s.id);
    out.push_back(std::move(vs));
  }
  return out;
}

bool Raft::quorum_of(const std::function<bool(ServerId)>& counts) const {
  for (const auto& vs : quorum_sets()) {
    size_t n = 0;
    for (ServerId v : vs)
      if (counts(v)) ++n;
    if (n < vs.size() / 2 + 1) return false;
  }
  return true;
}

std::vector<ServerId> Raft::all_voters() const {
  std::vector<ServerId> out;
  for (const auto& vs : quorum_sets())
    for (ServerId v : vs)
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  return out;
}

bool Raft::is_voter_anywhere(ServerId id) const {
  auto all = all_voters();
  return std::find(all.begin(), all.end(), id) != all.end();
}

// ---------------------------------------------------------------- messages

void Raft::send(ServerId to, const Msg& m) {
  net_->send(to, PeerChannel::quorum, encode_message(m));
}

void Raft::on_peer_message(ServerId from, sdk::BytesView message) {
  if (!running_) return;
  Msg m;
  if (!decode_message(message, m)) {
    host_->logger().warn("dropping a malformed raft message from server " + std::to_string(from));
    net_->disconnect(from, PeerChannel::quorum);
    return;
  }
  bool known = false;
  for (const auto& s : members_)
    if (s.id == from) known = true;
  if (!known || from == self_) return;
  // A word from it: reachable again (as when its link comes up).
  if (!links_down_.empty()) links_down_.erase(from);
  handle(from, m);
}

void Raft::handle(ServerId from, Msg& m) {
  switch (m.type) {
    case MsgType::pre_vote:
      on_pre_vote(from, m);
      return;
    case MsgType::vote:
      on_vote(from, m);
      return;
    case MsgType::pre_vote_reply:
    case MsgType::vote_reply:
      on_vote_reply(from, m);
      return;
    default:
      break;
  }
  // Everything else comes from (or goes to) the leader of m.term.
  if (m.term < term_) {
    if (m.type == MsgType::append || m.type == MsgType::snapshot ||
        m.type == MsgType::timeout_now) {
      // A deposed leader learns the term from the answer.
      Msg reply;
      reply.type = m.type == MsgType::snapshot ? MsgType::snapshot_reply : MsgType::append_reply;
      reply.term = term_;
      reply.send_id = m.send_id;
      send(from, reply);
    }
    return;
  }
  if (m.term > term_) {
    bool from_leader =
        m.type == MsgType::append || m.type == MsgType::snapshot || m.type == MsgType::timeout_now;
    become_follower(m.term, from_leader ? from : 0,
                    "server " + std::to_string(from) + " is in term " + std::to_string(m.term));
    if (m.term != term_) return;  // the term could not be saved
  }
  switch (m.type) {
    case MsgType::append:
      on_append(from, m);
      return;
    case MsgType::snapshot:
      on_snapshot(from, m);
      return;
    case MsgType::append_reply:
    case MsgType::ack:
    case MsgType::snapshot_reply:
      on_append_reply(from, m);
      return;
    case MsgType::forward:
      on_forward(from, m);
      return;
    case MsgType::sync_request:
      on_sync_request(from, m);
      return;
    case MsgType::sync_reply:
      on_sync_reply(m);
      return;
    case MsgType::rejected:
      if (from == leader_ && state_ == State::follower && m.fwd_nonce == fwd_nonce_)
        reject_forwarded(m.seq, Status(static_cast<Errc>(std::clamp<int64_t>(
                                           m.id, 1, static_cast<int64_t>(Errc::internal))),
                                       "the leader refused the write: " + m.text));
      return;
    case MsgType::timeout_now:
      on_timeout_now(from, m);
      return;
    case MsgType::hold:
      on_hold(from, m);
      return;
    case MsgType::take_over:
      on_take_over(from, m);
      return;
    case MsgType::hold_ack:
      if (state_ == State::leader && transfer_target_ != 0 && !frozen_ && m.id == hold_id_) {
        hold_acks_[from] = {m.fwd_nonce, m.seq};
        if (m.granted)
          hold_unserving_.erase(from);
        else
          hold_unserving_.insert(from);
        maybe_freeze();
      }
      return;
    case MsgType::release:
      if (from == leader_ && state_ == State::follower && m.id == hold_id_) {
        handover_term_ = 0;  // a stand it was told to make is off too
        // (Not serving yet: what it holds goes to the leader at its
        // deadline, once it serves.)
        if (holding_ && hold_term_ == term_ && synced_) end_hold(true);
      }
      return;
    case MsgType::transfer_request:
      on_transfer_request(from, m);
      return;
    case MsgType::transfer_reply:
      if (from == leader_ && transfer_done_ && m.id == transfer_request_id_) {
        if (m.target == 0) {
          transfer_follow_ = true;  // answered once this server serves under the new leader
        } else {
          finish_transfer(Status(static_cast<Errc>(std::clamp<int64_t>(
                                     m.target, 1, static_cast<int64_t>(Errc::internal))),
                                 "the leader answered: " + m.text));
        }
      }
      return;
    default:
      return;
  }
}

void Raft::on_peer_link(ServerId peer, bool up) {
  if (!running_) return;
  if (up) {
    links_down_.erase(peer);
    return;
  }
  links_down_[peer] = now_;
  if (state_ == State::leader && transfer_target_ == peer && peer != self_) {
    // The voter this leader hands over to is gone: nothing is left to wait
    // for (its members hold their clients' writes meanwhile).
    call_off_transfer("the link to server " + std::to_string(peer) + " broke");
  } else if (holding_ && state_ != State::leader &&
             !(synced_ && leader_ != 0 && leader_ != peer && !link_down(leader_))) {
    // A handover that cannot finish: the server taking over is gone
    // (stopped, most often, right after the one that handed over), or this
    // server, taking over or waiting for the one that does, reaches no
    // quorum. It looks for a leader at once and, without one, goes
    // read-only in read-only mode, as a follower whose leader died would.
    // (Still synced with the leader that froze its log, it waits for that
    // leader to call the handover off: its writes go there then.)
    auto reachable = [&](ServerId v) { return v == self_ || !link_down(v); };
    if (hold_target_ == peer && peer != self_)
      give_up_hold("the link to server " + std::to_string(peer) + ", taking over, broke");
    else if (!quorum_of(reachable))
      give_up_hold("the links to a quorum of voters broke (server " + std::to_string(peer) + ")");
  }
  if (state_ != State::leader && peer == leader_ && leader_ != 0 && !early_used_) {
    // The link to the leader broke (its process died, most often): stand
    // soon rather than after a whole election timeout, and stop counting
    // its lease. Pre-vote keeps this harmless when only this link broke:
    // the voters that still hear the leader refuse.
    int64_t t = opt_.election_ticks * opt_.tick_ms;
    last_leader_contact_ = std::min(last_leader_contact_, now_ - t);
    int64_t soon = now_ + std::uniform_int_distribution<int64_t>(
                              50, 50 + std::max<int64_t>(100, opt_.tick_ms / 4))(rng_);
    election_due_ = std::min(election_due_, soon);
    // Not heard from within a tick of the break, the leader is given up
    // (clients move to a server that has one, or a read-only server goes
    // read-only), as a Zab learner gives up a leader whose link broke.
    leader_deadline_ = now_ + opt_.tick_ms;
    early_election_ = true;
    // Once per word from the leader: the network reports every failed
    // redial too, and the next election timeout must give the leader up.
    early_used_ = true;
    return;
  }
  if (state_ == State::leader) {
    if (Progress* p = progress(peer)) {
      // What was in flight is gone: probe again, from the end of the log
      // (a refusal steps back from there).
      p->probing = true;
      p->inflight.clear();
      p->inflight_bytes = 0;
      p->reset_id = ++send_id_;
      p->sent = last_logged();
      // Unreachable now: if the voters still reachable are no quorum, stop
      // leading at once rather than at the next check (a Zab leader drops a
      // learner whose link broke the same way).
      p->last_heard = now_ - 2 * opt_.election_ticks * opt_.tick_ms;
      int64_t timeout = opt_.election_ticks * opt_.tick_ms;
      // (Nor is a voter whose link broke earlier and is not up again.)
      auto recent = [&](ServerId v) {
        Progress* q = progress(v);
        return v == self_ || (q && now_ - q->last_heard < timeout && !link_down(v));
      };
      if (!quorum_of(recent)) {
        std::string why =
            "the links to a quorum of voters broke (server " + std::to_string(peer) + ")";
        step_down(why);
        // Taken over in a handover, and no quorum left to commit with.
        if (holding_) give_up_hold(why);
      }
    }
  }
}

// ---------------------------------------------------------------- time

void Raft::tick(int64_t now_ms) {
  if (!running_) return;
  now_ = now_ms;
  if (rewrite_pending_) rewrite_tail();
  // (A leader that handed over waits as long as it holds for the next.)
  if (transfer_done_ && now_ >= transfer_deadline_ + opt_.tick_ms && transfer_target_ == 0 &&
      !handover_pending())
    finish_transfer(Status(Errc::unavailable, "the handover did not finish in time"));
  if (state_ == State::leader) {
    leader_tick();
    return;
  }
  follower_retry();
  if (holding_ && now_ >= hold_deadline_) give_up_hold("it did not finish in time");
  if (early_used_ && leader_ != 0 && leader_deadline_ != 0 && now_ >= leader_deadline_) {
    leader_deadline_ = 0;
    lose_leader("its link broke and it has not been heard from since");
  }
  if (now_ < election_due_) return;
  if (can_campaign()) {
    // An election timeout without word from the leader gives it up at once;
    // a broken link (early_election_) only once the pre-vote wins.
    if (!early_election_ && leader_ != 0)
      lose_leader("nothing heard from it for an election timeout");
    early_election_ = false;
    start_pre_vote();
  } else if (early_election_) {
    // A broken link, and this server cannot stand: the leader is given up
    // only after a whole election timeout without word from it.
    early_election_ = false;
    reset_election_timer();
  } else {
    if (leader_ != 0) lose_leader("nothing heard from it for an election timeout");
    state_ = State::follower;
    reset_election_timer();
  }
}

// ---------------------------------------------------------------- status

sdk::ConsensusStatus Raft::status() const {
  sdk::ConsensusStatus s;
  s.role = role_;
  s.leader = serving_leader_;
  s.accepted_epoch = term_;
  s.current_epoch = term_;
  s.last_logged = last_logged();
  s.last_committed = commit_;
  s.last_applied = last_applied_;
  s.pending_proposals = static_cast<size_t>(upper(last_logged()) - upper(last_applied_));
  s.elections = elections_;
  s.last_election_ms = last_election_ms_;
  for (const auto& [id, p] : progress_) {
    sdk::LearnerStatus l;
    l.id = id;
    l.observer = p.observer;
    // Synced: holds this term's start, and answered within an election
    // timeout (a reconfig counts on it for the new quorum).
    l.synced = noop_zxid_ != 0 && p.durable >= noop_zxid_ &&
               now_ - p.last_heard < opt_.election_ticks * opt_.tick_ms;
    l.last_acked = p.durable;
    l.stage = p.snapshot_zxid ? "snapshot" : p.probing ? "probe" : "replicate";
    s.learners.push_back(std::move(l));
  }
  return s;
}

}  // namespace corral::raft
