#include "admin/http_auth.hpp"

#include <openssl/crypto.h>

#include <algorithm>

#include "corral/common/base64.hpp"
#include "corral/common/http_parse.hpp"

namespace corral::kernel {

namespace {

// Basic credentials: padded, and no longer than any header is.
bool base64_decode(std::string_view in, std::string& out) {
  if (in.empty() || in.size() % 4 != 0 || in.size() > 8192) return false;
  auto decoded = common::base64_decode(in);
  if (!decoded) return false;
  out = std::move(*decoded);
  return true;
}

void add(Ids& ids, proto::Id id) {
  for (const proto::Id& have : ids)
    if (have == id) return;
  ids.push_back(std::move(id));
}

}  // namespace

bool authenticate_http(const sdk::HttpRequest& req, const sdk::ConnectionSecurity& sec,
                       const ServerConfig& config, const SaslUsers* sasl_users, HttpCaller& out,
                       std::string& error) {
  out = {};
  std::string ip = req.remote;
  size_t colon = ip.rfind(':');
  if (colon != std::string::npos) ip = ip.substr(0, colon);
  if (ip.size() > 2 && ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
  if (valid_ip_spec(ip)) add(out.ids, {"ip", ip});
  if (sec.peer_verified && !sec.peer_subject.empty()) {
    add(out.ids, {"x509", sec.peer_subject});
    if (!config.x509_superuser.empty() && sec.peer_subject == config.x509_superuser)
      add(out.ids, {"super", ""});
    out.authenticated = true;
  }
  auto it = req.headers.find("authorization");
  if (it == req.headers.end()) return true;
  std::string_view h = it->second;
  std::string decoded;
  const size_t space = std::min(h.find(' '), h.size());
  const std::string scheme = common::ascii_lower(h.substr(0, space));
  std::string_view rest = h.substr(std::min(space + 1, h.size()));
  if (scheme == "digest") {
    // ZooKeeper 3.9's admin server form, "Authorization: digest user:password"
    // (as its snapshot and restore guide has curl send it).
    std::string_view plain = rest;
    while (!plain.empty() && plain.front() == ' ') plain.remove_prefix(1);
    decoded.assign(plain);
    if (decoded.find(':') == std::string::npos) {
      error = "malformed digest credentials (digest user:password)";
      return false;
    }
  } else if (scheme == "basic") {
    std::string_view b64 = rest;
    while (!b64.empty() && b64.front() == ' ') b64.remove_prefix(1);
    while (!b64.empty() && b64.back() == ' ') b64.remove_suffix(1);
    if (!base64_decode(b64, decoded) || decoded.find(':') == std::string::npos) {
      error = "malformed Basic credentials (base64 of user:password)";
      return false;
    }
  } else {
    error =
        "only HTTP Basic credentials (Authorization: Basic base64(user:password)) or ZooKeeper's "
        "digest form (Authorization: digest user:password) are accepted";
    return false;
  }
  std::string user = decoded.substr(0, decoded.find(':'));
  std::string password = decoded.substr(decoded.find(':') + 1);
  if (user.empty()) {
    error = "credentials without a user name";
    return false;
  }
  if (sasl_users) {
    auto u = sasl_users->find(user);
    if (u != sasl_users->end()) {
      if (u->second.size() != password.size() ||
          CRYPTO_memcmp(u->second.data(), password.data(), password.size()) != 0) {
        error = "wrong password for '" + user + "'";
        return false;
      }
      add(out.ids, {"sasl", user});
    }
  }
  std::string digest = digest_of(decoded);
  if (!config.super_digest.empty() && digest == config.super_digest) add(out.ids, {"super", ""});
  add(out.ids, {"digest", digest});
  out.authenticated = true;
  return true;
}

bool permitted_all(const proto::AclList& acl, int32_t perms, const Ids& ids) {
  for (int32_t bit = 1; bit <= perms; bit <<= 1)
    if ((perms & bit) && !permitted(acl, bit, ids)) return false;
  return true;
}

}  // namespace corral::kernel
