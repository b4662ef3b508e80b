"""The ensemble scale harness (`./dev bench ensemble-scale`) in its short
form against corrald: an ensemble with and without an observer serves
reads and writes, and a follower that missed more entries than a snapshot
holds is brought back by SNAP while the leader keeps taking writes. The
long runs, beside ZooKeeper, are `./dev bench ensemble-scale`."""
import json
import os
import subprocess
import sys

import pytest

from corral_harness.servers import REPO, TARGET

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="runs corrald's own ensemble scale harness")


@pytest.mark.hang_guard_seconds(600)
def test_the_ensemble_scale_harness_runs_both_parts(tmp_path):
    build = os.environ.get("CORRAL_BUILD_DIR", str(REPO / "build"))
    env = dict(os.environ, BUILD_DIR=build, CORRAL_BUILD_DIR=build,
               PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO / "bench")]))
    out = tmp_path / "ensemble-scale.json"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "ensemble_scale.py"), "--quick", "--only", "corrald",
                        "--json", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    rows = json.loads(out.read_text())

    observers = [row for row in rows if "observers" in row]
    assert [row["observers"] for row in observers] == [0, 1]
    for row in observers:
        for label in ("set", "get"):
            assert row[label]["ops_per_sec"] > 0 and row[label]["errors"] == 0, row
    assert "get on observers" not in observers[0] and observers[1]["get on observers"]["ops_per_sec"] > 0

    [catchup] = [row for row in rows if "catchup_s" in row]
    # 20,000 entries behind with a snapshot every 5,000: only SNAP brings it back.
    assert catchup["sync"] == "SNAP", catchup
    assert catchup["catchup_s"] is not None and catchup["catchup_s"] < 60, catchup
    for window in ("baseline", "during"):
        w = catchup[window]
        assert w["ops_per_sec"] > 0 and w["errors"] == 0 and 0 < w["p50_ms"] <= w["p99_ms"] <= w["max_ms"], w
    # The follower started as the load's workload did (within a second of
    # corral-bench saying so), and the window with the catch-up lasted until
    # it served.
    assert 0 <= catchup["follower_started_s"] < 1.0, catchup
    assert catchup["during"]["seconds"] >= catchup["catchup_s"], catchup
    assert "| corrald | 20,000 | SNAP |" in r.stdout
