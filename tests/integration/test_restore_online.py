"""Online restore (POST /commands/restore, ZooKeeper 3.9's admin `restore`;
`corral restore FILE --admin`): a backup replaces the tree of a running
server, or of a whole ensemble through any member, at one zxid above every
zxid before it. Checked: the tree is the backup's, stat for stat; writes
acknowledged after the restore stay and those between the backup and the
restore are gone; sessions the backup holds continue and the others end;
the restored tree survives restarts and a leader's death; bad requests are
refused before anything changes."""
import base64
import json
import os
import socket
import subprocess
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.protocol.states import KazooState

from corral_harness.servers import TARGET, Server, _live_servers, free_port, wait_for
from test_backup import CLI, SUPER, corral

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="Corral's online restore")


def listing(c, path="/"):
    """Every znode under `path` but /zookeeper: path -> (data, stat fields)."""
    out = {}
    stack = [path]
    while stack:
        p = stack.pop()
        data, st = c.get(p)
        out[p] = (data, st.czxid, st.mzxid, st.pzxid, st.version, st.cversion, st.aversion,
                  st.ephemeralOwner, st.numChildren)
        for child in c.get_children(p):
            full = (p.rstrip("/") + "/" + child)
            if full != "/zookeeper":
                stack.append(full)
    return out


def back(c, path):
    """Whether client `c` is connected again and sees `path` (a request
    may meet the connection the restore closes)."""
    try:
        return c.state == KazooState.CONNECTED and c.exists(path) is not None
    except Exception:
        return False


