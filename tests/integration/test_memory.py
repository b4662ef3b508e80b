"""What a session costs in memory: idle sessions must not hold buffers
sized for the traffic they might send (each connection once held a 64 KiB
read buffer of its own: 67 KB a session)."""
import resource
import time

import pytest

from corral_harness.jute import RawClient
from corral_harness.servers import TARGET

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="measures corrald's own memory")

SESSIONS = 1500


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def handshake(host, port):
    c = RawClient(host, port, timeout=10)
    assert c.handshake(read_only=False)["timeOut"] > 0, "session refused"
    return c


def test_idle_sessions_cost_a_few_kilobytes_each(server_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < SESSIONS + 200:
        pytest.skip(f"needs {SESSIONS + 200} file descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, SESSIONS + 200), hard))
    srv = server_factory(extra_args=["--set", "server.max_client_cnxns=0"])
    socks = [handshake(srv.host, srv.port)]  # the first session's one-time costs
    time.sleep(0.5)
    before = rss_kb(srv.proc.pid)
    try:
        t0 = time.monotonic()
        for i in range(SESSIONS):
            # Under server.session_create_rate (1,000 a second).
            ahead = i / 500 - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
            socks.append(handshake(srv.host, srv.port))
        time.sleep(1.0)
        per_session = (rss_kb(srv.proc.pid) - before) / SESSIONS
        assert per_session < 16, f"{per_session:.1f} KB of memory a session"
        assert srv.four("ruok") == "imok"
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
