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
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_subinterp.protocol import BatteryRequest, HelperResult

from pytest_subinterp import lifecycle

ENTRY = "pytest_subinterp.inner:run"
RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.log"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
ERROR_FILE = "child-error.txt"
EXIT_INTERNAL_ERROR = 70
# The battery hung with a thread holding the GIL the main interpreter shares (legacy): the C
# watchdog wrote the stacks it could read without the GIL and ended the child with this code.
EXIT_HUNG_GIL_HELD = 71


def redirect_output(directory: Path) -> int:
    """Point fds 1 and 2 at files of the battery directory; return the progress fd."""
    for fd, name in ((1, STDOUT_FILE), (2, STDERR_FILE)):
        target = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    return os.open(directory / PROGRESS_FILE, flags, 0o644)


def prepare_environment_variables() -> None:
    """Inner sessions load exactly the plugins the controller lists (see session.py)."""
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    os.environ.pop("PYTEST_ADDOPTS", None)
    os.environ.pop("PYTEST_XDIST_WORKER", None)


def _prepare_environment(request: BatteryRequest) -> None:
    os.chdir(request["cwd"])
    prepare_environment_variables()


def write_json_atomically(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def run_battery(request: BatteryRequest, populated: bool = False) -> None:
    """Run the battery described by `request` and write its result; returns normally.

    `populated`: this child already copied the zygote's memory (a spare child)."""
    directory = Path(request["dir"])
    progress_fd = redirect_output(directory)
    _prepare_environment(request)
    from pytest_subinterp import _subinterp

    _subinterp.install_crash_handler(progress_fd)
    if request.get("use_templates") and not populated:
        # Ending the inherited templates would otherwise copy the pages one fault at a time.
        _subinterp.populate_memory()
    from pytest_subinterp import resources

    too_big = resources.shortfall(request["config"], request["interpreters"], request["threads"])
    if too_big is not None:
        result: HelperResult = unfit_result(request, too_big)
    elif request.get("role") == "control" or request.get("leak_policy", "off") != "off":
        from pytest_subinterp.leaks import sequence

        result = sequence.run(request)
    else:
        result = run_helper(request, request["spec"], "test", templates=bool(request.get("use_templates")))
    result["closed_std_fds"] = closed_std_fds()
    write_json_atomically(directory / RESULT_FILE, result)


def unfit_result(request: BatteryRequest, reason: str) -> HelperResult:
    """The result of a battery that was not started because it cannot fit in this process
    (resources.py): interpreter 1's creation fails with the reason, nothing else ran."""
    error = (f"the battery was not started: it needs {reason}; lower interpreters=/threads= or give the "
             f"process more memory")
    return {"interpreters": [{"index": 0, "id": -1, "created": False, "ended": False, "create_error": error,
                              "entry_output": None, "entry_error": None, "end_error": None,
                              "create_s": 0.0, "run_s": 0.0, "end_s": 0.0}],
            "calls": [], "hung": False, "generations": 0, "wall_s": 0.0}


def closed_std_fds() -> list[int]:
    """Which of fds 0, 1 and 2 the battery closed (the test's doing: the child left them open)."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    return closed


def run_helper(request: BatteryRequest, spec: Mapping[str, Any], label: str, single: bool = False,
               templates: bool = False) -> HelperResult:
    """One run of the C helper; `single`: one interpreter, one thread, one round; `templates`:
    in the template interpreters inherited from the zygote instead of fresh ones."""
    from pytest_subinterp import _subinterp

    _subinterp.breadcrumb(f"battery {label}{' (templates)' if templates else ''}")
    return _subinterp.run_battery(
        config=request["config"],
        interpreters=1 if single else request["interpreters"],
        threads=1 if single else request["threads"],
        rounds=1 if single else request["rounds"],
        entry=request.get("entry", ENTRY),  # check runs pytest_subinterp.check.entry
        arg=json.dumps({**spec, "template": templates}),
        timeout=float(request["timeout"]),
        templates=templates,
    )


def read_file(path: Path) -> str:
    """One file a battery child left in its directory (read by the controller): "" when the
    child died before writing it."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def read_result(directory: Path) -> HelperResult | None:
    """The result a battery child wrote in `directory` (read by the controller), or None if it
    died first."""
    text = read_file(directory / RESULT_FILE)
    result: HelperResult | None = json.loads(text) if text else None
    return result


def errors_of(result: HelperResult) -> list[str]:
    """The interpreters' creation and entry errors of one battery result."""
    return [str(slot["entry_error"] or slot["create_error"]) for slot in result["interpreters"]
            if slot["entry_error"] or slot["create_error"]]


def after_fork(parent: int) -> None:
    """First thing in a child of the zygote (or of pytest, spawned): the zygote's SIGTERM
    handler is not ours, and the child ends when `parent` does (lifecycle.py).  SIGINT stays
    ignored while the child is in the controller's process group (a spare child is)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    lifecycle.end_with_parent(parent, signal.SIGKILL)


def main_after_fork(request: BatteryRequest, populated: bool = False, parent: int | None = None) -> None:
    """Child side of a fork: run, then leave without running any at-exit code.  `parent`: the
    pid of the process that forked this one (None: already armed, see after_fork)."""
    code = 0
    try:
        if parent is not None:
            after_fork(parent)
        if hasattr(os, "setpgid"):
            try:
                os.setpgid(0, 0)  # the controller can kill anything the test started, too
            except PermissionError:
                pass  # spawned with start_new_session: already a group leader
        import signal

        signal.signal(signal.SIGINT, signal.default_int_handler)  # out of the terminal's group now
        run_battery(request, populated)
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
    # interpreter did can abort when they end (docs/cpython-quirks.md, 3.13.0 _datetime).
    import pytest  # noqa: F401
    parent = os.environ.get(lifecycle.PARENT_ENV)
    main_after_fork(request, parent=int(parent) if parent else None)


if __name__ == "__main__":
    main()
