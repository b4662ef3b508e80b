#include "tree/state_machine.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "corral/proto/jute.hpp"
#include "tree/txn.hpp"

using namespace corral;
using namespace corral::kernel;
using proto::JuteReader;
using proto::JuteWriter;
using proto::OpCode;

namespace {

std::string create_payload(const std::string& path, int32_t flags = 0) {
  std::string out;
  JuteWriter w(out);
  proto::write(w, proto::CreateRequest{path, "v", proto::open_acl_unsafe(), flags, 0});
  return out;
}

// A multi of (type, payload) ops.
std::string multi_payload(const std::vector<std::pair<OpCode, std::string>>& ops) {
  std::string out;
  JuteWriter w(out);
  for (const auto& [type, body] : ops) {
    proto::write(w, proto::MultiHeader{static_cast<int32_t>(type), false, -1});
    out += body;
  }
  proto::write(w, proto::MultiHeader{-1, true, -1});
  return out;
}

std::string ttl_payload(const std::string& path, int32_t flags, int64_t ttl) {
  std::string out;
  JuteWriter w(out);
  proto::write(w, proto::CreateRequest{path, "v", proto::open_acl_unsafe(), flags, ttl},
               /*with_ttl=*/true);
  return out;
}

std::string check_payload(const std::string& path, int32_t version) {
  std::string out;
  JuteWriter w(out);
  proto::write(w, proto::PathVersionRequest{path, version});
  return out;
}

struct MachineTest : ::testing::Test {
  DataTree tree;
  StateMachine sm{tree};
  sdk::Zxid zxid = 0;
  void SetUp() override { tree.add_session(1, 4000, std::string(16, 'p')); }
  ApplyOutcome apply(OpCode type, const std::string& payload, int64_t session = 1,
                     int32_t cxid = 1) {
    return sm.apply({++zxid, 5000, encode_txn(static_cast<int32_t>(type), session, cxid, payload)});
  }
};

}  // namespace

TEST(Txn, RoundTripsAndRefusesMalformedBodies) {
  std::string body = encode_txn(-11, -5, 123456, std::string(70000, 'x'));
  TxnHeader h;
  ASSERT_TRUE(decode_txn(body, h));
  EXPECT_EQ(h.type, -11);
  EXPECT_EQ(h.session, -5);
  EXPECT_EQ(h.cxid, 123456);
  EXPECT_EQ(h.payload.size(), 70000u);
  for (size_t n = 0; n < 40; ++n)
    EXPECT_FALSE(decode_txn(std::string_view(body).substr(0, n), h)) << n;
  EXPECT_FALSE(decode_txn(body + "x", h));
}

TEST_F(MachineTest, CreateRepliesWithTheNameAndCreate2AddsTheStat) {
  auto out = apply(OpCode::create, create_payload("/a"));
  EXPECT_EQ(out.err, Err::ok);
  JuteReader r(out.response);
  EXPECT_EQ(r.read_string(), "/a");
  EXPECT_TRUE(r.at_end());
  auto out2 = apply(OpCode::create2, create_payload("/b"));
  JuteReader r2(out2.response);
  EXPECT_EQ(r2.read_string(), "/b");
  proto::Stat st;
  ASSERT_TRUE(proto::read(r2, st));
  EXPECT_EQ(st.czxid, zxid);
  EXPECT_EQ(st.ctime, 5000);
  EXPECT_EQ(sm.last_applied(), zxid);
}

TEST_F(MachineTest, ContainerAndTtlModesFollowZooKeepersRules) {
  // As Apache ZooKeeper 3.8 answers: create makes a plain node of a container
  // mode; TTL modes need createTTL and extended types.
  EXPECT_EQ(apply(OpCode::create, create_payload("/c", 4)).err, Err::ok);
  EXPECT_EQ(tree.find("/c")->ephemeral_owner(), 0);
  EXPECT_EQ(apply(OpCode::create, create_payload("/t", 5)).err, Err::unimplemented);
  EXPECT_EQ(apply(OpCode::create, create_payload("/x", 9)).err, Err::bad_arguments);
  EXPECT_EQ(apply(OpCode::create_container, create_payload("/box", 0)).err, Err::ok);
  EXPECT_EQ(tree.find("/box")->ephemeral_owner(), kContainerOwner);
  EXPECT_EQ(tree.stat(*tree.find("/box")).ephemeral_owner, 0);  // clients see 0
  EXPECT_EQ(apply(OpCode::create_ttl, ttl_payload("/ttl", 5, 1000)).err, Err::unimplemented);
  sm.set_extended_types(true);
  EXPECT_EQ(apply(OpCode::create, create_payload("/t", 5)).err, Err::bad_arguments);
  EXPECT_EQ(apply(OpCode::create_ttl, ttl_payload("/ttl", 0, 1000)).err, Err::bad_arguments);
  EXPECT_EQ(apply(OpCode::create_ttl, ttl_payload("/ttl", 5, 0)).err, Err::bad_arguments);
  EXPECT_EQ(apply(OpCode::create_ttl, ttl_payload("/ttl", 5, kMaxTtlMs + 1)).err,
            Err::bad_arguments);
  EXPECT_EQ(apply(OpCode::create_ttl, ttl_payload("/ttl", 5, 1000)).err, Err::ok);
  EXPECT_EQ(tree.find("/ttl")->ephemeral_owner(), ttl_owner(1000));
}

