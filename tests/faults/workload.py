"""Clients that drive a run: each a thread with its own kazoo session,
recording every operation in the History.

    register    read (sync + getData), write (setData), cas (setData with
                the version a plain getData just saw) on a few keys; the
                keys in use change every `key_period` seconds, so each
                key's history stays small enough to check exactly.
    set         create /faults/set/e<unique>; at the end every
                acknowledged name must be there.
    sequential  create /faults/seq/q<k>/n- with SEQUENCE.
    ephemeral   each session creates /faults/eph/s<session id> (ephemeral)
                and checks now and then (sync + exists) that it is there.
    mutex       Curator's InterProcessMutex layout: an ephemeral sequential
                /faults/mutex/_c_<uuid>-lock-<n>, held while it is the
                lowest; the holder writes its fencing token (n) to
                /faults/fence, then releases by deleting its node.
    watch       (Watcher, not a kazoo client) a persistent recursive watch
                on the register keys, over a session of its own spoken
                from the wire protocol (zkwire.py): every notification is
                logged with its zxid, every (re)connection with the zxid
                its watch was registered at.
    registry    (corrald) instances of service `faults` registered over
                the service registry's HTTP API on the client's server,
                with a TTL, renewed, now and then deregistered and
                registered anew; once settled only renewed.

A client bound to server i lists every server, its own first, so that it
fails over as a ZooKeeper client does when its server is cut off.
"""
import itertools
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
import uuid

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from faults.zkwire import Expired, Lost, WireSession

ROOT = "/faults"
REGISTER_KEYS = 3  # keys in use at a time
SEQ_PARENTS = 2
class Fenced(Exception):
    """The fenced resource refused a token (a definite failure)."""


DEFINITE = (BadVersionError, NoNodeError, NodeExistsError, Fenced)

logging.getLogger("kazoo").setLevel(logging.CRITICAL)


def connect(hosts, session_timeout=6.0, start_timeout=30):
    c = KazooClient(hosts=hosts, timeout=session_timeout, randomize_hosts=False,
                    connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0))
    c.start(timeout=start_timeout)
    return c


