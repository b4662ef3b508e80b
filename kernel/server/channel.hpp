// One client attachment: a TCP connection or a recipe's in-process session.
// It frames the byte stream, performs the handshake, keeps ZooKeeper's
// per-session FIFO (a reply never overtakes an earlier request's reply),
// serves reads locally, submits writes to consensus, and carries watch
// events back to the client.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "corral/common/lifeline.hpp"
#include "corral/proto/records.hpp"
#include "corral/sdk/host.hpp"
#include "corral/sdk/transport.hpp"
#include "corral/sdk/types.hpp"
#include "session/auth.hpp"
#include "session/sasl.hpp"
#include "watch/watch_manager.hpp"

namespace corral::kernel {

class ChannelHost;
class DataTree;
struct ServerStats;
struct ApplyOutcome;

// The opcode of the frame a recipe's in-process session sends to act as
// other identities (sdk::TreeSession::act_as); outside ZooKeeper's range and
// refused from sockets (an unknown opcode there).
inline constexpr int32_t kInProcessActAs = -0x43524c;

// Where a channel's output goes.
class ChannelLink {
 public:
  virtual ~ChannelLink() = default;
  virtual void send(sdk::Bytes bytes) = 0;
  // Flushes what was sent, then closes; no more input after this.
  virtual void close() = 0;
  virtual std::string remote_address() const = 0;
  // Bytes sent and not yet written, and a way to stop taking requests from
  // a client that does not read its replies.
  virtual size_t queued_bytes() const { return 0; }
  virtual void pause_reading(bool) {}
  // Whether server.max_output_bytes applies: a socket's peer may never
  // read; a recipe's in-process session takes what it is sent at once.
  virtual bool bounded() const { return true; }
  // What the transport established (TLS, a client certificate).
  virtual sdk::ConnectionSecurity security() const { return {}; }
};

class Channel final : public Watcher {
 public:
  Channel(ChannelHost& server, std::unique_ptr<ChannelLink> link, uint64_t id);
  ~Channel() override;

  uint64_t id() const { return id_; }
  int64_t session_id() const { return session_id_; }
  bool established() const { return state_ == State::established; }
  // A session served in read-only mode (this server has no leader).
  bool read_only() const { return read_only_; }
  bool closed() const { return state_ == State::closed; }
  // A client's connection, not a recipe's in-process session.
  bool external() const { return link_->bounded(); }
  std::string remote_address() const { return link_->remote_address(); }

  // Bytes from the client. May close the channel (malformed input).
  void on_bytes(sdk::BytesView data);
  // The transport lost the connection (client gone).
  void on_disconnected();
  // All replies sent so far are written: take requests again if paused.
  void on_drained();
  // Takes requests again if it stopped at a limit that no longer holds.
  void resume_reading();
  // Closes the connection (server decision); the session lives on.
  void close(const std::string& why);
  // Closes the connection unless it has opened a session (or answered a
  // four-letter word) by then: a connection holds memory only with a session.
  void expect_session_within(std::chrono::milliseconds limit);

  // A committed entry of this channel's session was applied. False if this
  // channel was not waiting for it (it came from another connection or from
  // the server itself, such as an expiry).
  bool on_applied(const ApplyOutcome& outcome, sdk::Zxid zxid);
  // Consensus will never apply this session's write `cxid` (of `type`): it
  // is answered with `err` in its turn. False if this channel does not wait
  // for it.
  bool on_rejected(int32_t cxid, int32_t type, proto::Err err);
  // createSession for this channel was applied.
  void on_session_created();

  // Watcher
  void notify(const proto::WatcherEvent& event, sdk::Zxid zxid) override;
  const Ids& identities() const override { return auth_ids_; }
  size_t watch_bytes_limit() const override { return max_watch_bytes_; }

  // Statistics for `cons`/`stat`.
  uint64_t received() const { return received_; }
  int32_t timeout_ms() const { return timeout_ms_; }
  void reset_stats() { received_ = sent_ = 0; }
  uint64_t sent() const { return sent_; }
  size_t outstanding() const { return queue_.size(); }
  // Steady ms of the last request or ping heard; 0 before any.
  int64_t last_heard_ms() const { return last_heard_ms_; }

 private:
  enum class State { handshake, creating, established, closed };
  // One request in the session's FIFO.
  struct Pending {
    enum Kind : uint8_t { read, write, sync, done } kind;
    int32_t xid;
    int32_t type;
    int64_t received_ms;
    std::string request;   // payload for reads; reply frame once done
    bool started = false;  // sync: asked consensus
    // A linearizable read (server.linearizable_reads): 0 while the sync it
    // waits for is out, 1 once answered, 2 if it failed.
    std::shared_ptr<int8_t> gate;
    // A write that arrived behind a sync or a linearizable read still out:
    // submitted only once they are answered (it must not be applied before
    // they read), with the identities the session had when it arrived.
    bool held = false;
    std::unique_ptr<Ids> ids;
  };
  // The FIFO itself: a vector read from a moving head. Unlike std::deque it
  // allocates nothing while empty (an idle connection holds no block), and
  // it gives its memory back once a burst has drained. Pushing never
  // happens while a reference into it is held.
  class PendingQueue {
   public:
    bool empty() const { return head_ == items_.size(); }
    size_t size() const { return items_.size() - head_; }
    Pending& front() { return items_[head_]; }
    void push_back(Pending p) {
      if (head_ > 0 && head_ * 2 >= items_.size()) {
        items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
      }
      items_.push_back(std::move(p));
    }
    void pop_front() {
      items_[head_] = Pending{};
      if (++head_ == items_.size()) {
        head_ = 0;
        items_.clear();
        if (items_.capacity() > 16) items_.shrink_to_fit();
      }
    }
    auto begin() { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    auto end() { return items_.end(); }

   private:
    std::vector<Pending> items_;
    size_t head_ = 0;
  };

