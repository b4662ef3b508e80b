#include "tree/state_machine.hpp"

#include "corral/proto/jute.hpp"
#include "corral/proto/records.hpp"
#include "tree/txn.hpp"

namespace corral::kernel {

using proto::CreateMode;
using proto::JuteReader;
using proto::JuteWriter;
using proto::OpCode;

// A write request's fields as views into its payload: the state machine
// applies them to the tree at once, so nothing is copied. A create's ACL is
// kept in its encoded form too (see StateMachine::acl_of).
struct CreateFields {
  std::string_view path, data, acl;
  bool data_null = false;
  int32_t flags = 0;
  int64_t ttl = 0;
};

namespace {

// Nodes an abandoned snapshot walk marks with each entry applied: a few
// microseconds an entry, and a million nodes settled within ~30,000 entries.
constexpr size_t kSettleNodesAnEntry = 32;

struct SetDataFields {
  std::string_view path, data;
  bool data_null = false;
  int32_t version = 0;
};
struct PathVersionFields {
  std::string_view path;
  int32_t version = 0;
};

// Advances past an encoded ACL list, checking its shape.
void skip_acl(JuteReader& r) {
  int32_t n = r.read_count(12);
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    r.read_int();
    r.read_string();
    r.read_string();
  }
}

bool read_fields(JuteReader& r, CreateFields& f, bool with_ttl) {
  f.path = r.read_string();
  f.data = r.read_buffer(&f.data_null);
  size_t acl_at = r.position();
  skip_acl(r);
  f.acl = r.since(acl_at);
  f.flags = r.read_int();
  if (with_ttl) f.ttl = r.read_long();
  return r.ok();
}
bool read_fields(JuteReader& r, SetDataFields& f) {
  f.path = r.read_string();
  f.data = r.read_buffer(&f.data_null);
  f.version = r.read_int();
  return r.ok();
}
bool read_fields(JuteReader& r, PathVersionFields& f) {
  f.path = r.read_string();
  f.version = r.read_int();
  return r.ok();
}

bool is_create(int32_t type) {
  switch (static_cast<OpCode>(type)) {
    case OpCode::create:
    case OpCode::create2:
    case OpCode::create_container:
    case OpCode::create_ttl:
      return true;
    default:
      return false;
  }
}

bool is_multi_op(int32_t type) {
  switch (static_cast<OpCode>(type)) {
    case OpCode::remove:
    case OpCode::set_data:
    case OpCode::check:
      return true;
    default:
      return is_create(type);
  }
}

// Reads one op's request to advance the reader (shape check only).
bool skip_op(int32_t type, JuteReader& r) {
  if (is_create(type)) {
    CreateFields f;
    return read_fields(r, f, type == static_cast<int32_t>(OpCode::create_ttl));
  }
  switch (static_cast<OpCode>(type)) {
    case OpCode::remove:
    case OpCode::check: {
      PathVersionFields f;
      return read_fields(r, f);
    }
    case OpCode::set_data: {
      SetDataFields f;
      return read_fields(r, f);
    }
    default:
      return false;
  }
}

}  // namespace

const proto::AclList* StateMachine::acl_of(std::string_view encoded) {
  if (encoded != acl_encoded_) {
    JuteReader r(encoded);
    proto::AclList acl;
    if (!proto::read(r, acl) || !r.at_end()) return nullptr;
    acl_ = std::move(acl);
    acl_encoded_.assign(encoded);
  }
  return &acl_;
}

// The create flavours, with ZooKeeper's rules for modes and TTLs (as Apache
// ZooKeeper 3.8 answers them): create/create2 make a plain node of a
// container mode, createContainer makes a container of any non-TTL mode, and
// TTL nodes need createTTL, extended types and 0 < ttl < 2^40.
Err StateMachine::create_op(OpCode op, const CreateFields& req, const sdk::LogEntry& e,
                            int64_t session, const Ids& ids, std::string& created, proto::Stat& st,
                            Journal& j) {
  if (req.flags < 0 || req.flags > 6) return Err::bad_arguments;
  CreateMode mode = static_cast<CreateMode>(req.flags);
  bool ttl_mode =
      mode == CreateMode::persistent_with_ttl || mode == CreateMode::persistent_sequential_with_ttl;
  int64_t owner = session;
  if (op == OpCode::create_ttl) {
    if (!ttl_mode) return Err::bad_arguments;
    if (!extended_types_) return Err::unimplemented;
    if (req.ttl <= 0 || req.ttl > kMaxTtlMs) return Err::bad_arguments;
    owner = ttl_owner(req.ttl);
  } else if (ttl_mode) {
    return extended_types_ ? Err::bad_arguments : Err::unimplemented;
  } else if (op == OpCode::create_container) {
    mode = CreateMode::container;
    owner = kContainerOwner;
  } else if (mode == CreateMode::container) {
    mode = CreateMode::persistent;
  }
  const proto::AclList* acl = acl_of(req.acl);
  if (!acl) return Err::marshalling_error;
  return tree_.create(req.path, req.data, *acl, mode, owner, e.zxid, e.time_ms, ids, &created, &st,
                      j, req.data_null);
}

