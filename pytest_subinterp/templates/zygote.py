"""The zygote's side of template interpreters: make and keep them, fork children that inherit them.

``TemplateZygote`` serves the zygote (``pytest_subinterp.zygote``) in template mode: it makes K
template interpreters per config with the C helper (each prepared by
``interpreter.prepare_template``), forks every battery child with ``fork_keeping_templates``,
and keeps one spare child forked ahead of the next request, so that copying the zygote's memory
overlaps the running battery (docs/templates.md).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_subinterp import child, lifecycle

if TYPE_CHECKING:
    from pytest_subinterp.protocol import BatteryRequest

TEMPLATE_ENTRY = "pytest_subinterp.templates.interpreter:prepare_template"
# Templates per config the zygote keeps at most (each isolated one costs ~10 MB here).
MAX_TEMPLATES = 16


@dataclass
class Spare:
    """A child forked ahead of its request: it copies the zygote's memory, then waits on a pipe."""

    pid: int
    request_fd: int
    templates: dict[str, int]  # template interpreters it inherited, per config


class TemplateZygote:
    """Keeps template interpreters and one spare child; forks children that inherit them."""

    holds_templates = True

    def __init__(self) -> None:
        from pytest_subinterp import _subinterp

        self.helper = _subinterp
        self.errors: dict[str, str] = {}  # config -> why its templates cannot be made
        self.spare: Spare | None = None

    def counts(self) -> dict[str, int]:
        """Template interpreters this process holds, per config."""
        configs = ("isolated", "legacy")
        return {config: self.helper.template_count(config) for config in configs}

    def ensure(self, wanted: dict[str, Any]) -> str | None:
        """Hold at least wanted["count"] templates of wanted["config"]; returns why not, if not."""
        config, count = wanted["config"], int(wanted["count"])
        if config in self.errors:
            return self.errors[config]
        if count > MAX_TEMPLATES:
            return f"{count} interpreters per battery is more than the {MAX_TEMPLATES} templates kept"
        missing = count - self.helper.template_count(config)
        if missing <= 0:
            return None
        self.discard_spare()  # it would not inherit the new ones
        made = self.helper.make_templates(config, missing, TEMPLATE_ENTRY, json.dumps(wanted["spec"]))
        failures = [slot["create_error"] or slot["entry_error"] for slot in made
                    if slot["create_error"] or slot["entry_error"]]
        if failures:
            self.errors[config] = f"a {config} template interpreter could not be prepared: {failures[0]}"
            return self.errors[config]
        return None

    def claim(self, wanted: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
        """The templates a request gets (`wanted` when this zygote holds them, else None) and
        why it does not get the ones it wanted."""
        error = self.ensure(wanted) if wanted else None
        return (None, error) if error is not None else (wanted, None)

    def prepare(self, shapes: list[dict[str, Any]]) -> None:
        """Make the templates these shapes need before any request (errors are kept for the
        requests to report), and a spare child for the first of them."""
        errors = [self.ensure(wanted) for wanted in shapes]
        if shapes and self.spare is None and errors[0] is None:
            self.spare = self._fork_spare()

    def fork(self, request: BatteryRequest, wanted: dict[str, Any] | None) -> int:
        """The pid of the child that runs `request`: the spare when it fits, else a new one."""
        spare, self.spare = self.spare, None
        fits = (spare is not None and wanted is not None
                and spare.templates.get(wanted["config"], 0) >= int(wanted["count"]))
        if spare is not None and not fits:
            self._dismiss(spare)
            spare = None
        if spare is not None:
            os.write(spare.request_fd, json.dumps(request).encode())
            os.close(spare.request_fd)
            pid = spare.pid
        else:
            parent = os.getpid()
            pid = self.helper.fork_keeping_templates()
            if pid == 0:
                child.main_after_fork(request, parent=parent)
        if wanted is not None:
            self.spare = self._fork_spare()
        return pid

    def _fork_spare(self) -> Spare:
        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        pid = self.helper.fork_keeping_templates()
        if pid == 0:
            os.close(write_fd)
            main_spare(read_fd, parent)
        os.close(read_fd)
        return Spare(pid, write_fd, self.counts())

    def _dismiss(self, spare: Spare) -> None:
        os.close(spare.request_fd)  # the spare reads EOF and leaves
        os.waitpid(spare.pid, 0)

    def kill_spare(self) -> None:
        """Kill the spare child now (the zygote is going away)."""
        if self.spare is not None:
            lifecycle.kill_group(self.spare.pid)

    def discard_spare(self) -> None:
        """Let the spare child go (before new templates, and at exit)."""
        if self.spare is not None:
            self._dismiss(self.spare)
            self.spare = None


def main_spare(request_fd: int, parent: int) -> None:
    """A spare child of the template zygote: copy the inherited memory now, while the current
    battery runs, then wait for a request (EOF: not needed after all)."""
    from pytest_subinterp import _subinterp

    try:
        child.after_fork(parent)
        _subinterp.populate_memory()
        chunks = []
        while chunk := os.read(request_fd, 1 << 16):
            chunks.append(chunk)
        os.close(request_fd)
    except BaseException:  # noqa: BLE001 - the zygote notices a missing result
        os._exit(child.EXIT_INTERNAL_ERROR)
    if not chunks:
        os._exit(0)
    child.main_after_fork(json.loads(b"".join(chunks)), populated=True, parent=None)
