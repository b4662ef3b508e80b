// The wal storage plugin: its record and snapshot formats, and the module
// itself loaded through the plugin loader, on real files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>

#include "config/config.hpp"
#include "corral/common/crc32c.hpp"
#include "corral/sdk/storage.hpp"
#include "plugin/host_services.hpp"
#include "plugin/loader.hpp"
#include "server/snapshotter.hpp"
#include "tree/data_tree.hpp"
#include "wal_format.hpp"

using namespace corral;
using namespace corral::wal;
namespace fs = std::filesystem;

namespace {

sdk::LogEntry entry(sdk::Zxid z, size_t size = 20) {
  return {z, 1000 + z, std::string(size, static_cast<char>('a' + z % 26))};
}

std::string records(int n, size_t size = 20) {
  std::string out;
  for (int i = 1; i <= n; ++i) encode_record(out, entry(i, size));
  return out;
}

}  // namespace

TEST(WalFormat, RecordsRoundTrip) {
  std::string seg = records(3) + std::string(100, '\0');  // preallocated tail
  std::vector<sdk::LogEntry> got;
  SegmentScan s = scan_segment(seg, true, [&](const sdk::LogEntry& e, size_t) {
    got.push_back(e);
    return true;
  });
  EXPECT_EQ(s.end, SegmentScan::clean);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].zxid, 3);
  EXPECT_EQ(got[2].time_ms, 1003);
  EXPECT_EQ(got[2].body, entry(3).body);
  EXPECT_EQ(s.valid_end, records(3).size());
}

TEST(WalFormat, EveryTruncationOfTheLastRecordIsATornTail) {
  std::string two = records(2);
  std::string three = records(3);
  for (size_t cut = two.size() + 1; cut < three.size(); ++cut) {
    // What a crash leaves: part of the record, then preallocated zeros.
    std::string seg = three.substr(0, cut) + std::string(64, '\0');
    SegmentScan s = scan_segment(seg, true);
    ASSERT_EQ(s.end, SegmentScan::torn) << "cut at " << cut << ": " << s.why;
    EXPECT_EQ(s.valid_end, two.size());
    EXPECT_EQ(s.bad_offset, two.size());
    EXPECT_EQ(s.records, 2u);
    // The same damage in a segment that is not the last is corruption.
    EXPECT_EQ(scan_segment(seg, false).end, SegmentScan::corrupt) << cut;
  }
}

TEST(WalFormat, ABitFlipBeforeGoodRecordsIsCorruption) {
  std::string seg = records(5);
  size_t second = records(1).size();
  for (size_t at = second; at < records(2).size(); ++at) {
    std::string bad = seg;
    bad[at] ^= 0x10;
    SegmentScan s = scan_segment(bad, true);
    ASSERT_EQ(s.end, SegmentScan::corrupt) << "flip at " << at;
    EXPECT_EQ(s.bad_offset, second);
    EXPECT_EQ(s.records, 1u);
  }
}

TEST(WalFormat, DecidingATornTailIsLinearInTheTail) {
  std::string two = records(2);
  // A torn record followed by 4 MiB of noise (no preallocation): torn, and
  // hardly any of the noise is checksummed.
  std::string noise(4 << 20, '\0');
  uint64_t x = 88172645463325252ULL;
  for (char& c : noise) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  std::string seg = two + records(3).substr(two.size(), 10) + noise;
  SegmentScan s = scan_segment(seg, true);
  EXPECT_EQ(s.end, SegmentScan::torn) << s.why;
  EXPECT_LT(s.tail_checked, 1u << 20);
  // Crafted records nested in each other, each with a bad checksum: looking
  // through them all would checksum the tail thousands of times over; the
  // search stops at its budget and calls it damage, not a torn write.
  std::string inner;
  for (int depth = 0; depth < 5000; ++depth) {
    std::string payload = std::string("\x93\x00\x00\xc6", 4);
    uint32_t n = static_cast<uint32_t>(inner.size());
    for (int i = 3; i >= 0; --i) payload += static_cast<char>(n >> (8 * i));
    payload += inner;
    inner = std::string(reinterpret_cast<const char*>(&(n = static_cast<uint32_t>(payload.size()))),
                        4) +
            std::string(4, '\x5a') + payload;
  }
  SegmentScan nested = scan_segment(two + inner, true);
  EXPECT_EQ(nested.end, SegmentScan::corrupt);
  EXPECT_EQ(nested.bad_offset, two.size());
  EXPECT_NE(nested.why.find("too deeply"), std::string::npos) << nested.why;
  EXPECT_LE(nested.tail_checked, kTailCheckFactor * inner.size() + (1u << 20) + inner.size());
}

namespace {
std::string le32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string le64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
}  // namespace

// A snapshot file's body read as a leader sends it, in pieces of at most
// `max` bytes; the first error, if any.
sdk::Result<std::string> read_in_pieces(std::string_view file, size_t max) {
  SnapshotPieces pieces;
  if (sdk::Status st = pieces.open(file); !st) return st;
  std::string out;
  while (true) {
    auto piece = pieces.next(max);
    if (!piece) return piece.status();
    if (piece.value().empty()) break;
    EXPECT_LE(piece.value().size(), max);
    out += piece.value();
  }
  EXPECT_EQ(out.size(), pieces.size());
  return out;
}

// The same damage, found when the reading reaches it, at the same offset.
void expect_damage_in_pieces(std::string_view file, size_t offset) {
  SnapshotPieces pieces;
  sdk::Status st = pieces.open(file);
  size_t read = 0;
  while (st) {
    auto piece = pieces.next(300000);
    if (!piece) {
      st = piece.status();
      break;
    }
    if (piece.value().empty()) break;
    read += piece.value().size();
  }
  ASSERT_FALSE(st.is_ok()) << "read " << read << " bytes of a damaged snapshot";
  EXPECT_NE(st.message().find("at offset " + std::to_string(offset)), std::string::npos)
      << st.message();
}

