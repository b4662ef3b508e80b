#include "config/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

using namespace corral::kernel;

namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST(Config, EveryKeyHasADefault) {
  auto c = load_config(std::nullopt, {});
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->server.client_address.to_string(), "127.0.0.1:2181");
  EXPECT_EQ(c->server.tick_ms, 2000);
  EXPECT_EQ(c->server.min_session_timeout(), 4000);
  EXPECT_EQ(c->server.max_session_timeout(), 40000);
  EXPECT_EQ(c->plugins.transport, "tcp");
  EXPECT_EQ(c->plugins.consensus, "standalone");
}

TEST(Config, OverridesAreTypedAndApplyInOrder) {
  auto c = load_config(std::nullopt, {"server.tick_ms=500", "server.data_dir=/tmp/x y",
                                      "plugins.recipes=[\"server-info\"]", "server.tick_ms=600"});
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->server.tick_ms, 600);
  EXPECT_EQ(c->server.data_dir, "/tmp/x y");
  EXPECT_EQ(c->plugins.recipes, std::vector<std::string>{"server-info"});
  auto table = c->plugin_table("recipe", "server-info");
  EXPECT_FALSE(table->contains("path"));
}

TEST(Config, ErrorsNameFileLineKeyAndExpectation) {
  std::string path = write_temp("bad_type.toml", "[server]\n\ntick_ms = \"fast\"\n");
  auto c = load_config(path, {});
  ASSERT_FALSE(c);
  std::string m = c.status().message();
  EXPECT_NE(m.find(path + ":3"), std::string::npos) << m;
  EXPECT_NE(m.find("tick_ms"), std::string::npos) << m;
  EXPECT_NE(m.find("an integer"), std::string::npos) << m;

  auto unknown = load_config(std::nullopt, {"server.clinet_address=1.2.3.4:1"});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.status().message().find("unknown key 'server.clinet_address'"),
            std::string::npos);

  auto section = load_config(write_temp("bad_section.toml", "[sever]\nid = 1\n"), {});
  ASSERT_FALSE(section);
  EXPECT_NE(section.status().message().find("unknown section 'sever'"), std::string::npos);

  auto syntax = load_config(write_temp("syntax.toml", "[server\n"), {});
  ASSERT_FALSE(syntax);
  EXPECT_NE(syntax.status().message().find("syntax.toml:1"), std::string::npos)
      << syntax.status().message();

  auto address = load_config(std::nullopt, {"server.client_address=nohostport"});
  ASSERT_FALSE(address);
  EXPECT_NE(address.status().message().find("host:port"), std::string::npos);

  auto method = load_config(std::nullopt, {"server.snapshot_method=spawn"});
  ASSERT_FALSE(method);
  EXPECT_NE(method.status().message().find("\"fork\" or \"walk\""), std::string::npos)
      << method.status().message();
  auto walk =
      load_config(std::nullopt, {"server.snapshot_method=walk", "server.snapshot_walk_slice=64"});
  ASSERT_TRUE(walk) << walk.status().to_string();
  EXPECT_EQ(walk.value().server.snapshot_method, "walk");
  EXPECT_EQ(walk.value().server.snapshot_walk_slice, 64);
}

TEST(Config, PluginTablesAreTypedViews) {
  std::string path = write_temp("plugin.toml", "[storage.memory]\nretain_entries = 10\nname = 3\n");
  auto c = load_config(path, {});
  ASSERT_TRUE(c) << c.status().to_string();
  auto t = c->plugin_table("storage", "memory");
  EXPECT_EQ(t->get_int("retain_entries", 0).value(), 10);
  EXPECT_EQ(t->get_int("absent", 7).value(), 7);
  auto wrong = t->get_string("name", "");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.status().message().find("storage.memory.name"), std::string::npos);
  EXPECT_NE(wrong.status().message().find(path + ":3"), std::string::npos)
      << wrong.status().message();
}

