"""The `corral` command-line client against a real server: every command,
its exit codes, --json, and clear errors. All but `plugins` pass against
Apache ZooKeeper too."""
import base64
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest
from kazoo.client import KazooClient

from corral_harness.servers import REPO, TARGET, free_port, plugin_abi, wait_for

CLI = os.environ.get("CORRAL_CLI", str(REPO / "build/cli/corral"))


def corral(srv, *args, check=None):
    r = subprocess.run([CLI, "-s", srv.hosts, *args], capture_output=True, text=True, timeout=30)
    if check is not None:
        assert r.returncode == check, f"corral {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture
def zk(server):
    c = KazooClient(hosts=server.hosts)
    c.start()
    yield c
    c.stop()


def test_create_get_set_ls_stat_delete(server, zk):
    assert corral(server, "create", "/cli", "hello", check=0).stdout == "Created /cli\n"
    assert corral(server, "get", "/cli", check=0).stdout == "hello\n"
    corral(server, "set", "/cli", "world", check=0)
    assert zk.get("/cli")[0] == b"world"
    corral(server, "create", "/cli/a", check=0)
    corral(server, "create", "/cli/b", "x", check=0)
    assert corral(server, "ls", "/cli", check=0).stdout == "[a, b]\n"
    out = corral(server, "stat", "/cli", check=0).stdout
    assert "numChildren = 2" in out and "dataVersion = 1" in out and "ephemeralOwner = 0x0" in out
    out = corral(server, "get", "-s", "/cli", check=0).stdout
    assert out.startswith("world\n") and "dataLength = 5" in out
    corral(server, "delete", "/cli/a", check=0)
    assert zk.exists("/cli/a") is None


