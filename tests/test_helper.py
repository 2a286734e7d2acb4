"""The C helper pytest_subinterp._subinterp, called directly.

Every call runs in a fresh subprocess (``python -c``), never in the test process: a battery
creates interpreters and native threads that must not outlive it, and a hang leaves threads
behind.  Each script prints one JSON line and leaves with ``os._exit`` (as the plugin's child
does).  Entry modules are written to tmp_path, which goes on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from conftest import HAS_ISOLATED, needs_isolated

CONFIGS = [pytest.param("isolated", marks=needs_isolated), "legacy"]

# Entry modules run inside each sub-interpreter: entry(arg_str, index) -> str.
ENTRY = '''
import json
import sys
import time

from pytest_subinterp import _subinterp


def _current_id():
    try:
        import _interpreters as interpreters  # 3.13+
    except ImportError:
        try:
            import _xxsubinterpreters as interpreters  # 3.11, 3.12
        except ImportError:
            return None
    current = interpreters.get_current()
    return current[0] if isinstance(current, tuple) else int(current)


def run(arg, index):
    """plan: per rendezvous 'fn' (call fn here), 'none' (arrive empty), 'none-in-0'."""
    spec = json.loads(arg)
    seen = []

    def fn(thread, round_):
        seen.append([thread, round_, _subinterp.interpreter_index()])
        if spec.get("fail") and thread == 0:
            return f"planned failure t={thread} r={round_}"
        if spec.get("raise") and thread == 0:
            raise ValueError(f"planned error t={thread} r={round_}")
        return None

    generations = []
    for step in spec.get("plan", ["fn"]):
        empty = step == "none" or (step == "none-in-0" and index == 0)
        generations.append(_subinterp.call_point(None if empty else fn))
    return json.dumps({
        "index": index,
        "interpreter_index": _subinterp.interpreter_index(),
        "id": _current_id(),
        "main_tag_visible": hasattr(sys, "_subinterp_test_tag"),
        "seen": seen,
        "generations": generations,
    })


def raises(arg, index):
    raise ValueError(f"entry failed in interpreter {index}")


def nested(arg, index):
    """Misuse from inside a sub-interpreter: each must raise, the battery must go on."""
    errors = {}
    try:
        _subinterp.run_battery(config="legacy", interpreters=1, threads=1, rounds=1,
                               entry="entry_mod:run", arg="{}", timeout=5.0)
    except RuntimeError as exc:
        errors["run_battery"] = str(exc)
    import threading

    def from_python_thread():
        try:
            _subinterp.call_point(None)
        except RuntimeError as exc:
            errors["call_point_thread"] = str(exc)

    thread = threading.Thread(target=from_python_thread)
    thread.start()
    thread.join()
    try:
        _subinterp.call_point(42)
    except TypeError as exc:
        errors["call_point_type"] = str(exc)
    _subinterp.call_point(None)  # still arrive, so that the battery finishes
    return json.dumps(errors)


def sleepy_body(thread, round_):
    time.sleep(30)


def hangs(arg, index):
    _subinterp.call_point(sleepy_body)
    return "{}"
'''

PRELUDE = '''
import json, os, sys
from pytest_subinterp import _subinterp


def list_interpreters():
    try:
        import _interpreters as interpreters  # 3.13+
    except ImportError:
        import _xxsubinterpreters as interpreters  # 3.11, 3.12
    return sorted(i[0] if isinstance(i, tuple) else int(i) for i in interpreters.list_all())


progress_fd = os.open(os.environ["PROGRESS_FILE"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
_subinterp.install_crash_handler(progress_fd)
sys._subinterp_test_tag = "main"


def done(out):
    print(json.dumps(out), flush=True)
    os._exit(0)  # a hung battery leaves native threads behind, as in the plugin's child
'''


def run_helper(tmp_path: pathlib.Path, code: str, timeout: float = 60) -> tuple[Any, str]:
    """Run PRELUDE + code in a fresh interpreter; returns (its JSON output, its progress log)."""
    (tmp_path / "entry_mod.py").write_text(ENTRY)
    progress = tmp_path / "progress.log"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PROGRESS_FILE": str(progress)}
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], env=env, cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output; stderr:\n{proc.stderr}"
    return json.loads(lines[-1]), progress.read_text() if progress.exists() else ""


def battery(tmp_path: pathlib.Path, config: str, k: int, t: int, r: int, spec: dict[str, Any] | None = None,
            entry: str = "entry_mod:run", timeout: float = 30.0) -> dict[str, Any]:
    """One run_battery in a fresh process; adds the interpreters alive after it."""
    out, _ = run_helper(tmp_path, f"""
        result = _subinterp.run_battery(config={config!r}, interpreters={k}, threads={t}, rounds={r},
                                        entry={entry!r}, arg={json.dumps(spec or {})!r}, timeout={timeout})
        result["alive_after"] = list_interpreters()
        result["tag_after"] = getattr(sys, "_subinterp_test_tag", None)
        done(result)
    """)
    return out


SLOT_KEYS = {"index", "id", "created", "ended", "create_error", "entry_output", "entry_error", "end_error",
             "create_s", "run_s", "end_s"}
CALL_KEYS = {"generation", "thread", "round", "interpreter", "status", "text", "seconds"}


def test_constants() -> None:
    """The status constants are distinct ints; HAVE_ISOLATED follows the Python version."""
    code = ("from pytest_subinterp import _subinterp as s; import json; print(json.dumps("
            "[s.CALL_PASSED, s.CALL_FAILED, s.CALL_NOT_RUN, s.CALL_ERROR, s.HAVE_ISOLATED]))")
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, check=True)
    passed, failed, not_run, error, have_isolated = json.loads(proc.stdout)
    assert len({passed, failed, not_run, error}) == 4
    assert bool(have_isolated) == HAS_ISOLATED


@pytest.mark.parametrize("config", CONFIGS)
def test_result_shape(tmp_path: pathlib.Path, config: str) -> None:
    """run_battery returns interpreters, calls, hung, generations and wall_s with the documented fields."""
    result = battery(tmp_path, config, k=2, t=3, r=2)
    assert {"interpreters", "calls", "hung", "generations", "wall_s"} <= set(result)
    assert result["hung"] is False
    assert result["generations"] == 1
    assert isinstance(result["wall_s"], float) and result["wall_s"] >= 0
    assert [slot["index"] for slot in result["interpreters"]] == [0, 1]
    for slot in result["interpreters"]:
        assert set(slot) == SLOT_KEYS
        assert slot["created"] is True and slot["ended"] is True
        assert slot["create_error"] is None and slot["entry_error"] is None and slot["end_error"] is None
        assert all(isinstance(slot[key], float) and slot[key] >= 0 for key in ("create_s", "run_s", "end_s"))
        assert json.loads(slot["entry_output"])["index"] == slot["index"]
    assert len(result["calls"]) == 3 * 2
    for call in result["calls"]:
        assert set(call) == CALL_KEYS
        assert call["generation"] == 1
        assert call["status"] == 0 and call["text"] is None  # CALL_PASSED
        assert isinstance(call["seconds"], float) and call["seconds"] >= 0


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize(("k", "t", "r"), [(1, 1, 1), (2, 3, 2), (3, 2, 3), (3, 4, 2)])
def test_thread_t_runs_in_interpreter_t_plus_j_mod_k(tmp_path: pathlib.Path, config: str,
                                                     k: int, t: int, r: int) -> None:
    """Round j of thread t runs in interpreter (t + j) % K, once per (thread, round)."""
    result = battery(tmp_path, config, k, t, r)
    calls = result["calls"]
    assert sorted((c["thread"], c["round"]) for c in calls) == [(i, j) for i in range(t) for j in range(r)]
    for call in calls:
        assert call["interpreter"] == (call["thread"] + call["round"]) % k
    seen_everywhere = []
    for slot in result["interpreters"]:
        output = json.loads(slot["entry_output"])
        assert output["interpreter_index"] == slot["index"]
        for thread, round_, index in output["seen"]:
            # Seen from inside: the body really ran in that interpreter.
            assert index == slot["index"] == (thread + round_) % k
            seen_everywhere.append((thread, round_))
        # call_point returned this interpreter's records of the rendezvous, and only those.
        (records,) = output["generations"]
        assert sorted((c["thread"], c["round"]) for c in records) == sorted(
            (c["thread"], c["round"]) for c in calls if c["interpreter"] == slot["index"])
    assert sorted(seen_everywhere) == [(i, j) for i in range(t) for j in range(r)]


@pytest.mark.parametrize("config", CONFIGS)
def test_interpreters_are_distinct_fresh_and_all_ended(tmp_path: pathlib.Path, config: str) -> None:
    """Each interpreter is new (not main, not shared), sees none of main's state, and is ended."""
    result = battery(tmp_path, config, k=3, t=2, r=1)
    ids = [slot["id"] for slot in result["interpreters"]]
    assert len(set(ids)) == 3
    assert 0 not in ids  # the main interpreter's id
    for slot in result["interpreters"]:
        output = json.loads(slot["entry_output"])
        if output["id"] is not None:
            assert output["id"] == slot["id"]
        assert output["main_tag_visible"] is False
        assert slot["ended"] is True
    assert result["tag_after"] == "main"
    assert result["alive_after"] == [0]  # only the main interpreter is left


