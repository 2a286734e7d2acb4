"""Every message pytest-subinterp shows a user: what happened, where, and what to do.

Kept in one place so tests import the very templates they check.
"""

from __future__ import annotations

FAILED_WHERE = "[{config} interpreter {interp}/{n_interps}, thread {thread}/{n_threads}, round {round}/{n_rounds}] "
FAILED_WHERE_SETUP = "[{config} interpreter {interp}/{n_interps}, phase {phase}] "
FAILED_SUMMARY = (
    "test failed in {failed_calls} of {calls} calls in interpreter {interp}/{n_interps} ({config}); "
    "first: thread {thread}/{n_threads}, round {round}/{n_rounds}, phase: call"
)

CRASHED = (
    "subinterp worker crashed with {how} while running '{nodeid}' ({where}); "
    "worker stderr and breadcrumbs follow"
)
CRASH_WHERE = (
    "interpreter {interp}/{n_interps} ({config}), thread {thread}/{n_threads}, round {round}/{n_rounds}, "
    "phase: {phase}"
)
CRASH_WHERE_CREATOR = "interpreter {interp}/{n_interps} ({config}), creator thread, phase: {phase}"
CRASH_WHERE_UNKNOWN = "{config}, phase unknown"
# A child with leak checks runs more batteries than the test's own (leaks/sequence.py): say which one
# crashed, since the test itself may have passed.
CRASH_STAGE = {
    "warm-up": "in the leak check's warm-up battery (the trivial control test, before the test ran)",
    "control": "in the leak check's control battery (the trivial control test, before the test ran)",
    "lifetime-test": (
        "in the leak check's sequential single-interpreter lifetimes, after the test's own battery "
        "finished: the battery retained more memory than its control, and one more interpreter "
        "lifetime of the test in the same process crashed"
    ),
    "lifetime-control": (
        "in the leak check's sequential single-interpreter lifetimes (a control lifetime, after "
        "lifetimes of the test), after the test's own battery finished"
    ),
}
KNOWN_CPYTHON_DEFECT = (
    "this matches a known defect of CPython {version} itself ({description}); the extension is "
    "not shown to be at fault: {advice}"
)

HUNG = (
    "'{nodeid}' did not finish within {timeout:g} s ({where}); the worker was stopped. "
    "Stacks of every thread of every interpreter that could be read follow. "
    "Raise the limit with @pytest.mark.subinterp(timeout=...) or --subinterp-timeout"
)
KILLED_AFTER_DEADLINE = (
    "'{nodeid}': the worker did not respond {grace:g} s after the {timeout:g} s timeout and was "
    "killed ({where}); a thread may hold a GIL forever"
)

IMPORT_REFUSED = (
    "module '{module}' cannot be imported in an {config} sub-interpreter: {reason}; {fix}"
)
REFUSAL_REASON_ISOLATED = (
    "it does not support a per-interpreter GIL (single-phase init or no "
    "Py_mod_multiple_interpreters slot)"
)
REFUSAL_FIX_ISOLATED = (
    "port it to multi-phase init (PyModuleDef_Init + Py_mod_exec) with module state and declare "
    "Py_mod_multiple_interpreters = Py_MOD_PER_INTERPRETER_GIL_SUPPORTED, or use "
    "config=\"legacy\" to test it anyway"
)
REFUSAL_FIX_ONE_PER_PROCESS = (
    "this module can only be loaded into one interpreter per process (Cython, PyO3 and others); "
    "it cannot support sub-interpreters until its generator does"
)
STDLIB_REFUSED = (
    "CPython's own module '{module}' is refused by {config} sub-interpreters on Python {version} "
    "(a limit of CPython, not of the project under test); the test needs it: mark it "
    "config=\"legacy\" or skip it in sub-interpreters"
)
STDLIB_BLOCKED = (
    "CPython's own module '{module}' is blocked in {config} sub-interpreters on Python {version}: "
    "CPython itself crashes with it there (docs/cpython-quirks.md); the test needs it: mark it "
    "config=\"legacy\", skip it in sub-interpreters, or run on a newer CPython"
)
FALLBACK_USED = (
    "extension module '{module}' was refused in {config} interpreter{interp} ({message}) and the "
    "package caught the ImportError: its C code was not exercised there, the test ran its "
    "pure-Python fallback. Make the module support sub-interpreters; --subinterp-strict turns "
    "this warning into a failure"
)

LEFT_THREAD = (
    "left thread '{name}' running in interpreter {interp} ({config}) after the test and its "
    "fixtures finished; join it in the test or in the fixture's teardown"
)
NOT_ENDED = "interpreter {interp} ({config}) could not be ended: {reason}"
CREATE_FAILED = (
    "could not create {config} interpreter {interp}: {error}; this is an infrastructure error "
    "of pytest-subinterp or CPython, not of the test"
)
INNER_ERROR = (
    "the inner pytest session failed in {config} interpreter {interp} (an error of "
    "pytest-subinterp or of a plugin, not of the test):\n{error}"
)
NOT_COLLECTED = (
    "'{nodeid}' was not collected in {config} interpreter {interp}: collection differs inside a "
    "sub-interpreter (a conftest or plugin selects tests differently?)"
)
HELPER_MISSING = (
    "the pytest-subinterp C helper could not be loaded ({error}); marked tests cannot run. "
    "Reinstall pytest-subinterp for this Python (pip install --force-reinstall pytest-subinterp)"
)
INFRASTRUCTURE = "pytest-subinterp could not run '{nodeid}': {error}"
UNSUPPORTED_ITEM = (
    "'{nodeid}' is a {kind} item: pytest-subinterp runs only plain test functions in "
    "sub-interpreters (its body would not reach the battery threads)"
)
ASYNC_UNSUPPORTED = (
    "'{nodeid}' is an async test function: pytest-subinterp cannot hand it to the battery "
    "threads yet; write a sync test that runs the coroutine with asyncio.run()"
)
NO_CONFIG_AVAILABLE = "{reason}"
