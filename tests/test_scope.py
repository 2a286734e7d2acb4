"""--subinterp-scope=module: one set of fresh interpreters runs a module's tests; reports stay one
per test; a crash fails only the test that was running and the rest run again in a new child.
Also: memory stays bounded over hundreds of marked tests in one session."""

from __future__ import annotations

import json

import pytest

MODULE = """
import os
import pytest

pytestmark = pytest.mark.subinterp(threads=2)

SETUPS = []

@pytest.fixture(scope="module")
def shared():
    SETUPS.append(os.getpid())
    yield SETUPS

def test_first(shared):
    assert len(shared) == 1

def test_second(shared):
    # module scope: the same interpreters, so the module fixture was set up once
    assert len(shared) == 1

@pytest.mark.parametrize("n", [1, 2])
def test_param(n, shared):
    assert len(shared) == 1 and n in (1, 2)

def test_crashes():
    os._exit(7)

def test_after_crash(shared):
    # a new child, fresh interpreters: the fixture was set up again there, once
    assert len(shared) == 1

def test_fails():
    assert False, "planted"
"""


def test_module_scope_shares_fixtures_and_survives_a_crash(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=MODULE)
    result = pytester.runpytest_subprocess(
        "-v", "-p", "no:cacheprovider", "--subinterp-scope=module", "--subinterp-leaks=off",
        "--subinterp-report=report.json", "--junitxml=junit.xml")
    result.assert_outcomes(passed=5, failed=2)
    result.stdout.fnmatch_lines([
        "*test_first PASSED [[]2x2x1 *, module scope (7 tests)]*",
        "*test_crashes FAILED*",
        "*test_after_crash PASSED [[]2x2x1 *, module scope (7 tests)]*",
        "*subinterp worker crashed with exit code 7 while running 'test_mod.py::test_crashes'*phase: call*",
        "*AssertionError: planted*",
    ])
    data = json.loads((pytester.path / "report.json").read_text())
    verdicts = {test["nodeid"].split("::")[-1]: test["verdict"] for test in data["tests"]}
    assert verdicts == {"test_first": "passed", "test_second": "passed", "test_param[1]": "passed",
                        "test_param[2]": "passed", "test_crashes": "crashed", "test_after_crash": "passed",
                        "test_fails": "failed"}
    scopes = {battery["scope"] for test in data["tests"] for battery in test["batteries"]}
    assert scopes == {"module"}
    # the tests that finished before the crash keep their calls (2 threads x 1 round)
    first = next(t for t in data["tests"] if t["nodeid"].endswith("test_first"))
    assert len(first["batteries"][0]["calls"]) == 2
    junit = (pytester.path / "junit.xml").read_text()
    assert junit.count("<testcase ") == 7


def test_module_scope_from_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marker="""
        import pytest

        COUNT = []

        @pytest.fixture(scope="module")
        def once():
            COUNT.append(1)
            return COUNT

        @pytest.mark.subinterp(scope="module", threads=1, interpreters=1)
        def test_a(once):
            assert len(once) == 1

        @pytest.mark.subinterp(scope="module", threads=1, interpreters=1)
        def test_b(once):
            assert len(once) == 1

        @pytest.mark.subinterp(threads=1, interpreters=1)
        def test_own_battery(once):
            assert len(once) == 1
    """)
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider", "--subinterp-leaks=off")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*test_a PASSED [[]1x1x1 *, module scope (2 tests)]*",
        "*test_own_battery PASSED [[]1x1x1 *]*",
    ])


def test_memory_stays_bounded_over_300_marked_tests(pytester: pytest.Pytester) -> None:
    """300 marked tests (in module scope, 30 modules, to keep the run short): every battery's
    child stays far below 1 GB and the zygote does not grow."""
    for module in range(30):
        body = "\n".join(f"def test_{i}():\n    data = bytearray(1 << 20)\n    assert len(data) == 1 << 20\n"
                         for i in range(10))
        pytester.makepyfile(**{f"test_m{module:02d}": "import pytest\npytestmark = pytest.mark.subinterp(threads=1)\n" + body})
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "--subinterp-scope=module",
                                           "--subinterp-leaks=off", "--subinterp-report=report.json")
    result.assert_outcomes(passed=300)
    data = json.loads((pytester.path / "report.json").read_text())
    exits = [battery["exit"] for test in data["tests"] for battery in test["batteries"]]
    assert len(data["tests"]) == 300
    peak = max(e["max_rss_kb"] for e in exits)
    assert peak < 1024 * 1024, f"a battery child peaked at {peak} KiB"
    zygote = [e["zygote_rss_kb"] for e in exits]
    assert zygote[-1] <= zygote[0] + 4096, f"the zygote grew from {zygote[0]} to {zygote[-1]} KiB"