@pytest.mark.parametrize("config", CONFIGS)
def test_call_point_none_keeps_the_rendezvous(tmp_path: pathlib.Path, config: str) -> None:
    """An interpreter that arrives with None runs nothing there; the generations stay in step."""
    spec = {"plan": ["fn", "none-in-0", "none", "fn"]}
    result = battery(tmp_path, config, k=2, t=2, r=2, spec=spec)
    assert result["generations"] == 4
    by_generation: dict[int, list[dict[str, Any]]] = {}
    for call in result["calls"]:
        by_generation.setdefault(call["generation"], []).append(call)
    assert sorted(by_generation) == [1, 2, 3, 4]
    assert all(len(calls) == 2 * 2 for calls in by_generation.values())
    not_run, passed = 2, 0  # CALL_NOT_RUN, CALL_PASSED
    assert {c["status"] for c in by_generation[1]} == {passed}
    assert {c["status"] for c in by_generation[2] if c["interpreter"] == 0} == {not_run}
    assert {c["status"] for c in by_generation[2] if c["interpreter"] == 1} == {passed}
    assert {c["status"] for c in by_generation[3]} == {not_run}
    assert {c["status"] for c in by_generation[4]} == {passed}
    first = json.loads(result["interpreters"][0]["entry_output"])
    assert [len(records) for records in first["generations"]] == [2, 2, 2, 2]
    # Interpreter 0 ran the body in generations 1 and 4 only: 2 calls each.
    assert len(first["seen"]) == 4


