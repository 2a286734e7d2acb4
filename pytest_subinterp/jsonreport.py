"""--subinterp-report PATH: one JSON entry per marked test with each of its batteries.

Entries travel on the reports themselves (``subinterp_record`` on the teardown report), so the
file is complete under pytest-xdist too; it is written at session end, also after Ctrl-C
(then with what ran so far).  Schema: docs/json-report.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_subinterp import compat

SCHEMA_VERSION = 1


class JsonReport:
    """Collects battery records and writes them as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tests: list[dict[str, Any]] = []
        self.started = time.time()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "subinterp_record", None)
        if record is not None:
            self.tests.append(record)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        data = {
            "schema_version": SCHEMA_VERSION,
            "python": compat.python_version(),
            "exitstatus": int(exitstatus),
            "interrupted": int(exitstatus) == int(pytest.ExitCode.INTERRUPTED),
            "duration_s": round(time.time() - self.started, 3),
            "tests": self.tests,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.path)
