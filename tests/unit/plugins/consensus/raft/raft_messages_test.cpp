// Raft's wire format: every field survives the trip, and the decoder
// refuses what a member gone bad (or a damaged frame) could send.
#include "raft_messages.hpp"

#include <gtest/gtest.h>

#include <string>

#include "corral/common/msgpack.hpp"

using corral::raft::decode_message;
using corral::raft::encode_message;
using corral::raft::Msg;
using corral::raft::MsgType;

namespace {

Msg full() {
  Msg m;
  m.type = MsgType::append;
  m.term = 7;
  m.zxid = (int64_t{7} << 32) | 3;
  m.commit = (int64_t{6} << 32) | 9;
  m.durable = (int64_t{7} << 32) | 2;
  m.round = 12;
  m.send_id = 99;
  m.fwd_nonce = 0x1234567890abcdefULL >> 1;
  m.seq = 41;
  m.id = 5;
  m.target = 3;
  m.granted = true;
  m.flag = true;
  m.body = std::string("activity\0bytes", 14);
  m.text = "why";
  m.entries.push_back({(int64_t{7} << 32) | 4, 1700000000000, "a"});
  m.entries.push_back({(int64_t{7} << 32) | 5, 1700000000001, std::string(300, 'b')});
  m.entries.push_back({(int64_t{7} << 32) | 6, 1700000000002, ""});  // a no-op
  return m;
}

}  // namespace

TEST(RaftMessages, EveryFieldSurvivesTheTrip) {
  Msg in = full();
  Msg out;
  ASSERT_TRUE(decode_message(encode_message(in), out));
  EXPECT_EQ(out.type, in.type);
  EXPECT_EQ(out.term, in.term);
  EXPECT_EQ(out.zxid, in.zxid);
  EXPECT_EQ(out.commit, in.commit);
  EXPECT_EQ(out.durable, in.durable);
  EXPECT_EQ(out.round, in.round);
  EXPECT_EQ(out.send_id, in.send_id);
  EXPECT_EQ(out.fwd_nonce, in.fwd_nonce);
  EXPECT_EQ(out.seq, in.seq);
  EXPECT_EQ(out.id, in.id);
  EXPECT_EQ(out.target, in.target);
  EXPECT_TRUE(out.granted);
  EXPECT_TRUE(out.flag);
  EXPECT_EQ(out.body, in.body);
  EXPECT_EQ(out.text, in.text);
  ASSERT_EQ(out.entries.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out.entries[i].zxid, in.entries[i].zxid);
    EXPECT_EQ(out.entries[i].time_ms, in.entries[i].time_ms);
    EXPECT_EQ(out.entries[i].body, in.entries[i].body);
  }
}

TEST(RaftMessages, EveryTypeDecodesAndHasAName) {
  for (int t = static_cast<int>(MsgType::pre_vote); t <= static_cast<int>(MsgType::release); ++t) {
    Msg in = full();
    in.type = static_cast<MsgType>(t);
    Msg out;
    ASSERT_TRUE(decode_message(encode_message(in), out)) << t;
    EXPECT_EQ(out.type, in.type);
    EXPECT_STRNE(corral::raft::msg_type_name(out.type), "UNKNOWN") << t;
  }
}

TEST(RaftMessages, EveryCutOfAMessageIsRefused) {
  std::string bytes = encode_message(full());
  Msg out;
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(decode_message(std::string_view(bytes).substr(0, n), out)) << n;
  EXPECT_FALSE(decode_message(bytes + "x", out));  // trailing bytes
}

TEST(RaftMessages, AnEntryCountBeyondTheBytesIsRefusedBeforeAnythingIsSized) {
  std::string bytes;
  corral::common::MsgpackWriter w(bytes);
  w.array(15);
  w.integer(static_cast<int64_t>(MsgType::append));
  for (int i = 0; i < 10; ++i) w.integer(0);
  w.integer(0);  // flags
  w.bytes("");
  w.bytes("");
  bytes += "\xdd\xff\xff\xff\xff";  // an array of 4,294,967,295 entries, and no more bytes
  Msg out;
  EXPECT_FALSE(decode_message(bytes, out));
  EXPECT_TRUE(out.entries.capacity() < 1000);
}

TEST(RaftMessages, MalformedFieldsAreRefused) {
  Msg out;
  auto with = [](auto change) {
    Msg m = full();
    change(m);
    return encode_message(m);
  };
  // Entries out of order, or not after the append's starting point.
  EXPECT_FALSE(decode_message(with([](Msg& m) { std::swap(m.entries[0], m.entries[1]); }), out));
  EXPECT_FALSE(decode_message(with([](Msg& m) { m.entries[0].zxid = m.zxid; }), out));
  EXPECT_FALSE(decode_message(with([](Msg& m) { m.entries[0].zxid = 0; }), out));
  // Negative positions.
  EXPECT_FALSE(decode_message(with([](Msg& m) { m.zxid = -1; }), out));
  EXPECT_FALSE(decode_message(with([](Msg& m) { m.commit = -5; }), out));
  // An unknown type, a term past 32 bits.
  std::string bytes = encode_message(full());
  bytes[1] = 21;
  EXPECT_FALSE(decode_message(bytes, out));
  bytes = encode_message(full());
  bytes[1] = 0;
  EXPECT_FALSE(decode_message(bytes, out));
  std::string big;
  corral::common::MsgpackWriter w(big);
  w.array(15);
  w.integer(1);
  w.integer(int64_t{1} << 33);  // term
  for (int i = 0; i < 9; ++i) w.integer(0);
  w.integer(0);
  w.bytes("");
  w.bytes("");
  w.array(0);
  EXPECT_FALSE(decode_message(big, out));
  // The same with a valid term decodes (the test above fails for the term alone).
  std::string ok;
  corral::common::MsgpackWriter v(ok);
  v.array(15);
  v.integer(1);
  v.integer(1);
  for (int i = 0; i < 9; ++i) v.integer(0);
  v.integer(0);
  v.bytes("");
  v.bytes("");
  v.array(0);
  EXPECT_TRUE(decode_message(ok, out));
  // Flags beyond the two defined.
  std::string flags = ok;
  flags[12] = 4;
  EXPECT_FALSE(decode_message(flags, out));
}
