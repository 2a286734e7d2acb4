"""Fixtures that accumulate by design (mocker keeps every patcher, caplog every record, recwarn
every warning until teardown) never make a per-call leak finding; a real leak beside them does."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_mock")

TESTS = """
import logging
import os
import warnings
import pytest

_kept = []

@pytest.mark.subinterp(threads=2)
def test_mocker(mocker):
    mocker.patch("os.getcwd", return_value="/x")
    assert os.getcwd() == "/x"

@pytest.mark.subinterp(threads=2)
def test_caplog(caplog):
    logging.getLogger("t").warning("hello")
    assert caplog.records

@pytest.mark.subinterp(threads=2)
def test_recwarn(recwarn):
    warnings.warn("w", UserWarning)
    assert recwarn.list

@pytest.mark.subinterp(threads=2)
def test_mocker_and_a_real_leak(mocker):
    mocker.patch("os.getcwd", return_value="/x")
    _kept.extend([{} for _ in range(100)])
"""


def test_accumulating_fixtures_are_not_leaks(compat_pytester: pytest.Pytester) -> None:
    compat_pytester.makepyfile(TESTS)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-rf")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["state leak (blocks) in * interpreters: *", "FAILED *::test_mocker_and_a_real_leak*"])
