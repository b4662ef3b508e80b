"""The recipe guide's path, end to end: install Corral's SDK (headers and
the corral-sdk pkg-config file), build examples/recipe-plugin out of the
tree against it with meson, and load the module into corrald."""
import json
import os
import pathlib
import shutil
import subprocess
import time
import urllib.request

import pytest
from kazoo.client import KazooClient

from corral_harness.servers import REPO, TARGET, free_port, plugin_abi

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="Corral's plugin SDK")

BUILD = pathlib.Path(os.environ.get("CORRAL_BUILD_DIR", REPO / "build"))


def run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, args))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_a_plugin_built_against_the_installed_sdk_loads_and_works(tmp_path, server_factory):
    stage = tmp_path / "stage"
    run(["meson", "install", "-C", str(BUILD), "--no-rebuild", "--quiet", "--destdir", str(stage)])
    pcs = list(stage.rglob("corral-sdk.pc"))
    assert pcs, "meson install wrote no corral-sdk.pc"
    env = {**os.environ, "PKG_CONFIG_PATH": str(pcs[0].parent), "PKG_CONFIG_SYSROOT_DIR": str(stage)}
    src = tmp_path / "hello"
    shutil.copytree(REPO / "examples" / "recipe-plugin", src)
    run(["meson", "setup", str(tmp_path / "build"), str(src)], env=env)
    run(["ninja", "-C", str(tmp_path / "build")], env=env)
    module = tmp_path / "build" / "corral_recipe_hello.so"
    assert module.exists()

    admin = free_port()
    plugins = os.environ.get("CORRAL_PLUGIN_DIR", str(BUILD / "plugins"))
    srv = server_factory(extra_args=[
        "--set", f'server.plugin_dir=["{plugins}", "{tmp_path / "build"}"]',
        "--set", f"server.admin_address=127.0.0.1:{admin}",
        "--set", 'plugins.recipes=["hello"]',
        "--set", 'recipe.hello.greeting="built out of tree"',
    ])
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=10)
    try:
        deadline = time.time() + 5
        while not zk.exists("/hello/1") and time.time() < deadline:
            time.sleep(0.1)
        assert zk.get("/hello/1")[0] == b"built out of tree"
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/hello", timeout=5) as r:
            assert json.loads(r.read()) == {"node": "/hello/1", "greeting": "built out of tree"}
    finally:
        zk.stop()
        zk.close()
    listed = run([os.environ.get("CORRALD", str(BUILD / "kernel" / "corrald")), "--list-plugins",
                  "--set", f'server.plugin_dir=["{tmp_path / "build"}"]']).stdout
    assert "recipe     hello" in listed and f"abi {plugin_abi()}" in listed, listed
