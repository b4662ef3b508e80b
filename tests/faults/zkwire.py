"""A bare ZooKeeper client session, written from the wire protocol so
that the watch checker sees what the server sent and nothing a client
library added: each notification with the zxid in its header, the zxid a
watch was registered at, and every reconnect.

Only what the watch workload needs: connect (or reconnect with a session
id and the last zxid seen, as every ZooKeeper client does), addWatch,
setWatches2, ping, close; notifications are returned as they arrive.
"""
import socket
import struct
import time

ADD_WATCH, SET_WATCHES2, PING, CLOSE = 106, 105, 11, -11
XID_NOTIFICATION, XID_PING, XID_SET_WATCHES = -1, -2, -8
PERSISTENT_RECURSIVE = 1
MAX_FRAME = 1 << 20


class Expired(Exception):
    """The server answered the reconnect with a zero timeout: the session
    is gone."""


class Lost(Exception):
    """The connection is gone (closed, timed out, or refused)."""


def _string(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def _strings(items):
    return struct.pack(">i", len(items)) + b"".join(_string(s) for s in items)


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise Lost(f"short frame: {len(self.data)} bytes, needed {self.at + size}")
        out = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return out

    def string(self):
        (n,) = self.take(">i")
        if n < 0:
            return None
        if self.at + n > len(self.data):
            raise Lost(f"string of {n} bytes in a frame of {len(self.data)}")
        s = self.data[self.at:self.at + n].decode(errors="replace")
        self.at += n
        return s


class WireSession:
    def __init__(self, session_timeout=6.0):
        self.timeout_ms = int(session_timeout * 1000)
        self.session_id, self.passwd = 0, b"\0" * 16
        self.last_zxid = 0  # the session's, across connections
        self.conn_zxid = 0  # the largest zxid a header carried on this connection
        self.sock = None
        self.buf = b""
        self.xid = 0
        self.last_sent = 0.0
        self.last_heard = 0.0
        self.negotiated = session_timeout

    # --- framing ---
    def _send(self, payload):
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)
        self.last_sent = time.monotonic()

    def _frame(self, deadline):
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack_from(">i", self.buf)
                if n < 0 or n > MAX_FRAME:
                    raise Lost(f"frame length {n}")
                if len(self.buf) >= 4 + n:
                    frame, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    self.last_heard = time.monotonic()
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError as e:
                raise Lost(str(e)) from e
            if not chunk:
                raise Lost("closed by the server")
            self.buf += chunk

    def _request(self, op, body=b"", xid=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self._send(struct.pack(">ii", xid, op) + body)
        return xid

    # --- session ---
    def connect(self, host, port, timeout=3.0):
        """Opens a connection and the session on it (a new one, or this
        one again); raises Expired or Lost."""
        self.close_socket()
        self.conn_zxid = 0
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise Lost(f"{host}:{port}: {e}") from e
        self.buf = b""
        self._send(struct.pack(">iqiq", 0, self.last_zxid, self.timeout_ms, self.session_id)
                   + struct.pack(">i", len(self.passwd)) + self.passwd + b"\0")
        frame = self._frame(time.monotonic() + timeout)
        if frame is None:
            raise Lost(f"{host}:{port}: no answer to the connect request")
        r = Reader(frame)
        _, negotiated, sid = r.take(">iiq")
        (n,) = r.take(">i")
        passwd = frame[r.at:r.at + max(n, 0)]
        if negotiated <= 0:
            self.close_socket()
            raise Expired(f"session {self.session_id:x} expired")
        self.session_id, self.passwd = sid, passwd
        self.negotiated = negotiated / 1000.0

    def call(self, op, body, xid=None, timeout=3.0, on_event=None):
        """Sends one request and waits for its reply, passing notifications
        that arrive first to on_event; returns (zxid, err)."""
        xid = self._request(op, body, xid)
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame(deadline)
            if frame is None:
                raise Lost("no reply")
            kind, zxid, err, event = self._parse(frame)
            if kind == "event":
                if on_event:
                    on_event(zxid, *event)
            elif kind == "reply" and event == xid:
                return zxid, err

    def add_watch(self, path, on_event=None):
        return self.call(ADD_WATCH, _string(path) + struct.pack(">i", PERSISTENT_RECURSIVE), on_event=on_event)

    def set_watches(self, relative_zxid, recursive_paths, on_event=None):
        body = struct.pack(">q", relative_zxid) + _strings([]) * 4 + _strings(recursive_paths)
        return self.call(SET_WATCHES2, body, xid=XID_SET_WATCHES, on_event=on_event)

    def poll(self, on_event, until):
        """Reads notifications until `until` (monotonic), pinging at a third
        of the session timeout; raises Lost when the server has been silent
        for two thirds of it."""
        while time.monotonic() < until:
            now = time.monotonic()
            if now - self.last_sent >= self.negotiated / 3:
                self._request(PING, xid=XID_PING)
            if now - self.last_heard > 2 * self.negotiated / 3:
                raise Lost("no word from the server")
            frame = self._frame(min(until, now + self.negotiated / 6))
            if frame is None:
                continue
            kind, zxid, _, event = self._parse(frame)
            if kind == "event":
                on_event(zxid, *event)

    def _parse(self, frame):
        r = Reader(frame)
        xid, zxid, err = r.take(">iqi")
        if zxid > self.last_zxid:
            self.last_zxid = zxid
        if zxid > self.conn_zxid:
            self.conn_zxid = zxid
        if xid == XID_NOTIFICATION:
            etype, state = r.take(">ii")
            return "event", zxid, err, (etype, state, r.string())
        return "reply", zxid, err, xid

    def close(self):
        if self.sock:
            try:
                self._request(CLOSE)
            except OSError:
                pass
        self.close_socket()

    def close_socket(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