@pytest.mark.parametrize("config", CONFIGS)
def test_failed_and_raising_calls(tmp_path: pathlib.Path, config: str) -> None:
    """A returned str is CALL_FAILED with that text; an exception is CALL_ERROR with its traceback."""
    failed = battery(tmp_path, config, k=1, t=2, r=1, spec={"fail": True})
    statuses = {c["thread"]: (c["status"], c["text"]) for c in failed["calls"]}
    assert statuses == {0: (1, "planned failure t=0 r=0"), 1: (0, None)}
    raised = battery(tmp_path, config, k=1, t=2, r=1, spec={"raise": True})
    error = next(c for c in raised["calls"] if c["thread"] == 0)
    assert error["status"] == 3  # CALL_ERROR
    assert "Traceback" in error["text"] and "ValueError: planned error t=0 r=0" in error["text"]
    assert all(slot["ended"] for slot in raised["interpreters"])


@pytest.mark.parametrize("config", CONFIGS)
def test_entry_that_raises_reports_its_traceback(tmp_path: pathlib.Path, config: str) -> None:
    """An entry function that raises leaves its traceback in entry_error; the battery still ends."""
    result = battery(tmp_path, config, k=2, t=2, r=1, entry="entry_mod:raises")
    assert result["hung"] is False
    assert result["generations"] == 0 and result["calls"] == []
    for slot in result["interpreters"]:
        assert slot["entry_output"] is None
        assert "Traceback" in slot["entry_error"]
        assert f"ValueError: entry failed in interpreter {slot['index']}" in slot["entry_error"]
        assert slot["ended"] is True
    assert result["alive_after"] == [0]


