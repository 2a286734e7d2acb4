"""The zygote: a small single-threaded process that forks one child per battery.

It has imported pytest and the C helper, never the code under test, so every child starts
warm and clean.  Protocol: JSON lines.  stdin: ``{"id", "request"}`` or ``{"cmd": "exit"}``;
stdout: ``{"ready", "helper_error"}`` once, then ``{"id", "pid"}`` and ``{"id", "status"}`` per
battery (``status`` as returned by ``os.waitpid``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _send(out: Any, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


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
        _, status = os.waitpid(pid, 0)
        _send(out, {"id": message["id"], "status": status})


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
