#!/usr/bin/python3
"""How Corral's cost grows with the tree, side by side with Apache ZooKeeper:
for each size N (1M, 2M and 4M znodes by default) a ZooKeeper snapshot of N
znodes of 100 B is written (bench/zk_import.py), ZooKeeper 3.8 starts on it
and Corral starts on its import; both are measured the same way, each in
its own session: the time from start to serving, and the resident memory
once serving (VmRSS), from which the memory per znode above an empty
server's follows. The table goes to stdout, one row per size and server.

    ./dev bench scale [--znodes 1000000,2000000,4000000] [--skip-zookeeper]
"""
import argparse
import pathlib
import random
import shutil
import subprocess
import tempfile
import time

import corral_harness.servers as servers
from corral_harness.servers import Server, _live_servers
from zk_import import CLI, write_snapshot

servers.READY_TIMEOUT = 600.0  # ZooKeeper takes minutes to load a large snapshot


def rss_kb(pid):
    """VmRSS of pid and its children (ZooKeeper runs as one java process)."""
    total = 0
    pids = [str(pid)] + subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for p in pids:
        try:
            status = open(f"/proc/{p}/status").read()
        except OSError:
            continue
        if "VmRSS:" in status:
            total += int(status.split("VmRSS:")[1].split()[0])
    return total


def measure(workdir, target, data_dir):
    srv = Server(workdir, target=target, data_dir=data_dir)
    _live_servers.append(srv)
    t0 = time.monotonic()
    srv.start()
    took = time.monotonic() - t0
    time.sleep(2)  # settle (a JVM finishes its start-up work)
    rss = rss_kb(srv.proc.pid)
    srv.stop()
    return took, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--znodes", default="1000000,2000000,4000000")
    ap.add_argument("--skip-zookeeper", action="store_true")
    a = ap.parse_args()
    sizes = [int(x) for x in a.znodes.split(",")]
    work = pathlib.Path(tempfile.mkdtemp(prefix="corral-scale-"))
    rng = random.Random(7)

    def payload(i):
        return ('{"host":"10.%d.%d.%d","port":%d,"ts":%d}' % (
            rng.randrange(256), rng.randrange(256), rng.randrange(256), rng.randrange(1024, 65535),
            1700000000000 + rng.randrange(10**9))).encode().ljust(100)[:100]

    rows = []
    try:
        empty = {}
        for target in (["corrald"] if a.skip_zookeeper else ["zookeeper", "corrald"]):
            empty[target] = measure(work / f"empty-{target}", target, work / f"empty-{target}-data")[1]
        for n in sizes:
            zk_dir = work / f"zk-{n}"
            write_snapshot(zk_dir / "version-2", n, "", payload)
            size_mb = sum(f.stat().st_size for f in (zk_dir / "version-2").iterdir()) / 2**20
            if not a.skip_zookeeper:
                took, rss = measure(work / f"run-zk-{n}", "zookeeper", zk_dir)
                rows.append((n, "zookeeper", size_mb, took, rss, (rss - empty["zookeeper"]) * 1024 / n))
            corral_dir = work / f"corral-{n}"
            subprocess.run([str(CLI), "import", "zookeeper", "--from", str(zk_dir), "--to", str(corral_dir)],
                           check=True, capture_output=True)
            shutil.rmtree(zk_dir)
            took, rss = measure(work / f"run-corral-{n}", "corrald", corral_dir)
            rows.append((n, "corrald", size_mb, took, rss, (rss - empty["corrald"]) * 1024 / n))
            shutil.rmtree(corral_dir)
        print(f"empty servers: " + ", ".join(f"{t} {kb / 1024:.0f} MB" for t, kb in empty.items()))
        print(f"{'znodes':>10} {'server':10} {'snapshot MB':>11} {'start s':>8} {'RSS MB':>8} {'B/znode':>8}")
        for n, target, size_mb, took, rss, per in rows:
            print(f"{n:>10,} {target:10} {size_mb:11.0f} {took:8.2f} {rss / 1024:8.0f} {per:8.0f}")
        if not a.skip_zookeeper:
            for n in sizes:
                zk = next(r for r in rows if r[0] == n and r[1] == "zookeeper")
                co = next(r for r in rows if r[0] == n and r[1] == "corrald")
                print(f"{n:>10,} corrald/zookeeper: start {co[3] / zk[3]:.2f}, RSS {co[4] / zk[4]:.2f}, "
                      f"per znode {co[5] / zk[5]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
