"""Every process the plugin starts ends with the session, however the session ends (#13).

Each scenario starts a real pytest session in a subprocess with its own
PYTEST_SUBINTERP_SESSION token and TMPDIR, interrupts it while a battery runs, then looks for
any process carrying the token (/proc/*/environ) and for a work dir left in TMPDIR.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_subinterp import lifecycle, messages
from pytest_subinterp.workermanage import PhaseClock, Zygote

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# How long the processes of a session may take to go after pytest itself is gone.
SETTLE_S = 5.0


session_pids = lifecycle.session_pids


def wait_gone(token: str, timeout: float = SETTLE_S) -> list[int]:
    deadline = time.monotonic() + timeout
    while (pids := session_pids(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


class Session:
    """A pytest session in a subprocess whose marked test signals when its battery runs."""

    def __init__(self, tmp_path: Path, body: str = "time.sleep(60)", extra: str = "",
                 args: tuple[str, ...] = ()) -> None:
        self.dir = tmp_path / "project"
        self.dir.mkdir()
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir()
        self.marker = tmp_path / "battery-running"
        self.json = tmp_path / "report.json"
        self.junit = tmp_path / "junit.xml"
        self.token = "test-" + secrets.token_hex(6)
        source = textwrap.dedent(f"""
            import os, signal, time
            import pytest

            @pytest.mark.subinterp(threads=1, interpreters=1, timeout=120)
            def test_a_running():
                open({str(self.marker)!r}, "w").close()
                {body}
        """)
        (self.dir / "test_life.py").write_text(source + textwrap.dedent(extra))
        env = {**os.environ, lifecycle.SESSION_ENV: self.token, "TMPDIR": str(self.tmpdir)}
        env.pop("PYTEST_ADDOPTS", None)
        env.pop("PYTEST_XDIST_WORKER", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--subinterp-leaks=off",
             f"--subinterp-report={self.json}", f"--junitxml={self.junit}", *args, "test_life.py"],
            cwd=self.dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)

    def wait_battery(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            assert self.proc.poll() is None, self.proc.communicate()[0].decode()
            assert time.monotonic() < deadline, "the battery never started"
            time.sleep(0.02)
        time.sleep(0.2)  # well inside the test's body

    def finish(self, timeout: float = 30) -> tuple[int, str, float]:
        start = time.monotonic()
        output, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, output.decode(errors="replace"), time.monotonic() - start

    def leftovers(self) -> tuple[list[int], list[str]]:
        pids = wait_gone(self.token)
        deadline = time.monotonic() + SETTLE_S
        while (dirs := sorted(p.name for p in self.tmpdir.glob("pytest-subinterp-*"))) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        return pids, dirs

    def kill_everything(self) -> None:
        for pid in session_pids(self.token):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def session_factory(tmp_path: Path):
    sessions: list[Session] = []

    def make(**kwargs) -> Session:
        session = Session(tmp_path, **kwargs)
        sessions.append(session)
        return session

    yield make
    for session in sessions:  # never leave a process behind, even when a test fails
        if session.proc.poll() is None:
            session.proc.kill()
            session.proc.wait()
        session.kill_everything()


@pytest.mark.parametrize("target", ["pid", "group"])
def test_sigint_stops_the_session_and_every_process(session_factory, target):
    """Ctrl-C (to pytest, or to its process group): the session stops within 2 s, prints the
    summary, writes the JSON report marked interrupted, and leaves no process and no work dir."""
    session = session_factory()
    session.wait_battery()
    if target == "pid":
        os.kill(session.proc.pid, signal.SIGINT)
    else:
        os.killpg(session.proc.pid, signal.SIGINT)
    code, output, seconds = session.finish()
    assert seconds < 2.0, output
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert json.loads(session.json.read_text())["interrupted"] is True
    assert session.leftovers() == ([], [])


def test_sigterm_ends_the_session_like_ctrl_c(session_factory):
    """SIGTERM: as pytest does on KeyboardInterrupt, with the junit and JSON files written."""
    session = session_factory()
    session.wait_battery()
    os.kill(session.proc.pid, signal.SIGTERM)
    code, output, seconds = session.finish()
    assert seconds < 2.0, output
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert json.loads(session.json.read_text())["interrupted"] is True
    assert session.junit.exists()
    assert session.leftovers() == ([], [])


def test_sigkill_of_pytest_leaves_nothing(session_factory):
    """pytest killed from outside (a CI job timeout): its zygote gets the parent-death signal,
    kills the battery child and the spare, and removes the work dir."""
    session = session_factory()
    session.wait_battery()
    assert len(session_pids(session.token)) >= 3  # pytest, the zygote, the battery child
    os.kill(session.proc.pid, signal.SIGKILL)
    session.finish()
    assert session.leftovers() == ([], [])


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # gone meanwhile


def test_sigkill_of_pytest_in_spawn_mode_leaves_nothing(session_factory):
    """Spawned batteries (no zygote): the battery child gets SIGKILL from the kernel and the
    janitor removes the work dir."""
    session = session_factory(args=("--subinterp-start=spawn",))
    session.wait_battery()
    janitors = [pid for pid in session_pids(session.token) if b"janitor_main" in _cmdline(pid)]
    assert len(janitors) == 1
    assert len(list(session.tmpdir.glob("pytest-subinterp-*"))) == 1
    os.kill(session.proc.pid, signal.SIGKILL)
    session.finish()
    assert session.leftovers() == ([], [])


def test_spawn_mode_normal_end_stops_the_janitor(session_factory):
    session = session_factory(body="pass", args=("--subinterp-start=spawn",))
    code, output, _ = session.finish(timeout=120)
    assert code == 0, output
    assert session_pids(session.token) == []  # finish() waited for pytest: nothing may be left
    assert list(session.tmpdir.glob("pytest-subinterp-*")) == []


# A daemon the test starts in a new session (its own process group), recording its pid.
DAEMON_BODY = ("import subprocess, sys; "
               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], start_new_session=True)")


@pytest.mark.parametrize("start", ["template", "spawn"])
@pytest.mark.parametrize("end", ["normal", "sigkill"])
def test_a_daemon_a_test_moved_out_of_its_group_ends_with_the_session(session_factory, start, end):
    """setsid() takes a process out of its battery's group, so killing the group misses it; it
    still carries the launcher's PYTEST_SUBINTERP_INSTANCE and is killed when the session ends."""
    session = session_factory(body=DAEMON_BODY + ("" if end == "normal" else "; time.sleep(60)"),
                              args=(f"--subinterp-start={start}",))
    if end == "sigkill":
        session.wait_battery()
        deadline = time.monotonic() + 10
        while not any(b"time.sleep(300)" in _cmdline(pid) for pid in session_pids(session.token)):
            assert time.monotonic() < deadline, "the daemon never started"
            time.sleep(0.05)
        os.kill(session.proc.pid, signal.SIGKILL)
    code, output, _ = session.finish(timeout=120)
    if end == "normal":
        assert code == 0, output
    pids, dirs = session.leftovers()
    assert (pids, dirs) == ([], []), [_cmdline(pid) for pid in pids]


