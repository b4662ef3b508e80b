#!/usr/bin/python3
"""Runs corrald and Apache ZooKeeper side by side on this machine with the
same workloads and prints one table of medians and corrald/ZooKeeper ratios.

Both servers are standalone, durable (corrald's wal; ZooKeeper with
forceSync=yes), each started in its own session (setsid), and driven in
alternation (A B A B ...) by corral-bench with identical settings.

    bench/side_by_side.py [--rounds 3] [--duration 5] [--warmup 2] [--znodes 1000000]
    bench/side_by_side.py --tls      # the same workloads over TLS: corrald's tls
                                     # transport beside ZooKeeper's Netty TLS port
    bench/side_by_side.py --zk-netty # ZooKeeper's plaintext port on Netty too (the
                                     # server its TLS port runs), not its default NIO

Needs a build (./dev build) and Debian's zookeeper package.
"""
import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("BUILD_DIR", REPO / "build"))
CORRALD = BUILD / "kernel" / "corrald"
BENCH = BUILD / "bench" / "corral-bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four(port, word, timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode(errors="replace")


# ZooKeeper's jars, with Netty's for its TLS port.
ZK_CLASSPATH = ":".join(["/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"] + [
    f"/usr/share/java/netty-{m}.jar" for m in ("buffer", "codec", "common", "handler", "resolver", "transport",
                                              "transport-native-epoll", "transport-native-unix-common")])


def make_certs(workdir):
    """A CA and a server certificate (containers/make-certs.sh, openssl)."""
    certs = pathlib.Path(workdir) / "certs"
    subprocess.run([str(REPO / "containers" / "make-certs.sh"), str(certs), "1"], check=True,
                   capture_output=True)
    return certs


class Server:
    netty = False  # ZooKeeper's plaintext port on Netty (--zk-netty)
    corrald_settings = []  # more "KEY=VALUE" settings for corrald
    start_timeout = 120.0  # seconds; ZooKeeper takes minutes on a tree of millions

    def __init__(self, kind, workdir, heap, certs=None):
        self.kind, self.heap, self.certs = kind, heap, certs
        self.dir = pathlib.Path(workdir) / kind
        self.data = self.dir / "data"
        self.data.mkdir(parents=True)
        self.port = free_port()
        # With certificates, a TLS client port beside the plaintext one;
        # the workloads run against it.
        self.secure_port = free_port() if certs else None
        self.proc = None

    @property
    def bench_port(self):
        return self.secure_port or self.port

    def command(self):
        if self.kind == "corrald":
            cmd = [str(CORRALD), "--set", f"server.client_address=127.0.0.1:{self.port}",
                   "--set", f"server.data_dir={self.data}", "--set", "server.max_client_cnxns=0",
                   "--set", "server.max_cnxns=0"]
            for setting in self.corrald_settings:
                cmd += ["--set", setting]
            if self.certs:
                cmd += ["--set", f"server.secure_client_address=127.0.0.1:{self.secure_port}",
                        "--set", f"transport.tls.certificate={self.certs / 'server.1.pem'}",
                        "--set", "transport.tls.client_auth=none"]
            return cmd
        cfg = self.dir / "zoo.cfg"
        tls = ("serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
               if self.netty and not self.certs else "")
        if self.certs:
            tls = (f"secureClientPort={self.secure_port}\n"
                   "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
                   f"ssl.keyStore.location={self.certs / 'server.1.pem'}\nssl.keyStore.type=PEM\n"
                   f"ssl.trustStore.location={self.certs / 'ca.pem'}\nssl.trustStore.type=PEM\n"
                   "ssl.clientAuth=none\n")
        cfg.write_text(f"tickTime=2000\ndataDir={self.data}\nclientPort={self.port}\n"
                       "clientPortAddress=127.0.0.1\nforceSync=yes\nmaxClientCnxns=0\n"
                       "4lw.commands.whitelist=*\nadmin.enableServer=false\n" + tls)
        return ["java", f"-Xmx{self.heap}", f"-Xms{self.heap}", "-cp", ZK_CLASSPATH,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)]

    def start(self):
        """Starts the server; returns seconds until it serves requests."""
        log = open(self.dir / "server.log", "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        while time.monotonic() - t0 < self.start_timeout:
            if self.proc.poll() is not None:
                sys.exit(f"{self.kind} exited; see {self.dir}/server.log")
            try:
                if four(self.port, "ruok") == "imok" and "not currently serving" not in four(self.port, "srvr"):
                    return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.005)
        sys.exit(f"{self.kind} did not start within {self.start_timeout:g} s")

    def stop(self):
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None

    def rss_mb(self):
        # The JVM runs as a child of nothing else here: the process itself.
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0


