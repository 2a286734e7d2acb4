"""Proof of execution (proof.py) and the one rule that uses it (reports._require_proof), on
synthetic records: every combination of missing, failed, not-run, unexpected and lost calls, and
crashed batteries."""

from __future__ import annotations

import itertools

import pytest
from test_reports import WHERE, FakeItem, inner

from pytest_subinterp import messages
from pytest_subinterp.proof import Call, expected_calls, prove
from pytest_subinterp.reports import Collected, InterpreterReports, Synthetic, build_reports
from pytest_subinterp.verdicts import Verdict

STATUS = {"passed": 0, "failed": 1, "not run": 2, "error": 3}


def records(k: int, t: int, r: int, override: dict[Call, str | None] | None = None) -> list[dict[str, int]]:
    """The records of a battery where every call passed, except `override` (None: no record)."""
    out = []
    for call in expected_calls(k, t, r):
        status = (override or {}).get(call, "passed")
        if status is not None:
            out.append({"interpreter": call.interpreter, "thread": call.thread, "round": call.round,
                        "status": STATUS[status]})
    return out


def test_expected_calls_follow_the_rotation() -> None:
    """Thread t runs round j in interpreter (t + j) mod K: T x R calls in all."""
    calls = expected_calls(2, 3, 2)
    assert len(calls) == 6
    assert Call(1, 0, 1) in calls and Call(1, 2, 1) in calls and Call(0, 1, 1) in calls
    assert {call.interpreter for call in expected_calls(4, 1, 1)} == {0}  # K > T x R: not every interpreter runs


def test_every_call_passed_is_proof() -> None:
    result = prove("isolated", 2, 4, 1, records(2, 4, 1))
    assert result.ok and not result.unrun
    assert result.counts() == {"expected_calls": 4, "recorded_calls": 4, "passed_calls": 4}


KINDS = ["failed", "not run", "error", None]  # None: the record of that call is missing


@pytest.mark.parametrize(("first", "second"), list(itertools.product(KINDS, KINDS)))
def test_any_call_not_passed_is_no_proof(first: str | None, second: str | None) -> None:
    """Every combination of two bad calls: no proof, and the explanation names both."""
    bad = {Call(0, 0, 0): first, Call(1, 1, 0): second}
    result = prove("legacy", 2, 2, 1, records(2, 2, 1, bad))
    assert not result.ok
    text = result.explain()
    assert "0 of 2 expected calls passed" in text
    for status in (first, second):
        kind = status or "missing"
        assert f"  {kind}: " in text
    assert result.unrun == any(status != "failed" for status in (first, second))


def test_lost_record_is_no_proof() -> None:
    result = prove("isolated", 2, 4, 1, None)
    assert not result.ok and result.unrun
    assert "battery: no record of the battery's calls exists" in result.explain()


def test_empty_record_is_no_proof_and_says_why() -> None:
    """The conftest case: no call ran anywhere; the reasons per interpreter are shown."""
    reasons = {0: "the inner pytest session ended with exit code 4 before the test ran: ImportError: boom"}
    result = prove("isolated", 2, 4, 1, [], reasons)
    text = result.explain()
    assert "0 of 4 expected calls passed, 0 recorded" in text
    assert "missing: 4 call(s): interpreter 1/2, thread 1/4, round 1/1; interpreter 2/2, thread 2/4" in text
    assert "interpreter 1/2: the inner pytest session ended with exit code 4" in text


def test_unexpected_record_is_no_proof() -> None:
    extra = [*records(1, 1, 1), {"interpreter": 0, "thread": 5, "round": 0, "status": 0}]
    result = prove("legacy", 1, 1, 1, extra)
    assert not result.ok and "unexpected: 1 call(s)" in result.explain()


def test_long_lists_are_cut() -> None:
    result = prove("legacy", 2, 20, 1, [])
    assert "; and 12 more" in result.explain()


# ---- the rule in build_reports -----------------------------------------------------------------

def passed_interpreter() -> InterpreterReports:
    return InterpreterReports("isolated interpreter 1/2", {"setup": inner("setup", "passed"),
                                                           "call": inner("call", "passed"),
                                                           "teardown": inner("teardown", "passed")})


def call_report(collected: Collected) -> pytest.TestReport:
    by_when = {report.when: report for report in build_reports(FakeItem(), collected, WHERE)}  # type: ignore[arg-type]
    return by_when["call"]


def test_passed_reports_with_proof_pass() -> None:
    collected = Collected(interpreters=[passed_interpreter()], proofs=[prove("isolated", 2, 4, 1, records(2, 4, 1))])
    assert call_report(collected).passed and collected.verdict is Verdict.PASSED


