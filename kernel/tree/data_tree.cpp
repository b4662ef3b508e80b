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
  // deleted: the node as it was (childless by precondition), out of the tree.
  NodePtr node;
  // data_set: the previous data and stat fields.
  std::string old_data;
  bool old_null = false;
  int32_t old_version = 0;
  int64_t old_mzxid = 0, old_mtime = 0;
};

DataTree::~DataTree() = default;
DataTree::DataTree(DataTree&&) noexcept = default;
// A snapshot under way on this tree ends with the nodes it walked.
DataTree& DataTree::operator=(DataTree&&) noexcept = default;

DataTree::DataTree() {
  intern_acl(proto::open_acl_unsafe());
  nodes_.set_root(Node::make("/", "").release());
  data_bytes_ = 1;
  for (const char* p : {"/zookeeper", "/zookeeper/quota", "/zookeeper/config"}) {
    adopt(Node::make(p, ""), *find_mut(proto::parent_path(p)));
    data_bytes_ += static_cast<int64_t>(std::strlen(p));
  }
  // The ACL ZooKeeper gives /zookeeper/config (read-only for everyone);
  // stored, not yet enforced.
  find_mut("/zookeeper/config")->acl =
      intern_acl({proto::Acl{proto::perm::read, {"world", "anyone"}}});
  nodes_.for_each([&](const Node* n) { ref_acl(n->acl); });
  nodes_.for_each([&](const Node* n) { digest_ += node_digest(n->path(), *n); });
}

uint64_t DataTree::node_digest(std::string_view path, const Node& n, int32_t aversion) {
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
  bytes(n.data());
  word(static_cast<uint64_t>(n.mzxid));
  word((static_cast<uint64_t>(static_cast<uint32_t>(n.version)) << 32) |
       static_cast<uint32_t>(aversion));
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

namespace {
// ZooKeeper's tree answers to "" as well as "/" for the root.
std::string_view canonical(std::string_view path) {
  return path.empty() ? std::string_view("/") : path;
}

// The parent of `path` as ZooKeeper's request processor finds it: everything
// before the last '/', the root when that is empty; false when there is no '/'.
bool parent_of(std::string_view path, std::string_view& parent) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return false;
  parent = canonical(path.substr(0, slash));
  return true;
}
}  // namespace

const Node* DataTree::find(std::string_view path) const { return nodes_.find(canonical(path)); }
Node* DataTree::find_mut(std::string_view path) { return nodes_.find(canonical(path)); }

proto::Stat DataTree::stat(const Node& n) const {
  proto::Stat s;
  s.czxid = n.czxid;
  s.mzxid = n.mzxid;
  s.ctime = n.ctime;
  s.mtime = n.mtime;
  s.version = n.version;
  s.cversion = n.cversion();
  s.aversion = n.aversion();
  const int64_t owner = n.ephemeral_owner();
  s.ephemeral_owner = is_session_owner(owner) ? owner : 0;
  s.data_length = static_cast<int32_t>(n.data().size());
  s.num_children = n.num_children();
  s.pzxid = n.pzxid();
  return s;
}

std::vector<std::string> DataTree::children(const Node& n) const {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(n.num_children()));
  n.children().for_each([&](const Node* c) { out.emplace_back(c->name()); });
  return out;
}

std::string DataTree::acl_key(const proto::AclList& acl) {
  std::string key;
  for (const proto::Acl& a : acl) {
    auto put = [&](uint32_t v) { key.append(reinterpret_cast<const char*>(&v), sizeof v); };
    put(static_cast<uint32_t>(a.perms));
    put(static_cast<uint32_t>(a.id.scheme.size()));
    key += a.id.scheme;
    put(static_cast<uint32_t>(a.id.id.size()));
    key += a.id.id;
  }
  return key;
}

