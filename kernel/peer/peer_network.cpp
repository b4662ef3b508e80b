#include "peer/peer_network.hpp"

#include <algorithm>

#include "corral/common/random.hpp"

namespace corral::kernel {

using sdk::Errc;
using sdk::PeerChannel;
using sdk::ServerId;
using sdk::Status;

namespace {

const char* channel_name(PeerChannel c) { return c == PeerChannel::quorum ? "quorum" : "election"; }

void put_frame_header(sdk::Bytes& out, size_t n) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
}

// The header goes in front of the message in its own buffer: with room to
// spare (a large message is sent with some), nothing is copied but the bytes
// moved up by four.
sdk::Bytes framed(sdk::Bytes message) {
  sdk::Bytes header;
  put_frame_header(header, message.size());
  message.insert(0, header);
  return message;
}

}  // namespace

// One connection, either direction. Both run the handshake of peer_auth.hpp
// first; an outgoing link queues messages until it is done, an incoming one
// reads nothing but the handshake until then, and afterwards hands each
// frame up.
class TcpPeerNetwork::Link final : public sdk::ConnectionHandler,
                                   public std::enable_shared_from_this<Link> {
 public:
  // dialing: connect in flight (outgoing only); hello: waiting for the
  // dialer's hello (incoming) or the acceptor's challenge (outgoing); proof:
  // waiting for the dialer's proof (incoming); up: messages flow.
  enum class State { dialing, hello, proof, up, closed };
  Link(TcpPeerNetwork& net, bool outgoing, ServerId peer, PeerChannel channel)
      : net_(net), outgoing_(outgoing), peer_(peer), channel_(channel) {}

  void attach(std::shared_ptr<sdk::Connection> conn) {
    conn_ = std::move(conn);
    conn_->start(this);
    // Whoever has not finished the handshake in time is cut off.
    std::weak_ptr<Link> weak = weak_from_this();
    deadline_ =
        net_.executor_.schedule(std::chrono::milliseconds(net_.opt_.handshake_timeout_ms), [weak] {
          auto self = weak.lock();
          if (self && self->state_ != State::up && self->state_ != State::closed)
            self->fail("it did not finish the peer handshake within " +
                       std::to_string(self->net_.opt_.handshake_timeout_ms) + " ms");
        });
  }

  void queue(sdk::Bytes message) {
    if (state_ == State::closed) return;
    if (state_ == State::up) {
      conn_->send(framed(std::move(message)));
    } else if (pending_.size() < net_.opt_.max_queued_messages) {
      pending_.push_back(framed(std::move(message)));
    }
  }

  // The dial finished: say hello; messages wait for the challenge.
  void connected(std::shared_ptr<sdk::Connection> conn) {
    state_ = State::hello;
    attach(std::move(conn));
    const PeerCredentials& cr = net_.opt_.credentials;
    PeerHello h;
    h.channel = channel_;
    h.id = net_.self_;
    h.offers = !cr.key.empty();
    h.user = cr.user;
    h.nonce = common::secure_random_bytes(kPeerNonceBytes);
    my_nonce_ = h.nonce;
    conn_->send(framed(encode_peer_hello(h)));
  }

  void close() {
    if (state_ == State::closed) return;
    state_ = State::closed;
    pending_.clear();
    deadline_.reset();
    if (conn_) conn_->close();
  }

  // ConnectionHandler
  void on_data(sdk::BytesView data) override {
    if (state_ == State::closed) return;
    if (outgoing_ && state_ == State::up) return;  // the acceptor says nothing after its challenge
    auto self = shared_from_this();
    in_.append(data);
    size_t at = 0;
    while (state_ != State::closed && in_.size() - at >= 4) {
      uint64_t n = 0;
      for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<uint8_t>(in_[at + i]);
      int64_t limit =
          state_ == State::up ? net_.opt_.max_frame_bytes : net_.opt_.max_handshake_frame_bytes;
      if (static_cast<int64_t>(n) > limit) {
        fail("a frame of " + std::to_string(n) + " bytes is larger than the limit of " +
             std::to_string(limit) + (state_ == State::up ? "" : " before the handshake is done"));
        return;
      }
      if (in_.size() - at - 4 < n) break;
      sdk::BytesView frame(in_.data() + at + 4, n);
      at += 4 + n;
      if (state_ == State::up) {
        std::string error;
        if (!net_.deliver(peer_, channel_, frame, error)) {
          net_.log_.warn("closing the " + std::string(channel_name(channel_)) +
                         " link from server " + std::to_string(peer_) + ": a message of " +
                         std::to_string(n) + " bytes could not be handled: " + error);
          if (net_.bad_messages_) net_.bad_messages_->inc();
          close();
          net_.link_closed(this, "a message could not be handled");
          return;
        }
      } else if (outgoing_) {
        if (!challenge(frame)) return;
      } else if (state_ == State::hello) {
        if (!hello(frame)) return;
      } else {
        if (!proof(frame)) return;
      }
    }
    in_.erase(0, at);
    if (outgoing_ && state_ == State::up) in_.clear();
  }

  void on_closed(const Status& why) override {
    if (state_ == State::closed) return;
    state_ = State::closed;
    deadline_.reset();
    net_.link_closed(this, why ? "closed by the peer" : why.message());
  }

  ServerId peer() const { return peer_; }
  PeerChannel channel() const { return channel_; }
  bool outgoing() const { return outgoing_; }
  bool identified() const { return identified_; }
  State state() const { return state_; }
  std::string remote() const { return conn_ ? conn_->remote_address() : std::string("?"); }

 private:
  using Mode = PeerCredentials::Mode;

  // Acceptor: the dialer's hello. Answers with the challenge.
  bool hello(sdk::BytesView frame) {
    PeerHello h;
    std::string error;
    if (!decode_peer_hello(frame, h, error)) return fail(error), false;
    if (h.channel != channel_)
      return fail("it asked for the " + std::string(channel_name(h.channel)) + " channel on the " +
                  channel_name(channel_) + " port"),
             false;
    if (h.id == net_.self_)
      return fail("it claims this server's own id " + std::to_string(h.id)), false;
    if (!net_.member(h.id))
      return fail("server id " + std::to_string(h.id) + " is not a member of this ensemble"), false;
    const PeerCredentials& cr = net_.opt_.credentials;
    peer_ = h.id;
    if (!certificate_check(h.id)) return false;
    if (h.version == 1) {
      // An older Corral: no handshake to run, so only where nothing is asked.
      if (cr.mode != Mode::none)
        return fail(
                   "it speaks peer protocol 1, which cannot prove who it is, and "
                   "ensemble.peer_auth is " +
                   std::string(peer_auth_mode_name(cr.mode))),
               false;
      return identify(), true;
    }
    PeerChallenge c;
    c.id = net_.self_;
    c.nonce = common::secure_random_bytes(kPeerNonceBytes);
    if (h.offers) {
      key_ = cr.key_for(h.user);
      if (!key_ && cr.mode != Mode::none)
        return fail(h.user.empty()
                        ? std::string("it proves with a shared secret, and this server has none")
                        : "it proves as '" + h.user + "', a name this server does not accept"),
               false;
    } else if (cr.mode == Mode::required && !tls_proven_) {
      return fail("server " + std::to_string(h.id) +
                  " offers no proof of who it is, and ensemble.peer_auth is required (give it the "
                  "ensemble's "
                  "secret)"),
             false;
    }
    if (key_)
      c.proof = peer_proof(*key_, PeerSide::acceptor, channel_, h.id, net_.self_, h.nonce, c.nonce);
    their_nonce_ = h.nonce;
    my_nonce_ = c.nonce;
    state_ = State::proof;
    conn_->send(framed(encode_peer_challenge(c)));
    return true;
  }

  // Acceptor: the dialer's proof ends the handshake.
  bool proof(sdk::BytesView frame) {
    std::string got, error;
    if (!decode_peer_proof(frame, got, error)) return fail(error), false;
    if (key_) {
      std::string want =
          peer_proof(*key_, PeerSide::dialer, channel_, peer_, net_.self_, their_nonce_, my_nonce_);
      if (!peer_proof_matches(got, want))
        return fail("server " + std::to_string(peer_) +
                    " did not prove it holds the ensemble's secret (a wrong secret, or not a "
                    "member)"),
               false;
    } else if (!tls_proven_) {
      net_.log_.warn("server " + std::to_string(peer_) + " at " + remote() + " joined the " +
                     channel_name(channel_) +
                     " channel without proving who it is (ensemble.peer_auth = " +
                     peer_auth_mode_name(net_.opt_.credentials.mode) + ")");
    }
    identify();
    return true;
  }

  // Dialer: the acceptor's challenge. Checks its proof, sends ours, and
  // flushes what queued meanwhile.
  bool challenge(sdk::BytesView frame) {
    PeerChallenge c;
    std::string error;
    if (!decode_peer_challenge(frame, c, error)) return fail(error), false;
    if (c.id != peer_)
      return fail("it answers as server " + std::to_string(c.id) + " at the address of server " +
                  std::to_string(peer_)),
             false;
    if (!certificate_check(peer_)) return false;
    const PeerCredentials& cr = net_.opt_.credentials;
    std::string mine;
    if (!cr.key.empty()) {
      if (c.proof.empty()) {
        if (cr.mode == Mode::required && !tls_proven_)
          return fail("server " + std::to_string(peer_) +
                      " did not prove it holds the ensemble's secret (it has none configured?)"),
                 false;
      } else if (!peer_proof_matches(c.proof, peer_proof(cr.key, PeerSide::acceptor, channel_,
                                                         net_.self_, peer_, my_nonce_, c.nonce))) {
        return fail("server " + std::to_string(peer_) +
                    " did not prove it holds the ensemble's secret (a wrong secret, or an "
                    "impostor)"),
               false;
      }
      mine = peer_proof(cr.key, PeerSide::dialer, channel_, net_.self_, peer_, my_nonce_, c.nonce);
    } else if (cr.mode == Mode::required && !tls_proven_) {
      return fail("this server has no key to prove itself with"), false;
    }
    sdk::Bytes out = framed(encode_peer_proof(mine));
    for (auto& p : pending_) out.append(p);
    pending_.clear();
    state_ = State::up;
    identified_ = true;
    deadline_.reset();
    conn_->send(std::move(out));
    net_.link_event(peer_, channel_, true);
    return true;
  }

  // Over TLS the other side's certificate must name server `id`; then it has
  // proved who it is whatever the shared-secret mode asks.
  bool certificate_check(ServerId id) {
    sdk::ConnectionSecurity sec = conn_->security();
    if (!sec.encrypted) return true;
    std::string why;
    if (!certificate_names_member(sec, id, net_.members_, why))
      return fail("its certificate does not prove it is server " + std::to_string(id) + ": " + why),
             false;
    tls_proven_ = true;
    return true;
  }

  void identify() {
    state_ = State::up;
    identified_ = true;
    deadline_.reset();
    net_.incoming_identified(this);
  }

  void fail(const std::string& why) {
    net_.refuse_log((outgoing_ ? "giving up the " + std::string(channel_name(channel_)) +
                                     " link to server " + std::to_string(peer_) + " at " + remote()
                               : "refusing peer connection from " + remote() + " on the " +
                                     channel_name(channel_) + " port") +
                    ": " + why);
    close();
    net_.link_closed(this, why);
  }

  TcpPeerNetwork& net_;
  bool outgoing_;
  ServerId peer_;
  PeerChannel channel_;
  State state_ = State::dialing;
  bool identified_ = false;
  bool tls_proven_ = false;  // a verified certificate names the member
  std::shared_ptr<sdk::Connection> conn_;
  std::unique_ptr<sdk::Executor::Timer> deadline_;
  const std::string* key_ = nullptr;  // the key the dialer proves with (acceptor)
  std::string my_nonce_, their_nonce_;
  std::deque<sdk::Bytes> pending_;  // framed, waiting for the handshake
  std::string in_;
  friend class TcpPeerNetwork;
};

