#include "corral_data.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "tree/state_machine.hpp"
#include "wal_format.hpp"

namespace corral::offline {

namespace fs = std::filesystem;
using sdk::Errc;
using sdk::Status;

std::string zxid_hex(int64_t z) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%" PRIx64, static_cast<uint64_t>(z));
  return b;
}

Status write_file(const std::string& path, std::initializer_list<std::string_view> pieces) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return {Errc::io_error, tmp + ": " + std::strerror(errno)};
  for (std::string_view bytes : pieces) {
    while (!bytes.empty()) {
      ssize_t n = ::write(fd, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return {e == ENOSPC ? Errc::no_space : Errc::io_error, tmp + ": " + std::strerror(e)};
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return {Errc::io_error, tmp + ": fsync: " + std::strerror(e)};
  }
  ::close(fd);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return {Errc::io_error, path + ": " + ec.message()};
  int dfd = ::open(fs::path(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

std::string first_data_file(const std::string& dir,
                            std::initializer_list<std::string_view> prefixes) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    for (std::string_view p : prefixes)
      if (name.rfind(p, 0) == 0) return name;
  }
  return {};
}

namespace {

struct WalFiles {
  fs::path dir;
  std::vector<std::pair<sdk::Zxid, fs::path>> snapshots, segments;
  fs::path epochs;
};

Status find_wal(const std::string& dir, WalFiles& f) {
  std::error_code ec;
  f.dir = fs::is_directory(fs::path(dir) / "wal", ec) ? fs::path(dir) / "wal" : fs::path(dir);
  for (const auto& e : fs::directory_iterator(f.dir, ec)) {
    std::string name = e.path().filename().string();
    sdk::Zxid z;
    if (wal::parse_name(name, "snapshot.", z))
      f.snapshots.emplace_back(z, e.path());
    else if (wal::parse_name(name, "log.", z))
      f.segments.emplace_back(z, e.path());
    else if (name == "epochs")
      f.epochs = e.path();
  }
  if (ec) return {Errc::not_found, f.dir.string() + ": " + ec.message()};
  if (f.snapshots.empty() && f.segments.empty())
    return {Errc::not_found,
            f.dir.string() + " holds no Corral snapshot or log (the wal storage's files)"};
  std::sort(f.snapshots.begin(), f.snapshots.end());
  std::sort(f.segments.begin(), f.segments.end());
  return {};
}

Status load_snapshot(const fs::path& path, Recovered& out) {
  wal::MappedFile m(path.string(), true);
  if (!m.ok()) return {Errc::io_error, path.string() + ": " + m.error()};
  std::string_view body;
  std::string copy;
  sdk::Zxid zxid = 0;
  if (Status st = wal::check_snapshot(m.data(), zxid, &body, &copy); !st)
    return {st.code(), path.string() + ": " + st.message()};
  auto loaded = kernel::DataTree::deserialize(body);
  if (!loaded) return {loaded.status().code(), path.string() + ": " + loaded.status().message()};
  out.tree = std::move(loaded.value());
  out.zxid = zxid;
  return {};
}

// Whether `b` can follow `a` in a log: the next counter, or the first
// entry of a later epoch.
bool follows(sdk::Zxid a, sdk::Zxid b) {
  return b == a + 1 || (sdk::zxid_epoch(b) > sdk::zxid_epoch(a) && sdk::zxid_counter(b) == 1);
}

// Applies the log of `f` after out.zxid and up to `up_to`. Every entry
// applied must follow on from the one before (from out.zxid for the first,
// or an entry at out.zxid itself in the log): a log with a hole — segments
// missing, or a history abandoned before a sync — is refused rather than
// applied across it. So is stopping short of `up_to` at a hole.
Status roll_forward(const WalFiles& f, sdk::Zxid up_to, const Say& say, Recovered& out) {
  kernel::StateMachine sm(out.tree);
  sm.set_extended_types(true);  // what was logged was accepted
  uint64_t replayed = 0;
  const sdk::Zxid base = out.zxid;
  sdk::Zxid below = -1;  // the last entry at or before the base
  bool done = false;
  Status gap;
  auto hole = [&](sdk::Zxid from, sdk::Zxid to) {
    return Status{Errc::not_found, "the log in " + f.dir.string() + " goes from zxid " +
                                       zxid_hex(from) + " to " + zxid_hex(to) +
                                       ": the entries between are gone"};
  };
  for (size_t i = 0; i < f.segments.size() && !done && gap; ++i) {
    const fs::path& path = f.segments[i].second;
    wal::MappedFile m(path.string(), true);
    if (!m.ok()) return {Errc::io_error, path.string() + ": " + m.error()};
    wal::SegmentScan s = wal::scan_segment(
        m.data(), i + 1 == f.segments.size(), [&](const sdk::LogEntry& e, size_t) {
          if (e.zxid <= base) {
            below = e.zxid;
            return true;
          }
          // The entry after the last one applied (or after the base).
          const bool first = out.zxid == base;
          if (!(first && below == base) && !follows(out.zxid, e.zxid)) {
            gap = hole(first && below > 0 && below != base ? below : out.zxid, e.zxid);
            return false;
          }
          if (e.zxid > up_to) {
            done = true;
            return false;
          }
          sm.apply(e);
          out.zxid = e.zxid;
          ++replayed;
          return true;
        });
    if (!gap) return gap;
    if (s.end == wal::SegmentScan::corrupt)
      return {Errc::corrupt,
              path.string() + " at byte " + std::to_string(s.bad_offset) + ": " + s.why};
  }
  if (!f.segments.empty())
    say("log: " + std::to_string(replayed) + " entries applied, last zxid " + zxid_hex(out.zxid));
  return {};
}

void read_epochs(const WalFiles& f, Recovered& out) {
  out.accepted_epoch = out.current_epoch = sdk::zxid_epoch(out.zxid);
  if (f.epochs.empty()) return;
  wal::MappedFile m(f.epochs.string());
  uint32_t a = 0, c = 0;
  if (m.ok() && wal::decode_epochs(m.data(), a, c)) {
    out.accepted_epoch = std::max(out.accepted_epoch, a);
    out.current_epoch = std::max(out.current_epoch, c);
  }
}

}  // namespace

Status recover(const std::string& dir, sdk::Zxid up_to, const Say& say, Recovered& out) {
  WalFiles f;
  if (Status st = find_wal(dir, f); !st) return st;
  out = Recovered();
  auto newest = std::find_if(f.snapshots.rbegin(), f.snapshots.rend(),
                             [&](const auto& s) { return s.first <= up_to; });
  if (newest != f.snapshots.rend()) {
    if (Status st = load_snapshot(newest->second, out); !st) return st;
    say("snapshot " + newest->second.string() + ": " + std::to_string(out.tree.node_count()) +
        " znodes, zxid " + zxid_hex(out.zxid));
  } else if (!f.snapshots.empty()) {
    return {Errc::not_found, "every snapshot in " + f.dir.string() + " is after zxid " +
                                 zxid_hex(up_to) + " (the oldest is at " +
                                 zxid_hex(f.snapshots.front().first) + ")"};
  }
  if (Status st = roll_forward(f, up_to, say, out); !st) return st;
  read_epochs(f, out);
  return {};
}

Status read_backup(const std::string& file, Recovered& out) {
  out = Recovered();
  if (Status st = load_snapshot(file, out); !st) return st;
  out.accepted_epoch = out.current_epoch = sdk::zxid_epoch(out.zxid);
  return {};
}

sdk::Result<std::string> new_wal_dir(const std::string& dir) {
  const fs::path wal = fs::path(dir) / "wal";
  std::error_code ec;
  fs::create_directories(wal, ec);
  if (ec) return Status{Errc::io_error, wal.string() + ": " + ec.message()};
  if (std::string f = first_data_file(wal.string(), {"log.", "snapshot.", "epochs"}); !f.empty())
    return Status{Errc::already_exists, wal.string() + " already holds Corral data (" + f +
                                            "); write into a new, empty data directory"};
  return wal.string();
}

Status write_wal_files(const std::string& wal, sdk::Zxid zxid,
                       std::initializer_list<std::string_view> snapshot, uint32_t accepted_epoch,
                       uint32_t current_epoch) {
  if (Status st = write_file(wal + "/" + wal::snapshot_name(zxid), snapshot); !st) return st;
  return write_file(wal + "/epochs", {wal::encode_epochs(accepted_epoch, current_epoch)});
}

Status write_data_dir(const std::string& dir, const kernel::DataTree& tree, sdk::Zxid zxid,
                      uint32_t accepted_epoch, uint32_t current_epoch, const Say& say) {
  auto wal = new_wal_dir(dir);
  if (!wal) return wal.status();
  std::string body;
  tree.serialize([&](std::string_view chunk) { body.append(chunk); });
  wal::SnapshotChecksums sums;
  sums.add(body);
  if (Status st =
          write_wal_files(wal.value(), zxid, {wal::snapshot_header(zxid), body, sums.tail()},
                          accepted_epoch, current_epoch);
      !st)
    return st;
  say("wrote " + std::to_string(tree.node_count()) + " znodes and " +
      std::to_string(tree.sessions().size()) + " sessions at zxid " + zxid_hex(zxid) + " to " +
      wal.value() + "/" + wal::snapshot_name(zxid));
  return {};
}

Status restore(const RestoreOptions& o, const Say& say) {
  const auto t0 = std::chrono::steady_clock::now();
  Recovered r;
  const bool to_zxid = o.to_zxid != std::numeric_limits<sdk::Zxid>::max();
  if (!o.file.empty()) {
    if (Status st = read_backup(o.file, r); !st) return st;
    say("backup " + o.file + ": " + std::to_string(r.tree.node_count()) + " znodes at zxid " +
        zxid_hex(r.zxid));
    if (to_zxid && o.to_zxid < r.zxid)
      return {Errc::invalid_argument, "the backup is at zxid " + zxid_hex(r.zxid) + ", after " +
                                          zxid_hex(o.to_zxid) + ": restore an older backup"};
    if (!o.log_from.empty()) {
      WalFiles f;
      if (Status st = find_wal(o.log_from, f); !st) return st;
      if (Status st = roll_forward(f, o.to_zxid, say, r); !st) return st;
    }
  } else if (!o.log_from.empty()) {
    if (Status st = recover(o.log_from, o.to_zxid, say, r); !st) return st;
  } else {
    return {Errc::invalid_argument,
            "restore needs a backup file, a data directory (--log-from), or both"};
  }
  if (to_zxid && r.zxid != o.to_zxid)
    say("no entry has zxid " + zxid_hex(o.to_zxid) + "; restored to " + zxid_hex(r.zxid) +
        ", the last one before it");
  if (!o.file.empty() && o.log_from.empty()) {
    // A backup as it is: checked above, its bytes become the snapshot.
    auto wal = new_wal_dir(o.to);
    if (!wal) return wal.status();
    wal::MappedFile m(o.file, true);
    if (!m.ok()) return {Errc::io_error, o.file + ": " + m.error()};
    const uint32_t epoch = sdk::zxid_epoch(r.zxid);
    if (Status st = write_wal_files(wal.value(), r.zxid, {m.data()}, epoch, epoch); !st) return st;
    say("wrote " + std::to_string(r.tree.node_count()) + " znodes and " +
        std::to_string(r.tree.sessions().size()) + " sessions at zxid " + zxid_hex(r.zxid) +
        " to " + wal.value() + "/" + wal::snapshot_name(r.zxid));
  } else if (Status st = write_data_dir(o.to, r.tree, r.zxid,
                                        std::max(r.accepted_epoch, sdk::zxid_epoch(r.zxid)),
                                        std::max(r.current_epoch, sdk::zxid_epoch(r.zxid)), say);
             !st) {
    return st;
  }
  char took[32];
  std::snprintf(took, sizeof took, "%.2f",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  say(std::string("restored in ") + took + " s; start corrald with server.data_dir = \"" + o.to +
      "\" and the wal storage");
  return {};
}

}  // namespace corral::offline
