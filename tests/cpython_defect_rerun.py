"""Re-run, once, a test of this suite whose failure the plugin itself blamed on CPython.

CPython 3.12.1 and 3.13.0 abort at random in sub-interpreters (docs/cpython-quirks.md: 3.13.0's
"free(): invalid pointer" after isolated interpreters used _datetime, 3.12.1's legacy
single-phase crash).  When one strikes a battery inside a pytester run, the plugin reports it as
"this matches a known defect of CPython ..." and the test that expected exact outcomes fails
(seen twice in this project's CI runs on 3.13.0).  Such a test gets one more run; a failure for any
other reason, or a second failure, is reported as it is.  Every re-run is listed in the terminal
summary, so none goes unnoticed.
"""

from __future__ import annotations

from typing import Any

import pytest
from _pytest.runner import runtestprotocol

CPYTHON_DEFECT = "this matches a known defect of CPython"
RERUN_PROPERTY = "rerun_after_cpython_defect"


def _blamed_on_cpython(reports: list[pytest.TestReport]) -> str | None:
    """The plugin's line that blames CPython, in a failed report's message or captured output."""
    for report in reports:
        if report.failed:
            text = report.longreprtext + "\n" + "".join(content for _, content in report.sections)
            for line in text.splitlines():
                if CPYTHON_DEFECT in line:
                    return line.strip()[:300]
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if item.get_closest_marker("subinterp") is not None:
        return None  # the plugin's own protocol runs marked tests
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    reports = runtestprotocol(item, nextitem=nextitem, log=False)
    blamed = _blamed_on_cpython(reports)
    if blamed and isinstance(item, pytest.Function):
        item._initrequest()  # fresh fixture request, as pytest-rerunfailures does
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        for report in reports:
            report.user_properties.append((RERUN_PROPERTY, blamed))
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


class _RerunSummary:
    def __init__(self) -> None:
        self.reruns: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == RERUN_PROPERTY:
                self.reruns[report.nodeid] = value

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.reruns:
            terminalreporter.write_sep("=", "re-run once after CPython's own crash")
            for nodeid, why in self.reruns.items():
                terminalreporter.write_line(f"{nodeid}: {why}")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_RerunSummary(), "cpython-defect-rerun-summary")
