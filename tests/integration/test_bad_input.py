"""Raw wire-protocol tests: handshakes, framing limits and malformed input.

Every expectation here was observed on Apache ZooKeeper 3.8. After each bad
case the server must still serve an already-connected session and ruok.
"""
import socket
import struct

import pytest

from corral_harness import jute
from corral_harness.jute import Closed, RawClient, Writer, frame

MAX_FRAME = 0xFFFFF  # jute.maxbuffer: the largest accepted frame payload


@pytest.fixture(scope="module")
def witness(server):
    """A session opened before any abuse; it must keep working."""
    c = RawClient(server.host, server.port)
    c.handshake(read_only=False)
    yield c
    c.close()


@pytest.fixture
def healthy(server, witness):
    yield
    assert witness.request(jute.GET_DATA, jute.path_watch("/"))[2] == jute.OK
    assert server.four("ruok") == "imok"


def raw(server):
    return RawClient(server.host, server.port)


def session(server):
    c = raw(server)
    c.handshake(read_only=False)
    return c


def reply_or_close(c):
    """The next frame, or None if the server closed without replying."""
    try:
        return c.recv_frame()
    except (Closed, ConnectionResetError):
        return None


# Handshake ----------------------------------------------------------------

def test_handshake_without_readonly_byte(server, healthy):
    c = raw(server)
    req = jute.connect_request(timeout_ms=30000)
    assert len(req) == 44
    c.send(frame(req))
    payload = c.recv_frame()
    assert len(payload) == 36  # no readOnly byte for an old-style request
    resp = jute.parse_connect_response(payload)
    assert resp["protocolVersion"] == 0 and resp["timeOut"] == 30000
    assert resp["sessionId"] != 0 and len(resp["passwd"]) == 16
    assert "readOnly" not in resp
    assert c.request(jute.EXISTS, jute.path_watch("/"))[2] == jute.OK


def test_handshake_with_readonly_byte(server, healthy):
    c = raw(server)
    req = jute.connect_request(timeout_ms=30000, read_only=False)
    assert len(req) == 45
    c.send(frame(req))
    payload = c.recv_frame()
    assert len(payload) == 37
    resp = jute.parse_connect_response(payload)
    assert resp["readOnly"] is False and resp["timeOut"] == 30000
    assert resp["sessionId"] != 0 and len(resp["passwd"]) == 16


@pytest.mark.parametrize("requested", [-5, 0, 1, 3999, 4000, 10000, 40000,
                                       40001, 1000000])
def test_timeout_negotiation(server, requested):
    lo, hi = 2 * server.tick_ms, 20 * server.tick_ms
    c = raw(server)
    resp = c.handshake(timeout_ms=requested, read_only=False)
    assert resp["timeOut"] == min(max(requested, lo), hi)
    c.close()


def test_handshake_ignores_trailing_bytes_and_odd_fields(server, healthy):
    odd = Writer().int(5).long(0).int(30000).long(0).buffer(b"abc").bool(False)
    for payload in (jute.connect_request(read_only=False) + b"junk",
                    odd.bytes()):
        c = raw(server)
        c.send(frame(payload))
        resp = jute.parse_connect_response(c.recv_frame())
        assert resp["protocolVersion"] == 0 and resp["sessionId"] != 0
        assert c.request(jute.EXISTS, jute.path_watch("/"))[2] == jute.OK


@pytest.mark.parametrize("read_only", [None, False])
def test_unknown_session_is_told_expired(server, healthy, read_only):
    c = raw(server)
    c.send(frame(jute.connect_request(session_id=0x1234, read_only=read_only)))
    payload = c.recv_frame()
    assert len(payload) == (36 if read_only is None else 37)
    resp = jute.parse_connect_response(payload)
    assert (resp["timeOut"], resp["sessionId"]) == (0, 0)
    assert resp["passwd"] == b"\0" * 16
    assert c.is_closed()


