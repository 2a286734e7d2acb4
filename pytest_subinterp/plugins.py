"""The user's plugins inside the sub-interpreters (controller side).

Inner sessions run with plugin autoload off (child.py) and load exactly the plugins listed here:
every plugin the outer session loaded by ``-p`` or through an entry point, under the name it was
registered with, once, minus the ones that manage processes or the session
(``session.INNER_BLOCKED_PLUGINS``).  Whether each of them loads in a sub-interpreter is decided
once per session and config by a probe (``plugincheck.probe``: one interpreter runs a trivial
inner session with them); the ones that do not are left out, named in the session header, and a
test that needs one of them fails with a message naming it (docs/compatibility.md).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_subinterp import child, messages

if TYPE_CHECKING:
    from pytest_subinterp.protocol import BatteryRequest

PROBE_ENTRY = "pytest_subinterp.plugincheck:probe"
# Module names (prefixes) of plugins never passed in, whatever name they were registered under.
BLOCKED_MODULES = ("pytest_subinterp", "xdist", "pytest_benchmark", "pytest_timeout", "pytest_forked",
                   "pytest_rerunfailures", "pytest_run_parallel")


@dataclass(frozen=True)
class OuterPlugin:
    """One plugin of the outer session that inner sessions load with ``-p name``."""

    name: str  # the name it was registered under: -p NAME loads it the same way inside
    module: str
    dist: str | None = None  # its distribution, for messages
    roots: tuple[str, ...] = ()  # files/directories of the distribution's top-level modules


def _is_blocked(name: str, module: str, blocked: Sequence[str]) -> bool:
    return name in blocked or any(module == prefix or module.startswith(f"{prefix}.")
                                  for prefix in BLOCKED_MODULES)


def _dist_roots(dist: Any) -> tuple[str, ...]:
    """Paths of a distribution's top-level modules and packages (what its code's files start with)."""
    tops: set[str] = set()
    for path in getattr(dist, "files", None) or ():
        parts = Path(str(path)).parts
        if not parts or parts[0].endswith((".dist-info", ".egg-info")) or parts[0] in ("..", "bin"):
            continue
        if len(parts) == 1 and not parts[0].endswith(".py"):
            continue
        tops.add(parts[0])
    roots = []
    for top in sorted(tops):
        try:
            roots.append(str(dist.locate_file(top)))
        except (AttributeError, TypeError, ValueError):
            continue
    return tuple(roots)


def outer_plugins(config: pytest.Config, blocked: Sequence[str]) -> list[OuterPlugin]:
    """The plugins inner sessions should load, each once, under its registered name: those given
    by -p (unless blocked: ``-p subinterp`` with autoload off must not load the battery-running
    plugin inside) and those loaded through entry points."""
    manager = config.pluginmanager
    distributions = {id(plugin): getattr(dist, "_dist", dist) for plugin, dist in manager.list_plugin_distinfo()}
    candidates = [value for value in getattr(config.option, "plugins", None) or () if not value.startswith("no:")]
    candidates += [manager.get_name(plugin) or "" for plugin, _dist in manager.list_plugin_distinfo()]
    plugins: list[OuterPlugin] = []
    seen: set[int] = set()
    for candidate in candidates:
        plugin = manager.get_plugin(candidate)
        if plugin is None or id(plugin) in seen:
            continue
        seen.add(id(plugin))
        name = manager.get_name(plugin) or candidate
        module = str(getattr(plugin, "__name__", "") or "")
        if not module or _is_blocked(name, module, blocked):
            continue
        dist = distributions.get(id(plugin))
        dist_name = dist.metadata["Name"] if dist is not None else None
        plugins.append(OuterPlugin(name, module, dist_name, _dist_roots(dist) if dist is not None else ()))
    return plugins


def marker_lines(config: pytest.Config) -> list[str]:
    """The outer session's registered markers: inner sessions know them too (--strict-markers),
    including those of plugins that are not loaded inside (timeout, flaky, run-parallel's)."""
    return [str(line) for line in config.getini("markers")]


@dataclass
class ProbeResult:
    """Which plugins load in one config's sub-interpreters."""

    kept: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # name -> why
    # kept plugins registered under the name of another importable module: name -> plugin module
    # (innerplugins.register_shadowing_plugins)
    shadowing: dict[str, str] = field(default_factory=dict)


def shadows_a_module(plugin: OuterPlugin) -> bool:
    """Whether ``-p NAME`` would mark another module for assertion rewriting: NAME is an
    importable top-level module that is not the plugin's own package (pytest-asyncio's entry
    point is called ``asyncio``).  Decided here, once, from the outer session's plugin modules."""
    import importlib.util
    import sys

    if "." in plugin.name or plugin.module.split(".")[0] == plugin.name or plugin.module not in sys.modules:
        return False
    try:
        return importlib.util.find_spec(plugin.name) is not None
    except (ImportError, ValueError):
        return False


def _first_line_of_error(text: str) -> str:
    """The exception line of a traceback (e.g. 'ImportError: module x does not support ...')."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        line = line[2:].strip() if line.startswith("E ") else line
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Failed", "Interrupt", "Exit")) and " " not in head:
            return line
    return lines[-1] if lines else "no output"


class PluginProbe:
    """Runs the probe once per config and remembers its answer."""

    def __init__(self, plugins: list[OuterPlugin], run: Callable[[BatteryRequest, float], Any],
                 new_dir: Callable[[], Path]) -> None:
        self.plugins = plugins
        self._run = run  # the launcher's run(request, timeout)
        self._new_dir = new_dir
        self.results: dict[str, ProbeResult] = {}

    def result(self, config_name: str, request: dict[str, Any]) -> ProbeResult:
        """The probe's answer for `config_name`; `request`: the fields of a battery request the
        probe shares (cwd, spec's block_modules, args without plugins, basetemp)."""
        if config_name not in self.results:
            self.results[config_name] = self._probe(config_name, request)
        return self.results[config_name]

    def _probe(self, config_name: str, base: dict[str, Any]) -> ProbeResult:
        names = [plugin.name for plugin in self.plugins]
        if not names:
            return ProbeResult()
        directory = self._new_dir()
        request: BatteryRequest = {**base, "dir": str(directory), "config": config_name,  # type: ignore[typeddict-item]
                                   "interpreters": 1, "threads": 1, "rounds": 1, "leak_policy": "off",
                                   "entry": PROBE_ENTRY, "spec": {**base["spec"], "plugins": names}}
        exit_info = self._run(request, float(base["timeout"]))
        result = child.read_result(directory)
        stderr = child.read_file(directory / child.STDERR_FILE)
        shutil.rmtree(directory, ignore_errors=True)
        answers: dict[str, str | None] | None = None
        if result is not None and result.get("interpreters"):
            slot = result["interpreters"][0]
            output = slot.get("entry_output")
            if output:
                answers = json.loads(output).get("plugins")
            elif slot.get("entry_error") or slot.get("create_error"):
                why = _first_line_of_error(slot.get("entry_error") or slot.get("create_error") or "")
                answers = {name: why for name in names}
        if answers is None:
            why = messages.PLUGIN_PROBE_DIED.format(status=exit_info.status, stderr=_first_line_of_error(stderr))
            answers = {name: why for name in names}
        probe = ProbeResult()
        for name in names:
            error = answers.get(name)
            if error is None:
                probe.kept.append(name)
            else:
                probe.left_out[name] = _first_line_of_error(error)
        probe.shadowing = {plugin.name: plugin.module for plugin in self.plugins
                           if plugin.name in probe.kept and shadows_a_module(plugin)}
        return probe

    def header_lines(self) -> list[str]:
        """One line naming the plugins left out, and why (nothing when none is)."""
        reasons: dict[str, list[str]] = {}
        for config_name, probe in self.results.items():
            for name, why in probe.left_out.items():
                reasons.setdefault(f"{name} ({why})", []).append(config_name)
        if not reasons:
            return []
        parts = [f"{what} [{', '.join(configs)}]" for what, configs in reasons.items()]
        return [messages.PLUGINS_LEFT_OUT_HEADER.format(plugins="; ".join(parts))]

    def needed_left_out(self, item: pytest.Item, config_name: str) -> tuple[OuterPlugin, str, str] | None:
        """(plugin, how the test needs it, why it is left out) for the first left-out plugin of
        `config_name` that `item` needs: a fixture it provides, or a decorator of the test
        function (hypothesis's @given); None when the test needs none."""
        probe = self.results.get(config_name)
        if probe is None or not probe.left_out:
            return None
        for plugin in self.plugins:
            why = probe.left_out.get(plugin.name)
            if why is None:
                continue
            via = _needs(item, plugin)
            if via is not None:
                return plugin, via, why
        return None


def _in_roots(filename: str | None, plugin: OuterPlugin) -> bool:
    if not filename:
        return False
    return any(filename == root or filename.startswith(f"{root}/") or filename.startswith(f"{root}.")
               for root in plugin.roots)


def _module_file(kind: type) -> str | None:
    import sys

    module = sys.modules.get(getattr(kind, "__module__", "") or "")
    return getattr(module, "__file__", None)


def _needs(item: pytest.Item, plugin: OuterPlugin) -> str | None:
    from pytest_subinterp import compat

    function = getattr(item, "obj", None)
    code = getattr(function, "__code__", None)
    if _in_roots(getattr(code, "co_filename", None), plugin) or any(
            _in_roots(_module_file(type(value)), plugin) for value in list(getattr(function, "__dict__", {}).values())):
        return "its test function is wrapped by the plugin"
    for name, definitions in compat.fixture_definitions(item).items():
        for definition in definitions:
            func = getattr(definition, "func", None)
            module = getattr(func, "__module__", "") or ""
            if module == plugin.module or _in_roots(getattr(getattr(func, "__code__", None), "co_filename", None),
                                                    plugin):
                return f"fixture '{name}'"
    return None
