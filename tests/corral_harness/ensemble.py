"""Ensembles of real servers on loopback, for corrald or Apache ZooKeeper.

Both read the same zoo.cfg (server.N lines, dataDir/myid), so every ensemble
test runs against ZooKeeper too (CORRAL_TEST_TARGET=zookeeper). Each member
runs in its own session (setsid), with its own ports, data and log.

    ens = Ensemble(tmp_path, voters=3, observers=0, tick_ms=500)
    ens.start()                 # every member up, one leader elected
    ens.leader()                # the index of the member that leads
    ens.kill(i); ens.start_member(i)
    ens.hosts()                 # "127.0.0.1:p1,127.0.0.1:p2,..." for clients

The one launcher the tests (through the ensemble_factory fixture in
servers.py) and the benchmarks (bench/ensemble_side_by_side.py) share.
"""
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import time

from corral_harness.net import _live_servers, four_letter, free_port, zookeeper_classpath

REPO = pathlib.Path(__file__).resolve().parents[2]
# What the suites run against: corrald (default) or Apache ZooKeeper.
TARGET = os.environ.get("CORRAL_TEST_TARGET", "corrald")
# A JVM tuned to start fast, for tests; the benchmarks give their own.
TEST_JVM = ["-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Xmx512m"]


CONSENSUS = os.environ.get("CORRAL_CONSENSUS", "")


class Member:
    def __init__(self, workdir, sid, observer):
        self.sid = sid
        self.observer = observer
        self.workdir = pathlib.Path(workdir) / f"server{sid}"
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "server.log"
        self.host = "127.0.0.1"
        self.port = free_port()
        self.quorum_port = free_port()
        self.election_port = free_port()
        self.proc = None
        self._log = None

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def line(self):
        kind = "observer" if self.observer else "participant"
        return f"server.{self.sid}={self.host}:{self.quorum_port}:{self.election_port}:{kind}"

    def four(self, word):
        return four_letter(self.host, self.port, word)

    def mode(self):
        """leader, follower, observer, or None when not serving/not running."""
        try:
            for line in self.four("srvr").splitlines():
                if line.startswith("Mode: "):
                    return line[6:].strip()
        except OSError:
            pass
        return None

    def log_tail(self, lines=120):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


QUORUM_JAAS = """QuorumServer {{
  org.apache.zookeeper.server.auth.DigestLoginModule required
  user_{user}="{password}";
}};
QuorumLearner {{
  org.apache.zookeeper.server.auth.DigestLoginModule required
  username="{user}"
  password="{password}";
}};
"""
QUORUM_AUTH_CFG = ("quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n"
                   "quorum.auth.serverRequireSasl=true\n")


