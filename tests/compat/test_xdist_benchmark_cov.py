"""pytest-xdist, pytest-benchmark and pytest-cov beside pytest-subinterp: marked tests run under
-n 2, benchmark's fixture works in unmarked tests, --cov does not break batteries."""

from __future__ import annotations

import pytest

pytest.importorskip("xdist")
pytest.importorskip("pytest_benchmark")
pytest.importorskip("pytest_cov")

TESTS = """
import pytest

@pytest.mark.subinterp(leaks="off", threads=2)
def test_marked():
    pass

def test_benchmarked(benchmark):
    benchmark(sum, [1, 2])
"""


def test_xdist(compat_pytester: pytest.Pytester) -> None:
    compat_pytester.makepyfile(TESTS)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "-p", "no:randomly",
                                                  "--benchmark-disable")
    result.assert_outcomes(passed=2)


def test_cov(compat_pytester: pytest.Pytester) -> None:
    compat_pytester.makepyfile(TESTS)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "--cov",
                                                  "--benchmark-disable")
    result.assert_outcomes(passed=2)
