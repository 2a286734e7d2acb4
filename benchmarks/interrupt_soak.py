"""Soak: pytest sessions interrupted at random moments by random signals leave nothing behind (#13).

Each session runs a few marked tests (some of which sleep inside their battery) with its own
PYTEST_SUBINTERP_SESSION token and TMPDIR; after a random delay it gets SIGINT, SIGINT to its
process group, SIGTERM or SIGKILL.  Afterwards no process may carry the token and no
``pytest-subinterp-*`` work dir may be left.  Linux only (reads /proc).

    python benchmarks/interrupt_soak.py [--sessions 30] [--seed N] [--python PYTHON] [--start MODE]

``--start``: the sessions' --subinterp-start (template, fork or spawn; default: the plugin's).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_subinterp import lifecycle

SESSION_ENV = lifecycle.SESSION_ENV
SETTLE_S = 5.0

TESTS = '''
import time
import pytest

@pytest.mark.subinterp(threads=2, interpreters=2)
def test_quick():
    pass

@pytest.mark.subinterp(threads=1, interpreters=1)
def test_sleeps():
    time.sleep(3)

@pytest.mark.subinterp(threads=2, interpreters=1, config="legacy")
def test_legacy():
    time.sleep(0.5)

def test_plain():
    time.sleep(0.3)
'''

SIGNALS = {
    "SIGINT": lambda proc: os.kill(proc.pid, signal.SIGINT),
    "SIGINT-group": lambda proc: os.killpg(proc.pid, signal.SIGINT),
    "SIGTERM": lambda proc: os.kill(proc.pid, signal.SIGTERM),
    "SIGKILL": lambda proc: os.kill(proc.pid, signal.SIGKILL),
}


session_pids = lifecycle.session_pids


def one_session(python: str, rng: random.Random, root: Path, index: int, start: str | None) -> dict[str, object]:
    work = root / f"session-{index}"
    (work / "tmp").mkdir(parents=True)
    (work / "test_soak.py").write_text(TESTS)
    token = f"soak-{secrets.token_hex(6)}"
    env = {**os.environ, SESSION_ENV: token, "TMPDIR": str(work / "tmp")}
    env.pop("PYTEST_ADDOPTS", None)
    name = rng.choice(sorted(SIGNALS))
    delay = rng.uniform(0.3, 4.0)
    start_args = [f"--subinterp-start={start}"] if start else []
    proc = subprocess.Popen([python, "-m", "pytest", "-p", "no:cacheprovider", "-q", *start_args, "test_soak.py"],
                            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    time.sleep(delay)
    running_before = len(session_pids(token))
    sent = time.monotonic()
    finished_first = proc.poll() is not None
    if not finished_first:
        SIGNALS[name](proc)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    exit_s = time.monotonic() - sent
    deadline = time.monotonic() + SETTLE_S
    while (left := session_pids(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    dirs = sorted(p.name for p in (work / "tmp").glob("pytest-subinterp-*"))
    for pid in left:  # never leave them running, even when the soak fails
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return {"signal": name, "delay_s": round(delay, 2), "processes_during": running_before,
            "exit_s": round(exit_s, 2), "returncode": proc.returncode, "finished_first": finished_first,
            "processes_left": len(left), "dirs_left": len(dirs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--start", choices=["template", "fork", "spawn"], default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="interrupt-soak-") as root:
        for index in range(args.sessions):
            row = one_session(args.python, rng, Path(root), index, args.start)
            rows.append(row)
            print(f"{index + 1:3d} {row['signal']:<13} after {row['delay_s']:4.2f} s: exit in {row['exit_s']:5.2f} s "
                  f"(rc {row['returncode']}, {row['processes_during']} processes before), left: "
                  f"{row['processes_left']} processes, {row['dirs_left']} work dirs", flush=True)
    by_signal: dict[str, list[float]] = {}
    for row in rows:
        if not row["finished_first"]:
            by_signal.setdefault(str(row["signal"]), []).append(float(row["exit_s"]))  # type: ignore[arg-type]
    left = sum(int(row["processes_left"]) for row in rows)  # type: ignore[call-overload]
    dirs = sum(int(row["dirs_left"]) for row in rows)  # type: ignore[call-overload]
    print(f"seed {seed}: {len(rows)} sessions; signals: "
          + ", ".join(f"{name} x{len(times)} (exit max {max(times):.2f} s)" for name, times in sorted(by_signal.items())))
    print(f"left behind: {left} processes, {dirs} work dirs")
    return 1 if left or dirs else 0


if __name__ == "__main__":
    sys.exit(main())
