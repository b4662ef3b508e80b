"""TLS on the client port, as ZooKeeper's secureClientPort: kazoo and the Java
client (Netty) over TLS, client certificates as x509 identities in ACLs and
as a superuser, clientAuth none/want/need, refused certificates (expired,
another authority) with a clear log line, port unification, PKCS#12, and
certificates replaced on disk taken up without a restart.

Certificates are made by the `openssl` command for each module
(corral_harness/certs.py). Tests that read Corral's own log or start Corral
with a broken configuration run against corrald only."""
import os
import pathlib
import socket
import ssl
import subprocess
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

from corral_harness.certs import Pki
from corral_harness.net import free_port, zookeeper_classpath
from corral_harness.servers import REPO, TARGET, wait_for

corrald_only = pytest.mark.skipif(TARGET != "corrald", reason="reads Corral's log or its configuration")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = Pki(tmp_path_factory.mktemp("pki"))
    ca.server = ca.issue("server.1", ips=["127.0.0.1"], dns=["localhost"])
    ca.alice = ca.issue("alice")
    ca.bob = ca.issue("bob")
    ca.admin = ca.issue("admin")
    ca.expired = ca.issue("late", expired=True)
    ca.rogue = Pki(tmp_path_factory.mktemp("rogue"), name="Rogue CA").issue("alice")
    return ca


def tls_client(hosts, pki, ident=None, ca=None):
    zk = KazooClient(hosts=hosts, use_ssl=True, verify_certs=True, ca=str(ca or pki.ca_cert),
                     certfile=str(ident.cert) if ident else None,
                     keyfile=str(ident.key) if ident else None)
    zk.start(timeout=15)
    return zk


def handshake(port, pki, ident=None, timeout=10):
    """A raw TLS handshake with the secure port; returns the server's
    certificate subject, or raises the ssl error."""
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.check_hostname = False
    if ident:
        ctx.load_cert_chain(str(ident.cert), str(ident.key))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw) as s:
            # TLS 1.3 sends a refusal of the client's certificate after the
            # handshake: a read shows it.
            s.sendall(b"\x00\x00\x00\x04ruok")
            s.settimeout(timeout)
            s.recv(16)
            return dict(x[0] for x in s.getpeercert()["subject"])


@pytest.fixture
def tls_server(server_factory, pki):
    def make(client_auth="want", **kw):
        return server_factory(tls={"identity": pki.server, "ca": pki.ca_cert, "client_auth": client_auth},
                              **kw)
    return make


def test_kazoo_over_tls_reads_and_writes(tls_server, pki):
    srv = tls_server()
    zk = tls_client(srv.secure_hosts, pki, pki.alice)
    zk.create("/tls", b"secret")
    assert zk.get("/tls")[0] == b"secret"
    # Without a client certificate (client_auth "want"), and over the plaintext port.
    anon = tls_client(srv.secure_hosts, pki)
    assert anon.get("/tls")[0] == b"secret"
    plain = KazooClient(hosts=srv.hosts)
    plain.start(timeout=15)
    assert plain.get("/tls")[0] == b"secret"
    for c in (zk, anon, plain):
        c.stop()


def test_client_certificate_is_an_x509_identity(tls_server, pki):
    srv = tls_server()
    alice = tls_client(srv.secure_hosts, pki, pki.alice)
    bob = tls_client(srv.secure_hosts, pki, pki.bob)
    alice.create("/alice", b"mine", acl=[make_acl("x509", pki.alice.subject, all=True)])
    assert alice.get("/alice")[0] == b"mine"
    with pytest.raises(NoAuthError):
        bob.get("/alice")
    # "auth" expands to the certificate's identity, as ZooKeeper's does.
    alice.create("/auth", b"", acl=[make_acl("auth", "", all=True)])
    acl = alice.get_acls("/auth")[0]
    assert [(a.id.scheme, a.id.id) for a in acl] == [("x509", pki.alice.subject)]
    with pytest.raises(NoAuthError):
        bob.set("/auth", b"x")
    for c in (alice, bob):
        c.stop()


