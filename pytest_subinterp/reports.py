"""Turn K interpreters x T threads x R rounds (per config) into one pytest report per phase.

Inputs are the inner sessions' serialized reports (``pytest_report_to_serializable`` in each
interpreter) and the synthetic failures the controller found (crash, hang, refusal, left
thread).  Output: exactly one setup, (call,) teardown TestReport for the outer item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_subinterp import messages
from pytest_subinterp.proof import Proof
from pytest_subinterp.verdicts import Verdict

WHENS = ("setup", "call", "teardown")
@dataclass
class Synthetic:
    """A failure found by the controller, not by the inner pytest."""

    when: str
    text: str
    verdict: Verdict
    sections: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class InterpreterReports:
    """One interpreter's inner reports for the outer item, keyed by phase."""

    label: str
    reports: dict[str, pytest.TestReport]
    where: dict[str, Any] | None = None


@dataclass
class Collected:
    """Everything known about one test after its batteries ran."""

    interpreters: list[InterpreterReports] = field(default_factory=list)
    synthetic: list[Synthetic] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    properties: list[tuple[str, object]] = field(default_factory=list)
    shape: str = ""  # "2x4x1 isolated", shown in verbose mode
    batteries: list[dict[str, Any]] = field(default_factory=list)  # for the JSON report
    leak_policy: str = "fail"
    leak_warnings: list[str] = field(default_factory=list)
    leak_figures: list[dict[str, Any]] = field(default_factory=list)
    # (module, config) -> (interpreter numbers, CPython's message) of swallowed refusals
    fallbacks: dict[tuple[str, str], tuple[list[int], str]] = field(default_factory=dict)
    # One per battery that ran to its end: what its record proves (proof.py).
    proofs: list[Proof] = field(default_factory=list)
    # Of a test that failed in some calls: "thread-safety", "isolation" or "sub-interpreter"
    # (session._find_cause's confirmation battery).
    cause: str | None = None

    def unproven(self) -> list[Proof]:
        """The batteries whose record does not show every expected call passed (all of them,
        as an empty list never proves anything: see build_reports)."""
        return [proof for proof in self.proofs if not proof.ok]

    @property
    def verdict(self) -> Verdict:
        """The most severe verdict of the test, for the summary and the JSON report."""
        found = {s.verdict for s in self.synthetic}
        for entry in self.interpreters:
            for report in entry.reports.values():
                found.add(Verdict.FAILED if report.failed else Verdict.SKIPPED if report.skipped else Verdict.PASSED)
        if self.warnings:
            found.add(Verdict.FALLBACK)
        if self.leak_warnings:
            found.add(Verdict.LEAK_WARNING)
        if any(proof.unrun for proof in self.proofs) or (Verdict.PASSED in found and not self.proofs):
            found.add(Verdict.NOT_RUN)
        worst = Verdict.worst(found) or Verdict.NOT_RUN  # nothing at all: nothing is proven
        if worst is Verdict.PASSED and self.unproven():
            return Verdict.NOT_RUN
        return worst


def display_where(where: dict[str, Any]) -> dict[str, Any]:
    """Indexes as users count them: interpreter 1/2, thread 3/4, round 1/1."""
    shown = dict(where)
    for key in ("interp", "thread", "round"):
        if isinstance(shown.get(key), int) and shown[key] >= 0:
            shown[key] += 1
    return shown


def _prefix_crash_message(report: pytest.TestReport, prefix: str) -> None:
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None) is not None:
        crash.message = prefix + crash.message
    elif isinstance(longrepr, str):
        report.longrepr = prefix + longrepr


# inner.py names the section of each failed call "failure: <config> interpreter I, thread T, round R".
_CALL_FAILURE = re.compile(r"^Captured failure: (\S+) interpreter (\d+), thread (\d+), round (\d+) call$")


def _labelled_sections(entry: InterpreterReports, report: pytest.TestReport) -> list[tuple[str, str]]:
    return [(f"{name} [{entry.label}]", content) for name, content in report.sections
            if not _CALL_FAILURE.match(name)]


