"""The ZooKeeper 3.6+ operations that kazoo 2.8 does not expose, over raw
frames: getAllChildrenNumber, getEphemerals, whoAmI, addWatch (persistent
and recursive), checkWatches/removeWatches, multiRead, reconfig."""
import uuid

import pytest

from corral_harness import jute
from corral_harness.jute import RawClient, Writer

RECONFIG, CHECK_WATCHES, REMOVE_WATCHES, MULTI_READ = 16, 17, 18, 22
AUTH, GET_EPHEMERALS, GET_ALL_CHILDREN_NUMBER, ADD_WATCH, WHO_AM_I = 100, 103, 104, 106, 107
NO_WATCHER, RECONFIG_DISABLED, UNIMPLEMENTED = -121, -123, -6
PERSISTENT, PERSISTENT_RECURSIVE = 0, 1
WATCH_CHILDREN, WATCH_DATA, WATCH_ANY = 1, 2, 3


def session(server):
    c = RawClient(server.host, server.port)
    c.handshake(read_only=False)
    return c


@pytest.fixture
def base(server):
    c = session(server)
    path = f"/op-{uuid.uuid4().hex[:8]}"
    assert c.request(jute.CREATE, jute.create_body(path))[2] == jute.OK
    yield path
    c.close()


def create(c, path, flags=0):
    err = c.request(jute.CREATE, jute.create_body(path, b"d", flags=flags))[2]
    assert err == jute.OK, (path, err)


def test_get_all_children_number_counts_every_descendant(server, base):
    c = session(server)
    for p in ("/a", "/a/b", "/a/b/c", "/d"):
        create(c, base + p)
    _, _, err, r = c.request(GET_ALL_CHILDREN_NUMBER, Writer().string(base).bytes())
    assert err == jute.OK and r.int() == 4
    _, _, err, r = c.request(GET_ALL_CHILDREN_NUMBER, Writer().string(base + "/a/b/c").bytes())
    assert err == jute.OK and r.int() == 0
    assert c.request(GET_ALL_CHILDREN_NUMBER, Writer().string(base + "/nope").bytes())[2] == jute.NO_NODE


def test_get_ephemerals_lists_the_sessions_own(server, base):
    c, other = session(server), session(server)
    create(c, base + "/x")
    create(c, base + "/e1", flags=1)
    create(c, base + "/x/e2", flags=1)
    create(other, base + "/theirs", flags=1)
    _, _, err, r = c.request(GET_EPHEMERALS, Writer().string(base).bytes())
    assert err == jute.OK and sorted(r.strings()) == [base + "/e1", base + "/x/e2"]
    _, _, err, r = c.request(GET_EPHEMERALS, Writer().string(base + "/x").bytes())
    assert err == jute.OK and r.strings() == [base + "/x/e2"]


def test_who_am_i_reports_the_connections_identities(server):
    c = session(server)
    _, _, err, r = c.request(WHO_AM_I)
    assert err == jute.OK
    infos = [(r.string(), r.string()) for _ in range(r.int())]
    assert infos == [("ip", "127.0.0.1")]
    auth = Writer().int(0).string("digest").buffer(b"alice:secret").bytes()
    assert c.request(AUTH, auth, xid=-4)[2] == jute.OK
    _, _, err, r = c.request(WHO_AM_I)
    infos = [(r.string(), r.string()) for _ in range(r.int())]
    assert ("digest", "alice") in infos and ("ip", "127.0.0.1") in infos


def test_persistent_watch_fires_every_time_and_stays(server, base):
    w, c = session(server), session(server)
    create(c, base + "/p")
    _, _, err, r = w.request(ADD_WATCH, Writer().string(base + "/p").int(PERSISTENT).bytes())
    assert err == jute.OK
    c.request(jute.SET_DATA, jute.set_data_body(base + "/p", b"1"))
    c.request(jute.SET_DATA, jute.set_data_body(base + "/p", b"2"))
    create(c, base + "/p/child")
    c.request(jute.DELETE, jute.delete_body(base + "/p/child"))
    events = w.wait_events(4)
    assert [(t, p) for t, _, p in events] == [
        (jute.NODE_DATA_CHANGED, base + "/p"), (jute.NODE_DATA_CHANGED, base + "/p"),
        (jute.NODE_CHILDREN_CHANGED, base + "/p"), (jute.NODE_CHILDREN_CHANGED, base + "/p")]