TcpPeerNetwork::TcpPeerNetwork(sdk::Transport& transport, sdk::Transport& dial_transport,
                               sdk::Executor& executor, sdk::Logger& log, ServerId self,
                               std::vector<sdk::PeerSpec> members, Options options,
                               sdk::Counter* bad_messages)
    : transport_(transport),
      dial_transport_(dial_transport),
      executor_(executor),
      log_(log),
      self_(self),
      members_(std::move(members)),
      opt_(std::move(options)),
      bad_messages_(bad_messages) {}

TcpPeerNetwork::~TcpPeerNetwork() { stop(); }

const sdk::PeerSpec* TcpPeerNetwork::member(ServerId id) const {
  for (const auto& m : members_)
    if (m.id == id) return &m;
  return nullptr;
}

Status TcpPeerNetwork::start() {
  const sdk::PeerSpec* me = member(self_);
  if (!me)
    return {Errc::invalid_argument,
            "server id " + std::to_string(self_) + " is not in the ensemble"};
  std::string host = opt_.listen_on_all_addresses ? std::string("0.0.0.0") : me->host;
  sdk::ListenOptions lo{sdk::StreamPurpose::peer, opt_.accept_plaintext};
  auto q = transport_.listen(
      sdk::Endpoint{host, me->quorum_port}, lo,
      [this](std::shared_ptr<sdk::Connection> c) { on_accept(PeerChannel::quorum, std::move(c)); });
  if (!q) return {q.status().code(), "quorum port: " + q.status().message()};
  auto e = transport_.listen(sdk::Endpoint{host, me->election_port}, lo,
                             [this](std::shared_ptr<sdk::Connection> c) {
                               on_accept(PeerChannel::election, std::move(c));
                             });
  if (!e) return {e.status().code(), "election port: " + e.status().message()};
  quorum_listener_ = std::move(q.value());
  election_listener_ = std::move(e.value());
  return {};
}

