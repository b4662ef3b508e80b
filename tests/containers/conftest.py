"""A real Docker engine for the container tests: Debian's docker.io and
docker-compose, dockerd started here when none runs, and the images built
from the repository (the base image from debootstrap, nothing pulled)."""
import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
COMPOSE = os.environ.get("DOCKER_COMPOSE", "/usr/bin/docker-compose")
REPORT = pathlib.Path(os.environ.get("CORRAL_CONTAINER_REPORT", REPO / "build" / "containers-report.json"))
_report = {}


def docker(*args, check=True, timeout=600, **kw):
    r = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def record(key, value):
    """A figure for the closing report (image size, time to healthy)."""
    _report[key] = value
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(_report, indent=2) + "\n")
    print(f"[containers] {key} = {value}")


def _drop_stale_containerd_pid(path="/var/run/docker/containerd/containerd.pid"):
    """dockerd reuses the containerd its pid file names when that pid is
    alive, and waits for it forever when the number now belongs to another
    process (or a thread: a dockerd killed with its machine's session leaves
    the file behind). Such a file is removed, so dockerd starts its own."""
    try:
        pid = int(open(path).read().strip())
    except (OSError, ValueError):
        return
    try:
        status = open(f"/proc/{pid}/status").read()
        name = status.split("\n", 1)[0].split(":", 1)[1].strip()
        tgid = int(next(line.split(":")[1] for line in status.splitlines() if line.startswith("Tgid:")))
        if name == "containerd" and tgid == pid:
            return
    except (OSError, ValueError, StopIteration, IndexError):
        pass
    os.remove(path)


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    if not os.path.exists(DOCKER) or not os.path.exists(COMPOSE):
        pytest.fail("the container tests need Debian's docker.io and docker-compose (./dev test installs them)")
    if subprocess.run([DOCKER, "info"], capture_output=True).returncode != 0:
        if os.geteuid() != 0:
            pytest.fail("no Docker engine runs and only root can start one here")
        _drop_stale_containerd_pid()
        log = open(tmp_path_factory.mktemp("dockerd") / "dockerd.log", "wb")
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while subprocess.run([DOCKER, "info"], capture_output=True).returncode != 0:
            if time.time() > deadline:
                pytest.fail("dockerd did not come up in 60 s; its log: " + log.name)
            time.sleep(0.5)
    return DOCKER


@pytest.fixture(scope="session")
def base_image(engine):
    started = time.time()
    r = subprocess.run([str(REPO / "containers" / "base-image.sh")], capture_output=True, text=True, timeout=1200,
                       env={**os.environ, "DOCKER": DOCKER})
    assert r.returncode == 0, r.stdout + r.stderr
    record("base_image_seconds", round(time.time() - started, 1))
    return "corral-base/debian:bookworm"


def build(bundle):
    tag = f"corral:{bundle}"
    started = time.time()
    docker("build", "-f", str(REPO / "containers" / "Dockerfile"), "--build-arg", f"BUNDLE={bundle}", "-t", tag,
           str(REPO), timeout=2400)
    record(f"image_{bundle}_build_seconds", round(time.time() - started, 1))
    size = int(docker("image", "inspect", "-f", "{{.Size}}", tag).stdout.strip())
    record(f"image_{bundle}_size_mb", round(size / 1e6, 1))
    return tag


@pytest.fixture(scope="session")
def full_image(base_image):
    return build("full")


@pytest.fixture(scope="session")
def minimal_image(base_image):
    return build("minimal")