TEST_F(MachineTest, EmptiedContainersAndExpiredTtlNodesAreCollected) {
  sm.set_extended_types(true);
  apply(OpCode::create_container, create_payload("/box", 4));
  apply(OpCode::create_container, create_payload("/never-used", 4));
  apply(OpCode::create_ttl, ttl_payload("/ttl", 5, 100));  // mtime 5000
  EXPECT_TRUE(tree.expired_containers(5050).empty());
  apply(OpCode::create, create_payload("/box/item"));
  apply(OpCode::remove, check_payload("/box/item", -1));
  auto due = tree.expired_containers(5200);
  std::sort(due.begin(), due.end());
  EXPECT_EQ(due, (std::vector<std::string>{"/box", "/ttl"}));
  std::string path;
  JuteWriter w(path);
  w.write_string("/box");
  auto out = sm.apply(
      {++zxid, 5200, encode_txn(static_cast<int32_t>(OpCode::delete_container), 0, 0, path)});
  EXPECT_EQ(out.err, Err::ok);
  EXPECT_EQ(tree.find("/box"), nullptr);
  EXPECT_NE(tree.find("/never-used"), nullptr);
}

TEST_F(MachineTest, MultiCommitsEveryOpAtomically) {
  auto out = apply(OpCode::multi, multi_payload({{OpCode::create, create_payload("/m")},
                                                 {OpCode::create2, create_payload("/m/c")},
                                                 {OpCode::check, check_payload("/m", 0)}}));
  EXPECT_EQ(out.err, Err::ok);
  JuteReader r(out.response);
  proto::MultiHeader h;
  ASSERT_TRUE(proto::read(r, h));
  EXPECT_EQ(h.type, 1);
  EXPECT_EQ(r.read_string(), "/m");
  ASSERT_TRUE(proto::read(r, h));
  EXPECT_EQ(h.type, 15);
  EXPECT_EQ(r.read_string(), "/m/c");
  proto::Stat st;
  ASSERT_TRUE(proto::read(r, st));
  ASSERT_TRUE(proto::read(r, h));
  EXPECT_EQ(h.type, 13);
  ASSERT_TRUE(proto::read(r, h));
  EXPECT_TRUE(h.done);
  EXPECT_TRUE(r.at_end());
  EXPECT_NE(tree.find("/m/c"), nullptr);
  EXPECT_EQ(out.changes.size(), 4u);
}

TEST_F(MachineTest, FailedMultiRollsBackAndReportsEachOp) {
  auto out = apply(OpCode::multi, multi_payload({{OpCode::create, create_payload("/r")},
                                                 {OpCode::check, check_payload("/r", 5)},
                                                 {OpCode::create, create_payload("/r2")}}));
  // As ZooKeeper: the reply header says OK; the results say what failed.
  EXPECT_EQ(out.err, Err::ok);
  EXPECT_EQ(tree.find("/r"), nullptr);
  EXPECT_TRUE(out.changes.empty());
  JuteReader r(out.response);
  std::vector<int32_t> errs;
  while (true) {
    proto::MultiHeader h;
    ASSERT_TRUE(proto::read(r, h));
    if (h.done) break;
    EXPECT_EQ(h.type, -1);
    errs.push_back(r.read_int());
    EXPECT_EQ(errs.back(), h.err);
  }
  EXPECT_EQ(errs, (std::vector<int32_t>{0, -103, -2}));
}

