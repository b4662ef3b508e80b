#include "zab_messages.hpp"

#include "corral/common/msgpack.hpp"

namespace corral::zab {

using common::MsgpackReader;
using common::MsgpackWriter;

const char* msg_type_name(MsgType t) {
  switch (t) {
    case MsgType::follower_info:
      return "FOLLOWERINFO";
    case MsgType::leader_info:
      return "LEADERINFO";
    case MsgType::ack_epoch:
      return "ACKEPOCH";
    case MsgType::sync:
      return "SYNC";
    case MsgType::ack:
      return "ACK";
    case MsgType::up_to_date:
      return "UPTODATE";
    case MsgType::proposal:
      return "PROPOSAL";
    case MsgType::commit:
      return "COMMIT";
    case MsgType::inform:
      return "INFORM";
    case MsgType::ping:
      return "PING";
    case MsgType::request:
      return "REQUEST";
    case MsgType::rejected:
      return "REJECTED";
    case MsgType::sync_request:
      return "SYNC_REQUEST";
    case MsgType::sync_reply:
      return "SYNC_REPLY";
    case MsgType::fetch:
      return "FETCH";
    case MsgType::fetched:
      return "FETCHED";
    case MsgType::take_over:
      return "TAKE_OVER";
    case MsgType::transfer_request:
      return "TRANSFER_REQUEST";
    case MsgType::transfer_reply:
      return "TRANSFER_REPLY";
    case MsgType::leaving:
      return "LEAVING";
    case MsgType::hold:
      return "HOLD";
    case MsgType::hold_ack:
      return "HOLD_ACK";
    case MsgType::release:
      return "RELEASE";
    case MsgType::snap_piece:
      return "SNAP_PIECE";
    case MsgType::stream_ack:
      return "STREAM_ACK";
    case MsgType::sync_entries:
      return "SYNC_ENTRIES";
  }
  return "?";
}

namespace {

void write_entry(MsgpackWriter& w, const sdk::LogEntry& e) {
  w.array(3);
  w.integer(e.zxid);
  w.integer(e.time_ms);
  w.bytes(e.body);
}

bool read_entry(MsgpackReader& r, sdk::LogEntry& e) {
  if (r.array() != 3) return false;
  e.zxid = r.integer();
  e.time_ms = r.integer();
  e.body = std::string(r.bytes());
  return r.ok();
}

void write_entries(MsgpackWriter& w, const std::vector<sdk::LogEntry>& entries) {
  w.array(static_cast<uint32_t>(entries.size()));
  for (const auto& e : entries) write_entry(w, e);
}

bool read_entries(MsgpackReader& r, std::vector<sdk::LogEntry>& out) {
  uint32_t n = r.array();
  if (!r.ok()) return false;
  out.clear();
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    sdk::LogEntry e;
    if (!read_entry(r, e)) return false;
    if (!out.empty() && e.zxid <= out.back().zxid) return false;
    out.push_back(std::move(e));
  }
  return r.ok();
}

void write_plan(MsgpackWriter& w, const SyncPlan& p) {
  w.array(p.streamed ? 7 : 5);
  w.integer(static_cast<int>(p.mode));
  w.integer(p.trunc_zxid);
  w.integer(p.snap_zxid);
  w.bytes(p.snapshot);
  write_entries(w, p.entries);
  if (p.streamed) {
    w.integer(static_cast<int64_t>(p.snap_size));
    w.integer(p.entries_last);
  }
}

bool read_plan(MsgpackReader& r, SyncPlan& p) {
  const uint32_t fields = r.array();
  if (fields != 5 && fields != 7) return false;
  int64_t mode = r.integer();
  if (mode < 0 || mode > 2) return false;
  p.mode = static_cast<SyncPlan::Mode>(mode);
  p.trunc_zxid = r.integer();
  p.snap_zxid = r.integer();
  p.snapshot = std::string(r.bytes());
  if (!read_entries(r, p.entries)) return false;
  p.streamed = fields == 7;
  p.snap_size = 0;
  p.entries_last = 0;
  if (p.streamed) {
    // What follows is not also in the plan; only a SNAP has a snapshot.
    int64_t size = r.integer();
    p.entries_last = r.integer();
    if (size < 0 || (size > 0 && p.mode != SyncPlan::Mode::snap) || p.entries_last < 0 ||
        !p.snapshot.empty() || !p.entries.empty())
      return false;
    p.snap_size = static_cast<uint64_t>(size);
  }
  return r.ok();
}

// Room a payload needs, known before it is written for those that carry a
// snapshot or a history (0: small, let it grow), so that a SNAP of a large
// tree is written into one buffer rather than copied as it grows.
size_t payload_size_hint(const Msg& m) {
  if (m.type != MsgType::sync && m.type != MsgType::fetched && m.type != MsgType::sync_entries)
    return 0;
  size_t n = 64 + m.plan.snapshot.size();
  for (const auto& e : m.plan.entries) n += e.body.size() + 32;
  return n;
}

void write_payload(MsgpackWriter& w, const Msg& m) {
  switch (m.type) {
    case MsgType::follower_info:
    case MsgType::ack_epoch:
    case MsgType::leader_info:
      w.array(3);
      w.integer(m.epoch);
      w.integer(m.zxid);
      w.boolean(m.flag);
      break;
    case MsgType::sync:
      w.array(3);
      w.integer(m.epoch);
      w.integer(m.zxid);
      write_plan(w, m.plan);
      break;
    case MsgType::fetched:
      w.array(1);
      write_plan(w, m.plan);
      break;
    case MsgType::ack:
    case MsgType::up_to_date:
    case MsgType::commit:
    case MsgType::fetch:
      w.array(1);
      w.integer(m.zxid);
      break;
    case MsgType::proposal:
    case MsgType::inform:
      w.array(1);
      write_entry(w, m.entry);
      break;
    case MsgType::ping:
    case MsgType::request:
    case MsgType::snap_piece:
      w.array(1);
      w.bytes(m.body);
      break;
    case MsgType::stream_ack:
      w.array(1);
      w.integer(m.zxid);
      break;
    case MsgType::sync_entries:
      w.array(1);
      write_entries(w, m.plan.entries);
      break;
    case MsgType::rejected:
      w.array(3);
      w.bytes(m.body);
      w.integer(m.id);
      w.bytes(m.text);
      break;
    case MsgType::sync_request:
      w.array(1);
      w.integer(m.id);
      break;
    case MsgType::sync_reply:
      w.array(2);
      w.integer(m.id);
      w.integer(m.zxid);
      break;
    case MsgType::take_over:
      w.array(3);
      w.integer(m.id);
      w.integer(m.epoch);
      w.integer(m.zxid);
      break;
    case MsgType::transfer_request:
      w.array(1);
      w.integer(m.id);
      break;
    case MsgType::transfer_reply:
      w.array(2);
      w.integer(m.id);
      w.bytes(m.text);
      break;
    case MsgType::hold:
    case MsgType::hold_ack:
      w.array(1);
      w.integer(m.id);
      break;
    case MsgType::leaving:
    case MsgType::release:
      w.array(0);
      break;
  }
}

}  // namespace

