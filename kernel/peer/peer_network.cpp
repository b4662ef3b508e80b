#include "peer/peer_network.hpp"

#include <algorithm>

#include "corral/sdk/msgpack.hpp"

namespace corral::kernel {

using sdk::Errc;
using sdk::PeerChannel;
using sdk::ServerId;
using sdk::Status;

namespace {

constexpr std::string_view kHelloMagic = "corral-peer";
constexpr int64_t kProtocolVersion = 1;

const char* channel_name(PeerChannel c) { return c == PeerChannel::quorum ? "quorum" : "election"; }

void put_frame_header(sdk::Bytes& out, size_t n) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
}

}  // namespace

// One connection, either direction. Outgoing links queue messages while the
// dial is in flight; incoming links parse frames and hand them up.
class TcpPeerNetwork::Link final : public sdk::ConnectionHandler,
                                   public std::enable_shared_from_this<Link> {
 public:
  enum class State { dialing, up, closed };
  Link(TcpPeerNetwork& net, bool outgoing, ServerId peer, PeerChannel channel)
      : net_(net), outgoing_(outgoing), peer_(peer), channel_(channel) {}

  void attach(std::shared_ptr<sdk::Connection> conn) {
    conn_ = std::move(conn);
    conn_->start(this);
  }

  void queue(sdk::Bytes message) {
    if (state_ == State::closed) return;
    sdk::Bytes framed;
    framed.reserve(message.size() + 4);
    put_frame_header(framed, message.size());
    framed.append(message);
    if (state_ == State::up) {
      conn_->send(std::move(framed));
    } else if (pending_.size() < net_.opt_.max_queued_messages) {
      pending_.push_back(std::move(framed));
    }
  }

  // The dial finished: say hello and flush what queued meanwhile.
  void connected(std::shared_ptr<sdk::Connection> conn) {
    state_ = State::up;
    attach(std::move(conn));
    sdk::Bytes hello, framed;
    sdk::MsgpackWriter w(hello);
    w.array(4);
    w.bytes(kHelloMagic);
    w.integer(kProtocolVersion);
    w.integer(static_cast<int>(channel_));
    w.integer(net_.self_);
    put_frame_header(framed, hello.size());
    framed.append(hello);
    for (auto& p : pending_) framed.append(p);
    pending_.clear();
    conn_->send(std::move(framed));
  }

  void close() {
    if (state_ == State::closed) return;
    state_ = State::closed;
    pending_.clear();
    if (conn_) conn_->close();
  }

  // ConnectionHandler
  void on_data(sdk::BytesView data) override {
    if (outgoing_) return;  // the peer never writes on a link we dialed
    auto self = shared_from_this();
    in_.append(data);
    size_t at = 0;
    while (state_ != State::closed && in_.size() - at >= 4) {
      uint64_t n = 0;
      for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<uint8_t>(in_[at + i]);
      if (static_cast<int64_t>(n) > net_.opt_.max_frame_bytes) {
        fail("a frame of " + std::to_string(n) + " bytes is larger than the limit of " +
             std::to_string(net_.opt_.max_frame_bytes));
        return;
      }
      if (in_.size() - at - 4 < n) break;
      sdk::BytesView frame(in_.data() + at + 4, n);
      at += 4 + n;
      if (!identified_) {
        if (!hello(frame)) return;
      } else {
        net_.deliver(peer_, channel_, frame);
      }
    }
    in_.erase(0, at);
  }

  void on_closed(const Status& why) override {
    if (state_ == State::closed) return;
    state_ = State::closed;
    net_.link_closed(this, why ? "closed by the peer" : why.message());
  }

  ServerId peer() const { return peer_; }
  PeerChannel channel() const { return channel_; }
  bool outgoing() const { return outgoing_; }
  bool identified() const { return identified_; }
  State state() const { return state_; }
  std::string remote() const { return conn_ ? conn_->remote_address() : std::string("?"); }

 private:
  bool hello(sdk::BytesView frame) {
    sdk::MsgpackReader r(frame);
    uint32_t n = r.array();
    std::string_view magic = r.bytes();
    int64_t version = r.integer(), channel = r.integer(), id = r.integer();
    if (!r.ok() || n != 4 || magic != kHelloMagic) return fail("it did not open with a Corral peer hello"), false;
    if (version != kProtocolVersion)
      return fail("it speaks peer protocol " + std::to_string(version) + ", this server " +
                  std::to_string(kProtocolVersion)), false;
    if (channel != static_cast<int>(channel_))
      return fail("it asked for the " + std::string(channel == 0 ? "quorum" : "election") + " channel on the " +
                  channel_name(channel_) + " port"), false;
    if (id == net_.self_) return fail("it claims this server's own id " + std::to_string(id)), false;
    if (!net_.member(id))
      return fail("server id " + std::to_string(id) + " is not a member of this ensemble"), false;
    peer_ = id;
    identified_ = true;
    net_.incoming_identified(this);
    return true;
  }

  void fail(const std::string& why) {
    net_.log_.warn("refusing peer connection from " + remote() + " on the " + channel_name(channel_) +
                   " port: " + why);
    close();
    net_.link_closed(this, why);
  }

  TcpPeerNetwork& net_;
  bool outgoing_;
  ServerId peer_;
  PeerChannel channel_;
  State state_ = State::dialing;
  bool identified_ = false;
  std::shared_ptr<sdk::Connection> conn_;
  std::deque<sdk::Bytes> pending_;
  std::string in_;
  friend class TcpPeerNetwork;
};

