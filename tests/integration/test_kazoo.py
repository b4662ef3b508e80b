"""Client-level behaviour through kazoo (and the raw client where kazoo
cannot express it). Every expectation was checked against Apache ZooKeeper."""
import re
import threading
import time
import uuid

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (BadVersionError, NoChildrenForEphemeralsError,
                              NodeExistsError, NoNodeError, NotEmptyError,
                              RolledBackError, RuntimeInconsistency)
from kazoo.protocol.states import EventType

from corral_harness import jute

FAST_RETRY = {"max_tries": -1, "delay": 0.05, "backoff": 1,
              "max_jitter": 0, "max_delay": 0.1}


def connect(hosts, timeout=10.0, **kw):
    client = KazooClient(hosts=hosts, timeout=timeout,
                         connection_retry=FAST_RETRY, **kw)
    client.start(timeout=15)
    return client


def close(client):
    client.stop()
    client.close()


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Events:
    """Collects watch events; usable as a kazoo watch callback."""

    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def __call__(self, event):
        with self.cond:
            self.items.append(event)
            self.cond.notify_all()

    def wait(self, count=1, timeout=10.0):
        with self.cond:
            self.cond.wait_for(lambda: len(self.items) >= count, timeout)
            return list(self.items)


@pytest.fixture(scope="module")
def zk(server):
    client = connect(server.hosts)
    yield client
    close(client)


@pytest.fixture
def other(server):
    client = connect(server.hosts)
    yield client
    close(client)


