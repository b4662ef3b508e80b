"""The service-registry recipe through real clients: curl for its HTTP API,
dig for its DNS responder, kazoo reading the Curator layout it writes. TTL
lapse, blocking queries, Server-Sent Events and bad input included."""
import json
import os
import shutil
import subprocess
import threading
import time

import pytest
from kazoo.client import KazooClient

from corral_harness.servers import DEFAULT_TICK_MS, TARGET, _started, _teardown, free_port

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="Corral's service-registry recipe")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from corral_harness.servers import _started, _teardown
    http, dns = free_port(), free_port()
    srv = _started(tmp_path_factory, DEFAULT_TICK_MS, extra_args=[
        "--set", f"server.admin_address=127.0.0.1:{http}",
        "--set", 'plugins.recipes=["service-registry"]',
        "--set", f"recipe.service-registry.dns_address=127.0.0.1:{dns}",
        "--set", "recipe.service-registry.min_ttl_ms=200",
    ])
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=10)
    # The same user the tests' HTTP calls are (curl's default): services they
    # register belong to it.
    zk.add_auth("digest", "ops:secret")
    yield srv, f"http://127.0.0.1:{http}/v1/registry", dns, zk
    zk.stop()
    zk.close()
    _teardown(srv)


def curl(method, url, body=None, timeout=10, user="ops:secret"):
    """`user` ("name:password", HTTP Basic) is who the registry sees: changes
    need credentials by default; None sends none."""
    args = ["curl", "-sS", "-X", method, "-w", "\n%{http_code}", "--max-time", str(timeout), url]
    if user:
        args += ["-u", user]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", body]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 5)
    assert r.returncode == 0, r.stderr
    text, code = r.stdout.rsplit("\n", 1)
    return int(code), (json.loads(text) if text.strip() else None)


def test_register_list_and_read_back_in_curators_layout(registry):
    srv, base, dns, zk = registry
    code, body = curl("PUT", base + "/services/api/instances/api-1?ttl=30s",
                      json.dumps({"address": "10.0.0.7", "port": 8080, "payload": {"zone": "a"}}))
    assert code == 200, body
    assert body["ttl_ms"] == 30000 and body["instance"]["serviceType"] == "DYNAMIC"
    code, listed = curl("GET", base + "/services")
    assert code == 200 and "api" in listed["services"]
    code, view = curl("GET", base + "/services/api")
    assert code == 200 and [i["id"] for i in view["instances"]] == ["api-1"]
    # What Curator's ServiceDiscovery reads: an ephemeral znode holding its ServiceInstance JSON.
    data, stat = zk.get("/services/api/api-1")
    doc = json.loads(data)
    assert stat.ephemeralOwner != 0
    assert list(doc) == ["name", "id", "address", "port", "sslPort", "payload", "registrationTimeUTC",
                         "serviceType", "uriSpec", "enabled"]
    assert (doc["name"], doc["address"], doc["port"], doc["payload"]) == ("api", "10.0.0.7", 8080, {"zone": "a"})
    # A generated id, as Curator's builder makes them.
    code, made = curl("POST", base + "/services/api/instances", json.dumps({"address": "10.0.0.8", "port": 8081}))
    assert code == 201 and len(made["id"]) == 36 and made["id"][14] == "4"
    code, one = curl("GET", base + f"/services/api/instances/{made['id']}")
    assert code == 200 and one["port"] == 8081
    assert curl("DELETE", base + f"/services/api/instances/{made['id']}")[0] == 200
    assert curl("GET", base + f"/services/api/instances/{made['id']}")[0] == 404


def test_an_instance_lapses_without_renewal_and_stays_with_it(registry):
    srv, base, dns, zk = registry
    # (A TTL several times the renewal period, so that a slow machine's
    # renewals still come in time.)
    assert curl("PUT", base + "/services/ttl/instances/kept?ttl=2s", '{"address":"h1","port":1}')[0] == 200
    assert curl("PUT", base + "/services/ttl/instances/dropped?ttl=2s", '{"address":"h2","port":2}')[0] == 200
    for _ in range(6):
        time.sleep(0.5)
        assert curl("PUT", base + "/services/ttl/instances/kept/renew")[0] == 200
    deadline = time.time() + 10
    while zk.exists("/services/ttl/dropped") and time.time() < deadline:
        time.sleep(0.05)
    assert zk.exists("/services/ttl/dropped") is None
    assert zk.exists("/services/ttl/kept") is not None
    code, err = curl("PUT", base + "/services/ttl/instances/dropped/renew")
    assert code == 404 and "register it again" in err["error"]


