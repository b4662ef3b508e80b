"""The wal storage plugin end to end: snapshots and replay across restarts,
and damage on disk reported with its file and offset, never accepted."""
import os
import pathlib
import re
import subprocess

import pytest
from kazoo.client import KazooClient

from corral_harness.servers import REPO, TARGET, free_port

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="corrald's own storage")

CORRALD = os.environ.get("CORRALD", str(REPO / "build/kernel/corrald"))
PLUGINS = os.environ.get("CORRAL_PLUGIN_DIR", str(REPO / "build/plugins"))
CORRAL_WAL = str(pathlib.Path(os.environ.get("CORRAL_BUILD_DIR", str(REPO / "build"))) / "tools" / "corral-wal")
SNAPSHOT_EVERY = ["--set", "storage.wal.snapshot_every_entries=50"]


def fill(srv, count, prefix="/w", name="n"):
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=10)
    try:
        zk.ensure_path(prefix)
        for i in range(count):
            zk.create(f"{prefix}/{name}{i:05d}", f"v{i}".encode())
    finally:
        zk.stop()
        zk.close()


def count_children(srv, path):
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=10)
    try:
        return len(zk.get_children(path))
    finally:
        zk.stop()
        zk.close()


def start_fails(srv):
    """Runs corrald on the server's data dir; it must refuse to start."""
    r = subprocess.run([CORRALD, "--set", f"server.data_dir={srv.data_dir}",
                        "--set", f"server.plugin_dir={PLUGINS}",
                        "--set", f"server.client_address=127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, r.stderr
    return r.stderr


def wal_files(srv, prefix):
    return sorted((pathlib.Path(srv.data_dir) / "wal").glob(prefix + "*"))


def test_snapshots_and_log_replay_restore_the_tree(server_factory):
    srv = server_factory(extra_args=SNAPSHOT_EVERY)
    fill(srv, 240)
    srv.stop()
    assert wal_files(srv, "snapshot."), "no snapshot was taken"
    assert "snapshot at zxid" in srv.log_path.read_text()
    srv.start()
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=10)
    try:
        children = zk.get_children("/w")
        assert len(children) == 240
        assert zk.get("/w/n00239")[0] == b"v239"
    finally:
        zk.stop()
        zk.close()
    assert "recovered" in srv.log_path.read_text()
    r = subprocess.run([CORRAL_WAL, "verify", str(srv.data_dir)], capture_output=True, text=True)
    assert r.returncode == 0 and "all checksums good" in r.stdout, r.stdout


def test_damage_in_the_log_stops_startup_naming_file_and_offset(server_factory):
    srv = server_factory()
    fill(srv, 50)
    srv.stop()
    seg = wal_files(srv, "log.")[-1]
    data = bytearray(seg.read_bytes())
    data[400] ^= 0x40  # inside an early record, with good records after it
    seg.write_bytes(bytes(data))
    err = start_fails(srv)
    assert str(seg) in err and "damaged at offset" in err, err
    r = subprocess.run([CORRAL_WAL, "verify", str(srv.data_dir)], capture_output=True, text=True)
    assert r.returncode == 1 and str(seg) in r.stdout and "DAMAGED" in r.stdout, r.stdout


def test_damage_in_a_snapshot_stops_startup_naming_file_and_offset(server_factory):
    srv = server_factory(extra_args=SNAPSHOT_EVERY)
    fill(srv, 120)
    srv.stop()
    snap = wal_files(srv, "snapshot.")[-1]
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0x01
    snap.write_bytes(bytes(data))
    err = start_fails(srv)
    assert str(snap) in err and "at offset 20" in err and "move the file out" in err, err


def test_a_torn_final_record_is_truncated_and_reported(server_factory):
    srv = server_factory()
    fill(srv, 20)
    srv.stop()
    seg = wal_files(srv, "log.")[-1]
    r = subprocess.run([CORRAL_WAL, "list", str(srv.data_dir)], capture_output=True, text=True)
    used = int(r.stdout.split(" bytes used")[0].rsplit(" of ", 1)[0].rsplit(" ", 1)[1])
    with open(seg, "r+b") as f:  # half a record, as a crash mid-write leaves it
        f.seek(used)
        f.write(b"\x40\x00\x00\x00\x12\x34\x56\x78" + b"\x93\x01")
    srv.start()
    log = srv.log_path.read_text()
    assert f"truncating a torn record at offset {used}" in log and str(seg) in log
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=10)
    try:
        assert len(zk.get_children("/w")) == 20
    finally:
        zk.stop()
        zk.close()


