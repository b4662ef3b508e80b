// Zab's peer messages: a message encoded in one go for one learner (a SYNC
// carrying a snapshot) is byte for byte the one built from a shared payload,
// decodes to what was sent, and leaves room for what follows it.
#include "zab_messages.hpp"

#include <gtest/gtest.h>

using corral::zab::decode_message;
using corral::zab::encode_message;
using corral::zab::encode_payload;
using corral::zab::kLargeMessageHeadroom;
using corral::zab::Msg;
using corral::zab::MsgType;
using corral::zab::SyncPlan;

namespace {

Msg sync_with_snapshot(size_t snapshot_bytes, int entries) {
  Msg m;
  m.type = MsgType::sync;
  m.epoch = 3;
  m.zxid = 0x300000010;
  m.plan.mode = SyncPlan::Mode::snap;
  m.plan.snap_zxid = 0x300000002;
  m.plan.snapshot.assign(snapshot_bytes, '\0');
  for (size_t i = 0; i < snapshot_bytes; ++i) m.plan.snapshot[i] = static_cast<char>(i * 131 % 251);
  for (int i = 0; i < entries; ++i)
    m.plan.entries.push_back({static_cast<int64_t>(0x300000003 + i), 1700000000000 + i,
                              std::string(static_cast<size_t>(10 + i % 300), 'e')});
  return m;
}

}  // namespace

TEST(ZabMessages, OneGoEncodingIsTheSharedPayloadsEncoding) {
  for (auto [snapshot, entries] :
       {std::pair<size_t, int>{0, 0}, {100, 3}, {70000, 20}, {3 << 20, 500}}) {
    Msg m = sync_with_snapshot(snapshot, entries);
    corral::sdk::Bytes whole = encode_message(m, 77, 5);
    EXPECT_EQ(whole, encode_message(m.type, 77, 5, encode_payload(m))) << snapshot;
    // Room for the peer network's frame header and later small messages:
    // a large SYNC is not copied on its way out.
    EXPECT_GE(whole.capacity(), whole.size() + kLargeMessageHeadroom) << snapshot;
    Msg back;
    ASSERT_TRUE(decode_message(whole, back)) << snapshot;
    EXPECT_EQ(back.type, MsgType::sync);
    EXPECT_EQ(back.nonce, 77);
    EXPECT_EQ(back.seq, 5);
    EXPECT_EQ(back.zxid, m.zxid);
    EXPECT_EQ(back.plan.snap_zxid, m.plan.snap_zxid);
    EXPECT_EQ(back.plan.snapshot, m.plan.snapshot);
    ASSERT_EQ(back.plan.entries.size(), m.plan.entries.size());
    for (size_t i = 0; i < m.plan.entries.size(); ++i) {
      EXPECT_EQ(back.plan.entries[i].zxid, m.plan.entries[i].zxid);
      EXPECT_EQ(back.plan.entries[i].body, m.plan.entries[i].body);
    }
  }
}

TEST(ZabMessages, ASyncIsEncodedAsTheWireFormatSays) {
  Msg m;
  m.type = MsgType::sync;
  m.epoch = 3;
  m.zxid = 0x10;
  m.plan.mode = SyncPlan::Mode::snap;
  m.plan.snap_zxid = 5;
  m.plan.snapshot = "ab";
  m.plan.entries.push_back({6, 7, "x"});
  // [type, nonce, seq, [epoch, zxid, [mode, trunc, snap_zxid, snapshot, [[zxid, time, body]]]]]
  const std::string want(
      "\x94\x04\x09\x01\x93\x03\x10\x95\x02\x00\x05\xc4\x02"
      "ab\x91\x93\x06\x07\xc4\x01x",
      22);
  EXPECT_EQ(encode_message(m, 9, 1), want);
  EXPECT_EQ(encode_message(m.type, 9, 1, encode_payload(m)), want);
}