// A large file goes a piece at a time, unless this process has it mapped:
// then it is only unlinked, and the mapping still reads every byte (a
// punched hole would read as zeros).
TEST(WalFormat, RemovingGraduallySparesWhatIsMapped) {
  const fs::path dir = fs::temp_directory_path() / ("corral-remove-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string body(20u << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 23);
  auto write = [&](const fs::path& p) {
    std::ofstream(p, std::ios::binary)
        .write(body.data(), static_cast<std::streamsize>(body.size()));
  };
  const fs::path mapped = dir / "mapped", alone = dir / "alone";
  write(mapped);
  write(alone);
  {
    MappedFile view(mapped.string());
    ASSERT_TRUE(view.ok()) << view.error();
    ASSERT_TRUE(remove_gradually(mapped.string()));
    EXPECT_FALSE(fs::exists(mapped));
    EXPECT_EQ(view.data(), body);
  }
  // Another name for it (a hard-linked copy): only this name goes.
  const fs::path linked = dir / "linked", copy = dir / "copy";
  write(linked);
  fs::create_hard_link(linked, copy);
  ASSERT_TRUE(remove_gradually(linked.string()));
  EXPECT_FALSE(fs::exists(linked));
  {
    MappedFile view(copy.string());
    EXPECT_EQ(view.data(), body);
  }
  // Neither: emptied (a descriptor still open on it sees its blocks freed),
  // then gone, with nothing left under the name it was emptied under; a
  // second removal is no error.
  const int fd = ::open(alone.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(remove_gradually(alone.string()));
  EXPECT_FALSE(fs::exists(alone));
  EXPECT_FALSE(fs::exists(dir / "alone.tmp"));
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  char c = 'x';
  ASSERT_EQ(::pread(fd, &c, 1, 5), 1);
  if (st.st_blocks < 1024) EXPECT_EQ(c, '\0');  // holes read as zeros
  EXPECT_LT(st.st_blocks, 1024) << "no hole punched (is the file system without support?)";
  ::close(fd);
  EXPECT_TRUE(remove_gradually(alone.string()));
  fs::remove_all(dir);
}

TEST(WalFormat, SnapshotChecksumsNameTheDamagedBlock) {
  std::string body;
  for (size_t i = 0; body.size() < 3 * kSnapshotBlock + 100; ++i) body += std::to_string(i) + ",";
  std::string file = snapshot_header(42);
  SnapshotChecksums sums;
  // The body arrives in pieces that do not line up with the blocks.
  for (size_t off = 0; off < body.size(); off += 77777) {
    std::string_view piece = std::string_view(body).substr(off, 77777);
    file += piece;
    sums.add(piece);
  }
  file += sums.tail();
  sdk::Zxid z = 0;
  std::string back;
  ASSERT_TRUE(read_snapshot(file, z, &back).is_ok());
  EXPECT_EQ(z, 42);
  EXPECT_EQ(back, body);
  // The body is used where it lies in the file.
  std::string_view view;
  std::string unused;
  ASSERT_TRUE(check_snapshot(file, z, &view, &unused).is_ok());
  EXPECT_EQ(view.data(), file.data() + kSnapshotHeader);
  EXPECT_EQ(view, body);

  std::string flipped = file;
  size_t third_block = kSnapshotHeader + 2 * kSnapshotBlock;
  flipped[third_block + 100] ^= 1;
  sdk::Status st = read_snapshot(flipped, z, nullptr);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("at offset " + std::to_string(third_block)), std::string::npos)
      << st.message();
  std::string bad_table = file;
  bad_table[kSnapshotHeader + body.size() + 4] ^= 1;  // the second block's checksum
  st = read_snapshot(bad_table, z, nullptr);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("at offset " + std::to_string(kSnapshotHeader + kSnapshotBlock)),
            std::string::npos)
      << st.message();

  for (size_t cut : {size_t{0}, size_t{10}, kSnapshotHeader + 5, file.size() / 2, file.size() - 1})
    EXPECT_FALSE(read_snapshot(std::string_view(file).substr(0, cut), z, nullptr).is_ok()) << cut;

  // In pieces, as a leader reads it for a learner: the same bytes, and
  // each damage found where the reading reaches it.
  for (size_t max : {size_t{1000}, size_t{300000}, kSnapshotBlock, size_t{5} << 20}) {
    auto back = read_in_pieces(file, max);
    ASSERT_TRUE(back) << back.status().to_string();
    EXPECT_EQ(back.value(), body) << max;
  }
  expect_damage_in_pieces(flipped, third_block);
  expect_damage_in_pieces(bad_table, kSnapshotHeader + kSnapshotBlock);
  for (size_t cut : {size_t{0}, size_t{10}, kSnapshotHeader + 5, file.size() / 2, file.size() - 1})
    EXPECT_FALSE(read_in_pieces(std::string_view(file).substr(0, cut), 300000)) << cut;
}

