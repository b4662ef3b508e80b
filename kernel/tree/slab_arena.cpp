#include "tree/slab_arena.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <system_error>

namespace corral::kernel {

void* allocate_zeroed(size_t bytes) {
  void* p;
  if (bytes >= kMappedZeroedBytes) {
    p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    ::madvise(p, bytes, MADV_NOHUGEPAGE);  // advice only: without it, huge pages as before
  } else {
    p = std::calloc(1, bytes);
    if (!p) throw std::bad_alloc();
  }
  return p;
}

void free_zeroed(void* p, size_t bytes) noexcept {
  if (!p) return;
  if (bytes >= kMappedZeroedBytes)
    ::munmap(p, bytes);
  else
    std::free(p);
}

// The front of each page. The objects start at kFirstObject; a freed
// object holds the address of the page's next freed one.
struct SlabArena::Page {
  Page* prev;
  Page* next;
  void* free;      // freed objects, the last freed first
  Region* region;  // the region the page is in
  uint32_t size;   // each object's bytes
  uint32_t used;   // objects handed out and not freed
  uint32_t fresh;  // offset of the first object never handed out
  uint32_t listed;
};

struct SlabArena::Region {
  char* base;
  uint32_t free_pages;  // bit i: page i is free
  bool open;            // in the arena's list of regions with a free page
  Region* prev_open;
  Region* next_open;
  Region* prev;
  Region* next;
};

namespace {
constexpr size_t kFirstObject = 64;  // the header in a cache line of its own
static_assert(sizeof(void*) == 8, "pages and slots assume 64-bit addresses");
static_assert(kFirstObject % SlabArena::kGrain == 0);
constexpr uint32_t kAllFree = 0xffffffffu >> (32 - SlabArena::kRegionBytes / SlabArena::kPageBytes);
}  // namespace

SlabArena& SlabArena::for_nodes() {
  static SlabArena* arena = [] {
    const char* huge = std::getenv("CORRAL_HUGEPAGES");
    return new SlabArena(huge && huge[0] == '1' && huge[1] == '\0');
  }();
  return *arena;
}

SlabArena::~SlabArena() {
  while (regions_) unmap_region(regions_);
}

size_t SlabArena::usable_size(const void* p) noexcept {
  auto* page = reinterpret_cast<const Page*>(reinterpret_cast<uintptr_t>(p) & ~(kPageBytes - 1));
  return page->size;
}

void SlabArena::push_front(Class& c, Page* p) noexcept {
  p->prev = nullptr;
  p->next = c.head;
  if (c.head) c.head->prev = p;
  c.head = p;
  p->listed = 1;
}

void SlabArena::unlink(Class& c, Page* p) noexcept {
  if (p->prev)
    p->prev->next = p->next;
  else
    c.head = p->next;
  if (p->next) p->next->prev = p->prev;
  p->prev = p->next = nullptr;
  p->listed = 0;
}

SlabArena::Region* SlabArena::map_region() noexcept {
  auto* r = new (std::nothrow) Region{};
  if (!r) return nullptr;
  // Twice the size, then the ends trimmed: a region starts on a multiple of
  // its size, so that each page starts on a multiple of its own.
  void* m =
      ::mmap(nullptr, 2 * kRegionBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    delete r;
    return nullptr;
  }
  const auto start = reinterpret_cast<uintptr_t>(m);
  const uintptr_t aligned = (start + kRegionBytes - 1) & ~(kRegionBytes - 1);
  if (aligned > start) ::munmap(m, aligned - start);
  const uintptr_t end = start + 2 * kRegionBytes;
  if (end > aligned + kRegionBytes)
    ::munmap(reinterpret_cast<void*>(aligned + kRegionBytes), end - aligned - kRegionBytes);
  r->base = reinterpret_cast<char*>(aligned);
  // Advice only: whether a huge page is worth it is the operator's call,
  // as for malloc's own memory (CORRAL_HUGEPAGES).
  if (huge_pages_) ::madvise(r->base, kRegionBytes, MADV_HUGEPAGE);
  r->free_pages = kAllFree;
  r->next = regions_;
  if (regions_) regions_->prev = r;
  regions_ = r;
  ++stats_.regions;
  return r;
}

void SlabArena::unmap_region(Region* r) noexcept {
  forget_fill(r);
  if (r->open) {
    if (r->prev_open)
      r->prev_open->next_open = r->next_open;
    else
      open_ = r->next_open;
    if (r->next_open) r->next_open->prev_open = r->prev_open;
  }
  if (r->prev)
    r->prev->next = r->next;
  else
    regions_ = r->next;
  if (r->next) r->next->prev = r->prev;
  ::munmap(r->base, kRegionBytes);
  delete r;
  --stats_.regions;
}

SlabArena::Region* SlabArena::take_ahead() noexcept {
  while (ahead_.size() <= ahead_wanted_) {
    Region* fresh = map_region();
    if (!fresh) break;
    ahead_.push_back(fresh);
    {
      std::lock_guard<std::mutex> lock(fill_mu_);
      to_fill_.push_back(fresh->base);
    }
    fill_cv_.notify_all();
  }
  if (ahead_.empty()) return nullptr;
  Region* r = ahead_.front();
  ahead_.pop_front();
  return r;
}

void SlabArena::fill_loop() {
  std::unique_lock<std::mutex> lock(fill_mu_);
  while (true) {
    fill_cv_.wait(lock, [&] { return fill_stop_ || !to_fill_.empty(); });
    if (fill_stop_) return;
    filling_ = to_fill_.front();
    to_fill_.pop_front();
    lock.unlock();
    // Advice only, and it writes nothing: a page the owner reached first is
    // left as it is. unmap_region waits for the region being filled.
    ::madvise(filling_, kRegionBytes, MADV_POPULATE_WRITE);
    lock.lock();
    filling_ = nullptr;
    fill_cv_.notify_all();
  }
}

void SlabArena::forget_fill(Region* r) noexcept {
  if (!filler_.joinable()) return;
  std::unique_lock<std::mutex> lock(fill_mu_);
  std::erase(to_fill_, r->base);
  fill_cv_.wait(lock, [&] { return filling_ != r->base; });
}

SlabArena::FillAhead::FillAhead(SlabArena& arena, uint32_t regions) : arena_(arena) {
  if (regions == 0) return;
  std::lock_guard<std::mutex> lock(arena_.mu_);
  if (arena_.filler_.joinable()) return;  // one at a time: this one does nothing
  arena_.fill_stop_ = false;
  try {
    arena_.filler_ = std::thread([a = &arena_] { a->fill_loop(); });
  } catch (const std::system_error&) {
    return;  // no thread: pages are faulted in as before
  }
  arena_.ahead_wanted_ = regions;
  active_ = true;
}

SlabArena::FillAhead::~FillAhead() {
  if (!active_) return;
  std::lock_guard<std::mutex> lock(arena_.mu_);
  {
    std::lock_guard<std::mutex> fill(arena_.fill_mu_);
    arena_.fill_stop_ = true;
    arena_.to_fill_.clear();
  }
  arena_.fill_cv_.notify_all();
  arena_.filler_.join();  // it takes only fill_mu_: the arena's lock may be held
  arena_.ahead_wanted_ = 0;
  // What was mapped ahead and not used goes back: faulted in, it would
  // count in the server's memory for nothing until the tree grows.
  while (!arena_.ahead_.empty()) {
    arena_.unmap_region(arena_.ahead_.back());
    arena_.ahead_.pop_back();
  }
}

SlabArena::Page* SlabArena::new_page(uint32_t size) noexcept {
  static_assert(sizeof(Page) <= kFirstObject, "the page's header is before its first object");
  Region* r = open_;
  if (!r) {
    r = ahead_wanted_ ? take_ahead() : map_region();
    if (!r) return nullptr;
    r->open = true;
    r->prev_open = r->next_open = nullptr;
    open_ = r;
  }
  const int i = __builtin_ctz(r->free_pages);
  r->free_pages &= ~(uint32_t{1} << i);
  if (r->free_pages == 0) {  // full: out of the open list
    open_ = r->next_open;
    if (open_) open_->prev_open = nullptr;
    r->open = false;
  }
  char* at = r->base + static_cast<size_t>(i) * kPageBytes;
  // The page will be written all over: its sixteen page faults in one
  // call (advice only; kernels before 5.14 fault each page on first
  // touch). Loading a snapshot of 1M znodes took 0.55-0.58 s with this
  // and 0.77-0.91 s without, nearly all of the difference system time.
  ::madvise(at, kPageBytes, MADV_POPULATE_WRITE);
  auto* p = new (at) Page{};
  p->region = r;
  p->size = size;
  p->fresh = kFirstObject;
  ++stats_.pages;
  return p;
}

void SlabArena::release_page(Page* p) noexcept {
  Region* r = p->region;
  const auto i = static_cast<uint32_t>((reinterpret_cast<char*>(p) - r->base) / kPageBytes);
  // Its memory goes back to the system now; the page is zeroed when next
  // touched.
  ::madvise(p, kPageBytes, MADV_DONTNEED);
  --stats_.pages;
  r->free_pages |= uint32_t{1} << i;
  if (!r->open) {
    r->open = true;
    r->prev_open = nullptr;
    r->next_open = open_;
    if (open_) open_->prev_open = r;
    open_ = r;
  }
  // A region with no page in use is unmapped, unless no other has room:
  // a class that empties and fills its page again should not map anew.
  if (r->free_pages == kAllFree && (r->prev_open || r->next_open)) unmap_region(r);
}

void* SlabArena::allocate(size_t bytes) noexcept {
  if (bytes == 0 || bytes > kMaxObject) return nullptr;
  // At least 16 bytes per object: a freed one holds the next's address,
  // and no znode is smaller.
  const size_t index = (std::max(bytes, 2 * kGrain) + kGrain - 1) / kGrain;
  std::lock_guard<std::mutex> lock(mu_);
  Class& c = classes_[index];
  Page* p = c.head;
  if (!p) {
    if (c.spare) {
      p = c.spare;  // empty, with its freed objects still in its list
      c.spare = nullptr;
    } else {
      p = new_page(static_cast<uint32_t>(index * kGrain));
      if (!p) return nullptr;
    }
    push_front(c, p);
  }
  void* obj;
  if (p->free) {
    obj = p->free;
    std::memcpy(&p->free, obj, sizeof(void*));
  } else {
    obj = reinterpret_cast<char*>(p) + p->fresh;
    p->fresh += p->size;
  }
  ++p->used;
  ++stats_.objects;
  if (!p->free && p->fresh + p->size > kPageBytes) unlink(c, p);  // full
  return obj;
}

void SlabArena::deallocate(void* obj) noexcept {
  if (!obj) return;
  auto* p = reinterpret_cast<Page*>(reinterpret_cast<uintptr_t>(obj) & ~(kPageBytes - 1));
  std::lock_guard<std::mutex> lock(mu_);
  Class& c = classes_[p->size / kGrain];
  std::memcpy(obj, &p->free, sizeof(void*));
  p->free = obj;
  --p->used;
  --stats_.objects;
  // A page that was full has room again: first in line, so that the next
  // allocation takes the slot just freed (after a snapshot's fork, that
  // object's memory has been copied already).
  if (!p->listed) push_front(c, p);
  if (p->used == 0 && (p->prev || p->next)) {
    unlink(c, p);
    if (c.spare) release_page(c.spare);
    c.spare = p;
  }
}

SlabArena::Stats SlabArena::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace corral::kernel
