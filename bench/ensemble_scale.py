#!/usr/bin/python3
"""Ensembles at scale, side by side with Apache ZooKeeper: what observers
add, and what a follower that is far behind costs the leader while it
catches up. Every server runs durable, in its own session, from the same
zoo.cfg for both (the harness tests/corral_harness/ensemble.py).

    ./dev bench ensemble-scale                         # both parts, both servers
    ./dev bench ensemble-scale --parts catchup --entries 1000000
    ./dev bench ensemble-scale --quick --only corrald  # a smoke run

observers  5 voters and 0, 1, 2, 4 observers, each size started afresh:
           reads (get) and writes (set) with the sessions spread over every
           server, and reads with the sessions on the observers alone.
           Observers serve reads from their own copy, so reads scale with
           them where each server has cores of its own; on one machine every
           server shares its cores, and what the rows show is what an
           observer costs and whether reads hold as the ensemble grows.
catchup    3 voters. One follower is stopped, the leader takes N creates
           (1,000,000 by default: a follower 1M entries and 1M znodes of
           100 B behind), then a write load runs on the leader twice for the
           same time: once with the follower still down (the baseline) and
           once from the moment the follower starts again. The rows are the
           follower's time from start to serving, how the leader synced it
           (SNAP, DIFF or TRUNC, from the leader's log), and the leader's
           write p50, p99, p99.9 and max in both windows. The follower starts
           when the load's workload does; both windows last --window
           seconds unless the catch-up takes longer.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import signal
import threading
import time

from corral_harness.ensemble import Ensemble
from side_by_side import BENCH, BUILD, CORRALD, settle

KINDS = ("corrald", "zookeeper")


def make_ensemble(kind, root, voters, observers, args, snap_count=None):
    extra = "maxClientCnxns=0\n" + (f"snapCount={snap_count}\n" if snap_count else "")
    return Ensemble(pathlib.Path(root), voters=voters, observers=observers, tick_ms=args.tick_ms,
                    peer_auth=False, extra_cfg=extra, target=kind,
                    jvm=[f"-Xmx{args.heap}", f"-Xms{args.heap}"], corrald=str(CORRALD),
                    plugin_dir=str(BUILD / "plugins"))


def bench_cmd(hosts, workload, args, duration=None, ops=None, sessions=None):
    cmd = [str(BENCH), "--hosts", hosts, "--workload", workload, "--json", "--quiet",
           "--sessions", str(sessions or args.sessions), "--depth", str(args.depth),
           "--value-size", "100", "--keys", str(args.keys),
           "--prefix", f"/es-{workload}-{time.monotonic_ns()}"]
    return cmd + (["--ops", str(ops)] if ops else ["--duration", str(duration or args.duration)])


def run_bench(hosts, workload, args, duration=None, ops=None, sessions=None):
    cmd = bench_cmd(hosts, workload, args, duration, ops, sessions)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"corral-bench failed ({' '.join(cmd)}):\n{out.stderr}")
    return json.loads(out.stdout)


def observers_part(kind, args, work, results):
    for n in [int(x) for x in args.observers.split(",")]:
        ens = make_ensemble(kind, pathlib.Path(work) / f"{kind}-obs{n}", args.voters, n, args)
        try:
            ens.start(timeout=180)
            everyone = ens.hosts()
            observers = ens.hosts([m for m in ens.members if m.observer]) if n else None
            row = {"kind": kind, "observers": n}
            for label, workload, hosts in (("set", "set", everyone), ("get", "get", everyone),
                                           ("get on observers", "get", observers)):
                if not hosts:
                    continue
                settle()
                r = run_bench(hosts, workload, args)
                row[label] = r
                print(f"{kind:9s} {args.voters} voters + {n} observers  {label:16s} "
                      f"{r['ops_per_sec']:>10,.0f} ops/s  p99 {r['p99_ms']:.2f} ms", file=sys.stderr)
            results.append(row)
        finally:
            ens.close()


def sync_mode(kind, leader_log, follower_sid, since):
    """How the leader synced the follower, from what its log gained since `since` (bytes)."""
    text = leader_log[since:]
    if kind == "corrald":
        m = re.search(rf"syncing server {follower_sid} from \S+ by (SNAP|DIFF|TRUNC)", text)
        return m.group(1) if m else "?"
    if re.search(r"Sending snapshot last zxid of peer|Sending SNAP", text):
        return "SNAP"
    m = re.search(r"Sending (TRUNC_DIFF|DIFF|TRUNC)", text)
    return m.group(1) if m else "?"


def catchup_part(kind, args, work, results):
    ens = make_ensemble(kind, pathlib.Path(work) / f"{kind}-catchup", 3, 0, args, snap_count=args.snap_count)
    try:
        ens.start(timeout=180)
        leader = ens.leader()
        lagger = next(i for i in range(3) if i != leader)
        ens.stop_member(lagger)
        lead = ens.members[leader]
        t0 = time.monotonic()
        fill = run_bench(lead.address, "create", args, ops=args.entries, sessions=16)
        print(f"{kind:9s} {args.entries:,} creates while server {ens.members[lagger].sid} was down: "
              f"{time.monotonic() - t0:.1f} s ({fill['ops_per_sec']:,.0f} ops/s)", file=sys.stderr)
        settle(limit=120)
        base = run_bench(lead.address, "set", args, duration=args.window)
        settle(limit=120)
        # The write load and the follower's start together: the follower
        # starts once corral-bench says its workload runs, and the window
        # lasts --window seconds, as the baseline's did, or until a second
        # after the follower serves if that is later (corral-bench reports on
        # SIGINT).
        log_at = len(lead.log_text())
        cmd = [c for c in bench_cmd(lead.address, "set", args, duration=args.catchup_timeout + args.window)
               if c != "--quiet"]
        load = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Its stderr is read all along (a progress line a second would fill
        # the pipe in time), and says when the workload runs.
        lines, running = [], threading.Event()
        ran_at = []

        def read_stderr():
            for line in load.stderr:
                lines.append(line)
                if line.startswith("running") and not running.is_set():
                    ran_at.append(time.monotonic())
                    running.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            if not running.wait(120):
                sys.exit(f"corral-bench did not start its workload within 120 s ({' '.join(cmd)}):\n"
                         + "".join(lines))
            t0 = ran_at[0]
            ens.start_member(lagger, wait=False)
            started_after = time.monotonic() - t0
            follower = ens.members[lagger]
            caught_up = None
            while time.monotonic() - t0 < args.catchup_timeout:
                if follower.proc.poll() is not None:
                    sys.exit(f"server {follower.sid} exited while catching up:\n{follower.log_tail()}")
                if follower.mode() == "follower":
                    caught_up = time.monotonic() - t0
                    break
                time.sleep(0.01)
            time.sleep(max(1.0, args.window - (time.monotonic() - t0)))
            load.send_signal(signal.SIGINT)
            load.wait(60)  # (its report is one line: the pipe holds it)
            stdout = load.stdout.read()
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
            reader.join(10)
        if load.returncode != 0:
            sys.exit(f"corral-bench failed ({' '.join(cmd)}):\n{''.join(lines)}")
        during = json.loads(stdout)
        mode = sync_mode(kind, lead.log_text(), ens.members[lagger].sid, log_at)
        if args.keep_logs:
            keep = pathlib.Path(args.keep_logs)
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"{kind}-catchup-leader.log").write_text(lead.log_text()[log_at:])
            (keep / f"{kind}-catchup-follower.log").write_text(ens.members[lagger].log_text())
            (keep / f"{kind}-catchup-load.txt").write_text("".join(lines))
        row = {"kind": kind, "entries": args.entries, "fill_ops_per_sec": fill["ops_per_sec"],
               "catchup_s": caught_up, "sync": mode, "window_s": args.window,
               "follower_started_s": started_after,
               "baseline": base, "during": during}
        results.append(row)
        cu = f"{caught_up:.2f} s" if caught_up is not None else f"not within {args.catchup_timeout:g} s"
        print(f"{kind:9s} catch-up {cu} by {mode}; leader set p99 {base['p99_ms']:.2f} -> {during['p99_ms']:.2f} ms, "
              f"max {base['max_ms']:.1f} -> {during['max_ms']:.1f} ms, "
              f"{base['ops_per_sec']:,.0f} -> {during['ops_per_sec']:,.0f} ops/s", file=sys.stderr)
    finally:
        ens.close()


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


def tables(results):
    out = []
    obs = [r for r in results if "observers" in r]
    if obs:
        out += ["| observers | workload | corrald ops/s | ZooKeeper ops/s | ratio | corrald p99 ms | ZooKeeper p99 ms |",
                "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
        for n in sorted({r["observers"] for r in obs}):
            by = {r["kind"]: r for r in obs if r["observers"] == n}
            for label in ("set", "get", "get on observers"):
                c, z = (by.get(k, {}).get(label) for k in KINDS)
                if not c and not z:
                    continue
                f = lambda r, key, fmt: format(r[key], fmt) if r else "-"
                out.append(f"| {n} | {label} | {f(c, 'ops_per_sec', ',.0f')} | {f(z, 'ops_per_sec', ',.0f')} | "
                           f"{ratio(c and c['ops_per_sec'], z and z['ops_per_sec'])} | "
                           f"{f(c, 'p99_ms', '.2f')} | {f(z, 'p99_ms', '.2f')} |")
        out.append("")
    cu = [r for r in results if "catchup_s" in r]
    if cu:
        out += ["| server | behind (entries) | sync | catch-up s | window | set ops/s | p50 ms | p99 ms | p99.9 ms | max ms |",
                "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in cu:
            c = f"{r['catchup_s']:.2f}" if r["catchup_s"] is not None else "-"
            for label in ("baseline", "during"):
                b = r[label]
                out.append(f"| {r['kind']} | {r['entries']:,} | {r['sync'] if label == 'during' else ''} | "
                           f"{c if label == 'during' else ''} | {'follower down' if label == 'baseline' else 'follower catching up'} | "
                           f"{b['ops_per_sec']:,.0f} | {b['p50_ms']:.2f} | {b['p99_ms']:.2f} | {b['p999_ms']:.2f} | "
                           f"{b['max_ms']:.1f} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="observers,catchup")
    ap.add_argument("--only", choices=KINDS, help="run one server only")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 3 voters, 0 and 1 observers, 2 s runs, 20,000 entries behind")
    ap.add_argument("--voters", type=int, default=5)
    ap.add_argument("--observers", default="0,1,2,4", help="observer counts, in steps")
    ap.add_argument("--entries", type=int, default=1000000, help="catchup: entries the follower misses")
    ap.add_argument("--snap-count", type=int, default=100000,
                    help="catchup: snapCount of both (ZooKeeper's default; corrald's snapshot_every_entries)")
    ap.add_argument("--window", type=float, default=30,
                    help="catchup: seconds of each write window (the one with the catch-up lasts at least "
                         "until a second after the follower serves)")
    ap.add_argument("--catchup-timeout", type=float, default=300)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--sessions", type=int, default=24)
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--tick-ms", type=int, default=2000)
    ap.add_argument("--heap", default="2g", help="each ZooKeeper server's JVM heap")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--keep-logs", metavar="DIR",
                    help="catchup: keep the leader's and the follower's logs and the load's "
                         "progress lines here")
    args = ap.parse_args()
    if args.quick:
        args.voters, args.observers, args.duration = 3, "0,1", 2
        args.entries, args.snap_count, args.window, args.keys = 20000, 5000, 4, 1000
        args.heap = "512m"
    for path in (CORRALD, BENCH):
        if not path.exists():
            sys.exit(f"{path} is missing: run ./dev build first")
    kinds = [args.only] if args.only else list(KINDS)
    parts = args.parts.split(",")
    for p in parts:
        if p not in ("observers", "catchup"):
            sys.exit(f"--parts takes observers and catchup, not '{p}'")

    work = tempfile.mkdtemp(prefix="corral-ens-scale-")
    results = []
    try:
        for kind in kinds:
            if "observers" in parts:
                observers_part(kind, args, work, results)
            if "catchup" in parts:
                catchup_part(kind, args, work, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(tables(results))
    print(f"\nOne machine, loopback, {os.cpu_count()} cores shared by every server and the load; "
          f"{args.sessions} sessions x {args.depth} in flight ({args.duration:g} s runs); catch-up: "
          f"{args.entries:,} creates missed, snapCount {args.snap_count}, {args.window:g} s windows of sets "
          f"(the same load) on the leader.")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
