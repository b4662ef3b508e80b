"""Ensembles of real servers on loopback driven by real clients (kazoo, raw
frames): replication, failover, rejoining, observers, sessions that move
between servers and expire through the leader, and a lost quorum. Every test
passes against an Apache ZooKeeper ensemble too (./dev reference)."""
import json
import shutil
import threading
import time
import urllib.error
import urllib.request

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NewConfigNoQuorumError, NodeExistsError, SessionExpiredError
from kazoo.retry import KazooRetry

from corral_harness import jute
from corral_harness.ensemble import CONSENSUS, Ensemble
from corral_harness.servers import REPO, TARGET, free_port, wait_for

CORRALD_ONLY = pytest.mark.skipif(TARGET != "corrald", reason="Corral's own plugins and log lines")
# CORRAL_CONSENSUS=raft runs the suite on the raft module: zab's own log
# lines and its election plugins are zab's.
RAFT = CONSENSUS == "raft"
ZAB_ONLY = pytest.mark.skipif(RAFT, reason="zab's election plugins")


def client(hosts, timeout=10.0, **kw):
    # Requests in flight when a server dies fail with ConnectionLoss, as with
    # ZooKeeper; retrying them (zk.retry) is the client's part.
    zk = KazooClient(hosts=hosts, timeout=timeout, connection_retry=KazooRetry(max_tries=-1, max_delay=0.5),
                     command_retry=KazooRetry(max_tries=50, delay=0.05, max_delay=0.5), **kw)
    zk.start(timeout=30)
    return zk


def only(ens, i, **kw):
    """A client that talks to member i alone."""
    return client(ens.members[i].address, **kw)


def test_writes_replicate_and_every_server_reads_them(ensemble_factory):
    ens = ensemble_factory(voters=3)
    modes = sorted(m.mode() for m in ens.members)
    assert modes == ["follower", "follower", "leader"]
    follower = ens.followers()[0]
    writer = only(ens, follower)
    for i in range(50):
        writer.create(f"/rep/n{i}", f"v{i}".encode(), makepath=True)
    for i in range(len(ens.members)):
        reader = only(ens, i)
        reader.sync("/rep")
        assert len(reader.get_children("/rep")) == 50
        assert reader.get("/rep/n49")[0] == b"v49"
        reader.stop()
    # mntr tells a leader from its followers.
    mntr = ens.members[ens.leader()].four("mntr")
    assert "zk_server_state\tleader" in mntr
    assert "zk_synced_followers\t2" in mntr
    assert "zk_server_state\tfollower" in ens.members[follower].four("mntr")
    # Every member applied the same entries: the same tree digest at the
    # same zxid (ZooKeeper's `hash`, with zookeeper.digest.enabled).
    if TARGET == "corrald":
        digests = [dict(line.split(": ") for line in m.four("hash").splitlines()) for m in ens.members]
        common = set(digests[0]) & set(digests[1]) & set(digests[2])
        assert common, digests
        for zxid in common:
            assert digests[0][zxid] == digests[1][zxid] == digests[2][zxid], (zxid, digests)
    # /zookeeper/config lists the members, as ZooKeeper's does.
    config = writer.get("/zookeeper/config")[0].decode().splitlines()
    assert config == [m.line() for m in ens.members] + ["version=0"]
    writer.stop()


@pytest.mark.skipif(TARGET != "corrald", reason="Corral's probes")
def test_ready_follows_the_quorum_and_health_the_process(ensemble_factory):
    admin = {}

    def own(m):
        admin.setdefault(m.sid, free_port())
        return ["--set", f"server.admin_address=127.0.0.1:{admin[m.sid]}"]

    ens = ensemble_factory(voters=3, member_args=own)

    def probe(m, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin[m.sid]}{path}", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    roles = sorted(probe(m, "/ready")[1]["role"] for m in ens.members)
    assert roles == ["follower", "follower", "leader"]
    assert all(probe(m, "/ready")[0] == 200 for m in ens.members)
    # Two of three gone: the last one is alive and not ready.
    last = ens.members[ens.followers()[0]]
    for i, m in enumerate(ens.members):
        if m is not last:
            ens.stop_member(i)
    wait_for(lambda: probe(last, "/ready")[0] == 503, 30, "the lone member to say it is not ready")
    status, body = probe(last, "/ready")
    assert body["ready"] is False and body["role"] == "looking"
    assert probe(last, "/health") == (200, {"alive": True})


