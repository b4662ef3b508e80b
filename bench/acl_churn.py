#!/usr/bin/python3
"""The cost of a create with a new ACL after many ACLs were left behind by
deleted nodes (issue: a linear ACL table that was never purged).

Starts corrald (its own session), times --probe creates that each carry an
ACL not seen before on a fresh server, then creates and deletes --churn
nodes with distinct ACLs and times --probe more. Prints both rates, the
ratio, and the distinct ACLs the server still holds.

    bench/acl_churn.py [--churn 61000] [--probe 5000] [--build DIR]
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from side_by_side import four, free_port

REPO = pathlib.Path(__file__).resolve().parents[1]


def probe(zk, prefix, count):
    start = time.perf_counter()
    pending = []
    for i in range(count):
        pending.append(zk.create_async(f"/{prefix}-{i}", b"", acl=[make_digest_acl(f"{prefix}{i}", "pw", all=True)]))
        if len(pending) >= 200:
            for p in pending:
                p.get(timeout=60)
            pending = []
    for p in pending:
        p.get(timeout=60)
    return count / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--churn", type=int, default=61000)
    ap.add_argument("--probe", type=int, default=5000)
    ap.add_argument("--build", default=str(REPO / "build"))
    a = ap.parse_args()
    build = pathlib.Path(a.build)
    work = pathlib.Path(tempfile.mkdtemp(prefix="corral-acl-"))
    port, http = free_port(), free_port()
    proc = subprocess.Popen([str(build / "kernel" / "corrald"), "--set", f"server.client_address=127.0.0.1:{port}",
                             "--set", f"server.data_dir={work}", "--set", f"server.admin_address=127.0.0.1:{http}",
                             "--set", f'server.plugin_dir=["{build / "plugins"}"]'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=30)
        zk.start(timeout=30)
        fresh = probe(zk, "fresh", a.probe)
        for base in range(0, a.churn, 500):
            tx = zk.transaction()
            for i in range(base, min(base + 500, a.churn)):
                tx.create(f"/churn-{i}", b"", acl=[make_digest_acl(f"churn{i}", "pw", all=True)])
            tx.commit()
            tx = zk.transaction()
            for i in range(base, min(base + 500, a.churn)):
                tx.delete(f"/churn-{i}")
            tx.commit()
        after = probe(zk, "after", a.probe)
        acls = "?"
        try:
            from urllib.request import urlopen
            m = re.search(r"^corral_acls (\S+)$", urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5).read().decode(),
                          re.M)
            acls = m.group(1) if m else "?"
        except OSError:
            pass
        zk.stop()
        print(f"creates with a new ACL: {fresh:,.0f}/s fresh, {after:,.0f}/s after {a.churn:,} ACLs were left "
              f"behind ({after / fresh:.2f}x); distinct ACLs held: {acls}")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
