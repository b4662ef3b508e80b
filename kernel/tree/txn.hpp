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

// A restore (POST /commands/restore): the backup's tree travels through the
// log in pieces, so that every replica replaces its tree at the same zxid
// (see kernel/server/server_restore.cpp). Session 0; the payload is jute:
//   int phase, long id, then
//   begin: long total_bytes, int chunks, int crc32c, long backup_zxid
//   chunk: int seq, buffer bytes
//   end:   nothing
//   abort: ustring why
inline constexpr int32_t kRestoreTxn = -17;
struct RestorePiece {
  enum Phase : int32_t { begin = 0, chunk = 1, end = 2, abort = 3 };
  int32_t phase = begin;
  int64_t id = 0;
  int64_t total = 0;  // begin
  int32_t chunks = 0;
  uint32_t crc = 0;
  sdk::Zxid backup_zxid = 0;
  int32_t seq = 0;        // chunk
  std::string_view data;  // chunk: the bytes; abort: why
};
sdk::Bytes encode_restore_txn(const RestorePiece& piece);
// False when malformed; `out.data` points into `payload`.
bool decode_restore_payload(std::string_view payload, RestorePiece& out);

sdk::Bytes encode_txn(int32_t type, int64_t session, int32_t cxid, std::string_view payload,
                      const Ids& ids = {});
// False if `body` is not a well-formed txn. `out` may hold an earlier
// header (see TxnHeader::ids_encoded).
bool decode_txn(std::string_view body, TxnHeader& out);
// The type of a txn body without decoding the rest; 0 when malformed.
int32_t txn_type(std::string_view body);

}  // namespace corral::kernel
