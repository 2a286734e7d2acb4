"""Type stub of the C helper (csrc/*.c): sub-interpreter batteries from native threads."""

from collections.abc import Callable
from typing import Any

from pytest_subinterp.protocol import CallRecord, HelperResult, InterpreterSlot

CALL_PASSED: int
CALL_FAILED: int
CALL_NOT_RUN: int
CALL_ERROR: int
HAVE_ISOLATED: int

def run_battery(
    config: str, interpreters: int, threads: int, rounds: int, entry: str, arg: str, timeout: float,
    templates: bool = False,
) -> HelperResult:
    """Create `interpreters` fresh interpreters ('isolated' or 'legacy'), run entry(arg, index)
    ('module:function') in each on its creator thread, and let `threads` native threads call the
    callables handed to call_point(): thread t in interpreter (t + j) % K for round j.  Main
    interpreter only; one battery per process.  With templates=True the interpreters are template
    interpreters this process inherited (make_templates + fork_keeping_templates), attached to
    and ended here.  Returns {"interpreters": [...], "calls": [...], "hung": bool,
    "generations": int, "wall_s": float}."""

def make_templates(config: str, count: int, entry: str, arg: str) -> list[InterpreterSlot]:
    """Create `count` template interpreters (3.12+), run entry(arg, index) in each and keep them
    with no attached thread state; returns one dict per interpreter (as run_battery's)."""

def template_count(config: str) -> int:
    """Template interpreters of that config this process holds."""

def fork_keeping_templates() -> int:
    """fork() without PyOS_AfterFork_Child (which would delete every sub-interpreter); for a
    single-threaded process.  0 in the child, the child's pid in the parent."""

def populate_memory() -> int:
    """Copy every private writable page now (Linux); returns the bytes populated."""

def process_environ() -> dict[bytes, bytes]:
    """The process environment as it is now (a template's os.environ is the zygote's)."""

def call_point(fn: Callable[[int, int], str | None] | None) -> list[CallRecord]:
    """From a battery interpreter's creator thread: arrive at the next rendezvous; fn(thread,
    round) returns None (passed) or a failure text; returns the records of the calls made here."""

def barrier() -> None:
    """Wait until every battery interpreter still running called barrier() as often."""

def set_phase(phase: str) -> None:
    """Record the current phase (collect, setup, call, teardown, ...) for crash reports."""

def interpreter_index() -> int:
    """This interpreter's index in the running battery, or -1."""

def breadcrumb(text: str) -> None:
    """Write one line to the battery's progress file."""

def is_single_phase(module: object) -> bool:
    """True for an extension module made by PyModule_Create (or CPython's copy of one)."""

def module_slots(module: object) -> dict[str, Any] | None:
    """A module's PyModuleDef: multi-phase, Py_mod_multiple_interpreters, Py_mod_gil values."""

def install_crash_handler(fd: int) -> None:
    """Write crash reports (signal, where, native and Python stacks) and breadcrumbs to fd."""

def set_parent_death_signal(signum: int) -> bool:
    """Linux: prctl(PR_SET_PDEATHSIG, signum) for this process; False where it does not exist."""
