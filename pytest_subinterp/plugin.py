"""pytest hooks of pytest-subinterp: options, marker, and the protocol of marked tests.

Thin delegation only: options.py resolves settings, markers.py checks marker arguments,
session.py runs batteries, reports.py builds reports, terminal.py summarises verdicts.  Every
pytest run imports this module, so all but options.py are imported only when a test is marked.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_subinterp import MARKER_LINE, MARKER_NAME, options

if TYPE_CHECKING:
    from pytest_subinterp.session import BatteryController

# Annotated rather than subscripted: StashKey["..."] would compile a ForwardRef at every import.
SETTINGS_KEY: pytest.StashKey[options.Settings] = pytest.StashKey()
CONTROLLER_KEY: pytest.StashKey[BatteryController] = pytest.StashKey()
ITEM_SETTINGS_KEY: pytest.StashKey[options.Settings] = pytest.StashKey()
MARKED_ITEMS_KEY: pytest.StashKey[set[pytest.Item]] = pytest.StashKey()
SUMMARY_PLUGIN = "subinterp-summary"


class SubinterpFallbackWarning(pytest.PytestWarning):
    """An extension module was refused by a sub-interpreter and its package fell back silently."""


class SubinterpLeakWarning(pytest.PytestWarning):
    """A state leak found with --subinterp-leaks=warn."""


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_LINE)
    config.stash[SETTINGS_KEY] = options.resolve(config)
    if _is_xdist_controller(config):
        # Workers run the batteries and send the reports here: summarise them.
        _register_summary(config)
    if config.get_verbosity() > 0:  # the shape only changes the verbose word
        from pytest_subinterp.terminal import ShapeStatus

        config.pluginmanager.register(ShapeStatus(), "subinterp-shape-status")
    report_path = config.stash[SETTINGS_KEY].report
    if report_path and not hasattr(config, "workerinput"):  # xdist workers send reports instead
        from pytest_subinterp.jsonreport import JsonReport, check_report_path

        path = Path(report_path)
        if not path.is_absolute():
            path = config.invocation_params.dir / path
        check_report_path(path)
        config.pluginmanager.register(JsonReport(path), "subinterp-jsonreport")


def pytest_unconfigure(config: pytest.Config) -> None:
    controller = config.stash.get(CONTROLLER_KEY, None)
    if controller is not None:
        controller.close()
        del config.stash[CONTROLLER_KEY]


def _is_xdist_controller(config: pytest.Config) -> bool:
    return getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput")


def _register_summary(config: pytest.Config) -> None:
    """The verdict summary, registered once batteries run (or reports of them can arrive):
    its report hook would otherwise run for every report of a session of unmarked tests."""
    if not config.pluginmanager.has_plugin(SUMMARY_PLUGIN):
        from pytest_subinterp.terminal import VerdictSummary

        config.pluginmanager.register(VerdictSummary(), SUMMARY_PLUGIN)


def _marked(item: pytest.Item, settings: options.Settings, parents: dict[int, bool] | None = None) -> bool:
    """item.get_closest_marker(MARKER_NAME), with the parent's answer computed once per parent
    (`parents`; None: ask the parent itself): for every unmarked test pytest collects."""
    if settings.disabled:
        return False
    if settings.all or (item.own_markers and any(mark.name == MARKER_NAME for mark in item.own_markers)):
        return True
    parent = item.parent
    if parent is None:
        return False
    if parents is None:
        return parent.get_closest_marker(MARKER_NAME) is not None
    marked = parents.get(id(parent))
    if marked is None:
        marked = parents[id(parent)] = parent.get_closest_marker(MARKER_NAME) is not None
    return marked


def _wants_battery(item: pytest.Item, settings: options.Settings) -> bool:
    """Whether the item runs as batteries.  Decided once, when collection is finished (markers
    added by pytest_collection_modifyitems count), and kept as the set of marked items: unmarked
    tests must cost nothing measurable, and get_closest_marker walks the node chain."""
    marked = item.config.stash.get(MARKED_ITEMS_KEY, None)
    if marked is None:  # an item pytest_collection_finish has not seen
        return _marked(item, settings)
    return item in marked


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """Check the marker arguments of the tests a collector made: a bad one fails the collector's
    collection with a message naming the test, as pytest's own bad marks do.  Once per collector
    (module, class), not per name pytest looks at: unmarked tests must cost nothing measurable."""
    report = yield
    settings = collector.config.stash.get(SETTINGS_KEY, None)
    if settings is None or not report.passed:
        return report
    parents: dict[int, bool] = {}
    for node in report.result:
        if isinstance(node, pytest.Item) and _marked(node, settings, parents):
            from pytest_subinterp.markers import MarkerError, marker_settings

            try:
                node.stash[ITEM_SETTINGS_KEY] = marker_settings(node, settings)
            except MarkerError as exc:
                report.outcome = "failed"
                report.longrepr = str(exc)
                report.result = []
                break
    return report


def _item_settings(item: pytest.Item, settings: options.Settings) -> options.Settings:
    cached = item.stash.get(ITEM_SETTINGS_KEY, None)
    if cached is not None:
        return cached
    from pytest_subinterp.markers import MarkerError, marker_settings

    try:
        return marker_settings(item, settings)
    except MarkerError as exc:  # items made by non-python collectors
        raise pytest.UsageError(str(exc)) from None


def _controller(config: pytest.Config, settings: options.Settings) -> BatteryController:
    controller = config.stash.get(CONTROLLER_KEY, None)
    if controller is None:
        from pytest_subinterp.session import BatteryController

        controller = BatteryController(config, settings)
        config.stash[CONTROLLER_KEY] = controller
        _register_summary(config)
    return controller


def pytest_sessionstart(session: pytest.Session) -> None:
    """With --subinterp-all every test runs batteries: let the zygote import pytest and prepare
    its template interpreters while pytest collects."""
    settings = session.config.stash.get(SETTINGS_KEY, None)
    if settings is not None and settings.all and not settings.disabled and not session.config.option.collectonly:
        _controller(session.config, settings).start_early([settings])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Once the marked tests are known, start the zygote for their shapes (if not started yet),
    and probe which of the user's plugins load in their configs (before the terminal reporter
    shows pytest_report_collectionfinish's lines)."""
    settings = session.config.stash.get(SETTINGS_KEY, None)
    if settings is None or settings.disabled or session.config.option.collectonly:
        return
    parents: dict[int, bool] = {}
    marked = [item for item in session.items if _marked(item, settings, parents)]
    session.config.stash[MARKED_ITEMS_KEY] = set(marked)
    wanted: dict[tuple[str, int], options.Settings] = {}
    for item in marked:
        item_settings = item.stash.get(ITEM_SETTINGS_KEY, None) or settings
        wanted.setdefault((item_settings.config, item_settings.interpreters), item_settings)
    if wanted:
        controller = _controller(session.config, settings)
        controller.start_early(list(wanted.values()))
        try:
            helper_error = controller.launcher.ensure_started()
        except (RuntimeError, EOFError, OSError):
            return  # the zygote cannot start: each marked test reports why (session._early_reports)
        if helper_error is None:
            from pytest_subinterp.markers import configs_to_run

            for shape in wanted.values():
                for config_name in configs_to_run(shape)[0]:
                    controller.probe_plugins(config_name, shape.timeout)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker's header is never shown: send its plugin probe's line to the controller
    (terminal.VerdictSummary shows it; xdist sends workeroutput after this hook)."""
    from pytest_subinterp.terminal import WORKER_LEFT_OUT_KEY

    workeroutput = getattr(session.config, "workeroutput", None)
    controller = session.config.stash.get(CONTROLLER_KEY, None)
    if workeroutput is not None and controller is not None:
        workeroutput[WORKER_LEFT_OUT_KEY] = controller.plugin_probe.header_lines()


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    """One line naming the plugins left out of the sub-interpreters, and why."""
    controller = config.stash.get(CONTROLLER_KEY, None)
    return controller.plugin_probe.header_lines() if controller is not None else []


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """pytest-timeout's timer never runs around a battery: its timeout is the battery's
    (_effective_settings), which reports the hang with its stacks and kills the child."""
    ours = item.config.stash.get(SETTINGS_KEY, None)
    return True if ours is not None and _wants_battery(item, ours) else None


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool | None:
    """No pytest-timeout timer was set for a battery (pytest_timeout_set_timer)."""
    ours = item.config.stash.get(SETTINGS_KEY, None)
    return True if ours is not None and _wants_battery(item, ours) else None


def _effective_settings(item: pytest.Item, item_settings: options.Settings) -> tuple[options.Settings, list[str]]:
    """The test's settings after the user's other plugins have their say, and notes saying so:
    pytest-timeout's timeout (the smaller of the two wins) and pytest-run-parallel's
    thread_unsafe / parallel_threads(n) (threads capped; rounds raised so that every fresh
    interpreter still runs the body)."""
    from pytest_subinterp import compat, messages

    notes = []
    foreign = compat.pytest_timeout_of(item)
    if foreign is not None:
        timeout, where = foreign
        if timeout < item_settings.timeout:
            notes.append(messages.TIMEOUT_FROM_PYTEST_TIMEOUT.format(timeout=timeout, where=where,
                                                                     ours=item_settings.timeout))
            item_settings = item_settings.replace(timeout=timeout)
        else:
            notes.append(messages.TIMEOUT_FROM_SUBINTERP.format(timeout=timeout, where=where,
                                                                ours=item_settings.timeout))
    cap, why = _thread_cap(item)
    if cap is not None and cap < item_settings.threads:
        rounds = max(item_settings.rounds, -(-item_settings.interpreters // cap))
        item_settings = item_settings.replace(threads=cap, rounds=rounds)
        notes.append(messages.ONE_THREAD_AT_A_TIME.format(threads=cap, interpreters=item_settings.interpreters,
                                                          why=why))
    return item_settings, notes


def _thread_cap(item: pytest.Item) -> tuple[int | None, str]:
    """Threads pytest-run-parallel's markers allow (None: no cap): thread_unsafe -> 1,
    parallel_threads(n) -> n (its 'auto' is no cap)."""
    unsafe = item.get_closest_marker("thread_unsafe")
    if unsafe is not None:
        reason = unsafe.kwargs.get("reason") or (unsafe.args[0] if unsafe.args else None)
        return 1, f"@pytest.mark.thread_unsafe{f': {reason}' if reason else ''}"
    limit = item.get_closest_marker("parallel_threads")
    if limit is not None and limit.args:
        value = limit.args[0]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value, f"@pytest.mark.parallel_threads({value})"
    return None, ""


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """Run a marked test as batteries in child processes; unmarked tests are left to pytest."""
    settings = item.config.stash.get(SETTINGS_KEY, None)
    if settings is None or not _wants_battery(item, settings):
        return None
    item_settings, notes = _effective_settings(item, _item_settings(item, settings))
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    controller = _controller(item.config, settings)
    reports = controller.module_results.pop(item.nodeid, None)
    if reports is None:
        group = _module_group(item, settings, item_settings)
        results = controller.run_group(group, item_settings, notes)
        reports = results.pop(item.nodeid)
        controller.module_results.update(results)  # reported when pytest reaches each test
    reports = _with_reruns(item, reports, controller, item_settings)
    _teardown_outer_stack(item, nextitem, reports[-1])
    for report in reports:
        if report.when == "call" and report.passed:
            _emit_warnings(item, report)
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _with_reruns(item: pytest.Item, reports: list[pytest.TestReport], controller: BatteryController,
                 item_settings: options.Settings) -> list[pytest.TestReport]:
    """pytest-rerunfailures (--reruns N, @pytest.mark.flaky(reruns=N)): a failed battery runs again,
    whole, in new interpreters, up to N more times; each failed attempt is logged as a 'rerun'
    report (as rerunfailures does) and the last attempt's reports are the test's result.  Inside
    the interpreters rerunfailures is never loaded: it would call the body again outside the
    battery's rendezvous."""
    from pytest_subinterp import compat

    plan = compat.rerun_plan(item)
    if plan is None:
        return reports
    reruns, delay = plan
    attempt = 0
    while attempt < reruns and any(report.failed for report in reports):
        attempt += 1
        for report in reports:
            report.rerun = attempt - 1  # type: ignore[attr-defined]
            for attribute in ("subinterp_verdict", "subinterp_record"):
                if hasattr(report, attribute):
                    delattr(report, attribute)  # only the last attempt counts in the summary and JSON
            if report.failed:
                report.outcome = "rerun"  # type: ignore[assignment]
            item.ihook.pytest_runtest_logreport(report=report)
        if delay > 0:
            import time

            time.sleep(delay)
        reports = controller.run_group([item], item_settings.replace(scope="test"))[item.nodeid]
    for report in reports:
        report.rerun = attempt  # type: ignore[attr-defined]
    return reports


