// Micro-benchmarks (Google Benchmark) for the paths every request takes: the
// jute codec, the txn envelope, applying to the data tree, the wal's record
// framing and scanning, Zab's proposal messages, and the watch table.
//
//   build/bench/micro/corral-micro [--benchmark_filter=Tree]
// For stable figures on a shared machine, count instructions instead:
//   valgrind --tool=callgrind build/bench/micro/corral-micro --benchmark_filter=X
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "corral/proto/jute.hpp"
#include "corral/proto/records.hpp"
#include "tree/data_tree.hpp"
#include "tree/state_machine.hpp"
#include "tree/txn.hpp"
#include "wal_format.hpp"
#include "watch/watch_manager.hpp"
#include "zab_messages.hpp"

using namespace corral;

namespace {

std::string create_payload(const std::string& path, size_t value) {
  std::string out;
  proto::JuteWriter w(out);
  proto::write(w,
               proto::CreateRequest{path, std::string(value, 'v'), proto::open_acl_unsafe(), 0, 0});
  return out;
}

void JuteCreateRequestRoundTrip(benchmark::State& state) {
  std::string payload = create_payload("/bench/node-0000001234", 100);
  for (auto _ : state) {
    proto::JuteReader r(payload);
    proto::CreateRequest req;
    benchmark::DoNotOptimize(proto::read(r, req));
    std::string out;
    proto::JuteWriter w(out);
    proto::write(w, req);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(JuteCreateRequestRoundTrip);

void JuteStatWrite(benchmark::State& state) {
  proto::Stat st{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  std::string out;
  for (auto _ : state) {
    out.clear();
    proto::JuteWriter w(out);
    proto::write(w, st);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(JuteStatWrite);

void TxnEnvelope(benchmark::State& state) {
  std::string payload = create_payload("/bench/node", 100);
  kernel::Ids ids{{"ip", "127.0.0.1"}};
  for (auto _ : state) {
    std::string body = kernel::encode_txn(1, 0x100000001, 7, payload, ids);
    kernel::TxnHeader h;
    benchmark::DoNotOptimize(kernel::decode_txn(body, h));
  }
}
BENCHMARK(TxnEnvelope);

// Applies creates (then sets) of distinct nodes under one parent, as the
// state machine does for each committed entry, in a tree of `range(0)` nodes.
void TreeApplyCreate(benchmark::State& state) {
  kernel::DataTree tree;
  kernel::StateMachine sm(tree);
  kernel::Ids ids;
  const int64_t session = 0x100000001;
  sm.apply(
      sdk::LogEntry{1, 1,
                    kernel::encode_txn(-10, session, 0,
                                       kernel::session_payload(30000, std::string(16, 'p')), ids)});
  int64_t zxid = 1, n = 0;
  auto create = [&](const std::string& path) {
    return kernel::encode_txn(1, session, 1, create_payload(path, 100), ids);
  };
  if (sm.apply(sdk::LogEntry{++zxid, 1, create("/b")}).err != kernel::Err::ok) {
    state.SkipWithError("the setup create failed");
    return;
  }
  for (int64_t i = 0; i < state.range(0); ++i)
    sm.apply(sdk::LogEntry{++zxid, 1, create("/b/pre" + std::to_string(i))});
  std::vector<std::string> bodies;
  for (int i = 0; i < 4096; ++i) bodies.push_back(create("/b/n" + std::to_string(i)));
  for (auto _ : state) {
    if (n == static_cast<int64_t>(bodies.size())) {
      state.PauseTiming();
      for (int i = 0; i < 4096; ++i) {
        kernel::Journal j;
        tree.remove("/b/n" + std::to_string(i), -1, ++zxid, ids, j);
      }
      n = 0;
      state.ResumeTiming();
    }
    kernel::ApplyOutcome out = sm.apply(sdk::LogEntry{++zxid, 1, bodies[static_cast<size_t>(n++)]});
    if (out.err != kernel::Err::ok) {
      state.SkipWithError("a create failed");
      return;
    }
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(TreeApplyCreate)->Arg(0)->Arg(100000);

void TreeGetData(benchmark::State& state) {
  kernel::DataTree tree;
  kernel::Ids ids;
  kernel::Journal j;
  tree.create("/g", "", proto::open_acl_unsafe(), proto::CreateMode::persistent, 0, 1, 1, ids,
              nullptr, nullptr, j);
  for (int i = 0; i < state.range(0); ++i)
    tree.create("/g/n" + std::to_string(i), std::string(100, 'v'), proto::open_acl_unsafe(),
                proto::CreateMode::persistent, 0, 2 + i, 1, ids, nullptr, nullptr, j);
  int i = 0;
  std::vector<std::string> paths;
  for (int k = 0; k < 1024; ++k)
    paths.push_back("/g/n" + std::to_string((k * 7919) % state.range(0)));
  for (auto _ : state) {
    const kernel::Node* n = tree.find(paths[static_cast<size_t>(i++ & 1023)]);
    benchmark::DoNotOptimize(tree.stat(*n));
  }
}
BENCHMARK(TreeGetData)->Arg(1000)->Arg(1000000);

// A flat tree of N znodes with 100-byte values, as corral-bench's create
// workload leaves it.
kernel::DataTree flat_tree(int64_t n) {
  kernel::DataTree tree;
  kernel::Ids ids;
  kernel::Journal j;
  tree.create("/s", "", proto::open_acl_unsafe(), proto::CreateMode::persistent, 0, 1, 1, ids,
              nullptr, nullptr, j);
  for (int64_t i = 0; i < n; ++i)
    tree.create("/s/c-" + std::to_string(i % 16) + "-" + std::to_string(i), std::string(100, 'v'),
                proto::open_acl_unsafe(), proto::CreateMode::persistent, 0, 2 + i, 1, ids, nullptr,
                nullptr, j);
  return tree;
}

// What the snapshot process does per znode: serialize the tree and
// checksum it as the wal does (the file's writes left out).
void TreeSnapshotWrite(benchmark::State& state) {
  kernel::DataTree tree = flat_tree(state.range(0));
  for (auto _ : state) {
    wal::SnapshotChecksums sums;
    tree.serialize([&](std::string_view chunk) { sums.add(chunk); });
    benchmark::DoNotOptimize(sums.tail());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(TreeSnapshotWrite)->Arg(100000)->Unit(benchmark::kMillisecond);

// Restart: rebuilding the tree from a snapshot.
void TreeSnapshotLoad(benchmark::State& state) {
  std::string bytes;
  flat_tree(state.range(0)).serialize([&](std::string_view chunk) { bytes += chunk; });
  for (auto _ : state) {
    auto tree = kernel::DataTree::deserialize(bytes);
    benchmark::DoNotOptimize(tree);
    state.PauseTiming();  // freeing the tree is not part of a restart
    tree = sdk::Status();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(TreeSnapshotLoad)->Arg(100000)->Unit(benchmark::kMillisecond);

// Restart from a compressed snapshot (version 3): checking every frame and
// inflating the body whole, before the tree is built from it.
void WalSnapshotReadZstd(benchmark::State& state) {
  std::string file = wal::snapshot_header(7, wal::kSnapshotVersionZstd);
  wal::SnapshotCompressor zstd(1);
  flat_tree(state.range(0)).serialize([&](std::string_view chunk) {
    if (!zstd.add(chunk, file)) state.SkipWithError("compressing");
  });
  if (!zstd.finish(file)) state.SkipWithError("compressing");
  for (auto _ : state) {
    sdk::Zxid zxid = 0;
    std::string body;
    sdk::Status st = wal::read_snapshot(file, zxid, &body);
    if (!st) state.SkipWithError(st.to_string().c_str());
    benchmark::DoNotOptimize(body);
    state.SetBytesProcessed(state.bytes_processed() + static_cast<int64_t>(body.size()));
  }
}
BENCHMARK(WalSnapshotReadZstd)->Arg(100000)->Unit(benchmark::kMillisecond);

void WalRecordEncode(benchmark::State& state) {
  sdk::LogEntry e{0x100000001, 1700000000000,
                  std::string(static_cast<size_t>(state.range(0)), 'x')};
  std::string out;
  for (auto _ : state) {
    out.clear();
    wal::encode_record(out, e);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(WalRecordEncode)->Arg(150)->Arg(4096);

void WalSegmentScan(benchmark::State& state) {
  std::string seg;
  for (int i = 0; i < 10000; ++i)
    wal::encode_record(seg, sdk::LogEntry{i + 1, 1, std::string(150, 'x')});
  for (auto _ : state) {
    auto scan = wal::scan_segment(seg, true, [](const sdk::LogEntry&, size_t) { return true; });
    benchmark::DoNotOptimize(scan.records);
  }
  state.SetItemsProcessed(state.iterations() * 10000);
}
BENCHMARK(WalSegmentScan);

void ZabProposalEncodeDecode(benchmark::State& state) {
  zab::Msg m;
  m.type = zab::MsgType::proposal;
  m.entry = sdk::LogEntry{0x500000001, 1700000000000, std::string(150, 'x')};
  std::string payload = zab::encode_payload(m);
  for (auto _ : state) {
    std::string msg = zab::encode_message(zab::MsgType::proposal, 42, 7, payload);
    zab::Msg back;
    benchmark::DoNotOptimize(zab::decode_message(msg, back));
  }
}
BENCHMARK(ZabProposalEncodeDecode);

// A walked snapshot abandoned a few slices in, on a tree of N znodes (1,000
// parents): the pause the abandonment itself costs the loop (abandon_ms),
// and the longest call settling the nodes it had not reached, 32 at a time
// as with each applied entry (worst_settle_us).
double settle_all(kernel::DataTree& tree) {
  double worst = 0;
  while (true) {
    const auto t0 = std::chrono::steady_clock::now();
    const bool settled = tree.settle_snapshot(32);
    worst = std::max(
        worst,
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (settled) return worst;
  }
}

void TreeSnapshotAbandon(benchmark::State& state) {
  kernel::DataTree tree;
  kernel::Ids ids;
  kernel::Journal j;
  const int64_t parents = 1000;
  for (int64_t p = 0; p < parents; ++p)
    tree.create("/p" + std::to_string(p), "", proto::open_acl_unsafe(),
                proto::CreateMode::persistent, 0, 1 + p, 1, ids, nullptr, nullptr, j);
  for (int64_t i = 0; i < state.range(0); ++i)
    tree.create("/p" + std::to_string(i % parents) + "/n" + std::to_string(i),
                std::string(100, 'v'), proto::open_acl_unsafe(), proto::CreateMode::persistent, 0,
                parents + 1 + i, 1, ids, nullptr, nullptr, j);
  double worst_settle = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const uint64_t id = tree.begin_snapshot([](std::string_view) {});
    if (id == 0) {
      state.SkipWithError("no walk could begin");
      return;
    }
    for (int k = 0; k < 20; ++k) tree.snapshot_step(id, 256);
    state.ResumeTiming();
    tree.end_snapshot(id);
    state.PauseTiming();
    worst_settle = std::max(worst_settle, settle_all(tree));
    state.ResumeTiming();
  }
  state.counters["worst_settle_us"] = worst_settle;
}
BENCHMARK(TreeSnapshotAbandon)->Arg(1000000)->Iterations(5)->Unit(benchmark::kMillisecond);

struct IdleWatcher : kernel::Watcher {
  kernel::Ids ids;
  void notify(const proto::WatcherEvent&, sdk::Zxid) override {}
  const kernel::Ids& identities() const override { return ids; }
};

// N data watches of one connection, on N paths: the time a watch takes, and
// the longest single one (worst_add_ms), which is where the table of
// watched paths grows. A resize that moved every entry at once took
// hundreds of milliseconds at 2M paths.
void WatchAddMany(benchmark::State& state) {
  std::vector<std::string> paths;
  for (int64_t i = 0; i < state.range(0); ++i)
    paths.push_back("/w/p" + std::to_string(i % 100) + "/n" + std::to_string(i));
  double worst = 0;
  for (auto _ : state) {
    kernel::WatchManager wm;
    IdleWatcher w;
    for (const std::string& p : paths) {
      const auto t0 = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(wm.watch_data(p, &w));
      worst = std::max(
          worst,
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  state.counters["worst_add_ms"] = worst;
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(WatchAddMany)->Arg(2000000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
