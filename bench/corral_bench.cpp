// corral-bench: a load generator for any ZooKeeper-protocol server (Corral
// or Apache ZooKeeper), over the SDK's asynchronous client.
//
// Many sessions, each keeping `depth` requests in flight, run one workload
// for a duration or an operation count; the report gives throughput and
// latency percentiles, as text or JSON.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "corral/client/client.hpp"

namespace {

using corral::client::Client;
using corral::proto::CreateMode;
using corral::proto::Err;
using corral::proto::OpCode;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage = R"(usage: corral-bench [options]

Drives a ZooKeeper-protocol server with one workload and reports ops/s and
latency percentiles.

options:
  --hosts HOST:PORT[,...]  server(s) to use; sessions spread over them (127.0.0.1:2181)
  --workload NAME          create | set | get | syncget (sync, then get) | exists | children |
                           delete | multi | mixed (set)
  --read-ratio R           mixed: share of reads, 0..1 (0.9)
  --sessions N             concurrent sessions (16)
  --depth N                requests in flight per session (16)
  --value-size BYTES       data size for create/set (100)
  --keys N                 nodes the workload spreads over (10000)
  --duration SECONDS       how long to run (10), or
  --ops N                  how many operations to run
                           (SIGINT or SIGTERM ends the run early: the requests in
                           flight complete and the report covers what ran; without
                           --quiet, "running WORKLOAD" on stderr says when it starts)
  --prefix PATH            where the benchmark's nodes live (/corral-bench)
  --json                   print the report as one JSON object
  --quiet                  no progress lines
  --tls-ca FILE            TLS: trust this authority's PEM (the hosts are secure client ports)
  --tls-cert FILE          TLS: a client certificate (PEM, chain and key, or --tls-key FILE)
)";

struct Options {
  std::string hosts = "127.0.0.1:2181";
  std::string workload = "set";
  double read_ratio = 0.9;
  int sessions = 16;
  int depth = 16;
  size_t value_size = 100;
  int64_t keys = 10000;
  double duration = 10;
  int64_t ops = 0;
  std::string prefix = "/corral-bench";
  bool json = false;
  bool quiet = false;
  std::string tls_ca, tls_cert, tls_key;
};

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "corral-bench: %s\n", why.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    auto number = [&](double lo, double hi) {
      std::string v = next();
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (!end || *end || d < lo || d > hi)
        die(a + " must be a number in " + std::to_string(lo) + ".." + std::to_string(hi));
      return d;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--hosts")
      o.hosts = next();
    else if (a == "--workload")
      o.workload = next();
    else if (a == "--read-ratio")
      o.read_ratio = number(0, 1);
    else if (a == "--sessions")
      o.sessions = static_cast<int>(number(1, 10000));
    else if (a == "--depth")
      o.depth = static_cast<int>(number(1, 100000));
    else if (a == "--value-size")
      o.value_size = static_cast<size_t>(number(0, 1 << 20));
    else if (a == "--keys")
      o.keys = static_cast<int64_t>(number(1, 1e9));
    else if (a == "--duration")
      o.duration = number(0.1, 1e6);
    else if (a == "--ops")
      o.ops = static_cast<int64_t>(number(1, 1e12));
    else if (a == "--prefix")
      o.prefix = next();
    else if (a == "--json")
      o.json = true;
    else if (a == "--quiet")
      o.quiet = true;
    else if (a == "--tls-ca")
      o.tls_ca = next();
    else if (a == "--tls-cert")
      o.tls_cert = next();
    else if (a == "--tls-key")
      o.tls_key = next();
    else
      die("unknown option '" + a + "' (see --help)");
  }
  static const char* kWorkloads[] = {"create",   "set",    "get",   "syncget", "exists",
                                     "children", "delete", "multi", "mixed"};
  if (std::find_if(std::begin(kWorkloads), std::end(kWorkloads),
                   [&](const char* w) { return o.workload == w; }) == std::end(kWorkloads))
    die("unknown workload '" + o.workload + "'");
  if (o.prefix.size() < 2 || o.prefix[0] != '/' || o.prefix.back() == '/')
    die("--prefix must be an absolute path");
  return o;
}

class Bench {
 public:
  Bench(boost::asio::io_context& io, Options o)
      : io_(io), o_(std::move(o)), value_(o_.value_size, 'v'), rng_(42) {}

