"""Leader transfer on a real 3-server ensemble: `corral leader transfer`
(the admin endpoint's POST /commands/leader_transfer) hands the leadership
over without an election, without dropping a client's connection and
without losing an acknowledged write; SIGTERM on a leader hands over first,
so a rolling restart of the whole ensemble runs no election at all."""
import base64
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NodeExistsError
from kazoo.retry import KazooRetry

from corral_harness.ensemble import CONSENSUS
from corral_harness.servers import REPO, TARGET, free_port, wait_for

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="Corral's leader transfer")

CLI = os.environ.get("CORRAL_CLI", str(REPO / "build/cli/corral"))
SUPER = "super:" + base64.b64encode(hashlib.sha1(b"super:secret").digest()).decode()


def corral(*args, check=0):
    r = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == check, f"corral {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def client(hosts):
    zk = KazooClient(hosts=hosts, timeout=10.0, connection_retry=KazooRetry(max_tries=-1, max_delay=0.5),
                     command_retry=KazooRetry(max_tries=50, delay=0.05, max_delay=0.5))
    zk.start(timeout=30)
    return zk


class Writer:
    """Creates /load/wNNNNNN one after another, noting each acknowledged one
    and when it was acknowledged."""

    def __init__(self, zk):
        self.zk, self.acked, self.times = zk, [], []
        self.stop = threading.Event()
        zk.ensure_path("/load")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            path = f"/load/w{n:06d}"
            try:
                self.zk.retry(self.zk.create, path, b"x")
            except NodeExistsError:  # a retried write that had been applied
                pass
            except Exception:
                time.sleep(0.01)
                continue
            self.acked.append(path)
            self.times.append(time.monotonic())

    def finish(self):
        self.stop.set()
        self.thread.join(30)

    def longest_gap(self, since):
        t = [x for x in self.times if x >= since]
        return max((b - a for a, b in zip(t, t[1:])), default=0.0)

    def check_all_present(self, zk):
        zk.sync("/load")
        present = set(zk.get_children("/load"))
        missing = [p for p in self.acked if p.rsplit("/", 1)[1] not in present]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"


@pytest.fixture
def ensemble(ensemble_factory):
    admin = {}

    def own(m):
        admin.setdefault(m.sid, free_port())
        return ["--set", f"server.admin_address=127.0.0.1:{admin[m.sid]}",
                "--set", f"server.super_digest={SUPER}"]

    ens = ensemble_factory(voters=3, member_args=own)
    ens.admin = admin
    return ens


def consensus(ens, m):
    with urllib.request.urlopen(f"http://127.0.0.1:{ens.admin[m.sid]}/commands/consensus", timeout=5) as r:
        return json.loads(r.read())


def elections_logged(m):
    """Elections this member ran for any reason but its own start (under
    raft: stood for, other than when handed the leadership)."""
    lines = m.log_text().splitlines()
    if CONSENSUS == "raft":
        return sum(1 for line in lines
                   if "[consensus.raft] standing for election in term" in line
                   and "(handed the leadership)" not in line)
    return sum(1 for line in lines
               if "looking for a leader:" in line and "looking for a leader: starting" not in line)


class Pipeliner:
    """One session that keeps many writes in flight, each create followed
    at once by a set of the same node: a set that fails with NoNode, or a
    write never answered, means the session's writes were reordered or lost."""

    def __init__(self, zk, prefix):
        self.zk, self.prefix, self.pairs, self.failures = zk, prefix, 0, []
        self.stop = threading.Event()
        zk.ensure_path(prefix)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        n = 0
        while not self.stop.is_set():
            batch = []
            for _ in range(50):
                n += 1
                path = f"{self.prefix}/p{n:06d}"
                batch.append((path, self.zk.create_async(path, b"0"), self.zk.set_async(path, b"1")))
            for path, c, st in batch:
                for what, r in (("create", c), ("set", st)):
                    try:
                        r.get(timeout=20)
                    except Exception as e:  # noqa: BLE001 - every failure is a finding
                        self.failures.append(f"{what} {path}: {e!r}")
            self.pairs += len(batch)

    def finish(self):
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the pipelined session stalled"