def test_passed_reports_without_any_proof_fail() -> None:
    """No battery left a record: never a pass by default."""
    collected = Collected(interpreters=[passed_interpreter()])
    call = call_report(collected)
    assert call.failed and call.longrepr == messages.NO_PROOF
    assert collected.verdict is Verdict.NOT_RUN and call.subinterp_verdict == "not run"  # type: ignore[attr-defined]


def test_no_reports_at_all_fail() -> None:
    """The inner session produced no report for the test (e.g. its conftest failed there)."""
    collected = Collected(proofs=[prove("isolated", 2, 4, 1, [], {0: "collection failed there"})])
    call = call_report(collected)
    assert call.failed and "0 of 4 expected calls passed" in str(call.longrepr)
    assert collected.verdict is Verdict.NOT_RUN


def test_passed_reports_with_one_unproven_config_fail() -> None:
    """config='both': the isolated battery proves a pass, the legacy one lost calls."""
    good = prove("isolated", 2, 4, 1, records(2, 4, 1))
    lost = prove("legacy", 2, 4, 1, records(2, 4, 1, {Call(0, 0, 0): "not run"}))
    call = call_report(Collected(interpreters=[passed_interpreter()], proofs=[good, lost]))
    assert call.failed and "(legacy, 2 interpreter(s)" in str(call.longrepr) and "isolated" not in str(call.longrepr)


def test_failed_calls_keep_the_failed_verdict() -> None:
    """An ordinary failure stays 'failed' (its traceback is the message), not 'not run'."""
    failing = InterpreterReports("isolated interpreter 1/2", {"setup": inner("setup", "passed"),
                                                              "call": inner("call", "failed", "AssertionError"),
                                                              "teardown": inner("teardown", "passed")})
    collected = Collected(interpreters=[failing],
                          proofs=[prove("isolated", 2, 4, 1, records(2, 4, 1, {Call(0, 0, 0): "failed"}))])
    call = call_report(collected)
    assert call.failed and "AssertionError" in str(call.longrepr) and collected.verdict is Verdict.FAILED


def test_crash_is_reported_as_crash_without_proof() -> None:
    """A crashed battery leaves no proof; its synthetic failure is the report, verdict crashed."""
    collected = Collected(synthetic=[Synthetic("call", "worker crashed with SIGSEGV", Verdict.CRASHED)])
    call = call_report(collected)
    assert call.failed and call.longrepr == "worker crashed with SIGSEGV" and collected.verdict is Verdict.CRASHED


def test_skipped_everywhere_is_skipped_without_proof() -> None:
    skip = ("test_x.py", 4, "Skipped: no")
    entry = InterpreterReports("isolated interpreter 1/1", {"setup": inner("setup", "skipped", skip),
                                                            "teardown": inner("teardown", "passed")})
    collected = Collected(interpreters=[entry], proofs=[prove("isolated", 1, 1, 1, records(1, 1, 1, {Call(0, 0, 0): "not run"}))])
    reports = build_reports(FakeItem(), collected, WHERE)  # type: ignore[arg-type]
    assert reports[0].skipped and len(reports) == 2


def test_interpreters_passed_are_those_with_every_call_passed() -> None:
    """The cause's evidence (session.cause_of): which interpreters passed all their calls."""
    assert prove("isolated", 2, 2, 1, records(2, 2, 1)).interpreters_passed() == {0, 1}
    one_failed = prove("isolated", 2, 2, 1, records(2, 2, 1, {Call(1, 1, 0): "failed"}))
    assert one_failed.interpreters_passed() == {0}
    both_failed = prove("isolated", 2, 2, 1, records(2, 2, 1, {Call(0, 0, 0): "failed", Call(1, 1, 0): "failed"}))
    assert both_failed.interpreters_passed() == set()
    # K > T x R: interpreter 2 never ran the body, so it passed nothing
    assert prove("isolated", 2, 1, 1, records(2, 1, 1)).interpreters_passed() == {0}
    assert prove("isolated", 2, 2, 1, None).interpreters_passed() == set()  # record lost


def test_cause_needs_a_pass_without_the_other_interpreters_to_blame_isolation() -> None:
    from pytest_subinterp.session import cause_of

    assert cause_of(passed_one_thread_each=True, passed_somewhere_alone=False) == "thread-safety"
    assert cause_of(passed_one_thread_each=False, passed_somewhere_alone=True) == "isolation"
    # fails even alone in one interpreter from one thread: nothing shows shared state
    assert cause_of(passed_one_thread_each=False, passed_somewhere_alone=False) == "sub-interpreter"
