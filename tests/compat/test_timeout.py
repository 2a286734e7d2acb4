"""pytest-timeout: its timeout is the battery's timeout (the smaller one wins and the report says
which); the hang verdict comes with stacks; its own timer never fires around a battery."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_timeout")

SLOW = """
import time
import pytest

@pytest.mark.subinterp(leaks="off", threads=2)
def test_slow():
    time.sleep(30)

@pytest.mark.subinterp(leaks="off", threads=2, timeout=2)
@pytest.mark.timeout(20)
def test_ours_smaller():
    time.sleep(30)
"""


def test_timeout_becomes_the_battery_timeout(compat_pytester: pytest.Pytester) -> None:
    compat_pytester.makepyfile(SLOW)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "--timeout", "2", "-p", "no:randomly")
    result.assert_outcomes(failed=2)
    assert result.ret == 1
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*Timeout (>*from pytest-timeout*")
    result.stdout.fnmatch_lines(["*battery timeout 2 s from pytest-timeout (--timeout), smaller than the subinterp "
                                 "timeout 120 s*"])
    result.stdout.fnmatch_lines(["*battery timeout 2 s from pytest-subinterp, smaller than pytest-timeout's 20 s "
                                 "(@pytest.mark.timeout)*"])
    result.stdout.fnmatch_lines(["*hung (timeout): 2*"])
    result.stdout.fnmatch_lines(["*line *, in test_slow*"])  # the stacks of the hung threads