// Applies a single create/delete/setData/check, writing its response body to
// `body` (or nothing on error). Shared by single ops and multi.
Err StateMachine::apply_op(int32_t type, JuteReader& r, const sdk::LogEntry& e, int64_t session,
                           const Ids& ids, std::string& body, Journal& j) {
  JuteWriter w(body);
  if (is_create(type)) {
    CreateFields req;
    if (!read_fields(r, req, type == static_cast<int32_t>(OpCode::create_ttl)))
      return Err::marshalling_error;
    std::string created;
    proto::Stat st;
    Err err = create_op(static_cast<OpCode>(type), req, e, session, ids, created, st, j);
    if (err != Err::ok) return err;
    w.write_string(created);
    if (type != static_cast<int32_t>(OpCode::create)) proto::write(w, st);
    return Err::ok;
  }
  switch (static_cast<OpCode>(type)) {
    case OpCode::remove: {
      PathVersionFields req;
      if (!read_fields(r, req)) return Err::marshalling_error;
      return tree_.remove(req.path, req.version, e.zxid, ids, j);
    }
    case OpCode::set_data: {
      SetDataFields req;
      if (!read_fields(r, req)) return Err::marshalling_error;
      proto::Stat st;
      Err err = tree_.set_data(req.path, req.data, req.version, e.zxid, e.time_ms, ids, &st, j,
                               req.data_null);
      if (err == Err::ok) proto::write(w, st);
      return err;
    }
    case OpCode::check: {
      PathVersionFields req;
      if (!read_fields(r, req)) return Err::marshalling_error;
      return tree_.check(req.path, req.version, ids);
    }
    case OpCode::set_acl: {
      proto::SetAclRequest req;
      if (!proto::read(r, req)) return Err::marshalling_error;
      proto::Stat st;
      Err err = tree_.set_acl(req.path, req.acl, req.version, ids, &st);
      if (err == Err::ok) proto::write(w, st);
      return err;
    }
    default:
      return Err::unimplemented;
  }
}

std::string session_payload(int32_t timeout_ms, std::string_view password) {
  std::string out;
  JuteWriter w(out);
  w.write_int(timeout_ms);
  w.write_buffer(password);
  return out;
}

bool well_formed_write(int32_t type, std::string_view payload) {
  JuteReader r(payload);
  if (static_cast<OpCode>(type) == OpCode::set_acl) {
    proto::SetAclRequest req;
    return proto::read(r, req);
  }
  if (static_cast<OpCode>(type) == OpCode::multi) {
    while (true) {
      proto::MultiHeader h;
      if (!proto::read(r, h)) return false;
      if (h.done) break;
      if (!is_multi_op(h.type) || !skip_op(h.type, r)) return false;
    }
    return r.ok();
  }
  if (!is_multi_op(type)) return false;
  return skip_op(type, r);
}

