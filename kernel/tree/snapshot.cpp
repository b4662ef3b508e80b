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
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "tree/data_tree.hpp"
#include "tree/msgpack_reader.hpp"
#include "tree/slab_arena.hpp"

namespace corral::kernel {

namespace {

constexpr const char* kMagic = "corral-tree";
constexpr size_t kPrefetchAhead = 8;  // nodes
// A walked snapshot puts the children of a node with more than this many
// onto its stack over several steps.
constexpr size_t kOpenAbove = 4096;
constexpr int kVersion = 1;
// Regions of 2 MiB faulted in ahead of a load (deserialize) of a snapshot
// of at least kFillAheadFrom bytes (a smaller one is over before a thread
// would have started).
constexpr uint32_t kFillAheadRegions = 4;
constexpr size_t kFillAheadFrom = size_t{16} << 20;

// Collects msgpack values and hands them to the sink in pieces of exactly
// kChunk bytes (the last one shorter), so that a storage plugin whose blocks
// are that size can frame each piece as it comes, without copying it.
// Values are written straight into the buffer through a cursor: a snapshot
// writes some fifteen values per znode, and this is the loop that does it.
class ChunkBuffer {
 public:
  static constexpr size_t kChunk = 1 << 20;
  explicit ChunkBuffer(const std::function<void(std::string_view)>& sink,
                       size_t initial = 2 * kChunk)
      : sink_(sink) {
    buf_.resize(initial);
  }

  // Makes room for `n` more bytes; call before writing values worth them.
  void reserve(size_t n) {
    if (used_ + n > buf_.size()) buf_.resize(std::max(buf_.size() * 2, used_ + n));
  }
  void array(uint32_t n) {
    if (n < 16)
      put(static_cast<uint8_t>(0x90 | n));
    else if (n <= 0xffff)
      head16(0xdc, static_cast<uint16_t>(n));
    else
      head32(0xdd, n);
  }
  void integer(int64_t v) {
    if (v >= 0) {
      uint64_t u = static_cast<uint64_t>(v);
      if (u <= 0x7f)
        put(static_cast<uint8_t>(u));
      else if (u <= 0xff)
        put(0xcc), put(static_cast<uint8_t>(u));
      else if (u <= 0xffff)
        head16(0xcd, static_cast<uint16_t>(u));
      else if (u <= 0xffffffffULL)
        head32(0xce, static_cast<uint32_t>(u));
      else
        head64(0xcf, u);
    } else if (v >= -32) {
      put(static_cast<uint8_t>(static_cast<int8_t>(v)));
    } else if (v >= INT32_MIN) {
      head32(0xd2, static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else {
      head64(0xd3, static_cast<uint64_t>(v));
    }
  }
  void nil() { put(0xc0); }
  void string(std::string_view s) {
    if (s.size() < 32)
      put(static_cast<uint8_t>(0xa0 | s.size()));
    else if (s.size() <= 0xff)
      put(0xd9), put(static_cast<uint8_t>(s.size()));
    else if (s.size() <= 0xffff)
      head16(0xda, static_cast<uint16_t>(s.size()));
    else
      head32(0xdb, static_cast<uint32_t>(s.size()));
    raw(s);
  }
  void bytes(std::string_view b) {
    if (b.size() <= 0xff)
      put(0xc4), put(static_cast<uint8_t>(b.size()));
    else if (b.size() <= 0xffff)
      head16(0xc5, static_cast<uint16_t>(b.size()));
    else
      head32(0xc6, static_cast<uint32_t>(b.size()));
    raw(b);
  }

  // Called after each record: passes on every full chunk.
  void pass_full_chunks() {
    if (used_ < kChunk) return;
    size_t off = 0;
    for (; used_ - off >= kChunk; off += kChunk) sink_(std::string_view(buf_.data() + off, kChunk));
    std::memmove(buf_.data(), buf_.data() + off, used_ - off);
    used_ -= off;
  }
  void flush() {
    pass_full_chunks();
    if (used_) sink_(std::string_view(buf_.data(), used_));
    used_ = 0;
  }
  // Bytes already encoded; reserve room for them first.
  void raw(std::string_view s) {
    std::memcpy(buf_.data() + used_, s.data(), s.size());
    used_ += s.size();
  }
  // What is held and not yet passed on.
  std::string_view held() const { return {buf_.data(), used_}; }
  void clear() { used_ = 0; }
  // Drops what is held and the buffer's memory: nothing may be written after.
  void release() {
    std::string().swap(buf_);
    used_ = 0;
  }

 private:
  void put(uint8_t b) { buf_[used_++] = static_cast<char>(b); }
  template <class T>
  void big_endian(uint8_t tag, T v) {
    put(tag);
    for (size_t i = sizeof(T); i-- > 0;) put(static_cast<uint8_t>(v >> (8 * i)));
  }
  void head16(uint8_t tag, uint16_t v) { big_endian(tag, v); }
  void head32(uint8_t tag, uint32_t v) { big_endian(tag, v); }
  void head64(uint8_t tag, uint64_t v) { big_endian(tag, v); }

  const std::function<void(std::string_view)>& sink_;
  std::string buf_;
  size_t used_ = 0;
};

// Room for a record's array header and values other than strings.
constexpr size_t kRecordSlack = 16 * 9;

// The tree digest of a snapshot being loaded, added up on a thread of its
// own. The loading thread parses records, makes the nodes and links each
// into its parent's child set, and hands each node here once it is in
// place. The digest reads a node's path, data, mzxid and version, which no
// one writes once the node is handed over; the loading thread writes only
// child sets, and their blocks, where a node keeps its aversion: that one
// comes along with the node.
class Finisher {
 public:
  Finisher() : thread_([this] { run(); }) {}
  ~Finisher() { finish(); }

  void add(const Node* node, int32_t aversion) {
    batch_.push_back({node, aversion});
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
      std::vector<Entry> work;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty() || done_; });
        if (queue_.empty()) return;
        work = std::move(queue_.front());
        queue_.pop_front();
      }
      space_.notify_one();
      for (const Entry& e : work)
        digest_ += DataTree::node_digest(e.node->path(), *e.node, e.aversion);
    }
  }

