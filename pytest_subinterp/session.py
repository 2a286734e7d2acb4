"""The per-item protocol on the controller side: run the batteries of one test, collect results.

For each config the test asks for, one battery runs in a fresh child process (workermanage.py);
what comes back (the C helper's result, the inner sessions' reports, the breadcrumbs and the
child's exit status) is analysed here into a ``reports.Collected``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_subinterp import child, compat, coverage_inside, innerplugins, lifecycle, messages, plugins, quirks, reports
from pytest_subinterp.analysis import Analyser, BatteryOutcome
from pytest_subinterp.leaks import policy
from pytest_subinterp.markers import configs_to_run
from pytest_subinterp.options import Settings
from pytest_subinterp.proof import Proof
from pytest_subinterp.templates.start import make_start
from pytest_subinterp.verdicts import Verdict
from pytest_subinterp.workermanage import make_launcher

if TYPE_CHECKING:
    from pytest_subinterp.protocol import BatteryRequest, InnerSpec

# Plugins never loaded inside an interpreter: they manage processes or the session itself, or
# are process-global (faulthandler: refused by isolated interpreters, and it would replace the
# child's crash handler).
INNER_BLOCKED_PLUGINS = (
    "subinterp",
    "xdist",
    "xdist.looponfail",
    "cacheprovider",
    "faulthandler",
    "pastebin",
    "junitxml",
    "resultlog",
    "benchmark",
    "forked",
    "timeout",
    "run-parallel",
    # The controller re-runs a failed battery whole (plugin._with_reruns); inside, a rerun would
    # call the body again outside the battery's rendezvous (every call "not run").
    "rerunfailures",
    # Not usable inside an interpreter, and each costs start-up time (debugging imports pdb):
    "debugging",
    "doctest",
    "stepwise",
    "setuponly",
    "setupplan",
)


def _read_item_lines(directory: Path, config_name: str) -> dict[int, list[dict[str, Any]]]:
    """Per interpreter, the results the inner sessions wrote test by test (inner.py)."""
    lines: dict[int, list[dict[str, Any]]] = {}
    for path in directory.glob(f"inner-{config_name}-*.jsonl"):
        index = int(path.stem.rsplit("-", 1)[1])
        entries = []
        for line in child.read_file(path).splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                break  # the child died while writing this line
        lines[index] = entries
    return lines


CONTROL_TEST = "def test_subinterp_control():\n    pass\n"
CONTROL_NODEID = "test_subinterp_control.py::test_subinterp_control"


def inner_args(config: pytest.Config) -> list[str]:
    """The pytest arguments of every inner session, derived from the outer configuration (the
    plugins the probe keeps for a config are added per battery: innerplugins.plugin_args)."""
    args = [f"--rootdir={config.rootpath}"]
    if config.inipath is not None:
        args += ["-c", str(config.inipath)]
    return [*args, *common_inner_args(config)]


def common_inner_args(config: pytest.Config) -> list[str]:
    """Inner arguments shared by the test's sessions and the control's."""
    args = ["-qq", "--no-header", "--capture=sys", "-o", "addopts="]
    for name in INNER_BLOCKED_PLUGINS:
        args += ["-p", f"no:{name}"]
    option = config.option
    if getattr(option, "importmode", None):
        args.append(f"--import-mode={option.importmode}")
    if getattr(option, "confcutdir", None):
        args.append(f"--confcutdir={option.confcutdir}")
    if getattr(option, "noconftest", False):
        args.append("--noconftest")
    for value in getattr(option, "pythonwarnings", None) or ():
        args += ["-W", value]
    for value in getattr(option, "override_ini", None) or ():
        args += ["-o", value]
    return args


def _is_async_plugin_item(item: pytest.Item) -> bool:
    """A coroutine test item of pytest-asyncio: the inner session hands the coroutine function
    itself to the battery threads, each driving it in its own event loop (inner.py)."""
    import inspect

    return (type(item).__module__.startswith("pytest_asyncio")
            and inspect.iscoroutinefunction(compat.raw_test_function(getattr(item, "obj", None))))


def cause_of(passed_one_thread_each: bool, passed_somewhere_alone: bool) -> str:
    """'thread-safety' when the test passed with one thread per interpreter; else 'isolation'
    when it passed without the other interpreters (in some interpreter of that battery, or in a
    single interpreter from a single thread): state shared between interpreters is the
    evidence; else 'sub-interpreter': it fails even alone in one interpreter (the code does not
    work in a sub-interpreter, or the test fails anyway)."""
    if passed_one_thread_each:
        return "thread-safety"
    return "isolation" if passed_somewhere_alone else "sub-interpreter"


def _skip_location(item: pytest.Item, reason: str | None) -> tuple[str, int, str]:
    """A skip's (path, line, reason) as pytest shows it: 1-based line of the test."""
    return (str(item.path), (item.location[1] or 0) + 1, reason or "")


