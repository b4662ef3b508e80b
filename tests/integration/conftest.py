"""pytest fixtures for the integration suites, from the harness
(tests/corral_harness/servers.py)."""
from corral_harness.servers import (ensemble_factory, hang_guard, proxy_factory,  # noqa: F401
                                    pytest_runtest_makereport, server, server_factory)
