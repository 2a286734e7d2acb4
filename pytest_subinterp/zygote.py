"""The zygote: a small single-threaded process that forks one child per battery.

It has imported pytest and the C helper, never the code under test, so every child starts
warm and clean.  Protocol: JSON lines.  stdin: ``{"id", "request"}`` or ``{"cmd": "exit"}``;
stdout: ``{"ready", "helper_error"}`` once, then ``{"id", "pid"}`` and ``{"id", "status",
"max_rss_kb", "zygote_rss_kb"}`` per battery (``status`` as returned by ``os.waitpid``, the
child's peak RSS from ``wait4``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


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


def serve(inp: Any, out: Any) -> None:
    """Answer requests until stdin closes or an exit command arrives."""
    import pytest  # noqa: F401 - warm: every child inherits the imported modules

    from pytest_subinterp import child

    _send(out, {"ready": True, "helper_error": _helper_error(), "pid": os.getpid()})
    for line in inp:
        message = json.loads(line)
        if message.get("cmd") == "exit":
            return
        pid = os.fork()
        if pid == 0:
            child.main_after_fork(message["request"])
        _send(out, {"id": message["id"], "pid": pid})
        _, status, usage = os.wait4(pid, 0)
        _send(out, {"id": message["id"], "status": status, "max_rss_kb": usage.ru_maxrss,
                    "zygote_rss_kb": _own_rss_kb()})


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
