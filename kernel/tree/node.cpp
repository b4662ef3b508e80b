#include "tree/node.hpp"

#include <malloc.h>
#include <sys/random.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "tree/slab_arena.hpp"

namespace corral::kernel {

static_assert(sizeof(Node) == 56, "a node's fixed part is meant to fill 56 bytes");
static_assert(sizeof(ChildSet) == sizeof(void*), "a child set is meant to be one word");
static_assert(alignof(Node) <= SlabArena::kGrain, "a slab object is aligned to its grain");

namespace {
// Seeded once per process, so that no one can choose paths that all fall in
// one slot: where a node sits is never part of what members compare. Set
// while the program's statics are initialized (no node table is made
// before main), and read on every lookup, so not behind a guard.
uint64_t make_hash_seed() noexcept {
  uint64_t s = 0x9e3779b97f4a7c15ULL;
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, 0) == static_cast<ssize_t>(sizeof r)) s ^= r;
  return s;
}
}  // namespace

const uint64_t g_hash_seed = make_hash_seed();

// ---------------------------------------------------------------- ChildSet

uintptr_t* ChildSet::allocate(size_t capacity) {
  if (capacity > (size_t{1} << 31)) throw std::length_error("node set too large");
  const size_t bytes = (capacity + kHeaderWords) * sizeof(uintptr_t);
  void* p = allocate_zeroed(bytes);
  auto* h = new (p) Header();
  h->mask = static_cast<uint32_t>(capacity - 1);
  h->bytes = bytes;
  return static_cast<uintptr_t*>(p) + kHeaderWords;
}

void ChildSet::release(uintptr_t* slots) {
  if (!slots) return;
  auto* h = reinterpret_cast<Header*>(slots - kHeaderWords);
  release(h->old);
  free_zeroed(h, h->bytes);
}

ChildSet::~ChildSet() { release(slots_); }

ChildSet& ChildSet::operator=(ChildSet&& o) noexcept {
  if (this != &o) {
    release(slots_);
    slots_ = o.slots_;
    o.slots_ = nullptr;
  }
  return *this;
}

uintptr_t ChildSet::slot_for(Node* n, uint64_t hash) {
  auto a = reinterpret_cast<uintptr_t>(n);
  // User-space addresses on Linux (x86-64, arm64) stay below 2^48 unless a
  // program asks the kernel for more; the top bits are the tag's.
  if (a & ~kAddressMask) throw std::runtime_error("node address above 2^48: cannot tag it");
  return a | tag(hash);
}

Node* ChildSet::find(std::string_view key, uint64_t hash) const {
  if (!slots_) return nullptr;
  const uintptr_t want = tag(hash);
  const uint32_t mask = header().mask;
  for (uint32_t i = static_cast<uint32_t>(hash) & mask;; i = (i + 1) & mask) {
    uintptr_t s = slots_[i];
    if (!s) break;
    if ((s & ~kAddressMask) == want) {
      Node* n = address(s);
      if (has_key(n, key)) return n;
    }
  }
  if (!header().old) return nullptr;
  const uintptr_t* at = find_old(key, hash);
  return at ? address(*at) : nullptr;
}

uintptr_t* ChildSet::find_old(std::string_view key, uint64_t hash) const {
  const Header& h = header();
  const uintptr_t want = tag(hash);
  for (uint32_t i = static_cast<uint32_t>(hash) & h.old_mask;; i = (i + 1) & h.old_mask) {
    uintptr_t s = h.old[i];
    if (!s) return nullptr;
    if (s != kTombstone && (s & ~kAddressMask) == want && has_key(address(s), key))
      return &h.old[i];
  }
}

void ChildSet::place(uintptr_t slot, uint64_t hash) {
  const uint32_t mask = header().mask;
  uint32_t i = static_cast<uint32_t>(hash) & mask;
  while (slots_[i]) i = (i + 1) & mask;
  slots_[i] = slot;
}

