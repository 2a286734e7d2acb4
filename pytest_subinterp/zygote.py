"""The zygote: a small single-threaded process that forks one child per battery.

It has imported pytest and the C helper, never the code under test, so every child starts
warm and clean.  In template mode (``python -m pytest_subinterp.zygote template``, Python
3.12+) it also holds *template interpreters*: sub-interpreters that imported pytest once, here,
and that every child inherits through ``fork`` and ends itself (see docs/templates.md).  A
spare child is forked ahead of the next request, so that copying the zygote's memory overlaps
the running battery.  The templates and the spare child are templates/zygote.py's.

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
from typing import TYPE_CHECKING, Any

from pytest_subinterp import compat

if TYPE_CHECKING:
    from pytest_subinterp.templates.zygote import TemplateZygote


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


class PlainForker:
    """Fork mode, or templates not possible here: each battery child is a plain ``os.fork``.
    Same interface as templates.zygote.TemplateZygote."""

    holds_templates = False

    def prepare(self, shapes: list[dict[str, Any]]) -> None:
        """No templates to prepare."""

    def claim(self, wanted: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
        """No templates for any request, and nothing to say why: none were possible."""
        return None, None

    def fork(self, request: dict[str, Any], wanted: dict[str, Any] | None) -> int:
        """The pid of a new child that runs `request`."""
        pid = os.fork()
        if pid == 0:
            from pytest_subinterp import child

            child.main_after_fork(request)
        return pid

    def discard_spare(self) -> None:
        """No spare child."""


def serve(inp: Any, out: Any, mode: str = "fork") -> None:
    """Answer requests until stdin closes or an exit command arrives."""
    import pytest  # noqa: F401 - warm: every child inherits the imported modules

    from pytest_subinterp import child

    # Children set these too; set here they are also what template interpreters start with.
    child.prepare_environment_variables()
    helper_error = _helper_error()
    forker: PlainForker | TemplateZygote = PlainForker()
    if mode == "template" and compat.templates_supported() and not helper_error:
        from pytest_subinterp.templates.zygote import TemplateZygote

        forker = TemplateZygote()
    _send(out, {"ready": True, "helper_error": helper_error, "pid": os.getpid(),
                "templates": forker.holds_templates})
    try:
        for line in inp:
            message = json.loads(line)
            if message.get("cmd") == "exit":
                return
            if message.get("cmd") == "prepare":
                forker.prepare(message["templates"])
                continue
            request = message["request"]
            wanted, template_error = forker.claim(request.get("templates"))
            request["use_templates"] = wanted is not None
            pid = forker.fork(request, wanted)
            _send(out, {"id": message["id"], "pid": pid, "templates": wanted is not None,
                        "template_error": template_error})
            _, status, usage = os.wait4(pid, 0)
            _send(out, {"id": message["id"], "status": status, "max_rss_kb": usage.ru_maxrss,
                        "zygote_rss_kb": _own_rss_kb()})
    finally:
        forker.discard_spare()


def main(argv: list[str]) -> None:
    """``python -m pytest_subinterp.zygote [fork|template]``."""
    serve(sys.stdin, sys.stdout, argv[0] if argv else "fork")
    sys.stdout.flush()
    # Never finalize: CPython aborts at exit while template interpreters are alive.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