uint32_t DataTree::intern_acl(const proto::AclList& acl) {
  // Most writes carry the ACL the last one did.
  if (acl_last_ < acls_.size() && !acls_[acl_last_].empty() && acls_[acl_last_] == acl)
    return acl_last_;
  std::string key = acl_key(acl);
  auto it = acl_index_.find(key);
  if (it != acl_index_.end()) return acl_last_ = it->second;
  uint32_t at;
  if (!acl_free_.empty()) {
    at = *acl_free_.begin();
    acl_free_.erase(acl_free_.begin());
    acls_[at] = acl;
    acl_refs_[at] = 0;
  } else {
    at = static_cast<uint32_t>(acls_.size());
    acls_.push_back(acl);
    acl_refs_.push_back(0);
  }
  acl_index_.emplace(std::move(key), at);
  // A new entry unused until a node takes it; if none does (the write
  // failed), the next purge frees it.
  acl_unused_.push_back(at);
  return acl_last_ = at;
}

void DataTree::unref_acl(uint32_t index) {
  if (--acl_refs_[index] == 0) acl_unused_.push_back(index);
}

void DataTree::purge_acls() {
  if (acl_unused_.empty()) return;
  for (uint32_t i : acl_unused_) {
    if (acl_refs_[i] != 0 || acls_[i].empty()) continue;  // used again, or freed already
    acl_index_.erase(acl_key(acls_[i]));
    acls_[i] = {};
    acl_free_.insert(i);
  }
  acl_unused_.clear();
}

void DataTree::recount_acls(std::vector<uint32_t> refs) {
  acl_refs_ = std::move(refs);
  acl_refs_.resize(acls_.size(), 0);
  acl_index_.clear();
  acl_free_.clear();
  acl_unused_.clear();
  acl_last_ = 0;
  for (uint32_t i = 0; i < acls_.size(); ++i) {
    if (acl_refs_[i] == 0 || acls_[i].empty() || !acl_index_.emplace(acl_key(acls_[i]), i).second) {
      // Unused, or a second copy of a list (an older table): free the slot;
      // nodes that pointed at a copy move to the first.
      if (acl_refs_[i] != 0) {
        uint32_t first = acl_index_[acl_key(acls_[i])];
        nodes_.for_each([&](const Node* n) {
          if (n->acl == i) const_cast<Node*>(n)->acl = first;
        });
        acl_refs_[first] += acl_refs_[i];
        acl_refs_[i] = 0;
      }
      acls_[i] = {};
      acl_free_.insert(i);
    }
  }
}

Node* DataTree::adopt(NodePtr n, Node& parent) {
  Node* node = n.release();
  nodes_.link(node, parent);
  return node;
}

NodePtr DataTree::release(Node* n, Node& parent) {
  nodes_.unlink(n, parent);
  return NodePtr(n);
}

Node* DataTree::replace_data(Node* n, std::string_view data, bool data_null) {
  touch(n);
  if (n->data_fits(data.size())) {
    n->assign_data(data, data_null);
    return n;
  }
  NodePtr moved = Node::with_data(*n, data, data_null);
  mark_new(moved.get());
  Node* parent = n->path() == "/" ? nullptr : find_mut(proto::parent_path(n->path()));
  if (parent) touch(parent);  // its child set changes
  nodes_.replace(n, moved.get(), parent);
  NodePtr old(n);
  return moved.release();
}