// Version 3: the body compressed in zstd frames of one block each.
TEST(WalFormat, CompressedSnapshotsRoundTripAndNameTheDamagedFrame) {
  std::string body;
  for (size_t i = 0; body.size() < 3 * kSnapshotBlock + 100; ++i) body += std::to_string(i) + ",";
  std::string frames;
  SnapshotCompressor zstd(1);
  for (size_t off = 0; off < body.size(); off += 77777)
    ASSERT_TRUE(zstd.add(std::string_view(body).substr(off, 77777), frames));
  ASSERT_TRUE(zstd.finish(frames));
  std::string file = snapshot_header(42, kSnapshotVersionZstd) + frames;
  EXPECT_LT(file.size(), body.size() / 2);
  sdk::Zxid z = 0;
  std::string back;
  ASSERT_TRUE(read_snapshot(file, z, &back).is_ok());
  EXPECT_EQ(z, 42);
  EXPECT_EQ(back, body);
  ASSERT_TRUE(check_snapshot(file, z, nullptr, nullptr).is_ok());

  // The second frame damaged: named by its offset.
  uint32_t first = 0;
  std::memcpy(&first, file.data() + kSnapshotHeader, 4);
  const size_t second = kSnapshotHeader + 4 + first;
  std::string flipped = file;
  flipped[second + 10] ^= 1;
  sdk::Status st = read_snapshot(flipped, z, nullptr);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("at offset " + std::to_string(second)), std::string::npos)
      << st.message();
  // A trailer that claims more than its frames could hold, refused before
  // anything is sized by it.
  std::string claims = file;
  claims[claims.size() - 16 + 7] = 0x40;  // body length's high byte
  EXPECT_FALSE(read_snapshot(claims, z, &back).is_ok());
  for (size_t cut : {size_t{10}, kSnapshotHeader + 5, file.size() / 2, file.size() - 1})
    EXPECT_FALSE(read_snapshot(std::string_view(file).substr(0, cut), z, nullptr).is_ok()) << cut;

  for (size_t max : {size_t{1000}, kSnapshotBlock, size_t{5} << 20}) {
    auto in_pieces = read_in_pieces(file, max);
    ASSERT_TRUE(in_pieces) << in_pieces.status().to_string();
    EXPECT_EQ(in_pieces.value(), body) << max;
  }
  expect_damage_in_pieces(flipped, second);
  EXPECT_FALSE(read_in_pieces(claims, 300000));
  for (size_t cut : {size_t{10}, kSnapshotHeader + 5, file.size() / 2, file.size() - 1})
    EXPECT_FALSE(read_in_pieces(std::string_view(file).substr(0, cut), 300000)) << cut;
}

// Snapshots written before the body was kept in one piece still load.
TEST(WalFormat, VersionOneSnapshotsStillLoad) {
  std::string body(2 * kSnapshotBlock + 10, 'v');
  std::string file = "CORRALSN" + le32(1) + le64(7);
  uint32_t blocks = 0;
  for (size_t off = 0; off < body.size(); off += kSnapshotBlock, ++blocks) {
    std::string_view block = std::string_view(body).substr(off, kSnapshotBlock);
    file += le32(static_cast<uint32_t>(block.size())) + le32(common::crc32c(block)) +
            std::string(block);
  }
  file += le32(0) + le32(blocks) + le64(body.size()) + "CORRALEN";
  sdk::Zxid z = 0;
  std::string_view view;
  std::string copy;
  ASSERT_TRUE(check_snapshot(file, z, &view, &copy).is_ok());
  EXPECT_EQ(z, 7);
  EXPECT_EQ(view, body);
  EXPECT_EQ(view.data(), copy.data());
  auto in_pieces = read_in_pieces(file, 4096);
  ASSERT_TRUE(in_pieces) << in_pieces.status().to_string();
  EXPECT_EQ(in_pieces.value(), body);
  file[kSnapshotHeader + 8 + kSnapshotBlock + 8 + 3] ^= 1;  // in the second block
  sdk::Status st = check_snapshot(file, z, &view, &copy);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("at offset " + std::to_string(kSnapshotHeader + 8 + kSnapshotBlock)),
            std::string::npos)
      << st.message();
  expect_damage_in_pieces(file, kSnapshotHeader + 8 + kSnapshotBlock);
}

TEST(WalFormat, Epochs) {
  uint32_t a = 0, c = 0;
  std::string e = encode_epochs(7, 6);
  ASSERT_TRUE(decode_epochs(e, a, c));
  EXPECT_EQ(a, 7u);
  EXPECT_EQ(c, 6u);
  e[1] ^= 1;
  EXPECT_FALSE(decode_epochs(e, a, c));
}

// ---- the plugin module on real files ----

namespace {

class WalFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("wal-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    storage_.reset();
    if (small_disk_) ::umount2((dir_ / "wal").c_str(), MNT_DETACH);
    fs::remove_all(dir_);
  }

  // Puts the wal directory on a tmpfs of `size` ("1m"), gone with the test;
  // false where mounting is not allowed (it needs root).
  bool small_disk(const char* size) {
    fs::create_directories(dir_ / "wal");
    small_disk_ = ::geteuid() == 0 && ::mount("tmpfs", (dir_ / "wal").c_str(), "tmpfs", 0,
                                              (std::string("size=") + size).c_str()) == 0;
    return small_disk_;
  }

  // A tree of `n` znodes with `size`-byte values.
  static kernel::DataTree tree_of(int n, size_t size) {
    kernel::DataTree tree;
    kernel::Journal j;
    kernel::Ids ids;
    for (int i = 0; i < n; ++i)
      EXPECT_EQ(
          tree.create("/n" + std::to_string(i), std::string(size, static_cast<char>('a' + i % 26)),
                      proto::open_acl_unsafe(), proto::CreateMode::persistent, 0, i + 1, 0, ids,
                      nullptr, nullptr, j),
          proto::Err::ok);
    return tree;
  }

  // Runs the loop until `done()`, calling `each()` (if any) before every
  // turn. The loop runs out of work between the writer thread's posts (and
  // the snapshot's steps), so it is restarted each turn.
  void pump_until(const std::function<bool()>& done, const std::function<void()>& each = {}) {
    while (!done()) {
      if (each) each();
      io_.restart();
      io_.run_one_for(std::chrono::milliseconds(20));
    }
  }
  // Runs what is ready: a sink is released on the loop, before its module
  // may go.
  void settle_loop() {
    io_.restart();
    io_.poll();
  }