TEST(ZabMessages, SmallMessagesAreEncodedAsBefore) {
  Msg m;
  m.type = MsgType::proposal;
  m.entry = {0x100000001, 1700000000000, "body"};
  EXPECT_EQ(encode_message(m, 1, 2), encode_message(m.type, 1, 2, encode_payload(m)));
  m.type = MsgType::ping;
  m.body = "activity";
  EXPECT_EQ(encode_message(m, 1, 3), encode_message(m.type, 1, 3, encode_payload(m)));
  Msg back;
  ASSERT_TRUE(decode_message(encode_message(m, 1, 3), back));
  EXPECT_EQ(back.body, "activity");
}

// A streamed SYNC: it announces the snapshot's size and the last entry, and
// carries neither; the pieces and the entries follow, each written once.
TEST(ZabMessages, AStreamedSyncAnnouncesWhatFollows) {
  Msg m = sync_with_snapshot(0, 0);
  m.plan.streamed = true;
  m.plan.snap_size = 150u << 20;
  m.plan.entries_last = 0x300000400;
  m.plan.stream_after = 0x300000002;  // the sender's own: not sent
  corral::sdk::Bytes whole = encode_message(m, 9, 1);
  EXPECT_LT(whole.size(), 200u);
  Msg back;
  ASSERT_TRUE(decode_message(whole, back));
  EXPECT_TRUE(back.plan.streamed);
  EXPECT_EQ(back.plan.snap_size, m.plan.snap_size);
  EXPECT_EQ(back.plan.entries_last, m.plan.entries_last);
  EXPECT_EQ(back.plan.stream_after, 0);
  EXPECT_TRUE(back.plan.snapshot.empty());
  EXPECT_TRUE(back.plan.entries.empty());
  // A plan of the old form is not streamed.
  ASSERT_TRUE(decode_message(encode_message(sync_with_snapshot(100, 1), 9, 1), back));
  EXPECT_FALSE(back.plan.streamed);
  // A streamed DIFF has no snapshot, and may have no entries.
  Msg diff = m;
  diff.plan.mode = SyncPlan::Mode::diff;
  diff.plan.snap_size = 0;
  ASSERT_TRUE(decode_message(encode_message(diff, 9, 1), back));
  EXPECT_EQ(back.plan.mode, SyncPlan::Mode::diff);

  // Refused: a snapshot announced for what is no SNAP, or what follows
  // also carried in the plan.
  diff.plan.snap_size = 10;
  EXPECT_FALSE(decode_message(encode_message(diff, 9, 1), back));
  Msg both = sync_with_snapshot(10, 0);
  both.plan.streamed = true;
  both.plan.snap_size = 10;
  EXPECT_FALSE(decode_message(encode_message(both, 9, 1), back));
  Msg entries_too = sync_with_snapshot(0, 2);
  entries_too.plan.streamed = true;
  EXPECT_FALSE(decode_message(encode_message(entries_too, 9, 1), back));

  std::string piece(70000, 'p');
  corral::sdk::Bytes p = corral::zab::encode_snap_piece(9, 2, piece);
  Msg pm;
  pm.type = MsgType::snap_piece;
  pm.body = piece;
  EXPECT_EQ(p, encode_message(pm, 9, 2));
  ASSERT_TRUE(decode_message(p, back));
  EXPECT_EQ(back.type, MsgType::snap_piece);
  EXPECT_EQ(back.seq, 2);
  EXPECT_EQ(back.body, piece);

  Msg batch = sync_with_snapshot(0, 50);
  batch.type = MsgType::sync_entries;
  ASSERT_TRUE(decode_message(encode_message(batch, 9, 3), back));
  EXPECT_EQ(back.type, MsgType::sync_entries);
  ASSERT_EQ(back.plan.entries.size(), 50u);
  EXPECT_EQ(back.plan.entries[49].zxid, batch.plan.entries[49].zxid);
  // Out of order: refused.
  std::swap(batch.plan.entries[3], batch.plan.entries[4]);
  EXPECT_FALSE(decode_message(encode_message(batch, 9, 3), back));

  Msg ack;
  ack.type = MsgType::stream_ack;
  ack.zxid = 70000;
  ASSERT_TRUE(decode_message(encode_message(ack, 9, 4), back));
  EXPECT_EQ(back.type, MsgType::stream_ack);
  EXPECT_EQ(back.zxid, 70000);
}
