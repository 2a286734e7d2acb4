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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_subinterp import lifecycle
from pytest_subinterp.child import PROGRESS_FILE

if TYPE_CHECKING:
    from pytest_subinterp.protocol import BatteryRequest, TemplateRequest

# Seconds a child gets beyond the timeout of the phase it is in (one battery of the leak
# sequence, see PhaseClock) to dump stacks and write its result, plus DUMP_S per interpreter
# (the hang dump waits up to 2 s for each interpreter's GIL, diagnostics.c).
HARD_DEADLINE_GRACE_S = 5.0
DUMP_S = 2.0
ZYGOTE_START_TIMEOUT_S = 120.0
POLL_S = 0.25  # how often the controller looks at a running child's breadcrumbs
PHASE_MARK = b"\nbattery "  # breadcrumb of each battery the child starts (child.run_helper)


def hard_deadline_grace(interpreters: int) -> float:
    """What a hung child gets beyond its phase's timeout before the controller kills it."""
    return HARD_DEADLINE_GRACE_S + DUMP_S * max(1, interpreters)


class PhaseClock:
    """The controller's deadline for a running child: `timeout` + `grace` from the start of
    the phase the child is in.  A child with leak checks runs several batteries (warm-up,
    control, test, lifetime series); each one's ``battery <label>`` breadcrumb starts a new
    phase, so a hang is reported one timeout after the battery that hangs started, never after
    a multiple of the timeout, and even when the child itself cannot answer (a GIL held)."""

    def __init__(self, progress: Path | None, timeout: float, grace: float) -> None:
        self.progress = progress
        self.limit = timeout + grace
        self.phase_started = time.monotonic()
        self.phases = 0

    def deadline(self) -> float:
        """When the current phase runs out (re-read from the breadcrumbs)."""
        if self.progress is not None:
            try:
                text = b"\n" + self.progress.read_bytes()
            except OSError:
                text = b""
            phases = text.count(PHASE_MARK)
            if phases > self.phases:
                self.phases = phases
                self.phase_started = time.monotonic()
        return self.phase_started + self.limit


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
        message: dict[str, Any] = json.loads(line)
        return message


def _kill_child(pid: int) -> None:
    lifecycle.kill_group(pid)


def _progress_path(request: BatteryRequest) -> Path | None:
    return Path(request["dir"]) / PROGRESS_FILE if request.get("dir") else None


def _status_text(status: int | None) -> str:
    if status is None:
        return "ended"
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with code {status}"


ZYGOTE_DIED = ("the pytest-subinterp zygote (pid {pid}) {how} while this test's battery ran in its "
               "child {child}: the test itself may have killed it (it is the parent of the battery "
               "child: os.getppid()); the session goes on with a new zygote")
ZYGOTE_DID_NOT_START = "the pytest-subinterp zygote could not start: {reason}; see {log}"


class Zygote:
    """A forking server of battery children (POSIX)."""

    def __init__(self, cwd: Path, log_dir: Path, mode: str = "fork", token: str | None = None) -> None:
        self.cwd = cwd
        self.mode = mode  # "template": the zygote holds template interpreters (zygote.py)
        self.log_dir = log_dir
        self.log_path = log_dir / "zygote-stderr.log"
        self.token = token or lifecycle.session_token()
        self.instance = lifecycle.new_instance()  # what close() looks for in strays
        self.proc: subprocess.Popen[bytes] | None = None
        self.reader: _LineReader | None = None
        self.helper_error: str | None = None
        self.holds_templates = False
        self.ready = False
        self.next_id = 0
        self.running: int | None = None  # pid of the battery child running now

    def start_early(self, templates: Sequence[TemplateRequest]) -> None:
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
                env=lifecycle.child_environment(self.token, str(self.log_dir), self.instance),
            )
        assert self.proc.stdout is not None
        self.reader = _LineReader(self.proc.stdout.fileno())
        self.ready = False

    def _wait_ready(self) -> None:
        assert self.reader is not None and self.proc is not None
        try:
            ready = self.reader.read(time.monotonic() + ZYGOTE_START_TIMEOUT_S)
        except (EOFError, OSError, ValueError):
            ready = None
        if ready is None or not ready.get("ready"):
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
            reason = (f"it {_status_text(code)} before it was ready" if code is not None
                      else f"it was not ready within {ZYGOTE_START_TIMEOUT_S:g} s")
            self.close()
            raise RuntimeError(ZYGOTE_DID_NOT_START.format(reason=reason, log=self.log_path))
        self.helper_error = ready.get("helper_error")
        self.holds_templates = bool(ready.get("templates"))
        self.ready = True

    def ensure_started(self) -> str | None:
        """Start the zygote if needed; returns the C helper's import error, if any; raises
        RuntimeError (with the reason) when the zygote cannot start."""
        try:
            if self.proc is None or self.proc.poll() is not None:
                self.close()
                self._spawn()
            if not self.ready:
                self._wait_ready()
        except OSError as exc:
            self.close()
            raise RuntimeError(ZYGOTE_DID_NOT_START.format(reason=exc, log=self.log_path)) from None
        return self.helper_error

    def run(self, request: BatteryRequest, timeout: float) -> ChildExit:
        """Run one battery; returns how its child ended.  `timeout`: per phase (PhaseClock)."""
        try:
            self.ensure_started()
        except RuntimeError as exc:
            return ChildExit(None, infrastructure_error=str(exc))
        assert self.proc is not None and self.proc.stdin is not None and self.reader is not None
        self.next_id += 1
        pid = None
        try:
            self._send({"id": self.next_id, "request": request})
            started = self.reader.read(time.monotonic() + ZYGOTE_START_TIMEOUT_S)
            if started is None:
                raise EOFError("the zygote did not fork a child in time")
            pid = self.running = started["pid"]
            used_templates = bool(started.get("templates"))
            template_error: str | None = started.get("template_error")
            clock = PhaseClock(_progress_path(request), timeout,
                               hard_deadline_grace(int(request.get("interpreters", 1))))
            while True:
                finished = self.reader.read(min(clock.deadline(), time.monotonic() + POLL_S))
                if finished is not None:
                    self.running = None
                    return ChildExit(finished["status"], max_rss_kb=finished.get("max_rss_kb"),
                                     zygote_rss_kb=finished.get("zygote_rss_kb"), templates=used_templates,
                                     template_error=template_error)
                if time.monotonic() >= clock.deadline():
                    break
            _kill_child(pid)
            finished = self.reader.read(time.monotonic() + 30)
            self.running = None
            return ChildExit(finished["status"] if finished else None, killed_after_deadline=True,
                             templates=used_templates, template_error=template_error)
        except (EOFError, OSError, ValueError) as exc:
            if pid is not None:
                _kill_child(pid)
            error = f"the pytest-subinterp zygote failed: {exc}"
            if pid is not None and self.proc is not None:
                try:
                    code = self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                error = ZYGOTE_DIED.format(pid=self.proc.pid, how=_status_text(code), child=pid)
            self.running = None
            self.close()
            return ChildExit(None, infrastructure_error=error)
        except BaseException:
            # KeyboardInterrupt (Ctrl-C, or SIGTERM through lifecycle.TerminateAsInterrupt):
            # the battery stops now, with whatever it started.
            if pid is not None:
                _kill_child(pid)
            raise

    def close(self) -> None:
        """Stop the zygote: first the running battery's process group, then the zygote itself
        (an exit command; it kills its spare child), then what a test left running outside its
        group (lifecycle.kill_strays); never a long wait."""
        if self.running is not None:
            _kill_child(self.running)
            self.running = None
        if self.proc is None:
            return
        self._stop_zygote()
        lifecycle.kill_strays(self.instance)

    def _stop_zygote(self) -> None:
        assert self.proc is not None
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.write(b'{"cmd": "exit"}\n')
                self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
        self.ready = False


