"""The data that crosses processes and interpreters, typed: one TypedDict per message.

Everything here travels as JSON (or, for the C helper's result, as a dict built in C), so each
shape is a TypedDict rather than a class: producers build them as literals and consumers read
them with the same keys, which mypy checks.  Keys are named by meaning; in particular the word
"leaks" of the JSON report is never reused for anything else:

====================  =====================================  ===================================
message               produced by                            read by
====================  =====================================  ===================================
BatteryRequest        session.py (test), check/runner.py     workermanage.py -> zygote -> child.py
InnerSpec             session.py, check/runner.py            inner.run / check.entry.run (JSON)
TemplateRequest       templates/start.py                     templates/zygote.py
HelperResult          the C helper (csrc/results.c)          child.py, leaks/sequence.py, analysis.py
InterpreterSlot       the C helper, one per interpreter      analysis.py, leaks/policy.py
CallRecord            the C helper, one per call             proof.py, analysis.py
LeakMeasurement       leaks/sequence.py (in the child)       leaks/verdict.py, templates/start.py
InnerOutput           inner.run (JSON in entry_output)       analysis.py, leaks/policy.py
Refusal               inner.RefusalRecorder                  analysis.py, advice.py, check
TestRecord            reports.build_reports                  jsonreport.py (docs/json-report.md)
====================  =====================================  ===================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    # typing.NotRequired exists from 3.11; with postponed annotations it is never evaluated at
    # run time, so 3.10 needs no typing_extensions installed.
    from typing_extensions import NotRequired


class InnerSpec(TypedDict):
    """What each interpreter's inner pytest session is asked to do (JSON argument of the entry)."""

    config: str  # isolated | legacy
    nodeids: list[str]
    args: list[str]  # the inner session's command line
    progress_dir: str  # where inner.py appends each finished test's result (module scope)
    basetemp: str
    block_modules: list[str]  # stdlib modules put to None first (quirks.py)
    check_leaks: bool  # run the in-interpreter leak detectors (leaks/measure.py)
    unfreeze: bool  # template interpreters: gc.unfreeze() before they end
    template: NotRequired[bool]  # set by the child: runs in an inherited template interpreter
    markers: NotRequired[list[str]]  # the outer session's marker lines (plugins left out inside)
    coverage: NotRequired[dict[str, Any] | None]  # the session's coverage settings (coverage_inside.py)
    plugins: NotRequired[list[str]]  # the plugin probe: which plugins to try (plugins.py)
    # kept plugins named like another module: name -> plugin module (innerplugins.py)
    shadowing_plugins: NotRequired[dict[str, str]]
    control_test: NotRequired[str]


class TemplateRequest(TypedDict):
    """The template interpreters a battery wants from the zygote (templates/start.py)."""

    config: str
    count: int
    spec: dict[str, Any]  # block_modules, blocked_plugins: what prepare_template needs


class TemplateControl(TypedDict):
    """The cached control of template batteries of one shape (leaks/policy.py)."""

    measured: dict[str, int | None]
    errors: list[str]


class BatteryRequest(TypedDict):
    """One battery for a child process: the controller -> launcher -> zygote -> child."""

    dir: str  # the battery directory: result, breadcrumbs, stdout/stderr files
    cwd: str
    config: str
    interpreters: int
    threads: int
    rounds: int
    timeout: float
    spec: InnerSpec | dict[str, Any]  # an InnerSpec for tests; check.entry's own spec for check
    leak_policy: NotRequired[str]  # fail | warn | off (absent: off)
    control_spec: NotRequired[InnerSpec]  # the trivial control test's spec (leak checks)
    entry: NotRequired[str]  # "module:function" run in each interpreter (default inner.run)
    templates: NotRequired[TemplateRequest]  # asked of the zygote
    template_control: NotRequired[TemplateControl]
    use_templates: NotRequired[bool]  # set by the zygote: the child inherited the templates
    role: NotRequired[str]  # "control": measure the template control only


class CallRecord(TypedDict):
    """One call of the body, as the C helper recorded it."""

    generation: int  # which test of a module-scope battery (1-based)
    thread: int
    round: int
    interpreter: int
    status: int  # index into proof.CALL_STATUS
    error: str | None
    seconds: float


class InterpreterSlot(TypedDict):
    """One interpreter of a battery, as the C helper reports it."""

    index: int
    id: int
    created: bool
    ended: bool
    create_error: str | None
    entry_output: str | None  # the entry's JSON (an InnerOutput for tests)
    entry_error: str | None
    end_error: str | None
    create_s: float
    run_s: float
    end_s: float


class LeakMeasurement(TypedDict, total=False):
    """Process memory around a battery and its control (leaks/sequence.py)."""

    measured: dict[str, int | None]  # the template control's own figure (None: not measurable)
    control: dict[str, int | None]
    test: dict[str, int | None]
    control_errors: list[str]
    series: list[dict[str, Any]]  # sequential single-interpreter lifetimes
    needs_unfrozen: bool  # template battery retained more than its control: re-run unfrozen


class HelperResult(TypedDict):
    """What ``_subinterp.run_battery`` returns (csrc/results.c), plus the child's measurement."""

    interpreters: list[InterpreterSlot]
    calls: list[CallRecord]
    hung: bool
    generations: int
    wall_s: float
    leak_measurement: NotRequired[LeakMeasurement]
    closed_std_fds: NotRequired[list[int]]  # set by the child: which of fds 0-2 the test closed


class Refusal(TypedDict):
    """An extension module an interpreter refused (inner.RefusalRecorder)."""

    module: str
    path: str | None
    message: str
    importer: str | None  # "file:line" of the import statement


class InnerOutput(TypedDict, total=False):
    """What inner.run returns from one interpreter (JSON in InterpreterSlot.entry_output)."""

    index: int
    config: str
    exitcode: int
    error: str  # the inner session itself raised
    session_output: str  # what pytest.main printed outside the tests
    reports: list[dict[str, Any]]  # pytest_report_to_serializable of each report
    collect_errors: list[dict[str, str]]
    not_found: list[str]
    calls: dict[str, list[CallRecord]]
    where: dict[str, dict[str, Any]]
    leak_data: dict[str, dict[str, Any]]  # nodeid -> in-interpreter detector data
    refusals: list[Refusal]
    item_refusals: dict[str, list[Refusal]]
    collection_refusals: list[Refusal]
    leftover_threads: list[str]


class ProofCounts(TypedDict, total=False):
    """proof.Proof.counts() with the config: the JSON record's evidence of a pass."""

    config: str
    expected_calls: int
    recorded_calls: int
    passed_calls: int


class TestRecord(TypedDict):
    """One marked test in the JSON report (docs/json-report.md)."""

    nodeid: str
    verdict: str
    outcome: str
    shape: str
    batteries: list[dict[str, Any]]
    leaks: list[dict[str, Any]]  # the leak figures and findings per config
    proof: list[ProofCounts]
