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


def zkcli_script(server, lines):
    """Feed zkCli.sh a whole session on stdin (one JVM); return its output lines."""
    env = dict(os.environ, CLIENT_JVMFLAGS="-XX:TieredStopAtLevel=1 -Xshare:auto")
    proc = subprocess.run([str(ZKCLI), "-server", server.hosts], input="\n".join(lines) + "\nquit\n",
                          capture_output=True, text=True, timeout=120, env=env)
    return [l for l in (proc.stdout + proc.stderr).splitlines() if l and not l.startswith("SLF4J")]


def test_zkcli_every_command_in_one_session(server_factory):
    srv = server_factory(extended_types=True)
    out = zkcli_script(srv, [
        "create /s a",
        "create -e /s/eph",
        "create -s /s/seq- x",
        "create -c /s/box",
        "create -t 600000 /s/ttl",
        "ls -R /s",
        "ls -s /s",
        "get -s /s",
        "set /s b",
        "stat /s",
        "getEphemerals /s",
        "getAllChildrenNumber /s",
        "setquota -n 10 /s",
        "listquota /s",
        "delquota -n /s",
        "addWatch -m PERSISTENT_RECURSIVE /s",
        "set /s c",
        "printwatches",
        "removewatches /s -a",
        "whoami",
        "addauth digest u:p",
        "whoami",
        "setAcl /s auth:u:p:cdrwa",
        "getAcl /s",
        "sync /s",
        "version",
        "history",
        "redo 24",
        "deleteall /s/box",
        "delete /s/seq-0000000001",
        "close",
        "connect " + srv.hosts,
        "ls /s",
        "get /s",
    ])
    text = "\n".join(out)
    for expected in [
        "Created /s", "Created /s/eph", "Created /s/seq-0000000001", "Created /s/box", "Created /s/ttl",
        "/s/box", "/s/seq-0000000001", "/s/ttl",          # ls -R
        "numChildren = 4",                                 # ls -s / get -s
        "[/s/eph]",                                        # getEphemerals
        "Output quota for /s count=10",                    # setquota + listquota
        "WatchedEvent state:SyncConnected type:NodeDataChanged path:/s",  # addWatch
        "type:PersistentWatchRemoved path:/s",             # removewatches
        "ip: 127.0.0.1", "digest: u",                      # whoami before and after addauth
        "'digest,'u:",                                     # getAcl after setAcl auth:
        "Sync is OK",
        "ZooKeeper CLI version",
        "26 - history",                                    # history
        "WatchedEvent state:Closed",                       # close
    ]:
        assert expected in text, f"{expected!r} missing from zkCli's output:\n{text}"
    assert text.count("Sync is OK") == 2, text  # redo 24 ran sync again
    # After reconnecting (a new session): the ephemeral went with the old one;
    # the ACL set through auth keeps the new, unauthenticated session out.
    assert "Insufficient permission : /s" in text or "[ttl]" in text, text


def test_zkcli_quotas_are_counted_and_hard_limits_refused(server_factory):
    srv = server_factory(enforce_quota=True)
    out = zkcli_script(srv, [
        "create /q a",
        "create /q/1 bb",
        "setquota -N 3 /q",
        "listquota /q",
        "create /q/2 c",
        "create /q/3 d",
        "set /q/2 ccc",
        "listquota /q",
        "delquota -N /q",
        "create /q/3 d",
        "setquota -b 2 /q",
        "create /q/4 soft-limits-only-log",
    ])
    text = "\n".join(out)
    assert "Output stat for /q count=2,bytes=3" in text, text   # /q and /q/1 when the quota was set
    assert "Output stat for /q count=3,bytes=6" in text, text   # after /q/2 and its new data
    assert "Created /q/2" in text and "Created /q/4" in text, text
    assert "Quota has exceeded : /q/3" in text, text
    assert text.count("Created /q/3") == 1, text                # once the hard limit went


def test_zkcli_config_and_reconfig_on_an_ensemble(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_cfg="reconfigEnabled=true\n"
                           "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n")

    victim, via = ens.followers()[:2]

    class Hosts:  # the follower that stays
        hosts = ens.hosts([ens.members[via]])

    m3 = ens.members[victim]
    out = zkcli_script(Hosts, [
        "config",
        f"reconfig -remove {m3.sid}",
        "addauth digest super:test",
        f"reconfig -remove {m3.sid}",
        f"reconfig -add {m3.line()};{m3.host}:{m3.port}",
        "config",
    ])
    text = "\n".join(out)
    members = [m.line() for m in ens.members]
    # config: the members and the version, as ZooKeeper prints them.
    assert all(line in out for line in members), text
    # Without the superuser, reconfig is refused.
    assert "Insufficient permission" in text or "NoAuth" in text, text
    # Removed, then added back with its client address: each prints the
    # result with a new version, and config the last one. (With reconfig
    # enabled, the configured membership has the first epoch's version,
    # version=100000000, rather than 0.)
    versions = [int(l.split("=")[1], 16) for l in out if l.startswith("version=")]
    assert len(versions) == 4 and versions[0] < versions[1] < versions[2] == versions[3], text
    assert versions[0] == 1 << 32, text
    assert f"{m3.line()};{m3.host}:{m3.port}" in out, text
