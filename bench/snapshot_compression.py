#!/usr/bin/python3
"""Compressed snapshots against plain ones on a tree of N znodes (1M by
default, 100 B each): the snapshot's size, the time to write it (while
serving), and a restart's time to the first answer and to load it.

The tree comes from `corral import zookeeper` of a generated ZooKeeper
snapshot (bench/zk_import.py), so no load generator is needed. For each
setting corrald starts on a copy, one write makes it take a snapshot
(snapshot_every_entries = 1), then it is restarted from that snapshot.

    ./dev bench snapshots [--znodes 1000000] [--level 1] [--runs 3] [--data json|repeated|random] [--cold]
"""
import argparse
import os
import pathlib
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time

from kazoo.client import KazooClient

from corral_harness.servers import REPO, Server, _live_servers, wait_for
from zk_import import CLI, write_snapshot


def start(workdir, data, settings):
    args = []
    for s in settings:
        args += ["--set", s]
    srv = Server(workdir, target="corrald", data_dir=data, extra_args=args)
    _live_servers.append(srv)
    t0 = time.monotonic()
    srv.start()
    return srv, time.monotonic() - t0


def drop_caches():
    """The restart then reads the snapshot from the disk, not the page cache."""
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def one_setting(work, base, name, settings, runs, cold):
    sizes, writes, starts, loads = [], [], [], []
    for run in range(runs):
        data = work / f"{name}-{run}"
        shutil.copytree(base, data)
        for f in (data / "wal").glob("snapshot.*"):
            os.utime(f, None)
        srv, _ = start(work / f"{name}-{run}-a", data, settings + ["storage.wal.snapshot_every_entries=1",
                                                                   "storage.wal.snapshot_log_ratio=0"])
        c = KazooClient(hosts=srv.hosts)
        c.start()
        c.create("/bench/trigger", b"x")
        c.stop()
        c.close()
        wait_for(lambda: "written while serving" in srv.log_path.read_text(), 120, "the snapshot")
        took = int(re.search(r"znodes in (\d+) ms, written while serving", srv.log_path.read_text()).group(1))
        srv.stop()
        snaps = sorted((data / "wal").glob("snapshot.*"))
        sizes.append(snaps[-1].stat().st_size)
        writes.append(took / 1000)
        if cold:
            drop_caches()
        srv2, to_answer = start(work / f"{name}-{run}-b", data, settings)
        load = int(re.search(r"loaded in (\d+) ms", srv2.log_path.read_text()).group(1))
        srv2.stop()
        starts.append(to_answer)
        loads.append(load / 1000)
        shutil.rmtree(data)
    return statistics.median(sizes), statistics.median(writes), statistics.median(starts), statistics.median(loads)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--znodes", type=int, default=1_000_000)
    ap.add_argument("--level", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", choices=["repeated", "json", "random"], default="json",
                    help="each znode's 100 B: one repeated byte, JSON-like text with varying "
                         "numbers (the default), or random bytes")
    ap.add_argument("--cold", action="store_true",
                    help="drop the page cache before each restart (root), so the snapshot is read from the disk")
    a = ap.parse_args()
    rng = random.Random(7)
    payloads = {
        "repeated": None,
        "json": lambda i: ('{"host":"10.%d.%d.%d","port":%d,"weight":%d,"ts":%d}' % (
            rng.randrange(256), rng.randrange(256), rng.randrange(256), rng.randrange(1024, 65535),
            rng.randrange(100), 1700000000000 + rng.randrange(10**9))).encode().ljust(100)[:100],
        "random": lambda i: rng.randbytes(100),
    }
    work = pathlib.Path(tempfile.mkdtemp(prefix="corral-snapshots-"))
    try:
        write_snapshot(work / "zk" / "version-2", a.znodes, "", payloads[a.data])
        subprocess.run([str(CLI), "import", "zookeeper", "--from", str(work / "zk"), "--to", str(work / "base")],
                       check=True, capture_output=True)
        rows = []
        for name, settings in (("plain", []),
                               ("zstd", ['storage.wal.snapshot_compression="zstd"',
                                         f"storage.wal.snapshot_compression_level={a.level}"])):
            rows.append((name, *one_setting(work, work / "base", name, settings, a.runs, a.cold)))
        print(f"{a.znodes:,} znodes of 100 B ({a.data} data), {'cold' if a.cold else 'warm'} page cache, "
              f"median of {a.runs} runs each")
        print(f"{'snapshots':10} {'size MB':>8} {'write s':>8} {'start s':>8} {'load s':>8}")
        for name, size, write, start_s, load in rows:
            print(f"{name:10} {size / 2**20:8.1f} {write:8.2f} {start_s:8.2f} {load:8.2f}")
        plain, zstd = rows
        print(f"zstd/plain: size {zstd[1] / plain[1]:.2f}, write {zstd[2] / plain[2]:.2f}, "
              f"start {zstd[3] / plain[3]:.2f}, load {zstd[4] / plain[4]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
