// corral-sim: runs the Zab simulation for a range of seeds (a soak), or one
// seed with its trace (a replay).
//
//   corral-sim [--seed N | --seeds COUNT [--from N]] [--voters V] [--observers O]
//              [--consensus zab|raft] [--election fle|static] [--loss P] [--reconfig] [--pauses]
//              [--quorum-sync] [--disk-full] [--trace]
//              [--capture FILE [--capture-limit N]]   (the first N messages, as
//              SimOptions::hostile records: seeds for the fuzz-peer-messages target)
//   corral-sim --scenario FILE [--seed N | --seeds COUNT [--from N]]
//              (a script of tests/sim/testdata under those seeds' timings)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "sim.hpp"

int main(int argc, char** argv) {
  corral::sim::SimOptions opt;
  uint64_t from = 1, count = 1000;
  bool trace = false;
  std::string capture_to, captured, scenario;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "corral-sim: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seed") {
      from = std::strtoull(next(), nullptr, 10);
      count = 1;
    } else if (a == "--seeds") {
      count = std::strtoull(next(), nullptr, 10);
    } else if (a == "--from") {
      from = std::strtoull(next(), nullptr, 10);
    } else if (a == "--voters") {
      opt.voters = std::atoi(next());
    } else if (a == "--observers") {
      opt.observers = std::atoi(next());
    } else if (a == "--reconfig") {
      opt.reconfig = true;
    } else if (a == "--pauses") {
      opt.pauses = true;
    } else if (a == "--transfers") {
      opt.transfers = true;
    } else if (a == "--quorum-sync") {
      opt.quorum_sync = true;
    } else if (a == "--disk-full") {
      opt.disk_full = true;
    } else if (a == "--consensus") {
      opt.consensus = next();
      if (opt.consensus == "raft") opt.quorum_sync = true;  // raft's syncs are always quorum reads
    } else if (a == "--election") {
      opt.election = next();
    } else if (a == "--loss") {
      opt.loss = opt.duplicate = opt.reorder = std::atof(next());
    } else if (a == "--scenario") {
      scenario = next();
    } else if (a == "--trace") {
      trace = true;
    } else if (a == "--capture") {
      capture_to = next();
    } else if (a == "--capture-limit") {
      opt.capture_limit = std::strtoull(next(), nullptr, 10);
    } else {
      std::fprintf(
          stderr,
          "usage: corral-sim [--seed N | --seeds COUNT [--from N]] [--voters V] [--observers O] "
          "[--reconfig] [--pauses] [--transfers] [--quorum-sync] [--disk-full] "
          "[--consensus zab|raft] [--election fle|static] [--loss P] [--trace] [--capture FILE "
          "[--capture-limit N]]\n");
      return 2;
    }
  }
  if (!scenario.empty()) {
    std::ifstream in(scenario);
    if (!in) {
      std::fprintf(stderr, "corral-sim: cannot read %s\n", scenario.c_str());
      return 2;
    }
    std::stringstream text;
    text << in.rdbuf();
    uint64_t bad = 0;
    for (uint64_t seed = from; seed < from + count; ++seed) {
      std::string failure = corral::sim::run_scenario(text.str(), seed);
      if (!failure.empty()) {
        ++bad;
        std::printf("%s: %s\n", scenario.c_str(), failure.c_str());
      }
    }
    std::printf("%s: %llu of %llu seeds passed\n", scenario.c_str(),
                static_cast<unsigned long long>(count - bad),
                static_cast<unsigned long long>(count));
    return bad ? 1 : 0;
  }
  if (!capture_to.empty()) opt.capture = &captured;
  uint64_t failed = 0, committed = 0, reconfigs = 0, kept = 0, snaps = 0, resumed = 0;
  for (uint64_t seed = from; seed < from + count; ++seed) {
    auto r = corral::sim::run(seed, opt);
    committed += r.committed;
    reconfigs += r.reconfigs;
    kept += r.kept;
    snaps += r.snaps;
    resumed += r.snaps_resumed;
    if (trace || !r.ok)
      for (const auto& line : r.trace) std::printf("  %s\n", line.c_str());
    if (!r.ok) {
      ++failed;
      std::printf("seed %llu FAILED: %s\n", static_cast<unsigned long long>(seed),
                  r.failure.c_str());
    } else if (count == 1) {
      std::printf(
          "seed %llu ok: %llu committed, %llu leaders, %llu crashes, %llu partitions, %llu SNAP, "
          "%llu TRUNC, %llu snapshots loaded\n",
          static_cast<unsigned long long>(seed), static_cast<unsigned long long>(r.committed),
          static_cast<unsigned long long>(r.elections), static_cast<unsigned long long>(r.crashes),
          static_cast<unsigned long long>(r.partitions), static_cast<unsigned long long>(r.snaps),
          static_cast<unsigned long long>(r.truncs),
          static_cast<unsigned long long>(r.snaps_loaded));
    }
  }
  if (!capture_to.empty()) {
    FILE* f = std::fopen(capture_to.c_str(), "wb");
    if (!f || std::fwrite(captured.data(), 1, captured.size(), f) != captured.size() ||
        std::fclose(f) != 0) {
      std::fprintf(stderr, "corral-sim: cannot write %s\n", capture_to.c_str());
      return 2;
    }
  }
  std::printf(
      "%llu seeds, %llu failed, %llu entries committed, %llu membership changes, %llu moves to a "
      "new leader with clients kept, %llu snapshots sent (%llu from where a copy stopped)\n",
      static_cast<unsigned long long>(count), static_cast<unsigned long long>(failed),
      static_cast<unsigned long long>(committed), static_cast<unsigned long long>(reconfigs),
      static_cast<unsigned long long>(kept), static_cast<unsigned long long>(snaps),
      static_cast<unsigned long long>(resumed));
  return failed ? 1 : 0;
}
