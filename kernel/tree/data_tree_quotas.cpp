// The data tree's quotas: ZooKeeper's /zookeeper/quota nodes, their
// StatsTrack text, and what a create or a setData may add under a limit.
#include <charconv>
#include <cstdio>
#include <cstring>

#include "tree/data_tree.hpp"

namespace corral::kernel {

namespace {

constexpr std::string_view kQuotaRoot = "/zookeeper/quota";
constexpr std::string_view kLimitsNode = "zookeeper_limits";
constexpr std::string_view kStatsNode = "zookeeper_stats";

// ZooKeeper's StatsTrack: "count=N,bytes=B" and, for limits, hard limits
// too. Its writers separate fields with ',' or ';' and zkCli 3.8 leaves a
// stray '=' ("count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3"), which
// its reader ignores; so does this one. Missing or unreadable fields are -1.
struct QuotaFigures {
  int64_t count = -1, bytes = -1, count_hard = -1, bytes_hard = -1;
};

QuotaFigures parse_figures(std::string_view text) {
  QuotaFigures f;
  while (!text.empty()) {
    size_t comma = text.find_first_of(",;");
    std::string_view part = text.substr(0, comma);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos) {
      std::string_view key = part.substr(0, eq), value = part.substr(eq + 1);
      value = value.substr(0, value.find('='));
      int64_t v = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec == std::errc() && end == value.data() + value.size()) {
        if (key == "count")
          f.count = v;
        else if (key == "bytes")
          f.bytes = v;
        else if (key == "countHardLimit")
          f.count_hard = v;
        else if (key == "byteHardLimit")
          f.bytes_hard = v;
      }
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return f;
}

// "/zookeeper/quota/a/b/zookeeper_limits" -> "/a/b"; empty when `path` is not
// a quota node of `kind`.
std::string_view quota_target(std::string_view path, std::string_view kind) {
  if (path.size() <= kQuotaRoot.size() + kind.size() + 2 ||
      path.substr(0, kQuotaRoot.size()) != kQuotaRoot || path[kQuotaRoot.size()] != '/' ||
      proto::base_name(path) != kind)
    return {};
  return path.substr(kQuotaRoot.size(), path.size() - kQuotaRoot.size() - kind.size() - 1);
}

std::string stats_path(std::string_view target) {
  return std::string(kQuotaRoot) + std::string(target) + "/" + std::string(kStatsNode);
}

}  // namespace

bool DataTree::quota_may_move(std::string_view path) {
  return path.size() > kQuotaRoot.size() && path.starts_with(kQuotaRoot) &&
         path[kQuotaRoot.size()] == '/';
}

std::string_view DataTree::quota_prefix(std::string_view path) const {
  if (quota_paths_.empty()) return {};
  // Walk up from the node itself: the first ancestor under quota is the longest.
  std::string_view p = path;
  while (p.size() > 1) {
    auto it = quota_paths_.find(p);
    if (it != quota_paths_.end()) return *it;
    size_t slash = p.rfind('/');
    if (slash == std::string_view::npos || slash == 0) break;
    p = p.substr(0, slash);
  }
  return {};
}

void DataTree::quota_account(std::string_view path, int64_t bytes, int64_t count) {
  std::string_view target = quota_prefix(path);
  if (target.empty()) return;
  const std::string stats_name = stats_path(target);
  Node* stats = find_mut(stats_name);
  if (!stats) return;  // limits without stats: nothing to keep (as ZooKeeper)
  QuotaFigures f = parse_figures(stats->data());
  f.count = std::max<int64_t>(f.count, 0) + count;
  f.bytes = std::max<int64_t>(f.bytes, 0) + bytes;
  std::string text = "count=" + std::to_string(f.count) + ",bytes=" + std::to_string(f.bytes);
  data_bytes_ += static_cast<int64_t>(text.size()) - static_cast<int64_t>(stats->data().size());
  digest_ -= node_digest(stats_name, *stats);
  stats = replace_data(stats, text, false);
  digest_ += node_digest(stats_name, *stats);
}

void DataTree::quota_recount(std::string_view target) {
  const std::string stats_name = stats_path(target);
  Node* stats = find_mut(stats_name);
  if (!stats) return;
  int64_t count = 0, bytes = 0;
  std::vector<const Node*> todo;
  if (const Node* top = find(target)) todo.push_back(top);
  while (!todo.empty()) {
    const Node* n = todo.back();
    todo.pop_back();
    ++count;
    bytes += static_cast<int64_t>(n->data().size());
    n->children().for_each([&](const Node* c) { todo.push_back(c); });
  }
  std::string text = "count=" + std::to_string(count) + ",bytes=" + std::to_string(bytes);
  data_bytes_ += static_cast<int64_t>(text.size()) - static_cast<int64_t>(stats->data().size());
  digest_ -= node_digest(stats_name, *stats);
  stats = replace_data(stats, text, stats->data_null());
  digest_ += node_digest(stats_name, *stats);
}

void DataTree::quota_node_added(std::string_view path) {
  if (std::string_view t = quota_target(path, kLimitsNode); !t.empty())
    quota_paths_.emplace(t);
  else if (std::string_view s = quota_target(path, kStatsNode); !s.empty())
    quota_recount(s);
}

void DataTree::quota_node_removed(std::string_view path) {
  if (std::string_view t = quota_target(path, kLimitsNode); !t.empty()) {
    auto it = quota_paths_.find(t);
    if (it != quota_paths_.end()) quota_paths_.erase(it);
  }
}

Err DataTree::quota_check(std::string_view path, int64_t bytes, int64_t count) const {
  if (!enforce_quota_) return Err::ok;
  std::string_view target = quota_prefix(path);
  if (target.empty()) return Err::ok;
  const Node* limits =
      find(std::string(kQuotaRoot) + std::string(target) + "/" + std::string(kLimitsNode));
  const Node* stats = find(stats_path(target));
  if (!limits || !stats) return Err::ok;
  QuotaFigures limit = parse_figures(limits->data()), now = parse_figures(stats->data());
  if (count != 0 && limit.count_hard > -1 && now.count + count > limit.count_hard)
    return Err::quota_exceeded;
  if (bytes != 0 && limit.bytes_hard > -1 && now.bytes + bytes > limit.bytes_hard)
    return Err::quota_exceeded;
  return Err::ok;
}

void DataTree::quota_rebuild() {
  quota_paths_.clear();
  // Only the /zookeeper/quota subtree can hold limits: walk it, not the tree.
  std::vector<const Node*> todo;
  if (const Node* root = find(kQuotaRoot)) todo.push_back(root);
  while (!todo.empty()) {
    const Node* n = todo.back();
    todo.pop_back();
    if (std::string_view t = quota_target(n->path(), kLimitsNode); !t.empty())
      quota_paths_.emplace(t);
    n->children().for_each([&](const Node* c) { todo.push_back(c); });
  }
  for (const std::string& t : std::set<std::string, std::less<>>(quota_paths_)) quota_recount(t);
}

}  // namespace corral::kernel
