// ZooKeeper's snapshot and log formats, and its tree's replay rules (see
// zk_data.hpp). The replay follows ZooKeeper's DataTree.processTxn and
// FileTxnSnapLog.processTransaction, including what they do on the errors a
// fuzzy snapshot makes expected (a create of a node the snapshot already
// holds, a delete of one it no longer does).
#include "zk_data.hpp"

#include <snappy-c.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "corral/proto/codes.hpp"
#include "corral/proto/jute.hpp"

namespace corral::zk {

using proto::JuteReader;
using proto::JuteWriter;
using sdk::Errc;
using sdk::Status;

namespace {

// ZooKeeper's op codes (as its logs carry them), for switch cases.
constexpr int32_t op(proto::OpCode c) { return static_cast<int32_t>(c); }
using proto::OpCode;

constexpr int64_t kContainerOwner = INT64_MIN;
constexpr uint64_t kExtendedMask = 0xff00000000000000ULL;

bool session_owner(int64_t owner) {
  return owner != 0 && owner != kContainerOwner &&
         (static_cast<uint64_t>(owner) & kExtendedMask) != kExtendedMask;
}

std::string at(const std::string& name, size_t offset) {
  return name + " at byte " + std::to_string(offset);
}

// A jute vector<ACL>; a null vector is ZooKeeper's OPEN_ACL_UNSAFE.
bool read_acl(JuteReader& r, proto::AclList& acl) {
  int32_t n = r.read_int();
  acl.clear();
  if (!r.ok()) return false;
  if (n == -1) {
    acl = proto::open_acl_unsafe();
    return true;
  }
  // An entry takes at least 12 bytes: perms and two empty strings.
  if (n < 0 || static_cast<uint64_t>(n) * 12 > r.remaining()) {
    r.fail();
    return false;
  }
  acl.resize(static_cast<size_t>(n));
  for (proto::Acl& a : acl) proto::read(r, a);
  return r.ok();
}

std::string acl_key(const proto::AclList& acl) {
  std::string key;
  JuteWriter w(key);
  proto::write(w, acl);
  return key;
}

std::pair<std::string, std::string> split(const std::string& path) {
  size_t slash = path.rfind('/');
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

uint32_t adler32(std::string_view bytes, uint32_t start) {
  uLong a = start;
  while (!bytes.empty()) {
    uInt n = static_cast<uInt>(std::min<size_t>(bytes.size(), 1u << 30));
    a = ::adler32(a, reinterpret_cast<const Bytef*>(bytes.data()), n);
    bytes.remove_prefix(n);
  }
  return static_cast<uint32_t>(a);
}

std::string session_password(int64_t session) {
  // java.util.Random: a 48-bit linear congruential generator.
  constexpr uint64_t kMul = 0x5DEECE66DULL, kMask = (uint64_t{1} << 48) - 1;
  uint64_t seed = (static_cast<uint64_t>(session ^ 0xB3415C00LL) ^ kMul) & kMask;
  std::string out(16, '\0');
  for (size_t i = 0; i < out.size();) {
    seed = (seed * kMul + 0xB) & kMask;
    auto rnd = static_cast<uint32_t>(seed >> 16);  // next(32)
    for (size_t n = std::min<size_t>(out.size() - i, 4); n-- > 0; rnd >>= 8)
      out[i++] = static_cast<char>(rnd & 0xff);
  }
  return out;
}

ZkTree::ZkTree() {
  intern_acl(proto::open_acl_unsafe());
  nodes[""];
  add("/zookeeper", {});
  add("/zookeeper/quota", {});
  add("/zookeeper/config", {});
}

bool ZkTree::add(const std::string& path, ZkNode n) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return false;
  auto parent = nodes.find(path.substr(0, slash));
  if (parent == nodes.end()) return false;
  ZkNode* p = &parent->second;  // stays valid: unordered_map nodes do not move
  const int64_t owner = n.owner;
  if (!nodes.emplace(path, std::move(n)).second) return false;
  ++p->num_children;
  if (session_owner(owner)) eph_[owner].insert(path);
  return true;
}

std::vector<std::pair<const std::string*, const ZkNode*>> ZkTree::parent_first() const {
  std::vector<std::pair<const std::string*, const ZkNode*>> out;
  out.reserve(nodes.size());
  for (const auto& [path, n] : nodes) out.emplace_back(&path, &n);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return *a.first < *b.first; });
  return out;
}

