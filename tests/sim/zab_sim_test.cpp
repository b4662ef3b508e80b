// Zab and the elections under the simulation's faults, over many seeds. A
// failure prints the seed and the events before it; replay one with
//   build/tests/corral-sim --seed N [--voters V --observers O --election E --reconfig]
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "sim.hpp"

using corral::sim::SimOptions;

namespace {

uint64_t seeds(uint64_t fallback) {
  const char* v = std::getenv("CORRAL_SIM_SEEDS");
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

uint64_t total_deferral_limits = 0;

void run_seeds(const SimOptions& opt, uint64_t count, uint64_t first = 1) {
  uint64_t committed = 0, elections = 0, snaps = 0, truncs = 0, reconfigs = 0, syncs = 0,
           pauses = 0, disk_fulls = 0, snaps_loaded = 0, deferral_limits = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    auto r = corral::sim::run(seed, opt);
    committed += r.committed;
    elections += r.elections;
    snaps += r.snaps;
    truncs += r.truncs;
    reconfigs += r.reconfigs;
    syncs += r.syncs;
    pauses += r.pauses;
    disk_fulls += r.disk_fulls;
    snaps_loaded += r.snaps_loaded;
    deferral_limits += r.deferral_limits;
    if (!r.ok) {
      std::string trace;
      size_t from = r.trace.size() > 80 ? r.trace.size() - 80 : 0;
      for (size_t i = from; i < r.trace.size(); ++i) trace += "  " + r.trace[i] + "\n";
      FAIL() << "seed " << seed << " (" << opt.voters << " voters, " << opt.observers
             << " observers, election " << opt.election << (opt.reconfig ? ", reconfig" : "")
             << "): " << r.failure << "\nlast events:\n"
             << trace;
    }
  }
  // The faults must actually exercise the protocol's paths.
  EXPECT_GT(committed, count * 10);
  EXPECT_GT(elections, count);
  EXPECT_GT(truncs + snaps, 0u);
  // Every SNAP goes in pieces (the simulation's are small, and its snapshots
  // are read back in pieces smaller still), and many arrive whole.
  if (snaps > 0) {
    EXPECT_GT(snaps_loaded, 0u);
  }
  if (opt.reconfig) {
    EXPECT_GT(reconfigs, count);
  }
  if (opt.quorum_sync) {
    EXPECT_GT(syncs, count * 10);
  }
  if (opt.pauses) {
    EXPECT_GT(pauses, count);
  }
  if (opt.disk_full) {
    EXPECT_GT(disk_fulls, count);
  }
  std::printf(
      "%llu seeds: %llu entries committed, %llu leaders established, %llu SNAP and %llu TRUNC "
      "syncs, "
      "%llu membership changes, %llu snapshots received whole, %llu learners past their deferral "
      "limit\n",
      static_cast<unsigned long long>(count), static_cast<unsigned long long>(committed),
      static_cast<unsigned long long>(elections), static_cast<unsigned long long>(snaps),
      static_cast<unsigned long long>(truncs), static_cast<unsigned long long>(reconfigs),
      static_cast<unsigned long long>(snaps_loaded),
      static_cast<unsigned long long>(deferral_limits));
  total_deferral_limits += deferral_limits;
}

}  // namespace

TEST(ZabSimulation, ThreeServersWithFastLeaderElection) {
  const uint64_t before = total_deferral_limits;
  run_seeds(SimOptions{}, seeds(3000));
  // Some runs give a learner so small a bound on what it keeps while a
  // snapshot arrives that the bound is reached: it starts over, and every
  // check still holds.
  if (seeds(3000) >= 1000) {
    EXPECT_GT(total_deferral_limits, before);
  }
}

// Leader handovers asked of random servers while crashes, partitions,
// pauses and membership changes go on: the invariants hold, every request
// is answered, and handovers do happen.
TEST(ZabSimulation, LeaderTransfersUnderFaults) {
  SimOptions o;
  o.voters = 3;
  o.observers = 1;
  o.transfers = o.pauses = o.reconfig = true;
  uint64_t count = seeds(1000), asked = 0, done = 0;
  for (uint64_t seed = 60001; seed < 60001 + count; ++seed) {
    corral::sim::SimResult r = corral::sim::run(seed, o);
    if (!r.ok) {
      std::string trace;
      size_t from = r.trace.size() > 80 ? r.trace.size() - 80 : 0;
      for (size_t i = from; i < r.trace.size(); ++i) trace += "  " + r.trace[i] + "\n";
      FAIL() << "seed " << seed << ": " << r.failure << "\nlast events:\n" << trace;
    }
    asked += r.transfers;
    done += r.transfers_done;
  }
  EXPECT_GT(asked, count * 5);
  EXPECT_GT(done, count);
  std::printf("%llu seeds: %llu handovers asked, %llu answered ok\n",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(asked),
              static_cast<unsigned long long>(done));
}

TEST(ZabSimulation, FiveServersWithFastLeaderElection) {
  SimOptions o;
  o.voters = 5;
  run_seeds(o, seeds(1000), 10001);
}

