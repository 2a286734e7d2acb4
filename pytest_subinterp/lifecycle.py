"""Every process the plugin starts ends with the session, however the session ends.

- The zygote and every battery child ask the kernel for a signal when their parent dies (Linux
  ``PR_SET_PDEATHSIG``, armed again after each fork, then checked against a parent that died
  before it was armed); where that signal does not exist (macOS) a thread watches the parent.
- The zygote's signal is SIGTERM: it kills its battery child's process group and its spare
  child, removes the session's work dir and leaves.  A battery child's signal is SIGKILL.
- Every process of a session carries ``PYTEST_SUBINTERP_SESSION=<token>`` in its environment
  (the controller's value, or a new random one), so that a test or a CI script can find them.
- SIGTERM to pytest, while batteries can run, becomes a KeyboardInterrupt in its main thread:
  pytest's interrupted path writes the summary, junit and JSON files and the controller stops
  its processes (see docs/lifecycle.md).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any

SESSION_ENV = "PYTEST_SUBINTERP_SESSION"  # token shared by every process of one session
# A new random value per launcher (never taken from the environment), exported to the zygote and
# every battery child, so inherited by whatever a test starts: the processes carrying it are this
# launcher's descendants, also those a test moved out of its process group (setsid, daemons).
INSTANCE_ENV = "PYTEST_SUBINTERP_INSTANCE"
PARENT_ENV = "PYTEST_SUBINTERP_PARENT"  # pid the zygote (or a spawned child) must outlive
WORKDIR_ENV = "PYTEST_SUBINTERP_WORKDIR"  # what the zygote or the janitor removes when the controller died
WATCH_INTERVAL_S = 0.2  # parent watch where the kernel has no parent-death signal


def session_token() -> str:
    """The session's token: inherited from the environment (a test or a CI script chose it),
    else a new random one."""
    return os.environ.get(SESSION_ENV) or secrets.token_hex(8)


def new_instance() -> str:
    """A launcher's INSTANCE_ENV value."""
    return secrets.token_hex(8)


def child_environment(token: str, workdir: str, instance: str) -> dict[str, str]:
    """The environment of a process the controller starts (the zygote, a spawned child)."""
    return {**os.environ, SESSION_ENV: token, PARENT_ENV: str(os.getpid()), WORKDIR_ENV: workdir,
            INSTANCE_ENV: instance}


def _set_parent_death_signal(signum: int) -> bool:
    try:
        from pytest_subinterp import _subinterp
    except ImportError:
        return _set_parent_death_signal_ctypes(signum)
    return bool(_subinterp.set_parent_death_signal(signum))


def _set_parent_death_signal_ctypes(signum: int) -> bool:
    """Without the C helper (it failed to build or load): the same prctl through ctypes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(1, signum, 0, 0, 0) == 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def end_with_parent(expected_parent: int, signum: int, on_orphan: Any = None, watch: bool = True) -> None:
    """Make this process end when `expected_parent` does: the kernel's parent-death signal, or
    a watching thread (`watch`; the zygote watches its stdin instead: a thread would make every
    later fork a fork of a multi-threaded process).  A parent that died before the signal was
    armed is caught by comparing getppid() afterwards: then `on_orphan()` runs (default: exit at
    once)."""

    def orphaned() -> None:
        if on_orphan is not None:
            on_orphan()
        os._exit(0)

    armed = _set_parent_death_signal(signum)
    if os.getppid() != expected_parent:
        orphaned()
    if not armed and watch:
        def watching() -> None:
            while os.getppid() == expected_parent:
                time.sleep(WATCH_INTERVAL_S)
            orphaned()

        threading.Thread(target=watching, name="pytest-subinterp parent watch", daemon=True).start()


def kill_group(pid: int) -> None:
    """SIGKILL the process group `pid` leads (a battery child and whatever its test started),
    or the process alone when it leads none."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError, OSError):
            pass


def clean_up_orphaned() -> None:
    """The cleanup of the zygote (or the janitor) when its controller died: the processes of
    its instance that are still running, then the session's work dir."""
    instance = os.environ.get(INSTANCE_ENV)
    if instance:
        kill_strays(instance)
    workdir = os.environ.get(WORKDIR_ENV)
    if workdir and os.path.basename(workdir).startswith("pytest-subinterp-"):
        shutil.rmtree(workdir, ignore_errors=True)


def kill_strays(instance: str) -> None:
    """SIGKILL every process (but this one) that carries ``INSTANCE_ENV=instance``: what a test
    started and left running, even outside its battery's process group."""
    for pid in pids_with(INSTANCE_ENV, instance):
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass  # gone meanwhile, or not ours to kill


def janitor_main() -> None:
    """The janitor's program: wait for EOF on stdin (the controller closed the pipe, or died: the
    kernel closes it then, whatever killed it), then clean up as the zygote does (its
    environment names the instance and the work dir: child_environment)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C to pytest's group: pytest decides
    while os.read(0, 4096):
        pass
    clean_up_orphaned()


class Janitor:
    """Removes the session's work dir when the controller goes, however it goes (SIGKILL
    included): a small process that waits for EOF on a pipe only the controller holds.  The
    zygote does this where there is one; spawned batteries (--subinterp-start=spawn, or no
    fork) have only this."""

    def __init__(self, env: dict[str, str]) -> None:
        """`env`: child_environment's, which names the work dir and the instance to clean up."""
        program = "from pytest_subinterp.lifecycle import janitor_main; janitor_main()"
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-c", program], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)

    def close(self) -> None:
        """The session ended normally: let the janitor remove the dir and go."""
        if self.proc is None:
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class TerminateAsInterrupt:
    """SIGTERM -> KeyboardInterrupt in the main thread, while installed (only over the default
    handler: a handler someone else installed is theirs)."""

    def __init__(self) -> None:
        self.previous: Any = None
        self.installed = False

    def install(self) -> None:
        if self.installed or threading.current_thread() is not threading.main_thread():
            return
        try:
            if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
                return
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        except (ValueError, OSError, AttributeError):
            return
        self.installed = True

    def uninstall(self) -> None:
        if not self.installed:
            return
        try:
            if signal.getsignal(signal.SIGTERM) == self._handle:
                signal.signal(signal.SIGTERM, self.previous)
        except (ValueError, OSError):
            pass
        self.installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        # Once: a second SIGTERM during the interrupted path ends the process as usual.
        self.uninstall()
        raise KeyboardInterrupt(f"pytest-subinterp: {signal.Signals(signum).name} received")


def session_pids(token: str) -> list[int]:
    """The processes whose environment carries ``PYTEST_SUBINTERP_SESSION=token``: every process
    of one session (Linux ``/proc``; empty elsewhere).  What the interruption tests and
    benchmarks/interrupt_soak.py look for after a session ended."""
    return pids_with(SESSION_ENV, token)


def pids_with(name: str, value: str) -> list[int]:
    """The processes whose environment has ``name=value`` (Linux ``/proc``; empty elsewhere)."""
    needle = f"{name}={value}".encode()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if needle in environ.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found