TEST(Config, ReadsZooCfg) {
  std::string path = write_temp("zoo.cfg",
                                "# comment\ntickTime=200\ndataDir=/var/zk\nclientPort=2999\n"
                                "maxClientCnxns=7\n4lw.commands.whitelist=ruok, "
                                "srvr\ninitLimit=5\nsnapCount=100\nautopurge.purgeInterval=1\n"
                                "dataLogDir=/fast/zk-log\n");
  std::vector<std::string> warnings;
  auto c = load_zoo_cfg(path, {}, warnings);
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->server.tick_ms, 200);
  EXPECT_EQ(c->server.data_dir, "/var/zk");
  EXPECT_EQ(c->server.client_address.to_string(), "0.0.0.0:2999");
  EXPECT_EQ(c->server.max_client_cnxns, 7);
  EXPECT_EQ(c->server.four_letter_words, (std::vector<std::string>{"ruok", "srvr"}));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("autopurge.purgeInterval"), std::string::npos);
  EXPECT_EQ(c->plugin_table("storage", "wal")->get_int("snapshot_every_entries", 0).value(), 100);
  EXPECT_EQ(c->plugin_table("storage", "wal")->get_string("dir", "").value(), "/fast/zk-log");
  // Snapshots stay under dataDir, as ZooKeeper keeps them.
  EXPECT_EQ(c->plugin_table("storage", "wal")->get_string("snapshot_dir", "").value(), "wal");
  EXPECT_EQ(c->plugin_table("consensus", "zab")->get_int("init_limit", 0).value(), 5);
  EXPECT_EQ(c->plugins.consensus, "standalone");  // no server.N lines

  std::vector<std::string> w2;
  auto bad = load_zoo_cfg(write_temp("zoo_bad.cfg", "clientPort=abc\n"), {}, w2);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("zoo_bad.cfg:1"), std::string::npos);
}

TEST(Config, ReadsZooKeepersLimitsFromZooCfg) {
  std::vector<std::string> warnings;
  auto c = load_zoo_cfg(
      write_temp("zoo_limits.cfg",
                 "dataDir=/var/zk\nmaxCnxns=500\nzookeeper.nio.sessionlessCnxnTimeout=3000\n"
                 "globalOutstandingLimit=250\njute.maxbuffer=4194304\n"
                 "zookeeper.connection_throttle_tokens=300\n"
                 "zookeeper.connection_throttle_fill_time=100\n"
                 "zookeeper.connection_throttle_fill_count=5\n"),
      {}, warnings);
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_TRUE(warnings.empty()) << warnings[0];
  EXPECT_EQ(c->server.max_cnxns, 500);
  EXPECT_EQ(c->server.sessionless_timeout_ms, 3000);
  EXPECT_EQ(c->server.max_outstanding, 250);
  EXPECT_EQ(c->server.max_frame_bytes, 4194304);
  EXPECT_EQ(c->server.session_create_burst, 300);
  EXPECT_EQ(c->server.session_create_rate, 50);  // 5 tokens every 100 ms

  // 0 tokens is ZooKeeper's "no throttle".
  auto off = load_zoo_cfg(
      write_temp("zoo_nothrottle.cfg", "dataDir=/var/zk\nconnection_throttle_tokens=0\n"), {},
      warnings);
  ASSERT_TRUE(off) << off.status().to_string();
  EXPECT_EQ(off->server.session_create_rate, 0);
  // Defaults when zoo.cfg says nothing: ZooKeeper's outstanding limit.
  auto plain = load_zoo_cfg(write_temp("zoo_plain.cfg", "dataDir=/var/zk\n"), {}, warnings);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->server.max_outstanding, 1000);
  EXPECT_EQ(plain->server.max_frame_bytes, 0xfffff);

  auto bad = load_zoo_cfg(
      write_temp("zoo_badlimit.cfg", "dataDir=/var/zk\nglobalOutstandingLimit=0\n"), {}, warnings);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("max_outstanding"), std::string::npos);
}