def test_leader_killed_under_write_load_loses_no_acknowledged_write(ensemble_factory):
    ens = ensemble_factory(voters=3)
    zk = client(ens.hosts())
    zk.ensure_path("/load")
    acked, stop = [], threading.Event()

    def writer():
        n = 0
        while not stop.is_set():
            n += 1
            path = f"/load/w{n:06d}"
            try:
                zk.create(path, b"x")
                acked.append(path)
            except NodeExistsError:  # a retried write that had been applied
                acked.append(path)
            except (ConnectionLoss, SessionExpiredError):
                time.sleep(0.01)
            except Exception:
                time.sleep(0.01)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    time.sleep(1.0)
    old = ens.leader()
    before = len(acked)
    assert before > 0
    ens.kill(old)
    killed_at = time.monotonic()
    # A new leader is elected among the survivors and commits.
    survivors = [m for i, m in enumerate(ens.members) if i != old]
    probe = client(ens.hosts(survivors))
    probe.retry(probe.create, "/after-failover", b"1")
    failover = time.monotonic() - killed_at
    time.sleep(1.0)
    stop.set()
    t.join(10)
    assert len(acked) > before, "no write was acknowledged after the failover"
    print(f"failover: first commit {failover:.3f}s after SIGKILL of the leader")
    assert failover < 15
    probe.sync("/load")
    present = set(probe.get_children("/load"))
    missing = [p for p in acked if p.rsplit("/", 1)[1] not in present]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    # The old leader comes back as a follower and catches up.
    ens.start_member(old)
    assert ens.members[old].mode() == "follower"
    back = only(ens, old)
    back.sync("/load")
    assert set(back.get_children("/load")) == present | set(back.get_children("/load"))
    assert len(back.get_children("/load")) >= len(present)
    for c in (zk, probe, back):
        c.stop()


def test_stopped_follower_rejoins_by_diff_and_after_a_snapshot_by_snap(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_cfg="snapCount=200\n")
    f = ens.followers()[0]
    zk = client(ens.hosts([m for i, m in enumerate(ens.members) if i != f]))
    zk.create("/rejoin", b"")
    ens.stop_member(f)
    for i in range(20):
        zk.create(f"/rejoin/a{i}", b"a")
    ens.start_member(f)
    # It serves only once synced: a read without sync sees every write.
    back = only(ens, f)
    assert len(back.get_children("/rejoin")) == 20
    back.stop()
    leader = ens.members[ens.leader()]
    if TARGET == "corrald" and not RAFT:
        assert f"syncing server {f + 1} from " in leader.log_text()
        assert "by DIFF" in leader.log_text()
    # Far behind, past the leader's newest snapshot: a SNAP.
    ens.stop_member(f)
    for i in range(600):
        zk.create_async(f"/rejoin/b{i}", b"b")
    zk.sync("/rejoin")
    time.sleep(1.0)  # the snapshot is written in the background
    ens.start_member(f)
    back = only(ens, f)
    assert len(back.get_children("/rejoin")) == 620
    assert back.get("/rejoin/b599")[0] == b"b"
    if TARGET == "corrald" and not RAFT:
        # (raft keeps the last 1,000 applied entries in memory and sends
        # those rather than the snapshot; test_raft.py takes it further.)
        assert "by SNAP" in ens.members[ens.leader()].log_text()
        assert "loaded the leader's snapshot" in ens.members[f].log_text()
    # And its own restart after the SNAP recovers from what it stored.
    ens.stop_member(f)
    ens.start_member(f)
    again = only(ens, f)
    assert len(again.get_children("/rejoin")) == 620
    for c in (zk, back, again):
        c.stop()


