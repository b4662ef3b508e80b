// Drives the SDK's client recipes from the command line, for the interop
// tests against Curator (test_recipes_interop.py). Line protocol on stdout;
// commands that hold something wait for a line (or end of input) on stdin.
//
//   recipes-check HOSTS mutex PATH              acquired ... (stdin) ... released
//   recipes-check HOSTS latch PATH ID           leader (then follower) as it changes; a line on
//   stdin closes recipes-check HOSTS count-add PATH DELTA    the new value recipes-check HOSTS
//   count-get PATH          the value recipes-check HOSTS barrier-wait PATH       passed
//   recipes-check HOSTS register BASE NAME ID ADDRESS PORT   registered ... (stdin EOF) ends
//   recipes-check HOSTS instances BASE NAME     "<id> <address> <port>" lines, then done
//   recipes-check HOSTS rwlock PATH read|write  acquired ... (stdin) ... released
//   recipes-check HOSTS semaphore PATH MAX      acquired ... (stdin) ... released
//   recipes-check HOSTS double-barrier PATH N   entered ... (stdin) ... left
//   recipes-check HOSTS queue-put PATH ITEM     put
//   recipes-check HOSTS queue-take PATH         the item
//   recipes-check HOSTS treecache PATH          ready, then "added|updated|removed PATH [DATA]";
//   stdin EOF ends; a failed read prints "error PATH WHY"
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <cstdio>
#include <iostream>
#include <string>

#include "corral/client/client.hpp"
#include "corral/client/recipes.hpp"

namespace asio = boost::asio;
using namespace corral;

namespace {

void say(const std::string& line) { std::cout << line << std::endl; }

[[noreturn]] void die(const std::string& why) {
  std::cerr << "recipes-check: " << why << std::endl;
  std::exit(1);
}

void check(const sdk::Status& st) {
  if (!st) die(st.message());
}

// Calls `fn(line)` for each line on stdin, and `fn(nullopt)` at its end.
struct StdinLines {
  StdinLines(asio::io_context& io, std::function<void(std::optional<std::string>)> fn)
      : in(io, ::dup(STDIN_FILENO)), fn(std::move(fn)) {
    next();
  }
  void next() {
    asio::async_read_until(in, buf, '\n', [this](const boost::system::error_code& ec, size_t) {
      if (ec) return fn(std::nullopt);
      std::istream is(&buf);
      std::string line;
      std::getline(is, line);
      fn(line);
      next();
    });
  }
  asio::posix::stream_descriptor in;
  asio::streambuf buf;
  std::function<void(std::optional<std::string>)> fn;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) die("usage: recipes-check HOSTS COMMAND ARGS...");
  auto opts = client::parse_connect_string(argv[1]);
  if (!opts) die(opts.status().message());
  asio::io_context io;
  client::Client c(io, opts.value());
  recipes::Recipes hub(c);
  std::string cmd = argv[2];
  std::vector<std::string> args(argv + 3, argv + argc);
  std::unique_ptr<recipes::Mutex> mutex;
  std::unique_ptr<recipes::LeaderLatch> latch;
  std::unique_ptr<recipes::SharedCount> count;
  std::unique_ptr<recipes::Barrier> barrier;
  std::unique_ptr<recipes::ServiceDiscovery> sd;
  std::unique_ptr<recipes::ReadWriteLock> rwlock;
  std::unique_ptr<recipes::Semaphore> semaphore;
  std::unique_ptr<recipes::DoubleBarrier> dbarrier;
  std::unique_ptr<recipes::Queue> queue;
  std::unique_ptr<recipes::TreeCache> cache;
  std::unique_ptr<StdinLines> input;
  bool acted = false;  // the first line (or end of input) lets go; later ones are ignored
  recipes::ServiceInstance instance;
  auto finish = [&] { c.close([&] { io.stop(); }); };