TEST(Config, ReadsAnEnsembleFromZooCfgAndMyid) {
  std::string dir = ::testing::TempDir() + "zkens";
  std::remove((dir + "/myid").c_str());
  std::string cmd = "mkdir -p " + dir;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ofstream(dir + "/myid") << "2\n";
  std::string path =
      write_temp("zoo_ens.cfg",
                 "dataDir=" + dir +
                     "\nclientPort=2182\ninitLimit=4\nsyncLimit=2\n"
                     "server.1=localhost:2888:3888\nserver.2=localhost:2889:3889:participant;2182\n"
                     "server.3=[::1]:2890:3890:observer\npeerType=participant\n");
  std::vector<std::string> warnings;
  auto c = load_zoo_cfg(path, {}, warnings);
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->server.id, 2);
  EXPECT_EQ(c->plugins.consensus, "zab");
  EXPECT_EQ(c->plugins.election, "fle");
  ASSERT_EQ(c->ensemble.members.size(), 3u);
  EXPECT_EQ(c->ensemble.members[1].host, "localhost");
  EXPECT_EQ(c->ensemble.members[1].quorum_port, 2889);
  EXPECT_EQ(c->ensemble.members[1].client_port, 2182);
  EXPECT_EQ(c->ensemble.members[2].host, "::1");
  EXPECT_TRUE(c->ensemble.members[2].observer);
  EXPECT_EQ(c->plugin_table("consensus", "zab")->get_int("sync_limit", 0).value(), 2);
  // Without quorum.auth the peer ports are as open as ZooKeeper's, and it says so.
  EXPECT_EQ(c->ensemble.peer_auth, "none");
  EXPECT_TRUE(std::any_of(warnings.begin(), warnings.end(), [](const std::string& w) {
    return w.find("quorum.auth.enableSasl") != std::string::npos;
  }));

  // quorum.auth.* as ZooKeeper's: keys from the JAAS file's quorum sections.
  std::string jaas =
      write_temp("jaas_quorum.conf",
                 "QuorumServer { x required user_q=\"pw-0123456789abc\"; };\n"
                 "QuorumLearner { x required username=\"q\" password=\"pw-0123456789abc\"; };\n");
  std::ofstream(dir + "/myid") << "2\n";
  std::string sasl_path =
      write_temp("zoo_ens_sasl.cfg",
                 "dataDir=" + dir +
                     "\nserver.1=localhost:2888:3888\n"
                     "server.2=localhost:2889:3889\nquorum.auth.enableSasl=true\n"
                     "quorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n");
  auto needs_jaas = load_zoo_cfg(sasl_path, {}, warnings);
  ASSERT_FALSE(needs_jaas);
  EXPECT_NE(needs_jaas.status().message().find("server.jaas_config"), std::string::npos)
      << needs_jaas.status().message();
  auto sasl = load_zoo_cfg(sasl_path, {"server.jaas_config=\"" + jaas + "\""}, warnings);
  ASSERT_TRUE(sasl) << sasl.status().to_string();
  EXPECT_EQ(sasl->ensemble.peer_auth, "required");
  EXPECT_EQ(sasl->ensemble.jaas_quorum_server, "QuorumServer");
  EXPECT_EQ(sasl->ensemble.jaas_quorum_learner, "QuorumLearner");

  // A missing myid is an error that says where it was looked for.
  std::remove((dir + "/myid").c_str());
  auto no_id = load_zoo_cfg(path, {}, warnings);
  ASSERT_FALSE(no_id);
  EXPECT_NE(no_id.status().message().find(dir + "/myid"), std::string::npos)
      << no_id.status().message();
}