def test_exit_codes_and_messages_a_script_can_rely_on(server, zk):
    zk.create("/codes", b"v")
    zk.create("/codes/child")
    r = corral(server, "get", "/codes/none", check=4)
    assert r.stderr == "corral: get /codes/none: no such node\n"
    assert "node already exists" in corral(server, "create", "/codes", check=5).stderr
    assert "version mismatch" in corral(server, "set", "-v", "7", "/codes", "x", check=6).stderr
    assert "node has children" in corral(server, "delete", "/codes", check=7).stderr
    corral(server, "set", "-v", "0", "/codes", "w", check=0)
    assert "unknown command" in corral(server, "nosuch", check=2).stderr
    assert "takes PATH" in corral(server, "get", check=2).stderr
    assert "-v takes a version" in corral(server, "set", "-v", "x", "/codes", "d", check=2).stderr
    port = free_port()
    r = subprocess.run([CLI, "-s", f"127.0.0.1:{port}", "ls", "/"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 3
    assert f"cannot connect to 127.0.0.1:{port}" in r.stderr and "refused" in r.stderr


def test_json_output(server, zk):
    zk.create("/json", b"data")
    zk.create("/json/k")
    got = json.loads(corral(server, "--json", "get", "/json", check=0).stdout)
    assert got["data"] == "data" and got["stat"]["numChildren"] == 1
    assert json.loads(corral(server, "--json", "ls", "/json", check=0).stdout)["children"] == ["k"]
    assert json.loads(corral(server, "--json", "stat", "/json", check=0).stdout)["stat"]["dataLength"] == 4
    made = json.loads(corral(server, "--json", "create", "-s", "/json/q-", check=0).stdout)
    assert made["path"] == "/json/q-0000000001"
    acl = json.loads(corral(server, "--json", "getAcl", "/json", check=0).stdout)["acl"]
    assert acl == [{"scheme": "world", "id": "anyone", "perms": "cdrwa"}]
    assert json.loads(corral(server, "--json", "four", "ruok", check=0).stdout)["reply"] == "imok"


def test_create_modes(server_factory):
    srv = server_factory(extended_types=True, container_check_ms=100)
    zk = KazooClient(hosts=srv.hosts)
    zk.start()
    corral(srv, "create", "/modes", check=0)
    assert corral(srv, "create", "-s", "/modes/s-", check=0).stdout == "Created /modes/s-0000000000\n"
    r = corral(srv, "create", "-e", "/modes/eph", check=0)
    assert "ephemeral" in r.stderr
    assert zk.exists("/modes/eph") is None  # its session ended with the command
    corral(srv, "create", "-c", "/modes/box", check=0)
    corral(srv, "create", "/modes/box/item", check=0)
    corral(srv, "delete", "/modes/box/item", check=0)
    corral(srv, "create", "-t", "2000", "/modes/ttl", check=0)
    assert zk.exists("/modes/ttl") is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and zk.exists("/modes/ttl") is not None:
        time.sleep(0.1)
    assert zk.exists("/modes/ttl") is None  # the TTL lapsed
    assert zk.exists("/modes/box") is None  # an emptied container goes
    assert "one of -e, -c and -t" in corral(srv, "create", "-e", "-c", "/modes/x", check=2).stderr
    zk.stop()


def test_ls_recursive_and_deleteall(server, zk):
    for p in ("/tree/a/x", "/tree/a/y", "/tree/b"):
        zk.create(p, makepath=True)
    assert corral(server, "ls", "-R", "/tree", check=0).stdout.split() == [
        "/tree", "/tree/a", "/tree/b", "/tree/a/x", "/tree/a/y"]
    corral(server, "deleteall", "/tree", check=0)
    assert zk.exists("/tree") is None
    corral(server, "deleteall", "/tree", check=4)
    corral(server, "deleteall", "/", check=2)


def test_acls_and_authentication(server, zk):
    digest = base64.b64encode(hashlib.sha1(b"alice:secret").digest()).decode()
    zk.create("/secured", b"for alice")
    corral(server, "setAcl", "/secured", f"digest:alice:{digest}:cdrwa", check=0)
    assert "not authorized" in corral(server, "get", "/secured", check=8).stderr
    assert corral(server, "--auth", "digest:alice:secret", "get", "/secured", check=0).stdout == "for alice\n"
    out = corral(server, "--auth", "digest:alice:secret", "getAcl", "/secured", check=0).stdout
    assert f"'digest,'alice:{digest}\n: cdrwa" in out
    out = corral(server, "addauth", "digest", "alice:secret", check=0).stdout
    assert "digest: alice" in out and "ip: 127.0.0.1" in out
    who = json.loads(corral(server, "--json", "whoami", check=0).stdout)
    assert {"scheme": "ip", "user": "127.0.0.1"} in who
    assert "authentication failed" in corral(server, "addauth", "nosuch", "x", check=8).stderr
    assert "unknown permission" in corral(server, "setAcl", "/secured", "world:anyone:rz", check=2).stderr
    corral(server, "--auth", "digest:alice:secret", "setAcl", "/secured", "world:anyone:r", check=0)
    assert corral(server, "get", "/secured", check=0).stdout == "for alice\n"


def test_watch_streams_events_until_interrupted(server, zk):
    zk.create("/watched")

    def watches():
        for line in server.four("wchs").splitlines():
            if line.startswith("Total watches:"):
                return int(line.split(":")[1])
        return 0

    before = watches()
    p = subprocess.Popen([CLI, "-s", server.hosts, "watch", "-R", "/watched"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: watches() > before, timeout=30, what="the command's watch")
        zk.create("/watched/c")
        zk.set("/watched/c", b"1")
        zk.delete("/watched/c")
        lines = [p.stdout.readline().strip() for _ in range(3)]
        assert lines == ["NodeCreated /watched/c", "NodeDataChanged /watched/c", "NodeDeleted /watched/c"]
    finally:
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 0


def test_sync_and_four_letter_words(server):
    assert corral(server, "sync", "/", check=0).stdout == "Sync is OK\n"
    assert corral(server, "four", "ruok", check=0).stdout == "imok\n"
    assert "Mode: standalone" in corral(server, "four", "srvr", check=0).stdout
    assert "four-letter word has four letters" in corral(server, "four", "ok", check=2).stderr
    # health: what a container's healthcheck runs.
    assert corral(server, "health", check=0).stdout == "serving (standalone)\n"
    assert json.loads(corral(server, "--json", "health", check=0).stdout) == {"serving": True, "mode": "standalone"}


@pytest.mark.skipif(TARGET != "corrald", reason="Corral's plugin modules")
def test_plugins_lists_kind_name_and_abi():
    plugins = os.environ.get("CORRAL_PLUGIN_DIR", str(REPO / "build/plugins"))
    r = subprocess.run([CLI, "plugins", "--plugin-dir", plugins], capture_output=True, text=True, check=True)
    rows = [line.split()[:3] for line in r.stdout.splitlines()[1:]]
    for kind, name in [("consensus", "zab"), ("election", "fle"), ("storage", "wal"), ("transport", "tcp")]:
        assert [kind, name, plugin_abi()] in rows, r.stdout
    listed = json.loads(subprocess.run([CLI, "--json", "plugins", "--plugin-dir", plugins],
                                       capture_output=True, text=True, check=True).stdout)
    assert {"kind": "election", "name": "static"}.items() <= next(
        m for m in listed if m.get("name") == "static" and m.get("kind") == "election").items()


def test_config_and_reconfig_on_an_ensemble(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_cfg="reconfigEnabled=true\n"
                           "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n")
    victim, via = ens.followers()[:2]

    class Via:  # the follower that stays
        hosts = ens.members[via].address

    r = corral(Via, "--json", "config", check=0)
    before = json.loads(r.stdout)
    assert before["members"] == [m.line() for m in ens.members]
    # Only a superuser may change the membership; the refusal says why.
    sid = ens.members[victim].sid
    r = corral(Via, "reconfig", "-remove", str(sid), check=8)
    assert "not authorized" in r.stderr
    r = corral(Via, "reconfig", "-add", "some thing", check=1)
    assert "bad arguments" in r.stderr
    r = corral(Via, "reconfig", "-members", "x", "-add", "y", check=2)
    su = ("--auth", "digest:super:test")
    r = corral(Via, *su, "reconfig", "-v", "1", "-remove", str(sid), check=6)
    r = corral(Via, *su, "reconfig", "-v", before["version"], "-remove", str(sid), check=0)
    assert f"server.{sid}=" not in r.stdout and r.stdout.rstrip().splitlines()[-1].startswith("version=")
    after = json.loads(corral(Via, "--json", "config", check=0).stdout)
    assert len(after["members"]) == 2 and int(after["version"], 16) > int(before["version"], 16)
    # Back in, with its client address, as zkCli writes it.
    m = ens.members[victim]
    r = corral(Via, *su, "reconfig", "-add", f"{m.line()};{m.host}:{m.port}", check=0)
    assert f"{m.line()};{m.host}:{m.port}" in r.stdout.splitlines()
    assert corral(Via, "config", "-s", check=0).stdout.count("server.") == 3
