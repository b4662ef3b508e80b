"""The SDK's C++ client recipes (sdk/include/corral/client/recipes.hpp) and
Apache Curator's (Debian's libcurator-*-java) on the same paths: a C++ Mutex
and an InterProcessMutex exclude each other, a C++ LeaderLatch and Curator's
elect one leader between them, SharedCount, DistributedBarrier and
ServiceDiscovery see each other's changes. Both ways, on a real server."""
import os
import queue
import subprocess
import threading
import time

import pytest

from corral_harness.servers import REPO
from test_curator import HERE, classpath

CHECK = os.environ.get("CORRAL_RECIPES_CHECK", str(REPO / "build" / "tests" / "recipes-check"))


@pytest.fixture(scope="module")
def java(tmp_path_factory):
    out = tmp_path_factory.mktemp("recipes-peer")
    r = subprocess.run(["javac", "-cp", classpath(), "-d", str(out), str(HERE / "RecipesPeer.java")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


class Proc:
    """A peer speaking the line protocol; lines arrive on a queue."""

    def __init__(self, args):
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def expect(self, want, timeout=20):
        got = self.lines.get(timeout=timeout)
        assert got == want, (got, want, self.p.stderr.read() if got is None else "")

    def quiet(self, seconds):
        """Nothing printed for `seconds`."""
        try:
            got = self.lines.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected {got!r}")

    def send(self, line="go"):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def done(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        assert self.p.wait(timeout=60) == 0, self.p.stderr.read()[-3000:]


def cpp(hosts, *args):
    return Proc([CHECK, hosts, *args])


def curator(java, hosts, *args):
    return Proc(["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", classpath([str(java)]),
                 "RecipesPeer", hosts, *args])


def test_a_cpp_mutex_and_curators_exclude_each_other(java, server):
    path = f"/locks/m{time.time_ns()}"
    j = curator(java, server.hosts, "mutex", path)
    j.expect("acquired", 60)
    c = cpp(server.hosts, "mutex", path)
    c.quiet(1.5)             # Curator holds it
    j.send()
    j.expect("released")
    c.expect("acquired")      # now ours
    j2 = curator(java, server.hosts, "mutex", path)
    j2.quiet(3)
    c.send()
    c.expect("released")
    j2.expect("acquired", 30)
    j2.send()
    j2.expect("released")
    for p in (j, c, j2):
        p.done()


def test_a_cpp_latch_and_curators_elect_one_leader(java, server):
    path = f"/latches/l{time.time_ns()}"
    c = cpp(server.hosts, "latch", path, "cpp")
    c.expect("leader")
    j = curator(java, server.hosts, "latch", path, "java")
    j.quiet(3)                # Curator's latch is not leader while ours leads
    c.send("close")
    j.expect("leader", 30)
    c.done()
    j.send("close")
    j.done()


def test_shared_count_and_barrier(java, server):
    path = f"/counts/c{time.time_ns()}"
    a = cpp(server.hosts, "count-add", path, "5")
    a.expect("5")
    a.done()
    b = curator(java, server.hosts, "count-add", path, "3")
    b.expect("8", 60)
    b.done()
    g = cpp(server.hosts, "count-get", path)
    g.expect("8")
    g.done()

    barrier = f"/barriers/b{time.time_ns()}"
    j = curator(java, server.hosts, "barrier", barrier)
    j.expect("set", 60)
    c = cpp(server.hosts, "barrier-wait", barrier)
    c.expect("waiting")
    c.quiet(1.5)
    j.send()
    j.expect("removed")
    c.expect("passed")
    c.done()
    j.done()


def test_service_discovery_both_ways(java, server):
    base = f"/sd{time.time_ns()}"
    c = cpp(server.hosts, "register", base, "api", "from-cpp", "10.7.0.1", "8080")
    c.expect("registered")
    q = curator(java, server.hosts, "instances", base, "api")
    q.expect("from-cpp 10.7.0.1 8080", 60)
    q.expect("done")
    q.done()
    j = curator(java, server.hosts, "register", base, "web", "from-java", "10.7.0.2", "9090")
    j.expect("registered", 60)
    r = cpp(server.hosts, "instances", base, "web")
    r.expect("from-java 10.7.0.2 9090")
    r.expect("done")
    r.done()
    j.send()
    j.done()
    c.done()
    # The C++ registration was ephemeral: gone with its session.
    r = cpp(server.hosts, "instances", base, "api")
    r.expect("done")
    r.done()


def exclusion(first, make_second):
    """The second waits while the first holds, and gets it once the first lets go."""
    first.expect("acquired", 60)
    second = make_second()
    second.quiet(3)
    first.send()
    first.expect("released")
    second.expect("acquired", 30)
    second.send()
    second.expect("released")
    first.done()
    second.done()


def test_read_write_locks_exclude_across_implementations(java, server):
    path = f"/rw/l{time.time_ns()}"
    exclusion(cpp(server.hosts, "rwlock", path, "write"), lambda: curator(java, server.hosts, "rwlock", path, "read"))
    exclusion(curator(java, server.hosts, "rwlock", path, "write"), lambda: cpp(server.hosts, "rwlock", path, "read"))
    # Readers share.
    r1 = cpp(server.hosts, "rwlock", path, "read")
    r1.expect("acquired")
    r2 = curator(java, server.hosts, "rwlock", path, "read")
    r2.expect("acquired", 60)
    for r in (r1, r2):
        r.send()
        r.expect("released")
        r.done()


def test_a_one_lease_semaphore_is_shared_across_implementations(java, server):
    path = f"/sem/s{time.time_ns()}"
    exclusion(curator(java, server.hosts, "semaphore", path, "1"), lambda: cpp(server.hosts, "semaphore", path, "1"))
    exclusion(cpp(server.hosts, "semaphore", path, "1"), lambda: curator(java, server.hosts, "semaphore", path, "1"))


def test_a_double_barrier_of_two(java, server):
    path = f"/dbar/d{time.time_ns()}"
    c = cpp(server.hosts, "double-barrier", path, "2")
    c.quiet(1.5)  # alone: not entered
    j = curator(java, server.hosts, "double-barrier", path, "2")
    c.expect("entered", 30)
    j.expect("entered", 60)
    c.send()
    j.send()
    c.expect("left", 30)
    j.expect("left", 30)
    c.done()
    j.done()


def test_a_double_barrier_whose_last_member_is_cpp(server):
    """The last C++ member to enter opens the barrier itself: its watch on
    ready fires with the create that opens it, and the look that event
    starts must find the member entered, not enter it twice."""
    for _ in range(3):
        path = f"/dbar/last{time.time_ns()}"
        first = cpp(server.hosts, "double-barrier", path, "2")
        first.quiet(0.5)
        last = cpp(server.hosts, "double-barrier", path, "2")
        first.expect("entered", 30)
        last.expect("entered", 30)
        first.send()
        last.send()
        first.expect("left", 30)
        last.expect("left", 30)
        first.done()
        last.done()


def test_a_queue_between_implementations(java, server):
    path = f"/queues/q{time.time_ns()}"
    put = curator(java, server.hosts, "queue-put", path, "from-java")
    put.expect("put", 60)
    put.done()
    take = cpp(server.hosts, "queue-take", path)
    take.expect("from-java")
    take.done()
    waiting = curator(java, server.hosts, "queue-take", path)
    time.sleep(2)
    put = cpp(server.hosts, "queue-put", path, "from-cpp")
    put.expect("put")
    put.done()
    waiting.expect("from-cpp", 60)
    waiting.done()


def test_a_tree_cache_follows_changes_made_through_curator(java, server):
    root = f"/trees/t{time.time_ns()}"
    w = curator(java, server.hosts, "write", root + "/a", "1")
    w.expect("written", 60)
    w.done()
    cache = cpp(server.hosts, "treecache", root)
    cache.expect("ready 2")  # the root and /a
    for args, want in [(("write", root + "/b/c", "2"), [f"added {root}/b ", f"added {root}/b/c 2"]),
                       (("write", root + "/a", "3"), [f"updated {root}/a 3"]),
                       (("delete", root + "/b"), [f"removed {root}/b/c", f"removed {root}/b"])]:
        w = curator(java, server.hosts, *args)
        w.expect("deleted" if args[0] == "delete" else "written", 60)
        w.done()
        got = sorted(cache.lines.get(timeout=20) for _ in want)
        assert got == sorted(x.rstrip() if x.endswith(" ") else x for x in want) or got == sorted(want), got
    cache.done()


def test_recipes_fail_rather_than_wait_on_a_refused_watch(server_factory):
    """Past server.max_watch_bytes the server refuses a watch with
    SYSTEMERROR and no event will ever come for it: a C++ Mutex waiting for
    the lock before its own, and a Queue waiting for an item, report the
    error instead of waiting for ever, and the Mutex leaves the line rather
    than hold up those behind it. Once watches are freed, it works again."""
    from kazoo.client import KazooClient
    from kazoo.exceptions import SystemZookeeperError
    srv = server_factory(extra_args=["--set", "server.max_watch_bytes=4096"])
    holder = cpp(srv.hosts, "mutex", "/locks/bounded")
    holder.expect("acquired")  # the first in line sets no watch
    filler = KazooClient(hosts=srv.hosts)
    filler.start()
    filler.ensure_path("/fill")
    filled = 0
    with pytest.raises(SystemZookeeperError):
        for i in range(100):
            filler.exists(f"/fill/n{i:03d}", watch=lambda e: None)
            filled += 1
    assert filled == 4096 // (len("/fill/n000") + 64)  # 55, each its path and 64
    waiter = cpp(srv.hosts, "mutex", "/locks/bounded")
    assert waiter.p.wait(timeout=30) == 1
    assert "watching the lock before ours: SYSTEMERROR" in waiter.p.stderr.read()
    # It left the line: only the holder's node is there.
    assert len(filler.get_children("/locks/bounded")) == 1
    taker = cpp(srv.hosts, "queue-take", "/queue/bounded")
    assert taker.p.wait(timeout=30) == 1
    assert "waiting for the queue: SYSTEMERROR" in taker.p.stderr.read()
    # Room again: the filler's watches go with its session.
    filler.stop()
    filler.close()
    waiter = cpp(srv.hosts, "mutex", "/locks/bounded")
    waiter.quiet(1)
    holder.send()
    holder.expect("released")
    waiter.expect("acquired")
    waiter.send()
    waiter.expect("released")
    for p in (holder, waiter):
        p.done()


def test_a_tree_cache_reports_a_node_it_may_not_read_and_loads_the_rest(server):
    """A node whose ACL the cache's session fails (NOAUTH) is reported once
    and left out: trying again would fail again, and the cache is ready
    with the rest of the tree."""
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl
    root = f"/trees/acl{time.time_ns()}"
    zk = KazooClient(hosts=server.hosts)
    zk.start()
    zk.create(root + "/a", b"1", makepath=True)
    zk.create(root + "/secret", b"2", acl=[make_digest_acl("owner", "pw", all=True)])
    cache = cpp(server.hosts, "treecache", root)
    got = sorted(cache.lines.get(timeout=20) for _ in range(3))
    assert got == sorted([f"error {root}/secret reading the children of {root}/secret: NOAUTH",
                          f"error {root}/secret reading {root}/secret: NOAUTH",
                          "ready 2"]), got  # the root and /a
    cache.quiet(1)  # not tried again
    zk.set(root + "/a", b"3")
    cache.expect(f"updated {root}/a 3")
    zk.stop()
    zk.close()
    cache.done()


def test_a_tree_cache_whose_watches_are_refused_says_so_and_catches_up(server_factory):
    """A C++ TreeCache started while the server refuses new watches (past
    server.max_watch_bytes) cannot follow the tree: it reports each refused
    read, is not ready, and tries again after a pause; once watches are
    freed it loads the whole tree and follows its changes."""
    from kazoo.client import KazooClient
    from kazoo.exceptions import SystemZookeeperError
    srv = server_factory(extra_args=["--set", "server.max_watch_bytes=4096"])
    root = "/trees/bounded"
    filler = KazooClient(hosts=srv.hosts)
    filler.start()
    filler.create(root + "/a", b"1", makepath=True)
    filler.create(root + "/b", b"2")
    filler.ensure_path("/fill")
    with pytest.raises(SystemZookeeperError):
        for i in range(100):
            filler.exists(f"/fill/n{i:03d}", watch=lambda e: None)
    cache = cpp(srv.hosts, "treecache", root)
    errors = set()
    deadline = time.monotonic() + 1.5  # the first tries and their retries (250 ms, 500 ms)
    while time.monotonic() < deadline:
        try:
            line = cache.lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        assert line.startswith(f"error {root} ") and line.endswith(": SYSTEMERROR"), line
        errors.add(line)
    assert errors == {f"error {root} reading {root}: SYSTEMERROR",
                      f"error {root} reading the children of {root}: SYSTEMERROR"}, errors
    # Room again: the filler's watches go with its session.
    filler.stop()
    filler.close()
    while (line := cache.lines.get(timeout=20)).startswith("error "):
        pass
    assert line == "ready 3", line
    writer = KazooClient(hosts=srv.hosts)
    writer.start()
    writer.set(root + "/a", b"3")
    cache.expect(f"updated {root}/a 3")
    writer.create(root + "/b/c", b"4")
    cache.expect(f"added {root}/b/c 4")
    writer.stop()
    writer.close()
    cache.done()


def test_a_latch_whose_watch_is_refused_leaves_the_line_and_joins_again(server_factory):
    """A C++ LeaderLatch second in line whose watch on the node before its
    own is refused (past server.max_watch_bytes) would never learn that it
    leads: it leaves the line and joins again after a pause, so that once
    the leader goes it leads, with the server's watches still full."""
    from kazoo.client import KazooClient
    from kazoo.exceptions import SystemZookeeperError
    srv = server_factory(extra_args=["--set", "server.max_watch_bytes=4096"])
    first = cpp(srv.hosts, "latch", "/latches/bounded", "first")
    first.expect("leader")
    filler = KazooClient(hosts=srv.hosts)
    filler.start()
    filler.ensure_path("/fill")
    with pytest.raises(SystemZookeeperError):
        for i in range(100):
            filler.exists(f"/fill/n{i:03d}", watch=lambda e: None)
    second = cpp(srv.hosts, "latch", "/latches/bounded", "second")
    second.quiet(1.5)  # not the leader while the first leads
    # Its watch was refused (logged once for its connection).
    assert srv.log_tail(200).count("a watch refused") == 2
    first.send("close")
    second.expect("leader", 30)
    first.done()
    second.send("close")
    second.done()
    assert filler.get_children("/latches/bounded") == []
    filler.stop()
    filler.close()
