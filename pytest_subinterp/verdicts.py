"""The verdicts pytest-subinterp gives: their words, their order of severity and their titles.

One place for all of them: the reports, the terminal summary, the JSON report and ``check`` use
these members, never bare strings, so that a misspelled verdict is an AttributeError instead of a
test silently summarised as passed.  Both enums are ``str`` subclasses: their values are what
crosses processes (pytest-xdist serializes report attributes) and what the JSON report shows.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class _Ordered(str, enum.Enum):
    """A str enum whose definition order is its order of severity (most severe first)."""

    summary_title: str

    def __new__(cls, value: str, summary_title: str) -> _Ordered:
        member = str.__new__(cls, value)
        member._value_ = value
        member.summary_title = summary_title
        return member

    def __str__(self) -> str:
        return str(self.value)

    @property
    def severity(self) -> int:
        """0 for the most severe verdict; larger is milder."""
        return list(type(self)).index(self)

    @classmethod
    def worst(cls, found: Iterable[str]) -> _Ordered | None:
        """The most severe of the verdicts in `found` (values or members); None if empty."""
        present = {cls(value) for value in found}
        return min(present, key=lambda verdict: verdict.severity, default=None)


class Verdict(_Ordered):
    """What a marked test's batteries showed; a test is summarised under its worst verdict."""

    CRASHED = ("crashed", "crashed")
    HUNG = ("hung", "hung (timeout)")
    IMPORT_REFUSED = ("import refused", "import refused by a sub-interpreter")
    LEAKED = ("leaked", "leaked state (memory, references, shared objects, fds)")
    LEFT_THREAD = ("left thread", "left a thread running")
    INFRASTRUCTURE = ("infrastructure", "could not run (pytest-subinterp or CPython error)")
    FAILED = ("failed", "failed in an interpreter/thread")
    NOT_RUN = ("not run", "did not run in every expected interpreter/thread (no proof of a pass)")
    FALLBACK = ("fallback", "passed on a pure-Python fallback (C module refused)")
    LEAK_WARNING = ("leak warning", "passed with a leak warning (--subinterp-leaks=warn)")
    SKIPPED = ("skipped", "skipped")
    PASSED = ("passed", "passed")

    @property
    def is_problem(self) -> bool:
        """Whether the summary lists the tests of this verdict by name in non-verbose mode."""
        return self not in (Verdict.PASSED, Verdict.SKIPPED)


class CheckVerdict(_Ordered):
    """What ``python -m pytest_subinterp check`` found for one module in one config."""

    NOT_FOUND = ("not found", "the module could not be found")
    CRASHED = ("crashed", "the process crashed")
    CPYTHON_DEFECT = ("cpython defect", "a known defect of CPython itself")
    HUNG = ("hung", "did not finish in time")
    ERROR = ("error", "the check itself could not run")
    REFUSED = ("refused", "import refused by the interpreter")
    FALLBACK = ("fallback", "imported, but on a pure-Python fallback: an extension module was refused")
    IMPORT_ERROR = ("import error", "the import raised an error")
    THREAD_ERRORS = ("thread errors", "errors when imported from several threads")
    SHARED_OBJECTS = ("shared objects", "objects shared between interpreters")
    LEAKS = ("leaks", "memory retained per interpreter lifetime")
    OK = ("ok", "no problem found")
