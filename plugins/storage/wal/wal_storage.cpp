// The `wal` storage: a durable log of preallocated segment files with group
// commit, checksummed snapshots, crash recovery and retention. See README.md.
//
// Longer than most files on purpose: the loop thread, the writer thread and
// the snapshot sink share one mutex-guarded state, and every access to it is
// kept in this one file so that the locking can be read and checked in one
// place. The on-disk format is apart, in wal_format.cpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "corral/common/lifeline.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/storage.hpp"
#include "wal_format.hpp"

namespace {

namespace fs = std::filesystem;
using namespace corral::sdk;
using namespace corral::wal;

std::string errno_text(int e) { return std::strerror(e); }

Status sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return {Errc::io_error, "open " + dir + ": " + errno_text(errno)};
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return {Errc::io_error, "fsync " + dir + ": " + errno_text(e)};
  return {};
}

// Writes all of `data` at `offset`; on failure returns errno (0 on success)
// and how much was written.
int pwrite_all(int fd, const char* data, size_t n, off_t offset, size_t& written) {
  written = 0;
  while (written < n) {
    ssize_t w = ::pwrite(fd, data + written, n - written, offset + static_cast<off_t>(written));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    written += static_cast<size_t>(w);
  }
  return 0;
}

Status write_file_durably(const std::string& dir, const std::string& name, std::string_view data,
                          bool sync) {
  std::string tmp = dir + "/" + name + ".tmp", path = dir + "/" + name;
  int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return {Errc::io_error, "create " + tmp + ": " + errno_text(errno)};
  size_t written;
  int e = pwrite_all(fd, data.data(), data.size(), 0, written);
  if (e == 0 && sync && ::fdatasync(fd) != 0) e = errno;
  ::close(fd);
  if (e != 0) {
    ::unlink(tmp.c_str());
    return {e == ENOSPC ? Errc::no_space : Errc::io_error, "write " + tmp + ": " + errno_text(e)};
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return {Errc::io_error, "rename " + tmp + ": " + errno_text(errno)};
  return sync ? sync_dir(dir) : Status();
}

class WalStorage final : public Storage {
 public:
  ~WalStorage() override { close(); }

  Status init(PluginHost& host) override {
    host_ = &host;
    const ConfigTable& cfg = host.config();
    static const char* kKeys[] = {"dir",
                                  "snapshot_dir",
                                  "segment_bytes",
                                  "snapshot_every_entries",
                                  "snapshot_every_bytes",
                                  "snapshot_log_ratio",
                                  "retain_snapshots",
                                  "fsync",
                                  "snapshot_compression",
                                  "snapshot_compression_level"};
    for (const std::string& key : cfg.keys())
      if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys))
        return cfg.invalid(key,
                           "one of dir, snapshot_dir, segment_bytes, snapshot_every_entries, "
                           "snapshot_every_bytes, "
                           "snapshot_log_ratio, retain_snapshots, fsync, snapshot_compression, "
                           "snapshot_compression_level (unknown key)");
    auto dir = cfg.get_string("dir", "wal");
    if (!dir) return dir.status();
    fs::path p(dir.value());
    dir_ = (p.is_absolute() ? p : fs::path(host.server().data_dir) / p).lexically_normal().string();
    // Snapshots beside the log unless told (ZooKeeper's dataDir apart from
    // its dataLogDir): the log's fsyncs then do not queue behind a
    // snapshot's large writes on the same disk.
    auto sdir = cfg.get_string("snapshot_dir", "");
    if (!sdir) return sdir.status();
    fs::path sp(sdir.value());
    snap_dir_ = sdir.value().empty()
                    ? dir_
                    : (sp.is_absolute() ? sp : fs::path(host.server().data_dir) / sp)
                          .lexically_normal()
                          .string();
    while (snap_dir_.size() > 1 && snap_dir_.back() == '/') snap_dir_.pop_back();
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
    auto seg = cfg.get_int("segment_bytes", 64 << 20);
    if (!seg) return seg.status();
    if (seg.value() < (64 << 10) || seg.value() > (1LL << 32))
      return cfg.invalid("segment_bytes", "between 65536 and 4294967296");
    segment_bytes_ = static_cast<size_t>(seg.value());
    auto every = cfg.get_int("snapshot_every_entries", 100000);
    if (!every) return every.status();
    if (every.value() < 0) return cfg.invalid("snapshot_every_entries", "0 (never) or more");
    every_entries_ = every.value();
    auto every_bytes = cfg.get_int("snapshot_every_bytes", 256LL << 20);
    if (!every_bytes) return every_bytes.status();
    if (every_bytes.value() < 0) return cfg.invalid("snapshot_every_bytes", "0 (never) or more");
    every_bytes_ = every_bytes.value();
    auto ratio = cfg.get_double("snapshot_log_ratio", 0.5);
    if (!ratio) return ratio.status();
    if (!(ratio.value() >= 0 && ratio.value() <= 100))
      return cfg.invalid("snapshot_log_ratio", "between 0 and 100");
    log_ratio_ = ratio.value();
    auto retain = cfg.get_int("retain_snapshots", 3);
    if (!retain) return retain.status();
    if (retain.value() < 1) return cfg.invalid("retain_snapshots", "at least 1");
    retain_ = static_cast<int>(retain.value());
    auto sync = cfg.get_bool("fsync", true);
    if (!sync) return sync.status();
    fsync_ = sync.value();
    auto compression = cfg.get_string("snapshot_compression", "none");
    if (!compression) return compression.status();
    if (compression.value() != "none" && compression.value() != "zstd")
      return cfg.invalid("snapshot_compression", "\"none\" or \"zstd\"");
    auto level = cfg.get_int("snapshot_compression_level", 1);
    if (!level) return level.status();
    if (level.value() < 1 || level.value() > 19)
      return cfg.invalid("snapshot_compression_level", "between 1 and 19");
    zstd_level_ = compression.value() == "zstd" ? static_cast<int>(level.value()) : 0;
    m_fsync_ = host.metrics().histogram("corral_wal_fsync_seconds",
                                        "time of one log sync (one group commit)");
    m_batch_ =
        host.metrics().histogram("corral_wal_batch_entries", "entries written by one group commit");
    m_bytes_ = host.metrics().counter("corral_wal_bytes_written_total", "log bytes written");
    return {};
  }

  Result<RecoveredState> open() override {
    const auto started = std::chrono::steady_clock::now();
    std::error_code ec;
    RecoveredState r;
    std::vector<std::pair<Zxid, std::string>> snaps, segs;
    // One directory named two ways (a link) is one directory.
    if (snap_dir_ != dir_) {
      fs::create_directories(dir_, ec);
      fs::create_directories(snap_dir_, ec);
      if (fs::equivalent(dir_, snap_dir_, ec)) snap_dir_ = dir_;
      ec.clear();
    }
    // Snapshots are taken from both directories (a data directory written
    // with them beside the log, by corral restore or import, or before
    // snapshot_dir was set, starts as it is); new ones go to snapshot_dir.
    for (const std::string& d : dirs()) {
      fs::create_directories(d, ec);
      if (ec) return Status{Errc::io_error, "create " + d + ": " + ec.message()};
      for (const auto& ent : fs::directory_iterator(d, ec)) {
        std::string name = ent.path().filename().string();
        Zxid z;
        // In a snapshot directory of its own (which may be shared), only
        // this plugin's own leftovers.
        if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0 &&
            (d == dir_ || name.rfind("snapshot.", 0) == 0)) {
          host_->logger().warn("removing " + ent.path().string() +
                               ", left by an interrupted write or removal");
          fs::remove(ent.path(), ec);
        } else if (parse_name(name, "snapshot.", z)) {
          snaps.emplace_back(z, ent.path().string());
        } else if (parse_name(name, "log.", z)) {
          if (d != dir_)
            return Status{Errc::invalid_argument, "log segment " + ent.path().string() +
                                                      " is in snapshot_dir " + d +
                                                      ", not in the log's directory " + dir_ +
                                                      ": move the log.* files to " + dir_ +
                                                      " (storage.wal.dir) before starting"};
          segs.emplace_back(z, ent.path().string());
        }
      }
      if (ec) return Status{Errc::io_error, "list " + d + ": " + ec.message()};
    }
    std::sort(snaps.begin(), snaps.end());
    std::sort(segs.begin(), segs.end());

    // The log's segments are checked on a second thread while this one
    // reads the snapshot: both are checksummed end to end.
    const Zxid snap_named = snaps.empty() ? 0 : snaps.back().first;
    struct Scanned {
      std::string error;  // the file could not be mapped
      SegmentScan scan;
      size_t file_size = 0;
      int64_t since = 0;             // records after the snapshot
      size_t since_from = SIZE_MAX;  // the offset of the first of them
    };
    std::vector<Scanned> scanned(segs.size());
    std::thread scanner([&] {
      for (size_t i = 0; i < segs.size(); ++i) {
        MappedFile f(segs[i].second);
        if (!f.ok()) {
          scanned[i].error = f.error();
          return;
        }
        scanned[i].file_size = f.data().size();
        int64_t& since = scanned[i].since;
        size_t& since_from = scanned[i].since_from;
        scanned[i].scan =
            scan_segment(f.data(), i + 1 == segs.size(), [&](const LogEntry& e, size_t at) {
              if (e.zxid > snap_named) {
                if (since++ == 0) since_from = at;
              }
              return true;
            });
        if (scanned[i].scan.end == SegmentScan::corrupt) return;
      }
    });
    struct Joiner {
      std::thread& t;
      ~Joiner() {
        if (t.joinable()) t.join();
      }
    } joiner{scanner};

    if (!snaps.empty()) {
      const std::string& path = snaps.back().second;
      // Mapped, and loaded from where it lies: a large snapshot is not
      // copied into fresh memory first.
      auto f = std::make_shared<MappedFile>(path, /*populate=*/true);
      if (!f->ok()) return Status{Errc::io_error, f->error()};
      auto copy = std::make_shared<std::string>();  // an old-format body, de-framed
      Zxid z = 0;
      Status st = check_snapshot(f->data(), z, &r.snapshot, copy.get());
      if (!st)
        return Status{
            Errc::corrupt,
            "snapshot " + path + " is damaged " + st.message() +
                ". corrald will not start from a damaged snapshot: move the file out of " +
                fs::path(path).parent_path().string() +
                " to recover from the previous snapshot and the log, or restore "
                "this server's data directory from a replica or backup"};
      if (z != snaps.back().first)
        return Status{Errc::corrupt, "snapshot " + path + " holds zxid " + std::to_string(z) +
                                         ", not the one its name says"};
      r.snapshot_zxid = z;
      last_snapshot_bytes_ = static_cast<int64_t>(r.snapshot.size());
      r.snapshot_holder =
          copy->empty() ? std::shared_ptr<const void>(f) : std::shared_ptr<const void>(copy);
      snapshot_zxid_ = z;
    }
    r.last_zxid = r.snapshot_zxid;
    scanner.join();

    for (size_t i = 0; i < segs.size(); ++i) {
      const std::string& path = segs[i].second;
      if (!scanned[i].error.empty()) return Status{Errc::io_error, scanned[i].error};
      const SegmentScan& s = scanned[i].scan;
      int64_t since = scanned[i].since;
      size_t file_size = scanned[i].file_size;
      if (s.end == SegmentScan::corrupt)
        return Status{Errc::corrupt,
                      "log segment " + path + " is damaged at offset " +
                          std::to_string(s.bad_offset) + " (" + s.why +
                          "). "
                          "corrald will not start on a damaged log: restore this server's data "
                          "directory from a replica or backup (corral-wal verify " +
                          dir_ + " lists the damage)"};
      if (s.end == SegmentScan::torn) {
        host_->logger().warn("log segment " + path + ": truncating a torn record at offset " +
                             std::to_string(s.bad_offset) + " (" + s.why +
                             "), left by a crash during a write");
        Status st = zero_from(path, s.bad_offset, file_size);
        if (!st) return st;
      }
      if (s.records > 0 && segs[i].first > s.first)
        return Status{Errc::corrupt, "log segment " + path + " starts at zxid " +
                                         std::to_string(s.first) +
                                         ", before the zxid its name says"};
      entries_since_snapshot_ += since;
      if (since > 0)
        bytes_since_snapshot_ += static_cast<int64_t>(s.valid_end - scanned[i].since_from);
      Segment seg{segs[i].first, path, s.valid_end, s.records ? s.last : 0, file_size};
      if (s.records) r.last_zxid = std::max(r.last_zxid, s.last);
      segments_.push_back(seg);
      log_bytes_ += static_cast<int64_t>(s.valid_end);
    }

    if (fs::exists(dir_ + "/epochs")) {
      MappedFile f(dir_ + "/epochs");
      if (!f.ok()) return Status{Errc::io_error, f.error()};
      if (!decode_epochs(f.data(), r.accepted_epoch, r.current_epoch))
        return Status{Errc::corrupt,
                      dir_ + "/epochs at offset 0: checksum mismatch; restore it from a replica"};
    }
    last_zxid_ = r.last_zxid;
    // What earlier runs may have purged: only entries a retained snapshot
    // holds go, and none after the first segment's start. Without a
    // snapshot nothing was (zxids are not dense: a log that starts at a new
    // epoch's first zxid lacks nothing before it). So a read from further
    // back fails as it did before the restart rather than hand on the
    // entries left as if they followed.
    if (!snaps.empty())
      purged_last_ = segments_.empty() ? snaps.front().first
                                       : std::min(snaps.front().first,
                                                  std::max<Zxid>(0, segments_.front().first - 1));

    // Appends continue at the end of the last segment.
    if (!segments_.empty()) {
      Segment& tail = segments_.back();
      seg_fd_ = ::open(tail.path.c_str(), O_WRONLY | O_CLOEXEC);
      if (seg_fd_ < 0)
        return Status{Errc::io_error, "open " + tail.path + ": " + errno_text(errno)};
      seg_offset_ = tail.valid_end;
      seg_size_ = tail.file_size;
    }
    opened_ = true;
    writer_ = std::thread([this] { write_loop(); });
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    host_->logger().info("log in " + dir_ + ": " + std::to_string(segments_.size()) +
                         " segments, " + std::to_string(snaps.size()) + " snapshots" +
                         (snap_dir_ != dir_ ? " (new ones in " + snap_dir_ + ")" : "") +
                         ", last zxid " + std::to_string(r.last_zxid) + ", checked in " +
                         std::to_string(took.count()) + " ms");
    return r;
  }

  Status read_log(Zxid after, const std::function<bool(const LogEntry&)>& visit) override {
    // The segments to read are mapped while the list is locked: the snapshot
    // thread's purge may remove a file as soon as it is unlocked, and a
    // mapping keeps what it maps readable.
    std::vector<std::pair<std::string, std::unique_ptr<MappedFile>>> segs;
    {
      std::lock_guard<std::mutex> lock(segments_mu_);
      // Entries a purge removed cannot be read: say so rather than start at
      // the oldest one left (a reader would take a gap for the log).
      if (after < purged_last_)
        return {Errc::not_found, "the log no longer holds the entries after " +
                                     std::to_string(after) + ": those up to " +
                                     std::to_string(purged_last_) +
                                     " were removed with the snapshots that held them"};
      for (size_t i = 0; i < segments_.size(); ++i) {
        if (i + 1 < segments_.size() && segments_[i + 1].first <= after + 1)
          continue;  // wholly at or before `after`
        segs.emplace_back(segments_[i].path, std::make_unique<MappedFile>(segments_[i].path));
        if (!segs.back().second->ok()) return {Errc::io_error, segs.back().second->error()};
      }
    }
    // A read that goes on from where an earlier one ended (a leader sending
    // learners the log a batch at a time) starts at the record that one
    // ended on, not at the segment's start.
    ReadHint* from = nullptr;
    for (ReadHint& h : read_hints_)
      if (!h.path.empty() && h.zxid <= after && (!from || h.zxid > from->zxid)) from = &h;
    const std::string* last_path = nullptr;
    Zxid last_zxid = 0;
    size_t last_at = 0;
    auto remember = [&] {
      if (!last_path) return;
      ReadHint* slot = from;
      if (!slot)
        for (ReadHint& h : read_hints_)
          if (!slot || h.used < slot->used) slot = &h;
      *slot = {*last_path, last_zxid, last_at, ++hint_clock_};
    };
    for (const auto& seg : segs) {
      // (Named, not a structured binding: the scan's lambda captures it.)
      const std::string& path = seg.first;
      const MappedFile* f = seg.second.get();
      bool stop = false;
      size_t base = 0;
      if (from && from->path == path && from->offset < f->data().size()) base = from->offset;
      SegmentScan s = scan_segment(f->data().substr(base), /*last_segment=*/true,
                                   [&](const LogEntry& e, size_t at) {
                                     last_path = &path;
                                     last_zxid = e.zxid;
                                     last_at = base + at;
                                     if (e.zxid <= after) return true;
                                     if (!visit(e)) {
                                       stop = true;
                                       return false;
                                     }
                                     return true;
                                   });
      // An unfinished write at the very end is not an error for a reader.
      if (s.end == SegmentScan::corrupt)
        return {Errc::corrupt, "log segment " + path + " is damaged at offset " +
                                   std::to_string(base + s.bad_offset) + " (" + s.why + ")"};
      if (stop) {
        remember();
        return {};
      }
    }
    remember();
    return {};
  }

  void append(const LogEntry& entry, AppendDone done) override {
    size_t before;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!failed_.is_ok()) {
        Status why = failed_;
        host_->executor().post([done = std::move(done), why] { done(why); });
        return;
      }
      before = pending_.size();
      pending_index_.emplace_back(before, entry.zxid);
      encode_record(pending_, entry);
      ++pending_count_;
      bytes_since_snapshot_ += static_cast<int64_t>(pending_.size() - before);
    }
    ++entries_since_snapshot_;
    last_zxid_ = entry.zxid;
    callbacks_.push_back(std::move(done));
    cv_.notify_one();
  }

  Status truncate_after(Zxid zxid) override {
    read_hints_ = {};  // the records they name may go
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [&] { return !busy_ && pending_count_ == 0; });
    std::lock_guard<std::mutex> seg_lock(segments_mu_);
    while (!segments_.empty()) {
      Segment& s = segments_.back();
      if (s.first > zxid) {
        if (seg_fd_ >= 0) {
          ::close(seg_fd_);
          seg_fd_ = -1;
        }
        if (::unlink(s.path.c_str()) != 0)
          return {Errc::io_error, "remove " + s.path + ": " + errno_text(errno)};
        log_bytes_ -= static_cast<int64_t>(s.valid_end);
        segments_.pop_back();
        continue;
      }
      MappedFile f(s.path);
      if (!f.ok()) return {Errc::io_error, f.error()};
      size_t cut = s.valid_end;
      Zxid last = 0;
      scan_segment(f.data(), true, [&](const LogEntry& e, size_t offset) {
        if (e.zxid > zxid) {
          cut = offset;
          return false;
        }
        last = e.zxid;
        return true;
      });
      if (cut < s.valid_end) {
        Status st = zero_from(s.path, cut, s.valid_end);
        if (!st) return st;
        log_bytes_ -= static_cast<int64_t>(s.valid_end - cut);
        s.valid_end = cut;
        s.last = last;
      }
      if (seg_fd_ < 0) {
        seg_fd_ = ::open(s.path.c_str(), O_WRONLY | O_CLOEXEC);
        if (seg_fd_ < 0) return {Errc::io_error, "open " + s.path + ": " + errno_text(errno)};
        seg_size_ = s.file_size;
      }
      seg_offset_ = s.valid_end;
      break;
    }
    last_zxid_ = std::min(last_zxid_, zxid);
    return fsync_ ? sync_dir(dir_) : Status();
  }

  // Due after snapshot_every_entries entries, once the log since the last
  // snapshot also holds snapshot_log_ratio times that snapshot's size: a
  // large tree is not written out whole for every 100,000 small writes, and
  // replaying what a restart must replay stays within a small multiple of
  // loading the snapshot. Or after snapshot_every_bytes, whatever the tree.
  bool snapshot_due() const override {
    const int64_t bytes = bytes_since_snapshot_;
    if (every_bytes_ > 0 && bytes >= every_bytes_) return true;
    return every_entries_ > 0 && entries_since_snapshot_ >= every_entries_ &&
           static_cast<double>(bytes) >= log_ratio_ * static_cast<double>(last_snapshot_bytes_);
  }

  Result<std::unique_ptr<SnapshotSink>> begin_snapshot(Zxid zxid) override {
    std::string tmp = snap_dir_ + "/" + snapshot_name(zxid) + ".tmp";
    int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0)
      return Status{errno == ENOSPC ? Errc::no_space : Errc::io_error,
                    "create " + tmp + ": " + errno_text(errno)};
    entries_since_snapshot_ = 0;
    bytes_since_snapshot_ = 0;
    return std::unique_ptr<SnapshotSink>(std::make_unique<Sink>(*this, zxid, fd, tmp));
  }

  // The newest snapshot, mapped: the mapping keeps the file readable when a
  // purge removes it meanwhile, and each piece is checked as it is read.
  class Reader final : public SnapshotReader {
   public:
    Reader(std::string path, std::unique_ptr<MappedFile> file)
        : path_(std::move(path)), file_(std::move(file)) {}
    Status open() {
      Status st = pieces_.open(file_->data());
      return st ? st : damaged(st);
    }
    Zxid zxid() const override { return pieces_.zxid(); }
    uint64_t size() const override { return pieces_.size(); }
    Result<BytesView> next(size_t max) override {
      auto piece = pieces_.next(max);
      if (!piece) return damaged(piece.status());
      return piece.value();
    }

   private:
    Status damaged(const Status& st) const {
      return Status{Errc::corrupt, "snapshot " + path_ + " is damaged " + st.message()};
    }
    std::string path_;
    std::unique_ptr<MappedFile> file_;
    SnapshotPieces pieces_;
  };

  Result<std::unique_ptr<SnapshotReader>> read_snapshot() override {
    std::vector<std::pair<Zxid, std::string>> snaps = list("snapshot.");
    if (snaps.empty())
      return Status{Errc::not_found, "no snapshot in " + dir_ +
                                         (snap_dir_ != dir_ ? " or " + snap_dir_ : std::string())};
    auto f = std::make_unique<MappedFile>(snaps.back().second);
    if (!f->ok()) return Status{Errc::io_error, f->error()};
    auto r = std::make_unique<Reader>(snaps.back().second, std::move(f));
    if (Status st = r->open(); !st) return st;
    if (r->zxid() != snaps.back().first)
      return Status{Errc::corrupt, "snapshot " + snaps.back().second + " holds zxid " +
                                       std::to_string(r->zxid()) + ", not the one its name says"};
    return std::unique_ptr<SnapshotReader>(std::move(r));
  }

  Zxid latest_snapshot_zxid() const override { return snapshot_zxid_; }

  Status save_epochs(uint32_t accepted, uint32_t current) override {
    return write_file_durably(dir_, "epochs", encode_epochs(accepted, current), fsync_);
  }

  Status purge(int keep) override {
    keep = std::max(keep, 1);
    std::vector<std::pair<Zxid, std::string>> snaps = list("snapshot.");
    Status failed;
    while (snaps.size() > static_cast<size_t>(keep)) {
      if (Status st = remove_gradually(snaps.front().second); !st && failed) failed = st;
      snaps.erase(snaps.begin());
    }
    if (snaps.empty()) return failed;
    Zxid oldest = snaps.front().first;
    // A segment may go when the next one starts at or before the oldest
    // retained snapshot: every entry in it is then in that snapshot. They
    // leave the list under the lock and their files go after it: removing a
    // segment takes 20-30 ms here, and the log's writer takes the lock after
    // every sync (acknowledgements would wait for the removals). A reader
    // that mapped one before keeps what it mapped.
    std::vector<std::string> gone;
    {
      std::lock_guard<std::mutex> lock(segments_mu_);
      while (segments_.size() >= 2 && segments_[1].first <= oldest + 1) {
        gone.push_back(segments_.front().path);
        purged_last_ = std::max(purged_last_, segments_.front().last);
        log_bytes_ -= static_cast<int64_t>(segments_.front().valid_end);
        segments_.erase(segments_.begin());
      }
    }
    // One left behind is listed again at the next start and goes then (or,
    // renamed for removal, is removed as a leftover).
    for (const std::string& path : gone)
      if (Status st = remove_gradually(path); !st && failed) failed = st;
    return failed;
  }

  int64_t log_bytes() const override { return log_bytes_; }
  int64_t snapshot_bytes() const override {
    int64_t n = 0;
    std::error_code ec;
    for (const auto& [z, path] : list("snapshot."))
      n += static_cast<int64_t>(fs::file_size(path, ec));
    return n;
  }

  void close() override {
    if (!opened_) return;
    opened_ = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (writer_.joinable()) writer_.join();
    alive_.end();
    auto left = std::move(callbacks_);
    callbacks_.clear();
    for (auto& cb : left) cb(Status(Errc::unavailable, "storage closed"));
    if (seg_fd_ >= 0) ::close(seg_fd_);
    seg_fd_ = -1;
  }

 private:
  struct Segment {
    Zxid first;
    std::string path;
    size_t valid_end;
    Zxid last;
    size_t file_size;
  };

  // Writes a snapshot on a thread of its own, so that neither the loop nor
  // the log's writer waits for it: write() queues, the thread writes the
  // bytes and checksums them block by block, commit() has it write the
  // checksums, header and trailer, sync and rename the file, and report back
  // on the loop.
  //
  // Or the kernel's snapshot process fills the file itself, through
  // child_writer(): the same writing, done in the child on its copy of this
  // object, and commit() then only syncs and renames.
  class Sink final : public SnapshotSink {
   public:
    Sink(WalStorage& s, Zxid zxid, int fd, std::string tmp)
        : s_(s), zxid_(zxid), fd_(fd), tmp_(std::move(tmp)), alive_(s.alive_.ref()) {
      if (s.zstd_level_ > 0) zstd_ = std::make_unique<SnapshotCompressor>(s.zstd_level_);
      thread_ = std::thread([this] { run(); });
    }
    ~Sink() override { abort(); }

    Status write(BytesView chunk) override {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_.is_ok()) return error_;
      if (committing_ || aborting_) return {Errc::internal, "snapshot already finished"};
      queue_.append(chunk);
      cv_.notify_one();
      return {};
    }

    void commit(std::function<void(const Status&)> done) override {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = std::move(done);
      committing_ = true;
      cv_.notify_one();
    }

    size_t queued_bytes() const override {
      std::lock_guard<std::mutex> lock(mu_);
      return queue_.size();
    }

    SnapshotChildWriter* child_writer() override {
      std::lock_guard<std::mutex> lock(mu_);
      if (!queue_.empty() || committing_ || aborting_) return nullptr;
      filled_by_child_ = true;
      return &child_writer_;
    }

    void abort() override {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!committing_) aborting_ = true;
        cv_.notify_one();
      }
      if (thread_.joinable()) thread_.join();
      if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
        ::unlink(tmp_.c_str());
      }
    }

   private:
    void run() {
      Status st;
      // Two buffers change places: the one written last goes back to the
      // queue emptied but with its room, so that write() on the loop never
      // waits for fresh memory to be zeroed after the first few pieces.
      std::string chunk;
      while (true) {
        bool commit;
        chunk.clear();
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return !queue_.empty() || committing_ || aborting_; });
          if (aborting_) return;
          chunk.swap(queue_);
          commit = committing_;
        }
        if (st) st = add(chunk);
        if (!st) {
          std::lock_guard<std::mutex> lock(mu_);
          error_ = st;
        }
        if (commit) break;
      }
      if (st) st = seal();
      if (!st && fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
        ::unlink(tmp_.c_str());
      }
      // Old snapshots and segments go here too, not on the loop: removing
      // files of hundreds of megabytes can take tens of milliseconds.
      Status purged = st ? s_.purge(s_.retain_) : Status();
      std::function<void(const Status&)> done;
      {
        std::lock_guard<std::mutex> lock(mu_);
        done = std::move(done_);
      }
      WalStorage& storage = s_;
      s_.host_->executor().post([&storage, zxid = zxid_, size = size_, alive = alive_, st, purged,
                                 done = std::move(done)] {
        if (!alive) return;
        if (st) {
          // A slow snapshot of an older state may finish after a newer one.
          if (zxid > storage.snapshot_zxid_) storage.last_snapshot_bytes_ = size;
          storage.snapshot_zxid_ = std::max(storage.snapshot_zxid_, zxid);
        }
        if (done) done(st ? purged : st);
      });
    }

    // The body goes to the file as it comes, after the header's place
    // (compressed, in whole frames, with snapshot_compression = "zstd").
    Status add(std::string_view chunk) {
      const uint64_t at = file_at_;
      if (zstd_) {
        frames_.clear();
        if (Status st = zstd_->add(chunk, frames_); !st) return st;
        chunk = frames_;
      }
      Status st = put(chunk, at);
      if (!st) return st;
      if (!zstd_) sums_.add(chunk);
      file_at_ += chunk.size();
      // Hand what is written to the disk as it goes, without waiting for it:
      // left to the final sync, a snapshot of hundreds of megabytes would
      // reach the disk in one burst, and the log's syncs, which acknowledge
      // writes, would queue behind it.
      const uint64_t end = at + chunk.size();
      if (s_.fsync_ && end - flushed_ >= kWritebackEvery) {
        ::sync_file_range(fd_, static_cast<off_t>(flushed_), static_cast<off_t>(end - flushed_),
                          SYNC_FILE_RANGE_WRITE);
        flushed_ = end;
      }
      return st;
    }

    // The checksums and trailer after the body, then the header.
    Status write_end() {
      if (zstd_) {
        frames_.clear();
        if (Status st = zstd_->finish(frames_); !st) return st;
        Status st = put(frames_, file_at_);
        return st ? put(snapshot_header(zxid_, kSnapshotVersionZstd), 0) : st;
      }
      Status st = put(sums_.tail(), file_at_);
      return st ? put(snapshot_header(zxid_), 0) : st;
    }

    // On the snapshot thread: completes the file unless the snapshot process
    // did, then makes it durable and visible.
    Status seal() {
      if (!filled_by_child_) {
        Status st = write_end();
        if (!st) return st;
      }
      if (s_.fsync_ && ::fdatasync(fd_) != 0)
        return {Errc::io_error, "fdatasync " + tmp_ + ": " + errno_text(errno)};
      // The body's length, from the trailer (the child may have written it):
      // what snapshot_log_ratio weighs the log against, compressed or not.
      struct stat st {};
      if (::fstat(fd_, &st) == 0) {
        size_ = static_cast<int64_t>(st.st_size);
        char trailer[kSnapshotTrailer];
        if (st.st_size >= static_cast<off_t>(kSnapshotTrailer) &&
            ::pread(fd_, trailer, sizeof trailer,
                    st.st_size - static_cast<off_t>(kSnapshotTrailer)) ==
                static_cast<ssize_t>(sizeof trailer)) {
          uint64_t body = 0;
          std::memcpy(&body, trailer + 8, 8);  // little-endian, as written
          size_ = static_cast<int64_t>(body);
        }
      }
      ::close(fd_);
      fd_ = -1;
      std::string final_path = s_.snap_dir_ + "/" + snapshot_name(zxid_);
      if (::rename(tmp_.c_str(), final_path.c_str()) != 0) {
        Status err(Errc::io_error, "rename " + tmp_ + ": " + errno_text(errno));
        ::unlink(tmp_.c_str());
        return err;
      }
      return s_.fsync_ ? sync_dir(s_.snap_dir_) : Status();
    }

    Status put(std::string_view bytes, uint64_t offset) {
      size_t written;
      int e = pwrite_all(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset), written);
      if (e != 0)
        return {e == ENOSPC ? Errc::no_space : Errc::io_error,
                "write " + tmp_ + ": " + errno_text(e)};
      return {};
    }

    WalStorage& s_;
    Zxid zxid_;
    int fd_;
    std::string tmp_;
    corral::common::Lifeline::Ref alive_;  // the storage's
    std::thread thread_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::string queue_;
    bool committing_ = false, aborting_ = false, filled_by_child_ = false;

    // In the kernel's snapshot process: the framing the thread would do,
    // done on the child's copy of this sink, whose thread-only state (the
    // checksums so far) is then the child's alone.
    class ChildWriter final : public SnapshotChildWriter {
     public:
      explicit ChildWriter(Sink& sink) : sink_(sink) {}
      Status write(BytesView chunk) override { return sink_.add(chunk); }
      Status finish() override { return sink_.write_end(); }

     private:
      Sink& sink_;
    };
    ChildWriter child_writer_{*this};
    Status error_;
    std::function<void(const Status&)> done_;
    // Snapshot thread only.
    SnapshotChecksums sums_;
    std::unique_ptr<SnapshotCompressor> zstd_;  // snapshot_compression = "zstd"
    std::string frames_;                        // what the compressor made of the last chunk
    uint64_t file_at_ = kSnapshotHeader;        // where the next bytes go
    static constexpr uint64_t kWritebackEvery = 8u << 20;
    uint64_t flushed_ = 0;  // bytes handed to the disk so far
    int64_t size_ = 0;      // of the finished file
  };

  // The log's directory, and the snapshots' when it is another.
  std::vector<std::string> dirs() const {
    if (snap_dir_ == dir_) return {dir_};
    return {dir_, snap_dir_};
  }

  // Files named <prefix><zxid> in either directory, oldest first.
  std::vector<std::pair<Zxid, std::string>> list(std::string_view prefix) const {
    std::vector<std::pair<Zxid, std::string>> out;
    for (const std::string& d : dirs()) {
      std::error_code ec;
      for (const auto& ent : fs::directory_iterator(d, ec)) {
        Zxid z;
        if (parse_name(ent.path().filename().string(), prefix, z))
          out.emplace_back(z, ent.path().string());
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  Status zero_from(const std::string& path, size_t from, size_t to) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return {Errc::io_error, "open " + path + ": " + errno_text(errno)};
    std::string zeros(std::min<size_t>(to - from, 1 << 20), '\0');
    int e = 0;
    for (size_t off = from; off < to && e == 0;) {
      size_t n = std::min(zeros.size(), to - off), written;
      e = pwrite_all(fd, zeros.data(), n, static_cast<off_t>(off), written);
      off += n;
    }
    if (e == 0 && ::fdatasync(fd) != 0) e = errno;
    ::close(fd);
    if (e != 0)
      return {Errc::io_error,
              "zero " + path + " from offset " + std::to_string(from) + ": " + errno_text(e)};
    return {};
  }

  // ---- writer thread ----

  void write_loop() {
    while (true) {
      std::string batch;
      std::vector<std::pair<size_t, Zxid>> index;
      bool failing;
      Status failing_why;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || pending_count_ > 0; });
        if (pending_count_ == 0) break;  // stopping, and nothing left to write
        batch.swap(pending_);
        index.swap(pending_index_);
        pending_count_ = 0;
        busy_ = true;
        failing = failing_;
        failing_why = failing_status_;
      }
      size_t written = 0;
      Status st = failing ? failing_why : write_batch(batch, index, written);
      size_t failed = index.size() - written;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!st && !failing) {
          // Every append made before the loop hears of this failure fails
          // too, so the log never has a hole.
          failing_ = true;
          failing_status_ = st;
        }
        busy_ = false;
      }
      idle_cv_.notify_all();
      host_->executor().post([this, alive = alive_.ref(), written, failed, st] {
        if (alive) complete(written, failed, st);
      });
    }
  }

  // Writes the batch, rolling to a new segment at record boundaries when the
  // current one is full, and syncs it. `written` counts the records that are
  // durable when it returns, failure or not.
  Status write_batch(const std::string& batch, const std::vector<std::pair<size_t, Zxid>>& index,
                     size_t& written) {
    const size_t n = index.size();
    auto end_of = [&](size_t i) { return i + 1 < n ? index[i + 1].first : batch.size(); };
    size_t i = 0;
    while (i < n) {
      if (seg_fd_ < 0 || seg_offset_ + (end_of(i) - index[i].first) > seg_size_) {
        Status st = roll(index[i].second, end_of(i) - index[i].first);
        if (!st) return st;
      }
      size_t j = i + 1;
      while (j < n && seg_offset_ + (end_of(j) - index[i].first) <= seg_size_) ++j;
      const size_t from = index[i].first, to = end_of(j - 1);
      size_t put;
      int e =
          pwrite_all(seg_fd_, batch.data() + from, to - from, static_cast<off_t>(seg_offset_), put);
      if (e != 0) {
        std::string path = tail_path();
        if (e == ENOSPC) {
          // Undo the part that made it, so the next write starts clean.
          std::string zeros(put, '\0');
          size_t ignored;
          pwrite_all(seg_fd_, zeros.data(), zeros.size(), static_cast<off_t>(seg_offset_), ignored);
          return {Errc::no_space,
                  "no space left on device writing " + path + "; writes fail until space is freed"};
        }
        return fail_permanently("write " + path + ": " + errno_text(e));
      }
      if (fsync_) {
        auto t0 = std::chrono::steady_clock::now();
        if (::fdatasync(seg_fd_) != 0) {
          int err = errno;
          return fail_permanently("fdatasync " + tail_path() + ": " + errno_text(err));
        }
        m_fsync_->observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      m_batch_->observe(static_cast<double>(j - i));
      m_bytes_->inc(to - from);
      seg_offset_ += to - from;
      log_bytes_ += static_cast<int64_t>(to - from);
      {
        std::lock_guard<std::mutex> lock(segments_mu_);
        segments_.back().valid_end = seg_offset_;
        segments_.back().last = index[j - 1].second;
      }
      written = i = j;
    }
    return {};
  }

  std::string tail_path() {
    std::lock_guard<std::mutex> lock(segments_mu_);
    return segments_.back().path;
  }

  // A failed sync leaves the page cache in an unknown state (the kernel may
  // have dropped the dirty pages): never retry, refuse every later write.
  Status fail_permanently(const std::string& what) {
    Status st(Errc::io_error,
              what +
                  "; the log can no longer be trusted to persist writes: restart corrald, "
                  "which recovers from what is on disk");
    std::lock_guard<std::mutex> lock(mu_);
    failed_ = st;
    return st;
  }

  Status roll(Zxid first, size_t need) {
    size_t size = std::max(segment_bytes_, need);
    std::string path = dir_ + "/" + segment_name(first);
    int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0)
      return {errno == ENOSPC ? Errc::no_space : Errc::io_error,
              "create " + path + ": " + errno_text(errno)};
    int e = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (e != 0) {
      ::close(fd);
      ::unlink(path.c_str());
      return {e == ENOSPC ? Errc::no_space : Errc::io_error,
              "cannot preallocate " + std::to_string(size) + " bytes for " + path + ": " +
                  errno_text(e) + (e == ENOSPC ? "; writes fail until space is freed" : "")};
    }
    if (fsync_) {
      Status st = sync_dir(dir_);
      if (!st) {
        ::close(fd);
        return st;
      }
    }
    if (seg_fd_ >= 0) ::close(seg_fd_);
    seg_fd_ = fd;
    seg_offset_ = 0;
    seg_size_ = size;
    std::lock_guard<std::mutex> lock(segments_mu_);
    segments_.push_back({first, path, 0, 0, size});
    return {};
  }

  // ---- loop thread ----

  void complete(size_t written, size_t failed, const Status& st) {
    if (failed > 0) {
      // The loop has heard of the failure: appends from now on are tried again.
      std::lock_guard<std::mutex> lock(mu_);
      failing_ = false;
    }
    for (size_t i = 0; i < written + failed && !callbacks_.empty(); ++i) {
      AppendDone cb = std::move(callbacks_.front());
      callbacks_.pop_front();
      cb(i < written ? Status() : st);
    }
  }

  PluginHost* host_ = nullptr;
  std::string dir_;  // the log (segments, epochs)
  // Where the last few reads of the log ended: the record of `zxid` lies at
  // `offset` in the segment at `path` (loop thread only). A few, so that
  // learners synced at once each go on from where their last batch ended.
  struct ReadHint {
    std::string path;
    Zxid zxid = 0;
    size_t offset = 0;
    uint64_t used = 0;
  };
  std::array<ReadHint, 4> read_hints_;
  uint64_t hint_clock_ = 0;
  std::string snap_dir_;  // where snapshots are written; dir_ unless snapshot_dir is set
  size_t segment_bytes_ = 64 << 20;
  int64_t every_entries_ = 100000, every_bytes_ = 256LL << 20;
  double log_ratio_ = 0.5;
  int64_t last_snapshot_bytes_ = 0;  // the newest snapshot's file size
  int retain_ = 3;
  int zstd_level_ = 0;  // 0: snapshots uncompressed
  bool fsync_ = true;
  bool opened_ = false;
  Histogram* m_fsync_ = nullptr;
  Histogram* m_batch_ = nullptr;
  Counter* m_bytes_ = nullptr;

  // Loop thread.
  std::deque<AppendDone> callbacks_;
  int64_t entries_since_snapshot_ = 0;
  Zxid last_zxid_ = 0;
  Zxid snapshot_zxid_ = 0;
  corral::common::Lifeline alive_;

  // Shared with the writer thread, under mu_.
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::string pending_;
  std::vector<std::pair<size_t, Zxid>> pending_index_;  // each record's offset and zxid
  size_t pending_count_ = 0;
  bool failing_ = false;  // a write failed and the loop has not heard yet
  Status failing_status_;
  std::atomic<int64_t> bytes_since_snapshot_{0};
  bool stopping_ = false, busy_ = false;
  Status failed_;

  // Writer thread (and the loop while the writer is idle, in truncate_after).
  int seg_fd_ = -1;
  size_t seg_offset_ = 0, seg_size_ = 0;
  std::mutex segments_mu_;
  // The last entry of the segments purge removed (guarded by segments_mu_):
  // a read after an earlier zxid would miss entries.
  Zxid purged_last_ = 0;
  std::vector<Segment> segments_;
  std::atomic<int64_t> log_bytes_{0};
  std::thread writer_;
};

}  // namespace

CORRAL_PLUGIN(storage, "wal", WalStorage,
              "durable log segments with group commit, snapshots and crash recovery")
