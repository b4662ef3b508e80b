// `corral import zookeeper`: a ZooKeeper data directory becomes a Corral one
// (the `wal` plugin's snapshot and epochs). `corral export zookeeper`: the
// way back, a snapshot ZooKeeper starts from.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "corral_data.hpp"
#include "tree/data_tree.hpp"
#include "wal_format.hpp"
#include "zk_data.hpp"

namespace corral::zk {

namespace fs = std::filesystem;
using offline::first_data_file;
using offline::write_file;
using sdk::Errc;
using sdk::Status;

namespace {

// ZooKeeper keeps its files in <dir>/version-2.
fs::path version2(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir / "version-2", ec)) return dir / "version-2";
  return dir;
}

// "<prefix><hex>[suffix]" as ZooKeeper names files (Long.toHexString).
bool zk_name(const std::string& name, const std::string& prefix, int64_t& zxid,
             std::string* suffix = nullptr) {
  if (name.rfind(prefix, 0) != 0) return false;
  size_t end = name.find('.', prefix.size());
  std::string digits = name.substr(prefix.size(), end - prefix.size());
  if (digits.empty() || digits.size() > 16 ||
      digits.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    return false;
  zxid = static_cast<int64_t>(std::stoull(digits, nullptr, 16));
  std::string rest = end == std::string::npos ? "" : name.substr(end);
  if (suffix) *suffix = rest;
  return suffix ? (rest.empty() || rest == ".gz" || rest == ".snappy") : rest.empty();
}

// A decimal epoch file of ZooKeeper's (acceptedEpoch, currentEpoch); -1 if absent.
int64_t read_epoch_file(const fs::path& path) {
  std::ifstream in(path);
  int64_t v = -1;
  if (in && (in >> v) && v >= 0 && v <= UINT32_MAX) return v;
  return -1;
}

// Corral's tree snapshot (kernel/tree/snapshot.cpp) as msgpack.
class Packer {
 public:
  std::string out;
  void array(uint32_t n) {
    if (n < 16)
      byte(0x90 | n);
    else
      byte(0xdd), be(n, 4);
  }
  void integer(int64_t v) {
    if (v >= 0 && v <= 0x7f) {
      byte(static_cast<uint8_t>(v));
    } else if (v >= 0) {
      byte(0xcf), be(static_cast<uint64_t>(v), 8);
    } else {
      byte(0xd3), be(static_cast<uint64_t>(v), 8);
    }
  }
  void nil() { byte(0xc0); }
  void str(std::string_view s) { byte(0xdb), be(s.size(), 4), out.append(s); }
  void bin(std::string_view s) { byte(0xc6), be(s.size(), 4), out.append(s); }

 private:
  void byte(uint32_t b) { out.push_back(static_cast<char>(b)); }
  void be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
  }
};

