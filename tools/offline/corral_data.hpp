// A Corral data directory read and written offline, as the server would
// recover it: for `corral restore` (a backup, optionally rolled forward to a
// zxid with a data directory's log) and `corral export zookeeper`.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>

#include "corral/sdk/status.hpp"
#include "corral/sdk/types.hpp"
#include "tree/data_tree.hpp"

namespace corral::offline {

using Say = std::function<void(const std::string&)>;

struct Recovered {
  kernel::DataTree tree;
  sdk::Zxid zxid = 0;  // the last entry applied, or the snapshot's zxid
  uint32_t accepted_epoch = 0, current_epoch = 0;
};

// The wal files of `dir` (a data directory, or its wal directory): the
// newest snapshot at or below `up_to` (it must check whole), then the log
// after it up to `up_to`. Damage is an error naming the file and offset.
sdk::Status recover(const std::string& dir, sdk::Zxid up_to, const Say& say, Recovered& out);

// A backup (a snapshot file in the wal's format, as GET /commands/snapshot
// sends it), checked whole and loaded.
sdk::Status read_backup(const std::string& file, Recovered& out);

// `corral restore`: `file` (a backup) or the newest snapshot of `log_from`
// at or below `to_zxid`, rolled forward with the log of `log_from` up to
// `to_zxid` when it is given, written into the new data directory `to`.
struct RestoreOptions {
  std::string file;
  std::string log_from;
  std::string to;
  sdk::Zxid to_zxid = std::numeric_limits<sdk::Zxid>::max();
};
sdk::Status restore(const RestoreOptions& o, const Say& say);

// A new data directory's wal files: `tree` as a snapshot at `zxid`, and the
// epochs. Refused when `dir`/wal already holds data.
sdk::Status write_data_dir(const std::string& dir, const kernel::DataTree& tree, sdk::Zxid zxid,
                           uint32_t accepted_epoch, uint32_t current_epoch, const Say& say);

// `dir`/wal created for a new data directory: refused when it holds Corral
// data already. Returns its path.
sdk::Result<std::string> new_wal_dir(const std::string& dir);
// The wal files of a new data directory: the snapshot file at `zxid` (its
// bytes, in pieces) and the epochs.
sdk::Status write_wal_files(const std::string& wal, sdk::Zxid zxid,
                            std::initializer_list<std::string_view> snapshot,
                            uint32_t accepted_epoch, uint32_t current_epoch);

// Writes `pieces` to `path` through a temporary file, synced, then renamed.
sdk::Status write_file(const std::string& path, std::initializer_list<std::string_view> pieces);
// The first file in `dir` whose name starts with one of `prefixes` ("" if none).
std::string first_data_file(const std::string& dir,
                            std::initializer_list<std::string_view> prefixes);
std::string zxid_hex(int64_t z);

}  // namespace corral::offline