def test_the_log_and_the_snapshots_in_directories_of_their_own(server_factory, tmp_path):
    """ZooKeeper's dataLogDir apart from its dataDir: the log (and its
    epochs) in storage.wal.dir, snapshots in storage.wal.snapshot_dir; a data
    directory written with its snapshots beside the log starts as it is."""
    logs, snaps = tmp_path / "fast-disk" / "log", tmp_path / "big-disk" / "snapshots"
    split = ["--set", f"storage.wal.dir={logs}", "--set", f"storage.wal.snapshot_dir={snaps}",
             "--set", "storage.wal.snapshot_log_ratio=0", "--set", "storage.wal.retain_snapshots=2"]
    srv = server_factory(extra_args=SNAPSHOT_EVERY + split)
    fill(srv, 240)
    srv.stop()
    assert list(logs.glob("log.*")) and not list(logs.glob("snapshot.*"))
    assert len(list(snaps.glob("snapshot.*"))) == 2, list(snaps.iterdir())
    assert not list(snaps.glob("log.*"))
    assert not (pathlib.Path(srv.data_dir) / "wal").exists()
    before = len(srv.log_path.read_text())
    srv.start()
    assert f"(new ones in {snaps})" in srv.log_path.read_text()[before:]
    assert count_children(srv, "/w") == 240
    fill(srv, 100, "/w", name="more")
    srv.stop()

    # The same data with the snapshots moved beside the log (as corral
    # restore and import write it): it starts, and new snapshots go to
    # snapshot_dir while retention counts both places.
    for s in snaps.glob("snapshot.*"):
        s.rename(logs / s.name)
    srv.start()
    assert count_children(srv, "/w") == 340
    fill(srv, 200, "/w", name="last")
    srv.stop()
    assert list(snaps.glob("snapshot.*"))
    assert len(list(snaps.glob("snapshot.*")) + list(logs.glob("snapshot.*"))) == 2

    # A log segment left in the snapshots' directory is not overlooked.
    seg = sorted(logs.glob("log.*"))[0]
    seg.rename(snaps / seg.name)
    r = subprocess.run([CORRALD, "--set", f"server.data_dir={srv.data_dir}", "--set", f"server.plugin_dir={PLUGINS}",
                        "--set", f"server.client_address=127.0.0.1:{free_port()}", *split],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, r.stderr
    assert f"log segment {snaps / seg.name} is in snapshot_dir {snaps}" in r.stderr, r.stderr


def tree_state(zk, path="/w"):
    """Every node under `path` with its data and version, and each parent's
    cversion: what a restart must bring back exactly."""
    out = {}
    stack = [path]
    while stack:
        p = stack.pop()
        data, stat = zk.get(p)
        out[p] = (data, stat.version, stat.cversion, stat.numChildren, stat.mzxid, stat.pzxid)
        stack.extend(f"{p}/{c}" for c in zk.get_children(p))
    return out


def test_snapshots_walked_while_writes_go_on_restore_the_tree(server_factory):
    """snapshot_method = "walk": the server writes each snapshot a slice of
    nodes at a time between requests, while creates, sets and deletes keep
    changing nodes it has not reached; killed and restarted, it comes back
    with the same tree. Slices of 8 nodes make each walk last long enough
    for many writes to come between its steps."""
    srv = server_factory(extra_args=["--set", "storage.wal.snapshot_every_entries=3000",
                                     "--set", "server.snapshot_method=walk",
                                     "--set", "server.snapshot_walk_slice=8"])
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=10)

    def settle(ops):
        for op in ops:
            try:
                op.get(timeout=60)
            except Exception:  # a create of a node that is there, a delete of one that is not
                pass

    try:
        zk.ensure_path("/w")
        for d in range(8):
            zk.create(f"/w/d{d}")
        for d in range(8):
            settle([zk.create_async(f"/w/d{d}/n{n}", b"v") for n in range(2000)])
        # Writes in flight many at a time, so that snapshots fall among them.
        for rnd in range(6):
            ops = []
            for i in range(3000):
                d, n = i % 8, (i * 7 + rnd * 13) % 2400
                path = f"/w/d{d}/n{n}"
                if rnd % 3 == 0:
                    ops.append(zk.create_async(path, f"c{rnd}-{i}".encode() * (1 + i % 40)))
                elif rnd % 3 == 1:
                    ops.append(zk.set_async(path, f"s{rnd}-{i}".encode() * (1 + (i * 3) % 60)))
                else:
                    ops.append(zk.delete_async(path) if i % 2 else zk.create_async(path, b"x"))
            settle(ops)
        before = tree_state(zk)
    finally:
        zk.stop()
        zk.close()
    assert len(before) > 12000
    log = srv.log_path.read_text()
    kept = [int(k) for k in re.findall(r"walked between requests \((\d+) KiB of nodes kept", log)]
    assert len(kept) >= 5, log[-3000:]
    # Writes came between the steps of at least one walk: it kept copies.
    assert max(kept) > 0, kept
    assert not re.search(r"snapshot at zxid \S+ failed", log), log[-3000:]
    srv.kill()
    srv.start()
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=10)
    try:
        assert tree_state(zk) == before
    finally:
        zk.stop()
        zk.close()
    log = srv.log_path.read_text()
    assert "recovered" in log and "loaded in" in log, log[-2000:]
