#include "tree/data_tree.hpp"

#include <charconv>
#include <cstdio>
#include <cstring>

namespace corral::kernel {

using proto::CreateMode;

struct Journal::Undo {
  enum Kind { created, deleted, data_set } kind;
  std::string path;
  // Parent bookkeeping before the change (created/deleted).
  int32_t parent_cversion = 0;
  int64_t parent_pzxid = 0;
  // deleted: the node as it was (children empty by precondition).
  Node node;
  // data_set: the previous data and stat fields.
  std::string old_data;
  bool old_null = false;
  int32_t old_version = 0;
  int64_t old_mzxid = 0, old_mtime = 0;
};

DataTree::DataTree() {
  acls_.push_back(proto::open_acl_unsafe());
  nodes_.emplace("/", Node{});
  data_bytes_ = 1;
  for (const char* p : {"/zookeeper", "/zookeeper/quota", "/zookeeper/config"}) {
    auto [it, ok] = nodes_.emplace(p, Node{});
    link_child(*find_mut(proto::parent_path(p)), *it);
    data_bytes_ += static_cast<int64_t>(it->first.size());
  }
  // The ACL ZooKeeper gives /zookeeper/config (read-only for everyone);
  // stored, not yet enforced.
  acls_.push_back({proto::Acl{proto::perm::read, {"world", "anyone"}}});
  find_mut("/zookeeper/config")->acl = 1;
  for (const auto& [path, n] : nodes_) digest_ += node_digest(path, n);
}

uint64_t DataTree::node_digest(std::string_view path, const Node& n) {
  // /zookeeper/config describes the local server's view of its ensemble
  // (discovery may update addresses at different times on each member), so
  // it stays out of the digest that members compare.
  if (path == "/zookeeper/config") return 0;
  // Eight bytes at a time, each word multiplied in and folded, then a
  // 64-bit finalizer, so that sums of node terms do not cancel by accident.
  // Cheap enough to run on every write.
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  auto word = [&](uint64_t w) {
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
  };
  auto bytes = [&](std::string_view s) {
    word(s.size());
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      word(w);
    }
    uint64_t tail = 0;
    if (i < s.size()) std::memcpy(&tail, s.data() + i, s.size() - i);
    word(tail);
  };
  bytes(path);
  bytes(n.data);
  word(static_cast<uint64_t>(n.mzxid));
  word((static_cast<uint64_t>(static_cast<uint32_t>(n.version)) << 32) | static_cast<uint32_t>(n.aversion));
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

DataTree::~DataTree() = default;
DataTree::DataTree(DataTree&&) noexcept = default;
DataTree& DataTree::operator=(DataTree&&) noexcept = default;

namespace {
// ZooKeeper's tree answers to "" as well as "/" for the root.
std::string_view canonical(std::string_view path) { return path.empty() ? std::string_view("/") : path; }

// The parent of `path` as ZooKeeper's request processor finds it: everything
// before the last '/', the root when that is empty; false when there is no '/'.
bool parent_of(std::string_view path, std::string& parent) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return false;
  parent = std::string(canonical(path.substr(0, slash)));
  return true;
}
}  // namespace

const Node* DataTree::find(std::string_view path) const {
  auto it = nodes_.find(canonical(path));
  return it == nodes_.end() ? nullptr : &it->second;
}
Node* DataTree::find_mut(std::string_view path) {
  auto it = nodes_.find(canonical(path));
  return it == nodes_.end() ? nullptr : &it->second;
}

proto::Stat DataTree::stat(const Node& n) const {
  proto::Stat s;
  s.czxid = n.czxid;
  s.mzxid = n.mzxid;
  s.ctime = n.ctime;
  s.mtime = n.mtime;
  s.version = n.version;
  s.cversion = n.cversion;
  s.aversion = n.aversion;
  s.ephemeral_owner = is_session_owner(n.ephemeral_owner) ? n.ephemeral_owner : 0;
  s.data_length = static_cast<int32_t>(n.data.size());
  s.num_children = n.num_children();
  s.pzxid = n.pzxid;
  return s;
}

