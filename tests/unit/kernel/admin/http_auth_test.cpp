#include "admin/http_auth.hpp"

#include <gtest/gtest.h>

using namespace corral::kernel;
using corral::sdk::ConnectionSecurity;
using corral::sdk::HttpRequest;
namespace proto = corral::proto;

namespace {

HttpRequest with(const std::string& authorization) {
  HttpRequest r;
  r.remote = "10.1.2.3:5555";
  if (!authorization.empty()) r.headers["authorization"] = authorization;
  return r;
}

bool has(const Ids& ids, const std::string& scheme, const std::string& id) {
  for (const auto& i : ids)
    if (i.scheme == scheme && i.id == id) return true;
  return false;
}

}  // namespace

TEST(HttpAuth, NoCredentialsIsTheAddressAlone) {
  ServerConfig sc;
  HttpCaller c;
  std::string why;
  ASSERT_TRUE(authenticate_http(with(""), {}, sc, nullptr, c, why));
  EXPECT_FALSE(c.authenticated);
  ASSERT_EQ(c.ids.size(), 1u);
  EXPECT_TRUE(has(c.ids, "ip", "10.1.2.3"));
}

TEST(HttpAuth, BasicIsTheDigestIdentityAndSuperWhenItIsTheSuperDigest) {
  ServerConfig sc;
  sc.super_digest = digest_of("root:toor");
  HttpCaller c;
  std::string why;
  // "alice:secret"
  ASSERT_TRUE(authenticate_http(with("Basic YWxpY2U6c2VjcmV0"), {}, sc, nullptr, c, why)) << why;
  EXPECT_TRUE(c.authenticated);
  EXPECT_TRUE(has(c.ids, "digest", digest_of("alice:secret")));
  EXPECT_FALSE(has(c.ids, "super", ""));
  // "root:toor"
  ASSERT_TRUE(authenticate_http(with("Basic cm9vdDp0b29y"), {}, sc, nullptr, c, why)) << why;
  EXPECT_TRUE(has(c.ids, "super", ""));
  // ZooKeeper 3.9's admin form: the scheme, then user:password as they are.
  ASSERT_TRUE(authenticate_http(with("digest root:toor"), {}, sc, nullptr, c, why)) << why;
  EXPECT_TRUE(has(c.ids, "super", ""));
  ASSERT_TRUE(authenticate_http(with("Digest alice:secret"), {}, sc, nullptr, c, why)) << why;
  EXPECT_TRUE(has(c.ids, "digest", digest_of("alice:secret")));
  EXPECT_FALSE(has(c.ids, "super", ""));
}

TEST(HttpAuth, ASaslUserMustGiveItsPassword) {
  ServerConfig sc;
  SaslUsers users{{"carol", "pw"}};
  HttpCaller c;
  std::string why;
  ASSERT_TRUE(authenticate_http(with("Basic Y2Fyb2w6cHc="), {}, sc, &users, c, why))
      << why;  // carol:pw
  EXPECT_TRUE(has(c.ids, "sasl", "carol"));
  EXPECT_FALSE(authenticate_http(with("Basic Y2Fyb2w6cHg="), {}, sc, &users, c, why));  // carol:px
  EXPECT_NE(why.find("wrong password"), std::string::npos) << why;
}

TEST(HttpAuth, AVerifiedCertificateIsAnX509IdentityAndMaybeSuper) {
  ServerConfig sc;
  sc.x509_superuser = "CN=admin,O=Example";
  ConnectionSecurity sec;
  sec.encrypted = true;
  sec.peer_verified = true;
  sec.peer_subject = "CN=admin,O=Example";
  HttpCaller c;
  std::string why;
  ASSERT_TRUE(authenticate_http(with(""), sec, sc, nullptr, c, why));
  EXPECT_TRUE(c.authenticated);
  EXPECT_TRUE(has(c.ids, "x509", "CN=admin,O=Example"));
  EXPECT_TRUE(has(c.ids, "super", ""));
  sec.peer_verified = false;  // presented, not verified: nothing
  ASSERT_TRUE(authenticate_http(with(""), sec, sc, nullptr, c, why));
  EXPECT_FALSE(c.authenticated);
}

TEST(HttpAuth, GarbageCredentialsAreRefusedWithAReason) {
  ServerConfig sc;
  for (const std::string& h :
       {std::string("Bearer abc"), std::string("Basic"), std::string("Basic !!!!"),
        std::string("Basic YWxpY2U="),  // "alice": no colon
        std::string("Basic Og=="),      // ":": no user
        std::string("Basic ") + std::string(100000, 'A'), std::string("Basic YWxp\x01Y2U6"),
        std::string("Digest username=\"x\""), std::string("digest"), std::string("digest :pw"),
        std::string("basic")}) {
    HttpCaller c;
    std::string why;
    EXPECT_FALSE(authenticate_http(with(h), {}, sc, nullptr, c, why)) << h.substr(0, 40);
    EXPECT_FALSE(why.empty());
    EXPECT_FALSE(c.authenticated);
  }
}

TEST(HttpAuth, EveryPermissionMeansEachBit) {
  proto::AclList acl{{proto::perm::read | proto::perm::write, {"world", "anyone"}}};
  Ids anyone{{"ip", "10.0.0.1"}};
  EXPECT_TRUE(permitted_all(acl, proto::perm::read, anyone));
  EXPECT_FALSE(permitted_all(acl, proto::perm::all, anyone)) << "permitted() asks for any bit";
  EXPECT_TRUE(permitted_all(acl, proto::perm::all, Ids{{"super", ""}}));
}
