#!/usr/bin/python3
"""Restart time of corrald with its tree in ordinary pages (the default) and
in transparent huge pages (CORRAL_HUGEPAGES=1), side by side on the same
snapshot, and ZooKeeper's start on the same tree with --zookeeper.

    ./dev bench restart                              # 1M znodes, 5 runs each
    ./dev bench restart --znodes 1000000,10000000 --runs 3 --zookeeper
    ./dev bench restart --log-tail 420000 --pages ordinary

For each size a ZooKeeper snapshot of N znodes of 100 B under 100 parents is
written and imported once (`corral import zookeeper`). Each run copies that
data directory afresh, flushes it to disk, waits for the machine to settle,
starts the server in its own session and times it to its first answer
(`ruok`, then `srvr` serving). The two page settings alternate (A B, then
B A). corrald's own log line gives the snapshot's load time; /proc gives the
process's user and system CPU time and its page faults once it serves.

With --log-tail N, the imported tree is started once with snapshots off and
takes N sets (corral-bench, 10,000 keys) before the runs, so that each start
loads the snapshot and then replays N log entries (420,000 on 1M znodes is
about the longest tail the default snapshot policy lets stand: half the
snapshot's size). corrald's log line gives the replay's time too.
"""
import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

from side_by_side import BENCH, Server, settle
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
            _, row["load_ms"], row["replayed"], row["replay_ms"] = recovered(srv.dir / "server.log")
        return row
    finally:
        os.environ.pop("CORRAL_HUGEPAGES", None)
        if env_before is not None:
            os.environ["CORRAL_HUGEPAGES"] = env_before
        srv.stop()
        shutil.rmtree(work / "run", ignore_errors=True)


def add_log_tail(pristine, work, n, sets):
    """N sets logged after the imported tree's snapshot, none snapshotted."""
    srv = Server("corrald", work / "tail", zk_heap(n))
    srv.data.rmdir()
    shutil.move(str(pristine), srv.data)
    saved = Server.corrald_settings
    Server.corrald_settings = saved + ["storage.wal.snapshot_every_entries=0",
                                       "storage.wal.snapshot_log_ratio=0",
                                       "storage.wal.snapshot_every_bytes=0"]
    try:
        srv.start()
        subprocess.run([str(BENCH), "--hosts", f"127.0.0.1:{srv.port}", "--workload", "set",
                        "--keys", "10000", "--ops", str(sets), "--quiet"], check=True, capture_output=True)
    finally:
        Server.corrald_settings = saved
        srv.stop()
    shutil.move(str(srv.data), pristine)
    shutil.rmtree(work / "tail", ignore_errors=True)


def spread(values, fmt):
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--znodes", default="1000000", help="comma-separated tree sizes")
    ap.add_argument("--runs", type=int, default=5, help="starts of each setting at each size")
    ap.add_argument("--zookeeper", action="store_true", help="ZooKeeper's start on the same tree too")
    ap.add_argument("--work", help="a directory for the data (default: a fresh temporary one)")
    ap.add_argument("--log-tail", type=int, default=0, metavar="N",
                    help="N sets logged after the snapshot, replayed by every start")
    ap.add_argument("--pages", choices=["both", "ordinary", "huge"], default="both",
                    help="corrald's page settings to start with")
    args = ap.parse_args()
    if args.log_tail and args.zookeeper:
        ap.error("--log-tail is for corrald alone: ZooKeeper would start from its snapshot without the tail")
    modes = {m: v for m, v in MODES.items() if args.pages == "both" or m.startswith(args.pages)}
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="corral-restart-"))
    print("| znodes | server | start to serving, s: median (range) | snapshot load, ms | "
          "log replay, ms | user / system CPU, s | page faults | RSS MB |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    try:
        for n in (int(x) for x in args.znodes.split(",")):
            zk = work / f"zk-{n}"
            write_snapshot(zk / "version-2", n, "", payload_fn(), parents=100)
            pristine = work / f"corrald-{n}"
            subprocess.run([str(CLI), "import", "zookeeper", "--from", str(zk), "--to", str(pristine)],
                           check=True, capture_output=True)
            if args.log_tail:
                add_log_tail(pristine, work, n, args.log_tail)
            rows = {m: [] for m in modes}
            order = list(modes)
            for run in range(args.runs):
                for mode in (order if run % 2 == 0 else order[::-1]):
                    row = one_start("corrald", pristine, work, n, modes[mode])
                    rows[mode].append(row)
                    print(f"{n:,} {mode}: start {row['start_s']:.3f} s, load {row['load_ms']} ms, "
                          f"replay {row['replay_ms']} ms of {row['replayed']:,} entries, "
                          f"user {row['user_s']:.2f} s, sys {row['sys_s']:.2f} s", file=sys.stderr)
            if args.zookeeper:
                rows["ZooKeeper"] = [one_start("zookeeper", zk, work, n, None) for _ in range(args.runs)]
            for name, rs in rows.items():
                label = f"corrald, {name}" if name in MODES else name
                load = spread([r["load_ms"] for r in rs], lambda v: f"{v:.0f}") if "load_ms" in rs[0] else "–"
                replay = (f"{spread([r['replay_ms'] for r in rs], lambda v: f'{v:.0f}')} "
                          f"({rs[0]['replayed']:,} entries)" if "replay_ms" in rs[0] else "–")
                print(f"| {n:,} | {label} | {spread([r['start_s'] for r in rs], lambda v: f'{v:.2f}')} | {load} | "
                      f"{replay} | "
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