std::vector<std::string> DataTree::children(const Node& n) const {
  std::vector<std::string> out;
  if (n.children) {
    out.reserve(n.children->size());
    for (const auto& entry : *n.children) out.emplace_back(entry.first);
  }
  return out;
}

uint32_t DataTree::intern_acl(const proto::AclList& acl) {
  for (size_t i = 0; i < acls_.size(); ++i)
    if (acls_[i] == acl) return static_cast<uint32_t>(i);
  acls_.push_back(acl);
  return static_cast<uint32_t>(acls_.size() - 1);
}

void DataTree::link_child(Node& parent, std::pair<const std::string, Node>& child) {
  if (!parent.children) parent.children = std::make_unique<std::unordered_map<std::string_view, Node*>>();
  parent.children->emplace(proto::base_name(child.first), &child.second);
}

void DataTree::push_undo(Journal& j, std::shared_ptr<Journal::Undo> u) {
  if (j.record_undo_) j.undo_.push_back(std::move(u));
}

Err DataTree::create(std::string_view path, std::string_view data, const proto::AclList& acl,
                     CreateMode mode, int64_t owner, sdk::Zxid zxid, int64_t time, const Ids& ids,
                     std::string* created, proto::Stat* out, Journal& j, bool data_null) {
  // ZooKeeper's order of checks: the shape of the path, the ACL, the parent
  // and the right to create in it, the full name, existence, the parent's kind.
  bool sequential = proto::is_sequential(mode);
  std::string parent_name;
  if (path.find('\0') != std::string_view::npos || !parent_of(path, parent_name))
    return Err::bad_arguments;
  proto::AclList fixed;
  if (!fixup_acl(acl, ids, fixed)) return Err::invalid_acl;
  Node* parent = find_mut(parent_name);
  if (!parent) return Err::no_node;
  if (!permitted(acls_[parent->acl], proto::perm::create, ids)) return Err::no_auth;
  std::string name(path);
  if (sequential) {
    // The counter is the number of children ever created. cversion counts
    // creations and deletions alike, so derive it as ZooKeeper does.
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "%010d", (parent->cversion + parent->num_children()) / 2);
    name += suffix;
  }
  if (proto::path_error(name)) return Err::bad_arguments;
  if (nodes_.count(name)) return Err::node_exists;
  if (is_session_owner(parent->ephemeral_owner)) return Err::no_children_for_ephemerals;
  if (Err q = quota_check(name, static_cast<int64_t>(data.size()), 1); q != Err::ok) return q;

  auto u = std::make_shared<Journal::Undo>();
  u->kind = Journal::Undo::created;
  u->path = name;
  u->parent_cversion = parent->cversion;
  u->parent_pzxid = parent->pzxid;

  Node n;
  n.data.assign(data);
  n.data_null = data_null;
  n.czxid = n.mzxid = n.pzxid = zxid;
  n.ctime = n.mtime = time;
  bool owned = proto::is_ephemeral(mode) || mode == CreateMode::container ||
               mode == CreateMode::persistent_with_ttl || mode == CreateMode::persistent_sequential_with_ttl;
  n.ephemeral_owner = owned ? owner : 0;
  n.acl = intern_acl(fixed);
  auto [it, ok] = nodes_.emplace(name, std::move(n));
  digest_ += node_digest(it->first, it->second);
  // `parent` may dangle only if the map rehashed node storage, which
  // unordered_map never does (nodes are stable); re-find for clarity anyway.
  parent = find_mut(parent_name);
  link_child(*parent, *it);
  parent->cversion++;
  parent->pzxid = zxid;
  data_bytes_ += static_cast<int64_t>(it->first.size() + data.size());
  if (is_session_owner(it->second.ephemeral_owner)) {
    auto s = sessions_.find(owner);
    if (s != sessions_.end()) s->second.ephemerals.insert(name);
  } else if (it->second.ephemeral_owner != 0) {
    containers_.insert(name);
  }
  quota_node_added(name);
  quota_account(name, static_cast<int64_t>(data.size()), 1);
  j.changes.push_back({Change::created, name, it->second.acl});
  j.changes.push_back({Change::children_changed, parent_name, parent->acl});
  push_undo(j, std::move(u));
  if (created) *created = name;
  if (out) *out = stat(it->second);
  return Err::ok;
}

