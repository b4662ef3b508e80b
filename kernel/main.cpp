// corrald: the Corral server.
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "plugin/host_services.hpp"
#include "plugin/loader.hpp"
#include "server/server.hpp"

namespace {

// The kernel's io_context, able to drop its pending handlers on demand.
class EventLoop final : public boost::asio::io_context {
 public:
  EventLoop() : boost::asio::io_context(1) {}
  void discard_pending() {
    shutdown();
    destroy();
  }
};

constexpr const char* kUsage = R"(usage: corrald [options]

Runs a Corral server. With no options it serves the ZooKeeper protocol on
127.0.0.1:2181 with the embedded defaults.

options:
  --config FILE          read settings from a TOML file
  --zoo-cfg FILE         read settings from a ZooKeeper zoo.cfg instead
  --set SECTION.KEY=VAL  override one setting (repeatable), e.g.
                         --set server.client_address=0.0.0.0:2181
                         --set plugins.storage=memory
  --force-new-ensemble   disaster recovery: an ensemble member that lost its quorum
                         for good starts a new ensemble of one from its own data
                         (a new epoch); add members back with reconfig -add
  --print-config         print the effective configuration and exit
  --list-plugins         list the plugin modules found and exit
  --version              print the version and exit
  -h, --help             show this help
)";

std::string self_path(const char* argv0) {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(argv0) : p.string();
}

}  // namespace

// glibc's malloc reads its tunables once, at process start, so corrald adds
// two to GLIBC_TUNABLES and executes itself once more (a tunable the user
// already set there is left as it is):
//
// * glibc.malloc.hugetlb=1, only with CORRAL_HUGEPAGES=1: the tree's small
//   allocations then sit in transparent huge pages. That once made a
//   restart a third faster, where each 4 KiB page fault was costly. On a VM
//   that hands free memory back to its host, a fresh 2 MiB page is memory
//   the host must back again: a restart with 1M znodes took 0.73 s at the
//   median in huge pages (0.23 s only right after another such process
//   freed its own) against 0.35-0.42 s in ordinary pages, for the same
//   write throughput (docs/PERFORMANCE.md); so ordinary pages are the
//   default.
// * glibc.malloc.tcache_count=2048: each thread keeps up to 2048 freed
//   chunks of each small size (glibc's default is 7). With hundreds of
//   requests in flight, their allocations then come back from that cache,
//   on the same few pages, instead of being carved afresh from free space
//   all over the heap; after a snapshot's fork every first write to a page
//   copies it, and sets on a tree of 1M znodes made five times fewer such
//   copies.
static void reexec_with_malloc_tunables(char** argv) {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const char* preload = std::getenv("LD_PRELOAD");  // under valgrind, /proc/self/exe is valgrind's
  if (std::getenv("CORRAL_REEXECUTED") || (preload && std::strstr(preload, "vgpreload"))) return;
  std::string value = tunables ? tunables : "";
  auto add = [&](const char* name, const char* setting) {
    if (value.find(name) != std::string::npos) return;
    if (!value.empty()) value += ':';
    value += setting;
  };
  const char* huge = std::getenv("CORRAL_HUGEPAGES");
  if (huge && std::string_view(huge) == "1") add("glibc.malloc.hugetlb", "glibc.malloc.hugetlb=1");
  add("glibc.malloc.tcache_count", "glibc.malloc.tcache_count=2048");
  if (value == (tunables ? tunables : "")) return;
  ::setenv("GLIBC_TUNABLES", value.c_str(), 1);
  ::setenv("CORRAL_REEXECUTED", "1", 1);
  ::execv("/proc/self/exe", argv);
  ::unsetenv("CORRAL_REEXECUTED");  // exec failed: go on as we are
}

