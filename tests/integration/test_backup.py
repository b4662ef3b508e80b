"""Online backup and restore: `corral backup` (the admin endpoint's
GET /commands/snapshot) of a server under a write load, `corral restore`
of it, point-in-time restore from a data directory's snapshots and log, and
a backup rolled forward with the log. Every restored tree is checked against
what the writers were told: each key holds the last acknowledged write at or
before the restore's zxid, and nothing after it."""
import base64
import hashlib
import json
import os
import socket
import subprocess
import threading
import time

import pytest
from kazoo.client import KazooClient

from corral_harness.servers import REPO, TARGET, Server, _live_servers, free_port, wait_for

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="Corral's backup and restore")

CLI = os.environ.get("CORRAL_CLI", str(REPO / "build/cli/corral"))
SUPER = "super:" + base64.b64encode(hashlib.sha1(b"super:secret").digest()).decode()
KEYS = 200


@pytest.fixture
def started():
    """Every server the test starts, killed at its end whatever happened."""
    made = []
    yield made
    for srv in made:
        srv.kill()


def corral(*args, check=0):
    r = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == check, f"corral {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


class Writers:
    """Threads that set /keys/kNNN over and over, logging (zxid, key, value)
    of every acknowledged write."""

    def __init__(self, hosts, threads=3):
        self.client = KazooClient(hosts=hosts, timeout=15.0)
        self.client.start()
        self.client.ensure_path("/keys")
        self.acked = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        for k in range(KEYS):
            self.client.create(f"/keys/k{k:03d}", b"initial" + b"." * 2000)
        # Bulk, so that a backup takes a while and writes land meanwhile.
        for k in range(600):
            self.client.create(f"/filler/f{k:03d}", os.urandom(10_000), makepath=True)
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, i):
        n = 0
        while not self.stop.is_set():
            key = f"/keys/k{(n * 7 + i * 13) % KEYS:03d}"
            value = f"w{i}-{n}".encode() + b"." * 2000
            try:
                st = self.client.set(key, value)
            except Exception:
                continue
            with self.lock:
                self.acked.append((st.mzxid, key, value))
            n += 1

    def count(self):
        with self.lock:
            return len(self.acked)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()
        self.client.stop()
        self.client.close()

    def expected_at(self, zxid):
        """Each key's value after every acknowledged write at or before zxid
        (keys never written since their creation are not listed)."""
        out = {}
        for z, key, value in sorted(self.acked):
            if z <= zxid:
                out[key] = (z, value)
        return out


def check_tree(hosts, writers, zxid):
    c = KazooClient(hosts=hosts, timeout=15.0)
    c.start()
    try:
        expect = writers.expected_at(zxid)
        for k in range(KEYS):
            key = f"/keys/k{k:03d}"
            data, st = c.get(key)
            assert st.mzxid <= zxid, f"{key} holds a write from {st.mzxid:#x}, after {zxid:#x}"
            if key in expect:
                assert (st.mzxid, data) == expect[key], f"{key}: {st.mzxid:#x} vs {expect[key][0]:#x}"
            else:
                assert data.startswith(b"initial"), key
    finally:
        c.stop()
        c.close()


def start_on(tmp_path, name, data_dir, started):
    srv = Server(tmp_path / name, target="corrald", data_dir=data_dir)
    _live_servers.append(srv)
    started.append(srv)
    srv.start()
    return srv


