#!/usr/bin/python3
"""Watches at scale, corrald beside Apache ZooKeeper: the memory each watch
costs from 10k to 1M watches, of three kinds, and the time to fire 100k.

Each server starts standalone in its own session (setsid), once per kind.
A tree of 100k znodes (under 100 parents) is made, then watcher sessions
(raw ZooKeeper connections, requests pipelined) each set one watch on
every znode until the step's count is reached: `data` (getData with a
watch), `exist` (exists with a watch, on paths that do not exist) or
`persistent` (addWatch, PERSISTENT). The server's resident memory (VmRSS)
is read after each step has settled, and the memory per watch above the
step before follows. Then, on a fresh server, one session sets 100k data
watches and another sets every watched znode's data in one pipelined
burst: the time from the burst's first request to the last notification.

    ./dev bench watches [--steps 10000,100000,1000000] [--kinds data,exist,persistent]
                        [--heap 2g] [--only corrald|zookeeper]
"""
import argparse
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from corral_harness import jute
from side_by_side import Server

NODES = 100_000
PARENTS = 100
BATCH = 500  # requests in flight on one connection


def path(i):
    return f"/w/p{i % PARENTS:02d}/n{i:06d}"


LIVE = []  # every open Conn, pinged every 3 s by the pinger thread


def pinger():
    while True:
        time.sleep(3.0)
        for c in list(LIVE):
            try:
                c.ping()
            except OSError:
                pass


threading.Thread(target=pinger, daemon=True).start()


class Conn:
    """One session over a raw connection: pipelined requests, replies
    counted, notifications counted apart."""

    def __init__(self, port):
        self.lock = threading.Lock()  # frames sent whole (the pinger sends too)
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.sendall(jute.frame(jute.connect_request(60000)))
        self.buf = b""
        self.xid = 0
        self.notifications = 0
        self.last_notification = 0.0
        frame = self._frame()
        if jute.parse_connect_response(frame)["timeOut"] <= 0:
            raise OSError("session refused")
        LIVE.append(self)

    def _frame(self):
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack_from(">i", self.buf)[0]
                if len(self.buf) >= 4 + n:
                    f = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return f
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise OSError("the server closed the connection")
            self.buf += chunk

    def _reply(self):
        """Reads frames until a reply; returns its error code."""
        while True:
            f = self._frame()
            xid, _, err = struct.unpack_from(">iqi", f)
            if xid == jute.NOTIFICATION_XID:
                self.notifications += 1
                self.last_notification = time.monotonic()
                continue
            if xid == jute.PING_XID:
                continue
            return err

    def run(self, requests, ok=(jute.OK,)):
        """Sends (opcode, body) requests, at most BATCH in flight."""
        out = 0
        pending = 0
        it = iter(requests)
        done = False
        while not done or pending:
            chunk = []
            while not done and pending + len(chunk) < BATCH:
                try:
                    op, body = next(it)
                except StopIteration:
                    done = True
                    break
                self.xid += 1
                chunk.append(jute.frame(struct.pack(">ii", self.xid, op) + body))
            if chunk:
                with self.lock:
                    self.s.sendall(b"".join(chunk))
                pending += len(chunk)
            if pending:
                err = self._reply()
                pending -= 1
                if err not in ok:
                    raise OSError(f"request failed with {err}")
                out += 1
        return out

    def ping(self):
        with self.lock:
            self.s.sendall(jute.frame(struct.pack(">ii", jute.PING_XID, jute.PING)))

    def drain(self):
        """Pings and reads up to the answer (so what waited is read)."""
        self.ping()
        while True:
            f = self._frame()
            xid = struct.unpack_from(">i", f)[0]
            if xid == jute.NOTIFICATION_XID:
                self.notifications += 1
            elif xid == jute.PING_XID:
                return

    def wait_notifications(self, n, timeout=300):
        end = time.monotonic() + timeout
        while self.notifications < n and time.monotonic() < end:
            self.s.settimeout(max(0.1, end - time.monotonic()))
            f = self._frame()
            if struct.unpack_from(">i", f)[0] == jute.NOTIFICATION_XID:
                self.notifications += 1
                self.last_notification = time.monotonic()
        return self.notifications >= n

    def close(self):
        if self in LIVE:
            LIVE.remove(self)
        self.s.close()


def make_tree(port):
    c = Conn(port)
    c.run([(jute.CREATE, jute.create_body("/w"))])
    c.run((jute.CREATE, jute.create_body(f"/w/p{p:02d}")) for p in range(PARENTS))
    c.run((jute.CREATE, jute.create_body(path(i), b"x" * 16)) for i in range(NODES))
    return c


def settle(conns, seconds):
    time.sleep(seconds)
    for c in conns:
        c.drain()


def set_watches(c, kind):
    if kind == "data":
        reqs = ((jute.GET_DATA, jute.path_watch(path(i), True)) for i in range(NODES))
        c.run(reqs)
    elif kind == "exist":
        reqs = ((jute.EXISTS, jute.path_watch(f"/absent{path(i)}", True)) for i in range(NODES))
        c.run(reqs, ok=(jute.OK, jute.NO_NODE))
    else:
        c.run((jute.ADD_WATCH, jute.add_watch_body(path(i), jute.PERSISTENT)) for i in range(NODES))


