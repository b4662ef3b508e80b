#!/usr/bin/python3
"""Restart time of corrald with its tree in ordinary pages (the default) and
in transparent huge pages (CORRAL_HUGEPAGES=1), side by side on the same
snapshot, and ZooKeeper's start on the same tree with --zookeeper.

    ./dev bench restart                              # 1M znodes, 5 runs each
    ./dev bench restart --znodes 1000000,10000000 --runs 3 --zookeeper

For each size a ZooKeeper snapshot of N znodes of 100 B under 100 parents is
written and imported once (`corral import zookeeper`). Each run copies that
data directory afresh, flushes it to disk, waits for the machine to settle,
starts the server in its own session and times it to its first answer
(`ruok`, then `srvr` serving). The two page settings alternate (A B, then
B A). corrald's own log line gives the snapshot's load time; /proc gives the
process's user and system CPU time and its page faults once it serves.
"""
import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

from side_by_side import Server, settle
from zk_import import CLI, write_snapshot
from scale import payload_fn, recovered, zk_heap

MODES = {"ordinary pages": None, "huge pages": "1"}


def cpu_and_faults(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick, int(fields[7])


def one_start(kind, pristine, work, n, hugepages):
    srv = Server(kind, work / "run", zk_heap(n))
    srv.data.rmdir()
    shutil.copytree(pristine, srv.data)
    os.sync()
    settle()
    env_before = os.environ.pop("CORRAL_HUGEPAGES", None)
    if hugepages:
        os.environ["CORRAL_HUGEPAGES"] = hugepages
    try:
        seconds = srv.start()
        row = {"start_s": seconds, "rss_mb": srv.rss_mb()}
        row["user_s"], row["sys_s"], row["faults"] = cpu_and_faults(srv.proc.pid)
        if kind == "corrald":
            row["load_ms"] = recovered(srv.dir / "server.log")[1]
        return row
    finally:
        os.environ.pop("CORRAL_HUGEPAGES", None)
        if env_before is not None:
            os.environ["CORRAL_HUGEPAGES"] = env_before
        srv.stop()
        shutil.rmtree(work / "run", ignore_errors=True)


def spread(values, fmt):
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--znodes", default="1000000", help="comma-separated tree sizes")
    ap.add_argument("--runs", type=int, default=5, help="starts of each setting at each size")
    ap.add_argument("--zookeeper", action="store_true", help="ZooKeeper's start on the same tree too")
    ap.add_argument("--work", help="a directory for the data (default: a fresh temporary one)")
    args = ap.parse_args()
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="corral-restart-"))
    print("| znodes | server | start to serving, s: median (range) | snapshot load, ms | "
          "user / system CPU, s | page faults | RSS MB |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    try:
        for n in (int(x) for x in args.znodes.split(",")):
            zk = work / f"zk-{n}"
            write_snapshot(zk / "version-2", n, "", payload_fn(), parents=100)
            pristine = work / f"corrald-{n}"
            subprocess.run([str(CLI), "import", "zookeeper", "--from", str(zk), "--to", str(pristine)],
                           check=True, capture_output=True)
            rows = {m: [] for m in MODES}
            order = list(MODES)
            for run in range(args.runs):
                for mode in (order if run % 2 == 0 else order[::-1]):
                    row = one_start("corrald", pristine, work, n, MODES[mode])
                    rows[mode].append(row)
                    print(f"{n:,} {mode}: start {row['start_s']:.3f} s, load {row['load_ms']} ms, "
                          f"user {row['user_s']:.2f} s, sys {row['sys_s']:.2f} s", file=sys.stderr)
            if args.zookeeper:
                rows["ZooKeeper"] = [one_start("zookeeper", zk, work, n, None) for _ in range(args.runs)]
            for name, rs in rows.items():
                label = f"corrald, {name}" if name in MODES else name
                load = spread([r["load_ms"] for r in rs], lambda v: f"{v:.0f}") if "load_ms" in rs[0] else "–"
                print(f"| {n:,} | {label} | {spread([r['start_s'] for r in rs], lambda v: f'{v:.2f}')} | {load} | "
                      f"{statistics.median(r['user_s'] for r in rs):.2f} / "
                      f"{statistics.median(r['sys_s'] for r in rs):.2f} | "
                      f"{statistics.median(r['faults'] for r in rs):,.0f} | "
                      f"{statistics.median(r['rss_mb'] for r in rs):.0f} |", flush=True)
            shutil.rmtree(zk)
            shutil.rmtree(pristine)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
