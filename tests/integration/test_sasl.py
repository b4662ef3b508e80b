"""SASL DIGEST-MD5, as ZooKeeper offers it with a JAAS DigestLoginModule:
kazoo authenticates, holds the sasl:<user> identity for ACLs, and a wrong
password or an unknown user ends the connection (AuthFailedError)."""
import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, NoAuthError
from kazoo.security import make_acl

USERS = {"alice": "wonderland", "bob": "builder"}


@pytest.fixture
def sasl_server(server_factory):
    return server_factory(sasl_users=USERS)


def sasl_client(srv, user, password):
    zk = KazooClient(hosts=srv.hosts, sasl_options={"mechanism": "DIGEST-MD5", "username": user, "password": password})
    zk.start(timeout=15)
    return zk


def test_sasl_identity_guards_nodes(sasl_server):
    alice = sasl_client(sasl_server, "alice", "wonderland")
    alice.create("/alices", b"private", acl=[make_acl("sasl", "alice", all=True)])
    assert alice.get("/alices")[0] == b"private"
    bob = sasl_client(sasl_server, "bob", "builder")
    with pytest.raises(NoAuthError):
        bob.get("/alices")
    anonymous = KazooClient(hosts=sasl_server.hosts)
    anonymous.start()
    with pytest.raises(NoAuthError):
        anonymous.get("/alices")
    # The auth scheme expands to the SASL identity too.
    alice.create("/mine", b"", acl=[make_acl("auth", "", all=True)])
    assert alice.get_acls("/mine")[0][0].id.scheme == "sasl"
    for c in (alice, bob, anonymous):
        c.stop()


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("mallory", "anything")])
def test_bad_credentials_end_the_connection(sasl_server, user, password):
    zk = KazooClient(hosts=sasl_server.hosts, sasl_options={"mechanism": "DIGEST-MD5", "username": user,
                                                            "password": password})
    # kazoo reports CONNECTED before it runs SASL, so the failure shows on
    # the first request (or in start() itself, if it comes first).
    with pytest.raises(AuthFailedError):
        zk.start(timeout=15)
        zk.exists("/")
    zk.stop()
