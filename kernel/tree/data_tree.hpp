// The data tree: znodes, their Stat bookkeeping, ACL references and the
// session table, exactly as ZooKeeper's DataTree keeps them.
//
// Deterministic and single-threaded: no clocks (callers pass zxid and time),
// no I/O. Every mutation records the watch-relevant change it made and, when
// asked, an undo record, so that a multi can be rolled back as a whole.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "corral/proto/codes.hpp"
#include "corral/proto/records.hpp"
#include "corral/sdk/status.hpp"
#include "corral/sdk/types.hpp"
#include "session/auth.hpp"
#include "tree/node.hpp"

namespace corral::kernel {

using proto::Err;

// What a mutation did, for watches.
struct Change {
  enum Kind : uint8_t { created, deleted, data_changed, children_changed };
  Kind kind;
  std::string path;
  // The ACL (tree ACL table index) of the node the event is about — the
  // parent's for children_changed — so that persistent watches only report
  // what their owner may read.
  uint32_t acl = 0;
};

// Collects the changes of one operation (or of a multi) and, optionally, how
// to undo them.
class Journal {
 public:
  // Room for the two changes most writes make (a node and its parent).
  explicit Journal(bool record_undo = false) : record_undo_(record_undo) { changes.reserve(2); }
  std::vector<Change> changes;

 private:
  friend class DataTree;
  struct Undo;
  bool record_undo_;
  std::vector<std::shared_ptr<Undo>> undo_;
};

// ZooKeeper's "extended" ephemeral owners: a container's, and a TTL node's
// (top byte 0xff, the TTL in milliseconds below). Clients see 0 for both.
inline constexpr int64_t kContainerOwner = INT64_MIN;
inline constexpr int64_t kMaxTtlMs = (int64_t{1} << 40) - 1;
inline constexpr int64_t ttl_owner(int64_t ttl_ms) {
  return static_cast<int64_t>(0xff00000000000000ULL | static_cast<uint64_t>(ttl_ms));
}
inline constexpr bool is_ttl_owner(int64_t owner) {
  return (static_cast<uint64_t>(owner) >> 56) == 0xff;
}
// A session's ephemeral, as opposed to no owner or a container/TTL node.
inline constexpr bool is_session_owner(int64_t owner) {
  return owner != 0 && owner != kContainerOwner && !is_ttl_owner(owner);
}

struct SessionRecord {
  int32_t timeout_ms = 0;
  std::string password;
  std::set<std::string> ephemerals;
};

class DataTree {
 public:
  // A tree with "/", "/zookeeper", "/zookeeper/quota" and "/zookeeper/config".
  DataTree();
  ~DataTree();
  DataTree(DataTree&&) noexcept;
  DataTree& operator=(DataTree&&) noexcept;

  const Node* find(std::string_view path) const;
  proto::Stat stat(const Node& n) const;
  const proto::AclList& acl(const Node& n) const { return acls_[n.acl]; }
  const proto::AclList& acl_at(uint32_t index) const { return acls_[index]; }
  // Paths of the session's ephemerals under `prefix` (getEphemerals).
  std::vector<std::string> ephemerals(int64_t session, std::string_view prefix) const;
  // Descendants of a node, at every depth (getAllChildrenNumber).
  int64_t descendants(std::string_view path) const;
  // Containers that had children and have none now, and TTL nodes without
  // children unchanged for longer than their TTL at `now_ms`: what the
  // container manager deletes.
  std::vector<std::string> expired_containers(int64_t now_ms) const;
  // Deletes a node found by expired_containers if it still qualifies at
  // `now_ms` (NOTEMPTY, BADARGUMENTS otherwise). No ACL check: the server
  // itself asks.
  Err delete_container(std::string_view path, sdk::Zxid zxid, int64_t now_ms, Journal& j);
  // Children names of a node, unordered (as ZooKeeper returns them).
  std::vector<std::string> children(const Node& n) const;
  // Calls f(const Node&) for every node, parents before their children.
  template <class F>
  void walk(F&& f) const;