class Ensemble:
    """peer_auth: members prove who they are to each other with ZooKeeper's
    quorum DIGEST-MD5 settings (quorum.auth.* and a JAAS file with
    QuorumServer/QuorumLearner sections), which both servers read."""

    def __init__(self, workdir, voters=3, observers=0, tick_ms=500, extra_cfg="", extra_args=(), peer_auth=True,
                 target=None, jvm=None, corrald=None, plugin_dir=None, pki=None, ssl_quorum=False,
                 port_unification=False, network=None, extra_env=None, member_args=None):
        self.target = target or TARGET
        self.jvm = list(jvm) if jvm else TEST_JVM
        self.corrald = corrald or os.environ.get("CORRALD", str(REPO / "build/kernel/corrald"))
        self.plugin_dir = plugin_dir or os.environ.get("CORRAL_PLUGIN_DIR", str(REPO / "build/plugins"))
        self.members = [Member(workdir, i + 1, i >= voters) for i in range(voters + observers)]
        # network (tests/faults' Network): each member in its own network
        # namespace, at its own address, on ZooKeeper's usual ports.
        self.network = network
        if network:
            for m in self.members:
                self._place(m)
        self.tick_ms = tick_ms
        self.extra_cfg = extra_cfg
        self.extra_args = list(extra_args)  # more corrald options
        self.extra_env = dict(extra_env or {})  # more environment for every member
        self.member_args = member_args  # member -> more corrald options of its own
        # Quorum TLS (ZooKeeper's sslQuorum, ssl.quorum.*): `pki` (a
        # certs.Pki) gives each member a certificate naming server.N and
        # 127.0.0.1; set_tls() changes the stage for a rolling switch.
        self.pki = pki
        self.ssl_quorum = ssl_quorum
        self.port_unification = port_unification
        if pki:
            for m in self.members:
                m.cert = pki.issue(f"server.{m.sid}", ips=[m.host])
        self.jaas = None
        if peer_auth:
            self.jaas = pathlib.Path(workdir) / "quorum-jaas.conf"
            self.jaas.write_text(QUORUM_JAAS.format(user="member", password=secrets.token_hex(16)))
        for m in self.members:
            self._write_config(m)

    def _place(self, m):
        m.host = self.network.address(m.sid)
        m.port, m.quorum_port, m.election_port = 2181, 2888, 3888
        m.netns = self.network.namespace(m.sid)

    def _write_config(self, m, members=None):
        servers = "\n".join(x.line() for x in (members or self.members))
        cfg = (f"tickTime={self.tick_ms}\ninitLimit=10\nsyncLimit=5\n"
               f"dataDir={m.data_dir}\nclientPort={m.port}\nclientPortAddress={m.host}\n"
               "4lw.commands.whitelist=*\nadmin.enableServer=false\nforceSync=yes\n"
               f"peerType={'observer' if m.observer else 'participant'}\n"
               f"{servers}\n{QUORUM_AUTH_CFG if self.jaas else ''}{self.extra_cfg}\n"
               + self._tls_cfg(m))
        (m.workdir / "zoo.cfg").write_text(cfg)
        m.data_dir.mkdir(parents=True, exist_ok=True)
        (m.data_dir / "myid").write_text(f"{m.sid}\n")

    def rejoin(self, i, members, observer):
        """Rewrites member i's zoo.cfg for joining the ensemble again by
        reconfig, with an empty data directory: `members` (indexes, i among
        them) as its membership, itself as an observer or a participant."""
        m = self.members[i]
        m.observer = observer
        shutil.rmtree(m.data_dir, ignore_errors=True)
        self._write_config(m, [self.members[j] for j in members])

    def _tls_cfg(self, m):
        if not self.pki or not (self.ssl_quorum or self.port_unification):
            return ""
        if not hasattr(m, "cert"):
            m.cert = self.pki.issue(f"server.{m.sid}", ips=[m.host])
        return (f"sslQuorum={'true' if self.ssl_quorum else 'false'}\n"
                f"portUnification={'true' if self.port_unification else 'false'}\n"
                f"ssl.quorum.keyStore.location={m.cert.pem}\nssl.quorum.keyStore.type=PEM\n"
                f"ssl.quorum.trustStore.location={self.pki.ca_cert}\nssl.quorum.trustStore.type=PEM\n")

    def set_tls(self, ssl_quorum, port_unification):
        """Rewrites every member's zoo.cfg for a stage of the switch to TLS;
        members take it when next started."""
        self.ssl_quorum = ssl_quorum
        self.port_unification = port_unification
        for m in self.members:
            self._write_config(m)

    def add_member(self, observer=False):
        """A new member, not started, whose zoo.cfg lists every member and
        itself (as a server joining by reconfig is configured); the others'
        files are left as they are."""
        m = Member(self.members[0].workdir.parent, max(x.sid for x in self.members) + 1, observer)
        if self.network:
            self._place(m)
        self.members.append(m)
        self._write_config(m)
        return len(self.members) - 1

    def _command(self, m):
        netns = ["ip", "netns", "exec", m.netns] if self.network else []
        return netns + self._server_command(m)

    def _server_command(self, m):
        cfg = str(m.workdir / "zoo.cfg")
        if self.target == "zookeeper":
            jaas = [f"-Djava.security.auth.login.config={self.jaas}"] if self.jaas else []
            return ["java", *self.jvm, *jaas, "-cp", zookeeper_classpath(),
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        jaas = ["--set", f"server.jaas_config={self.jaas}"] if self.jaas else []
        own = self.member_args(m) if self.member_args else []
        # CORRAL_CONSENSUS=raft runs the ensemble suites on the raft module
        # (zoo.cfg names zab, as ZooKeeper's own file would).
        consensus = ["--set", f"plugins.consensus={CONSENSUS}"] if CONSENSUS else []
        return [self.corrald, "--zoo-cfg", cfg, "--set", f"server.plugin_dir={self.plugin_dir}", *jaas,
                *consensus, *self.extra_args, *own]

    def hosts(self, members=None):
        return ",".join(m.address for m in (members or self.members))

    def start(self, timeout=60):
        for i in range(len(self.members)):
            self.start_member(i, wait=False)
        self.wait_serving(timeout=timeout)

    def start_member(self, i, wait=True, timeout=60):
        m = self.members[i]
        assert m.proc is None
        if m not in _live_servers:
            _live_servers.append(m)  # its log goes with a failing test's report
        m._log = open(m.log_path, "ab")
        env = {**os.environ, **self.extra_env} if self.extra_env else None
        m.proc = subprocess.Popen(self._command(m), cwd=m.workdir, stdin=subprocess.DEVNULL, env=env,
                                  stdout=m._log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_serving([i], timeout=timeout)

    def wait_serving(self, which=None, timeout=60):
        """Waits until the given members (default: all running) serve clients
        and one of the running members leads."""
        deadline = time.monotonic() + timeout
        which = which if which is not None else [i for i, m in enumerate(self.members) if m.proc]
        while time.monotonic() < deadline:
            for i in which:
                m = self.members[i]
                if m.proc and m.proc.poll() is not None:
                    raise RuntimeError(f"server {m.sid} exited with {m.proc.returncode}\n{m.log_text()[-4000:]}")
            modes = [self.members[i].mode() for i in which]
            if all(modes) and self.leader() is not None:
                return
            time.sleep(0.05)
        raise RuntimeError("ensemble not serving after %ss: %s\n%s" % (
            timeout, [self.members[i].mode() for i in which],
            "\n".join(f"--- server {m.sid}\n{m.log_text()[-3000:]}" for m in self.members)))

    def leader(self):
        for i, m in enumerate(self.members):
            if m.proc and m.mode() == "leader":
                return i
        return None

    def followers(self):
        return [i for i, m in enumerate(self.members) if m.proc and m.mode() == "follower"]

    def pause(self, i):
        """SIGSTOP: the member stops answering but keeps its sockets."""
        self._signal(self.members[i], signal.SIGSTOP)

    def resume(self, i):
        self._signal(self.members[i], signal.SIGCONT)

    def _signal(self, m, sig):
        try:
            os.killpg(m.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self, i):
        m = self.members[i]
        if m.proc is None:
            return
        self._signal(m, signal.SIGKILL)
        self._signal(m, signal.SIGCONT)  # a paused one dies too
        m.proc.wait(10)
        m.proc = None
        m._log.close()

    def stop_member(self, i):
        m = self.members[i]
        if m.proc is None:
            return
        self._signal(m, signal.SIGTERM)
        self._signal(m, signal.SIGCONT)
        try:
            m.proc.wait(15)
        except subprocess.TimeoutExpired:
            self._signal(m, signal.SIGKILL)
            m.proc.wait(10)
        m.proc = None
        m._log.close()

    def close(self):
        for i in range(len(self.members)):
            self.kill(i)