  // Snapshots `tree` at `zxid` as the server does, through the kernel's
  // snapshot process, and waits for the outcome.
  sdk::Status snapshot_by_process(const kernel::DataTree& tree, sdk::Zxid zxid) {
    auto sink = storage_->begin_snapshot(zxid);
    if (!sink) return sink.status();
    kernel::Snapshotter snapshotter(io_);
    std::optional<sdk::Status> result;
    snapshotter.start(tree, std::move(sink.value()), [&](const sdk::Status& st) { result = st; });
    pump_until([&] { return result.has_value(); });
    settle_loop();
    return *result;
  }

  // Loads a fresh plugin object on the data directory.
  sdk::Result<sdk::RecoveredState> open(std::vector<std::string> settings = {}) {
    storage_.reset();
    host_.reset();
    settings.push_back("server.data_dir=" + dir_.string());
    auto cfg = kernel::load_config(std::nullopt, settings);
    EXPECT_TRUE(cfg) << cfg.status().to_string();
    config_ = std::make_unique<kernel::Config>(std::move(cfg.value()));
    info_.data_dir = dir_.string();
    host_ = std::make_unique<kernel::PluginHostImpl>(
        executor_, clock_, std::make_unique<kernel::StderrLogger>("wal"), metrics_,
        config_->plugin_table("storage", "wal"), info_);
    kernel::PluginLoader loader({CORRAL_TEST_PLUGIN_DIR});
    auto made = loader.create<sdk::Storage>(sdk::PluginKind::storage, "wal");
    EXPECT_TRUE(made) << made.status().to_string();
    storage_ = made.value();
    sdk::Status st = storage_->init(*host_);
    if (!st) return st;
    return storage_->open();
  }

  // Opens the data directory again and checks that it recovers `tree` from
  // a snapshot at `zxid`. What open() recovered is released here, before
  // the next open() unloads the module that made it.
  void expect_recovers(const kernel::DataTree& tree, sdk::Zxid zxid,
                       std::vector<std::string> settings = {}) {
    auto r = open(std::move(settings));
    ASSERT_TRUE(r) << r.status().to_string();
    EXPECT_EQ(r->snapshot_zxid, zxid);
    auto back = kernel::DataTree::deserialize(r->snapshot);
    ASSERT_TRUE(back) << back.status().to_string();
    EXPECT_EQ(back->node_count(), tree.node_count());
    EXPECT_EQ(back->digest(), tree.digest());
  }

  // Appends and waits until every append is acknowledged.
  std::vector<sdk::Status> append(sdk::Zxid from, sdk::Zxid to, size_t size = 100) {
    std::vector<sdk::Status> results;
    for (sdk::Zxid z = from; z <= to; ++z)
      storage_->append(entry(z, size), [&](const sdk::Status& st) { results.push_back(st); });
    pump_until([&] { return results.size() == static_cast<size_t>(to - from + 1); });
    return results;
  }

  std::vector<sdk::Zxid> read_all(sdk::Zxid after = 0) {
    std::vector<sdk::Zxid> out;
    sdk::Status st = storage_->read_log(after, [&](const sdk::LogEntry& e) {
      out.push_back(e.zxid);
      return true;
    });
    EXPECT_TRUE(st) << st.to_string();
    return out;
  }

  std::vector<fs::path> files(const std::string& prefix) {
    std::vector<fs::path> out;
    for (auto& e : fs::directory_iterator(dir_ / "wal"))
      if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }

  void snapshot(sdk::Zxid zxid, const std::string& body) {
    auto sink = storage_->begin_snapshot(zxid);
    ASSERT_TRUE(sink) << sink.status().to_string();
    ASSERT_TRUE(sink.value()->write(body));
    std::optional<sdk::Status> result;
    sink.value()->commit([&](const sdk::Status& st) { result = st; });
    pump_until([&] { return result.has_value(); });
    ASSERT_TRUE(*result) << result->to_string();
  }

  fs::path dir_;
  bool small_disk_ = false;
  boost::asio::io_context io_;
  kernel::AsioExecutor executor_{io_};
  kernel::SystemClock clock_;
  kernel::MetricsRegistry metrics_;
  sdk::ServerInfo info_;
  std::unique_ptr<kernel::Config> config_;
  std::unique_ptr<kernel::PluginHostImpl> host_;
  std::shared_ptr<sdk::Storage> storage_;
};

}  // namespace

TEST_F(WalFixture, AcknowledgedEntriesSurviveReopen) {
  auto r = open();
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->last_zxid, 0);
  for (const auto& st : append(1, 500)) ASSERT_TRUE(st) << st.to_string();
  ASSERT_TRUE(storage_->save_epochs(3, 2));
  storage_->close();
  r = open();
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->last_zxid, 500);
  EXPECT_EQ(r->accepted_epoch, 3u);
  EXPECT_EQ(r->current_epoch, 2u);
  auto zs = read_all(250);
  ASSERT_EQ(zs.size(), 250u);
  EXPECT_EQ(zs.front(), 251);
  // Appends continue after the recovered tail.
  for (const auto& st : append(501, 510)) ASSERT_TRUE(st);
  storage_->close();
  ASSERT_TRUE(open());
  EXPECT_EQ(read_all().size(), 510u);
}