TEST(Config, EnsembleEntriesAreCheckedWithTheirKey) {
  auto bad =
      load_config(std::nullopt, {"plugins.consensus=zab", "ensemble.servers=[\"1=host:2888\"]"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("ensemble.servers"), std::string::npos)
      << bad.status().message();

  auto not_member =
      load_config(std::nullopt, {"plugins.consensus=zab", "server.id=4",
                                 "ensemble.servers=[\"1=a:2888:3888\", \"2=b:2888:3888\"]"});
  ASSERT_FALSE(not_member);
  EXPECT_NE(not_member.status().message().find("own id 4"), std::string::npos)
      << not_member.status().message();

  auto none = load_config(std::nullopt, {"plugins.consensus=zab"});
  ASSERT_FALSE(none);

  // Peers must prove who they are, unless the config says otherwise.
  auto no_secret =
      load_config(std::nullopt, {"plugins.consensus=zab", "server.id=2",
                                 "ensemble.servers=[\"1=a:2888:3888\", \"2=b:2888:3888\"]"});
  ASSERT_FALSE(no_secret);
  EXPECT_NE(no_secret.status().message().find("ensemble.secret_file"), std::string::npos)
      << no_secret.status().message();
  auto open_ports = load_config(
      std::nullopt, {"plugins.consensus=zab", "server.id=2", "ensemble.peer_auth=\"none\"",
                     "ensemble.servers=[\"1=a:2888:3888\", \"2=b:2888:3888\"]"});
  ASSERT_TRUE(open_ports) << open_ports.status().to_string();
  auto weak = load_config(std::nullopt,
                          {"plugins.consensus=zab", "server.id=2", "ensemble.secret=\"short\"",
                           "ensemble.servers=[\"1=a:2888:3888\", \"2=b:2888:3888\"]"});
  ASSERT_FALSE(weak);
  EXPECT_NE(weak.status().message().find("at least 16"), std::string::npos)
      << weak.status().message();

  auto good = load_config(
      std::nullopt, {"plugins.consensus=zab", "server.id=2", "ensemble.secret_file=\"peer.secret\"",
                     "ensemble.servers=[\"1=a:2888:3888\", \"2=b:2888:3888;2181\"]"});
  ASSERT_TRUE(good) << good.status().to_string();
  EXPECT_EQ(good->ensemble.peer_auth, "required");
  // As ZooKeeper prints it: a client port alone is on the wildcard address.
  EXPECT_EQ(format_member(good->ensemble.members[1]), "b:2888:3888:participant;0.0.0.0:2181");
}

TEST(Config, MembersKeepTheirClientHost) {
  corral::sdk::PeerSpec m;
  std::string why;
  ASSERT_TRUE(parse_member(7, "10.0.0.7:2888:3888:observer;10.0.0.8:2181", m, why)) << why;
  EXPECT_EQ(m.client_host, "10.0.0.8");
  EXPECT_EQ(m.client_port, 2181);
  EXPECT_EQ(format_member(m), "10.0.0.7:2888:3888:observer;10.0.0.8:2181");
  ASSERT_TRUE(parse_member(7, "h:1:2;[::1]:2181", m, why)) << why;
  EXPECT_EQ(m.client_host, "::1");
  EXPECT_EQ(format_member(m), "h:1:2:participant;[::1]:2181");
  EXPECT_FALSE(parse_member(7, "h:1:2;:2181", m, why));
}

TEST(Config, DynamicConfigTextRoundTrips) {
  std::vector<corral::sdk::PeerSpec> members;
  corral::sdk::Zxid version = 0;
  std::string why;
  // A reconfig's newMembers: commas or lines, in any order, no version.
  ASSERT_TRUE(parse_dynamic_config("server.3=c:1:2:observer;0.0.0.0:2183, server.1=a:1:2;2181\n",
                                   members, version, why))
      << why;
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members[0].id, 1);
  EXPECT_TRUE(members[1].observer);
  EXPECT_EQ(version, 0u);
  std::string text = format_dynamic_config(members, 0x100000003);
  EXPECT_EQ(text,
            "server.1=a:1:2:participant;0.0.0.0:2181\nserver.3=c:1:2:observer;0.0.0.0:"
            "2183\nversion=100000003");
  std::vector<corral::sdk::PeerSpec> back;
  ASSERT_TRUE(parse_dynamic_config(text, back, version, why)) << why;
  EXPECT_EQ(version, 0x100000003u);
  EXPECT_EQ(format_dynamic_config(back, version), text);

  EXPECT_FALSE(parse_dynamic_config("some thing", members, version, why));
  EXPECT_FALSE(parse_dynamic_config("server.1=a:1:2\nserver.1=b:1:2", members, version, why));
  EXPECT_NE(why.find("twice"), std::string::npos) << why;
  EXPECT_FALSE(parse_dynamic_config("server.x=a:1:2", members, version, why));
  EXPECT_FALSE(parse_dynamic_config("server.1=a:1:2\nversion=zz", members, version, why));
  EXPECT_FALSE(parse_dynamic_config("weight.1=2", members, version, why));
}

