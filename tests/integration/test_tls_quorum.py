"""Peers over mutual TLS, read from zoo.cfg as ZooKeeper's sslQuorum and
ssl.quorum.*: replication and failover with every peer link encrypted, a
member whose certificate names another server refused, a plaintext dial to a
TLS-only peer port refused, and the rolling switch of a running ensemble from
plaintext to TLS (portUnification) without losing an acknowledged write.
The ensemble tests run against ZooKeeper too (./dev reference), except those
that read Corral's log."""
import socket
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NodeExistsError, SessionExpiredError
from kazoo.retry import KazooRetry

from corral_harness.certs import Pki
from corral_harness.servers import TARGET, wait_for

CORRALD_ONLY = pytest.mark.skipif(TARGET != "corrald", reason="reads Corral's log")


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path / "pki")


def client(hosts):
    zk = KazooClient(hosts=hosts, timeout=10.0, connection_retry=KazooRetry(max_tries=-1, max_delay=0.5),
                     command_retry=KazooRetry(max_tries=50, delay=0.05, max_delay=0.5))
    zk.start(timeout=30)
    return zk


def test_replication_and_failover_over_quorum_tls(ensemble_factory, pki):
    ens = ensemble_factory(voters=3, peer_auth=False, pki=pki, ssl_quorum=True)
    zk = client(ens.hosts())
    for i in range(20):
        zk.create(f"/q/n{i}", b"x", makepath=True)
    old = ens.leader()
    ens.kill(old)
    ens.wait_serving([i for i in range(3) if i != old])
    zk.retry(zk.create, "/q/after", b"y")
    ens.start_member(old)
    reader = KazooClient(hosts=ens.members[old].address)
    reader.start(timeout=30)
    reader.sync("/q")
    assert len(reader.get_children("/q")) == 21
    for c in (zk, reader):
        c.stop()
    if TARGET == "corrald":
        log = ens.members[old].log_text()
        assert "peer links: dialed over TLS, accepted in TLS only" in log


@CORRALD_ONLY
def test_a_member_with_another_servers_certificate_is_refused(tmp_path, pki):
    from corral_harness.ensemble import Ensemble
    ens = Ensemble(tmp_path / "ens", voters=3, peer_auth=False, pki=pki, ssl_quorum=True)
    # Server 3 presents server 2's certificate (valid, signed by the same
    # authority): it cannot speak as server 3.
    ens.members[2].cert = ens.members[1].cert
    ens.set_tls(True, False)
    try:
        ens.start_member(0, wait=False)
        ens.start_member(1, wait=False)
        ens.start_member(2, wait=False)
        ens.wait_serving([0, 1])
        wait_for(lambda: any("certificate does not prove it is server 3" in m.log_text() for m in ens.members[:2]),
                 timeout=30, what="the refusal of server 3's links")
        assert ens.members[2].mode() is None
        zk = client(ens.hosts(ens.members[:2]))
        zk.create("/still", b"serving")
        zk.stop()
    finally:
        ens.close()


@CORRALD_ONLY
def test_a_plaintext_dial_to_a_tls_peer_port_is_refused(ensemble_factory, pki):
    ens = ensemble_factory(voters=3, peer_auth=False, pki=pki, ssl_quorum=True)
    m = ens.members[0]
    with socket.create_connection((m.host, m.quorum_port), timeout=10) as s:
        s.sendall(b"\x00\x00\x00\x10" + b"\x00" * 16)
        s.settimeout(10)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    wait_for(lambda: "speaks plaintext on a TLS port" in m.log_text(), timeout=10, what="the refusal")
    assert ens.leader() is not None