def test_a_blocking_query_returns_on_the_next_change(registry):
    srv, base, dns, zk = registry
    assert curl("PUT", base + "/services/web/instances/w1", '{"address":"10.1.0.1","port":80}')[0] == 200
    code, view = curl("GET", base + "/services/web")
    index = view["index"]
    result = {}

    def wait():
        result["got"] = curl("GET", base + f"/services/web?index={index}&wait=20s", timeout=25)

    t = threading.Thread(target=wait)
    started = time.time()
    t.start()
    time.sleep(0.5)
    assert "got" not in result  # still blocked: nothing changed
    # A change through plain ZooKeeper (as Curator would make it) wakes it.
    zk.create("/services/web/w2", json.dumps({"name": "web", "id": "w2", "address": "10.1.0.2", "port": 80}).encode(),
              ephemeral=True)
    t.join(timeout=10)
    code, woke = result["got"]
    assert code == 200 and woke["index"] > index and time.time() - started < 10
    assert sorted(i["id"] for i in woke["instances"]) == ["w1", "w2"]
    # No change within the wait: the same index back.
    code, same = curl("GET", base + f"/services/web?index={woke['index']}&wait=300ms")
    assert code == 200 and same["index"] == woke["index"]


def test_server_sent_events_follow_a_service(registry):
    srv, base, dns, zk = registry
    curl("PUT", base + "/services/sse/instances/s1", '{"address":"10.2.0.1","port":1}')
    proc = subprocess.Popen(["curl", "-sN", "--max-time", "10", base + "/services/sse/events"],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = [proc.stdout.readline() for _ in range(3)]
        assert first[0] == "event: instances\n" and json.loads(first[1][len("data: "):])["instances"][0]["id"] == "s1"
        curl("PUT", base + "/services/sse/instances/s2", '{"address":"10.2.0.2","port":2}')
        second = [proc.stdout.readline() for _ in range(3)]
        assert sorted(i["id"] for i in json.loads(second[1][len("data: "):])["instances"]) == ["s1", "s2"]
    finally:
        proc.kill()
        proc.wait()


def test_disabled_instances_are_not_healthy(registry):
    srv, base, dns, zk = registry
    curl("PUT", base + "/services/hc/instances/up", '{"address":"10.3.0.1","port":1}')
    curl("PUT", base + "/services/hc/instances/off", '{"address":"10.3.0.2","port":1,"enabled":false}')
    code, all_ = curl("GET", base + "/services/hc")
    code, healthy = curl("GET", base + "/services/hc?healthy")
    assert sorted(i["id"] for i in all_["instances"]) == ["off", "up"]
    assert [i["id"] for i in healthy["instances"]] == ["up"]


@pytest.mark.skipif(not shutil.which("dig"), reason="dig (bind9-dnsutils) is not installed")
def test_dns_answers_srv_and_a(registry):
    srv, base, dns, zk = registry
    curl("PUT", base + "/services/db/instances/db-1", '{"address":"10.9.0.1","port":5432}')
    curl("PUT", base + "/services/db/instances/db-2", '{"address":"10.9.0.2","port":5433}')

    def dig(*args):
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(dns), "+short", "+time=2", "+tries=2", *args],
                           capture_output=True, text=True, timeout=15)
        assert r.returncode == 0, r.stdout + r.stderr
        return sorted(r.stdout.split("\n")[:-1])

    assert dig("db.service.corral", "SRV") == ["1 1 5432 db-1.db.service.corral.", "1 1 5433 db-2.db.service.corral."]
    assert dig("db.service.corral", "A") == ["10.9.0.1", "10.9.0.2"]
    assert dig("db-2.db.service.corral", "A") == ["10.9.0.2"]
    r = subprocess.run(["dig", "@127.0.0.1", "-p", str(dns), "+time=2", "nosuch.service.corral", "A"],
                       capture_output=True, text=True, timeout=15)
    assert "status: NXDOMAIN" in r.stdout, r.stdout


@pytest.mark.parametrize("method,path,body,code,says", [
    ("PUT", "/services/api/instances/x", "{not json", 400, "not JSON"),
    ("PUT", "/services/api/instances/x", '{"port": 1}', 400, "\"address\" is required"),
    ("PUT", "/services/api/instances/x", '{"address": "h", "port": 70000}', 400, "from 1 to 65535"),
    ("PUT", "/services/api/instances/x", '{"address": "h", "port": 1, "color": "red"}', 400, "unknown field"),
    ("PUT", "/services/api/instances/x?ttl=forever", '{"address": "h", "port": 1}', 400, "ttl must be"),
    ("PUT", "/services/bad%20name/instances/x", '{"address": "h", "port": 1}', 400, "not a service name"),
    ("PUT", "/services/api/instances/x", '{"address": "h", "port": 1, "payload": "' + "x" * 70000 + '"}', 413,
     "larger than max_payload_bytes"),
    ("GET", "/services/nosuch", None, 404, "no service"),
    ("DELETE", "/services/api", None, 405, "GET lists"),
    ("GET", "/elsewhere", None, 404, "unknown path"),
])
def test_bad_input_gets_a_4xx_and_changes_nothing(registry, method, path, body, code, says):
    srv, base, dns, zk = registry
    before = zk.get_children("/services") if zk.exists("/services") else []
    got, err = curl(method, base + path, body)
    assert got == code, (got, err)
    assert says in err["error"], err
    after = zk.get_children("/services") if zk.exists("/services") else []
    assert after == before
    assert zk.exists("/services/api/x") is None


