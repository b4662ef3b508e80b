"""A bare ZooKeeper client session over the harness's jute codec
(corral_harness/jute.py), so that the watch checker sees what the server
sent and nothing a client library added: each notification with the zxid
in its header, the zxid a watch was registered at, and every reconnect.

Unlike jute.RawClient it outlives its connections: it reconnects with its
session id and the last zxid seen (as every ZooKeeper client does), pings
at a third of the session timeout, and says when the server has gone
quiet. Only what the watch workload needs: addWatch, setWatches2, pings,
notifications as they arrive.
"""
import socket
import struct
import time

from corral_harness import jute

MAX_FRAME = 1 << 20


class Expired(Exception):
    """The server answered the reconnect with a zero timeout: the session
    is gone."""


class Lost(Exception):
    """The connection is gone (closed, timed out, refused, or garbled)."""


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

    def _send(self, payload):
        self.sock.sendall(jute.frame(payload))
        self.last_sent = time.monotonic()

    def _frame(self, deadline):
        """The next frame, or None at the deadline."""
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
        self._send(jute.Writer().int(xid).int(op).bytes() + body)
        return xid

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
        self._send(jute.connect_request(self.timeout_ms, self.session_id, self.passwd, self.last_zxid,
                                        read_only=False))
        frame = self._frame(time.monotonic() + timeout)
        if frame is None:
            raise Lost(f"{host}:{port}: no answer to the connect request")
        try:
            resp = jute.parse_connect_response(frame)
        except ValueError as e:
            raise Lost(f"{host}:{port}: connect response: {e}") from e
        if resp["timeOut"] <= 0:
            self.close_socket()
            raise Expired(f"session {self.session_id:x} expired")
        self.session_id, self.passwd = resp["sessionId"], resp["passwd"]
        self.negotiated = resp["timeOut"] / 1000.0

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
            elif event == xid:
                return zxid, err

    def add_watch(self, path, on_event=None):
        return self.call(jute.ADD_WATCH, jute.add_watch_body(path), on_event=on_event)

    def set_watches(self, relative_zxid, recursive_paths, on_event=None):
        return self.call(jute.SET_WATCHES2, jute.set_watches2_body(relative_zxid, recursive=recursive_paths),
                         xid=jute.SET_WATCHES_XID, on_event=on_event)

    def poll(self, on_event, until):
        """Reads notifications until `until` (monotonic), pinging at a third
        of the session timeout; raises Lost when the server has been silent
        for two thirds of it."""
        while time.monotonic() < until:
            now = time.monotonic()
            if now - self.last_sent >= self.negotiated / 3:
                self._request(jute.PING, xid=jute.PING_XID)
            if now - self.last_heard > 2 * self.negotiated / 3:
                raise Lost("no word from the server")
            frame = self._frame(min(until, now + self.negotiated / 6))
            if frame is None:
                continue
            kind, zxid, _, event = self._parse(frame)
            if kind == "event":
                on_event(zxid, *event)

    def _parse(self, frame):
        r = jute.Reader(frame)
        try:
            xid, zxid, err = r.int(), r.long(), r.int()
            self.last_zxid = max(self.last_zxid, zxid)
            self.conn_zxid = max(self.conn_zxid, zxid)
            if xid == jute.NOTIFICATION_XID:
                return "event", zxid, err, (r.int(), r.int(), r.string())
        except (ValueError, UnicodeDecodeError) as e:
            raise Lost(f"garbled frame: {e}") from e
        return "reply", zxid, err, xid

    def close(self):
        if self.sock:
            try:
                self._request(jute.CLOSE_SESSION)
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