  // Every mutation checks, in ZooKeeper's order, the caller's identities
  // `ids` against the ACLs involved (NOAUTH).

  // Creates `path` (with a sequence number appended when sequential). `owner`
  // becomes the node's ephemeral owner when `mode` is ephemeral, container or
  // TTL (a session id, kContainerOwner, ttl_owner(ttl)).
  // Errors as ZooKeeper: BADARGUMENTS (bad path), INVALIDACL, NONODE (no
  // parent), NOAUTH (CREATE on the parent), NODEEXISTS,
  // NOCHILDRENFOREPHEMERALS.
  Err create(std::string_view path, std::string_view data, const proto::AclList& acl,
             proto::CreateMode mode, int64_t owner, sdk::Zxid zxid, int64_t time, const Ids& ids,
             std::string* created, proto::Stat* out, Journal& j, bool data_null = false);
  // BADARGUMENTS, NONODE, NOAUTH (DELETE on the parent), BADVERSION, NOTEMPTY.
  Err remove(std::string_view path, int32_t version, sdk::Zxid zxid, const Ids& ids, Journal& j);
  // BADARGUMENTS, NONODE, NOAUTH (WRITE), BADVERSION.
  Err set_data(std::string_view path, std::string_view data, int32_t version, sdk::Zxid zxid,
               int64_t time, const Ids& ids, proto::Stat* out, Journal& j, bool data_null = false);
  // BADARGUMENTS, NONODE, NOAUTH (READ), BADVERSION; changes nothing.
  Err check(std::string_view path, int32_t version, const Ids& ids) const;
  // BADARGUMENTS, INVALIDACL, NONODE, NOAUTH (ADMIN), BADVERSION (aversion).
  // Not undoable: never part of a multi.
  Err set_acl(std::string_view path, const proto::AclList& acl, int32_t version, const Ids& ids,
              proto::Stat* out);
  // Reverts every mutation recorded in `j` (which must record undo), newest first.
  void rollback(Journal& j);

  // Sessions are replicated state: their ephemerals must outlive a restart.
  void add_session(int64_t id, int32_t timeout_ms, std::string password);
  const SessionRecord* session(int64_t id) const;
  const std::unordered_map<int64_t, SessionRecord>& sessions() const { return sessions_; }
  // Deletes the session's ephemerals (recording their changes) and forgets it.
  void close_session(int64_t id, sdk::Zxid zxid, Journal& j);

  // Quotas, as ZooKeeper keeps them: a node /zookeeper/quota/<path>/zookeeper_limits
  // ("count=N,bytes=B[,countHardLimit=N,byteHardLimit=B]") puts <path> under
  // quota, and its sibling zookeeper_stats holds the subtree's node count and
  // data bytes, kept current by every create, delete and setData below it.
  // With enforcement on (ZooKeeper's zookeeper.enforceQuota), a create or
  // setData that would take the subtree past a hard limit fails with
  // QUOTAEXCEEDED; past a soft limit it is allowed (ZooKeeper only logs).
  void set_enforce_quota(bool on) { enforce_quota_ = on; }
  // The paths under quota (for tests and `dump`).
  const std::set<std::string, std::less<>>& quota_paths() const { return quota_paths_; }

  // The data of /zookeeper/config: an ensemble's members as ZooKeeper lists
  // them. Set by every server from its configuration, not through the log.
  void set_config(std::string text);
  // A committed reconfig: /zookeeper/config takes `text` with ZooKeeper's
  // stat for it (version -1, mzxid and mtime of the entry), and watchers of
  // the node hear NodeDataChanged.
  void install_config(std::string_view text, sdk::Zxid zxid, int64_t time, proto::Stat* out,
                      Journal& j);
  // A restored tree keeps the ensemble's membership: /zookeeper/config's
  // data and stat as `from` has them.
  void keep_config_of(const DataTree& from);

