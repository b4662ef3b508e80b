// The service-registry recipe's documents and DNS messages.
#include "registry_core.hpp"

#include <gtest/gtest.h>

#include <tuple>

using namespace corral::registry;

TEST(Registry, InstanceDocumentsAreCuratorsServiceInstance) {
  auto doc = instance_document(
      "api", "i-1", R"({"address":"10.0.0.1","port":8080,"payload":{"v":2}})", 1700000000000);
  ASSERT_TRUE(doc) << doc.status().to_string();
  EXPECT_EQ(
      doc->dump(),
      R"({"name":"api","id":"i-1","address":"10.0.0.1","port":8080,"sslPort":null,"payload":{"v":2},)"
      R"("registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC","uriSpec":null,"enabled":true})");
  auto back = parse_instance(doc->dump());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, "i-1");
  EXPECT_EQ(back->port, 8080);
  EXPECT_TRUE(back->enabled);
  // Curator's own document, sslPort only, disabled.
  auto curator = parse_instance(
      R"({"name":"web","id":"u","address":"h","port":null,"sslPort":8443,"payload":null,"registrationTimeUTC":1,)"
      R"("serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"https://","variable":false}]},"enabled":false})");
  ASSERT_TRUE(curator);
  EXPECT_EQ(curator->port, 8443);
  EXPECT_FALSE(curator->enabled);
}

TEST(Registry, BadRegistrationsNameTheField) {
  struct Case {
    const char* body;
    const char* says;
  } cases[] = {
      {"[1]", "JSON object"},
      {"{", "not JSON"},
      {R"({"port":1})", "\"address\" is required"},
      {R"({"address":"h"})", "\"port\" or \"sslPort\""},
      {R"({"address":"h","port":0})", "\"port\" must be"},
      {R"({"address":"h","sslPort":"443"})", "\"sslPort\" must be"},
      {R"({"address":"h","port":1,"enabled":"yes"})", "\"enabled\""},
      {R"({"address":"h","port":1,"name":"other"})", "\"name\" must match"},
      {R"({"address":"h","port":1,"ttl":5})", "unknown field \"ttl\""},
      {R"({"address":"h","port":1,"uriSpec":"x"})", "uriSpec"},
  };
  for (const auto& c : cases) {
    auto doc = instance_document("api", "i", c.body, 0);
    ASSERT_FALSE(doc) << c.body;
    EXPECT_NE(doc.status().message().find(c.says), std::string::npos)
        << c.body << " -> " << doc.status().message();
  }
  EXPECT_TRUE(valid_name("api-v2.internal_1"));
  const std::string too_long(64, 'x');
  for (std::string_view bad : {std::string_view(""), std::string_view("."), std::string_view(".."),
                               std::string_view("a/b"), std::string_view("a b"),
                               std::string_view(".hidden"), std::string_view(too_long)})
    EXPECT_FALSE(valid_name(bad)) << bad;
}

