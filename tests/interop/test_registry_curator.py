"""Corral's service-registry recipe and Curator's ServiceDiscovery (Debian's
libcurator-discovery-java) see each other's instances, on one server and
across a 3-server ensemble: an instance registered over HTTP on server 1 is
found by Curator through server 3 and by DNS on server 2, and Curator's
own registration appears over HTTP."""
import json
import re
import shutil
import subprocess
import time

import pytest

from corral_harness.servers import TARGET
from test_curator import HERE, classpath

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="Corral's service-registry recipe")

REGISTRY_ARGS = ["--set", "server.admin_address=127.0.0.1:0", "--set", 'plugins.recipes=["service-registry"]',
                 "--set", "recipe.service-registry.dns_address=127.0.0.1:0"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("registry-curator")
    r = subprocess.run(["javac", "-cp", classpath(), "-d", str(out), str(HERE / "RegistryCheck.java")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def endpoints(log_text):
    http = re.search(r"admin endpoint on http://(127\.0\.0\.1:\d+)/commands", log_text)
    dns = re.search(r"DNS on 127\.0\.0\.1:(\d+) ", log_text)
    assert http and dns, log_text[-3000:]
    return f"http://{http.group(1)}/v1/registry", int(dns.group(1))


def curl(method, url, body=None, user="ops:secret"):
    args = ["curl", "-sS", "-X", method, "-w", "\n%{http_code}", "--max-time", "10", url, "-u", user]
    if body is not None:
        args += ["--data-binary", body]
    r = subprocess.run(args, capture_output=True, text=True, timeout=15)
    text, code = r.stdout.rsplit("\n", 1)
    return int(code), json.loads(text) if text.strip() else None


def check_both_ways(compiled, curator_hosts, register_url, read_url, dns_port):
    code, body = curl("PUT", register_url + "/services/http-api/instances/from-http?ttl=60s",
                      json.dumps({"address": "10.6.0.1", "port": 7000}))
    assert code == 200, body
    java = subprocess.Popen(["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp",
                             classpath([str(compiled)]), "RegistryCheck", curator_hosts, "/services"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert java.stdout.readline().strip() == "registered", java.stderr.read()
        # Curator finds the instance registered over HTTP...
        java.stdin.write("http-api\n")
        java.stdin.flush()
        lines = []
        while (line := java.stdout.readline().strip()) != "done":
            lines.append(line)
        assert lines == ["found from-http 10.6.0.1 7000"], lines
        # ...and Curator's own registration appears over HTTP (consistent read) and in DNS.
        code, view = curl("GET", read_url + "/services/curator-api?consistent")
        assert code == 200, view
        assert [(i["id"], i["address"], i["port"]) for i in view["instances"]] == [("from-curator", "10.5.0.1", 9000)]
        if shutil.which("dig"):
            deadline = time.time() + 10
            while True:
                r = subprocess.run(["dig", "@127.0.0.1", "-p", str(dns_port), "+short", "+time=2",
                                    "http-api.service.corral", "SRV"], capture_output=True, text=True, timeout=15)
                if r.stdout.strip() == "1 1 7000 from-http.http-api.service.corral." or time.time() > deadline:
                    break
                time.sleep(0.2)
            assert r.stdout.strip() == "1 1 7000 from-http.http-api.service.corral.", r.stdout + r.stderr
    finally:
        java.stdin.close()
        assert java.wait(timeout=60) == 0, java.stderr.read()[-3000:]
    # Curator unregistered on its way out.
    code, view = curl("GET", read_url + "/services/curator-api?consistent")
    assert code == 200 and view["instances"] == []


def test_curator_and_the_registry_on_one_server(compiled, server_factory):
    srv = server_factory(extra_args=REGISTRY_ARGS)
    url, dns = endpoints(srv.log_path.read_text())
    check_both_ways(compiled, srv.hosts, url, url, dns)


def test_curator_and_the_registry_across_an_ensemble(compiled, ensemble_factory):
    ens = ensemble_factory(voters=3, extra_args=REGISTRY_ARGS)
    urls = [endpoints(m.log_text()) for m in ens.members]
    # HTTP on server 1, Curator through server 3, DNS and HTTP reads on server 2.
    check_both_ways(compiled, ens.members[2].address, urls[0][0], urls[1][0], urls[1][1])


def test_the_registry_survives_a_leader_kill(ensemble_factory):
    ens = ensemble_factory(voters=3, extra_args=REGISTRY_ARGS)
    urls = {i: endpoints(m.log_text())[0] for i, m in enumerate(ens.members)}
    leader = ens.leader()
    f1, f2 = [i for i in range(3) if i != leader]
    # One instance held by a follower, one by the leader.
    assert curl("PUT", urls[f1] + "/services/svc/instances/on-follower?ttl=60s",
                json.dumps({"address": "10.8.0.1", "port": 1}))[0] == 200
    assert curl("PUT", urls[leader] + "/services/svc/instances/on-leader?ttl=2s",
                json.dumps({"address": "10.8.0.2", "port": 2}))[0] == 200
    ens.kill(leader)
    ens.wait_serving([f1, f2], timeout=60)
    # Both survivors answer the same; the follower's registration is still
    # there, and the dead leader's lapses with its session.
    deadline = time.time() + 30
    while True:
        views = [curl("GET", urls[i] + "/services/svc?consistent") for i in (f1, f2)]
        ids = [sorted(x["id"] for x in v["instances"]) if c == 200 else None for c, v in views]
        if ids[0] == ids[1] == ["on-follower"] or time.time() > deadline:
            break
        time.sleep(0.2)
    assert ids[0] == ids[1] == ["on-follower"], views
    # Writes go on: register on one survivor, read on the other; renew
    # anywhere (the other survivor takes the registration over).
    assert curl("PUT", urls[f2] + "/services/svc/instances/after?ttl=60s",
                json.dumps({"address": "10.8.0.3", "port": 3}))[0] == 200
    code, view = curl("GET", urls[f1] + "/services/svc?consistent")
    assert code == 200 and sorted(x["id"] for x in view["instances"]) == ["after", "on-follower"]
    assert curl("PUT", urls[f2] + "/services/svc/instances/on-follower/renew")[0] == 200
    code, view = curl("GET", urls[f1] + "/services/svc?consistent")
    assert sorted(x["id"] for x in view["instances"]) == ["after", "on-follower"]
