"""Reuse the one server fixture implementation from tests/integration."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))

from servers import (hang_guard, pytest_runtest_makereport, server,  # noqa: E402,F401
                     server_factory)
from ensemble import ensemble_factory  # noqa: E402,F401