  void handle_frame(sdk::BytesView frame);
  void handle_connect(sdk::BytesView frame);
  void handle_request(sdk::BytesView frame);
  bool try_four_letter();
  // Runs the reads at the head of the queue and sends finished replies.
  void drain();
  void drain_queue();
  // Submits a write (its payload) as the session's identities `ids` allow;
  // false, with `p` made an error reply, when consensus refuses it.
  bool submit_write(Pending& p, sdk::BytesView payload, const Ids& ids);
  // Submits the held writes from the head of the queue up to the next sync
  // or linearizable read still out.
  void submit_held();
  static bool reads_data(int32_t type);
  // Syncs and linearizable reads in the queue not answered yet: writes that
  // arrive meanwhile are held.
  size_t gates_ = 0;
  size_t held_ = 0;  // held writes in the queue: later writes are held too (order)
  // Brings the server's outstanding count up to date with queue_.
  void count_outstanding() {
    // Reads answered at once are never counted: nothing waits.
    if (counted_ == 0 && queue_.empty()) return;
    int64_t now = state_ == State::closed ? 0 : static_cast<int64_t>(queue_.size());
    if (now != counted_) recount_outstanding(now);
  }
  void recount_outstanding(int64_t now);
  // Whether to stop reading because too many requests are outstanding,
  // here or on the server (replies waiting unread are checked besides).
  bool over_limits();
  // Executes a read request and returns its reply frame.
  std::string execute_read(const Pending& p);
  void reply(int32_t xid, int64_t zxid, proto::Err err, sdk::BytesView body, int64_t received_ms);
  void queue_output(std::string frame);
  void flush_output();
  void send_connect_response(bool valid);
  std::string error_frame(int32_t xid, proto::Err err) const;
  void answered(const Pending& p);
  void handle_auth(int32_t xid, proto::JuteReader& r, int64_t now);
  void handle_sasl(int32_t xid, proto::JuteReader& r, int64_t now);
  // exists/getData/getChildren(2): the reply body, or the error.
  // Answers exists, getData or getChildren(2) of `path`, appending the
  // response body to `body` (nothing on error).
  proto::Err path_read(proto::OpCode op, std::string_view path, bool watch, std::string& body);

  ChannelHost& server_;
  // What every request touches, asked of the host once.
  DataTree& tree_;
  WatchManager& watches_;
  ServerStats& stats_;
  const sdk::Clock& clock_;
  sdk::Executor& executor_;
  std::unique_ptr<ChannelLink> link_;
  uint64_t id_;
  State state_ = State::handshake;
  bool saw_any_bytes_ = false;
  std::string in_;  // input; unparsed from in_pos_
  size_t in_pos_ = 0;
  PendingQueue queue_;
  std::set<int32_t> close_after_;          // xids whose reply ends the connection
  Ids auth_ids_;                           // who this connection has proven to be
  std::unique_ptr<DigestMd5Server> sasl_;  // a SASL exchange under way
  static constexpr std::chrono::milliseconds kFailedLoginDelay{1000};
  // A ConnectRequest is under 100 bytes; a larger first frame is not one.
  static constexpr int64_t kMaxConnectFrameBytes = 4096;
  std::unique_ptr<sdk::Executor::Timer>
      failed_login_;  // closes the connection after a failed login
  std::unique_ptr<sdk::Executor::Timer>
      session_deadline_;  // for a connection still without a session
  std::string out_;       // replies queued in this loop turn
  bool flush_posted_ = false;
  int64_t session_id_ = 0;
  int32_t timeout_ms_ = 0;
  std::string password_;
  bool has_read_only_ = false;
  bool read_only_ = false;
  bool overflowed_ = false;  // past server.max_output_bytes: output dropped, close posted
  // server.max_watch_bytes_per_connection, for a client's connection; and
  // whether a watch past it was refused yet (logged once a connection).
  size_t max_watch_bytes_ = SIZE_MAX;
  bool watch_refused_ = false;
  // Answers a request whose watch was refused: logs the first, and tells
  // the client SYSTEMERROR.
  proto::Err refuse_watch();
  bool closing_after_flush_ = false;
  bool reading_paused_ = false;
  bool resume_posted_ = false;
  int64_t counted_ = 0;  // queue_.size() as the server's outstanding count has it
  // server.max_output_bytes, max_outstanding_per_session, max_outstanding;
  // no limit for a recipe's in-process session.
  size_t max_output_ = SIZE_MAX;
  int64_t max_outstanding_here_ = INT64_MAX;
  int64_t max_outstanding_all_ = INT64_MAX;
  uint64_t received_ = 0, sent_ = 0;
  int64_t last_heard_ms_ = 0;  // steady ms of the last request (or ping)
  common::Lifeline alive_;
};

}  // namespace corral::kernel
