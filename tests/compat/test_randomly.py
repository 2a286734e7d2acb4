"""pytest-randomly given by -p (it also has an entry point): passed on once, under its name."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_randomly")


def test_p_randomly(compat_pytester: pytest.Pytester) -> None:
    compat_pytester.makepyfile("""
        import random
        import pytest

        @pytest.mark.subinterp(leaks="off", threads=2)
        def test_a():
            assert random.random() < 1

        @pytest.mark.subinterp(leaks="off", threads=2)
        def test_b():
            pass
        """)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "randomly")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*already registered*")