TEST(Config, AnEnsembleMemberNeedsItsOwnIdUnlessDiscoveryGivesIt) {
  // No silent default that every server of an ensemble would share.
  auto no_id =
      load_config(std::nullopt, {"plugins.consensus=zab", "ensemble.servers=[\"1=a:2888:3888\"]"});
  ASSERT_FALSE(no_id);
  EXPECT_NE(no_id.status().message().find("server.id"), std::string::npos)
      << no_id.status().message();
  EXPECT_NE(no_id.status().message().find("no default id"), std::string::npos)
      << no_id.status().message();
  // With a discovery plugin, members and id may come from it...
  auto discovered = load_config(std::nullopt, {"plugins.consensus=zab", "plugins.discovery=docker",
                                               "ensemble.secret=\"0123456789abcdef\""});
  ASSERT_TRUE(discovered) << discovered.status().to_string();
  EXPECT_FALSE(discovered->server.id_set);
  // ...but what the config does say must agree.
  auto disagree =
      load_config(std::nullopt, {"plugins.consensus=zab", "plugins.discovery=dns", "server.id=3",
                                 "ensemble.servers=[\"1=a:2888:3888\"]"});
  ASSERT_FALSE(disagree);
  EXPECT_NE(disagree.status().message().find("own id 3"), std::string::npos)
      << disagree.status().message();
}

#include "session/sasl.hpp"

TEST(Sasl, DigestMd5MatchesRfc2831sExample) {
  // RFC 2831 section 4: chris / secret at elwood.innosoft.com.
  EXPECT_EQ(digest_md5_response("chris", "elwood.innosoft.com", "secret", "OA6MG9tEQGm2hh",
                                "OA6MHXh6VqTrRk", "00000001", "auth", "",
                                "AUTHENTICATE:imap/elwood.innosoft.com"),
            "d388dad90d4bbd760a152321f2143af7");
  EXPECT_EQ(
      digest_md5_response("chris", "elwood.innosoft.com", "secret", "OA6MG9tEQGm2hh",
                          "OA6MHXh6VqTrRk", "00000001", "auth", "", ":imap/elwood.innosoft.com"),
      "ea40f60335c427b5527b84dbabcdfffd");
}

TEST(Sasl, TheServerChallengesChecksTheDigestAndProvesItself) {
  SaslUsers users{{"jaasuser", "jaas_password"}};
  DigestMd5Server s(users, "NONCE");
  auto challenge = s.step("");
  ASSERT_TRUE(challenge);
  EXPECT_NE(challenge.value().find("realm=\"zk-sasl-md5\""), std::string::npos);
  EXPECT_NE(challenge.value().find("nonce=\"NONCE\""), std::string::npos);
  std::string uri = "zookeeper/zk-sasl-md5";
  std::string digest = digest_md5_response("jaasuser", "zk-sasl-md5", "jaas_password", "NONCE",
                                           "CN", "00000001", "auth", "", "AUTHENTICATE:" + uri);
  auto bad = DigestMd5Server(users, "NONCE");
  (void)bad.step("");
  EXPECT_FALSE(
      bad.step("username=\"jaasuser\",realm=\"zk-sasl-md5\",nonce=\"NONCE\",cnonce=\"CN\",nc="
               "00000001,qop=auth,"
               "digest-uri=\"" +
               uri + "\",response=0123"));
  auto proof = s.step(
      "charset=utf-8,username=\"jaasuser\",realm=\"zk-sasl-md5\",nonce=\"NONCE\",nc=00000001,"
      "cnonce=\"CN\",digest-uri=\"" +
      uri + "\",response=" + digest + ",qop=auth");
  ASSERT_TRUE(proof) << proof.status().to_string();
  EXPECT_TRUE(s.complete());
  EXPECT_EQ(s.username(), "jaasuser");
  EXPECT_EQ(proof.value(),
            "rspauth=" + digest_md5_response("jaasuser", "zk-sasl-md5", "jaas_password", "NONCE",
                                             "CN", "00000001", "auth", "", ":" + uri));
}

