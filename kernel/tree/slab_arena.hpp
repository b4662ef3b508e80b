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

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

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

  // While one lives, a second thread faults in the next regions the arena
  // will hand out (`regions` of them, mapped ahead) as the owner fills the
  // current one: making fresh memory is most of what a snapshot's load
  // costs the kernel, and this puts it on another core. The regions mapped
  // ahead and not used when it ends are unmapped. One at a time per arena;
  // it must end before the arena does.
  class FillAhead {
   public:
    FillAhead(SlabArena& arena, uint32_t regions);
    ~FillAhead();
    FillAhead(const FillAhead&) = delete;
    FillAhead& operator=(const FillAhead&) = delete;

   private:
    SlabArena& arena_;
    bool active_ = false;  // false when another was alive, or no thread could start
  };

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

  // Takes a region mapped ahead, and maps more ahead for the filler.
  Region* take_ahead() noexcept;
  void fill_loop();
  // Before `r` is unmapped: the thread filling ahead, if any, leaves it.
  void forget_fill(Region* r) noexcept;

  const bool huge_pages_;
  mutable std::mutex mu_;
  // Regions mapped ahead (in the order they will be used) while a
  // FillAhead lives, and the bases its thread is to fault in.
  std::deque<Region*> ahead_;
  uint32_t ahead_wanted_ = 0;
  std::mutex fill_mu_;
  std::condition_variable fill_cv_;  // work for the thread, or a region done
  std::deque<char*> to_fill_;
  char* filling_ = nullptr;  // the region the thread is faulting in
  bool fill_stop_ = false;
  std::thread filler_;
  Class classes_[kClasses];
  Region* open_ = nullptr;     // regions with a free page, a list
  Region* regions_ = nullptr;  // every region, a list
  Stats stats_;
};

}  // namespace corral::kernel
