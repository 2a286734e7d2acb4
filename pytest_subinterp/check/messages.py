"""What ``check`` tells its user: what happened, where, and what to do.

The crash, refusal and known-CPython-defect wording is the plugin's (``pytest_subinterp.messages``
and ``crash.py``); these are the messages only ``check`` has.  Kept as constants so that tests
import the very templates they check.
"""

from __future__ import annotations

# ---- usage errors (exit status 2) ----
BAD_MODULE_NAME = (
    "'{name}' is not a module name (expected dotted identifiers such as 'package.module'); "
    "pass the name you would import, not a file path"
)
BAD_CONFIG = "must be isolated, legacy or both, got '{config}'"
NO_ISOLATED = (
    "--config {config}: isolated interpreters need Python 3.12+ (this is {version}); "
    "use --config legacy"
)

# ---- problems of a module in one config ----
NOT_FOUND = (
    "module '{module}' was not found in a fresh {config} sub-interpreter ({error}); check the "
    "spelling, and run check from the environment (or directory, or PYTHONPATH) that has it"
)
# A refusal (messages.refusal_message) that matches a known CPython defect: both sentences.
REFUSED_KNOWN_DEFECT = "{refusal}; {defect}"
IMPORT_ERROR = (
    "module '{module}' raised {error_type} when imported in a fresh {config} sub-interpreter: "
    "{error}; module-level code must work in every interpreter (no state of the main one)"
)
THREAD_ERRORS = (
    "importing '{module}' from {threads} threads at once in {interps} {config} interpreters failed "
    "in {failed} of {calls} calls; first (interpreter {interp}/{interps}, thread {thread}/{threads}): "
    "{error}; make Py_mod_exec and module-level code safe to run concurrently"
)
ONE_PER_PROCESS = (
    "module '{module}' loads into one interpreter per process: imported in {article} {config} sub-interpreter "
    "it works, but its import fails in every other interpreter of the process ({error}; interpreters "
    "{interps} of {n_interps}); {fix}"
)
CRASHED = (
    "checking '{module}' crashed the child process with {how} ({where}); {blame}"
)
CRASH_BLAME_MODULE = (
    "the module's init, use or teardown in a sub-interpreter is the likely cause: look for C "
    "statics, static types and state freed per process (m_free)"
)
HUNG = (
    "checking '{module}' did not finish within {timeout:g} s ({where}); the child was stopped: a "
    "deadlock in its init or teardown (PyGILState_* from own threads?); raise --timeout if it is "
    "just slow"
)
STEP_ERROR = "pytest-subinterp could not check '{module}' ({config}): {error}; this is not the module's fault"
SHARED = (
    "{count} object(s) of '{module}' are the same object in {interps} {config} interpreters alive "
    "at once: {names}; keep per-interpreter objects in module state (PyModule_GetState) and use "
    "heap types (PyType_FromModuleAndSpec) instead of C statics"
)
SHARED_SINGLE_PHASE = (
    "single-phase module: CPython copies its module dict from the first import into every legacy "
    "interpreter, so these objects are shared by design: {names}; port it to multi-phase init for "
    "one copy per interpreter"
)
LEAKED = (
    "'{module}' retains {retained:.0f} KiB per {config} interpreter lifetime beyond the control "
    "({module_kib:.0f} vs {control_kib:.0f} KiB, {rounds} sequential interpreters, threshold "
    "{threshold:g} KiB); free in m_free/m_clear what Py_mod_exec allocates and drop module "
    "state references"
)

# ---- the last line of the table ----
ALL_FINE = "{count} module(s) fine under {configs}"
SOME_FAILED = "{failed} of {count} module/config check(s) not fine; see the notes above"
FALLBACK = (
    "'{module}' imported in {article} {config} sub-interpreter, but its extension module '{refused}' was refused "
    "there and the package fell back to pure Python: its C code is not what runs. {advice}"
)
BLOCKED_STDLIB = (
    "pytest-subinterp blocked CPython's own {modules} in {config} interpreters on Python {version} "
    "(CPython itself crashes with them there, docs/cpython-quirks.md): the pure-Python fallbacks ran instead"
)