def test_transfer_moves_the_leadership_without_an_election_or_a_lost_write(ensemble):
    ens = ensemble
    old = ens.leader()
    followers = ens.followers()
    target, other = followers[0], followers[1]
    # A client on the follower that stays a follower: its connection must
    # never be lost or suspended.
    watcher = client(ens.members[other].address)
    states = []
    watcher.add_listener(states.append)
    writer = Writer(client(ens.hosts()))
    # Pipelined sessions on the server taking over and on the old leader.
    pipes = [Pipeliner(client(ens.members[i].address), f"/pipe{i}") for i in (target, old)]
    time.sleep(1.0)
    before = {m.sid: consensus(ens, m)["elections"] for m in ens.members}
    epoch = consensus(ens, ens.members[old])["current_epoch"]
    start = time.monotonic()
    # Asked at the follower that is not the target: it asks its leader.
    out = corral("--auth", "digest:super:secret", "leader", "transfer",
                 "--to", str(ens.members[target].sid),
                 "--admin", f"127.0.0.1:{ens.admin[ens.members[other].sid]}")
    answer = json.loads(out.stdout)
    assert answer["leader"] == ens.members[target].sid
    wait_for(lambda: ens.leader() == target, 10, "the named follower to lead")
    time.sleep(1.0)
    writer.finish()
    for p in pipes:
        p.finish()
        assert not p.failures, f"{len(p.failures)} pipelined writes failed, e.g. {p.failures[:3]}"
        assert p.pairs > 100
        p.zk.stop()
    assert len([t for t in writer.times if t > start]) > 10, "no write was acknowledged after the handover"
    gap = writer.longest_gap(start - 0.5)
    print(f"transfer: answered in {answer['took_ms']} ms; longest gap between acknowledged writes {gap * 1000:.0f} ms")
    after = {m.sid: consensus(ens, m)["elections"] for m in ens.members}
    assert after == before, f"an election ran: {before} -> {after}"
    assert ens.members[old].mode() == "follower"
    assert states == [], f"a follower's client saw its connection go: {states}"
    assert answer["epoch"] > epoch
    writer.check_all_present(watcher)
    # The old leader says what happened.
    said = "handing the leadership to server %d" if CONSENSUS == "raft" else "handing over: server %d leads"
    assert said % ens.members[target].sid in ens.members[old].log_text()
    # With no target, the voter most up to date takes over.
    out = corral("--auth", "digest:super:secret", "leader", "transfer",
                 "--admin", f"127.0.0.1:{ens.admin[ens.members[target].sid]}")
    assert json.loads(out.stdout)["leader"] != ens.members[target].sid
    wait_for(lambda: ens.leader() not in (None, target), 10, "another voter to lead")
    watcher.stop()
    writer.zk.stop()


def test_transfer_refuses_strangers_and_impossible_targets(ensemble):
    ens = ensemble
    lead = ens.members[ens.leader()]
    url = f"http://127.0.0.1:{ens.admin[lead.sid]}/commands/leader_transfer"

    def call(method, target=url, auth=None):
        req = urllib.request.Request(target, method=method, data=b"" if method == "POST" else None)
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    assert call("POST")[0] == 401                               # anonymous
    assert call("GET", auth="super:secret")[0] == 405           # changes state: POST only
    status, body = call("POST", url + "?to=9", auth="super:secret")
    assert status == 400 and "not a voting member" in body["error"]
    status, body = call("POST", url + "?to=x", auth="super:secret")
    assert status == 400
    # The target is down: the leader says so and goes on leading.
    down = ens.followers()[0]
    ens.kill(down)
    status, body = call("POST", url + f"?to={ens.members[down].sid}", auth="super:secret")
    assert status == 503, body
    assert ens.members[ens.leader()] is lead
    # Asking for the leader itself is answered at once.
    status, body = call("POST", url + f"?to={lead.sid}", auth="super:secret")
    assert status == 200 and body["leader"] == lead.sid
    # The CLI says why it failed, with the server's words.
    r = corral("--auth", "digest:super:secret", "leader", "transfer", "--to", str(ens.members[down].sid),
               "--admin", f"127.0.0.1:{ens.admin[lead.sid]}", check=1)
    assert "HTTP 503" in r.stderr


