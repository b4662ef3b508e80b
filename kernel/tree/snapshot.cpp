// DataTree's snapshot format: a stream of msgpack values —
//   ["corral-tree", 1, acl_count, session_count, node_count]
//   acl_count   x [[perms, scheme, id], ...]
//   session_count x [id, timeout_ms, password]
//   node_count  x [path, data, czxid, mzxid, pzxid, ctime, mtime,
//                  version, cversion, aversion, ephemeral_owner, acl,
//                  children]
// (children: how many follow, so a reader can size the set once.)
// data is nil for a node set with a null buffer. Nodes come parent first,
// so a reader can link each to an existing parent.
// Integrity (checksums) is the storage plugin's job.
#include <algorithm>
#include <msgpack.hpp>

#include "tree/data_tree.hpp"
#include "tree/msgpack_reader.hpp"

namespace corral::kernel {

namespace {

constexpr const char* kMagic = "corral-tree";
constexpr int kVersion = 1;

// A msgpack write buffer that hands full chunks to the sink.
class ChunkBuffer {
 public:
  explicit ChunkBuffer(const std::function<void(std::string_view)>& sink) : sink_(sink) {
    buf_.reserve(kChunk + 1024);
  }
  void write(const char* p, size_t n) {
    buf_.append(p, n);
    if (buf_.size() >= kChunk) flush();
  }
  void flush() {
    if (!buf_.empty()) sink_(buf_);
    buf_.clear();
  }