  struct Entry {
    const Node* node;
    int32_t aversion;
  };
  std::vector<Entry> batch_;
  std::mutex mu_;
  std::condition_variable cv_, space_;
  std::deque<std::vector<Entry>> queue_;
  bool done_ = false;
  uint64_t digest_ = 0;  // written by the thread, read after join
  std::thread thread_;
};

}  // namespace

namespace {

// One node's record.
void write_node(ChunkBuffer& w, const Node& n) {
  w.reserve(kRecordSlack + n.path().size() + n.data().size());
  w.array(13);
  w.string(n.path());
  if (n.data_null())
    w.nil();
  else
    w.bytes(n.data());
  w.integer(n.czxid);
  w.integer(n.mzxid);
  w.integer(n.pzxid());
  w.integer(n.ctime);
  w.integer(n.mtime);
  w.integer(n.version);
  w.integer(n.cversion());
  w.integer(n.aversion());
  w.integer(n.ephemeral_owner());
  w.integer(n.acl);
  w.integer(n.num_children());
}

// Siblings sit in hash order, far apart in memory: ask for the ones about
// to be written ahead of time instead of waiting for each.
void prefetch_ahead(const std::vector<const Node*>& stack) {
  if (stack.size() >= kPrefetchAhead) {
    const char* ahead = reinterpret_cast<const char*>(stack[stack.size() - kPrefetchAhead]);
    __builtin_prefetch(ahead);
    __builtin_prefetch(ahead + 64);
    __builtin_prefetch(ahead + 128);
  }
}

void write_head(ChunkBuffer& w, const std::vector<proto::AclList>& acls,
                const std::unordered_map<int64_t, SessionRecord>& sessions, size_t nodes) {
  w.reserve(kRecordSlack + std::string_view(kMagic).size());
  w.array(5);
  w.string(kMagic);
  w.integer(kVersion);
  w.integer(static_cast<int64_t>(acls.size()));
  w.integer(static_cast<int64_t>(sessions.size()));
  w.integer(static_cast<int64_t>(nodes));
  for (const proto::AclList& list : acls) {
    w.reserve(kRecordSlack);
    w.array(static_cast<uint32_t>(list.size()));
    for (const proto::Acl& a : list) {
      w.reserve(kRecordSlack + a.id.scheme.size() + a.id.id.size());
      w.array(3);
      w.integer(a.perms);
      w.string(a.id.scheme);
      w.string(a.id.id);
    }
    w.pass_full_chunks();
  }
  for (const auto& [id, s] : sessions) {
    w.reserve(kRecordSlack + s.password.size());
    w.array(3);
    w.integer(id);
    w.integer(s.timeout_ms);
    w.bytes(s.password);
    w.pass_full_chunks();
  }
}

std::atomic<uint64_t> g_walk_ids{0};

}  // namespace

