"""The zygote: a small single-threaded process that forks one child per battery.

It has imported pytest and the C helper, never the code under test, so every child starts
warm and clean.  In template mode (``python -m pytest_subinterp.zygote template``, Python
3.12+) it also holds *template interpreters*: sub-interpreters that imported pytest once, here,
and that every child inherits through ``fork`` and ends itself (see docs/templates.md).  A
spare child is forked ahead of the next request, so that copying the zygote's memory overlaps
the running battery.

Protocol: JSON lines.  stdin: ``{"id", "request"}``, ``{"cmd": "prepare", "templates": [...]}``
(make templates ahead of the first request; no answer) or ``{"cmd": "exit"}``; stdout:
``{"ready", "helper_error", "templates"}`` once, then ``{"id", "pid", "templates",
"template_error"}`` and ``{"id", "status", "max_rss_kb", "zygote_rss_kb"}`` per battery
(``status`` as returned by ``os.waitpid``, the child's peak RSS from ``wait4``).  A request asks
for templates with ``request["templates"] = {"config", "count", "spec"}``; the child is told
whether it got them in ``request["use_templates"]``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from pytest_subinterp import compat

TEMPLATE_ENTRY = "pytest_subinterp.inner:prepare_template"
# Templates per config the zygote keeps at most (each isolated one costs ~10 MB here).
MAX_TEMPLATES = 16


def _send(out: Any, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def _own_rss_kb() -> int | None:
    """The zygote's current RSS: it must not grow, however many children it forks."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return None


def _helper_error() -> str | None:
    try:
        from pytest_subinterp import _subinterp  # noqa: F401
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass
class Spare:
    """A child forked ahead of its request: it copies the zygote's memory, then waits on a pipe."""

    pid: int
    request_fd: int
    templates: dict[str, int]  # template interpreters it inherited, per config


class TemplateZygote:
    """Keeps template interpreters and one spare child; forks children that inherit them."""

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

    def prepare(self, shapes: list[dict[str, Any]]) -> None:
        """Make the templates these shapes need before any request (errors are kept for the
        requests to report), and a spare child for the first of them."""
        errors = [self.ensure(wanted) for wanted in shapes]
        if shapes and self.spare is None and errors[0] is None:
            self.spare = self._fork_spare()

    def fork(self, request: dict[str, Any], wanted: dict[str, Any] | None) -> int:
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
            pid = self.helper.fork_keeping_templates()
            if pid == 0:
                from pytest_subinterp import child

                child.main_after_fork(request)
        if wanted is not None:
            self.spare = self._fork_spare()
        return pid

    def _fork_spare(self) -> Spare:
        read_fd, write_fd = os.pipe()
        pid = self.helper.fork_keeping_templates()
        if pid == 0:
            os.close(write_fd)
            from pytest_subinterp import child

            child.main_spare(read_fd)
        os.close(read_fd)
        return Spare(pid, write_fd, self.counts())

    def _dismiss(self, spare: Spare) -> None:
        os.close(spare.request_fd)  # the spare reads EOF and leaves
        os.waitpid(spare.pid, 0)

    def discard_spare(self) -> None:
        """Let the spare child go (before new templates, and at exit)."""
        if self.spare is not None:
            self._dismiss(self.spare)
            self.spare = None


def serve(inp: Any, out: Any, mode: str = "fork") -> None:
    """Answer requests until stdin closes or an exit command arrives."""
    import pytest  # noqa: F401 - warm: every child inherits the imported modules

    from pytest_subinterp import child

    # Children set these too; set here they are also what template interpreters start with.
    child.prepare_environment_variables()
    helper_error = _helper_error()
    templates = TemplateZygote() if mode == "template" and compat.templates_supported() and not helper_error else None
    _send(out, {"ready": True, "helper_error": helper_error, "pid": os.getpid(),
                "templates": templates is not None})
    try:
        for line in inp:
            message = json.loads(line)
            if message.get("cmd") == "exit":
                return
            if message.get("cmd") == "prepare":
                if templates is not None:
                    templates.prepare(message["templates"])
                continue
            request = message["request"]
            wanted = request.get("templates") if templates is not None else None
            template_error = templates.ensure(wanted) if templates is not None and wanted else None
            if template_error is not None:
                wanted = None
            request["use_templates"] = wanted is not None
            if templates is not None:
                pid = templates.fork(request, wanted)
            else:
                pid = os.fork()
                if pid == 0:
                    child.main_after_fork(request)
            _send(out, {"id": message["id"], "pid": pid, "templates": wanted is not None,
                        "template_error": template_error})
            _, status, usage = os.wait4(pid, 0)
            _send(out, {"id": message["id"], "status": status, "max_rss_kb": usage.ru_maxrss,
                        "zygote_rss_kb": _own_rss_kb()})
    finally:
        if templates is not None:
            templates.discard_spare()


def main(argv: list[str]) -> None:
    """``python -m pytest_subinterp.zygote [fork|template]``."""
    serve(sys.stdin, sys.stdout, argv[0] if argv else "fork")
    sys.stdout.flush()
    # Never finalize: CPython aborts at exit while template interpreters are alive.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
