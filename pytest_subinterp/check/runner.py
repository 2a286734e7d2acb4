"""Runs ``check``'s probes in child processes, with the plugin's own launcher.

The import and threads probes are batteries of ``entry.run`` in a child of the plugin's zygote
(or spawner) from ``workermanage.py``, run by ``child.py`` as any battery; the memory probe is
``python -m pytest_subinterp.check.entry`` started by ``workermanage.run_process``, since it needs
its own allocator settings from the first instruction.  Each probe gets a directory of its own
and leaves a :class:`Step` behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_subinterp import child, quirks
from pytest_subinterp.check import entry
from pytest_subinterp.workermanage import HARD_DEADLINE_GRACE_S, ChildExit, make_launcher, run_process

if TYPE_CHECKING:
    from pytest_subinterp.protocol import BatteryRequest


@dataclass
class Step:
    """What one child process left behind."""

    exit: ChildExit
    result: dict[str, Any] | None
    progress: str
    stderr: str
    child_error: str | None


class Runner:
    """Runs the check steps in child processes of one working directory."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        # check's own entry never runs in template interpreters
        start = "spawn" if os.environ.get("PYTEST_SUBINTERP_START") == "spawn" else "fork"
        self.launcher = make_launcher(Path.cwd(), workdir, start)
        self.counter = 0
        # Sub-interpreters get sys.path from the path config only: pass this command's, so that
        # modules next to the caller (sys.path[0]) are found as `python -c "import m"` finds them.
        self.path = [os.path.abspath(p) for p in sys.path]

    def close(self) -> None:
        """Stop the zygote."""
        self.launcher.close()

    def _new_dir(self) -> Path:
        self.counter += 1
        directory = self.workdir / f"step-{self.counter}"
        directory.mkdir()
        return directory

    def spec(self, module: str, config: str, mode: str) -> dict[str, Any]:
        """The request of entry.run."""
        return {"module": module, "mode": mode, "path": self.path,
                "block_modules": quirks.blocked_modules(config), "getters": self.args.getters}

    def battery(self, module: str, config: str, mode: str, interps: int, threads: int) -> Step:
        """One battery of entry.run in a zygote/spawned child.  Thread t visits interpreter
        (t + j) % K in round j: K rounds make every thread import in every interpreter."""
        directory = self._new_dir()
        request: BatteryRequest = {
            "dir": str(directory), "cwd": str(Path.cwd()), "config": config,
            "interpreters": interps, "threads": threads, "rounds": interps,
            "timeout": self.args.timeout, "spec": self.spec(module, config, mode),
            "entry": entry.ENTRY,
        }
        exit_info = self.launcher.run(request, self.args.timeout)
        return self._collect(directory, exit_info, child.RESULT_FILE)

    def memory(self, module: str, config: str) -> Step:
        """Sequential batteries in the memory child (python -m pytest_subinterp.check.entry)."""
        directory = self._new_dir()
        request = {
            "dir": str(directory), "config": config, "module": module,
            "rounds": self.args.memory_rounds, "timeout": self.args.timeout,
            "spec": self.spec(module, config, "memory"),
        }
        request_path = directory / "request.json"
        request_path.write_text(json.dumps(request))
        # malloc, not obmalloc: an ended isolated interpreter keeps its obmalloc arenas (quirks).
        # One malloc arena: per-thread arenas (one creator thread per interpreter) would add
        # noise of their own.
        env = {**os.environ, "PYTHONMALLOC": "malloc", "MALLOC_ARENA_MAX": "1"}
        budget = self.args.timeout * 2 * (self.args.memory_rounds + 1) + HARD_DEADLINE_GRACE_S
        exit_info = run_process([sys.executable, "-m", "pytest_subinterp.check.entry", str(request_path)],
                                Path.cwd(), budget, env)
        return self._collect(directory, exit_info, entry.MEMORY_RESULT_FILE)

    @staticmethod
    def _collect(directory: Path, exit_info: ChildExit, result_file: str) -> Step:
        text = child.read_file(directory / result_file)
        step = Step(exit_info, json.loads(text) if text else None,
                    child.read_file(directory / child.PROGRESS_FILE), child.read_file(directory / child.STDERR_FILE),
                    child.read_file(directory / child.ERROR_FILE) or None)
        shutil.rmtree(directory, ignore_errors=True)
        return step
