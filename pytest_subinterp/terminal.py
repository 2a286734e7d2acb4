"""What the terminal shows beyond pytest's own lines: battery shapes and a verdict summary."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from pytest_subinterp.verdicts import Verdict

SUMMARY_TITLE = "subinterp verdicts"
# The key of an xdist worker's workeroutput that carries its plugin probe's header line (the
# controller shows it: a worker's header is never printed).
WORKER_LEFT_OUT_KEY = "subinterp_plugins_left_out"


class VerdictSummary:
    """Collects each marked test's verdict from its reports (works under pytest-xdist too)."""

    def __init__(self) -> None:
        self.verdicts: dict[str, Verdict] = {}
        self.causes: dict[str, str] = {}  # thread-safety | isolation | sub-interpreter
        self.workers_left_out: list[str] = []  # xdist workers' header lines, once each

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        """An xdist worker finished: keep the plugins its probe left out (plugin.py sends them)."""
        for line in (getattr(node, "workeroutput", None) or {}).get(WORKER_LEFT_OUT_KEY, []):
            if line not in self.workers_left_out:
                self.workers_left_out.append(line)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Remember the verdict carried by a report of a marked test."""
        cause = getattr(report, "subinterp_cause", None)
        if cause is not None:
            self.causes[report.nodeid] = cause
        value = getattr(report, "subinterp_verdict", None)
        if value is None:
            return
        previous = self.verdicts.get(report.nodeid)
        verdict = Verdict(value)
        if previous is None or verdict.severity < previous.severity:
            self.verdicts[report.nodeid] = verdict

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Write the summary section: counts per verdict, and the tests of each bad verdict."""
        terminal = terminalreporter
        if not self.verdicts and not self.workers_left_out:
            return
        grouped: dict[Verdict, list[str]] = defaultdict(list)
        for nodeid, verdict in self.verdicts.items():
            grouped[verdict].append(nodeid)
        terminal.write_sep("=", SUMMARY_TITLE)
        for line in self.workers_left_out:
            terminal.write_line(line)
        for verdict in Verdict:  # most severe first; a test is listed once, under its worst verdict
            nodeids = grouped.get(verdict)
            if not nodeids:
                continue
            terminal.write_line(f"{verdict.summary_title}: {len(nodeids)}")
            if verdict.is_problem or terminal.verbosity > 0:
                for nodeid in nodeids:
                    cause = self.causes.get(nodeid)
                    terminal.write_line(f"    {nodeid}" + (f" ({cause})" if cause else ""))


class ShapeStatus:
    """Registered in verbose mode only: unmarked tests must not pay for it otherwise."""

    def pytest_report_teststatus(self, report: pytest.TestReport) -> Any:
        """Show the battery shape in verbose mode: 'PASSED [2x4x1 isolated]'."""
        return teststatus(report)


def teststatus(report: pytest.TestReport) -> tuple[str, str, Any] | None:
    """'PASSED [2x4x1 isolated]' in verbose mode for a marked test's call phase."""
    shape = getattr(report, "subinterp_shape", None)
    if not shape or report.when != "call" or hasattr(report, "wasxfail"):
        return None
    if report.passed:
        return "passed", ".", (f"PASSED [{shape}]", {"green": True})
    # Failures already name interpreter, config, thread and round in their message.
    return None