TEST_F(WalFixture, SegmentsRollAndSnapshotsPurgeWhatTheyCover) {
  ASSERT_TRUE(open({"storage.wal.segment_bytes=65536", "storage.wal.retain_snapshots=1"}));
  append(1, 2000, 200);  // ~ 440 KB: several segments
  size_t before = files("log.").size();
  EXPECT_GE(before, 5u);
  snapshot(1500, "state at 1500");
  EXPECT_LT(files("log.").size(), before);
  EXPECT_EQ(files("snapshot.").size(), 1u);
  auto zs = read_all(1500);
  ASSERT_EQ(zs.size(), 500u);  // everything after the snapshot is still there
  // A read from before what the purge removed fails, naming it, rather
  // than give the entries left as if they followed on.
  size_t seen = 0;
  sdk::Status gone = storage_->read_log(100, [&](const sdk::LogEntry&) {
    ++seen;
    return true;
  });
  EXPECT_EQ(gone.code(), sdk::Errc::not_found) << gone.to_string();
  EXPECT_NE(gone.message().find("no longer holds"), std::string::npos) << gone.message();
  EXPECT_EQ(seen, 0u);
  storage_->close();
  auto r = open({"storage.wal.segment_bytes=65536"});
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->snapshot_zxid, 1500);
  EXPECT_EQ(r->snapshot, "state at 1500");
  EXPECT_EQ(r->last_zxid, 2000);
  // After a restart too.
  gone = storage_->read_log(100, [&](const sdk::LogEntry&) {
    ++seen;
    return true;
  });
  EXPECT_EQ(gone.code(), sdk::Errc::not_found) << gone.to_string();
  EXPECT_EQ(seen, 0u);
  EXPECT_EQ(read_all(1500).size(), 500u);
}

// A log whose first entry opens an epoch (epoch << 32 | 1) lacks nothing
// before it: with no snapshot it is read from 0, after a restart too (an
// ensemble member reads it so when it starts).
TEST_F(WalFixture, ALogStartingAtAnEpochIsReadFromZeroAfterARestart) {
  const sdk::Zxid first = (sdk::Zxid{3} << 32) | 1;
  ASSERT_TRUE(open({"storage.wal.segment_bytes=65536"}));
  append(first, first + 999, 200);  // several segments
  EXPECT_GE(files("log.").size(), 2u);
  storage_->close();
  auto r = open({"storage.wal.segment_bytes=65536"});
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->snapshot_zxid, 0);
  EXPECT_EQ(r->last_zxid, first + 999);
  auto zs = read_all(0);
  ASSERT_EQ(zs.size(), 1000u);
  EXPECT_EQ(zs.front(), first);
  EXPECT_EQ(zs.back(), first + 999);
}

TEST_F(WalFixture, SnapshotPolicyAsksForSnapshots) {
  ASSERT_TRUE(open({"storage.wal.snapshot_every_entries=100"}));
  append(1, 99);
  EXPECT_FALSE(storage_->snapshot_due());
  append(100, 100);
  EXPECT_TRUE(storage_->snapshot_due());
  snapshot(100, "x");
  EXPECT_FALSE(storage_->snapshot_due());
}

// A large snapshot waits until the log since it holds half its size (the
// default snapshot_log_ratio), however many entries that takes.
TEST_F(WalFixture, ALargeTreeIsSnapshottedLessOften) {
  ASSERT_TRUE(open({"storage.wal.snapshot_every_entries=100"}));
  append(1, 100, 100);
  ASSERT_TRUE(storage_->snapshot_due());
  snapshot(100, std::string(100000, 's'));  // as large as ~850 records of 117 bytes
  append(101, 300, 100);
  EXPECT_FALSE(storage_->snapshot_due()) << "200 records are less than half of 100 KB";
  append(301, 600, 100);
  EXPECT_TRUE(storage_->snapshot_due());
  storage_->close();
  // After a restart the policy remembers the snapshot's size.
  ASSERT_TRUE(open({"storage.wal.snapshot_every_entries=100"}));
  EXPECT_TRUE(storage_->snapshot_due());
  storage_->close();
  ASSERT_TRUE(open({"storage.wal.snapshot_every_entries=100", "storage.wal.snapshot_log_ratio=5"}));
  EXPECT_FALSE(storage_->snapshot_due());
  storage_->close();
  ASSERT_TRUE(open({"storage.wal.snapshot_every_entries=100", "storage.wal.snapshot_log_ratio=0"}));
  EXPECT_TRUE(storage_->snapshot_due());
}

TEST_F(WalFixture, TruncateAfterDropsTheTail) {
  ASSERT_TRUE(open({"storage.wal.segment_bytes=65536"}));
  append(1, 1000, 200);
  ASSERT_TRUE(storage_->truncate_after(300));
  auto zs = read_all();
  ASSERT_EQ(zs.size(), 300u);
  EXPECT_EQ(zs.back(), 300);
  append(301, 310);
  storage_->close();
  auto r = open({"storage.wal.segment_bytes=65536"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->last_zxid, 310);
  EXPECT_EQ(read_all().size(), 310u);
}

TEST_F(WalFixture, ATornTailIsTruncatedAndLogged) {
  ASSERT_TRUE(open());
  append(1, 10);
  storage_->close();
  fs::path seg = files("log.").back();
  // A crash in the middle of writing record 11.
  std::string partial;
  encode_record(partial, entry(11));
  size_t end = records(10, 100).size();
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(end));
    f.write(partial.data(), static_cast<std::streamsize>(partial.size() / 2));
  }
  testing::internal::CaptureStderr();
  auto r = open();
  std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->last_zxid, 10);
  EXPECT_NE(log.find("torn record at offset " + std::to_string(end)), std::string::npos) << log;
  EXPECT_NE(log.find(seg.string()), std::string::npos) << log;
  append(11, 12);
  storage_->close();
  ASSERT_TRUE(open());
  EXPECT_EQ(read_all().size(), 12u);
}

