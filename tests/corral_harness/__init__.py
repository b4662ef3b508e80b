"""Corral's test and benchmark harness: real servers (corrald or Apache
ZooKeeper) on loopback, standalone (servers) or as ensembles (ensemble),
the pytest fixtures around them (servers), and ZooKeeper's and Corral's
wire formats written by hand (jute, peer_wire).

Tests import it as `corral_harness` (tests/pytest.ini puts tests/ on the
path); the benchmarks are run by ./dev bench, which does the same."""