def cpu_busy():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def settle(limit=30.0, quiet=0.10):
    """Waits until the machine is nearly idle (under `quiet` of its CPU over
    half a second), so that neither server's leftovers from the previous run
    (a background snapshot, a garbage collection) run during the next one."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        b0, t0 = cpu_busy()
        time.sleep(0.5)
        b1, t1 = cpu_busy()
        if t1 > t0 and (b1 - b0) / (t1 - t0) < quiet:
            return
    print(f"the machine did not settle within {limit:g} s; measuring anyway", file=sys.stderr)


def bench(port, workload, args, extra=(), duration=None):
    if getattr(args, "certs", None):
        extra = (*extra, "--tls-ca", str(args.certs / "ca.pem"))
    cmd = [str(BENCH), "--hosts", f"127.0.0.1:{port}", "--workload", workload, "--json", "--quiet",
           "--sessions", str(args.sessions), "--depth", str(args.depth),
           "--value-size", str(args.value_size), "--keys", str(args.keys),
           "--prefix", f"/sbs-{workload}-{time.monotonic_ns()}", *extra]
    if "--ops" not in extra:
        cmd += ["--duration", str(duration or args.duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def median_table(rows):
    """rows: metric -> {"corrald": [values], "zookeeper": [values]}; a Markdown
    table of medians and their ratio."""
    lines = ["| metric | corrald | ZooKeeper | corrald / ZooKeeper |", "| --- | ---: | ---: | ---: |"]
    for metric, by in rows.items():
        a, b = statistics.median(by["corrald"]), statistics.median(by["zookeeper"])
        fmt = (lambda v: f"{v:,.0f}") if "ops/s" in metric or "MB" in metric else (lambda v: f"{v:.3f}")
        lines.append(f"| {metric} | {fmt(a)} | {fmt(b)} | {a / b:.2f} |" if b else f"| {metric} | {fmt(a)} | {fmt(b)} | - |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--workloads", default="create,set,get,mixed")
    ap.add_argument("--warmup", type=float, default=2, help="seconds of each workload, unrecorded, before round 1 (0: none)")
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--znodes", type=int, default=1000000, help="znodes loaded for the memory and restart rows")
    ap.add_argument("--heap", default="4g", help="ZooKeeper's JVM heap")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--tls", action="store_true",
                    help="run the workloads over TLS (no cold-start or znode rows)")
    ap.add_argument("--zk-netty", action="store_true",
                    help="ZooKeeper's plaintext port on Netty, the server its TLS port runs")
    args = ap.parse_args()
    Server.netty = args.zk_netty
    for path in (CORRALD, BENCH):
        if not path.exists():
            sys.exit(f"{path} is missing: run ./dev build first")

    work = tempfile.mkdtemp(prefix="corral-sbs-")
    args.certs = make_certs(work) if args.tls else None
    suffix = " over TLS" if args.tls else ""
    if args.tls:
        args.znodes = 0
    servers = {k: Server(k, work, args.heap, args.certs) for k in ("corrald", "zookeeper")}
    rows = {}  # metric -> {kind: [values]}

    def record(metric, kind, value):
        rows.setdefault(metric, {}).setdefault(kind, []).append(value)

    try:
        # Cold start: a fresh server on an empty data directory until it
        # answers; the median of `rounds` such starts, so that one start that
        # found its binaries out of the page cache does not decide it.
        for rnd in range(args.rounds if not args.tls else 0):
            for kind in servers:
                probe = Server(kind, tempfile.mkdtemp(prefix="cold-", dir=work), args.heap)
                record("cold start (s)", kind, probe.start())
                probe.stop()
        for kind, s in servers.items():
            s.start()
            time.sleep(1)
            record("RSS at rest (MB)", kind, s.rss_mb())
        # One unrecorded pass of every workload first, so that ZooKeeper's
        # JIT has compiled its request path before anything is measured.
        for w in args.workloads.split(",") if args.warmup else ():
            for kind, s in servers.items():
                settle()
                bench(s.bench_port, w, args, duration=args.warmup)
        for rnd in range(args.rounds):
            for w in args.workloads.split(","):
                for kind in ("corrald", "zookeeper") if rnd % 2 == 0 else ("zookeeper", "corrald"):
                    settle()
                    r = bench(servers[kind].bench_port, w, args)
                    print(f"round {rnd + 1} {w:7s} {kind:9s} {r['ops_per_sec']:>10.0f} ops/s  "
                          f"p99 {r['p99_ms']:.2f} ms", file=sys.stderr)
                    record(f"{w} ops/s{suffix}", kind, r["ops_per_sec"])
                    record(f"{w} p99 (ms){suffix}", kind, r["p99_ms"])
        if args.znodes:
            # Fresh servers, so that the tree holds exactly the znodes loaded.
            for s in servers.values():
                s.stop()
            fresh = tempfile.mkdtemp(prefix="corral-sbs-", dir=work)
            servers = {k: Server(k, fresh, args.heap) for k in servers}
            for kind, s in servers.items():
                s.start()
                bench(s.port, "create", args, extra=("--ops", str(args.znodes)))
                time.sleep(2)
                record(f"RSS with {args.znodes} znodes (MB)", kind, s.rss_mb())
                s.stop()
                record(f"restart with {args.znodes} znodes (s)", kind, s.start())
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(median_table(rows))
    print(f"\n{args.rounds} rounds of {args.duration:g} s after a {args.warmup:g} s warm-up, {args.sessions} sessions x {args.depth} in flight, "
          f"{args.value_size}-byte values, {args.keys} keys; medians. Machine: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB.")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
