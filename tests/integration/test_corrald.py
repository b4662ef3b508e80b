"""Behaviour of corrald itself: its command line, configuration errors,
plugin selection, the example recipe, shutdown and connection limits."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest
from kazoo.client import KazooClient

from corral_harness.servers import REPO, TARGET, free_port, plugin_abi

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="corrald's own interface")

CORRALD = os.environ.get("CORRALD", str(REPO / "build/kernel/corrald"))
PLUGINS = os.environ.get("CORRAL_PLUGIN_DIR", str(REPO / "build/plugins"))


def run(*args, timeout=10):
    return subprocess.run([CORRALD, "--set", f"server.plugin_dir={PLUGINS}", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_unknown_plugin_fails_at_once_listing_the_available_ones(tmp_path):
    started = time.monotonic()
    r = run("--set", "plugins.storage=nosuch", "--set", f"server.data_dir={tmp_path}",
            "--set", f"server.client_address=127.0.0.1:{free_port()}")
    assert r.returncode == 1
    assert time.monotonic() - started < 5
    assert "no storage plugin named 'nosuch'" in r.stderr
    assert "available storage plugins: memory" in r.stderr


@pytest.mark.parametrize("setting, words", [
    ("server.tick_ms=fast", ["server.tick_ms", "an integer"]),
    ("server.clientport=1", ["unknown key 'server.clientport'", "client_address"]),
    ("server.client_address=nowhere", ["server.client_address", "host:port"]),
    ("plugins.recipes=7", ["plugins.recipes", "array of strings"]),
])
def test_configuration_errors_name_the_key_and_expectation(setting, words):
    r = run("--set", setting)
    assert r.returncode == 2, r.stderr
    for w in words:
        assert w in r.stderr


def test_config_file_errors_name_file_and_line(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[server]\nid = 1\ntick_ms = -5\n")
    r = run("--config", str(cfg))
    assert r.returncode == 2
    assert f"{cfg}:3" in r.stderr and "tick_ms" in r.stderr


def test_zoo_cfg_is_understood(tmp_path):
    port = free_port()
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"tickTime=500\ndataDir={tmp_path}/zk\nclientPort={port}\n"
                   "clientPortAddress=127.0.0.1\ninitLimit=10\nautopurge.purgeInterval=1\n")
    r = run("--zoo-cfg", str(cfg), "--print-config")
    assert r.returncode == 0, r.stderr
    assert f"client_address = '127.0.0.1:{port}'" in r.stdout
    assert "tick_ms = 500" in r.stdout
    assert "autopurge.purgeInterval" in r.stderr  # reported as ignored
    assert "init_limit = 10" in r.stdout  # for an ensemble's zab


def test_list_plugins_shows_kind_name_and_abi():
    r = run("--list-plugins")
    assert r.returncode == 0
    for kind, name in [("transport", "tcp"), ("consensus", "standalone"),
                       ("storage", "memory"), ("recipe", "server-info")]:
        assert any(line.split()[:2] == [kind, name] and f"abi {plugin_abi()}" in line
                   for line in r.stdout.splitlines()), r.stdout


def test_sigterm_stops_the_server_promptly(server_factory):
    srv = server_factory()
    client = KazooClient(hosts=srv.hosts)
    client.start(timeout=10)
    try:
        started = time.monotonic()
        srv._signal(signal.SIGTERM)
        code = srv.proc.wait(5)
        assert code == 0
        assert time.monotonic() - started < 3
        assert "shutting down" in srv.log_path.read_text()
    finally:
        client.stop()
        client.close()
        srv.proc = None
        srv._log.close()


def test_the_log_goes_to_a_file_too_to_its_last_line_and_rolls(server_factory, tmp_path):
    """server.log_file (the image's ZOO_LOG_DIR): every line stderr gets,
    written by corrald itself, so the last ones before it exits are there;
    rolled to .1 at log_file_max_bytes."""
    log = tmp_path / "logs" / "corral.log"
    srv = server_factory(extra_args=["--set", f"server.log_file={log}",
                                     "--set", "server.log_file_max_bytes=4096"])
    for _ in range(9):
        srv.stop()
        srv.start()
    srv.stop()
    stderr_lines = [ln for ln in srv.log_path.read_text().splitlines() if ln[:4].isdigit()]
    assert stderr_lines[-1].endswith("[corrald] stopped")
    rolled = log.with_name("corral.log.1")
    assert rolled.exists() and log.stat().st_size <= 4096
    assert rolled.stat().st_size <= 4096
    in_files = rolled.read_text().splitlines() + log.read_text().splitlines()
    # What the two files hold is the end of what went to stderr, line for line.
    assert in_files == stderr_lines[-len(in_files):]
    assert in_files[-1].endswith("[corrald] stopped")
    # A file that cannot be opened stops the start, naming it.
    r = run("--set", f"server.data_dir={tmp_path / 'd'}", "--set", f"server.client_address=127.0.0.1:{free_port()}",
            "--set", f"server.log_file={tmp_path}")
    assert r.returncode == 1 and f"server.log_file: cannot open '{tmp_path}'" in r.stderr, r.stderr


def test_server_info_recipe_publishes_and_refreshes(server_factory):
    srv = server_factory(extra_args=["--set", 'plugins.recipes=["server-info"]',
                                     "--set", "recipe.server-info.interval_ms=100",
                                     "--set", "recipe.server-info.path=/services/corral"])
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=10)
    try:
        deadline = time.monotonic() + 10
        while not zk.exists("/services/corral/1") and time.monotonic() < deadline:
            time.sleep(0.05)
        data, stat = zk.get("/services/corral/1")
        info = json.loads(data)
        assert info["id"] == 1
        assert info["role"] == "standalone"
        assert info["client_address"] == srv.hosts
        assert stat.ephemeralOwner != 0
        time.sleep(0.5)
        data2, stat2 = zk.get("/services/corral/1")
        assert stat2.version > stat.version
        assert json.loads(data2)["updated_ms"] > info["updated_ms"]
        # Someone deletes it: the recipe publishes it again.
        zk.delete("/services/corral/1")
        deadline = time.monotonic() + 5
        while not zk.exists("/services/corral/1") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert zk.exists("/services/corral/1")
    finally:
        zk.stop()
        zk.close()


def test_recipe_config_errors_stop_startup(tmp_path):
    r = run("--set", 'plugins.recipes=["server-info"]', "--set", "recipe.server-info.interval_ms=1",
            "--set", f"server.data_dir={tmp_path}", "--set", f"server.client_address=127.0.0.1:{free_port()}")
    assert r.returncode == 1
    assert "recipe.server-info.interval_ms" in r.stderr and "at least 10" in r.stderr


def test_connections_per_ip_are_limited(server_factory):
    srv = server_factory(extra_args=["--set", "server.max_client_cnxns=2"])
    socks = [socket.create_connection((srv.host, srv.port), timeout=5) for _ in range(3)]
    try:
        socks[2].settimeout(5)
        assert socks[2].recv(1) == b""  # the third is closed at once
        assert "too many connections" in srv.log_path.read_text()
    finally:
        for s in socks:
            s.close()


def test_a_client_that_does_not_read_is_not_read_either(server_factory):
    """Replies a client leaves unread are bounded: the server stops taking
    its requests until it reads, then answers every one, in order."""
    from corral_harness import jute
    srv = server_factory()
    c = jute.RawClient(srv.host, srv.port)
    c.handshake(read_only=False)
    assert c.request(jute.CREATE, jute.create_body("/big", b"b" * 900_000))[2] == jute.OK
    requests = b"".join(jute.frame(jute.Writer().int(100 + i).int(jute.GET_DATA).bytes() + jute.path_watch("/big"))
                        for i in range(300))
    c.send(requests)  # 300 replies of 900 KB: 270 MB if all were answered at once
    time.sleep(1.0)
    cons = srv.four("cons")
    local = "%s:%d" % c.sock.getsockname()
    line = next(l for l in cons.splitlines() if local in l)
    recved = int(line.split("recved=")[1].split(",")[0])
    assert recved < 40, line  # handshake + create + the first getData replies up to the limit
    c.sock.settimeout(20)
    for i in range(300):
        xid, _, err, r = c._read_reply()
        assert (xid, err) == (100 + i, jute.OK) and len(r.buffer()) == 900_000
    c.close()


def _tunables(srv):
    """The malloc tunables corrald runs with. glibc parses GLIBC_TUNABLES in
    place, ending each tunable with a NUL: in /proc/PID/environ the second
    and later ones look like entries of their own."""
    environ = pathlib.Path(f"/proc/{srv.proc.pid}/environ").read_bytes().decode().split("\0")
    out = []
    for e in environ:
        if e.startswith("GLIBC_TUNABLES="):
            e = e.split("=", 1)[1]
        if e.startswith("glibc."):
            out += e.split(":")
    return out


@pytest.mark.parametrize("env, expected, absent", [
    ({}, ["glibc.malloc.tcache_count=2048"], "glibc.malloc.hugetlb"),
    ({"CORRAL_HUGEPAGES": "1"}, ["glibc.malloc.tcache_count=2048", "glibc.malloc.hugetlb=1"], None),
    # A tunable the user set stays as they set it.
    ({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=16"}, ["glibc.malloc.tcache_count=16"], "hugetlb"),
])
def test_malloc_tunables_huge_pages_only_when_asked(server_factory, monkeypatch, env, expected, absent):
    monkeypatch.delenv("CORRAL_HUGEPAGES", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    srv = server_factory()
    tunables = _tunables(srv)
    for t in expected:
        assert t in tunables, tunables
    if absent:
        assert not any(absent in t for t in tunables), tunables
    if "GLIBC_TUNABLES" in env:
        assert "glibc.malloc.tcache_count=2048" not in tunables