  c.connect([&](const sdk::Status& st) {
    check(st);
    if (cmd == "mutex" && args.size() == 1) {
      mutex = std::make_unique<recipes::Mutex>(hub, args[0]);
      mutex->acquire([&](const sdk::Status& a) {
        check(a);
        say("acquired");
        input = std::make_unique<StdinLines>(io, [&](std::optional<std::string>) {
          if (!mutex->held()) return;
          mutex->release([&](const sdk::Status& r) {
            check(r);
            say("released");
            finish();
          });
        });
      });
    } else if (cmd == "latch" && args.size() == 2) {
      latch = std::make_unique<recipes::LeaderLatch>(hub, args[0], args[1]);
      latch->start([](bool leader) { say(leader ? "leader" : "follower"); },
                   [&](const sdk::Status& s) { check(s); });
      input = std::make_unique<StdinLines>(io, [&](std::optional<std::string>) {
        if (std::exchange(acted, true)) return;
        latch->close([&](const sdk::Status&) { finish(); });
      });
    } else if (cmd == "count-add" && args.size() == 2) {
      count = std::make_unique<recipes::SharedCount>(hub, args[0]);
      count->start([&](const sdk::Status& s) {
        check(s);
        count->add(std::stoi(args[1]), [&](const sdk::Status& a, int32_t v) {
          check(a);
          say(std::to_string(v));
          finish();
        });
      });
    } else if (cmd == "count-get" && args.size() == 1) {
      count = std::make_unique<recipes::SharedCount>(hub, args[0]);
      count->get([&](const sdk::Status& g, int32_t v, int32_t) {
        check(g);
        say(std::to_string(v));
        finish();
      });
    } else if (cmd == "barrier-wait" && args.size() == 1) {
      barrier = std::make_unique<recipes::Barrier>(hub, args[0]);
      say("waiting");
      barrier->wait([&](const sdk::Status& w) {
        check(w);
        say("passed");
        finish();
      });
    } else if (cmd == "register" && args.size() == 5) {
      sd = std::make_unique<recipes::ServiceDiscovery>(hub, args[0]);
      instance.name = args[1];
      instance.id = args[2];
      instance.address = args[3];
      instance.port = std::stoi(args[4]);
      sd->register_instance(instance, [&](const sdk::Status& r) {
        check(r);
        say("registered");
        input = std::make_unique<StdinLines>(io, [&](std::optional<std::string> line) {
          if (!line) finish();
        });
      });
    } else if (cmd == "instances" && args.size() == 2) {
      sd = std::make_unique<recipes::ServiceDiscovery>(hub, args[0]);
      sd->instances(args[1], [&](const sdk::Status& q,
                                 std::vector<recipes::ServiceInstance> found) {
        check(q);
        for (const auto& i : found)
          say(i.id + " " + i.address + " " + (i.port ? std::to_string(*i.port) : std::string("-")));
        say("done");
        finish();
      });
    } else if (cmd == "rwlock" && args.size() == 2) {
      rwlock = std::make_unique<recipes::ReadWriteLock>(hub, args[0]);
      auto got = [&](const sdk::Status& a) {
        check(a);
        say("acquired");
        input = std::make_unique<StdinLines>(io, [&](std::optional<std::string>) {
          if (std::exchange(acted, true)) return;
          rwlock->release([&](const sdk::Status& r) {
            check(r);
            say("released");
            finish();
          });
        });
      };
      if (args[1] == "write")
        rwlock->acquire_write(got);
      else
        rwlock->acquire_read(got);
    } else if (cmd == "semaphore" && args.size() == 2) {
      semaphore = std::make_unique<recipes::Semaphore>(hub, args[0], std::stoi(args[1]));
      semaphore->acquire([&](const sdk::Status& a) {
        check(a);
        say("acquired");
        input = std::make_unique<StdinLines>(io, [&](std::optional<std::string>) {
          if (std::exchange(acted, true)) return;
          semaphore->release([&](const sdk::Status& r) {
            check(r);
            say("released");
            finish();
          });
        });
      });
    } else if (cmd == "double-barrier" && args.size() == 2) {
      dbarrier = std::make_unique<recipes::DoubleBarrier>(hub, args[0], std::stoi(args[1]));
      dbarrier->enter([&](const sdk::Status& e) {
        check(e);
        say("entered");
        input = std::make_unique<StdinLines>(io, [&](std::optional<std::string>) {
          if (std::exchange(acted, true)) return;
          dbarrier->leave([&](const sdk::Status& l) {
            check(l);
            say("left");
            finish();
          });
        });
      });
    } else if (cmd == "queue-put" && args.size() == 2) {
      queue = std::make_unique<recipes::Queue>(hub, args[0]);
      queue->put(args[1], [&](const sdk::Status& p) {
        check(p);
        say("put");
        finish();
      });
    } else if (cmd == "queue-take" && args.size() == 1) {
      queue = std::make_unique<recipes::Queue>(hub, args[0]);
      queue->take([&](const sdk::Status& t, std::string item) {
        check(t);
        say(item);
        finish();
      });
    } else if (cmd == "treecache" && args.size() == 1) {
      cache = std::make_unique<recipes::TreeCache>(hub, args[0]);
      cache->on_error([](const std::string& path, const sdk::Status& why) {
        say("error " + path + " " + why.message());
      });
      cache->start(
          [](recipes::TreeCache::Event e, const std::string& path, const std::string& data) {
            const char* what = e == recipes::TreeCache::Event::added     ? "added"
                               : e == recipes::TreeCache::Event::updated ? "updated"
                                                                         : "removed";
            say(std::string(what) + " " + path +
                (e == recipes::TreeCache::Event::removed ? "" : " " + data));
          },
          [&](const sdk::Status& r) {
            check(r);
            say("ready " + std::to_string(cache->paths().size()));
            input = std::make_unique<StdinLines>(io, [&](std::optional<std::string> line) {
              if (!line) finish();
            });
          });
    } else {
      die("unknown command or arguments: " + cmd);
    }
  });
  io.run();
  return 0;
}