void TcpPeerNetwork::stop() {
  alive_.end();
  listeners_[0] = listeners_[1] = nullptr;
  quorum_listener_.reset();
  election_listener_.reset();
  for (auto* links : {&outgoing_, &incoming_})
    for (auto& [k, l] : *links) l->close();
  for (auto& l : unidentified_) l->close();
  outgoing_.clear();
  incoming_.clear();
  unidentified_.clear();
}

void TcpPeerNetwork::set_members(std::vector<sdk::PeerSpec> members) {
  members_ = std::move(members);
  for (auto* links : {&outgoing_, &incoming_}) {
    for (auto it = links->begin(); it != links->end();) {
      const sdk::PeerSpec* m = member(it->first.first);
      if (m) {
        ++it;
        continue;
      }
      auto link = it->second;
      it = links->erase(it);
      link->close();
    }
  }
}

void TcpPeerNetwork::subscribe(PeerChannel channel, sdk::PeerListener* listener) {
  listeners_[static_cast<int>(channel)] = listener;
}

void TcpPeerNetwork::send(ServerId to, PeerChannel channel, sdk::Bytes message) {
  if (!alive_.alive() || to == self_ || !member(to)) return;
  Key key{to, static_cast<int>(channel)};
  auto it = outgoing_.find(key);
  if (it == outgoing_.end()) {
    dial(to, channel);
    it = outgoing_.find(key);
    if (it == outgoing_.end()) return;
  }
  it->second->queue(std::move(message));
}

