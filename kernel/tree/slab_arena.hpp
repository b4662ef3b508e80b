// Memory for small objects held by the million (znodes, watched paths), in
// size classes 8 bytes apart.
//
// malloc puts an 8-byte header in front of each chunk and rounds it up to
// 16 bytes: a znode of 176 bytes takes 192. A tree of a million znodes is a
// million such chunks, so those 16 bytes are a tenth of its memory. Here an
// object takes its size rounded up to 8, with no header: objects of one
// class share 64 KiB pages, and an object's page (found by masking its
// address) says how large it is and takes it back.
//
// Pages come from regions of 2 MiB mapped at once. A page whose objects are
// all freed stays with its class when it is the only page there with room;
// otherwise it becomes the class's spare (the one spare before it goes
// back), so that a class filling and emptying one page at its edge does not
// map and give back memory on every turn. A page that goes back returns to
// its region and its memory to the system (in huge pages, the kernel may
// merge it back into a huge page later); a region whose pages are all back
// is unmapped, unless no other region has a free page. Thread-safe: one
// lock, taken once per allocation and free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace corral::kernel {

// Whether objects come from slab arenas at all. Under AddressSanitizer they
// come from malloc instead, where a use after free is caught.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSlabsInUse = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSlabsInUse = false;
#else
inline constexpr bool kSlabsInUse = true;
#endif
#else
inline constexpr bool kSlabsInUse = true;
#endif

// Zeroed arrays for hash tables' slots (a child set's, the watched paths').
// Those of kMappedZeroedBytes or more are a mapping of their own, in
// ordinary pages. In a transparent huge page, the first touch of each 2 MiB
// zeroes all of it at once, and a fresh table is touched everywhere at once
// (keys land anywhere): growing a table of a million nodes stalled the loop
// for 20-60 ms in page faults. In 4 KiB pages the same zeroing is spread
// over the thousands of inserts that first touch each page. Smaller ones
// come from calloc.
inline constexpr size_t kMappedZeroedBytes = size_t{1} << 20;
// `bytes` of zeroes; throws std::bad_alloc.
void* allocate_zeroed(size_t bytes);
// Gives back what allocate_zeroed(bytes) gave.
void free_zeroed(void* p, size_t bytes) noexcept;

class SlabArena {
 public:
  static constexpr size_t kGrain = 8;
  // Larger objects are for malloc: its rounding is a small part of them.
  static constexpr size_t kMaxObject = 512;
  static constexpr size_t kPageBytes = size_t{64} << 10;
  static constexpr size_t kRegionBytes = size_t{2} << 20;

  // `huge_pages`: ask for transparent huge pages in each region.
  explicit SlabArena(bool huge_pages = false) : huge_pages_(huge_pages) {}
  // Unmaps every region, whatever is still in them.
  ~SlabArena();
  SlabArena(const SlabArena&) = delete;
  SlabArena& operator=(const SlabArena&) = delete;

  // An object of at least `bytes`, 8-byte aligned; null when `bytes` is 0
  // or more than kMaxObject, or when no memory can be mapped.
  void* allocate(size_t bytes) noexcept;
  // Gives back an object this arena allocated.
  void deallocate(void* p) noexcept;
  // The bytes an object of this arena can hold (its class's size).
  static size_t usable_size(const void* p) noexcept;

  struct Stats {
    size_t objects = 0;  // allocated and not freed
    size_t pages = 0;    // in use by some class
    size_t regions = 0;  // mapped
  };
  Stats stats() const;

  // The arena znodes come from, made on first use and never destroyed
  // (nodes may be freed while the program's statics are).
  static SlabArena& for_nodes();

 private:
  struct Region;
  struct Page;
  struct Class {
    Page* head = nullptr;   // pages with room, the last given room first
    Page* spare = nullptr;  // an emptied page kept off the list, or null
  };
  static constexpr size_t kClasses = kMaxObject / kGrain + 1;
  static constexpr uint32_t kPagesPerRegion = kRegionBytes / kPageBytes;
  static_assert(kPagesPerRegion <= 32, "a region's free pages are one 32-bit mask");

  Page* new_page(uint32_t size) noexcept;
  void release_page(Page* p) noexcept;
  Region* map_region() noexcept;
  void unmap_region(Region* r) noexcept;
  static void push_front(Class& c, Page* p) noexcept;
  static void unlink(Class& c, Page* p) noexcept;

  const bool huge_pages_;
  mutable std::mutex mu_;
  Class classes_[kClasses];
  Region* open_ = nullptr;     // regions with a free page, a list
  Region* regions_ = nullptr;  // every region, a list
  Stats stats_;
};

}  // namespace corral::kernel