TEST_F(WalFixture, CorruptionMidLogStopsOpenNamingFileAndOffset) {
  ASSERT_TRUE(open());
  append(1, 10);
  storage_->close();
  fs::path seg = files("log.").back();
  size_t third = records(2, 100).size();
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(third + 20));
    f.put('\x7f');
  }
  auto r = open();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), sdk::Errc::corrupt);
  EXPECT_NE(r.status().message().find(seg.string()), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("offset " + std::to_string(third)), std::string::npos)
      << r.status().message();
}

// A leader sends a learner the log a batch at a time, each read going on
// from where the last ended (and some stopping before the entry they were
// shown): every entry comes once, in order, across segments and after a
// truncation rewrote the tail.
TEST_F(WalFixture, TheLogReadInBatchesGivesEveryEntryOnce) {
  ASSERT_TRUE(open({"storage.wal.segment_bytes=65536"}));
  append(1, 3000, 100);
  size_t tail_size = 100;  // of the entries after 2000
  auto batches = [&](sdk::Zxid from, size_t batch, bool take_last) {
    std::vector<sdk::Zxid> out;
    sdk::Zxid after = from;
    while (true) {
      size_t n = 0;
      sdk::Status st = storage_->read_log(after, [&](const sdk::LogEntry& e) {
        EXPECT_EQ(e.body, entry(e.zxid, e.zxid > 2000 ? tail_size : 100).body);
        if (n == batch && !take_last) return false;  // shown, not taken
        out.push_back(e.zxid);
        return ++n < batch;
      });
      EXPECT_TRUE(st) << st.to_string();
      if (n == 0) break;
      after = out.back();
    }
    return out;
  };
  std::vector<sdk::Zxid> want;
  for (sdk::Zxid z = 1; z <= 3000; ++z) want.push_back(z);
  EXPECT_EQ(batches(0, 37, true), want);
  EXPECT_EQ(batches(0, 50, false), want);
  // A read that ends at 2100, whose place the truncation below undoes.
  size_t seen = 0;
  ASSERT_TRUE(storage_->read_log(2090, [&](const sdk::LogEntry&) { return ++seen < 10; }));
  ASSERT_TRUE(storage_->truncate_after(2000));
  append(2001, 2500, 30);
  tail_size = 30;
  EXPECT_EQ(batches(2100, 7, true),
            std::vector<sdk::Zxid>(want.begin() + 2100, want.begin() + 2500));
  want.resize(2500);
  EXPECT_EQ(batches(0, 41, true), want);
  EXPECT_EQ(batches(1990, 3, false), std::vector<sdk::Zxid>(want.begin() + 1990, want.end()));
}

// A leader reads the newest snapshot in pieces for a learner; the file stays
// readable when a newer snapshot purges it meanwhile.
TEST_F(WalFixture, TheNewestSnapshotIsReadInPiecesAndOutlivesItsPurge) {
  ASSERT_TRUE(open({"storage.wal.retain_snapshots=1"}));
  EXPECT_EQ(storage_->read_snapshot().status().code(), sdk::Errc::not_found);
  append(1, 20);
  std::string state;
  for (int i = 0; state.size() < 3 * kSnapshotBlock; ++i) state += std::to_string(i) + ";";
  snapshot(10, state);
  auto r = storage_->read_snapshot();
  ASSERT_TRUE(r) << r.status().to_string();
  sdk::SnapshotReader& reader = *r.value();
  EXPECT_EQ(reader.zxid(), 10);
  EXPECT_EQ(reader.size(), state.size());
  auto first = reader.next(1000);
  ASSERT_TRUE(first);
  std::string back(first.value());
  snapshot(20, "newer");  // purges the one being read
  EXPECT_EQ(files("snapshot.").size(), 1u);
  while (true) {
    auto piece = reader.next(400000);
    ASSERT_TRUE(piece) << piece.status().to_string();
    if (piece.value().empty()) break;
    EXPECT_LE(piece.value().size(), 400000u);
    back += piece.value();
  }
  EXPECT_EQ(back, state);
  auto newer = storage_->read_snapshot();
  ASSERT_TRUE(newer);
  EXPECT_EQ(newer.value()->zxid(), 20);
}

// A damage in the body is found when the reading reaches it, naming the
// file and the offset.
TEST_F(WalFixture, ADamagedSnapshotFailsItsReaderNamingFileAndOffset) {
  ASSERT_TRUE(open());
  append(1, 10);
  snapshot(10, std::string(3 * kSnapshotBlock, 's'));
  fs::path snap = files("snapshot.").back();
  {
    std::fstream f(snap, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(kSnapshotHeader + kSnapshotBlock + 7));
    f.put('S');
  }
  auto r = storage_->read_snapshot();
  ASSERT_TRUE(r) << r.status().to_string();
  auto first = r.value()->next(kSnapshotBlock);
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value().size(), kSnapshotBlock);
  auto second = r.value()->next(kSnapshotBlock);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.status().code(), sdk::Errc::corrupt);
  EXPECT_NE(second.status().message().find(snap.string()), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("at offset " +
                                           std::to_string(kSnapshotHeader + kSnapshotBlock)),
            std::string::npos)
      << second.status().message();
}

TEST_F(WalFixture, ADamagedSnapshotStopsOpenNamingFileAndOffset) {
  ASSERT_TRUE(open());
  append(1, 10);
  snapshot(10, std::string(5000, 's'));
  storage_->close();
  fs::path snap = files("snapshot.").back();
  {
    std::fstream f(snap, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('S');
  }
  auto r = open();
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find(snap.string()), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("at offset " + std::to_string(kSnapshotHeader)),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("move the file out"), std::string::npos);
}

