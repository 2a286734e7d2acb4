"""Every message pytest-subinterp shows a user: what happened, where, and what to do.

Kept in one place so tests import the very templates they check.  ``check``'s own messages are
in ``check/messages.py``; it uses the crash and refusal messages of this module.  No imports:
``check`` and the inner sessions use this module without pytest.
"""

from __future__ import annotations

FAILED_WHERE = "[{config} interpreter {interp}/{n_interps}, thread {thread}/{n_threads}, round {round}/{n_rounds}] "
FAILED_WHERE_SETUP = "[{config} interpreter {interp}/{n_interps}, phase {phase}] "
FAILED_SUMMARY = (
    "test failed in {failed_calls} of {calls} calls ({config}, in {failed_interps}); "
    "first: interpreter {interp}/{n_interps}, thread {thread}/{n_threads}, round {round}/{n_rounds}, phase: call"
)
SAME_FAILURE = "the same traceback in {count} more call(s): {calls}"
OTHER_FAILURE = "subinterp failure in {count} call(s): {calls}"

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
# A crash is attributed on evidence only (crash.attribution_note, quirks.attribute).
MIXED_EVIDENCE = (
    "this resembles a known defect of CPython {version} ({description}) and the record shows its "
    "preconditions, but the native stack also has frames in {frames}: the extension may be at fault "
    "as well; both are shown"
)
CRASH_IN_EXTENSION = "the native stack of the crashing thread has frames in {frames}: the crash is in that code"
CRASH_AFTER_LOAD = (
    "the native stack names no extension of the project; the last extension module loaded before the "
    "crash was '{module}' ({path})"
)
KNOWN_CPYTHON_DEFECT = (
    "this matches a known defect of CPython {version} itself ({description}); the extension is "
    "not shown to be at fault: {advice}"
)

HUNG = (
    "'{nodeid}' did not finish within {timeout:g} s ({where}); the worker was stopped. "
    "Stacks of every thread of every interpreter that could be read follow. "
    "Raise the limit with @pytest.mark.subinterp(timeout=...) or --subinterp-timeout"
)
HUNG_GIL_HELD = (
    "A battery thread holds the GIL that the main interpreter shares (legacy interpreters): no "
    "thread could attach to read Python frames, so each thread wrote its own native stack (and, "
    "where this Python allows it, its Python stack) from a signal handler, and the worker ended."
)
KILLED_AFTER_DEADLINE = (
    "'{nodeid}': the worker did not respond {grace:g} s after the {timeout:g} s timeout and was "
    "killed ({where}); a thread may hold a GIL forever"
)