uint32_t ZkTree::intern_acl(const proto::AclList& acl) {
  std::string key = acl_key(acl);
  auto it = acl_index_.find(key);
  if (it != acl_index_.end()) return it->second;
  acls.push_back(acl);
  auto index = static_cast<uint32_t>(acls.size() - 1);
  acl_index_.emplace(std::move(key), index);
  return index;
}

std::unordered_map<int64_t, std::set<std::string>> ZkTree::ephemerals() const {
  std::unordered_map<int64_t, std::set<std::string>> out;
  for (const auto& [path, n] : nodes)
    if (session_owner(n.owner)) out[n.owner].insert(path);
  return out;
}

size_t ZkTree::drop_orphan_ephemerals() {
  size_t dropped = 0;
  for (const auto& [owner, paths] : ephemerals()) {
    if (sessions.count(owner)) continue;
    for (const std::string& p : paths)
      if (remove(p, zxid) == Outcome::ok) ++dropped;
  }
  return dropped;
}

ZkTree::Outcome ZkTree::create(const std::string& path, std::string_view data, bool data_null,
                               const proto::AclList& acl, int64_t owner, int32_t parent_cversion,
                               int64_t zxid, int64_t time) {
  if (path.find('/') == std::string::npos) return Outcome::no_node;
  auto p = nodes.find(split(path).first);
  if (p == nodes.end()) return Outcome::no_node;
  ZkNode& parent = p->second;
  if (nodes.count(path)) return Outcome::node_exists;
  if (parent_cversion == -1) parent_cversion = parent.cversion + 1;
  if (parent_cversion > parent.cversion) {
    parent.cversion = parent_cversion;
    parent.pzxid = zxid;
  }
  ++parent.num_children;
  ZkNode n;
  n.data = std::string(data);
  n.data_null = data_null;
  n.acl = intern_acl(acl);
  n.czxid = n.mzxid = n.pzxid = zxid;
  n.ctime = n.mtime = time;
  n.owner = owner;
  nodes[path] = std::move(n);  // `p` is not used past this point
  if (session_owner(owner)) eph_[owner].insert(path);
  return Outcome::ok;
}

ZkTree::Outcome ZkTree::remove(const std::string& path, int64_t zxid) {
  if (path.find('/') == std::string::npos) return Outcome::no_node;
  auto p = nodes.find(split(path).first);
  if (p == nodes.end()) return Outcome::no_node;
  // As ZooKeeper: the parent's side changes before the child is looked up.
  if (zxid > p->second.pzxid) p->second.pzxid = zxid;
  auto n = nodes.find(path);
  if (n == nodes.end()) return Outcome::no_node;
  --p->second.num_children;
  if (session_owner(n->second.owner)) {
    auto e = eph_.find(n->second.owner);
    if (e != eph_.end() && e->second.erase(path) && e->second.empty()) eph_.erase(e);
  }
  nodes.erase(n);
  return Outcome::ok;
}

Status ZkTree::apply(std::string_view entry, ReplayCounts& counts) {
  JuteReader r(entry);
  int64_t session = r.read_long();
  r.read_int();  // cxid
  int64_t txn_zxid = r.read_long();
  int64_t time = r.read_long();
  int32_t type = r.read_int();
  if (!r.ok()) return {Errc::corrupt, "a transaction header cut short"};
  bool failed = false;
  Status st = apply_txn(type, entry.substr(r.position()), session, txn_zxid, time, false, failed);
  if (!st) return st;
  if (failed) ++counts.failed;
  ++counts.entries;
  if (txn_zxid > zxid) zxid = txn_zxid;
  return {};
}