TEST_F(WalFixture, UnfinishedSnapshotsAreIgnoredAndRemoved) {
  ASSERT_TRUE(open());
  append(1, 5);
  {
    auto sink = storage_->begin_snapshot(5);
    ASSERT_TRUE(sink);
    ASSERT_TRUE(sink.value()->write("half"));
    // no commit: a crash while writing
    storage_->close();
    fs::path tmp = dir_ / "wal" / (snapshot_name(5) + ".tmp");
    ASSERT_TRUE(fs::exists(tmp));
    fs::copy_file(tmp, dir_ / "keep.tmp");
    sink.value()->abort();
    fs::copy_file(dir_ / "keep.tmp", tmp);
  }
  auto r = open();
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->snapshot_zxid, 0);
  EXPECT_TRUE(files("snapshot.").empty());
}

// Disk full: writes fail with a clear error, reads keep working, and writes
// resume once space returns. Needs a small filesystem of its own (tmpfs).
TEST_F(WalFixture, DiskFullFailsWritesUntilSpaceReturns) {
  if (!small_disk("1m")) GTEST_SKIP() << "mounting a tmpfs needs root";
  ASSERT_TRUE(open({"storage.wal.segment_bytes=262144"}));
  // Fill most of the space so that a new segment cannot be preallocated.
  {
    std::ofstream filler(dir_ / "wal" / "filler", std::ios::binary);
    std::string mb(600 * 1024, 'f');
    filler.write(mb.data(), static_cast<std::streamsize>(mb.size()));
  }
  std::vector<sdk::Status> results = append(1, 4000, 200);  // ~900 KB: needs more segments
  auto first_fail =
      std::find_if(results.begin(), results.end(), [](const sdk::Status& s) { return !s.is_ok(); });
  ASSERT_NE(first_fail, results.end()) << "the disk never filled";
  EXPECT_EQ(first_fail->code(), sdk::Errc::no_space) << first_fail->to_string();
  EXPECT_NE(first_fail->message().find("writes fail until space is freed"), std::string::npos);
  size_t ok = static_cast<size_t>(first_fail - results.begin());
  // Everything after the first failure failed too; what was acknowledged reads back.
  EXPECT_TRUE(
      std::all_of(first_fail, results.end(), [](const sdk::Status& s) { return !s.is_ok(); }));
  EXPECT_EQ(read_all().size(), ok);
  // Space returns: writes resume.
  fs::remove(dir_ / "wal" / "filler");
  auto again = append(5001, 5010);
  for (const auto& st : again) EXPECT_TRUE(st) << st.to_string();
  auto zs = read_all();
  EXPECT_EQ(zs.size(), ok + 10);
  EXPECT_EQ(zs.back(), 5010);
}

// The kernel's snapshot process fills the wal's snapshot through the sink's
// child writer: the file it leaves is complete, checksummed and loads back
// into the same tree.
TEST_F(WalFixture, ASnapshotProcessWritesTheSnapshotItself) {
  ASSERT_TRUE(open());
  append(1, 5);
  kernel::DataTree tree = tree_of(30000, 64);  // several 1 MiB blocks
  {
    auto sink = storage_->begin_snapshot(5);
    ASSERT_TRUE(sink);
    EXPECT_NE(sink.value()->child_writer(), nullptr);
  }
  sdk::Status st = snapshot_by_process(tree, 5);
  ASSERT_TRUE(st) << st.to_string();
  storage_->close();
  expect_recovers(tree, 5);
}

// snapshot_compression = "zstd": the snapshot process writes zstd frames,
// and recovery inflates them into the same tree. Uncompressed snapshots
// from before still load, and the other way round.
TEST_F(WalFixture, CompressedSnapshotsAreSmallerAndRecoverTheSameTree) {
  const std::vector<std::string> zstd = {"storage.wal.snapshot_compression=\"zstd\""};
  ASSERT_TRUE(open(zstd));
  append(1, 5);
  kernel::DataTree tree = tree_of(30000, 64);
  sdk::Status st = snapshot_by_process(tree, 5);
  ASSERT_TRUE(st) << st.to_string();
  storage_->close();
  const auto file = dir_ / "wal" / snapshot_name(5);
  std::string head(20, '\0');
  {
    std::FILE* f = std::fopen(file.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fread(head.data(), 1, head.size(), f), head.size());
    std::fclose(f);
  }
  uint32_t version = 0;
  std::memcpy(&version, head.data() + 8, 4);
  EXPECT_EQ(version, kSnapshotVersionZstd);
  expect_recovers(tree, 5);  // without compression: the compressed file still loads
  std::string plain_body;
  tree.serialize([&](std::string_view c) { plain_body += c; });
  EXPECT_LT(fs::file_size(file), plain_body.size() / 2);
  EXPECT_FALSE(open({"storage.wal.snapshot_compression=\"lz9\""}));
}

// When the snapshot process cannot write (the disk is full), the server
// hears why, nothing becomes visible, and the log goes on.
TEST_F(WalFixture, ASnapshotProcessThatRunsOutOfSpaceSaysSo) {
  if (!small_disk("2m")) GTEST_SKIP() << "mounting a tmpfs needs root";
  ASSERT_TRUE(open({"storage.wal.segment_bytes=262144"}));
  append(1, 5);
  sdk::Status st = snapshot_by_process(tree_of(20000, 100), 5);  // ~ 3 MB of snapshot
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("No space left on device"), std::string::npos) << st.to_string();
  EXPECT_TRUE(files("snapshot.").empty());
  for (const auto& r : append(6, 10)) EXPECT_TRUE(r) << r.to_string();
}