void DataTree::erase_node(NodeMap::iterator it, Journal& j, sdk::Zxid zxid) {
  std::string path = it->first;
  std::string parent_name;
  parent_of(path, parent_name);
  Node* parent = find_mut(parent_name);
  auto u = std::make_shared<Journal::Undo>();
  u->kind = Journal::Undo::deleted;
  u->path = path;
  u->parent_cversion = parent->cversion;
  u->parent_pzxid = parent->pzxid;
  parent->children->erase(proto::base_name(it->first));
  parent->cversion++;
  if (zxid > parent->pzxid) parent->pzxid = zxid;
  data_bytes_ -= static_cast<int64_t>(path.size() + it->second.data.size());
  if (is_session_owner(it->second.ephemeral_owner)) {
    auto s = sessions_.find(it->second.ephemeral_owner);
    if (s != sessions_.end()) s->second.ephemerals.erase(path);
  } else if (it->second.ephemeral_owner != 0) {
    containers_.erase(path);
  }
  uint32_t node_acl = it->second.acl;
  int64_t bytes = static_cast<int64_t>(it->second.data.size());
  digest_ -= node_digest(it->first, it->second);
  if (j.record_undo_) u->node = std::move(it->second);
  nodes_.erase(it);
  quota_node_removed(path);
  quota_account(path, -bytes, -1);
  j.changes.push_back({Change::deleted, path, node_acl});
  j.changes.push_back({Change::children_changed, parent_name, parent->acl});
  push_undo(j, std::move(u));
}

Err DataTree::remove(std::string_view path, int32_t version, sdk::Zxid zxid, const Ids& ids, Journal& j) {
  std::string parent_name;
  if (path.find('\0') != std::string_view::npos || !parent_of(path, parent_name) || path == "/")
    return Err::bad_arguments;
  const Node* parent = find(parent_name);
  if (!parent) return Err::no_node;
  if (!permitted(acls_[parent->acl], proto::perm::remove, ids)) return Err::no_auth;
  auto it = nodes_.find(path);
  if (it == nodes_.end()) return Err::no_node;
  if (version != -1 && version != it->second.version) return Err::bad_version;
  if (it->second.num_children() > 0) return Err::not_empty;
  erase_node(it, j, zxid);
  return Err::ok;
}

Err DataTree::set_data(std::string_view path, std::string_view data, int32_t version,
                       sdk::Zxid zxid, int64_t time, const Ids& ids, proto::Stat* out, Journal& j,
                       bool data_null) {
  if (proto::path_error(path)) return Err::bad_arguments;
  Node* n = find_mut(path);
  if (!n) return Err::no_node;
  if (!permitted(acls_[n->acl], proto::perm::write, ids)) return Err::no_auth;
  if (version != -1 && version != n->version) return Err::bad_version;
  int64_t bytes_diff = static_cast<int64_t>(data.size()) - static_cast<int64_t>(n->data.size());
  if (Err q = quota_check(path, bytes_diff, 0); q != Err::ok) return q;
  auto u = std::make_shared<Journal::Undo>();
  u->kind = Journal::Undo::data_set;
  u->path = std::string(path);
  u->old_version = n->version;
  u->old_mzxid = n->mzxid;
  u->old_mtime = n->mtime;
  data_bytes_ += static_cast<int64_t>(data.size()) - static_cast<int64_t>(n->data.size());
  digest_ -= node_digest(path, *n);
  if (j.record_undo_) u->old_data = std::move(n->data);
  n->data.assign(data);
  u->old_null = n->data_null;
  n->data_null = data_null;
  n->version++;
  n->mzxid = zxid;
  n->mtime = time;
  digest_ += node_digest(path, *n);
  quota_account(path, bytes_diff, 0);
  j.changes.push_back({Change::data_changed, std::string(path), n->acl});
  push_undo(j, std::move(u));
  if (out) *out = stat(*n);
  return Err::ok;
}

