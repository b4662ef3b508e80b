#include "admin/http_auth.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>

#include "admin/admin_server.hpp"

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

namespace {

HttpRequest to_host(const std::string& host) {
  HttpRequest r;
  r.remote = "127.0.0.1:5555";
  if (!host.empty()) r.headers["host"] = host;
  return r;
}

}  // namespace

// DNS rebinding: a page at attacker.example whose name is made to point at
// this address is refused; addresses, localhost and this machine's own
// names are answered, and server.admin_hosts adds names or domains.
TEST(AdminHosts, OnlyAddressesLocalhostTheMachineAndListedNamesAreAnswered) {
  const std::vector<std::string> none;
  const std::vector<std::string> own{"node1", "node1.corral-hs.default.svc.cluster.local"};
  for (const char* ok : {"127.0.0.1:8080", "10.0.0.7", "[::1]:8080", "[fe80::1]", "localhost:8080",
                         "LOCALHOST", "app.localhost", "node1", "Node1:8080",
                         "node1.corral-hs.default.svc.cluster.local", "node1.", ""})
    EXPECT_FALSE(misdirected(to_host(ok), none, own)) << ok;
  for (const char* bad :
       {"attacker.example", "attacker.example:8080", "node10", "xnode1", "node1.attacker.example",
        "node1.corral-hs.default.svc.cluster.local.evil", "localhost.attacker.example",
        "127.0.0.1.nip.io", "node1x.example", "[attacker.example]", "[::1"}) {
    auto why = misdirected(to_host(bad), none, own);
    ASSERT_TRUE(why) << bad;
    EXPECT_NE(why->find("server.admin_hosts"), std::string::npos);
    if (std::string(bad).find("node1") == std::string::npos)  // (the host asked for is echoed)
      EXPECT_EQ(why->find("node1"), std::string::npos)
          << "the refusal names none of the machine's names";
  }
  const std::vector<std::string> listed{"corral.example.com", ".ops.example"};
  EXPECT_FALSE(misdirected(to_host("Corral.Example.com:8080"), listed, own));
  EXPECT_FALSE(misdirected(to_host("a.ops.example"), listed, own));
  EXPECT_FALSE(misdirected(to_host("b.a.ops.example:443"), listed, own));
  EXPECT_TRUE(misdirected(to_host("ops.example.attacker"), listed, own));
  EXPECT_TRUE(misdirected(to_host("xops.example"), listed, own));
  EXPECT_TRUE(misdirected(to_host("www.corral.example.com"), listed, own));
  EXPECT_FALSE(misdirected(to_host("anything.example"), {"*"}, own));
  // Without names of its own, only addresses, localhost and the list.
  EXPECT_TRUE(misdirected(to_host("node1"), none, {}));
}

TEST(AdminHosts, TheMachinesOwnNamesStartWithItsHostName) {
  auto names = own_host_names();
  ASSERT_FALSE(names.empty());
  char buf[256] = {};
  ASSERT_EQ(::gethostname(buf, sizeof buf - 1), 0);
  std::string own;
  for (char* c = buf; *c; ++c)
    own += static_cast<char>(std::tolower(static_cast<unsigned char>(*c)));
  EXPECT_EQ(names.front(), own);
}

TEST(AdminHosts, ARequestNamesOneHostAndAnHttp11RequestNamesOne) {
  HttpRequest req;
  size_t body = 0;
  std::string error;
  EXPECT_EQ(
      parse_http_head("GET /commands/ruok HTTP/1.1\r\nHost: 127.0.0.1:8080", req, body, error), 0);
  EXPECT_EQ(req.headers["host"], "127.0.0.1:8080");
  EXPECT_EQ(
      parse_http_head("GET /commands/ruok HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: attacker.example",
                      req, body, error),
      400);
  EXPECT_EQ(error, "more than one Host header");
  error.clear();
  EXPECT_EQ(parse_http_head("GET /commands/ruok HTTP/1.1\r\nAccept: */*", req, body, error), 400);
  EXPECT_NE(error.find("Host"), std::string::npos);
  // HTTP/1.0 had no Host: such a client (no browser sends one) is served.
  EXPECT_EQ(parse_http_head("GET /commands/ruok HTTP/1.0", req, body, error), 0);
  EXPECT_FALSE(misdirected(req, {}, {}));
}
