"""hypothesis installed: its compiled core is refused by sub-interpreters, so its plugin is left
out; marked tests that do not use it pass, a @given test fails naming the plugin."""

from __future__ import annotations

import pytest

pytest.importorskip("hypothesis")

TESTS = """
import pytest
from hypothesis import given, strategies as st

@pytest.mark.subinterp(leaks="off", threads=2)
def test_plain():
    pass

@pytest.mark.subinterp(leaks="off", threads=2)
@given(st.integers())
def test_given(x):
    assert x == x
"""


def test_hypothesis_left_out_breaks_only_given_tests(compat_pytester: pytest.Pytester) -> None:
    compat_pytester.makepyfile(test_plain="import pytest\n\n@pytest.mark.subinterp(leaks='off', threads=2)\n"
                                          "def test_plain():\n    pass\n", test_given=TESTS)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    header = result.stdout.str()
    if "hypothesispytest" not in header:
        pytest.skip("this hypothesis loads in sub-interpreters: nothing is left out")
    result.stdout.fnmatch_lines(["subinterp: plugins left out of the sub-interpreters*hypothesispytest*"])
    result.stdout.fnmatch_lines(["*'test_given.py::test_given' needs the plugin 'hypothesispytest' (from "
                                 "hypothesis; its test function is wrapped by the plugin)*"])
    # test_plain.py passes; test_given.py's plain test errors: its module imports hypothesis,
    # refused inside (the refusal is named).
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.no_fnmatch_line("*inner pytest session failed*")
