#!/usr/bin/python3
"""Online restore of a large tree: `corral backup` of a running server, then
`corral restore FILE --admin` of that backup into it (POST
/commands/restore, through the log), on a tree of N znodes (1M by default,
100 B each), standalone or as a 3-member ensemble (restored through a
follower). Reports the backup's size and time, the restore's time as the
command saw it and as the server did (from the backup's arrival to the tree
replaced), and each server's RSS before and its peak (VmHWM) after.

The tree comes from `corral import zookeeper` of a generated ZooKeeper
snapshot (bench/zk_import.py), so no load generator is needed.

    ./dev bench restore [--znodes 1000000] [--ensemble]
"""
import argparse
import base64
import hashlib
import json
import pathlib
import random
import shutil
import subprocess
import tempfile
import time

from corral_harness.ensemble import Ensemble
from corral_harness.servers import Server, _live_servers, free_port
from zk_import import CLI, write_snapshot

AUTH = ["--auth", "digest:super:secret"]
SUPER = "super:" + base64.b64encode(hashlib.sha1(b"super:secret").digest()).decode()


def kb(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def timed(*args):
    t0 = time.monotonic()
    r = subprocess.run([str(CLI), *args], capture_output=True, text=True, check=True, timeout=1800)
    return time.monotonic() - t0, r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--znodes", type=int, default=1_000_000)
    ap.add_argument("--ensemble", action="store_true", help="3 members, restored through a follower")
    a = ap.parse_args()
    rng = random.Random(7)
    work = pathlib.Path(tempfile.mkdtemp(prefix="corral-restore-"))
    servers = []
    try:
        write_snapshot(work / "zk" / "version-2", a.znodes, "", lambda i: rng.randbytes(100))
        subprocess.run([str(CLI), "import", "zookeeper", "--from", str(work / "zk"), "--to", str(work / "base")],
                       check=True, capture_output=True)
        super_set = ["--set", f"server.super_digest={SUPER}"]
        if a.ensemble:
            admin = {}

            def own(m):
                admin.setdefault(m.sid, free_port())
                return ["--set", f"server.admin_address=127.0.0.1:{admin[m.sid]}", *super_set]

            ens = Ensemble(work / "ens", voters=3, member_args=own)
            for m in ens.members:
                shutil.rmtree(m.data_dir / "wal", ignore_errors=True)
                shutil.copytree(work / "base" / "wal", m.data_dir / "wal")
            ens.start(timeout=300)
            servers = [m.proc.pid for m in ens.members]
            lead = ens.members[ens.leader()]
            to = ens.members[ens.followers()[0]]
            backup_from, restore_at = f"127.0.0.1:{admin[lead.sid]}", f"127.0.0.1:{admin[to.sid]}"
            closer = ens.close
        else:
            port = free_port()
            srv = Server(work / "one", target="corrald", data_dir=work / "base",
                         extra_args=["--set", f"server.admin_address=127.0.0.1:{port}", *super_set])
            _live_servers.append(srv)
            srv.start()
            servers = [srv.proc.pid]
            backup_from = restore_at = f"127.0.0.1:{port}"
            closer = srv.stop
        backup = work / "tree.backup"
        took_backup, _ = timed(*AUTH, "backup", str(backup), "--admin", backup_from)
        rss_before = [kb(p, "VmRSS") for p in servers]
        took_restore, out = timed(*AUTH, "restore", str(backup), "--admin", restore_at)
        result = json.loads(out)
        peaks = [kb(p, "VmHWM") for p in servers]
        closer()
        print(f"{a.znodes:,} znodes of 100 B, {'3-member ensemble' if a.ensemble else 'standalone'}")
        print(f"backup: {backup.stat().st_size / 1e6:.1f} MB in {took_backup:.2f} s (corral backup, checked)")
        print(f"restore: {took_restore:.2f} s (corral restore --admin), "
              f"{result['took_ms'] / 1000:.2f} s in the server, at zxid {result['last_zxid']}")
        for i, (before, peak) in enumerate(zip(rss_before, peaks)):
            print(f"server {i + 1}: RSS {before / 1024:.0f} MB before, peak {peak / 1024:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
