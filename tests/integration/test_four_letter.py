"""The operational four-letter words beyond the basic ones: cons, crst,
wchs, wchc, wchp, dirs, dump, hash — shaped as ZooKeeper prints them."""
import re

import pytest
from kazoo.client import KazooClient

from corral_harness.servers import TARGET


@pytest.fixture
def zk(server):
    c = KazooClient(hosts=server.hosts)
    c.start(timeout=10)
    yield c
    c.stop()
    c.close()


def test_watch_listings(server, zk):
    zk.ensure_path("/fl/a")
    zk.get("/fl/a", watch=lambda e: None)
    zk.exists("/fl/b", watch=lambda e: None)
    zk.get_children("/fl", watch=lambda e: None)  # not listed, as in ZooKeeper
    sid = "0x%x" % zk.client_id[0]
    wchs = server.four("wchs")
    m = re.match(r"(\d+) connections watching (\d+) paths\nTotal watches:(\d+)", wchs)
    assert m and (int(m.group(1)), int(m.group(2)), int(m.group(3))) == (1, 2, 2), wchs
    wchc = server.four("wchc")
    assert wchc == f"{sid}\n\t/fl/a\n\t/fl/b\n\n", repr(wchc)
    wchp = server.four("wchp")
    assert f"/fl/a\n\t{sid}\n" in wchp, wchp


def test_connections_and_their_reset(server, zk):
    zk.exists("/")
    cons = server.four("cons")
    assert re.search(r" /127\.0\.0\.1:\d+\[\d+\]\(queued=\d+,recved=\d+,sent=\d+", cons), cons
    assert "sid=0x%x" % zk.client_id[0] in cons
    assert server.four("crst") == "Connection stats reset.\n"


def test_dirs_and_dump(server, zk):
    zk.create("/fl-eph", ephemeral=True)
    dirs = server.four("dirs")
    assert re.match(r"datadir_size: \d+\nlogdir_size: \d+\n", dirs), dirs
    dump = server.four("dump")
    assert dump.startswith("SessionTracker dump:\n") and "ephemeral nodes dump:" in dump, dump
    assert "0x%x:\n\t/fl-eph\n" % zk.client_id[0] in dump, dump


def test_hash_lists_the_digest_after_recent_writes(server, zk):
    zk.create("/fl-hash", b"x")
    stat = zk.exists("/fl-hash")
    lines = server.four("hash").splitlines()
    if TARGET == "zookeeper" and not lines:
        pytest.skip("ZooKeeper logs a digest only every so many transactions")
    assert lines, "hash printed nothing"
    parsed = [line.split(": ") for line in lines]
    assert all(re.fullmatch(r"[0-9a-f]+", z) and re.fullmatch(r"-?\d+", d) for z, d in parsed), lines
    zxids = [int(z, 16) for z, _ in parsed]
    assert zxids == sorted(zxids) and stat.czxid in zxids, (lines, stat.czxid)
    # The same tree gives the same digest: a read changes nothing.
    zk.get("/fl-hash")
    assert server.four("hash").splitlines()[-1] == lines[-1]