def _failure_groups(failed: list[tuple[InterpreterReports, pytest.TestReport]],
                    shape: dict[str, int]) -> list[tuple[str, list[str]]]:
    """Each distinct traceback of the failed calls once, with the calls it covers, in order."""
    groups: dict[str, list[str]] = {}
    for _, report in failed:
        for name, content in report.sections:
            match = _CALL_FAILURE.match(name)
            if match:
                config, interp, thread, round_ = match.groups()
                groups.setdefault(content, []).append(
                    f"{config} interpreter {interp}/{shape['n_interps']}, thread {thread}/{shape['n_threads']}, "
                    f"round {round_}/{shape['n_rounds']}")
    return list(groups.items())


def _failure_summaries(failed: list[tuple[InterpreterReports, pytest.TestReport]],
                       shape: dict[str, int]) -> list[str]:
    """Per config: how many of the calls failed, in which interpreters, and where the first was."""
    by_config: dict[str, list[dict[str, Any]]] = {}
    for entry, _ in failed:
        if entry.where is not None:
            by_config.setdefault(entry.where["config"], []).append(entry.where)
    lines = []
    for config, wheres in by_config.items():
        first = {key: value for key, value in display_where(wheres[0]).items()
                 if key in ("interp", "thread", "round")}
        interps = sorted({where["interp"] + 1 for where in wheres})
        label = "interpreter" if len(interps) == 1 else "interpreters"
        lines.append(messages.FAILED_SUMMARY.format(
            **{**first, "config": config}, **shape,
            failed_calls=sum(where["failed_calls"] for where in wheres),
            calls=sum(where["calls"] for where in wheres),
            failed_interps=f"{label} {', '.join(map(str, interps))} of {shape['n_interps']}"))
    return lines


def _call_failure_sections(failed: list[tuple[InterpreterReports, pytest.TestReport]],
                           shape: dict[str, int]) -> list[tuple[str, str]]:
    """The failed calls' tracebacks, each distinct one once (the first failure's is the report's
    own longrepr), or, without per-call sections, each other interpreter's first failure."""
    groups = _failure_groups(failed, shape)
    if not groups:
        texts: dict[str, list[str]] = {}
        for entry, report in failed[1:]:
            texts.setdefault(str(report.longrepr), []).append(entry.label)
        return [(f"subinterp failure [{', '.join(labels)}]", text) for text, labels in texts.items()]
    sections = []
    first_calls = groups[0][1]
    if len(first_calls) > 1:
        sections.append(("subinterp", messages.SAME_FAILURE.format(count=len(first_calls) - 1,
                                                                   calls="; ".join(first_calls[1:]))))
    for text, calls in groups[1:]:
        sections.append((messages.OTHER_FAILURE.format(count=len(calls), calls="; ".join(calls)), text))
    return sections


def _combine_phase(
    item: pytest.Item, when: str, collected: Collected, settings_where: dict[str, int]
) -> pytest.TestReport:
    reports = [(entry, entry.reports[when]) for entry in collected.interpreters if when in entry.reports]
    synthetic = [s for s in collected.synthetic if s.when == when]
    failed = [(entry, report) for entry, report in reports if report.failed]
    passed = [(entry, report) for entry, report in reports if report.passed]
    sections: list[tuple[str, str]] = []
    duration = max((report.duration for _, report in reports), default=0.0)
    extra: dict[str, Any] = {}
    if synthetic or failed:
        outcome = "failed"
        longrepr: Any
        if synthetic:
            longrepr = "\n\n".join(s.text for s in synthetic)
            for s in synthetic:
                sections.extend(s.sections)
        else:
            entry, first = failed[0]
            if entry.where is not None and when == "call":
                shown = display_where(entry.where)
                prefix = messages.FAILED_WHERE.format(**shown, **settings_where)
                sections.extend(("subinterp", line) for line in _failure_summaries(failed, settings_where))
                sections.extend(_call_failure_sections(failed, settings_where))
                _prefix_crash_message(first, prefix)
            else:
                sections.extend(_call_failure_sections(failed, settings_where))
                _prefix_crash_message(first, f"[{entry.label}] ")
            longrepr = first.longrepr
            if hasattr(first, "wasxfail"):
                extra["wasxfail"] = first.wasxfail
        if synthetic:
            for entry, report in failed:
                sections.append((f"subinterp failure [{entry.label}]", str(report.longrepr)))
        for entry, report in failed:
            sections.extend(_labelled_sections(entry, report))
    elif passed:
        outcome = "passed"
        longrepr = None
        entry, first = passed[0]
        sections.extend(_labelled_sections(entry, first))
        if hasattr(first, "wasxfail"):
            extra["wasxfail"] = first.wasxfail
    elif reports:
        outcome = "skipped"
        entry, first = reports[0]
        longrepr = first.longrepr
        if hasattr(first, "wasxfail"):
            extra["wasxfail"] = first.wasxfail
    else:
        outcome, longrepr = "passed", None
    if when == "call":
        sections.extend(collected.notes)
        sections.extend(("subinterp warning", text) for text in (*collected.warnings, *collected.leak_warnings))
        extra["subinterp_verdict"] = collected.verdict.value  # plain str: reports cross xdist
        extra["subinterp_warnings"] = list(collected.warnings)
        extra["subinterp_leak_warnings"] = list(collected.leak_warnings)
        extra["subinterp_shape"] = collected.shape
        if collected.cause is not None:
            extra["subinterp_cause"] = collected.cause
    return pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords={name: 1 for name in item.keywords},
        outcome=outcome,  # type: ignore[arg-type]
        longrepr=longrepr,
        when=when,  # type: ignore[arg-type]
        sections=sections,
        duration=duration,
        user_properties=[*item.user_properties, *collected.properties],
        **extra,
    )