def test_observer_serves_reads_forwards_writes_and_does_not_vote(ensemble_factory):
    ens = ensemble_factory(voters=3, observers=1)
    obs = 3
    assert ens.members[obs].mode() == "observer"
    zk = only(ens, obs)
    zk.create("/obs", b"through the observer")
    other = only(ens, ens.leader())
    other.sync("/obs")
    assert other.get("/obs")[0] == b"through the observer"
    other.set("/obs", b"from the leader")
    zk.sync("/obs")
    assert zk.get("/obs")[0] == b"from the leader"
    # Losing two voters of three loses the quorum: the observer cannot
    # stand in for a voter.
    voters = [i for i in range(3) if i != ens.leader()]
    zk.stop()
    other.stop()
    ens.kill(voters[0])
    ens.kill(ens.leader())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and ens.members[obs].mode() is not None:
        time.sleep(0.1)
    assert ens.members[obs].mode() is None, "an observer kept serving without a quorum of voters"


def test_five_servers_survive_two_failures(ensemble_factory):
    ens = ensemble_factory(voters=5)
    zk = client(ens.hosts())
    zk.create("/five", b"0")
    ens.kill(ens.followers()[0])
    ens.kill(ens.leader())
    zk.retry(zk.set, "/five", b"2 down")
    zk.retry(zk.sync, "/five")
    assert zk.get("/five")[0] == b"2 down"
    zk.stop()


def test_session_moves_with_its_ephemerals_and_watches(ensemble_factory):
    ens = ensemble_factory(voters=3)
    f = ens.followers()[0]
    rest = [m for i, m in enumerate(ens.members) if i != f]
    zk = client(ens.hosts([ens.members[f]] + rest), randomize_hosts=False)
    assert zk._connection._socket.getpeername()[1] == ens.members[f].port
    zk.create("/moving", b"")
    zk.create("/moving/eph", b"", ephemeral=True)
    fired = threading.Event()
    zk.get("/moving", watch=lambda e: fired.set())
    session = zk.client_id[0]
    ens.kill(f)
    other = client(ens.hosts(rest))
    # The session is still there, now on another server.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if zk.connected and zk.exists("/moving/eph"):
                break
        except ConnectionLoss:
            pass
        time.sleep(0.1)
    assert zk.client_id[0] == session
    assert zk.exists("/moving/eph") is not None
    other.retry(other.set, "/moving", b"changed")
    assert fired.wait(10), "the data watch did not follow the session to its new server"
    zk.stop()
    other.sync("/moving")
    assert other.exists("/moving/eph") is None
    other.stop()


def test_a_vanished_client_on_a_follower_expires_through_the_leader(ensemble_factory):
    ens = ensemble_factory(voters=3)
    f = ens.members[ens.followers()[0]]
    raw = jute.RawClient(f.host, f.port)
    raw.handshake(timeout_ms=2000)
    _, _, err, _ = raw.request(jute.CREATE, jute.create_body("/vanish", b"", flags=1))
    assert err == 0
    watcher = client(ens.hosts())
    assert watcher.exists("/vanish") is not None
    raw.close()  # no closeSession: the session must expire
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and watcher.exists("/vanish") is not None:
        time.sleep(0.1)
    assert watcher.exists("/vanish") is None
    watcher.stop()


def test_pings_on_a_follower_keep_a_session_alive(ensemble_factory):
    ens = ensemble_factory(voters=3)
    f = ens.followers()[0]
    zk = only(ens, f, timeout=2.0)
    zk.create("/alive", b"", ephemeral=True)
    session = zk.client_id[0]
    time.sleep(5)  # well past the timeout; kazoo pings the follower only
    # The same session (a reconnect on a slow machine's late ping reply
    # would keep it too; an expiry would not).
    assert zk.retry(zk.exists, "/alive") is not None
    assert zk.client_id[0] == session
    zk.stop()


