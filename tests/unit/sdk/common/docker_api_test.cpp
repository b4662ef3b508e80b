// The docker discovery plugin's Engine API parsing, on responses shaped as
// Docker 20.10 sends them.
#include "corral/common/docker_api.hpp"

#include <gtest/gtest.h>

using namespace corral::docker;

namespace {

std::string container(const std::string& id, const std::string& name, const std::string& labels,
                      const std::string& networks) {
  return R"({"Id":")" + id + R"(","Names":["/)" + name +
         R"("],"Image":"corral:full","State":"running",)" + R"("Labels":{)" + labels +
         R"(},"NetworkSettings":{"Networks":{)" + networks + "}}}";
}

std::string hex_id(char c) { return std::string(64, c); }

}  // namespace

TEST(DockerApi, ParsesPlainAndChunkedResponses) {
  auto plain = parse_http_response(
      "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\n\r\n[]");
  ASSERT_TRUE(plain) << plain.status().to_string();
  EXPECT_EQ(plain->status, 200);
  EXPECT_EQ(plain->headers.at("api-version"), "1.41");
  EXPECT_EQ(plain->body, "[]");
  auto chunked = parse_http_response(
      "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: "
      "chunked\r\n\r\n7\r\n{\"messa\r\n16;x=y\r\nge\":\"No such "
      "container\r\n2\r\n\"}\r\n0\r\n\r\n");
  ASSERT_TRUE(chunked) << chunked.status().to_string();
  EXPECT_EQ(chunked->status, 404);
  EXPECT_EQ(chunked->body, "{\"message\":\"No such container\"}");
  EXPECT_FALSE(parse_http_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"));
  EXPECT_FALSE(parse_http_response("garbage"));
  EXPECT_FALSE(parse_http_response("SSH-2.0-OpenSSH\r\n\r\n"));
}

TEST(DockerApi, MembersComeFromLabelsAndTheSharedNetwork) {
  std::string list =
      "[" +
      container(hex_id('a'), "corral1", R"("corral.ensemble":"e","corral.server-id":"1")",
                R"("bridge":{"IPAddress":"172.17.0.2"},"ens_net":{"IPAddress":"172.20.0.2"})") +
      "," +
      container(
          hex_id('b'), "corral2",
          R"("corral.ensemble":"e","corral.server-id":"2","corral.quorum-port":"2889","corral.peer-type":"observer")",
          R"("ens_net":{"IPAddress":"172.20.0.3"})") +
      "," +
      container(hex_id('c'), "stray", R"("corral.ensemble":"e")",
                R"("ens_net":{"IPAddress":"172.20.0.9"})") +
      "," +
      container(hex_id('d'), "badid", R"("corral.ensemble":"e","corral.server-id":"0")",
                R"("ens_net":{"IPAddress":"172.20.0.8"})") +
      "]";
  auto parsed = parse_container_list(list);
  ASSERT_TRUE(parsed) << parsed.status().to_string();
  ASSERT_EQ(parsed->size(), 4u);
  EXPECT_EQ(parsed->at(0).name, "corral1");
  Discovered d = members_from(parsed.value(), {"ens_net"});
  EXPECT_TRUE(d.conflict.empty());
  ASSERT_EQ(d.members.size(), 2u);
  EXPECT_EQ(d.members[0].id, 1);
  EXPECT_EQ(d.members[0].host, "172.20.0.2");  // the shared network, not bridge
  EXPECT_EQ(d.members[0].quorum_port, 2888);
  EXPECT_EQ(d.members[0].client_port, 2181);
  EXPECT_EQ(d.members[1].quorum_port, 2889);
  EXPECT_TRUE(d.members[1].observer);
  ASSERT_EQ(d.problems.size(), 2u);
  EXPECT_NE(d.problems[0].find("stray has no corral.server-id"), std::string::npos)
      << d.problems[0];
  EXPECT_NE(d.problems[1].find("not a server id"), std::string::npos) << d.problems[1];
}

TEST(DockerApi, TwoContainersClaimingOneIdIsAConflict) {
  std::string list = "[" +
                     container(hex_id('a'), "n1", R"("corral.server-id":"1")",
                               R"("net":{"IPAddress":"10.0.0.2"})") +
                     "," +
                     container(hex_id('b'), "n2", R"("corral.server-id":"1")",
                               R"("net":{"IPAddress":"10.0.0.3"})") +
                     "]";
  Discovered d = members_from(parse_container_list(list).value(), {});
  EXPECT_NE(d.conflict.find("n1 and n2 both claim corral.server-id=1"), std::string::npos)
      << d.conflict;
}

TEST(DockerApi, InspectionAndOwnContainerId) {
  std::string inspect =
      R"({"Id":")" + hex_id('e') +
      R"(","Name":"/corral3","Config":{"Hostname":"node3","Labels":{"corral.server-id":"3"}},)"
      R"("NetworkSettings":{"Networks":{"n":{"IPAddress":"172.30.0.4"}}}})";
  auto c = parse_container_inspect(inspect);
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->name, "corral3");
  EXPECT_EQ(c->labels.at("corral.server-id"), "3");
  EXPECT_EQ(c->networks.at("n"), "172.30.0.4");
  EXPECT_FALSE(parse_container_inspect("[1,2]"));
  EXPECT_FALSE(parse_container_list("{not json"));

  std::string mountinfo =
      "612 590 0:46 / / rw,relatime - overlay overlay rw\n"
      "630 612 254:1 /var/lib/docker/containers/" +
      hex_id('f') + "/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n";
  EXPECT_EQ(container_id_from_mountinfo(mountinfo), hex_id('f'));
  EXPECT_FALSE(container_id_from_mountinfo("1 0 0:1 / / rw - ext4 /dev/vda rw\n"));
  EXPECT_EQ(parse_server_id("7"), 7);
  EXPECT_FALSE(parse_server_id("256"));
  EXPECT_FALSE(parse_server_id("x"));
  EXPECT_EQ(url_encode("{\"label\":[\"a=b\"]}"), "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
}