void DataTree::serialize(const std::function<void(std::string_view)>& sink) const {
  ChunkBuffer w(sink);
  write_head(w, acls_, sessions_, nodes_.size());
  // Depth-first, parents before children, each node reached through its
  // parent's child set (no path lookups).
  std::vector<const Node*> stack{find("/")};
  while (!stack.empty()) {
    const Node& n = *stack.back();
    stack.pop_back();
    prefetch_ahead(stack);
    write_node(w, n);
    w.pass_full_chunks();
    n.children().for_each([&](const Node* c) { stack.push_back(c); });
  }
  w.flush();
}

// The snapshot under way: the same walk as serialize(), a step at a time.
// A node the walk has not written yet is either unchanged since the start,
// or kept here as it was then (its record and its children's addresses),
// by its address: a kept node may since have been freed, and its address
// given to a node made later, so the walk looks here first. A node not
// kept that the walk meets is in the tree, unchanged.
struct DataTree::SnapshotWalk {
  explicit SnapshotWalk(std::function<void(std::string_view)> s)
      : sink(std::move(s)), out(sink), scratch(sink, 4096) {}
  std::function<void(std::string_view)> sink;
  ChunkBuffer out;
  ChunkBuffer scratch;  // encodes a record to keep; never passes anything on
  uint64_t id = 0;
  std::vector<const Node*> stack;
  struct Kept {
    std::string record;
    std::vector<const Node*> children;
  };
  std::unordered_map<const Node*, Kept> kept;
  size_t kept_bytes = 0;
  // A node written whose many children go onto the stack a step at a
  // time, and the slot its set is read from next.
  Node* open = nullptr;
  size_t cursor = 0;
  // Abandoned, and going on without writing only to mark the nodes it had
  // not reached (end_snapshot); kept nodes hold no record then.
  bool draining = false;
  static size_t cost(const Kept& k) {
    return sizeof(Kept) + 32 + k.record.capacity() + k.children.capacity() * sizeof(Node*);
  }
};

void DataTree::WalkDeleter::operator()(SnapshotWalk* w) const noexcept { delete w; }

uint64_t DataTree::begin_snapshot(std::function<void(std::string_view)> sink) {
  if (walk_) return 0;
  std::unique_ptr<SnapshotWalk, WalkDeleter> w(new SnapshotWalk(std::move(sink)));
  w->id = ++g_walk_ids;
  write_head(w->out, acls_, sessions_, nodes_.size());
  w->stack.reserve(nodes_.size());  // grows by pages as it fills, never copied
  w->stack.push_back(find("/"));
  walk_ = std::move(w);
  mark_ = !mark_;  // every node is now unwritten
  return walk_->id;
}

DataTree::SnapshotStep DataTree::snapshot_step(uint64_t id, size_t budget) {
  if (!walk_ || walk_->draining || walk_->id != id) return SnapshotStep::gone;
  SnapshotWalk& w = *walk_;
  if (!walk_on(w, budget)) return SnapshotStep::more;
  // Every node kept was one the walk had still to reach: none is left.
  // One left would be a node the snapshot lacks.
  walk_left_ = w.kept.size();
  w.out.flush();
  walk_.reset();
  return walk_left_ == 0 ? SnapshotStep::done : SnapshotStep::gone;
}

bool DataTree::walk_on(SnapshotWalk& w, size_t budget) {
  const bool write = !w.draining;
  if (w.open) budget = open_children(w, budget);
  while (budget > 0 && !w.stack.empty() && !w.open) {
    --budget;
    const Node* p = w.stack.back();
    w.stack.pop_back();
    prefetch_ahead(w.stack);
    if (!w.kept.empty()) {
      auto it = w.kept.find(p);
      if (it != w.kept.end()) {
        if (write) {
          w.out.reserve(it->second.record.size());
          w.out.raw(it->second.record);
          w.out.pass_full_chunks();
        }
        w.stack.insert(w.stack.end(), it->second.children.begin(), it->second.children.end());
        w.kept_bytes -= SnapshotWalk::cost(it->second);
        w.kept.erase(it);
        continue;
      }
    }
    // Unwritten and unchanged: written as it is, and marked written.
    Node* n = const_cast<Node*>(p);
    if (write) {
      write_node(w.out, *n);
      w.out.pass_full_chunks();
    }
    if (n->children().size() > kOpenAbove) {
      // Its children go onto the stack over the next steps; it counts as
      // unwritten until they are all there (see keep_for_snapshot).
      w.open = n;
      w.cursor = 0;
      budget = open_children(w, budget);
    } else {
      n->set_snapshot_mark(mark_);
      n->children().for_each([&](const Node* c) { w.stack.push_back(c); });
    }
  }
  return w.stack.empty() && !w.open;
}

