#include "tree/txn.hpp"

#include <msgpack.hpp>

namespace corral::kernel {

namespace {
struct StringBuffer {
  std::string& s;
  void write(const char* p, size_t n) { s.append(p, n); }
};
}  // namespace

sdk::Bytes encode_txn(int32_t type, int64_t session, int32_t cxid, std::string_view payload) {
  sdk::Bytes out;
  out.reserve(payload.size() + 24);
  StringBuffer buf{out};
  msgpack::packer<StringBuffer> pk(buf);
  pk.pack_array(4);
  pk.pack(type);
  pk.pack(session);
  pk.pack(cxid);
  pk.pack_bin(static_cast<uint32_t>(payload.size()));
  pk.pack_bin_body(payload.data(), static_cast<uint32_t>(payload.size()));
  return out;
}

bool decode_txn(std::string_view body, TxnHeader& out) {
  // Hand-decoded: this runs once per applied entry and must not allocate.
  const auto* p = reinterpret_cast<const uint8_t*>(body.data());
  size_t n = body.size(), i = 0;
  auto int_at = [&](int64_t& v) -> bool {
    if (i >= n) return false;
    uint8_t t = p[i++];
    auto be = [&](int bytes, bool sign) -> bool {
      if (n - i < static_cast<size_t>(bytes)) return false;
      uint64_t u = 0;
      for (int k = 0; k < bytes; ++k) u = (u << 8) | p[i + k];
      i += static_cast<size_t>(bytes);
      if (sign && bytes < 8 && (u >> (8 * bytes - 1)) & 1) u |= ~uint64_t{0} << (8 * bytes);
      v = static_cast<int64_t>(u);
      return true;
    };
    if (t <= 0x7f) v = t;
    else if (t >= 0xe0) v = static_cast<int8_t>(t);
    else if (t == 0xcc) return be(1, false);
    else if (t == 0xcd) return be(2, false);
    else if (t == 0xce) return be(4, false);
    else if (t == 0xcf) return be(8, false);
    else if (t == 0xd0) return be(1, true);
    else if (t == 0xd1) return be(2, true);
    else if (t == 0xd2) return be(4, true);
    else if (t == 0xd3) return be(8, true);
    else return false;
    return true;
  };
  if (n < 1 || p[i++] != 0x94) return false;  // fixarray of 4
  int64_t type, session, cxid;
  if (!int_at(type) || !int_at(session) || !int_at(cxid)) return false;
  if (i >= n) return false;
  uint8_t t = p[i++];
  size_t len = 0, width = t == 0xc4 ? 1 : t == 0xc5 ? 2 : t == 0xc6 ? 4 : 0;
  if (width == 0 || n - i < width) return false;
  for (size_t k = 0; k < width; ++k) len = (len << 8) | p[i + k];
  i += width;
  if (n - i != len) return false;
  out.type = static_cast<int32_t>(type);
  out.session = session;
  out.cxid = static_cast<int32_t>(cxid);
  out.payload = body.substr(i, len);
  return true;
}

}  // namespace corral::kernel
