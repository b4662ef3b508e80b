// A whole snapshot file as the wal's recovery checks it, in any of its
// versions: the header, framed blocks (zstd-compressed in version 3), the
// checksum table and the trailer. Its three ways in (checking without
// keeping the body, with it, and reading a copy) give one verdict, and
// those that keep the body, the same zxid and body.
#include <cstdint>
#include <string>

#include "wal_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  corral::sdk::Zxid zxid = 0, again = 0;
  std::string_view body;
  std::string copy, read;
  corral::sdk::Status checked = corral::wal::check_snapshot(in, zxid, &body, &copy);
  corral::sdk::Status loaded = corral::wal::read_snapshot(in, again, &read);
  corral::sdk::Zxid bare_zxid = 0;
  corral::sdk::Status bare = corral::wal::check_snapshot(in, bare_zxid, nullptr, nullptr);
  if (checked.is_ok() != loaded.is_ok() || checked.is_ok() != bare.is_ok()) __builtin_trap();
  if (bare.is_ok() && bare_zxid != zxid) __builtin_trap();
  if (!checked.is_ok()) {
    if (checked.code() != corral::sdk::Errc::corrupt) __builtin_trap();
    return 0;
  }
  if (zxid != again || body != read) __builtin_trap();
  return 0;
}
