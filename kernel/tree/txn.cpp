#include "tree/txn.hpp"

#include <msgpack.hpp>

#include "corral/proto/jute.hpp"
#include "tree/msgpack_reader.hpp"

namespace corral::kernel {

namespace {
struct StringBuffer {
  std::string& s;
  void write(const char* p, size_t n) { s.append(p, n); }
};
}  // namespace

sdk::Bytes encode_txn(int32_t type, int64_t session, int32_t cxid, std::string_view payload,
                      const Ids& ids) {
  sdk::Bytes out;
  out.reserve(payload.size() + 48);
  StringBuffer buf{out};
  msgpack::packer<StringBuffer> pk(buf);
  pk.pack_array(5);
  pk.pack(type);
  pk.pack(session);
  pk.pack(cxid);
  pk.pack_bin(static_cast<uint32_t>(payload.size()));
  pk.pack_bin_body(payload.data(), static_cast<uint32_t>(payload.size()));
  pk.pack_array(static_cast<uint32_t>(ids.size()));
  for (const proto::Id& id : ids) {
    pk.pack_array(2);
    pk.pack(id.scheme);
    pk.pack(id.id);
  }
  return out;
}

bool decode_txn(std::string_view body, TxnHeader& out) {
  MsgpackReader r(body);
  if (r.array() != 5) return false;
  int64_t type = r.integer(), session = r.integer(), cxid = r.integer();
  std::string_view payload = r.bytes();
  const size_t ids_at = r.position();
  uint32_t n = r.array();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    if (r.array() != 2) return false;
    r.bytes();
    r.bytes();
  }
  if (!r.ok() || !r.at_end()) return false;
  std::string_view ids = body.substr(ids_at);
  if (ids != out.ids_encoded) {
    MsgpackReader again(ids);
    again.array();
    out.ids.clear();
    for (uint32_t i = 0; i < n; ++i) {
      again.array();
      std::string_view scheme = again.bytes(), id = again.bytes();
      out.ids.push_back({std::string(scheme), std::string(id)});
    }
    out.ids_encoded.assign(ids);
  }
  out.type = static_cast<int32_t>(type);
  out.session = session;
  out.cxid = static_cast<int32_t>(cxid);
  out.payload = payload;
  return true;
}

sdk::Bytes encode_reconfig_txn(int64_t session, int32_t cxid, int32_t err,
                               std::string_view config) {
  std::string payload;
  proto::JuteWriter w(payload);
  w.write_int(err);
  w.write_buffer(config);
  return encode_txn(kReconfigTxn, session, cxid, payload);
}

bool decode_reconfig_payload(std::string_view payload, int32_t& err, std::string_view& config) {
  proto::JuteReader r(payload);
  err = r.read_int();
  config = r.read_buffer();
  return r.ok();
}

sdk::Bytes encode_restore_txn(const RestorePiece& piece) {
  std::string payload;
  proto::JuteWriter w(payload);
  w.write_int(piece.phase);
  w.write_long(piece.id);
  switch (piece.phase) {
    case RestorePiece::begin:
      w.write_long(piece.total);
      w.write_int(piece.chunks);
      w.write_int(static_cast<int32_t>(piece.crc));
      w.write_long(static_cast<int64_t>(piece.backup_zxid));
      break;
    case RestorePiece::chunk:
      w.write_int(piece.seq);
      w.write_buffer(piece.data);
      break;
    case RestorePiece::abort:
      w.write_buffer(piece.data);
      break;
    default:
      break;
  }
  return encode_txn(kRestoreTxn, 0, 0, payload);
}

bool decode_restore_payload(std::string_view payload, RestorePiece& out) {
  proto::JuteReader r(payload);
  out = RestorePiece{};
  out.phase = r.read_int();
  out.id = r.read_long();
  switch (out.phase) {
    case RestorePiece::begin:
      out.total = r.read_long();
      out.chunks = r.read_int();
      out.crc = static_cast<uint32_t>(r.read_int());
      out.backup_zxid = static_cast<sdk::Zxid>(r.read_long());
      if (out.total < 0 || out.chunks < 0) return false;
      break;
    case RestorePiece::chunk:
      out.seq = r.read_int();
      out.data = r.read_buffer();
      break;
    case RestorePiece::end:
      break;
    case RestorePiece::abort:
      out.data = r.read_buffer();
      break;
    default:
      return false;
  }
  return r.ok() && r.at_end();
}

int32_t txn_type(std::string_view body) {
  MsgpackReader r(body);
  if (r.array() != 5) return 0;
  int64_t type = r.integer();
  return r.ok() ? static_cast<int32_t>(type) : 0;
}

}  // namespace corral::kernel
