// A znode as the data tree keeps it, and the hash sets that find znodes.
//
// Each znode is one allocation: its Stat fields and its child set, then its
// path and its data right behind them (from a SlabArena when small). A tree
// of a million small znodes is then a million allocations instead of four
// or five per znode (node, path string, data string, hash-table entries),
// which is what bounds its memory, the time to rebuild it from a snapshot,
// and the cost of each create. The Stat fields that most znodes leave at
// their defaults (pzxid, cversion, aversion, a container's or TTL node's
// owner) live in the block of the node's child set, which only a node that
// has had children or such a field set carries.
//
// Nodes are found through their parents' child sets: open-addressing sets
// of node addresses keyed by each node's name (the last component of the
// path it carries). A set holds only addresses; the tree owns the nodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace corral::kernel {

class Node;

// The per-process seed of hash_key (random, set before main).
extern const uint64_t g_hash_seed;

// The hash every ChildSet uses: 64 bits of a name. Inline: a lookup hashes
// each name of the path it walks.
inline uint64_t hash_key(std::string_view s) noexcept {
  // Eight bytes at a time, each multiplied in and folded, then a 64-bit
  // finalizer: the low bits pick a slot and the high bits make the tag, so
  // both must depend on every byte.
  uint64_t h = g_hash_seed ^ (s.size() * 0xff51afd7ed558ccdULL);
  const char* p = s.data();
  size_t n = s.size();
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
  }
  h ^= h >> 32;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 29;
  return h;
}

// The children of a node: a set of nodes with distinct names. Linear
// probing, at most three quarters full, and deletion by shifting the
// entries behind back (no tombstones in the live slots, so a set that has
// seen many deletions stays as fast as a fresh one). Each slot holds a
// node's address with the top 16 bits of its name's hash in the address's
// unused top bits, so a probe reads a node only when those bits match:
// about once per lookup. Single-threaded, as the tree.
//
// A large set grows (or shrinks) without a pause: the new slots are made,
// and each later insert or erase moves a few dozen entries from the old
// slots into them, until none is left. Meanwhile a lookup that misses in the
// new slots looks in the old ones too, where moved and erased entries leave
// a tombstone so that the probe chains behind them stay whole. Growing a
// table of a million nodes at once took ~100 ms, every request behind it
// waiting; now no single operation moves more than kMigrateStep slots.
class ChildSet {
 public:
  // The Stat fields of the set's node that most nodes leave at their
  // defaults, kept in the set's block rather than in every node (see Node).
  // A set that makes its own block (an insert or reserve with none) starts
  // them at 0: a node makes its block first, with its own defaults.
  struct Rare {
    int64_t pzxid = 0;
    int64_t owner = 0;  // ephemeral owner, unless the node keeps it itself
    int32_t cversion = 0;
    int32_t aversion = 0;
  };

  // Slots moved from the old table by each insert or erase while a set is
  // resizing. A set grows at three quarters full and must finish moving
  // before it is three quarters full again: two slots an insert would do.
  static constexpr uint32_t kMigrateStep = 32;
  // A set of at most this many slots resizes at once (a few microseconds).
  static constexpr uint32_t kSyncResize = 1024;

  constexpr ChildSet() = default;
  ~ChildSet();
  ChildSet(ChildSet&& o) noexcept : slots_(o.slots_) { o.slots_ = nullptr; }
  ChildSet& operator=(ChildSet&& o) noexcept;
  ChildSet(const ChildSet&) = delete;
  ChildSet& operator=(const ChildSet&) = delete;

  size_t size() const { return slots_ ? header().size : 0; }
  bool empty() const { return size() == 0; }
  Node* find(std::string_view key) const { return find(key, hash_key(key)); }
  Node* find(std::string_view key, uint64_t hash) const;
  // Adds `n`, whose key the set must not hold yet.
  void insert(Node* n) { insert(n, hash_key(key_of(n))); }
  void insert(Node* n, uint64_t hash);
  // Asks the processor for the slot where a key with this hash would go,
  // ahead of a find or insert that will need it.
  void prefetch(uint64_t hash) const {
    if (slots_) __builtin_prefetch(&slots_[static_cast<uint32_t>(hash) & header().mask]);
  }
  // Adds `n` unless the set holds a node with its key already; returns that
  // node, or null when `n` went in. One probe where find and insert take two.
  Node* insert_new(Node* n, uint64_t hash);
  // Removes the node with this key; false when there is none.
  bool erase(std::string_view key);
  // Puts `now` where `old` was; both have the same key.
  void replace(const Node* old, Node* now);
  // Makes room for `n` nodes without growing again.
  void reserve(size_t n);
  // Whether entries are still being moved from the old slots.
  bool resizing() const { return slots_ && header().old; }
  // Slots, free or not (0 without a block).
  size_t capacity() const { return slots_ ? header().mask + size_t{1} : 0; }