class BatteryController:
    """Runs batteries for the outer session; one per pytest process (xdist workers included)."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.workdir = Path(tempfile.mkdtemp(prefix="pytest-subinterp-"))
        # Every process of the session carries this token (lifecycle.py); SIGTERM ends the
        # session as Ctrl-C does, so that the interrupted path writes every report.
        self.token = lifecycle.session_token()
        self.terminate = lifecycle.TerminateAsInterrupt()
        self.terminate.install()
        self.launcher = make_launcher(config.invocation_params.dir, self.workdir, settings.start, self.token)
        # Which batteries run again before a leak is reported (leaks/policy.py).
        self.reruns = policy.LeakPolicy()
        # Fresh or template interpreters: the strategy fills in each request (templates/start.py).
        self.start_strategy = make_start(settings.start, self.launcher, self._new_battery_dir,
                                         INNER_BLOCKED_PLUGINS, self.reruns)
        self.counter = 0
        self.inner_args = inner_args(config)
        self.analyser = Analyser(config, settings.strict)
        self._basetemp: Path | None = None
        # Reports of tests already run with an earlier test of their module (module scope).
        self.module_results: dict[str, list[pytest.TestReport]] = {}
        self.control_dir = self.workdir / "control"
        self.control_dir.mkdir()
        (self.control_dir / "test_subinterp_control.py").write_text(CONTROL_TEST)
        (self.control_dir / "pytest.ini").write_text("[pytest]\n")
        self.control_base_args = [f"--rootdir={self.control_dir}", "-c", str(self.control_dir / "pytest.ini"),
                                  *common_inner_args(config)]
        self.control_test = str(self.control_dir / "test_subinterp_control.py")
        self.markers = plugins.marker_lines(config)
        # The user's plugins: which load inside is probed once per config (plugins.py).
        self.plugin_probe = plugins.PluginProbe(plugins.outer_plugins(config, INNER_BLOCKED_PLUGINS),
                                                self.launcher.run, self._new_battery_dir)

    def probe_plugins(self, config_name: str, timeout: float) -> plugins.ProbeResult:
        """Which of the user's plugins load in `config_name` interpreters (probed once)."""
        base = {
            "cwd": str(self.config.invocation_params.dir),
            "timeout": timeout,
            "spec": {"config": config_name, "nodeids": [], "block_modules": quirks.blocked_modules(config_name),
                     "args": self.control_base_args, "control_test": self.control_test,
                     "basetemp": str(self._battery_basetemp(f"probe-{config_name}"))},
        }
        return self.plugin_probe.result(config_name, base)

    def close(self) -> None:
        """Stop the running battery and the zygote, and remove the battery directories."""
        try:
            self.launcher.close()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.terminate.uninstall()

    def basetemp(self) -> Path:
        """Where inner sessions put tmp_path directories (inside the outer basetemp)."""
        if self._basetemp is None:
            self._basetemp = compat.tmp_path_factory(self.config).getbasetemp() / "subinterp"
        return self._basetemp

    def _battery_basetemp(self, name: str) -> Path:
        path = self.basetemp() / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- running ----------------------------------------------------------------------------
    def run_item(self, item: pytest.Item, settings: Settings) -> list[pytest.TestReport]:
        """Run the batteries of one test; returns its reports (exactly one per phase)."""
        return self.run_group([item], settings)[item.nodeid]

    def run_group(self, items: list[pytest.Item], settings: Settings,
                  notes: list[str] | tuple[str, ...] = ()) -> dict[str, list[pytest.TestReport]]:
        """Run tests of one module that share fresh interpreters (one test unless
        --subinterp-scope=module); returns each test's reports (exactly one per phase).
        `notes`: what other plugins changed in `settings` (shown in the call report)."""
        results: dict[str, list[pytest.TestReport]] = {}
        runnable = []
        for item in items:
            early = self._early_reports(item, settings)
            if early is not None:
                results[item.nodeid] = early
            else:
                runnable.append(item)
        if not runnable:
            return results
        configs, reason = configs_to_run(settings)
        collected = {item.nodeid: reports.Collected() for item in runnable}
        for entry in collected.values():
            entry.leak_policy = settings.leaks
            entry.shape = f"{settings.interpreters}x{settings.threads}x{settings.rounds} {'+'.join(configs)}"
            if settings.scope == "module" and len(runnable) > 1:
                entry.shape += f", module scope ({len(runnable)} tests)"
            if reason:
                entry.notes.append(("subinterp", reason))
            entry.notes += [("subinterp", note) for note in notes]
        for config_name in configs:
            self._run_config(runnable, settings, config_name, collected)
            for item in runnable:
                self._find_cause(item, settings, config_name, collected[item.nodeid])
        where = {"n_interps": settings.interpreters, "n_threads": settings.threads, "n_rounds": settings.rounds}
        for item in runnable:
            entry = collected[item.nodeid]
            self.analyser.report_fallbacks(entry)
            entry.properties += [
                ("subinterp_configs", ",".join(configs)),
                ("subinterp_interpreters", settings.interpreters),
                ("subinterp_threads", settings.threads),
                ("subinterp_rounds", settings.rounds),
                ("subinterp_verdict", entry.verdict.value),
            ]
            results[item.nodeid] = reports.build_reports(item, entry, where)
        return results

    def _find_cause(self, item: pytest.Item, settings: Settings, config_name: str,
                    collected: reports.Collected) -> None:
        """Thread safety or isolation?  When the test failed in some calls of this config, a
        confirmation battery runs it with one thread per interpreter (K threads, one round): if
        that passes, the failure needs several threads in one interpreter.  If it fails too, it
        is an isolation failure only when the test passes without the other interpreters: in some
        interpreter of that battery, or else in a second confirmation battery of one interpreter
        and one thread; a test that fails even there fails in any sub-interpreter."""
        failed = [proof for proof in collected.proofs if proof.config == config_name and "failed" in proof.problems]
        reported_failed = any(report.failed for entry in collected.interpreters for report in entry.reports.values())
        if not failed or not reported_failed or collected.cause is not None or any(
                s.verdict in (Verdict.CRASHED, Verdict.HUNG) for s in collected.synthetic):
            return
        if settings.threads <= settings.interpreters and settings.rounds == 1:
            # the battery itself already ran one thread per interpreter
            passed, evidence = False, [proof for proof in collected.proofs if proof.config == config_name]
        else:
            passed, evidence = self._confirm(item, settings.replace(threads=settings.interpreters, rounds=1),
                                             config_name)
        alone = any(proof.interpreters_passed() for proof in evidence)
        if not passed and not alone and settings.interpreters > 1:
            alone = self._confirm(item, settings.replace(interpreters=1, threads=1, rounds=1), config_name)[0]
        collected.cause = cause_of(passed, alone)
        collected.notes.append(("subinterp cause", messages.CAUSES[collected.cause].format(
            config=config_name, interps=settings.interpreters)))

    def _confirm(self, item: pytest.Item, shape: Settings, config_name: str) -> tuple[bool, list[Proof]]:
        """A confirmation battery of this shape (leak checks off): whether every call passed,
        and its proofs (none when it crashed or hung)."""
        confirm = {item.nodeid: reports.Collected()}
        self._run_config([item], shape.replace(leaks="off", scope="test"), config_name, confirm)
        outcome = confirm[item.nodeid]
        if outcome.synthetic:
            return False, []
        proofs = [proof for proof in outcome.proofs if proof.config == config_name]
        return bool(proofs) and all(proof.ok for proof in proofs), proofs

    def _early_reports(self, item: pytest.Item, settings: Settings) -> list[pytest.TestReport] | None:
        """Reports for a test that needs no battery (skipped, unrunnable, or needing a plugin
        that cannot load in its interpreters), else None."""
        unsupported = self._unsupported(item)
        if unsupported is not None:
            if self.settings.all and item.get_closest_marker("subinterp") is None:
                return reports.simple_reports(item, "skipped", _skip_location(item, unsupported))
            return reports.simple_reports(item, "failed", unsupported)
        configs, reason = configs_to_run(settings)
        if not configs:
            return reports.simple_reports(item, "skipped", _skip_location(item, reason))
        try:
            helper_error = self.launcher.ensure_started()
        except RuntimeError as exc:  # the zygote could not start: this test's error, not pytest's
            return reports.simple_reports(item, "failed", messages.INFRASTRUCTURE.format(nodeid=item.nodeid,
                                                                                         error=exc))
        if helper_error:
            return reports.simple_reports(item, "failed", messages.HELPER_MISSING.format(error=helper_error))
        for config_name in configs:
            self.probe_plugins(config_name, settings.timeout)
            needed = self.plugin_probe.needed_left_out(item, config_name)
            if needed is not None:
                plugin, via, why = needed
                return reports.simple_reports(item, "failed", messages.PLUGIN_LEFT_OUT_NEEDED.format(
                    nodeid=item.nodeid, plugin=plugin.name, dist=plugin.dist or plugin.module, via=via,
                    config=config_name, reason=why))
        return None

    def _run_config(self, items: list[pytest.Item], settings: Settings, config_name: str,
                    collected: dict[str, reports.Collected]) -> None:
        """Batteries of one config until every test has a result: after a crash or hang, the
        tests that finished keep their results, the running one gets the crash, and the rest
        run again in a new child."""
        pending = list(items)
        while pending:
            outcome = self._run_battery(pending, settings, config_name)
            if not outcome.died:
                for position, item in enumerate(pending):
                    self.analyser.analyse(item, settings, outcome, collected[item.nodeid],
                                  last=item is pending[-1], generation=position + 1)
                return
            finished = outcome.finished_items([item.nodeid for item in pending])
            for position, item in enumerate(pending[:len(finished)]):
                self.analyser.analyse_finished(item, settings, outcome, collected[item.nodeid], position + 1)
            culprit = pending[min(len(finished), len(pending) - 1)]
            self.analyser.analyse(culprit, settings, outcome, collected[culprit.nodeid], last=True, generation=None)
            pending = pending[len(finished) + 1:]

    @staticmethod
    def _unsupported(item: pytest.Item) -> str | None:
        import inspect

        function = getattr(item, "obj", None)
        if inspect.isasyncgenfunction(function):
            return messages.ASYNC_UNSUPPORTED.format(nodeid=item.nodeid)
        if not isinstance(item, pytest.Function) or not (
                type(item).runtest is pytest.Function.runtest or _is_async_plugin_item(item)):
            return messages.UNSUPPORTED_ITEM.format(nodeid=item.nodeid, kind=type(item).__name__)
        return None

    def _new_battery_dir(self) -> Path:
        self.counter += 1
        directory = self.workdir / f"battery-{self.counter}"
        directory.mkdir()
        return directory

    def start_early(self, shapes: list[Settings]) -> None:
        """Start the zygote now (with the templates these settings will ask for), so that its
        start-up overlaps the outer session's collection."""
        self.start_strategy.start_early([(shape, config_name) for shape in shapes
                                         for config_name in configs_to_run(shape)[0]])

    def _run_battery(self, items: list[pytest.Item], settings: Settings, config_name: str) -> BatteryOutcome:
        """The batteries of `items` in one config, as many as the leak policy needs (a re-run
        unfrozen, a second battery for a per-call finding); returns the outcome to report."""
        return self.reruns.run(
            str(items[0].path), lambda unfreeze: self._run_battery_once(items, settings, config_name, unfreeze))

    def _run_battery_once(self, items: list[pytest.Item], settings: Settings, config_name: str,
                          unfreeze: bool) -> BatteryOutcome:
        probe = self.probe_plugins(config_name, settings.timeout)
        kept = innerplugins.plugin_args(probe.kept)
        directory = self._new_battery_dir()
        spec: InnerSpec = {
            "config": config_name,
            "nodeids": [item.nodeid for item in items],
            "args": [*self.inner_args, *kept, *dict.fromkeys(str(item.path) for item in items)],
            "shadowing_plugins": probe.shadowing,
            "markers": self.markers,
            "progress_dir": str(directory),
            "basetemp": str(self._battery_basetemp(f"battery-{self.counter}-{config_name}")),
            "block_modules": quirks.blocked_modules(config_name),
            "check_leaks": settings.leaks != "off",
            "coverage": coverage_inside.settings_of_session(),
            "unfreeze": unfreeze,  # template interpreters: gc.unfreeze() before they end
        }
        control_spec: InnerSpec = {
            **spec,
            "nodeids": [CONTROL_NODEID],
            "args": [*self.control_base_args, *kept, self.control_test],
            "basetemp": str(self._battery_basetemp(f"battery-{self.counter}-{config_name}-control")),
        }
        request: BatteryRequest = {
            "dir": str(directory),
            "cwd": str(self.config.invocation_params.dir),
            "config": config_name,
            "interpreters": settings.interpreters,
            "threads": settings.threads,
            "rounds": settings.rounds,
            "timeout": settings.timeout,
            "spec": spec,
            "leak_policy": settings.leaks,
            "control_spec": control_spec,
        }
        self.start_strategy.prepare_request(request, settings, config_name)
        start = time.perf_counter()
        # The timeout holds for each battery the child runs (leak checks run several): the
        # launcher's deadline restarts at each one's breadcrumb (workermanage.PhaseClock).
        exit_info = self.launcher.run(request, settings.timeout)
        wall = time.perf_counter() - start
        result = child.read_result(directory)
        outcome = BatteryOutcome(
            config=config_name,
            exit=exit_info,
            result=result,
            progress=child.read_file(directory / child.PROGRESS_FILE),
            stdout=child.read_file(directory / child.STDOUT_FILE),
            stderr=child.read_file(directory / child.STDERR_FILE),
            child_error=child.read_file(directory / child.ERROR_FILE) or None,
            wall_s=wall,
            item_lines=_read_item_lines(directory, config_name),
        )
        shutil.rmtree(directory, ignore_errors=True)
        return outcome

    # -- analysis ---------------------------------------------------------------------------