std::shared_ptr<Journal::Undo> DataTree::child_undo(const Journal& j, int kind,
                                                    std::string_view path, const Node& parent) {
  if (!j.record_undo_) return nullptr;
  auto u = std::make_shared<Journal::Undo>();
  u->kind = static_cast<Journal::Undo::Kind>(kind);
  u->path = std::string(path);
  u->parent_cversion = parent.cversion();
  u->parent_pzxid = parent.pzxid();
  return u;
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
  std::string_view parent_name;
  if (path.find('\0') != std::string_view::npos || !parent_of(path, parent_name))
    return Err::bad_arguments;
  // Open to everyone (the ACL most nodes have) stays as it is; any other ACL
  // is checked and completed as ZooKeeper does.
  proto::AclList fixed;
  const bool open = acl.size() == 1 && acl[0].id.scheme == "world" && acl[0].id.id == "anyone";
  if (!open && !fixup_acl(acl, ids, fixed)) return Err::invalid_acl;
  Node* parent = find_mut(parent_name);
  if (!parent) return Err::no_node;
  if (!permitted(acls_[parent->acl], proto::perm::create, ids)) return Err::no_auth;
  std::string name(path);
  if (sequential) {
    // The counter is the number of children ever created. cversion counts
    // creations and deletions alike, so derive it as ZooKeeper does.
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "%010d",
                  (parent->cversion() + parent->num_children()) / 2);
    name += suffix;
  }
  if (proto::path_error(name)) return Err::bad_arguments;
  const std::string_view leaf = std::string_view(name).substr(name.rfind('/') + 1);
  const uint64_t hash = hash_key(leaf);
  // An empty leaf is the root's: "/" is its own parent.
  if (leaf.empty() || parent->children().find(leaf, hash)) return Err::node_exists;
  if (is_session_owner(parent->ephemeral_owner())) return Err::no_children_for_ephemerals;
  if (Err q = quota_check(name, static_cast<int64_t>(data.size()), 1); q != Err::ok) return q;

  std::shared_ptr<Journal::Undo> u = child_undo(j, Journal::Undo::created, name, *parent);

  NodePtr fresh = Node::make(name, data, data_null);
  fresh->czxid = fresh->mzxid = zxid;  // pzxid is czxid
  fresh->ctime = fresh->mtime = time;
  bool owned = proto::is_ephemeral(mode) || mode == CreateMode::container ||
               mode == CreateMode::persistent_with_ttl ||
               mode == CreateMode::persistent_sequential_with_ttl;
  fresh->set_ephemeral_owner(owned ? owner : 0);
  fresh->acl = intern_acl(open ? acl : fixed);
  ref_acl(fresh->acl);
  mark_new(fresh.get());
  touch(parent);
  Node* n = fresh.release();
  nodes_.link(n, *parent, hash);  // makes the parent's block: what follows allocates no node
  digest_ += node_digest(name, *n);
  parent->set_cversion(parent->cversion() + 1);
  parent->set_pzxid(zxid);
  data_bytes_ += static_cast<int64_t>(name.size() + data.size());
  if (is_session_owner(n->ephemeral_owner())) {
    auto s = sessions_.find(owner);
    if (s != sessions_.end()) s->second.ephemerals.insert(name);
  } else if (n->ephemeral_owner() != 0) {
    containers_.insert(name);
  }
  // Quota bookkeeping may give a stats node new data, and a new place: the
  // parent may be one (a quota's stats node with children), and so may `n`.
  const uint32_t parent_acl = parent->acl;
  quota_node_added(name);
  quota_account(name, static_cast<int64_t>(data.size()), 1);
  if (quota_may_move(name)) n = find_mut(name);
  j.changes.push_back({Change::created, name, n->acl});
  j.changes.push_back({Change::children_changed, std::string(parent_name), parent_acl});
  if (u) push_undo(j, std::move(u));
  if (out) *out = stat(*n);
  if (created) *created = std::move(name);
  return Err::ok;
}

void DataTree::erase_node(Node* n, Journal& j, sdk::Zxid zxid) {
  std::string path(n->path());
  std::string_view parent_name;
  parent_of(path, parent_name);
  Node* parent = find_mut(parent_name);
  std::shared_ptr<Journal::Undo> u = child_undo(j, Journal::Undo::deleted, path, *parent);
  touch(parent);
  touch(n);
  // The parent has a child, so it has its block: these allocate nothing.
  parent->set_cversion(parent->cversion() + 1);
  if (zxid > parent->pzxid()) parent->set_pzxid(zxid);
  data_bytes_ -= static_cast<int64_t>(path.size() + n->data().size());
  const int64_t owner = n->ephemeral_owner();
  if (is_session_owner(owner)) {
    auto s = sessions_.find(owner);
    if (s != sessions_.end()) s->second.ephemerals.erase(path);
  } else if (owner != 0) {
    containers_.erase(path);
  }
  uint32_t node_acl = n->acl;
  int64_t bytes = static_cast<int64_t>(n->data().size());
  digest_ -= node_digest(path, *n);
  unref_acl(node_acl);
  NodePtr gone = release(n, *parent);
  if (u) u->node = std::move(gone);
  gone.reset();
  const uint32_t parent_acl = parent->acl;  // quota bookkeeping may move the parent
  quota_node_removed(path);
  quota_account(path, -bytes, -1);
  j.changes.push_back({Change::deleted, path, node_acl});
  j.changes.push_back({Change::children_changed, std::string(parent_name), parent_acl});
  if (u) push_undo(j, std::move(u));
}

