#!/usr/bin/python3
"""Memory per idle session, corrald beside Apache ZooKeeper.

Starts each server standalone in its own session (setsid), opens sessions
in steps with raw ZooKeeper handshakes (one TCP connection each, session
timeout 30 s; 500 a second), keeps every one alive with a ping every 3 s, and reads the
server's resident memory (VmRSS) at each step once it has settled. Prints
per step the RSS of both, the memory each session added since the start,
and the ratio corrald/ZooKeeper.

    ./dev bench idle-sessions [--steps 1000,3000,9000] [--heap 1g] [--only corrald]
    ./dev bench idle-sessions --tls   # the sessions over TLS: corrald's tls transport
                                      # beside ZooKeeper's Netty TLS port

Needs a build (./dev build), Debian's zookeeper package, and file
descriptors for the sessions (the soft limit is raised to the hard one).
"""
import argparse
import resource
import selectors
import socket
import ssl
import struct
import sys
import tempfile
import time

from corral_harness import jute
from side_by_side import Server, make_certs

PING = jute.frame(jute.Writer().int(jute.PING_XID).int(jute.PING).bytes())


def handshake(port, tls=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if tls:
        s = tls.wrap_socket(s)
    s.sendall(jute.frame(jute.connect_request(30000, read_only=False)))
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack_from(">i", data)[0]:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed during the handshake")
        data += chunk
    if jute.parse_connect_response(data[4:])["timeOut"] <= 0:
        raise OSError("session refused")
    s.setblocking(False)
    return s


class Sessions:
    def __init__(self, port, tls=None):
        self.port, self.tls = port, tls
        self.socks = []
        self.sel = selectors.DefaultSelector()
        self.last_ping = time.monotonic()

    def grow(self, n, rate=500):
        """Opens sessions up to n, at most `rate` a second (corrald refuses
        more than server.session_create_rate, 1000 a second by default)."""
        t0, first = time.monotonic(), len(self.socks)
        while len(self.socks) < n:
            ahead = (len(self.socks) - first) / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
            s = handshake(self.port, self.tls)
            self.socks.append(s)
            self.sel.register(s, selectors.EVENT_READ)
            if len(self.socks) % 500 == 0:
                self.keep_alive(0)

    def keep_alive(self, seconds):
        """Pings every session every 3 s and reads (discards) the replies,
        for `seconds`."""
        end = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            if now - self.last_ping >= 3.0:
                for s in self.socks:
                    try:
                        s.send(PING)
                    except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        pass
                self.last_ping = now
            for key, _ in self.sel.select(timeout=0.1):
                try:
                    if not key.fileobj.recv(65536):
                        raise OSError("a session was closed by the server")
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
            if time.monotonic() >= end:
                return

    def close(self):
        for s in self.socks:
            s.close()
        self.sel.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", default="1000,3000,9000")
    p.add_argument("--heap", default="1g", help="ZooKeeper's -Xmx/-Xms")
    p.add_argument("--only", choices=("corrald", "zookeeper"))
    p.add_argument("--settle", type=float, default=8.0, help="seconds of pings before each reading")
    p.add_argument("--tls", action="store_true", help="sessions over TLS (no client certificate)")
    args = p.parse_args()
    steps = [int(x) for x in args.steps.split(",")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < max(steps) + 100:
        sys.exit(f"needs {max(steps) + 100} file descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it
    kinds = [args.only] if args.only else ["corrald", "zookeeper"]
    work = tempfile.mkdtemp(prefix="corral-idle-")
    certs = make_certs(work) if args.tls else None
    tls = None
    if certs:
        tls = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        tls.check_hostname = False
    table = {}
    for kind in kinds:
        server = Server(kind, work, args.heap, certs)
        server.start()
        sessions = Sessions(server.bench_port, tls)
        try:
            sessions.keep_alive(args.settle)
            base = server.rss_mb()
            table[kind] = {0: base}
            for n in steps:
                sessions.grow(n)
                sessions.keep_alive(args.settle)
                table[kind][n] = server.rss_mb()
                print(f"{kind}: {n} sessions, RSS {table[kind][n]:.1f} MB "
                      f"({(table[kind][n] - base) * 1024 / n:.1f} KB a session)", file=sys.stderr)
        finally:
            sessions.close()
            server.stop()
    print("| sessions | " + " | ".join(f"{k} RSS MB | {k} KB a session" for k in kinds)
          + (" | ratio per session |" if len(kinds) == 2 else " |"))
    print("| ---: |" + " ---: | ---: |" * len(kinds) + (" ---: |" if len(kinds) == 2 else ""))
    for n in [0] + steps:
        cells, per = [], {}
        for k in kinds:
            per[k] = (table[k][n] - table[k][0]) * 1024 / n if n else 0.0
            cells += [f"{table[k][n]:.1f}", f"{per[k]:.1f}" if n else "-"]
        ratio = f" | {per['corrald'] / per['zookeeper']:.2f}" if len(kinds) == 2 and n and per["zookeeper"] > 0 else (
            " | -" if len(kinds) == 2 else "")
        print(f"| {n:,} | " + " | ".join(cells) + ratio + " |")


if __name__ == "__main__":
    main()
