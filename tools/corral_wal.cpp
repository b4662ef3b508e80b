// corral-wal: inspect the files of the `wal` storage plugin — list segments
// and snapshots, dump log records as text or JSON, verify every checksum.
// Reads only; safe on a running server's directory.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "corral/common/json.hpp"
#include "corral/proto/codes.hpp"
#include "corral/proto/jute.hpp"
#include "corral/proto/records.hpp"
#include "tree/txn.hpp"
#include "wal_format.hpp"

namespace {

namespace fs = std::filesystem;
using namespace corral;
using namespace corral::wal;

constexpr const char* kUsage = R"(usage: corral-wal COMMAND DIR [options]

DIR is a server's data directory or its wal directory.

commands:
  list     the log segments, snapshots and epochs, with what they hold
  dump     every log record, one per line  [--json] [--from ZXID] [--to ZXID]
  verify   check every record and snapshot checksum; exit status 1 on damage
)";

struct Files {
  std::vector<std::pair<sdk::Zxid, std::string>> segments, snapshots;
  std::string epochs;
};

Files find(const std::string& dir) {
  Files f;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    sdk::Zxid z;
    if (parse_name(name, "log.", z))
      f.segments.emplace_back(z, e.path().string());
    else if (parse_name(name, "snapshot.", z))
      f.snapshots.emplace_back(z, e.path().string());
    else if (name == "epochs")
      f.epochs = e.path().string();
  }
  if (ec) {
    std::fprintf(stderr, "corral-wal: %s: %s\n", dir.c_str(), ec.message().c_str());
    std::exit(2);
  }
  std::sort(f.segments.begin(), f.segments.end());
  std::sort(f.snapshots.begin(), f.snapshots.end());
  return f;
}

std::string hex(sdk::Zxid z) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(z));
  return b;
}

// What a record's body says, for people: operation, session, and the path.
struct Described {
  std::string op, path;
  int64_t session = 0;
  int32_t cxid = 0;
};
Described describe(const sdk::LogEntry& e) {
  Described d;
  kernel::TxnHeader h;
  if (!kernel::decode_txn(e.body, h)) {
    d.op = "undecodable";
    return d;
  }
  d.op = proto::opcode_name(h.type);
  d.session = h.session;
  d.cxid = h.cxid;
  proto::JuteReader r(h.payload);
  switch (static_cast<proto::OpCode>(h.type)) {
    case proto::OpCode::create:
    case proto::OpCode::create2:
    case proto::OpCode::remove:
    case proto::OpCode::set_data:
    case proto::OpCode::check:
      d.path = r.read_string();
      break;
    default:
      break;
  }
  return d;
}

int list(const std::string& dir) {
  Files f = find(dir);
  std::printf("log segments in %s:\n", dir.c_str());
  for (size_t i = 0; i < f.segments.size(); ++i) {
    MappedFile m(f.segments[i].second);
    if (!m.ok()) {
      std::printf("  %s: %s\n", f.segments[i].second.c_str(), m.error().c_str());
      continue;
    }
    SegmentScan s = scan_segment(m.data(), i + 1 == f.segments.size());
    std::printf("  %s  %zu records  zxid %s..%s  %zu of %zu bytes used%s\n",
                fs::path(f.segments[i].second).filename().c_str(), s.records, hex(s.first).c_str(),
                hex(s.last).c_str(), s.valid_end, m.data().size(),
                s.end == SegmentScan::clean  ? ""
                : s.end == SegmentScan::torn ? "  (torn tail)"
                                             : "  (DAMAGED)");
  }
  std::printf("snapshots:\n");
  for (const auto& [z, path] : f.snapshots) {
    MappedFile m(path);
    sdk::Zxid got = 0;
    sdk::Status st = m.ok() ? read_snapshot(m.data(), got, nullptr)
                            : sdk::Status(sdk::Errc::io_error, m.error());
    std::printf("  %s  zxid %s  %zu bytes  %s\n", fs::path(path).filename().c_str(), hex(z).c_str(),
                m.data().size(), st ? "ok" : ("DAMAGED " + st.message()).c_str());
  }
  if (!f.epochs.empty()) {
    MappedFile m(f.epochs);
    uint32_t a = 0, c = 0;
    if (decode_epochs(m.data(), a, c))
      std::printf("epochs: accepted %u, current %u\n", a, c);
    else
      std::printf("epochs: DAMAGED\n");
  }
  return 0;
}

