#include "console_core.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace corral::console {
namespace {

using proto::Acl;
using proto::Id;
namespace perm = proto::perm;

TEST(ConsoleCore, Base64RoundTripsEveryLengthAndByte) {
  std::mt19937 rng(7);
  for (size_t n = 0; n < 70; ++n) {
    std::string bytes(n, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::string text = base64_encode(bytes);
    EXPECT_EQ(text.size() % 4, 0u);
    auto back = base64_decode(text);
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(*back, bytes);
  }
  EXPECT_EQ(base64_encode("hello"), "aGVsbG8=");
  EXPECT_EQ(*base64_decode("aGVsbG8"), "hello");  // padding optional
  EXPECT_FALSE(base64_decode("aGV*bG8="));
  EXPECT_FALSE(base64_decode("a"));
}

TEST(ConsoleCore, RightsFollowZooKeepersCheck) {
  proto::AclList acl = {{perm::all, {"digest", "alice:HASH"}},
                        {perm::read, {"world", "anyone"}},
                        {perm::write, {"ip", "10.0.0.0/8"}}};
  std::vector<Id> anon = {{"ip", "127.0.0.1"}};
  EXPECT_EQ(perms_text(rights_of(acl, anon)), "r");
  std::vector<Id> alice = {{"ip", "127.0.0.1"}, {"digest", "alice:HASH"}};
  EXPECT_EQ(perms_text(rights_of(acl, alice)), "cdrwa");
  std::vector<Id> inside = {{"ip", "10.2.3.4"}};
  EXPECT_EQ(perms_text(rights_of(acl, inside)), "rw");
  std::vector<Id> bob = {{"ip", "127.0.0.1"}, {"digest", "bob:OTHER"}};
  EXPECT_EQ(perms_text(rights_of(acl, bob)), "r");
  EXPECT_EQ(rights_of({{perm::read, {"digest", "x:y"}}}, {{"super", "admin"}}), perm::all);
  EXPECT_EQ(rights_of({}, anon), perm::all);  // as the server checks it
  // A digest masked by getACL for a caller without ADMIN.
  proto::AclList masked = {{perm::read | perm::write, {"digest", "alice:x"}}};
  EXPECT_EQ(perms_text(rights_of(masked, alice)), "rw");
  EXPECT_EQ(rights_of(masked, bob), 0);
  EXPECT_EQ(rights_of(masked, {{"digest", "alicex:HASH"}}), 0);
}

TEST(ConsoleCore, IpMatchesAddressesAndNetworks) {
  EXPECT_TRUE(ip_in("127.0.0.1", "127.0.0.1"));
  EXPECT_FALSE(ip_in("127.0.0.1", "127.0.0.2"));
  EXPECT_TRUE(ip_in("10.0.0.0/8", "10.255.1.1"));
  EXPECT_FALSE(ip_in("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(ip_in("0.0.0.0/0", "192.168.1.1"));
  EXPECT_TRUE(ip_in("fe80::/10", "fe80::1"));
  EXPECT_FALSE(ip_in("fe80::/10", "::1"));
  EXPECT_TRUE(ip_in("127.0.0.1", "::ffff:127.0.0.1"));
  EXPECT_FALSE(ip_in("10.0.0.0/33", "10.0.0.1"));
  EXPECT_FALSE(ip_in("garbage", "10.0.0.1"));
}

TEST(ConsoleCore, PermsAndModesParse) {
  EXPECT_EQ(perms_from_text("cdrwa"), perm::all);
  EXPECT_EQ(perms_from_text("r"), perm::read);
  EXPECT_EQ(perms_from_text(""), 0);
  EXPECT_FALSE(perms_from_text("rx"));
  EXPECT_EQ(create_mode("ttl_sequential"), proto::CreateMode::persistent_sequential_with_ttl);
  EXPECT_EQ(create_mode("container"), proto::CreateMode::container);
  EXPECT_FALSE(create_mode("sticky"));
  EXPECT_EQ(user_of({{"ip", "1.2.3.4"}, {"digest", "alice:xyz"}}), "alice");
  EXPECT_EQ(user_of({{"ip", "1.2.3.4"}}), "");
}

TEST(ConsoleCore, ErrorsCarryZooKeepersNames) {
  EXPECT_EQ(error_message(proto::Err::no_auth, "/locked"), "KeeperErrorCode = NoAuth for /locked");
  EXPECT_EQ(error_code(proto::Err::not_empty), "NotEmpty");
  EXPECT_EQ(error_message(proto::Err::not_empty, "/a"),
            "KeeperErrorCode = Directory not empty for /a");
  EXPECT_EQ(error_code(proto::Err::no_node), "NoNode");
  EXPECT_EQ(http_status(proto::Err::no_auth), 403);
  EXPECT_EQ(http_status(proto::Err::no_node), 404);
  EXPECT_EQ(http_status(proto::Err::bad_version), 409);
  EXPECT_EQ(http_status(proto::Err::connection_loss), 503);
}

TEST(ConsoleCore, EnsembleConfigParses) {
  auto c = parse_ensemble_config(
      "server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n"
      "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\n"
      "server.3=[::1]:2890:3890:observer;2183\n"
      "server.4=host4:2891:3891\n"
      "version=100000003\n");
  ASSERT_EQ(c.members.size(), 4u);
  EXPECT_EQ(c.version, "100000003");
  EXPECT_EQ(c.members[0].id, 1);
  EXPECT_EQ(c.members[0].client, "10.0.0.1:2181");  // a wildcard is the member's host
  EXPECT_EQ(c.members[0].peer, "10.0.0.1:2888");
  EXPECT_EQ(c.members[1].client, "127.0.0.1:2182");
  EXPECT_TRUE(c.members[2].observer);
  EXPECT_EQ(c.members[2].client, "[::1]:2183");
  EXPECT_EQ(c.members[3].client, "");
  EXPECT_FALSE(c.members[3].observer);
  EXPECT_TRUE(parse_ensemble_config("garbage\nserver.x=1\n").members.empty());
}

TEST(ConsoleCore, SrvrParses) {
  auto s = parse_srvr(
      "Zookeeper version: 3.9.2, built on x\nLatency min/avg/max: 0/0.25/7\nReceived: 10\n"
      "Sent: 9\nConnections: 2\nOutstanding: 1\nZxid: 0x200000005\nMode: follower\n"
      "Node count: 12\n");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->serving);
  EXPECT_EQ(s->mode, "follower");
  EXPECT_EQ(s->zxid, 0x200000005);
  EXPECT_DOUBLE_EQ(s->latency_avg, 0.25);
  EXPECT_EQ(s->latency_max, 7);
  EXPECT_EQ(s->znodes, 12);
  EXPECT_EQ(s->connections, 2);
  auto down = parse_srvr("This ZooKeeper instance is not currently serving requests\n");
  ASSERT_TRUE(down);
  EXPECT_FALSE(down->serving);
  EXPECT_FALSE(parse_srvr("HTTP/1.1 400 Bad Request\r\n\r\n"));
}

std::string exposition(double requests, double b1, double b2, double inf, double znodes) {
  return "# TYPE corral_requests_total counter\n"
         "corral_requests_total{op=\"create\"} " +
         std::to_string(requests / 2) +
         "\n"
         "corral_requests_total{op=\"getData\"} " +
         std::to_string(requests / 2) +
         "\n"
         "corral_request_seconds_bucket{op=\"create\",le=\"0.001\"} " +
         std::to_string(b1) +
         "\n"
         "corral_request_seconds_bucket{op=\"create\",le=\"0.002\"} " +
         std::to_string(b2) +
         "\n"
         "corral_request_seconds_bucket{op=\"create\",le=\"+Inf\"} " +
         std::to_string(inf) +
         "\n"
         "corral_request_seconds_sum{op=\"create\"} 1\n"
         "corral_znodes " +
         std::to_string(znodes) + "\n";
}

TEST(ConsoleCore, ReadingsBecomeRatesAndQuantiles) {
  Reading a = parse_exposition(exposition(100, 10, 20, 20, 5), 1000);
  EXPECT_EQ(a.requests, 100);
  EXPECT_EQ(a.request_buckets.at(0.001), 10);
  EXPECT_TRUE(std::isinf(a.request_buckets.rbegin()->first));
  Reading b = parse_exposition(exposition(300, 60, 120, 120, 7), 11000);
  // 100 new observations: 50 at or under 1 ms, 50 in (1, 2] ms.
  auto p50 = quantile_between(a.request_buckets, b.request_buckets, 0.5);
  ASSERT_TRUE(p50);
  EXPECT_NEAR(*p50, 0.001, 1e-9);
  auto p99 = quantile_between(a.request_buckets, b.request_buckets, 0.99);
  EXPECT_NEAR(*p99, 0.001 + 0.001 * 49.0 / 50.0, 1e-9);
  EXPECT_NEAR(*max_between(a.request_buckets, b.request_buckets), 0.002, 1e-12);
  EXPECT_FALSE(quantile_between(b.request_buckets, b.request_buckets, 0.5));

  History h(2);
  h.add(a);
  EXPECT_EQ(h.size(), 0u);
  h.add(b);
  ASSERT_EQ(h.size(), 1u);
  std::string json = h.json(10000);
  EXPECT_NE(json.find("\"ops_per_s\":[20]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"znodes\":[7]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"fsync_p99_ms\":[null]"), std::string::npos) << json;
  // A restart (counters back to zero) gives a gap, not a negative rate.
  h.add(parse_exposition(exposition(4, 1, 2, 2, 7), 21000));
  h.add(parse_exposition(exposition(8, 1, 2, 2, 7), 31000));
  EXPECT_EQ(h.size(), 2u);  // capacity
  json = h.json(10000);
  EXPECT_NE(json.find("\"ops_per_s\":[null,0.4]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"t\":[21000,31000]"), std::string::npos) << json;
}

}  // namespace
}  // namespace corral::console
