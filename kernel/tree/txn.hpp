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
};

sdk::Bytes encode_txn(int32_t type, int64_t session, int32_t cxid, std::string_view payload,
                      const Ids& ids = {});
// False if `body` is not a well-formed txn.
bool decode_txn(std::string_view body, TxnHeader& out);

}  // namespace corral::kernel