TcpPeerNetwork::TcpPeerNetwork(sdk::Transport& transport, sdk::Logger& log, ServerId self,
                               std::vector<sdk::PeerSpec> members, Options options)
    : transport_(transport), log_(log), self_(self), members_(std::move(members)), opt_(options) {}

TcpPeerNetwork::~TcpPeerNetwork() { stop(); }

const sdk::PeerSpec* TcpPeerNetwork::member(ServerId id) const {
  for (const auto& m : members_)
    if (m.id == id) return &m;
  return nullptr;
}

Status TcpPeerNetwork::start() {
  const sdk::PeerSpec* me = member(self_);
  if (!me) return {Errc::invalid_argument, "server id " + std::to_string(self_) + " is not in the ensemble"};
  std::string host = opt_.listen_on_all_addresses ? std::string("0.0.0.0") : me->host;
  auto q = transport_.listen(sdk::Endpoint{host, me->quorum_port}, [this](std::shared_ptr<sdk::Connection> c) {
    on_accept(PeerChannel::quorum, std::move(c));
  });
  if (!q) return {q.status().code(), "quorum port: " + q.status().message()};
  auto e = transport_.listen(sdk::Endpoint{host, me->election_port}, [this](std::shared_ptr<sdk::Connection> c) {
    on_accept(PeerChannel::election, std::move(c));
  });
  if (!e) return {e.status().code(), "election port: " + e.status().message()};
  quorum_listener_ = std::move(q.value());
  election_listener_ = std::move(e.value());
  return {};
}

void TcpPeerNetwork::stop() {
  *alive_ = false;
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
  if (!*alive_ || to == self_ || !member(to)) return;
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
  transport_.connect(where, opt_.connect_timeout_ms,
                     [this, weak, where, alive = alive_](sdk::Result<std::shared_ptr<sdk::Connection>> r) {
                       auto link = weak.lock();
                       if (!*alive || !link || link->state() == Link::State::closed) {
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
                       link_event(link->peer(), link->channel(), true);
                     });
}

void TcpPeerNetwork::on_accept(PeerChannel port_channel, std::shared_ptr<sdk::Connection> conn) {
  auto link = std::make_shared<Link>(*this, /*outgoing=*/false, 0, port_channel);
  link->state_ = Link::State::up;
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
  // A newer connection from the same peer (it restarted) replaces the old.
  if (auto old = incoming_.find(key); old != incoming_.end()) old->second->close();
  incoming_[key] = owned;
}

void TcpPeerNetwork::link_closed(Link* link, const std::string& why) {
  if (!*alive_) return;
  if (!link->identified() && !link->outgoing()) {
    std::erase_if(unidentified_, [&](const std::shared_ptr<Link>& l) { return l.get() == link; });
    return;
  }
  Key key{link->peer(), static_cast<int>(link->channel())};
  auto& map = link->outgoing() ? outgoing_ : incoming_;
  auto it = map.find(key);
  if (it == map.end() || it->second.get() != link) return;  // already replaced
  std::shared_ptr<Link> keep = it->second;  // the link may be on the stack
  map.erase(it);
  log_.debug(std::string(link->outgoing() ? "link to" : "link from") + " server " + std::to_string(link->peer()) +
             " (" + channel_name(link->channel()) + ") closed: " + why);
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

void TcpPeerNetwork::deliver(ServerId from, PeerChannel channel, sdk::BytesView message) {
  if (sdk::PeerListener* l = listeners_[static_cast<int>(channel)]) l->on_peer_message(from, message);
}

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