def test_reattach_needs_the_password(server, healthy):
    first = session(server)
    bad = raw(server)
    bad.send(frame(jute.connect_request(session_id=first.session_id,
                                        passwd=b"x" * 16, read_only=False)))
    resp = jute.parse_connect_response(bad.recv_frame())
    assert (resp["timeOut"], resp["sessionId"]) == (0, 0) and bad.is_closed()

    good = raw(server)
    resp = good.handshake(session_id=first.session_id, passwd=first.passwd,
                          read_only=False)
    assert resp["sessionId"] == first.session_id and resp["timeOut"] == 30000
    assert first.is_closed()  # the session moved to the new connection
    assert good.request(jute.EXISTS, jute.path_watch("/"))[2] == jute.OK


def test_client_from_the_future_is_refused(server, healthy):
    c = raw(server)
    c.send(frame(jute.connect_request(last_zxid=1 << 40, read_only=False)))
    assert reply_or_close(c) is None


@pytest.mark.parametrize("payload", [
    b"\x00" * 3,
    jute.connect_request()[:20],
    b"hello world garbage bytes here!!",
], ids=["3-bytes", "truncated-connect", "text"])
def test_garbage_connect_request_closes(server, healthy, payload):
    c = raw(server)
    c.send(frame(payload))
    assert reply_or_close(c) is None


def test_request_before_handshake_closes(server, healthy):
    c = raw(server)
    c.send(frame(Writer().int(1).int(jute.GET_DATA).bytes()
                 + jute.path_watch("/")))
    assert reply_or_close(c) is None


# Framing ------------------------------------------------------------------

@pytest.mark.parametrize("handshake", [False, True], ids=["pre", "post"])
@pytest.mark.parametrize("length", [MAX_FRAME + 1, 0x7FFFFFFF, 0, -1, -100])
def test_bad_frame_length_closes(server, healthy, handshake, length):
    c = session(server) if handshake else raw(server)
    c.send(struct.pack(">i", length))
    assert c.is_closed()


def test_largest_frame_is_accepted(server, healthy):
    c = session(server)
    assert c.request(jute.CREATE, jute.create_body("/maxframe"))[2] == jute.OK
    # header 8 + path 4+9 + data 4+n + version 4 == MAX_FRAME
    n = MAX_FRAME - 8 - 13 - 4 - 4
    body = jute.set_data_body("/maxframe", b"m" * n)
    assert len(body) + 8 == MAX_FRAME
    assert c.request(jute.SET_DATA, body)[2] == jute.OK
    _, _, err, r = c.request(jute.GET_DATA, jute.path_watch("/maxframe"))
    assert err == jute.OK and len(r.buffer()) == n
    too_big = jute.set_data_body("/maxframe", b"m" * (n + 1))
    c.send(frame(Writer().int(99).int(jute.SET_DATA).bytes() + too_big))
    assert c.is_closed()


def test_truncated_frame_then_close(server, healthy):
    c = session(server)
    c.send(struct.pack(">i", 100) + b"abc")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.is_closed()


def test_frame_shorter_than_request_header_closes(server, healthy):
    c = session(server)
    c.send(frame(b"\0\0\0\1"))
    assert c.is_closed()


# Requests -----------------------------------------------------------------

@pytest.mark.parametrize("opcode", [10, 50, 999, -1])
def test_unknown_opcode(server, healthy, opcode):
    c = session(server)
    xid, _, err, _ = c.request(opcode, b"", xid=77)
    assert (xid, err) == (77, jute.UNIMPLEMENTED)
    assert c.is_closed()


MARSHALLING_ERROR = -5


@pytest.mark.parametrize("opcode,body", [
    (jute.GET_DATA, b""),
    (jute.GET_DATA, Writer().int(100).bytes() + b"/ab"),
    (jute.EXISTS, Writer().int(-5).bytes()),
    (jute.CREATE, Writer().string("/x").bytes()),
    (jute.CREATE, Writer().int(0x7FFFFFFF).bytes()),
    (jute.SET_DATA, b""),
    (jute.DELETE, b""),
    (jute.MULTI, b"\0\0\0\1\0"),
], ids=["getData-empty", "getData-short-string", "exists-negative-length",
        "create-truncated", "create-huge-length", "setData-empty",
        "delete-empty", "multi-garbage"])
def test_malformed_body_is_marshalling_error(server, healthy, opcode, body):
    c = session(server)
    xid, _, err, _ = c.request(opcode, body)
    assert err == MARSHALLING_ERROR
    assert c.request(jute.EXISTS, jute.path_watch("/"))[2] == jute.OK


