// Who an admin or registry HTTP caller is: the ip identity of its address, a
// verified client certificate (x509, super when it is the configured
// superuser), and HTTP Basic credentials checked as ZooKeeper checks them on
// the client port: a SASL user's password against the JAAS file (sasl:user),
// and any user:password as the digest scheme's identity (digest:user:hash,
// super when it is server.super_digest). What a caller may then do is for
// the tree's ACLs to decide.
#pragma once

#include <string>

#include "config/config.hpp"
#include "corral/sdk/http.hpp"
#include "corral/sdk/transport.hpp"
#include "session/auth.hpp"
#include "session/sasl.hpp"

namespace corral::kernel {

struct HttpCaller {
  Ids ids;
  bool authenticated = false;  // more than the ip identity
};

// Fills `out` from the request's Authorization header, the connection's
// security and the caller's address. False with `error` when credentials
// were given and do not hold (a SASL user's wrong password, a scheme other
// than Basic, a malformed header): the request gets 401.
bool authenticate_http(const sdk::HttpRequest& req, const sdk::ConnectionSecurity& sec,
                       const ServerConfig& config, const SaslUsers* sasl_users, HttpCaller& out,
                       std::string& error);

// Whether `ids` hold every permission in `perms` under `acl` (permitted()
// asks for any one of them).
bool permitted_all(const proto::AclList& acl, int32_t perms, const Ids& ids);

}  // namespace corral::kernel
