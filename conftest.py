"""The repository's own test configuration (tests/conftest.py holds the shared fixtures).

Two sets of tests: ``unit`` tests check decision logic, option parsing and message texts on
synthetic input in-process (the whole set runs in seconds: ``pytest -m unit``), and ``e2e``
tests start real batteries, compilers or pytest subprocesses (minutes).  A test module is unit
when it is listed here or marks itself with ``pytestmark = pytest.mark.unit``; every other test is
marked ``e2e`` at collection, so a new end-to-end test is never mistaken for a fast one.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

# tests/ holds helpers imported by name (extbuild, cpython_defect_rerun): not a package, so that
# the installed pytest_subinterp, never the source tree, is what the tests exercise.
sys.path.insert(0, str(pathlib.Path(__file__).parent / "tests"))

pytest_plugins = ["pytester", "cpython_defect_rerun"]

UNIT_MODULES = frozenset({
    "test_options.py",
    "test_markers.py",
    "test_quirks.py",
    "test_limits.py",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test unit or e2e (see the module docstring)."""
    for item in items:
        if item.path.name in UNIT_MODULES or item.path.parent.name == "unit":
            item.add_marker(pytest.mark.unit)
        elif item.get_closest_marker("unit") is None:
            item.add_marker(pytest.mark.e2e)
