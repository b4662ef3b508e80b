// Secrets from the operating system's CSPRNG (getrandom(2)): session
// passwords, nonces, identifiers another client must not guess. Header-only,
// so it adds nothing to the plugin ABI.
#pragma once

#include <sys/random.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace corral::common {

// Fills `out` with `n` unpredictable bytes. getrandom only fails for a bad
// buffer or a signal during a large request; both are retried or fatal.
inline void secure_random(void* out, size_t n) {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    ssize_t got = ::getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed");
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
}

inline std::string secure_random_bytes(size_t n) {
  std::string s(n, '\0');
  secure_random(s.data(), n);
  return s;
}

// A random (version 4) UUID, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".
inline std::string random_uuid() {
  uint64_t hi, lo;
  secure_random(&hi, sizeof hi);
  secure_random(&lo, sizeof lo);
  hi = (hi & ~0xF000ULL) | 0x4000ULL;
  lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

}  // namespace corral::common