def test_rolling_switch_from_plaintext_to_tls_loses_no_write(ensemble_factory, pki):
    """ZooKeeper's procedure: every server restarted with portUnification,
    then with sslQuorum, then without portUnification, one at a time, while
    a client writes."""
    ens = ensemble_factory(voters=3, peer_auth=False, pki=pki)
    acked, stop = [], threading.Event()

    def writer():
        zk = client(ens.hosts())
        n = 0
        while not stop.is_set():
            try:
                zk.create(f"/roll/n{n:06d}", b"v", makepath=True)
                acked.append(n)
                n += 1
            except (ConnectionLoss, SessionExpiredError):
                time.sleep(0.1)
            except NodeExistsError:  # a create retried after it was written
                acked.append(n)
                n += 1
        zk.stop()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    wait_for(lambda: len(acked) > 20, timeout=30, what="writes before the switch")
    for stage in ((False, True), (True, True), (True, False)):
        ens.set_tls(*stage)
        for i in range(3):
            ens.stop_member(i)
            ens.start_member(i)
            before = len(acked)
            wait_for(lambda: len(acked) > before + 5, timeout=60, what=f"writes after restarting {i} at {stage}")
    stop.set()
    t.join(60)
    zk = client(ens.hosts())
    zk.sync("/roll")
    present = {int(c[1:]) for c in zk.get_children("/roll")}
    zk.stop()
    missing = [n for n in acked if n not in present]
    assert not missing, f"{len(missing)} acknowledged writes lost: {missing[:10]}"
    if TARGET == "corrald":
        for m in ens.members:
            assert "peer links: dialed over TLS, accepted in TLS only" in m.log_text()


@CORRALD_ONLY
def test_peer_certificates_expired_or_from_another_authority_are_refused(ensemble_factory, pki, tmp_path):
    import ssl
    ens = ensemble_factory(voters=3, peer_auth=False, pki=pki, ssl_quorum=True)
    m = ens.members[0]
    expired = pki.issue("server.2-old", ips=["127.0.0.1"], expired=True)
    rogue = Pki(tmp_path / "rogue", name="Rogue CA").issue("server.2", ips=["127.0.0.1"])
    for ident, reason in ((expired, "certificate has expired"), (rogue, "unable to get local issuer certificate")):
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.check_hostname = False
        ctx.load_cert_chain(str(ident.cert), str(ident.key))
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with socket.create_connection((m.host, m.quorum_port), timeout=10) as raw, ctx.wrap_socket(raw) as s:
                s.sendall(b"\x00\x00\x00\x01x")
                s.settimeout(10)
                if not s.recv(10):
                    raise ConnectionError("closed")
        wait_for(lambda: reason in m.log_text(), timeout=10, what=f"'{reason}' in server 1's log")
    assert ens.leader() is not None


@CORRALD_ONLY
def test_a_revoked_member_is_cut_off_and_kept_out(ensemble_factory, pki, tmp_path):
    crl = pki.write_crl(tmp_path / "crl.pem")
    ens = ensemble_factory(voters=3, peer_auth=False, pki=pki, ssl_quorum=True,
                           extra_args=["--set", f"transport.tls.crl={crl}",
                                       "--set", "transport.tls.reload_interval_ms=200"])
    zk = client(ens.hosts([ens.members[0], ens.members[1]]))
    zk.create("/r/before", b"", makepath=True)
    # Server 3's certificate is revoked: the others close their links with it
    # when the new list arrives and refuse it from then on.
    pki.revoke(ens.members[2].cert)
    pki.write_crl(crl)
    wait_for(lambda: any("its certificate CN=server.3" in ens.members[i].log_text() for i in (0, 1)),
             timeout=20, what="a link with server 3 closed for its revoked certificate")
    wait_for(lambda: ens.members[2].mode() is None, timeout=30, what="server 3 out of the ensemble")
    ens.wait_serving([0, 1])
    zk.retry(zk.create, "/r/after", b"")
    assert sorted(zk.get_children("/r")) == ["after", "before"]
    time.sleep(2)
    assert ens.members[2].mode() is None
    assert any("certificate revoked (certificate CN=server.3" in ens.members[i].log_text() for i in (0, 1))
    # Server 3 reads the same list and is told its own certificate is in it.
    assert "this server's own certificate" in ens.members[2].log_text()
    zk.stop()
