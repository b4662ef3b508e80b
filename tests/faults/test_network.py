"""The fault network does what the nemeses say: links cut, loss applied,
everything healed."""
import socket
import subprocess

import pytest

from faults.network import Network, available, netem_available

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


def _listen(net, n, port=7000):
    """A TCP listener inside server n's namespace that accepts forever."""
    script = ("import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
              f"s.bind(('{net.address(n)}',{port}));s.listen(64)\nprint('up',flush=True)\n"
              "while True:\n c,_=s.accept();c.close()\n")
    p = subprocess.Popen(["ip", "netns", "exec", net.namespace(n), "/usr/bin/python3", "-c", script],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "up"
    return p


def _reaches(net, src, dst, port=7000):
    """Whether a connection from server src's namespace (or the root
    namespace when src is None) to server dst succeeds within a second."""
    if src is None:
        try:
            socket.create_connection((net.address(dst), port), timeout=1).close()
            return True
        except OSError:
            return False
    code = (f"import socket\ntry:\n socket.create_connection(('{net.address(dst)}',{port}),timeout=1).close()\n"
            " print('yes')\nexcept OSError:\n print('no')\n")
    out = subprocess.run(["ip", "netns", "exec", net.namespace(src), "/usr/bin/python3", "-c", code],
                         stdout=subprocess.PIPE, text=True).stdout.strip()
    return out == "yes"


@pytest.fixture
def net():
    n = Network(3)
    listeners = [_listen(n, i) for i in n.nodes]
    yield n
    for p in listeners:
        p.kill()
        p.wait()
    n.close()


def test_everyone_reaches_everyone_until_partitioned(net):
    assert all(_reaches(net, a, b) for a in net.nodes for b in net.nodes if a != b)
    assert all(_reaches(net, None, b) for b in net.nodes)
    net.partition([{1}, {2, 3}])
    assert not _reaches(net, 1, 2) and not _reaches(net, 3, 1)
    assert _reaches(net, 2, 3) and _reaches(net, None, 1)
    net.heal()
    assert _reaches(net, 1, 2) and _reaches(net, 3, 1)


def test_a_bridge_sees_both_halves(net):
    net.cut([(1, 3)])
    assert not _reaches(net, 1, 3) and not _reaches(net, 3, 1)
    assert _reaches(net, 1, 2) and _reaches(net, 2, 3)


def test_loss_drops_packets(net):
    net.lose(1.0, nodes=[2])
    assert not _reaches(net, 1, 2) and not _reaches(net, None, 2)
    assert _reaches(net, 1, 3)
    net.heal()
    assert _reaches(net, 1, 2)


def test_leftovers_of_a_dead_run_are_removed():
    subprocess.run(["ip", "netns", "add", "corral-f9"], check=True)
    n = Network(3)
    try:
        names = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True).stdout
        assert "corral-f9" not in names
    finally:
        n.close()
    names = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True).stdout
    assert "corral-f" not in names


@pytest.mark.skipif(netem_available() is not None, reason=str(netem_available()))
def test_delay_holds_packets_and_heal_releases_them(net):
    import time

    def connect_time():
        t = time.monotonic()
        socket.create_connection((net.address(2), 7000), timeout=5).close()
        return time.monotonic() - t

    assert connect_time() < 0.1
    net.delay(300, 0, nodes=[2])  # server 2's SYN-ACK waits 300 ms
    assert 0.25 < connect_time() < 2
    net.heal()
    assert connect_time() < 0.1