IMPORT_REFUSED = (
    "module '{module}' cannot be imported in {article} {config} sub-interpreter: {reason}; {fix}"
)
# Reasons and fixes of an import refusal, one per kind of refusal and generator (advice.py;
# docs/verdicts.md "import refused" has the table).
REFUSAL_REASON_ISOLATED = (
    "it does not support a per-interpreter GIL (single-phase init or no "
    "Py_mod_multiple_interpreters slot)"
)
REFUSAL_REASON_NO_SLOT = (
    "it uses multi-phase init but has no Py_mod_multiple_interpreters slot, which CPython reads "
    "as 'shared-GIL (legacy) sub-interpreters only'"
)
REFUSAL_REASON_NOT_SUPPORTED = (
    "its Py_mod_multiple_interpreters slot is Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED"
)
REFUSAL_REASON_LEGACY_ONLY = (
    "its Py_mod_multiple_interpreters slot is Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED, which "
    "allows shared-GIL (legacy) sub-interpreters only"
)
REFUSAL_REASON_PYBIND11 = (
    "its PYBIND11_MODULE does not declare py::multiple_interpreters::per_interpreter_gil() "
    "(pybind11 3.x declares not_supported() by default)"
)
REFUSAL_REASON_ONE_PER_PROCESS = 'it loads into one interpreter per process ("{text}")'
REFUSAL_REASON_STDLIB = (
    "it is CPython's own module, which CPython {version} itself does not load there (a limit of "
    "CPython, not of the project under test)"
)
REFUSAL_FIX_STDLIB = (
    "mark the test config=\"legacy\" or skip it in sub-interpreters (newer CPythons load more of "
    "their own modules in isolated interpreters)"
)
REFUSAL_FIX_ISOLATED = (
    "port it to multi-phase init (PyModuleDef_Init + Py_mod_exec) with module state and declare "
    "Py_mod_multiple_interpreters = Py_MOD_PER_INTERPRETER_GIL_SUPPORTED, or use "
    "config=\"legacy\" to test it anyway"
)
REFUSAL_FIX_C_SLOT = (
    "keep its state in module state (PyModule_GetState) and its types as heap types "
    "(PyType_FromModuleAndSpec), then declare {Py_mod_multiple_interpreters, "
    "Py_MOD_PER_INTERPRETER_GIL_SUPPORTED} (CPython 3.12+; on 3.13+ also {Py_mod_gil, "
    "Py_MOD_GIL_NOT_USED} once it is thread-safe, for free-threaded builds), or use "
    "config=\"legacy\" to test it anyway"
)
REFUSAL_FIX_PYBIND11 = (
    "declare it with pybind11 3.0+: PYBIND11_MODULE(name, m, "
    "py::multiple_interpreters::per_interpreter_gil()) once no C++ static holds Python objects "
    "(py::multiple_interpreters::shared_gil() allows legacy sub-interpreters only), or use "
    "config=\"legacy\" to test it anyway"
)
REFUSAL_FIX_PYBIND11_OLD = (
    "it was built by pybind11 2.x, whose modules are single-phase: rebuild it with pybind11 3.0+ "
    "and declare PYBIND11_MODULE(name, m, py::multiple_interpreters::per_interpreter_gil()), or "
    "use config=\"legacy\" to test it anyway"
)
REFUSAL_FIX_CYTHON = (
    "Cython's default build keeps module globals in C statics and loads into one interpreter "
    "per process: with Cython 3.1+, compile it with the directive "
    "'# cython: subinterpreters_compatible=own_gil' and the C macro CYTHON_USE_MODULE_STATE=1, "
    "which the directive needs (shared_gil allows legacy sub-interpreters only; Cython warns "
    "about what it cannot support there yet)"
)
REFUSAL_FIX_NANOBIND = (
    "nanobind's NB_MODULE declares Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED and has no option "
    "to declare more: use config=\"legacy\" to test it anyway, or bind it with pybind11 3.0+ and "
    "py::multiple_interpreters::per_interpreter_gil()"
)
REFUSAL_FIX_PYO3 = (
    "PyO3 does not support sub-interpreters yet (https://github.com/PyO3/pyo3/issues/576; on "
    "CPython 3.12+ its modules declare Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED and refuse "
    "every interpreter after the first): skip the test in sub-interpreters until it does"
)
REFUSAL_FIX_CFFI = (
    "cffi modules are single-phase, with process-wide state in them and in _cffi_backend, and "
    "cffi has no sub-interpreter option: use config=\"legacy\" to test it anyway, or skip it in "
    "sub-interpreters"
)
REFUSAL_FIX_MYPYC = (
    "mypyc-compiled modules keep their globals in process-wide C statics and mypyc has no "
    "sub-interpreter option: leave this module out of mypyc compilation, use config=\"legacy\" "
    "to test it anyway, or skip it in sub-interpreters"
)
REFUSAL_FIX_ONE_PER_PROCESS = (
    "the module itself refuses every interpreter after the first, so config=\"legacy\" does not "
    "help; it cannot support sub-interpreters until its authors (or its generator) lift that"
)
REFUSAL_CPYTHON_SAYS = 'CPython says "{text}"'
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
CLOSED_STD_STREAMS = (
    "'{nodeid}' closed the process's standard stream(s) (fd {fds}): every interpreter and thread of "
    "a battery shares fds 0, 1 and 2 with the process, so closing them breaks the output of all of "
    "them; close only what the test opened, or redirect with os.dup2 and restore"
)
UNSUPPORTED_ITEM = (
    "'{nodeid}' is a {kind} item: pytest-subinterp runs only plain test functions in "
    "sub-interpreters (its body would not reach the battery threads)"
)
ASYNC_UNSUPPORTED = (
    "'{nodeid}' is an async generator test function: pytest-subinterp runs coroutine tests (each "
    "thread in its own event loop) but not async generators; make it an 'async def' test that returns"
)
ASYNC_NEEDS_INNER_PLUGIN = (
    "'{nodeid}' is a {kind} item of {plugin}, which is left out of {config} sub-interpreters "
    "({reason}): its async fixtures cannot be set up there; drop @pytest.mark.subinterp from this test"
)
# ---- the user's plugins (plugins.py, docs/compatibility.md) ----
PLUGINS_LEFT_OUT_HEADER = "subinterp: plugins left out of the sub-interpreters (they cannot load there): {plugins}"
PLUGIN_LEFT_OUT_NEEDED = (
    "'{nodeid}' needs the plugin '{plugin}' (from {dist}; {via}), which cannot load in {config} "
    "sub-interpreters: {reason}.  It is left out of them, so this test cannot run in a battery: run it "
    "without @pytest.mark.subinterp (e.g. --subinterp-disabled), try "
    "config=\"legacy\" if the plugin loads there, or ask the plugin's maintainers for sub-interpreter "
    "support (docs/compatibility.md)"
)
PLUGIN_PROBE_DIED = (
    "the probe of the plugins in a sub-interpreter did not finish (child status {status}; {stderr})"
)
TIMEOUT_FROM_PYTEST_TIMEOUT = (
    "battery timeout {timeout:g} s from pytest-timeout ({where}), smaller than the subinterp timeout "
    "{ours:g} s"
)
TIMEOUT_FROM_SUBINTERP = (
    "battery timeout {ours:g} s from pytest-subinterp, smaller than pytest-timeout's {timeout:g} s ({where})"
)
ONE_THREAD_AT_A_TIME = (
    "{threads} thread(s) at a time in each of {interpreters} fresh interpreters ({why}, pytest-run-parallel's "
    "marker)"
)
NO_CONFIG_AVAILABLE = "{reason}"

