#!/usr/bin/python3
"""Moving a large ZooKeeper database to Corral: `corral import zookeeper` on a
ZooKeeper data directory of N znodes, its time and peak memory, then how long
corrald takes to answer from the imported data, and ZooKeeper's own start on
the same directory for comparison.

The data directory is written here in ZooKeeper's snapshot format (a flat
tree of N znodes of 100 bytes under 100 parents, as a fuzzy snapshot would
hold them), then checked by starting Debian's ZooKeeper on it (--verify,
the default) so that what is imported is what ZooKeeper reads.

    ./dev bench import [--znodes 1000000] [--compression gz|snappy|] [--no-verify]
"""
import argparse
import os
import pathlib
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from corral_harness.servers import REPO, Server, _live_servers

BUILD = pathlib.Path(os.environ.get("CORRAL_BUILD_DIR", REPO / "build"))
CLI = BUILD / "cli" / "corral"


def jstring(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">i", len(b)) + b


def stat(czxid, t):
    # czxid mzxid ctime mtime version cversion aversion ephemeralOwner pzxid
    return struct.pack(">qqqqiiiqq", czxid, czxid, t, t, 0, 0, 0, 0, czxid)


def write_snapshot(path, znodes, compression, payload=None, parents=100):
    """A ZooKeeper 3.8 snapshot: header, sessions, ACLs, nodes, seals; the
    znodes spread evenly under `parents` parents."""
    t = 1_700_000_000_000
    per = znodes // parents
    chunks = [struct.pack(">iiq", 0x5a4b534e, 2, -1), struct.pack(">i", 0)]
    # One ACL list, id 1: world:anyone:cdrwa.
    chunks.append(struct.pack(">iqi", 1, 1, 1) + struct.pack(">i", 31) + jstring("world") + jstring("anyone"))
    zxid = 0
    node = lambda p, data, acl, st, cv=0: jstring(p) + jstring(data) + struct.pack(">q", acl) + st
    chunks.append(node("", b"", -1, struct.pack(">qqqqiiiqq", 0, 0, 0, 0, 0, 1, 0, 0, 1)))
    chunks.append(node("/zookeeper", b"", -1, stat(0, 0)))
    chunks.append(node("/zookeeper/config", b"", -1, stat(0, 0)))
    chunks.append(node("/zookeeper/quota", b"", -1, stat(0, 0)))
    zxid += 1
    chunks.append(node("/bench", b"", 1, struct.pack(">qqqqiiiqq", zxid, zxid, t, t, 0, parents, 0, 0, zxid)))
    same = b"v" * 100
    for p in range(parents):
        zxid += 1
        pz = zxid + per
        chunks.append(node(f"/bench/p{p:03d}", b"", 1,
                           struct.pack(">qqqqiiiqq", zxid, zxid, t, t, 0, per, 0, 0, pz)))
        for i in range(per):
            zxid += 1
            chunks.append(node(f"/bench/p{p:03d}/n{i:07d}", payload(i) if payload else same, 1, stat(zxid, t)))
    chunks.append(jstring("/"))
    body = b"".join(chunks)
    body += struct.pack(">q", zlib.adler32(body)) + jstring("/")
    body += struct.pack(">qiq", 0, 2, 0)
    body += struct.pack(">q", zlib.adler32(body)) + jstring("/")
    name = f"snapshot.{zxid:x}"
    if compression == "gz":
        import gzip
        body, name = gzip.compress(body, 1), name + ".gz"
    elif compression == "snappy":
        raise SystemExit("bench: --compression snappy needs ZooKeeper to write the file; use gz or none")
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_bytes(body)
    return zxid, len(body)


def timed(cmd):
    """Runs `cmd` under /usr/bin/time -v: (seconds, peak RSS in MB, stderr)."""
    t0 = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, start_new_session=True)
    took = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{r.stderr}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024
    return took, rss, r.stderr


def first_answer(srv):
    t0 = time.monotonic()
    srv.start()
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--znodes", type=int, default=1_000_000)
    ap.add_argument("--compression", choices=["", "gz"], default="")
    ap.add_argument("--no-verify", action="store_true", help="do not start ZooKeeper on the snapshot")
    a = ap.parse_args()
    if not os.path.exists("/usr/bin/time"):
        raise SystemExit("bench: /usr/bin/time is missing (apt-get install time)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="corral-import-"))
    try:
        zk_dir = work / "zookeeper"
        zxid, size = write_snapshot(zk_dir / "version-2", a.znodes, a.compression)
        print(f"ZooKeeper snapshot: {a.znodes:,} znodes of 100 B, {size / 2**20:.0f} MB"
              f"{' (gzip)' if a.compression else ''}, zxid 0x{zxid:x}")
        zk_start = None
        if not a.no_verify:
            zk = Server(work / "zk-run", target="zookeeper", data_dir=zk_dir)
            _live_servers.append(zk)
            zk_start = first_answer(zk)
            zk.stop()
            print(f"ZooKeeper 3.8 starts on it: serving after {zk_start:.2f} s")
        took, rss, _ = timed([str(CLI), "import", "zookeeper", "--from", str(zk_dir), "--to", str(work / "corral")])
        print(f"corral import zookeeper: {took:.2f} s, peak RSS {rss:.0f} MB")
        srv = Server(work / "corral-run", target="corrald", data_dir=work / "corral")
        _live_servers.append(srv)
        corral_start = first_answer(srv)
        srv.stop()
        print(f"corrald on the imported data: serving after {corral_start:.2f} s"
              + (f" (ZooKeeper: {zk_start:.2f} s, ratio {corral_start / zk_start:.2f})" if zk_start else ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
