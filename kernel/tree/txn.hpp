// The body of a log entry: one client request (or session event) as the
// server that received it encoded it. msgpack: [type, session, cxid, payload]
// where payload is the request's jute encoding, or for createSession the
// jute pair (int timeout_ms, buffer password).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "corral/sdk/types.hpp"

namespace corral::kernel {

struct TxnHeader {
  int32_t type = 0;
  int64_t session = 0;
  int32_t cxid = 0;
  std::string_view payload;  // points into the decoded body
};

sdk::Bytes encode_txn(int32_t type, int64_t session, int32_t cxid, std::string_view payload);
// False if `body` is not a well-formed txn.
bool decode_txn(std::string_view body, TxnHeader& out);

}  // namespace corral::kernel