def _require_proof(call: pytest.TestReport, collected: Collected) -> None:
    """THE rule of a pass: a call report is passed only when every battery's record proves that
    every expected call ran and passed (proof.py).  Anything else fails it, saying which calls
    did not run and why."""
    if not call.passed:
        return
    unproven = collected.unproven()
    if collected.proofs and not unproven:
        return
    texts = [proof.explain() for proof in unproven] or [messages.NO_PROOF]
    call.outcome = "failed"
    call.longrepr = "\n\n".join(texts)
    call.subinterp_verdict = collected.verdict.value  # type: ignore[attr-defined]


def build_reports(item: pytest.Item, collected: Collected, settings_where: dict[str, int]) -> list[pytest.TestReport]:
    """One TestReport per phase; no call report when setup did not pass (as in pytest)."""
    setup = _combine_phase(item, "setup", collected, settings_where)
    result = [setup]
    if setup.passed:
        call = _combine_phase(item, "call", collected, settings_where)
        _require_proof(call, collected)
        result.append(call)
    elif setup.failed:
        # Keep what the call phase found elsewhere: nothing is lost.
        call_synthetic = [s for s in collected.synthetic if s.when == "call"]
        for s in call_synthetic:
            setup.sections.append(("subinterp (call phase)", s.text))
    teardown = _combine_phase(item, "teardown", collected, settings_where)
    teardown.subinterp_record = {  # type: ignore[attr-defined]
        "nodeid": item.nodeid,
        "verdict": collected.verdict.value,
        "outcome": "failed" if any(r.failed for r in (*result, teardown)) else result[-1].outcome,
        "shape": collected.shape,
        "batteries": collected.batteries,
        "leaks": collected.leak_figures,
        "proof": [{"config": proof.config, **proof.counts()} for proof in collected.proofs],
        "cause": collected.cause,
    }
    at_end = collected.verdict in (Verdict.LEFT_THREAD, Verdict.CRASHED, Verdict.HUNG)
    if not setup.passed or at_end and teardown.failed:
        teardown.subinterp_verdict = collected.verdict.value  # type: ignore[attr-defined]
    result.append(teardown)
    return result


def simple_reports(item: pytest.Item, outcome: str, longrepr: Any, when: str = "setup") -> list[pytest.TestReport]:
    """Reports for a test that never reached a battery (skipped, or failed before it)."""
    collected = Collected()
    if outcome == "failed":
        collected.synthetic.append(Synthetic(when, longrepr, Verdict.INFRASTRUCTURE))
        return build_reports(item, collected, {})
    skip = pytest.TestReport(
        nodeid=item.nodeid, location=item.location, keywords={name: 1 for name in item.keywords},
        outcome="skipped", longrepr=longrepr, when="setup", user_properties=list(item.user_properties),
        subinterp_verdict=Verdict.SKIPPED.value,
    )
    teardown = pytest.TestReport(
        nodeid=item.nodeid, location=item.location, keywords={name: 1 for name in item.keywords},
        outcome="passed", longrepr=None, when="teardown", user_properties=list(item.user_properties),
    )
    return [skip, teardown]

