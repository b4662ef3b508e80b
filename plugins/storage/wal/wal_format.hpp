// The on-disk formats of the `wal` storage plugin, shared by the plugin and
// the corral-wal inspection tool.
//
// Log segment `log.<first zxid, 16 hex digits>`: preallocated, then records
//   u32 length (LE) | u32 CRC-32C of the payload (LE) | payload
// where payload is msgpack [zxid, time_ms, body]. A zero length marks the end
// of the written part.
//
// Snapshot `snapshot.<zxid, 16 hex>`:
//   "CORRALSN" | u32 version (LE) | i64 zxid (LE)
//   blocks of the body, each u32 length (LE) | u32 CRC-32C (LE) | bytes
//   u32 0 | u32 block count (LE) | u64 body length (LE) | "CORRALEN"
// Per-block checksums let a failure name the offset of the damaged block.
//
// Epochs `epochs`: u32 accepted | u32 current | u32 CRC-32C of the 8 bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "corral/sdk/status.hpp"
#include "corral/sdk/types.hpp"

namespace corral::wal {

inline constexpr size_t kRecordHeader = 8;
inline constexpr uint32_t kMaxRecord = 64u << 20;
inline constexpr size_t kSnapshotHeader = 20;
inline constexpr size_t kSnapshotTrailer = 24;
inline constexpr size_t kSnapshotBlock = 1 << 20;
inline constexpr uint32_t kSnapshotVersion = 1;

std::string segment_name(sdk::Zxid first);
std::string snapshot_name(sdk::Zxid zxid);
// Parses "log.<hex>" / "snapshot.<hex>"; false for other names.
bool parse_name(std::string_view name, std::string_view prefix, sdk::Zxid& zxid);

// Appends one encoded record.
void encode_record(std::string& out, const sdk::LogEntry& entry);

// How a segment's scan ended.
struct SegmentScan {
  enum End { clean, torn, corrupt } end = clean;
  size_t valid_end = 0;   // offset just past the last good record
  size_t bad_offset = 0;  // where the bad record starts (torn/corrupt)
  std::string why;        // what was wrong there
  size_t records = 0;
  sdk::Zxid first = 0, last = 0;  // zxids of the first and last good record
};

// Reads every record of a segment in order, calling `visit` (if given) for
// each good one until it returns false. A bad record followed only by zeros
// in what remains is `torn` (a write cut short by a crash); any other bad
// record is `corrupt`. `last_segment` says whether a torn tail is possible.
SegmentScan scan_segment(std::string_view data, bool last_segment,
                         const std::function<bool(const sdk::LogEntry&, size_t offset)>& visit = nullptr);

// Snapshot framing.
std::string snapshot_header(sdk::Zxid zxid);
void append_snapshot_block(std::string& out, std::string_view block);
std::string snapshot_trailer(uint32_t blocks, uint64_t body_length);
// Checks a whole snapshot file; on success sets `zxid` and fills `body`. On
// failure returns Errc::corrupt naming the offset and the problem.
sdk::Status read_snapshot(std::string_view data, sdk::Zxid& zxid, std::string* body);

std::string encode_epochs(uint32_t accepted, uint32_t current);
bool decode_epochs(std::string_view data, uint32_t& accepted, uint32_t& current);

// A read-only view of a whole file (mmap). Empty on failure, with `error` set.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view data() const { return {static_cast<const char*>(addr_), size_}; }
  const std::string& error() const { return error_; }
  bool ok() const { return error_.empty(); }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
  std::string error_;
};

}  // namespace corral::wal
