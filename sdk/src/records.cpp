#include "corral/proto/records.hpp"

namespace corral::proto {

AclList open_acl_unsafe() { return {Acl{perm::all, Id{"world", "anyone"}}}; }

void write(JuteWriter& w, const Id& v) {
  w.write_string(v.scheme);
  w.write_string(v.id);
}
bool read(JuteReader& r, Id& v) {
  v.scheme = r.read_string();
  v.id = r.read_string();
  return r.ok();
}
void write(JuteWriter& w, const Acl& v) {
  w.write_int(v.perms);
  write(w, v.id);
}
bool read(JuteReader& r, Acl& v) {
  v.perms = r.read_int();
  return read(r, v.id);
}
void write(JuteWriter& w, const AclList& v) {
  w.write_count(static_cast<int32_t>(v.size()));
  for (const Acl& a : v) write(w, a);
}
bool read(JuteReader& r, AclList& v) {
  int32_t n = r.read_count(12);
  v.resize(static_cast<size_t>(n));
  for (Acl& a : v) read(r, a);
  return r.ok();
}

void write(JuteWriter& w, const Stat& v) {
  // Every reply to a read or write carries one: room for all of it first,
  // not a string that grows three times on the way.
  w.bytes().reserve(w.bytes().size() + 68);
  w.write_long(v.czxid);
  w.write_long(v.mzxid);
  w.write_long(v.ctime);
  w.write_long(v.mtime);
  w.write_int(v.version);
  w.write_int(v.cversion);
  w.write_int(v.aversion);
  w.write_long(v.ephemeral_owner);
  w.write_int(v.data_length);
  w.write_int(v.num_children);
  w.write_long(v.pzxid);
}
bool read(JuteReader& r, Stat& v) {
  v.czxid = r.read_long();
  v.mzxid = r.read_long();
  v.ctime = r.read_long();
  v.mtime = r.read_long();
  v.version = r.read_int();
  v.cversion = r.read_int();
  v.aversion = r.read_int();
  v.ephemeral_owner = r.read_long();
  v.data_length = r.read_int();
  v.num_children = r.read_int();
  v.pzxid = r.read_long();
  return r.ok();
}

void write(JuteWriter& w, const std::vector<std::string>& v) {
  w.write_count(static_cast<int32_t>(v.size()));
  for (const std::string& s : v) w.write_string(s);
}
bool read(JuteReader& r, std::vector<std::string>& v) {
  int32_t n = r.read_count(4);
  v.clear();
  v.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n && r.ok(); ++i) v.emplace_back(r.read_string());
  return r.ok();
}

void write(JuteWriter& w, const ConnectRequest& v) {
  w.write_int(v.protocol_version);
  w.write_long(v.last_zxid_seen);
  w.write_int(v.timeout_ms);
  w.write_long(v.session_id);
  w.write_buffer(v.password);
  if (v.has_read_only) w.write_bool(v.read_only);
}
bool read(JuteReader& r, ConnectRequest& v) {
  v.protocol_version = r.read_int();
  v.last_zxid_seen = r.read_long();
  v.timeout_ms = r.read_int();
  v.session_id = r.read_long();
  v.password = r.read_buffer();
  v.has_read_only = r.ok() && !r.at_end();
  v.read_only = v.has_read_only && r.read_bool();
  return r.ok();
}

void write(JuteWriter& w, const ConnectResponse& v) {
  w.write_int(v.protocol_version);
  w.write_int(v.timeout_ms);
  w.write_long(v.session_id);
  w.write_buffer(v.password);
  if (v.has_read_only) w.write_bool(v.read_only);
}
bool read(JuteReader& r, ConnectResponse& v) {
  v.protocol_version = r.read_int();
  v.timeout_ms = r.read_int();
  v.session_id = r.read_long();
  v.password = r.read_buffer();
  v.has_read_only = r.ok() && !r.at_end();
  v.read_only = v.has_read_only && r.read_bool();
  return r.ok();
}

void write(JuteWriter& w, const RequestHeader& v) {
  w.write_int(v.xid);
  w.write_int(v.type);
}
bool read(JuteReader& r, RequestHeader& v) {
  v.xid = r.read_int();
  v.type = r.read_int();
  return r.ok();
}
void write(JuteWriter& w, const ReplyHeader& v) {
  w.write_int(v.xid);
  w.write_long(v.zxid);
  w.write_int(v.err);
}
bool read(JuteReader& r, ReplyHeader& v) {
  v.xid = r.read_int();
  v.zxid = r.read_long();
  v.err = r.read_int();
  return r.ok();
}

void write(JuteWriter& w, const WatcherEvent& v) {
  w.write_int(v.type);
  w.write_int(v.state);
  w.write_string(v.path);
}
bool read(JuteReader& r, WatcherEvent& v) {
  v.type = r.read_int();
  v.state = r.read_int();
  v.path = r.read_string();
  return r.ok();
}

void write(JuteWriter& w, const CreateRequest& v, bool with_ttl) {
  w.write_string(v.path);
  if (v.data_null)
    w.write_null_buffer();
  else
    w.write_buffer(v.data);
  write(w, v.acl);
  w.write_int(v.flags);
  if (with_ttl) w.write_long(v.ttl);
}
bool read(JuteReader& r, CreateRequest& v, bool with_ttl) {
  v.path = r.read_string();
  v.data = r.read_buffer(&v.data_null);
  read(r, v.acl);
  v.flags = r.read_int();
  if (with_ttl) v.ttl = r.read_long();
  return r.ok();
}

void write(JuteWriter& w, const PathVersionRequest& v) {
  w.write_string(v.path);
  w.write_int(v.version);
}
bool read(JuteReader& r, PathVersionRequest& v) {
  v.path = r.read_string();
  v.version = r.read_int();
  return r.ok();
}