std::string corral_body(const ZkTree& t) {
  Packer p;
  size_t estimate = 64;
  for (const auto& [path, n] : t.nodes) estimate += path.size() + n.data.size() + 48;
  p.out.reserve(estimate);
  p.array(5);
  p.str("corral-tree");
  p.integer(1);
  p.integer(static_cast<int64_t>(t.acls.size()));
  p.integer(static_cast<int64_t>(t.sessions.size()));
  p.integer(static_cast<int64_t>(t.nodes.size()));
  for (const proto::AclList& list : t.acls) {
    p.array(static_cast<uint32_t>(list.size()));
    for (const proto::Acl& a : list) {
      p.array(3);
      p.integer(a.perms);
      p.str(a.id.scheme);
      p.str(a.id.id);
    }
  }
  for (const auto& [id, timeout] : t.sessions) {
    p.array(3);
    p.integer(id);
    p.integer(timeout);
    p.bin(session_password(id));
  }
  for (const auto& [path, node] : t.parent_first()) {
    const ZkNode& n = *node;
    p.array(13);
    p.str(path->empty() ? "/" : *path);
    if (n.data_null)
      p.nil();
    else
      p.bin(n.data);
    for (int64_t v : {n.czxid, n.mzxid, n.pzxid, n.ctime, n.mtime}) p.integer(v);
    p.integer(n.version);
    // ZooKeeper stores the children ever created and shows clients the
    // changes (creates and deletes) as 2 * created - children; Corral
    // stores what clients see.
    p.integer(2 * static_cast<int64_t>(n.cversion) - n.num_children);
    p.integer(n.aversion);
    p.integer(n.owner);
    p.integer(n.acl);
    p.integer(n.num_children);
  }
  return p.out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Status import_zookeeper(const ImportOptions& o, const Say& say) {
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  const fs::path snap_dir = version2(o.from);
  const fs::path log_dir = o.log_dir.empty() ? snap_dir : version2(o.log_dir);
  for (const fs::path& d : {snap_dir, log_dir})
    if (!fs::is_directory(d, ec))
      return {Errc::not_found, d.string() + ": no such directory (ZooKeeper's dataDir)"};
  std::vector<std::pair<int64_t, fs::path>> snapshots, logs;
  for (const auto& e : fs::directory_iterator(snap_dir, ec)) {
    int64_t z;
    std::string suffix;
    if (zk_name(e.path().filename().string(), "snapshot.", z, &suffix))
      snapshots.emplace_back(z, e.path());
  }
  for (const auto& e : fs::directory_iterator(log_dir, ec)) {
    int64_t z;
    if (zk_name(e.path().filename().string(), "log.", z)) logs.emplace_back(z, e.path());
  }
  if (snapshots.empty() && logs.empty())
    return {Errc::not_found,
            snap_dir.string() + " holds no ZooKeeper snapshot.* or log.* files" +
                (log_dir != snap_dir ? " (nor does " + log_dir.string() + ")" : "")};
  std::sort(snapshots.rbegin(), snapshots.rend());
  std::sort(logs.begin(), logs.end());

  // The newest snapshot that reads whole, as ZooKeeper picks it.
  ZkTree tree;
  int64_t snap_zxid = 0;
  bool found = false;
  std::string why_not;
  for (const auto& [z, path] : snapshots) {
    wal::MappedFile m(path.string(), true);
    if (!m.ok()) return {Errc::io_error, path.string() + ": " + m.error()};
    // A plain snapshot is read where it is mapped; a compressed one is
    // inflated into memory first.
    std::string inflated;
    Status st;
    std::string name = path.filename().string();
    if (name.size() > 3 && (name.substr(name.size() - 3) == ".gz" ||
                            (name.size() > 7 && name.substr(name.size() - 7) == ".snappy"))) {
      auto stream = snapshot_stream(m.data(), path.string());
      if (stream) inflated = std::move(stream.value());
      st = stream ? Status() : stream.status();
    }
    if (st) st = read_snapshot(inflated.empty() ? m.data() : inflated, path.string(), tree);
    if (!st) {
      say("skipping " + path.string() + ": " + st.message());
      why_not += "\n  " + st.message();
      continue;
    }
    snap_zxid = tree.zxid = z;
    found = true;
    say("snapshot " + path.string() + ": " + std::to_string(tree.nodes.size()) + " znodes, " +
        std::to_string(tree.sessions.size()) + " sessions, zxid " + offline::zxid_hex(z));
    break;
  }
  if (!snapshots.empty() && !found)
    return {Errc::corrupt, "no snapshot in " + snap_dir.string() + " reads whole:" + why_not};

  // The logs after it: those that start after the snapshot, and the last one
  // that starts at or before it (it holds the entries right after it).
  size_t first = 0;
  for (size_t i = 0; i < logs.size(); ++i)
    if (logs[i].first <= snap_zxid) first = i;
  ReplayCounts counts;
  for (size_t i = first; i < logs.size(); ++i) {
    const fs::path& path = logs[i].second;
    wal::MappedFile m(path.string(), true);
    if (!m.ok()) return {Errc::io_error, path.string() + ": " + m.error()};
    LogScan scan;
    Status st = scan_log(
        m.data(), path.string(),
        [&](std::string_view entry, int64_t zxid, size_t) -> Status {
          if (zxid <= snap_zxid) {
            ++counts.skipped;
            return {};
          }
          return tree.apply(entry, counts);
        },
        scan);
    if (!st) return st;
    if (scan.torn)
      say(path.string() + ": the last entry, at byte " + std::to_string(scan.torn_at) +
          ", is incomplete (a write cut short); the import stops before it" +
          (i + 1 < logs.size() ? " and goes on with the next log" : ""));
  }
  if (!logs.empty())
    say("log: " + std::to_string(counts.entries) + " entries replayed after the snapshot" +
        (counts.failed ? " (" + std::to_string(counts.failed) +
                             " of them applied as errors, as ZooKeeper does)"
                       : "") +
        ", last zxid " + offline::zxid_hex(tree.zxid));
  if (size_t dropped = tree.drop_orphan_ephemerals())
    say(std::to_string(dropped) +
        " ephemeral znodes of sessions that no longer exist were deleted, as ZooKeeper does on "
        "loading");

  // Corral's files: <to>/wal/snapshot.<zxid> and epochs.
  auto made = offline::new_wal_dir(o.to);
  if (!made) return made.status();
  const std::string wal = made.value();
  size_t ephemerals = 0;
  for (const auto& [id, paths] : tree.ephemerals()) ephemerals += paths.size();
  const size_t znodes = tree.nodes.size(), sessions = tree.sessions.size();
  const int64_t zxid = tree.zxid;
  std::string body = corral_body(tree);
  tree = ZkTree();  // its memory goes back before the check below needs as much
  // Load it as the server will: what it cannot load is not written.
  {
    auto loaded = kernel::DataTree::deserialize(body);
    if (!loaded)
      return {Errc::internal, "the converted tree does not load: " + loaded.status().message()};
  }
  // Epochs: what ZooKeeper recorded, else the snapshot's; zxids go on from
  // ZooKeeper's either way.
  auto zxid_epoch = static_cast<int64_t>(sdk::zxid_epoch(zxid));
  int64_t accepted = std::max(zxid_epoch, std::max(read_epoch_file(snap_dir / "acceptedEpoch"),
                                                   read_epoch_file(log_dir / "acceptedEpoch")));
  int64_t current = std::max(zxid_epoch, std::max(read_epoch_file(snap_dir / "currentEpoch"),
                                                  read_epoch_file(log_dir / "currentEpoch")));
  wal::SnapshotChecksums sums;
  sums.add(body);
  if (Status st =
          offline::write_wal_files(wal, zxid, {wal::snapshot_header(zxid), body, sums.tail()},
                                   static_cast<uint32_t>(accepted), static_cast<uint32_t>(current));
      !st)
    return st;
  char took[32];
  std::snprintf(took, sizeof took, "%.2f", seconds_since(t0));
  say("imported " + std::to_string(znodes) + " znodes, " + std::to_string(sessions) +
      " sessions (" + std::to_string(ephemerals) + " ephemerals) at zxid " +
      offline::zxid_hex(zxid) + ", epoch " + std::to_string(current) + " into " + wal + " in " +
      took + " s; start corrald with server.data_dir = \"" + o.to + "\" and the wal storage");
  return {};
}

Status export_zookeeper(const ExportOptions& o, const Say& say) {
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  offline::Recovered r;
  if (Status st = offline::recover(o.from, std::numeric_limits<sdk::Zxid>::max(), say, r); !st)
    return st;
  const kernel::DataTree& tree = r.tree;
  const sdk::Zxid last = r.zxid;
  ZkTree z;
  z.nodes.clear();
  z.zxid = last;
  tree.walk([&](const kernel::Node& n) {
    std::string path(n.path() == "/" ? std::string_view() : n.path());
    ZkNode out;
    out.data = std::string(n.data());
    out.data_null = n.data_null();
    out.acl = z.intern_acl(tree.acl(n));
    out.czxid = n.czxid;
    out.mzxid = n.mzxid;
    out.ctime = n.ctime;
    out.mtime = n.mtime;
    out.version = n.version;
    out.cversion = (n.cversion() + n.num_children()) / 2;  // see corral_body
    out.aversion = n.aversion();
    out.owner = n.ephemeral_owner();
    out.pzxid = n.pzxid();
    if (path.empty())
      z.nodes[path] = std::move(out);
    else
      z.add(path, std::move(out));  // parents come first
  });
  for (const auto& [id, s] : tree.sessions()) z.sessions[id] = s.timeout_ms;

  const fs::path dir = fs::path(o.to) / "version-2";
  fs::create_directories(dir, ec);
  if (ec) return {Errc::io_error, dir.string() + ": " + ec.message()};
  if (std::string f = first_data_file(dir.string(), {"log.", "snapshot."}); !f.empty())
    return {Errc::already_exists, dir.string() + " already holds ZooKeeper data (" + f +
                                      "); export into a new, empty dataDir"};
  char name[40];
  std::snprintf(name, sizeof name, "snapshot.%" PRIx64, static_cast<uint64_t>(last));
  if (Status st = write_file((dir / name).string(), {write_snapshot(z)}); !st) return st;
  uint32_t accepted = std::max(sdk::zxid_epoch(last), r.accepted_epoch);
  uint32_t current = std::max(sdk::zxid_epoch(last), r.current_epoch);
  for (auto [file, v] : {std::pair{"acceptedEpoch", accepted}, std::pair{"currentEpoch", current}})
    if (Status st = write_file((dir / file).string(), {std::to_string(v)}); !st) return st;
  char took[32];
  std::snprintf(took, sizeof took, "%.2f", seconds_since(t0));
  say("exported " + std::to_string(z.nodes.size()) + " znodes, " +
      std::to_string(z.sessions.size()) + " sessions at zxid " + offline::zxid_hex(last) + " to " +
      (dir / name).string() + " in " + took + " s; start ZooKeeper with dataDir=" + o.to +
      (z.sessions.empty() ? std::string()
                          : ". Its clients open new sessions (ZooKeeper derives a session's "
                            "password from its id; Corral's are random), and the old sessions' "
                            "ephemerals go when their timeouts pass"));
  return {};
}

}  // namespace corral::zk