TEST_F(MachineTest, SessionsAreReplicatedState) {
  apply(OpCode::create_session, session_payload(6000, std::string(16, 'k')), 42, 0);
  ASSERT_NE(tree.session(42), nullptr);
  EXPECT_EQ(tree.session(42)->timeout_ms, 6000);
  apply(OpCode::create, create_payload("/eph", 1), 42);
  EXPECT_EQ(tree.stat(*tree.find("/eph")).ephemeral_owner, 42);
  auto out = apply(OpCode::close_session, "", 42);
  EXPECT_EQ(tree.find("/eph"), nullptr);
  EXPECT_EQ(tree.session(42), nullptr);
  EXPECT_FALSE(out.changes.empty());
}

TEST_F(MachineTest, RequestsOfAGoneSessionChangeNothing) {
  apply(OpCode::close_session, "", 1);
  auto out = apply(OpCode::create, create_payload("/late", 1), 1);
  EXPECT_EQ(out.err, Err::session_expired);
  EXPECT_EQ(tree.find("/late"), nullptr);  // no orphaned ephemeral
  EXPECT_TRUE(out.changes.empty());
}

TEST(WellFormed, RefusesTruncatedAndForeignOps) {
  EXPECT_TRUE(well_formed_write(1, create_payload("/a")));
  EXPECT_FALSE(well_formed_write(1, create_payload("/a").substr(0, 10)));
  EXPECT_FALSE(well_formed_write(4, ""));  // getData is not a write
  EXPECT_TRUE(well_formed_write(14, multi_payload({{OpCode::create, create_payload("/a")}})));
  EXPECT_FALSE(well_formed_write(14, multi_payload({{OpCode::get_data, check_payload("/a", 1)}})));
}

TEST(RestoreTxn, PiecesRoundTripAndMalformedOnesAreRefused) {
  RestorePiece begin;
  begin.phase = RestorePiece::begin;
  begin.id = 77;
  begin.total = 1 << 20;
  begin.chunks = 2;
  begin.crc = 0xdeadbeef;
  begin.backup_zxid = 0x500000012;
  TxnHeader h;
  const sdk::Bytes begun = encode_restore_txn(begin);  // h.payload points into it
  ASSERT_TRUE(decode_txn(begun, h));
  EXPECT_EQ(h.type, kRestoreTxn);
  EXPECT_EQ(h.session, 0);
  RestorePiece p;
  ASSERT_TRUE(decode_restore_payload(h.payload, p));
  EXPECT_EQ(p.phase, RestorePiece::begin);
  EXPECT_EQ(p.id, 77);
  EXPECT_EQ(p.total, 1 << 20);
  EXPECT_EQ(p.chunks, 2);
  EXPECT_EQ(p.crc, 0xdeadbeefu);
  EXPECT_EQ(p.backup_zxid, 0x500000012u);

  RestorePiece chunk;
  chunk.phase = RestorePiece::chunk;
  chunk.id = 77;
  chunk.seq = 1;
  chunk.data = "some bytes";
  const sdk::Bytes body = encode_restore_txn(chunk);
  ASSERT_TRUE(decode_txn(body, h));
  ASSERT_TRUE(decode_restore_payload(h.payload, p));
  EXPECT_EQ(p.phase, RestorePiece::chunk);
  EXPECT_EQ(p.seq, 1);
  EXPECT_EQ(p.data, "some bytes");
  // Every cut of the payload is refused, and so are trailing bytes, an
  // unknown phase and a negative size.
  const std::string payload(h.payload);
  for (size_t n = 0; n < payload.size(); ++n)
    EXPECT_FALSE(decode_restore_payload(std::string_view(payload).substr(0, n), p)) << n;
  EXPECT_FALSE(decode_restore_payload(payload + "x", p));
  std::string odd;
  JuteWriter w(odd);
  w.write_int(9);
  w.write_long(1);
  EXPECT_FALSE(decode_restore_payload(odd, p));
  begin.total = -1;
  const sdk::Bytes negative = encode_restore_txn(begin);
  ASSERT_TRUE(decode_txn(negative, h));
  EXPECT_FALSE(decode_restore_payload(h.payload, p));
}

TEST_F(MachineTest, RestorePiecesLeaveTheTreeToTheServer) {
  RestorePiece end;
  end.phase = RestorePiece::end;
  end.id = 5;
  const size_t before = tree.node_count();
  ApplyOutcome out = sm.apply(sdk::LogEntry{0x10, 1, encode_restore_txn(end)});
  EXPECT_EQ(out.type, kRestoreTxn);
  EXPECT_EQ(out.err, Err::ok);
  EXPECT_TRUE(out.changes.empty());
  EXPECT_EQ(tree.node_count(), before);
  EXPECT_EQ(sm.last_applied(), 0x10u);
}
