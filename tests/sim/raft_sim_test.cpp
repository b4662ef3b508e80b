// Raft under the simulation's faults, over many seeds: the invariants the
// Zab runs check (one applied history, quorum durability, linearizable
// syncs, every write and handover answered, convergence), and Raft's own:
// one leader elected per term, log matching on what each server wrote, and
// leader completeness (an elected leader holds every entry committed in an
// earlier term). Replay a failure with
//   build/tests/corral-sim --consensus raft --seed N [--voters V --observers O --reconfig ...]
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>

#include "sim.hpp"

using corral::sim::SimOptions;

namespace {

uint64_t seeds(uint64_t fallback) {
  const char* v = std::getenv("CORRAL_SIM_SEEDS");
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

SimOptions raft() {
  SimOptions o;
  o.consensus = "raft";
  o.quorum_sync = true;  // raft's syncs are always ReadIndex: every answered one is checked
  return o;
}

struct Totals {
  uint64_t committed = 0, elections = 0, snaps = 0, reconfigs = 0, syncs = 0, pauses = 0,
           disk_fulls = 0, transfers = 0, transfers_done = 0, snaps_loaded = 0, snaps_resumed = 0;
};

Totals run_seeds(const SimOptions& opt, uint64_t count, uint64_t first) {
  Totals t;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    auto r = corral::sim::run(seed, opt);
    t.committed += r.committed;
    t.elections += r.elections;
    t.snaps += r.snaps;
    t.reconfigs += r.reconfigs;
    t.syncs += r.syncs;
    t.pauses += r.pauses;
    t.disk_fulls += r.disk_fulls;
    t.transfers += r.transfers;
    t.transfers_done += r.transfers_done;
    t.snaps_loaded += r.snaps_loaded;
    t.snaps_resumed += r.snaps_resumed;
    if (!r.ok) {
      std::string trace;
      size_t from = r.trace.size() > 80 ? r.trace.size() - 80 : 0;
      for (size_t i = from; i < r.trace.size(); ++i) trace += "  " + r.trace[i] + "\n";
      ADD_FAILURE() << "seed " << seed << " (raft, " << opt.voters << " voters, " << opt.observers
                    << " observers" << (opt.reconfig ? ", reconfig" : "") << "): " << r.failure
                    << "\nlast events:\n"
                    << trace;
      return t;
    }
  }
  // The faults must actually exercise the protocol's paths.
  EXPECT_GT(t.committed, count * 10);
  EXPECT_GT(t.elections, count);
  EXPECT_GT(t.snaps, 0u);
  // Snapshots go in many small pieces; many arrive whole.
  EXPECT_GT(t.snaps_loaded, 0u);
  EXPECT_GT(t.syncs, count * 5);
  if (opt.reconfig) {
    EXPECT_GT(t.reconfigs, count);
  }
  if (opt.pauses) {
    EXPECT_GT(t.pauses, count);
  }
  if (opt.disk_full) {
    EXPECT_GT(t.disk_fulls, count);
  }
  if (opt.transfers) {
    EXPECT_GT(t.transfers, count * 5);
    EXPECT_GT(t.transfers_done, count);
  }
  std::printf(
      "%llu seeds: %llu entries committed, %llu leaders, %llu snapshots sent, %llu syncs checked, "
      "%llu membership changes, %llu/%llu handovers ok, %llu snapshots resumed\n",
      static_cast<unsigned long long>(count), static_cast<unsigned long long>(t.committed),
      static_cast<unsigned long long>(t.elections), static_cast<unsigned long long>(t.snaps),
      static_cast<unsigned long long>(t.syncs), static_cast<unsigned long long>(t.reconfigs),
      static_cast<unsigned long long>(t.transfers_done),
      static_cast<unsigned long long>(t.transfers),
      static_cast<unsigned long long>(t.snaps_resumed));
  return t;
}

}  // namespace

// 8,000 seeds in all at the default count.
TEST(RaftSimulation, ThreeServers) { run_seeds(raft(), seeds(2000), 1); }