def test_bad_arguments_raise_naming_the_function(tmp_path: pathlib.Path) -> None:
    """Invalid arguments raise ValueError/RuntimeError whose message names the function."""
    out, _ = run_helper(tmp_path, """
        def attempt(**overrides):
            kwargs = dict(config="legacy", interpreters=1, threads=1, rounds=1, entry="entry_mod:run",
                          arg="{}", timeout=10.0)
            kwargs.update(overrides)
            try:
                _subinterp.run_battery(**kwargs)
            except Exception as exc:
                return [type(exc).__name__, str(exc)]
            return None

        out = {
            "config": attempt(config="foo"),
            "entry": attempt(entry="entry_mod.run"),
            "isolated": attempt(config="isolated") if not _subinterp.HAVE_ISOLATED else "n/a",
        }
        try:
            _subinterp.call_point(None)
        except RuntimeError as exc:
            out["call_point"] = str(exc)
        try:
            _subinterp.call_point(lambda t, r: None)
        except RuntimeError as exc:
            out["call_point_fn"] = str(exc)
        out["index_outside"] = _subinterp.interpreter_index()
        done(out)
    """)
    assert out["config"][0] == "ValueError" and "run_battery" in out["config"][1] and "'foo'" in out["config"][1]
    assert out["entry"][0] == "ValueError"
    assert "run_battery" in out["entry"][1] and "module:function" in out["entry"][1]
    if not HAS_ISOLATED:
        assert out["isolated"][0] == "RuntimeError" and "run_battery" in out["isolated"][1]
    for key in ("call_point", "call_point_fn"):
        assert "call_point" in out[key] and "not part of a running battery" in out[key]
    assert out["index_outside"] == -1


@pytest.mark.parametrize("config", CONFIGS)
def test_misuse_from_a_sub_interpreter_raises(tmp_path: pathlib.Path, config: str) -> None:
    """run_battery inside a sub-interpreter, call_point from a Python thread or with a non-callable raise."""
    result = battery(tmp_path, config, k=1, t=1, r=1, entry="entry_mod:nested")
    (slot,) = result["interpreters"]
    assert slot["entry_error"] is None and slot["ended"] is True
    errors = json.loads(slot["entry_output"])
    assert "run_battery must be called from the main interpreter" in errors["run_battery"]
    assert "call_point must be called from the creator thread" in errors["call_point_thread"]
    assert "call_point" in errors["call_point_type"]
    assert result["generations"] == 1 and result["hung"] is False


@pytest.mark.parametrize("config", CONFIGS)
def test_timeout_returns_hung_with_stacks_in_progress_file(tmp_path: pathlib.Path, config: str) -> None:
    """A body that outlives the timeout: hung=True, and the progress fd gets every thread's stack."""
    out, progress = run_helper(tmp_path, f"""
        result = _subinterp.run_battery(config={config!r}, interpreters=1, threads=2, rounds=1,
                                        entry="entry_mod:hangs", arg="{{}}", timeout=1.0)
        done(result)
    """)
    assert out["hung"] is True
    lines = progress.splitlines()
    assert "hang timeout=1" in lines
    stack_lines = [line for line in lines if line.startswith("stack ")]
    assert any("battery thread" in line for line in stack_lines), progress
    assert any('entry_mod.py", line' in line and "in sleepy_body" in line for line in stack_lines), progress
    assert any("creator thread" in line for line in stack_lines), progress
    assert any(line.startswith("phase call interp=0 thread=") for line in lines)


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("threads", 0, "(got 1, 0, 1, 10)"),
    ("interpreters", 0, "(got 0, 1, 1, 10)"),
    ("rounds", 0, "(got 1, 1, 0, 10)"),
    ("timeout", 0.0, "(got 1, 1, 1, 0)"),
])
def test_out_of_range_counts_raise_value_error(tmp_path: pathlib.Path, key: str, value: float, shown: str) -> None:
    """threads/interpreters/rounds < 1 or timeout <= 0: ValueError naming run_battery and the values."""
    out, _ = run_helper(tmp_path, f"""
        kwargs = dict(config="legacy", interpreters=1, threads=1, rounds=1, entry="entry_mod:run",
                      arg="{{}}", timeout=10.0)
        kwargs[{key!r}] = {value!r}
        try:
            _subinterp.run_battery(**kwargs)
        except Exception as exc:
            done([type(exc).__name__, str(exc)])
        done(None)
    """)
    assert out is not None
    kind, message = out
    assert kind == "ValueError"
    assert message.startswith("_subinterp.run_battery: interpreters, threads and rounds must be >= 1")
    assert message.endswith(shown)