void TcpPeerNetwork::dial(ServerId to, PeerChannel channel) {
  const sdk::PeerSpec* m = member(to);
  auto link = std::make_shared<Link>(*this, /*outgoing=*/true, to, channel);
  outgoing_[{to, static_cast<int>(channel)}] = link;
  sdk::Endpoint where{m->host, channel == PeerChannel::quorum ? m->quorum_port : m->election_port};
  std::weak_ptr<Link> weak = link;
  dial_transport_.connect(
      where, opt_.connect_timeout_ms, sdk::ConnectOptions{sdk::StreamPurpose::peer},
      [this, weak, where, alive = alive_.ref()](sdk::Result<std::shared_ptr<sdk::Connection>> r) {
        auto link = weak.lock();
        if (!alive || !link || link->state() == Link::State::closed) {
          if (r) r.value()->close();
          return;
        }
        if (!r) {
          log_.debug("cannot reach server " + std::to_string(link->peer()) + " at " +
                     where.to_string() + ": " + r.status().message());
          link->state_ = Link::State::closed;
          link_closed(link.get(), r.status().message());
          return;
        }
        link->connected(std::move(r.value()));
      });
}

void TcpPeerNetwork::on_accept(PeerChannel port_channel, std::shared_ptr<sdk::Connection> conn) {
  if (unidentified_.size() >= opt_.max_handshaking) {
    refuse_log("refusing peer connection from " + conn->remote_address() + ": " +
               std::to_string(unidentified_.size()) +
               " connections are already in their handshake");
    conn->close();
    return;
  }
  auto link = std::make_shared<Link>(*this, /*outgoing=*/false, 0, port_channel);
  link->state_ = Link::State::hello;
  unidentified_.push_back(link);
  link->attach(std::move(conn));
}

