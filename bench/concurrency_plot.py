#!/usr/bin/python3
"""Throughput and p99 latency versus concurrency for corrald and Apache
ZooKeeper, standalone, on this machine: one PNG with both servers.

Each server runs in its own session (setsid), durable as in side_by_side.py
(corrald's wal; ZooKeeper with forceSync=yes). corral-bench drives them in
alternation at each level of concurrency (sessions, one request in flight
each, so concurrency = outstanding requests).

    bench/concurrency_plot.py [--levels 1,4,16,64,256] [--duration 3] [--out docs/concurrency.png]

Needs a build (./dev build), Debian's zookeeper package and python3-matplotlib.
"""
import argparse
import json
import pathlib
import shutil
import sys
import tempfile

from side_by_side import BENCH, CORRALD, REPO, Server, bench


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,4,16,64,256")
    ap.add_argument("--workloads", default="set,get")
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--heap", default="4g")
    ap.add_argument("--out", default=str(REPO / "docs" / "concurrency.png"))
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    for path in (CORRALD, BENCH):
        if not path.exists():
            sys.exit(f"{path} is missing: run ./dev build first")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [int(x) for x in args.levels.split(",")]
    workloads = args.workloads.split(",")
    work = tempfile.mkdtemp(prefix="corral-conc-")
    servers = {k: Server(k, work, args.heap) for k in ("corrald", "zookeeper")}
    results = {}  # (kind, workload) -> [(level, ops, p99)]
    try:
        for s in servers.values():
            s.start()
        for i, level in enumerate(levels):
            for w in workloads:
                for kind in ("corrald", "zookeeper") if i % 2 == 0 else ("zookeeper", "corrald"):
                    run = argparse.Namespace(sessions=level, depth=1, value_size=args.value_size, keys=args.keys,
                                             duration=args.duration)
                    r = bench(servers[kind].port, w, run)
                    results.setdefault(f"{kind} {w}", []).append((level, r["ops_per_sec"], r["p99_ms"]))
                    print(f"{w:4s} {kind:9s} {level:4d} sessions {r['ops_per_sec']:>10.0f} ops/s "
                          f"p99 {r['p99_ms']:.2f} ms", file=sys.stderr)
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(work, ignore_errors=True)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"corrald": "-o", "zookeeper": "--s"}
    for key, rows in results.items():
        kind = key.split()[0]
        xs = [r[0] for r in rows]
        ax1.plot(xs, [r[1] for r in rows], styles[kind], label=key)
        ax2.plot(xs, [r[2] for r in rows], styles[kind], label=key)
    for ax, title, unit in ((ax1, "throughput", "ops/s"), (ax2, "p99 latency", "ms")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrent requests (sessions x 1)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("corrald vs Apache ZooKeeper, standalone, durable, 100-byte values")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
