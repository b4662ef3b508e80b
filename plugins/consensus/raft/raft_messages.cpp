// Raft's wire format: one msgpack array of fifteen fields, the same for
// every message type (a field a type does not use is 0 or empty, one byte),
// so that one decoder checks every message the same way.
#include "raft_messages.hpp"

#include <limits>

#include "corral/common/msgpack.hpp"

namespace corral::raft {

using common::MsgpackReader;
using common::MsgpackWriter;

namespace {

constexpr uint32_t kFields = 15;

}  // namespace

const char* msg_type_name(MsgType t) noexcept {
  switch (t) {
    case MsgType::pre_vote:
      return "PRE_VOTE";
    case MsgType::pre_vote_reply:
      return "PRE_VOTE_REPLY";
    case MsgType::vote:
      return "VOTE";
    case MsgType::vote_reply:
      return "VOTE_REPLY";
    case MsgType::append:
      return "APPEND";
    case MsgType::append_reply:
      return "APPEND_REPLY";
    case MsgType::ack:
      return "ACK";
    case MsgType::snapshot:
      return "SNAPSHOT";
    case MsgType::snapshot_reply:
      return "SNAPSHOT_REPLY";
    case MsgType::forward:
      return "FORWARD";
    case MsgType::rejected:
      return "REJECTED";
    case MsgType::sync_request:
      return "SYNC_REQUEST";
    case MsgType::sync_reply:
      return "SYNC_REPLY";
    case MsgType::timeout_now:
      return "TIMEOUT_NOW";
    case MsgType::transfer_request:
      return "TRANSFER_REQUEST";
    case MsgType::transfer_reply:
      return "TRANSFER_REPLY";
    case MsgType::hold:
      return "HOLD";
    case MsgType::hold_ack:
      return "HOLD_ACK";
    case MsgType::take_over:
      return "TAKE_OVER";
    case MsgType::release:
      return "RELEASE";
  }
  return "UNKNOWN";
}

sdk::Bytes encode_message(const Msg& m) {
  size_t size = 96 + m.body.size() + m.text.size();
  for (const auto& e : m.entries) size += 32 + e.body.size();
  sdk::Bytes out;
  out.reserve(size);
  MsgpackWriter w(out);
  w.array(kFields);
  w.integer(static_cast<int64_t>(m.type));
  w.integer(m.term);
  w.integer(m.zxid);
  w.integer(m.commit);
  w.integer(m.durable);
  w.integer(static_cast<int64_t>(m.round));
  w.integer(static_cast<int64_t>(m.send_id));
  w.integer(static_cast<int64_t>(m.fwd_nonce));
  w.integer(static_cast<int64_t>(m.seq));
  w.integer(m.id);
  w.integer(m.target);
  w.integer((m.granted ? 1 : 0) | (m.flag ? 2 : 0));
  w.bytes(m.body);
  w.bytes(m.text);
  w.array(static_cast<uint32_t>(m.entries.size()));
  for (const auto& e : m.entries) {
    w.array(3);
    w.integer(e.zxid);
    w.integer(e.time_ms);
    w.bytes(e.body);
  }
  return out;
}

bool decode_message(sdk::BytesView in, Msg& m) {
  MsgpackReader r(in);
  if (r.array() != kFields) return false;
  int64_t type = r.integer();
  if (type < static_cast<int64_t>(MsgType::pre_vote) ||
      type > static_cast<int64_t>(MsgType::release))
    return false;
  m.type = static_cast<MsgType>(type);
  int64_t term = r.integer();
  if (term < 0 || term > std::numeric_limits<uint32_t>::max()) return false;
  m.term = static_cast<uint32_t>(term);
  m.zxid = r.integer();
  m.commit = r.integer();
  m.durable = r.integer();
  m.round = static_cast<uint64_t>(r.integer());
  m.send_id = static_cast<uint64_t>(r.integer());
  m.fwd_nonce = static_cast<uint64_t>(r.integer());
  m.seq = static_cast<uint64_t>(r.integer());
  m.id = r.integer();
  m.target = r.integer();
  int64_t flags = r.integer();
  if (flags < 0 || flags > 3) return false;
  m.granted = (flags & 1) != 0;
  m.flag = (flags & 2) != 0;
  m.body = std::string(r.bytes());
  m.text = std::string(r.bytes());
  uint32_t n = r.array();  // fails here when n cannot fit in what is left
  if (!r.ok()) return false;
  if (m.zxid < 0 || m.commit < 0 || m.durable < 0) return false;
  m.entries.clear();
  m.entries.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    if (r.array() != 3) return false;
    sdk::LogEntry e;
    e.zxid = r.integer();
    e.time_ms = r.integer();
    e.body = std::string(r.bytes());
    if (!r.ok() || e.zxid <= 0) return false;
    // Entries come in log order, each after the one before it.
    if (!m.entries.empty() ? e.zxid <= m.entries.back().zxid : e.zxid <= m.zxid) return false;
    m.entries.push_back(std::move(e));
  }
  return r.ok() && r.at_end();
}

}  // namespace corral::raft
