// The peer handshake's messages and proofs (kernel/peer/peer_auth.hpp).
#include "peer/peer_auth.hpp"

#include <gtest/gtest.h>

#include "corral/common/msgpack.hpp"
#include "corral/common/random.hpp"

using namespace corral::kernel;
using corral::sdk::PeerChannel;

namespace {

std::string nonce(char c) { return std::string(kPeerNonceBytes, c); }

}  // namespace

TEST(PeerAuth, HelloRoundTripsAndOlderHellosStillDecode) {
  PeerHello h;
  h.channel = PeerChannel::election;
  h.id = 3;
  h.offers = true;
  h.user = "learner";
  h.nonce = nonce('n');
  PeerHello back;
  std::string error;
  ASSERT_TRUE(decode_peer_hello(encode_peer_hello(h), back, error)) << error;
  EXPECT_EQ(back.version, kPeerProtocolVersion);
  EXPECT_EQ(back.channel, PeerChannel::election);
  EXPECT_EQ(back.id, 3);
  EXPECT_TRUE(back.offers);
  EXPECT_EQ(back.user, "learner");
  EXPECT_EQ(back.nonce, h.nonce);

  // Version 1: [magic, 1, channel, id] and nothing to prove.
  corral::sdk::Bytes v1;
  corral::common::MsgpackWriter w(v1);
  w.array(4);
  w.bytes("corral-peer");
  w.integer(1);
  w.integer(0);
  w.integer(2);
  ASSERT_TRUE(decode_peer_hello(v1, back, error)) << error;
  EXPECT_EQ(back.version, 1);
  EXPECT_EQ(back.id, 2);
  EXPECT_FALSE(back.offers);
}

TEST(PeerAuth, MalformedHandshakeMessagesAreRefusedWithAReason) {
  PeerHello h;
  h.nonce = nonce('x');
  corral::sdk::Bytes good = encode_peer_hello(h);
  PeerHello out;
  std::string error;
  // Every cut of a good hello is refused, never read past its end.
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(decode_peer_hello(good.substr(0, n), out, error)) << n;
  h.nonce = "short";
  EXPECT_FALSE(decode_peer_hello(encode_peer_hello(h), out, error));
  EXPECT_FALSE(decode_peer_hello("GET / HTTP/1.1\r\n", out, error));
  EXPECT_NE(error.find("peer hello"), std::string::npos) << error;
  h.nonce = nonce('x');
  h.version = 9;
  EXPECT_FALSE(decode_peer_hello(encode_peer_hello(h), out, error));
  EXPECT_NE(error.find("protocol 9"), std::string::npos) << error;

  PeerChallenge c{7, nonce('a'), std::string(32, 'p')};
  PeerChallenge cb;
  ASSERT_TRUE(decode_peer_challenge(encode_peer_challenge(c), cb, error)) << error;
  EXPECT_EQ(cb.id, 7);
  EXPECT_EQ(cb.proof, c.proof);
  c.proof = "too short";
  EXPECT_FALSE(decode_peer_challenge(encode_peer_challenge(c), cb, error));
  std::string proof;
  ASSERT_TRUE(decode_peer_proof(encode_peer_proof(std::string(32, 'q')), proof, error));
  ASSERT_TRUE(decode_peer_proof(encode_peer_proof(""), proof, error));
  EXPECT_TRUE(proof.empty());
  EXPECT_FALSE(decode_peer_proof(encode_peer_proof("x"), proof, error));
}

TEST(PeerAuth, AProofBindsKeySideChannelIdsAndNonces) {
  auto p = [](std::string_view key, PeerSide side, PeerChannel ch, int64_t d, int64_t a, char dn,
              char an) { return peer_proof(key, side, ch, d, a, nonce(dn), nonce(an)); };
  std::string base = p("k", PeerSide::dialer, PeerChannel::quorum, 1, 2, 'd', 'a');
  EXPECT_EQ(base.size(), 32u);
  EXPECT_TRUE(
      peer_proof_matches(base, p("k", PeerSide::dialer, PeerChannel::quorum, 1, 2, 'd', 'a')));
  // Change any one input and the proof no longer matches.
  EXPECT_FALSE(
      peer_proof_matches(base, p("K", PeerSide::dialer, PeerChannel::quorum, 1, 2, 'd', 'a')));
  EXPECT_FALSE(
      peer_proof_matches(base, p("k", PeerSide::acceptor, PeerChannel::quorum, 1, 2, 'd', 'a')));
  EXPECT_FALSE(
      peer_proof_matches(base, p("k", PeerSide::dialer, PeerChannel::election, 1, 2, 'd', 'a')));
  EXPECT_FALSE(
      peer_proof_matches(base, p("k", PeerSide::dialer, PeerChannel::quorum, 3, 2, 'd', 'a')));
  EXPECT_FALSE(
      peer_proof_matches(base, p("k", PeerSide::dialer, PeerChannel::quorum, 1, 3, 'd', 'a')));
  EXPECT_FALSE(
      peer_proof_matches(base, p("k", PeerSide::dialer, PeerChannel::quorum, 1, 2, 'e', 'a')));
  EXPECT_FALSE(
      peer_proof_matches(base, p("k", PeerSide::dialer, PeerChannel::quorum, 1, 2, 'd', 'b')));
  EXPECT_FALSE(peer_proof_matches("", ""));  // no proof is never a match
}