  // Whether the set has its block: once it has, it keeps one (of a single
  // slot when it empties), for the Rare fields it holds.
  bool has_block() const { return slots_ != nullptr; }
  // The block's Rare fields; has_block() must hold.
  const Rare& rare() const { return header().rare; }
  Rare& rare() { return header().rare; }
  // Makes a block holding `rare`, with room for `room` entries (one slot
  // when 0); has_block() must not hold.
  void make_block(const Rare& rare, size_t room);
  // Calls f(Node*) for every node, in no particular order. `f` must not
  // change the set.
  template <class F>
  void for_each(F&& f) const {
    if (!slots_) return;
    const Header& h = header();
    for (uint32_t i = 0; i <= h.mask; ++i)
      if (slots_[i]) f(address(slots_[i]));
    if (h.old)
      for (uint32_t i = h.next; i <= h.old_mask; ++i)
        if (h.old[i] > kTombstone) f(address(h.old[i]));
  }

  // The same a piece at a time: calls f(Node*) for the nodes in the next
  // `budget` slots from `cursor` (0 to begin) and returns where to go on
  // from, or kDone once every slot has been seen. Nodes come in for_each's
  // order. The set must not change between the calls.
  static constexpr size_t kDone = SIZE_MAX;
  template <class F>
  size_t for_each_from(size_t cursor, size_t budget, F&& f) const {
    if (!slots_) return kDone;
    const Header& h = header();
    const size_t live = size_t{h.mask} + 1;
    const size_t end = live + (h.old ? size_t{h.old_mask} + 1 : 0);
    for (; cursor < end && budget > 0; ++cursor, --budget) {
      if (cursor < live) {
        if (slots_[cursor]) f(address(slots_[cursor]));
      } else if (const size_t i = cursor - live; i >= h.next && h.old[i] > kTombstone) {
        f(address(h.old[i]));
      }
    }
    return cursor < end ? cursor : kDone;
  }

  static std::string_view key_of(const Node* n);
  // key_of(n) == key, without finding where the name starts first.
  static bool has_key(const Node* n, std::string_view key);

 private:
  static constexpr int kTagShift = 48;
  static constexpr uintptr_t kAddressMask = (uintptr_t{1} << kTagShift) - 1;
  static Node* address(uintptr_t slot) { return reinterpret_cast<Node*>(slot & kAddressMask); }
  static uintptr_t tag(uint64_t hash) {
    return static_cast<uintptr_t>(hash >> kTagShift) << kTagShift;
  }
  static uintptr_t slot_for(Node* n, uint64_t hash);
  // In the old slots: where an entry was moved or erased while resizing.
  static constexpr uintptr_t kTombstone = 1;
  // In front of the slots, in the same allocation: the set's size and
  // capacity, the old slots while a resize moves their entries, and how
  // far it has got, and the node's Rare fields. Kept there rather than in
  // the set, so that a set is one word: every znode holds one, and most
  // have no children.
  struct Header {
    uint32_t size = 0;
    uint32_t mask = 0;         // capacity - 1, a power of two less one
    uintptr_t* old = nullptr;  // null when not resizing
    uint32_t old_mask = 0;
    uint32_t next = 0;   // old slots below this have been moved
    uint64_t bytes = 0;  // the allocation's, header and slots (allocate_zeroed)
    Rare rare;
  };
  static constexpr size_t kHeaderWords = sizeof(Header) / sizeof(uintptr_t);
  static_assert(sizeof(Header) % sizeof(uintptr_t) == 0);
  const Header& header() const { return *reinterpret_cast<const Header*>(slots_ - kHeaderWords); }
  Header& header() { return *reinterpret_cast<Header*>(slots_ - kHeaderWords); }
  // Slots for n entries at most three quarters full.
  static size_t capacity_for(size_t n);
  static uintptr_t* allocate(size_t capacity);
  static void release(uintptr_t* slots);
  // Grows the slots if one more entry would fill more than three quarters.
  void make_room();
  // Moves every entry into `capacity` slots (a power of two) at once.
  void resize(size_t capacity);
  // Starts moving the entries into `capacity` slots: at once for a small
  // set, else a few at a time.
  void start_resize(size_t capacity);
  // Moves the entries of up to `budget` old slots into the new ones, and
  // frees the old slots once none is left.
  void migrate(uint32_t budget);
  void finish_resize() {
    if (resizing()) migrate(UINT32_MAX);
  }
  // The old slot holding this key, or null.
  uintptr_t* find_old(std::string_view key, uint64_t hash) const;
  void place(uintptr_t slot, uint64_t hash);

