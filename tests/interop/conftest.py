"""The interop suites use the harness's server and ensemble fixtures."""
from corral_harness.servers import (ensemble_factory, hang_guard, pytest_runtest_makereport,  # noqa: F401
                                    server, server_factory)
