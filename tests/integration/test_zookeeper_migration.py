"""Moving data between Apache ZooKeeper and Corral: `corral import zookeeper`
and `corral export zookeeper`, with the real servers.

A ZooKeeper 3.8 (Debian's) is loaded by a workload — sequential, ephemeral,
container and TTL nodes, ACLs, quotas, multis that commit and one that fails,
deletes, closed sessions — with snapshots taken while it writes (snapCount
small, so the newest snapshot is fuzzy and the logs after it replayed), in
each of ZooKeeper's snapshot encodings (plain, gzip, snappy). It is killed,
imported, and started as Corral: a full listing of every znode (path, data,
ACL, every stat field) is identical, and a client that held a session on
ZooKeeper carries on with it on Corral, its ephemerals still there and its
sequential names continuing where ZooKeeper left off. Then the way back:
Corral's data exported and started as ZooKeeper, the same listing again.
"""
import base64
import hashlib
import os
import subprocess

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl, make_acl

from corral_harness.servers import REPO, Server, _live_servers, wait_for

CLI = os.environ.get("CORRAL_CLI", str(REPO / "build/cli/corral"))
SUPER = "super:" + base64.b64encode(hashlib.sha1(b"super:secret").digest()).decode()
STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeralOwner", "dataLength", "numChildren", "pzxid")


def client(hosts, **kw):
    c = KazooClient(hosts=hosts, timeout=10.0, auth_data=[("digest", "super:secret")], **kw)
    c.start(timeout=15)
    return c


def listing(hosts):
    """Every znode: path -> (data, ACL, stat), read as the superuser."""
    c = client(hosts)
    try:
        out, todo = {}, ["/"]
        while todo:
            path = todo.pop()
            data, stat = c.get(path)
            acl, _ = c.get_acls(path)
            out[path] = (data, sorted((a.perms, a.id.scheme, a.id.id) for a in acl),
                         tuple(getattr(stat, f) for f in STAT_FIELDS))
            todo += [(path.rstrip("/") + "/" + ch) for ch in c.get_children(path)]
        return out
    finally:
        c.stop()
        c.close()


def diff(a, b):
    lines = []
    for p in sorted(set(a) | set(b)):
        if a.get(p) != b.get(p):
            lines.append(f"{p}:\n  before {a.get(p)}\n  after  {b.get(p)}")
    return "\n".join(lines[:20])


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


def workload(zk_server, keeper):
    """Writes of every kind, some concurrent with ZooKeeper's snapshots."""
    c = client(zk_server.hosts)
    try:
        alice = make_digest_acl("alice", "pw", all=True)
        c.create("/app", b"root of the app")
        c.create("/app/secret", b"only alice", acl=[alice, make_acl("world", "anyone", read=True)])
        c.create("/app/nulls")
        c.set_acls("/app/nulls", [make_acl("world", "anyone", all=True)])
        c.create("/seq")
        for i in range(14):
            c.create("/seq/job-", str(i).encode(), sequence=True)
        for name in sorted(c.get_children("/seq"))[:5]:
            c.delete("/seq/" + name)
        # Concurrent creates and sets: snapshots (every few dozen writes)
        # happen while they are applied.
        c.create("/bulk")
        results = [c.create_async(f"/bulk/n{i:04d}", b"x" * (i % 50)) for i in range(400)]
        for r in results:
            r.get(timeout=30)
        sets = [c.set_async(f"/bulk/n{i:04d}", b"changed") for i in range(0, 400, 3)]
        for r in sets:
            r.get(timeout=30)
        dels = [c.delete_async(f"/bulk/n{i:04d}") for i in range(0, 400, 7)]
        for r in dels:
            r.get(timeout=30)
        # Multis: one that commits, one that fails as a whole.
        t = c.transaction()
        t.create("/app/multi-a", b"a")
        t.set_data("/app", b"changed by a multi")
        t.delete("/seq/" + sorted(c.get_children("/seq"))[0])
        assert all(not isinstance(r, Exception) for r in t.commit())
        t = c.transaction()
        t.create("/app/never", b"n")
        t.check("/app", 99)
        assert any(isinstance(r, Exception) for r in t.commit())
        # A session that ends: its ephemerals go with it (closeSession).
        gone = client(zk_server.hosts)
        gone.create("/app/gone-ephemeral", ephemeral=True)
        gone.stop()
        gone.close()
        # The session that carries on: ephemerals, plain and sequential.
        keeper.create("/app/live", b"held", ephemeral=True)
        keeper.create("/seq/eph-", b"e", ephemeral=True, sequence=True)
        # A quota on /bulk, as zkCli's setquota writes it.
        c.create("/zookeeper/quota/bulk/zookeeper_limits", b"count=1000,bytes=-1", makepath=True)
        c.create("/zookeeper/quota/bulk/zookeeper_stats", b"count=0,bytes=0")
        c.set("/bulk/n0001", b"after the quota")
    finally:
        c.stop()
        c.close()
    # Container and TTL nodes, through the CLI (kazoo has no such modes).
    corral("-s", zk_server.hosts, "create", "-c", "/box")
    corral("-s", zk_server.hosts, "create", "/box/item", "in a container")
    corral("-s", zk_server.hosts, "create", "-t", "3600000", "/ttl-node", "lives an hour")


