#include "wal_format.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <msgpack.hpp>
#include <mutex>
#include <set>

#include "corral/common/crc32c.hpp"
#include "corral/common/msgpack.hpp"

namespace corral::wal {

using sdk::Errc;
using sdk::Status;

namespace {

void put_u32(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 4);
}
void put_u64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 8);
}
uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

struct StringBuffer {
  std::string& s;
  void write(const char* p, size_t n) { s.append(p, n); }
};

// A preallocated segment is mostly zeros after its last record: checked
// eight bytes at a time.
bool all_zero(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  for (; n > 0 && reinterpret_cast<uintptr_t>(p) % 8 != 0; --n, ++p)
    if (*p != 0) return false;
  uint64_t any = 0;
  for (; n >= 64; n -= 64, p += 64) {
    uint64_t w[8];
    std::memcpy(w, p, 64);
    any |= w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7];
    if (any) return false;
  }
  for (; n > 0; --n, ++p)
    if (*p != 0) return false;
  return true;
}

std::string hex_name(const char* prefix, sdk::Zxid z) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%016llx", prefix, static_cast<unsigned long long>(z));
  return buf;
}

}  // namespace

std::string segment_name(sdk::Zxid first) { return hex_name("log.", first); }
std::string snapshot_name(sdk::Zxid zxid) { return hex_name("snapshot.", zxid); }

bool parse_name(std::string_view name, std::string_view prefix, sdk::Zxid& zxid) {
  if (name.size() != prefix.size() + 16 || name.substr(0, prefix.size()) != prefix) return false;
  uint64_t v = 0;
  for (char c : name.substr(prefix.size())) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  zxid = static_cast<sdk::Zxid>(v);
  return true;
}

void encode_record(std::string& out, const sdk::LogEntry& e) {
  size_t at = out.size();
  out.append(kRecordHeader, '\0');
  StringBuffer buf{out};
  msgpack::packer<StringBuffer> pk(buf);
  pk.pack_array(3);
  pk.pack(e.zxid);
  pk.pack(e.time_ms);
  pk.pack_bin(static_cast<uint32_t>(e.body.size()));
  pk.pack_bin_body(e.body.data(), static_cast<uint32_t>(e.body.size()));
  uint32_t len = static_cast<uint32_t>(out.size() - at - kRecordHeader);
  uint32_t crc = common::crc32c(0, out.data() + at + kRecordHeader, len);
  for (int i = 0; i < 4; ++i) {
    out[at + i] = static_cast<char>(len >> (8 * i));
    out[at + 4 + i] = static_cast<char>(crc >> (8 * i));
  }
}

namespace {

// Decodes a payload; false if it is not [zxid, time, bin].
bool decode_payload(std::string_view p, sdk::LogEntry& e) {
  common::MsgpackReader r(p);
  if (r.array() != 3) return false;
  int64_t zxid = r.integer(), time = r.integer();
  std::string_view body = r.bytes();
  if (!r.ok() || !r.at_end()) return false;
  e.zxid = zxid;
  e.time_ms = time;
  e.body.assign(body);
  return true;
}

// Whether `p` has a record's shape: [zxid, time, bin] filling it exactly.
// Cheap (a few header bytes), so it screens candidates before a checksum.
bool record_shaped(std::string_view p) {
  if (p.empty() || static_cast<uint8_t>(p[0]) != 0x93) return false;
  common::MsgpackReader r(p);
  (void)r.array();
  (void)r.integer();
  (void)r.integer();
  (void)r.bytes();
  return r.ok() && r.at_end();
}

// True if a well-formed record starts anywhere at or after `from`, or if
// that cannot be ruled out cheaply. Linear in the bytes searched: only a
// candidate whose length agrees with its payload's own structure has its
// checksum computed, and checksums stop once they have covered
// kTailCheckFactor times the bytes searched (possible only in crafted
// data, where records nest); the answer is then "yes": damage, not a torn
// write, which stops recovery and names the spot rather than truncating.
enum class After { nothing, record, undecided };
After good_record_after(std::string_view data, size_t from, uint64_t& checked) {
  const uint64_t budget =
      kTailCheckFactor * (data.size() - std::min(from, data.size())) + (1u << 20);
  for (size_t p = from; p + kRecordHeader < data.size(); ++p) {
    uint32_t len = get_u32(data.data() + p);
    if (len == 0 || len > kMaxRecord || len > data.size() - p - kRecordHeader) continue;
    std::string_view payload = data.substr(p + kRecordHeader, len);
    if (!record_shaped(payload)) continue;
    checked += len;
    if (checked > budget) return After::undecided;
    if (common::crc32c(payload) == get_u32(data.data() + p + 4)) return After::record;
  }
  return After::nothing;
}

}  // namespace

