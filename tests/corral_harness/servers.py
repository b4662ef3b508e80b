"""Fixtures that run a real server (corrald or Apache ZooKeeper) on loopback.

CORRAL_TEST_TARGET=corrald (default) runs the binary from $CORRALD
(default <repo>/build/kernel/corrald); CORRAL_TEST_TARGET=zookeeper runs the
Debian-packaged Apache ZooKeeper, so every test can be checked against the
reference implementation first.

Each server runs in its own session (setsid), logs to a file in its temp
dir (attached to the report of any failing test) and is killed at teardown.

Fixtures:
  server          module-scoped server, tickTime 2000
  server_factory  function-scoped; server_factory(tick_ms=200) starts a
                  fresh server with a short tick (for session-expiry tests);
                  extra_args=[...] adds corrald options
  proxy_factory   proxy_factory(server) -> TCP proxy whose connections a
                  test can drop or refuse, to force client reconnects
"""
import os
import pathlib
import random
import signal
import socket
import subprocess
import threading
import time

import pytest

from corral_harness.net import (_live_servers, _zookeeper_classpath, free_port,  # noqa: F401
                                four_letter, zookeeper_classpath)

REPO = pathlib.Path(__file__).resolve().parents[2]


def plugin_abi():
    """The plugin ABI identity modules report, as sdk/ABI records it."""
    return (REPO / "sdk/ABI").read_text().split()[0]


TARGET = os.environ.get("CORRAL_TEST_TARGET", "corrald")
DEFAULT_TICK_MS = 2000
READY_TIMEOUT = 30.0
TEST_TIMEOUT = int(os.environ.get("CORRAL_TEST_TIMEOUT", "120"))



