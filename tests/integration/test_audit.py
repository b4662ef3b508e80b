"""The audit log, as ZooKeeper's audit.enable: a line for each change with
the session, who (identities, digest hashes left out), the address, the
operation, the znode and the result; server start and stop; nothing for
reads; rolled at its size limit."""
import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl

from corral_harness.servers import TARGET, wait_for

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="Corral's audit log file")


def lines(srv):
    path = srv.data_dir / "audit.log"
    return path.read_text().splitlines() if path.exists() else []


def test_each_change_is_a_line_with_who_what_and_the_result(server_factory):
    srv = server_factory(extra_args=["--set", "server.audit_log=audit.log"])
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=15)
    zk.add_auth("digest", "alice:secret")
    zk.create("/a", b"1", acl=[make_digest_acl("alice", "secret", all=True)])
    zk.set("/a", b"2")
    zk.get("/a")
    zk.create("/seq-", b"", sequence=True, ephemeral=True)
    other = KazooClient(hosts=srv.hosts)
    other.start(timeout=15)
    with pytest.raises(NoAuthError):
        other.set("/a", b"3")
    zk.delete("/a")
    wait_for(lambda: sum("operation=delete" in ln for ln in lines(srv)) == 1, timeout=10, what="the delete's line")
    log = lines(srv)
    sid = f"0x{zk.client_id[0]:x}"
    assert any("operation=serverStart" in ln for ln in log)
    creates = [ln for ln in log if "operation=create\tznode=/a\t" in ln]
    assert len(creates) == 1 and f"session={sid}\t" in creates[0] and "\tuser=127.0.0.1,alice\t" in creates[0]
    assert creates[0].endswith("znode_type=persistent\tresult=success")
    assert any("znode=/seq-\tznode_type=ephemeral_sequential\tresult=success" in ln for ln in log)
    sets = [ln for ln in log if "operation=setData" in ln]
    assert [s.rsplit("=", 1)[1] for s in sets] == ["success", "failure"]
    assert f"session=0x{other.client_id[0]:x}\tuser=127.0.0.1\t" in sets[1]
    assert not any("operation=getData" in ln or "secret" in ln for ln in log)
    # The digest hash is not written: only the user's name.
    assert all(":" not in ln.split("\tuser=")[1].split("\t")[0] for ln in log if "\tuser=" in ln)
    for c in (zk, other):
        c.stop()
    srv.stop()
    assert "operation=serverStop" in lines(srv)[-1]


def test_the_log_rolls_at_its_size_limit(server_factory):
    srv = server_factory(extra_args=["--set", "server.audit_log=audit.log",
                                     "--set", "server.audit_log_max_bytes=4096"])
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=15)
    for i in range(100):
        zk.create(f"/roll{i}", b"")
    zk.stop()
    rolled = srv.data_dir / "audit.log.1"
    wait_for(rolled.exists, timeout=10, what="audit.log.1")
    assert (srv.data_dir / "audit.log").stat().st_size <= 4096
    assert rolled.stat().st_size <= 4096 + 200
