"""The raft consensus module on real servers: an ensemble moved from zab to
raft in place keeps every znode, a sync at a leader that was paused and
replaced never reads a value the new leader overwrote, and the ensemble
fails over. (The ensemble suites run whole on raft with CORRAL_CONSENSUS=raft:
./dev test does so for test_ensemble.py.)"""
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, SessionExpiredError
from kazoo.retry import KazooRetry

from corral_harness.servers import TARGET, wait_for

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="Corral's own consensus modules")

RAFT = ["--set", "plugins.consensus=raft"]
ZAB = ["--set", "plugins.consensus=zab"]


def client(hosts, timeout=10.0):
    zk = KazooClient(hosts=hosts, timeout=timeout, connection_retry=KazooRetry(max_tries=-1, max_delay=0.5),
                     command_retry=KazooRetry(max_tries=50, delay=0.05, max_delay=0.5))
    zk.start(timeout=30)
    return zk


def replace_a_paused_leader(ens):
    """/k = 1 written through the leader, which is then paused (SIGSTOP) and
    replaced; /k = 2 written through the new one; the old leader resumed.
    Returns its index, a client of it, and a client of the others."""
    old_leader = ens.leader()
    old = client(ens.members[old_leader].address, timeout=30.0)
    old.create("/k", b"1")
    ens.pause(old_leader)
    others = [i for i in range(3) if i != old_leader]
    wait_for(lambda: any(ens.members[i].mode() == "leader" for i in others), timeout=30,
             what="a new leader among the others")
    fresh = client(ens.hosts([ens.members[i] for i in others]))
    fresh.set("/k", b"2")
    ens.resume(old_leader)
    return old_leader, old, fresh


def test_an_ensemble_moves_from_zab_to_raft_in_place(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_args=ZAB)
    zk = client(ens.hosts())
    for i in range(200):
        zk.create(f"/move/n{i:03}", f"v{i}".encode(), makepath=True)
    zk.create("/move/seq-", b"", sequence=True)
    zk.stop()
    for i in range(3):
        ens.stop_member(i)
    ens.extra_args = RAFT
    for i in range(3):
        ens.start_member(i, wait=False)
    ens.wait_serving()
    assert all("consensus raft, storage" in m.log_text() for m in ens.members)
    leader = ens.members[ens.leader()]
    # Zab's accepted epoch became raft's first term: the term is above it.
    assert "[consensus.raft] starting as a voter in term " in leader.log_text()
    for i in range(3):
        c = client(ens.members[i].address)
        c.sync("/move")
        kids = c.get_children("/move")
        assert len(kids) == 201
        assert c.get("/move/n199")[0] == b"v199"
        c.stop()
    zk = client(ens.hosts())
    zk.create("/move/after", b"raft")
    # A sequential znode goes on from the parent's counter.
    assert zk.create("/move/seq-", b"", sequence=True) == "/move/seq-0000000202"
    zk.stop()


def test_a_sync_at_a_replaced_leader_never_reads_what_the_new_leader_overwrote(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_args=RAFT)
    old_leader, old, fresh = replace_a_paused_leader(ens)
    # At once: the paused leader still believes it leads until it hears the
    # new term. Its sync must not answer from its own stale state.
    try:
        old.sync("/k")
        assert old.get("/k")[0] == b"2"
    except (ConnectionLoss, SessionExpiredError):
        pass  # failed, not stale: the client retries elsewhere
    wait_for(lambda: "stepping down as leader" in ens.members[old_leader].log_text(), timeout=30,
             what="the old leader to step down")
    for c in (old, fresh):
        c.stop()


def test_a_killed_leader_is_replaced_and_writes_go_on(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_args=RAFT)
    zk = client(ens.hosts())
    zk.create("/f", b"0")
    leader = ens.leader()
    t0 = time.monotonic()
    ens.kill(leader)
    zk.retry(zk.set, "/f", b"1")
    took = time.monotonic() - t0
    others = [i for i in range(3) if i != leader]
    assert any(ens.members[i].mode() == "leader" for i in others)
    # An election timeout is 5 ticks of 500 ms, randomised up to twice that.
    assert took < 20, took
    ens.start_member(leader)
    c = client(ens.members[leader].address)
    c.sync("/f")
    assert c.get("/f")[0] == b"1"
    c.stop()
    zk.stop()