TEST(Registry, DnsQueriesAndAnswers) {
  // dig @server -p N api.service.corral SRV
  std::string q(
      "\x12\x34\x01\x20\x00\x01\x00\x00\x00\x00\x00\x01"
      "\x03"
      "api"
      "\x07"
      "service"
      "\x06"
      "Corral"
      "\x00"
      "\x00\x21\x00\x01"
      "\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00",
      12 + 20 + 4 + 11);
  auto question = parse_dns_query(q);
  ASSERT_TRUE(question);
  EXPECT_EQ(question->id, 0x1234);
  EXPECT_EQ(question->name, "api.service.corral");
  EXPECT_EQ(question->type, 33);
  std::vector<DnsRecord> answers = {
      {"api.service.corral", 33, 5, "", 1, 1, 8080, "i-1.api.service.corral"}};
  std::vector<DnsRecord> extra = {{"i-1.api.service.corral", 1, 5, *ipv4_bytes("10.0.0.1")}};
  std::string r = dns_response(*question, q, 0, answers, extra);
  EXPECT_EQ(r.substr(0, 2), "\x12\x34");
  EXPECT_EQ(static_cast<unsigned char>(r[2]), 0x85);  // QR, AA, RD
  EXPECT_EQ(r[3], '\0');                              // NOERROR, no RA
  // One answer; the A record and an OPT record (the query had EDNS0) additional.
  EXPECT_EQ(r.substr(4, 8), std::string("\x00\x01\x00\x01\x00\x00\x00\x02", 8));
  EXPECT_TRUE(question->edns);
  EXPECT_EQ(question->udp_size, 4096);
  EXPECT_EQ(r.substr(12, 24), q.substr(12, 24));  // the question, as asked
  EXPECT_NE(r.find(std::string("\x00\x01\x00\x01\x1f\x90", 6)),
            std::string::npos);  // priority 1, weight 1, 8080
  EXPECT_NE(r.find(std::string("\x0a\x00\x00\x01", 4)), std::string::npos);
  EXPECT_EQ(static_cast<unsigned char>(dns_response(*question, q, 3, {}, {})[3]), 3);  // NXDOMAIN

  EXPECT_FALSE(parse_dns_query("short"));
  std::string response = q;
  response[2] = '\x81';  // a response, not a query
  EXPECT_FALSE(parse_dns_query(response));
  std::string truncated = q.substr(0, 20);
  EXPECT_FALSE(parse_dns_query(truncated));
  std::string compressed = q;
  compressed[12] = '\xc0';  // a pointer where a label belongs
  EXPECT_FALSE(parse_dns_query(compressed));
  EXPECT_TRUE(valid_dns_name("i-1.api.service.corral"));
  EXPECT_FALSE(valid_dns_name("a..b"));
  EXPECT_FALSE(valid_dns_name("a b.service.corral"));
  EXPECT_FALSE(valid_dns_name(std::string(64, 'a')));
  EXPECT_FALSE(ipv4_bytes("10.0.0"));
  EXPECT_FALSE(ipv4_bytes("10.0.0.256"));
  EXPECT_FALSE(ipv4_bytes("host.example"));
}

TEST(Registry, DnsAnswersFitWhatTheQueryAllowsAndSayWhenCut) {
  auto query = [](bool edns, uint16_t size) {
    std::string q("\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00", 11);
    q += edns ? '\x01' : '\x00';
    q += std::string(
        "\x03"
        "big"
        "\x07"
        "service"
        "\x06"
        "corral"
        "\x00"
        "\x00\x21\x00\x01",
        24);
    if (edns)
      q += std::string("\x00\x00\x29", 3) + static_cast<char>(size >> 8) +
           static_cast<char>(size & 0xff) + std::string(6, '\0');
    return q;
  };
  std::vector<DnsRecord> answers, extra;
  for (int i = 0; i < 300; ++i) {
    std::string target = "instance-" + std::to_string(i) + ".big.service.corral";
    answers.push_back({"big.service.corral", 33, 5, "", 1, 1, 8080, target});
    extra.push_back({target, 1, 5, *ipv4_bytes("10.0.0.1")});
  }
  auto count = [](const std::string& r, size_t at) {
    return (static_cast<unsigned char>(r[at]) << 8) | static_cast<unsigned char>(r[at + 1]);
  };
  for (auto [edns, size, limit] : {std::tuple{false, 0, 512}, std::tuple{true, 1232, 1232},
                                   std::tuple{true, 100, 512}, std::tuple{true, 65000, 4096}}) {
    std::string q = query(edns, static_cast<uint16_t>(size));
    auto question = parse_dns_query(q);
    ASSERT_TRUE(question);
    std::string r = dns_response(*question, q, 0, answers, extra);
    EXPECT_LE(r.size(), static_cast<size_t>(limit)) << size;
    EXPECT_GT(r.size(), static_cast<size_t>(limit) - 80)
        << size;  // within a record (and the OPT) of full
    EXPECT_TRUE(static_cast<unsigned char>(r[2]) & 0x02)
        << "TC must be set when answers were left out";
    EXPECT_GT(count(r, 6), 0);
    EXPECT_LT(count(r, 6), 300);
    EXPECT_EQ(count(r, 10), edns ? 1 : 0);  // only the OPT record once answers were cut
  }
  // Everything fits: no TC, the additional records too.
  std::string q = query(false, 0);
  auto question = parse_dns_query(q);
  std::string r = dns_response(*question, q, 0, {answers[0]}, {extra[0]});
  EXPECT_FALSE(static_cast<unsigned char>(r[2]) & 0x02);
  EXPECT_EQ(count(r, 6), 1);
  EXPECT_EQ(count(r, 10), 1);
}