void TcpPeerNetwork::incoming_identified(Link* link) {
  auto it = std::find_if(unidentified_.begin(), unidentified_.end(),
                         [&](const std::shared_ptr<Link>& l) { return l.get() == link; });
  if (it == unidentified_.end()) return;
  std::shared_ptr<Link> owned = *it;
  unidentified_.erase(it);
  Key key{link->peer(), static_cast<int>(link->channel())};
  // A newer connection from the same peer (it restarted, and its old
  // connection may linger half-open) replaces the old one. With peer_auth it
  // has proved itself as that member first.
  if (auto old = incoming_.find(key); old != incoming_.end()) {
    log_.info("server " + std::to_string(link->peer()) + " connected again on the " +
              channel_name(link->channel()) + " port from " + link->remote() +
              "; closing its previous connection from " + old->second->remote());
    old->second->close();
  }
  incoming_[key] = owned;
}

void TcpPeerNetwork::link_closed(Link* link, const std::string& why) {
  if (!alive_.alive()) return;
  if (!link->identified() && !link->outgoing()) {
    std::erase_if(unidentified_, [&](const std::shared_ptr<Link>& l) { return l.get() == link; });
    return;
  }
  Key key{link->peer(), static_cast<int>(link->channel())};
  auto& map = link->outgoing() ? outgoing_ : incoming_;
  auto it = map.find(key);
  if (it == map.end() || it->second.get() != link) return;  // already replaced
  std::shared_ptr<Link> keep = it->second;                  // the link may be on the stack
  map.erase(it);
  log_.debug(std::string(link->outgoing() ? "link to" : "link from") + " server " +
             std::to_string(link->peer()) + " (" + channel_name(link->channel()) +
             ") closed: " + why);
  link_event(link->peer(), link->channel(), false);
}

void TcpPeerNetwork::disconnect(ServerId peer, PeerChannel channel) {
  Key key{peer, static_cast<int>(channel)};
  for (auto* map : {&outgoing_, &incoming_}) {
    auto it = map->find(key);
    if (it == map->end()) continue;
    auto link = it->second;
    map->erase(it);
    link->close();
  }
}

void TcpPeerNetwork::drop_links(ServerId peer) {
  for (int channel = 0; channel < 2; ++channel) {
    bool had = false;
    for (auto* map : {&outgoing_, &incoming_}) {
      auto it = map->find(Key{peer, channel});
      if (it == map->end()) continue;
      auto link = it->second;
      map->erase(it);
      link->close();
      had = true;
    }
    if (had) link_event(peer, static_cast<PeerChannel>(channel), false);
  }
}

void TcpPeerNetwork::update_member(const sdk::PeerSpec& spec) {
  for (auto& m : members_)
    if (m.id == spec.id) {
      m = spec;
      // Links to the old address end; the next message dials the new one.
      if (spec.id != self_) drop_links(spec.id);
      return;
    }
}

bool TcpPeerNetwork::deliver(ServerId from, PeerChannel channel, sdk::BytesView message,
                             std::string& error) {
  sdk::PeerListener* l = listeners_[static_cast<int>(channel)];
  if (!l) return true;
  try {
    l->on_peer_message(from, message);
    return true;
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "an unknown exception";
  }
  return false;
}

void TcpPeerNetwork::refuse_log(const std::string& line) { refusals_.warn(log_, line); }

void TcpPeerNetwork::link_event(ServerId peer, PeerChannel channel, bool up) {
  if (sdk::PeerListener* l = listeners_[static_cast<int>(channel)]) l->on_peer_link(peer, up);
}

size_t TcpPeerNetwork::links_up(PeerChannel channel) const {
  size_t n = 0;
  for (const auto& [k, l] : outgoing_)
    if (k.second == static_cast<int>(channel) && l->state() == Link::State::up) ++n;
  return n;
}

}  // namespace corral::kernel