SegmentScan scan_segment(std::string_view data, bool last_segment,
                         const std::function<bool(const sdk::LogEntry&, size_t)>& visit) {
  SegmentScan s;
  size_t off = 0;
  sdk::LogEntry e;
  // A bad record is a torn tail — a write cut short by a crash — when it is
  // in the last segment and no good record follows it anywhere; otherwise
  // the log is corrupt.
  auto bad = [&](std::string why) {
    s.bad_offset = off;
    s.why = std::move(why);
    if (!last_segment) {
      s.end = SegmentScan::corrupt;
      s.why += "; a segment other than the last cannot end in a torn write";
      return s;
    }
    switch (good_record_after(data, off + 1, s.tail_checked)) {
      case After::nothing:
        s.end = SegmentScan::torn;
        break;
      case After::record:
        s.end = SegmentScan::corrupt;
        s.why += "; a good record follows, so it is not a torn write";
        break;
      case After::undecided:
        s.end = SegmentScan::corrupt;
        s.why += "; what follows nests record headers too deeply to tell a torn write from damage";
        break;
    }
    return s;
  };
  while (off < data.size()) {
    if (data.size() - off < kRecordHeader) {
      if (all_zero(data.substr(off))) break;
      return bad("incomplete record header");
    }
    uint32_t len = get_u32(data.data() + off);
    uint32_t crc = get_u32(data.data() + off + 4);
    if (len == 0) {
      if (crc == 0 && all_zero(data.substr(off))) break;  // end of the written part
      return bad("zero-length record with data after it");
    }
    if (len > kMaxRecord) return bad("record length " + std::to_string(len) + " is too large");
    if (data.size() - off - kRecordHeader < len)
      return bad("record of " + std::to_string(len) + " bytes runs past the end of the file");
    std::string_view payload = data.substr(off + kRecordHeader, len);
    if (common::crc32c(payload) != crc) return bad("checksum mismatch");
    if (!decode_payload(payload, e)) return bad("undecodable record");
    if (s.records > 0 && e.zxid <= s.last) return bad("zxid out of order");
    if (s.records == 0) s.first = e.zxid;
    s.last = e.zxid;
    ++s.records;
    size_t at = off;
    off += kRecordHeader + len;
    s.valid_end = off;
    if (visit && !visit(e, at)) return s;
  }
  s.end = SegmentScan::clean;
  return s;
}

std::string snapshot_header(sdk::Zxid zxid, uint32_t version) {
  std::string h = "CORRALSN";
  put_u32(h, version);
  put_u64(h, static_cast<uint64_t>(zxid));
  return h;
}

void SnapshotChecksums::add(std::string_view bytes) {
  total_ += bytes.size();
  while (!bytes.empty()) {
    size_t take = std::min(bytes.size(), kSnapshotBlock - in_block_);
    crc_ = common::crc32c(crc_, bytes.data(), take);
    in_block_ += take;
    bytes.remove_prefix(take);
    if (in_block_ == kSnapshotBlock) {
      crcs_.push_back(crc_);
      crc_ = 0;
      in_block_ = 0;
    }
  }
}

std::string SnapshotChecksums::tail() const {
  std::string t;
  t.reserve((crcs_.size() + 1) * 4 + kSnapshotTrailer);
  for (uint32_t c : crcs_) put_u32(t, c);
  uint32_t blocks = static_cast<uint32_t>(crcs_.size());
  if (in_block_ > 0) {
    put_u32(t, crc_);
    ++blocks;
  }
  put_u32(t, 0);
  put_u32(t, blocks);
  put_u64(t, total_);
  t += "CORRALEN";
  return t;
}

SnapshotCompressor::SnapshotCompressor(int level) : ctx_(ZSTD_createCCtx()), level_(level) {
  block_.reserve(kSnapshotBlock);
}
SnapshotCompressor::~SnapshotCompressor() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(ctx_)); }

Status SnapshotCompressor::frame(std::string& out) {
  if (block_.empty()) return {};
  if (!ctx_) return {Errc::internal, "zstd: no compression context"};
  const size_t at = out.size();
  out.resize(at + 4 + ZSTD_compressBound(block_.size()));
  size_t n = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(ctx_), out.data() + at + 4,
                               out.size() - at - 4, block_.data(), block_.size(), level_);
  if (ZSTD_isError(n)) {
    out.resize(at);
    return {Errc::internal, std::string("zstd: ") + ZSTD_getErrorName(n)};
  }
  out.resize(at + 4 + n);
  std::string len;
  put_u32(len, static_cast<uint32_t>(n));
  out.replace(at, 4, len);
  crcs_.push_back(common::crc32c(std::string_view(out).substr(at + 4, n)));
  block_.clear();
  return {};
}

