"""Discovery plugins on loopback: `static` and `dns` form ensembles from the
config, `dns` keeps retrying names that do not resolve yet, and a member of
an ensemble never runs on a default id. (The `docker` plugin is tested on a
real engine in tests/containers.)"""
import os
import pathlib
import secrets
import signal
import subprocess
import time

import pytest
from kazoo.client import KazooClient

from corral_harness.servers import REPO, TARGET, four_letter, free_port, wait_for

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="Corral's discovery plugins")

CORRALD = os.environ.get("CORRALD", str(REPO / "build" / "kernel" / "corrald"))
PLUGIN_DIR = os.environ.get("CORRAL_PLUGIN_DIR", str(REPO / "build" / "plugins"))
PEER_SECRET = secrets.token_hex(16)  # the members' shared secret (ensemble.secret)


class Node:
    def __init__(self, workdir, sid):
        self.sid = sid
        self.dir = pathlib.Path(workdir) / f"n{sid}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port, self.quorum, self.election = free_port(), free_port(), free_port()
        self.proc = None

    def start(self, toml, extra_args=()):
        path = self.dir / "corral.toml"
        path.write_text(toml)
        self.log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen([CORRALD, "--config", str(path), "--set", f'server.plugin_dir=["{PLUGIN_DIR}"]',
                                      *extra_args], stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log_text(self):
        return (self.dir / "server.log").read_text(errors="replace")

    def mode(self):
        try:
            for line in four_letter("127.0.0.1", self.port, "srvr", timeout=2).splitlines():
                if line.startswith("Mode: "):
                    return line[6:].strip()
        except OSError:
            return None
        return None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def nodes(tmp_path):
    made = []

    def make(n):
        made.extend(Node(tmp_path, i + 1) for i in range(n))
        return made

    yield make
    for n in made:
        n.stop()


def config(node, discovery, servers, extra=""):
    lines = ",\n  ".join(f'"{s}"' for s in servers)
    return f"""
[server]
id = {node.sid}
data_dir = "{node.dir / 'data'}"
client_address = "127.0.0.1:{node.port}"
tick_ms = 200
[plugins]
consensus = "zab"
election = "fle"
storage = "wal"
discovery = "{discovery}"
[ensemble]
secret = "{PEER_SECRET}"
servers = [
  {lines}
]
{extra}
"""


@pytest.mark.parametrize("discovery", ["static", "dns"])
def test_an_ensemble_forms_through_discovery(nodes, discovery):
    ns = nodes(3)
    servers = [f"{n.sid}=localhost:{n.quorum}:{n.election};{n.port}" for n in ns]
    for n in ns:
        n.start(config(n, discovery, servers, "[discovery.dns]\ninterval_ms = 200\n" if discovery == "dns" else ""))
    wait_for(lambda: sorted(str(n.mode()) for n in ns) == ["follower", "follower", "leader"], what="a leader")
    zk = KazooClient(hosts=",".join(f"127.0.0.1:{n.port}" for n in ns))
    zk.start(timeout=10)
    try:
        zk.create("/disc", b"found")
        for n in ns:
            c = KazooClient(hosts=f"127.0.0.1:{n.port}")
            c.start(timeout=10)
            c.sync("/disc")
            assert c.get("/disc")[0] == b"found"
            c.stop()
    finally:
        zk.stop()
    assert f"discovery.{discovery} named the ensemble" in ns[0].log_text()
    if discovery == "dns":
        assert "(localhost) resolves to 127.0.0.1" in ns[0].log_text()


def test_dns_retries_a_name_that_does_not_resolve_yet(nodes):
    # Server 3's name does not resolve (its container has not started, say):
    # the others log it once, keep retrying, and form a quorum of two.
    ns = nodes(3)
    servers = [f"1=localhost:{ns[0].quorum}:{ns[0].election}", f"2=localhost:{ns[1].quorum}:{ns[1].election}",
               f"3=corral-node3.invalid:{ns[2].quorum}:{ns[2].election}"]
    for n in ns[:2]:
        n.start(config(n, "dns", servers, "[discovery.dns]\ninterval_ms = 200\n"))
    wait_for(lambda: sorted(str(n.mode()) for n in ns[:2]) == ["follower", "leader"], what="a quorum of two")
    text = ns[0].log_text()
    assert "server 3 (corral-node3.invalid) does not resolve yet" in text, text
    time.sleep(1.0)  # several rounds: still one line, not one per round
    assert ns[0].log_text().count("corral-node3.invalid) does not resolve yet") == 1
    assert ns[0].proc.poll() is None


def test_an_ensemble_member_needs_its_own_id(nodes, tmp_path):
    (n,) = nodes(1)
    toml = config(n, "dns", [f"1=localhost:{n.quorum}:{n.election}"]).replace(f"id = {n.sid}\n", "", 1)
    # Without discovery: the config is refused, naming server.id.
    plain = toml.replace('discovery = "dns"\n', "")
    n.start(plain)
    assert n.proc.wait(timeout=10) == 2
    assert "server.id" in n.log_text() and "no default id" in n.log_text()
    # With dns discovery and no id from anywhere: refused at start, saying where an id comes from.
    n.start(toml)
    assert n.proc.wait(timeout=10) == 1
    assert "this server's id" in n.log_text(), n.log_text()


def test_dns_takes_the_id_from_a_statefulset_hostname(nodes):
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/unshare"):
        pytest.skip("needs root and unshare to give corrald its own hostname")
    ns = nodes(3)
    # The pattern's ports follow the ordinal: "localhost:2000{ordinal}:2001{ordinal}".
    q0 = 10000 + (os.getpid() % 500) * 20
    step = 10
    for i, n in enumerate(ns):
        n.quorum, n.election = q0 + i, q0 + step + i
    for i, n in enumerate(ns):
        toml = f"""
[server]
data_dir = "{n.dir / 'data'}"
client_address = "127.0.0.1:{n.port}"
tick_ms = 200
[plugins]
consensus = "zab"
election = "fle"
storage = "wal"
discovery = "dns"
[ensemble]
secret = "{PEER_SECRET}"
[discovery.dns]
interval_ms = 200
id_from_hostname = true
ordinal_base = 0
replicas = 3
pattern = "localhost:{q0 // 10}{{ordinal}}:{(q0 + step) // 10}{{ordinal}}"
"""
        path = n.dir / "corral.toml"
        path.write_text(toml)
        n.log = open(n.dir / "server.log", "wb")
        n.proc = subprocess.Popen(
            ["unshare", "--uts", "sh", "-c", f'hostname corral-{i} && exec "$0" "$@"', CORRALD, "--config", str(path),
             "--set", f'server.plugin_dir=["{PLUGIN_DIR}"]'],
            stdout=n.log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: sorted(str(n.mode()) for n in ns) == ["follower", "follower", "leader"], what="a leader")
    for i, n in enumerate(ns):
        assert f"this server is {i + 1}" in n.log_text(), n.log_text()
