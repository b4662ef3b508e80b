// The audit log, as ZooKeeper's audit.enable: one line for every change a
// client asked for (create, delete, setData, setAcl, multi, reconfig) with
// who asked (session, identities, address), what, on which znode, and
// whether it succeeded; and a line when the server starts and stops. It goes
// to a file of its own, written as the event loop finishes each turn and
// rolled to <file>.1 when it reaches its size limit.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>

#include "corral/sdk/host.hpp"
#include "session/auth.hpp"

namespace corral::kernel {

class AuditLog {
 public:
  AuditLog(sdk::Executor& executor, const sdk::Clock& clock) : executor_(executor), clock_(clock) {}
  ~AuditLog();

  // Opens (appends to) `path`; errors name it.
  sdk::Status open(const std::string& path, int64_t max_bytes);

  // The part of a change's line known when it is asked for ("" when the
  // request is not audited or does not decode): session, user, ip,
  // operation, znode and its details.
  static std::string describe(int64_t session, const Ids& ids, std::string_view remote,
                              int32_t type, std::string_view payload);

  // The change's line, with its result.
  void record(const std::string& described, bool success);
  // A change submitted for a session here, described; its line is written
  // when it is applied (applied() below), whether or not the client is
  // still connected then. At most kMaxPending wait (older ones are dropped).
  void submitted(int64_t session, int32_t cxid, std::string described);
  void applied(int64_t session, int32_t cxid, bool success);
  static constexpr size_t kMaxPending = 100000;
  // A server event (operation=serverStart, serverStop).
  void server_event(std::string_view operation);

  uint64_t lines() const { return lines_; }

 private:
  void begin_line();  // the timestamp
  void end_line();
  void flush();

  sdk::Executor& executor_;
  const sdk::Clock& clock_;
  std::string path_;
  std::FILE* file_ = nullptr;
  int64_t max_bytes_ = 0, size_ = 0;
  std::string buffer_;
  bool flush_posted_ = false;
  uint64_t lines_ = 0;
  std::map<std::pair<int64_t, int32_t>, std::string> pending_;
  int64_t stamp_second_ = -1;
  std::string stamp_;
};

}  // namespace corral::kernel
