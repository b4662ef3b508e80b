"""Drive the server with the Apache ZooKeeper C client (libzookeeper_mt)."""
import pathlib
import re
import shutil
import subprocess

import pytest

SOURCE = pathlib.Path(__file__).with_name("c_client_test.c")


@pytest.fixture(scope="module")
def c_client(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not pathlib.Path("/usr/include/zookeeper/zookeeper.h").exists():
        pytest.skip("needs a C compiler and libzookeeper-mt-dev")
    exe = tmp_path_factory.mktemp("cclient") / "c_client_test"
    subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-DTHREADED", "-Wall",
                    "-Werror", "-o", str(exe), str(SOURCE), "-lzookeeper_mt",
                    "-lpthread"], check=True)
    return exe


def test_c_client(server, c_client):
    proc = subprocess.run([str(c_client), server.hosts], capture_output=True,
                          text=True, timeout=120)
    print(proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert not [l for l in lines if l.startswith("FAIL")], proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.fullmatch(r"checks: \d+, failures: 0", lines[-1]), proc.stdout