def test_changes_need_credentials_and_the_services_acl_decides(registry):
    """A registration made with credentials belongs to them (the service's
    znode gets ZooKeeper's creator ACL, readable by all): without credentials
    a change is refused (401), with someone else's it is refused (403), and
    reads stay open."""
    srv, base, dns, zk = registry
    svc = base + "/services/payments"
    assert curl("PUT", svc + "/instances/p1?ttl=60s", '{"address":"10.0.0.1","port":80}',
                user="alice:wonderland")[0] == 200
    code, err = curl("PUT", svc + "/instances/p1?ttl=60s", '{"address":"6.6.6.6","port":80}', user=None)
    assert code == 401 and "credentials" in err["error"]
    code, err = curl("DELETE", svc + "/instances/p1", user=None)
    assert code == 401
    code, err = curl("PUT", svc + "/instances/p1?ttl=60s", '{"address":"6.6.6.6","port":80}',
                     user="mallory:guess")
    assert code == 403 and "ACL" in err["error"], err
    assert curl("DELETE", svc + "/instances/p1", user="mallory:guess")[0] == 403
    assert curl("PUT", svc + "/instances/p2?ttl=60s", '{"address":"6.6.6.6","port":80}',
                user="mallory:guess")[0] == 403
    # A refused caller changes nothing this server keeps either: not the
    # TTL (a 1 s one would let alice's instance lapse), not the document
    # alice's next renewal writes.
    assert curl("PUT", svc + "/instances/p1?ttl=1s", '{"address":"6.6.6.6","port":80}',
                user="mallory:guess")[0] == 403
    assert curl("PUT", svc + "/instances/p1/renew?ttl=1s", user="mallory:guess")[0] == 403
    time.sleep(1.5)
    assert curl("PUT", svc + "/instances/p1/renew", user="alice:wonderland")[0] == 200
    # Nothing changed; anyone may read.
    code, view = curl("GET", svc + "?consistent", user=None)
    assert code == 200 and [i["address"] for i in view["instances"]] == ["10.0.0.1"]
    acl = {(a.id.scheme, a.id.id.split(":")[0], a.perms) for a in zk.get_acls("/services/payments")[0]}
    assert acl == {("digest", "alice", 31), ("world", "anyone", 1)}
    # The owner renews and deregisters.
    assert curl("PUT", svc + "/instances/p1/renew", user="alice:wonderland")[0] == 200
    assert curl("DELETE", svc + "/instances/p1", user="alice:wonderland")[0] == 200


def test_an_operator_locks_a_service_with_a_znode_acl(registry):
    srv, base, dns, zk = registry
    from kazoo.security import make_digest_acl
    zk.create("/services/locked", b"", makepath=True,
              acl=[make_digest_acl("deployer", "s3cret", all=True), make_digest_acl("x", "y", read=True)])
    svc = base + "/services/locked"
    assert curl("PUT", svc + "/instances/a?ttl=60s", '{"address":"10.0.0.2","port":1}',
                user="ops:secret")[0] == 403
    assert curl("PUT", svc + "/instances/a?ttl=60s", '{"address":"10.0.0.2","port":1}',
                user="deployer:s3cret")[0] == 200


@pytest.fixture(scope="module")
def open_registry(tmp_path_factory):
    http = free_port()
    srv = _started(tmp_path_factory, 2000, extra_args=[
        "--set", "plugins.recipes=[\"service-registry\"]",
        "--set", f"server.admin_address=127.0.0.1:{http}",
        "--set", "recipe.service-registry.anonymous_writes=true",
        "--set", "recipe.service-registry.anonymous_reads=false"])
    yield srv, f"http://127.0.0.1:{http}/v1/registry"
    _teardown(srv)


def test_anonymous_access_is_the_operators_choice(open_registry):
    srv, base = open_registry
    assert curl("PUT", base + "/services/open/instances/a?ttl=60s", '{"address":"10.0.0.3","port":1}',
                user=None)[0] == 200
    code, err = curl("GET", base + "/services/open", user=None)
    assert code == 401 and "reading the registry needs credentials" in err["error"]
    assert curl("GET", base + "/services/open", user="anyone:at-all")[0] == 200

