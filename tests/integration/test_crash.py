"""Crash test: a write load from real clients, SIGKILL at random moments,
restart, and check that every acknowledged write survived and that nothing
appeared twice."""
import os
import random
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

from corral_harness.servers import TARGET

CYCLES = int(os.environ.get("CORRAL_CRASH_CYCLES", "50" if TARGET == "corrald" else "5"))
WRITES_PER_CYCLE = 1500


def client(hosts):
    # No retries: a request the server never answered must stay unanswered.
    zk = KazooClient(hosts=hosts, timeout=10,
                     connection_retry=KazooRetry(max_tries=0), command_retry=KazooRetry(max_tries=0))
    zk.start(timeout=15)
    return zk


def verify(zk, acked):
    """Every acknowledged create is there with its data, once."""
    for cycle, nodes in acked.items():
        parent = f"/crash/c{cycle}"
        children = zk.get_children(parent)
        # Pipelined reads: tens of thousands of one-at-a-time round trips
        # took most of this test's time on a loaded machine.
        reads = [(name, zk.get_async(f"{parent}/{name}")) for name in children]
        seen = {}
        for name, read in reads:
            data, _ = read.get(timeout=30)
            assert data not in seen, f"{data!r} was written twice: {seen[data]} and {name}"
            seen[data] = name
        for path, data in nodes:
            name = path.rsplit("/", 1)[1]
            assert seen.get(data) == name, f"acknowledged {path} ({data!r}) is missing after a crash"


def crash_cycles(hosts, kill, start, cycles, rng):
    """`cycles` times: a write load, `kill` once a random share of it is
    answered, `start` again, and every acknowledged write checked; then all
    of them once more. Returns how many kills landed mid-load."""
    acked = {}
    kills_mid_load = 0
    for cycle in range(cycles):
        began = time.monotonic()
        zk = client(hosts())
        zk.ensure_path(f"/crash/c{cycle}")
        # Kill once a random share of the writes has been answered, so that
        # the kill lands while the load runs. The answers are counted as
        # they come (no polling loop holding the interpreter's lock while
        # the client's thread has replies to read).
        target = rng.randint(1, WRITES_PER_CYCLE - 100)
        answered = [0]
        reached = threading.Event()
        lock = threading.Lock()

        # This cycle's counters bound now: a late answer of an earlier
        # cycle's client counts toward its own cycle, not this one.
        def count(_, answered=answered, target=target, reached=reached, lock=lock):
            with lock:
                answered[0] += 1
                if answered[0] >= target:
                    reached.set()

        pending = []
        for i in range(WRITES_PER_CYCLE):
            result = zk.create_async(f"/crash/c{cycle}/n-", f"{cycle}:{i}".encode(), sequence=True)
            result.rawlink(count)
            pending.append((i, result))
        reached.wait(20)
        loaded = time.monotonic()
        kill()
        done = []
        # The answers that came before the kill; kazoo fails the others with
        # ConnectionLoss. One deadline for them all, so that a reply kazoo
        # never resolves costs seconds, not ten seconds a write.
        answers_by = time.monotonic() + 15
        for i, result in pending:
            try:
                done.append((result.get(timeout=max(0.05, answers_by - time.monotonic())),
                             f"{cycle}:{i}".encode()))
            except Exception:  # connection lost (or no answer): not acknowledged
                pass
        zk.stop()
        zk.close()
        if 0 < len(done) < WRITES_PER_CYCLE:
            kills_mid_load += 1
        acked[cycle] = done
        killed = time.monotonic()
        start()
        started = time.monotonic()
        zk = client(hosts())
        try:
            verify(zk, {cycle: done})
        finally:
            zk.stop()
            zk.close()
        # Shown if the test fails: which step of which cycle took the time.
        print(f"cycle {cycle}: load {loaded - began:.2f}s, answers {killed - loaded:.2f}s, "
              f"restart {started - killed:.2f}s, check {time.monotonic() - started:.2f}s, "
              f"{len(done)} acknowledged", flush=True)
    # Nothing acknowledged in an earlier cycle was lost by a later crash.
    zk = client(hosts())
    try:
        verify(zk, acked)
    finally:
        zk.stop()
        zk.close()
    return kills_mid_load


# About 30 s on an idle machine; room for a loaded one.
@pytest.mark.hang_guard_seconds(300)
def test_acknowledged_writes_survive_sigkill(server_factory):
    rng = random.Random(int(os.environ.get("CORRAL_CRASH_SEED", time.time())))
    srv = server_factory()
    kills_mid_load = crash_cycles(lambda: srv.hosts, srv.kill, srv.start, CYCLES, rng)
    assert kills_mid_load >= CYCLES // 4, f"only {kills_mid_load} of {CYCLES} kills hit a running load"


@pytest.mark.skipif(TARGET != "corrald", reason="kills corrald's own ensemble")
@pytest.mark.hang_guard_seconds(300)
def test_acknowledged_writes_survive_sigkill_of_a_whole_ensemble(ensemble_factory):
    """Every server of a 3-server ensemble (zab, or raft with
    CORRAL_CONSENSUS=raft) killed at once under load, and all restarted:
    what any of them acknowledged is in the ensemble elected afterwards."""
    rng = random.Random(int(os.environ.get("CORRAL_CRASH_SEED", time.time())))
    ens = ensemble_factory(voters=3)
    cycles = max(2, CYCLES // 5)

    def kill_all():
        for i in range(len(ens.members)):
            ens.kill(i)

    kills_mid_load = crash_cycles(ens.hosts, kill_all, ens.start, cycles, rng)
    assert kills_mid_load >= cycles // 4, f"only {kills_mid_load} of {cycles} kills hit a running load"
