"""End-to-end tests of pytest-subinterp with the rest of pytest.

junitxml, pytest-xdist, -p no:subinterp, module fixtures of unmarked tests, -W error.
"""

from __future__ import annotations

import fnmatch
import pathlib
import re
import xml.etree.ElementTree as ET

import pytest

from pytest_subinterp import messages
from pytest_subinterp.options import default_config

DEFAULT = default_config()

MIXED = """
import os
import pytest

@pytest.mark.subinterp(threads=2)
def test_pass():
    pass

@pytest.mark.subinterp(threads=2)
def test_fail():
    assert 1 == 2

@pytest.mark.subinterp(threads=2)
def test_crash():
    os._exit(3)

@pytest.mark.subinterp(threads=2)
def test_skip():
    pytest.skip("not today")

def test_unmarked():
    pass
"""
MIXED_OUTCOMES = {"passed": 2, "failed": 2, "skipped": 1}
MIXED_VERDICTS = {"test_pass": "passed", "test_fail": "failed", "test_crash": "crashed", "test_skip": "skipped"}


def _testcases(path: pathlib.Path) -> dict[str, list[ET.Element]]:
    """The <testcase> elements of a junit XML file, by test name."""
    found: dict[str, list[ET.Element]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        found.setdefault(case.get("name", ""), []).append(case)
    return found


def _properties(case: ET.Element) -> dict[str, str]:
    return {prop.get("name", ""): prop.get("value", "") for prop in case.iter("property")}


@pytest.mark.parametrize("extra", [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")])
def test_junitxml_has_every_test_once_with_subinterp_properties(pytester: pytest.Pytester, extra: list[str]) -> None:
    """Passing, failing, crashing, skipped, unmarked: each once in junit XML, marked ones with subinterp_* properties."""
    pytester.makepyfile(test_mixed=MIXED)
    result = pytester.runpytest_subprocess("--junitxml=junit.xml", *extra)
    result.assert_outcomes(**MIXED_OUTCOMES)
    cases = _testcases(pytester.path / "junit.xml")
    assert sorted(cases) == sorted([*MIXED_VERDICTS, "test_unmarked"])
    assert all(len(found) == 1 for found in cases.values()), cases
    for name, verdict in MIXED_VERDICTS.items():
        assert _properties(cases[name][0]) == {
            "subinterp_configs": DEFAULT,
            "subinterp_interpreters": "2",
            "subinterp_threads": "2",
            "subinterp_rounds": "1",
            "subinterp_verdict": verdict,
        }, name
    assert _properties(cases["test_unmarked"][0]) == {}
    fail = cases["test_fail"][0].find("failure")
    assert fail is not None
    prefix = messages.FAILED_WHERE.format(config=DEFAULT, interp=1, n_interps=2, thread=1, n_threads=2,
                                          round=1, n_rounds=1)
    assert fail.get("message") == f"{prefix}assert 1 == 2"
    crash = cases["test_crash"][0].find("failure")
    assert crash is not None
    where = messages.CRASH_WHERE.format(interp="*", n_interps=2, config=DEFAULT, thread="*", n_threads=2,
                                        round=1, n_rounds=1, phase="call")
    expected = messages.CRASHED.format(how="exit code 3", nodeid="test_mixed.py::test_crash", where=where)
    assert fnmatch.fnmatchcase(crash.get("message", ""), expected), crash.get("message")
    skipped = cases["test_skip"][0].find("skipped")
    assert skipped is not None and skipped.get("message") == "not today"
    assert cases["test_pass"][0].find("failure") is None and cases["test_unmarked"][0].find("failure") is None


def _outcomes_by_test(result: pytest.RunResult) -> dict[str, str]:
    """test name -> outcome word, from the -rA short summary."""
    found = {}
    for line in result.stdout.lines:
        match = re.match(r"(PASSED|FAILED|SKIPPED|ERROR)(?: \[[^]]*\])? (?:test_mixed.py(?::\d+)?(?:::)?(\w+)?)", line)
        if match and match.group(2):
            found[match.group(2)] = match.group(1)
    return found


def test_xdist_gives_the_same_outcomes_as_a_serial_run(pytester: pytest.Pytester) -> None:
    """-n 2: the same outcomes, test by test, as without xdist; the session survives the crash."""
    pytester.makepyfile(test_mixed=MIXED)
    serial = pytester.runpytest_subprocess("-rA")
    parallel = pytester.runpytest_subprocess("-rA", "-n", "2")
    serial.assert_outcomes(**MIXED_OUTCOMES)
    parallel.assert_outcomes(**MIXED_OUTCOMES)
    assert parallel.parseoutcomes() == serial.parseoutcomes()
    expected = {"test_pass": "PASSED", "test_fail": "FAILED", "test_crash": "FAILED", "test_unmarked": "PASSED"}
    assert _outcomes_by_test(serial) == expected
    assert _outcomes_by_test(parallel) == expected
    parallel.stdout.no_fnmatch_line("*node down*")
    parallel.stdout.no_fnmatch_line("*worker*crashed while running*")  # xdist's own worker-crash message
    # The controller summarises the verdicts its workers sent, as a serial run does.
    assert _verdict_section(parallel) == _verdict_section(serial)
    assert {"crashed: 1", "    test_mixed.py::test_crash", "failed in an interpreter/thread: 1"} <= set(
        _verdict_section(serial))


def _verdict_section(result: pytest.RunResult) -> list[str]:
    """The lines of the 'subinterp verdicts' section, sorted (xdist may finish tests in any order)."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "subinterp verdicts" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=")), len(lines))
    return sorted(lines[start + 1:end])


def test_a_session_without_marked_tests_imports_only_the_plugin_and_its_options(pytester: pytest.Pytester) -> None:
    """Every pytest run loads the plugin: without a marked test, nothing but the hooks and the
    option table may be imported (the rest costs unmarked sessions time for nothing)."""
    pytester.makepyfile(test_plain="""
        import sys

        def test_one():
            assert 1 + 1 == 2

        def test_last():
            loaded = sorted(name for name in sys.modules if name.startswith("pytest_subinterp"))
            assert loaded == ["pytest_subinterp", "pytest_subinterp.options", "pytest_subinterp.plugin"]
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*subinterp verdicts*")


def test_p_no_subinterp_disables_the_plugin(subinterp_pytester: pytest.Pytester) -> None:
    """-p no:subinterp: the marker is unknown (a warning only) and marked tests run in the main interpreter."""
    subinterp_pytester.makepyfile(test_off="""
        import pytest
        import gilstate_ext

        @pytest.mark.subinterp(threads=4)
        def test_marked():
            assert gilstate_ext.current_interpreter_id() == 0
    """)
    result = subinterp_pytester.runpytest_subprocess("-p", "no:subinterp", "-rA")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*PytestUnknownMarkWarning: Unknown pytest.mark.subinterp*"])
    result.stdout.no_fnmatch_line("*subinterp battery*")
    result.stdout.no_fnmatch_line("*subinterp verdicts*")


MODULE_FIXTURE = """
import os
import pathlib
import pytest
import gilstate_ext

SETUPS = []

@pytest.fixture(scope="module")
def resource():
    where = gilstate_ext.current_interpreter_id()
    SETUPS.append(where)
    state = {"open": True}
    yield state
    state["open"] = False
    if where == 0:
        log = pathlib.Path(os.environ["SUBINTERP_E2E_LOG"])
        log.write_text(log.read_text() + "main teardown\\n" if log.exists() else "main teardown\\n")

def test_first(resource):
    assert resource["open"] and SETUPS == [0]

@pytest.mark.subinterp(threads=2)
def test_marked(resource):
    assert resource["open"]
    assert gilstate_ext.current_interpreter_id() != 0
"""


def test_marked_test_does_not_break_a_module_fixture_of_unmarked_tests(
    subinterp_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A marked test between unmarked ones: their module fixture is set up once and torn down once, in main."""
    log = subinterp_pytester.path / "teardowns.log"
    monkeypatch.setenv("SUBINTERP_E2E_LOG", str(log))
    subinterp_pytester.makepyfile(test_shared=MODULE_FIXTURE + """
def test_last(resource):
    assert resource["open"] and SETUPS == [0]
""")
    result = subinterp_pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "test_shared.py::test_first PASSED*",
        f"test_shared.py::test_marked PASSED [[]2x2x1 {DEFAULT}[]]*",
        "test_shared.py::test_last PASSED*",
    ])
    assert log.read_text() == "main teardown\n"


def test_marked_last_test_of_a_module_lets_the_next_module_run(
    subinterp_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unmarked test, then a marked test ending the module, then another module: all pass, the fixture is torn down."""
    log = subinterp_pytester.path / "teardowns.log"
    monkeypatch.setenv("SUBINTERP_E2E_LOG", str(log))
    subinterp_pytester.makepyfile(
        test_a_shared=MODULE_FIXTURE,
        test_b_next="def test_next():\n    pass\n",
    )
    result = subinterp_pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line("*previous item was not torn down properly*")
    # The main process's module fixture was torn down before the next module started.
    assert log.read_text() == "main teardown\n"


def test_warnings_as_errors_keep_a_passing_battery_passing(subinterp_pytester: pytest.Pytester) -> None:
    """-W error: a clean battery passes (the plugin warns nothing); a warning from the body fails its test."""
    subinterp_pytester.makepyfile(test_warn="""
        import warnings
        import pytest
        import good_ext

        @pytest.mark.subinterp(threads=2)
        def test_clean():
            assert good_ext.add(1, 1) == 2

        @pytest.mark.subinterp(threads=2)
        def test_warns():
            warnings.warn("raised inside the battery", UserWarning)
    """)
    result = subinterp_pytester.runpytest_subprocess("-W", "error", "-v", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"test_warn.py::test_clean PASSED [[]2x2x1 {DEFAULT}[]]*"])
    result.stdout.fnmatch_lines(["E       UserWarning: raised inside the battery"])
    result.stdout.no_fnmatch_line("*Warning*test_clean*")


def test_marker_added_by_collection_modifyitems_runs_a_battery(subinterp_pytester: pytest.Pytester) -> None:
    """A conftest that marks tests in pytest_collection_modifyitems (a common pattern) gets
    batteries for them: whether a test runs as batteries is decided after collection."""
    subinterp_pytester.makeconftest("""
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if "native" in item.name:
                    item.add_marker(pytest.mark.subinterp(threads=2, leaks="off"))
    """)
    subinterp_pytester.makepyfile(test_late="""
        from pytest_subinterp import _subinterp

        def test_native():
            assert _subinterp.interpreter_index() >= 0  # inside a battery interpreter

        def test_plain():
            assert _subinterp.interpreter_index() == -1  # in the main process, as usual
    """)
    result = subinterp_pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_late.py::test_native PASSED [[]2x2x1 *[]]*"])
