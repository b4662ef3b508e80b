#!/usr/bin/python3
"""corrald beside Apache ZooKeeper and etcd: the same workloads, the same
concurrency, on the same machine, each server standalone and durable
(corrald's wal with fsync; ZooKeeper with forceSync=yes; etcd, which always
syncs its log), each started in its own session (setsid) and driven in
alternation.

corrald and ZooKeeper are driven by corral-bench, etcd by bench/etcd/etcd-bench
(etcd's own Go client, clientv3) with the same options and report. Besides
throughput and latency, each run records the server's own CPU time per
operation (from /proc/PID/stat): on two cores the load generator competes
with the server, and the Go client costs more CPU than corral-bench, so the
CPU a server spends on an operation is the figure that does not depend on
the client.

    ./dev bench etcd [--rounds 3] [--duration 5] [--workloads create,set,get,syncget,mixed]

Workloads: create (a new key or znode), set (one of --keys existing ones),
get (a read served by the server itself: ZooKeeper's getData, etcd's
serializable range), syncget (a linearizable read: ZooKeeper's sync then
getData, etcd's default range), mixed (90 % get, 10 % set).

Needs a build (./dev build), Debian's zookeeper, etcd-server, golang-go and
golang-etcd-server-dev (./dev bench etcd installs them).
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from side_by_side import BENCH, CORRALD, REPO, Server, bench, free_port, settle

ETCD_BENCH_SRC = REPO / "bench" / "etcd" / "etcd-bench.go"
KINDS = ("corrald", "zookeeper", "etcd")


def build_etcd_bench(out_dir):
    """Builds etcd-bench against Debian's etcd client sources (GOPATH mode:
    no module download)."""
    out = pathlib.Path(out_dir) / "etcd-bench"
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
               GOCACHE=str(pathlib.Path(out_dir) / "gocache"))
    subprocess.run(["go", "build", "-o", str(out), str(ETCD_BENCH_SRC)], env=env, check=True)
    return out


def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Etcd:
    start_timeout = 60.0  # seconds; etcd rebuilds its index of millions of keys at start

    def __init__(self, workdir, extra=()):
        self.kind = "etcd"
        self.dir = pathlib.Path(workdir) / "etcd"
        self.dir.mkdir(parents=True)
        self.port, self.peer = free_port(), free_port()
        self.extra = list(extra)  # more etcd options
        self.proc = None

    @property
    def bench_port(self):
        return self.port

    def start(self):
        log = open(self.dir / "server.log", "ab")
        url, peer = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.peer}"
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            ["etcd", "--name", "bench", "--data-dir", str(self.dir / "data"),
             "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"bench={peer}", "--log-level", "warn", *self.extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        while time.monotonic() - t0 < self.start_timeout:
            if self.proc.poll() is not None:
                sys.exit(f"etcd exited; see {self.dir}/server.log")
            r = subprocess.run(["etcdctl", "--endpoints", url, "endpoint", "health"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                return time.monotonic() - t0
            time.sleep(0.05)
        sys.exit(f"etcd did not start within {self.start_timeout:g} s")

    # Stopped and measured as the other two are.
    stop = Server.stop
    rss_mb = Server.rss_mb


def etcd_bench(tool, port, workload, args, ops=None, duration=None):
    cmd = [str(tool), "--endpoints", f"127.0.0.1:{port}", "--workload", workload, "--json", "--quiet",
           "--sessions", str(args.sessions), "--depth", str(args.depth),
           "--value-size", str(args.value_size), "--keys", str(args.keys),
           "--prefix", f"/sbs-{workload}-{time.monotonic_ns()}"]
    cmd += ["--ops", str(ops)] if ops else ["--duration", str(duration or args.duration)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5, help="seconds a run (CPU per operation needs 3 or more)")
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--workloads", default="create,set,get,syncget,mixed")
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--heap", default="4g", help="ZooKeeper's JVM heap")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    for path in (CORRALD, BENCH):
        if not path.exists():
            sys.exit(f"{path} is missing: run ./dev build first")
    for tool in ("etcd", "etcdctl", "go"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install etcd-server etcd-client golang-go golang-etcd-server-dev")

    work = tempfile.mkdtemp(prefix="corral-etcd-")
    tool = build_etcd_bench(work)
    servers = {"corrald": Server("corrald", work, args.heap), "zookeeper": Server("zookeeper", work, args.heap),
               "etcd": Etcd(work)}
    rows = {}  # metric -> kind -> [values]

    def record(metric, kind, value):
        rows.setdefault(metric, {}).setdefault(kind, []).append(value)

    def run(kind, workload, duration=None):
        """One run; besides the tool's report, the server's CPU per operation:
        its CPU time over the middle of the run (from a second in, when the
        keys the workload needs exist, to a second before the end) divided
        by the operations the run's rate gives for that time."""
        s = servers[kind]
        seconds = duration or args.duration
        result = {}

        def drive():
            if kind == "etcd":
                a = argparse.Namespace(**vars(args))
                a.duration = seconds
                result["r"] = etcd_bench(tool, s.bench_port, workload, a)
            else:
                result["r"] = bench(s.bench_port, workload, args, duration=seconds)

        t = threading.Thread(target=drive)
        t.start()
        window = seconds >= 3
        if window:
            time.sleep(1.0)
            c0, t0 = cpu_seconds(s.proc.pid), time.monotonic()
            time.sleep(seconds - 2.0)
            c1, t1 = cpu_seconds(s.proc.pid), time.monotonic()
        t.join()
        r = result["r"]
        r["cpu_us_per_op"] = ((c1 - c0) / (t1 - t0) * 1e6 / r["ops_per_sec"]) if window and r["ops_per_sec"] else 0.0
        return r

    try:
        for kind, s in servers.items():
            s.start()
            time.sleep(1)
            record("RSS at rest (MB)", kind, s.rss_mb())
        for w in args.workloads.split(",") if args.warmup else ():
            for kind in KINDS:
                settle()
                run(kind, w, duration=args.warmup)
        for rnd in range(args.rounds):
            for w in args.workloads.split(","):
                order = KINDS[rnd % 3:] + KINDS[:rnd % 3]
                for kind in order:
                    settle()
                    r = run(kind, w)
                    print(f"round {rnd + 1} {w:8s} {kind:9s} {r['ops_per_sec']:>9.0f} ops/s  p50 {r['p50_ms']:.2f}  "
                          f"p99 {r['p99_ms']:.2f}  p99.9 {r['p999_ms']:.2f}  max {r['max_ms']:.2f} ms  "
                          f"server {r['cpu_us_per_op']:.1f} us CPU/op", file=sys.stderr)
                    record(f"{w} ops/s", kind, r["ops_per_sec"])
                    record(f"{w} p50 (ms)", kind, r["p50_ms"])
                    record(f"{w} p99 (ms)", kind, r["p99_ms"])
                    record(f"{w} p99.9 (ms)", kind, r["p999_ms"])
                    record(f"{w} server CPU (us/op)", kind, r["cpu_us_per_op"])
        for kind, s in servers.items():
            record("RSS after the runs (MB)", kind, s.rss_mb())
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(work, ignore_errors=True)

    lines = ["| metric | corrald | ZooKeeper | etcd | corrald / ZooKeeper | corrald / etcd |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for metric, by in rows.items():
        m = {k: statistics.median(by[k]) for k in KINDS}
        fmt = (lambda v: f"{v:,.0f}") if "ops/s" in metric or "MB" in metric else (lambda v: f"{v:.2f}")
        ratio = lambda a, b: f"{a / b:.2f}" if b else "-"
        lines.append(f"| {metric} | {fmt(m['corrald'])} | {fmt(m['zookeeper'])} | {fmt(m['etcd'])} | "
                     f"{ratio(m['corrald'], m['zookeeper'])} | {ratio(m['corrald'], m['etcd'])} |")
    print("\n".join(lines))
    print(f"\n{args.rounds} rounds of {args.duration:g} s after a {args.warmup:g} s warm-up, {args.sessions} sessions x "
          f"{args.depth} in flight, {args.value_size}-byte values, {args.keys} keys; medians. "
          f"etcd {subprocess.run(['etcd', '--version'], capture_output=True, text=True).stdout.split()[2]}. "
          f"Machine: {os.cpu_count()} cores.")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
