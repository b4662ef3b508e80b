// Zab's messages between a leader and its learners (followers and
// observers), as msgpack frames on the quorum channel.
//
// Every message belongs to one learner session, named by a nonce the learner
// picks when it (re)connects, and carries a sequence number per direction.
// A receiver drops messages of other sessions and duplicates, and treats a
// gap as a broken session, so the protocol above sees what TCP gives: each
// session's messages in order, or an end.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "corral/sdk/status.hpp"
#include "corral/sdk/storage.hpp"
#include "corral/sdk/types.hpp"

namespace corral::zab {

enum class MsgType : uint8_t {
  follower_info =
      1,  // learner -> leader: epoch = accepted epoch, zxid = last logged, flag = observer
  leader_info = 2,    // leader -> learner: epoch = the new epoch, zxid = the leader's last logged
  ack_epoch = 3,      // learner -> leader: epoch = current epoch, zxid = last logged
  sync = 4,           // leader -> learner: plan, then NEWLEADER(epoch); zxid = committed so far
  ack = 5,            // learner -> leader: zxid durable (zxid = epoch<<32 acknowledges NEWLEADER)
  up_to_date = 6,     // leader -> learner: zxid = committed; serve clients
  proposal = 7,       // leader -> follower: entry
  commit = 8,         // leader -> learner: zxid and everything before it is committed
  inform = 9,         // leader -> observer: a committed entry
  ping = 10,          // both ways; a learner's carries its clients' session activity in body
  request = 11,       // learner -> leader: body = a write to order
  rejected = 12,      // leader -> learner: body = the write, id = Errc, text = why
  sync_request = 13,  // learner -> leader: id
  sync_reply = 14,    // leader -> learner: id, zxid = the leader's last logged when asked
  fetch = 15,         // leader -> learner: zxid = the leader's last logged; send your history
  fetched = 16,       // learner -> leader: plan
  // Leader transfer: the leader, with everything it logged committed and
  // held by the new leader, tells each learner who leads next (id), as of
  // its last zxid (zxid) in its epoch (epoch); each moves there without an
  // election.
  take_over = 17,
  transfer_request = 18,  // learner -> leader: id = the server to hand over to (0: any)
  transfer_reply = 19,    // leader -> learner: id = Errc (0: it leads already), text = why
  leaving = 20,           // learner -> leader, after FOLLOWERINFO: it stops once synced
  hold = 21,              // leader -> learner: handover `id` begins; hold writes, answer HOLD_ACK
  hold_ack = 22,          // learner -> leader: id; every REQUEST before this one was sent
  release = 23,           // leader -> learner: the handover is called off; send what was held
  // A streamed SYNC (see SyncPlan::streamed) is followed by its snapshot's
  // pieces (body) and then its entries, in batches; the learner
  // acknowledges how much of the stream it holds (zxid: snapshot bytes,
  // plus each entry's body and 32), and the leader sends more as it does.
  snap_piece = 24,
  stream_ack = 25,
  sync_entries = 26,  // leader -> learner: plan.entries, the next batch
};
const char* msg_type_name(MsgType t);

// How a server brings another's log in line with its own history.
struct SyncPlan {
  enum class Mode : uint8_t { diff = 0, trunc = 1, snap = 2 };
  Mode mode = Mode::diff;
  sdk::Zxid trunc_zxid = 0;  // trunc: drop every entry after this first
  sdk::Zxid snap_zxid = 0;   // snap: replace the state with this snapshot first
  sdk::Bytes snapshot;
  // Streamed: neither the snapshot nor the entries are in the plan. They
  // follow it: the snapshot in SNAP_PIECEs, `snap_size` bytes in all (0
  // unless a SNAP), read by `reader`; then the entries after `stream_after`
  // up to `entries_last` (0: none) in SYNC_ENTRIES. `reader` and
  // `stream_after` are the sender's alone.
  bool streamed = false;
  uint64_t snap_size = 0;
  sdk::Zxid entries_last = 0;
  sdk::Zxid stream_after = 0;
  std::shared_ptr<sdk::SnapshotReader> reader;
  std::vector<sdk::LogEntry> entries;  // then append these, in order
};

struct Msg {
  MsgType type = MsgType::ping;
  int64_t nonce = 0;
  int64_t seq = 0;
  uint32_t epoch = 0;
  sdk::Zxid zxid = 0;
  bool flag = false;
  int64_t id = 0;
  sdk::Bytes body;
  std::string text;
  sdk::LogEntry entry;
  SyncPlan plan;
};

// The message's fields after its session header, encoded once so that a
// proposal sent to many learners is not encoded for each.
sdk::Bytes encode_payload(const Msg& m);
// A whole message: the session header and a payload from encode_payload.
sdk::Bytes encode_message(MsgType type, int64_t nonce, int64_t seq, sdk::BytesView payload);
// The same, encoded in one go for one learner: a SYNC or FETCHED carrying a
// snapshot of a large tree is written once into a buffer sized for it, with
// kLargeMessageHeadroom to spare, and never copied on its way out.
sdk::Bytes encode_message(const Msg& m, int64_t nonce, int64_t seq);
inline constexpr size_t kLargeMessageHeadroom = 64 << 10;
// What an entry counts for in a stream's acknowledgements.
inline uint64_t stream_units(const sdk::LogEntry& e) { return e.body.size() + 32; }
// A SNAP_PIECE carrying `piece`, written once into a buffer sized for it.
sdk::Bytes encode_snap_piece(int64_t nonce, int64_t seq, sdk::BytesView piece);
// False when `in` is not a well-formed message.
bool decode_message(sdk::BytesView in, Msg& out);

}  // namespace corral::zab