OPS = {
    "create": (jute.CREATE, jute.create_body),
    "create2": (jute.CREATE2, jute.create_body),
    "getData": (jute.GET_DATA, jute.path_watch),
    "exists": (jute.EXISTS, jute.path_watch),
    "getChildren": (jute.GET_CHILDREN, jute.path_watch),
    "setData": (jute.SET_DATA, lambda p: jute.set_data_body(p, b"x")),
    "delete": (jute.DELETE, jute.delete_body),
    "sync": (jute.SYNC, lambda p: Writer().string(p).bytes()),
}
B, N, E, OK = jute.BAD_ARGUMENTS, jute.NO_NODE, jute.NODE_EXISTS, jute.OK
# The node /bad exists and has no children. Writes look the parent up
# before validating the whole path, so a missing parent wins over a bad
# name; setData validates first; reads just look the path up ("" is the
# root's key); exists rejects NUL; sync never checks.
#                 create create2 getData exists getChildren setData delete sync
INVALID_PATHS = {
    "":           (B, B, OK, OK, OK, B, B, OK),
    "bad":        (B, B, N, N, N, B, B, OK),
    "/bad/":      (B, B, N, N, N, B, N, OK),
    "//bad":      (B, B, N, N, N, B, N, OK),
    "/bad/./b":   (N, N, N, N, N, B, N, OK),
    "/bad/../b":  (N, N, N, N, N, B, N, OK),
    "/bad/.":     (B, B, N, N, N, B, N, OK),
    "/bad/..":    (B, B, N, N, N, B, N, OK),
    "/bad//b":    (N, N, N, N, N, B, N, OK),
    "/bad\0b":    (B, B, N, B, N, B, B, OK),
    "/":          (E, E, OK, OK, OK, OK, B, OK),
}


@pytest.fixture(scope="module")
def bad_parent(witness):
    err = witness.request(jute.CREATE, jute.create_body("/bad"))[2]
    assert err in (jute.OK, jute.NODE_EXISTS)


@pytest.mark.parametrize("path", list(INVALID_PATHS), ids=repr)
def test_invalid_paths(server, healthy, bad_parent, path):
    c = session(server)
    got = tuple(c.request(op, make(path))[2] for op, make in OPS.values())
    assert dict(zip(OPS, got)) == dict(zip(OPS, INVALID_PATHS[path]))
    _, _, err, r = c.request(jute.GET_CHILDREN, jute.path_watch("/bad"))
    assert err == OK and r.strings() == []  # nothing was created


def test_failed_multi_wire_format(server, healthy):
    c = session(server)
    assert c.request(jute.CREATE, jute.create_body("/multi"))[2] == OK
    ops = [(jute.CREATE, jute.create_body("/multi/a")),
           (jute.CHECK, jute.check_body("/multi", 5)),
           (jute.SET_DATA, jute.set_data_body("/multi", b"x")),
           (jute.DELETE, jute.delete_body("/multi"))]
    _, zxid0, _, _ = c.request(jute.EXISTS, jute.path_watch("/"))
    _, zxid, err, r = c.request(jute.MULTI, jute.multi_body(ops))
    assert err == OK  # the header carries no error; results do
    assert zxid > zxid0  # a failed multi still consumes a zxid
    assert jute.parse_multi_response(r) == [
        (-1, OK), (-1, jute.BAD_VERSION), (-1, -2), (-1, -2)]
    _, _, err, r = c.request(jute.GET_DATA, jute.path_watch("/multi"))
    assert err == OK and r.buffer() == b"" and r.stat()["version"] == 0

    ok = [(jute.CREATE, jute.create_body("/multi/a")),
          (jute.CHECK, jute.check_body("/multi", 0))]
    _, _, err, r = c.request(jute.MULTI, jute.multi_body(ok))
    assert err == OK
    assert jute.parse_multi_response(r) == [(jute.CREATE, 0), (jute.CHECK, 0)]
    _, _, err, r = c.request(jute.MULTI, jute.multi_body([]))
    assert err == OK and jute.parse_multi_response(r) == []


def test_close_session(server, healthy):
    c = session(server)
    xid, _, err, _ = c.request(jute.CLOSE_SESSION)
    assert err == OK and c.is_closed()
