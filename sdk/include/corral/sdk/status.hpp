// Status and Result: how every SDK interface reports failure.
//
// Exceptions never cross the plugin boundary (a module may be built with other
// flags than the kernel). Every fallible call returns a Status or a Result<T>;
// the message is written for the operator who reads the log: what happened,
// where (file, key, path, peer) and, when known, what to do.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace corral::sdk {

// Broad classes of failure; callers branch on these, people read the message.
enum class Errc {
  ok = 0,
  invalid_argument,  // the caller passed something malformed
  not_found,         // a named thing (file, plugin, key, zxid) does not exist
  already_exists,
  io_error,      // the operating system refused a read, write or sync
  no_space,      // ENOSPC: writes fail until space returns; reads keep working
  corrupt,       // stored data failed a check (CRC, length, format)
  unavailable,   // not now: no quorum, not the leader, shutting down
  incompatible,  // ABI or format version mismatch
  internal,      // a bug: an invariant did not hold
};

const char* errc_name(Errc code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool is_ok() const noexcept { return code_ == Errc::ok; }
  explicit operator bool() const noexcept { return is_ok(); }
  Errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // "io_error: fdatasync data/log.1: Input/output error"
  std::string to_string() const;

 private:
  Errc code_ = Errc::ok;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}       // NOLINT: implicit by design
  Result(Status error) : v_(std::move(error)) {}  // NOLINT: must not be ok
  Result(Errc code, std::string message) : v_(Status(code, std::move(message))) {}

  bool is_ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return is_ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return value(); }
  // The failure; an ok Status when there is a value. The reference lives as
  // long as the Result.
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<1>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace corral::sdk