def test_zygote_killed_mid_battery_is_a_per_test_error_and_the_session_recovers(session_factory):
    """kill -9 of the zygote: its battery child goes too, that test gets an error naming it,
    the next test runs in a new zygote."""
    session = session_factory(extra="""
        @pytest.mark.subinterp(threads=1, interpreters=1)
        def test_b_after():
            pass
    """)
    session.wait_battery()
    zygotes = [pid for pid in session_pids(session.token)
               if b"pytest_subinterp.zygote" in _cmdline(pid)
               and Path(f"/proc/{pid}/stat").read_text().split()[3] == str(session.proc.pid)]
    assert len(zygotes) == 1
    os.kill(zygotes[0], signal.SIGKILL)
    code, output, _ = session.finish()
    assert "1 passed, 1 error" in output, output
    assert "test_a_running" in output and "was killed by SIGKILL while this test's battery ran" in output
    assert "INTERNALERROR" not in output
    assert session.leftovers() == ([], [])


def test_test_that_kills_the_zygote_is_named(session_factory):
    """A test that kills its battery child's parent (the zygote) is named as the cause."""
    session = session_factory(body="os.kill(os.getppid(), signal.SIGKILL); time.sleep(60)")
    code, output, _ = session.finish(timeout=60)
    assert "1 error" in output, output
    assert "could not run 'test_life.py::test_a_running'" in output
    assert "the test itself may have killed it" in output
    assert session.leftovers() == ([], [])


