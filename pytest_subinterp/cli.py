"""``pytest-subinterp check MODULE [MODULE ...]``: is a module ready for sub-interpreters?

No tests needed.  For each module and config, in fresh child processes (the plugin's zygote or
spawner, so a crash or hang costs only that check):

1. import it once in one fresh interpreter: imported, refused (CPython's reason), or not found;
   single- or multi-phase; the Py_mod_multiple_interpreters / Py_mod_gil values it declares;
2. import it from T threads at once in K interpreters, then, with all K alive, compare the ids
   of objects reachable from it (attributes, their types, results of its ``get*()`` functions)
   to find objects shared across interpreters; a crash or hang here is reported with its phase;
3. run R sequential interpreters importing it and R importing nothing (the control), with
   ``PYTHONMALLOC=malloc``, and report the resident memory retained per interpreter lifetime
   beyond the control.

Exit status: 0 when every module is fine under every config asked for, 1 otherwise, 2 for a
usage error.  docs/check.md describes the columns and the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_subinterp import __version__, checkentry, child, compat, crash, messages, quirks
from pytest_subinterp.workermanage import HARD_DEADLINE_GRACE_S, ChildExit, make_launcher, run_process

HAS_ISOLATED = sys.version_info >= (3, 12)
JSON_SCHEMA_VERSION = 1
_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_MULTIPLE_INTERPRETERS = {0: "no sub-interpreters", 1: "shared GIL only", 2: "per-interpreter GIL"}
_GIL = {0: "GIL used", 1: "GIL not used"}

# ---- messages: what happened, where, what to do ----
BAD_MODULE_NAME = (
    "'{name}' is not a module name (expected dotted identifiers such as 'package.module'); "
    "pass the name you would import, not a file path"
)
BAD_CONFIG = "must be isolated, legacy or both, got '{config}'"
NO_ISOLATED = (
    "--config {config}: isolated interpreters need Python 3.12+ (this is {version}); "
    "use --config legacy"
)
NOT_FOUND = (
    "module '{module}' was not found in a fresh {config} sub-interpreter ({error}); check the "
    "spelling, and run check from the environment (or directory, or PYTHONPATH) that has it"
)
IMPORT_ERROR = (
    "module '{module}' raised {error_type} when imported in a fresh {config} sub-interpreter: "
    "{error}; module-level code must work in every interpreter (no state of the main one)"
)
THREAD_ERRORS = (
    "importing '{module}' from {threads} threads at once in {interps} {config} interpreters failed "
    "in {failed} of {calls} calls; first (interpreter {interp}/{interps}, thread {thread}/{threads}): "
    "{error}; make Py_mod_exec and module-level code safe to run concurrently"
)
CRASHED = (
    "checking '{module}' crashed the child process with {how} ({where}); {blame}"
)
CRASH_BLAME_MODULE = (
    "the module's init, use or teardown in a sub-interpreter is the likely cause: look for C "
    "statics, static types and state freed per process (m_free)"
)
HUNG = (
    "checking '{module}' did not finish within {timeout:g} s ({where}); the child was stopped: a "
    "deadlock in its init or teardown (PyGILState_* from own threads?); raise --timeout if it is "
    "just slow"
)
STEP_ERROR = "pytest-subinterp could not check '{module}' ({config}): {error}; this is not the module's fault"
SHARED = (
    "{count} object(s) of '{module}' are the same object in {interps} {config} interpreters alive "
    "at once: {names}; keep per-interpreter objects in module state (PyModule_GetState) and use "
    "heap types (PyType_FromModuleAndSpec) instead of C statics"
)
SHARED_SINGLE_PHASE = (
    "single-phase module: CPython copies its module dict from the first import into every legacy "
    "interpreter, so these objects are shared by design: {names}; port it to multi-phase init for "
    "one copy per interpreter"
)
LEAKED = (
    "'{module}' retains {retained:.0f} KiB per {config} interpreter lifetime beyond the control "
    "({module_kib:.0f} vs {control_kib:.0f} KiB, {rounds} sequential interpreters, threshold "
    "{threshold:g} KiB); free in m_free/m_clear what Py_mod_exec allocates and drop module "
    "state references"
)
ALL_FINE = "{count} module(s) fine under {configs}"
SOME_FAILED = "{failed} of {count} module/config check(s) not fine; see the notes above"


# ---- running one step in a child ----


@dataclass
class Step:
    """What one child process left behind."""

    exit: ChildExit
    result: dict[str, Any] | None
    progress: str
    stderr: str
    child_error: str | None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


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
        """The request of checkentry.run."""
        return {"module": module, "mode": mode, "path": self.path,
                "block_modules": quirks.blocked_modules(config), "getters": self.args.getters}

    def battery(self, module: str, config: str, mode: str, interps: int, threads: int) -> Step:
        """One battery of checkentry.run in a zygote/spawned child.  Thread t visits interpreter
        (t + j) % K in round j: K rounds make every thread import in every interpreter."""
        directory = self._new_dir()
        request = {
            "dir": str(directory), "cwd": str(Path.cwd()), "config": config,
            "interpreters": interps, "threads": threads, "rounds": interps,
            "timeout": self.args.timeout, "spec": self.spec(module, config, mode),
            "entry": checkentry.ENTRY,
        }
        exit_info = self.launcher.run(request, self.args.timeout)
        return self._collect(directory, exit_info, child.RESULT_FILE)

    def memory(self, module: str, config: str) -> Step:
        """Sequential batteries in the memory child (python -m pytest_subinterp.checkentry)."""
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
        exit_info = run_process([sys.executable, "-m", "pytest_subinterp.checkentry", str(request_path)],
                                Path.cwd(), budget, env)
        return self._collect(directory, exit_info, checkentry.MEMORY_RESULT_FILE)

    @staticmethod
    def _collect(directory: Path, exit_info: ChildExit, result_file: str) -> Step:
        text = _read(directory / result_file)
        step = Step(exit_info, json.loads(text) if text else None, _read(directory / child.PROGRESS_FILE),
                    _read(directory / child.STDERR_FILE), _read(directory / child.ERROR_FILE) or None)
        shutil.rmtree(directory, ignore_errors=True)
        return step


# ---- analysis ----


def _where(progress: crash.Progress, config: str, interps: int, threads: int) -> tuple[str, str]:
    """(where, phase) of the culprit step, as users count (1-based)."""
    w = progress.culprit
    if w is None:
        return messages.CRASH_WHERE_UNKNOWN.format(config=config), "unknown"
    if w.thread < 0:
        text = messages.CRASH_WHERE_CREATOR.format(interp=w.interp + 1, n_interps=interps,
                                                   config=config, phase=w.user_phase)
    else:
        text = messages.CRASH_WHERE.format(interp=w.interp + 1, n_interps=interps, config=config,
                                           thread=w.thread + 1, n_threads=threads, round=w.round + 1,
                                           n_rounds=interps, phase=w.user_phase)
    return text, w.user_phase


def step_failure(step: Step, module: str, config: str, interps: int, threads: int,
                 timeout: float) -> dict[str, Any] | None:
    """A crash, hang or infrastructure error of a step, as a row entry; None if it ran."""
    progress = crash.parse_progress(step.progress)
    where, phase = _where(progress, config, interps, threads)
    ex = step.exit
    if ex.infrastructure_error:
        return {"kind": "error", "message": STEP_ERROR.format(module=module, config=config,
                                                              error=ex.infrastructure_error)}
    if ex.killed_after_deadline or (step.result or {}).get("hung"):
        return {"kind": "hang", "phase": phase, "where": where,
                "message": HUNG.format(module=module, timeout=timeout, where=where)}
    if ex.signal is not None or (ex.exit_code not in (0, None) and step.child_error is None):
        how = progress.crash_signal or (crash.signal_name(ex.signal) if ex.signal is not None
                                        else f"exit code {ex.exit_code}")
        defect = quirks.match_known_defect(f"{step.stderr}\n{step.progress}", config)
        if defect is not None:
            blame = messages.KNOWN_CPYTHON_DEFECT.format(
                version=compat.python_version(), description=defect.description,
                advice=defect.advice)
        else:
            blame = CRASH_BLAME_MODULE
        tail = [line for line in step.stderr.splitlines() if line.strip()][-3:]
        return {"kind": "crash", "signal": how, "phase": phase, "where": where,
                "known_defect": defect.description if defect else None, "stderr_tail": tail,
                "message": CRASHED.format(module=module, how=how, where=where, blame=blame)}
    if step.child_error or step.result is None:
        error = (step.child_error or "the child left no result").strip().splitlines()[-1]
        return {"kind": "error", "message": STEP_ERROR.format(module=module, config=config, error=error)}
    return None


def _entry_outputs(step: Step, module: str, config: str) -> tuple[list[dict[str, Any]], str | None]:
    """Each interpreter's checkentry output, or an infrastructure error message."""
    outputs = []
    assert step.result is not None
    for slot in step.result["interpreters"]:
        error = slot["create_error"] or slot["entry_error"]
        if error:
            last = error.strip().splitlines()[-1]
            return [], STEP_ERROR.format(module=module, config=config, error=last)
        outputs.append(json.loads(slot["entry_output"]))
    return outputs, None


