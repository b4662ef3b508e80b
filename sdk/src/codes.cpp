#include "corral/proto/codes.hpp"

#include <cstddef>

namespace corral::proto {

namespace {

struct OpInfo {
  OpCode code;
  const char* name;
  OpKind kind;
};

// Every opcode ZooKeeper 3.9 knows.
constexpr OpInfo kOps[] = {
    {OpCode::notification, "notification", OpKind::other},
    {OpCode::create, "create", OpKind::write},
    {OpCode::remove, "delete", OpKind::write},
    {OpCode::exists, "exists", OpKind::local_read},
    {OpCode::get_data, "getData", OpKind::local_read},
    {OpCode::set_data, "setData", OpKind::write},
    {OpCode::get_acl, "getACL", OpKind::local_read},
    {OpCode::set_acl, "setACL", OpKind::write},
    {OpCode::get_children, "getChildren", OpKind::local_read},
    {OpCode::sync, "sync", OpKind::sync},
    {OpCode::ping, "ping", OpKind::local_read},
    {OpCode::get_children2, "getChildren2", OpKind::local_read},
    {OpCode::check, "check", OpKind::write},
    {OpCode::multi, "multi", OpKind::write},
    {OpCode::create2, "create2", OpKind::write},
    {OpCode::reconfig, "reconfig", OpKind::reconfig},
    {OpCode::check_watches, "checkWatches", OpKind::local_read},
    {OpCode::remove_watches, "removeWatches", OpKind::local_read},
    {OpCode::create_container, "createContainer", OpKind::write},
    {OpCode::delete_container, "deleteContainer", OpKind::other},
    {OpCode::create_ttl, "createTTL", OpKind::write},
    {OpCode::multi_read, "multiRead", OpKind::local_read},
    {OpCode::auth, "auth", OpKind::session},
    {OpCode::set_watches, "setWatches", OpKind::local_read},
    {OpCode::sasl, "sasl", OpKind::session},
    {OpCode::get_ephemerals, "getEphemerals", OpKind::local_read},
    {OpCode::get_all_children_number, "getAllChildrenNumber", OpKind::local_read},
    {OpCode::set_watches2, "setWatches2", OpKind::local_read},
    {OpCode::add_watch, "addWatch", OpKind::local_read},
    {OpCode::who_am_i, "whoAmI", OpKind::local_read},
    {OpCode::create_session, "createSession", OpKind::session},
    {OpCode::close_session, "closeSession", OpKind::session},
    {OpCode::error, "error", OpKind::other},
};

// Opcodes run from -11 to 107: an index by code, built once from kOps.
constexpr int32_t kLowest = -11, kHighest = 107;
struct Index {
  int8_t at[kHighest - kLowest + 1];
  constexpr Index() : at() {
    for (auto& a : at) a = -1;
    for (std::size_t i = 0; i < sizeof kOps / sizeof kOps[0]; ++i)
      at[static_cast<int32_t>(kOps[i].code) - kLowest] = static_cast<int8_t>(i);
  }
};
constexpr Index kIndex;

const OpInfo* find(int32_t op) noexcept {
  if (op < kLowest || op > kHighest) return nullptr;
  int8_t i = kIndex.at[op - kLowest];
  return i < 0 ? nullptr : &kOps[i];
}

}  // namespace

const char* opcode_name(int32_t op) noexcept {
  const OpInfo* o = find(op);
  return o ? o->name : "unknown";
}

OpKind op_kind(int32_t op) noexcept {
  const OpInfo* o = find(op);
  return o ? o->kind : OpKind::unknown;
}

const char* err_name(Err e) noexcept {
  switch (e) {
    case Err::ok:
      return "OK";
    case Err::system_error:
      return "SYSTEMERROR";
    case Err::runtime_inconsistency:
      return "RUNTIMEINCONSISTENCY";
    case Err::data_inconsistency:
      return "DATAINCONSISTENCY";
    case Err::connection_loss:
      return "CONNECTIONLOSS";
    case Err::marshalling_error:
      return "MARSHALLINGERROR";
    case Err::unimplemented:
      return "UNIMPLEMENTED";
    case Err::operation_timeout:
      return "OPERATIONTIMEOUT";
    case Err::bad_arguments:
      return "BADARGUMENTS";
    case Err::unknown_session:
      return "UNKNOWNSESSION";
    case Err::new_config_no_quorum:
      return "NEWCONFIGNOQUORUM";
    case Err::reconfig_in_progress:
      return "RECONFIGINPROGRESS";
    case Err::api_error:
      return "APIERROR";
    case Err::no_node:
      return "NONODE";
    case Err::no_auth:
      return "NOAUTH";
    case Err::bad_version:
      return "BADVERSION";
    case Err::no_children_for_ephemerals:
      return "NOCHILDRENFOREPHEMERALS";
    case Err::node_exists:
      return "NODEEXISTS";
    case Err::not_empty:
      return "NOTEMPTY";
    case Err::session_expired:
      return "SESSIONEXPIRED";
    case Err::invalid_callback:
      return "INVALIDCALLBACK";
    case Err::invalid_acl:
      return "INVALIDACL";
    case Err::auth_failed:
      return "AUTHFAILED";
    case Err::session_moved:
      return "SESSIONMOVED";
    case Err::not_read_only:
      return "NOTREADONLY";
    case Err::ephemeral_on_local_session:
      return "EPHEMERALONLOCALSESSION";
    case Err::no_watcher:
      return "NOWATCHER";
    case Err::reconfig_disabled:
      return "RECONFIGDISABLED";
    case Err::session_closed_require_sasl_auth:
      return "SESSIONCLOSEDREQUIRESASLAUTH";
    case Err::quota_exceeded:
      return "QUOTAEXCEEDED";
    case Err::throttled_op:
      return "THROTTLEDOP";
  }
  return "UNKNOWN";
}

}  // namespace corral::proto
