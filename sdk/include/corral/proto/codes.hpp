// ZooKeeper protocol constants: opcodes, error codes, watch event types,
// session states and create modes, with the values clients put on the wire.
#pragma once

#include <cstdint>

namespace corral::proto {

enum class OpCode : int32_t {
  notification = 0,
  create = 1,
  remove = 2,  // "delete"
  exists = 3,
  get_data = 4,
  set_data = 5,
  get_acl = 6,
  set_acl = 7,
  get_children = 8,
  sync = 9,
  ping = 11,
  get_children2 = 12,
  check = 13,
  multi = 14,
  create2 = 15,
  reconfig = 16,
  check_watches = 17,
  remove_watches = 18,
  create_container = 19,
  delete_container = 20,
  create_ttl = 21,
  multi_read = 22,
  auth = 100,
  set_watches = 101,
  sasl = 102,
  get_ephemerals = 103,
  get_all_children_number = 104,
  set_watches2 = 105,
  add_watch = 106,
  who_am_i = 107,
  create_session = -10,
  close_session = -11,
  error = -1,
};
// How a server handles each opcode: one table (codes.cpp) gives the name and
// the kind of every opcode ZooKeeper 3.9 knows.
enum class OpKind : uint8_t {
  unknown,     // no ZooKeeper knows it: the connection closes
  write,       // ordered by consensus: create*, delete, setData, setACL, check, multi
  local_read,  // answered from this server's tree in the session's turn (ping and watch bookkeeping
               // too)
  sync,        // sync: waits for the leader
  reconfig,    // ordered by consensus after the leader's reconfig checks
  session,     // auth, SASL, createSession, closeSession: the session's own
  other,       // known and not performed here (deleteContainer, notification, error)
};
const char* opcode_name(int32_t op) noexcept;  // "create", "getData", ... or "unknown"
OpKind op_kind(int32_t op) noexcept;

// Reserved xids in request and reply headers.
inline constexpr int32_t kXidNotification = -1;
inline constexpr int32_t kXidPing = -2;
inline constexpr int32_t kXidAuth = -4;
inline constexpr int32_t kXidSetWatches = -8;

enum class Err : int32_t {
  ok = 0,
  system_error = -1,
  runtime_inconsistency = -2,
  data_inconsistency = -3,
  connection_loss = -4,
  marshalling_error = -5,
  unimplemented = -6,
  operation_timeout = -7,
  bad_arguments = -8,
  unknown_session = -12,
  new_config_no_quorum = -13,
  reconfig_in_progress = -14,
  api_error = -100,
  no_node = -101,
  no_auth = -102,
  bad_version = -103,
  no_children_for_ephemerals = -108,
  node_exists = -110,
  not_empty = -111,
  session_expired = -112,
  invalid_callback = -113,
  invalid_acl = -114,
  auth_failed = -115,
  session_moved = -118,
  not_read_only = -119,
  ephemeral_on_local_session = -120,
  no_watcher = -121,
  reconfig_disabled = -123,
  session_closed_require_sasl_auth = -124,
  quota_exceeded = -125,
  throttled_op = -127,
};
const char* err_name(Err e) noexcept;  // "NONODE", "NODEEXISTS", ...

enum class EventType : int32_t {
  none = -1,
  node_created = 1,
  node_deleted = 2,
  node_data_changed = 3,
  node_children_changed = 4,
  data_watch_removed = 5,
  child_watch_removed = 6,
  persistent_watch_removed = 7,
};

enum class KeeperState : int32_t {
  disconnected = 0,
  sync_connected = 3,
  auth_failed = 4,
  connected_read_only = 5,
  sasl_authenticated = 6,
  expired = -112,
  closed = 7,
};

// CreateRequest.flags.
enum class CreateMode : int32_t {
  persistent = 0,
  ephemeral = 1,
  persistent_sequential = 2,
  ephemeral_sequential = 3,
  container = 4,
  persistent_with_ttl = 5,
  persistent_sequential_with_ttl = 6,
};
inline bool is_sequential(CreateMode m) {
  return m == CreateMode::persistent_sequential || m == CreateMode::ephemeral_sequential ||
         m == CreateMode::persistent_sequential_with_ttl;
}
inline bool is_ephemeral(CreateMode m) {
  return m == CreateMode::ephemeral || m == CreateMode::ephemeral_sequential;
}

// ACL permission bits.
namespace perm {
inline constexpr int32_t read = 1, write = 2, create = 4, remove = 8, admin = 16, all = 31;
}

// jute.maxbuffer's default: the largest frame a server accepts.
inline constexpr int32_t kMaxFrame = 0xfffff;

}  // namespace corral::proto
