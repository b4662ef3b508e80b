#!/usr/bin/python3
"""Runs 3-server corrald ensembles (on zab, and on raft) and a 3-server
Apache ZooKeeper ensemble side by side on this machine and prints one table
of medians and ratios: write and read throughput and p99 with sessions
spread over every server, and the time from SIGKILL of the leader to the
first write committed by its successor.

Both ensembles run from the same zoo.cfg (server.N lines, dataDir/myid),
both durable (corrald's wal; ZooKeeper with forceSync=yes), every server in
its own session (setsid). corral-bench drives them in alternation (A B, then
B A, ...).

    ./dev bench ensemble [--rounds 3] [--duration 5] [--failovers 5] [--kinds zab,raft,zookeeper]

Needs a build (./dev build), Debian's zookeeper package and python3-kazoo.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from corral_harness.ensemble import Ensemble
from side_by_side import BENCH, BUILD, CORRALD

NAMES = {"zab": "corrald zab", "raft": "corrald raft", "zookeeper": "ZooKeeper"}


def make_ensemble(kind, root, size, heap, tick_ms):
    """The harness's launcher, as the tests use it: every ensemble from the
    same zoo.cfg, durable, every member in its own session; ZooKeeper's JVM
    with a fixed heap, and no quorum authentication on any side. `kind`:
    zab or raft (corrald with that consensus module), or zookeeper."""
    target = "zookeeper" if kind == "zookeeper" else "corrald"
    extra = [] if kind == "zookeeper" else ["--set", f"plugins.consensus={kind}"]
    return Ensemble(pathlib.Path(root) / kind, voters=size, tick_ms=tick_ms, peer_auth=False,
                    extra_cfg="maxClientCnxns=0", target=target, jvm=[f"-Xmx{heap}", f"-Xms{heap}"],
                    corrald=str(CORRALD), plugin_dir=str(BUILD / "plugins"), extra_args=extra)


def table(rows, kinds):
    """rows: metric -> kind -> [values]; a Markdown table of medians, with
    each corrald module's ratio to ZooKeeper and raft's to zab."""
    import statistics
    head = [NAMES[k] for k in kinds]
    ratios = [(a, b) for a, b in (("zab", "zookeeper"), ("raft", "zookeeper"), ("raft", "zab"))
              if a in kinds and b in kinds]
    head += [f"{NAMES[a]} / {NAMES[b]}" for a, b in ratios]
    lines = ["| metric | " + " | ".join(head) + " |", "| --- |" + " ---: |" * len(head)]
    for metric, by in rows.items():
        med = {k: statistics.median(by[k]) for k in kinds if by.get(k)}
        fmt = (lambda v: f"{v:,.0f}") if "ops/s" in metric else (lambda v: f"{v:.3f}")
        cells = [fmt(med[k]) if k in med else "-" for k in kinds]
        cells += [f"{med[a] / med[b]:.2f}" if med.get(b) and a in med else "-" for a, b in ratios]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench(hosts, workload, args):
    cmd = [str(BENCH), "--hosts", hosts, "--workload", workload, "--json", "--quiet",
           "--sessions", str(args.sessions), "--depth", str(args.depth), "--value-size", str(args.value_size),
           "--keys", str(args.keys), "--duration", str(args.duration),
           "--prefix", f"/ens-{workload}-{time.monotonic_ns()}"]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def failover(ens):
    """Seconds from SIGKILL of the leader to the first write its successor commits."""
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry
    old = ens.leader()
    survivors = [m for i, m in enumerate(ens.members) if i != old]
    zk = KazooClient(hosts=ens.hosts(survivors), timeout=10,
                     connection_retry=KazooRetry(max_tries=-1, delay=0.01, max_delay=0.05))
    zk.start(30)
    zk.ensure_path("/failover")
    ens.kill(old)
    t0 = time.monotonic()
    while True:
        try:
            zk.create("/failover/p-", b"", sequence=True)
            took = time.monotonic() - t0
            break
        except Exception:
            time.sleep(0.002)
            if time.monotonic() - t0 > 60:
                sys.exit(f"{ens.target}: no commit within 60 s of the leader's death")
    zk.stop()
    zk.close()
    ens.start_member(old)
    ens.wait_serving()
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--workloads", default="create,set,get,mixed")
    ap.add_argument("--sessions", type=int, default=24)
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--size", type=int, default=3, help="servers per ensemble")
    ap.add_argument("--failovers", type=int, default=5, help="leader kills per ensemble")
    ap.add_argument("--tick-ms", type=int, default=2000)
    ap.add_argument("--heap", default="2g", help="each ZooKeeper server's JVM heap")
    ap.add_argument("--kinds", default="zab,raft,zookeeper",
                    help="what to run: zab, raft (corrald on that module), zookeeper")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    if not kinds or any(k not in NAMES for k in kinds):
        sys.exit(f"--kinds takes some of {', '.join(NAMES)}")
    for path in (CORRALD, BENCH):
        if not path.exists():
            sys.exit(f"{path} is missing: run ./dev build first")

    work = tempfile.mkdtemp(prefix="corral-ens-")
    ensembles = {k: make_ensemble(k, work, args.size, args.heap, args.tick_ms) for k in kinds}
    rows = {}

    def record(metric, kind, value):
        rows.setdefault(metric, {}).setdefault(kind, []).append(value)

    try:
        for e in ensembles.values():
            e.start(timeout=120)
        for rnd in range(args.rounds):
            for w in args.workloads.split(","):
                for kind in kinds if rnd % 2 == 0 else kinds[::-1]:
                    r = bench(ensembles[kind].hosts(), w, args)
                    print(f"round {rnd + 1} {w:7s} {kind:9s} {r['ops_per_sec']:>10.0f} ops/s  "
                          f"p99 {r['p99_ms']:.2f} ms", file=sys.stderr)
                    record(f"{w} ops/s", kind, r["ops_per_sec"])
                    record(f"{w} p99 (ms)", kind, r["p99_ms"])
        for i in range(args.failovers):
            for kind in kinds if i % 2 == 0 else kinds[::-1]:
                t = failover(ensembles[kind])
                print(f"failover {i + 1} {kind:9s} {t:.3f} s", file=sys.stderr)
                record("leader kill to first commit (s)", kind, t)
    finally:
        for e in ensembles.values():
            e.close()
        shutil.rmtree(work, ignore_errors=True)

    print(table(rows, kinds))
    print(f"\n{args.size}-server ensembles on loopback; {args.rounds} rounds of {args.duration:g} s, "
          f"{args.sessions} sessions spread over the servers x {args.depth} in flight, {args.value_size}-byte "
          f"values, {args.keys} keys; {args.failovers} leader kills each; medians. Machine: {os.cpu_count()} "
          f"cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB.")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
