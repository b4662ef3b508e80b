// SASL DIGEST-MD5 (RFC 2831) on the server side, as ZooKeeper offers it:
// the server speaks first with a challenge in the realm "zk-sasl-md5", the
// client answers with its digest, and the server proves it knew the
// password too (rspauth). A client that succeeds holds the identity
// sasl:<username>. Users and passwords come from a JAAS file's Server
// section (user_<name>="<password>"), ZooKeeper's DigestLoginModule.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "corral/sdk/status.hpp"

namespace corral::kernel {

using SaslUsers = std::map<std::string, std::string, std::less<>>;

// A JAAS login configuration: each section's options (key="value"), the
// options of all its login modules together. Errors name the file, the offset
// and what is wrong.
using JaasSections = std::map<std::string, std::map<std::string, std::string>, std::less<>>;
sdk::Result<JaasSections> read_jaas_sections(const std::string& path);
// The user_<name>="<password>" entries of one section (`path` for messages).
sdk::Result<SaslUsers> jaas_users(const JaasSections& jaas, const std::string& path,
                                  const std::string& section);
// The users of the "Server" section, whom clients log in as.
sdk::Result<SaslUsers> read_jaas_users(const std::string& path);

// One client's exchange.
class DigestMd5Server {
 public:
  static constexpr std::string_view kRealm = "zk-sasl-md5";

  DigestMd5Server(const SaslUsers& users, std::string nonce)
      : users_(users), nonce_(std::move(nonce)) {}

  // The next token to send for the client's `token`. Done (ok, and
  // username() set) once the client's digest checked out; an error when it
  // did not, or the exchange is out of order.
  sdk::Result<std::string> step(std::string_view token);
  bool complete() const { return complete_; }
  const std::string& username() const { return username_; }
  // An authorization id the client asked for that is not its own user: not
  // granted (the identity is username()), but worth a log line.
  const std::string& ignored_authzid() const { return ignored_authzid_; }

 private:
  const SaslUsers& users_;
  std::string nonce_;
  int stage_ = 0;  // 0: expect the opening (empty) token; 1: expect the digest
  bool complete_ = false;
  std::string username_;
  std::string ignored_authzid_;
};

// The digest a client sends ("response") and the server's proof
// ("rspauth"), lower-case hex, as RFC 2831 section 2.1.2.1 defines them; for
// tests and the server above.
std::string digest_md5_response(std::string_view user, std::string_view realm,
                                std::string_view password, std::string_view nonce,
                                std::string_view cnonce, std::string_view nc, std::string_view qop,
                                std::string_view authzid, std::string_view a2);

}  // namespace corral::kernel
