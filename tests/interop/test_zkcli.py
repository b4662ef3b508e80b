"""Drive the server with Apache ZooKeeper's own CLI, zkCli.sh."""
import os
import pathlib
import re
import subprocess

import pytest

ZKCLI = pathlib.Path("/usr/share/zookeeper/bin/zkCli.sh")
NOISE = re.compile(r"^(SLF4J:|Connecting to |WATCHER::|WatchedEvent |$)")

pytestmark = pytest.mark.skipif(not ZKCLI.exists(), reason="needs zookeeper")


def zkcli(server, *command):
    """Run one zkCli.sh command; return (exit code, output lines)."""
    env = dict(os.environ,
               CLIENT_JVMFLAGS="-XX:TieredStopAtLevel=1 -Xshare:auto")
    proc = subprocess.run([str(ZKCLI), "-server", server.hosts, *command],
                          capture_output=True, text=True, timeout=60, env=env)
    lines = (proc.stdout + proc.stderr).splitlines()
    return proc.returncode, [l for l in lines if not NOISE.match(l)]


def stat_fields(lines):
    return dict(l.split(" = ", 1) for l in lines if " = " in l)


def test_zkcli_session(server):
    assert zkcli(server, "create", "/cli", "hello") == (0, ["Created /cli"])
    assert zkcli(server, "create", "/cli", "x") == (
        1, ["Node already exists: /cli"])
    rc, out = zkcli(server, "ls", "/")
    assert rc == 0 and "cli" in out[-1].strip("[]").split(", ")
    assert zkcli(server, "get", "/cli") == (0, ["hello"])
    assert zkcli(server, "set", "/cli", "world") == (0, [])

    rc, out = zkcli(server, "get", "-s", "/cli")
    assert rc == 0 and out[0] == "world"
    st = stat_fields(out)
    assert (st["dataVersion"], st["dataLength"], st["numChildren"],
            st["cversion"], st["aclVersion"], st["ephemeralOwner"]) == (
                "1", "5", "0", "0", "0", "0x0")
    assert int(st["mZxid"], 16) > int(st["cZxid"], 16) == int(st["pZxid"], 16)

    assert zkcli(server, "create", "-s", "/cli/s-", "x") == (
        0, ["Created /cli/s-0000000000"])
    assert zkcli(server, "ls", "/cli") == (0, ["[s-0000000000]"])
    rc, out = zkcli(server, "stat", "/cli")
    st = stat_fields(out)
    assert rc == 0 and (st["numChildren"], st["cversion"]) == ("1", "1")
    assert zkcli(server, "delete", "/cli") == (1, ["Node not empty: /cli"])
    assert zkcli(server, "delete", "/cli/s-0000000000") == (0, [])
    assert zkcli(server, "delete", "/cli") == (0, [])
    assert zkcli(server, "get", "/cli") == (1, ["Node does not exist: /cli"])