def live_mb(srv):
    """What the server holds: corrald's RSS; for ZooKeeper, the Java heap in
    use after a full collection (its RSS follows the heap's high-water mark,
    garbage included)."""
    if srv.kind == "corrald":
        return srv.rss_mb()
    subprocess.run(["jcmd", str(srv.proc.pid), "GC.run"], capture_output=True, check=True)
    out = subprocess.run(["jcmd", str(srv.proc.pid), "GC.heap_info"], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"used (\d+)K", out)
    return int(m.group(1)) / 1024


def memory_steps(kind, server_kind, work, heap, steps):
    srv = Server(server_kind, f"{work}/{kind}", heap)
    srv.start()
    conns = []
    try:
        maker = make_tree(srv.port)
        conns.append(maker)
        settle(conns, 5)
        base, base_live = srv.rss_mb(), live_mb(srv)
        rows, have = [], 0
        for target in steps:
            while have < target:
                c = Conn(srv.port)
                conns.append(c)
                if target - have >= NODES:
                    set_watches(c, kind)
                    have += NODES
                else:
                    # A part of the tree: the first (target - have) znodes.
                    n = target - have
                    if kind == "data":
                        c.run((jute.GET_DATA, jute.path_watch(path(i), True)) for i in range(n))
                    elif kind == "exist":
                        c.run(((jute.EXISTS, jute.path_watch(f"/absent{path(i)}", True)) for i in range(n)),
                              ok=(jute.OK, jute.NO_NODE))
                    else:
                        c.run((jute.ADD_WATCH, jute.add_watch_body(path(i), jute.PERSISTENT)) for i in range(n))
                    have += n
            settle(conns, 5)
            rss, live = srv.rss_mb(), live_mb(srv)
            rows.append((target, rss, (rss - base) * 2**20 / target, (live - base_live) * 2**20 / target))
            print(f"{server_kind} {kind}: {target:,} watches, RSS {rss:.1f} MB "
                  f"({(rss - base) * 2**20 / target:.0f} B a watch), held "
                  f"{(live - base_live) * 2**20 / target:.0f} B a watch", file=sys.stderr)
        return base, rows
    finally:
        for c in conns:
            c.close()
        srv.stop()


def fire(server_kind, work, heap, count):
    srv = Server(server_kind, f"{work}/fire", heap)
    srv.start()
    try:
        writer = make_tree(srv.port)
        watcher = Conn(srv.port)
        watcher.run((jute.GET_DATA, jute.path_watch(path(i), True)) for i in range(count))
        t0 = time.monotonic()
        writer.run((jute.SET_DATA, jute.set_data_body(path(i), b"y" * 16)) for i in range(count))
        writes_done = time.monotonic() - t0
        if not watcher.wait_notifications(count):
            raise OSError(f"only {watcher.notifications} of {count} notifications arrived")
        took = watcher.last_notification - t0
        writer.close()
        watcher.close()
        return writes_done, took
    finally:
        srv.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", default="10000,100000,1000000")
    p.add_argument("--kinds", default="data,exist,persistent")
    p.add_argument("--fire", type=int, default=100_000)
    p.add_argument("--heap", default="2g", help="ZooKeeper's -Xmx/-Xms")
    p.add_argument("--only", choices=("corrald", "zookeeper"))
    a = p.parse_args()
    steps = [int(x) for x in a.steps.split(",")]
    kinds = a.kinds.split(",")
    servers = [a.only] if a.only else ["corrald", "zookeeper"]
    work = tempfile.mkdtemp(prefix="corral-watches-")
    results = {}
    for kind in kinds:
        for s in servers:
            results[(kind, s)] = memory_steps(kind, s, work, a.heap, steps)
    fires = {s: fire(s, work, a.heap, a.fire) for s in servers}
    print(f"Memory per watch ({NODES:,} znodes, one watch per znode per session), above the "
          "server with the tree and no watch: RSS, and what is held (corrald: RSS; ZooKeeper: "
          "the heap in use after a full collection); the ratio is of what is held\n")
    head = "| kind | watches | " + " | ".join(f"{s} RSS MB | {s} B/watch (RSS) | {s} B/watch held"
                                              for s in servers)
    print(head + (" | ratio |" if len(servers) == 2 else " |"))
    print("| --- | ---: |" + " ---: | ---: | ---: |" * len(servers) + (" ---: |" if len(servers) == 2 else ""))
    for kind in kinds:
        for i, n in enumerate(steps):
            cells = []
            per = []
            for s in servers:
                _, rows = results[(kind, s)]
                cells.append(f"{rows[i][1]:,.0f} | {rows[i][2]:,.0f} | {rows[i][3]:,.0f}")
                per.append(rows[i][3])
            ratio = f" | {per[0] / per[1]:.2f} |" if len(servers) == 2 and per[1] > 0 else " |"
            print(f"| {kind} | {n:,} | " + " | ".join(cells) + ratio)
    print(f"\nFiring {a.fire:,} data watches (one session's), by a burst of {a.fire:,} setData "
          "from another: the burst's writes acknowledged / the last notification, from its start\n")
    for s in servers:
        w, t = fires[s]
        print(f"- {s}: writes {w:.2f} s, last notification {t:.2f} s")


if __name__ == "__main__":
    main()
