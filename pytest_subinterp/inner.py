"""Runs inside each sub-interpreter of a battery: an inner pytest session for the selected tests.

The C helper calls :func:`run` on the interpreter's creator thread.  The inner session imports the
test module, sets fixtures up and tears them down as pytest always does; only the test body is
handed to the battery's native threads (``_subinterp.call_point``).  Everything crosses back to
the controller as one JSON string.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
import types
from typing import Any

from pytest_subinterp import compat, coverage_inside

LEFTOVER_THREAD_GRACE_S = 0.5
BASE_EXCEPTION_MESSAGE = (
    "the test body raised {name} ({detail}); in a battery a BaseException that would stop the session "
    "fails the call that raised it"
)
# The end of what an inner session printed outside any test (e.g. a conftest that failed to
# import): the reason the controller gives when the test never ran there.
SESSION_OUTPUT_CHARS = 4000


class _Tee:
    """A text stream that also keeps what is written to it (the inner session's own output)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.kept: list[str] = []

    def write(self, text: str) -> int:
        self.kept.append(text)
        try:
            return int(self.stream.write(text))
        except OSError:
            # The test closed the process's fd 1 or 2 (os.close(1)): the session goes on, the
            # text is kept, and the controller blames the test (child.closed_std_fds).
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError:
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def text(self) -> str:
        return "".join(self.kept)[-SESSION_OUTPUT_CHARS:]


class RefusalRecorder:
    """Records every extension module whose loading raised ImportError in this interpreter.

    A package that catches the refusal and falls back to pure Python would otherwise hide that
    its C code never ran here.
    """

    def __init__(self) -> None:
        self.refusals: list[dict[str, Any]] = []

    def install(self) -> None:
        """Wrap ExtensionFileLoader.create_module/exec_module of this interpreter's importlib."""
        from importlib import machinery

        loader = machinery.ExtensionFileLoader
        loader.create_module = self._wrap(loader.create_module)  # type: ignore[method-assign]
        loader.exec_module = self._wrap(loader.exec_module)  # type: ignore[method-assign]

    def _wrap(self, original: Any) -> Any:
        recorder = self

        def recording(loader: Any, arg: Any) -> Any:
            __tracebackhide__ = True  # noqa: F841 - pytest hides this frame
            # create_module gets the spec (its .name), exec_module the module (its __name__: a
            # module's own `name` attribute may be anything, e.g. unicodedata.name).
            name = str(arg.__name__ if isinstance(arg, types.ModuleType) else getattr(arg, "name", "?"))
            try:
                result = original(loader, arg)
            except ImportError as exc:
                recorder.record(name, getattr(loader, "path", None), str(exc), _importer())
                _helper().breadcrumb(f"refused interp={_helper().interpreter_index()} {name} {loader.path}")
                raise
            if original.__name__ == "exec_module":
                # A crash report may only blame CPython when it knows what was loaded (crash.py).
                _helper().breadcrumb(f"loaded interp={_helper().interpreter_index()} {name} {loader.path}")
            return result

        return recording

    def record(self, module: str, path: str | None, message: str, importer: str | None = None) -> None:
        """Remember one refusal (`importer`: the file and line whose import statement asked for it)."""
        self.refusals.append({"module": module, "path": path, "message": message, "importer": importer})


def note_loaded_extensions() -> None:
    """A 'loaded' breadcrumb for each extension module this interpreter already has (a template
    imported pytest's before the recorder was installed): what a crash may be attributed to."""
    from importlib import machinery

    helper = _helper()
    index = helper.interpreter_index()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if path.endswith(tuple(machinery.EXTENSION_SUFFIXES)):
            helper.breadcrumb(f"loaded interp={index} {name} {path}")


def _importer() -> str | None:
    """'file:line' of the innermost frame outside the import machinery and this module: the
    statement that imported the refused module (a conftest, the test module, a package)."""
    import importlib

    machinery = importlib.__file__.rsplit("/", 1)[0] + "/"
    own = __file__.rstrip("c")
    frame: Any = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (filename.startswith("<frozen") or filename.startswith(machinery) or filename.rstrip("c") == own):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


class InnerPlugin:
    """The pytest plugin of the inner session; collects what the controller needs to report."""

    def __init__(self, spec: dict[str, Any], index: int, recorder: RefusalRecorder) -> None:
        self.spec = spec
        self.index = index
        self.recorder = recorder
        self.config: Any = None
        self.reports: list[dict[str, Any]] = []
        self.collect_errors: list[dict[str, str]] = []
        self.not_found: list[str] = []
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self.where: dict[str, dict[str, Any]] = {}
        self.leaks: dict[str, dict[str, Any]] = {}
        self.item_refusals: dict[str, list[dict[str, Any]]] = {}
        self.collection_refusals: list[dict[str, Any]] | None = None  # before the first test
        self.arrived = False
        self.leak_checked = False

    # -- loading ----------------------------------------------------------------------------
    def pytest_addhooks(self, pluginmanager: Any) -> None:
        # Called when pytest.main registers this plugin: before the -p arguments are read.
        from pytest_subinterp.innerplugins import register_shadowing_plugins

        register_shadowing_plugins(self.spec.get("shadowing_plugins", {}), pluginmanager)

    # -- collection -------------------------------------------------------------------------
    def pytest_configure(self, config: Any) -> None:
        from pytest_subinterp import MARKER_LINE

        self.config = config
        config.pluginmanager.register(_call_first(self), "subinterp-inner-call")
        config.addinivalue_line("markers", MARKER_LINE)
        # pytest-rerunfailures is left out here (the controller re-runs whole batteries): its
        # marker stays known, for --strict-markers.
        config.addinivalue_line("markers", "flaky(reruns=1, reruns_delay=0): re-run by the controller")
        # Every marker of the outer session (plugins left out here included: timeout, run-parallel's).
        known = set(config.getini("markers"))
        for line in self.spec.get("markers", ()):
            if line not in known:
                config.addinivalue_line("markers", line)

    def pytest_collection_modifyitems(self, session: Any, config: Any, items: list[Any]) -> None:
        wanted = self.spec["nodeids"]
        by_id = {item.nodeid: item for item in items}
        self.not_found = [nodeid for nodeid in wanted if nodeid not in by_id]
        selected = [by_id[nodeid] for nodeid in wanted if nodeid in by_id]
        deselected = [item for item in items if item.nodeid not in set(wanted)]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = selected

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.collect_errors.append({"nodeid": report.nodeid, "longrepr": str(report.longrepr)})

    # -- running ----------------------------------------------------------------------------
    def pytest_runtest_setup(self, item: Any) -> None:
        _helper().set_phase("setup")

    def pytest_runtest_teardown(self, item: Any) -> None:
        _helper().set_phase("teardown")

    def pytest_runtest_logreport(self, report: Any) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        if data is not None:
            self.reports.append(data)

    def pyfunc_call(self, pyfuncitem: Any) -> Any:
        """Hand the test body to the battery threads; raise the first failure found."""
        import inspect

        testfunction = compat.raw_test_function(pyfuncitem.obj)
        if inspect.isasyncgenfunction(testfunction):
            return None  # pytest (or an async plugin) reports it; the outer side fails it clearly
        funcargs = pyfuncitem.funcargs
        if inspect.iscoroutinefunction(testfunction):
            from pytest_subinterp import coroutines

            testfunction = coroutines.in_own_event_loop(testfunction, coroutines.anyio_backend(funcargs))
        testargs = {arg: funcargs[arg] for arg in compat.fixture_argnames(pyfuncitem)}
        outcomes: dict[tuple[int, int], BaseException] = {}

        def body(thread: int, round_: int) -> str | None:
            try:
                testfunction(**testargs)
            except BaseException as exc:  # noqa: BLE001 - every outcome is reported
                outcomes[(thread, round_)] = exc
                return _format_exception(exc)
            return None

        self.arrived = True
        records = _helper().call_point(body)
        _helper().set_phase("call")
        self.calls[pyfuncitem.nodeid] = records
        if self.spec.get("check_leaks"):
            repeatable = not outcomes

            def call_once() -> None:
                testfunction(**testargs)

            self.check_leaks(pyfuncitem.nodeid, call_once if repeatable else None, pyfuncitem)
        self._raise_outcome(pyfuncitem, records, outcomes)
        return True

    def item_result(self, nodeid: str) -> dict[str, Any]:
        """What the controller needs of one test, in the shape of run()'s output."""
        return {
            "reports": [r for r in self.reports if r.get("nodeid") == nodeid],
            "where": {nodeid: self.where[nodeid]} if nodeid in self.where else {},
            "calls": {nodeid: self.calls[nodeid]} if nodeid in self.calls else {},
            "leak_data": {nodeid: self.leaks[nodeid]} if nodeid in self.leaks else {},
            "item_refusals": {nodeid: self.item_refusals.get(nodeid, [])},
        }

    def write_item_result(self, nodeid: str) -> None:
        """Append one finished test's results to this interpreter's JSON-lines file, so that a
        crash later in the battery (module scope) loses nothing of the tests that finished."""
        directory = self.spec.get("progress_dir")
        if not directory:
            return
        line = json.dumps({"nodeid": nodeid, **self.item_result(nodeid)}, default=repr)
        with open(f"{directory}/inner-{self.spec['config']}-{self.index}.jsonl", "a") as stream:
            stream.write(line + "\n")

    def check_leaks(self, nodeid: str, call_once: Any, item: Any = None) -> None:
        """Measure the test's leaks while every interpreter is alive (leaks/measure.py); every
        interpreter calls this once per test, to keep the barriers in step."""
        from pytest_subinterp.leaks import measure

        self.leak_checked = True
        accumulators = Accumulators(item) if item is not None and call_once is not None else None
        try:
            self.leaks[nodeid] = measure.measure_test(_helper(), self.index, call_once,
                                                      accumulators.reset if accumulators else None)
        finally:
            if accumulators is not None:
                accumulators.restore()

    def _raise_outcome(
        self, item: Any, records: list[dict[str, Any]], outcomes: dict[tuple[int, int], BaseException]
    ) -> None:
        import pytest

        skip_type = pytest.skip.Exception
        ordered = sorted(outcomes.items())
        failures = [(key, exc) for key, exc in ordered if not isinstance(exc, skip_type)]
        skips = [(key, exc) for key, exc in ordered if isinstance(exc, skip_type)]
        config = self.spec["config"]
        if failures:
            (thread, round_), first = failures[0]
            self.where[item.nodeid] = {
                "interpreter": self.index,
                "thread": thread,
                "round": round_,
                "failed_calls": len(failures),
                "calls": len(records),
            }
            for (other_thread, other_round), exc in failures:
                # Every failed call's traceback, the first included: the controller shows each
                # distinct one once, with the calls it covers (reports._failure_groups).
                item.add_report_section(
                    "call",
                    f"failure: {config} interpreter {self.index + 1}, thread {other_thread + 1}, "
                    f"round {other_round + 1}",
                    _format_exception(exc),
                )
            if not isinstance(first, (Exception, pytest.fail.Exception, pytest.xfail.Exception)):
                # KeyboardInterrupt, SystemExit, GeneratorExit, pytest.exit(): raised here they
                # would end this interpreter's pytest session with no report of the test.  In a
                # battery they are what the body did in that call: a failure of the call.
                message = BASE_EXCEPTION_MESSAGE.format(name=type(first).__name__, detail=str(first) or "no message")
                pytest.fail(f"{message}\n{_format_exception(first)}", pytrace=False)
            raise first
        if skips and len(skips) == len(records):
            raise skips[0][1]


class Accumulators:
    """What keeps growing by design while the leak detector repeats a test body with one set of
    fixtures: pytest's log capture handlers (and caplog's), the warnings being recorded (pytest's
    own and recwarn's), mocker's patchers (kept until its teardown), captured output (capsys,
    capfd).  reset() empties them before each measurement sample; restore() puts back what the
    battery's calls had left in them, so that the report shows it."""

    def __init__(self, item: Any) -> None:
        import logging

        # pytest's LogCaptureHandler / _LiveLoggingNullHandler: StreamHandlers with a records list.
        self.handlers: list[tuple[Any, Any, Any]] = [
            (handler, handler.records, getattr(handler, "stream", None)) for handler in logging.getLogger().handlers
            if type(handler).__module__ == "_pytest.logging" and hasattr(handler, "records")]
        self.warnings = compat.warnings_record_list()
        self.kept_warnings = len(self.warnings) if self.warnings is not None else 0
        values = list(getattr(item, "funcargs", {}).values())
        self.mockers = [value for value in values
                        if type(value).__module__.startswith("pytest_mock") and hasattr(value, "stopall")]
        self.captures = [value for value in values if type(value).__name__ == "CaptureFixture"
                         and hasattr(value, "readouterr")]
        self.captured: list[tuple[Any, Any]] = []
        for capture in self.captures:
            self.captured.append(capture.readouterr())

    def reset(self) -> None:
        """Empty every accumulator (before a sample of the leak measurement)."""
        import io

        for handler, _records, _stream in self.handlers:
            handler.records = []
            handler.stream = io.StringIO()
        if self.warnings is not None:
            del self.warnings[self.kept_warnings:]
        for mocker in self.mockers:
            mocker.stopall()
        for capture in self.captures:
            capture.readouterr()

    def restore(self) -> None:
        """Put back what the battery's own calls left (the repetitions' additions are dropped)."""
        self.reset()
        for handler, records, stream in self.handlers:
            handler.records = records
            handler.stream = stream
        for out, err in self.captured:
            if out:
                sys.stdout.write(out)
            if err:
                sys.stderr.write(err)


def _protocol_wrapper(plugin: InnerPlugin) -> Any:
    """A hookwrapper object keeping the rendezvous in step: one arrival per selected test."""
    import pytest

    class Protocol:
        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Any:
            plugin.arrived = False
            plugin.leak_checked = False
            refusals_before = len(plugin.recorder.refusals)
            if plugin.collection_refusals is None:
                plugin.collection_refusals = list(plugin.recorder.refusals)
            _helper().breadcrumb(f"item {item.nodeid}")
            try:
                return (yield)
            finally:
                if not plugin.arrived:
                    # Setup failed or skipped here: arrive empty-handed so the other
                    # interpreters are not kept waiting for this one.
                    _helper().call_point(None)
                if plugin.spec.get("check_leaks") and not plugin.leak_checked:
                    plugin.check_leaks(item.nodeid, None)  # keep the barriers in step
                plugin.item_refusals[item.nodeid] = plugin.recorder.refusals[refusals_before:]
                plugin.write_item_result(item.nodeid)

    return Protocol()


def _call_first(plugin: InnerPlugin) -> Any:
    """The test call, first of every tryfirst pytest_pyfunc_call: registered at configure time,
    after the -p plugins (pluggy calls the later of two tryfirst hooks first), so that a plugin
    that runs coroutine tests itself (anyio: once, in the creator thread) does not take the call
    from the battery threads."""
    import pytest

    class CallFirst:
        @pytest.hookimpl(tryfirst=True)
        def pytest_pyfunc_call(self, pyfuncitem: Any) -> Any:
            return plugin.pyfunc_call(pyfuncitem)

    return CallFirst()


def _helper() -> Any:
    from pytest_subinterp import _subinterp

    return _subinterp


def _format_exception(exc: BaseException) -> str:
    """The traceback of a failed call, without pytest-subinterp's own frames."""
    formatted = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    own = __file__.rstrip("c")
    frames = [frame for frame in formatted.stack if frame.filename.rstrip("c") != own]
    formatted.stack = traceback.StackSummary.from_list(frames)
    return "".join(formatted.format())


def _note_single_phase_modules() -> None:
    """Leave a breadcrumb per single-phase module loaded here: CPython's own crashes at
    interpreter end involve them (see quirks.py), and the child may not live to report it."""
    from pytest_subinterp.leaks.measure import project_extension_modules

    helper = _helper()
    for name, module in project_extension_modules():  # readline etc. are CPython's, not the project's
        if helper.is_single_phase(module):
            helper.breadcrumb(f"single-phase {name}")


def leftover_threads() -> list[str]:
    """Names of Python threads of this interpreter still alive after the session."""
    me = threading.current_thread()
    main = threading.main_thread()  # a placeholder object on foreign threads; never a real thread
    alive = [
        t
        for t in threading.enumerate()
        # _DummyThread: the battery's own native threads, seen by threading.current_thread()
        if t is not me and t is not main and not compat.is_dummy_thread(t) and t.is_alive()
    ]
    deadline = time.monotonic() + LEFTOVER_THREAD_GRACE_S
    for thread in alive:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [thread.name for thread in alive if thread.is_alive()]


def block_modules(spec: dict[str, Any]) -> None:
    """Put the modules `spec` blocks to None in sys.modules, before anything imports them."""
    for name in spec.get("block_modules", ()):
        # CPython defects, see quirks.py: keep the pure-Python fallbacks in this interpreter.
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def run(spec_json: str, index: int) -> str:
    """Entry point called by the C helper in interpreter `index`; returns JSON."""
    spec = json.loads(spec_json)
    recorder = RefusalRecorder()
    _helper().set_phase("collect")
    output: dict[str, Any] = {"index": index, "config": spec["config"]}
    plugin = InnerPlugin(spec, index, recorder)
    cov = None
    try:
        if spec.get("template"):
            from pytest_subinterp.templates import interpreter as template

            template.adopt_template()
        block_modules(spec)
        # Before the recorder: coverage.py's own C tracer, refused by isolated interpreters (it
        # then uses sys.monitoring), is not a module of the project under test.
        cov = coverage_inside.start(spec.get("coverage"))
        recorder.install()
        note_loaded_extensions()
        import pytest

        compat.tolerate_unusable_tracemalloc()
        args = [*spec["args"], f"--basetemp={spec['basetemp']}/interp-{index}"]
        # sys.stdout/stderr are this interpreter's own: keep what pytest.main prints outside tests.
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = tee_out, tee_err = _Tee(out), _Tee(err)
        try:
            output["exitcode"] = int(pytest.main(args, plugins=[plugin, _protocol_wrapper(plugin)]))
        finally:
            sys.stdout, sys.stderr = out, err
            output["session_output"] = tee_out.text() + tee_err.text()
    except BaseException:  # noqa: BLE001 - reported by the controller, never lost
        output["error"] = traceback.format_exc()
    coverage_inside.stop(cov)
    _helper().set_phase("finish")
    if spec.get("template"):
        from pytest_subinterp.templates import interpreter as template

        template.before_end(spec)
    _note_single_phase_modules()
    output.update(
        reports=plugin.reports,
        collect_errors=plugin.collect_errors,
        not_found=plugin.not_found,
        calls=plugin.calls,
        where=plugin.where,
        leak_data=plugin.leaks,
        refusals=recorder.refusals,
        item_refusals=plugin.item_refusals,
        collection_refusals=plugin.collection_refusals if plugin.collection_refusals is not None
        else recorder.refusals,
        leftover_threads=leftover_threads(),
    )
    return json.dumps(output, default=repr)