def register_keys(duration, key_period):
    epochs = int(duration // key_period) + 2
    return [f"r{e}.{j}" for e in range(epochs) for j in range(REGISTER_KEYS)]


def prepare(hosts, duration, key_period):
    """Creates the run's znodes: every register key (value 0, version 0)
    and the parents."""
    c = connect(hosts)
    try:
        for path in (ROOT, f"{ROOT}/reg", f"{ROOT}/set", f"{ROOT}/seq", f"{ROOT}/eph", f"{ROOT}/mutex",
                     f"{ROOT}/fence"):
            c.ensure_path(path)
        for k in range(SEQ_PARENTS):
            c.ensure_path(f"{ROOT}/seq/q{k}")
        keys = register_keys(duration, key_period)
        for i in range(0, len(keys), 100):
            t = c.transaction()
            for k in keys[i:i + 100]:
                t.create(f"{ROOT}/reg/{k}", b"0")
            t.commit()
    finally:
        c.stop()
        c.close()


class Worker(threading.Thread):
    _processes = itertools.count()
    _values = itertools.count(1)

    def __init__(self, history, workload, hosts, seed, op_timeout=3.0, key_period=5.0, session_timeout=6.0,
                 http_host=None, sync_reads=True):
        super().__init__(daemon=True)
        # False: a register read is a plain getData (the server's
        # linearizable_reads makes it a quorum read by itself).
        self.sync_reads = sync_reads
        self.history = history
        self.workload = workload
        self.hosts = hosts
        self.rng = random.Random(seed)
        self.op_timeout = op_timeout
        self.key_period = key_period
        self.session_timeout = session_timeout
        self.stopping = threading.Event()
        self.process = next(Worker._processes)
        self.client = None
        self.errors = 0
        self.http_host = http_host  # the registry's HTTP endpoint on this client's server
        self.settled = threading.Event()  # registry: only renew from now on
        self.instance = None
        self.renewed_at = None

    def stop(self):
        self.stopping.set()

    def run(self):
        try:
            self.client = connect(self.hosts, self.session_timeout)
        except Exception:  # the ensemble may be cut off already: try later
            self.client = None
        while not self.stopping.is_set():
            if self.client is None:
                try:
                    self.client = connect(self.hosts, self.session_timeout, start_timeout=5)
                except Exception:
                    self.stopping.wait(0.5)
                    continue
            try:
                getattr(self, "_" + self.workload)()
            except Exception:  # a bug in the worker must not end the run silently
                self.errors += 1
                raise
            self.stopping.wait(self.rng.uniform(0, 0.02))
        try:
            self.client.stop()
            self.client.close()
        except Exception:
            pass

    def _call(self, async_result):
        return async_result.get(timeout=self.op_timeout)

    def _record(self, op, fn):
        """Runs fn; ok with its result, fail on a definite error, info on
        anything else (then this client continues as a new process)."""
        try:
            result = fn()
        except DEFINITE as e:
            self.history.complete(op, "fail", error=type(e).__name__)
            return None
        except (KazooTimeoutError, Exception) as e:  # noqa: B014 - every other outcome is unknown
            if str(e):
                op["detail"] = str(e)[:200]
            if op["f"] == "read":
                self.history.complete(op, "fail", error=type(e).__name__)
            else:
                self.history.complete(op, "info", error=type(e).__name__)
                self.process = next(Worker._processes)
            return None
        self.history.complete(op, "ok", result)
        return result

    def _register(self):
        epoch = int(self.history.now() // self.key_period)
        key = f"r{epoch}.{self.rng.randrange(REGISTER_KEYS)}"
        path = f"{ROOT}/reg/{key}"
        c = self.client
        f = self.rng.choice(("read", "read", "write", "cas", "cas"))
        if f == "read":
            op = self.history.invoke(self.process, "register", "read", key, None)

            def read():
                if self.sync_reads:
                    self._call(c.sync_async(path))
                data, stat = self._call(c.get_async(path))
                return [int(data), stat.version]

            self._record(op, read)
        elif f == "write":
            value = next(Worker._values)
            op = self.history.invoke(self.process, "register", "write", key, value)
            self._record(op, lambda: self._written(op, c.set_async(path, str(value).encode())))
        else:
            try:
                _, stat = self._call(c.get_async(path))
            except Exception:
                return
            value = next(Worker._values)
            op = self.history.invoke(self.process, "register", "cas", key, [stat.version, value])
            self._record(op, lambda: self._written(op, c.set_async(path, str(value).encode(), stat.version)))

    def _written(self, op, async_result):
        """A write's new version; its zxid (the watch checker's key) kept
        in the operation."""
        stat = self._call(async_result)
        op["zxid"] = stat.mzxid
        return stat.version

    def _session(self):
        return f"{self.client.client_id[0]:x}" if self.client.client_id else None

    def _ephemeral(self):
        c = self.client
        session = self._session()
        if session is None:
            self.stopping.wait(0.1)
            return
        path = f"{ROOT}/eph/s{session}"
        if getattr(self, "eph_session", None) != session:
            op = self.history.invoke(self.process, "ephemeral", "create", session, None)
            if self._record(op, lambda: self._call(c.create_async(path, b"", ephemeral=True))) is None:
                if op["status"] == "fail" and op.get("error") == "NodeExistsError":
                    self.eph_session = session  # an earlier try that timed out made it
                return
            self.eph_session = session
            return
        op = self.history.invoke(self.process, "ephemeral", "check", session, None)

        def check():
            self._call(c.sync_async(path))
            return self._call(c.exists_async(path)) is not None

        self._record(op, check)
        self.stopping.wait(0.05)

    def _mutex(self):
        c = self.client
        session = self._session()
        if session is None:
            self.stopping.wait(0.1)
            return
        prefix = f"{ROOT}/mutex/_c_{uuid.uuid4()}-lock-"
        op = self.history.invoke(self.process, "mutex", "acquire", session, None)

        def acquire():
            mine = self._call(c.create_async(prefix, b"", ephemeral=True, sequence=True))
            name = mine.rsplit("/", 1)[1]
            deadline = self.history.now() + 4 * self.op_timeout
            while self.history.now() < deadline and not self.stopping.is_set():
                children = self._call(c.get_children_async(f"{ROOT}/mutex"))
                ordered = sorted(children, key=lambda n: n[-10:])
                if name not in ordered:
                    raise RuntimeError("lock node vanished")
                if ordered[0] == name:
                    return name
                self.stopping.wait(0.02)
            self._call(c.delete_async(mine))
            raise TimeoutError("gave up waiting")

        name = self._record(op, acquire)
        if name is None:
            return
        token = int(name[-10:])
        hold = self.history.invoke(self.process, "mutex", "fence", session, token)

        def fence():
            # The fenced resource: it takes a token only above the last one
            # it took, so a holder that lost the lock unknowingly (its
            # session expired while it was cut off) is refused.
            data, stat = self._call(c.get_async(f"{ROOT}/fence"))
            last = int(data or b"-1")
            if last >= token:
                raise Fenced(f"token {token} is not above {last}")
            self._call(c.set_async(f"{ROOT}/fence", str(token).encode(), stat.version))
            return last

        self._record(hold, fence)
        self.stopping.wait(self.rng.uniform(0, 0.05))
        rel = self.history.invoke(self.process, "mutex", "release", session, name)
        self._record(rel, lambda: self._call(c.delete_async(f"{ROOT}/mutex/{name}")))

    def _http(self, method, url, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=self.op_timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def _registry(self):
        base = f"http://{self.http_host}/v1/registry/services/faults/instances"
        if getattr(self, "instance", None) is None or (not self.settled.is_set() and self.rng.random() < 0.02):
            if getattr(self, "instance", None) is not None:
                old = self.instance
                op = self.history.invoke(self.process, "registry", "deregister", old, None)
                self._record(op, lambda: self._expect(self._http("DELETE", f"{base}/{old}"), (200, 204, 404)))
                self.instance = None
            iid = f"i{next(Worker._values)}"
            op = self.history.invoke(self.process, "registry", "register", iid, None)
            if self._record(op, lambda: self._expect(self._http("PUT", f"{base}/{iid}?ttl=10s",
                                                                 {"address": "10.9.9.9", "port": 80}),
                                                     (200, 201))) is not None:
                self.instance = iid
            return
        iid = self.instance
        op = self.history.invoke(self.process, "registry", "renew", iid, None)
        if self._record(op, lambda: self._expect(self._http("PUT", f"{base}/{iid}/renew"), (200, 204))) is None:
            if op["status"] == "fail":
                self.instance = None  # gone (its server's session ended): register again
        else:
            self.renewed_at = self.history.now()
        self.stopping.wait(0.3)

    @staticmethod
    def _expect(answer, codes):
        status, body = answer
        if status == 404:
            raise NoNodeError(body.decode(errors="replace")[:200])
        if status not in codes:
            raise RuntimeError(f"HTTP {status}: {body.decode(errors='replace')[:200]}")
        return status

    def _set(self):
        name = f"e{next(Worker._values)}"
        op = self.history.invoke(self.process, "set", "add", "set", name)
        self._record(op, lambda: self._call(self.client.create_async(f"{ROOT}/set/{name}", b"")))

    def _sequential(self):
        parent = f"{ROOT}/seq/q{self.rng.randrange(SEQ_PARENTS)}"
        op = self.history.invoke(self.process, "sequential", "create", parent, None)
        self._record(op, lambda: self._call(self.client.create_async(parent + "/n-", b"", sequence=True)))


class Watcher(threading.Thread):
    """A persistent recursive watch on /faults/reg for as long as its
    session lives: on a lost connection it reconnects to the next server
    with the same session (and the last zxid it saw, so a server behind it
    refuses) and registers the watch again with setWatches2; only when the
    session expired does it start a new one. `log` keeps, in order:

        {"kind": "conn", "session", "conn", "server", "since", "t", "new"}
        {"kind": "event", "session", "conn", "zxid", "type", "path", "t"}
        {"kind": "lost" | "expired", "session", "conn", "why", "t", "upto"}
        {"kind": "end", "session", "conn", "t", "upto"}

    `since` is the zxid in the header of the addWatch or setWatches2 reply:
    every change after it must be notified on that connection. `upto` is
    the largest zxid any header on the connection carried (notifications,
    replies, pings): the server had applied that much, and tells a change
    before it answers anything after it, so every change up to it must
    have been told by the time the connection ended."""

    def __init__(self, history, addresses, path=f"{ROOT}/reg", session_timeout=6.0):
        super().__init__(daemon=True)
        self.history = history
        self.addresses = addresses  # [(host, port)], this watcher's server first
        self.path = path
        self.session_timeout = session_timeout
        self.stopping = threading.Event()
        self.log = []
        self.errors = 0

    def stop(self):
        self.stopping.set()

    def run(self):
        try:
            self._run()
        except Exception as e:  # a bug in the watcher must not pass silently
            self.errors += 1
            self.log.append({"kind": "error", "why": repr(e), "t": self.history.now()})

    _numbers = itertools.count(1)  # sessions and connections, unique across watchers

    def _run(self):
        session, conn, turn = 0, 0, 0
        ws, registered = None, False
        while not self.stopping.is_set():
            if ws is None:
                ws, registered = WireSession(self.session_timeout), False
                session = next(Watcher._numbers)
            host, port = self.addresses[turn % len(self.addresses)]

            def on_event(zxid, etype, state, path, s=session):
                self.log.append({"kind": "event", "session": s, "conn": conn, "zxid": zxid, "type": etype,
                                 "state": state, "path": path, "t": self.history.now()})

            try:
                ws.connect(host, port)
                conn = next(Watcher._numbers)
                if registered:
                    since, err = ws.set_watches(ws.last_zxid, [self.path], on_event)
                else:
                    since, err = ws.add_watch(self.path, on_event)
                if err != 0:
                    raise Lost(f"watch registration refused: error {err}")
                fresh, registered = not registered, True
                ws.conn_zxid = since
                self.log.append({"kind": "conn", "session": session, "conn": conn, "server": f"{host}:{port}",
                                 "since": since, "t": self.history.now(), "new": fresh})
                while not self.stopping.is_set():
                    ws.poll(on_event, time.monotonic() + 0.5)
                self.log.append({"kind": "end", "session": session, "conn": conn, "t": self.history.now(),
                                 "upto": ws.conn_zxid})
                ws.close()
            except Expired as e:
                self.log.append({"kind": "expired", "session": session, "conn": conn, "why": str(e),
                                 "t": self.history.now()})
                ws = None
            except (Lost, OSError) as e:
                self.log.append({"kind": "lost", "session": session, "conn": conn, "why": str(e)[:200],
                                 "t": self.history.now(), "upto": ws.conn_zxid})
                ws.close_socket()
                turn += 1
                self.stopping.wait(0.2)


def final_listing(hosts_each, timeout=60):
    """What each server lists under the set and sequential parents, read
    from a client bound to that server alone, after a sync."""
    out = {"set": {}, "sequential": {}}
    for who, hosts in hosts_each.items():
        c = connect(hosts, start_timeout=timeout)
        try:
            c.sync(f"{ROOT}/set")
            out["set"][who] = c.get_children(f"{ROOT}/set")
            for k in range(SEQ_PARENTS):
                parent = f"{ROOT}/seq/q{k}"
                c.sync(parent)
                out["sequential"].setdefault(who, {})[parent] = c.get_children(parent)
        finally:
            c.stop()
            c.close()
    return out


def registry_views(http_hosts, timeout=3.0):
    """Each server's list of the `faults` service's instance ids, read with
    ?consistent (after a sync with the leader); None where it did not answer."""
    out = {}
    for who, host in http_hosts.items():
        try:
            url = f"http://{host}/v1/registry/services/faults?consistent"
            with urllib.request.urlopen(url, timeout=timeout) as r:
                body = json.loads(r.read())
            out[who] = sorted(i["id"] for i in body.get("instances", []))
        except (OSError, ValueError, urllib.error.HTTPError):
            out[who] = None
    return out