@corrald_only
def test_x509_superuser_passes_every_acl(server_factory, pki):
    srv = server_factory(tls={"identity": pki.server, "ca": pki.ca_cert, "client_auth": "want"},
                         extra_args=["--set", f"server.x509_superuser={pki.admin.subject}"])
    alice = tls_client(srv.secure_hosts, pki, pki.alice)
    alice.create("/locked", b"x", acl=[make_acl("x509", pki.alice.subject, all=True)])
    admin = tls_client(srv.secure_hosts, pki, pki.admin)
    assert admin.get("/locked")[0] == b"x"
    admin.set_acls("/locked", [make_acl("world", "anyone", read=True)])
    bob = tls_client(srv.secure_hosts, pki, pki.bob)
    assert bob.get("/locked")[0] == b"x"
    for c in (alice, admin, bob):
        c.stop()


def test_client_auth_need_refuses_a_client_without_certificate(tls_server, pki):
    srv = tls_server(client_auth="need")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        handshake(srv.secure_port, pki)
    zk = tls_client(srv.secure_hosts, pki, pki.alice)
    assert zk.exists("/") is not None
    zk.stop()


@corrald_only
@pytest.mark.parametrize("which,reason", [("expired", "certificate has expired"),
                                          ("rogue", "unable to get local issuer certificate")])
def test_refused_client_certificates_are_logged(tls_server, pki, which, reason):
    srv = tls_server(client_auth="need")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        handshake(srv.secure_port, pki, getattr(pki, which))
    wait_for(lambda: reason in srv.log_tail(), timeout=10, what=f"'{reason}' in the log")
    line = [ln for ln in srv.log_tail().splitlines() if reason in ln][-1]
    assert "TLS: refusing 127.0.0.1:" in line
    # The server goes on serving.
    assert handshake(srv.secure_port, pki, pki.alice)["commonName"] == "server.1"


@corrald_only
def test_plaintext_on_the_tls_port_closes_that_connection_only(tls_server, pki):
    srv = tls_server()
    with socket.create_connection(("127.0.0.1", srv.secure_port), timeout=10) as s:
        s.sendall(b"ruok")
        s.settimeout(10)
        # Nothing is answered in plaintext (at most a TLS alert), and the
        # server ends the connection.
        got = b""
        try:
            while chunk := s.recv(100):
                got += chunk
        except ConnectionResetError:
            pass
        assert b"imok" not in got
    wait_for(lambda: "speaks plaintext on a TLS port" in srv.log_tail(), timeout=10, what="the log line")
    assert handshake(srv.secure_port, pki, pki.alice)["commonName"] == "server.1"
    assert srv.four("ruok") == "imok"


@corrald_only
def test_a_silent_connection_is_cut_at_the_handshake_deadline(tls_server, pki):
    srv = tls_server(extra_args=["--set", "transport.tls.handshake_timeout_ms=500"])
    with socket.create_connection(("127.0.0.1", srv.secure_port), timeout=10) as s:
        start = time.monotonic()
        s.settimeout(10)
        assert s.recv(10) == b""
        assert time.monotonic() - start < 5
    wait_for(lambda: "did not finish the TLS handshake within 500 ms" in srv.log_tail(), timeout=10,
             what="the deadline in the log")


@corrald_only
def test_port_unification_takes_tls_and_plaintext_on_one_port(server_factory, pki):
    srv = server_factory(extra_args=[
        "--set", "server.client_port_unification=true",
        "--set", f"transport.tls.certificate={pki.server.pem}",
        "--set", f"transport.tls.ca={pki.ca_cert}"])
    secure = tls_client(srv.hosts, pki, pki.alice)
    secure.create("/both", b"1")
    plain = KazooClient(hosts=srv.hosts)
    plain.start(timeout=15)
    assert plain.get("/both")[0] == b"1"
    assert srv.four("ruok") == "imok"
    for c in (secure, plain):
        c.stop()


@corrald_only
def test_pkcs12_certificate_with_password(server_factory, pki):
    p12 = pki.server.p12("s3cret-pass")
    srv = server_factory(extra_args=[
        "--set", f"server.secure_client_address=127.0.0.1:{free_port()}",
        "--set", f"transport.tls.certificate={p12}",
        "--set", "transport.tls.password=s3cret-pass",
        "--set", f"transport.tls.ca={pki.ca_cert}"])
    port = int([a for a in srv.extra_args if a.startswith("server.secure_client_address=")][0].rsplit(":", 1)[1])
    assert handshake(port, pki, pki.alice)["commonName"] == "server.1"


