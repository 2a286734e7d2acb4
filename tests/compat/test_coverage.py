"""Coverage of the code run inside the sub-interpreters (coverage_inside.py): with pytest-cov's
--cov, the lines a marked test's body runs in the battery's interpreters and threads count.

Before: `--cov` showed the helper the marked tests call as 33% ("Missing 2-4, 7"): only its
`def` lines, which the outer session's import ran."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("pytest_cov")

PACKAGE = """
def helper(x):
    if x > 0:
        return x + 1
    return x - 1


def only_called_by_the_body():
    return "ran"
"""
TESTS = """
import pytest
from covpkg import helper, only_called_by_the_body

@pytest.mark.subinterp(leaks="off")
def test_helper():
    assert helper(1) == 2
    assert only_called_by_the_body() == "ran"
"""


@pytest.mark.skipif(sys.version_info < (3, 12), reason="the battery threads are traced with sys.monitoring (3.12+)")
def test_lines_run_inside_the_interpreters_are_counted(compat_pytester: pytest.Pytester) -> None:
    compat_pytester.mkpydir("covpkg").joinpath("__init__.py").write_text(PACKAGE)
    compat_pytester.makepyfile(test_cov=TESTS)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "--cov=covpkg",
                                                  "--cov-report=term-missing")
    result.assert_outcomes(passed=1)
    # Only line 5 (the x <= 0 branch) never ran: lines 3, 4 and 9 ran in the battery threads.
    result.stdout.fnmatch_lines(["covpkg/__init__.py * 6 * 1 * 83% * 5"])
    result.stdout.no_fnmatch_line("*pure-Python fallback*")  # coverage.py's own C tracer is not the project's
    assert not list(compat_pytester.path.glob(".coverage.*"))  # every interpreter's file was combined