Status SnapshotCompressor::add(std::string_view bytes, std::string& out) {
  total_ += bytes.size();
  while (!bytes.empty()) {
    size_t take = std::min(bytes.size(), kSnapshotBlock - block_.size());
    block_.append(bytes.data(), take);
    bytes.remove_prefix(take);
    if (block_.size() == kSnapshotBlock)
      if (Status st = frame(out); !st) return st;
  }
  return {};
}

Status SnapshotCompressor::finish(std::string& out) {
  if (Status st = frame(out); !st) return st;
  for (uint32_t c : crcs_) put_u32(out, c);
  put_u32(out, 0);
  put_u32(out, static_cast<uint32_t>(crcs_.size()));
  put_u64(out, total_);
  out += "CORRALEN";
  return {};
}

namespace {

Status snapshot_corrupt(size_t at, const std::string& why) {
  return Status{Errc::corrupt, "at offset " + std::to_string(at) + ": " + why};
}

}  // namespace

Status check_snapshot(std::string_view data, sdk::Zxid& zxid, std::string_view* body,
                      std::string* copy) {
  // Read as a leader reads it for a learner, every block or frame checked:
  // one walk of each format, whether the body is wanted whole or in pieces.
  SnapshotPieces pieces;
  if (Status st = pieces.open(data); !st) return st;
  zxid = pieces.zxid();
  const bool in_place = pieces.version() == kSnapshotVersion;
  if (body && !in_place && !copy)
    return Status{Errc::internal, "a compressed or version 1 snapshot needs a copy to fill"};
  std::string* out = body && !in_place ? copy : nullptr;
  if (out) {
    out->clear();
    // Version 1's trailer is only trusted as far as the file could hold it;
    // version 3's body grows frame by frame, as each frame proves itself.
    if (pieces.version() == 1) out->reserve(static_cast<size_t>(pieces.size()));
  }
  while (true) {
    auto piece = pieces.next(kSnapshotBlock);
    if (!piece) return piece.status();
    if (piece.value().empty()) break;
    if (out) out->append(piece.value());
  }
  if (body)
    *body = in_place ? data.substr(kSnapshotHeader, static_cast<size_t>(pieces.size()))
                     : std::string_view(*copy);
  return {};
}

Status read_snapshot(std::string_view data, sdk::Zxid& zxid, std::string* body) {
  std::string_view view;
  std::string copy;
  Status st = check_snapshot(data, zxid, body ? &view : nullptr, &copy);
  if (st && body) *body = view.data() == copy.data() ? std::move(copy) : std::string(view);
  return st;
}

Status SnapshotPieces::open(std::string_view data) {
  data_ = data;
  if (data.size() < kSnapshotHeader + kSnapshotTrailer)
    return snapshot_corrupt(0, "file too short for a snapshot");
  if (data.substr(0, 8) != "CORRALSN")
    return snapshot_corrupt(0, "not a Corral snapshot (bad magic)");
  version_ = get_u32(data.data() + 8);
  if (version_ != 1 && version_ != 2 && version_ != kSnapshotVersionZstd)
    return snapshot_corrupt(8, "unsupported snapshot version " + std::to_string(version_));
  zxid_ = static_cast<sdk::Zxid>(get_u64(data.data() + 12));
  if (data.substr(data.size() - 8) != "CORRALEN")
    return snapshot_corrupt(data.size() - 8, "missing end marker (the file is incomplete)");
  const size_t trailer_at = data.size() - kSnapshotTrailer;
  count_ = get_u32(data.data() + trailer_at + 4);
  length_ = get_u64(data.data() + trailer_at + 8);
  off_ = kSnapshotHeader;
  if (version_ == 2) {
    const uint64_t expect = (length_ + kSnapshotBlock - 1) / kSnapshotBlock;
    if (get_u32(data.data() + trailer_at) != 0 || count_ != expect || length_ > data.size() ||
        kSnapshotHeader + length_ + uint64_t{count_} * 4 != trailer_at)
      return snapshot_corrupt(trailer_at, "trailer does not match the file's size (" +
                                              std::to_string(count_) + " blocks, " +
                                              std::to_string(length_) + " bytes)");
    table_at_ = kSnapshotHeader + static_cast<size_t>(length_);
  } else if (version_ == kSnapshotVersionZstd) {
    if (get_u32(data.data() + trailer_at) != 0 ||
        uint64_t{count_} * 8 > trailer_at - kSnapshotHeader ||
        length_ > uint64_t{count_} * kSnapshotBlock)
      return snapshot_corrupt(trailer_at, "trailer does not match the file (" +
                                              std::to_string(count_) + " frames, " +
                                              std::to_string(length_) + " bytes)");
    table_at_ = trailer_at - size_t{count_} * 4;
  } else {
    // Version 1: blocks up to a zero length, then the trailer (read as
    // u32 0 | u32 blocks | u64 total, like the others).
    if (get_u32(data.data() + trailer_at) != 0 || length_ > data.size())
      return snapshot_corrupt(trailer_at, "trailer does not match the blocks (" +
                                              std::to_string(count_) + " blocks, " +
                                              std::to_string(length_) + " bytes)");
    table_at_ = trailer_at;
  }
  return {};
}