  // A digest of the whole tree (every node's path, data, mzxid, version and
  // aversion, combined so that order does not matter), kept current by every
  // mutation: replicas that applied the same entries have the same digest.
  // `hash` prints it by zxid so that operators can compare servers.
  uint64_t digest() const { return digest_; }
  // The digest's term for one node; added when the node appears or changes
  // to this state, subtracted when it leaves it.
  static uint64_t node_digest(std::string_view path, const Node& n) {
    return node_digest(path, n, n.aversion());
  }
  // The same with the node's aversion given (a snapshot's loader reads it
  // from the record).
  static uint64_t node_digest(std::string_view path, const Node& n, int32_t aversion);

  size_t node_count() const { return nodes_.size(); }
  // Frees the ACL entries that no node has used since the last call.
  void purge_acls();
  // ACL entries in use (distinct lists that some node has).
  size_t acl_count() const { return acl_index_.size(); }
  // Bytes of data and path names held (mntr's zk_approximate_data_size).
  int64_t approximate_data_size() const { return data_bytes_; }

  // Snapshot: the whole tree and session table as msgpack, in chunks.
  // Children come in no particular order: two trees that are equal may give
  // different bytes (compare digests, or what deserialize makes of them).
  void serialize(const std::function<void(std::string_view)>& sink) const;
  static sdk::Result<DataTree> deserialize(std::string_view bytes);

  // A snapshot written by the tree's own thread while it keeps serving,
  // instead of from a forked copy: begin_snapshot() fixes what it holds (the
  // tree as it is then) and writes its header, ACLs and sessions; each
  // snapshot_step() writes up to `budget` more nodes. A mutation in between
  // first keeps a copy of each node it changes or removes that the snapshot
  // has not written yet (and of its children's addresses), so that the
  // bytes are exactly those serialize() would have given at the start.
  // Chunks go to `sink` as serialize() passes them. One at a time: 0 when
  // one is under way already.
  uint64_t begin_snapshot(std::function<void(std::string_view)> sink);
  enum class SnapshotStep : uint8_t { more, done, gone };
  // `gone`: no snapshot `id` is under way (it ended, or the tree was
  // replaced by another), or it ended with copies it never wrote (a bug:
  // snapshot_left() says how many).
  SnapshotStep snapshot_step(uint64_t id, size_t budget);
  size_t snapshot_left() const { return walk_left_; }
  // Abandons snapshot `id` if it is under way. The nodes it had not reached
  // are marked afterwards, a few at a time (settle_snapshot), not at once.
  void end_snapshot(uint64_t id);
  // Marks up to `budget` more of the nodes an abandoned snapshot had not
  // reached; true once none is left (and then always, until another is
  // abandoned). Until then begin_snapshot() gives 0. The state machine calls
  // it once an entry.
  bool settle_snapshot(size_t budget);
  // Bytes of copies kept for the snapshot under way, or of the children's
  // addresses an abandoned one still holds while it settles (0 when none).
  size_t snapshot_kept_bytes() const;