@corrald_only
def test_certificates_replaced_on_disk_are_taken_up(server_factory, pki, tmp_path):
    live = tmp_path / "live.pem"
    live.write_bytes(pki.server.pem.read_bytes())
    port = free_port()
    srv = server_factory(extra_args=[
        "--set", f"server.secure_client_address=127.0.0.1:{port}",
        "--set", f"transport.tls.certificate={live}",
        "--set", f"transport.tls.ca={pki.ca_cert}",
        "--set", "transport.tls.reload_interval_ms=200"])
    assert handshake(port, pki)["commonName"] == "server.1"
    renewed = pki.issue("server.1-renewed", ips=["127.0.0.1"])
    tmp = tmp_path / "next.pem"
    tmp.write_bytes(renewed.pem.read_bytes())
    os.replace(tmp, live)
    wait_for(lambda: handshake(port, pki)["commonName"] == "server.1-renewed", timeout=15,
             what="the renewed certificate in use")
    # A broken replacement is refused and the last good one stays.
    live.write_text("not a certificate\n")
    wait_for(lambda: "do not load" in srv.log_tail(), timeout=15, what="the refusal in the log")
    assert handshake(port, pki)["commonName"] == "server.1-renewed"


def corrald_fails(tmp_path, *sets):
    binary = os.environ.get("CORRALD", str(REPO / "build/kernel/corrald"))
    plugins = os.environ.get("CORRAL_PLUGIN_DIR", str(REPO / "build/plugins"))
    args = [binary, "--set", f"server.data_dir={tmp_path / 'data'}", "--set", f"server.plugin_dir={plugins}",
            "--set", f"server.client_address=127.0.0.1:{free_port()}",
            "--set", f"server.secure_client_address=127.0.0.1:{free_port()}"]
    for s in sets:
        args += ["--set", s]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30, start_new_session=True)
    assert r.returncode != 0, r.stderr
    return r.stderr


@corrald_only
def test_bad_certificate_files_stop_the_start_naming_the_file(tmp_path, pki):
    missing = tmp_path / "nowhere.pem"
    err = corrald_fails(tmp_path, f"transport.tls.certificate={missing}")
    assert f"cannot read '{missing}'" in err and "transport.tls.certificate" in err
    err = corrald_fails(tmp_path, f"transport.tls.certificate={pki.expired.pem}",
                        f"transport.tls.ca={pki.ca_cert}")
    assert "expired on" in err and str(pki.expired.pem) in err
    err = corrald_fails(tmp_path, f"transport.tls.certificate={pki.server.cert}",
                        f"transport.tls.key={pki.alice.key}", f"transport.tls.ca={pki.ca_cert}")
    assert "does not match the certificate" in err and str(pki.alice.key) in err
    jks = tmp_path / "keystore.jks"
    jks.write_bytes(b"\xfe\xed\xfe\xed" + b"\x00" * 64)
    err = corrald_fails(tmp_path, f"transport.tls.certificate={jks}")
    assert "Java KeyStore (JKS)" in err and "keytool -importkeystore" in err
    err = corrald_fails(tmp_path, f"transport.tls.certificate={pki.server.pem}",
                        "transport.tls.client_auth=need")
    assert "transport.tls.ca" in err


@corrald_only
def test_revoked_client_certificates_are_refused_and_cut_when_a_new_list_names_them(server_factory, tmp_path):
    ca = Pki(tmp_path / "pki")
    server = ca.issue("server.1", ips=["127.0.0.1"], dns=["localhost"])
    carol, dave, eve = ca.issue("carol"), ca.issue("dave"), ca.issue("eve")
    ca.revoke(eve)
    crl = ca.write_crl(tmp_path / "crl.pem")
    srv = server_factory(tls={"identity": server, "ca": ca.ca_cert, "client_auth": "need"},
                         extra_args=["--set", f"transport.tls.crl={crl}",
                                     "--set", "transport.tls.reload_interval_ms=200"])
    assert "revocation checked (leaf) against 1 revoked certificates" in srv.log_tail()
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        handshake(srv.secure_port, ca, eve)
    wait_for(lambda: "certificate revoked (certificate CN=eve" in srv.log_tail(), timeout=10,
             what="eve's refusal in the log")
    zc, zd = tls_client(srv.secure_hosts, ca, carol), tls_client(srv.secure_hosts, ca, dave)
    zd.create("/dave", b"before")
    lost = []
    zd.add_listener(lambda state: lost.append(state) if state != "CONNECTED" else None)
    # Dave's certificate is revoked while his session is open: the next list
    # closes it, and he cannot come back; carol's session goes on. A
    # connection accepted before the list came (its handshake checked
    # against the older one) is refused once its handshake is done.
    early = socket.create_connection(("127.0.0.1", srv.secure_port), timeout=10)
    ca.revoke(dave)
    ca.write_crl(crl)
    wait_for(lambda: "its certificate CN=dave,O=Corral Tests (serial" in srv.log_tail(), timeout=15,
             what="dave's connection closed for its revoked certificate")
    ctx = ssl.create_default_context(cafile=str(ca.ca_cert))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(dave.cert), str(dave.key))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        with ctx.wrap_socket(early) as s:
            s.sendall(b"\x00\x00\x00\x04ruok")
            if not s.recv(16):
                raise ConnectionError("closed")
    wait_for(lambda: "TLS: refusing 127.0.0.1:" in srv.log_tail() and ": its certificate CN=dave" in srv.log_tail(),
             timeout=10, what="the early connection refused for dave's revoked certificate")
    line = [ln for ln in srv.log_tail().splitlines() if "CN=dave" in ln and "closing" in ln][-1]
    assert "closing the client connection with 127.0.0.1:" in line and str(crl) in line
    wait_for(lambda: lost, timeout=10, what="dave's client losing its connection")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        handshake(srv.secure_port, ca, dave)
    assert zc.get("/dave")[0] == b"before"
    zc.set("/dave", b"after")
    assert handshake(srv.secure_port, ca, carol)["commonName"] == "server.1"
    zd.stop()
    zc.stop()


