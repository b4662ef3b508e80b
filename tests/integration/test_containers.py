"""Container and TTL nodes (createContainer, createTTL) and their cleanup,
with ZooKeeper's rules for modes, TTL bounds and extended types."""
import time

import pytest

from corral_harness import jute
from corral_harness.jute import RawClient, Writer

CREATE_CONTAINER, DELETE_CONTAINER, CREATE_TTL = 19, 20, 21
UNIMPLEMENTED = -6
CHECK_MS = 100


def session(server):
    c = RawClient(server.host, server.port)
    c.handshake(read_only=False)
    return c


def create(c, op, path, flags=0, ttl=None):
    w = Writer().string(path).buffer(b"d").acls(jute.WORLD_ANYONE_ALL).int(flags)
    if ttl is not None:
        w.long(ttl)
    _, _, err, r = c.request(op, w.bytes())
    if err == jute.OK and op != jute.CREATE:
        return err, r.string(), r.stat()
    return err, None, None


def gone(c, path, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.request(jute.EXISTS, jute.path_watch(path))[2] == jute.NO_NODE:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from corral_harness.servers import DEFAULT_TICK_MS, _started, _teardown
    s = _started(tmp_path_factory, DEFAULT_TICK_MS, extended_types=True, container_check_ms=CHECK_MS)
    yield s
    _teardown(s)


def test_a_container_goes_once_its_last_child_does(srv):
    c = session(srv)
    err, path, stat = create(c, CREATE_CONTAINER, "/box", flags=4)
    assert err == jute.OK and path == "/box" and stat["ephemeralOwner"] == 0
    assert create(c, CREATE_CONTAINER, "/never-used", flags=4)[0] == jute.OK
    assert create(c, jute.CREATE, "/box/item")[0] == jute.OK
    time.sleep(3 * CHECK_MS / 1000)
    assert c.request(jute.EXISTS, jute.path_watch("/box"))[2] == jute.OK  # not empty yet
    assert c.request(jute.DELETE, jute.delete_body("/box/item"))[2] == jute.OK
    assert gone(c, "/box")
    # A container that never had children stays.
    assert c.request(jute.EXISTS, jute.path_watch("/never-used"))[2] == jute.OK
    # Clients cannot delete containers through the server's own operation.
    assert c.request(DELETE_CONTAINER, Writer().string("/never-used").bytes())[2] == jute.BAD_ARGUMENTS


def test_container_modes_through_plain_create(srv):
    c = session(srv)
    # create with the container mode makes a plain node, which stays.
    assert create(c, jute.CREATE, "/plain", flags=4)[0] == jute.OK
    assert create(c, jute.CREATE, "/plain/k")[0] == jute.OK
    assert c.request(jute.DELETE, jute.delete_body("/plain/k"))[2] == jute.OK
    time.sleep(3 * CHECK_MS / 1000)
    assert c.request(jute.EXISTS, jute.path_watch("/plain"))[2] == jute.OK
    assert create(c, CREATE_CONTAINER, "/ttl-box", flags=6)[0] == jute.BAD_ARGUMENTS


def test_ttl_nodes_expire_when_idle_and_childless(srv):
    c = session(srv)
    err, path, stat = create(c, CREATE_TTL, "/ttl", flags=5, ttl=1000)
    assert err == jute.OK and stat["ephemeralOwner"] == 0
    assert create(c, jute.CREATE, "/ttl/child")[0] == jute.OK  # (well within its TTL)
    err, path, _ = create(c, CREATE_TTL, "/seq-", flags=6, ttl=400)
    assert err == jute.OK and path.startswith("/seq-00")
    assert gone(c, path)
    time.sleep(1.2)
    assert c.request(jute.EXISTS, jute.path_watch("/ttl"))[2] == jute.OK  # has a child
    assert c.request(jute.DELETE, jute.delete_body("/ttl/child"))[2] == jute.OK
    assert gone(c, "/ttl")


@pytest.mark.parametrize("op, flags, ttl, err", [
    (CREATE_TTL, 0, 5, jute.BAD_ARGUMENTS),        # not a TTL mode
    (CREATE_TTL, 1, 5, jute.BAD_ARGUMENTS),
    (CREATE_TTL, 5, 0, jute.BAD_ARGUMENTS),        # TTL out of range
    (CREATE_TTL, 5, -1, jute.BAD_ARGUMENTS),
    (CREATE_TTL, 5, 1 << 40, jute.BAD_ARGUMENTS),
    (CREATE_TTL, 5, (1 << 40) - 1, jute.OK),
    (jute.CREATE, 5, None, jute.BAD_ARGUMENTS),    # TTL mode without createTTL
])
def test_ttl_rules(srv, op, flags, ttl, err):
    c = session(srv)
    assert create(c, op, f"/rule-{op}-{flags}-{ttl}", flags=flags, ttl=ttl)[0] == err


def test_ttl_needs_extended_types(server):
    c = session(server)
    assert create(c, CREATE_TTL, "/no-ttl", flags=5, ttl=1000)[0] == UNIMPLEMENTED
    assert create(c, jute.CREATE, "/no-ttl", flags=5)[0] == UNIMPLEMENTED