Err DataTree::check(std::string_view path, int32_t version, const Ids& ids) const {
  if (proto::path_error(path)) return Err::bad_arguments;
  const Node* n = find(path);
  if (!n) return Err::no_node;
  if (!permitted(acls_[n->acl], proto::perm::read, ids)) return Err::no_auth;
  if (version != -1 && version != n->version) return Err::bad_version;
  return Err::ok;
}

Err DataTree::set_acl(std::string_view path, const proto::AclList& acl, int32_t version, const Ids& ids,
                      proto::Stat* out) {
  if (proto::path_error(path)) return Err::bad_arguments;
  proto::AclList fixed;
  if (!fixup_acl(acl, ids, fixed)) return Err::invalid_acl;
  Node* n = find_mut(path);
  if (!n) return Err::no_node;
  if (!permitted(acls_[n->acl], proto::perm::admin, ids)) return Err::no_auth;
  if (version != -1 && version != n->aversion) return Err::bad_version;
  digest_ -= node_digest(path, *n);
  n->acl = intern_acl(fixed);
  n->aversion++;
  digest_ += node_digest(path, *n);
  if (out) *out = stat(*n);
  return Err::ok;
}

void DataTree::rollback(Journal& j) {
  for (auto it = j.undo_.rbegin(); it != j.undo_.rend(); ++it) {
    Journal::Undo& u = **it;
    switch (u.kind) {
      case Journal::Undo::created: {
        auto node = nodes_.find(u.path);
        Node* parent = find_mut(proto::parent_path(u.path));
        parent->children->erase(proto::base_name(node->first));
        parent->cversion = u.parent_cversion;
        parent->pzxid = u.parent_pzxid;
        data_bytes_ -= static_cast<int64_t>(u.path.size() + node->second.data.size());
        if (is_session_owner(node->second.ephemeral_owner)) {
          auto s = sessions_.find(node->second.ephemeral_owner);
          if (s != sessions_.end()) s->second.ephemerals.erase(u.path);
        } else if (node->second.ephemeral_owner != 0) {
          containers_.erase(u.path);
        }
        int64_t bytes = static_cast<int64_t>(node->second.data.size());
        digest_ -= node_digest(node->first, node->second);
        nodes_.erase(node);
        quota_node_removed(u.path);
        quota_account(u.path, -bytes, -1);
        break;
      }
      case Journal::Undo::deleted: {
        int64_t owner = u.node.ephemeral_owner;
        data_bytes_ += static_cast<int64_t>(u.path.size() + u.node.data.size());
        auto [node, ok] = nodes_.emplace(u.path, std::move(u.node));
        digest_ += node_digest(node->first, node->second);
        Node* parent = find_mut(proto::parent_path(u.path));
        link_child(*parent, *node);
        parent->cversion = u.parent_cversion;
        parent->pzxid = u.parent_pzxid;
        if (is_session_owner(owner)) {
          auto s = sessions_.find(owner);
          if (s != sessions_.end()) s->second.ephemerals.insert(u.path);
        } else if (owner != 0) {
          containers_.insert(u.path);
        }
        quota_node_added(u.path);
        quota_account(u.path, static_cast<int64_t>(node->second.data.size()), 1);
        break;
      }
      case Journal::Undo::data_set: {
        Node* n = find_mut(u.path);
        digest_ -= node_digest(u.path, *n);
        quota_account(u.path, static_cast<int64_t>(u.old_data.size()) - static_cast<int64_t>(n->data.size()), 0);
        data_bytes_ += static_cast<int64_t>(u.old_data.size()) - static_cast<int64_t>(n->data.size());
        n->data = std::move(u.old_data);
        n->data_null = u.old_null;
        n->version = u.old_version;
        n->mzxid = u.old_mzxid;
        n->mtime = u.old_mtime;
        digest_ += node_digest(u.path, *n);
        break;
      }
    }
  }
  j.undo_.clear();
  j.changes.clear();
}