TEST(PeerAuth, CredentialsAndModes) {
  PeerCredentials c = PeerCredentials::shared(PeerCredentials::Mode::required, "0123456789abcdef");
  ASSERT_NE(c.key_for(""), nullptr);
  EXPECT_EQ(*c.key_for(""), "0123456789abcdef");
  EXPECT_EQ(c.key_for("someone"), nullptr);
  PeerCredentials::Mode m;
  EXPECT_TRUE(parse_peer_auth_mode("optional", m));
  EXPECT_EQ(m, PeerCredentials::Mode::optional);
  EXPECT_FALSE(parse_peer_auth_mode("sometimes", m));
}

TEST(PeerAuth, SecretFilesAreCheckedAndNamed) {
  std::string dir = ::testing::TempDir();
  EXPECT_FALSE(read_peer_secret(dir + "/no-such-secret"));
  EXPECT_NE(read_peer_secret(dir + "/no-such-secret").status().message().find("no-such-secret"),
            std::string::npos);
  std::string path = dir + "/short.secret";
  FILE* f = fopen(path.c_str(), "w");
  fputs("short\n", f);
  fclose(f);
  auto s = read_peer_secret(path);
  ASSERT_FALSE(s);
  EXPECT_NE(s.status().message().find("at least 16"), std::string::npos) << s.status().message();
  f = fopen(path.c_str(), "w");
  fputs("0123456789abcdefXYZ \n", f);
  fclose(f);
  s = read_peer_secret(path);
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_EQ(s.value(), "0123456789abcdefXYZ");
}

TEST(Msgpack, AnArrayLongerThanItsBytesFailsBeforeAnyoneSizesByIt) {
  // 0xdd: a 32-bit count; 0xFFFFFFFF elements in a 6-byte message.
  std::string in("\xdd\xff\xff\xff\xff\x01", 6);
  corral::common::MsgpackReader r(in);
  EXPECT_EQ(r.array(), 0u);
  EXPECT_FALSE(r.ok());
  std::string fits("\x92\x01\x02", 3);
  corral::common::MsgpackReader r2(fits);
  EXPECT_EQ(r2.array(), 2u);
  EXPECT_TRUE(r2.ok());
}

TEST(SecureRandom, NoTwoDrawsAlike) {
  EXPECT_NE(corral::common::secure_random_bytes(16), corral::common::secure_random_bytes(16));
}

TEST(PeerAuth, ACertificateSpeaksForTheMemberItNames) {
  using corral::sdk::ConnectionSecurity;
  using corral::sdk::PeerSpec;
  std::vector<PeerSpec> one_host(3), own_hosts(3);
  for (int i = 0; i < 3; ++i) {
    one_host[i].id = own_hosts[i].id = i + 1;
    one_host[i].host = "127.0.0.1";
    own_hosts[i].host = "zk" + std::to_string(i + 1) + ".example.com";
  }
  ConnectionSecurity sec;
  sec.encrypted = sec.peer_verified = true;
  sec.peer_subject = "CN=server.2,O=Example";
  sec.peer_names = {"127.0.0.1", "server.2"};
  std::string why;
  EXPECT_TRUE(certificate_names_member(sec, 2, one_host, why));
  EXPECT_FALSE(certificate_names_member(sec, 3, one_host, why));
  EXPECT_NE(why.find("server.3"), std::string::npos) << why;
  // A shared host does not tell members apart.
  sec.peer_names = {"127.0.0.1"};
  EXPECT_FALSE(certificate_names_member(sec, 2, one_host, why));
  EXPECT_NE(why.find("share"), std::string::npos) << why;
  // Its own host does; a wildcard for the domain too; case does not matter.
  sec.peer_names = {"ZK2.example.com"};
  EXPECT_TRUE(certificate_names_member(sec, 2, own_hosts, why));
  EXPECT_FALSE(certificate_names_member(sec, 1, own_hosts, why));
  sec.peer_names = {"*.example.com"};
  EXPECT_TRUE(certificate_names_member(sec, 1, own_hosts, why));
  // A wildcard never stands for an address; an unverified certificate for nothing.
  std::vector<PeerSpec> by_ip = {own_hosts[0]};
  by_ip[0].host = "10.0.0.1";
  sec.peer_names = {"*.0.0.1"};
  EXPECT_FALSE(certificate_names_member(sec, 1, by_ip, why));
  sec.peer_names = {"server.1"};
  sec.peer_verified = false;
  EXPECT_FALSE(certificate_names_member(sec, 1, by_ip, why));
  EXPECT_NE(why.find("no certificate"), std::string::npos) << why;
}