def test_a_rolling_restart_by_sigterm_runs_no_election(ensemble):
    ens = ensemble
    writer = Writer(client(ens.hosts()))
    time.sleep(0.5)
    leader = ens.leader()
    order = ens.followers() + [leader]  # as an operator rolls: the leader last
    gaps = []
    for i in order:
        was_leader = ens.leader() == i
        others = [j for j in range(3) if j != i]
        before = {j: elections_logged(ens.members[j]) for j in others}
        at = time.monotonic()
        ens.stop_member(i)  # SIGTERM
        ens.start_member(i)
        ens.wait_serving()
        time.sleep(0.5)
        gaps.append(writer.longest_gap(at))
        after = {j: elections_logged(ens.members[j]) for j in others}
        assert after == before, (f"restarting server {ens.members[i].sid} made others elect: "
                                 f"{before} -> {after}")
        if was_leader:
            text = ens.members[i].log_text()
            assert "handed the leadership to server" in text, text[-3000:]
            assert ens.leader() != i
    writer.finish()
    print("rolling restart: longest gap between acknowledged writes per step (ms): "
          + ", ".join(f"{g * 1000:.0f}" for g in gaps))
    probe = client(ens.hosts())
    writer.check_all_present(probe)
    probe.stop()
    writer.zk.stop()


def test_sigterm_during_an_operators_handover_waits_for_it(ensemble):
    ens = ensemble
    li = ens.leader()
    lead = ens.members[li]
    target, other = ens.followers()
    url = f"http://127.0.0.1:{ens.admin[lead.sid]}/commands/leader_transfer"
    answers = {}

    def ask(to, key):
        req = urllib.request.Request(f"{url}?to={ens.members[to].sid}", method="POST", data=b"")
        req.add_header("Authorization", "Basic " + base64.b64encode(b"super:secret").decode())
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                answers[key] = (r.status, json.loads(r.read()))
        except urllib.error.HTTPError as e:
            answers[key] = (e.code, json.loads(e.read()))
        except (urllib.error.URLError, ConnectionError) as e:  # the leader stopped before answering
            answers[key] = (None, str(e))

    writer = Writer(client(ens.hosts()))
    time.sleep(0.3)
    # A handover to a paused follower waits for its answer (up to two ticks).
    ens.pause(target)
    first = threading.Thread(target=ask, args=(target, "first"))
    first.start()
    time.sleep(0.2)
    ask(other, "second")
    assert answers["second"][0] == 409 and "in progress" in answers["second"][1]["error"], answers
    # SIGTERM meanwhile: the leader waits for that handover, then hands over
    # (or finds it handed over already) instead of stopping at once.
    lead.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    ens.resume(target)
    assert lead.proc.wait(15) == 0
    lead.proc = None
    lead._log.close()
    first.join(30)
    text = lead.log_text()
    assert "a leader handover is under way" in text and "waiting for it before stopping" in text, text[-3000:]
    assert "handed the leadership to server" in text and "stopping anyway" not in text, text[-3000:]
    rest = [target, other]
    ens.wait_serving(rest)
    time.sleep(0.5)
    writer.finish()
    probe = client(ens.hosts([ens.members[i] for i in rest]))
    writer.check_all_present(probe)
    probe.stop()
    writer.zk.stop()