def http(port, method, path, body=b"", auth="super:secret", headers=None):
    """One raw request; returns (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    if auth:
        head += "Authorization: Basic " + base64.b64encode(auth.encode()).decode() + "\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    s.sendall(head.encode() + b"\r\n")
    try:
        s.sendall(body)
    except OSError:
        pass  # refused from the head: the server stopped reading
    reply = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        reply += b
    s.close()
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0
    return status, reply.split(b"\r\n\r\n", 1)[-1]


@pytest.fixture
def started():
    made = []
    yield made
    for srv in made:
        srv.kill()


def test_a_backup_replaces_a_running_servers_tree(tmp_path, started):
    admin = free_port()
    srv = Server(tmp_path / "live", target="corrald", super_digest=SUPER,
                 extra_args=["--set", f"server.admin_address=127.0.0.1:{admin}"])
    _live_servers.append(srv)
    started.append(srv)
    srv.start()
    old = KazooClient(hosts=srv.hosts, timeout=10.0)
    old.start()
    old.create("/app/config", b"v1", makepath=True)
    for _ in range(3):
        old.create("/app/job-", b"j", sequence=True)
    old.create("/app/owner", b"me", ephemeral=True)
    old.set("/app/config", b"v2")
    backup = tmp_path / "app.backup"
    info = json.loads(corral("--json", "--auth", "digest:super:secret", "backup", str(backup),
                             "--admin", f"127.0.0.1:{admin}").stdout)
    at_backup = listing(old)

    # Afterwards: changes the restore undoes, and a session it does not know.
    old.set("/app/config", b"v3")
    old.delete("/app/job-0000000001")
    old.create("/app/late", b"x")
    new = KazooClient(hosts=srv.hosts, timeout=10.0)
    new.start()
    new.create("/app/new-owner", b"", ephemeral=True)
    states = []
    new.add_listener(states.append)
    before = old.exists("/app/late").mzxid

    out = corral("--auth", "digest:super:secret", "restore", str(backup),
                 "--admin", f"127.0.0.1:{admin}").stdout
    result = json.loads(out)
    assert result["backup_zxid"] == info["zxid"]
    restored_at = int(result["last_zxid"], 16)
    assert restored_at > before, "zxids keep growing across the restore"
    assert result["znodes"] == info["znodes"]

    # The session the backup holds goes on (kazoo reconnects into it), with
    # its ephemeral; the one it does not hold has ended.
    wait_for(lambda: back(old, "/app"), 20, "the old session back")
    assert listing(old) == at_backup
    wait_for(lambda: KazooState.LOST in states, 20, "the new session ended")
    # Writes go on above the restore; sequence numbers continue from the backup's.
    st = old.set("/app/config", b"v4")
    assert st.mzxid > restored_at
    assert old.create("/app/job-", b"j", sequence=True) == f"/app/job-{at_backup['/app'][5]:010d}"
    old.stop()
    old.close()
    new.stop()
    new.close()

    # A restart comes back with the restored tree and the writes after it.
    srv.stop()
    srv.start()
    c = KazooClient(hosts=srv.hosts)
    c.start()
    assert c.get("/app/config")[0] == b"v4"
    assert c.exists("/app/late") is None and c.exists("/app/job-0000000001") is not None
    c.stop()
    c.close()


def test_restore_refusals_change_nothing(tmp_path, started):
    admin = free_port()
    srv = Server(tmp_path / "live", target="corrald", super_digest=SUPER,
                 extra_args=["--set", f"server.admin_address=127.0.0.1:{admin}",
                             "--set", "server.max_restore_bytes=8388608"])
    _live_servers.append(srv)
    started.append(srv)
    srv.start()
    c = KazooClient(hosts=srv.hosts)
    c.start()
    c.create("/keep", b"here")
    # A backup too large to sit in the sockets' buffers: the command hears
    # why it is refused from the request's head, before the body is sent.
    blob = os.urandom(900_000)
    for i in range(12):
        c.create(f"/bulk/n{i:02d}", blob, makepath=True)
    big = tmp_path / "big.backup"
    corral("--auth", "digest:super:secret", "backup", str(big), "--admin", f"127.0.0.1:{admin}")
    r = corral("restore", str(big), "--admin", f"127.0.0.1:{admin}", check=8)
    assert "replaces the whole tree" in r.stderr, r.stderr
    r = corral("--auth", "digest:alice:pw", "restore", str(big), "--admin", f"127.0.0.1:{admin}", check=8)
    assert "HTTP 40" in r.stderr, r.stderr
    r = corral("--auth", "digest:super:secret", "restore", str(big), "--admin", f"127.0.0.1:{admin}", check=1)
    assert "HTTP 413" in r.stderr and "max_restore_bytes" in r.stderr, r.stderr
    c.delete("/bulk", recursive=True)
    backup = tmp_path / "b.backup"
    corral("--auth", "digest:super:secret", "backup", str(backup), "--admin", f"127.0.0.1:{admin}")
    c.set("/keep", b"after")
    data = backup.read_bytes()

    assert http(admin, "POST", "/commands/restore", data, auth=None)[0] == 401
    assert http(admin, "POST", "/commands/restore", data, auth="alice:pw")[0] in (401, 403)
    assert http(admin, "GET", "/commands/restore")[0] == 405
    status, body = http(admin, "POST", "/commands/restore", b"ZKSN" + b"\0" * 100)
    assert status == 400 and b"ZooKeeper snapshot" in body, body
    damaged = data[:40] + bytes([data[40] ^ 1]) + data[41:]
    status, body = http(admin, "POST", "/commands/restore", damaged)
    assert status == 400 and b"offset" in body, body
    status, body = http(admin, "POST", "/commands/restore", data[: len(data) // 2])
    assert status == 400, body
    # Past server.max_restore_bytes: refused from the head, the body unread.
    status, body = http(admin, "POST", "/commands/restore", b"\0" * (9 << 20))
    assert status == 413 and b"max_restore_bytes" in body, body
    assert c.get("/keep")[0] == b"after"
    assert srv.proc.poll() is None
    # And the real thing works, with the very commands ZooKeeper's snapshot
    # and restore guide gives (curl, its "digest user:password" header).
    taken = tmp_path / "curl.snapshot"
    subprocess.run(["curl", "-sf", "-H", "Authorization: digest super:secret",
                    f"http://127.0.0.1:{admin}/commands/snapshot?streaming=true", "--output", str(taken)],
                   check=True, timeout=60)
    assert taken.read_bytes()[:4] == data[:4]
    r = subprocess.run(["curl", "-sf", "-H", "Content-Type:application/octet-stream",
                        "-H", "Authorization: digest super:secret", "-POST",
                        f"http://127.0.0.1:{admin}/commands/restore", "--data-binary", f"@{backup}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "last_zxid" in json.loads(r.stdout), (r.returncode, r.stdout, r.stderr)
    wait_for(lambda: back(c, "/keep"), 20, "reconnected")
    assert c.get("/keep")[0] == b"here"
    c.stop()
    c.close()


@pytest.fixture
def ensemble(ensemble_factory):
    admin = {}

    def own(m):
        admin.setdefault(m.sid, free_port())
        return ["--set", f"server.admin_address=127.0.0.1:{admin[m.sid]}",
                "--set", f"server.super_digest={SUPER}"]

    ens = ensemble_factory(voters=3, member_args=own)
    ens.admin = admin
    return ens


def test_a_restore_through_a_follower_replaces_every_members_tree_under_writes(tmp_path, ensemble):
    ens = ensemble
    lead = ens.leader()
    follower = ens.followers()[0]
    c = KazooClient(hosts=ens.hosts(), timeout=15.0)
    c.start()
    c.create("/app/config", b"v1", makepath=True)
    for i in range(50):
        c.create(f"/app/items/i{i:02d}", os.urandom(20_000), makepath=True)  # ~1 MB: several pieces
    backup = tmp_path / "ens.backup"
    corral("--auth", "digest:super:secret", "backup", str(backup),
           "--admin", f"127.0.0.1:{ens.admin[ens.members[lead].sid]}")
    c.sync("/")
    at_backup = listing(c, "/app")
    c.set("/app/config", b"v2")
    c.create("/app/late", b"x")

    # A writer keeps writing through the restore.
    acked, stop = [], threading.Event()

    def write():
        while not stop.is_set():
            try:
                path, st = c.create("/w/n-", b"", sequence=True, makepath=True, include_data=True)
                acked.append((st.czxid, path))
            except Exception:
                time.sleep(0.05)

    t = threading.Thread(target=write)
    t.start()
    time.sleep(0.5)
    out = corral("--auth", "digest:super:secret", "restore", str(backup),
                 "--admin", f"127.0.0.1:{ens.admin[ens.members[follower].sid]}").stdout
    restored_at = int(json.loads(out)["last_zxid"], 16)
    wait_for(lambda: sum(z > restored_at for z, _ in acked) >= 20, 30, "writes after the restore")
    stop.set()
    t.join()
    assert any(z > restored_at for z, _ in acked) and any(z < restored_at for z, _ in acked)

    # Every member holds the backup's /app, stat for stat.
    for m in ens.members:
        mc = KazooClient(hosts=m.address, timeout=15.0)
        mc.start()
        mc.sync("/")
        assert listing(mc, "/app") == at_backup, f"server {m.sid}"
        # Writes acknowledged after the restore are all there; those before
        # it were undone with the rest of the tree.
        for z, p in acked:
            st = mc.exists(p)
            if z > restored_at:
                assert st is not None and st.czxid == z, f"server {m.sid} lost {p} at {z:#x}"
            else:
                assert st is None or st.czxid != z, f"server {m.sid} kept {p} from before the restore"
        mc.stop()
        mc.close()

    # The leader dies: the next one has the restored tree too, and the
    # killed member comes back with it from its own disk.
    ens.kill(lead)
    ens.wait_serving()
    c2 = KazooClient(hosts=ens.hosts([m for i, m in enumerate(ens.members) if i != lead]), timeout=15.0)
    c2.start()
    assert c2.get("/app/config")[0] == b"v1" and c2.exists("/app/late") is None
    c2.set("/app/config", b"v5")
    ens.start_member(lead)
    lc = KazooClient(hosts=ens.members[lead].address, timeout=15.0)
    lc.start()
    lc.sync("/")
    assert lc.get("/app/config")[0] == b"v5"
    assert lc.exists("/app/late") is None
    for client in (c, c2, lc):
        client.stop()
        client.close()


# A 30 s wait by design, and ~90 MB through the ensemble: room for a loaded machine.
@pytest.mark.hang_guard_seconds(300)
def test_a_restore_whose_sender_stops_is_abandoned_and_changes_nothing(tmp_path, ensemble):
    """The member that sends a restore's pieces stops halfway (SIGSTOP): the
    leader abandons the pieces once none came for 30 s, through the log, so
    that every member forgets them and snapshots go on; the tree is as it
    was, and the sender, back, answers that the restore failed."""
    ens = ensemble
    lead = ens.leader()
    follower = ens.followers()[0]
    sender = ens.members[follower]
    c = KazooClient(hosts=ens.members[lead].address, timeout=15.0)
    c.start()
    blob = os.urandom(900_000)
    for i in range(100):  # ~90 MB: ~170 pieces, each a quorum's round
        c.create(f"/big/n{i:03d}", blob, makepath=True)
    backup = tmp_path / "big.backup"
    admin_of = lambda m: f"127.0.0.1:{ens.admin[m.sid]}"
    corral("--auth", "digest:super:secret", "backup", str(backup), "--admin", admin_of(ens.members[lead]))
    c.create("/marker", b"after the backup")

    cli = subprocess.Popen([CLI, "--auth", "digest:super:secret", "restore", str(backup),
                            "--admin", admin_of(sender)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Paused as soon as its log says the first piece is applied (polled
    # closely: the rest takes about a second).
    deadline = time.monotonic() + 60
    while "begins at zxid" not in sender.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the restore's first piece was not applied"
        time.sleep(0.002)
    ens.pause(follower)
    t0 = time.monotonic()
    leader = ens.members[lead]
    wait_for(lambda: "is abandoned" in leader.log_text(), 60, "the leader abandoning the restore")
    assert time.monotonic() - t0 >= 25, "abandoned only once no piece came for 30 s"
    assert c.get("/marker")[0] == b"after the backup"
    # Snapshots and backups are no longer held back.
    corral("--auth", "digest:super:secret", "backup", str(tmp_path / "again.backup"),
           "--admin", admin_of(leader))
    ens.resume(follower)
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 1 and "restore at" in err, (cli.returncode, out, err)
    ens.wait_serving()
    # The sender forgot the pieces too: a restore through it now succeeds.
    out = corral("--auth", "digest:super:secret", "restore", str(backup), "--admin", admin_of(sender)).stdout
    assert json.loads(out)["znodes"] >= 100
    wait_for(lambda: back(c, "/big"), 30, "reconnected")
    assert c.exists("/marker") is None
    c.stop()
    c.close()
