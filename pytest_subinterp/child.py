"""One battery in a disposable child process: run the C helper, write the result, exit.

Forked from the zygote (or spawned with ``python -m pytest_subinterp.child REQUEST.json``).
The child never imports the code under test in its main interpreter: only the sub-interpreters
do.  It always leaves with ``os._exit`` so that CPython's own at-exit crashes after
sub-interpreters (see quirks.py) cannot turn a finished battery into a crash.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

ENTRY = "pytest_subinterp.inner:run"
RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.log"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
ERROR_FILE = "child-error.txt"
EXIT_INTERNAL_ERROR = 70


def _redirect_output(directory: Path) -> int:
    """Point fds 1 and 2 at files of the battery directory; return the progress fd."""
    for fd, name in ((1, STDOUT_FILE), (2, STDERR_FILE)):
        target = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    return os.open(directory / PROGRESS_FILE, flags, 0o644)


def _prepare_environment(request: dict[str, Any]) -> None:
    os.chdir(request["cwd"])
    # Inner sessions load exactly the plugins the controller lists (see session.py).
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    os.environ.pop("PYTEST_ADDOPTS", None)
    os.environ.pop("PYTEST_XDIST_WORKER", None)


def _write_json_atomically(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def run_battery(request: dict[str, Any]) -> None:
    """Run the battery described by `request` and write its result; returns normally."""
    directory = Path(request["dir"])
    progress_fd = _redirect_output(directory)
    _prepare_environment(request)
    from pytest_subinterp import _subinterp

    _subinterp.install_crash_handler(progress_fd)
    if request.get("leaks", "off") == "off":
        result = _battery(request, request["spec"], "test")
    else:
        result = _battery_with_leak_control(request)
    _write_json_atomically(directory / RESULT_FILE, result)


def _battery(request: dict[str, Any], spec: dict[str, Any], label: str, single: bool = False) -> dict[str, Any]:
    """One run of the C helper; `single`: one interpreter, one thread, one round."""
    from pytest_subinterp import _subinterp

    _subinterp.breadcrumb(f"battery {label}")
    return _subinterp.run_battery(
        config=request["config"],
        interpreters=1 if single else request["interpreters"],
        threads=1 if single else request["threads"],
        rounds=1 if single else request["rounds"],
        entry=request.get("entry", ENTRY),  # check runs pytest_subinterp.checkentry
        arg=json.dumps(spec),
        timeout=float(request["timeout"]),
    )


def _battery_with_leak_control(request: dict[str, Any]) -> dict[str, Any]:
    """The test's battery between measurements, after a control battery (a trivial test, the
    same steps) that also absorbs the process's one-time costs; when the test retained more
    than the control, sequential single-interpreter lifetimes decide (leaks.py)."""
    from pytest_subinterp import leaks

    control_spec = request["control_spec"]
    # The first battery of a shape in a process retains one-time costs: ~250 KB for the first
    # isolated lifetime on 3.13, ~600 KB for a first 2x4 legacy battery on 3.11 (thread caches
    # of the allocator; a single-interpreter warm-up does not absorb it).  A warm-up battery of
    # the same shape does: then the control matches a correct module's battery within a few KiB.
    _battery(request, control_spec, "warm-up")
    before = leaks.process_memory()
    control = _battery(request, control_spec, "control")
    middle = leaks.process_memory()
    result = _battery(request, request["spec"], "test")
    after = leaks.process_memory()
    info: dict[str, Any] = {
        "control": leaks.difference(before, middle),
        "test": leaks.difference(middle, after),
        "control_errors": [slot["entry_error"] or slot["create_error"] for slot in control["interpreters"]
                           if slot["entry_error"] or slot["create_error"]],
        "series": [],
    }
    if not result["hung"] and not control["hung"] and leaks.suspicious(
            info["test"], info["control"], request["interpreters"], request["config"]):
        quiet = {**request["spec"], "leaks": False}
        quiet_control = {**control_spec, "leaks": False}
        for index in range(leaks.SERIES_WARMUP + leaks.SERIES_MEASURED):
            start = leaks.process_memory()
            _battery(request, quiet, "lifetime-test", single=True)
            mid = leaks.process_memory()
            _battery(request, quiet_control, "lifetime-control", single=True)
            end = leaks.process_memory()
            info["series"].append({"warmup": index < leaks.SERIES_WARMUP,
                                   "test": leaks.difference(start, mid),
                                   "control": leaks.difference(mid, end)})
    result["leaks"] = info
    return result


def main_after_fork(request: dict[str, Any]) -> None:
    """Child side of a fork: run, then leave without running any at-exit code."""
    code = 0
    try:
        if hasattr(os, "setpgid"):
            try:
                os.setpgid(0, 0)  # the controller can kill anything the test started, too
            except PermissionError:
                pass  # spawned with start_new_session: already a group leader
        run_battery(request)
    except BaseException:  # noqa: BLE001 - the controller reports it
        code = EXIT_INTERNAL_ERROR
        try:
            (Path(request["dir"]) / ERROR_FILE).write_text(traceback.format_exc())
        except OSError:
            pass
    finally:
        os._exit(code)


def main(argv: list[str] | None = None) -> None:
    """Spawn entry point: ``python -m pytest_subinterp.child REQUEST.json``."""
    args = sys.argv[1:] if argv is None else argv
    request = json.loads(Path(args[0]).read_text())
    # Same start as a zygote child: pytest (and with it _datetime) imported in the main
    # interpreter first.  On 3.13.0, isolated interpreters that import _datetime before the main
    # interpreter did can abort when they end (CPYTHON-QUIRKS: crash 5).
    import pytest  # noqa: F401
    main_after_fork(request)


if __name__ == "__main__":
    main()
