"""A tiny ZooKeeper wire-protocol (jute) codec and raw client for tests.

Only what the tests need: big-endian ints/longs, length-prefixed buffers and
strings, the ConnectRequest/ConnectResponse pair, request/reply headers and a
handful of request bodies. Frames are a 4-byte big-endian length + payload.
"""
import socket
import struct

# Opcodes (org.apache.zookeeper.ZooDefs.OpCode)
CREATE, DELETE, EXISTS, GET_DATA, SET_DATA = 1, 2, 3, 4, 5
GET_CHILDREN, SYNC, PING, GET_CHILDREN2, CHECK, MULTI = 8, 9, 11, 12, 13, 14
CREATE2, CLOSE_SESSION, SET_WATCHES = 15, -11, 101
SET_WATCHES2, ADD_WATCH = 105, 106
PERSISTENT, PERSISTENT_RECURSIVE = 0, 1  # AddWatchMode

# Error codes (KeeperException.Code)
OK, UNIMPLEMENTED, BAD_ARGUMENTS = 0, -6, -8
NO_NODE, BAD_VERSION, NODE_EXISTS, NOT_EMPTY = -101, -103, -110, -111

PING_XID, SET_WATCHES_XID, NOTIFICATION_XID = -2, -8, -1
# Watch event types (Watcher.Event.EventType)
NODE_CREATED, NODE_DELETED, NODE_DATA_CHANGED, NODE_CHILDREN_CHANGED = 1, 2, 3, 4
WORLD_ANYONE_ALL = [(31, "world", "anyone")]  # ZooDefs.Ids.OPEN_ACL_UNSAFE


class Writer:
    def __init__(self):
        self.parts = []

    def int(self, v):
        self.parts.append(struct.pack(">i", v))
        return self

    def long(self, v):
        self.parts.append(struct.pack(">q", v))
        return self

    def bool(self, v):
        self.parts.append(b"\x01" if v else b"\x00")
        return self

    def buffer(self, b):
        if b is None:
            return self.int(-1)
        return self.int(len(b)).raw(b)

    def string(self, s):
        return self.buffer(None if s is None else s.encode())

    def raw(self, b):
        self.parts.append(bytes(b))
        return self

    def strings(self, items):
        self.int(len(items))
        for s in items:
            self.string(s)
        return self

    def acls(self, acls):
        self.int(len(acls))
        for perms, scheme, ident in acls:
            self.int(perms).string(scheme).string(ident)
        return self

    def bytes(self):
        return b"".join(self.parts)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("short read")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self):
        return struct.unpack(">i", self._take(4))[0]

    def long(self):
        return struct.unpack(">q", self._take(8))[0]

    def bool(self):
        return self._take(1) != b"\x00"

    def buffer(self):
        n = self.int()
        return None if n < 0 else self._take(n)

    def string(self):
        b = self.buffer()
        return None if b is None else b.decode()

    def strings(self):
        return [self.string() for _ in range(self.int())]

    def stat(self):
        names = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion",
                 "aversion", "ephemeralOwner", "dataLength", "numChildren",
                 "pzxid")
        kinds = "qqqqiiiqiiq"
        return {n: (self.long() if k == "q" else self.int())
                for n, k in zip(names, kinds)}

    def remaining(self):
        return len(self.data) - self.pos


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def connect_request(timeout_ms=30000, session_id=0, passwd=b"\0" * 16,
                    last_zxid=0, read_only=None):
    """ConnectRequest payload: 44 bytes, or 45 with the readOnly flag."""
    w = Writer().int(0).long(last_zxid).int(timeout_ms).long(session_id)
    w.buffer(passwd)
    if read_only is not None:
        w.bool(read_only)
    return w.bytes()


def parse_connect_response(payload):
    r = Reader(payload)
    resp = {"protocolVersion": r.int(), "timeOut": r.int(),
            "sessionId": r.long(), "passwd": r.buffer()}
    if r.remaining():
        resp["readOnly"] = r.bool()
    return resp


