"""The verdicts pytest-subinterp gives: their words, their order of severity and their titles.

One place for all of them: the reports, the terminal summary, the JSON report and ``check`` use
these members, never bare strings, so that a misspelled verdict is an error instead of a test
silently summarised as passed.  Both enums are ``str`` subclasses: their values are what crosses
processes (pytest-xdist serializes report attributes) and what the JSON report shows.  Definition
order is the order of severity, most severe first.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Verdict(str, enum.Enum):
    """What a marked test's batteries showed; a test is summarised under its worst verdict."""

    CRASHED = "crashed"
    HUNG = "hung"
    IMPORT_REFUSED = "import refused"
    LEAKED = "leaked"
    LEFT_THREAD = "left thread"
    INFRASTRUCTURE = "infrastructure"
    FAILED = "failed"
    NOT_RUN = "not run"
    FALLBACK = "fallback"
    LEAK_WARNING = "leak warning"
    SKIPPED = "skipped"
    PASSED = "passed"

    def __str__(self) -> str:
        return str(self.value)

    @property
    def summary_title(self) -> str:
        """The heading of this verdict's group in the terminal summary."""
        return _TITLES[self]

    @property
    def severity(self) -> int:
        """0 for the most severe verdict; larger is milder."""
        return _ORDER.index(self)

    @property
    def is_problem(self) -> bool:
        """Whether the summary lists the tests of this verdict by name in non-verbose mode."""
        return self not in (Verdict.PASSED, Verdict.SKIPPED)

    @classmethod
    def worst(cls, found: Iterable[str]) -> Verdict | None:
        """The most severe of the verdicts in `found` (values or members); None if empty."""
        return min((cls(value) for value in found), key=_ORDER.index, default=None)


_ORDER = list(Verdict)
_TITLES = {
    Verdict.CRASHED: "crashed",
    Verdict.HUNG: "hung (timeout)",
    Verdict.IMPORT_REFUSED: "import refused by a sub-interpreter",
    Verdict.LEAKED: "leaked state (memory, references, shared objects, fds)",
    Verdict.LEFT_THREAD: "left a thread running",
    Verdict.INFRASTRUCTURE: "could not run (pytest-subinterp or CPython error)",
    Verdict.FAILED: "failed in an interpreter/thread",
    Verdict.NOT_RUN: "did not run in every expected interpreter/thread (no proof of a pass)",
    Verdict.FALLBACK: "passed on a pure-Python fallback (C module refused)",
    Verdict.LEAK_WARNING: "passed with a leak warning (--subinterp-leaks=warn)",
    Verdict.SKIPPED: "skipped",
    Verdict.PASSED: "passed",
}


class CheckVerdict(str, enum.Enum):
    """What ``python -m pytest_subinterp check`` found for one module in one config."""

    NOT_FOUND = "not found"
    CRASHED = "crashed"
    CPYTHON_DEFECT = "cpython defect"
    HUNG = "hung"
    ERROR = "error"  # the check itself could not run
    REFUSED = "refused"
    FALLBACK = "fallback"  # imported, but an extension module of it was refused and swallowed
    IMPORT_ERROR = "import error"
    THREAD_ERRORS = "thread errors"
    SHARED_OBJECTS = "shared objects"
    LEAKS = "leaks"
    OK = "ok"

    def __str__(self) -> str:
        return str(self.value)
