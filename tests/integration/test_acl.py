"""ACLs and authentication as ZooKeeper does them: world, auth, digest and ip
schemes, the superuser, getACL masking (CVE-2019-0201), setACL versions."""
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (AuthFailedError, BadVersionError, InvalidACLError, NoAuthError,
                              RolledBackError)
from kazoo.security import ACL, Id, Permissions, make_digest_acl, make_digest_acl_credential

SUPER = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # the digest of "super:test"


def connect(hosts, auth=None):
    zk = KazooClient(hosts=hosts, auth_data=auth)
    zk.start(timeout=10)
    return zk


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from corral_harness.servers import _started, _teardown, DEFAULT_TICK_MS
    s = _started(tmp_path_factory, DEFAULT_TICK_MS, super_digest=SUPER)
    yield s
    _teardown(s)


@pytest.fixture
def base(srv):
    zk = connect(srv.hosts)
    path = f"/acl-{uuid.uuid4().hex[:8]}"
    zk.create(path)
    yield path
    zk.stop()
    zk.close()


def test_digest_acl_admits_only_its_user(srv, base):
    alice = connect(srv.hosts, [("digest", "alice:secret")])
    anon = connect(srv.hosts)
    bob = connect(srv.hosts, [("digest", "bob:pw")])
    try:
        alice.create(base + "/a", b"private", acl=[make_digest_acl("alice", "secret", all=True)])
        assert alice.get(base + "/a")[0] == b"private"
        for other in (anon, bob):
            with pytest.raises(NoAuthError):
                other.get(base + "/a")
            with pytest.raises(NoAuthError):
                other.set(base + "/a", b"x")
            with pytest.raises(NoAuthError):
                other.get_children(base + "/a")
            with pytest.raises(NoAuthError):
                other.create(base + "/a/child")
        # exists needs no permission.
        assert anon.exists(base + "/a").dataLength == len(b"private")
        # Adding the credential later works on the same session.
        anon.add_auth("digest", "alice:secret")
        assert anon.get(base + "/a")[0] == b"private"
    finally:
        for c in (alice, anon, bob):
            c.stop()
            c.close()


def test_auth_scheme_expands_to_the_callers_identity(srv, base):
    alice = connect(srv.hosts, [("digest", "alice:secret")])
    try:
        alice.create(base + "/auth", acl=[ACL(Permissions.ALL, Id("auth", ""))])
        acl, _ = alice.get_acls(base + "/auth")
        assert acl == [ACL(Permissions.ALL, Id("digest", make_digest_acl_credential("alice", "secret")))]
    finally:
        alice.stop()
        alice.close()
    anon = connect(srv.hosts)
    try:
        with pytest.raises(InvalidACLError):  # no identity to expand "auth" into
            anon.create(base + "/auth2", acl=[ACL(Permissions.ALL, Id("auth", ""))])
        with pytest.raises(InvalidACLError):
            anon.create(base + "/bad", acl=[ACL(Permissions.ALL, Id("world", "someone"))])
        with pytest.raises(InvalidACLError):
            anon.create(base + "/bad", acl=[ACL(Permissions.ALL, Id("nosuchscheme", "x"))])
        with pytest.raises(InvalidACLError):
            anon.create(base + "/bad", acl=[ACL(Permissions.ALL, Id("ip", "10.0.0.0/40"))])
    finally:
        anon.stop()
        anon.close()


def test_get_acl_masks_digests_without_admin(srv, base):
    alice = connect(srv.hosts, [("digest", "alice:secret")])
    anon = connect(srv.hosts)
    try:
        alice.create(base + "/m", acl=[make_digest_acl("alice", "secret", all=True),
                                       ACL(Permissions.READ, Id("world", "anyone"))])
        full, _ = alice.get_acls(base + "/m")
        masked, _ = anon.get_acls(base + "/m")
        assert full[0].id.id == make_digest_acl_credential("alice", "secret")
        assert masked[0].id.id == "alice:x"
        assert masked[1] == full[1]
        alice.create(base + "/hidden", acl=[make_digest_acl("alice", "secret", all=True)])
        with pytest.raises(NoAuthError):  # neither READ nor ADMIN
            anon.get_acls(base + "/hidden")
    finally:
        for c in (alice, anon):
            c.stop()
            c.close()


def test_set_acl_needs_admin_and_checks_aversion(srv, base):
    alice = connect(srv.hosts, [("digest", "alice:secret")])
    anon = connect(srv.hosts)
    try:
        alice.create(base + "/s", acl=[make_digest_acl("alice", "secret", read=True, write=True, admin=True),
                                       ACL(Permissions.READ, Id("world", "anyone"))])
        with pytest.raises(NoAuthError):
            anon.set_acls(base + "/s", [ACL(Permissions.ALL, Id("world", "anyone"))])
        with pytest.raises(BadVersionError):
            alice.set_acls(base + "/s", [ACL(Permissions.ALL, Id("world", "anyone"))], version=5)
        st = alice.set_acls(base + "/s", [ACL(Permissions.ALL, Id("world", "anyone"))], version=0)
        assert st.aversion == 1 and st.version == 0
        anon.set(base + "/s", b"now open")
    finally:
        for c in (alice, anon):
            c.stop()
            c.close()


def test_ip_acls_match_the_client_address(srv, base):
    zk = connect(srv.hosts)
    try:
        zk.create(base + "/local", b"x", acl=[ACL(Permissions.ALL, Id("ip", "127.0.0.0/8"))])
        assert zk.get(base + "/local")[0] == b"x"
        zk.create(base + "/remote", b"x", acl=[ACL(Permissions.ALL, Id("ip", "10.0.0.0/8"))])
        with pytest.raises(NoAuthError):
            zk.get(base + "/remote")
    finally:
        zk.stop()
        zk.close()


def test_superuser_passes_every_check(srv, base):
    alice = connect(srv.hosts, [("digest", "alice:secret")])
    root = connect(srv.hosts, [("digest", "super:test")])
    try:
        alice.create(base + "/x", b"a", acl=[make_digest_acl("alice", "secret", all=True)])
        assert root.get(base + "/x")[0] == b"a"
        root.set(base + "/x", b"b")
        root.delete(base + "/x")
    finally:
        for c in (alice, root):
            c.stop()
            c.close()


def test_multi_rolls_back_on_no_auth(srv, base):
    alice = connect(srv.hosts, [("digest", "alice:secret")])
    anon = connect(srv.hosts)
    try:
        alice.create(base + "/locked", b"v", acl=[make_digest_acl("alice", "secret", all=True),
                                                  ACL(Permissions.READ, Id("world", "anyone"))])
        t = anon.transaction()
        t.create(base + "/new")
        t.set_data(base + "/locked", b"changed")
        results = t.commit()
        assert isinstance(results[0], RolledBackError) and isinstance(results[1], NoAuthError)
        assert anon.exists(base + "/new") is None
        assert anon.get(base + "/locked")[0] == b"v"
    finally:
        for c in (alice, anon):
            c.stop()
            c.close()


def test_zookeeper_config_is_read_only(srv):
    zk = connect(srv.hosts)
    try:
        with pytest.raises(NoAuthError):
            zk.set("/zookeeper/config", b"x")
        acl, _ = zk.get_acls("/zookeeper/config")
        assert acl == [ACL(Permissions.READ, Id("world", "anyone"))]
    finally:
        zk.stop()
        zk.close()


def test_unknown_auth_scheme_fails_and_closes(srv):
    zk = connect(srv.hosts)
    try:
        with pytest.raises(AuthFailedError):
            zk.add_auth("nosuchscheme", "whatever")
    finally:
        zk.stop()
        zk.close()