def run_process(argv: list[str], cwd: Path, deadline_s: float, env: dict[str, str] | None = None,
                progress: Path | None = None, grace: float = 0.0) -> ChildExit:
    """Run `argv` as a new session (process group) and wait; after `deadline_s` seconds (per
    phase when `progress` is given, see PhaseClock, plus `grace`) kill the whole group.  Used for
    spawned batteries and for ``check``'s memory child."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True)
    clock = PhaseClock(progress, deadline_s, grace)
    killed = False
    try:
        while True:
            try:
                proc.wait(timeout=max(0.0, min(clock.deadline() - time.monotonic(), POLL_S)))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= clock.deadline():
                    _kill_child(proc.pid)
                    proc.wait()
                    killed = True
                    break
    except BaseException:
        _kill_child(proc.pid)
        proc.wait()
        raise
    code = proc.returncode
    status = (-code) if code < 0 else (code << 8)  # the os.waitpid encoding
    return ChildExit(status, killed_after_deadline=killed)


class Spawner:
    """Spawns one child per battery (platforms without fork, or --subinterp-start=spawn)."""

    holds_templates = False

    def start_early(self, templates: Sequence[TemplateRequest]) -> None:
        """Nothing to start ahead."""

    def __init__(self, cwd: Path, log_dir: Path, token: str | None = None) -> None:
        self.cwd = cwd
        self.log_dir = log_dir
        self.token = token or lifecycle.session_token()
        self.instance = lifecycle.new_instance()
        self.janitor: lifecycle.Janitor | None = None

    def ensure_started(self) -> str | None:
        """Check that the C helper imports in this Python."""
        try:
            from pytest_subinterp import _subinterp  # noqa: F401
        except ImportError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def run(self, request: BatteryRequest, timeout: float) -> ChildExit:
        """Run one battery in a new process (`timeout` per phase, see PhaseClock)."""
        request_path = Path(request["dir"]) / "request.json"
        request_path.write_text(json.dumps(request))
        env = lifecycle.child_environment(self.token, str(self.log_dir), self.instance)
        if self.janitor is None:  # started with the first battery: a session may run none
            self.janitor = lifecycle.Janitor(env)
        return run_process([sys.executable, "-m", "pytest_subinterp.child", str(request_path)], self.cwd,
                           timeout, env=env,
                           progress=_progress_path(request),
                           grace=hard_deadline_grace(int(request.get("interpreters", 1))))

    def close(self) -> None:
        """Stop the janitor (it removes the work dir; the controller does too), then what a
        test left running outside its battery's group (lifecycle.kill_strays)."""
        if self.janitor is not None:
            self.janitor.close()
            self.janitor = None
            lifecycle.kill_strays(self.instance)


def make_launcher(cwd: Path, log_dir: Path, start: str = "template", token: str | None = None) -> Zygote | Spawner:
    """The zygote where fork is available (holding template interpreters for start=template),
    else the spawner.  `token`: the session's PYTEST_SUBINTERP_SESSION (lifecycle.py)."""
    if hasattr(os, "fork") and start != "spawn":
        return Zygote(cwd, log_dir, "template" if start == "template" else "fork", token)
    return Spawner(cwd, log_dir, token)