void ChildSet::resize(size_t capacity) {
  finish_resize();
  start_resize(capacity);
  finish_resize();
}

void ChildSet::start_resize(size_t capacity) {
  uintptr_t* fresh = allocate(capacity);
  uintptr_t* old = slots_;
  slots_ = fresh;
  if (!old) return;
  const Header& was = *reinterpret_cast<const Header*>(old - kHeaderWords);
  const uint32_t old_mask = was.mask;
  Header& h = header();
  h.size = was.size;
  h.rare = was.rare;
  h.old = old;
  h.old_mask = old_mask;
  h.next = 0;
  if (old_mask + size_t{1} <= kSyncResize) finish_resize();
}

void ChildSet::migrate(uint32_t budget) {
  Header& h = header();
  uintptr_t* old = h.old;
  const uint32_t old_capacity = h.old_mask + 1;
  // Each entry's key is in its node, far from the slots: fetch a few nodes
  // ahead.
  constexpr uint32_t kAhead = 8;
  uint32_t i = h.next;
  const uint32_t end =
      old_capacity - i > budget ? i + budget : old_capacity;  // no overflow past old_capacity
  for (; i < end; ++i) {
    if (i + kAhead < old_capacity && old[i + kAhead] > kTombstone) {
      const char* ahead = reinterpret_cast<const char*>(address(old[i + kAhead]));
      __builtin_prefetch(ahead + 64);
      __builtin_prefetch(ahead + 128);
    }
    uintptr_t s = old[i];
    if (s > kTombstone) {
      place(s, hash_key(key_of(address(s))));
      // A tombstone, not an empty slot: an entry further on may have
      // probed past this one on its way to where it sits.
      old[i] = kTombstone;
    }
  }
  h.next = i;
  if (i == old_capacity) {
    h.old = nullptr;
    release(old);
  }
}

size_t ChildSet::capacity_for(size_t n) {
  size_t want = n + n / 3 + 1;
  size_t capacity = 4;
  while (capacity < want) capacity *= 2;
  return capacity;
}

void ChildSet::make_block(const Rare& rare, size_t room) {
  slots_ = allocate(room == 0 ? 1 : capacity_for(room));
  header().rare = rare;
}

void ChildSet::reserve(size_t n) {
  const size_t capacity = capacity_for(n);
  if (!slots_) {
    slots_ = allocate(capacity);
  } else if (capacity > header().mask + size_t{1}) {
    resize(capacity);
  }
}

void ChildSet::insert(Node* n, uint64_t hash) {
  uintptr_t slot = slot_for(n, hash);
  make_room();
  place(slot, hash);
  ++header().size;
}

void ChildSet::make_room() {
  if (!slots_) {
    slots_ = allocate(4);
    return;
  }
  if (resizing()) migrate(kMigrateStep);
  const Header& h = header();
  if ((h.size + size_t{1}) * 4 > (h.mask + size_t{1}) * 3) {
    // Moving kMigrateStep slots an insert, a resize is long done before
    // the set is three quarters full again; only erases and inserts mixed
    // just so could leave one going, and it then finishes at once.
    finish_resize();
    start_resize(std::max<size_t>(4, (header().mask + size_t{1}) * 2));
  }
}

Node* ChildSet::insert_new(Node* n, uint64_t hash) {
  uintptr_t slot = slot_for(n, hash);
  make_room();
  const std::string_view key = key_of(n);
  const uintptr_t want = tag(hash);
  const uint32_t mask = header().mask;
  uint32_t i = static_cast<uint32_t>(hash) & mask;
  for (; slots_[i]; i = (i + 1) & mask) {
    uintptr_t s = slots_[i];
    if ((s & ~kAddressMask) == want && has_key(address(s), key)) return address(s);
  }
  if (header().old) {
    if (const uintptr_t* at = find_old(key, hash)) return address(*at);
  }
  slots_[i] = slot;
  ++header().size;
  return nullptr;
}