sdk::Bytes encode_payload(const Msg& m) {
  sdk::Bytes out;
  out.reserve(payload_size_hint(m));
  MsgpackWriter w(out);
  write_payload(w, m);
  return out;
}

sdk::Bytes encode_message(const Msg& m, int64_t nonce, int64_t seq) {
  sdk::Bytes out;
  if (size_t hint = payload_size_hint(m); hint > 0)
    // The peer network puts its frame header in front in place, and what is
    // sent to the same peer in the same turn is appended: room for both.
    out.reserve(hint + 24 + kLargeMessageHeadroom);
  MsgpackWriter w(out);
  w.array(4);
  w.integer(static_cast<int>(m.type));
  w.integer(nonce);
  w.integer(seq);
  write_payload(w, m);
  return out;
}

sdk::Bytes encode_snap_piece(int64_t nonce, int64_t seq, sdk::BytesView piece) {
  sdk::Bytes out;
  out.reserve(piece.size() + 48);
  MsgpackWriter w(out);
  w.array(4);
  w.integer(static_cast<int>(MsgType::snap_piece));
  w.integer(nonce);
  w.integer(seq);
  w.array(1);
  w.bytes(piece);
  return out;
}

sdk::Bytes encode_message(MsgType type, int64_t nonce, int64_t seq, sdk::BytesView payload) {
  sdk::Bytes out;
  out.reserve(payload.size() + 24);
  MsgpackWriter w(out);
  w.array(4);
  w.integer(static_cast<int>(type));
  w.integer(nonce);
  w.integer(seq);
  out.append(payload);
  return out;
}

