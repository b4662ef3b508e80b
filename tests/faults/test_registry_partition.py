"""The service registry across a partition: a server cut off from the
others keeps taking its clients' renewals while the ensemble expires the
session its registrations live on; after the heal the next renewal brings
the instance back on a new session, and every server lists it. Until a
server's registry has a session again it answers reads with 503, never
with a false "no such service", also for a service it never read."""
import json
import time
import urllib.error
import urllib.request

import pytest

from corral_harness.ensemble import Ensemble
from faults.nemesis import leader_of
from faults.network import Network, available

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except OSError as e:
        return None, str(e)


def until(what, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        ok, got = what()
        if ok:
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.2)


def test_a_registration_cut_off_from_its_session_comes_back_on_renewal(tmp_path):
    net = Network(3)
    ens = Ensemble(tmp_path, voters=3, tick_ms=200, network=net,
                   extra_args=["--set", 'plugins.recipes=["service-registry"]',
                               "--set", "server.admin_address=0.0.0.0:8080",
                               "--set", "recipe.service-registry.anonymous_writes=true"])
    try:
        ens.start()
        leader = leader_of(ens)
        cut = next(i for i in range(3) if i != leader)
        other = leader
        base = {i: f"http://{m.host}:8080/v1/registry/services/cut" for i, m in enumerate(ens.members)}

        def listing(i):
            code, body = http("GET", base[i] + "?consistent")
            assert code in (200, 404, 503, None), body
            return [x["id"] for x in body["instances"]] if code == 200 else [] if code == 404 else None

        until(lambda: (http("PUT", base[cut] + "/instances/a?ttl=3s", {"address": "10.0.0.1", "port": 1})[0]
                       == 200, "registering"))
        until(lambda: (listing(other) == ["a"], listing(other)))
        others = {m.sid for i, m in enumerate(ens.members) if i != cut}
        net.partition([{ens.members[cut].sid}, others])
        try:
            # The client keeps renewing at the cut-off server; the ensemble
            # expires the session the registration lives on.
            # Meanwhile the cut-off server never says the service or one it
            # never read is missing: what it may still know (its last view)
            # or 503 once it has no session.
            answers = {"cut": set(), "unread": set()}

            def renewed_while_gone():
                http("PUT", base[cut] + "/instances/a/renew")
                answers["cut"].add(http("GET", base[cut])[0])
                answers["unread"].add(http("GET", base[cut].replace("/cut", "/unread"))[0])
                return listing(other) == [] and 503 in answers["cut"], (listing(other), answers)

            until(renewed_while_gone)
            assert answers["cut"] <= {200, 503} and answers["unread"] <= {503}, answers
            for _ in range(5):
                http("PUT", base[cut] + "/instances/a/renew")
                time.sleep(0.5)
        finally:
            net.heal()
        until(lambda: (http("PUT", base[cut] + "/instances/a/renew")[0] == 200,
                       http("PUT", base[cut] + "/instances/a/renew")))
        for i in range(3):
            until(lambda: (listing(i) == ["a"], listing(i)))
    finally:
        ens.close()
        net.close()
