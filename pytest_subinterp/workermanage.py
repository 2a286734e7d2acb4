"""Controller side of the child processes: start the zygote, run one battery, watch, reap.

Every battery runs in its own child so that a crash, abort, ``os._exit`` or hang inside a
sub-interpreter costs only that test.  The zygote forks the children; where ``fork`` is not
available (or ``--subinterp-start=spawn``), each child is spawned instead.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Seconds the child gets beyond the test timeout to dump stacks and write its result.
HARD_DEADLINE_GRACE_S = 15.0
ZYGOTE_START_TIMEOUT_S = 120.0


@dataclass
class ChildExit:
    """How a battery's child process ended."""

    status: int | None  # os.waitpid status; None when unknown
    killed_after_deadline: bool = False
    infrastructure_error: str | None = None
    max_rss_kb: int | None = None  # the child's peak RSS
    zygote_rss_kb: int | None = None
    templates: bool = False  # the battery ran in template interpreters inherited from the zygote
    template_error: str | None = None  # why templates were asked for but not used

    @property
    def signal(self) -> int | None:
        """The signal that ended the child, if any."""
        if self.status is not None and os.WIFSIGNALED(self.status):
            return os.WTERMSIG(self.status)
        return None

    @property
    def exit_code(self) -> int | None:
        """The child's exit code, if it exited."""
        if self.status is not None and os.WIFEXITED(self.status):
            return os.WEXITSTATUS(self.status)
        return None


class _LineReader:
    """Reads JSON lines from a pipe with deadlines."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def read(self, deadline: float) -> dict[str, Any] | None:
        """The next message, or None at the deadline; raises EOFError when the pipe closes."""
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("the zygote closed its pipe")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def _kill_child(pid: int) -> None:
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except (ProcessLookupError, PermissionError, OSError):
            pass


class Zygote:
    """A forking server of battery children (POSIX)."""

    def __init__(self, cwd: Path, log_dir: Path, mode: str = "fork") -> None:
        self.cwd = cwd
        self.mode = mode  # "template": the zygote holds template interpreters (zygote.py)
        self.log_path = log_dir / "zygote-stderr.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.reader: _LineReader | None = None
        self.helper_error: str | None = None
        self.holds_templates = False
        self.ready = False
        self.next_id = 0

    def start_early(self, templates: list[dict[str, Any]]) -> None:
        """Start the zygote without waiting for it, and ask it to prepare these templates
        before the first battery (see zygote.py); ensure_started() then waits for it."""
        if self.proc is not None:
            return
        try:
            self._spawn()
            if self.mode == "template" and templates:
                self._send({"cmd": "prepare", "templates": templates})
        except OSError:
            self.close()  # the first battery starts it again and reports what goes wrong

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytest_subinterp.zygote", self.mode],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=self.cwd,
            )
        assert self.proc.stdout is not None
        self.reader = _LineReader(self.proc.stdout.fileno())
        self.ready = False

    def _wait_ready(self) -> None:
        assert self.reader is not None
        ready = self.reader.read(time.monotonic() + ZYGOTE_START_TIMEOUT_S)
        if ready is None or not ready.get("ready"):
            raise RuntimeError(f"the pytest-subinterp zygote did not start; see {self.log_path}")
        self.helper_error = ready.get("helper_error")
        self.holds_templates = bool(ready.get("templates"))
        self.ready = True

    def ensure_started(self) -> str | None:
        """Start the zygote if needed; returns the C helper's import error, if any."""
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._spawn()
        if not self.ready:
            self._wait_ready()
        return self.helper_error

    def run(self, request: dict[str, Any], timeout: float) -> ChildExit:
        """Run one battery; returns how its child ended."""
        try:
            self.ensure_started()
        except (RuntimeError, EOFError, OSError) as exc:
            return ChildExit(None, infrastructure_error=str(exc))
        assert self.proc is not None and self.proc.stdin is not None and self.reader is not None
        self.next_id += 1
        try:
            self._send({"id": self.next_id, "request": request})
            started = self.reader.read(time.monotonic() + ZYGOTE_START_TIMEOUT_S)
            if started is None:
                raise EOFError("the zygote did not fork a child in time")
            pid = started["pid"]
            templates = {"templates": bool(started.get("templates")),
                         "template_error": started.get("template_error")}
            deadline = time.monotonic() + timeout + HARD_DEADLINE_GRACE_S
            finished = self.reader.read(deadline)
            if finished is not None:
                return ChildExit(finished["status"], max_rss_kb=finished.get("max_rss_kb"),
                                 zygote_rss_kb=finished.get("zygote_rss_kb"), **templates)
            _kill_child(pid)
            finished = self.reader.read(time.monotonic() + 30)
            return ChildExit(finished["status"] if finished else None, killed_after_deadline=True,
                             **templates)
        except (EOFError, OSError, ValueError) as exc:
            self.close()
            return ChildExit(None, infrastructure_error=f"the pytest-subinterp zygote failed: {exc}")

    def close(self) -> None:
        """Stop the zygote."""
        if self.proc is None:
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.write(b'{"cmd": "exit"}\n')
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
        self.ready = False


def run_process(argv: list[str], cwd: Path, deadline_s: float, env: dict[str, str] | None = None) -> ChildExit:
    """Run `argv` as a new session (process group) and wait; after `deadline_s` seconds kill the
    whole group.  Used for spawned batteries and for ``check``'s memory child."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True)
    try:
        proc.wait(timeout=deadline_s)
        killed = False
    except subprocess.TimeoutExpired:
        _kill_child(proc.pid)
        proc.wait()
        killed = True
    code = proc.returncode
    status = (-code) if code < 0 else (code << 8)  # the os.waitpid encoding
    return ChildExit(status, killed_after_deadline=killed)


class Spawner:
    """Spawns one child per battery (platforms without fork, or --subinterp-start=spawn)."""

    holds_templates = False

    def start_early(self, templates: list[dict[str, Any]]) -> None:
        """Nothing to start ahead."""

    def __init__(self, cwd: Path, log_dir: Path) -> None:
        self.cwd = cwd

    def ensure_started(self) -> str | None:
        """Check that the C helper imports in this Python."""
        try:
            from pytest_subinterp import _subinterp  # noqa: F401
        except ImportError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def run(self, request: dict[str, Any], timeout: float) -> ChildExit:
        """Run one battery in a new process."""
        request_path = Path(request["dir"]) / "request.json"
        request_path.write_text(json.dumps(request))
        return run_process([sys.executable, "-m", "pytest_subinterp.child", str(request_path)], self.cwd,
                           timeout + HARD_DEADLINE_GRACE_S)

    def close(self) -> None:
        """Nothing to stop."""


def make_launcher(cwd: Path, log_dir: Path, start: str = "template") -> Zygote | Spawner:
    """The zygote where fork is available (holding template interpreters for start=template),
    else the spawner."""
    if hasattr(os, "fork") and start != "spawn":
        return Zygote(cwd, log_dir, "template" if start == "template" else "fork")
    return Spawner(cwd, log_dir)
