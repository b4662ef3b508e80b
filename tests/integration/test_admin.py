"""The admin HTTP endpoint: ZooKeeper AdminServer-style JSON commands and
Prometheus metrics, with real figures, and bad requests answered with 4xx."""
import json
import socket
import urllib.error
import urllib.request

import pytest
from kazoo.client import KazooClient

from corral_harness.servers import TARGET, free_port

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="corrald's admin endpoint")


@pytest.fixture(scope="module")
def admin(tmp_path_factory):
    from corral_harness.servers import DEFAULT_TICK_MS, _started, _teardown
    port = free_port()
    srv = _started(tmp_path_factory, DEFAULT_TICK_MS, extra_args=["--set", f"server.admin_address=127.0.0.1:{port}"])
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=10)
    yield srv, f"http://127.0.0.1:{port}", zk
    zk.stop()
    zk.close()
    _teardown(srv)


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def test_commands_answer_json_with_real_figures(admin):
    srv, base, zk = admin
    zk.create("/admin-test", b"x", ephemeral=True)
    status, ctype, body = get(base + "/commands")
    assert status == 200 and ctype == "application/json"
    names = json.loads(body)["commands"]
    for n in ("ruok", "monitor", "server_stats", "stat", "configuration", "connections", "watch_summary",
              "environment", "dirs"):
        assert n in names
    assert json.loads(get(base + "/commands/ruok")[2]) == {"command": "ruok", "error": None}
    mntr = json.loads(get(base + "/commands/mntr")[2])
    assert mntr["command"] == "monitor" and mntr["server_state"] == "standalone"
    assert mntr["znode_count"] >= 5 and mntr["ephemerals_count"] == 1 and mntr["global_sessions"] >= 1
    stat = json.loads(get(base + "/commands/stat")[2])
    assert stat["server_stats"]["znode_count"] == stat["node_count"]
    assert any(c.get("session_id") == "0x%x" % zk.client_id[0] for c in stat["connections"])
    conf = json.loads(get(base + "/commands/configuration")[2])
    assert conf["client_port"] == srv.port and conf["storage"] == "wal"
    env = json.loads(get(base + "/commands/envi")[2])
    assert env["zookeeper.version"].startswith("3.9")


def test_probes_say_alive_and_ready_to_anyone(admin):
    srv, base, zk = admin
    status, ctype, body = get(base + "/health")
    assert status == 200 and json.loads(body) == {"alive": True}
    status, ctype, body = get(base + "/ready")
    ready = json.loads(body)
    assert status == 200 and ready["ready"] is True and ready["role"] == "standalone"
    assert int(ready["zxid"], 16) > 0 and ready["read_only"] is False


def test_metrics_are_prometheus_text(admin):
    srv, base, zk = admin
    zk.create("/metrics-test", b"y")
    zk.get("/metrics-test")
    status, ctype, body = get(base + "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    lines = body.splitlines()
    assert "# TYPE corral_znodes gauge" in lines
    assert any(l.startswith('corral_requests_total{op="create"} ') and int(l.split()[-1]) >= 1 for l in lines)
    assert any(l.startswith('corral_request_seconds_bucket{op="getData",le="+Inf"} ') for l in lines)
    assert any(l.startswith("corral_wal_fsync_seconds_count ") for l in lines)
    assert body.count("# TYPE corral_request_seconds histogram") == 1


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /commands/nosuch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404),
    (b"POST /commands/ruok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405),
    (b"GET /commands/ruok HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
    (b"GET /commands/ruok HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: attacker.example\r\n\r\n", 400),
    (b"garbage\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\n" + b"H: " + b"a" * 20000, 431),
])
def test_bad_requests_get_4xx_and_the_server_keeps_going(admin, request_bytes, status):
    srv, base, zk = admin
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request_bytes)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(f"HTTP/1.1 {status} ".encode()), reply[:80]
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]
    assert get(base + "/commands/ruok")[0] == 200
    assert zk.exists("/") is not None


def raw(port, request_bytes):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request_bytes)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


def test_a_request_naming_a_foreign_host_is_refused(admin, tmp_path_factory):
    """DNS rebinding: a page at attacker.example, whose name now points at
    127.0.0.1, reaches the admin endpoint through a visitor's browser with
    Host: attacker.example. It must get nothing (no command output, no
    change made with the browser's address as identity); addresses,
    localhost and the machine's own name are answered, and
    server.admin_hosts adds names."""
    srv, base, zk = admin
    port = int(base.rsplit(":", 1)[1])
    for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1.nip.io"):
        for req in (f"GET /commands/conf HTTP/1.1\r\nHost: {host}\r\n\r\n",
                    f"GET /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n",
                    f"POST /commands/restore HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"):
            reply = raw(port, req.encode())
            assert reply.startswith(b"HTTP/1.1 421 "), (host, reply[:120])
            assert b"server.admin_hosts" in reply
            assert b"data_dir" not in reply and b"corral_" not in reply
    for host in (f"127.0.0.1:{port}", "localhost", f"{socket.gethostname()}:{port}", f"[::1]:{port}"):
        reply = raw(port, f"GET /commands/ruok HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert reply.startswith(b"HTTP/1.1 200 "), (host, reply[:120])

    from corral_harness.servers import DEFAULT_TICK_MS, _started, _teardown
    other = free_port()
    listed = _started(tmp_path_factory, DEFAULT_TICK_MS,
                      extra_args=["--set", f"server.admin_address=127.0.0.1:{other}",
                                  "--set", 'server.admin_hosts=["corral.example.com", ".ops.example"]'])
    try:
        for host, status in (("corral.example.com", 200), ("a.ops.example:8080", 200),
                             ("ops.example.attacker", 421), ("attacker.example", 421)):
            reply = raw(other, f"GET /commands/ruok HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            assert reply.startswith(f"HTTP/1.1 {status} ".encode()), (host, reply[:120])
    finally:
        _teardown(listed)