namespace {

// Writes that change most of what tree_of made: set_data (some in place,
// some moving the node), deletes and creates.
struct Churn {
  kernel::DataTree& tree;
  int n;
  int64_t zxid = 1000000;
  uint64_t seed = 1;
  void operator()(int writes) {
    kernel::Journal j;
    for (int k = 0; k < writes; ++k) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      const std::string path = "/n" + std::to_string((seed >> 33) % static_cast<uint64_t>(n));
      switch ((seed >> 20) % 4) {
        case 0:
          (void)tree.remove(path, -1, ++zxid, {}, j);
          break;
        case 1:
          (void)tree.create(path, "back", proto::open_acl_unsafe(), proto::CreateMode::persistent,
                            0, ++zxid, 0, {}, nullptr, nullptr, j);
          break;
        default:
          (void)tree.set_data(path, std::string((seed >> 40) % 400, 'w'), -1, ++zxid, 0, {},
                              nullptr, j);
          break;
      }
    }
  }
};

}  // namespace

// snapshot_method = "walk": the loop writes the snapshot a slice at a time
// and the tree keeps changing between the slices; what is recovered is the
// tree as it was when the snapshot began.
TEST_F(WalFixture, AWalkedSnapshotHoldsTheTreeAsItWasWhenItBegan) {
  ASSERT_TRUE(open());
  append(1, 5);
  kernel::DataTree tree = tree_of(30000, 64);
  std::string bytes;
  tree.serialize([&](std::string_view c) { bytes += c; });
  auto as_it_was = kernel::DataTree::deserialize(bytes);
  ASSERT_TRUE(as_it_was);
  auto sink = storage_->begin_snapshot(5);
  ASSERT_TRUE(sink);
  kernel::Snapshotter snapshotter(io_);
  snapshotter.set_walk_slice(64);
  std::optional<sdk::Status> result;
  snapshotter.start_walk(tree, std::move(sink.value()),
                         [&](const sdk::Status& st) { result = st; });
  EXPECT_TRUE(snapshotter.last_walked());
  Churn churn{tree, 30000};
  size_t turns = 0;
  pump_until([&] { return result.has_value(); },
             [&] {
               churn(5);
               ++turns;
             });
  settle_loop();
  ASSERT_TRUE(*result) << result->to_string();
  EXPECT_GT(turns, 300u);
  EXPECT_GT(snapshotter.last_kept_peak(), 0u);
  EXPECT_NE(tree.digest(), as_it_was->digest());
  storage_->close();
  expect_recovers(*as_it_was, 5);
}

// Past `max_kept` bytes of copies the walk gives up, the file is abandoned,
// and the next snapshot is forked.
TEST_F(WalFixture, AWalkThatKeepsTooMuchGivesUpAndTheNextSnapshotIsForked) {
  ASSERT_TRUE(open());
  append(1, 5);
  kernel::DataTree tree = tree_of(20000, 64);
  kernel::Snapshotter snapshotter(io_, 64u << 20, /*max_kept=*/64u << 10);
  snapshotter.set_walk_slice(16);
  Churn churn{tree, 20000};
  auto run = [&](sdk::Zxid zxid, int writes_a_step) {
    auto sink = storage_->begin_snapshot(zxid);
    EXPECT_TRUE(sink);
    std::optional<sdk::Status> result;
    snapshotter.start_walk(tree, std::move(sink.value()),
                           [&](const sdk::Status& st) { result = st; });
    pump_until([&] { return result.has_value(); }, [&] { churn(writes_a_step); });
    settle_loop();
    return *result;
  };
  sdk::Status gave_up = run(5, 20);
  ASSERT_FALSE(gave_up);
  EXPECT_NE(gave_up.message().find("changed faster"), std::string::npos) << gave_up.to_string();
  EXPECT_TRUE(files("snapshot.").empty());
  sdk::Status forked = run(5, 20);
  ASSERT_TRUE(forked) << forked.to_string();
  EXPECT_FALSE(snapshotter.last_walked());
  EXPECT_EQ(files("snapshot.").size(), 1u);
  // Until the nodes the walk had not reached are settled (a few with each
  // entry the state machine applies), a snapshot is forked too; then walked.
  append(6, 6);
  sdk::Status forked_again = run(6, 0);
  ASSERT_TRUE(forked_again) << forked_again.to_string();
  EXPECT_FALSE(snapshotter.last_walked());
  int writes = 0;
  for (; !tree.settle_snapshot(32); ++writes) churn(1);
  EXPECT_GT(writes, 10);
  EXPECT_EQ(tree.snapshot_kept_bytes(), 0u);  // the walk ended with it
  append(7, 7);
  sdk::Status walked = run(7, 0);
  ASSERT_TRUE(walked) << walked.to_string();
  EXPECT_TRUE(snapshotter.last_walked());
}

// The tree replaced while its snapshot is walked (a restore, a sync from
// the leader): the snapshot fails and nothing becomes visible.
TEST_F(WalFixture, AWalkedSnapshotWhoseTreeIsReplacedFails) {
  ASSERT_TRUE(open());
  append(1, 5);
  kernel::DataTree tree = tree_of(20000, 64);
  auto sink = storage_->begin_snapshot(5);
  ASSERT_TRUE(sink);
  kernel::Snapshotter snapshotter(io_);
  snapshotter.set_walk_slice(16);
  std::optional<sdk::Status> result;
  snapshotter.start_walk(tree, std::move(sink.value()),
                         [&](const sdk::Status& st) { result = st; });
  int turns = 0;
  pump_until([&] { return result.has_value() || turns == 10; }, [&] { ++turns; });
  ASSERT_FALSE(result);
  tree = tree_of(10, 8);
  pump_until([&] { return result.has_value(); });
  settle_loop();
  ASSERT_FALSE(*result);
  EXPECT_NE(result->message().find("replaced"), std::string::npos) << result->to_string();
  EXPECT_TRUE(files("snapshot.").empty());
}