TEST(Sasl, TheAuthorizationIdNeverGrantsAnotherUsersIdentity) {
  SaslUsers users{{"alice", "alice_pw"}, {"admin", "admin_pw"}};
  std::string uri = "zookeeper/zk-sasl-md5";
  auto login = [&](std::string_view authzid) {
    DigestMd5Server s(users, "NONCE");
    (void)s.step("");
    std::string digest = digest_md5_response("alice", "zk-sasl-md5", "alice_pw", "NONCE", "CN",
                                             "00000001", "auth", authzid, "AUTHENTICATE:" + uri);
    std::string token =
        "username=\"alice\",realm=\"zk-sasl-md5\",nonce=\"NONCE\",cnonce=\"CN\",nc=00000001,"
        "qop=auth,digest-uri=\"" +
        uri + "\",response=" + digest;
    if (!authzid.empty()) token += ",authzid=\"" + std::string(authzid) + "\"";
    auto r = s.step(token);
    EXPECT_TRUE(r) << r.status().to_string();
    return std::make_pair(s.username(), s.ignored_authzid());
  };
  // alice's own password, asking to be admin: she is alice, as in ZooKeeper.
  EXPECT_EQ(login("admin"), std::make_pair(std::string("alice"), std::string("admin")));
  EXPECT_EQ(login("alice"), std::make_pair(std::string("alice"), std::string()));
  EXPECT_EQ(login(""), std::make_pair(std::string("alice"), std::string()));
}

TEST(Sasl, JaasUsersComeFromTheServerSection) {
  std::string path =
      write_temp("jaas.conf",
                 "Client {\n  x required user_no=\"no\";\n};\nServer {\n"
                 "  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
                 "  user_super=\"super_secret\"\n  user_jaasuser=\"jaas_password\";\n};\n");
  auto users = read_jaas_users(path);
  ASSERT_TRUE(users) << users.status().to_string();
  EXPECT_EQ(users.value(), (SaslUsers{{"jaasuser", "jaas_password"}, {"super", "super_secret"}}));
  // Every section's options, comments and several login modules included.
  auto all =
      read_jaas_sections(write_temp("jaas_all.conf",
                                    "// quorum\nQuorumLearner {\n  /* digest */ a.B required\n"
                                    "  username=\"q\"\n  password=\"p\\\"w\";\n};\n"));
  ASSERT_TRUE(all) << all.status().to_string();
  EXPECT_EQ(all.value().at("QuorumLearner").at("username"), "q");
  EXPECT_EQ(all.value().at("QuorumLearner").at("password"), "p\"w");
  auto unclosed =
      read_jaas_sections(write_temp("jaas_open.conf", "Server { a required user_x=\"y\";\n"));
  ASSERT_FALSE(unclosed);
  EXPECT_NE(unclosed.status().message().find("not closed"), std::string::npos)
      << unclosed.status().message();
  auto missing = read_jaas_users(write_temp("jaas_bad.conf", "Client { };\n"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("Server"), std::string::npos);
}

// Each key of the schema, out of its range, is refused naming the key and
// what it must be; inside it, it is read and --print-config shows it.
TEST(Config, EveryNumericKeyIsCheckedAgainstItsRange) {
  struct Row {
    const char* key;
    const char* bad;
    const char* good;
  } rows[] = {
      {"server.id", "0", "3"},
      {"server.tick_ms", "0", "100"},
      {"server.max_client_cnxns", "-1", "0"},
      {"server.sessionless_timeout_ms", "99", "100"},
      {"server.max_output_bytes", "65535", "65536"},
      {"server.max_watch_bytes_per_connection", "4095", "4096"},
      {"server.max_watch_bytes", "4095", "4096"},
      {"server.admin_request_timeout_ms", "3600001", "3600000"},
      {"server.max_outstanding", "0", "1"},
      {"server.session_create_rate", "-1", "0"},
      {"server.max_frame_bytes", "1023", "1024"},
      {"server.container_check_interval_ms", "9", "10"},
      {"ensemble.handshake_timeout_ms", "99", "100"},
  };
  for (const auto& r : rows) {
    auto bad = load_config(std::nullopt, {std::string(r.key) + "=" + r.bad});
    ASSERT_FALSE(bad) << r.key;
    EXPECT_NE(bad.status().message().find(std::string("key '") + r.key + "' must be"),
              std::string::npos)
        << bad.status().message();
    auto good = load_config(std::nullopt, {std::string(r.key) + "=" + r.good});
    ASSERT_TRUE(good) << r.key << ": " << good.status().to_string();
    std::string shown = good.value().to_toml();
    std::string leaf = std::string(r.key).substr(std::string(r.key).find('.') + 1);
    if (std::string(r.key).rfind("ensemble.", 0) != 0)
      EXPECT_NE(shown.find(leaf + " = " + r.good), std::string::npos) << shown;
  }
}

TEST(Config, PrintConfigHidesSecretsAndReadsBack) {
  auto c =
      load_config(std::nullopt, {"server.super_digest=super:abc=", "server.extended_types=true"});
  ASSERT_TRUE(c) << c.status().to_string();
  std::string shown = c.value().to_toml();
  EXPECT_EQ(shown.find("abc="), std::string::npos) << shown;
  EXPECT_NE(shown.find("<not shown>"), std::string::npos) << shown;
  EXPECT_NE(shown.find("extended_types = true"), std::string::npos) << shown;
  std::string path = write_temp("shown.toml", shown);
  auto back = load_config(path, {"server.super_digest=super:abc="});
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back.value().to_toml(), shown);
}

