"""Corral's image and compose ensembles on a real Docker engine: bundles,
a user's plugin mounted at run time, SIGTERM, and 3-node ensembles found by
dns and by docker discovery surviving the loss and return of their leader."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import pytest
from kazoo.client import KazooClient

from corral_harness.servers import four_letter, free_port

from conftest import COMPOSE, DOCKER, REPO, docker, record  # noqa: E402


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - a server not up yet
            last = e
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def health(container):
    return docker("inspect", "-f", "{{.State.Health.Status}}", container).stdout.strip()


def mode(port):
    for line in four_letter("127.0.0.1", port, "srvr", timeout=2).splitlines():
        if line.startswith("Mode: "):
            return line[6:].strip()
    return None


def client(port):
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
    zk.start(timeout=20)
    return zk


# A graceful stop ends well inside docker's 10 s grace period; the bound is
# loose because a busy machine stretches the docker round trips around it
# (the figure itself is recorded).
STOP_WITHIN_SECONDS = 3.0


def timed_stop(container):
    started = time.time()
    docker("stop", "-t", "10", container)
    took = time.time() - started
    code = int(docker("inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip())
    return took, code


def test_the_minimal_bundle_carries_three_plugins_and_takes_a_mounted_one(minimal_image, full_image, tmp_path):
    listed = docker("run", "--rm", minimal_image, "corrald", "--list-plugins").stdout
    kinds = sorted(tuple(line.split()[:2]) for line in listed.splitlines())
    assert kinds == [("consensus", "standalone"), ("storage", "wal"), ("transport", "tcp")], listed
    full = docker("run", "--rm", full_image, "corrald", "--list-plugins").stdout
    for plugin in ["zab", "fle", "dns", "docker", "server-info", "memory", "console"]:
        assert f" {plugin} " in full, full
    # A user's module: the server-info recipe, mounted into the minimal image.
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    cid = docker("create", full_image).stdout.strip()
    try:
        docker("cp", f"{cid}:/usr/local/lib/corral/plugins/corral_recipe_server-info.so", str(plugins))
    finally:
        docker("rm", cid)
    os.chmod(plugins, 0o755)
    port = free_port()
    name = f"corral-min-{os.getpid()}"
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:2181", "-v", f"{plugins}:/plugins:ro",
           "-e", "CORRAL_RECIPES=server-info", minimal_image)
    try:
        wait_for(lambda: health(name) == "healthy", 60, "a healthy standalone container")
        zk = client(port)
        try:
            assert zk.get_children("/corral/servers") == ["1"]
            zk.create("/min", b"x")
            assert zk.get("/min")[0] == b"x"
        finally:
            zk.stop()
        logs = docker("logs", name).stdout + docker("logs", name).stderr
        assert "serving clients on 0.0.0.0:2181" in logs, logs
        took, code = timed_stop(name)
        record("sigterm_stop_seconds", round(took, 2))
        assert code == 0 and took < STOP_WITHIN_SECONDS, (took, code)
    finally:
        docker("rm", "-f", name, check=False)


def test_wrong_settings_fail_at_start_naming_the_variable(minimal_image):
    r = docker("run", "--rm", "-e", "ZOO_MY_ID=1", "-e", "ZOO_SERVERS=server.1=a:2888:3888 server.2=b:2888:3888",
               minimal_image, check=False)
    assert r.returncode == 2
    assert "ZOO_SERVERS: this image has no consensus plugin 'zab'" in r.stderr, r.stderr
    r = docker("run", "--rm", "-e", "ZOO_MY_ID=x", minimal_image, check=False)
    assert r.returncode == 2 and "ZOO_MY_ID must be an integer" in r.stderr, r.stderr


class Compose:
    def __init__(self, file, project, env):
        # A file name in containers/, or a path.
        self.file, self.project = str(REPO / "containers" / file), project
        self.env = {**os.environ, **env}

    def run(self, *args, check=True, timeout=300):
        r = subprocess.run([COMPOSE, "-p", self.project, "-f", self.file, *args], capture_output=True, text=True,
                           env=self.env, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)}: {r.stdout}\n{r.stderr}")
        return r

    def container(self, service):
        return f"{self.project}_{service}_1"

    def logs(self):
        return self.run("logs", "--no-color", check=False).stdout


def exercise_ensemble(compose, services, ports, label, started):
    """Write on the first node, read on the third; stop the leader and keep
    serving; bring it back and check it caught up."""
    compose.run("up", "-d", *services)
    wait_for(lambda: all(health(compose.container(s)) == "healthy" for s in services), 180, "a healthy ensemble")
    record(f"{label}_up_to_healthy_seconds", round(time.time() - started, 1))
    modes = {s: mode(p) for s, p in zip(services, ports)}
    assert sorted(modes.values()) == ["follower", "follower", "leader"], modes
    first, third = client(ports[0]), client(ports[2])
    try:
        first.create("/through-1", b"written on node 1")
        third.sync("/through-1")
        assert third.get("/through-1")[0] == b"written on node 1"
    finally:
        first.stop()
        third.stop()

    leader = next(s for s, m in modes.items() if m == "leader")
    others = [(s, p) for s, p in zip(services, ports) if s != leader]
    started = time.time()
    took, code = timed_stop(compose.container(leader))
    assert code == 0 and took < STOP_WITHIN_SECONDS, (took, code)
    wait_for(lambda: sorted(str(mode(p)) for _, p in others) == ["follower", "leader"], 60, "a new leader")
    record(f"{label}_failover_seconds", round(time.time() - started, 2))
    a, b = client(others[0][1]), client(others[1][1])
    try:
        a.create("/while-away", b"the leader was down")
        b.sync("/while-away")
        assert b.get("/while-away")[0] == b"the leader was down"
    finally:
        a.stop()
        b.stop()

    docker("start", compose.container(leader))
    back = ports[services.index(leader)]
    wait_for(lambda: health(compose.container(leader)) == "healthy", 120, "the old leader healthy again")
    assert mode(back) == "follower"
    c = client(back)
    try:
        c.sync("/while-away")
        assert c.get("/while-away")[0] == b"the leader was down"
        assert c.get("/through-1")[0] == b"written on node 1"
    finally:
        c.stop()


def test_a_compose_ensemble_with_dns_discovery(full_image):
    ports = [free_port() for _ in range(3)]
    compose = Compose("docker-compose.yml", f"corraldns{os.getpid()}",
                      {"CORRAL_IMAGE": full_image, **{f"CORRAL_PORT_{i + 1}": str(p) for i, p in enumerate(ports)}})
    try:
        # Node 1 alone first: its peers' names do not resolve yet, which must
        # not stop it (the classic ZooKeeper-in-Docker startup failure).
        started = time.time()
        compose.run("up", "-d", "corral1")
        wait_for(lambda: "does not resolve yet" in docker("logs", compose.container("corral1")).stderr, 60,
                 "node 1 to notice its peers are not there yet")
        assert docker("inspect", "-f", "{{.State.Running}}", compose.container("corral1")).stdout.strip() == "true"
        assert docker("exec", compose.container("corral1"), "id", "-u").stdout.strip() == "10001"
        exercise_ensemble(compose, ["corral1", "corral2", "corral3"], ports, "dns_staged_start", started)
        # The members proved themselves with the secret the compose file made.
        secret = docker("exec", compose.container("corral2"), "cat", "/run/corral-peer/peer.secret").stdout.strip()
        assert len(secret) >= 40, secret
        for s in ["corral1", "corral2", "corral3"]:
            assert "believe anyone" not in docker("logs", compose.container(s)).stderr
    except Exception:
        print(compose.logs()[-20000:])
        raise
    finally:
        compose.run("down", "-v", "-t", "5", check=False)


def test_the_official_images_compose_with_a_mounted_zoo_cfg(full_image):
    """tests/containers/seed: three nodes, one zoo.cfg mounted at /conf,
    ZOO_MY_ID each, as users of the official image write it."""
    ports = [free_port() for _ in range(3)]
    services = ["zookeeper1", "zookeeper2", "zookeeper3"]
    compose = Compose(str(REPO / "tests" / "containers" / "seed" / "docker-compose.yml"), f"corralseed{os.getpid()}",
                      {"CORRAL_IMAGE": full_image, **{f"ZK_PORT_{i + 1}": str(p) for i, p in enumerate(ports)}})
    try:
        started = time.time()
        compose.run("up", "-d")
        wait_for(lambda: all(health(compose.container(s)) == "healthy" for s in services), 180, "a healthy ensemble")
        record("seed_compose_up_to_healthy_seconds", round(time.time() - started, 1))
        for n, s in enumerate(services, 1):
            log = docker("logs", compose.container(s)).stderr
            assert f"wrote /var/lib/zookeeper/myid = {n} from ZOO_MY_ID" in log, log[-3000:]
        modes = {s: mode(p) for s, p in zip(services, ports)}
        assert sorted(modes.values()) == ["follower", "follower", "leader"], modes
        first, third = client(ports[0]), client(ports[2])
        try:
            first.create("/seed", b"written on zookeeper1")
            third.sync("/seed")
            assert third.get("/seed")[0] == b"written on zookeeper1"
        finally:
            first.stop()
            third.stop()
        # A restart finds its myid where it left it.
        docker("restart", "-t", "5", compose.container("zookeeper2"))
        wait_for(lambda: health(compose.container("zookeeper2")) == "healthy", 120, "zookeeper2 back")
        c = client(ports[1])
        try:
            c.sync("/seed")
            assert c.get("/seed")[0] == b"written on zookeeper1"
        finally:
            c.stop()
    except Exception:
        print(compose.logs()[-20000:])
        raise
    finally:
        compose.run("down", "-v", "-t", "5", check=False)


def registry_view(admin_port, service):
    r = subprocess.run(["curl", "-sS", "--max-time", "5",
                        f"http://127.0.0.1:{admin_port}/v1/registry/services/{service}?consistent"],
                       capture_output=True, text=True, timeout=10)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None


def test_a_compose_ensemble_with_docker_discovery(full_image, base_image):
    ports = [free_port() for _ in range(3)]
    admin = [free_port() for _ in range(3)]
    gid = os.stat("/var/run/docker.sock").st_gid
    compose = Compose("docker-compose.docker-discovery.yml", f"corraldock{os.getpid()}",
                      {"CORRAL_IMAGE": full_image, "DOCKER_GID": str(gid),
                       **{f"CORRAL_PORT_{i + 1}": str(p) for i, p in enumerate(ports)},
                       **{f"CORRAL_ADMIN_PORT_{i + 1}": str(p) for i, p in enumerate(admin)}})
    try:
        # All at once: the time from `up` to a healthy ensemble.
        exercise_ensemble(compose, ["node1", "node2", "node3"], ports, "docker", time.time())
        logs = docker("logs", compose.container("node1")).stderr
        assert re.search(r"this is container \S+, server 1 of ensemble \"demo\"", logs), logs
        assert "discovery.docker named the ensemble" in logs, logs
        # Registrator-style: a labelled container is an instance while it runs,
        # on every node's registry.
        web = f"corral-web-{os.getpid()}"
        docker("run", "-d", "--name", web, "--label", "corral.service=web", "--label", "corral.service-port=80",
               base_image, "sleep", "600")
        try:
            ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", web).stdout.strip()
            started = time.time()
            view = wait_for(lambda: (v := registry_view(admin[1], "web")) and v["instances"] and v, 30,
                            "the container registered")
            record("container_registered_seconds", round(time.time() - started, 2))
            assert [(i["id"], i["address"], i["port"]) for i in view["instances"]] == [(web, ip, 80)], view
            assert [i["id"] for i in registry_view(admin[2], "web")["instances"]] == [web]
            docker("stop", "-t", "1", web)
            wait_for(lambda: (v := registry_view(admin[0], "web")) and v["instances"] == [], 30,
                     "the stopped container deregistered")
        finally:
            docker("rm", "-f", web, check=False)
    except Exception:
        print(compose.logs()[-20000:])
        raise
    finally:
        compose.run("down", "-v", "-t", "5", check=False)


def tls_mode(port, ca):
    import socket
    import ssl
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw, ctx.wrap_socket(raw) as s:
        s.sendall(b"srvr")
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    for line in got.decode().splitlines():
        if line.startswith("Mode: "):
            return line[6:].strip()
    return None


def test_a_compose_ensemble_with_tls_on_every_port(full_image, tmp_path):
    certs = tmp_path / "certs"
    subprocess.run([str(REPO / "containers" / "make-certs.sh"), str(certs)], check=True, capture_output=True)
    ca = str(certs / "ca.pem")
    ports = [free_port() for _ in range(3)]
    admins = [free_port() for _ in range(3)]
    services = ["corral1", "corral2", "corral3"]
    compose = Compose("docker-compose.tls.yml", f"corraltls{os.getpid()}",
                      {"CORRAL_IMAGE": full_image, "CORRAL_CERTS": str(certs),
                       **{f"CORRAL_TLS_PORT_{i + 1}": str(p) for i, p in enumerate(ports)},
                       **{f"CORRAL_ADMIN_PORT_{i + 1}": str(p) for i, p in enumerate(admins)}})
    try:
        started = time.time()
        compose.run("up", "-d")
        wait_for(lambda: all(health(compose.container(s)) == "healthy" for s in services), 180, "a healthy ensemble")
        record("tls_up_to_healthy_seconds", round(time.time() - started, 1))
        modes = {s: tls_mode(p, ca) for s, p in zip(services, ports)}
        assert sorted(modes.values()) == ["follower", "follower", "leader"], modes

        def tls_client(port):
            zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10, use_ssl=True, verify_certs=True, ca=ca,
                             certfile=str(certs / "client.pem"), keyfile=str(certs / "client.key"))
            zk.start(timeout=20)
            return zk
        first, third = tls_client(ports[0]), tls_client(ports[2])
        first.create("/over-tls", b"encrypted end to end")
        third.sync("/over-tls")
        assert third.get("/over-tls")[0] == b"encrypted end to end"
        first.stop()
        third.stop()
        # Every member's peer links are TLS, and the plaintext port is not published.
        for s in services:
            logs = docker("logs", compose.container(s)).stderr
            assert "peer links: dialed over TLS, accepted in TLS only" in logs, logs[-3000:]
            assert "believe anyone" not in logs
        import ssl
        import urllib.request
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = False
        with urllib.request.urlopen(f"https://127.0.0.1:{admins[0]}/commands/server_stats", context=ctx,
                                    timeout=10) as r:
            assert json.load(r)["command"] == "server_stats"
        # The leader goes; the others elect over TLS and go on.
        leader = next(s for s, m in modes.items() if m == "leader")
        others = [p for s, p in zip(services, ports) if s != leader]
        docker("stop", "-t", "10", compose.container(leader))
        wait_for(lambda: sorted(str(tls_mode(p, ca)) for p in others) == ["follower", "leader"], 60, "a new leader")
        zk = tls_client(others[0])
        zk.create("/after-failover", b"still encrypted")
        zk.stop()
    except Exception:
        print(compose.logs()[-20000:])
        raise
    finally:
        compose.run("down", "-v", "-t", "5", check=False)
