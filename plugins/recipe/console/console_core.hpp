// The console's logic that needs no server: data encodings, the rights an
// ACL gives a caller, ZooKeeper's error names, the ensemble's configuration
// and `srvr` answers, and the metric samples behind the charts. The plugin
// and its unit tests link it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "corral/common/base64.hpp"
#include "corral/proto/codes.hpp"
#include "corral/proto/records.hpp"

namespace corral::console {

// Standard alphabet, padding optional; nullopt on any other character.
using common::base64_decode;
using common::base64_encode;

// ZooKeeper's text for an error code ("NoAuth", "Directory not empty"), its
// name as one word ("NoAuth", "NotEmpty"), and the HTTP status the console
// answers it with.
std::string_view error_name(proto::Err err);
std::string error_code(proto::Err err);
int http_status(proto::Err err);
// ZooKeeper's message: "KeeperErrorCode = NoAuth for /a".
std::string error_message(proto::Err err, std::string_view path);

// "cdrwa" from proto::perm bits, and back (nullopt on another letter).
std::string perms_text(int32_t perms);
std::optional<int32_t> perms_from_text(std::string_view text);

// The rights `ids` have on a znode with `acl`, as ZooKeeper's check grants
// them: super has all; world:anyone matches everyone; ip by address or
// network; digest, sasl and x509 by equal id; an empty ACL gives all. A
// digest masked by getACL ("alice:x", for a caller without ADMIN) matches
// the caller's digest of that user.
int32_t rights_of(const proto::AclList& acl, const std::vector<proto::Id>& ids);
bool ip_in(std::string_view spec, std::string_view ip);

// "user" from the caller's identities: the digest or sasl user, the x509
// subject, or empty when there is none.
std::string user_of(const std::vector<proto::Id>& ids);

// Create modes by the names the API uses; nullopt for another name.
std::optional<proto::CreateMode> create_mode(std::string_view name);

// One voting or observing member from /zookeeper/config.
struct Member {
  int64_t id = 0;
  std::string peer;    // "host:port" of the quorum port
  std::string client;  // "host:port", empty when none is given
  bool observer = false;
};
struct EnsembleConfig {
  std::vector<Member> members;
  std::string version;  // hex, as the config's version= line has it
};
EnsembleConfig parse_ensemble_config(std::string_view text);

// What a member's `srvr` says.
struct Srvr {
  bool serving = false;
  std::string mode;  // leader, follower, observer, standalone, read-only
  int64_t zxid = -1;
  double latency_min = 0, latency_avg = 0, latency_max = 0;
  int64_t outstanding = 0, connections = 0, znodes = 0, received = 0, sent = 0;
};
std::optional<Srvr> parse_srvr(std::string_view text);

// The numbers the charts need from one reading of the metrics (Prometheus'
// text format, as /metrics serves it).
struct Reading {
  int64_t wall_ms = 0;
  double requests = 0;   // corral_requests_total, all operations
  double writes = 0;     // corral_writes_submitted_total
  double snapshots = 0;  // corral_snapshots_total
  // Cumulative bucket counts by upper bound (seconds), +Inf as infinity.
  std::map<double, double> request_buckets, fsync_buckets;
  std::map<std::string, double> gauges;  // the unlabelled gauges by name
};
Reading parse_exposition(std::string_view text, int64_t wall_ms);

// The q-quantile of what two cumulative bucket sets differ by, interpolated
// inside its bucket; nullopt when nothing was observed between them.
std::optional<double> quantile_between(const std::map<double, double>& before,
                                       const std::map<double, double>& after, double q);
// The upper bound of the highest bucket that gained an observation.
std::optional<double> max_between(const std::map<double, double>& before,
                                  const std::map<double, double>& after);

// An hour (or what it is configured to) of chart points, one per reading
// after the first.
class History {
 public:
  explicit History(size_t capacity) : capacity_(capacity) {}
  void add(Reading r);
  // {"interval_ms": ..., "t": [...], "series": {...}}
  std::string json(int64_t interval_ms) const;
  size_t size() const { return points_.size(); }

  static const std::vector<std::string>& series_names();

 private:
  struct Point {
    int64_t wall_ms;
    std::vector<std::optional<double>> values;  // in series_names() order
  };
  size_t capacity_;
  std::optional<Reading> last_;
  std::deque<Point> points_;
};

}  // namespace corral::console