TEST(Config, AdminIdentitiesAreSchemeAndId) {
  auto good = load_config(std::nullopt, {"server.admin_identities=[\"x509:CN=ops,O=Example\", "
                                         "\"sasl:ops\", \"digest:ops:abc=\"]"});
  ASSERT_TRUE(good) << good.status().to_string();
  EXPECT_EQ(good.value().server.admin_identities.size(), 3u);
  for (const char* bad : {"ops", "digest:ops", "world:anyone", "sasl:", "ip:127.0.0.1"}) {
    auto c = load_config(std::nullopt, {std::string("server.admin_identities=[\"") + bad + "\"]"});
    ASSERT_FALSE(c) << bad;
    EXPECT_NE(c.status().message().find("server.admin_identities"), std::string::npos)
        << c.status().message();
    EXPECT_NE(c.status().message().find(bad), std::string::npos) << c.status().message();
  }
}

TEST(Config, AdminHostsAreNamesDomainsOrAnyLowercased) {
  auto good = load_config(
      std::nullopt, {"server.admin_hosts=[\"Corral.Example.com.\", \".Ops.example\", \"*\"]"});
  ASSERT_TRUE(good) << good.status().to_string();
  EXPECT_EQ(good.value().server.admin_hosts,
            (std::vector<std::string>{"corral.example.com", ".ops.example", "*"}));
  for (const char* bad : {"host:8080", "http://host", "*.example.com", "", "a b", "."}) {
    auto c = load_config(std::nullopt, {std::string("server.admin_hosts=[\"") + bad + "\"]"});
    ASSERT_FALSE(c) << bad;
    EXPECT_NE(c.status().message().find("server.admin_hosts"), std::string::npos)
        << c.status().message();
  }
}

TEST(Config, ZooCfgTlsKeysMapOntoTheTlsTransport) {
  std::vector<std::string> warnings;
  auto c = load_zoo_cfg(
      write_temp("zoo_tls.cfg",
                 "dataDir=/var/zk\nclientPort=2181\nclientPortAddress=10.0.0.5\n"
                 "secureClientPort=2281\n"
                 "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
                 "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n"
                 "ssl.keyStore.location=/certs/server.p12\nssl.keyStore.password=pw\n"
                 "ssl.keyStore.type=PKCS12\nssl.trustStore.location=/certs/ca.pem\n"
                 "ssl.trustStore.type=PEM\nssl.enabledProtocols=TLSv1.3,TLSv1.2\n"
                 "ssl.handshakeDetectionTimeoutMillis=3000\n"
                 "X509AuthenticationProvider.superUser=CN=admin,O=Example\n"
                 "client.portUnification=true\n"),
      {}, warnings);
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_TRUE(warnings.empty()) << warnings[0];
  EXPECT_EQ(c->server.secure_client_address, "10.0.0.5:2281");
  EXPECT_TRUE(c->server.client_port_unification);
  EXPECT_EQ(c->server.x509_superuser, "CN=admin,O=Example");
  auto t = c->plugin_table("transport", "tls");
  EXPECT_EQ(t->get_string("certificate", "").value(), "/certs/server.p12");
  EXPECT_EQ(t->get_string("password", "").value(), "pw");
  EXPECT_EQ(t->get_string("ca", "").value(), "/certs/ca.pem");
  // ZooKeeper asks for client certificates unless ssl.clientAuth says not.
  EXPECT_EQ(t->get_string("client_auth", "").value(), "need");
  EXPECT_EQ(t->get_string("min_version", "").value(), "TLSv1.2");
  EXPECT_EQ(t->get_string("max_version", "").value(), "TLSv1.3");
  EXPECT_EQ(t->get_int("handshake_timeout_ms", 0).value(), 3000);
}