@corrald_only
def test_bad_revocation_lists_stop_the_start_naming_the_file(tmp_path, pki):
    cert = f"transport.tls.certificate={pki.server.pem}"
    trust = f"transport.tls.ca={pki.ca_cert}"
    foreign = Pki(tmp_path / "other", name="Other CA").write_crl(tmp_path / "other.pem")
    err = corrald_fails(tmp_path, cert, trust, f"transport.tls.crl={foreign}")
    assert f"the revocation list 1 in '{foreign}' (issued by CN=Other CA" in err
    assert f"is not signed by any authority in '{pki.ca_cert}'" in err
    old = pki.write_crl(tmp_path / "old.pem", expired=True)
    err = corrald_fails(tmp_path, cert, trust, f"transport.tls.crl={old}")
    assert "transport.tls.crl:" in err and str(old) in err and "expired on Feb  1 00:00:00 2020" in err
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    err = corrald_fails(tmp_path, cert, trust, f"transport.tls.crl={junk}")
    assert f"'{junk}' holds no PEM revocation list" in err
    der = tmp_path / "junk.der"
    der.write_bytes(b"\x30\x03\x02\x01\x00")
    err = corrald_fails(tmp_path, cert, trust, f"transport.tls.crl={der}")
    assert f"'{der}' is neither a PEM nor a DER revocation list" in err
    good = pki.write_crl(tmp_path / "good.pem")
    err = corrald_fails(tmp_path, cert, f"transport.tls.crl={good}", "transport.tls.client_auth=none")
    assert "name those in transport.tls.ca" in err
    err = corrald_fails(tmp_path, cert, trust, f"transport.tls.crl={good}", "transport.tls.crl_scope=all")
    assert "transport.tls.crl_scope: 'all' must be \"leaf\" or \"chain\"" in err


