#!/usr/bin/python3
"""How long writes stop when the leader changes: Corral's leader transfer
(`corral leader transfer`), a leader stopped by SIGTERM (Corral hands over
first; ZooKeeper shuts down and the others elect), and a leader killed by
SIGKILL, on 3-server ensembles of corrald (on zab, and on raft) and Apache
ZooKeeper side by side.

Three writers, each first connected to a different server and free to move
to another (as real clients do), create nodes one after another; the pause
of an event is the longest time, over the writers, between two acknowledged
writes in the seconds after it. Every acknowledged write is checked present
afterwards. Both ensembles durable, every server in its own session
(setsid), tickTime 2000, the harness's launcher as the tests use it.

    ./dev bench transfer [--rounds 5]
"""
import argparse
import base64
import hashlib
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

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError
from kazoo.retry import KazooRetry

from corral_harness.ensemble import Ensemble
from corral_harness.servers import free_port
from side_by_side import BUILD, CORRALD

CLI = BUILD / "cli/corral"
SUPER = "super:" + base64.b64encode(hashlib.sha1(b"super:secret").digest()).decode()


class Writers:
    def __init__(self, ens, prefix):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.times = [[] for _ in ens.members]
        self.acked = []
        self.clients = []
        self.threads = []
        n = len(ens.members)
        for i in range(n):
            hosts = ",".join(ens.members[(i + k) % n].address for k in range(n))
            zk = KazooClient(hosts=hosts, timeout=10, randomize_hosts=False,
                             connection_retry=KazooRetry(max_tries=-1, delay=0.01, max_delay=0.05),
                             command_retry=KazooRetry(max_tries=-1, delay=0.005, max_delay=0.05))
            zk.start(30)
            zk.ensure_path(prefix)
            self.clients.append(zk)
            t = threading.Thread(target=self._run, args=(i, zk, f"{prefix}/w{i}-"), daemon=True)
            self.threads.append(t)
        for t in self.threads:
            t.start()

    def _run(self, i, zk, base):
        n = 0
        while not self.stop.is_set():
            n += 1
            path = f"{base}{n:07d}"
            try:
                zk.retry(zk.create, path, b"x")
            except NodeExistsError:
                pass
            except Exception:
                continue
            with self.lock:
                self.times[i].append(time.monotonic())
                self.acked.append(path)

    def pause_after(self, t0, window):
        """Longest gap between acknowledged writes of any one writer, from
        its last write before t0 to t0 + window."""
        worst = 0.0
        with self.lock:
            for ts in self.times:
                before = [t for t in ts if t < t0][-1:]
                during = [t for t in ts if t0 <= t <= t0 + window]
                seq = before + during
                if not during:
                    return float("inf")
                worst = max(worst, max(b - a for a, b in zip(seq, seq[1:])) if len(seq) > 1 else 0.0)
        return worst

    def finish(self, check_hosts, prefix):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        for zk in self.clients:
            zk.stop()
            zk.close()
        zk = KazooClient(hosts=check_hosts, timeout=10)
        zk.start(30)
        zk.sync(prefix)
        present = set(zk.get_children(prefix))
        zk.stop()
        zk.close()
        missing = [p for p in self.acked if p.rsplit("/", 1)[1] not in present]
        if missing:
            sys.exit(f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}")
        return len(self.acked)


def make(kind, root, admin):
    """kind: corrald (on zab), raft (corrald on raft), or zookeeper."""
    def own(m):
        if kind == "zookeeper":
            return []
        admin.setdefault((kind, m.sid), free_port())
        return ["--set", f"server.admin_address=127.0.0.1:{admin[(kind, m.sid)]}",
                "--set", f"server.super_digest={SUPER}"]
    return Ensemble(pathlib.Path(root) / kind, voters=3, tick_ms=2000, peer_auth=False,
                    extra_cfg="maxClientCnxns=0", target="zookeeper" if kind == "zookeeper" else "corrald",
                    jvm=["-Xmx1g", "-Xms1g"], corrald=str(CORRALD), plugin_dir=str(BUILD / "plugins"),
                    member_args=own, extra_args=["--set", "plugins.consensus=raft"] if kind == "raft" else [])


def event(ens, kind, how, admin):
    old = ens.leader()
    if how == "transfer":
        to = ens.members[ens.followers()[0]].sid
        r = subprocess.run([str(CLI), "--auth", "digest:super:secret", "leader", "transfer", "--to", str(to),
                            "--admin", f"127.0.0.1:{admin[(kind, ens.members[old].sid)]}"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            sys.exit(f"leader transfer failed: {r.stderr}")
        return None
    if how == "sigterm":
        ens.stop_member(old)
    else:
        ens.kill(old)
    return old


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--window", type=float, default=4.0, help="seconds after each event that count")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="corral-transfer-")
    admin = {}
    kinds = ("corrald", "raft", "zookeeper")
    ensembles = {k: make(k, work, admin) for k in kinds}
    events = {"corrald": ["transfer", "sigterm", "sigkill"], "raft": ["transfer", "sigterm", "sigkill"],
              "zookeeper": ["sigterm", "sigkill"]}
    rows = {}
    try:
        for e in ensembles.values():
            e.start(timeout=120)
        for rnd in range(args.rounds):
            for kind in kinds if rnd % 2 == 0 else kinds[::-1]:
                ens = ensembles[kind]
                for how in events[kind]:
                    prefix = f"/t{rnd}-{how}"
                    w = Writers(ens, prefix)
                    time.sleep(1.0)
                    t0 = time.monotonic()
                    down = event(ens, kind, how, admin)
                    time.sleep(args.window)
                    pause = w.pause_after(t0, args.window)
                    survivors = [m for i, m in enumerate(ens.members) if i != down]
                    n = w.finish(ens.hosts(survivors), prefix)
                    if down is not None:
                        ens.start_member(down)
                    ens.wait_serving()
                    print(f"round {rnd + 1} {kind:9s} {how:8s} pause {pause * 1000:8.1f} ms "
                          f"({n} writes, all present)", file=sys.stderr)
                    rows.setdefault(how, {}).setdefault(kind, []).append(pause * 1000)
    finally:
        for e in ensembles.values():
            e.close()
        shutil.rmtree(work, ignore_errors=True)
    med = {h: {k: statistics.median(v) for k, v in d.items()} for h, d in rows.items()}
    print(f"{'leader change':28s} {'zab (ms)':>10s} {'raft (ms)':>10s} {'ZooKeeper (ms)':>15s} "
          f"{'zab/ZK':>7s} {'raft/ZK':>8s}")
    names = {"transfer": "corral leader transfer", "sigterm": "leader stopped (SIGTERM)",
             "sigkill": "leader killed (SIGKILL)"}
    nan = float("nan")
    for how in ("transfer", "sigterm", "sigkill"):
        c = med.get(how, {}).get("corrald")
        r = med.get(how, {}).get("raft")
        z = med.get(how, {}).get("zookeeper")
        ratio = f"{c / z:.3f}" if c is not None and z else "-"
        rratio = f"{r / z:.3f}" if r is not None and z else "-"
        print(f"{names[how]:28s} {c if c is not None else nan:10.1f} {r if r is not None else nan:10.1f} "
              f"{z if z is not None else nan:15.1f} {ratio:>7s} {rratio:>8s}")
    print(f"\nLongest write pause seen by 3 writers (one per server at first) in the {args.window:g} s after "
          f"each event; medians of {args.rounds} rounds. Machine: {os.cpu_count()} cores.")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
