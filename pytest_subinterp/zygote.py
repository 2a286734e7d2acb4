"""The zygote: a small single-threaded process that forks one child per battery.

It has imported pytest and the C helper, never the code under test, so every child starts
warm and clean.  In template mode (``python -m pytest_subinterp.zygote template``, Python
3.12+) it also holds *template interpreters*: sub-interpreters that imported pytest once, here,
and that every child inherits through ``fork`` and ends itself (see docs/templates.md).  A
spare child is forked ahead of the next request, so that copying the zygote's memory overlaps
the running battery.  The templates and the spare child are templates/zygote.py's.

Protocol: JSON lines.  stdin: ``{"id", "request"}``, ``{"cmd": "prepare", "templates": [...]}``
(make templates ahead of the first request; no answer) or ``{"cmd": "exit"}`` (also while a
battery runs: its child's process group is killed first); EOF or the parent-death signal
(SIGTERM) means the controller is gone: the zygote kills its children, removes the session's
work dir and leaves (lifecycle.py); stdout:
``{"ready", "helper_error", "templates"}`` once, then ``{"id", "pid", "templates",
"template_error"}`` and ``{"id", "status", "max_rss_kb", "zygote_rss_kb"}`` per battery
(``status`` as returned by ``os.waitpid``, the child's peak RSS from ``wait4``).  A request asks
for templates with ``request["templates"] = {"config", "count", "spec"}``; the child is told
whether it got them in ``request["use_templates"]``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from typing import TYPE_CHECKING, Any

from pytest_subinterp import compat, lifecycle

if TYPE_CHECKING:
    from pytest_subinterp.protocol import BatteryRequest
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

    def fork(self, request: BatteryRequest, wanted: dict[str, Any] | None) -> int:
        """The pid of a new child that runs `request`."""
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            from pytest_subinterp import child

            child.main_after_fork(request, parent=parent)
        return pid

    def discard_spare(self) -> None:
        """No spare child."""

    def kill_spare(self) -> None:
        """No spare child."""


class _Lines:
    """JSON lines read from a raw fd, so that select() on it says the truth (no read-ahead
    buffer of a file object hides a line)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.eof = False

    def next(self) -> dict[str, Any] | None:
        """The next message, or None at EOF."""
        while b"\n" not in self.buffer:
            if self.eof or not self.fill():
                return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def fill(self) -> bool:
        """Read what is there (blocking); False at EOF."""
        chunk = os.read(self.fd, 65536)
        self.eof = not chunk
        self.buffer += chunk
        return not self.eof

    def exit_asked(self) -> bool:
        """Whether EOF or an exit command has arrived (read so far)."""
        return self.eof or self.exit_commanded()

    def exit_commanded(self) -> bool:
        """Whether the controller sent the exit command (read so far): EOF without it means the
        controller died."""
        return b'"cmd": "exit"' in self.buffer


class _Running:
    """The battery child being waited for, and the spare: what the zygote kills when it must go."""

    battery: int | None = None
    forker: Any = None


def _kill_running() -> None:
    if _Running.battery is not None:
        lifecycle.kill_group(_Running.battery)
    if _Running.forker is not None:
        _Running.forker.kill_spare()


def _controller_gone(*_args: Any) -> None:
    """The controller died (parent-death signal, or EOF without an exit command): take the
    battery child, the spare and the work dir with us."""
    _kill_running()
    lifecycle.clean_up_orphaned()
    os._exit(0)


def _wait_child(pid: int, lines: _Lines) -> tuple[int, Any] | None:
    """Wait for the battery child `pid`, watching stdin: (status, rusage), or None when the
    controller asked to stop (exit command or EOF) first; the child's group is then killed."""
    pidfd = -1
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = -1
    try:
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                return status, usage
            watched = [lines.fd] + ([pidfd] if pidfd >= 0 else [])
            ready, _, _ = select.select(watched, [], [], None if pidfd >= 0 else 0.05)
            if lines.fd in ready:
                lines.fill()
                if lines.exit_asked():
                    lifecycle.kill_group(pid)
                    os.waitpid(pid, 0)
                    return None
    finally:
        if pidfd >= 0:
            os.close(pidfd)


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
    _Running.forker = forker
    _send(out, {"ready": True, "helper_error": helper_error, "pid": os.getpid(),
                "templates": forker.holds_templates})
    lines = _Lines(inp.fileno())
    try:
        while (message := lines.next()) is not None:
            if message.get("cmd") == "exit":
                return
            if message.get("cmd") == "prepare":
                forker.prepare(message["templates"])
                continue
            request = message["request"]
            wanted, template_error = forker.claim(request.get("templates"))
            request["use_templates"] = wanted is not None
            pid = _Running.battery = forker.fork(request, wanted)
            _send(out, {"id": message["id"], "pid": pid, "templates": wanted is not None,
                        "template_error": template_error})
            waited = _wait_child(pid, lines)
            _Running.battery = None
            if waited is None:
                if not lines.exit_commanded():
                    # EOF mid-battery: the controller died, and this can come before the
                    # parent-death signal's handler runs; clean up as that handler would.
                    _controller_gone()
                return
            status, usage = waited
            _send(out, {"id": message["id"], "status": status, "max_rss_kb": usage.ru_maxrss,
                        "zygote_rss_kb": _own_rss_kb()})
        # EOF without an exit command: the controller is gone.
        _controller_gone()
    finally:
        forker.discard_spare()


def main(argv: list[str]) -> None:
    """``python -m pytest_subinterp.zygote [fork|template]``."""
    # Ctrl-C reaches the whole foreground process group: the controller decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _controller_gone)
    parent = os.environ.get(lifecycle.PARENT_ENV)
    if parent:
        lifecycle.end_with_parent(int(parent), signal.SIGTERM, on_orphan=lifecycle.clean_up_orphaned, watch=False)
    serve(sys.stdin, sys.stdout, argv[0] if argv else "fork")
    sys.stdout.flush()
    # Never finalize: CPython aborts at exit while template interpreters are alive.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