  uintptr_t* slots_ = nullptr;  // header().mask + 1 of them, behind a Header; null when empty
};

struct NodeDeleter {
  void operator()(Node* n) const noexcept;
};
// A node that the tree does not (or no longer) hold: a new one, or one
// taken out of the tree and kept for a multi's rollback.
using NodePtr = std::unique_ptr<Node, NodeDeleter>;

class Node {
 public:
  // A node with this path and data and zeroed Stat fields.
  static NodePtr make(std::string_view path, std::string_view data, bool data_null = false);
  // A copy of `old` (Stat fields, path, children, which `old` loses) with
  // other data, for data that does not fit where `old` keeps it.
  static NodePtr with_data(Node& old, std::string_view data, bool data_null);

  int64_t czxid = 0, mzxid = 0, ctime = 0, mtime = 0;
  int32_t version = 0;
  uint32_t acl = 0;  // index into the tree's ACL table

  // The Stat fields most znodes leave at their defaults: pzxid is czxid
  // until a child comes or goes, and cversion and aversion are 0 until then
  // or until a setACL. Other values live in the child set's block
  // (ChildSet::Rare), made on the first write of one. The ephemeral owner
  // lives there too once there is a block; until then a node keeps it in
  // the word of its child set, which has nothing to hold: a session's
  // ephemeral node can have no children, and a container or TTL node keeps
  // it there until its first child comes.
  int64_t pzxid() const {
    const ChildSet::Rare* r = rare();
    return r ? r->pzxid : czxid;
  }
  int32_t cversion() const {
    const ChildSet::Rare* r = rare();
    return r ? r->cversion : 0;
  }
  int32_t aversion() const {
    const ChildSet::Rare* r = rare();
    return r ? r->aversion : 0;
  }
  int64_t ephemeral_owner() const {
    if (inline_owner_) return owner_;
    const ChildSet::Rare* r = rare();
    return r ? r->owner : 0;
  }
  // Each makes the block if the value needs one; set czxid first.
  void set_pzxid(int64_t v) {
    if (v != pzxid()) rare_for_update().pzxid = v;
  }
  void set_cversion(int32_t v) {
    if (v != cversion()) rare_for_update().cversion = v;
  }
  void set_aversion(int32_t v) {
    if (v != aversion()) rare_for_update().aversion = v;
  }
  void set_ephemeral_owner(int64_t v);

  std::string_view path() const { return {bytes(), path_size_}; }
  // The last component of the path ("" for the root).
  std::string_view name() const {
    std::string_view p = path();
    return p.substr(p.rfind('/') + 1);
  }
  // name() == name, comparing from the end of the path. `name` holds no
  // '/' (a child set's keys never do).
  bool has_name(std::string_view name) const {
    std::string_view p = path();
    return p.size() > name.size() && p[p.size() - name.size() - 1] == '/' && p.ends_with(name);
  }
  std::string_view data() const { return {bytes() + path_size_, data_size_}; }
  // Set with a null buffer: getData answers null.
  bool data_null() const { return data_null_; }
  int32_t num_children() const { return static_cast<int32_t>(children().size()); }
  const ChildSet& children() const { return inline_owner_ ? kNoChildren : children_; }
  // The child set to add to or take from. Makes its block first, with
  // room for `room` children, so that changing the set by one and then
  // pzxid and cversion allocates nothing more.
  ChildSet& children_for_update(size_t room = 1) {
    if (inline_owner_ || !children_.has_block()) make_block(room);
    return children_;
  }

  // Whether the node came from SlabArena::for_nodes() rather than malloc.
  bool in_slab() const { return slab_; }
  // The tree's mark for a snapshot written while it serves: a node whose
  // mark differs from the tree's has not been written yet (see
  // DataTree::touch). The tree sets it; a new node starts at false.
  bool snapshot_mark() const { return mark_; }
  void set_snapshot_mark(bool m) { mark_ = m ? 1 : 0; }