def test_backup_under_load_restore_and_point_in_time(tmp_path, started):
    admin = free_port()
    srv = Server(tmp_path / "live", target="corrald", super_digest=SUPER,
                 extra_args=["--set", f"server.admin_address=127.0.0.1:{admin}",
                             "--set", "storage.wal.snapshot_every_entries=1000",
                             "--set", "storage.wal.snapshot_log_ratio=0",
                             "--set", "storage.wal.retain_snapshots=100"])
    _live_servers.append(srv)
    started.append(srv)
    srv.start()
    writers = Writers(srv.hosts)
    try:
        wait_for(lambda: writers.count() > 1500, 60, "writes before the backup")
        before = writers.count()
        backup = tmp_path / "corral.backup"
        out = corral("--json", "--auth", "digest:super:secret", "backup", str(backup),
                     "--admin", f"127.0.0.1:{admin}").stdout
        during = writers.count() - before
        info = json.loads(out)
        zxid = int(info["zxid"], 16)
        assert info["znodes"] >= KEYS and info["bytes"] > KEYS * 2000
        # Writes went on while the backup was taken.
        assert during > 0
        wait_for(lambda: writers.count() > before + during + 1500, 60, "writes after the backup")
        # No credentials, or credentials without the right: refused, nothing written.
        r = corral("backup", str(tmp_path / "anon"), "--admin", f"127.0.0.1:{admin}", check=8)
        assert "copies the whole tree" in r.stderr and not (tmp_path / "anon").exists()
        corral("--auth", "digest:alice:pw", "backup", str(tmp_path / "alice"),
               "--admin", f"127.0.0.1:{admin}", check=8)
    finally:
        writers.finish()
    last = max(z for z, _, _ in writers.acked)
    srv.stop()

    # The backup restores to exactly the tree at its zxid.
    restored = tmp_path / "restored"
    corral("restore", str(backup), "--to", str(restored))
    r1 = start_on(tmp_path, "r1", restored, started)
    check_tree(r1.hosts, writers, zxid)
    r1.stop()

    # Point in time from the data directory: a zxid between the backup and the end.
    zs = sorted(z for z, _, _ in writers.acked if zxid < z < last)
    mid = zs[len(zs) // 2]
    pit = tmp_path / "pit"
    err = corral("restore", "--log-from", str(srv.data_dir), "--to-zxid", hex(mid), "--to", str(pit)).stderr
    assert "snapshot" in err, err  # started from one of the directory's snapshots
    r2 = start_on(tmp_path, "r2", pit, started)
    check_tree(r2.hosts, writers, mid)
    r2.stop()

    # The backup rolled forward with the log to the end.
    fwd = tmp_path / "forward"
    corral("restore", str(backup), "--log-from", str(srv.data_dir), "--to", str(fwd))
    r3 = start_on(tmp_path, "r3", fwd, started)
    check_tree(r3.hosts, writers, last)
    r3.stop()

    # Restoring over data is refused; a damaged or cut backup is refused
    # with where it is wrong.
    r = corral("restore", str(backup), "--to", str(restored), check=1)
    assert "already holds Corral data" in r.stderr
    data = backup.read_bytes()
    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(data[:5000] + bytes([data[5000] ^ 1]) + data[5001:])
    r = corral("restore", str(damaged), "--to", str(tmp_path / "x1"), check=1)
    assert "checksum mismatch" in r.stderr and "offset" in r.stderr, r.stderr
    cut = tmp_path / "cut.backup"
    cut.write_bytes(data[: len(data) // 2])
    r = corral("restore", str(cut), "--to", str(tmp_path / "x2"), check=1)
    assert "incomplete" in r.stderr or "too short" in r.stderr, r.stderr


def test_a_reader_that_stalls_holds_one_backup_and_bounded_memory(tmp_path, started):
    admin = free_port()
    srv = Server(tmp_path / "live", target="corrald", super_digest=SUPER,
                 extra_args=["--set", f"server.admin_address=127.0.0.1:{admin}"])
    _live_servers.append(srv)
    started.append(srv)
    srv.start()
    c = KazooClient(hosts=srv.hosts)
    c.start()
    blob = os.urandom(900_000)
    for i in range(60):  # ~54 MB of incompressible data
        c.create(f"/big/n{i:02d}", blob, makepath=True)
    rss = lambda: int(open(f"/proc/{srv.proc.pid}/status").read().split("VmRSS:")[1].split()[0])
    base = rss()
    # A reader that asks and never reads.
    s = socket.create_connection(("127.0.0.1", admin))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    auth = base64.b64encode(b"super:secret").decode()
    s.sendall(f"GET /commands/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\r\n".encode())
    time.sleep(2)
    # The stream waits for it, holding at most a few MiB, and the server serves.
    assert rss() - base < 40_000, f"RSS grew by {rss() - base} KB behind a stalled reader"
    assert c.get("/big/n00")[0] == blob
    r = corral("--auth", "digest:super:secret", "backup", str(tmp_path / "second"),
               "--admin", f"127.0.0.1:{admin}", check=1)
    assert "being taken already" in r.stderr, r.stderr
    # The reader goes away: the backup ends, and the next one is whole.
    s.close()
    time.sleep(1)
    out = corral("--auth", "digest:super:secret", "backup", str(tmp_path / "third"),
                 "--admin", f"127.0.0.1:{admin}").stdout
    assert "backup at zxid" in out
    c.stop()
    c.close()
    srv.stop()


def test_a_backup_is_not_rolled_forward_across_a_gap_in_the_log(tmp_path, started):
    admin = free_port()
    srv = Server(tmp_path / "live", target="corrald", super_digest=SUPER,
                 extra_args=["--set", f"server.admin_address=127.0.0.1:{admin}",
                             "--set", "storage.wal.segment_bytes=65536",
                             "--set", "storage.wal.snapshot_every_entries=200",
                             "--set", "storage.wal.snapshot_log_ratio=0",
                             "--set", "storage.wal.retain_snapshots=1"])
    _live_servers.append(srv)
    started.append(srv)
    srv.start()
    c = KazooClient(hosts=srv.hosts)
    c.start()
    c.create("/gap/early", b"x", makepath=True)
    backup = tmp_path / "early.backup"
    corral("--auth", "digest:super:secret", "backup", str(backup), "--admin", f"127.0.0.1:{admin}")
    # Enough writes that the segments after the backup are purged.
    for i in range(3000):
        c.create(f"/gap/n{i:04d}", b"y" * 200)
    c.stop()
    c.close()
    srv.stop()
    first_log = min(int(f.name.split(".")[1], 16) for f in (srv.data_dir / "wal").glob("log.*"))
    assert first_log > 10, "the early segments are gone"
    r = corral("restore", str(backup), "--log-from", str(srv.data_dir), "--to", str(tmp_path / "x"), check=1)
    assert "the entries between are gone" in r.stderr, r.stderr
    assert not (tmp_path / "x" / "wal").exists() or not list((tmp_path / "x" / "wal").iterdir())