def wait_for(pred, timeout=30, what="condition"):
    """Waits until pred() is true; fails the test, naming `what`, after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Server:
    def __init__(self, workdir, tick_ms=DEFAULT_TICK_MS, extra_args=(), super_digest=None,
                 extended_types=False, container_check_ms=None, enforce_quota=False, sasl_users=None,
                 all_four_letter_words=True, tls=None, target=None, zk_properties=(),
                 data_dir=None, port=None):
        self.workdir = pathlib.Path(workdir)
        # Which server: TARGET by default; a test that moves data between the
        # two names one (import/export).
        self.target = target or TARGET
        self.zk_properties = list(zk_properties)  # more -D options for ZooKeeper
        self.extra_args = list(extra_args)  # more corrald options
        # Settings both servers understand:
        self.super_digest = super_digest    # "super:<base64 sha1>"
        self.extended_types = extended_types  # TTL nodes
        self.container_check_ms = container_check_ms
        self.enforce_quota = enforce_quota    # refuse writes past a hard quota
        self.all_four_letter_words = all_four_letter_words  # else the server's default whitelist
        self.jaas = None                      # SASL DIGEST-MD5 users, {name: password}
        if sasl_users:
            self.jaas = self.workdir / "jaas.conf"
            users = "\n".join(f'  user_{u}="{p}"' for u, p in sasl_users.items())
            self.jaas.write_text("Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
                                 f"{users};\n}};\n")
        # A TLS client port beside the plaintext one: tls = {"identity": a
        # certs.Identity for the server, "ca": the authority's PEM,
        # "client_auth": "none" | "want" | "need"}.
        self.tls = tls
        self.secure_port = free_port() if tls else None
        self.secure_hosts = f"127.0.0.1:{self.secure_port}" if tls else None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = pathlib.Path(data_dir) if data_dir else self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "server.log"
        self.tick_ms = tick_ms
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.hosts = f"{self.host}:{self.port}"
        self.proc = None
        self._log = None

    def _command(self):
        if self.target == "zookeeper":
            cfg = self.workdir / "zoo.cfg"
            cfg.write_text(
                f"tickTime={self.tick_ms}\n"
                f"dataDir={self.data_dir}\n"
                f"clientPort={self.port}\n"
                f"clientPortAddress={self.host}\n"
                "4lw.commands.whitelist=*\n"
                "admin.enableServer=false\n"
                "forceSync=yes\n"
                + ("authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n" if self.jaas else "")
                + (self._zookeeper_tls() if self.tls else ""))
            sysprops = list(self.zk_properties)
            if self.super_digest:
                sysprops.append(f"-Dzookeeper.DigestAuthenticationProvider.superDigest={self.super_digest}")
            if self.extended_types:
                sysprops.append("-Dzookeeper.extendedTypesEnabled=true")
            if self.container_check_ms:
                sysprops.append(f"-Dznode.container.checkIntervalMs={self.container_check_ms}")
            if self.enforce_quota:
                sysprops.append("-Dzookeeper.enforceQuota=true")
            if self.jaas:
                sysprops.append(f"-Djava.security.auth.login.config={self.jaas}")
            return ["java", "-XX:TieredStopAtLevel=1", "-Xshare:auto", *sysprops,
                    "-cp", _zookeeper_classpath(),
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                    str(cfg)]
        if self.target != "corrald":
            raise pytest.UsageError(f"unknown CORRAL_TEST_TARGET={self.target!r}")
        binary = os.environ.get("CORRALD", str(REPO / "build/kernel/corrald"))
        plugins = os.environ.get("CORRAL_PLUGIN_DIR", str(REPO / "build/plugins"))
        if not os.access(binary, os.X_OK):
            pytest.fail(f"corrald binary not found at {binary} (set CORRALD)")
        # Every word, as the ZooKeeper target's 4lw.commands.whitelist=* (the
        # default whitelist is tested on its own).
        cmd = [binary,
               *(["--set", "server.four_letter_words=[\"*\"]"] if self.all_four_letter_words else []),
               "--set", f"server.client_address={self.hosts}",
               "--set", f"server.data_dir={self.data_dir}",
               "--set", f"server.plugin_dir={plugins}"]
        if self.tick_ms != DEFAULT_TICK_MS:
            cmd += ["--set", f"server.tick_ms={self.tick_ms}"]
        if self.super_digest:
            cmd += ["--set", f"server.super_digest={self.super_digest}"]
        if self.extended_types:
            cmd += ["--set", "server.extended_types=true"]
        if self.container_check_ms:
            cmd += ["--set", f"server.container_check_interval_ms={self.container_check_ms}"]
        if self.enforce_quota:
            cmd += ["--set", "server.enforce_quota=true"]
        if self.jaas:
            cmd += ["--set", f"server.jaas_config={self.jaas}"]
        if self.tls:
            cmd += ["--set", f"server.secure_client_address={self.secure_hosts}",
                    "--set", f"transport.tls.certificate={self.tls['identity'].pem}",
                    "--set", f"transport.tls.ca={self.tls['ca']}",
                    "--set", f"transport.tls.client_auth={self.tls.get('client_auth', 'want')}"]
        return cmd + self.extra_args

    def _zookeeper_tls(self):
        # ZooKeeper 3.8's Netty server with PEM stores and its x509 provider.
        ident = self.tls["identity"]
        return (f"secureClientPort={self.secure_port}\n"
                "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
                "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n"
                f"ssl.keyStore.location={ident.pem}\nssl.keyStore.type=PEM\n"
                f"ssl.trustStore.location={self.tls['ca']}\nssl.trustStore.type=PEM\n"
                f"ssl.clientAuth={self.tls.get('client_auth', 'want')}\n")

    def start(self):
        assert self.proc is None, "server already running"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self._command(), cwd=self.workdir, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)  # setsid: own session and process group
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.kill()
                raise RuntimeError(f"server exited with {code}"
                                   f"\n{self.log_tail()}")
            try:
                # ZooKeeper answers ruok before its database is loaded;
                # srvr tells when it really serves requests.
                if (self.four("ruok") == "imok" and
                        "not currently serving" not in self.four("srvr")):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server not ready after {READY_TIMEOUT}s"
                           f"\n{self.log_tail()}")

    def _signal(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self, timeout):
        try:
            self.proc.wait(timeout)
        finally:
            self.proc = None
            self._log.close()

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
        self._reap(timeout)

    def kill(self):
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        self._reap(10.0)

    def four(self, word):
        return four_letter(self.host, self.port, word)

    def log_tail(self, lines=150):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _started(tmp_path_factory, tick_ms, extra_args=(), **settings):
    srv = Server(tmp_path_factory.mktemp(TARGET), tick_ms=tick_ms, extra_args=extra_args, **settings)
    _live_servers.append(srv)
    try:
        srv.start()
    except Exception:
        _live_servers.remove(srv)
        raise
    return srv


def _teardown(srv):
    srv.kill()
    _live_servers.remove(srv)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = _started(tmp_path_factory, DEFAULT_TICK_MS)
    yield srv
    _teardown(srv)


@pytest.fixture
def server_factory(tmp_path_factory):
    made = []

    def make(tick_ms=DEFAULT_TICK_MS, extra_args=(), **settings):
        srv = _started(tmp_path_factory, tick_ms, extra_args, **settings)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        _teardown(srv)


class Proxy:
    """Loopback TCP proxy in front of a server.

    drop() cuts every open connection; pause() also refuses new ones (accepts
    and closes them at once) until resume().
    """

    def __init__(self, server):
        self.target = (server.host, server.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.host = "127.0.0.1"
        self.port = self.listener.getsockname()[1]
        self.hosts = f"{self.host}:{self.port}"
        self.paused = False
        self.closed = False
        self.lock = threading.Lock()
        self.conns = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.paused:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b),
                                 daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        src.settimeout(None)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def pause(self):
        self.paused = True
        self.drop()

    def resume(self):
        self.paused = False

    def close(self):
        self.closed = True
        self.drop()
        self.listener.close()
        self.thread.join(2)


@pytest.fixture
def proxy_factory():
    made = []

    def make(server):
        p = Proxy(server)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture(autouse=True)
def hang_guard(request):
    """Fail a test that hangs (e.g. a server that never replies): after
    CORRAL_TEST_TIMEOUT seconds, or more for a test marked
    @pytest.mark.hang_guard_seconds(N) (a harness that runs for minutes)."""
    mark = request.node.get_closest_marker("hang_guard_seconds")
    seconds = max(TEST_TIMEOUT, int(mark.args[0])) if mark else TEST_TIMEOUT

    def expire(signum, frame):
        raise TimeoutError(f"test still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in _live_servers:
            rep.sections.append((f"server log {srv.log_path}", srv.log_tail()))


@pytest.fixture
def ensemble_factory(tmp_path):
    from corral_harness.ensemble import Ensemble
    made = []

    def make(**kw):
        ens = Ensemble(tmp_path / f"ensemble{len(made)}", **kw)
        made.append(ens)
        ens.start()
        return ens

    yield make
    for ens in made:
        ens.close()
        for m in ens.members:
            if m in _live_servers:
                _live_servers.remove(m)

