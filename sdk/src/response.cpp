#include "corral/proto/response.hpp"

namespace corral::proto {

namespace {

bool read_body(int32_t type, JuteReader& r, Response& out) {
  switch (static_cast<OpCode>(type)) {
    case OpCode::create:
    case OpCode::sync:
      out.path = r.read_string();
      break;
    case OpCode::create2:
    case OpCode::create_container:
    case OpCode::create_ttl:
      out.path = r.read_string();
      read(r, out.stat);
      break;
    case OpCode::exists:
    case OpCode::set_data:
    case OpCode::set_acl:
      read(r, out.stat);
      break;
    case OpCode::get_data:
    case OpCode::reconfig:
      out.data = r.read_buffer();
      read(r, out.stat);
      break;
    case OpCode::get_children:
      read(r, out.children);
      break;
    case OpCode::get_children2:
      read(r, out.children);
      read(r, out.stat);
      break;
    case OpCode::get_acl:
      read(r, out.acl);
      read(r, out.stat);
      break;
    case OpCode::get_ephemerals:
      read(r, out.children);
      break;
    case OpCode::who_am_i: {
      int32_t n = r.read_int();
      for (int32_t i = 0; i < n && r.ok(); ++i) {
        Id id;
        id.scheme = r.read_string();
        id.id = r.read_string();
        out.identities.push_back(std::move(id));
      }
      break;
    }
    default:
      break;  // delete, check, ping, setWatches, closeSession, auth, addWatch: no body
  }
  return r.ok();
}

}  // namespace

bool decode_response(int32_t type, Err err, std::string_view body, Response& out) {
  out.err = err;
  out.type = type;
  JuteReader r(body);
  if (static_cast<OpCode>(type) == OpCode::multi ||
      static_cast<OpCode>(type) == OpCode::multi_read) {
    if (err != Err::ok) return true;
    while (true) {
      MultiHeader h;
      if (!read(r, h)) return false;
      if (h.done) break;
      Response sub;
      sub.type = h.type;
      if (h.type == -1) {
        sub.err = static_cast<Err>(r.read_int());
        // A failed multi reports its first real error as the outcome.
        if (out.err == Err::ok && sub.err != Err::ok && sub.err != Err::runtime_inconsistency)
          out.err = sub.err;
      } else if (!read_body(h.type, r, sub)) {
        return false;
      }
      out.results.push_back(std::move(sub));
    }
    return r.ok();
  }
  if (err != Err::ok) return true;
  return read_body(type, r, out);
}

}  // namespace corral::proto