  int run() {
    auto parsed = corral::client::parse_connect_string(o_.hosts);
    if (!parsed) die(parsed.status().message());
    for (int i = 0; i < o_.sessions; ++i) {
      corral::client::Options co;
      // Spread sessions over the servers given.
      co.servers = {parsed->servers[static_cast<size_t>(i) % parsed->servers.size()]};
      co.session_timeout_ms = 30000;
      co.tls.enabled = !o_.tls_ca.empty();
      co.tls.ca = o_.tls_ca;
      co.tls.certificate = o_.tls_cert;
      co.tls.key = o_.tls_key;
      clients_.push_back(std::make_unique<Client>(io_, co));
    }
    // SIGINT/SIGTERM end the run early with a report of what ran, so a
    // caller can measure a window whose end it learns only as it goes.
    signals_ = std::make_unique<boost::asio::signal_set>(io_, SIGINT, SIGTERM);
    wait_for_signal();
    int connected = 0;
    for (auto& c : clients_) {
      c->connect([&, this](const corral::sdk::Status& st) {
        if (!st) die(st.message());
        if (++connected == o_.sessions) setup();
      });
    }
    io_.run();
    return report();
  }

 private:
  std::string key(int64_t i) const { return o_.prefix + "/k-" + std::to_string(i); }

  // Creates the prefix and the keys the workload needs, pipelined on one session.
  void setup() {
    Client& c = *clients_[0];
    c.create(o_.prefix, "", CreateMode::persistent, [this](const corral::proto::Response& r) {
      if (r.err != Err::ok && r.err != Err::node_exists)
        die("cannot create " + o_.prefix + ": " + corral::proto::err_name(r.err));
      if (o_.workload == "create") start();  // the other sessions need the parent first
    });
    if (o_.workload == "create") return;
    auto remaining = std::make_shared<int64_t>(o_.keys);
    auto issued = std::make_shared<int64_t>(0);
    auto pump = std::make_shared<std::function<void()>>();
    *pump = [this, &c, remaining, issued, pump] {
      while (*issued < o_.keys && c.outstanding() < 256) {
        c.create(key((*issued)++), value_, CreateMode::persistent,
                 [this, remaining, pump](const corral::proto::Response& r) {
                   if (r.err != Err::ok && r.err != Err::node_exists)
                     die(std::string("setup: create failed: ") + corral::proto::err_name(r.err));
                   if (--*remaining == 0)
                     sync_all();
                   else
                     (*pump)();
                 });
      }
    };
    if (!o_.quiet)
      std::fprintf(stderr, "setting up %lld keys under %s\n", static_cast<long long>(o_.keys),
                   o_.prefix.c_str());
    (*pump)();
  }

  // Sessions on other servers of an ensemble see the keys only once their
  // server has caught up: each syncs first, as a ZooKeeper client must to
  // read what another session wrote.
  void sync_all() {
    auto waiting = std::make_shared<size_t>(clients_.size());
    for (auto& c : clients_)
      c->sync(o_.prefix, [this, waiting](const corral::proto::Response& r) {
        if (r.err != Err::ok)
          die(std::string("setup: sync failed: ") + corral::proto::err_name(r.err));
        if (--*waiting == 0) start();
      });
  }

