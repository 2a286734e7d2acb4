"""The suite's own safety net (cpython_defect_rerun.py): only failures blamed on CPython re-run."""

from __future__ import annotations

import pathlib

import pytest

TESTS_DIR = pathlib.Path(__file__).parent


def test_only_a_failure_blamed_on_cpython_runs_again_and_is_listed(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS_DIR))
    pytester.makepyfile(test_flaky="""
        import pytest

        RUNS = []

        @pytest.fixture
        def attempt():
            RUNS.append(1)
            return len(RUNS)

        def test_struck_by_cpython_once(attempt):
            if attempt == 1:
                pytest.fail("battery crashed; this matches a known defect of CPython 3.13.0 itself (x)")

        def test_fails_for_its_own_reason():
            assert 1 == 2

        def test_blamed_on_cpython_twice():
            pytest.fail("this matches a known defect of CPython 3.13.0 itself (y)")
    """)
    result = pytester.runpytest_subprocess("-p", "cpython_defect_rerun", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*= re-run once after CPython's own crash =*",
        "test_flaky.py::test_struck_by_cpython_once: *known defect of CPython 3.13.0 itself (x)*",
        "test_flaky.py::test_blamed_on_cpython_twice: *known defect of CPython 3.13.0 itself (y)*",
    ])
    result.stdout.no_fnmatch_line("test_flaky.py::test_fails_for_its_own_reason: *")