void DataTree::end_snapshot(uint64_t id) {
  if (!walk_ || walk_->draining || walk_->id != id) return;
  // The nodes it had not reached yet still carry the old mark: every node
  // must carry the tree's again before the next snapshot flips it. Rather
  // than a pass over the whole tree now (a pause that grows with the tree:
  // tens of milliseconds a million nodes), the walk goes on without writing
  // as entries are applied (settle_snapshot); until it has, a snapshot is
  // not walked (begin_snapshot gives 0). What it holds to write goes now.
  SnapshotWalk& w = *walk_;
  w.id = 0;
  w.draining = true;
  w.out.release();
  w.scratch.release();
  w.kept_bytes = 0;
  for (auto& [node, k] : w.kept) {
    std::string().swap(k.record);
    w.kept_bytes += SnapshotWalk::cost(k);
  }
}

bool DataTree::settle_snapshot(size_t budget) {
  if (!walk_ || !walk_->draining) return true;
  if (!walk_on(*walk_, budget)) return false;
  walk_left_ = 0;  // (a kept node left holds no record: nothing was to be written)
  walk_.reset();
  return true;
}

size_t DataTree::snapshot_kept_bytes() const { return walk_ ? walk_->kept_bytes : 0; }

size_t DataTree::open_children(SnapshotWalk& w, size_t budget) {
  // A slot costs a fraction of a node's record.
  constexpr size_t kSlotsANode = 16;
  const size_t slots = budget > SIZE_MAX / kSlotsANode ? SIZE_MAX : budget * kSlotsANode;
  w.cursor = w.open->children().for_each_from(w.cursor, slots,
                                              [&](const Node* c) { w.stack.push_back(c); });
  if (w.cursor != ChildSet::kDone) return 0;
  w.open->set_snapshot_mark(mark_);
  w.open = nullptr;
  return budget / 2;  // about what is left: the last piece was not whole
}

