"""What the terminal shows beyond pytest's own lines: battery shapes and a verdict summary."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

SUMMARY_TITLE = "subinterp verdicts"
# Most severe first; a test is listed once, under its worst verdict.
VERDICT_TITLES = {
    "crashed": "crashed",
    "hung": "hung (timeout)",
    "import refused": "import refused by a sub-interpreter",
    "leaked": "leaked state (memory, references, shared objects, fds)",
    "left thread": "left a thread running",
    "infrastructure": "could not run (pytest-subinterp or CPython error)",
    "failed": "failed in an interpreter/thread",
    "fallback": "passed on a pure-Python fallback (C module refused)",
    "leak warning": "passed with a leak warning (--subinterp-leaks=warn)",
    "skipped": "skipped",
    "passed": "passed",
}


class VerdictSummary:
    """Collects each marked test's verdict from its reports (works under pytest-xdist too)."""

    def __init__(self) -> None:
        self.verdicts: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Remember the verdict carried by a report of a marked test."""
        verdict = getattr(report, "subinterp_verdict", None)
        if verdict is None:
            return
        previous = self.verdicts.get(report.nodeid)
        order = list(VERDICT_TITLES)
        if previous is None or order.index(verdict) < order.index(previous):
            self.verdicts[report.nodeid] = verdict

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Write the summary section: counts per verdict, and the tests of each bad verdict."""
        terminal = terminalreporter
        if not self.verdicts:
            return
        grouped: dict[str, list[str]] = defaultdict(list)
        for nodeid, verdict in self.verdicts.items():
            grouped[verdict].append(nodeid)
        terminal.write_sep("=", SUMMARY_TITLE)
        for verdict, title in VERDICT_TITLES.items():
            nodeids = grouped.get(verdict)
            if not nodeids:
                continue
            terminal.write_line(f"{title}: {len(nodeids)}")
            if verdict not in ("passed", "skipped") or terminal.verbosity > 0:
                for nodeid in nodeids:
                    terminal.write_line(f"    {nodeid}")


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