Status ZkTree::apply_txn(int32_t type, std::string_view body, int64_t session, int64_t txn_zxid,
                         int64_t time, bool nested, bool& failed) {
  JuteReader r(body);
  auto malformed = [&] {
    char z[24];
    std::snprintf(z, sizeof z, "%llx", static_cast<unsigned long long>(txn_zxid));
    return Status{Errc::corrupt, "a malformed transaction of type " + std::to_string(type) +
                                     " (zxid 0x" + z + ")"};
  };
  switch (type) {
    case op(OpCode::create):
    case op(OpCode::create2):
    case op(OpCode::create_ttl):
    case op(OpCode::create_container): {
      std::string path(r.read_string());
      bool data_null = false;
      std::string_view data = r.read_buffer(&data_null);
      proto::AclList acl;
      read_acl(r, acl);
      int64_t owner = 0;
      int32_t parent_cversion = -1;
      if (type == op(OpCode::create) || type == op(OpCode::create2)) {
        bool ephemeral = r.read_bool();
        if (!r.ok()) return malformed();
        // CreateTxnV0 (ZooKeeper 3.3) had no parentCVersion.
        if (r.remaining() >= 4) parent_cversion = r.read_int();
        owner = ephemeral ? session : 0;
      } else {
        parent_cversion = r.read_int();
        if (type == op(OpCode::create_ttl))
          owner = static_cast<int64_t>(kExtendedMask | static_cast<uint64_t>(r.read_long()));
        else
          owner = kContainerOwner;
      }
      if (!r.ok()) return malformed();
      Outcome o = create(path, data, data_null, acl, owner, parent_cversion, txn_zxid, time);
      if (o != Outcome::ok) failed = true;
      // A plain create of an existing node still moves its parent's cversion
      // and pzxid forward (ZooKeeper's setCversionPzxid), as a fuzzy
      // snapshot may hold the node but not the parent's update.
      if (o == Outcome::node_exists && type == op(OpCode::create)) {
        auto parent = nodes.find(split(path).first);
        if (parent != nodes.end()) {
          ZkNode& pn = parent->second;
          int32_t cv = parent_cversion == -1 ? pn.cversion + 1 : parent_cversion;
          if (cv > pn.cversion) {
            pn.cversion = cv;
            pn.pzxid = txn_zxid;
          }
        }
      }
      return {};
    }
    case op(OpCode::remove):
    case op(OpCode::delete_container): {
      std::string path(r.read_string());
      if (!r.ok()) return malformed();
      if (remove(path, txn_zxid) != Outcome::ok) failed = true;
      return {};
    }
    case op(OpCode::set_data):
    case op(OpCode::reconfig): {
      std::string path(r.read_string());
      bool data_null = false;
      std::string_view data = r.read_buffer(&data_null);
      int32_t version = r.read_int();
      if (!r.ok()) return malformed();
      auto n = nodes.find(path);
      if (n == nodes.end()) {
        failed = true;
        return {};
      }
      n->second.data = std::string(data);
      n->second.data_null = data_null;
      n->second.mtime = time;
      n->second.mzxid = txn_zxid;
      n->second.version = version;
      return {};
    }
    case op(OpCode::set_acl): {
      std::string path(r.read_string());
      proto::AclList acl;
      read_acl(r, acl);
      int32_t version = r.read_int();
      if (!r.ok()) return malformed();
      auto n = nodes.find(path);
      if (n == nodes.end()) {
        failed = true;
        return {};
      }
      n->second.aversion = version;
      n->second.acl = intern_acl(acl);
      return {};
    }
    case op(OpCode::create_session): {
      if (nested) return malformed();
      int32_t timeout = r.read_int();
      if (!r.ok()) return malformed();
      sessions[session] = timeout;
      return {};
    }
    case op(OpCode::close_session): {
      if (nested) return malformed();
      sessions.erase(session);
      // 3.6+ lists the paths to delete; older logs have no body. Either
      // way every ephemeral of the session goes, at this zxid.
      // With zookeeper.closeSessionTxn.enabled=false only the 12-byte
      // TxnDigest may follow the header.
      std::vector<std::string> listed;
      if (r.remaining() >= 4) {
        JuteReader paths = r;
        int32_t n = paths.read_count(4);
        for (int32_t i = 0; i < n && paths.ok(); ++i) listed.emplace_back(paths.read_string());
        constexpr size_t kTxnDigest = 4 + 8;
        if (!paths.ok() || (paths.remaining() != 0 && paths.remaining() != kTxnDigest)) {
          if (r.remaining() != kTxnDigest) return malformed();
          listed.clear();
        }
      }
      for (const std::string& p : listed) remove(p, txn_zxid);
      std::vector<std::string> rest;
      if (auto e = eph_.find(session); e != eph_.end())
        rest.assign(e->second.begin(), e->second.end());
      for (const std::string& p : rest) remove(p, txn_zxid);
      return {};
    }
    case op(OpCode::error):
      failed = true;
      return {};
    case op(OpCode::check):
      return {};
    case op(OpCode::multi): {
      if (nested) return malformed();
      // Txn {int type, buffer data}: at least 8 bytes each.
      int32_t n = r.read_count(8);
      std::vector<std::pair<int32_t, std::string_view>> subs;
      for (int32_t i = 0; i < n && r.ok(); ++i) {
        int32_t t = r.read_int();
        subs.emplace_back(t, r.read_buffer());
      }
      if (!r.ok()) return malformed();
      // One error among them means none was applied.
      if (std::any_of(subs.begin(), subs.end(),
                      [](const auto& s) { return s.first == op(OpCode::error); })) {
        failed = true;
        return {};
      }
      for (const auto& [t, data] : subs) {
        switch (t) {
          case op(OpCode::create):
          case op(OpCode::create_ttl):
          case op(OpCode::create_container):
          case op(OpCode::remove):
          case op(OpCode::delete_container):
          case op(OpCode::set_data):
          case op(OpCode::check):
            break;
          default:
            return Status{Errc::corrupt, "a multi transaction holds an operation of type " +
                                             std::to_string(t) + ", which ZooKeeper never logs"};
        }
        Status st = apply_txn(t, data, session, txn_zxid, time, true, failed);
        if (!st) return st;
      }
      return {};
    }
    default:
      return {Errc::corrupt, "a transaction of unknown type " + std::to_string(type)};
  }
}

