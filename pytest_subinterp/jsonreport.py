"""--subinterp-report PATH: one JSON entry per marked test with each of its batteries.

Entries travel on the reports themselves (``subinterp_record`` on the teardown report), so the
file is complete under pytest-xdist too; it is written at session end, also after Ctrl-C
(then with what ran so far).  Schema: docs/json-report.md.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_subinterp import compat

SCHEMA_VERSION = 1

# ---- message templates (tests import these) ----
REPORT_PATH_MESSAGE = "--subinterp-report {path}: {problem}; give the path of a JSON file in a writable directory"
IS_DIRECTORY = "is a directory"
NOT_REGULAR = "exists and is not a regular file"
CANNOT_WRITE = "cannot write there ({error})"
WRITE_FAILED = "pytest-subinterp: the JSON report could not be written to {path}: {error}"


def check_report_path(path: Path) -> None:
    """Raise UsageError, before any test runs, when the report cannot be written at `path`: a
    directory, an existing special file, a directory that cannot be made or written.  The check
    writes (and removes) the same kind of temporary file the report itself is written through."""

    def refuse(problem: str) -> pytest.UsageError:
        return pytest.UsageError(REPORT_PATH_MESSAGE.format(path=path, problem=problem))

    if path.is_dir():
        raise refuse(IS_DIRECTORY)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise refuse(CANNOT_WRITE.format(error=error.strerror or error)) from None
    if mode is not None and not stat.S_ISREG(mode):
        raise refuse(NOT_REGULAR)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
        if mode is not None and not os.access(path, os.W_OK):
            raise PermissionError(13, "permission denied")
    except OSError as error:
        raise refuse(CANNOT_WRITE.format(error=error.strerror or error)) from None


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file of a random name in the same directory,
    created exclusively (never a predictable name, never following a symlink), then renamed over
    `path`; the temporary file never outlives the call."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, json.dumps(data, indent=2))
        except OSError as error:  # checked at start; the place changed since: say so, no traceback
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            message = WRITE_FAILED.format(path=self.path, error=error)
            if reporter is not None:
                reporter.write_line(message, red=True)
            else:
                print(message)