 private:
  Node* find_mut(std::string_view path);
  // The ACL table: each distinct list once, found by its content, counted
  // by the nodes that use it. A list no node uses any more is purged at the
  // start of the next entry (watches of the entry that dropped it still
  // read it) and its slot reused, lowest first, so that every member's
  // table follows from its nodes alone.
  uint32_t intern_acl(const proto::AclList& acl);
  void ref_acl(uint32_t index) { ++acl_refs_[index]; }
  void unref_acl(uint32_t index);
  static std::string acl_key(const proto::AclList& acl);
  // Takes the nodes' references to each entry, counted as a snapshot was
  // loaded, and frees what none uses.
  void recount_acls(std::vector<uint32_t> refs);
  // Puts a node into its parent's child set; the tree owns it from then on.
  Node* adopt(NodePtr n, Node& parent);
  // Takes a childless node out of its parent's child set.
  NodePtr release(Node* n, Node& parent);
  // Gives `n` new data, moving it to a new allocation when the data does
  // not fit where it is; returns where the node is now.
  Node* replace_data(Node* n, std::string_view data, bool data_null);
  void erase_node(Node* n, Journal& j, sdk::Zxid zxid);
  // Called before `n` changes in any way (its fields, data or child set)
  // or leaves the tree: while a snapshot is under way and has not written
  // `n`, keeps what it must write for it.
  void touch(Node* n) {
    if (walk_ && n->snapshot_mark() != mark_) keep_for_snapshot(n);
  }
  void keep_for_snapshot(Node* n);
  struct SnapshotWalk;
  // Puts more of the open node's children onto the walk's stack; returns
  // what is left of `budget` (nodes).
  size_t open_children(SnapshotWalk& w, size_t budget);
  // Moves the walk on by up to `budget` nodes, writing them unless it is
  // draining; true when no node is left to reach.
  bool walk_on(SnapshotWalk& w, size_t budget);
  // A node that was not in the tree when the snapshot under way began: it
  // takes no part in it.
  void mark_new(Node* n) { n->set_snapshot_mark(mark_); }
  void push_undo(Journal& j, std::shared_ptr<Journal::Undo> u);
  // How to undo creating or deleting the child `path` of `parent` (a
  // Journal::Undo::Kind); null when `j` records no undo.
  static std::shared_ptr<Journal::Undo> child_undo(const Journal& j, int kind,
                                                   std::string_view path, const Node& parent);

  // The longest path under quota that is `path` or one of its ancestors
  // (never "/"); empty when none.
  std::string_view quota_prefix(std::string_view path) const;
  // Adds to the zookeeper_stats of the quota covering `path`, if any.
  void quota_account(std::string_view path, int64_t bytes, int64_t count);
  // Whether quota bookkeeping may give the node at `path` new data (and a
  // new place): only nodes under /zookeeper/quota/ are stats nodes.
  static bool quota_may_move(std::string_view path);
  // A node under /zookeeper/quota appeared or went: limits nodes put their
  // path under quota (or take it out); a new stats node is filled in.
  void quota_node_added(std::string_view path);
  void quota_node_removed(std::string_view path);
  // Recounts the subtree of `path` into its stats node.
  void quota_recount(std::string_view path);
  // QUOTAEXCEEDED if enforcement is on and the change passes a hard limit.
  Err quota_check(std::string_view path, int64_t bytes, int64_t count) const;
  // After a snapshot is loaded.
  void quota_rebuild();

  NodeTable nodes_;
  uint64_t digest_ = 0;
  std::set<std::string, std::less<>> quota_paths_;
  bool enforce_quota_ = false;
  std::vector<proto::AclList> acls_;
  std::vector<uint32_t> acl_refs_;                       // nodes using each entry
  std::unordered_map<std::string, uint32_t> acl_index_;  // acl_key -> entry
  std::set<uint32_t> acl_free_;                          // purged entries, for reuse
  std::vector<uint32_t> acl_unused_;                     // dropped to 0 since the last purge
  uint32_t acl_last_ = 0;                                // the last one interned
  std::unordered_map<int64_t, SessionRecord> sessions_;
  std::set<std::string> containers_;  // container and TTL nodes
  int64_t data_bytes_ = 0;
  // The snapshot written while serving, if one is under way.
  struct WalkDeleter {
    void operator()(SnapshotWalk* w) const noexcept;
  };
  std::unique_ptr<SnapshotWalk, WalkDeleter> walk_;
  // The mark of every node written by (or not part of) the last snapshot
  // begun; begin_snapshot() flips it, so that every node is then unwritten.
  bool mark_ = false;
  size_t walk_left_ = 0;  // copies the last walk to end never wrote
};

template <class F>
void DataTree::walk(F&& f) const {
  std::vector<const Node*> stack{find("/")};
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    f(*n);
    n->children().for_each([&](const Node* c) { stack.push_back(c); });
  }
}

}  // namespace corral::kernel
