// Apache ZooKeeper's on-disk data, read and written the way ZooKeeper 3.4–3.9
// does: snapshots (`snapshot.<zxid>`, plain, `.gz` or `.snappy`), transaction
// logs (`log.<zxid>`), and the tree they describe, replayed with the same
// rules as ZooKeeper's DataTree so that every stat field comes out as
// ZooKeeper would have it after a restart.
//
// Snapshot (jute, big-endian; the stream may be gzip or snappy-java framed):
//   FileHeader {int magic "ZKSN", int version 2, long dbid}
//   int sessions; sessions x {long id, int timeout}
//   int acls; acls x {long id, vector<ACL>}
//   nodes, parents first: {ustring path ("" is the root), buffer data,
//     long acl, StatPersisted}, ended by the path "/"
//   long Adler-32 of every byte before it, ustring "/"
//   3.6+: {long zxid, int digestVersion, long digest}, then again the seal
// Log: FileHeader {"ZKLG", 2, dbid}, then entries {long Adler-32, buffer
//   (TxnHeader, the txn record, 3.6+ a TxnDigest), byte 'B'}, then zeros.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "corral/proto/records.hpp"
#include "corral/sdk/status.hpp"

namespace corral::zk {

inline constexpr int32_t kSnapMagic = 0x5a4b534e;  // "ZKSN"
inline constexpr int32_t kLogMagic = 0x5a4b4c47;   // "ZKLG"
// Decompressed snapshots larger than this are refused rather than allocated.
inline constexpr uint64_t kMaxSnapshotBytes = uint64_t{64} << 30;

struct ZkNode {
  std::string data;
  bool data_null = false;
  uint32_t acl = 0;  // index into ZkTree::acls
  int64_t czxid = 0, mzxid = 0, ctime = 0, mtime = 0;
  int32_t version = 0, cversion = 0, aversion = 0;
  int64_t owner = 0, pzxid = 0;
  int32_t num_children = 0;
};

// What replaying a log did, for the report.
struct ReplayCounts {
  uint64_t entries = 0;  // applied (zxid after the snapshot's)
  uint64_t skipped = 0;  // already in the snapshot
  uint64_t failed = 0;   // entries ZooKeeper also applied as an error (NONODE, NODEEXISTS...)
};

// ZooKeeper's DataTree and session table, keyed by ZooKeeper's paths (the
// root is "").
class ZkTree {
 public:
  // A new database: "", /zookeeper, /zookeeper/quota, /zookeeper/config.
  ZkTree();

  std::unordered_map<std::string, ZkNode> nodes;
  std::vector<proto::AclList> acls;
  std::map<int64_t, int32_t> sessions;  // id -> timeout (ms)
  int64_t zxid = 0;                     // the last transaction applied

  uint32_t intern_acl(const proto::AclList& acl);
  // Adds a node under an existing parent (counted among its children);
  // false if the parent is missing or the path taken.
  bool add(const std::string& path, ZkNode n);
  // Every path, parents before their children (sorted: a path sorts before
  // every path it is a prefix of).
  std::vector<std::pair<const std::string*, const ZkNode*>> parent_first() const;
  // Applies one log entry's bytes (TxnHeader and txn) as ZooKeeper replays
  // it at startup. A record that cannot be decoded is an error; what
  // ZooKeeper itself applies as an error (a create of an existing node, ...)
  // is counted in `counts.failed` with the same partial effects ZooKeeper has.
  sdk::Status apply(std::string_view entry, ReplayCounts& counts);
  // What ZooKeeper does when it loads a database: the ephemerals of sessions
  // that are not in the session table are deleted. Returns how many.
  size_t drop_orphan_ephemerals();
  // Ephemerals of each session.
  std::unordered_map<int64_t, std::set<std::string>> ephemerals() const;

 private:
  enum class Outcome { ok, no_node, node_exists };
  Outcome create(const std::string& path, std::string_view data, bool data_null,
                 const proto::AclList& acl, int64_t owner, int32_t parent_cversion, int64_t zxid,
                 int64_t time);
  Outcome remove(const std::string& path, int64_t zxid);
  sdk::Status apply_txn(int32_t type, std::string_view body, int64_t session, int64_t zxid,
                        int64_t time, bool nested, bool& failed);
  std::map<std::string, uint32_t, std::less<>> acl_index_;  // by jute encoding
  // Each session's ephemerals, as ZooKeeper keeps them: what a closeSession
  // deletes, found without walking the tree. Kept by add, create and remove.
  std::unordered_map<int64_t, std::set<std::string>> eph_;
};

// ZooKeeper's session password: java.util.Random(id ^ 0xB3415C00).nextBytes(16).
std::string session_password(int64_t session);

// The decompressed bytes of a snapshot file, by its name's suffix (".gz",
// ".snappy", else plain). Errors name `name` and what was wrong.
sdk::Result<std::string> snapshot_stream(std::string_view file, const std::string& name);

// Parses a decompressed snapshot into `t` (replacing it) and checks its
// seals. Errors name `name` and the offset.
sdk::Status read_snapshot(std::string_view stream, const std::string& name, ZkTree& t);
// A snapshot ZooKeeper 3.4–3.9 loads, uncompressed, with an empty digest.
std::string write_snapshot(const ZkTree& t);

// Reads a log file's entries in order; calls `visit(entry bytes, zxid,
// offset)` for each complete one. Stops at the end of what was written
// (zeros) or at an entry cut short (sets `torn`, with its offset). A bad
// checksum or a malformed entry is an error naming the file and offset.
struct LogScan {
  uint64_t entries = 0;
  bool torn = false;
  size_t torn_at = 0;
};
sdk::Status scan_log(std::string_view file, const std::string& name,
                     const std::function<sdk::Status(std::string_view, int64_t, size_t)>& visit,
                     LogScan& scan);

uint32_t adler32(std::string_view bytes, uint32_t start = 1);

// `corral import zookeeper` and `corral export zookeeper`.
struct ImportOptions {
  std::string from;     // ZooKeeper's dataDir (or its version-2 directory)
  std::string log_dir;  // dataLogDir, when apart
  std::string to;       // Corral's data directory (files go to <to>/wal)
};
struct ExportOptions {
  std::string from;  // Corral's data directory (or its wal directory)
  std::string to;    // a ZooKeeper dataDir (files go to <to>/version-2)
};
// Reports progress and results line by line through `say`.
using Say = std::function<void(const std::string&)>;
sdk::Status import_zookeeper(const ImportOptions& o, const Say& say);
sdk::Status export_zookeeper(const ExportOptions& o, const Say& say);

}  // namespace corral::zk