  void start() {
    if (o_.workload == "delete" && (o_.ops == 0 || o_.ops > o_.keys)) o_.ops = o_.keys;
    latencies_.reserve(1 << 20);
    started_ = Clock::now();
    deadline_ = started_ + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o_.duration));
    progress_ = std::make_unique<boost::asio::steady_timer>(io_);
    // A caller that times a window against the load waits for this line.
    if (!o_.quiet) std::fprintf(stderr, "running %s\n", o_.workload.c_str());
    tick_progress();
    for (size_t s = 0; s < clients_.size(); ++s)
      for (int d = 0; d < o_.depth; ++d) issue(s);
  }

  void tick_progress() {
    progress_->expires_after(std::chrono::seconds(1));
    progress_->async_wait([this](boost::system::error_code ec) {
      if (ec || finished_) return;
      if (!o_.quiet) {
        double t = std::chrono::duration<double>(Clock::now() - started_).count();
        // The last second's latencies: where a stall shows.
        std::vector<uint32_t> recent(
            latencies_.begin() + static_cast<std::ptrdiff_t>(last_latencies_), latencies_.end());
        double p99 = 0, max = 0;
        if (!recent.empty()) {
          auto at = recent.begin() + static_cast<std::ptrdiff_t>((recent.size() - 1) * 99 / 100);
          std::nth_element(recent.begin(), at, recent.end());
          p99 = *at / 1000.0;
          max = *std::max_element(at, recent.end()) / 1000.0;
        }
        std::fprintf(
            stderr, "%6.1fs  %10lld ops  %10.0f ops/s  p99 %7.3f ms  max %7.3f ms (last second)\n",
            t, static_cast<long long>(done_), static_cast<double>(done_ - last_done_), p99, max);
      }
      last_done_ = done_;
      last_latencies_ = latencies_.size();
      tick_progress();
    });
  }

  // The first SIGINT/SIGTERM ends the run (requests in flight complete);
  // a second, or one before the workload started, ends the process.
  void wait_for_signal() {
    signals_->async_wait([this](boost::system::error_code ec, int) {
      // (a signal whose handler was queued as the run ended finds it over)
      if (ec || finished_) return;
      if (!progress_ || stopping_) {
        std::fprintf(stderr, "corral-bench: interrupted\n");
        std::_Exit(130);
      }
      stopping_ = true;
      if (outstanding_ == 0) finish();
      wait_for_signal();
    });
  }

  bool more() const {
    if (stopping_) return false;
    if (o_.ops > 0) return issued_ < o_.ops;
    return Clock::now() < deadline_;
  }

  void issue(size_t s) {
    if (!more()) {
      if (outstanding_ == 0) finish();
      return;
    }
    ++issued_;
    ++outstanding_;
    Client& c = *clients_[s];
    auto t0 = Clock::now();
    auto done = [this, s, t0](const corral::proto::Response& r) {
      latencies_.push_back(static_cast<uint32_t>(std::min<int64_t>(
          UINT32_MAX,
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count())));
      if (r.err != Err::ok) {
        if (errors_++ < 5) std::fprintf(stderr, "error: %s\n", corral::proto::err_name(r.err));
        if (r.err == Err::connection_loss) die("lost the connection to the server");
      }
      ++done_;
      --outstanding_;
      issue(s);
    };
    int64_t k = static_cast<int64_t>(rng_() % static_cast<uint64_t>(o_.keys));
    const std::string& w = o_.workload;
    if (w == "create") {
      c.create(o_.prefix + "/c-" + std::to_string(s) + "-" + std::to_string(issued_), value_,
               CreateMode::persistent, done);
    } else if (w == "set") {
      c.set_data(key(k), value_, -1, done);
    } else if (w == "get") {
      c.get_data(key(k), false, done);
    } else if (w == "syncget") {
      // A linearizable read as a ZooKeeper client makes one: sync, then read.
      std::string path = key(k);
      c.sync(path, [&c, path, done](const corral::proto::Response& r) {
        if (r.err != Err::ok) return done(r);
        c.get_data(path, false, done);
      });
    } else if (w == "exists") {
      c.exists(key(k), false, done);
    } else if (w == "children") {
      c.get_children(key(k), false, done);
    } else if (w == "delete") {
      c.remove(key(issued_ - 1), -1, done);
    } else if (w == "multi") {
      c.multi({{OpCode::check, key(k), "", -1, CreateMode::persistent},
               {OpCode::set_data, key(k), value_, -1, CreateMode::persistent}},
              done);
    } else {  // mixed
      if (std::uniform_real_distribution<double>(0, 1)(rng_) < o_.read_ratio)
        c.get_data(key(k), false, done);
      else
        c.set_data(key(k), value_, -1, done);
    }
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    elapsed_ = std::chrono::duration<double>(Clock::now() - started_).count();
    progress_->cancel();
    signals_->cancel();
    for (auto& c : clients_) c->close();
  }

  int report() {
    std::sort(latencies_.begin(), latencies_.end());
    auto pct = [&](double p) -> double {
      if (latencies_.empty()) return 0;
      size_t i =
          static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(latencies_.size()))) - 1;
      return latencies_[std::min(i, latencies_.size() - 1)] / 1000.0;
    };
    double ops_per_sec = elapsed_ > 0 ? static_cast<double>(done_) / elapsed_ : 0;
    if (o_.json) {
      std::printf(
          "{\"workload\":\"%s\",\"sessions\":%d,\"depth\":%d,\"value_size\":%zu,\"keys\":%lld,"
          "\"ops\":%lld,"
          "\"errors\":%lld,\"seconds\":%.3f,\"ops_per_sec\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
          "\"p999_ms\":%.3f,\"max_ms\":%.3f}\n",
          o_.workload.c_str(), o_.sessions, o_.depth, o_.value_size,
          static_cast<long long>(o_.keys), static_cast<long long>(done_),
          static_cast<long long>(errors_), elapsed_, ops_per_sec, pct(50), pct(99), pct(99.9),
          pct(100));
    } else {
      std::printf(
          "%s: %lld ops in %.2f s = %.0f ops/s; latency ms p50 %.3f p99 %.3f p99.9 %.3f max %.3f; "
          "errors %lld\n",
          o_.workload.c_str(), static_cast<long long>(done_), elapsed_, ops_per_sec, pct(50),
          pct(99), pct(99.9), pct(100), static_cast<long long>(errors_));
    }
    return errors_ ? 1 : 0;
  }

  boost::asio::io_context& io_;
  Options o_;
  std::string value_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<uint32_t> latencies_;  // microseconds
  Clock::time_point started_, deadline_;
  std::unique_ptr<boost::asio::steady_timer> progress_;
  std::unique_ptr<boost::asio::signal_set> signals_;
  bool stopping_ = false;
  int64_t issued_ = 0, done_ = 0, last_done_ = 0, outstanding_ = 0, errors_ = 0;
  size_t last_latencies_ = 0;
  double elapsed_ = 0;
  bool finished_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  boost::asio::io_context io(1);
  Bench bench(io, std::move(o));
  return bench.run();
}
