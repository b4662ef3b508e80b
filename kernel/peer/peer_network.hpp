// The kernel's PeerNetwork: message streams between the servers of an
// ensemble, over the transport plugin.
//
// Each server listens on its own quorum and election ports. Messages from A
// to B travel on a connection A dials (one per channel), so each direction is
// one ordered byte stream and no two servers ever race to keep one of two
// connections. A connection opens with the handshake of peer_auth.hpp: the
// dialer names its id and channel, both sides prove they hold the ensemble's
// key, and only then is a message read. Until then a connection may send only
// small frames, must finish within handshake_timeout_ms, and only
// max_handshaking of them wait at once; the acceptor refuses ids outside the
// ensemble and hellos on the wrong port. Over TLS, each side's certificate
// must name the member it speaks for (peer_auth.hpp), and then it is proof
// enough on its own. Frames are a 4-byte big-endian
// length and the message. A message the consensus or election plugin cannot
// handle (it throws) closes that one link, is logged, and is counted.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "corral/common/lifeline.hpp"
#include "corral/sdk/host.hpp"
#include "corral/sdk/peers.hpp"
#include "corral/sdk/transport.hpp"
#include "peer/peer_auth.hpp"
#include "util/log_limiter.hpp"

namespace corral::kernel {

class TcpPeerNetwork final : public sdk::PeerNetwork {
 public:
  struct Options {
    bool listen_on_all_addresses = false;
    // A zab FETCHED (a learner's history, a snapshot included, sent to a
    // new leader during discovery) is one message; a SYNC's snapshot and
    // entries come in pieces of about 1 MiB.
    int64_t max_frame_bytes = int64_t{1} << 30;
    int64_t connect_timeout_ms = 2000;
    size_t max_queued_messages = 100000;  // while dialing; more are dropped
    PeerCredentials credentials;          // what peers prove (none: anyone is believed)
    int64_t handshake_timeout_ms =
        5000;  // a connection that has not proved itself by then is closed
    int64_t max_handshake_frame_bytes = 4096;
    size_t max_handshaking =
        32;  // accepted connections still in their handshake; more are closed at once
    // The listening transport takes plaintext besides TLS (a rolling switch).
    bool accept_plaintext = false;
  };

  // `bad_messages` (may be null) counts messages that closed their link.
  // Listens through `transport` and dials through `dial_transport` (they
  // differ while an ensemble switches to TLS). A link over TLS must carry a
  // certificate that names the member it claims to be.
  TcpPeerNetwork(sdk::Transport& transport, sdk::Transport& dial_transport, sdk::Executor& executor,
                 sdk::Logger& log, sdk::ServerId self, std::vector<sdk::PeerSpec> members,
                 Options options, sdk::Counter* bad_messages = nullptr);
  ~TcpPeerNetwork() override;

  // Listens on this server's quorum and election ports.
  sdk::Status start();
  // Closes every connection and listener; no callbacks after it returns.
  void stop();
  // Discovery changed the membership: links to removed members close.
  void set_members(std::vector<sdk::PeerSpec> members);
  // Discovery moved a member: links to its old address close (listeners hear
  // the link go down) and later messages dial the new one.
  void update_member(const sdk::PeerSpec& spec);
  // Closes the links to and from `peer` now, telling the listeners.
  void drop_links(sdk::ServerId peer);

  // PeerNetwork
  sdk::ServerId self() const override { return self_; }
  std::vector<sdk::PeerSpec> members() const override { return members_; }
  void send(sdk::ServerId to, sdk::PeerChannel channel, sdk::Bytes message) override;
  void disconnect(sdk::ServerId peer, sdk::PeerChannel channel) override;
  void subscribe(sdk::PeerChannel channel, sdk::PeerListener* listener) override;

  // For `mntr`/logs: links currently up per channel.
  size_t links_up(sdk::PeerChannel channel) const;

 private:
  class Link;
  friend class Link;
  using Key = std::pair<sdk::ServerId, int>;  // (peer, channel)

  const sdk::PeerSpec* member(sdk::ServerId id) const;
  void dial(sdk::ServerId to, sdk::PeerChannel channel);
  void on_accept(sdk::PeerChannel port_channel, std::shared_ptr<sdk::Connection> conn);
  // An accepted link said who it is.
  void incoming_identified(Link* link);
  // A link ended: forget it and tell the channel's listener.
  void link_closed(Link* link, const std::string& why);
  // Hands a message up; false when the listener threw (the link must close).
  bool deliver(sdk::ServerId from, sdk::PeerChannel channel, sdk::BytesView message,
               std::string& error);
  // Refusals are logged at most a few a second, so a flood of strangers
  // cannot fill the log.
  void refuse_log(const std::string& line);
  void link_event(sdk::ServerId peer, sdk::PeerChannel channel, bool up);

  sdk::Transport& transport_;
  sdk::Transport& dial_transport_;
  sdk::Executor& executor_;
  sdk::Logger& log_;
  sdk::ServerId self_;
  std::vector<sdk::PeerSpec> members_;
  Options opt_;
  std::unique_ptr<sdk::Listener> quorum_listener_, election_listener_;
  sdk::PeerListener* listeners_[2] = {nullptr, nullptr};
  std::map<Key, std::shared_ptr<Link>> outgoing_;  // links we dialed
  std::map<Key, std::shared_ptr<Link>>
      incoming_;  // links peers dialed, once they said who they are
  std::vector<std::shared_ptr<Link>> unidentified_;  // accepted, handshake not finished
  sdk::Counter* bad_messages_;
  LogLimiter refusals_;
  common::Lifeline alive_;
};

}  // namespace corral::kernel