def _declares(slots: dict[str, Any] | None) -> dict[str, Any]:
    slots = slots or {}
    mi, gil = slots.get("multiple_interpreters"), slots.get("gil")
    return {
        "multiple_interpreters": mi, "multiple_interpreters_text": _MULTIPLE_INTERPRETERS.get(mi),
        "gil": gil, "gil_text": _GIL.get(gil),
    }


def _problem(row: dict[str, Any], verdict: str, message: str) -> None:
    row["problems"].append({"verdict": verdict, "message": message})


def check_one(runner: Runner, module: str, config: str) -> dict[str, Any]:
    """Every step for one module and config; returns its row."""
    args = runner.args
    row: dict[str, Any] = {
        "module": module, "config": config, "import": None, "error": None, "init": None,
        "path": None, "stdlib": None, "declares": _declares(None), "threads": None, "crash": None,
        "hang": None, "memory": None, "shared": None, "problems": [], "notes": [],
    }
    # 1. one import in one fresh interpreter
    step = runner.battery(module, config, "import", 1, 1)
    failure = step_failure(step, module, config, 1, 1, args.timeout)
    if failure is None:
        outputs, error = _entry_outputs(step, module, config)
        if error:
            failure = {"kind": "error", "message": error}
    if failure is not None:
        _record_failure(row, failure, "import")
        return _finish(row)
    out = outputs[0]
    if not out["imported"]:
        row["error"] = f"{out['error_type']}: {out['error']}"
        if out["not_found"]:
            row["import"] = "not found"
            _problem(row, "not found", NOT_FOUND.format(module=module, config=config, error=row["error"]))
        elif out["error_type"] == "ImportError" and quirks.is_subinterpreter_refusal(out["error"]):
            row["import"] = "refused"
            message = messages.refusal_message(module, config, out["error"], quote=True)
            defect = quirks.match_known_defect(out["error"], config)
            if defect is not None:
                message += "; " + messages.KNOWN_CPYTHON_DEFECT.format(
                    version=compat.python_version(),
                    description=defect.description, advice=defect.advice)
            _problem(row, "refused", message)
        else:
            row["import"] = "error"
            _problem(row, "import error", IMPORT_ERROR.format(
                module=module, config=config, error_type=out["error_type"], error=out["error"]))
        return _finish(row)
    row["import"] = "ok"
    row["init"], row["path"] = out["init"], out["path"]
    row["stdlib"] = quirks.is_stdlib_path(out["path"])
    row["declares"] = _declares(out["slots"])

    # 2. T threads importing it in K live interpreters; shared objects
    k, t = args.interpreters, args.threads
    step = runner.battery(module, config, "threads", k, t)
    failure = step_failure(step, module, config, k, t, args.timeout)
    outputs: list[dict[str, Any]] = []
    if failure is None:
        outputs, error = _entry_outputs(step, module, config)
        if error:
            failure = {"kind": "error", "message": error}
    if failure is not None:
        _record_failure(row, failure, "threads")
        return _finish(row)
    _analyse_threads(row, outputs, module, config, k, t)

    # 3. memory retained per interpreter lifetime, against a control
    if args.memory_rounds > 0 and not row["problems"]:
        step = runner.memory(module, config)
        failure = step_failure(step, module, config, 1, 1, args.timeout)
        if failure is not None:
            _record_failure(row, failure, "memory")
        else:
            _analyse_memory(row, step.result or {})
    return _finish(row)


