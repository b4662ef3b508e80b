#include "watch/watch_entries.hpp"

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

#include "tree/node.hpp"  // hash_key

namespace corral::kernel {

WatchEntries::Slots::Slots(size_t n)
    : p_(static_cast<uintptr_t*>(allocate_zeroed(n * sizeof(uintptr_t)))),
      bytes_(n * sizeof(uintptr_t)) {}

void WatchEntries::Slots::reset() noexcept { free_zeroed(std::exchange(p_, nullptr), bytes_); }

uint64_t WatchEntries::hash(WatchTable t, std::string_view path) {
  // hash_key's bits are all mixed: adding the table to the finished hash
  // moves both the slot (low bits) and the tag (high bits).
  return hash_key(path) ^ (static_cast<uint64_t>(t) + 1) * 0x9e3779b97f4a7c15ULL;
}

WatchEntries::~WatchEntries() {
  for (size_t i = 0; slots_ && i <= mask_; ++i)
    if (slots_[i]) release(address(slots_[i]));
  for (size_t i = next_; old_ && i <= old_mask_; ++i)
    if (old_[i] > kTombstone) release(address(old_[i]));
}

void WatchEntries::release(WatchEntry* e) noexcept {
  const bool slab = e->in_slab;
  e->~WatchEntry();
  if (slab)
    arena_.deallocate(e);
  else
    std::free(e);
}

uintptr_t* WatchEntries::find_slot(WatchTable t, std::string_view path, uint64_t h) const {
  if (size_ == 0) return nullptr;
  const uintptr_t want = tag(h);
  auto matches = [&](uintptr_t s) {
    if ((s & ~kAddressMask) != want) return false;
    const WatchEntry* e = address(s);
    return e->kind() == t && e->path() == path;
  };
  for (size_t i = h & mask_; slots_[i]; i = (i + 1) & mask_)
    if (matches(slots_[i])) return &slots_[i];
  if (old_)
    for (size_t i = h & old_mask_; old_[i]; i = (i + 1) & old_mask_)
      if (old_[i] > kTombstone && matches(old_[i])) return &old_[i];
  return nullptr;
}

WatchEntry* WatchEntries::find(WatchTable t, std::string_view path) const {
  uintptr_t* s = find_slot(t, path, hash(t, path));
  return s ? address(*s) : nullptr;
}

void WatchEntries::place(uintptr_t slot, uint64_t h) {
  size_t i = h & mask_;
  while (slots_[i]) i = (i + 1) & mask_;
  slots_[i] = slot;
}

void WatchEntries::start_resize(size_t capacity) {
  migrate(SIZE_MAX);  // one resize at a time
  // Zeroed, every slot empty; made before anything changes, in case it throws.
  Slots fresh(capacity);
  old_ = std::exchange(slots_, std::move(fresh));
  old_mask_ = old_ ? mask_ : 0;
  mask_ = capacity - 1;
  next_ = 0;
  if (!old_) return;
  migrate(old_mask_ + 1 <= kSyncResize ? SIZE_MAX : kMigrateStep);
}

void WatchEntries::migrate(size_t budget) {
  if (!old_) return;
  for (; next_ <= old_mask_ && budget > 0; ++next_, --budget) {
    const uintptr_t s = old_[next_];
    if (s <= kTombstone) continue;
    place(s, hash(*address(s)));
    old_[next_] = kTombstone;
  }
  if (next_ > old_mask_) {
    old_.reset();
    old_mask_ = 0;
    next_ = 0;
  }
}

std::pair<WatchEntry*, bool> WatchEntries::find_or_make(WatchTable t, std::string_view path) {
  const uint64_t h = hash(t, path);
  if (uintptr_t* s = find_slot(t, path, h)) return {address(*s), false};
  if (path.size() >= (size_t{1} << 29)) throw std::length_error("watched path too long");
  // Room first (it may throw), then the entry: nothing to undo.
  if ((size_ + 1) * 4 > capacity() * 3) start_resize(capacity() ? capacity() * 2 : 16);
  const size_t bytes = sizeof(WatchEntry) + path.size();
  const bool slab = kSlabsInUse && bytes <= SlabArena::kMaxObject;
  void* mem = slab ? arena_.allocate(bytes) : std::malloc(bytes);
  if (!mem) throw std::bad_alloc();
  // The slot keeps the hash's tag in the address's top 16 bits, which
  // user-space addresses leave clear on the platforms this runs on.
  assert((reinterpret_cast<uintptr_t>(mem) & ~kAddressMask) == 0);
  WatchEntry* e = new (mem) WatchEntry;
  e->path_size = static_cast<uint32_t>(path.size());
  e->table = static_cast<uint32_t>(t);
  e->in_slab = slab;
  std::memcpy(static_cast<char*>(mem) + sizeof(WatchEntry), path.data(), path.size());
  place(slot_for(e, h), h);
  ++size_;
  ++per_table_[static_cast<size_t>(t)];
  migrate(kMigrateStep);
  return {e, true};
}

void WatchEntries::erase(WatchEntry* e) {
  const uint64_t h = hash(*e);
  uintptr_t* s = find_slot(e->kind(), e->path(), h);
  const auto at = reinterpret_cast<uintptr_t>(s);
  if (old_ && at >= reinterpret_cast<uintptr_t>(old_.get()) &&
      at <= reinterpret_cast<uintptr_t>(old_.get() + old_mask_)) {
    *s = kTombstone;  // in the old slots: the chains through it stay whole
  } else {
    // Shift back each entry behind that may sit no earlier than its home
    // slot, so that no probe chain has a hole in it.
    size_t i = static_cast<size_t>(s - slots_.get());
    for (size_t j = (i + 1) & mask_; slots_[j]; j = (j + 1) & mask_) {
      const size_t home = hash(*address(slots_[j])) & mask_;
      // Moves to i when i lies on the way from its home to j (cyclically).
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = 0;
  }
  --size_;
  --per_table_[e->table];
  release(e);
  // Shrinks when an eighth full, so that a burst of watches gone leaves
  // no large table behind; never below 16 slots.
  try {
    if (!old_ && capacity() > 16 && size_ * 8 < capacity())
      start_resize(capacity() / 2);
    else
      migrate(kMigrateStep);
  } catch (const std::bad_alloc&) {
    // Stays as large as it was: correct, only bigger.
  }
}

}  // namespace corral::kernel