def test_a_server_without_quorum_stops_serving_and_resumes(ensemble_factory):
    ens = ensemble_factory(voters=3)
    zk = client(ens.hosts())
    zk.create("/quorum", b"kept")
    zk.stop()
    lone = ens.leader()
    for i in range(3):
        if i != lone:
            ens.kill(i)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and ens.members[lone].mode() is not None:
        time.sleep(0.1)
    assert ens.members[lone].mode() is None
    assert "not currently serving" in ens.members[lone].four("srvr")
    back = [i for i in range(3) if i != lone][0]
    ens.start_member(back)
    ens.wait_serving([lone, back])
    zk = client(ens.hosts())
    assert zk.get("/quorum")[0] == b"kept"
    zk.stop()


@CORRALD_ONLY
@ZAB_ONLY
def test_the_same_ensemble_with_a_static_leader(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_args=["--set", "plugins.election=static",
                                                 "--set", "election.static.leader=2"])
    assert ens.members[1].mode() == "leader"
    zk = client(ens.hosts())
    zk.create("/static", b"1")
    ens.kill(0)
    zk.retry(zk.set, "/static", b"2")
    ens.start_member(0)
    assert ens.members[0].mode() == "follower"
    z0 = only(ens, 0)
    z0.sync("/static")
    assert z0.get("/static")[0] == b"2"
    # The leader restarts; followers wait for it and nothing is lost.
    ens.stop_member(1)
    ens.start_member(1)
    assert ens.members[1].mode() == "leader"
    z0.sync("/static")
    assert z0.get("/static")[0] == b"2"
    z0.stop()
    zk.stop()


