#include "corral/proto/codes.hpp"

namespace corral::proto {

const char* opcode_name(int32_t op) noexcept {
  switch (static_cast<OpCode>(op)) {
    case OpCode::notification: return "notification";
    case OpCode::create: return "create";
    case OpCode::remove: return "delete";
    case OpCode::exists: return "exists";
    case OpCode::get_data: return "getData";
    case OpCode::set_data: return "setData";
    case OpCode::get_acl: return "getACL";
    case OpCode::set_acl: return "setACL";
    case OpCode::get_children: return "getChildren";
    case OpCode::sync: return "sync";
    case OpCode::ping: return "ping";
    case OpCode::get_children2: return "getChildren2";
    case OpCode::check: return "check";
    case OpCode::multi: return "multi";
    case OpCode::create2: return "create2";
    case OpCode::reconfig: return "reconfig";
    case OpCode::check_watches: return "checkWatches";
    case OpCode::remove_watches: return "removeWatches";
    case OpCode::create_container: return "createContainer";
    case OpCode::delete_container: return "deleteContainer";
    case OpCode::create_ttl: return "createTTL";
    case OpCode::multi_read: return "multiRead";
    case OpCode::auth: return "auth";
    case OpCode::set_watches: return "setWatches";
    case OpCode::sasl: return "sasl";
    case OpCode::get_ephemerals: return "getEphemerals";
    case OpCode::get_all_children_number: return "getAllChildrenNumber";
    case OpCode::set_watches2: return "setWatches2";
    case OpCode::add_watch: return "addWatch";
    case OpCode::who_am_i: return "whoAmI";
    case OpCode::create_session: return "createSession";
    case OpCode::close_session: return "closeSession";
    case OpCode::error: return "error";
  }
  return "unknown";
}

const char* err_name(Err e) noexcept {
  switch (e) {
    case Err::ok: return "OK";
    case Err::system_error: return "SYSTEMERROR";
    case Err::runtime_inconsistency: return "RUNTIMEINCONSISTENCY";
    case Err::data_inconsistency: return "DATAINCONSISTENCY";
    case Err::connection_loss: return "CONNECTIONLOSS";
    case Err::marshalling_error: return "MARSHALLINGERROR";
    case Err::unimplemented: return "UNIMPLEMENTED";
    case Err::operation_timeout: return "OPERATIONTIMEOUT";
    case Err::bad_arguments: return "BADARGUMENTS";
    case Err::unknown_session: return "UNKNOWNSESSION";
    case Err::new_config_no_quorum: return "NEWCONFIGNOQUORUM";
    case Err::reconfig_in_progress: return "RECONFIGINPROGRESS";
    case Err::api_error: return "APIERROR";
    case Err::no_node: return "NONODE";
    case Err::no_auth: return "NOAUTH";
    case Err::bad_version: return "BADVERSION";
    case Err::no_children_for_ephemerals: return "NOCHILDRENFOREPHEMERALS";
    case Err::node_exists: return "NODEEXISTS";
    case Err::not_empty: return "NOTEMPTY";
    case Err::session_expired: return "SESSIONEXPIRED";
    case Err::invalid_callback: return "INVALIDCALLBACK";
    case Err::invalid_acl: return "INVALIDACL";
    case Err::auth_failed: return "AUTHFAILED";
    case Err::session_moved: return "SESSIONMOVED";
    case Err::not_read_only: return "NOTREADONLY";
    case Err::ephemeral_on_local_session: return "EPHEMERALONLOCALSESSION";
    case Err::no_watcher: return "NOWATCHER";
    case Err::reconfig_disabled: return "RECONFIGDISABLED";
    case Err::session_closed_require_sasl_auth: return "SESSIONCLOSEDREQUIRESASLAUTH";
    case Err::quota_exceeded: return "QUOTAEXCEEDED";
    case Err::throttled_op: return "THROTTLEDOP";
  }
  return "UNKNOWN";
}

}  // namespace corral::proto