def test_java_client_over_tls(tls_server, pki, tmp_path):
    srv = tls_server()
    zk = tls_client(srv.secure_hosts, pki, pki.alice)
    zk.create("/from-kazoo", b"over tls")
    zk.stop()
    props = [
        "-Dzookeeper.client.secure=true",
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
        f"-Dzookeeper.ssl.trustStore.location={pki.ca_cert}", "-Dzookeeper.ssl.trustStore.type=PEM",
        f"-Dzookeeper.ssl.keyStore.location={pki.alice.pem}", "-Dzookeeper.ssl.keyStore.type=PEM",
    ]
    r = subprocess.run(["java", *props, "-cp", zookeeper_classpath(), "org.apache.zookeeper.ZooKeeperMain",
                        "-server", srv.secure_hosts, "get", "/from-kazoo"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "over tls" in r.stdout, r.stdout + r.stderr


@corrald_only
def test_admin_endpoint_over_https_with_client_certificates(server_factory, pki):
    import json
    import urllib.error
    import urllib.request
    http = free_port()
    srv = server_factory(all_four_letter_words=False, extra_args=[
        "--set", f"server.admin_address=127.0.0.1:{http}", "--set", "server.admin_tls=true",
        "--set", f"server.x509_superuser={pki.admin.subject}",
        "--set", f"transport.tls.certificate={pki.server.pem}", "--set", f"transport.tls.ca={pki.ca_cert}"])
    assert f"admin endpoint on https://127.0.0.1:{http}/" in srv.log_tail()

    def get(path, ident=None):
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        if ident:
            ctx.load_cert_chain(str(ident.cert), str(ident.key))
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{http}{path}", context=ctx, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    assert get("/commands/server_stats")[0] == 200
    assert get("/commands/connections")[0] == 401
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=15)
    zk.add_auth("digest", "admin:pw")
    zk.set_acls("/", [make_acl("digest", "admin:x", all=True), make_acl("world", "anyone", read=True)])
    assert get("/commands/connections", pki.alice)[0] == 403   # an x509 identity without ALL on /
    status, body = get("/commands/connections", pki.admin)       # the x509 superuser
    assert status == 200 and body["command"] == "connections"
    zk.stop()
    # Plain HTTP on the HTTPS port gets nothing.
    with socket.create_connection(("127.0.0.1", http), timeout=10) as s:
        s.sendall(b"GET /commands/server_stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.settimeout(10)
        got = b""
        try:
            while chunk := s.recv(1000):
                got += chunk
        except ConnectionResetError:
            pass
        assert b"HTTP/1.1 200" not in got


@corrald_only
def test_a_four_letter_word_over_tls_is_answered_whole_before_the_close(tls_server, pki):
    srv = tls_server()
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", srv.secure_port), timeout=10) as raw, ctx.wrap_socket(raw) as s:
        s.sendall(b"srvr")
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    # srvr's last line comes before the server closes the connection.
    assert b"Mode: standalone" in got and b"\nNode count: " in got, got


@corrald_only
def test_the_cpp_client_speaks_tls(tls_server, pki):
    """corral-bench drives the secure port through the C++ client's TLS; an
    authority that did not sign the server's certificate is refused."""
    srv = tls_server()
    bench = pathlib.Path(os.environ.get("CORRAL_BUILD_DIR", str(REPO / "build"))) / "bench" / "corral-bench"
    r = subprocess.run([str(bench), "--hosts", srv.secure_hosts, "--tls-ca", str(pki.ca_cert), "--workload", "create",
                        "--ops", "2000", "--quiet", "--prefix", "/tls-bench"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "errors 0" in r.stdout, r.stdout + r.stderr
    zk = tls_client(srv.secure_hosts, pki)
    assert zk.get_children("/tls-bench")  # what the client wrote over TLS is there
    zk.stop()
    rogue_ca = pki.rogue.pki.ca_cert
    r = subprocess.run([str(bench), "--hosts", srv.secure_hosts, "--tls-ca", str(rogue_ca), "--workload", "get",
                        "--ops", "10", "--quiet"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "certificate verify failed" in r.stderr, r.stdout + r.stderr


@corrald_only
def test_the_corral_cli_over_tls_shows_the_x509_identity(tls_server, pki):
    srv = tls_server()
    cli = os.environ.get("CORRAL_CLI", str(REPO / "build/cli/corral"))
    base = [cli, "-s", srv.secure_hosts, "--tls-ca", str(pki.ca_cert)]
    r = subprocess.run(base + ["--tls-cert", str(pki.alice.cert), "--tls-key", str(pki.alice.key), "whoami"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and f"x509: {pki.alice.subject}" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(base + ["health"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "serving (standalone)" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([cli, "-s", srv.secure_hosts, "--tls-ca", str(pki.rogue.pki.ca_cert), "ls", "/"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "certificate verify failed" in r.stderr, r.stderr


@pytest.mark.parametrize("client_auth", ["want", "need"])
def test_a_client_resumes_its_tls_session(tls_server, pki, tmp_path, client_auth):
    """Browsers and Java clients resume TLS sessions. A server that asks for
    client certificates must allow it (OpenSSL refuses a resumption without
    a session id context: "session id context uninitialized")."""
    srv = tls_server(client_auth=client_auth)
    port = int(srv.secure_hosts.rsplit(":", 1)[1])
    sess = tmp_path / "session.pem"

    def connect(*extra):
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(pki.ca_cert),
                            "-cert", str(pki.alice.cert), "-key", str(pki.alice.key), "-ign_eof", *extra],
                           input=b"ruok", capture_output=True, timeout=20)
        return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")

    first = connect("-sess_out", str(sess))
    assert "imok" in first, first
    again = connect("-sess_in", str(sess))
    assert "Reused" in again and "imok" in again, again