def test_a_follower_behind_the_leaders_log_gets_its_snapshot_and_recovers_from_it(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_cfg="snapCount=200\n", extra_args=RAFT)
    f = ens.followers()[0]
    zk = client(ens.hosts([m for i, m in enumerate(ens.members) if i != f]))
    zk.create("/far", b"")
    ens.stop_member(f)
    # More than the 1,000 applied entries a leader keeps in memory, and past
    # its newest snapshot: what the follower lacks is no longer in any log.
    for i in range(1500):
        zk.create_async(f"/far/n{i}", b"x")
    zk.sync("/far")
    time.sleep(1.0)  # the snapshot is written in the background
    ens.start_member(f)
    back = client(ens.members[f].address)
    back.sync("/far")
    assert len(back.get_children("/far")) == 1500
    assert "is behind the log: sending the snapshot" in ens.members[ens.leader()].log_text()
    assert "loaded the leader's snapshot" in ens.members[f].log_text()
    back.stop()
    # Its own restart recovers from what it stored.
    ens.stop_member(f)
    ens.start_member(f)
    again = client(ens.members[f].address)
    assert len(again.get_children("/far")) == 1500
    again.stop()
    zk.stop()


def test_with_linearizable_reads_a_read_anywhere_sees_the_last_write(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_args=RAFT + ["--set", "server.linearizable_reads=true"])
    leader = ens.leader()
    follower = ens.followers()[0]
    writer = client(ens.members[leader].address)
    reader = client(ens.members[follower].address)
    writer.create("/lin", b"0")
    # No sync: the follower's read itself waits for a quorum round, so it
    # sees the write the leader has answered, every time. The follower is
    # stopped while the write commits without it, so that when it resumes
    # the read and the leader's append arrive together (served from its own
    # state, the read would often see the old value).
    for i in range(1, 31):
        ens.pause(follower)
        writer.set("/lin", str(i).encode())
        pending = reader.get_async("/lin")
        time.sleep(0.05)
        ens.resume(follower)
        assert pending.get(timeout=20)[0] == str(i).encode(), i
    for i in range(31, 201):
        writer.set("/lin", str(i).encode())
        assert reader.get("/lin")[0] == str(i).encode(), i
    # Reads in flight together share rounds and keep their order.
    results = [reader.get_async("/lin") for _ in range(200)]
    assert all(r.get(timeout=10)[0] == b"200" for r in results)
    # A read followed at once by a write of the same session sees the value
    # before the write, never the write: the write waits for the read (on
    # the leader the two would otherwise complete on the same answers).
    for c in (writer, reader):
        for i in range(100):
            before = c.get("/lin")[0]
            got = c.get_async("/lin")
            put = c.set_async("/lin", f"w{i}".encode())
            assert got.get(timeout=10)[0] == before, i
            put.get(timeout=10)
    # And a sync, a read and a write pipelined: the same.
    s1, g1, w1 = writer.sync_async("/lin"), writer.get_async("/lin"), writer.set_async("/lin", b"last")
    s1.get(timeout=10)
    assert g1.get(timeout=10)[0] == b"w99"
    w1.get(timeout=10)
    assert reader.get("/lin")[0] == b"last"
    assert reader.exists("/nothing") is None
    for c in (writer, reader):
        c.stop()


def test_with_linearizable_reads_a_replaced_leader_answers_no_stale_read(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_args=RAFT + ["--set", "server.linearizable_reads=true"])
    old_leader, old, fresh = replace_a_paused_leader(ens)
    try:
        assert old.get("/k")[0] == b"2"
    except (ConnectionLoss, SessionExpiredError):
        pass  # failed, not stale
    for c in (old, fresh):
        c.stop()
