"""pytest-timeout beside pytest-subinterp (#13): its thread method ends pytest with os._exit
while a battery runs; the zygote and the battery child must go with it, and the work dir too.

Before: the zygote and the battery child stayed alive after pytest-timeout's os._exit."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_subinterp import lifecycle

pytest.importorskip("pytest_timeout")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SESSION_ENV = lifecycle.SESSION_ENV


session_pids = lifecycle.session_pids


def test_timeout_thread_method_leaves_no_process(tmp_path: Path):
    (tmp_path / "tmp").mkdir()
    (tmp_path / "test_hangs.py").write_text(
        "import time\nimport pytest\n\n"
        "@pytest.mark.subinterp(threads=1, interpreters=1, timeout=120)\n"
        "def test_hangs():\n    time.sleep(60)\n")
    token = f"timeout-{secrets.token_hex(6)}"
    env = {**os.environ, SESSION_ENV: token, "TMPDIR": str(tmp_path / "tmp")}
    env.pop("PYTEST_ADDOPTS", None)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--subinterp-leaks=off",
                           "--timeout=3", "--timeout-method=thread", "test_hangs.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    # pytest-timeout's 3 s is the battery timeout (the smaller wins): the battery is reported hung
    # after 3 s by pytest-subinterp, and pytest-timeout's own thread never kills pytest.
    output = proc.stdout + proc.stderr
    assert "'test_hangs.py::test_hangs' did not finish within 3 s" in output, output
    assert proc.returncode == 1, output
    assert time.monotonic() - start < 30
    deadline = time.monotonic() + 5
    while (left := session_pids(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    dirs = sorted(p.name for p in (tmp_path / "tmp").glob("pytest-subinterp-*"))
    for pid in left:
        os.kill(pid, 9)
    assert (left, dirs) == ([], [])
