// Applies committed log entries to the data tree. Deterministic: the same
// entries in the same order give every replica the same tree and the same
// per-request results, errors included.
#pragma once

#include <vector>

#include "corral/proto/jute.hpp"
#include "corral/sdk/types.hpp"
#include "tree/data_tree.hpp"
#include "tree/txn.hpp"

namespace corral::kernel {

// The result of one applied entry, for the server that holds its session.
struct ApplyOutcome {
  int32_t type = 0;
  int64_t session = 0;
  int32_t cxid = 0;
  Err err = Err::ok;            // ReplyHeader.err
  std::string response;         // the jute response body (no header)
  std::vector<Change> changes;  // for watches
};

struct CreateFields;

class StateMachine {
 public:
  explicit StateMachine(DataTree& tree) : tree_(tree) {}

  // ZooKeeper's extended types (TTL nodes); every replica must agree.
  void set_extended_types(bool on) { extended_types_ = on; }

  // Applies `entry`. A body that cannot be decoded is applied as nothing and
  // reported as MARSHALLINGERROR (it was refused at submit time, so this means
  // a bug or a corrupt log that passed its checksum).
  ApplyOutcome apply(const sdk::LogEntry& entry);

  sdk::Zxid last_applied() const { return last_applied_; }
  void set_last_applied(sdk::Zxid z) { last_applied_ = z; }

  DataTree& tree() { return tree_; }

 private:
  void apply_multi(std::string_view payload, const sdk::LogEntry& e, int64_t session,
                   const Ids& ids, ApplyOutcome& out);
  Err apply_op(int32_t type, proto::JuteReader& r, const sdk::LogEntry& e, int64_t session,
               const Ids& ids, std::string& body, Journal& j);
  Err create_op(proto::OpCode op, const CreateFields& req, const sdk::LogEntry& e, int64_t session,
                const Ids& ids, std::string& created, proto::Stat& st, Journal& j);
  // A create's ACL from its encoding; null when malformed. The last one
  // decoded is kept: a workload's creates mostly carry the same ACL.
  const proto::AclList* acl_of(std::string_view encoded);

  DataTree& tree_;
  sdk::Zxid last_applied_ = 0;
  bool extended_types_ = false;
  TxnHeader header_;
  proto::AclList acl_;
  std::string acl_encoded_;
};

// Encodes createSession's payload.
std::string session_payload(int32_t timeout_ms, std::string_view password);

// A request read from a client, checked for shape (not for semantics):
// decodes the op's payload once at the receiving server so that malformed
// requests never reach the log. Returns false if `payload` is not a
// well-formed request of `type`.
bool well_formed_write(int32_t type, std::string_view payload);

}  // namespace corral::kernel