// ---- compression ----

namespace {

Status too_large(const std::string& name) {
  return {Errc::invalid_argument, name + ": decompresses to more than " +
                                      std::to_string(kMaxSnapshotBytes >> 30) + " GiB; refused"};
}

sdk::Result<std::string> gunzip(std::string_view in, const std::string& name) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return Status{Errc::internal, "zlib init failed"};
  std::string out;
  out.resize(std::max<size_t>(in.size() * 4, 1 << 16));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(std::min<size_t>(in.size(), UINT32_MAX));
  size_t fed = z.avail_in;
  int rc = Z_OK;
  while (true) {
    if (z.total_out == out.size()) {
      if (out.size() >= kMaxSnapshotBytes) {
        inflateEnd(&z);
        return too_large(name);
      }
      out.resize(std::min<uint64_t>(out.size() * 2, kMaxSnapshotBytes));
    }
    z.next_out = reinterpret_cast<Bytef*>(out.data() + z.total_out);
    z.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - z.total_out, UINT32_MAX));
    if (z.avail_in == 0 && fed < in.size()) {
      z.avail_in = static_cast<uInt>(std::min<size_t>(in.size() - fed, UINT32_MAX));
      fed += z.avail_in;
    }
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    if (rc == Z_BUF_ERROR && z.avail_in == 0 && fed == in.size()) break;
  }
  size_t got = z.total_out, consumed = z.total_in;
  inflateEnd(&z);
  if (rc != Z_STREAM_END)
    return Status{Errc::corrupt, at(name, consumed) + " of the gzip stream: " +
                                     (rc == Z_DATA_ERROR ? "damaged data" : "cut short")};
  out.resize(got);
  return out;
}