int dump(const std::string& dir, bool json, sdk::Zxid from, sdk::Zxid to) {
  Files f = find(dir);
  int status = 0;
  for (size_t i = 0; i < f.segments.size(); ++i) {
    MappedFile m(f.segments[i].second);
    if (!m.ok()) {
      std::fprintf(stderr, "corral-wal: %s\n", m.error().c_str());
      return 1;
    }
    SegmentScan s = scan_segment(
        m.data(), i + 1 == f.segments.size(), [&](const sdk::LogEntry& e, size_t offset) {
          if (e.zxid < from || e.zxid > to) return true;
          Described d = describe(e);
          if (json) {
            std::printf(
                "{\"zxid\":%lld,\"time_ms\":%lld,\"op\":%s,\"session\":%lld,\"cxid\":%d,\"path\":%"
                "s,\"file\":%s,"
                "\"offset\":%zu,\"bytes\":%zu}\n",
                static_cast<long long>(e.zxid), static_cast<long long>(e.time_ms),
                common::json_quote(d.op).c_str(), static_cast<long long>(d.session), d.cxid,
                common::json_quote(d.path).c_str(),
                common::json_quote(fs::path(f.segments[i].second).filename().string()).c_str(),
                offset, e.body.size());
          } else {
            std::printf("%s  %lld  %-14s session %s cxid %d  %s\n", hex(e.zxid).c_str(),
                        static_cast<long long>(e.time_ms), d.op.c_str(), hex(d.session).c_str(),
                        d.cxid, d.path.c_str());
          }
          return true;
        });
    if (s.end != SegmentScan::clean) {
      std::fprintf(stderr, "corral-wal: %s: %s at offset %zu (%s)\n", f.segments[i].second.c_str(),
                   s.end == SegmentScan::torn ? "torn tail" : "damage", s.bad_offset,
                   s.why.c_str());
      if (s.end == SegmentScan::corrupt) status = 1;
    }
  }
  return status;
}

int verify(const std::string& dir) {
  Files f = find(dir);
  int damaged = 0;
  size_t records = 0;
  for (size_t i = 0; i < f.segments.size(); ++i) {
    MappedFile m(f.segments[i].second);
    if (!m.ok()) {
      std::printf("%s: %s\n", f.segments[i].second.c_str(), m.error().c_str());
      ++damaged;
      continue;
    }
    SegmentScan s = scan_segment(m.data(), i + 1 == f.segments.size());
    records += s.records;
    if (s.end == SegmentScan::corrupt) {
      std::printf("%s: DAMAGED at offset %zu: %s\n", f.segments[i].second.c_str(), s.bad_offset,
                  s.why.c_str());
      ++damaged;
    } else if (s.end == SegmentScan::torn) {
      std::printf("%s: torn tail at offset %zu (%s); corrald truncates it at start\n",
                  f.segments[i].second.c_str(), s.bad_offset, s.why.c_str());
    }
  }
  for (const auto& [z, path] : f.snapshots) {
    MappedFile m(path);
    sdk::Zxid got = 0;
    sdk::Status st = m.ok() ? read_snapshot(m.data(), got, nullptr)
                            : sdk::Status(sdk::Errc::io_error, m.error());
    if (!st) {
      std::printf("%s: DAMAGED %s\n", path.c_str(), st.message().c_str());
      ++damaged;
    }
  }
  if (!f.epochs.empty()) {
    MappedFile m(f.epochs);
    uint32_t a, c;
    if (!decode_epochs(m.data(), a, c)) {
      std::printf("%s: DAMAGED at offset 0: checksum mismatch\n", f.epochs.c_str());
      ++damaged;
    }
  }
  std::printf("%zu segments (%zu records), %zu snapshots: %s\n", f.segments.size(), records,
              f.snapshots.size(),
              damaged ? (std::to_string(damaged) + " damaged").c_str() : "all checksums good");
  return damaged ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    std::fputs(kUsage, argc < 3 ? stderr : stdout);
    return argc < 3 ? 2 : 0;
  }
  std::string cmd = argv[1], dir = argv[2];
  if (fs::is_directory(fs::path(dir) / "wal")) dir = (fs::path(dir) / "wal").string();
  bool json = false;
  sdk::Zxid from = 0, to = INT64_MAX;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json")
      json = true;
    else if ((a == "--from" || a == "--to") && i + 1 < argc)
      (a == "--from" ? from : to) = std::stoll(argv[++i], nullptr, 0);
    else {
      std::fprintf(stderr, "corral-wal: unknown option '%s'\n", a.c_str());
      return 2;
    }
  }
  if (cmd == "list") return list(dir);
  if (cmd == "dump") return dump(dir, json, from, to);
  if (cmd == "verify") return verify(dir);
  std::fprintf(stderr, "corral-wal: unknown command '%s'\n%s", cmd.c_str(), kUsage);
  return 2;
}