# Request bodies -----------------------------------------------------------

def path_watch(path, watch=False):
    return Writer().string(path).bool(watch).bytes()


def create_body(path, data=b"", flags=0, acls=WORLD_ANYONE_ALL):
    return Writer().string(path).buffer(data).acls(acls).int(flags).bytes()


def delete_body(path, version=-1):
    return Writer().string(path).int(version).bytes()


def set_data_body(path, data, version=-1):
    return Writer().string(path).buffer(data).int(version).bytes()


def check_body(path, version):
    return Writer().string(path).int(version).bytes()


def multi_body(ops):
    """ops: [(opcode, body)] -> MultiTransactionRecord."""
    w = Writer()
    for op, body in ops:
        w.int(op).bool(False).int(-1).raw(body)
    return w.int(-1).bool(True).int(-1).bytes()


def parse_multi_response(r):
    """-> [(type, err)] per op; type -1 is an ErrorResult carrying err."""
    results = []
    while True:
        op, done, _ = r.int(), r.bool(), r.int()
        if done:
            return results
        if op == -1:
            results.append((op, r.int()))
            continue
        if op in (CREATE, CREATE2):
            r.string()
        if op in (CREATE2, SET_DATA):
            r.stat()
        results.append((op, 0))  # delete and check have an empty body


def set_watches_body(relative_zxid, data=(), exist=(), child=()):
    w = Writer().long(relative_zxid)
    return w.strings(list(data)).strings(list(exist)).strings(list(child)).bytes()


def set_watches2_body(relative_zxid, data=(), exist=(), child=(), persistent=(), recursive=()):
    w = Writer().long(relative_zxid)
    for paths in (data, exist, child, persistent, recursive):
        w.strings(list(paths))
    return w.bytes()


def add_watch_body(path, mode=PERSISTENT_RECURSIVE):
    return Writer().string(path).int(mode).bytes()


class Closed(Exception):
    """The server closed the connection."""


class RawClient:
    """A blocking, single-connection client speaking raw frames."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.xid = 0
        self.session_id = self.passwd = None
        self.last_zxid = 0
        self.events = []  # (type, state, path) from watch notifications

    def close(self):
        self.sock.close()

    def send(self, data):
        # A server may close while a large frame is still being sent (it
        # refuses it on the length alone); is_closed() then reports it.
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.peer_closed = True

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise Closed(f"closed after {len(buf)}/{n} bytes")
            buf += chunk
        return buf

    def recv_frame(self):
        (n,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(n)

    def handshake(self, **kw):
        self.send(frame(connect_request(**kw)))
        resp = parse_connect_response(self.recv_frame())
        self.session_id, self.passwd = resp["sessionId"], resp["passwd"]
        return resp

    def _read_reply(self):
        r = Reader(self.recv_frame())
        xid, zxid, err = r.int(), r.long(), r.int()
        if xid == NOTIFICATION_XID:
            self.events.append((r.int(), r.int(), r.string()))
        elif zxid > 0:
            self.last_zxid = max(self.last_zxid, zxid)
        return xid, zxid, err, r

    def request(self, op, body=b"", xid=None):
        """Send one request, return (xid, zxid, err, Reader over the body)."""
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send(frame(Writer().int(xid).int(op).bytes() + body))
        while True:
            reply = self._read_reply()
            if reply[0] != NOTIFICATION_XID:
                return reply

    def wait_events(self, count, timeout=5.0):
        """Read notifications until `count` have arrived or timeout."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            while len(self.events) < count:
                self._read_reply()
        except socket.timeout:
            pass
        finally:
            self.sock.settimeout(old)
        return self.events

    def is_closed(self, timeout=5.0):
        """True once the server closes the connection (reads until EOF)."""
        if getattr(self, "peer_closed", False):
            return True
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(4096):
                pass
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
