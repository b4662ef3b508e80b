"""Reuse the one server fixture implementation from tests/integration."""
import importlib.util
import pathlib

_path = pathlib.Path(__file__).resolve().parents[1] / "integration" / "conftest.py"
_spec = importlib.util.spec_from_file_location("corral_integration_conftest", _path)
_impl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_impl)

server = _impl.server
server_factory = _impl.server_factory
hang_guard = _impl.hang_guard
pytest_runtest_makereport = _impl.pytest_runtest_makereport
