#include "history.hpp"

#include <iterator>

namespace corral::zab {

SyncPlan plan_diff(std::vector<sdk::LogEntry> history, sdk::Zxid floor, sdk::Zxid peer_last) {
  SyncPlan p;
  sdk::Zxid common = floor;
  size_t next = 0;
  while (next < history.size() && history[next].zxid <= peer_last) common = history[next++].zxid;
  if (common != peer_last) {
    p.mode = SyncPlan::Mode::trunc;
    p.trunc_zxid = common;
  }
  p.entries.assign(std::make_move_iterator(history.begin() + static_cast<long>(next)),
                   std::make_move_iterator(history.end()));
  return p;
}

}  // namespace corral::zab