bool ChildSet::erase(std::string_view key) {
  if (!slots_) return false;
  const uint64_t hash = hash_key(key);
  const uintptr_t want = tag(hash);
  const uint32_t mask = header().mask;
  uint32_t i = static_cast<uint32_t>(hash) & mask;
  bool found = false;
  for (;; i = (i + 1) & mask) {
    uintptr_t s = slots_[i];
    if (!s) break;
    if ((s & ~kAddressMask) == want && has_key(address(s), key)) {
      found = true;
      break;
    }
  }
  if (found) {
    // Shift back every entry behind the hole that may move into it: one
    // whose home slot is not between the hole and where it sits.
    for (uint32_t j = (i + 1) & mask;; j = (j + 1) & mask) {
      uintptr_t s = slots_[j];
      if (!s) break;
      uint32_t home = static_cast<uint32_t>(hash_key(key_of(address(s)))) & mask;
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) {
        slots_[i] = s;
        i = j;
      }
    }
    slots_[i] = 0;
  } else {
    uintptr_t* at = header().old ? find_old(key, hash) : nullptr;
    if (!at) return false;
    *at = kTombstone;
  }
  const uint32_t size = --header().size;
  if (size == 0) {
    // The block stays, for its Rare fields, but gives its slots back: no
    // entry is left to move, so the old slots go at once. Without memory
    // for the smaller block, the larger one stays: the erase is done.
    if (mask >= 8 || resizing()) {
      if (void* p = std::calloc(1 + kHeaderWords, sizeof(uintptr_t))) {
        auto* h = new (p) Header();
        h->bytes = (1 + kHeaderWords) * sizeof(uintptr_t);  // below the mapped size: free()d
        h->rare = header().rare;
        release(slots_);
        slots_ = static_cast<uintptr_t*>(p) + kHeaderWords;
      }
    }
  } else if (resizing()) {
    migrate(kMigrateStep);
  } else if (mask >= 64 && size * size_t{16} < mask + size_t{1}) {
    start_resize((mask + size_t{1}) / 4);  // a set that emptied gives its memory back
  }
  return true;
}

void ChildSet::replace(const Node* old, Node* now) {
  const uint64_t hash = hash_key(key_of(now));
  if (!slots_) return;
  const uint32_t mask = header().mask;
  for (uint32_t i = static_cast<uint32_t>(hash) & mask; slots_[i]; i = (i + 1) & mask) {
    if (address(slots_[i]) == old) {
      slots_[i] = slot_for(now, hash);
      return;
    }
  }
  const Header& h = header();
  if (!h.old) return;
  for (uint32_t i = static_cast<uint32_t>(hash) & h.old_mask; h.old[i]; i = (i + 1) & h.old_mask) {
    if (h.old[i] != kTombstone && address(h.old[i]) == old) {
      h.old[i] = slot_for(now, hash);
      return;
    }
  }
}

// ---------------------------------------------------------------- NodeTable

Node* NodeTable::find(std::string_view path) const {
  if (path.empty() || path[0] != '/') return nullptr;
  Node* n = root_;
  size_t at = 1;
  if (path.size() == 1) return n;
  while (n) {
    const size_t slash = path.find('/', at);
    if (slash == std::string_view::npos) return n->children().find(path.substr(at));
    n = n->children().find(path.substr(at, slash - at));
    at = slash + 1;
  }
  return nullptr;
}

void NodeTable::link(Node* n, Node& parent, uint64_t name_hash) {
  parent.children_for_update().insert(n, name_hash);
  ++size_;
}

void NodeTable::link(Node* n, Node& parent) { link(n, parent, hash_key(n->name())); }

Node* NodeTable::link_new(Node* n, Node& parent, uint64_t name_hash) {
  Node* there = parent.children_for_update().insert_new(n, name_hash);
  if (!there) ++size_;
  return there;
}