// snappy-java's stream (SnappyOutputStream): an 8-byte magic, two
// big-endian ints (version, compatible version), then blocks, each a
// big-endian int length and that many bytes of raw snappy. A header may
// recur (streams concatenated).
sdk::Result<std::string> unsnappy(std::string_view in, const std::string& name) {
  static constexpr char kMagic[8] = {'\x82', 'S', 'N', 'A', 'P', 'P', 'Y', '\0'};
  std::string out;
  size_t pos = 0;
  auto be32 = [&](size_t p) {
    return static_cast<uint32_t>(static_cast<uint8_t>(in[p])) << 24 |
           static_cast<uint32_t>(static_cast<uint8_t>(in[p + 1])) << 16 |
           static_cast<uint32_t>(static_cast<uint8_t>(in[p + 2])) << 8 |
           static_cast<uint32_t>(static_cast<uint8_t>(in[p + 3]));
  };
  if (in.size() < 16 || std::memcmp(in.data(), kMagic, 8) != 0)
    return Status{Errc::corrupt, name + ": not a snappy-java stream (no SNAPPY header)"};
  while (pos < in.size()) {
    if (in.size() - pos >= 16 && std::memcmp(in.data() + pos, kMagic, 8) == 0) {
      pos += 16;
      continue;
    }
    if (in.size() - pos < 4) return Status{Errc::corrupt, at(name, pos) + ": a block cut short"};
    uint32_t len = be32(pos);
    pos += 4;
    if (len > in.size() - pos) return Status{Errc::corrupt, at(name, pos) + ": a block cut short"};
    size_t raw = 0;
    // A block's claimed length is checked before anything is sized by it:
    // no snappy element expands more than 64 bytes from 2.
    if (snappy_uncompressed_length(in.data() + pos, len, &raw) != SNAPPY_OK ||
        raw > 32 * static_cast<size_t>(len) + 64 ||
        snappy_validate_compressed_buffer(in.data() + pos, len) != SNAPPY_OK)
      return Status{Errc::corrupt, at(name, pos) + ": a damaged snappy block"};
    if (out.size() + raw > kMaxSnapshotBytes) return too_large(name);
    size_t before = out.size();
    out.resize(before + raw);
    if (snappy_uncompress(in.data() + pos, len, out.data() + before, &raw) != SNAPPY_OK)
      return Status{Errc::corrupt, at(name, pos) + ": a damaged snappy block"};
    out.resize(before + raw);
    pos += len;
  }
  return out;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

sdk::Result<std::string> snapshot_stream(std::string_view file, const std::string& name) {
  if (ends_with(name, ".gz")) return gunzip(file, name);
  if (ends_with(name, ".snappy")) return unsnappy(file, name);
  return std::string(file);
}

// ---- snapshots ----

Status read_snapshot(std::string_view stream, const std::string& name, ZkTree& t) {
  JuteReader r(stream);
  auto corrupt = [&](size_t offset, const std::string& what) {
    return Status{Errc::corrupt, at(name, offset) + ": " + what};
  };
  int32_t magic = r.read_int();
  r.read_int();   // version
  r.read_long();  // dbid
  if (!r.ok() || magic != kSnapMagic)
    return corrupt(0, "not a ZooKeeper snapshot (no ZKSN header)");
  ZkTree out;
  out.nodes.clear();
  // A node record takes at least 68 bytes.
  out.nodes.reserve(stream.size() / 96);
  // {long id, int timeout}: 12 bytes each.
  int32_t sessions = r.read_count(12);
  for (int32_t i = 0; i < sessions; ++i) {
    int64_t id = r.read_long();
    out.sessions[id] = r.read_int();
  }
  if (!r.ok()) return corrupt(r.position(), "the session table is cut short");
  // {long id, vector<ACL>}: at least 12 bytes each.
  std::unordered_map<int64_t, uint32_t> acl_ids;
  acl_ids[-1] = out.intern_acl(proto::open_acl_unsafe());
  int32_t acl_lists = r.read_count(12);
  for (int32_t i = 0; i < acl_lists && r.ok(); ++i) {
    size_t where = r.position();
    int64_t id = r.read_long();
    proto::AclList acl;
    if (!read_acl(r, acl)) return corrupt(where, "a damaged ACL list");
    acl_ids[id] = out.intern_acl(acl);
  }
  if (!r.ok()) return corrupt(r.position(), "the ACL table is cut short");
  while (true) {
    size_t where = r.position();
    std::string path(r.read_string());
    if (!r.ok()) return corrupt(where, "the node list is cut short (no end marker)");
    if (path == "/") break;
    ZkNode n;
    std::string_view data = r.read_buffer(&n.data_null);
    n.data = std::string(data);
    int64_t acl = r.read_long();
    n.czxid = r.read_long();
    n.mzxid = r.read_long();
    n.ctime = r.read_long();
    n.mtime = r.read_long();
    n.version = r.read_int();
    n.cversion = r.read_int();
    n.aversion = r.read_int();
    n.owner = r.read_long();
    n.pzxid = r.read_long();
    if (!r.ok()) return corrupt(where, "node " + path + " is cut short");
    auto a = acl_ids.find(acl);
    if (a == acl_ids.end())
      return corrupt(where, "node " + path + " refers to ACL " + std::to_string(acl) +
                                ", which the snapshot does not list");
    n.acl = a->second;
    if (path.empty()) {
      if (!out.nodes.emplace(path, std::move(n)).second)
        return corrupt(where, "the root appears twice");
    } else if (path[0] != '/') {
      return corrupt(where, "node '" + path + "' has a malformed path");
    } else if (!out.add(path, std::move(n))) {
      return corrupt(
          where,
          "node " + path + (out.nodes.count(path) ? " appears twice" : " comes before its parent"));
    }
  }
  if (!out.nodes.count("")) return corrupt(r.position(), "the snapshot has no root node");
  // The seal: an Adler-32 of everything before it, then "/".
  auto seal = [&](const char* what) -> Status {
    size_t where = r.position();
    uint32_t expect = adler32(stream.substr(0, where));
    int64_t val = r.read_long();
    std::string_view slash = r.read_string();
    if (!r.ok() || slash != "/") return corrupt(where, std::string(what) + " is missing");
    if (static_cast<uint64_t>(val) != expect)
      return corrupt(where, std::string(what) + " does not match: the file is damaged");
    return {};
  };
  if (Status st = seal("the checksum"); !st) return st;
  // 3.6+: the digest of the tree at some zxid, sealed again; 3.9 then adds
  // the last zxid processed, sealed again. Nothing else may follow.
  // (With the digest off, 3.9 writes only the last zxid: 8 bytes and a
  // 13-byte seal.)
  constexpr size_t kLastZxidBlock = 8 + 8 + 4 + 1;
  if (r.remaining() > 0 && r.remaining() != kLastZxidBlock) {
    size_t where = r.position();
    r.read_long();
    int32_t digest_version = r.read_int();
    if (digest_version < 2)
      r.read_string();
    else
      r.read_long();
    if (!r.ok()) return corrupt(where, "the digest is cut short");
    if (Status st = seal("the digest's checksum"); !st) return st;
  }
  if (r.remaining() > 0) {
    size_t where = r.position();
    r.read_long();
    if (!r.ok()) return corrupt(where, "the last processed zxid is cut short");
    if (Status st = seal("the last zxid's checksum"); !st) return st;
  }
  if (r.remaining() > 0) return corrupt(r.position(), "unexpected bytes after the snapshot's end");
  t = std::move(out);
  return {};
}

std::string write_snapshot(const ZkTree& t) {
  std::string out;
  out.reserve(64 << 10);
  JuteWriter w(out);
  w.write_int(kSnapMagic);
  w.write_int(2);
  w.write_long(-1);
  w.write_int(static_cast<int32_t>(t.sessions.size()));
  for (const auto& [id, timeout] : t.sessions) {
    w.write_long(id);
    w.write_int(timeout);
  }
  // ACL ids 1.. for the lists in use.
  std::vector<int64_t> ids(t.acls.size(), 0);
  for (const auto& [path, n] : t.nodes) ids[n.acl] = 1;
  int64_t next = 1;
  for (int64_t& id : ids)
    if (id) id = next++;
  w.write_int(static_cast<int32_t>(next - 1));
  for (size_t i = 0; i < t.acls.size(); ++i) {
    if (!ids[i]) continue;
    w.write_long(ids[i]);
    proto::write(w, t.acls[i]);
  }
  // Parents first; the root is "".
  for (const auto& [path, node] : t.parent_first()) {
    const ZkNode& n = *node;
    w.write_string(*path);
    if (n.data_null)
      w.write_null_buffer();
    else
      w.write_buffer(n.data);
    w.write_long(ids[n.acl]);
    w.write_long(n.czxid);
    w.write_long(n.mzxid);
    w.write_long(n.ctime);
    w.write_long(n.mtime);
    w.write_int(n.version);
    w.write_int(n.cversion);
    w.write_int(n.aversion);
    w.write_long(n.owner);
    w.write_long(n.pzxid);
  }
  w.write_string("/");
  auto seal = [&] {
    uint32_t sum = adler32(out);
    w.write_long(sum);
    w.write_string("/");
  };
  seal();
  // An empty digest (zxid 0): ZooKeeper computes its own and compares none.
  w.write_long(0);
  w.write_int(2);
  w.write_long(0);
  seal();
  return out;
}

// ---- logs ----

Status scan_log(std::string_view file, const std::string& name,
                const std::function<Status(std::string_view, int64_t, size_t)>& visit,
                LogScan& scan) {
  auto be = [&](size_t p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | static_cast<uint8_t>(file[p + static_cast<size_t>(i)]);
    return v;
  };
  if (file.size() < 16) {  // a header cut short: the file was being created
    scan.torn = true;
    scan.torn_at = 0;
    return {};
  }
  if (static_cast<int32_t>(be(0, 4)) != kLogMagic)
    return {Errc::corrupt, at(name, 0) + ": not a ZooKeeper transaction log (no ZKLG header)"};
  size_t where = 16;
  while (true) {
    if (file.size() - where < 12) {
      if (!std::all_of(file.begin() + static_cast<ptrdiff_t>(where), file.end(),
                       [](char c) { return c == 0; })) {
        scan.torn = true;
        scan.torn_at = where;
      }
      return {};
    }
    uint64_t crc = be(where, 8);
    auto len = static_cast<int32_t>(be(where + 8, 4));
    if (len == 0) return {};  // the end of what was written
    if (len < 0) return {Errc::corrupt, at(name, where) + ": an entry of negative length"};
    size_t body = where + 12, after = body + static_cast<size_t>(len);
    // ZooKeeper: an entry without all its bytes and its 'B' end marker "was
    // partial" — the write a crash cut short.
    if (static_cast<size_t>(len) + 1 > file.size() - body || file[after] != 'B') {
      scan.torn = true;
      scan.torn_at = where;
      return {};
    }
    std::string_view bytes = file.substr(body, static_cast<size_t>(len));
    if (adler32(bytes) != crc)
      return {Errc::corrupt, at(name, where) + ": the entry's checksum does not match; " +
                                 "the log is damaged here (" + std::to_string(scan.entries) +
                                 " entries of this file before it are intact)"};
    JuteReader h(bytes);
    h.read_long();
    h.read_int();
    int64_t zxid = h.read_long();
    if (!h.ok()) return {Errc::corrupt, at(name, where) + ": an entry too short for its header"};
    if (Status st = visit(bytes, zxid, where); !st)
      return {st.code(), at(name, where) + ": " + st.message()};
    ++scan.entries;
    where = after + 1;
  }
}

}  // namespace corral::zk
