"""Apache Curator (Debian's libcurator-*-java) against a standalone server and
a 3-server ensemble: parent containers, LeaderLatch, InterProcessMutex,
CuratorCache and ServiceDiscovery (tests/interop/CuratorCheck.java); and
the same over TLS, through the ZooKeeper client's Netty socket, with a
client certificate."""
import pathlib
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
JARS = ["curator-client", "curator-framework", "curator-recipes", "curator-x-discovery", "guava",
        "jackson-annotations", "jackson-core", "jackson-databind", "zookeeper", "zookeeper-jute",
        "slf4j-api", "slf4j-simple", "failureaccess", "netty-buffer", "netty-codec", "netty-common",
        "netty-handler", "netty-resolver", "netty-transport", "netty-transport-native-epoll",
        "netty-transport-native-unix-common"]


def classpath(extra=()):
    jars = [f"/usr/share/java/{j}.jar" for j in JARS if pathlib.Path(f"/usr/share/java/{j}.jar").exists()]
    return ":".join(list(extra) + jars)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("curator")
    r = subprocess.run(["javac", "-cp", classpath(), "-d", str(out), str(HERE / "CuratorCheck.java")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def run_checks(compiled, hosts, props=()):
    r = subprocess.run(["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", *props,
                        "-cp", classpath([str(compiled)]), "CuratorCheck", hosts],
                       capture_output=True, text=True, timeout=180)
    print(r.stdout)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr[-3000:]}"
    assert "all Curator checks passed" in r.stdout


def test_curator_recipes_on_a_standalone_server(compiled, server):
    run_checks(compiled, server.hosts)


def test_curator_recipes_on_an_ensemble(compiled, ensemble_factory):
    ens = ensemble_factory(voters=3)
    run_checks(compiled, ens.hosts())


def test_curator_recipes_over_tls(compiled, server_factory, tmp_path):
    from corral_harness.certs import Pki
    pki = Pki(tmp_path / "pki")
    srv = server_factory(tls={"identity": pki.issue("server.1", ips=["127.0.0.1"], dns=["localhost"]),
                              "ca": pki.ca_cert, "client_auth": "need"})
    curator = pki.issue("curator")
    run_checks(compiled, srv.secure_hosts, props=[
        "-Dzookeeper.client.secure=true",
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
        f"-Dzookeeper.ssl.trustStore.location={pki.ca_cert}", "-Dzookeeper.ssl.trustStore.type=PEM",
        f"-Dzookeeper.ssl.keyStore.location={curator.pem}", "-Dzookeeper.ssl.keyStore.type=PEM"])
