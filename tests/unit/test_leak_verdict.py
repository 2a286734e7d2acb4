"""The leak thresholds and findings (leaks/verdict.py) on synthetic measurements, in milliseconds."""

from __future__ import annotations

import pytest

from pytest_subinterp.leaks import verdict
from pytest_subinterp.leaks.verdict import (
    BYTES_PER_LIFETIME_THRESHOLD,
    CALLS_PER_BATCH,
    battery_findings,
    lifetime_findings,
    per_call_findings,
    shared_findings,
    suspicious,
)

KIB = 1024


@pytest.mark.parametrize(("test", "control", "expected"), [
    ({"malloc": 100 * KIB, "fds": 0}, {"malloc": 100 * KIB, "fds": 0}, False),
    ({"malloc": 100 * KIB + 2 * BYTES_PER_LIFETIME_THRESHOLD, "fds": 0}, {"malloc": 100 * KIB, "fds": 0}, True),
    ({"malloc": None, "fds": 3}, {"malloc": None, "fds": 1}, True),  # an fd per interpreter
    ({"malloc": None, "fds": None}, {"malloc": 0, "fds": 0}, False),  # nothing measurable: no finding
], ids=["equal", "memory", "fds", "unknown"])
def test_suspicious_battery(test: dict[str, int | None], control: dict[str, int | None], expected: bool) -> None:
    """Two interpreters: a test retaining 2 x the threshold more than its control is suspicious."""
    assert suspicious(test, control, 2, "isolated") is expected


def test_a_greedy_control_does_not_hide_a_leak() -> None:
    """A control that retained more than CPython usually does (3.11 legacy) is capped."""
    assert suspicious({"malloc": 600 * KIB, "fds": 0}, {"malloc": 10_000 * KIB, "fds": 0}, 1, "legacy")


def _pair(test: int, control: int, warmup: bool = False) -> dict[str, object]:
    return {"warmup": warmup, "test": {"malloc": test, "fds": 0}, "control": {"malloc": control, "fds": 0}}


def test_lifetime_finding_needs_every_measured_lifetime() -> None:
    grew = [_pair(999 * KIB, 0, warmup=True), _pair(128 * KIB, 0), _pair(130 * KIB, 0)]
    (finding,) = lifetime_findings(grew, "isolated")
    assert finding.message().startswith("state leak (memory) in isolated interpreters: +128.0 KiB per interpreter "
                                        "lifetime beyond the control")
    once = [_pair(0, 0, warmup=True), _pair(128 * KIB, 0), _pair(1 * KIB, 0)]
    assert lifetime_findings(once, "isolated") == []  # grew once: a cache, not a leak
    assert lifetime_findings([_pair(999 * KIB, 0, warmup=True)], "isolated") == []  # warm-up only


def test_one_greedy_control_lifetime_does_not_hide_a_leak() -> None:
    """The 3.13.0 template battery's series that passed malloc_leak_ext: its first measured
    control lifetime retained 130 KiB more than the others; every test lifetime showed the leak."""
    series = [{"warmup": True, "test": {"malloc": 526768, "fds": 0}, "control": {"malloc": 396912, "fds": 0}},
              {"warmup": False, "test": {"malloc": 527232, "fds": 0}, "control": {"malloc": 528512, "fds": 0}},
              {"warmup": False, "test": {"malloc": 528496, "fds": 0}, "control": {"malloc": 395808, "fds": 0}}]
    (finding,) = lifetime_findings(series, "isolated")
    assert finding.message().startswith("state leak (memory) in isolated interpreters: +128.3 KiB per interpreter "
                                        "lifetime beyond the control (test retained 514.9 KiB, 516.1 KiB); "
                                        "baseline trivial test retained 516.1 KiB, 386.5 KiB per lifetime")
    # ... but a test lifetime that retained no more than the lowest control still clears the test
    once = [*series[:2], {**series[2], "test": {"malloc": 395808, "fds": 0}}]
    assert lifetime_findings(once, "isolated") == []


def test_per_call_finding_needs_growth_beyond_the_control_in_every_batch() -> None:
    control = {"objects": [0, 0, 0], "blocks": [2, 2, 2], "refs": []}
    leaking = {"objects": [CALLS_PER_BATCH] * 3, "blocks": [9, 9, 9], "refs": [],
               "confirm": {"objects": [16, 16]}}
    (finding,) = per_call_findings(leaking, control, "legacy")
    assert f"+4, +4, +4 GC-tracked objects per {CALLS_PER_BATCH} calls" in finding.message()
    caching = {**leaking, "objects": [4, 4, 0]}
    assert per_call_findings(caching, control, "legacy") == []
    stopped = {**leaking, "confirm": {"objects": [16, 0]}}  # the longer batches stopped growing
    assert per_call_findings(stopped, control, "legacy") == []
    assert verdict.suspicious_growth(leaking, control) and not verdict.suspicious_growth(caching, control)


def test_shared_objects_are_found_once_per_path() -> None:
    one = {"m.Static": [140, "type"], "m.cache": [77, "dict"]}
    two = {"m.Static": [140, "type"], "m.cache": [78, "dict"]}
    three = {"m.Static": [140, "type"], "m.cache": [79, "dict"]}
    (finding,) = shared_findings([one, two, three], "isolated")
    assert "m.Static (type) is the same object in interpreters 1 and 2" in finding.message()


def test_battery_findings_skip_memory_when_an_interpreter_was_left_alive() -> None:
    process = {"control": {"malloc": 0}, "test": {"malloc": 0},
               "series": [_pair(0, 0, True), _pair(200 * KIB, 0), _pair(200 * KIB, 0)]}
    findings, figures = battery_findings("isolated", process, [None, None], all_ended=False)
    assert findings == [] and figures["findings"] == []
    findings, figures = battery_findings("isolated", process, [None, None], all_ended=True)
    assert [f.detector for f in findings] == ["memory"] and len(figures["findings"]) == 1