bool decode_message(sdk::BytesView in, Msg& m) {
  MsgpackReader r(in);
  if (r.array() != 4) return false;
  int64_t type = r.integer();
  if (type < 1 || type > 26) return false;
  m.type = static_cast<MsgType>(type);
  m.nonce = r.integer();
  m.seq = r.integer();
  uint32_t n = r.array();
  if (!r.ok()) return false;
  auto ok = [&](uint32_t want) { return n == want; };
  switch (m.type) {
    case MsgType::follower_info:
    case MsgType::ack_epoch:
    case MsgType::leader_info: {
      if (!ok(3)) return false;
      int64_t e = r.integer();
      if (e < 0 || e > UINT32_MAX) return false;
      m.epoch = static_cast<uint32_t>(e);
      m.zxid = r.integer();
      m.flag = r.boolean();
      break;
    }
    case MsgType::sync: {
      if (!ok(3)) return false;
      int64_t e = r.integer();
      if (e < 0 || e > UINT32_MAX) return false;
      m.epoch = static_cast<uint32_t>(e);
      m.zxid = r.integer();
      if (!read_plan(r, m.plan)) return false;
      break;
    }
    case MsgType::fetched:
      if (!ok(1) || !read_plan(r, m.plan)) return false;
      break;
    case MsgType::ack:
    case MsgType::up_to_date:
    case MsgType::commit:
    case MsgType::fetch:
      if (!ok(1)) return false;
      m.zxid = r.integer();
      break;
    case MsgType::proposal:
    case MsgType::inform:
      if (!ok(1) || !read_entry(r, m.entry)) return false;
      break;
    case MsgType::ping:
    case MsgType::request:
    case MsgType::snap_piece:
      if (!ok(1)) return false;
      m.body = std::string(r.bytes());
      break;
    case MsgType::stream_ack:
      if (!ok(1)) return false;
      m.zxid = r.integer();
      break;
    case MsgType::sync_entries:
      if (!ok(1) || !read_entries(r, m.plan.entries)) return false;
      break;
    case MsgType::rejected:
      if (!ok(3)) return false;
      m.body = std::string(r.bytes());
      m.id = r.integer();
      m.text = std::string(r.bytes());
      break;
    case MsgType::sync_request:
      if (!ok(1)) return false;
      m.id = r.integer();
      break;
    case MsgType::sync_reply:
      if (!ok(2)) return false;
      m.id = r.integer();
      m.zxid = r.integer();
      break;
    case MsgType::take_over: {
      if (!ok(3)) return false;
      m.id = r.integer();
      int64_t e = r.integer();
      if (e < 0 || e > UINT32_MAX) return false;
      m.epoch = static_cast<uint32_t>(e);
      m.zxid = r.integer();
      break;
    }
    case MsgType::transfer_request:
      if (!ok(1)) return false;
      m.id = r.integer();
      break;
    case MsgType::transfer_reply:
      if (!ok(2)) return false;
      m.id = r.integer();
      m.text = std::string(r.bytes());
      break;
    case MsgType::hold:
    case MsgType::hold_ack:
      if (!ok(1)) return false;
      m.id = r.integer();
      break;
    case MsgType::leaving:
    case MsgType::release:
      if (!ok(0)) return false;
      break;
  }
  return r.ok() && r.at_end();
}

}  // namespace corral::zab