std::vector<std::string> DataTree::ephemerals(int64_t session, std::string_view prefix) const {
  std::vector<std::string> out;
  const SessionRecord* s = this->session(session);
  if (!s) return out;
  for (const std::string& path : s->ephemerals)
    if (path.compare(0, prefix.size(), prefix) == 0) out.push_back(path);
  return out;
}

int64_t DataTree::descendants(std::string_view path) const {
  const Node* n = find(path);
  if (!n) return -1;
  int64_t count = 0;
  std::vector<std::string> stack{std::string(canonical(path))};
  std::string child;
  while (!stack.empty()) {
    std::string p = std::move(stack.back());
    stack.pop_back();
    const Node* node = find(p);
    if (!node || !node->children) continue;
    for (const auto& entry : *node->children) {
      std::string_view c = entry.first;
      ++count;
      child.assign(p == "/" ? "" : p);
      child += '/';
      child += c;
      stack.push_back(child);
    }
  }
  return count;
}

std::vector<std::string> DataTree::expired_containers(int64_t now_ms) const {
  std::vector<std::string> out;
  for (const std::string& path : containers_) {
    const Node* n = find(path);
    if (!n || n->num_children() > 0) continue;
    if (n->ephemeral_owner == kContainerOwner ? n->cversion > 0
                                              : now_ms - n->mtime > (n->ephemeral_owner & kMaxTtlMs))
      out.push_back(path);
  }
  return out;
}

Err DataTree::delete_container(std::string_view path, sdk::Zxid zxid, int64_t now_ms, Journal& j) {
  auto it = nodes_.find(path);
  if (it == nodes_.end()) return Err::no_node;
  const Node& n = it->second;
  if (n.ephemeral_owner != kContainerOwner && !is_ttl_owner(n.ephemeral_owner)) return Err::bad_arguments;
  if (n.num_children() > 0) return Err::not_empty;
  if (is_ttl_owner(n.ephemeral_owner) && now_ms - n.mtime <= (n.ephemeral_owner & kMaxTtlMs)) return Err::bad_arguments;
  erase_node(it, j, zxid);
  return Err::ok;
}

void DataTree::add_session(int64_t id, int32_t timeout_ms, std::string password) {
  SessionRecord& s = sessions_[id];
  s.timeout_ms = timeout_ms;
  s.password = std::move(password);
}

const SessionRecord* DataTree::session(int64_t id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

void DataTree::close_session(int64_t id, sdk::Zxid zxid, Journal& j) {
  auto s = sessions_.find(id);
  if (s == sessions_.end()) return;
  // Deepest first is not needed: ephemerals have no children.
  std::set<std::string> ephemerals = std::move(s->second.ephemerals);
  sessions_.erase(s);
  for (const std::string& path : ephemerals) {
    auto it = nodes_.find(path);
    if (it != nodes_.end()) erase_node(it, j, zxid);
  }
}

}  // namespace corral::kernel

namespace corral::kernel {

void DataTree::set_config(std::string text) {
  Node* n = find_mut("/zookeeper/config");
  if (!n) return;
  data_bytes_ += static_cast<int64_t>(text.size()) - static_cast<int64_t>(n->data.size());
  n->data = std::move(text);
  n->data_null = false;
}

void DataTree::install_config(std::string_view text, sdk::Zxid zxid, int64_t time, proto::Stat* out, Journal& j) {
  Node* n = find_mut("/zookeeper/config");
  if (!n) return;
  set_config(std::string(text));
  n->version = -1;
  n->mzxid = zxid;
  n->mtime = time;
  j.changes.push_back({Change::data_changed, "/zookeeper/config", n->acl});
  if (out) *out = stat(*n);
}

}  // namespace corral::kernel