Status SnapshotPieces::load_segment() {
  if (version_ == 2) {
    const size_t at = size_t{index_} * kSnapshotBlock;
    std::string_view block =
        data_.substr(kSnapshotHeader + at, std::min<uint64_t>(kSnapshotBlock, length_ - at));
    if (common::crc32c(block) != get_u32(data_.data() + table_at_ + 4 * size_t{index_}))
      return snapshot_corrupt(kSnapshotHeader + at, "block checksum mismatch");
    segment_ = block;
  } else if (version_ == kSnapshotVersionZstd) {
    if (table_at_ - off_ < 4) return snapshot_corrupt(off_, "frame header runs past the frames");
    const uint32_t len = get_u32(data_.data() + off_);
    if (len > table_at_ - off_ - 4)
      return snapshot_corrupt(off_,
                              "frame of " + std::to_string(len) + " bytes runs past the frames");
    std::string_view frame = data_.substr(off_ + 4, len);
    if (common::crc32c(frame) != get_u32(data_.data() + table_at_ + 4 * size_t{index_}))
      return snapshot_corrupt(off_, "frame checksum mismatch");
    unsigned long long raw = ZSTD_getFrameContentSize(frame.data(), frame.size());
    if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN || raw > kSnapshotBlock ||
        raw > length_ - delivered_)
      return snapshot_corrupt(off_, "frame does not say a size that fits the body");
    // Into scratch memory that stays in cache, and copied from there by a
    // caller that wants the whole body: inflating straight onto the end of
    // that body (fresh memory, zeroed first) measured 5-15 % slower
    // (corral-micro's WalSnapshotReadZstd).
    inflated_.resize(static_cast<size_t>(raw));
    size_t n = ZSTD_decompress(inflated_.data(), inflated_.size(), frame.data(), frame.size());
    if (ZSTD_isError(n) || n != raw)
      return snapshot_corrupt(off_, std::string("frame does not decompress: ") +
                                        (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
    segment_ = inflated_;
    off_ += 4 + len;
  } else {
    if (table_at_ - off_ < 8) return snapshot_corrupt(off_, "block header runs past the end");
    const uint32_t len = get_u32(data_.data() + off_);
    if (len == 0 || len > table_at_ - off_ - 8 || len > length_ - delivered_)
      return snapshot_corrupt(off_, "block of " + std::to_string(len) + " bytes runs past the end");
    std::string_view block = data_.substr(off_ + 8, len);
    if (common::crc32c(block) != get_u32(data_.data() + off_ + 4))
      return snapshot_corrupt(off_, "block checksum mismatch");
    segment_ = block;
    off_ += 8 + len;
  }
  ++index_;
  return {};
}

sdk::Result<std::string_view> SnapshotPieces::next(size_t max) {
  // (A frame may inflate to nothing: another is read then, at most one per
  // frame the trailer counts.)
  while (segment_.empty()) {
    if (delivered_ == length_ && (version_ != kSnapshotVersionZstd || index_ >= count_)) {
      // Everything the trailer promised was read: what is left of the file
      // must be what ends it.
      if (index_ != count_)
        return snapshot_corrupt(off_, "the trailer counts " + std::to_string(count_) +
                                          " blocks, the body fills " + std::to_string(index_));
      if (version_ == kSnapshotVersionZstd && off_ != table_at_)
        return snapshot_corrupt(off_, "unexpected bytes after the last frame");
      if (version_ == 1 && off_ != table_at_)
        return snapshot_corrupt(off_, "unexpected bytes after the last block");
      return std::string_view{};
    }
    if (index_ >= count_)
      return snapshot_corrupt(
          off_, "the body ends before the " + std::to_string(length_) + " bytes the trailer says");
    if (Status st = load_segment(); !st) return st;
  }
  std::string_view piece = segment_.substr(0, std::max<size_t>(max, 1));
  segment_.remove_prefix(piece.size());
  delivered_ += piece.size();
  return piece;
}

std::string encode_epochs(uint32_t accepted, uint32_t current) {
  std::string out;
  put_u32(out, accepted);
  put_u32(out, current);
  put_u32(out, common::crc32c(out));
  return out;
}

bool decode_epochs(std::string_view data, uint32_t& accepted, uint32_t& current) {
  if (data.size() != 12 || common::crc32c(data.substr(0, 8)) != get_u32(data.data() + 8))
    return false;
  accepted = get_u32(data.data());
  current = get_u32(data.data() + 4);
  return true;
}

namespace {

// Files mapped by this process, by device and inode, and those being
// emptied by remove_gradually(), which none may map meanwhile.
struct MappedFiles {
  std::mutex mu;
  std::map<std::pair<uint64_t, uint64_t>, int> mapped;
  std::set<std::pair<uint64_t, uint64_t>> emptying;
};

MappedFiles& mapped_files() {
  static MappedFiles m;
  return m;
}

}  // namespace

MappedFile::MappedFile(const std::string& path, bool populate) {
  // Opened, checked and counted under the lock, so that remove_gradually()
  // sees every mapping begun before it looks, and none begins after; the
  // mapping itself (a whole snapshot read in, with `populate`) is made
  // after the lock, counted already.
  MappedFiles& files = mapped_files();
  int fd = -1;
  struct stat st {};
  {
    std::lock_guard<std::mutex> lock(files.mu);
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      error_ = path + ": " + std::strerror(errno);
      return;
    }
    if (fstat(fd, &st) != 0) {
      error_ = path + ": " + std::strerror(errno);
    } else if (files.emptying.count({st.st_dev, st.st_ino}) != 0) {
      error_ = path + ": " + std::strerror(ENOENT) + " (being removed)";
    } else if (st.st_size > 0) {
      dev_ = st.st_dev;
      ino_ = st.st_ino;
      counted_ = true;
      ++files.mapped[{dev_, ino_}];
    }
  }
  if (counted_) {
    size_ = static_cast<size_t>(st.st_size);
    addr_ = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, 0);
    if (addr_ == MAP_FAILED) {
      addr_ = nullptr;
      size_ = 0;
      error_ = path + ": mmap: " + std::strerror(errno);
    }
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (addr_) munmap(addr_, size_);
  if (counted_) {
    MappedFiles& files = mapped_files();
    std::lock_guard<std::mutex> lock(files.mu);
    auto it = files.mapped.find({dev_, ino_});
    if (it != files.mapped.end() && --it->second == 0) files.mapped.erase(it);
  }
}

