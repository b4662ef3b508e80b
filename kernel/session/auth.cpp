#include "session/auth.hpp"

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace corral::kernel {

std::string digest_of(std::string_view user_password) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(user_password.data(), user_password.size(), md, &len, EVP_sha1(), nullptr);
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, md, static_cast<int>(len));
  std::string_view user = user_password.substr(0, user_password.find(':'));
  return std::string(user) + ":" +
         std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

namespace {

// Parses an address into 16 bytes (IPv4 mapped to the first 4) and its family.
bool parse_addr(std::string_view text, unsigned char out[16], int& family) {
  std::string s(text);
  std::memset(out, 0, 16);
  if (inet_pton(AF_INET, s.c_str(), out) == 1) {
    family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out) == 1) {
    family = AF_INET6;
    return true;
  }
  return false;
}

bool parse_spec(std::string_view spec, unsigned char addr[16], int& family, int& bits) {
  size_t slash = spec.find('/');
  if (!parse_addr(spec.substr(0, slash), addr, family)) return false;
  int max = family == AF_INET ? 32 : 128;
  bits = max;
  if (slash != std::string_view::npos) {
    std::string_view b = spec.substr(slash + 1);
    auto [end, ec] = std::from_chars(b.data(), b.data() + b.size(), bits);
    if (ec != std::errc() || end != b.data() + b.size() || bits < 0 || bits > max) return false;
  }
  return true;
}

}  // namespace

bool valid_ip_spec(std::string_view spec) {
  unsigned char a[16];
  int family, bits;
  return parse_spec(spec, a, family, bits);
}

bool ip_matches(std::string_view spec, std::string_view ip) {
  unsigned char want[16], got[16];
  int wf, gf, bits;
  if (!parse_spec(spec, want, wf, bits) || !parse_addr(ip, got, gf) || wf != gf) return false;
  for (int i = 0; i < bits; ++i) {
    int byte = i / 8, mask = 0x80 >> (i % 8);
    if ((want[byte] & mask) != (got[byte] & mask)) return false;
  }
  return true;
}

bool permitted(const proto::AclList& acl, int32_t perm, const Ids& ids) {
  if (acl.empty()) return true;
  for (const proto::Id& id : ids)
    if (id.scheme == "super") return true;
  for (const proto::Acl& a : acl) {
    if ((a.perms & perm) == 0) continue;
    if (a.id.scheme == "world" && a.id.id == "anyone") return true;
    for (const proto::Id& id : ids) {
      if (id.scheme != a.id.scheme) continue;
      if (a.id.scheme == "ip" ? ip_matches(a.id.id, id.id) : a.id.id == id.id) return true;
    }
  }
  return false;
}

bool fixup_acl(const proto::AclList& in, const Ids& ids, proto::AclList& out) {
  out.clear();
  if (in.empty()) return false;
  auto add = [&](const proto::Acl& a) {
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  };
  for (const proto::Acl& a : in) {
    const std::string& scheme = a.id.scheme;
    if (scheme == "world" && a.id.id == "anyone") {
      add(a);
    } else if (scheme == "auth") {
      // Every identity of an authenticating scheme the caller holds.
      bool any = false;
      for (const proto::Id& id : ids) {
        if (id.scheme == "digest" || id.scheme == "sasl" || id.scheme == "x509") {
          add({a.perms, id});
          any = true;
        }
      }
      if (!any) return false;
    } else if (scheme == "digest") {
      // Two parts around ':' — ZooKeeper's test is Java's split(":"), which
      // drops trailing empty parts.
      std::string_view id = a.id.id;
      while (!id.empty() && id.back() == ':') id.remove_suffix(1);
      if (std::count(id.begin(), id.end(), ':') != 1) return false;
      add(a);
    } else if (scheme == "ip") {
      if (!valid_ip_spec(a.id.id)) return false;
      add(a);
    } else if (scheme == "sasl" || scheme == "x509") {
      // A SASL user name (ZooKeeper's SASLAuthenticationProvider), or a
      // client certificate's subject (its X509AuthenticationProvider).
      if (a.id.id.empty()) return false;
      add(a);
    } else {
      return false;  // no such scheme (or world with an id other than anyone)
    }
  }
  return true;
}

proto::AclList masked_acl(const proto::AclList& acl) {
  proto::AclList out = acl;
  for (proto::Acl& a : out) {
    if (a.id.scheme != "digest") continue;
    size_t colon = a.id.id.find(':');
    if (colon != std::string::npos) a.id.id = a.id.id.substr(0, colon) + ":x";
  }
  return out;
}

}  // namespace corral::kernel