 private:
  static constexpr size_t kChunk = 1 << 20;
  const std::function<void(std::string_view)>& sink_;
  std::string buf_;
};

}  // namespace

void DataTree::serialize(const std::function<void(std::string_view)>& sink) const {
  ChunkBuffer buf(sink);
  msgpack::packer<ChunkBuffer> pk(buf);
  pk.pack_array(5);
  pk.pack(kMagic);
  pk.pack(kVersion);
  pk.pack(static_cast<uint64_t>(acls_.size()));
  pk.pack(static_cast<uint64_t>(sessions_.size()));
  pk.pack(static_cast<uint64_t>(nodes_.size()));
  for (const proto::AclList& list : acls_) {
    pk.pack_array(static_cast<uint32_t>(list.size()));
    for (const proto::Acl& a : list) {
      pk.pack_array(3);
      pk.pack(a.perms);
      pk.pack(a.id.scheme);
      pk.pack(a.id.id);
    }
  }
  for (const auto& [id, s] : sessions_) {
    pk.pack_array(3);
    pk.pack(id);
    pk.pack(s.timeout_ms);
    pk.pack_bin(static_cast<uint32_t>(s.password.size()));
    pk.pack_bin_body(s.password.data(), static_cast<uint32_t>(s.password.size()));
  }
  // Depth-first, parents before children.
  std::vector<const std::string*> stack;
  stack.push_back(&nodes_.find("/")->first);
  std::string child_path;
  while (!stack.empty()) {
    const std::string& path = *stack.back();
    stack.pop_back();
    const Node& n = nodes_.find(path)->second;
    pk.pack_array(13);
    pk.pack(path);
    if (n.data_null) {
      pk.pack_nil();
    } else {
      pk.pack_bin(static_cast<uint32_t>(n.data.size()));
      pk.pack_bin_body(n.data.data(), static_cast<uint32_t>(n.data.size()));
    }
    pk.pack(n.czxid);
    pk.pack(n.mzxid);
    pk.pack(n.pzxid);
    pk.pack(n.ctime);
    pk.pack(n.mtime);
    pk.pack(n.version);
    pk.pack(n.cversion);
    pk.pack(n.aversion);
    pk.pack(n.ephemeral_owner);
    pk.pack(n.acl);
    pk.pack(n.num_children());
    if (n.children) {
      // Sorted, so that equal trees give equal snapshots on every replica.
      std::vector<std::string_view> names(n.children->begin(), n.children->end());
      std::sort(names.begin(), names.end(), std::greater<>());
      for (std::string_view c : names) {
        child_path.assign(path == "/" ? "" : path);
        child_path += '/';
        child_path += c;
        stack.push_back(&nodes_.find(child_path)->first);
      }
    }
  }
  buf.flush();
}

sdk::Result<DataTree> DataTree::deserialize(std::string_view bytes) {
  using sdk::Errc;
  MsgpackReader r(bytes);
  size_t at = 0;
  auto corrupt = [&](const std::string& what) {
    return sdk::Status{Errc::corrupt, "tree snapshot at byte " + std::to_string(at) + ": " + what};
  };
  if (r.array() != 5 || r.bytes() != kMagic) return corrupt("not a Corral tree snapshot");
  int64_t version = r.integer();
  if (version != kVersion) return corrupt("format version " + std::to_string(version) + " is not supported");
  int64_t acl_count = r.integer(), session_count = r.integer(), node_count = r.integer();
  if (!r.ok() || acl_count < 0 || session_count < 0 || node_count < 1 ||
      static_cast<uint64_t>(node_count) > bytes.size())
    return corrupt("bad header");
  DataTree t;
  t.nodes_.clear();
  t.acls_.clear();
  t.data_bytes_ = 0;
  t.nodes_.reserve(static_cast<size_t>(node_count));
  for (int64_t i = 0; i < acl_count; ++i) {
    at = r.position();
    uint32_t n = r.array();
    proto::AclList acl;
    for (uint32_t k = 0; k < n && r.ok(); ++k) {
      if (r.array() != 3) return corrupt("bad ACL entry");
      int32_t perms = static_cast<int32_t>(r.integer());
      std::string scheme(r.bytes()), id(r.bytes());
      acl.push_back({perms, {std::move(scheme), std::move(id)}});
    }
    if (!r.ok()) return corrupt("bad ACL list");
    t.acls_.push_back(std::move(acl));
  }
  for (int64_t i = 0; i < session_count; ++i) {
    at = r.position();
    if (r.array() != 3) return corrupt("bad session record");
    int64_t id = r.integer();
    int32_t timeout = static_cast<int32_t>(r.integer());
    std::string_view pw = r.bytes();
    if (!r.ok()) return corrupt("bad session record");
    t.add_session(id, timeout, std::string(pw));
  }
  Node* last_parent = nullptr;
  std::string last_parent_name;
  for (int64_t i = 0; i < node_count; ++i) {
    at = r.position();
    if (r.array() != 13) return corrupt("bad node record");
    std::string_view path = r.bytes();
    Node n;
    n.data_null = r.nil();
    if (!n.data_null) n.data = r.bytes();
    n.czxid = r.integer();
    n.mzxid = r.integer();
    n.pzxid = r.integer();
    n.ctime = r.integer();
    n.mtime = r.integer();
    n.version = static_cast<int32_t>(r.integer());
    n.cversion = static_cast<int32_t>(r.integer());
    n.aversion = static_cast<int32_t>(r.integer());
    n.ephemeral_owner = r.integer();
    int64_t acl = r.integer();
    int64_t children = r.integer();
    if (!r.ok() || children < 0 || children > node_count) return corrupt("bad node record");
    if (children > 0) {
      n.children = std::make_unique<std::unordered_set<std::string_view>>();
      n.children->reserve(static_cast<size_t>(children));
    }
    if (acl < 0 || static_cast<size_t>(acl) >= t.acls_.size())
      return corrupt("node " + std::string(path) + " refers to a missing ACL");
    n.acl = static_cast<uint32_t>(acl);
    bool root = t.nodes_.empty();
    if (root != (path == "/")) return corrupt("node " + std::string(path) + " out of order");
    // Records come depth first, so siblings follow each other: keep the
    // last parent at hand.
    std::string_view parent_name = proto::parent_path(path);
    int64_t owner = n.ephemeral_owner;
    t.data_bytes_ += static_cast<int64_t>(path.size() + n.data.size());
    auto [it, fresh] = t.nodes_.emplace(std::string(path), std::move(n));
    if (!fresh) return corrupt("node " + it->first + " appears twice");
    if (!root) {
      if (!last_parent || last_parent_name != parent_name) {
        last_parent = t.find_mut(parent_name);
        last_parent_name.assign(parent_name);
      }
      if (!last_parent) return corrupt("node " + it->first + " has no parent");
      t.link_child(*last_parent, it->first);
    }
    if (is_session_owner(owner)) {
      auto s = t.sessions_.find(owner);
      if (s != t.sessions_.end()) s->second.ephemerals.insert(it->first);
    } else if (owner != 0) {
      t.containers_.insert(it->first);
    }
  }
  at = r.position();
  if (!r.at_end()) return corrupt("trailing bytes after the last node");
  t.digest_ = 0;
  for (const auto& [path, n] : t.nodes_) t.digest_ += node_digest(path, n);
  t.quota_rebuild();
  return t;
}

}  // namespace corral::kernel
