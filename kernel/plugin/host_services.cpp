#include "plugin/host_services.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

namespace corral::kernel {

namespace {

class AsioTimer final : public sdk::Executor::Timer {
 public:
  AsioTimer(boost::asio::io_context& io, std::chrono::milliseconds delay, std::function<void()> fn)
      : state_(std::make_shared<State>(io)) {
    state_->fn = std::move(fn);
    state_->timer.expires_after(delay);
    state_->timer.async_wait([s = state_](const boost::system::error_code& ec) {
      if (ec || s->cancelled) return;
      auto fn = std::move(s->fn);
      fn();
    });
  }
  ~AsioTimer() override { cancel(); }
  void cancel() override {
    state_->cancelled = true;
    state_->timer.cancel();
    state_->fn = nullptr;
  }

 private:
  struct State {
    explicit State(boost::asio::io_context& io) : timer(io) {}
    boost::asio::steady_timer timer;
    std::function<void()> fn;
    bool cancelled = false;
  };
  std::shared_ptr<State> state_;
};

// The log file every logger writes beside stderr (server.log_file).
struct LogFile {
  std::mutex mu;
  int fd = -1;
  std::string path;
  int64_t max_bytes = 0;
  int64_t size = 0;
  int64_t roll_at = 0;  // the size at which the next roll is tried

  // Under mu. A roll that fails leaves the file as it was (renamed back if
  // the new file could not be opened): lines are never lost for it, the
  // file grows past its limit until a later try, another eighth on.
  void write(std::string_view line) {
    if (fd < 0) return;
    if (max_bytes > 0 && size + static_cast<int64_t>(line.size()) > roll_at) roll();
    ssize_t n = ::write(fd, line.data(), line.size());
    if (n > 0) size += n;
  }

