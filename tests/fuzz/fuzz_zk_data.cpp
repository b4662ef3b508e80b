// ZooKeeper's files as `corral import zookeeper` reads them: the first byte
// picks the reader (0 a snapshot stream, 1 a transaction log replayed onto a
// tree, 2 a gzip snapshot, 3 a snappy-java one). A snapshot that reads must
// write out and read again to the same tree.
#include <cstdint>
#include <string>

#include "zk_data.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      zk::ZkTree t;
      if (!zk::read_snapshot(in, "fuzz", t)) return 0;
      zk::ZkTree again;
      if (!zk::read_snapshot(zk::write_snapshot(t), "again", again) ||
          again.nodes.size() != t.nodes.size() || again.sessions != t.sessions)
        __builtin_trap();
      return 0;
    }
    case 1: {
      zk::ZkTree t;
      zk::ReplayCounts counts;
      zk::LogScan scan;
      (void)zk::scan_log(
          in, "fuzz",
          [&](std::string_view entry, int64_t, size_t) { return t.apply(entry, counts); }, scan);
      t.drop_orphan_ephemerals();
      return 0;
    }
    case 2:
      (void)zk::snapshot_stream(in, "fuzz.gz");
      return 0;
    default:
      (void)zk::snapshot_stream(in, "fuzz.snappy");
      return 0;
  }
}