sdk::Status remove_gradually(const std::string& path) {
  constexpr off_t kPiece = off_t{8} << 20;
  MappedFiles& files = mapped_files();
  std::pair<uint64_t, uint64_t> key{0, 0};
  bool emptying = false;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  struct stat st {};
  // Only a file of one name (not hard-linked into a copy) that no mapping
  // of this process reads.
  if (fd >= 0 && ::fstat(fd, &st) == 0 && st.st_size > kPiece && st.st_nlink == 1) {
    key = {st.st_dev, st.st_ino};
    std::lock_guard<std::mutex> lock(files.mu);
    if (files.mapped.count(key) == 0) emptying = files.emptying.insert(key).second;
  }
  std::string name = path;
  if (emptying) {
    // Out of the way first, under a name that the next start removes as a
    // leftover: a crash while it is emptied must not leave a log segment
    // with holes where its first records were.
    const std::string tmp = path + ".tmp";
    if (::rename(path.c_str(), tmp.c_str()) == 0) {
      name = tmp;
      const std::string dir = std::filesystem::path(path).parent_path().string();
      if (int d = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
          d >= 0) {
        (void)::fsync(d);
        ::close(d);
      }
      for (off_t at = 0; at < st.st_size; at += kPiece)
        if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at,
                        std::min(kPiece, st.st_size - at)) != 0)
          break;  // (not supported here: the unlink frees it all)
    }
  }
  if (fd >= 0) ::close(fd);
  int err = ::unlink(name.c_str()) == 0 ? 0 : errno;
  if (emptying) {
    std::lock_guard<std::mutex> lock(files.mu);
    files.emptying.erase(key);
  }
  if (err != 0 && err != ENOENT)
    return {sdk::Errc::io_error, "remove " + name + ": " + std::strerror(err)};
  return {};
}

}  // namespace corral::wal