def _record_failure(row: dict[str, Any], failure: dict[str, Any], step: str) -> None:
    failure["step"] = step
    if failure["kind"] == "crash":
        row["crash"] = failure
        verdict = "cpython defect" if failure.get("known_defect") else "crashed"
    elif failure["kind"] == "hang":
        row["hang"] = failure
        verdict = "hung"
    else:
        verdict = "error"
    if step == "import" and row["import"] is None:
        row["import"] = verdict
    _problem(row, verdict, failure["message"])


def _analyse_threads(row: dict[str, Any], outputs: list[dict[str, Any]], module: str, config: str,
                     k: int, t: int) -> None:
    calls = [c for out in outputs for c in out["calls"]]
    failed = [c for c in calls if c["status"] != 0]
    row["threads"] = {"interpreters": k, "threads": t, "calls": len(calls), "failed": len(failed),
                      "first_error": None}
    if failed:
        first = failed[0]
        text = (first["text"] or "not run").strip().splitlines()[-1]
        row["threads"]["first_error"] = text
        _problem(row, "thread errors", THREAD_ERRORS.format(
            module=module, threads=t, interps=k, config=config, failed=len(failed), calls=len(calls),
            interp=first["interpreter"] + 1, thread=first["thread"] + 1, error=text))
    seen: dict[int, dict[int, tuple[str, str]]] = {}
    for index, out in enumerate(outputs):
        for label, (oid, type_name) in out["ids"].items():
            seen.setdefault(oid, {})[index] = (label, type_name)
    shared = sorted({entries[min(entries)] for entries in seen.values() if len(entries) >= 2})
    row["shared"] = [{"name": label, "type": type_name} for label, type_name in shared]
    if shared:
        names = ", ".join(label for label, _ in shared)
        if row["init"] == "single-phase" and config == "legacy":
            row["notes"].append(SHARED_SINGLE_PHASE.format(names=names))
        else:
            _problem(row, "shared objects", SHARED.format(count=len(shared), module=module,
                                                          interps=k, config=config, names=names))


