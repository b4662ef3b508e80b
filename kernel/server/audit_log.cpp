#include "server/audit_log.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>

#include "corral/proto/codes.hpp"
#include "corral/proto/jute.hpp"
#include "corral/proto/records.hpp"
#include "server/server_stats.hpp"

namespace corral::kernel {

using proto::OpCode;

namespace {

constexpr size_t kMaxBuffered = 4 << 20;  // past this a turn's lines are written at once

const char* mode_name(int32_t flags) {
  switch (static_cast<proto::CreateMode>(flags)) {
    case proto::CreateMode::persistent:
      return "persistent";
    case proto::CreateMode::ephemeral:
      return "ephemeral";
    case proto::CreateMode::persistent_sequential:
      return "persistent_sequential";
    case proto::CreateMode::ephemeral_sequential:
      return "ephemeral_sequential";
    case proto::CreateMode::container:
      return "container";
    case proto::CreateMode::persistent_with_ttl:
      return "persistent_with_ttl";
    case proto::CreateMode::persistent_sequential_with_ttl:
      return "persistent_sequential_with_ttl";
  }
  return "unknown";
}

std::string perms_text(int32_t p) {
  std::string out;
  if (p & proto::perm::create) out += 'c';
  if (p & proto::perm::remove) out += 'd';
  if (p & proto::perm::read) out += 'r';
  if (p & proto::perm::write) out += 'w';
  if (p & proto::perm::admin) out += 'a';
  return out;
}

// Tabs and line ends inside a field would break the line's shape.
std::string clean(std::string_view s) {
  if (s.find_first_of("\t\n\r") == std::string_view::npos) return std::string(s);
  std::string out(s);
  for (char& c : out)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return out;
}

}  // namespace

AuditLog::~AuditLog() {
  if (file_) {
    flush();
    std::fclose(file_);
  }
}

sdk::Status AuditLog::open(const std::string& path, int64_t max_bytes) {
  path_ = path;
  max_bytes_ = max_bytes;
  file_ = std::fopen(path.c_str(), "ae");
  if (!file_)
    return {sdk::Errc::io_error,
            "server.audit_log: cannot open '" + path + "': " + std::strerror(errno)};
  std::fseek(file_, 0, SEEK_END);
  size_ = std::ftell(file_);
  return {};
}

std::string AuditLog::describe(int64_t session, const Ids& ids, std::string_view remote,
                               int32_t type, std::string_view payload) {
  // Only the fields the line needs are read, as views into the request.
  proto::JuteReader r(payload);
  std::string_view path = r.read_string();
  if (!r.ok()) return "";
  std::string tail;
  switch (static_cast<OpCode>(type)) {
    case OpCode::create:
    case OpCode::create2:
    case OpCode::create_container:
    case OpCode::create_ttl: {
      r.read_buffer();  // data
      int32_t n = r.read_count(12);
      for (int32_t i = 0; r.ok() && i < n; ++i) {
        r.read_int();
        r.read_string();
        r.read_string();
      }
      int32_t flags = r.read_int();
      if (!r.ok()) return "";
      if (type == static_cast<int32_t>(OpCode::create_container))
        flags = static_cast<int32_t>(proto::CreateMode::container);
      tail = "\toperation=create\tznode=" + clean(path) + "\tznode_type=" + mode_name(flags);
      break;
    }
    case OpCode::remove:
      tail = "\toperation=delete\tznode=" + clean(path);
      break;
    case OpCode::set_data:
      tail = "\toperation=setData\tznode=" + clean(path);
      break;
    case OpCode::set_acl: {
      proto::JuteReader full(payload);
      proto::SetAclRequest req;
      if (!proto::read(full, req)) return "";
      std::string acl;
      for (const proto::Acl& a : req.acl) {
        std::string id =
            a.id.scheme == "digest" ? a.id.id.substr(0, a.id.id.find(':')) + ":x" : a.id.id;
        acl += (acl.empty() ? "" : ",") + a.id.scheme + ":" + id + ":" + perms_text(a.perms);
      }
      tail = "\toperation=setAcl\tznode=" + clean(req.path) + "\tacl=" + clean(acl);
      break;
    }
    case OpCode::multi:
      tail = "\toperation=multiOperation";
      break;
    case OpCode::reconfig:
      tail = "\toperation=reconfig";
      break;
    default:
      return "";
  }
  std::string out;
  out.reserve(64 + tail.size());
  out += "session=";
  out += session_hex(session);
  out += "\tuser=";
  bool first = true;
  for (const proto::Id& id : ids) {
    if (id.scheme == "super") continue;
    // A digest id's hash is not the audit log's to keep.
    std::string_view name = id.id;
    if (id.scheme == "digest") name = name.substr(0, name.find(':'));
    if (!first) out += ',';
    out += clean(name);
    first = false;
  }
  out += "\tip=";
  size_t colon = remote.rfind(':');
  out += remote.substr(0, colon);
  out += tail;
  return out;
}

void AuditLog::record(const std::string& described, bool success) {
  if (described.empty() || !file_) return;
  begin_line();
  buffer_ += described;
  buffer_ += success ? "\tresult=success\n" : "\tresult=failure\n";
  end_line();
}

void AuditLog::submitted(int64_t session, int32_t cxid, std::string described) {
  if (described.empty()) return;
  if (pending_.size() >= kMaxPending) pending_.erase(pending_.begin());
  pending_[{session, cxid}] = std::move(described);
}

void AuditLog::applied(int64_t session, int32_t cxid, bool success) {
  if (pending_.empty()) return;
  auto it = pending_.find({session, cxid});
  if (it == pending_.end()) return;
  record(it->second, success);
  pending_.erase(it);
}

void AuditLog::server_event(std::string_view operation) {
  if (!file_) return;
  begin_line();
  buffer_ += "user=corrald\toperation=";
  buffer_ += operation;
  buffer_ += "\tresult=success\n";
  end_line();
  flush();
}

void AuditLog::begin_line() {
  int64_t ms = clock_.wall_ms();
  int64_t sec = ms / 1000;
  if (sec != stamp_second_) {
    // The date and time are formatted once a second; the milliseconds each line.
    std::time_t t = static_cast<std::time_t>(sec);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    stamp_ = stamp;
    stamp_second_ = sec;
  }
  int m = static_cast<int>(ms % 1000);
  buffer_ += stamp_;
  buffer_ += static_cast<char>('0' + m / 100);
  buffer_ += static_cast<char>('0' + m / 10 % 10);
  buffer_ += static_cast<char>('0' + m % 10);
  buffer_ += "Z\t";
}

void AuditLog::end_line() {
  ++lines_;
  if (buffer_.size() >= kMaxBuffered) return flush();
  if (flush_posted_) return;
  flush_posted_ = true;
  executor_.post([this] { flush(); });
}

void AuditLog::flush() {
  flush_posted_ = false;
  if (!file_ || buffer_.empty()) return;
  if (max_bytes_ > 0 && size_ + static_cast<int64_t>(buffer_.size()) > max_bytes_ && size_ > 0) {
    // Rolled: the full file becomes <file>.1 (replacing the one before).
    std::fclose(file_);
    std::rename(path_.c_str(), (path_ + ".1").c_str());
    file_ = std::fopen(path_.c_str(), "ae");
    size_ = 0;
    if (!file_) return;
  }
  std::fwrite(buffer_.data(), 1, buffer_.size(), file_);
  std::fflush(file_);
  size_ += static_cast<int64_t>(buffer_.size());
  buffer_.clear();
}

}  // namespace corral::kernel
