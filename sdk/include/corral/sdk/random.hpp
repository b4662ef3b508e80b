// Secrets from the operating system's CSPRNG (getrandom(2)): session
// passwords, nonces, identifiers another client must not guess. Header-only,
// so it adds nothing to the plugin ABI.
#pragma once

#include <sys/random.h>

#include <cerrno>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace corral::sdk {

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

}  // namespace corral::sdk