  void roll() {
    std::string rolled = path + ".1";
    roll_at = size + max_bytes / 8;
    if (::rename(path.c_str(), rolled.c_str()) != 0) return;
    int next = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (next < 0) {
      (void)::rename(rolled.c_str(), path.c_str());
      return;
    }
    ::close(fd);
    fd = next;
    size = 0;
    roll_at = max_bytes;
  }
};

LogFile& log_file() {
  static LogFile f;
  return f;
}

}  // namespace

sdk::Status open_log_file(const std::string& path, int64_t max_bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return {sdk::Errc::io_error,
            "server.log_file: cannot open '" + path + "' for appending: " + std::strerror(errno)};
  struct stat st {};
  int64_t size = ::fstat(fd, &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
  LogFile& f = log_file();
  std::lock_guard<std::mutex> lock(f.mu);
  if (f.fd >= 0) ::close(f.fd);
  f.fd = fd;
  f.path = path;
  f.max_bytes = max_bytes;
  f.size = size;
  f.roll_at = max_bytes;
  return {};
}

void append_log_file(std::string_view line) {
  LogFile& f = log_file();
  std::lock_guard<std::mutex> lock(f.mu);
  f.write(line);
}

void close_log_file() {
  LogFile& f = log_file();
  std::lock_guard<std::mutex> lock(f.mu);
  if (f.fd >= 0) {
    ::fsync(f.fd);
    ::close(f.fd);
  }
  f.fd = -1;
}

void AsioExecutor::post(std::function<void()> fn) { boost::asio::post(io_, std::move(fn)); }

std::unique_ptr<sdk::Executor::Timer> AsioExecutor::schedule(std::chrono::milliseconds delay,
                                                             std::function<void()> fn) {
  return std::make_unique<AsioTimer>(io_, delay, std::move(fn));
}

int64_t SystemClock::steady_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
int64_t SystemClock::wall_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void StderrLogger::log(sdk::LogLevel level, std::string_view message) {
  if (!enabled(level)) return;
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line;
  line.reserve(64 + message.size());
  line += stamp;
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ ", ms);
  line += frac;
  line += sdk::log_level_name(level);
  line += " [";
  line += component_;
  line += "] ";
  line += message;
  line += '\n';
  // One write per line keeps lines whole when several threads log.
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
  LogFile& f = log_file();
  std::lock_guard<std::mutex> lock(f.mu);
  f.write(line);
}

bool parse_log_level(std::string_view text, sdk::LogLevel& out) {
  static const std::pair<const char*, sdk::LogLevel> kLevels[] = {{"trace", sdk::LogLevel::trace},
                                                                  {"debug", sdk::LogLevel::debug},
                                                                  {"info", sdk::LogLevel::info},
                                                                  {"warn", sdk::LogLevel::warn},
                                                                  {"error", sdk::LogLevel::error}};
  for (auto& [name, level] : kLevels)
    if (text == name) {
      out = level;
      return true;
    }
  return false;
}

// ---- metrics ----

namespace {

class AtomicCounter final : public sdk::Counter {
 public:
  void inc(uint64_t n) override { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const override { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class AtomicGauge final : public sdk::Gauge {
 public:
  void set(int64_t v) override { v_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) override { v_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const override { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Fixed exponential buckets from 1e-6 upwards (seconds or bytes alike).
class BucketHistogram final : public sdk::Histogram {
 public:
  static constexpr int kBuckets = 28;  // 1e-6 * 2^k, up to ~134 s
  void observe(double v) override {
    int b = 0;
    double bound = 1e-6;
    while (b < kBuckets && v > bound) {
      bound *= 2;
      ++b;
    }
    counts_[b].fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(sum_mu_);
    sum_ += v;
  }
  void render(std::string& out, const std::string& name, const std::string& labels) const {
    uint64_t cumulative = 0;
    double bound = 1e-6;
    char buf[64];
    std::string pre = labels.empty() ? "" : labels + ",";
    std::string own = labels.empty() ? "" : "{" + labels + "}";
    for (int b = 0; b < kBuckets; ++b, bound *= 2) {
      cumulative += counts_[b].load(std::memory_order_relaxed);
      std::snprintf(buf, sizeof buf, "%g", bound);
      out += name + "_bucket{" + pre + "le=\"" + buf + "\"} " + std::to_string(cumulative) + "\n";
    }
    cumulative += counts_[kBuckets].load(std::memory_order_relaxed);
    out += name + "_bucket{" + pre + "le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
    double sum;
    {
      std::lock_guard<std::mutex> lock(sum_mu_);
      sum = sum_;
    }
    std::snprintf(buf, sizeof buf, "%.9g", sum);
    out += name + "_sum" + own + " " + buf + "\n";
    out += name + "_count" + own + " " + std::to_string(cumulative) + "\n";
  }

 private:
  std::atomic<uint64_t> counts_[kBuckets + 1] = {};
  mutable std::mutex sum_mu_;
  double sum_ = 0;
};

}  // namespace

struct MetricsRegistry::Entry {
  std::string help;
  std::unique_ptr<AtomicCounter> counter;
  std::unique_ptr<AtomicGauge> gauge;
  std::unique_ptr<BucketHistogram> histogram;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

sdk::Counter* MetricsRegistry::counter(std::string_view name, std::string_view help) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = entries_[std::string(name)];
  if (!e)
    e = std::make_unique<Entry>(
        Entry{std::string(help), std::make_unique<AtomicCounter>(), {}, {}});
  return e->counter.get();
}
sdk::Gauge* MetricsRegistry::gauge(std::string_view name, std::string_view help) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = entries_[std::string(name)];
  if (!e)
    e = std::make_unique<Entry>(Entry{std::string(help), {}, std::make_unique<AtomicGauge>(), {}});
  return e->gauge.get();
}
sdk::Histogram* MetricsRegistry::histogram(std::string_view name, std::string_view help) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = entries_[std::string(name)];
  if (!e)
    e = std::make_unique<Entry>(
        Entry{std::string(help), {}, {}, std::make_unique<BucketHistogram>()});
  return e->histogram.get();
}

std::string MetricsRegistry::exposition() {
  if (refresh_) refresh_();
  return render();
}

std::string MetricsRegistry::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out, family_seen;
  for (const auto& [name, e] : entries_) {
    // A name may carry labels, `family{op="create"}`: one HELP and TYPE per family.
    size_t brace = name.find('{');
    std::string family = name.substr(0, brace);
    std::string labels =
        brace == std::string::npos ? "" : name.substr(brace + 1, name.size() - brace - 2);
    if (family != family_seen) {
      const char* type = e->counter ? "counter" : e->gauge ? "gauge" : "histogram";
      out += "# HELP " + family + " " + e->help + "\n# TYPE " + family + " " + type + "\n";
      family_seen = family;
    }
    if (e->counter)
      out += name + " " + std::to_string(e->counter->value()) + "\n";
    else if (e->gauge)
      out += name + " " + std::to_string(e->gauge->value()) + "\n";
    else if (e->histogram)
      e->histogram->render(out, family, labels);
  }
  return out;
}

}  // namespace corral::kernel
