// What the operator-facing outputs (four-letter words, the admin endpoint's
// commands) may read of the server: one read-only view. They change nothing;
// the two words that do (srst, crst) are the server's own.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "corral/sdk/consensus.hpp"
#include "corral/sdk/host.hpp"
#include "server/server_stats.hpp"

namespace corral::kernel {

class DataTree;
class WatchManager;

// One client connection, for cons/stat/connections.
struct ConnectionView {
  std::string remote;
  int64_t session_id = 0;  // 0 before its session opened
  int32_t timeout_ms = 0;
  uint64_t outstanding = 0, received = 0, sent = 0;
  int64_t last_heard_wall_ms = 0;  // wall ms of its last request or ping; 0 before any
};

class ServerView {
 public:
  virtual ~ServerView() = default;
  virtual const Config& config() const = 0;
  virtual const sdk::ServerInfo& info() const = 0;
  virtual const DataTree& tree() const = 0;
  virtual const WatchManager& watches() const = 0;
  // The session each watcher belongs to (wchc/wchp list watches by session).
  virtual std::vector<std::pair<int64_t, std::string>> watches_by_session() const = 0;
  virtual const ServerStats& stats() const = 0;
  virtual std::vector<ConnectionView> connections() const = 0;
  virtual size_t connection_count() const = 0;
  virtual int64_t outstanding() const = 0;
  virtual sdk::Zxid last_zxid() const = 0;
  virtual sdk::ConsensusStatus consensus_status() const = 0;
  virtual std::string mode() const = 0;  // "standalone", "leader", ...
  virtual bool serving() const = 0;
  virtual bool read_only_mode() const = 0;
  virtual bool in_ensemble() const = 0;
  virtual sdk::Endpoint client_endpoint() const = 0;
  // The membership's version: the zxid of the reconfig that installed it.
  virtual sdk::Zxid config_version() const = 0;
  // (zxid, tree digest) after each of the last entries applied, oldest first.
  virtual const std::deque<std::pair<sdk::Zxid, uint64_t>>& digests() const = 0;
  // Bytes the storage keeps in snapshots and in its log.
  virtual uint64_t snapshot_bytes() const = 0;
  virtual uint64_t log_bytes() const = 0;
};

}  // namespace corral::kernel
