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


def _prepare_environment(request: dict[str, Any]) -> None:
    os.chdir(request["cwd"])
    prepare_environment_variables()


def write_json_atomically(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def run_battery(request: dict[str, Any], populated: bool = False) -> None:
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
    if request.get("role") == "control":
        result = _template_control(request)
    elif request.get("leaks", "off") == "off":
        result = _battery(request, request["spec"], "test", templates=bool(request.get("use_templates")))
    elif request.get("use_templates"):
        result = _template_battery_with_cached_control(request)
    else:
        result = _battery_with_leak_control(request)
    write_json_atomically(directory / RESULT_FILE, result)


def _battery(request: dict[str, Any], spec: dict[str, Any], label: str, single: bool = False,
             templates: bool = False) -> dict[str, Any]:
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


def _template_control(request: dict[str, Any]) -> dict[str, Any]:
    """The control of template batteries: the trivial test in the inherited templates, measured.
    Every child forked from the zygote starts from the same memory, so one control serves every
    battery of the same shape (the controller caches it)."""
    from pytest_subinterp import leaks

    before = leaks.process_memory()
    result = _battery(request, request["control_spec"], "control", templates=True)
    result["leaks"] = {"measured": leaks.difference(before, leaks.process_memory())}
    return result


def errors_of(result: dict[str, Any]) -> list[str]:
    """The interpreters' creation and entry errors of one battery result."""
    return [slot["entry_error"] or slot["create_error"] for slot in result["interpreters"]
            if slot["entry_error"] or slot["create_error"]]


def _template_battery_with_cached_control(request: dict[str, Any]) -> dict[str, Any]:
    """The test's battery in the inherited templates, measured against the cached control (see
    _template_control); when it retained more, the lifetime series decides, as without templates."""
    from pytest_subinterp import leaks

    before = leaks.process_memory()
    result = _battery(request, request["spec"], "test", templates=True)
    control = request["template_control"]
    info: dict[str, Any] = {
        "control": control["measured"],
        "test": leaks.difference(before, leaks.process_memory()),
        "control_errors": control["errors"],
        "series": [],
    }
    if not result["hung"] and leaks.suspicious(info["test"], info["control"], request["interpreters"],
                                               request["config"]):
        if request["spec"].get("unfreeze"):
            _lifetime_series(request, info)
        else:
            info["needs_unfrozen"] = True  # the controller runs it again unfrozen (session.py)
    result["leaks"] = info
    return result


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
        "control_errors": errors_of(control),
        "series": [],
    }
    if not result["hung"] and not control["hung"] and leaks.suspicious(
            info["test"], info["control"], request["interpreters"], request["config"]):
        _lifetime_series(request, info)
    result["leaks"] = info
    return result


def _lifetime_series(request: dict[str, Any], info: dict[str, Any]) -> None:
    """Sequential single-interpreter lifetimes (fresh interpreters), test and control alternating."""
    from pytest_subinterp import leaks

    quiet = {**request["spec"], "leaks": False}
    quiet_control = {**request["control_spec"], "leaks": False}
    for index in range(leaks.SERIES_WARMUP + leaks.SERIES_MEASURED):
        start = leaks.process_memory()
        _battery(request, quiet, "lifetime-test", single=True)
        mid = leaks.process_memory()
        _battery(request, quiet_control, "lifetime-control", single=True)
        end = leaks.process_memory()
        info["series"].append({"warmup": index < leaks.SERIES_WARMUP,
                               "test": leaks.difference(start, mid),
                               "control": leaks.difference(mid, end)})


def main_spare(request_fd: int) -> None:
    """A spare child of the template zygote: copy the inherited memory now, while the current
    battery runs, then wait for a request (EOF: not needed after all)."""
    from pytest_subinterp import _subinterp

    try:
        _subinterp.populate_memory()
        chunks = []
        while chunk := os.read(request_fd, 1 << 16):
            chunks.append(chunk)
        os.close(request_fd)
    except BaseException:  # noqa: BLE001 - the zygote notices a missing result
        os._exit(EXIT_INTERNAL_ERROR)
    if not chunks:
        os._exit(0)
    main_after_fork(json.loads(b"".join(chunks)), populated=True)


def main_after_fork(request: dict[str, Any], populated: bool = False) -> None:
    """Child side of a fork: run, then leave without running any at-exit code."""
    code = 0
    try:
        if hasattr(os, "setpgid"):
            try:
                os.setpgid(0, 0)  # the controller can kill anything the test started, too
            except PermissionError:
                pass  # spawned with start_new_session: already a group leader
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
    main_after_fork(request)


if __name__ == "__main__":
    main()