  // Whether `size` bytes of data fit in this allocation without wasting
  // most of it.
  bool data_fits(size_t size) const {
    const size_t capacity = data_capacity();
    return size <= capacity && size >= capacity / 4;
  }
  // Replaces the data in place; data_fits(data.size()) must hold.
  void assign_data(std::string_view data, bool data_null);

 private:
  Node(std::string_view path, bool slab);
  ~Node() {
    if (!inline_owner_) children_.~ChildSet();
  }
  friend struct NodeDeleter;
  char* bytes() { return reinterpret_cast<char*>(this + 1); }
  const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }

  static const ChildSet kNoChildren;
  const ChildSet::Rare* rare() const {
    return !inline_owner_ && children_.has_block() ? &children_.rare() : nullptr;
  }
  // The block's fields, made with the defaults (and the owner kept in the
  // node) when there is no block yet.
  ChildSet::Rare& rare_for_update() {
    if (inline_owner_ || !children_.has_block()) make_block(0);
    return children_.rare();
  }
  // Makes the child set's block, with room for `room` children.
  void make_block(size_t room);

  // What the allocation holds past the path: its class's size or malloc's
  // own count.
  size_t data_capacity() const;

  // The fixed part is 56 bytes: the Stat fields every znode sets, the
  // sizes, and one word that is either the child set or, for a node with
  // an owner and no block, its owner.
  uint32_t path_size_ : 30;
  uint32_t data_null_ : 1;
  uint32_t inline_owner_ : 1;    // owner_, not children_, is the word below
  uint32_t data_size_ : 30 = 0;  // data is less than a frame, at most 2^30 bytes
  uint32_t mark_ : 1 = 0;        // snapshot_mark()
  uint32_t slab_ : 1 = 0;        // from SlabArena::for_nodes(), not from malloc
  union {
    ChildSet children_;
    int64_t owner_;
  };
};

// The tree's nodes, owned through its root: every other node is in its
// parent's child set and found by walking the path's names down from the
// root. There is no table of whole paths beside the child sets: at a
// million znodes it cost 16 bytes a znode, and a lookup walks only a few
// names (the upper levels stay in the cache).
class NodeTable {
 public:
  NodeTable() = default;
  ~NodeTable() { free_nodes(); }
  NodeTable(NodeTable&& o) noexcept : root_(o.root_), size_(o.size_) {
    o.root_ = nullptr;
    o.size_ = 0;
  }
  NodeTable& operator=(NodeTable&& o) noexcept {
    if (this != &o) {
      free_nodes();
      root_ = o.root_;
      size_ = o.size_;
      o.root_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }
  NodeTable(const NodeTable&) = delete;
  NodeTable& operator=(const NodeTable&) = delete;

  size_t size() const { return size_; }
  // Takes `root` ("/") as the whole table; the table must be empty.
  void set_root(Node* root) {
    root_ = root;
    size_ = 1;
  }
  // The node at `path` ("/" and names joined by '/'), or null.
  Node* find(std::string_view path) const;
  // Puts `n`, whose name `parent` must not hold yet, into its child set;
  // the table owns it from then on.
  void link(Node* n, Node& parent, uint64_t name_hash);
  void link(Node* n, Node& parent);
  // As link, unless `parent` holds a node of that name already: returns
  // that node, and `n` stays the caller's.
  Node* link_new(Node* n, Node& parent, uint64_t name_hash);
  // Takes `n` out of its parent's child set; the caller owns it again.
  void unlink(Node* n, Node& parent);
  // Puts `now` where `old` was (same path); null `parent` for the root.
  void replace(const Node* old, Node* now, Node* parent);
  // Calls f(Node*) for every node, parents before their children. `f`
  // must not change the tree.
  template <class F>
  void for_each(F&& f) const {
    if (!root_) return;
    std::vector<Node*> stack{root_};
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      n->children().for_each([&](Node* c) { stack.push_back(c); });
      f(n);
    }
  }
  // Frees every node and empties the table.
  void free_nodes();

 private:
  Node* root_ = nullptr;
  size_t size_ = 0;
};

inline std::string_view ChildSet::key_of(const Node* n) { return n->name(); }
inline bool ChildSet::has_key(const Node* n, std::string_view key) { return n->has_name(key); }

}  // namespace corral::kernel