def _analyse_memory(row: dict[str, Any], data: dict[str, Any]) -> None:
    rounds = len(data["module"]["growth"])

    def per_lifetime(series: str) -> float:
        return sum(data[series]["growth"]) / 1024 / max(rounds, 1)

    module_kib, control_kib = per_lifetime("module"), per_lifetime("control")
    row["memory"] = {"rounds": rounds, "module_kib": round(module_kib, 1),
                     "control_kib": round(control_kib, 1),
                     "retained_kib": round(module_kib - control_kib, 1),
                     "threshold_kib": None,  # set by run_check
                     "errors": data["module"]["errors"]}


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    row["verdict"] = row["problems"][0]["verdict"] if row["problems"] else "ok"
    row["fine"] = not row["problems"]
    return row


# ---- output ----

COLUMNS = ("MODULE", "CONFIG", "IMPORT", "INIT", "DECLARES", "THREADS", "CRASH/HANG",
           "LEAK/INTERP", "SHARED", "VERDICT")


def _cells(row: dict[str, Any]) -> list[str]:
    declares = row["declares"]
    declared = "; ".join(x for x in (declares["multiple_interpreters_text"], declares["gil_text"]) if x)
    threads = row["threads"]
    if threads is None:
        threads_cell = "-"
    elif threads["failed"]:
        threads_cell = f"{threads['failed']}/{threads['calls']} failed"
    else:
        threads_cell = f"{threads['interpreters']}x{threads['threads']} ok"
    event = row["crash"] or row["hang"]
    if event is None:
        crash_cell = "no" if row["threads"] is not None else "-"
    elif event["kind"] == "crash":
        crash_cell = f"{event['signal']} in {event['phase']}"
    else:
        crash_cell = f"hang in {event['phase']}"
    memory = row["memory"]
    leak_cell = "-" if memory is None else f"{memory['retained_kib']:+.0f} KiB"
    if row["shared"] is None:
        shared_cell = "-"
    elif not row["shared"]:
        shared_cell = "none"
    else:
        names = ", ".join(s["name"] for s in row["shared"])
        shared_cell = f"{len(row['shared'])}: {names}"
        if len(shared_cell) > 32:
            shared_cell = shared_cell[:29] + "..."
    return [row["module"], row["config"], row["import"] or "-", row["init"] or "-",
            declared or ("-" if row["init"] is None else "none"), threads_cell, crash_cell,
            leak_cell, shared_cell, row["verdict"]]


def format_table(rows: list[dict[str, Any]]) -> str:
    """The terminal table, then one numbered note per problem."""
    table = [list(COLUMNS)] + [_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in table]
    notes = []
    for row in rows:
        for problem in row["problems"]:
            notes.append(f"[{row['module']} {row['config']}] {problem['verdict']}: {problem['message']}")
        for note in row["notes"]:
            notes.append(f"[{row['module']} {row['config']}] note: {note}")
    if notes:
        lines.append("")
        lines += [f"{n}. {text}" for n, text in enumerate(notes, 1)]
    return "\n".join(lines)