def _module_group(item: pytest.Item, settings: options.Settings,
                  item_settings: options.Settings) -> list[pytest.Item]:
    """The test and, with scope 'module', the tests after it in the same module that share its
    settings: they run in one set of fresh interpreters."""
    if item_settings.scope != "module":
        return [item]
    items = item.session.items
    try:
        start = items.index(item)
    except ValueError:
        return [item]
    module = item.getparent(pytest.Module)
    group = [item]
    for other in items[start + 1:]:
        if other.getparent(pytest.Module) is not module or not _wants_battery(other, settings):
            break
        if _effective_settings(other, _item_settings(other, settings))[0] != item_settings:
            break
        group.append(other)
    return group


def _teardown_outer_stack(item: pytest.Item, nextitem: pytest.Item | None, teardown: pytest.TestReport) -> None:
    """Finalize the main process's fixtures that the next test does not share (as pytest's own
    teardown phase does); an error there fails this test's teardown, as in plain pytest."""
    from pytest_subinterp import compat

    info = pytest.CallInfo.from_call(lambda: compat.teardown_exact(item, nextitem), when="teardown")
    if info.excinfo is not None:
        teardown.outcome = "failed"
        teardown.longrepr = compat.repr_failure(item, info.excinfo)


def _emit_warnings(item: pytest.Item, report: pytest.TestReport) -> None:
    pending: list[tuple[type[pytest.PytestWarning], str]] = [
        (SubinterpFallbackWarning, text) for text in getattr(report, "subinterp_warnings", ())]
    pending += [(SubinterpLeakWarning, text) for text in getattr(report, "subinterp_leak_warnings", ())]
    for category, text in pending:
        try:
            warnings.warn_explicit(category(text), category, str(item.path), item.location[1] or 0)
        except category:
            # -W error: the warning is an error, so the test fails with it.
            report.outcome = "failed"
            report.longrepr = text


