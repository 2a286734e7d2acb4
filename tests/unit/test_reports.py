"""Folding K interpreters x T threads into one report per phase, on synthetic records.

No battery runs here: each test builds the inner sessions' reports and the controller's findings
by hand and checks the reports and verdict that come out, in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_subinterp import advice, messages, proof, reports
from pytest_subinterp.reports import Collected, InterpreterReports, Synthetic, build_reports
from pytest_subinterp.verdicts import Verdict

NODEID = "test_x.py::test_a"
WHERE = {"n_interps": 2, "n_threads": 4, "n_rounds": 1}


@dataclass
class FakeItem:
    """What build_reports reads of an item."""

    nodeid: str = NODEID
    location: tuple[str, int, str] = ("test_x.py", 3, "test_a")
    keywords: dict[str, int] = field(default_factory=lambda: {"test_a": 1})
    user_properties: list[tuple[str, Any]] = field(default_factory=list)


def inner(when: str, outcome: str, longrepr: Any = None, **extra: Any) -> pytest.TestReport:
    return pytest.TestReport(NODEID, ("test_x.py", 3, "test_a"), {}, outcome, longrepr, when, **extra)  # type: ignore[arg-type]


def interpreter(label: str, call: str = "passed", setup: str = "passed", where: dict[str, Any] | None = None,
                longrepr: Any = None) -> InterpreterReports:
    phases = {"setup": inner("setup", setup)}
    if setup == "passed":
        phases["call"] = inner("call", call, longrepr if call != "passed" else None)
    phases["teardown"] = inner("teardown", "passed")
    return InterpreterReports(label, phases, where)


def all_passed(config: str = "isolated", k: int = 2, t: int = 4, r: int = 1) -> list[proof.Proof]:
    """The proof of a battery whose every call passed."""
    calls = [{"interpreter": c.interpreter, "thread": c.thread, "round": c.round, "status": 0}
             for c in proof.expected_calls(k, t, r)]
    return [proof.prove(config, k, t, r, calls)]


def build(collected: Collected) -> dict[str, pytest.TestReport]:
    return {report.when: report for report in build_reports(FakeItem(), collected, WHERE)}  # type: ignore[arg-type]


def test_all_passed_is_one_passed_report_per_phase() -> None:
    collected = Collected(interpreters=[interpreter("isolated interpreter 1/2"), interpreter("isolated interpreter 2/2")],
                          proofs=all_passed())
    result = build(collected)
    assert [r.outcome for r in result.values()] == ["passed", "passed", "passed"]
    assert collected.verdict is Verdict.PASSED
    assert result["call"].subinterp_verdict == "passed"  # type: ignore[attr-defined]
    assert result["teardown"].subinterp_record["verdict"] == "passed"  # type: ignore[attr-defined]


def test_one_failed_interpreter_fails_the_call_and_names_where() -> None:
    where = {"config": "isolated", "interp": 1, "thread": 2, "round": 0, "failed_calls": 1, "calls": 4}
    failing = interpreter("isolated interpreter 2/2", call="failed", where=where, longrepr="AssertionError: boom")
    collected = Collected(interpreters=[interpreter("isolated interpreter 1/2"), failing])
    result = build(collected)
    call = result["call"]
    assert call.failed and collected.verdict is Verdict.FAILED
    prefix = messages.FAILED_WHERE.format(config="isolated", interp=2, thread=3, round=1, **WHERE)
    assert str(call.longrepr).startswith(prefix + "AssertionError: boom")
    assert ("subinterp", messages.FAILED_SUMMARY.format(config="isolated", interp=2, thread=3, round=1,
                                                        failed_calls=1, calls=4, failed_interps="interpreter 2 of 2",
                                                        **WHERE)) in call.sections


def test_second_failure_is_kept_in_a_section() -> None:
    first = interpreter("isolated interpreter 1/2", call="failed", longrepr="first")
    second = interpreter("isolated interpreter 2/2", call="failed", longrepr="second")
    call = build(Collected(interpreters=[first, second]))["call"]
    assert ("subinterp failure [isolated interpreter 2/2]", "second") in call.sections


def failed_in(label: str, index: int, calls: dict[tuple[int, int], str]) -> InterpreterReports:
    """An interpreter whose calls (thread, round) -> traceback failed, with inner.py's sections."""
    config = label.split()[0]
    (thread, round_), text = next(iter(calls.items()))
    where = {"config": config, "interp": index, "thread": thread, "round": round_, "failed_calls": len(calls),
             "calls": len(calls)}
    entry = interpreter(label, call="failed", where=where, longrepr=text)
    entry.reports["call"].sections = [
        (f"Captured failure: {config} interpreter {index + 1}, thread {t + 1}, round {r + 1} call", tb)
        for (t, r), tb in calls.items()]
    return entry


def test_each_distinct_traceback_is_shown_once_with_its_calls() -> None:
    """config='both', every call failing the same way: one traceback, the other calls listed;
    a different traceback gets its own section; the counts are across all interpreters."""
    entries = [failed_in("isolated interpreter 1/2", 0, {(0, 0): "TB-A", (2, 0): "TB-A"}),
               failed_in("isolated interpreter 2/2", 1, {(1, 0): "TB-A", (3, 0): "TB-B"}),
               failed_in("legacy interpreter 1/2", 0, {(0, 0): "TB-A", (2, 0): "TB-A"})]
    call = build(Collected(interpreters=entries))["call"]
    texts = [content for _, content in call.sections]
    assert sum("TB-A" in text for text in texts) == 0  # the first traceback is the longrepr itself
    assert texts.count("TB-B") == 1
    assert ("subinterp", "the same traceback in 4 more call(s): isolated interpreter 1/2, thread 3/4, round 1/1; "
            "isolated interpreter 2/2, thread 2/4, round 1/1; legacy interpreter 1/2, thread 1/4, round 1/1; "
            "legacy interpreter 1/2, thread 3/4, round 1/1") in call.sections
    assert ("subinterp failure in 1 call(s): isolated interpreter 2/2, thread 4/4, round 1/1", "TB-B") in call.sections
    summaries = [content for name, content in call.sections if content.startswith("test failed in")]
    assert summaries == [
        "test failed in 4 of 4 calls (isolated, in interpreters 1, 2 of 2); first: interpreter 1/2, thread 1/4, "
        "round 1/1, phase: call",
        "test failed in 2 of 2 calls (legacy, in interpreter 1 of 2); first: interpreter 1/2, thread 1/4, "
        "round 1/1, phase: call"]