# A passed call needs a proof (proof.py); this is the message when no battery left one.
NO_PROOF = (
    "no battery left a record of the test's calls, so nothing proves that its body ran and passed; "
    "this is an error of pytest-subinterp: please report it with the JSON report (--subinterp-report)"
)

# An inner session that ended before the test ran there (exit code 2-5): its own output follows.
SESSION_STOPPED = (
    "[{config} interpreter {interp}] the pytest session inside the sub-interpreter stopped before the "
    "test ran (exit code {code}), as plain pytest would on the same error:\n{output}"
)

# Why a test failed in some calls (session._find_cause): its confirmation battery with one
# thread per interpreter passed (thread-safety) or failed too (isolation / sub-interpreter).
CAUSES = {
    "thread-safety": (
        "thread-safety failure: with one thread per interpreter ({interps} threads, one round, {config}) the "
        "test passed; it fails only with several threads in one interpreter: the test or the code under "
        "test is not thread-safe (as pytest-run-parallel would find), not an isolation defect"
    ),
    "isolation": (
        "isolation failure: it fails with one thread per interpreter too ({interps} threads, one round, "
        "{config}) but passes without the other interpreters: state is shared between interpreters (C "
        "statics, cached objects, a single-phase module)"
    ),
    "sub-interpreter": (
        "it fails in a single {config} sub-interpreter from a single thread too: the code does not work in "
        "a sub-interpreter at all, or the test fails anyway (run it without the subinterp marker to tell)"
    ),
}