TEST(ZabSimulation, ThreeServersAndAnObserver) {
  SimOptions o;
  o.observers = 1;
  run_seeds(o, seeds(1000), 20001);
}

// Leaders paused (SIGSTOP) and replaced while paused, partitions, crashes:
// with quorum_sync every answered sync saw every write committed before it.
TEST(ZabSimulation, QuorumSyncsUnderPausesAndPartitions) {
  SimOptions o;
  o.quorum_sync = o.pauses = true;
  run_seeds(o, seeds(1000));
}

// Disks that fill up (appends refused) under crashes and partitions: the
// server leaves, writes its log's tail again once the disk takes it, and the
// ensemble converges with no hole in any log.
TEST(ZabSimulation, DisksThatFillUp) {
  SimOptions o;
  o.disk_full = true;
  run_seeds(o, seeds(1000));
}

TEST(ZabSimulation, ThreeServersWithAStaticLeader) {
  SimOptions o;
  o.election = "static";
  o.transfers = true;  // all refused: the leader is fixed
  run_seeds(o, seeds(1000), 30001);
}

TEST(ZabSimulation, HeavyLossAndReordering) {
  SimOptions o;
  o.loss = 0.05;
  o.duplicate = 0.05;
  o.reorder = 0.05;
  run_seeds(o, seeds(1000), 40001);
}

TEST(ZabSimulation, MembershipChangesUnderFaults) {
  // Five servers, two of them observers at first; members keep turning from
  // participant to observer and back while servers crash and partitions
  // come and go.
  SimOptions o;
  o.voters = 3;
  o.observers = 2;
  o.reconfig = true;
  run_seeds(o, seeds(1000), 50001);
}

TEST(ZabSimulation, AnEnsembleOfOneGrowsAndShrinksUnderFaults) {
  // One voter and two observers, as an ensemble started again from one
  // survivor grows back: observers become voters (acknowledging from the
  // change that promotes them), and voters go back down to one.
  SimOptions o;
  o.voters = 1;
  o.observers = 2;
  o.reconfig = true;
  run_seeds(o, seeds(1000), 60001);
}

// A member gone bad: its own traffic with bytes flipped, cut and repeated,
// delivered to the others as election and Zab messages. They may not crash
// or throw; what the lies do to agreement is not checked.
TEST(ZabSimulation, AMemberGoneBadCannotCrashTheOthers) {
  SimOptions capture;
  std::string traffic;
  capture.capture = &traffic;
  capture.capture_limit = 400;
  ASSERT_TRUE(corral::sim::run(7, capture).ok);
  ASSERT_GT(traffic.size(), 1000u);
  std::mt19937_64 rng(42);
  uint64_t delivered = 0;
  for (int round = 0; round < 40; ++round) {
    SimOptions opt;
    opt.fault_ms = 1500;
    opt.heal_ms = 500;
    opt.crashes = opt.partitions = false;
    opt.hostile = traffic;
    // Flip bytes past each record's 4-byte head, so records still line up.
    for (size_t at = 0; at + 4 <= opt.hostile.size();) {
      size_t n = (size_t{static_cast<uint8_t>(opt.hostile[at + 2])} << 8) |
                 static_cast<uint8_t>(opt.hostile[at + 3]);
      for (size_t i = 0; i < n && at + 4 + i < opt.hostile.size(); ++i)
        if (rng() % 16 == 0) opt.hostile[at + 4 + i] = static_cast<char>(rng());
      at += 4 + n;
    }
    auto r = corral::sim::run(100 + static_cast<uint64_t>(round), opt);
    delivered += r.hostile;
  }
  EXPECT_GT(delivered, 40u * 300);
}

// The scenarios in tests/sim/testdata: each script, with the message and
// disk delays of several seeds. A failure names the file, the line, what
// was expected and found, and the seed.
TEST(ZabScenarios, EveryScriptHoldsUnderManyTimings) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(CORRAL_SIM_TESTDATA))
    if (e.path().extension() == ".txt") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 5u);
  uint64_t count = seeds(100) < 100 ? seeds(100) : 100;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::stringstream text;
    text << in.rdbuf();
    for (uint64_t seed = 1; seed <= count; ++seed) {
      std::string failure = corral::sim::run_scenario(text.str(), seed);
      if (!failure.empty()) {
        ADD_FAILURE() << f.filename().string() << ": " << failure;
        break;
      }
    }
  }
}

TEST(ZabScenarios, AWrongExpectationFailsNamingTheLine) {
  std::string failure = corral::sim::run_scenario("servers 3\nrun 3000\nexpect leader 1\n", 1);
  EXPECT_NE(failure.find("line 3: expect leader 1: got [3], want [1]"), std::string::npos)
      << failure;
  failure = corral::sim::run_scenario("run 10\n", 1);
  EXPECT_NE(failure.find("line 1: the first command must be `servers N`"), std::string::npos)
      << failure;
  failure = corral::sim::run_scenario("servers 3\nfrobnicate\n", 1);
  EXPECT_NE(failure.find("line 2: unknown command frobnicate"), std::string::npos) << failure;
}
