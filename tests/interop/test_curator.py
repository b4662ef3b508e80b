"""Apache Curator (Debian's libcurator-*-java) against a standalone server and
a 3-server ensemble: parent containers, LeaderLatch, InterProcessMutex,
CuratorCache and ServiceDiscovery (tests/interop/CuratorCheck.java)."""
import pathlib
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
JARS = ["curator-client", "curator-framework", "curator-recipes", "curator-x-discovery", "guava",
        "jackson-annotations", "jackson-core", "jackson-databind", "zookeeper", "zookeeper-jute",
        "slf4j-api", "slf4j-simple", "failureaccess", "netty-handler", "netty-transport-native-epoll"]


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


def run_checks(compiled, hosts):
    r = subprocess.run(["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", classpath([str(compiled)]),
                        "CuratorCheck", hosts], capture_output=True, text=True, timeout=180)
    print(r.stdout)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr[-3000:]}"
    assert "all Curator checks passed" in r.stdout


def test_curator_recipes_on_a_standalone_server(compiled, server):
    run_checks(compiled, server.hosts)


def test_curator_recipes_on_an_ensemble(compiled, ensemble_factory):
    ens = ensemble_factory(voters=3)
    run_checks(compiled, ens.hosts())
