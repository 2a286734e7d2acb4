"""CPython's own sub-interpreter defects that pytest-subinterp must avoid or attribute.

See docs/cpython-quirks.md.  One table each; a new defect is one line.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

# Modules put to None in sys.modules of a new interpreter before anything imports them, so that
# the pure-Python fallbacks (_pydatetime, _pydecimal, hashlib's builtins) are used.  Keys are
# (major, minor, config).
_BLOCKED: dict[tuple[int, int, str], tuple[str, ...]] = {
    # 3.12.1: after one isolated interpreter refused these, importing them in the next one can
    # abort the process ("double free or corruption"); _hashlib aborts it at exit.
    (3, 12, "isolated"): ("_datetime", "_decimal", "_hashlib", "readline", "_tracemalloc"),
    # readline is refused by every isolated interpreter anyway, but on 3.12.1 it runs its
    # (not thread-safe) initialisation first: two interpreters set up in parallel crashed
    # (SIGSEGV/SIGABRT in the import phase, 7 of ~600 whole-suite tests).
    # _tracemalloc loads in 3.12 isolated interpreters but its state is process-wide: msgpack's
    # test_no_memory_leak_on_nested_invalid_tag (tracemalloc.start() in two interpreters at
    # once) segfaulted a 3.12.1 whole-suite run; 3.13 refuses the module instead.
    (3, 13, "isolated"): ("readline",),
}


def is_stdlib_path(path: str | None) -> bool:
    """True for modules of CPython's own standard library (their refusals are CPython's)."""
    if not path:
        return True
    # os.py lives in the base interpreter's stdlib even inside a venv; lib-dynload is below it.
    stdlib = os.path.dirname(os.__file__) + os.sep
    return path.startswith(stdlib) and "site-packages" not in path and "dist-packages" not in path


def blocked_modules(config: str, version: tuple[int, int] | None = None) -> list[str]:
    """Stdlib modules to block in a fresh interpreter of `config` on this Python."""
    major, minor = version or sys.version_info[:2]
    return list(_BLOCKED.get((major, minor, config), ()))


_HALTED = re.compile(r"import of (\S+) halted; None in sys\.modules")


def blocked_module_in(text: str, config: str) -> str | None:
    """The module this config blocks (see _BLOCKED) whose import failed in `text`, if any."""
    for match in _HALTED.finditer(text):
        if match.group(1) in blocked_modules(config):
            return match.group(1)
    return None


@dataclass(frozen=True)
class Evidence:
    """What a battery's record shows about a crash (crash.evidence builds it from breadcrumbs)."""

    phase: str | None = None  # create | import | setup | call | teardown | end
    loaded: frozenset[str] = frozenset()  # extension modules loaded in the battery's interpreters
    refused: frozenset[str] = frozenset()  # extension modules an interpreter refused
    single_phase: frozenset[str] = frozenset()
    project_frames: tuple[str, ...] = ()  # native-stack shared objects of the code under test
    project_modules: tuple[tuple[str, str], ...] = ()  # (name, file) of loaded project extensions


@dataclass(frozen=True)
class KnownDefect:
    """A crash pattern that is CPython's fault, and the preconditions the record must show."""

    versions: tuple[tuple[int, int, int], ...]  # exact versions seen here
    config: str  # "isolated", "legacy" or "any"
    pattern: str  # regex searched in the child's stderr and crash breadcrumbs
    description: str
    advice: str = "re-run on a newer CPython"
    # Preconditions: one of these modules loaded in the battery ...
    modules: tuple[str, ...] = ()
    # ... the crash in one of these phases ...
    phases: tuple[str, ...] = ()
    # ... and an interpreter refused a module before (crash 1 of docs/cpython-quirks.md).
    needs_refusal: bool = False

    def preconditions_hold(self, found: Evidence) -> bool:
        """Whether the record shows what this defect needs to happen."""
        if self.phases and found.phase not in self.phases:
            return False
        if self.modules and not set(self.modules) & (found.loaded | found.refused):
            return False
        return not (self.needs_refusal and not found.refused)


KNOWN_DEFECTS: tuple[KnownDefect, ...] = (
    KnownDefect(((3, 12, 1),), "isolated", r"double free or corruption|free\(\): invalid pointer",
                "CPython 3.12.1 can abort when an isolated interpreter imports a single-phase "
                "module (_datetime, _decimal, _testsinglephase) that another isolated interpreter "
                "refused before",
                needs_refusal=True),
    KnownDefect(((3, 12, 1),), "legacy",
                r"(?s)single-phase \S+.*crash SIGSEGV interp=\d+ thread=-1 round=-1 phase=end",
                "CPython 3.12.1 crashes when a single-phase module imported in two legacy "
                "interpreters alive at once is destroyed (fixed in 3.13.0)",
                "re-run on CPython 3.13, or with interpreters=1 for legacy",
                phases=("end",)),
    KnownDefect(((3, 13, 0),), "isolated",
                r"free\(\): invalid pointer|munmap_chunk\(\)|double free or corruption",
                "CPython 3.13.0 can abort when two isolated interpreters that both used _datetime "
                "are destroyed one after the other",
                modules=("_datetime",), phases=("end",)),
)

_SUBINTERP_REFUSAL = re.compile(
    r"does not support loading in subinterpreters"
    r"|Interpreter change detected"
    r"|cannot load module more than once per process"
    r"|do not yet support subinterpreters"
)


_REFUSED_NAME = re.compile(r"module (\S+) does not support loading in subinterpreters")


def refused_module_name(message: str) -> str | None:
    """The module named in CPython's refusal message, if any."""
    match = _REFUSED_NAME.search(message)
    return match.group(1) if match else None


def is_subinterpreter_refusal(message: str) -> bool:
    """True when an ImportError message says the module refuses sub-interpreters."""
    return bool(_SUBINTERP_REFUSAL.search(message))


def attribute(text: str, config: str, found: Evidence | None,
              version: tuple[int, int, int] | None = None) -> tuple[KnownDefect | None, bool]:
    """(the known CPython defect this crash is, whether the evidence is mixed).  A blame needs
    evidence: the defect's text pattern in `text` (the child's stderr and breadcrumbs) is not
    enough, the record must show its preconditions (`found`; None: nothing is known, so no
    defect with preconditions is blamed).  Mixed: the preconditions hold, but the native stack
    also has frames in the code under test."""
    running = version or tuple(sys.version_info[:3])
    for defect in KNOWN_DEFECTS:
        if running not in defect.versions or defect.config not in (config, "any"):
            continue
        if not re.search(defect.pattern, text):
            continue
        if found is None or not defect.preconditions_hold(found):
            continue
        return defect, bool(found.project_frames)
    return None, False


def match_known_defect(text: str, config: str, version: tuple[int, int, int] | None = None,
                       found: Evidence | None = None) -> KnownDefect | None:
    """The known CPython defect that this crash is, on the evidence; None when it is not shown
    (also when the evidence is mixed: then the extension is not exonerated)."""
    defect, mixed = attribute(text, config, found, version)
    return None if mixed else defect
