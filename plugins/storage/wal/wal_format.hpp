// The on-disk formats of the `wal` storage plugin, shared by the plugin and
// the corral-wal inspection tool.
//
// Log segment `log.<first zxid, 16 hex digits>`: preallocated, then records
//   u32 length (LE) | u32 CRC-32C of the payload (LE) | payload
// where payload is msgpack [zxid, time_ms, body]. A zero length marks the end
// of the written part.
//
// Snapshot `snapshot.<zxid, 16 hex>`, version 2:
//   "CORRALSN" | u32 version = 2 (LE) | i64 zxid (LE)
//   the body, in one piece
//   u32 CRC-32C (LE) of each kSnapshotBlock bytes of the body, in order (the
//     last block may be shorter)
//   u32 0 | u32 block count (LE) | u64 body length (LE) | "CORRALEN"
// Per-block checksums let a failure name the offset of the damaged block. The
// body lies in one piece so that recovery can map the file and load the tree
// from where it lies, without copying it into fresh memory first.
// Version 3, compressed (storage.wal.snapshot_compression = "zstd"):
//   "CORRALSN" | u32 version = 3 (LE) | i64 zxid (LE)
//   frames: u32 length (LE) | a zstd frame of up to kSnapshotBlock body bytes
//   u32 CRC-32C (LE) of each frame's zstd bytes, in order
//   u32 0 | u32 frame count | u64 body length, uncompressed | "CORRALEN"
// A compressed snapshot is inflated into memory to be loaded.
// Version 1, still read, interleaved the blocks with their checksums:
//   each block u32 length (LE) | u32 CRC-32C (LE) | bytes; then the same trailer.
//
// Epochs `epochs`: u32 accepted | u32 current | u32 CRC-32C of the 8 bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "corral/sdk/status.hpp"
#include "corral/sdk/types.hpp"

namespace corral::wal {

inline constexpr size_t kRecordHeader = 8;
inline constexpr uint32_t kMaxRecord = 64u << 20;
// Deciding whether a bad record is a torn tail checksums at most this many
// times the bytes after it.
inline constexpr uint64_t kTailCheckFactor = 4;
inline constexpr size_t kSnapshotHeader = 20;
inline constexpr size_t kSnapshotTrailer = 24;
inline constexpr size_t kSnapshotBlock = 1 << 20;
inline constexpr uint32_t kSnapshotVersion = 2;
inline constexpr uint32_t kSnapshotVersionZstd = 3;

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
  uint64_t tail_checked = 0;      // payload bytes checksummed looking past a bad record
};

// Reads every record of a segment in order, calling `visit` (if given) for
// each good one until it returns false. A bad record followed only by zeros
// in what remains is `torn` (a write cut short by a crash); any other bad
// record is `corrupt`. `last_segment` says whether a torn tail is possible.
SegmentScan scan_segment(
    std::string_view data, bool last_segment,
    const std::function<bool(const sdk::LogEntry&, size_t offset)>& visit = nullptr);

// Snapshot framing (version 2): the header, then the body as it comes, fed
// to SnapshotChecksums, then what its tail() returns.
std::string snapshot_header(sdk::Zxid zxid, uint32_t version = kSnapshotVersion);
class SnapshotChecksums {
 public:
  // The next bytes of the body.
  void add(std::string_view bytes);
  uint64_t body_length() const { return total_; }
  // The checksum table and the trailer, to follow the body.
  std::string tail() const;

 private:
  std::vector<uint32_t> crcs_;  // of each full block
  uint32_t crc_ = 0;            // of the block being filled
  size_t in_block_ = 0;
  uint64_t total_ = 0;
};
// Version 3's framing: the body compressed block by block as it comes.
class SnapshotCompressor {
 public:
  explicit SnapshotCompressor(int level);
  ~SnapshotCompressor();
  SnapshotCompressor(const SnapshotCompressor&) = delete;
  SnapshotCompressor& operator=(const SnapshotCompressor&) = delete;
  // The next bytes of the body; appends the frames of the blocks they fill
  // to `out`.
  sdk::Status add(std::string_view bytes, std::string& out);
  // Appends the last frame, the checksum table and the trailer.
  sdk::Status finish(std::string& out);
  uint64_t body_length() const { return total_; }

 private:
  sdk::Status frame(std::string& out);
  void* ctx_;  // ZSTD_CCtx
  int level_;
  std::string block_;
  std::vector<uint32_t> crcs_;
  uint64_t total_ = 0;
};

// Checks a whole snapshot file, of any version; on success sets `zxid`
// and `body` (if given): a view into `data` (version 2), or into `*copy`,
// which is filled with it (versions 1 and 3). On failure returns Errc::corrupt
// naming the offset and the problem.
sdk::Status check_snapshot(std::string_view data, sdk::Zxid& zxid, std::string_view* body,
                           std::string* copy);
// check_snapshot with the body copied into `body` (if given).
sdk::Status read_snapshot(std::string_view data, sdk::Zxid& zxid, std::string* body);

// Reads a snapshot file's body a piece at a time (for a leader that sends it
// to a learner), checking each block or frame as it comes to it: open()
// checks the header and the trailer, and a damage further in shows when the
// reading reaches it, as Errc::corrupt naming the offset.
class SnapshotPieces {
 public:
  // `data` is the whole file and must outlive this.
  sdk::Status open(std::string_view data);
  sdk::Zxid zxid() const { return zxid_; }
  uint32_t version() const { return version_; }
  // The body's length.
  uint64_t size() const { return length_; }
  // The next piece, at most `max` bytes, a view into the file (or into
  // inflated memory, for version 3) that holds until the next call; empty
  // once the whole body has been read.
  sdk::Result<std::string_view> next(size_t max);

 private:
  // Moves to the next block or frame; false (and `error`) when it is damaged.
  sdk::Status load_segment();
  std::string_view data_;
  uint32_t version_ = 0;
  sdk::Zxid zxid_ = 0;
  uint64_t length_ = 0;       // body bytes, per the trailer
  uint32_t count_ = 0;        // blocks or frames, per the trailer
  size_t table_at_ = 0;       // version 2: the checksums; version 3: the frames' checksums
  size_t off_ = 0;            // where the next block or frame starts in the file
  uint32_t index_ = 0;        // the next block or frame
  uint64_t delivered_ = 0;    // body bytes returned so far
  std::string_view segment_;  // what is left of the current block or frame
  std::string inflated_;      // version 3: the current frame, inflated
};

std::string encode_epochs(uint32_t accepted, uint32_t current);
bool decode_epochs(std::string_view data, uint32_t& accepted, uint32_t& current);

// A read-only view of a whole file (mmap). Empty on failure, with `error` set.
// The process keeps count of the files mapped, so that remove_gradually()
// never empties one that a mapping still reads.
class MappedFile {
 public:
  // `populate` maps every page at once (MAP_POPULATE), for a file that is
  // about to be read whole.
  explicit MappedFile(const std::string& path, bool populate = false);
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
  uint64_t dev_ = 0, ino_ = 0;  // the file's, once counted
  bool counted_ = false;
};

// Removes a file of many megabytes: it is renamed to <path>.tmp (which the
// next start removes as a leftover) and its blocks are freed a piece at a
// time (holes punched) before the name goes, since freeing them all at once
// is one large journal transaction that the log's next sync (an
// acknowledgement) would wait behind. A file this process has mapped (a
// log being read, a snapshot being sent) or with another name (a hard link)
// is only unlinked. Another program reading it meanwhile reads zeros where
// the holes are. ENOENT is not an error.
sdk::Status remove_gradually(const std::string& path);

}  // namespace corral::wal