# ---- command line ----


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got '{text}'")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got '{text}'")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got '{text}'")
    return value


def _module_name(text: str) -> str:
    if not _MODULE_NAME.match(text):
        raise argparse.ArgumentTypeError(BAD_MODULE_NAME.format(name=text))
    return text


def _config(text: str) -> str:
    if text not in ("isolated", "legacy", "both"):
        raise argparse.ArgumentTypeError(BAD_CONFIG.format(config=text))
    if text != "legacy" and not HAS_ISOLATED:
        raise argparse.ArgumentTypeError(NO_ISOLATED.format(config=text, version=sys.version.split()[0]))
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``pytest-subinterp``."""
    parser = argparse.ArgumentParser(prog="pytest-subinterp",
                                     description="Sub-interpreter readiness tools of pytest-subinterp.")
    parser.add_argument("--version", action="version", version=f"pytest-subinterp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check", help="check whether modules work in sub-interpreters (no tests needed)",
        description="Import each MODULE in fresh isolated and legacy sub-interpreters and from "
                    "several threads, in child processes, and report what happens. Exit status 0 "
                    "only if every module is fine under every config asked for.")
    check.add_argument("modules", nargs="+", metavar="MODULE", type=_module_name,
                       help="importable module name")
    default_config = "both" if HAS_ISOLATED else "legacy"
    check.add_argument("--config", type=_config, default=default_config, metavar="{isolated,legacy,both}",
                       help=f"interpreter config(s) to check (default: {default_config})")
    check.add_argument("--json", action="store_true", help="print JSON (docs/check.md) instead of a table")
    check.add_argument("--threads", type=_positive_int, default=4,
                       help="threads importing the module at once (default: 4)")
    check.add_argument("--interpreters", type=_positive_int, default=2,
                       help="interpreters alive at once (default: 2; shared objects need 2+)")
    check.add_argument("--timeout", type=_positive_float, default=60.0,
                       help="seconds per step before it counts as hung (default: 60)")
    check.add_argument("--memory-rounds", type=_non_negative_int, default=5,
                       help="sequential interpreters of the memory step; 0 skips it (default: 5)")
    check.add_argument("--leak-threshold", type=_positive_float, default=512.0,
                       help="KiB retained per interpreter lifetime beyond the control that count "
                            "as a leak (default: 512)")
    check.add_argument("--no-getters", dest="getters", action="store_false",
                       help="do not call the module's get*() functions without arguments when "
                            "looking for shared objects")
    return parser


def run_check(args: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """All rows and the exit status."""
    configs = ["isolated", "legacy"] if args.config == "both" else [args.config]
    rows = []
    with tempfile.TemporaryDirectory(prefix="pytest-subinterp-check-") as tmp:
        runner = Runner(args, Path(tmp))
        try:
            for module in args.modules:
                for config in configs:
                    row = check_one(runner, module, config)
                    _apply_leak_threshold(row, args.leak_threshold)
                    rows.append(row)
        finally:
            runner.close()
    return rows, 0 if all(row["fine"] for row in rows) else 1


def _apply_leak_threshold(row: dict[str, Any], threshold: float) -> None:
    memory = row["memory"]
    if memory is None:
        return
    memory["threshold_kib"] = threshold
    if memory["retained_kib"] > threshold:
        _problem(row, "leaks", LEAKED.format(
            module=row["module"], retained=memory["retained_kib"], config=row["config"],
            module_kib=memory["module_kib"], control_kib=memory["control_kib"],
            rounds=memory["rounds"], threshold=threshold))
        _finish(row)


def main(argv: list[str] | None = None) -> int:
    """Console script ``pytest-subinterp`` and ``python -m pytest_subinterp``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    rows, status = run_check(args)
    if args.json:
        configs = ["isolated", "legacy"] if args.config == "both" else [args.config]
        document = {
            "schema": JSON_SCHEMA_VERSION, "python": sys.version.split()[0], "configs": configs,
            "interpreters": args.interpreters, "threads": args.threads,
            "memory_rounds": args.memory_rounds, "results": rows, "fine": status == 0,
        }
        print(json.dumps(document, indent=2))
    else:
        print(format_table(rows))
        print()
        if status == 0:
            print(ALL_FINE.format(count=len(args.modules), configs=" and ".join(
                ["isolated", "legacy"] if args.config == "both" else [args.config])))
        else:
            print(SOME_FAILED.format(failed=sum(not r["fine"] for r in rows), count=len(rows)))
    return status
