"""Turns what ``check``'s probes left behind into one row per module and config.

A row holds what was found (import, init kind, declared slots, thread errors, crash or hang,
memory, shared objects) and its problems, each a :class:`CheckVerdict` and a message that says
what happened, where and what to do.  Crashes and hangs are described in the plugin's words
(``crash.py``), with the same attribution to known CPython defects (``quirks.py``).
"""

from __future__ import annotations

import json
from typing import Any

from pytest_subinterp import advice, compat, crash, messages, quirks
from pytest_subinterp.check import messages as check_messages
from pytest_subinterp.check.runner import Runner, Step
from pytest_subinterp.verdicts import CheckVerdict

_MULTIPLE_INTERPRETERS = {0: "no sub-interpreters", 1: "shared GIL only", 2: "per-interpreter GIL"}
_GIL = {0: "GIL used", 1: "GIL not used"}


def step_failure(step: Step, module: str, config: str, interps: int, threads: int,
                 timeout: float) -> dict[str, Any] | None:
    """A crash, hang or infrastructure error of a step, as a row entry; None if it ran.
    A step's battery runs K rounds (one per interpreter), see Runner.battery."""
    progress = crash.parse_progress(step.progress)
    culprit = progress.culprit
    where = crash.where_text(culprit, config, interps, threads, interps)
    phase = culprit.user_phase if culprit is not None else "unknown"
    ex = step.exit
    if ex.infrastructure_error:
        return {"kind": "error", "message": check_messages.STEP_ERROR.format(
            module=module, config=config, error=ex.infrastructure_error)}
    if ex.killed_after_deadline or (step.result or {}).get("hung"):
        return {"kind": "hang", "phase": phase, "where": where,
                "message": check_messages.HUNG.format(module=module, timeout=timeout, where=where)}
    if ex.signal is not None or (ex.exit_code not in (0, None) and step.child_error is None):
        how = crash.how_it_ended(ex.signal, ex.exit_code, progress)
        defect = quirks.match_known_defect(f"{step.stderr}\n{step.progress}", config,
                                           found=crash.evidence(progress))
        blame = crash.defect_note(defect) if defect is not None else check_messages.CRASH_BLAME_MODULE
        tail = [line for line in step.stderr.splitlines() if line.strip()][-3:]
        return {"kind": "crash", "signal": how, "phase": phase, "where": where,
                "known_defect": defect.description if defect else None, "stderr_tail": tail,
                "message": check_messages.CRASHED.format(module=module, how=how, where=where, blame=blame)}
    if step.child_error or step.result is None:
        error = (step.child_error or "the child left no result").strip().splitlines()[-1]
        return {"kind": "error", "message": check_messages.STEP_ERROR.format(
            module=module, config=config, error=error)}
    return None


def _entry_outputs(step: Step, module: str, config: str) -> tuple[list[dict[str, Any]], str | None]:
    """Each interpreter's entry.run output, or an infrastructure error message."""
    outputs = []
    assert step.result is not None
    for slot in step.result["interpreters"]:
        error = slot["create_error"] or slot["entry_error"]
        if error:
            last = error.strip().splitlines()[-1]
            return [], check_messages.STEP_ERROR.format(module=module, config=config, error=last)
        outputs.append(json.loads(slot["entry_output"]))
    return outputs, None


def _declares(slots: dict[str, Any] | None) -> dict[str, Any]:
    slots = slots or {}
    mi: Any = slots.get("multiple_interpreters")
    gil: Any = slots.get("gil")
    return {
        "multiple_interpreters": mi, "multiple_interpreters_text": _MULTIPLE_INTERPRETERS.get(mi),
        "gil": gil, "gil_text": _GIL.get(gil),
    }


def _problem(row: dict[str, Any], verdict: CheckVerdict, message: str) -> None:
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
        _analyse_import_error(row, out, module, config)
        return _finish(row)
    row["import"] = "ok"
    blocked = out.get("blocked_used") or []
    if blocked:
        row["notes"].append(check_messages.BLOCKED_STDLIB.format(
            modules=", ".join(blocked), config=config, version=compat.python_version()))
    _analyse_fallbacks(row, out, module, config)
    row["init"], row["path"] = out["init"], out["path"]
    row["stdlib"] = quirks.is_stdlib_path(out["path"])
    row["declares"] = _declares(out["slots"])

    # 2. T threads importing it in K live interpreters; shared objects
    k, t = args.interpreters, args.threads
    step = runner.battery(module, config, "threads", k, t)
    failure = step_failure(step, module, config, k, t, args.timeout)
    outputs = []
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


def _analyse_fallbacks(row: dict[str, Any], out: dict[str, Any], module: str, config: str) -> None:
    """The import worked, but an extension module of the package was refused and swallowed: the
    package runs its pure-Python fallback here (as the plugin reports in tests)."""
    for refusal in out.get("refusals", ()):
        if quirks.is_stdlib_path(refusal.get("path")) or not quirks.is_subinterpreter_refusal(refusal["message"]):
            continue
        advice_text = advice.refusal_message(refusal["module"], config, refusal["message"], refusal.get("path"))
        _problem(row, CheckVerdict.FALLBACK, check_messages.FALLBACK.format(
            module=module, refused=refusal["module"], article=advice.article(config), config=config,
            advice=advice_text))