TEST(RaftSimulation, FiveServers) {
  SimOptions o = raft();
  o.voters = 5;
  run_seeds(o, seeds(1000), 10001);
}

TEST(RaftSimulation, ThreeServersAndAnObserver) {
  SimOptions o = raft();
  o.observers = 1;
  run_seeds(o, seeds(1000), 20001);
}

// Leaders paused (SIGSTOP) and replaced while paused: a sync is a ReadIndex
// confirmed by a quorum, so a deposed leader answers none.
TEST(RaftSimulation, SyncsUnderPausesAndPartitions) {
  SimOptions o = raft();
  o.pauses = true;
  run_seeds(o, seeds(1000), 30001);
}

// Appends refused (a full disk): the tail is written again once every
// append before it is answered, and a server stands only with its whole
// log durable.
TEST(RaftSimulation, DisksThatFillUp) {
  SimOptions o = raft();
  o.disk_full = true;
  run_seeds(o, seeds(1000), 40001);
}

TEST(RaftSimulation, HeavyLossAndReordering) {
  SimOptions o = raft();
  o.loss = 0.05;
  o.duplicate = 0.05;
  o.reorder = 0.05;
  const uint64_t count = seeds(500);
  Totals t = run_seeds(o, count, 50001);
  // Pieces of snapshots go missing: the copies go on from where they
  // stopped (about one snapshot in twenty, at the default count).
  if (count >= 500) {
    EXPECT_GT(t.snaps_resumed, 0u);
  }
}

// ZooKeeper's reconfig semantics: members turn from participant to
// observer and back; a change commits with a quorum of the old voters and
// of the new, and elections need both while it is pending.
TEST(RaftSimulation, MembershipChangesUnderFaults) {
  SimOptions o = raft();
  o.voters = 3;
  o.observers = 2;
  o.reconfig = true;
  run_seeds(o, seeds(500), 60001);
}

TEST(RaftSimulation, AnEnsembleOfOneGrowsAndShrinksUnderFaults) {
  SimOptions o = raft();
  o.voters = 1;
  o.observers = 2;
  o.reconfig = true;
  run_seeds(o, seeds(500), 70001);
}

// Handovers (TIMEOUT_NOW to an up-to-date voter) asked of random servers
// under crashes, partitions, pauses and membership changes.
TEST(RaftSimulation, LeaderTransfersUnderFaults) {
  SimOptions o = raft();
  o.voters = 3;
  o.observers = 1;
  o.transfers = o.pauses = o.reconfig = true;
  run_seeds(o, seeds(500), 80001);
}

// A member gone bad: raft's own traffic with bytes flipped, delivered to the
// others. No server may crash or throw.
TEST(RaftSimulation, AMemberGoneBadCannotCrashTheOthers) {
  SimOptions capture = raft();
  std::string traffic;
  capture.capture = &traffic;
  capture.capture_limit = 400;
  ASSERT_TRUE(corral::sim::run(7, capture).ok);
  ASSERT_GT(traffic.size(), 1000u);
  std::mt19937_64 rng(43);
  uint64_t delivered = 0;
  for (int round = 0; round < 40; ++round) {
    SimOptions opt = raft();
    opt.fault_ms = 1500;
    opt.heal_ms = 500;
    opt.crashes = opt.partitions = false;
    opt.hostile = traffic;
    for (size_t at = 0; at + 4 <= opt.hostile.size();) {
      size_t n = (size_t{static_cast<uint8_t>(opt.hostile[at + 2])} << 8) |
                 static_cast<uint8_t>(opt.hostile[at + 3]);
      for (size_t i = 0; i < n && at + 4 + i < opt.hostile.size(); ++i)
        if (rng() % 16 == 0) opt.hostile[at + 4 + i] = static_cast<char>(rng());
      at += 4 + n;
    }
    auto r = corral::sim::run(200 + static_cast<uint64_t>(round), opt);
    delivered += r.hostile;
  }
  EXPECT_GT(delivered, 40u * 300);
}