@pytest.mark.parametrize("compression", ["", "gz", "snappy"])
def test_zookeeper_to_corral_and_back(tmp_path, compression, started):
    props = ["-Dzookeeper.snapCount=40",
             f"-Dzookeeper.snapshot.compression.method={compression}"]
    zk = Server(tmp_path / "zookeeper", target="zookeeper", super_digest=SUPER,
                extended_types=True, zk_properties=props)
    _live_servers.append(zk)
    started.append(zk)
    zk.start()
    states = []
    keeper = KazooClient(hosts=zk.hosts, timeout=30.0,
                         connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5})
    keeper.add_listener(states.append)
    keeper.start(timeout=15)
    try:
        workload(zk, keeper)
        before = listing(zk.hosts)
        session = keeper.client_id
        snaps = sorted(p.name for p in (zk.data_dir / "version-2").glob("snapshot.*"))
        logs = sorted(p.name for p in (zk.data_dir / "version-2").glob("log.*"))
        assert len(snaps) >= 2 and logs, (snaps, logs)
        if compression:
            assert all(s.endswith("." + compression) for s in snaps[1:]), snaps
        # A crash, not a clean stop: the log's tail is what is left.
        zk.kill()

        data = tmp_path / "corral-data"
        out = corral("import", "zookeeper", "--from", str(zk.data_dir), "--to", str(data)).stderr
        assert "imported" in out and "entries replayed" in out, out
        # Importing over existing data is refused, and changes nothing.
        again = corral("import", "zookeeper", "--from", str(zk.data_dir), "--to", str(data), check=1)
        assert "already holds Corral data" in again.stderr

        corral_srv = Server(tmp_path / "corral", target="corrald", super_digest=SUPER,
                            extended_types=True, data_dir=data, port=zk.port)
        _live_servers.append(corral_srv)
        started.append(corral_srv)
        corral_srv.start()
        after = listing(corral_srv.hosts)
        assert before == after, diff(before, after)

        # The client that held a session on ZooKeeper carries on with it.
        wait_for(lambda: keeper.connected, 30, "the ZooKeeper client to reconnect to Corral")
        assert keeper.client_id == session
        assert "LOST" not in [str(s) for s in states], states
        assert keeper.exists("/app/live").ephemeralOwner == session[0]
        # Sequential names go on from the children ever created under the
        # parent, as on ZooKeeper (clients see cversion = created + deleted).
        st = keeper.exists("/seq")
        created = (st.cversion + st.numChildren) // 2
        made = keeper.create("/seq/job-", b"on corral", sequence=True)
        assert made == f"/seq/job-{created:010d}", (made, st)
        # And zxids from ZooKeeper's.
        assert keeper.exists("/seq/" + made.rsplit("/", 1)[1]).czxid > max(s[2][0] for s in before.values())
        keeper.stop()
        keeper.close()
        corral_srv.stop()

        # The way back: Corral's data as a ZooKeeper snapshot.
        with_corral = listing_from(corral_srv)
        zk_back = tmp_path / "zookeeper-back"
        out = corral("export", "zookeeper", "--from", str(data), "--to", str(zk_back)).stderr
        assert "exported" in out, out
        zk2 = Server(tmp_path / "zookeeper2", target="zookeeper", super_digest=SUPER,
                     extended_types=True, data_dir=zk_back)
        _live_servers.append(zk2)
        started.append(zk2)
        zk2.start()
        back = listing(zk2.hosts)
        assert with_corral == back, diff(with_corral, back)
        zk2.stop()
    finally:
        keeper.stop()
        keeper.close()


def listing_from(srv):
    srv.start()
    try:
        return listing(srv.hosts)
    finally:
        srv.stop()
