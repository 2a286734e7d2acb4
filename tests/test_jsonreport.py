"""--subinterp-report: one entry per marked test, with its batteries; complete after a crash,
under xdist and after an interruption."""

from __future__ import annotations

import json

import pytest

TESTS = """
import os
import pytest

@pytest.mark.subinterp(threads=2)
def test_passes():
    assert True

@pytest.mark.subinterp(threads=2)
def test_fails():
    assert False

@pytest.mark.subinterp(threads=2)
def test_crashes():
    os._exit(3)

def test_plain():
    pass
"""

BATTERY_KEYS = {"config", "interpreters", "threads", "rounds", "scope", "start", "template_error", "wall_s",
                "exit", "hung",
                "crash_phase", "crash_where", "per_interpreter", "calls"}


def _load(pytester: pytest.Pytester, name: str = "report.json") -> dict:
    return json.loads((pytester.path / name).read_text())


def _check_schema(data: dict) -> None:
    assert data["schema_version"] == 1
    assert isinstance(data["python"], str) and isinstance(data["exitstatus"], int)
    for test in data["tests"]:
        assert set(test) == {"nodeid", "verdict", "outcome", "shape", "batteries", "leaks", "proof", "cause"}
        for proof in test["proof"]:  # one per battery that ran to its end
            assert proof["expected_calls"] >= 1 and proof["recorded_calls"] >= 0
        for battery in test["batteries"]:
            assert set(battery) == BATTERY_KEYS
            for call in battery["calls"]:
                assert call["status"] in ("passed", "failed", "not run", "error")


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_report_has_every_marked_test(pytester: pytest.Pytester, extra: list[str]) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-report=report.json", *extra)
    result.assert_outcomes(passed=2, failed=2)
    data = _load(pytester)
    _check_schema(data)
    by_id = {test["nodeid"].split("::")[-1]: test for test in data["tests"]}
    assert set(by_id) == {"test_passes", "test_fails", "test_crashes"}  # unmarked tests are not batteries
    assert by_id["test_passes"]["verdict"] == "passed"
    assert by_id["test_fails"]["verdict"] == "failed"
    crashed = by_id["test_crashes"]
    assert crashed["verdict"] == "crashed" and crashed["outcome"] == "failed"
    battery = crashed["batteries"][0]
    assert battery["exit"]["exit_code"] == 3 and battery["crash_phase"] == "call"
    passes = by_id["test_passes"]["batteries"][0]
    assert passes["interpreters"] == 2 and passes["threads"] == 2
    assert len(passes["calls"]) == 2 and all(c["status"] == "passed" for c in passes["calls"])
    failed_calls = by_id["test_fails"]["batteries"][0]["calls"]
    assert [c["status"] for c in failed_calls] == ["failed", "failed"]


def test_report_written_after_interruption(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.subinterp(threads=1, interpreters=1)
        def test_first():
            pass

        def test_interrupt():
            raise KeyboardInterrupt

        @pytest.mark.subinterp(threads=1, interpreters=1)
        def test_never_reached():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-report=out/r.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    data = _load(pytester, "out/r.json")
    _check_schema(data)
    assert data["interrupted"] is True
    assert [t["nodeid"].split("::")[-1] for t in data["tests"]] == ["test_first"]


def test_verdict_summary_counts(pytester: pytest.Pytester) -> None:
    """The 'subinterp verdicts' section counts marked tests by verdict and names the bad ones."""
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-leaks=off")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*= subinterp verdicts =*",
        "crashed: 1",
        "    *::test_crashes",
        "failed in an interpreter/thread: 1",
        # fails in every interpreter with one thread each: no interpreter passed to show shared
        # state, so not "isolation" (nor thread safety)
        "    *::test_fails (sub-interpreter)",
        "passed: 1",
    ])
    result.stdout.no_fnmatch_line("*test_plain*")  # unmarked tests have no verdict
