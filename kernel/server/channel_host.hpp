// The one door between a Channel and the server: everything a client
// connection needs of the rest of the kernel. Server implements it; the
// Channel's unit tests implement it over a bare tree.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "corral/sdk/host.hpp"
#include "corral/sdk/peers.hpp"
#include "session/auth.hpp"
#include "session/sasl.hpp"

namespace corral::kernel {

class AuditLog;
class Channel;
class DataTree;
class WatchManager;
struct ServerStats;

class ChannelHost {
 public:
  virtual ~ChannelHost() = default;

  // Services.
  virtual sdk::Executor& executor() = 0;
  virtual const sdk::Clock& clock() const = 0;
  virtual sdk::Logger& log() = 0;
  virtual const Config& config() const = 0;
  virtual ServerStats& stats() = 0;
  // A reply was sent for a request of `type` after `seconds`.
  virtual void observe_request(int32_t type, double seconds) = 0;

  // The state reads are served from.
  virtual DataTree& tree() = 0;
  virtual WatchManager& watches() = 0;
  virtual sdk::Zxid last_zxid() const = 0;
  // True when this server takes client sessions (it has a leader or is one).
  virtual bool serving() const = 0;
  // Read-only mode is on and this is an ensemble member.
  virtual bool read_only_mode() const = 0;
  // The ensemble's members (empty when standalone).
  virtual const std::vector<sdk::PeerSpec>& members() const = 0;
  // Four-letter word reply, or nullopt if `word` is not one (or not allowed).
  virtual std::optional<std::string> four_letter(std::string_view word) = 0;
  // SASL DIGEST-MD5 users; null when SASL is off.
  virtual const SaslUsers* sasl_users() const = 0;
  // A fresh random token (SASL nonces).
  virtual std::string random_token() = 0;

  // Sessions.
  virtual int32_t negotiate_timeout(int32_t requested) const = 0;
  // Starts a new session for `ch`; the channel hears on_session_created().
  virtual sdk::Status create_session(Channel& ch, int32_t timeout_ms, int64_t& id,
                                     std::string& password) = 0;
  // Re-attaches an existing session to `ch`; false if unknown or wrong password.
  virtual bool reattach_session(Channel& ch, int64_t id, std::string_view password,
                                int32_t timeout_ms) = 0;
  // A read-only session (id 0 asks for a new one); false when unknown.
  virtual bool read_only_session(int64_t id, std::string_view password, int64_t& out_id,
                                 std::string& out_password) = 0;
  // Keeps the session alive; false if it expired.
  virtual bool touch_session(int64_t id) = 0;
  virtual void channel_closed(Channel& ch) = 0;

  // Requests.
  // Orders a client write; the channel hears on_applied() once it is applied.
  virtual sdk::Status submit(int32_t type, int64_t session, int32_t cxid, std::string_view payload,
                             const Ids& ids) = 0;
  // ZooKeeper's sync.
  virtual void sync(std::function<void(const sdk::Status&)> done) = 0;
  // Requests received and not yet answered, on every channel.
  // The audit log; null when it is off.
  virtual AuditLog* audit() = 0;
  virtual int64_t outstanding() const = 0;
  virtual void add_outstanding(int64_t delta) = 0;
  // `ch` stopped reading at server.max_outstanding; it hears
  // Channel::resume_reading() once answers bring the count under it.
  virtual void wait_for_outstanding(Channel& ch) = 0;
};

}  // namespace corral::kernel