TEST(Config, ZooCfgQuorumTlsKeysGoToThePeerTable) {
  std::string dir = ::testing::TempDir() + "zk_tls_ens";
  std::string mk = "mkdir -p " + dir;
  ASSERT_EQ(std::system(mk.c_str()), 0);
  std::ofstream(dir + "/myid") << "2\n";
  std::vector<std::string> warnings;
  auto c = load_zoo_cfg(
      write_temp("zoo_qtls.cfg",
                 "dataDir=" + dir +
                     "\nserver.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888\n"
                     "sslQuorum=true\nportUnification=true\n"
                     "ssl.quorum.keyStore.location=/certs/q.pem\n"
                     "ssl.quorum.trustStore.location=/certs/qca.pem\n"
                     "ssl.quorum.hostnameVerification=true\nadmin.forceHttps=true\n"),
      {}, warnings);
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_TRUE(c->ensemble.tls);
  EXPECT_TRUE(c->ensemble.tls_port_unification);
  EXPECT_TRUE(c->server.admin_tls);
  auto t = c->plugin_table("transport", "tls");
  EXPECT_EQ(t->get_string("peer.certificate", "").value(), "/certs/q.pem");
  EXPECT_EQ(t->get_string("peer.ca", "").value(), "/certs/qca.pem");
  // ZooKeeper's AdminServer serves HTTPS with the quorum's certificate.
  EXPECT_EQ(t->get_string("admin.certificate", "").value(), "/certs/q.pem");
  EXPECT_EQ(t->get_string("admin.client_auth", "").value(), "want");
}

TEST(Config, ZooCfgSecurityKeysCorralCannotHonourStopTheStart) {
  struct Case {
    const char* line;
    const char* says;
  } cases[] = {
      {"ssl.ciphersuites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "OpenSSL's names"},
      {"ssl.keyStore.type=JKS", "keytool -importkeystore"},
      {"ssl.crl=true", "revocation"},
      {"ssl.ocsp=true", "OCSP"},
      {"ssl.protocol=TLSv1.1", "TLSv1.2 and TLSv1.3 only"},
      {"ssl.quorum.hostnameVerification=false", "names it"},
      {"ssl.context.supplier.class=com.example.Ctx", "not supported"},
      {"authProvider.1=com.example.LdapProvider", "Java classes"},
      {"enforce.auth.enabled=true", "ACLs"},
      {"admin.portUnification=true", "forceHttps"},
      {"quorum.auth.kerberos.servicePrincipal=zk/_HOST", "security setting"},
      {"ssl.keyStore.location=/x.pem", "no port uses TLS"},
  };
  for (const Case& k : cases) {
    std::vector<std::string> warnings;
    std::string key = std::string(k.line).substr(0, std::string(k.line).find('='));
    auto c =
        load_zoo_cfg(write_temp("zoo_closed.cfg", std::string("dataDir=/var/zk\n") +
                                                      "secureClientPort=2281\n" + k.line + "\n"),
                     {}, warnings);
    if (std::string(k.says) == "no port uses TLS")
      c = load_zoo_cfg(
          write_temp("zoo_closed.cfg", std::string("dataDir=/var/zk\n") + k.line + "\n"), {},
          warnings);
    ASSERT_FALSE(c) << k.line;
    EXPECT_NE(c.status().message().find(k.says), std::string::npos)
        << k.line << ": " << c.status().message();
    if (std::string(k.says) != "no port uses TLS")
      EXPECT_NE(c.status().message().find(key), std::string::npos) << c.status().message();
  }
}