void NodeTable::unlink(Node* n, Node& parent) {
  if (parent.children_for_update().erase(n->name())) --size_;
}

void NodeTable::replace(const Node* old, Node* now, Node* parent) {
  if (!parent) {
    if (root_ == old) root_ = now;
    return;
  }
  parent->children_for_update().replace(old, now);
}

void NodeTable::free_nodes() {
  // for_each takes a node's children out before it calls f on the node:
  // each node is freed once its own are on the stack.
  for_each(NodeDeleter());
  root_ = nullptr;
  size_ = 0;
}

// ---------------------------------------------------------------- Node

const ChildSet Node::kNoChildren;

Node::Node(std::string_view path, bool slab)
    : path_size_(static_cast<uint32_t>(path.size())),
      data_null_(0),
      inline_owner_(0),
      slab_(slab ? 1 : 0),
      children_() {
  std::memcpy(bytes(), path.data(), path.size());
}

void Node::make_block(size_t room) {
  ChildSet::Rare rare;
  rare.pzxid = czxid;
  if (inline_owner_) rare.owner = owner_;
  ChildSet made;
  made.make_block(rare, room);  // may throw: nothing has changed yet
  if (inline_owner_) {
    inline_owner_ = 0;
    new (&children_) ChildSet(std::move(made));
  } else {
    children_ = std::move(made);
  }
}

void Node::set_ephemeral_owner(int64_t v) {
  if (inline_owner_) {
    if (v != 0) {
      owner_ = v;
    } else {
      inline_owner_ = 0;
      new (&children_) ChildSet();
    }
  } else if (children_.has_block()) {
    children_.rare().owner = v;
  } else if (v != 0) {
    children_.~ChildSet();  // holds nothing
    owner_ = v;
    inline_owner_ = 1;
  }
}

// Small nodes come from a slab arena (no malloc header, no rounding to 16),
// larger ones from malloc itself, so that malloc_usable_size tells how much
// room each has for its data; under AddressSanitizer every node comes from
// malloc (see kSlabsInUse).
void NodeDeleter::operator()(Node* n) const noexcept {
  const bool slab = n->slab_;
  n->~Node();
  if (slab)
    SlabArena::for_nodes().deallocate(n);
  else
    std::free(n);
}

size_t Node::data_capacity() const {
  const size_t room =
      slab_ ? SlabArena::usable_size(this) : ::malloc_usable_size(const_cast<Node*>(this));
  return room - sizeof(Node) - path_size_;
}

NodePtr Node::make(std::string_view path, std::string_view data, bool data_null) {
  if (path.size() >= (size_t{1} << 30) || data.size() >= (size_t{1} << 30))
    throw std::length_error("znode too large");
  const size_t bytes = sizeof(Node) + path.size() + data.size();
  const bool slab = kSlabsInUse && bytes <= SlabArena::kMaxObject;
  void* mem = slab ? SlabArena::for_nodes().allocate(bytes) : std::malloc(bytes);
  if (!mem) throw std::bad_alloc();
  NodePtr n(new (mem) Node(path, slab));
  n->assign_data(data, data_null);
  return n;
}

NodePtr Node::with_data(Node& old, std::string_view data, bool data_null) {
  NodePtr n = make(old.path(), data, data_null);
  n->czxid = old.czxid;
  n->mzxid = old.mzxid;
  n->ctime = old.ctime;
  n->mtime = old.mtime;
  n->version = old.version;
  n->acl = old.acl;
  if (old.inline_owner_)
    n->set_ephemeral_owner(old.owner_);
  else
    n->children_ = std::move(old.children_);  // with the Rare fields
  return n;
}

void Node::assign_data(std::string_view data, bool data_null) {
  if (!data.empty()) std::memmove(bytes() + path_size_, data.data(), data.size());
  data_size_ = static_cast<uint32_t>(data.size());
  data_null_ = data_null ? 1 : 0;
}

}  // namespace corral::kernel
