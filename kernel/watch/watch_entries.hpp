// The entries of watched paths: for each (kind of watch, path) one
// allocation heading the list of its watches (see WatchManager), found
// through one open-addressed table for all four kinds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "tree/slab_arena.hpp"

namespace corral::kernel {

// Which table a watch is in: one-shot data (getData, exists) or children
// watches, persistent or persistent recursive ones.
enum class WatchTable : uint8_t { data, child, persistent, recursive };

// A watch's number in WatchManager's pool; 0 for none.
using WatchRef = uint32_t;

// An entry is one allocation: these 12 bytes, then its path. A path of 21
// characters makes 40 bytes in a slab, where a hash map's node with a
// std::string key took ~120.
struct WatchEntry {
  WatchRef head = 0;
  uint32_t size = 0;  // watches in the list
  uint32_t path_size : 29 = 0;
  uint32_t table : 2 = 0;  // a WatchTable
  uint32_t in_slab : 1 = 0;
  WatchTable kind() const { return static_cast<WatchTable>(table); }
  std::string_view path() const {
    return {reinterpret_cast<const char*>(this) + sizeof(WatchEntry), path_size};
  }
};
static_assert(sizeof(WatchEntry) == 12 && alignof(WatchEntry) == 4);

// The entries, found by (table, path): open addressing with linear probing
// over slots of one word, an entry's address with the top 16 bits of its
// key's hash in the address's unused top bits (a probe reads an entry only
// when those match), at most three quarters full, and deletion by shifting
// the entries behind back. Single-threaded.
//
// A large table grows (or shrinks) without a pause, as a ChildSet does: the
// new slots are made, and each later insert or erase moves the entries of
// kMigrateStep old slots into them, until none is left. Meanwhile a lookup
// that misses in the new slots looks in the old ones too, where moved and
// erased entries leave a tombstone so that the probe chains behind them
// stay whole. Moving a million entries at once took 50-130 ms here.
class WatchEntries {
 public:
  // Old slots moved by each insert or erase while resizing: the table
  // doubles at three quarters full and must finish moving before it is
  // three quarters full again, which takes two slots an insert.
  static constexpr size_t kMigrateStep = 32;
  // A table of at most this many slots resizes at once.
  static constexpr size_t kSyncResize = 1024;

  WatchEntries() = default;
  ~WatchEntries();
  WatchEntries(const WatchEntries&) = delete;
  WatchEntries& operator=(const WatchEntries&) = delete;

  WatchEntry* find(WatchTable t, std::string_view path) const;
  // The entry of (t, path), made with no watch if there was none (and
  // whether it was made).
  std::pair<WatchEntry*, bool> find_or_make(WatchTable t, std::string_view path);
  // Frees `e`, an entry of this table.
  void erase(WatchEntry* e);
  // Moves a few more slots while resizing, so that a resize ends (and its
  // old slots go) under writes that make or erase no entry.
  void settle() { migrate(kMigrateStep); }
  size_t size() const { return size_; }
  size_t size(WatchTable t) const { return per_table_[static_cast<size_t>(t)]; }
  // The new slots' number, while resizing.
  size_t capacity() const { return slots_ ? mask_ + 1 : 0; }
  bool resizing() const { return static_cast<bool>(old_); }

 private:
  static uint64_t hash(WatchTable t, std::string_view path);
  static uint64_t hash(const WatchEntry& e) { return hash(e.kind(), e.path()); }
  static constexpr int kTagShift = 48;
  static constexpr uintptr_t kAddressMask = (uintptr_t{1} << kTagShift) - 1;
  // In the old slots: where an entry was moved or erased while resizing.
  static constexpr uintptr_t kTombstone = 1;
  static WatchEntry* address(uintptr_t slot) {
    return reinterpret_cast<WatchEntry*>(slot & kAddressMask);
  }
  static uintptr_t tag(uint64_t h) { return static_cast<uintptr_t>(h >> kTagShift) << kTagShift; }
  static uintptr_t slot_for(WatchEntry* e, uint64_t h) {
    return reinterpret_cast<uintptr_t>(e) | tag(h);
  }
  // The slot holding (t, path) in the new slots, or in the old ones while
  // resizing; null if none does.
  uintptr_t* find_slot(WatchTable t, std::string_view path, uint64_t h) const;
  // Starts moving every entry into `capacity` slots (a power of two): at
  // once for a small table, else a few at a time.
  void start_resize(size_t capacity);
  // Moves the entries of up to `budget` old slots into the new ones, and
  // frees the old slots once none is left.
  void migrate(size_t budget);
  void place(uintptr_t slot, uint64_t h);
  void release(WatchEntry* e) noexcept;

  // Zeroed slots: from calloc, or from a mapping of their own when large
  // (1 MiB or more), as a ChildSet's. A fresh mapping costs nothing until
  // each page is first written, so the zeroing is spread over the inserts
  // that reach each page: zeroing 32 MiB at once took 14 ms here.
  class Slots {
   public:
    Slots() = default;
    explicit Slots(size_t n);
    ~Slots() { reset(); }
    Slots(Slots&& o) noexcept : p_(std::exchange(o.p_, nullptr)), bytes_(o.bytes_) {}
    Slots& operator=(Slots&& o) noexcept {
      if (this != &o) {
        reset();
        p_ = std::exchange(o.p_, nullptr);
        bytes_ = o.bytes_;
      }
      return *this;
    }
    uintptr_t& operator[](size_t i) const { return p_[i]; }
    uintptr_t* get() const { return p_; }
    explicit operator bool() const { return p_ != nullptr; }
    void reset() noexcept;

   private:
    uintptr_t* p_ = nullptr;
    size_t bytes_ = 0;
  };

  Slots slots_;
  size_t mask_ = 0;  // capacity - 1, when there are slots
  Slots old_;        // empty when not resizing
  size_t old_mask_ = 0;
  size_t next_ = 0;  // old slots below this have been moved
  size_t size_ = 0;
  size_t per_table_[4] = {};
  SlabArena arena_;  // entries up to its largest object; larger ones from malloc
};

}  // namespace corral::kernel