Err DataTree::remove(std::string_view path, int32_t version, sdk::Zxid zxid, const Ids& ids,
                     Journal& j) {
  std::string_view parent_name;
  if (path.find('\0') != std::string_view::npos || !parent_of(path, parent_name) || path == "/")
    return Err::bad_arguments;
  const Node* parent = find(parent_name);
  if (!parent) return Err::no_node;
  if (!permitted(acls_[parent->acl], proto::perm::remove, ids)) return Err::no_auth;
  // Found by its name in the parent; the whole path must be the node's too
  // ("//a" names a's parent as "/", but no node has that path).
  Node* n = parent->children().find(path.substr(path.rfind('/') + 1));
  if (!n || n->path() != path) return Err::no_node;
  if (version != -1 && version != n->version) return Err::bad_version;
  if (n->num_children() > 0) return Err::not_empty;
  erase_node(n, j, zxid);
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
  int64_t bytes_diff = static_cast<int64_t>(data.size()) - static_cast<int64_t>(n->data().size());
  if (Err q = quota_check(path, bytes_diff, 0); q != Err::ok) return q;
  std::shared_ptr<Journal::Undo> u;
  if (j.record_undo_) {
    u = std::make_shared<Journal::Undo>();
    u->kind = Journal::Undo::data_set;
    u->path = std::string(path);
    u->old_version = n->version;
    u->old_mzxid = n->mzxid;
    u->old_mtime = n->mtime;
    u->old_data = std::string(n->data());
    u->old_null = n->data_null();
  }
  data_bytes_ += bytes_diff;
  digest_ -= node_digest(path, *n);
  n = replace_data(n, data, data_null);
  n->version++;
  n->mzxid = zxid;
  n->mtime = time;
  digest_ += node_digest(path, *n);
  quota_account(path, bytes_diff, 0);
  if (quota_may_move(path)) n = find_mut(path);
  j.changes.push_back({Change::data_changed, std::string(path), n->acl});
  if (u) push_undo(j, std::move(u));
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

Err DataTree::set_acl(std::string_view path, const proto::AclList& acl, int32_t version,
                      const Ids& ids, proto::Stat* out) {
  if (proto::path_error(path)) return Err::bad_arguments;
  proto::AclList fixed;
  if (!fixup_acl(acl, ids, fixed)) return Err::invalid_acl;
  Node* n = find_mut(path);
  if (!n) return Err::no_node;
  if (!permitted(acls_[n->acl], proto::perm::admin, ids)) return Err::no_auth;
  if (version != -1 && version != n->aversion()) return Err::bad_version;
  // What may allocate comes first: the ACL's entry (an unused one is
  // reclaimed later) and the node's block for its aversion.
  const uint64_t before = node_digest(path, *n);
  const uint32_t now = intern_acl(fixed);
  touch(n);
  n->set_aversion(n->aversion() + 1);
  const uint32_t was = n->acl;
  n->acl = now;
  ref_acl(now);
  unref_acl(was);
  digest_ += node_digest(path, *n) - before;
  if (out) *out = stat(*n);
  return Err::ok;
}

void DataTree::rollback(Journal& j) {
  // Every node this changes was touched by the change it undoes, in the
  // same entry: a snapshot under way has kept what it needs of them.
  for (auto it = j.undo_.rbegin(); it != j.undo_.rend(); ++it) {
    Journal::Undo& u = **it;
    switch (u.kind) {
      case Journal::Undo::created: {
        Node* node = find_mut(u.path);
        Node* parent = find_mut(proto::parent_path(u.path));
        parent->set_cversion(u.parent_cversion);
        parent->set_pzxid(u.parent_pzxid);
        data_bytes_ -= static_cast<int64_t>(u.path.size() + node->data().size());
        const int64_t owner = node->ephemeral_owner();
        if (is_session_owner(owner)) {
          auto s = sessions_.find(owner);
          if (s != sessions_.end()) s->second.ephemerals.erase(u.path);
        } else if (owner != 0) {
          containers_.erase(u.path);
        }
        int64_t bytes = static_cast<int64_t>(node->data().size());
        digest_ -= node_digest(u.path, *node);
        unref_acl(node->acl);
        release(node, *parent);
        quota_node_removed(u.path);
        quota_account(u.path, -bytes, -1);
        break;
      }
      case Journal::Undo::deleted: {
        int64_t owner = u.node->ephemeral_owner();
        int64_t bytes = static_cast<int64_t>(u.node->data().size());
        data_bytes_ += static_cast<int64_t>(u.path.size()) + bytes;
        Node* parent = find_mut(proto::parent_path(u.path));
        Node* node = adopt(std::move(u.node), *parent);
        ref_acl(node->acl);
        digest_ += node_digest(u.path, *node);
        parent->set_cversion(u.parent_cversion);
        parent->set_pzxid(u.parent_pzxid);
        if (is_session_owner(owner)) {
          auto s = sessions_.find(owner);
          if (s != sessions_.end()) s->second.ephemerals.insert(u.path);
        } else if (owner != 0) {
          containers_.insert(u.path);
        }
        quota_node_added(u.path);
        quota_account(u.path, bytes, 1);
        break;
      }
      case Journal::Undo::data_set: {
        Node* n = find_mut(u.path);
        int64_t diff =
            static_cast<int64_t>(u.old_data.size()) - static_cast<int64_t>(n->data().size());
        digest_ -= node_digest(u.path, *n);
        quota_account(u.path, diff, 0);
        if (quota_may_move(u.path)) n = find_mut(u.path);
        data_bytes_ += diff;
        n = replace_data(n, u.old_data, u.old_null);
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
  std::vector<const Node*> stack{n};
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    count += node->num_children();
    node->children().for_each([&](const Node* c) {
      if (c->num_children() > 0) stack.push_back(c);
    });
  }
  return count;
}

std::vector<std::string> DataTree::expired_containers(int64_t now_ms) const {
  std::vector<std::string> out;
  for (const std::string& path : containers_) {
    const Node* n = find(path);
    if (!n || n->num_children() > 0) continue;
    const int64_t owner = n->ephemeral_owner();
    if (owner == kContainerOwner ? n->cversion() > 0 : now_ms - n->mtime > (owner & kMaxTtlMs))
      out.push_back(path);
  }
  return out;
}

Err DataTree::delete_container(std::string_view path, sdk::Zxid zxid, int64_t now_ms, Journal& j) {
  Node* n = find_mut(path);
  if (!n) return Err::no_node;
  const int64_t owner = n->ephemeral_owner();
  if (owner != kContainerOwner && !is_ttl_owner(owner)) return Err::bad_arguments;
  if (n->num_children() > 0) return Err::not_empty;
  if (is_ttl_owner(owner) && now_ms - n->mtime <= (owner & kMaxTtlMs)) return Err::bad_arguments;
  erase_node(n, j, zxid);
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
  for (const std::string& path : ephemerals)
    if (Node* n = find_mut(path)) erase_node(n, j, zxid);
}

}  // namespace corral::kernel

namespace corral::kernel {

void DataTree::set_config(std::string text) {
  Node* n = find_mut("/zookeeper/config");
  if (!n) return;
  data_bytes_ += static_cast<int64_t>(text.size()) - static_cast<int64_t>(n->data().size());
  replace_data(n, text, false);
}

void DataTree::install_config(std::string_view text, sdk::Zxid zxid, int64_t time, proto::Stat* out,
                              Journal& j) {
  if (!find("/zookeeper/config")) return;
  set_config(std::string(text));
  Node* n = find_mut("/zookeeper/config");
  n->version = -1;
  n->mzxid = zxid;
  n->mtime = time;
  j.changes.push_back({Change::data_changed, "/zookeeper/config", n->acl});
  if (out) *out = stat(*n);
}

void DataTree::keep_config_of(const DataTree& from) {
  const Node* src = from.find("/zookeeper/config");
  if (!src || !find("/zookeeper/config")) return;
  set_config(std::string(src->data()));
  Node* n = find_mut("/zookeeper/config");
  n->version = src->version;
  n->mzxid = src->mzxid;
  n->mtime = src->mtime;
}

}  // namespace corral::kernel
