// DataTree's snapshot format: a stream of msgpack values —
//   ["corral-tree", 1, acl_count, session_count, node_count]
//   acl_count   x [[perms, scheme, id], ...]
//   session_count x [id, timeout_ms, password]
//   node_count  x [path, data, czxid, mzxid, pzxid, ctime, mtime,
//                  version, cversion, aversion, ephemeral_owner, acl]
// Nodes come parent first, so a reader can link each to an existing parent.
// Integrity (checksums) is the storage plugin's job.
#include <algorithm>
#include <msgpack.hpp>

#include "tree/data_tree.hpp"

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
    pk.pack_array(12);
    pk.pack(path);
    pk.pack_bin(static_cast<uint32_t>(n.data.size()));
    pk.pack_bin_body(n.data.data(), static_cast<uint32_t>(n.data.size()));
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
  auto corrupt = [](size_t offset, const std::string& what) {
    return sdk::Status{Errc::corrupt, "tree snapshot at byte " + std::to_string(offset) + ": " + what};
  };
  size_t off = 0;
  try {
    auto next = [&]() { return msgpack::unpack(bytes.data(), bytes.size(), off); };
    msgpack::object_handle h = next();
    auto header = h.get().as<std::tuple<std::string, int, uint64_t, uint64_t, uint64_t>>();
    if (std::get<0>(header) != kMagic) return corrupt(0, "not a Corral tree snapshot");
    if (std::get<1>(header) != kVersion)
      return corrupt(0, "format version " + std::to_string(std::get<1>(header)) + " is not supported");
    DataTree t;
    t.nodes_.clear();
    t.data_bytes_ = 0;
    t.acls_.clear();
    for (uint64_t i = 0; i < std::get<2>(header); ++i) {
      auto list = next().get().as<std::vector<std::tuple<int32_t, std::string, std::string>>>();
      proto::AclList acl;
      for (auto& [perms, scheme, id] : list) acl.push_back({perms, {scheme, id}});
      t.acls_.push_back(std::move(acl));
    }
    for (uint64_t i = 0; i < std::get<3>(header); ++i) {
      auto [id, timeout, pw] = next().get().as<std::tuple<int64_t, int32_t, std::string>>();
      t.add_session(id, timeout, std::move(pw));
    }
    for (uint64_t i = 0; i < std::get<4>(header); ++i) {
      size_t at = off;
      msgpack::object_handle nh = next();
      const msgpack::object& o = nh.get();
      if (o.type != msgpack::type::ARRAY || o.via.array.size != 12) return corrupt(at, "bad node record");
      const msgpack::object* f = o.via.array.ptr;
      std::string path = f[0].as<std::string>();
      Node n;
      n.data = f[1].as<std::string>();
      n.czxid = f[2].as<int64_t>();
      n.mzxid = f[3].as<int64_t>();
      n.pzxid = f[4].as<int64_t>();
      n.ctime = f[5].as<int64_t>();
      n.mtime = f[6].as<int64_t>();
      n.version = f[7].as<int32_t>();
      n.cversion = f[8].as<int32_t>();
      n.aversion = f[9].as<int32_t>();
      n.ephemeral_owner = f[10].as<int64_t>();
      n.acl = f[11].as<uint32_t>();
      if (n.acl >= t.acls_.size()) return corrupt(at, "node " + path + " refers to a missing ACL");
      bool root = t.nodes_.empty();
      if (root != (path == "/")) return corrupt(at, "node " + path + " out of order");
      int64_t owner = n.ephemeral_owner;
      t.data_bytes_ += static_cast<int64_t>(path.size() + n.data.size());
      auto [it, ok] = t.nodes_.emplace(std::move(path), std::move(n));
      if (!ok) return corrupt(at, "node " + it->first + " appears twice");
      if (!root) {
        Node* parent = t.find_mut(proto::parent_path(it->first));
        if (!parent) return corrupt(at, "node " + it->first + " has no parent");
        t.link_child(*parent, it->first);
      }
      if (owner != 0) {
        auto s = t.sessions_.find(owner);
        if (s != t.sessions_.end()) s->second.ephemerals.insert(it->first);
      }
    }
    if (off != bytes.size()) return corrupt(off, "trailing bytes after the last node");
    return t;
  } catch (const std::exception& e) {
    return corrupt(off, e.what());
  }
}

}  // namespace corral::kernel
