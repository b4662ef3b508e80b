"""The scale harness (`./dev bench scale`) in its short form: every dimension
runs end to end against corrald (tree, wide tree, idle sessions, watches),
its JSON holds a row for every step with figures in a sane range, and the
plot is written. The long runs, beside ZooKeeper, are `./dev bench scale`."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from corral_harness.servers import REPO, TARGET

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="runs corrald's own scale harness")


@pytest.mark.hang_guard_seconds(600)
def test_the_scale_harness_runs_every_dimension(tmp_path):
    pytest.importorskip("matplotlib")
    build = os.environ.get("CORRAL_BUILD_DIR", str(REPO / "build"))
    env = dict(os.environ, BUILD_DIR=build, CORRAL_BUILD_DIR=build,
               PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO / "bench")]))
    out, plot = tmp_path / "scale.json", tmp_path / "scale.png"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "scale.py"), "--quick", "--only", "corrald",
                        "--json", str(out), "--plot", str(plot)],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    res = json.loads(out.read_text())

    tree = res["tree"]["rows"]
    assert [row["znodes"] for row in tree] == [20000, 40000]
    for row in tree:
        # Each znode of 100 B costs corrald about 250-300 B here.
        assert 100 < row["bytes_per_znode"] < 2000, row
        assert row["start_s"] < 30 and row["restart_s"] < 30, row
        for w in ("create", "set"):
            assert row[w]["ops_per_sec"] > 0 and 0 < row[w]["p50_ms"] <= row[w]["p999_ms"] <= row[w]["max_ms"], row
        # The restart replayed what the writes left after the last snapshot.
        assert row["restart_recovered"][0] >= row["znodes"], row
    wide = res["wide"]["rows"]
    assert wide[0]["parents"] == 1 and wide[0]["children_ms"] > 0

    sessions = res["sessions"]["rows"]
    assert [row["sessions"] for row in sessions] == [0, 200, 400]
    assert sessions[2]["rss_mb"] >= sessions[0]["rss_mb"]
    assert all(0 < row["kb_per_session"] < 64 for row in sessions[1:]), sessions

    watches = res["watches"]
    assert {(row["kind"], row["watches"]) for row in watches["rows"]} == {
        (k, n) for k in ("data", "exist", "persistent") for n in (2000, 4000)}
    assert watches["fire"][0]["last_notification_s"] >= watches["fire"][0]["writes_s"] > 0

    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "### tree" in r.stdout and "### watches" in r.stdout


@pytest.mark.hang_guard_seconds(300)
def test_the_restart_harness_starts_in_both_page_sizes(tmp_path):
    build = os.environ.get("CORRAL_BUILD_DIR", str(REPO / "build"))
    env = dict(os.environ, BUILD_DIR=build, CORRAL_BUILD_DIR=build,
               PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO / "bench")]))
    r = subprocess.run([sys.executable, str(REPO / "bench" / "restart_pages.py"), "--znodes", "20000",
                        "--runs", "1", "--work", str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    rows = [line.split("|")[1:-1] for line in r.stdout.splitlines() if line.startswith("| 20,000 |")]
    assert [row[1].strip() for row in rows] == ["corrald, ordinary pages", "corrald, huge pages"], r.stdout
    for row in rows:
        start_s, load_ms = float(row[2].split()[0]), float(row[3].split()[0])
        assert 0 <= load_ms < start_s * 1000 < 30_000, row
        assert row[4].split()[-2:] == ["(0", "entries)"], row  # no log tail asked for
        assert int(row[7]) > 0  # RSS MB


@pytest.mark.hang_guard_seconds(300)
def test_the_restart_harness_replays_the_log_tail_it_was_asked_for(tmp_path):
    """--log-tail N: every start loads the snapshot and then replays the N
    sets logged after it (and the creates of their 10,000 keys)."""
    build = os.environ.get("CORRAL_BUILD_DIR", str(REPO / "build"))
    env = dict(os.environ, BUILD_DIR=build, CORRAL_BUILD_DIR=build,
               PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO / "bench")]))
    r = subprocess.run([sys.executable, str(REPO / "bench" / "restart_pages.py"), "--znodes", "20000",
                        "--runs", "1", "--log-tail", "5000", "--pages", "ordinary", "--work", str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    rows = [line.split("|")[1:-1] for line in r.stdout.splitlines() if line.startswith("| 20,000 |")]
    assert [row[1].strip() for row in rows] == ["corrald, ordinary pages"], r.stdout
    replay = rows[0][4].split()
    # The sets, the creates of their keys, and the bench's sessions and parents.
    assert replay[-1] == "entries)" and 15_000 <= int(replay[-2].strip("(").replace(",", "")) < 15_100, rows[0]
    assert 0 <= float(replay[0]) < 30_000, rows[0]
