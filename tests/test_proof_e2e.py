"""A PASS is proof: end to end, the cases that used to pass without the body ever running.

Before proof.py, a conftest that failed inside the sub-interpreters, or a body raising
KeyboardInterrupt, gave PASSED with an empty (or all-failed) call record.
"""

from __future__ import annotations

import json
import sys

import pytest

from pytest_subinterp import messages

# A conftest that misbehaves only inside a battery's interpreters, as one importing a module the
# interpreter refuses would (numpy's conftest, say), while the outer session loads it fine.
INSIDE = ("import sys\n"
          "_helper = sys.modules.get('pytest_subinterp._subinterp')\n"
          "INSIDE = _helper is not None and _helper.interpreter_index() >= 0\n")
TWO_TESTS = """
import pytest

@pytest.mark.subinterp(leaks="off")
def test_one():
    pass

@pytest.mark.subinterp(leaks="off")
def test_two():
    pass
"""


def _report(pytester: pytest.Pytester) -> dict:
    return {test["nodeid"].split("::")[-1]: test for test in
            json.loads((pytester.path / "r.json").read_text())["tests"]}


def test_conftest_raising_inside_is_an_error_not_a_pass(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(INSIDE + "if INSIDE:\n    raise RuntimeError('conftest fails in a sub-interpreter')\n")
    pytester.makepyfile(TWO_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-report=r.json")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([
        "*interpreter 1] the pytest session inside the sub-interpreter stopped before the test ran (exit code 4)*",
        "ImportError while loading conftest*",
        "E   RuntimeError: conftest fails in a sub-interpreter",
    ])
    result.stdout.no_fnmatch_line("*passed*")
    for test in _report(pytester).values():
        assert test["verdict"] == "failed" and test["outcome"] == "failed"
        assert test["proof"][0]["expected_calls"] == 4 and test["proof"][0]["recorded_calls"] == 0


@pytest.mark.skipif(sys.version_info < (3, 12), reason="isolated interpreters refuse single-phase modules from 3.12")
def test_conftest_importing_a_refused_module_is_import_refused(pytester: pytest.Pytester) -> None:
    pytest.importorskip("_testsinglephase")
    pytester.makeconftest(INSIDE + "if INSIDE:\n    import _testsinglephase\n")
    pytester.makepyfile(TWO_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-report=r.json")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([
        "*module '_testsinglephase' is refused by isolated sub-interpreters*(imported by *conftest.py:5)",
        "*import refused by a sub-interpreter: 2*",
    ])
    assert {test["verdict"] for test in _report(pytester).values()} == {"import refused"}


@pytest.mark.parametrize("raised", ["KeyboardInterrupt", "SystemExit(3)", "GeneratorExit"])
def test_base_exception_in_the_body_fails_the_call(pytester: pytest.Pytester, raised: str) -> None:
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.subinterp(leaks="off")
        def test_raises():
            raise {raised}
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-report=r.json")
    result.assert_outcomes(failed=1)
    name = raised.split("(")[0]
    result.stdout.fnmatch_lines([f"the test body raised {name} (*); in a battery a BaseException*"])
    record = _report(pytester)["test_raises"]
    assert record["verdict"] == "failed"
    assert record["proof"][0]["failed_calls"] == 4 and record["proof"][0]["passed_calls"] == 0


def test_a_pass_carries_its_proof(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TWO_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-report=r.json",
                                           "--subinterp-threads=3", "--subinterp-rounds=2")
    result.assert_outcomes(passed=2)
    for test in _report(pytester).values():
        assert test["proof"] == [{"config": test["proof"][0]["config"], "expected_calls": 6, "recorded_calls": 6,
                                  "passed_calls": 6}]


def test_skipped_in_one_interpreter_only_is_not_a_pass(pytester: pytest.Pytester) -> None:
    """Interpreter 2 skips the test in setup, interpreter 1 runs it: half the calls never ran."""
    pytester.makepyfile("""
        import pytest
        from pytest_subinterp import _subinterp

        @pytest.fixture
        def only_first():
            if _subinterp.interpreter_index() == 1:
                pytest.skip("not here")

        @pytest.mark.subinterp(leaks="off")
        def test_half(only_first):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*the test body did not pass in every expected call (*): 2 of 4 expected calls passed, 4 recorded",
        "*not run: 2 call(s): interpreter 2/2, thread 2/4*",
        "*interpreter 2/2: the test was skipped there in setup",
        f"*{messages.NO_PROOF[:0]}did not run in every expected interpreter/thread*: 1",
    ])