def _analyse_import_error(row: dict[str, Any], out: dict[str, Any], module: str, config: str) -> None:
    """Not found, refused by the interpreter (in the plugin's words), or another import error."""
    row["error"] = f"{out['error_type']}: {out['error']}"
    if out["not_found"]:
        row["import"] = "not found"
        _problem(row, CheckVerdict.NOT_FOUND, check_messages.NOT_FOUND.format(
            module=module, config=config, error=row["error"]))
    elif out["error_type"] == "ImportError" and quirks.is_subinterpreter_refusal(out["error"]):
        row["import"] = "refused"
        # The extension the recorder saw refused (the package's own module, e.g. psutil's
        # _psutil_linux), with its file: the advice is given in its generator's terms.
        refused = next((r for r in out.get("refusals", ()) if r["message"] == out["error"]), None)
        path = refused["path"] if refused else out.get("path")
        message = advice.refusal_message(module, config, out["error"], path, quote=True)
        defect = quirks.match_known_defect(out["error"], config)
        if defect is not None:
            message = check_messages.REFUSED_KNOWN_DEFECT.format(refusal=message, defect=crash.defect_note(defect))
        _problem(row, CheckVerdict.REFUSED, message)
    else:
        row["import"] = "error"
        _problem(row, CheckVerdict.IMPORT_ERROR, check_messages.IMPORT_ERROR.format(
            module=module, config=config, error_type=out["error_type"], error=out["error"]))


def _record_failure(row: dict[str, Any], failure: dict[str, Any], step: str) -> None:
    failure["step"] = step
    if failure["kind"] == "crash":
        row["crash"] = failure
        verdict = CheckVerdict.CPYTHON_DEFECT if failure.get("known_defect") else CheckVerdict.CRASHED
    elif failure["kind"] == "hang":
        row["hang"] = failure
        verdict = CheckVerdict.HUNG
    else:
        verdict = CheckVerdict.ERROR
    if step == "import" and row["import"] is None:
        row["import"] = verdict  # the IMPORT column says what ended the first import
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
        if _one_interpreter_per_process(calls, failed):
            # Every call in one interpreter imported it; the import fails only in the others:
            # the module keeps process-wide state that a second interpreter cannot set up again
            # (numpy's "CPU dispatcher tracer already initialized", Cython's "Interpreter change
            # detected"): a refusal, as the plugin reports it, not a thread-safety error.
            failing = sorted({c["interpreter"] + 1 for c in failed})
            row["import"] = "refused"
            _problem(row, CheckVerdict.REFUSED, check_messages.ONE_PER_PROCESS.format(
                module=module, article=advice.article(config), config=config, error=text,
                interps=", ".join(map(str, failing)), n_interps=k, fix=messages.REFUSAL_FIX_ONE_PER_PROCESS))
            return
        _problem(row, CheckVerdict.THREAD_ERRORS, check_messages.THREAD_ERRORS.format(
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
            row["notes"].append(check_messages.SHARED_SINGLE_PHASE.format(names=names))
        else:
            _problem(row, CheckVerdict.SHARED_OBJECTS, check_messages.SHARED.format(
                count=len(shared), module=module, interps=k, config=config, names=names))


def _one_interpreter_per_process(calls: list[dict[str, Any]], failed: list[dict[str, Any]]) -> bool:
    """Whether the imports failed only in interpreters other than one where every import worked,
    all with the same error: the module loads into one interpreter per process."""
    failing = {c["interpreter"] for c in failed}
    clean = {c["interpreter"] for c in calls} - failing
    errors = {(c["text"] or "").strip().splitlines()[-1] if c["text"] else "not run" for c in failed}
    return bool(clean) and len(errors) == 1 and "not run" not in errors


def _analyse_memory(row: dict[str, Any], data: dict[str, Any]) -> None:
    rounds = len(data["module"]["growth"])

    def per_lifetime(series: str) -> float:
        return float(sum(data[series]["growth"])) / 1024 / max(rounds, 1)

    module_kib, control_kib = per_lifetime("module"), per_lifetime("control")
    row["memory"] = {"rounds": rounds, "module_kib": round(module_kib, 1),
                     "control_kib": round(control_kib, 1),
                     "retained_kib": round(module_kib - control_kib, 1),
                     "threshold_kib": None,  # set by apply_leak_threshold
                     "errors": data["module"]["errors"]}


def apply_leak_threshold(row: dict[str, Any], threshold: float) -> None:
    """Record the threshold; memory retained beyond it is a problem of the row."""
    memory = row["memory"]
    if memory is None:
        return
    memory["threshold_kib"] = threshold
    if memory["retained_kib"] > threshold:
        _problem(row, CheckVerdict.LEAKS, check_messages.LEAKED.format(
            module=row["module"], retained=memory["retained_kib"], config=row["config"],
            module_kib=memory["module_kib"], control_kib=memory["control_kib"],
            rounds=memory["rounds"], threshold=threshold))
        _finish(row)


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    row["verdict"] = row["problems"][0]["verdict"] if row["problems"] else CheckVerdict.OK
    row["fine"] = not row["problems"]
    return row