@CORRALD_ONLY
def test_ensemble_configs_in_the_repository_start_as_written(tmp_path):
    """configs/ensemble-3 runs as shipped, on free ports."""
    import re
    from corral_harness.servers import free_port
    ports = {}
    procs = []

    def port(p):
        return ports.setdefault(p, free_port())

    for i in (1, 2, 3):
        text = (REPO / f"configs/ensemble-3/node{i}.toml").read_text()
        text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{port(m.group(1))}", text)
        text = re.sub(r"(127\.0\.0\.1:\d+):(\d+)\"", lambda m: f'{m.group(1)}:{port(m.group(2))}"', text)
        text = text.replace('data_dir = "data/', f'data_dir = "{tmp_path}/')
        # The secret every member proves itself with, made as the file says.
        secret = tmp_path / "peer.secret"
        if not secret.exists():
            secret.write_text(__import__("secrets").token_urlsafe(32) + "\n")
        assert 'secret_file = "configs/ensemble-3/peer.secret"' in text
        text = text.replace('secret_file = "configs/ensemble-3/peer.secret"', f'secret_file = "{secret}"')
        (tmp_path / f"node{i}.toml").write_text(text)
    import os
    import subprocess
    binary = os.environ.get("CORRALD", str(REPO / "build/kernel/corrald"))
    plugins = os.environ.get("CORRAL_PLUGIN_DIR", str(REPO / "build/plugins"))
    try:
        for i in (1, 2, 3):
            procs.append(subprocess.Popen([binary, "--config", str(tmp_path / f"node{i}.toml"),
                                           "--set", f"server.plugin_dir={plugins}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
        hosts = ",".join(f"127.0.0.1:{port(str(2180 + i))}" for i in (1, 2, 3))
        zk = client(hosts)
        zk.create("/from-configs", b"ok")
        zk.sync("/from-configs")
        assert zk.get("/from-configs")[0] == b"ok"
        zk.stop()
    finally:
        for p in procs:
            p.kill()
            p.wait(10)


def _msgpack_hello(channel, sid):
    # [ "corral-peer", 1, channel, sid ] with small-int encodings only.
    magic = b"corral-peer"
    body = bytes([0x94, 0xc4, len(magic)]) + magic + bytes([1, channel, sid])
    return len(body).to_bytes(4, "big") + body


@CORRALD_ONLY
def test_peer_ports_refuse_strangers_and_garbage_without_harm(ensemble_factory):
    import socket
    ens = ensemble_factory(voters=3)
    m = ens.members[ens.leader()]

    def refused(port, payload):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(payload)
            s.settimeout(5)
            try:
                return s.recv(1) == b""
            except ConnectionResetError:
                return True

    assert refused(m.quorum_port, _msgpack_hello(0, 99))        # not a member
    assert refused(m.quorum_port, _msgpack_hello(0, m.sid))     # claims the server's own id
    assert refused(m.election_port, _msgpack_hello(0, 1 if m.sid != 1 else 2))  # quorum hello, election port
    assert refused(m.quorum_port, b"\x00\x00\x00\x05hello")      # not a hello at all
    assert refused(m.quorum_port, b"\x7f\xff\xff\xff")           # a frame far beyond the limit
    log = m.log_text()
    assert "server id 99 is not a member of this ensemble" in log
    assert "claims this server's own id" in log
    assert "did not open with a Corral peer hello" in log
    # The ensemble is untouched.
    assert ens.members[m.sid - 1].mode() == "leader"
    zk = client(ens.hosts())
    zk.create("/after-strangers", b"ok")
    zk.stop()


@CORRALD_ONLY
def test_read_only_mode_serves_reads_without_a_quorum(ensemble_factory):
    from kazoo.exceptions import NotReadOnlyCallError
    from kazoo.protocol.states import KeeperState

    ens = ensemble_factory(voters=3, extra_args=["--set", "server.read_only_mode=true",
                                                 "--set", "server.admin_address=127.0.0.1:0"])

    def admin_read_only(member):
        # corrald's admin endpoint answers is_read_only as isro does.
        import json
        import re
        import urllib.request
        port = re.findall(r"admin endpoint on http://127\.0\.0\.1:(\d+)/", member.log_text())[-1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/commands/is_read_only", timeout=5) as r:
            return json.load(r)["read_only"]

    writer = KazooClient(hosts=ens.hosts())
    writer.start(timeout=20)
    writer.create("/ro", b"before")
    writer.stop()
    survivor = ens.followers()[0]
    for i in range(3):
        if i != survivor:
            ens.kill(i)
    killed = time.monotonic()
    m = ens.members[survivor]
    deadline = time.time() + 20
    seen = []
    while (answer := m.four("isro")) != "ro" and time.time() < deadline:
        seen.append(answer)
        time.sleep(0.1)
    assert m.four("isro") == "ro"
    # As ZooKeeper's, a member goes read-only only after max(2 s, tickTime)
    # without a leader: one that is starting or between leaders hands out no
    # read-only session to a client that could soon write (isro says "null"
    # meanwhile).
    if TARGET == "corrald":
        assert time.monotonic() - killed >= 1.9
        assert "null" in seen, seen
    if TARGET == "corrald":
        assert admin_read_only(m) is True
    states = []
    ro = KazooClient(hosts=m.address, read_only=True)
    ro.add_listener(states.append)
    ro.start(timeout=20)
    try:
        assert ro.client_state == KeeperState.CONNECTED_RO
        assert ro.get("/ro")[0] == b"before"
        with pytest.raises(NotReadOnlyCallError):
            ro.create("/ro/new")
        with pytest.raises(NotReadOnlyCallError):
            ro.set("/ro", b"x")
        # Without read_only, a client is still refused.
        plain = KazooClient(hosts=m.address)
        with pytest.raises(Exception):
            plain.start(timeout=3)
        plain.stop()
        # The ensemble comes back: the read-only session ends, the client
        # reconnects read-write and writes again.
        for i in range(3):
            if i != survivor:
                ens.start_member(i, wait=False)
        ens.wait_serving(timeout=60)
        deadline = time.time() + 30
        while ro.client_state != KeeperState.CONNECTED and time.time() < deadline:
            time.sleep(0.1)
        assert ro.client_state == KeeperState.CONNECTED, states
        ro.retry(ro.create, "/ro/after", b"rw again")
        assert m.four("isro") == "rw"
        if TARGET == "corrald":
            assert admin_read_only(m) is False
    finally:
        ro.stop()
        ro.close()


# Dynamic reconfiguration, as ZooKeeper 3.5+ does it: enabled in zoo.cfg, and
# only a superuser may change the membership (/zookeeper/config is read-only
# for everyone else). The digest is the one for super:test.
RECONFIG_CFG = ("reconfigEnabled=true\n"
                "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n")


def config_version(data):
    last = data.decode().splitlines()[-1]
    assert last.startswith("version="), data
    return int(last.split("=")[1], 16)


def test_reconfig_adds_a_server_then_removes_the_leader(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_cfg=RECONFIG_CFG)
    follower = ens.followers()[0]
    admin = only(ens, follower, auth_data=[("digest", "super:test")])
    admin.create("/before", b"1")
    changed = threading.Event()
    admin.get("/zookeeper/config", watch=lambda e: changed.set())

    # Add server 4 first, then start it with a zoo.cfg that lists everyone.
    new = ens.add_member()
    m = ens.members[new]
    joining = f"{m.line()};{m.host}:{m.port}"
    data, stat = admin.reconfig(joining=joining, leaving=None, new_members=None)
    lines = data.decode().splitlines()
    assert joining in lines and len(lines) == 5, lines
    assert config_version(data) == stat.mzxid, "the version is the reconfig's own zxid"
    assert changed.wait(10), "a watch on /zookeeper/config fires"
    ens.start_member(new)
    for i in range(4):
        c = only(ens, i)
        c.sync("/")
        assert c.get("/zookeeper/config")[0] == data
        assert c.exists("/before")
        c.stop()
    leader = ens.leader()
    wait_for(lambda: "zk_synced_followers\t3" in ens.members[leader].four("mntr"), what="3 synced followers")
    via_new = only(ens, new)
    via_new.create("/via-new", b"x")
    via_new.stop()

    # Remove the leader: the other three elect one among themselves.
    sid = ens.members[leader].sid
    try:
        data, _ = admin.reconfig(joining=None, leaving=str(sid), new_members=None)
    except ConnectionLoss:
        # The leader may hand over before the reply reaches the client
        # (ZooKeeper's followers reconnect to the new leader); the change is
        # committed all the same, as /zookeeper/config shows below.
        data = None
    rest = [i for i in range(4) if i != leader]
    ens.wait_serving(rest)
    wait_for(lambda: any(ens.members[i].mode() == "leader" for i in rest), what="a leader among the rest")
    after = client(ens.hosts([ens.members[i] for i in rest]))
    after.retry(after.create, "/after-removal", b"1")
    after.sync("/")
    now = after.get("/zookeeper/config")[0]
    assert data in (None, now)
    data = now
    assert not any(line.startswith(f"server.{sid}=") for line in data.decode().splitlines())
    assert len(data.decode().splitlines()) == 4
    if TARGET == "corrald":
        wait_for(lambda: ens.members[leader].mode() is None, what="the removed server to stop serving")  # out of the ensemble, it serves no one
        # A restarted member comes back in the new membership (from its snapshot).
        back = rest[0]
        ens.stop_member(back)
        ens.start_member(back)
        c = only(ens, back)
        c.sync("/")
        assert c.get("/zookeeper/config")[0] == data and c.exists("/after-removal")
        c.stop()
        # The removed server, restarted, says why it cannot take part.
        ens.stop_member(leader)
        ens.start_member(leader, wait=False)
        assert ens.members[leader].proc.wait(30) != 0
        assert "not a member of the ensemble since the reconfig" in ens.members[leader].log_text()
        ens.members[leader].proc = None
    for c in (admin, after):
        c.stop()


@pytest.mark.skipif(TARGET != "corrald", reason="Corral's disaster recovery")
def test_a_survivor_starts_a_new_ensemble_with_everything_it_committed(ensemble_factory):
    flags = {}
    ens = ensemble_factory(voters=3, extra_cfg=RECONFIG_CFG, member_args=lambda m: flags.get(m.sid, []))
    c = client(ens.hosts())
    made = [c.create(f"/dr/n{i:03d}", b"committed", makepath=True) for i in range(100)]
    c.stop()
    survivor = ens.followers()[0]
    s = ens.members[survivor]
    epoch_before = int(s.four("srvr").split("Zxid: ")[1].split()[0], 16) >> 32
    # Two of three lost with their disks: the survivor alone serves no one.
    for i in range(3):
        if i != survivor:
            ens.kill(i)
            shutil.rmtree(ens.members[i].data_dir)
    wait_for(lambda: s.mode() is None, 30, "the survivor to stop serving without a quorum")
    # Started again with --force-new-ensemble: an ensemble of one, in a new
    # epoch, with every write it had.
    ens.stop_member(survivor)
    flags[s.sid] = ["--force-new-ensemble"]
    ens.start_member(survivor)
    assert "FORCING A NEW ENSEMBLE" in s.log_text()
    assert s.mode() == "leader"
    c = only(ens, survivor, auth_data=[("digest", "super:test")])
    assert sorted(c.get_children("/dr")) == sorted(p.rsplit("/", 1)[1] for p in made)
    config = c.get("/zookeeper/config")[0].decode().splitlines()
    assert config[:-1] == [s.line()], config
    c.create("/dr/after", b"in the new ensemble")
    assert c.exists("/dr/after").czxid >> 32 > epoch_before
    wait_for(lambda: "the new ensemble's membership is in the snapshot" in s.log_text(), 30,
             "the new membership kept in a snapshot")
    c.stop()
    # Restarted without the flag, it is still the ensemble of one.
    flags.pop(s.sid)
    ens.stop_member(survivor)
    ens.start_member(survivor)
    assert s.mode() == "leader"
    c = only(ens, survivor)
    assert c.exists("/dr/after") and len(c.get_children("/dr")) == 101
    c.stop()

    # Grown back by reconfig, each lost server started again with an empty
    # data directory. A change needs a quorum of its new voters synced, so
    # the first joins as an observer and is then made a participant (it
    # acknowledges from that change on); with two voters, the second is
    # added as a participant and started, as any new member.
    first, second = [i for i in range(3) if i != survivor]
    f = ens.members[first]
    admin = only(ens, survivor, auth_data=[("digest", "super:test")])

    def add(i):
        m = ens.members[i]
        return admin.reconfig(joining=f"{m.line()};{m.host}:{m.port}", leaving=None, new_members=None)[0]

    ens.rejoin(first, [survivor, first], observer=False)
    with pytest.raises(NewConfigNoQuorumError):
        add(first)  # a participant not yet following: the new voters' quorum is not synced
    ens.rejoin(first, [survivor, first], observer=True)
    add(first)
    ens.start_member(first)
    assert f.mode() == "observer"
    f.observer = False
    add(first)
    wait_for(lambda: f.mode() == "follower", 30, "the observer to follow as a voter")
    assert ("now a voter under server" if RAFT else "made this server a participant; it follows server") \
        in f.log_text()
    ens.rejoin(second, [survivor, first, second], observer=False)
    config = add(second).decode().splitlines()
    ens.start_member(second)
    assert sorted(line.split(";")[0] for line in config[:-1]) == sorted(ens.members[i].line() for i in range(3)), config
    admin.create("/dr/grown", b"three voters again")
    admin.stop()
    # Each of the two applied the change that made three voters (an election
    # counts the membership applied).
    for i in (first, second):
        c = only(ens, i)
        c.sync("/")
        assert sorted(line.split(";")[0] for line in c.get("/zookeeper/config")[0].decode().splitlines()[:-1]) \
            == sorted(ens.members[j].line() for j in range(3))
        c.stop()
    # Three voters again: the survivor's loss is now survived, every write kept.
    ens.kill(survivor)
    rest = [first, second]
    ens.wait_serving(rest)
    c = client(ens.hosts([ens.members[i] for i in rest]))
    c.retry(c.create, "/dr/without-the-survivor", b"1")
    assert len(c.get_children("/dr")) == 103
    c.stop()


def test_reconfig_refusals_change_nothing_and_a_member_becomes_an_observer(ensemble_factory):
    from kazoo.exceptions import (BadArgumentsError, BadVersionError, NewConfigNoQuorumError, NoAuthError)

    from corral_harness.servers import free_port
    ens = ensemble_factory(voters=3, extra_cfg=RECONFIG_CFG)
    # Clients of the leader: the follower made an observer below rejoins,
    # and its clients with it.
    leader = ens.leader()
    anyone = only(ens, leader)
    admin = only(ens, leader, auth_data=[("digest", "super:test")])
    before = anyone.get("/zookeeper/config")[0]
    version = config_version(before)
    with pytest.raises(NoAuthError):
        anyone.reconfig(joining=None, leaving="3", new_members=None)
    with pytest.raises(BadArgumentsError):  # the shape is checked before the ACL
        anyone.reconfig(joining="some thing", leaving=None, new_members=None)
    with pytest.raises(BadVersionError):
        admin.reconfig(joining=None, leaving="3", new_members=None, from_config=version + 1)
    if TARGET == "zookeeper":
        with pytest.raises(BadArgumentsError):  # standaloneEnabled: a single voter would be left
            admin.reconfig(joining=None, leaving="2,3", new_members=None)
    else:
        # An ensemble of one stays an ensemble (ZooKeeper's rule with
        # standaloneEnabled=false), so only no voter at all is refused.
        with pytest.raises(BadArgumentsError):
            admin.reconfig(joining=None, leaving=None, from_config=version,
                           new_members=",".join(m.line().replace(":participant", ":observer") for m in ens.members))
    with pytest.raises(BadArgumentsError):  # no client port
        admin.reconfig(joining=f"server.9=127.0.0.1:{free_port()}:{free_port()}", leaving=None, new_members=None)
    absent = ",".join(f"server.{10 + k}=127.0.0.1:{free_port()}:{free_port()}:participant;127.0.0.1:{free_port()}"
                      for k in range(3))
    with pytest.raises(NewConfigNoQuorumError):  # 6 voters, of which only 3 follow the leader
        admin.reconfig(joining=absent, leaving=None, new_members=None)
    assert anyone.get("/zookeeper/config")[0] == before

    # The whole membership at once: a follower becomes an observer.
    target = ens.followers()[0]
    m3 = ens.members[target]
    members = [m.line() if m is not m3 else m.line().replace(":participant", ":observer") for m in ens.members]
    data, _ = admin.reconfig(joining=None, leaving=None, new_members=",".join(members), from_config=version)
    assert data.decode().splitlines()[:3] == members
    wait_for(lambda: m3.mode() == "observer", what="the follower to rejoin as an observer")
    # conf lists the membership with its version, as a ZooKeeper peer does.
    conf = ens.members[leader].four("conf").splitlines()
    assert "membership: " in conf and all(line in conf for line in data.decode().splitlines()), conf
    assert "peerType=1" in m3.four("conf").splitlines()
    c = only(ens, target)
    c.create("/through-the-observer", b"1")
    assert c.get("/zookeeper/config")[0] == data
    c.stop()
    for c in (anyone, admin):
        c.stop()
