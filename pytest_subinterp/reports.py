"""Turn K interpreters x T threads x R rounds (per config) into one pytest report per phase.

Inputs are the inner sessions' serialized reports (``pytest_report_to_serializable`` in each
interpreter) and the synthetic failures the controller found (crash, hang, refusal, left
thread).  Output: exactly one setup, (call,) teardown TestReport for the outer item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_subinterp import advice, compat, messages, quirks
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


def refusal_message(module: str, config: str, reason_text: str, path: str | None = None) -> str:
    """The 'import refused' message for one module (`path`: its extension file, read by
    advice.py to give the fix in its generator's terms; without it the advice is generic)."""
    return advice.advise(module, path, reason_text, config).message()


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


def _labelled_sections(entry: InterpreterReports, report: pytest.TestReport) -> list[tuple[str, str]]:
    return [(f"{name} [{entry.label}]", content) for name, content in report.sections]


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
            longrepr = first.longrepr
            if entry.where is not None and when == "call":
                shown = display_where(entry.where)
                prefix = messages.FAILED_WHERE.format(**shown, **settings_where)
                _prefix_crash_message(first, prefix)
                sections.append(("subinterp", messages.FAILED_SUMMARY.format(**shown, **settings_where)))
            else:
                _prefix_crash_message(first, f"[{entry.label}] ")
            longrepr = first.longrepr
            if hasattr(first, "wasxfail"):
                extra["wasxfail"] = first.wasxfail
        for entry, report in failed[1 if not synthetic else 0:]:
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


def known_defect_note(text: str, config: str) -> str | None:
    """A sentence attributing a crash to CPython itself, when its pattern matches."""
    defect = quirks.match_known_defect(text, config)
    if defect is None:
        return None
    version = compat.python_version()
    return messages.KNOWN_CPYTHON_DEFECT.format(version=version, description=defect.description,
                                                advice=defect.advice)
