// Raft's messages between servers, as msgpack frames on the quorum channel.
//
// Every message is self-contained and carries the sender's term: Raft needs
// no session, sequence numbers or ordered delivery. A lost, duplicated or
// reordered message costs at most a retry (the leader's next append or
// heartbeat finds the gap, and forwarded writes and syncs are retransmitted
// until answered).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "corral/sdk/types.hpp"

namespace corral::raft {

enum class MsgType : uint8_t {
  pre_vote = 1,           // term (the one it would stand in), last
  pre_vote_reply = 2,     // term, granted
  vote = 3,               // term, last, flag (a leader handover: stickiness waived)
  vote_reply = 4,         // term, granted
  append = 5,             // term, prev, commit, round, send_id, fwd_nonce, fwd_next, entries
  append_reply = 6,       // term, granted (matched), flag (busy), zxid (match / hint),
                          // commit, durable, round, send_id, body (session activity)
  ack = 7,                // term, durable
  snapshot = 8,           // term, zxid, commit, seq (this piece's offset), id (the
                          // snapshot's size), body (the piece)
  snapshot_reply = 9,     // term, zxid, granted; flag: a piece taken, seq = where it ends;
                          // not granted: seq = bytes held after a gap (0: start over)
  forward = 10,           // term, fwd_nonce, seq, body (a client write)
  rejected = 11,          // term, body, id (Errc), text
  sync_request = 12,      // term, id
  sync_reply = 13,        // term, id, zxid (read index)
  timeout_now = 14,       // term, zxid (the leader's last entry): campaign at once
  transfer_request = 15,  // term, id (request), target (0: any)
  transfer_reply = 16,    // term, id (request), code (0 ok, else Errc), text
  // A handover without `looking` (see raft.hpp):
  // Each carries id, the handover's number: a late message of another is
  // ignored.
  hold = 17,       // leader -> member: term, id, target; hold new writes, answer HOLD_ACK
  hold_ack = 18,   // member -> leader: term, id, granted (serving clients), fwd_nonce,
                   // seq (the stream's next: all below were sent before the hold)
  take_over = 19,  // leader -> member: term, id, target, zxid (the frozen log's last
                   // entry), fwd_nonce, seq (taken below); follow the next leader
  release = 20,    // leader -> member: term, id; the handover is called off: send what
                   // was held
};

const char* msg_type_name(MsgType t) noexcept;

struct Msg {
  MsgType type = MsgType::append;
  uint32_t term = 0;
  sdk::Zxid zxid = 0;  // last / prev / match / hint / snapshot / read index
  sdk::Zxid commit = 0;
  sdk::Zxid durable = 0;
  uint64_t round = 0;
  uint64_t send_id = 0;
  uint64_t fwd_nonce = 0;
  uint64_t seq = 0;  // fwd_next in append, seq in forward
  int64_t id = 0;    // request id, Errc, target
  int64_t target = 0;
  bool granted = false;
  bool flag = false;
  sdk::Bytes body;
  std::string text;
  std::vector<sdk::LogEntry> entries;
};

sdk::Bytes encode_message(const Msg& m);
// False when `in` is not a well-formed message (nothing is allocated for a
// count the bytes present cannot hold).
bool decode_message(sdk::BytesView in, Msg& m);

}  // namespace corral::raft