// ---------------------------------------------------------------- quotas

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
        if (key == "count") f.count = v;
        else if (key == "bytes") f.bytes = v;
        else if (key == "countHardLimit") f.count_hard = v;
        else if (key == "byteHardLimit") f.bytes_hard = v;
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
  if (path.size() <= kQuotaRoot.size() + kind.size() + 2 || path.substr(0, kQuotaRoot.size()) != kQuotaRoot ||
      path[kQuotaRoot.size()] != '/' || proto::base_name(path) != kind)
    return {};
  return path.substr(kQuotaRoot.size(), path.size() - kQuotaRoot.size() - kind.size() - 1);
}

std::string stats_path(std::string_view target) {
  return std::string(kQuotaRoot) + std::string(target) + "/" + std::string(kStatsNode);
}

}  // namespace

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
  QuotaFigures f = parse_figures(stats->data);
  f.count = std::max<int64_t>(f.count, 0) + count;
  f.bytes = std::max<int64_t>(f.bytes, 0) + bytes;
  std::string text = "count=" + std::to_string(f.count) + ",bytes=" + std::to_string(f.bytes);
  data_bytes_ += static_cast<int64_t>(text.size()) - static_cast<int64_t>(stats->data.size());
  digest_ -= node_digest(stats_name, *stats);
  stats->data = std::move(text);
  stats->data_null = false;
  digest_ += node_digest(stats_name, *stats);
}

void DataTree::quota_recount(std::string_view target) {
  const std::string stats_name = stats_path(target);
  Node* stats = find_mut(stats_name);
  if (!stats) return;
  int64_t count = 0, bytes = 0;
  std::vector<std::string> todo{std::string(target)};
  while (!todo.empty()) {
    std::string p = std::move(todo.back());
    todo.pop_back();
    const Node* n = find(p);
    if (!n) continue;
    ++count;
    bytes += static_cast<int64_t>(n->data.size());
    if (n->children)
      for (const auto& entry : *n->children) todo.push_back((p == "/" ? "" : p) + "/" + std::string(entry.first));
  }
  std::string text = "count=" + std::to_string(count) + ",bytes=" + std::to_string(bytes);
  data_bytes_ += static_cast<int64_t>(text.size()) - static_cast<int64_t>(stats->data.size());
  digest_ -= node_digest(stats_name, *stats);
  stats->data = std::move(text);
  digest_ += node_digest(stats_name, *stats);
}

void DataTree::quota_node_added(std::string_view path) {
  if (std::string_view t = quota_target(path, kLimitsNode); !t.empty()) quota_paths_.emplace(t);
  else if (std::string_view s = quota_target(path, kStatsNode); !s.empty()) quota_recount(s);
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
  const Node* limits = find(std::string(kQuotaRoot) + std::string(target) + "/" + std::string(kLimitsNode));
  const Node* stats = find(stats_path(target));
  if (!limits || !stats) return Err::ok;
  QuotaFigures limit = parse_figures(limits->data), now = parse_figures(stats->data);
  if (count != 0 && limit.count_hard > -1 && now.count + count > limit.count_hard) return Err::quota_exceeded;
  if (bytes != 0 && limit.bytes_hard > -1 && now.bytes + bytes > limit.bytes_hard) return Err::quota_exceeded;
  return Err::ok;
}

void DataTree::quota_rebuild() {
  quota_paths_.clear();
  // Only the /zookeeper/quota subtree can hold limits: walk it, not the tree.
  std::vector<std::string> todo{std::string(kQuotaRoot)};
  while (!todo.empty()) {
    std::string path = std::move(todo.back());
    todo.pop_back();
    auto it = nodes_.find(path);
    if (it == nodes_.end()) continue;
    if (std::string_view t = quota_target(it->first, kLimitsNode); !t.empty()) quota_paths_.emplace(t);
    if (it->second.children)
      for (const auto& entry : *it->second.children) todo.push_back(path + "/" + std::string(entry.first));
  }
  for (const std::string& t : std::set<std::string, std::less<>>(quota_paths_)) quota_recount(t);
}

}  // namespace corral::kernel
