"""containers/k8s/corral.yaml, validated offline (no cluster is reachable
here): the objects are well-formed and refer to each other consistently,
and the environment they give each pod makes a configuration the container
entrypoint and corrald accept, with the server id from the pod's ordinal."""
import os
import pathlib
import re
import subprocess

import pytest
import yaml

from corral_harness.servers import REPO, TARGET

MANIFEST = REPO / "containers" / "k8s" / "corral.yaml"
CORRALD = pathlib.Path(os.environ.get("CORRALD", str(REPO / "build" / "kernel" / "corrald")))


@pytest.fixture(scope="module")
def objects():
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_every_object_is_well_formed(objects):
    api = {"Service": "v1", "StatefulSet": "apps/v1", "PodDisruptionBudget": "policy/v1"}
    assert sorted(objects) == [("PodDisruptionBudget", "corral"), ("Service", "corral"), ("Service", "corral-hs"),
                               ("StatefulSet", "corral")]
    for (kind, name), d in objects.items():
        assert d["apiVersion"] == api[kind], (kind, name)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
        assert set(d) <= {"apiVersion", "kind", "metadata", "spec"}, (kind, set(d))


def test_the_objects_agree(objects):
    sts = objects[("StatefulSet", "corral")]["spec"]
    headless = objects[("Service", "corral-hs")]["spec"]
    client = objects[("Service", "corral")]["spec"]
    pdb = objects[("PodDisruptionBudget", "corral")]["spec"]
    labels = sts["template"]["metadata"]["labels"]
    assert sts["selector"]["matchLabels"].items() <= labels.items()
    for selector in (headless["selector"], client["selector"], pdb["selector"]["matchLabels"]):
        assert selector.items() <= labels.items()
    assert sts["serviceName"] == "corral-hs" and headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    container = sts["template"]["spec"]["containers"][0]
    port_names = {p["name"] for p in container["ports"]}
    for svc in (headless, client):
        for p in svc["ports"]:
            assert p["targetPort"] in port_names, p
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env["CORRAL_DNS_REPLICAS"]) == sts["replicas"]
    # The probes ask the admin endpoint (on by default in the image, 8080).
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "admin"}
    assert next(p for p in container["ports"] if p["name"] == "admin")["containerPort"] == 8080
    assert "CORRAL_ADMIN_ADDRESS" not in env
    assert sts["template"]["spec"]["enableServiceLinks"] is False
    # A quorum survives what the budget allows.
    voters = sts["replicas"]
    assert voters - pdb["maxUnavailable"] >= voters // 2 + 1
    mounts = {m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in sts["template"]["spec"].get("volumes", [])}
    assert {t["metadata"]["name"] for t in sts["volumeClaimTemplates"]} | set(volumes) == mounts
    # The peer secret is mounted where CORRAL_PEER_SECRET_FILE says, from a Secret.
    secret_mount = next(m for m in container["volumeMounts"] if m["name"] == "peer-secret")
    assert volumes["peer-secret"]["secret"]["secretName"] == "corral-peer-secret"
    assert env["CORRAL_PEER_SECRET_FILE"].startswith(secret_mount["mountPath"] + "/")


@pytest.mark.skipif(TARGET != "corrald", reason="Corral's entrypoint")
def test_each_pod_gets_a_configuration_corrald_accepts(objects, tmp_path):
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/unshare"):
        pytest.skip("needs root and unshare to give the entrypoint a pod's hostname")
    container = objects[("StatefulSet", "corral")]["spec"]["template"]["spec"]["containers"][0]
    known = re.search(r'KNOWN="([^"]*)"', (REPO / "containers" / "entrypoint.sh").read_text()).group(1).split()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "ZOO_"))}
    for e in container["env"]:
        if e["name"].startswith("CORRAL_"):
            assert e["name"] in known, e["name"]
            env[e["name"]] = e["value"].replace("$(POD_NAMESPACE)", "default")
    secret = tmp_path / "peer.secret"
    secret.write_text("s3cret-s3cret-s3cret-s3cret-s3cret\n")
    env["CORRAL_PEER_SECRET_FILE"] = str(secret)
    env.update(PATH=f"{CORRALD.parent}:{env['PATH']}", CORRAL_CONF_DIR=str(tmp_path / "conf"),
               CORRAL_DATA_DIR=str(tmp_path / "data"), CORRAL_USER_PLUGIN_DIR=str(tmp_path / "none"))
    for ordinal in range(3):
        r = subprocess.run(["unshare", "--uts", "sh", "-c", f'hostname corral-{ordinal} && exec bash "$0" "$@"',
                            str(REPO / "containers" / "entrypoint.sh"), "--print-config"],
                           env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert 'pattern = "corral-{ordinal}.corral-hs.default.svc.cluster.local:2888:3888;2181"' in r.stdout
        # What corrald itself makes of it: the dns plugin takes the id from the hostname at start,
        # so check the hostname rule the same way it does.
        assert "id_from_hostname = true" in r.stdout and "ordinal_base = 0" in r.stdout
        assert 'peer_auth = "required"' in r.stdout and str(secret) in r.stdout
