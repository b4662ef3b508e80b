// The body of a log entry: one client request (or session event) as the
// server that received it encoded it. msgpack:
//   [type, session, cxid, payload, [[scheme, id], ...]]
// where payload is the request's jute encoding (for createSession the jute
// pair (int timeout_ms, buffer password)), and the list holds the identities
// the session had authenticated when it sent the request, so that every
// replica checks ACLs against the same ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "corral/sdk/types.hpp"
#include "session/auth.hpp"

namespace corral::kernel {

struct TxnHeader {
  int32_t type = 0;
  int64_t session = 0;
  int32_t cxid = 0;
  std::string_view payload;  // points into the decoded body
  Ids ids;
  // The encoding `ids` was decoded from. Decoding another body into the same
  // header skips identities encoded the same way (the usual case: sessions
  // rarely change theirs, and many sessions share them), which spares a few
  // allocations per write.
  std::string ids_encoded;
};

// A reconfig request as the leader decided it (the log never holds the raw
// request): payload is the jute pair (int err, buffer config), where config
// is the new /zookeeper/config text when err is 0. Applied whether or not
// the session still exists, since the membership changes with it.
inline constexpr int32_t kReconfigTxn = -16;
// A kReconfigTxn body: the outcome (0 or the error) and the config text.
sdk::Bytes encode_reconfig_txn(int64_t session, int32_t cxid, int32_t err, std::string_view config);
// Reads a kReconfigTxn payload; false when malformed.
bool decode_reconfig_payload(std::string_view payload, int32_t& err, std::string_view& config);

sdk::Bytes encode_txn(int32_t type, int64_t session, int32_t cxid, std::string_view payload,
                      const Ids& ids = {});
// False if `body` is not a well-formed txn. `out` may hold an earlier
// header (see TxnHeader::ids_encoded).
bool decode_txn(std::string_view body, TxnHeader& out);
// The type of a txn body without decoding the rest; 0 when malformed.
int32_t txn_type(std::string_view body);

}  // namespace corral::kernel