int main(int argc, char** argv) {
  using namespace corral;
  reexec_with_malloc_tunables(argv);
  std::optional<std::string> config_path, zoo_cfg;
  std::vector<std::string> overrides;
  bool print_config = false, list_plugins = false, force_new_ensemble = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> std::optional<std::string> {
      std::string prefix = std::string(flag) + "=";
      if (a.rfind(prefix, 0) == 0) return a.substr(prefix.size());
      if (a == flag) {
        if (i + 1 >= argc) {
          std::fprintf(stderr, "corrald: %s needs a value\n", flag);
          std::exit(2);
        }
        return std::string(argv[++i]);
      }
      return std::nullopt;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("corrald %s (ZooKeeper protocol %s, plugin ABI %s, %s)\n", kernel::kCorralVersion,
                  kernel::kZooKeeperVersion, sdk::kAbiIdentity, sdk::build_id());
      return 0;
    } else if (a == "--print-config") {
      print_config = true;
    } else if (a == "--force-new-ensemble") {
      force_new_ensemble = true;
    } else if (a == "--list-plugins") {
      list_plugins = true;
    } else if (auto v = value("--config")) {
      config_path = *v;
    } else if (auto v = value("--zoo-cfg")) {
      zoo_cfg = *v;
    } else if (auto v = value("--set")) {
      overrides.push_back(*v);
    } else {
      std::fprintf(stderr, "corrald: unknown option '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  if (config_path && zoo_cfg) {
    std::fprintf(stderr, "corrald: give --config or --zoo-cfg, not both\n");
    return 2;
  }

  std::vector<std::string> warnings;
  auto cfg = zoo_cfg ? kernel::load_zoo_cfg(*zoo_cfg, overrides, warnings)
                     : kernel::load_config(config_path, overrides);
  for (const auto& w : warnings) std::fprintf(stderr, "corrald: warning: %s\n", w.c_str());
  if (!cfg) {
    std::fprintf(stderr, "corrald: configuration error: %s\n", cfg.status().message().c_str());
    return 2;
  }
  cfg->server.force_new_ensemble = force_new_ensemble;
  std::string exe = self_path(argv[0]);
  if (print_config) {
    std::fputs(cfg->to_toml().c_str(), stdout);
    std::fputs("\n", stdout);
    return 0;
  }
  if (list_plugins) {
    kernel::PluginLoader loader(cfg->server.plugin_dirs.empty()
                                    ? kernel::PluginLoader::default_dirs(exe)
                                    : cfg->server.plugin_dirs);
    for (const auto& m : loader.scan()) {
      if (!m.error.empty())
        std::printf("%-10s %-16s %s\n", "?", "?", m.error.c_str());
      else
        std::printf("%-10s %-16s abi %s  %s  (%s)\n", m.kind.c_str(), m.name.c_str(), m.abi.c_str(),
                    m.summary.c_str(), m.path.c_str());
    }
    return 0;
  }

  if (!cfg->server.log_file.empty()) {
    std::filesystem::path p(cfg->server.log_file);
    if (p.is_relative()) p = std::filesystem::path(cfg->server.data_dir) / p;
    std::error_code ec;
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
    sdk::Status lst = kernel::open_log_file(p.string(), cfg->server.log_file_max_bytes);
    if (!lst) {
      std::fprintf(stderr, "corrald: cannot start: %s\n", lst.message().c_str());
      return 1;
    }
  }
  // A line for stderr and the log file, where corrald's own logger is not
  // there to write it.
  auto say = [](const std::string& line) {
    std::fputs(line.c_str(), stderr);
    kernel::append_log_file(line);
  };

  // The server (and what its plugins log while they stop) is gone before
  // the log file closes.
  int code = [&]() -> int {
    EventLoop io;
    kernel::Server server(io, std::move(cfg.value()), exe);
    sdk::Status st = server.start();
    if (!st) {
      say("corrald: cannot start: " + st.message() + "\n");
      server.stop();
      io.discard_pending();
      return 1;
    }
    // Destroyed before the loop's services (discard_pending below), which it uses.
    auto signals = std::make_unique<boost::asio::signal_set>(io, SIGINT, SIGTERM);
    auto stop_now = [&] {
      server.stop();
      io.stop();
    };
    signals->async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      server.log().info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                        ", shutting down");
      // A leader hands over first; a second signal stops at once.
      signals->async_wait([&](const boost::system::error_code& again, int) {
        if (!again) stop_now();
      });
      server.shutdown_gracefully(stop_now);
    });
    io.run();
    server.stop();
    signals.reset();
    if (server.fatal()) {
      say("corrald: cannot go on: " + server.fatal()->message() + "\n");
      io.discard_pending();
      return 1;
    }
    // Handlers still queued hold code from plugin modules: destroy them before
    // the server unloads those modules.
    io.discard_pending();
    server.log().info("stopped");
    return 0;
  }();
  kernel::close_log_file();
  return code;
}
