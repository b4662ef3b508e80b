// Services the kernel offers every plugin: executor, clock, logger, metrics and
// the plugin's own configuration table.
//
// Threading: the kernel runs one event loop. Every callback a plugin receives
// from the kernel, and every callback it hands to the kernel, runs on that loop
// unless a member says otherwise. A plugin that uses threads of its own must
// hop back with Executor::post before touching kernel-owned objects.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "corral/sdk/status.hpp"

namespace boost::asio {
class io_context;
}

namespace corral::sdk {

// Runs work on the kernel's event loop.
class Executor {
 public:
  virtual ~Executor();
  // Queues `fn` to run on the loop after the current callback returns. Safe to
  // call from any thread.
  virtual void post(std::function<void()> fn) = 0;

  // A one-shot timer; destroying or cancelling the handle before it fires
  // guarantees the callback never runs.
  class Timer {
   public:
    virtual ~Timer();
    virtual void cancel() = 0;
  };
  // Runs `fn` on the loop once `delay` has passed (per the steady clock).
  // Loop thread only.
  virtual std::unique_ptr<Timer> schedule(std::chrono::milliseconds delay,
                                          std::function<void()> fn) = 0;

  // The Boost.Asio context behind the loop, for plugins that do socket I/O
  // (transport, discovery). Modules and kernel share one Boost build, which the
  // loader checks through the descriptor's build id.
  virtual boost::asio::io_context& io_context() = 0;
};

// Time. Deterministic tests substitute a fake clock.
class Clock {
 public:
  virtual ~Clock();
  // Monotonic milliseconds for timeouts and latencies; never goes back.
  virtual int64_t steady_ms() const = 0;
  // Wall-clock milliseconds since the Unix epoch, for ctime/mtime.
  virtual int64_t wall_ms() const = 0;
};

enum class LogLevel { trace, debug, info, warn, error };
const char* log_level_name(LogLevel level) noexcept;

// Structured enough for operators, cheap enough for hot paths: callers check
// enabled() before formatting an expensive message. Any thread.
class Logger {
 public:
  virtual ~Logger();
  virtual bool enabled(LogLevel level) const = 0;
  virtual void log(LogLevel level, std::string_view message) = 0;

  void trace(std::string_view m) {
    if (enabled(LogLevel::trace)) log(LogLevel::trace, m);
  }
  void debug(std::string_view m) {
    if (enabled(LogLevel::debug)) log(LogLevel::debug, m);
  }
  void info(std::string_view m) { log(LogLevel::info, m); }
  void warn(std::string_view m) { log(LogLevel::warn, m); }
  void error(std::string_view m) { log(LogLevel::error, m); }
};

// Metric handles are owned by the registry and live as long as the host; a
// plugin keeps the raw pointer. Updates are lock-free and safe from any thread.
class Counter {
 public:
  virtual ~Counter();
  virtual void inc(uint64_t n = 1) = 0;
  virtual uint64_t value() const = 0;
};
class Gauge {
 public:
  virtual ~Gauge();
  virtual void set(int64_t v) = 0;
  virtual void add(int64_t delta) = 0;
  virtual int64_t value() const = 0;
};
// Records durations or sizes; exported as a Prometheus summary-like histogram.
class Histogram {
 public:
  virtual ~Histogram();
  virtual void observe(double value) = 0;
};

// Names follow Prometheus rules ([a-z_][a-z0-9_]*); the registry prefixes
// nothing, so plugins use their own prefix ("corral_wal_fsync_seconds"). A
// name may end in labels, `corral_requests_total{op="create"}`; entries of
// one family share its help text. Asking twice for the same name returns the
// same handle.
class Metrics {
 public:
  virtual ~Metrics();
  virtual Counter* counter(std::string_view name, std::string_view help) = 0;
  virtual Gauge* gauge(std::string_view name, std::string_view help) = 0;
  virtual Histogram* histogram(std::string_view name, std::string_view help) = 0;
  // Every metric now, in Prometheus' text format, as the admin endpoint's
  // GET /metrics serves it (for a recipe that keeps their history, say).
  // Loop thread only.
  virtual std::string exposition() = 0;
};

// A plugin's own table of the server's TOML file: `[storage.wal]` for the
// storage plugin named "wal", `[recipe.server-info]` for that recipe. Getters
// return the default when the key is absent and an error that names the file,
// the key and the expected type when it is present with another type. Keys may
// be dotted to reach nested tables ("segment.size").
class ConfigTable {
 public:
  virtual ~ConfigTable();
  // "storage.wal": the table's own dotted name, for messages.
  virtual std::string_view name() const = 0;
  virtual bool contains(std::string_view key) const = 0;
  virtual Result<std::string> get_string(std::string_view key, std::string_view def) const = 0;
  virtual Result<int64_t> get_int(std::string_view key, int64_t def) const = 0;
  virtual Result<double> get_double(std::string_view key, double def) const = 0;
  virtual Result<bool> get_bool(std::string_view key, bool def) const = 0;
  virtual Result<std::vector<std::string>> get_string_list(
      std::string_view key, const std::vector<std::string>& def) const = 0;
  // Every key present in the table, so a plugin can reject unknown ones.
  virtual std::vector<std::string> keys() const = 0;
  // The keys of a nested table ("peer" for [transport.tls.peer]); empty when
  // there is none.
  virtual std::vector<std::string> keys_in(std::string_view table) const = 0;
  // An error Status for `key` that names the file and line it came from.
  virtual Status invalid(std::string_view key, std::string_view expected) const = 0;
};

// Facts about the server a plugin runs in.
struct ServerInfo {
  int64_t server_id = 0;
  std::string version;         // Corral's version, "0.1.0"
  std::string data_dir;        // absolute path; plugins keep their files beneath it
  std::string client_address;  // "127.0.0.1:2181"
  int64_t tick_ms = 2000;
};

// Everything a plugin may use; passed to Plugin::init and valid until the
// plugin is destroyed.
class PluginHost {
 public:
  virtual ~PluginHost();
  virtual Executor& executor() = 0;
  virtual const Clock& clock() = 0;
  virtual Logger& logger() = 0;
  virtual Metrics& metrics() = 0;
  virtual const ConfigTable& config() = 0;
  virtual const ServerInfo& server() = 0;
};

}  // namespace corral::sdk