void DataTree::keep_for_snapshot(Node* n) {
  SnapshotWalk& w = *walk_;
  if (n == w.open) {
    // Written, with some of its children on the stack: the rest go there
    // now, before its child set changes.
    open_children(w, SIZE_MAX);
    return;
  }
  SnapshotWalk::Kept k;
  if (!w.draining) {
    w.scratch.clear();
    write_node(w.scratch, *n);
    k.record = std::string(w.scratch.held());
  }
  k.children.reserve(n->children().size());
  n->children().for_each([&](const Node* c) { k.children.push_back(c); });
  const size_t cost = SnapshotWalk::cost(k);
  w.kept.emplace(n, std::move(k));
  w.kept_bytes += cost;
  n->set_snapshot_mark(mark_);
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
  if (version != kVersion)
    return corrupt("format version " + std::to_string(version) + " is not supported");
  int64_t acl_count = r.integer(), session_count = r.integer(), node_count = r.integer();
  // Every count is checked against the bytes its records would take before
  // anything is sized by it: a node record takes at least 15 bytes (a
  // 13-element array of a path, nil data and eleven small integers).
  constexpr uint64_t kMinNodeRecord = 15;
  if (!r.ok() || acl_count < 0 || session_count < 0 || node_count < 1 ||
      static_cast<uint64_t>(node_count) > bytes.size() / kMinNodeRecord ||
      static_cast<uint64_t>(acl_count) > bytes.size() ||
      static_cast<uint64_t>(session_count) > bytes.size())
    return corrupt("bad header (counts larger than the snapshot could hold)");
  // The nodes' fresh memory is made on the other core, a few regions ahead.
  SlabArena::FillAhead fill_ahead(
      SlabArena::for_nodes(),
      kSlabsInUse && bytes.size() >= kFillAheadFrom ? kFillAheadRegions : 0);
  DataTree t;
  t.nodes_.free_nodes();
  t.acls_.clear();
  t.data_bytes_ = 0;
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
  // Nodes go into their parent's child set a few records after they are
  // made, so that the slot each needs, found by its hash, is fetched
  // meanwhile rather than waited for (a large set is far larger than any
  // cache).
  struct Pending {
    NodePtr node;
    Node* parent;
    uint64_t hash;
    size_t at;
    int32_t aversion;
  };
  std::array<Pending, kPrefetchAhead> pending;
  size_t first_pending = 0, pending_count = 0;
  std::string duplicate;  // the path of a node met twice
  auto settle_one = [&]() -> bool {
    Pending& p = pending[first_pending];
    first_pending = (first_pending + 1) % pending.size();
    --pending_count;
    if (t.nodes_.link_new(p.node.get(), *p.parent, p.hash)) {
      at = p.at;
      duplicate = p.node->path();
      return false;
    }
    finisher.add(p.node.release(), p.aversion);
    return true;
  };
  auto settle_all = [&]() -> bool {
    while (pending_count > 0)
      if (!settle_one()) return false;
    return true;
  };
  auto twice = [&] { return corrupt("node " + duplicate + " appears twice"); };
  int64_t children_claimed = 0;                       // every child is one of the node records
  std::vector<uint32_t> acl_refs(t.acls_.size(), 0);  // nodes using each ACL entry
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
    children_claimed += children;
    if (children_claimed > node_count - 1)
      return corrupt("node " + std::string(path) + " claims " + std::to_string(children) +
                     " children, more than the snapshot's records hold");
    if (acl < 0 || static_cast<size_t>(acl) >= t.acls_.size())
      return corrupt("node " + std::string(path) + " refers to a missing ACL");
    ++acl_refs[static_cast<size_t>(acl)];
    bool root = i == 0;
    if (root != (path == "/")) return corrupt("node " + std::string(path) + " out of order");
    // Records come depth first, so siblings follow each other: keep the
    // last parent at hand.
    Node* parent = nullptr;
    if (!root) {
      std::string_view parent_name = proto::parent_path(path);
      if (path.empty() || path[0] != '/' || path.back() == '/' ||
          path.find("//") != std::string_view::npos)
        return corrupt("node " + std::string(path) + " has a malformed path");
      if (!last_parent || last_parent->path() != parent_name) {
        if (!settle_all()) return twice();  // the parent may be among them
        last_parent = t.find_mut(parent_name);
      }
      if (!last_parent) return corrupt("node " + std::string(path) + " has no parent");
      // A node whose record claims children has its child set's block
      // already. Making one now could change the parent's own word while
      // the digest thread reads it.
      if (!last_parent->children().has_block())
        return corrupt("node " + std::string(path) + " is under " + std::string(parent_name) +
                       ", whose record claims no children");
      parent = last_parent;
    }
    NodePtr made = Node::make(path, data, data_null);
    Node* n = made.get();
    n->czxid = czxid;  // first: pzxid's default
    n->mzxid = mzxid;
    n->ctime = ctime;
    n->mtime = mtime;
    n->version = static_cast<int32_t>(version);
    n->acl = static_cast<uint32_t>(acl);
    // The child set's block first, at its size: the fields below go into
    // it rather than into a smaller block made first.
    if (children > 0) n->children_for_update(static_cast<size_t>(children));
    n->set_pzxid(pzxid);
    n->set_cversion(static_cast<int32_t>(cversion));
    n->set_aversion(static_cast<int32_t>(aversion));
    n->set_ephemeral_owner(owner);
    t.data_bytes_ += static_cast<int64_t>(path.size() + data.size());
    if (root) {
      t.nodes_.set_root(made.release());
      finisher.add(n, static_cast<int32_t>(aversion));
    } else {
      if (pending_count == pending.size() && !settle_one()) return twice();
      const uint64_t hash = hash_key(n->name());
      parent->children().prefetch(hash);
      pending[(first_pending + pending_count) % pending.size()] =
          Pending{std::move(made), parent, hash, at, static_cast<int32_t>(aversion)};
      ++pending_count;
    }
    if (is_session_owner(owner)) {
      auto s = t.sessions_.find(owner);
      if (s != t.sessions_.end()) s->second.ephemerals.emplace(path);
    } else if (owner != 0) {
      t.containers_.emplace(path);
    }
  }
  if (!settle_all()) return twice();
  at = r.position();
  t.digest_ = finisher.finish();
  if (!r.at_end()) return corrupt("trailing bytes after the last node");
  t.recount_acls(std::move(acl_refs));
  t.quota_rebuild();
  return t;
}

}  // namespace corral::kernel