def test_zygote_that_cannot_start_is_a_per_test_error(pytester: pytest.Pytester):
    """A zygote that dies while starting: each marked test errors with the reason, never an
    INTERNALERROR; unmarked tests run."""
    pytester.makeconftest("""
        import types
        import pytest_subinterp.workermanage as workermanage
        workermanage.sys = types.SimpleNamespace(executable="/bin/false")
    """)
    pytester.makepyfile("""
        import pytest
        @pytest.mark.subinterp
        def test_marked():
            pass
        def test_plain():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*could not run 'test_*::test_marked': the pytest-subinterp zygote could "
                                 "not start: it exited with code 1 before it was ready*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_closing_the_standard_streams_is_the_tests_fault(pytester: pytest.Pytester):
    pytester.makepyfile("""
        import os
        import pytest
        @pytest.mark.subinterp(threads=1, interpreters=1)
        def test_closes():
            os.close(1)
            os.close(2)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-leaks=off")
    result.assert_outcomes(failed=1)
    expected = messages.CLOSED_STD_STREAMS.format(nodeid="test_closing_the_standard_streams_is_the_tests_fault.py"
                                                  "::test_closes", fds="1, 2")
    result.stdout.fnmatch_lines([f"*{expected[:80]}*"])
    result.stdout.no_fnmatch_line("*pytest-subinterp or of a plugin*")


def test_gh_13_gil_held_hang_is_reported_within_the_timeout_with_leak_checks(pytester: pytest.Pytester):
    """A legacy battery whose thread holds the shared GIL forever (a C call that never returns,
    made with the GIL held): reported hung a few seconds after the timeout, with leak checks on
    (the controller's deadline is per battery of the leak sequence, not timeout x batteries)."""
    pytester.makepyfile("""
        import ctypes
        import pytest
        @pytest.mark.subinterp(threads=2, interpreters=2, config="legacy", timeout=2)
        def test_holds_the_gil():
            ctypes.PyDLL(None).sleep(600)  # PyDLL: the GIL stays held during the call
    """)
    start = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-leaks=fail",
                                           "--subinterp-report=report.json")
    seconds = time.monotonic() - start
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*did not finish within 2 s*", "*holds the GIL that the main interpreter shares*",
                                 "*battery thread 1/2, read without its GIL*"])
    battery = json.loads((pytester.path / "report.json").read_text())["tests"][0]["batteries"][0]
    assert battery["hung"] is True
    # warm-up + control batteries (~1 s each here), the 2 s timeout, ~2 s of stack dump
    assert battery["wall_s"] < 2 + 8, battery["wall_s"]
    assert seconds < 2 + 15


@pytest.mark.unit
def test_phase_clock_restarts_at_each_battery_breadcrumb(tmp_path: Path):
    progress = tmp_path / "progress.log"
    progress.write_text("battery warm-up\n")
    clock = PhaseClock(progress, timeout=1.0, grace=0.5)
    first = clock.deadline()
    time.sleep(0.05)
    assert clock.deadline() == first  # nothing new
    progress.write_text("battery warm-up\nphase call interp=0 thread=0 round=0\nbattery test\n")
    assert clock.deadline() > first
    assert clock.phases == 2


@pytest.mark.unit
def test_zygote_ensure_started_raises_runtime_error_with_the_reason(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("pytest_subinterp.workermanage.sys.executable", "/bin/false")
    zygote = Zygote(tmp_path, tmp_path)
    with pytest.raises(RuntimeError, match="exited with code 1 before it was ready"):
        zygote.ensure_started()
    zygote.close()


@pytest.mark.unit
def test_sigterm_becomes_keyboard_interrupt_only_over_the_default_handler():
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        handler = lifecycle.TerminateAsInterrupt()
        handler.install()
        assert not handler.installed and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        handler.install()
        assert handler.installed
        with pytest.raises(KeyboardInterrupt, match="SIGTERM received"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # a second SIGTERM ends pytest
    finally:
        signal.signal(signal.SIGTERM, previous)
