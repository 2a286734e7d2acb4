"""Shared fixtures of pytest-subinterp's own tests."""

from __future__ import annotations

import pathlib
import re
import sys

import extbuild  # tests/ is on sys.path: the top-level conftest.py puts it there
import genbuild
import pytest

HAS_ISOLATED = sys.version_info >= (3, 12)
needs_isolated = pytest.mark.skipif(not HAS_ISOLATED, reason="isolated sub-interpreters need Python 3.12+")


@pytest.fixture(scope="session")
def extmods_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The compiled tests/extmods/*.c modules, built once per session for this Python."""
    out = tmp_path_factory.getbasetemp().parent / f"extmods-{sys.implementation.cache_tag}"
    out.mkdir(exist_ok=True)
    return extbuild.build_all(out)


@pytest.fixture
def subinterp_pytester(pytester: pytest.Pytester, extmods_dir: pathlib.Path,
                       monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose subprocesses (and their sub-interpreters) can import the extmods."""
    monkeypatch.setenv("PYTHONPATH", str(extmods_dir))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return pytester


@pytest.fixture(scope="session")
def genmods(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, pathlib.Path], dict[str, str]]:
    """The generator modules of tests/genmods (pybind11, Cython, C slot variants), built once per
    session: (name -> built file, name -> why it was not built)."""
    out = tmp_path_factory.getbasetemp().parent / f"genmods-{sys.implementation.cache_tag}"
    return genbuild.build_all(out)


@pytest.fixture
def compat_pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """tests/compat: a pytester with an ini that silences pytest-asyncio's configuration warning.
    (Here, not in tests/compat/conftest.py: a second conftest module would shadow this one's
    `from conftest import ...`.)"""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


# The fixture modules whose planted defect (one object in every own-GIL interpreter, allocated in
# the first one's heap) can itself crash the battery at random: racing refcounts, or the first
# interpreter's end freeing what the others still use ("free(): invalid pointer").  A real
# extension with this defect crashes now and then too, and the crash verdict names it.
RACY_SHARED_MODULES = ("static_type_ext", "cached_static_ext")


def crash_attributions(result: pytest.RunResult) -> dict[str, str]:
    """Test name -> the attribution line printed under its crash line ("crashed with SIGx while
    running '<nodeid>'"); the first one: the short test summary repeats the crash line with
    another line under it."""
    lines = result.stdout.lines
    attributions: dict[str, str] = {}
    for line, after in zip(lines, lines[1:]):
        if match := re.search(r"crashed with \S+ while running '([^']+)'", line):
            attributions.setdefault(match.group(1).split("::")[1], after)
    return attributions


def crashed_by_planted_race(result: pytest.RunResult) -> bool:
    """Whether a battery of this run crashed with the attribution naming a racy shared module."""
    return any(module in attribution for attribution in crash_attributions(result).values()
               for module in RACY_SHARED_MODULES)


def run_past_planted_races(pytester: pytest.Pytester, *args: str, attempts: int = 3) -> pytest.RunResult:
    """runpytest_subprocess, again (up to `attempts` runs) while a crash of the run is one of the
    racy shared modules' own (RACY_SHARED_MODULES): what those tests check is the detector's
    finding, which a run that crashed first cannot show."""
    for _ in range(attempts - 1):
        result = pytester.runpytest_subprocess(*args)
        if not crashed_by_planted_race(result):
            return result
    return pytester.runpytest_subprocess(*args)
