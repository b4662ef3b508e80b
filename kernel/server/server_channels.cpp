// The server's client connections: accepting one within the connection
// limits, the channel that serves it, and what happens when it closes;
// channels that stopped reading at the outstanding-request limits wait
// here to be woken.
#include <string>

#include "server/channel.hpp"
#include "server/server.hpp"

namespace corral::kernel {

using sdk::Status;

namespace {

// A client TCP connection as a channel's link.
class TcpLink final : public ChannelLink, public sdk::ConnectionHandler {
 public:
  explicit TcpLink(std::shared_ptr<sdk::Connection> conn) : conn_(std::move(conn)) {}
  void attach(Channel* ch) {
    channel_ = ch;
    conn_->start(this);
  }
  void send(sdk::Bytes bytes) override { conn_->send(std::move(bytes)); }
  void close() override { conn_->close(); }
  std::string remote_address() const override { return conn_->remote_address(); }
  sdk::ConnectionSecurity security() const override { return conn_->security(); }
  void on_data(sdk::BytesView data) override { channel_->on_bytes(data); }
  void on_closed(const Status&) override { channel_->on_disconnected(); }
  void on_drained() override { channel_->on_drained(); }
  size_t queued_bytes() const override { return conn_->queued_bytes(); }
  void pause_reading(bool paused) override { conn_->pause_reading(paused); }

 private:
  std::shared_ptr<sdk::Connection> conn_;
  Channel* channel_ = nullptr;
};

std::string ip_of(const std::string& address) {
  size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

}  // namespace

void Server::wake_outstanding() {
  if (outstanding_wake_posted_ || outstanding_ >= config_.server.max_outstanding) return;
  // Wake the channels that waited from the loop: this runs inside a
  // channel's drain, and a woken channel reads (and may close) at once.
  outstanding_wake_posted_ = true;
  executor_.post([this] {
    outstanding_wake_posted_ = false;
    auto waiting = std::move(waiting_outstanding_);
    waiting_outstanding_.clear();
    for (Channel* ch : waiting) ch->resume_reading();
  });
}

void Server::wait_for_outstanding(Channel& ch) {
  m_throttled_->inc();
  waiting_outstanding_.insert(&ch);
}

Channel* Server::open_channel(std::unique_ptr<ChannelLink> link) {
  uint64_t id = next_channel_id_++;
  auto ch = std::make_unique<Channel>(*this, std::move(link), id);
  Channel* raw = ch.get();
  channels_.emplace(id, std::move(ch));
  return raw;
}

void Server::on_accept(std::shared_ptr<sdk::Connection> conn) {
  std::string ip = ip_of(conn->remote_address());
  int64_t limit = config_.server.max_client_cnxns, total = config_.server.max_cnxns;
  if (total > 0 && client_connections_ >= static_cast<size_t>(total)) {
    refusals_.warn(*log_, std::to_string(client_connections_) +
                              " client connections are open (max_cnxns = " + std::to_string(total) +
                              "); refusing " + conn->remote_address());
    m_refused_->inc();
    conn->close();
    return;
  }
  auto per_ip = connections_per_ip_.find(ip);
  if (limit > 0 && per_ip != connections_per_ip_.end() && per_ip->second >= limit) {
    refusals_.warn(*log_, "too many connections from " + ip + " (max_client_cnxns = " +
                              std::to_string(limit) + "); refusing " + conn->remote_address());
    m_refused_->inc();
    conn->close();
    return;
  }
  connections_per_ip_[ip]++;
  ++client_connections_;
  m_connections_->inc();
  auto link = std::make_unique<TcpLink>(std::move(conn));
  TcpLink* raw = link.get();
  Channel* ch = open_channel(std::move(link));
  raw->attach(ch);
  ch->expect_session_within(std::chrono::milliseconds(config_.server.sessionless_timeout_ms));
}

void Server::channel_closed(Channel& ch) {
  waiting_outstanding_.erase(&ch);
  if (ch.session_id() != 0) {
    auto it = session_channels_.find(ch.session_id());
    if (it != session_channels_.end() && it->second == &ch) session_channels_.erase(it);
  }
  std::string ip = ip_of(ch.remote_address());
  auto c = connections_per_ip_.find(ip);
  if (c != connections_per_ip_.end()) {
    --client_connections_;
    if (--c->second <= 0) connections_per_ip_.erase(c);
  }
  // The channel may be on the stack; destroy it from the loop.
  uint64_t id = ch.id();
  executor_.post([this, id] { channels_.erase(id); });
}

}  // namespace corral::kernel