void write(JuteWriter& w, const PathWatchRequest& v) {
  w.write_string(v.path);
  w.write_bool(v.watch);
}
bool read(JuteReader& r, PathWatchRequest& v) {
  v.path = r.read_string();
  v.watch = r.read_bool();
  return r.ok();
}

void write(JuteWriter& w, const ReconfigRequest& v) {
  auto str = [&](const std::string& s, bool null) {
    if (null)
      w.write_null_buffer();
    else
      w.write_string(s);
  };
  str(v.joining, v.joining_null);
  str(v.leaving, v.leaving_null);
  str(v.new_members, v.new_members_null);
  w.write_long(v.cur_config_id);
}
bool read(JuteReader& r, ReconfigRequest& v) {
  v.joining = r.read_buffer(&v.joining_null);
  v.leaving = r.read_buffer(&v.leaving_null);
  v.new_members = r.read_buffer(&v.new_members_null);
  v.cur_config_id = r.read_long();
  return r.ok();
}

void write(JuteWriter& w, const SetDataRequest& v) {
  w.write_string(v.path);
  if (v.data_null)
    w.write_null_buffer();
  else
    w.write_buffer(v.data);
  w.write_int(v.version);
}
bool read(JuteReader& r, SetDataRequest& v) {
  v.path = r.read_string();
  v.data = r.read_buffer(&v.data_null);
  v.version = r.read_int();
  return r.ok();
}

void write(JuteWriter& w, const SetAclRequest& v) {
  w.write_string(v.path);
  write(w, v.acl);
  w.write_int(v.version);
}
bool read(JuteReader& r, SetAclRequest& v) {
  v.path = r.read_string();
  read(r, v.acl);
  v.version = r.read_int();
  return r.ok();
}

void write(JuteWriter& w, const PathModeRequest& v) {
  w.write_string(v.path);
  w.write_int(v.mode);
}
bool read(JuteReader& r, PathModeRequest& v) {
  v.path = r.read_string();
  v.mode = r.read_int();
  return r.ok();
}

void write(JuteWriter& w, const AuthPacket& v) {
  w.write_int(v.type);
  w.write_string(v.scheme);
  w.write_buffer(v.auth);
}
bool read(JuteReader& r, AuthPacket& v) {
  v.type = r.read_int();
  v.scheme = r.read_string();
  v.auth = r.read_buffer();
  return r.ok();
}

void write(JuteWriter& w, const PathRequest& v) { w.write_string(v.path); }
bool read(JuteReader& r, PathRequest& v) {
  v.path = r.read_string();
  return r.ok();
}

void write(JuteWriter& w, const SetWatches& v, bool v2) {
  w.write_long(v.relative_zxid);
  write(w, v.data_watches);
  write(w, v.exist_watches);
  write(w, v.child_watches);
  if (v2) {
    write(w, v.persistent_watches);
    write(w, v.persistent_recursive_watches);
  }
}
bool read(JuteReader& r, SetWatches& v, bool v2) {
  v.relative_zxid = r.read_long();
  read(r, v.data_watches);
  read(r, v.exist_watches);
  read(r, v.child_watches);
  if (v2) {
    read(r, v.persistent_watches);
    read(r, v.persistent_recursive_watches);
  }
  return r.ok();
}

void write(JuteWriter& w, const MultiHeader& v) {
  w.write_int(v.type);
  w.write_bool(v.done);
  w.write_int(v.err);
}
bool read(JuteReader& r, MultiHeader& v) {
  v.type = r.read_int();
  v.done = r.read_bool();
  v.err = r.read_int();
  return r.ok();
}

namespace {

// Decodes one UTF-8 code point at s[i]; returns its length, 0 if malformed.
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t b = byte(i);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  cp = n == 1 ? b : n == 2 ? (b & 0x1f) : n == 3 ? (b & 0x0f) : (b & 0x07);
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff) return 0;
  return n;
}

// Characters ZooKeeper refuses in a node name (Java UTF-16 ranges; anything
// outside the basic plane is a surrogate pair there, so it is refused too).
bool forbidden(uint32_t c) {
  return (c > 0 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) ||
         c >= 0xfff0;
}

}  // namespace

const char* path_error(std::string_view path, bool sequential) noexcept {
  if (path.empty()) return "Path length must be > 0";
  if (path[0] != '/') return "Path must start with / character";
  if (path.size() == 1) return nullptr;
  if (path.back() == '/' && !sequential) return "Path must not end with / character";
  for (size_t i = 1; i < path.size();) {
    uint32_t c = static_cast<uint8_t>(path[i]);
    size_t n = 1;
    if (c >= 0x80) {  // most paths are ASCII: decode only what is not
      n = decode_utf8(path, i, c);
      if (n == 0) return "invalid character";
      if (c == 0) return "null character not allowed";
      if (forbidden(c)) return "invalid character";
    } else if (c < 0x20 || c == 0x7f) {
      return c == 0 ? "null character not allowed" : "invalid character";
    }
    if (c == '/' && path[i - 1] == '/') return "empty node name specified";
    if (c == '.') {
      // "." or ".." as a whole component.
      size_t start = path.rfind('/', i);
      size_t end = path.find('/', i);
      if (end == std::string_view::npos) end = path.size();
      std::string_view comp = path.substr(start + 1, end - start - 1);
      if (comp == "." || comp == "..") return "relative paths not allowed";
    }
    i += n;
  }
  return nullptr;
}

std::string_view parent_path(std::string_view path) noexcept {
  size_t slash = path.rfind('/');
  if (slash == 0 || slash == std::string_view::npos) return "/";
  return path.substr(0, slash);
}

std::string_view base_name(std::string_view path) noexcept {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace corral::proto
