"""The controller's side: how the interpreters of a battery start, fresh or inherited templates.

The battery controller (session.py) asks its start strategy, never the launcher, whether a
battery runs in template interpreters: ``TemplateStart`` (``--subinterp-start=template``, the
default on 3.12+) fills in the template fields of each request and the control its leak checks
compare with; ``FreshStart`` leaves the request alone, and the child then measures its own
control in fresh interpreters (leaks/sequence.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_subinterp import child, quirks

if TYPE_CHECKING:
    from pytest_subinterp.leaks.policy import LeakPolicy
    from pytest_subinterp.options import Settings
    from pytest_subinterp.protocol import BatteryRequest, TemplateControl, TemplateRequest
    from pytest_subinterp.workermanage import Spawner, Zygote


class FreshStart:
    """Fresh interpreters in every child (``--subinterp-start=fork`` or ``spawn``)."""

    def __init__(self, launcher: Zygote | Spawner) -> None:
        self.launcher = launcher

    def start_early(self, shapes: Sequence[tuple[Settings, str]]) -> None:
        """Start the zygote now, so that its start-up overlaps the outer session's collection."""
        self.launcher.start_early([])

    def prepare_request(self, request: BatteryRequest, settings: Settings, config_name: str) -> None:
        """Nothing to add: the child creates its interpreters and measures its own control."""


class TemplateStart:
    """Template interpreters inherited from the zygote, where it holds them (docs/templates.md)."""

    def __init__(self, launcher: Zygote | Spawner, new_dir: Callable[[], Path], blocked_plugins: Sequence[str],
                 policy: LeakPolicy) -> None:
        self.launcher = launcher
        self.new_dir = new_dir  # a new battery directory of the controller
        self.blocked_plugins = list(blocked_plugins)
        self.policy = policy  # caches the control per shape

    def template_request(self, settings: Settings, config_name: str) -> TemplateRequest:
        """What the zygote needs to make the templates of this shape and config."""
        return {
            "config": config_name,
            "count": settings.interpreters,
            "spec": {"block_modules": quirks.blocked_modules(config_name),
                     "blocked_plugins": list(self.blocked_plugins)},
        }

    def start_early(self, shapes: Sequence[tuple[Settings, str]]) -> None:
        """Start the zygote now and have it prepare the templates these (settings, config) will
        ask for, so that its start-up overlaps the outer session's collection."""
        self.launcher.start_early([self.template_request(settings, config_name)
                                   for settings, config_name in shapes])

    def prepare_request(self, request: BatteryRequest, settings: Settings, config_name: str) -> None:
        """Let the zygote run this battery in template interpreters, where it holds them; with
        leak checks the battery also needs the (cached) control of its shape."""
        if not self.launcher.holds_templates:
            return
        request["templates"] = self.template_request(settings, config_name)
        if settings.leaks != "off":
            unfreeze = request["spec"]["unfreeze"]
            shape = (config_name, settings.interpreters, settings.threads, settings.rounds, unfreeze)
            control = self.policy.cached_control(shape, lambda: self._measure_control(request, settings))
            if control is None:
                del request["templates"]  # the child runs its own control in fresh interpreters
            else:
                request["template_control"] = control

    def _measure_control(self, request: BatteryRequest, settings: Settings) -> TemplateControl | None:
        """What the trivial control test retains in template interpreters of this request's
        shape: the smaller of two measurements, key by key.  One control serves every battery
        of the shape in the session, so one child that happened to retain more (the allocator's
        noise) must not raise the bar for all of them: a planted 128 KiB-per-lifetime leak went
        unseen on 3.12.1 once in a full run.  A lower control only sends more batteries to the
        lifetime series, which decides.  None when it cannot be measured."""
        first = self._measure_control_once(request, settings)
        second = self._measure_control_once(request, settings) if first is not None else None
        if first is None or second is None:
            return first
        measured: dict[str, int | None] = {}
        for key, value in first["measured"].items():
            other = second["measured"].get(key)
            measured[key] = min(value, other) if value is not None and other is not None else value
        return {"measured": measured, "errors": list(dict.fromkeys(first["errors"] + second["errors"]))}

    def _measure_control_once(self, request: BatteryRequest, settings: Settings) -> TemplateControl | None:
        """One measurement of the template control (leaks/sequence.py's template_control); None
        when it cannot be measured (no templates, or the control itself failed)."""
        directory = self.new_dir()
        control_request: BatteryRequest = {**request, "dir": str(directory), "role": "control"}
        exit_info = self.launcher.run(control_request, settings.timeout)
        result = child.read_result(directory)
        shutil.rmtree(directory, ignore_errors=True)
        usable = (exit_info.templates and exit_info.exit_code == 0 and result is not None
                  and not result["hung"])
        if not usable or result is None:
            return None
        return {"measured": result.get("leak_measurement", {}).get("measured", {}),
                "errors": child.errors_of(result)}


def make_start(start: str, launcher: Zygote | Spawner, new_dir: Callable[[], Path],
               blocked_plugins: Sequence[str], policy: LeakPolicy) -> FreshStart | TemplateStart:
    """The strategy for ``--subinterp-start`` `start` (the launcher itself says, once started,
    whether it could make templates: where not, batteries run fresh and say why)."""
    if start == "template":
        return TemplateStart(launcher, new_dir, blocked_plugins, policy)
    return FreshStart(launcher)
