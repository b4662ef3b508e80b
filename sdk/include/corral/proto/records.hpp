// ZooKeeper's jute records (zookeeper.jute), with their encoders and decoders.
// Decoders return false on a short or malformed record and leave the reader
// failed; they never throw.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "corral/proto/codes.hpp"
#include "corral/proto/jute.hpp"

namespace corral::proto {

struct Id {
  std::string scheme;
  std::string id;
  bool operator==(const Id&) const = default;
};
struct Acl {
  int32_t perms = 0;
  Id id;
  bool operator==(const Acl&) const = default;
};
using AclList = std::vector<Acl>;
// world:anyone with every permission: ZooKeeper's OPEN_ACL_UNSAFE.
AclList open_acl_unsafe();

struct Stat {
  int64_t czxid = 0, mzxid = 0, ctime = 0, mtime = 0;
  int32_t version = 0, cversion = 0, aversion = 0;
  int64_t ephemeral_owner = 0;
  int32_t data_length = 0, num_children = 0;
  int64_t pzxid = 0;
  bool operator==(const Stat&) const = default;
};
inline constexpr size_t kStatSize = 68;

void write(JuteWriter& w, const Id& v);
void write(JuteWriter& w, const Acl& v);
void write(JuteWriter& w, const AclList& v);
void write(JuteWriter& w, const Stat& v);
void write(JuteWriter& w, const std::vector<std::string>& v);
bool read(JuteReader& r, Id& v);
bool read(JuteReader& r, Acl& v);
bool read(JuteReader& r, AclList& v);
bool read(JuteReader& r, Stat& v);
bool read(JuteReader& r, std::vector<std::string>& v);

// The first frame of a session. `read_only` is absent from 44-byte requests
// (older clients); `has_read_only` records whether it was sent.
struct ConnectRequest {
  int32_t protocol_version = 0;
  int64_t last_zxid_seen = 0;
  int32_t timeout_ms = 0;
  int64_t session_id = 0;
  std::string password;
  bool read_only = false;
  bool has_read_only = false;
};
void write(JuteWriter& w, const ConnectRequest& v);
bool read(JuteReader& r, ConnectRequest& v);

struct ConnectResponse {
  int32_t protocol_version = 0;
  int32_t timeout_ms = 0;
  int64_t session_id = 0;
  std::string password;
  bool read_only = false;
  bool has_read_only = true;
};
void write(JuteWriter& w, const ConnectResponse& v);
bool read(JuteReader& r, ConnectResponse& v);

struct RequestHeader {
  int32_t xid = 0;
  int32_t type = 0;
};
struct ReplyHeader {
  int32_t xid = 0;
  int64_t zxid = 0;
  int32_t err = 0;
};
void write(JuteWriter& w, const RequestHeader& v);
void write(JuteWriter& w, const ReplyHeader& v);
bool read(JuteReader& r, RequestHeader& v);
bool read(JuteReader& r, ReplyHeader& v);

struct WatcherEvent {
  int32_t type = 0;
  int32_t state = 0;
  std::string path;
};
void write(JuteWriter& w, const WatcherEvent& v);
bool read(JuteReader& r, WatcherEvent& v);

// create, create2, createContainer; createTTL adds `ttl`.
struct CreateRequest {
  std::string path;
  std::string data;
  AclList acl;
  int32_t flags = 0;
  int64_t ttl = 0;
  bool data_null = false;  // the client sent a null buffer (kept as null)
};
void write(JuteWriter& w, const CreateRequest& v, bool with_ttl = false);
bool read(JuteReader& r, CreateRequest& v, bool with_ttl = false);

// delete and check (CheckVersionRequest has the same shape).
struct PathVersionRequest {
  std::string path;
  int32_t version = -1;
};
void write(JuteWriter& w, const PathVersionRequest& v);
bool read(JuteReader& r, PathVersionRequest& v);

// exists, getData, getChildren, getChildren2.
struct PathWatchRequest {
  std::string path;
  bool watch = false;
};
void write(JuteWriter& w, const PathWatchRequest& v);
bool read(JuteReader& r, PathWatchRequest& v);

struct SetDataRequest {
  std::string path;
  std::string data;
  int32_t version = -1;
  bool data_null = false;
};
void write(JuteWriter& w, const SetDataRequest& v);
bool read(JuteReader& r, SetDataRequest& v);

// setACL: the new list, checked against aversion.
struct SetAclRequest {
  std::string path;
  AclList acl;
  int32_t version = -1;
};
void write(JuteWriter& w, const SetAclRequest& v);
bool read(JuteReader& r, SetAclRequest& v);

// addWatch (mode 0 persistent, 1 persistent recursive), and checkWatches /
// removeWatches (mode: the watcher type, 1 children .. 5 persistent recursive).
struct PathModeRequest {
  std::string path;
  int32_t mode = 0;
};
void write(JuteWriter& w, const PathModeRequest& v);
bool read(JuteReader& r, PathModeRequest& v);

// auth (sent with xid -4).
struct AuthPacket {
  int32_t type = 0;
  std::string scheme;
  std::string auth;
};
void write(JuteWriter& w, const AuthPacket& v);
bool read(JuteReader& r, AuthPacket& v);

// sync, getACL, getEphemerals and friends: a single path.
// reconfig (16): incremental (joining/leaving) or a whole new membership;
// each string may be null. Answered with a GetDataResponse of /zookeeper/config.
struct ReconfigRequest {
  std::string joining, leaving, new_members;
  bool joining_null = true, leaving_null = true, new_members_null = true;
  int64_t cur_config_id = -1;
};
void write(JuteWriter& w, const ReconfigRequest& v);
bool read(JuteReader& r, ReconfigRequest& v);

struct PathRequest {
  std::string path;
};
void write(JuteWriter& w, const PathRequest& v);
bool read(JuteReader& r, PathRequest& v);

// setWatches (101); setWatches2 (105) adds the persistent lists.
struct SetWatches {
  int64_t relative_zxid = 0;
  std::vector<std::string> data_watches, exist_watches, child_watches;
  std::vector<std::string> persistent_watches, persistent_recursive_watches;
};
void write(JuteWriter& w, const SetWatches& v, bool v2 = false);
bool read(JuteReader& r, SetWatches& v, bool v2 = false);

// Each operation of a multi and each result is preceded by one of these; a
// header with type -1 and done=true ends the sequence.
struct MultiHeader {
  int32_t type = -1;
  bool done = true;
  int32_t err = -1;
};
void write(JuteWriter& w, const MultiHeader& v);
bool read(JuteReader& r, MultiHeader& v);

// Path validation as ZooKeeper's PathUtils does it. Returns nullptr when
// `path` is valid, else why not ("Path must start with / character").
// A sequential create may end in '/' (the counter is appended).
const char* path_error(std::string_view path, bool sequential = false) noexcept;

// "/a/b" -> "/a"; "/a" -> "/".
std::string_view parent_path(std::string_view path) noexcept;
// "/a/b" -> "b".
std::string_view base_name(std::string_view path) noexcept;

}  // namespace corral::proto