def test_recursive_watch_sees_descendants_but_not_child_lists(server, base):
    w, c = session(server), session(server)
    assert w.request(ADD_WATCH, Writer().string(base).int(PERSISTENT_RECURSIVE).bytes())[2] == jute.OK
    create(c, base + "/r")
    create(c, base + "/r/deep")
    c.request(jute.SET_DATA, jute.set_data_body(base + "/r/deep", b"x"))
    c.request(jute.DELETE, jute.delete_body(base + "/r/deep"))
    events = w.wait_events(4)
    assert [(t, p) for t, _, p in events] == [
        (jute.NODE_CREATED, base + "/r"), (jute.NODE_CREATED, base + "/r/deep"),
        (jute.NODE_DATA_CHANGED, base + "/r/deep"), (jute.NODE_DELETED, base + "/r/deep")]


def test_check_and_remove_watches(server, base):
    c = session(server)
    create(c, base + "/w")
    body = lambda kind: Writer().string(base + "/w").int(kind).bytes()  # noqa: E731
    assert c.request(CHECK_WATCHES, body(WATCH_DATA))[2] == NO_WATCHER
    assert c.request(REMOVE_WATCHES, body(WATCH_ANY))[2] == NO_WATCHER
    c.request(jute.GET_DATA, jute.path_watch(base + "/w", watch=True))
    assert c.request(CHECK_WATCHES, body(WATCH_DATA))[2] == jute.OK
    assert c.request(CHECK_WATCHES, body(WATCH_CHILDREN))[2] == NO_WATCHER
    assert c.request(REMOVE_WATCHES, body(WATCH_DATA))[2] == jute.OK
    assert c.request(CHECK_WATCHES, body(WATCH_DATA))[2] == NO_WATCHER
    # A removed watch no longer fires.
    other = session(server)
    other.request(jute.SET_DATA, jute.set_data_body(base + "/w", b"x"))
    assert c.request(jute.EXISTS, jute.path_watch(base + "/w"))[2] == jute.OK
    assert c.events == []


def test_multi_read_runs_every_read_and_reports_each(server, base):
    c = session(server)
    create(c, base + "/m")
    create(c, base + "/m/kid")
    ops = (Writer()
           .int(jute.GET_DATA).bool(False).int(-1).raw(jute.path_watch(base + "/m"))
           .int(jute.GET_DATA).bool(False).int(-1).raw(jute.path_watch(base + "/missing"))
           .int(jute.GET_CHILDREN).bool(False).int(-1).raw(jute.path_watch(base + "/m"))
           .int(-1).bool(True).int(-1).bytes())
    _, _, err, r = c.request(MULTI_READ, ops)
    assert err == jute.OK
    t, done, e = r.int(), r.bool(), r.int()
    assert (t, done, e) == (jute.GET_DATA, False, 0)
    assert r.buffer() == b"d" and r.stat()["numChildren"] == 1
    t, done, e = r.int(), r.bool(), r.int()
    assert (t, done, e) == (-1, False, jute.NO_NODE) and r.int() == jute.NO_NODE
    t, done, e = r.int(), r.bool(), r.int()
    assert (t, done, e) == (jute.GET_CHILDREN, False, 0) and r.strings() == ["kid"]
    assert (r.int(), r.bool(), r.int()) == (-1, True, -1)


def test_reconfig_is_disabled_on_a_standalone_server(server):
    c = session(server)
    body = Writer().string(None).string(None).string(None).long(-1).bytes()
    assert c.request(RECONFIG, body)[2] == RECONFIG_DISABLED


def test_reconfig_enabled_on_a_standalone_server_is_unimplemented(server_factory):
    # As a standalone ZooKeeper with reconfigEnabled=true answers; an
    # ensemble changes its membership (test_ensemble.py).
    from corral_harness.servers import TARGET
    if TARGET != "corrald":
        pytest.skip("sets a corrald option")
    srv = server_factory(extra_args=["--set", "ensemble.reconfig_enabled=true"])
    c = session(srv)
    body = Writer().string(None).string(None).string("server.1=a:1:2;3").long(-1).bytes()
    assert c.request(RECONFIG, body)[2] == UNIMPLEMENTED
