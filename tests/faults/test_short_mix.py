"""A short mix of every nemesis against 3- and 5-server corrald ensembles,
checked as ./dev faults checks a long run. The long runs (100 and more)
are ./dev faults --runs N."""
import os

import pytest

from faults.network import available
from faults.run import available_nemeses, run_once

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))
SECONDS = float(os.environ.get("CORRAL_FAULTS_SECONDS", "40"))


# The 3-server zab run has zab's quorum_sync on, so its reads are checked
# too; so are the raft run's (raft's sync is a quorum round), whose reads are
# plain getData with the server's linearizable_reads on.
@pytest.mark.parametrize("nodes,seed,quorum_sync,consensus", [(3, 1001, True, "zab"), (5, 2002, False, "zab"),
                                                             (3, 3003, False, "raft")])
def test_short_mix_keeps_every_promise(tmp_path, nodes, seed, quorum_sync, consensus):
    v = run_once(tmp_path / "run", seed, SECONDS, nodes, available_nemeses(), quorum_sync=quorum_sync,
                 consensus=consensus, linearizable_reads=consensus == "raft")
    assert v["valid"], {k: x for k, x in v.items() if k not in ("register_reads",)}
    assert sum(v["faults"].values()) >= 3
    assert v["ops"]["ok"] > 1000