def test_synthetic_setup_failure_fails_setup_and_skips_call() -> None:
    collected = Collected(synthetic=[Synthetic("setup", "the zygote failed", Verdict.INFRASTRUCTURE)])
    result = build(collected)
    assert result["setup"].failed and "call" not in result
    assert result["setup"].longrepr == "the zygote failed"
    assert result["teardown"].subinterp_verdict == "infrastructure"  # type: ignore[attr-defined]


def test_call_finding_is_kept_when_setup_failed() -> None:
    collected = Collected(synthetic=[Synthetic("setup", "refused", Verdict.IMPORT_REFUSED),
                                     Synthetic("call", "and a leak", Verdict.LEAKED)])
    setup = build(collected)["setup"]
    assert ("subinterp (call phase)", "and a leak") in setup.sections


@pytest.mark.parametrize(("found", "expected"), [
    ({Verdict.PASSED, Verdict.FAILED}, Verdict.FAILED),
    ({Verdict.LEAKED, Verdict.FAILED, Verdict.SKIPPED}, Verdict.LEAKED),
    ({Verdict.HUNG, Verdict.CRASHED}, Verdict.CRASHED),
    ({Verdict.FALLBACK, Verdict.PASSED}, Verdict.FALLBACK),
    ({Verdict.SKIPPED, Verdict.PASSED}, Verdict.SKIPPED),
])
def test_worst_verdict_wins(found: set[Verdict], expected: Verdict) -> None:
    assert Verdict.worst(found) is expected


def test_verdict_order_and_titles() -> None:
    """The summary lists the most severe first; every verdict has a title and a plain-str value."""
    order = [verdict.value for verdict in Verdict]
    assert order[:3] == ["crashed", "hung", "import refused"] and order[-2:] == ["skipped", "passed"]
    assert all(verdict.summary_title for verdict in Verdict)
    assert Verdict("left thread") is Verdict.LEFT_THREAD
    with pytest.raises(ValueError):
        Verdict("pased")  # a misspelled verdict is an error, not a pass


def test_warnings_give_fallback_and_leak_warning_verdicts() -> None:
    collected = Collected(interpreters=[interpreter("legacy interpreter 1/1")], warnings=["refused x"],
                          proofs=all_passed("legacy", 1, 1, 1))
    assert collected.verdict is Verdict.FALLBACK
    collected = Collected(interpreters=[interpreter("legacy interpreter 1/1")], leak_warnings=["grew"],
                          proofs=all_passed("legacy", 1, 1, 1))
    assert collected.verdict is Verdict.LEAK_WARNING
    call = build(collected)["call"]
    assert call.passed and ("subinterp warning", "grew") in call.sections


def test_all_skipped_is_skipped() -> None:
    skip = ("test_x.py", 4, "Skipped: no")
    entry = InterpreterReports("isolated interpreter 1/1", {"setup": inner("setup", "skipped", skip),
                                                            "teardown": inner("teardown", "passed")})
    result = build(Collected(interpreters=[entry]))
    assert result["setup"].skipped and result["setup"].longrepr == skip


def test_simple_reports_skip() -> None:
    setup, teardown = reports.simple_reports(FakeItem(), "skipped", ("x.py", 1, "why"))  # type: ignore[arg-type]
    assert setup.skipped and teardown.passed and setup.subinterp_verdict == "skipped"  # type: ignore[attr-defined]


def test_refusal_message_fits_the_kind_of_refusal() -> None:
    one = advice.refusal_message("m", "isolated", "Interpreter change detected - this module can only be "
                                                 "loaded into one interpreter per process")
    # Cython's own message: Cython's fix (the subinterpreters_compatible directive), not the
    # generic "wait for the generator".
    assert messages.REFUSAL_FIX_CYTHON in one
    generic = advice.refusal_message("m", "legacy", "cannot load module more than once per process")
    assert "in a legacy sub-interpreter" in generic and messages.REFUSAL_FIX_ONE_PER_PROCESS in generic
    isolated = advice.refusal_message("m", "isolated", "module m does not support loading in subinterpreters")
    assert messages.REFUSAL_REASON_ISOLATED in isolated


def test_cpython_noise_is_filtered_from_worker_stderr() -> None:
    from pytest_subinterp.crash import without_cpython_noise

    text = ("before\n"
            "Exception ignored in: <function _DeleteDummyThreadOnDel.__del__ at 0x7f>\n"
            "Traceback (most recent call last):\n"
            '  File "/usr/lib/python3.13/threading.py", line 1383, in __del__\n'
            "TypeError: 'NoneType' object does not support the context manager protocol\n"
            "Fatal Python error: Segmentation fault\n")
    assert without_cpython_noise(text) == "before\nFatal Python error: Segmentation fault\n"
    assert without_cpython_noise("Exception ignored in: <function mine at 0x1>\nx\n") == (
        "Exception ignored in: <function mine at 0x1>\nx\n")
