// The kernel's implementations of the SDK host services.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "corral/sdk/host.hpp"

namespace corral::kernel {

// The event loop every kernel object and plugin callback runs on.
class AsioExecutor final : public sdk::Executor {
 public:
  explicit AsioExecutor(boost::asio::io_context& io) : io_(io) {}
  void post(std::function<void()> fn) override;
  std::unique_ptr<Timer> schedule(std::chrono::milliseconds delay,
                                  std::function<void()> fn) override;
  boost::asio::io_context& io_context() override { return io_; }

 private:
  boost::asio::io_context& io_;
};

class SystemClock final : public sdk::Clock {
 public:
  int64_t steady_ms() const override;
  int64_t wall_ms() const override;
};

// Writes "2026-11-24T16:33:58.123Z INFO [component] message" lines to stderr.
class StderrLogger final : public sdk::Logger {
 public:
  explicit StderrLogger(std::string component, sdk::LogLevel min = sdk::LogLevel::info)
      : component_(std::move(component)), min_(min) {}
  bool enabled(sdk::LogLevel level) const override { return level >= min_.load(); }
  void log(sdk::LogLevel level, std::string_view message) override;
  void set_level(sdk::LogLevel level) { min_ = level; }
  // A logger for a sub-component with the same level ("kernel" -> "storage.wal").
  std::unique_ptr<StderrLogger> child(std::string component) const {
    return std::make_unique<StderrLogger>(std::move(component), min_.load());
  }

 private:
  std::string component_;
  std::atomic<sdk::LogLevel> min_;
};
bool parse_log_level(std::string_view text, sdk::LogLevel& out);

// Every logger's lines go to a file as well as to stderr, from now on: the
// file is appended to, and rolled to <path>.1 (replacing it) once it passes
// `max_bytes`. Fails, naming the file, when it cannot be opened.
sdk::Status open_log_file(const std::string& path, int64_t max_bytes);
void close_log_file();
// A line (with its newline) for the log file only, from code that writes
// stderr itself ("corrald: cannot start: ...").
void append_log_file(std::string_view line);

// Prometheus-style registry. Handles are stable; render() writes the text
// exposition format.
class MetricsRegistry final : public sdk::Metrics {
 public:
  MetricsRegistry();
  ~MetricsRegistry() override;
  sdk::Counter* counter(std::string_view name, std::string_view help) override;
  sdk::Gauge* gauge(std::string_view name, std::string_view help) override;
  sdk::Histogram* histogram(std::string_view name, std::string_view help) override;
  std::string render() const;
  // Runs `refresh` (which sets the gauges a server computes on demand), then
  // renders.
  std::string exposition() override;
  void on_exposition(std::function<void()> refresh) { refresh_ = std::move(refresh); }

 private:
  std::function<void()> refresh_;
  struct Entry;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;
};

// The host one plugin sees: shared loop, clock and metrics; its own logger
// and config table.
class PluginHostImpl final : public sdk::PluginHost {
 public:
  PluginHostImpl(sdk::Executor& ex, const sdk::Clock& clock, std::unique_ptr<sdk::Logger> logger,
                 sdk::Metrics& metrics, std::unique_ptr<sdk::ConfigTable> config,
                 const sdk::ServerInfo& server)
      : ex_(ex),
        clock_(clock),
        logger_(std::move(logger)),
        metrics_(metrics),
        config_(std::move(config)),
        server_(server) {}
  sdk::Executor& executor() override { return ex_; }
  const sdk::Clock& clock() override { return clock_; }
  sdk::Logger& logger() override { return *logger_; }
  sdk::Metrics& metrics() override { return metrics_; }
  const sdk::ConfigTable& config() override { return *config_; }
  const sdk::ServerInfo& server() override { return server_; }

 private:
  sdk::Executor& ex_;
  const sdk::Clock& clock_;
  std::unique_ptr<sdk::Logger> logger_;
  sdk::Metrics& metrics_;
  std::unique_ptr<sdk::ConfigTable> config_;
  const sdk::ServerInfo& server_;
};

}  // namespace corral::kernel
