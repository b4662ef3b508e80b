"""pytest fixtures for the integration suites; the implementation lives in
servers.py so that other suites (tests/interop) and tests can import it by a
name that is not 'conftest'."""
from servers import (hang_guard, proxy_factory, pytest_runtest_makereport,  # noqa: F401
                     server, server_factory)
from ensemble import ensemble_factory  # noqa: F401
