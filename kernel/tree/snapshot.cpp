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
#include <condition_variable>
#include <deque>
#include <msgpack.hpp>
#include <mutex>
#include <thread>

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

// The second half of loading a snapshot, on a thread of its own: linking
// each node into its parent's child set and adding up the tree digest. The
// loading thread parses records, makes the nodes and puts them in the path
// table, and hands each node here once it is in place; neither thread
// touches what the other writes (a parent's child set is only ever filled
// here, and the path table only there).
class Finisher {
 public:
  struct Item {
    Node* node;
    Node* parent;  // null for "/"
  };

  Finisher() : thread_([this] { run(); }) {}
  ~Finisher() { finish(); }

  void add(const Item& item) {
    batch_.push_back(item);
    if (batch_.size() >= kBatch) flush();
  }
  // Waits for everything handed over; returns the digest of those nodes.
  uint64_t finish() {
    if (thread_.joinable()) {
      flush();
      {
        std::lock_guard<std::mutex> lock(mu_);
        done_ = true;
      }
      cv_.notify_all();
      thread_.join();
    }
    return digest_;
  }

 private:
  static constexpr size_t kBatch = 8192;
  static constexpr size_t kMaxQueued = 16;  // batches; bounds what is held twice

  void flush() {
    if (batch_.empty()) return;
    std::unique_lock<std::mutex> lock(mu_);
    space_.wait(lock, [&] { return queue_.size() < kMaxQueued; });
    queue_.push_back(std::move(batch_));
    batch_.clear();
    batch_.reserve(kBatch);
    lock.unlock();
    cv_.notify_one();
  }

  void run() {
    while (true) {
      std::vector<Item> work;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty() || done_; });
        if (queue_.empty()) return;
        work = std::move(queue_.front());
        queue_.pop_front();
      }
      space_.notify_one();
      for (const Item& it : work) {
        if (it.parent) it.parent->children().insert(it.node);
        digest_ += DataTree::node_digest(it.node->path(), *it.node);
      }
    }
  }

  std::vector<Item> batch_;
  std::mutex mu_;
  std::condition_variable cv_, space_;
  std::deque<std::vector<Item>> queue_;
  bool done_ = false;
  uint64_t digest_ = 0;  // written by the thread, read after join
  std::thread thread_;
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
  // Depth-first, parents before children, each node reached through its
  // parent's child set (no path lookups).
  std::vector<const Node*> stack{find("/")};
  while (!stack.empty()) {
    const Node& n = *stack.back();
    stack.pop_back();
    pk.pack_array(13);
    std::string_view path = n.path(), data = n.data();
    pk.pack_str(static_cast<uint32_t>(path.size()));
    pk.pack_str_body(path.data(), static_cast<uint32_t>(path.size()));
    if (n.data_null()) {
      pk.pack_nil();
    } else {
      pk.pack_bin(static_cast<uint32_t>(data.size()));
      pk.pack_bin_body(data.data(), static_cast<uint32_t>(data.size()));
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
    n.children().for_each([&](const Node* c) { stack.push_back(c); });
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
  t.drop_nodes();
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
  Finisher finisher;
  for (int64_t i = 0; i < node_count; ++i) {
    at = r.position();
    if (r.array() != 13) return corrupt("bad node record");
    std::string_view path = r.bytes();
    bool data_null = r.nil();
    std::string_view data;
    if (!data_null) data = r.bytes();
    int64_t czxid = r.integer(), mzxid = r.integer(), pzxid = r.integer(), ctime = r.integer(),
            mtime = r.integer();
    int64_t version = r.integer(), cversion = r.integer(), aversion = r.integer();
    int64_t owner = r.integer();
    int64_t acl = r.integer();
    int64_t children = r.integer();
    if (!r.ok() || children < 0 || children > node_count) return corrupt("bad node record");
    if (acl < 0 || static_cast<size_t>(acl) >= t.acls_.size())
      return corrupt("node " + std::string(path) + " refers to a missing ACL");
    bool root = t.nodes_.empty();
    if (root != (path == "/")) return corrupt("node " + std::string(path) + " out of order");
    if (!root && proto::path_error(path)) return corrupt("node " + std::string(path) + " has a malformed path");
    if (t.nodes_.find(path)) return corrupt("node " + std::string(path) + " appears twice");
    // Records come depth first, so siblings follow each other: keep the
    // last parent at hand.
    Node* parent = nullptr;
    if (!root) {
      std::string_view parent_name = proto::parent_path(path);
      if (!last_parent || last_parent->path() != parent_name) last_parent = t.find_mut(parent_name);
      if (!last_parent) return corrupt("node " + std::string(path) + " has no parent");
      parent = last_parent;
    }
    NodePtr made = Node::make(path, data, data_null);
    Node* n = made.get();
    n->czxid = czxid;
    n->mzxid = mzxid;
    n->pzxid = pzxid;
    n->ctime = ctime;
    n->mtime = mtime;
    n->version = static_cast<int32_t>(version);
    n->cversion = static_cast<int32_t>(cversion);
    n->aversion = static_cast<int32_t>(aversion);
    n->ephemeral_owner = owner;
    n->acl = static_cast<uint32_t>(acl);
    if (children > 0) n->children().reserve(static_cast<size_t>(children));
    t.nodes_.insert(made.release());
    t.data_bytes_ += static_cast<int64_t>(path.size() + data.size());
    finisher.add({n, parent});
    if (is_session_owner(owner)) {
      auto s = t.sessions_.find(owner);
      if (s != t.sessions_.end()) s->second.ephemerals.emplace(path);
    } else if (owner != 0) {
      t.containers_.emplace(path);
    }
  }
  at = r.position();
  t.digest_ = finisher.finish();
  if (!r.at_end()) return corrupt("trailing bytes after the last node");
  t.quota_rebuild();
  return t;
}

}  // namespace corral::kernel