ApplyOutcome StateMachine::apply(const sdk::LogEntry& e) {
  // The previous entry's changes have been delivered: ACLs it left unused go.
  tree_.purge_acls();
  // A snapshot walk abandoned since marks the nodes it had not reached, a
  // few an entry.
  tree_.settle_snapshot(kSettleNodesAnEntry);
  ApplyOutcome out;
  last_applied_ = e.zxid;
  TxnHeader& h = header_;  // reused: see TxnHeader::ids_encoded
  if (!decode_txn(e.body, h)) {
    out.err = Err::marshalling_error;
    return out;
  }
  out.type = h.type;
  out.session = h.session;
  out.cxid = h.cxid;
  // A restore's pieces change the tree only as a whole, which the server
  // does (server_restore.cpp).
  if (h.type == kRestoreTxn) return out;
  if (h.type == kReconfigTxn) {
    out.type = static_cast<int32_t>(OpCode::reconfig);
    int32_t err = 0;
    std::string_view text;
    if (!decode_reconfig_payload(h.payload, err, text)) {
      out.err = Err::marshalling_error;
      return out;
    }
    if (err != 0) {
      out.err = static_cast<Err>(err);
      return out;
    }
    Journal j;
    proto::Stat st;
    tree_.install_config(text, e.zxid, e.time_ms, &st, j);
    JuteWriter w(out.response);
    w.write_buffer(text);
    proto::write(w, st);
    out.changes = std::move(j.changes);
    return out;
  }
  switch (static_cast<OpCode>(h.type)) {
    case OpCode::create_session: {
      JuteReader r(h.payload);
      int32_t timeout = r.read_int();
      std::string_view password = r.read_buffer();
      if (!r.ok()) {
        out.err = Err::marshalling_error;
        return out;
      }
      tree_.add_session(h.session, timeout, std::string(password));
      return out;
    }
    case OpCode::close_session: {
      Journal j;
      tree_.close_session(h.session, e.zxid, j);
      out.changes = std::move(j.changes);
      return out;
    }
    case OpCode::delete_container: {
      // Asked by the server's container manager, not by a session.
      JuteReader r(h.payload);
      std::string_view path = r.read_string();
      Journal j;
      out.err =
          r.ok() ? tree_.delete_container(path, e.zxid, e.time_ms, j) : Err::marshalling_error;
      out.changes = std::move(j.changes);
      return out;
    }
    default:
      break;
  }
  // A request of a session that is gone (expired, or closed by a request
  // queued before this one) changes nothing, as in ZooKeeper.
  if (!tree_.session(h.session)) {
    out.err = Err::session_expired;
    return out;
  }
  switch (static_cast<OpCode>(h.type)) {
    case OpCode::multi:
      apply_multi(h.payload, e, h.session, h.ids, out);
      return out;
    default: {
      JuteReader r(h.payload);
      Journal j;
      out.err = apply_op(h.type, r, e, h.session, h.ids, out.response, j);
      if (out.err != Err::ok) out.response.clear();
      out.changes = std::move(j.changes);
      return out;
    }
  }
}

void StateMachine::apply_multi(std::string_view payload, const sdk::LogEntry& e, int64_t session,
                               const Ids& ids, ApplyOutcome& out) {
  JuteReader r(payload);
  Journal j(/*record_undo=*/true);
  struct OpResult {
    int32_t type;
    Err err;
    std::string body;
  };
  std::vector<OpResult> results;
  bool failed = false;
  while (true) {
    proto::MultiHeader mh;
    if (!proto::read(r, mh)) {
      out.err = Err::marshalling_error;
      tree_.rollback(j);
      return;
    }
    if (mh.done) break;
    OpResult res{mh.type, Err::ok, {}};
    if (failed) {
      // After a failure ZooKeeper reports every later op as
      // RUNTIMEINCONSISTENCY without trying it.
      if (!skip_op(mh.type, r)) {
        out.err = Err::marshalling_error;
        tree_.rollback(j);
        return;
      }
      res.err = Err::runtime_inconsistency;
    } else {
      res.err = apply_op(mh.type, r, e, session, ids, res.body, j);
      if (res.err == Err::marshalling_error) {
        out.err = res.err;
        tree_.rollback(j);
        return;
      }
      failed = res.err != Err::ok;
    }
    results.push_back(std::move(res));
  }
  if (failed) tree_.rollback(j);
  out.changes = std::move(j.changes);

  JuteWriter w(out.response);
  for (const OpResult& res : results) {
    if (failed) {
      // Every op reports an error record: OK before the failure, the failure
      // itself, RUNTIMEINCONSISTENCY after.
      proto::write(w, proto::MultiHeader{-1, false, static_cast<int32_t>(res.err)});
      w.write_int(static_cast<int32_t>(res.err));
    } else {
      proto::write(w, proto::MultiHeader{res.type, false, 0});
      out.response += res.body;
    }
  }
  proto::write(w, proto::MultiHeader{-1, true, -1});
}

}  // namespace corral::kernel