@pytest.fixture
def base(zk, request):
    """A fresh top-level node unique to the test."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)
    path = f"/{name}-{uuid.uuid4().hex[:8]}"
    zk.create(path)
    return path


def test_create_get_set_delete(zk, base):
    p = base + "/n"
    assert zk.create(p, b"hello") == p
    data, stat = zk.get(p)
    assert data == b"hello" and stat.version == 0
    stat = zk.set(p, b"world")
    assert stat.version == 1
    assert zk.get(p)[0] == b"world"
    zk.delete(p)
    assert zk.exists(p) is None
    with pytest.raises(NoNodeError):
        zk.get(p)


def test_get_children(zk, base):
    assert zk.get_children(base) == []
    for name in ("b", "a", "c"):
        zk.create(f"{base}/{name}", name.encode())
    zk.create(f"{base}/a/deeper")
    assert sorted(zk.get_children(base)) == ["a", "b", "c"]
    children, stat = zk.get_children(base, include_data=True)
    assert sorted(children) == ["a", "b", "c"]
    assert stat.numChildren == 3 and stat.cversion == 3
    assert zk.get_children("/") and base[1:] in zk.get_children("/")


def test_stat_of_new_node(zk, base):
    before_ms = int(time.time() * 1000)
    zk.create(base + "/n", b"12345")
    st = zk.exists(base + "/n")
    assert (st.version, st.cversion, st.aversion) == (0, 0, 0)
    assert (st.dataLength, st.numChildren, st.ephemeralOwner) == (5, 0, 0)
    assert st.czxid == st.mzxid == st.pzxid > 0
    assert st.ctime == st.mtime
    assert abs(st.ctime - before_ms) < 60_000
    assert zk.get(base + "/n")[1] == st


def test_stat_after_set(zk, base):
    p = base + "/n"
    zk.create(p, b"abc")
    st0 = zk.exists(p)
    st1 = zk.set(p, b"")
    assert st1.version == 1 and st1.dataLength == 0
    assert st1.mzxid > st1.czxid == st0.czxid
    assert st1.pzxid == st0.pzxid == st0.czxid  # data changes leave pzxid
    assert st1.mtime >= st1.ctime == st0.ctime
    assert (st1.cversion, st1.aversion) == (0, 0)
    st2 = zk.set(p, b"xy", version=1)
    assert st2.version == 2 and st2.dataLength == 2 and st2.mzxid > st1.mzxid
    assert zk.exists(p) == st2


def test_stat_parent_on_child_create_and_delete(zk, base):
    p0 = zk.exists(base)
    zk.create(base + "/c", b"x")
    child = zk.exists(base + "/c")
    p1 = zk.exists(base)
    assert p1.numChildren == 1 and p1.cversion == p0.cversion + 1 == 1
    assert p1.pzxid == child.czxid > p0.pzxid
    assert (p1.mzxid, p1.version, p1.mtime) == (p0.mzxid, p0.version, p0.mtime)

    zk.set(base + "/c", b"y")  # a child's data change is not a child change
    assert zk.exists(base) == p1

    zk.delete(base + "/c")
    p2 = zk.exists(base)
    # delete bumps cversion and sets pzxid to the delete's own zxid
    assert p2.numChildren == 0 and p2.cversion == 2
    assert p2.pzxid > child.czxid and p2.mzxid == p0.mzxid
    zk.create(base + "/next")  # the very next transaction
    assert p2.pzxid == zk.exists(base + "/next").czxid - 1


def test_ephemeral_owner(zk, base):
    zk.create(base + "/e", ephemeral=True)
    st = zk.exists(base + "/e")
    assert st.ephemeralOwner == zk.client_id[0] != 0
    assert zk.exists(base).ephemeralOwner == 0


def test_sequential_names(zk, base):
    def seq(prefix, **kw):
        return zk.create(f"{base}/{prefix}", sequence=True, **kw)

    assert seq("s-") == f"{base}/s-0000000000"
    zk.create(base + "/plain")
    assert seq("s-") == f"{base}/s-0000000002"
    zk.delete(base + "/plain")
    zk.delete(base + "/s-0000000000")
    # the counter counts child creations only; deletes bump the reported
    # cversion (creations + deletions) but not the sequence number
    assert zk.exists(base).cversion == 5
    assert seq("s-") == f"{base}/s-0000000003"
    assert seq("") == f"{base}/0000000004"
    assert seq("e-", ephemeral=True) == f"{base}/e-0000000005"
    st = zk.exists(base)
    assert (st.cversion, st.numChildren) == (8, 4)  # 2*creates - children
    assert sorted(zk.get_children(base)) == [
        "0000000004", "e-0000000005", "s-0000000002", "s-0000000003"]


def test_errors(zk, base):
    p = base + "/n"
    zk.create(p, b"v")
    with pytest.raises(NodeExistsError):
        zk.create(p)
    with pytest.raises(NoNodeError):
        zk.create(base + "/missing/child")
    with pytest.raises(NoNodeError):
        zk.set(base + "/missing", b"")
    with pytest.raises(NoNodeError):
        zk.delete(base + "/missing")
    with pytest.raises(NoNodeError):
        zk.get_children(base + "/missing")
    with pytest.raises(BadVersionError):
        zk.set(p, b"x", version=3)
    with pytest.raises(BadVersionError):
        zk.delete(p, version=1)
    zk.create(p + "/child")
    with pytest.raises(NotEmptyError):
        zk.delete(p)
    zk.create(base + "/eph", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(base + "/eph/child")
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(base + "/eph/child", ephemeral=True, sequence=True)
    # nothing above changed the node
    data, st = zk.get(p)
    assert data == b"v" and st.version == 0 and st.numChildren == 1
    zk.delete(p + "/child", version=0)
    zk.delete(p, version=0)
    assert zk.exists(p) is None


def test_ephemeral_gone_after_close(server, zk, base):
    owner = connect(server.hosts)
    sid = owner.client_id[0]
    owner.create(base + "/e", b"x", ephemeral=True)
    assert zk.exists(base + "/e").ephemeralOwner == sid
    assert zk.exists(base).numChildren == 1
    close(owner)
    assert zk.exists(base + "/e") is None
    assert zk.exists(base).numChildren == 0


def test_ephemeral_gone_after_session_expiry(server_factory, proxy_factory):
    srv = server_factory(tick_ms=200)  # sessions may be as short as 400 ms
    proxy = proxy_factory(srv)
    observer = connect(srv.hosts)
    owner = connect(proxy.hosts, timeout=1.0)
    states = []
    owner.add_listener(states.append)
    try:
        owner.create("/expiring", ephemeral=True)
        assert observer.exists("/expiring").ephemeralOwner == owner.client_id[0]
        proxy.pause()  # owner can no longer reach the server
        assert wait_for(lambda: observer.exists("/expiring") is None, 10)
        proxy.resume()  # on reconnect the server reports the session expired
        assert wait_for(lambda: KazooState.LOST in states, 10)
    finally:
        close(owner)
        close(observer)


def test_data_watch_fires_once(zk, other, base):
    p = base + "/w"
    zk.create(p, b"0")
    events = Events()
    zk.get(p, watch=events)
    other.set(p, b"1")
    other.set(p, b"2")
    got = events.wait(1)
    time.sleep(0.3)
    assert len(events.items) == 1
    assert (got[0].type, got[0].path) == (EventType.CHANGED, p)

    deleted = Events()
    zk.exists(p, watch=deleted)
    other.delete(p)
    got = deleted.wait(1)
    assert [(e.type, e.path) for e in got] == [(EventType.DELETED, p)]


def test_child_watch_fires_once(zk, other, base):
    events = Events()
    assert zk.get_children(base, watch=events) == []
    other.create(base + "/a")
    other.create(base + "/b")
    got = events.wait(1)
    time.sleep(0.3)
    assert len(events.items) == 1
    assert (got[0].type, got[0].path) == (EventType.CHILD, base)

    events = Events()
    zk.get_children(base, watch=events)
    other.set(base + "/a", b"data")  # not a child change
    other.delete(base + "/a")
    got = events.wait(1)
    assert [(e.type, e.path) for e in got] == [(EventType.CHILD, base)]


def test_exists_watch_on_missing_node(zk, other, base):
    p = base + "/later"
    events = Events()
    assert zk.exists(p, watch=events) is None
    other.create(p)
    other.set(p, b"x")
    events.wait(1)
    time.sleep(0.3)
    assert [(e.type, e.path) for e in events.items] == [(EventType.CREATED, p)]


def test_transaction_commits(zk, base):
    zk.create(base + "/gone")
    t = zk.transaction()
    t.create(base + "/a", b"1")
    t.set_data(base, b"parent", version=0)
    t.check(base, 1)
    t.delete(base + "/gone")
    results = t.commit()
    assert results[0] == base + "/a"
    assert results[1].version == 1 and results[1].dataLength == 6
    assert results[2:] == [True, True]
    a, parent = zk.exists(base + "/a"), zk.exists(base)
    assert a.czxid == parent.mzxid == parent.pzxid  # one transaction, one zxid
    assert zk.exists(base + "/gone") is None


def test_transaction_rolls_back(zk, base):
    zk.create(base + "/keep", b"k")
    before = zk.exists(base)
    t = zk.transaction()
    t.create(base + "/new")
    t.delete(base + "/keep")
    t.check(base, 7)  # wrong version
    t.set_data(base, b"nope")
    results = t.commit()
    assert [type(r) for r in results] == [
        RolledBackError, RolledBackError, BadVersionError, RuntimeInconsistency]
    assert zk.exists(base + "/new") is None
    assert zk.get(base + "/keep")[0] == b"k"
    assert zk.exists(base) == before


def test_sync(zk, other, base):
    other.create(base + "/s", b"x")
    assert zk.sync(base) == base
    assert zk.get(base + "/s")[0] == b"x"


def test_session_survives_connection_drop(server, proxy_factory, zk, base):
    proxy = proxy_factory(server)
    client = connect(proxy.hosts)
    states = []
    client.add_listener(states.append)
    try:
        sid = client.client_id[0]
        client.create(base + "/e", ephemeral=True)
        proxy.drop()
        assert wait_for(lambda: states[-2:] == [KazooState.SUSPENDED,
                                                KazooState.CONNECTED])
        assert client.client_id[0] == sid
        assert KazooState.LOST not in states
        assert zk.exists(base + "/e").ephemeralOwner == sid
        client.set(base + "/e", b"still mine")
        assert zk.get(base + "/e")[0] == b"still mine"
    finally:
        close(client)
    assert zk.exists(base + "/e") is None


def test_watches_restored_on_reconnect(server, zk, base):
    """SetWatches: kazoo drops its watches on disconnect, so use the raw
    client, which resumes its session and re-registers them like the Java
    and C clients do."""
    d, m, c, u = (base + x for x in ("/data", "/missing", "/kids", "/same"))
    for p in (d, c, u):
        zk.create(p)
    raw = jute.RawClient(server.host, server.port)
    raw.handshake(timeout_ms=10000)
    assert raw.request(jute.GET_DATA, jute.path_watch(d, True))[2] == jute.OK
    assert raw.request(jute.GET_DATA, jute.path_watch(u, True))[2] == jute.OK
    assert raw.request(jute.EXISTS, jute.path_watch(m, True))[2] == jute.NO_NODE
    assert raw.request(jute.GET_CHILDREN, jute.path_watch(c, True))[2] == jute.OK
    sid, passwd, zxid = raw.session_id, raw.passwd, raw.last_zxid
    raw.close()  # drop the connection, not the session

    zk.set(d, b"changed")
    zk.create(m)
    zk.create(c + "/child")

    raw = jute.RawClient(server.host, server.port)
    resp = raw.handshake(timeout_ms=10000, session_id=sid, passwd=passwd,
                         last_zxid=zxid)
    assert resp["sessionId"] == sid and resp["timeOut"] == 10000
    xid, _, err, _ = raw.request(
        jute.SET_WATCHES, jute.set_watches_body(zxid, [d, u], [m], [c]),
        xid=jute.SET_WATCHES_XID)
    assert (xid, err) == (jute.SET_WATCHES_XID, jute.OK)
    events = raw.wait_events(3, timeout=5)
    assert sorted((t, p) for t, _, p in events) == sorted([
        (jute.NODE_CREATED, m), (jute.NODE_DATA_CHANGED, d),
        (jute.NODE_CHILDREN_CHANGED, c)])
    assert {state for _, state, _ in events} == {3}  # SyncConnected
    # the unchanged node's watch is still armed and fires once on change
    zk.set(u, b"now")
    events = raw.wait_events(4, timeout=5)
    assert events[3][0::2] == (jute.NODE_DATA_CHANGED, u)
    raw.request(jute.CLOSE_SESSION)
    raw.close()


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_data_and_session_survive_restart(server_factory, how):
    srv = server_factory()
    if "storage:memory" in srv.four("envi"):
        pytest.skip("the memory storage plugin keeps nothing across restarts")
    client = connect(srv.hosts)
    states = []
    client.add_listener(states.append)
    try:
        sid = client.client_id[0]
        client.create("/durable/child", b"payload", makepath=True)
        client.set("/durable/child", b"payload2")
        client.create("/durable/eph", ephemeral=True)
        before = client.get("/durable/child")
        getattr(srv, how)()  # SIGKILL, or a clean shutdown
        srv.start()
        assert wait_for(lambda: KazooState.SUSPENDED in states and
                        states[-1] == KazooState.CONNECTED, 20)
        assert client.client_id[0] == sid and KazooState.LOST not in states
        assert client.get("/durable/child") == before
        assert client.exists("/durable/eph").ephemeralOwner == sid
        client.create("/durable/after")
        assert client.exists("/durable/after").czxid > before[1].mzxid
    finally:
        close(client)


def test_large_data(zk, base):
    big = bytes(range(256)) * 4092  # 1 MiB - 1 KiB: fits in jute.maxbuffer
    zk.create(base + "/big", big)
    data, st = zk.get(base + "/big")
    assert data == big and st.dataLength == len(big)
    st = zk.set(base + "/big", big[::-1])
    assert zk.get(base + "/big")[0] == big[::-1] and st.version == 1


def _kv(text, sep):
    return dict(line.split(sep, 1) for line in text.splitlines() if sep in line)


def test_four_letter_words(server, zk, base):
    assert server.four("ruok") == "imok"
    assert server.four("isro") == "rw"
    for word in ("srvr", "stat"):
        text = server.four(word)
        assert text.startswith("Zookeeper version: "), text
        assert "\nMode: standalone\n" in text
        assert re.search(r"^Node count: \d+$", text, re.M)
    assert "\nClients:\n" in server.four("stat")
    envi = server.four("envi")
    assert envi.startswith("Environment:\n")
    assert re.search(r"^zookeeper\.version=\S", envi, re.M)
    conf = _kv(server.four("conf"), "=")
    assert conf["clientPort"] == str(server.port)

    mntr = _kv(server.four("mntr"), "\t")
    assert mntr["zk_version"] and mntr["zk_server_state"] == "standalone"
    count = int(mntr["zk_znode_count"])
    zk.create(base + "/counted")
    assert int(_kv(server.four("mntr"), "\t")["zk_znode_count"]) == count + 1


def test_null_data_stays_null(zk, base):
    zk.create(base + "/null", None)
    data, st = zk.get(base + "/null")
    assert data is None and st.dataLength == 0
    zk.set(base + "/null", b"x")
    assert zk.get(base + "/null")[0] == b"x"
    zk.set(base + "/null", None)
    assert zk.get(base + "/null")[0] is None
    zk.create(base + "/empty", b"")
    assert zk.get(base + "/empty")[0] == b""
