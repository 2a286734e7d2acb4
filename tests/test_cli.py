"""`python -m pytest_subinterp check MODULE ...`, always run in a subprocess."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest
from conftest import HAS_ISOLATED, needs_isolated

import pytest_subinterp.check as cli

CONFIGS = ["isolated", "legacy"] if HAS_ISOLATED else ["legacy"]
ROW_KEYS = {"module", "config", "import", "error", "init", "path", "stdlib", "declares", "threads",
            "crash", "hang", "memory", "shared", "problems", "notes", "verdict", "fine"}
TOP_KEYS = {"schema", "python", "configs", "interpreters", "threads", "memory_rounds", "results", "fine"}
PY312_1_LEGACY_SINGLE_PHASE_CRASH = sys.version_info[:3] == (3, 12, 1)


def check(*args: str, env_path: pathlib.Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the check command in a fresh Python."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    if env_path is not None:
        env["PYTHONPATH"] = str(env_path)
    return subprocess.run([sys.executable, "-m", "pytest_subinterp", "check", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def rows_by_key(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["module"], row["config"]): row for row in document["results"]}


def assert_schema(document: dict[str, Any]) -> None:
    """The JSON document has the keys and types docs/check.md promises."""
    assert set(document) == TOP_KEYS
    assert document["schema"] == cli.JSON_SCHEMA_VERSION
    assert document["python"] == sys.version.split()[0]
    assert isinstance(document["fine"], bool)
    for row in document["results"]:
        assert set(row) == ROW_KEYS
        assert row["config"] in ("isolated", "legacy")
        assert row["verdict"] in ("ok", "not found", "refused", "import error", "thread errors",
                                  "crashed", "hung", "cpython defect", "shared objects", "leaks", "error")
        assert row["fine"] == (row["verdict"] == "ok") == (not row["problems"])
        assert set(row["declares"]) == {"multiple_interpreters", "multiple_interpreters_text", "gil", "gil_text"}
        for problem in row["problems"]:
            assert set(problem) == {"verdict", "message"} and problem["message"]
        if row["threads"] is not None:
            assert set(row["threads"]) == {"interpreters", "threads", "calls", "failed", "first_error"}
        if row["memory"] is not None:
            assert set(row["memory"]) == {"rounds", "module_kib", "control_kib", "retained_kib",
                                          "threshold_kib", "errors"}
        if row["crash"] is not None:
            assert {"signal", "phase", "where", "known_defect", "message", "step"} <= set(row["crash"])


@pytest.fixture(scope="module")
def stdlib_report() -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    modules = ["_json", "array", "_testmultiphase"]
    if sys.version_info >= (3, 12):
        modules.append("_testsinglephase")
    result = check(*modules, "--json", "--memory-rounds", "3")
    return result, json.loads(result.stdout)


@pytest.fixture(scope="module")
def extmods_report(extmods_dir: pathlib.Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    result = check("good_ext", "single_phase_ext", "static_state_ext", "crash_on_end_ext",
                   "--json", "--memory-rounds", "3", env_path=extmods_dir)
    return result, json.loads(result.stdout)


# ---- stdlib modules with known behaviour ----


def test_stdlib_report_follows_schema(stdlib_report):
    result, document = stdlib_report
    assert_schema(document)
    assert document["configs"] == CONFIGS
    assert len(document["results"]) == len(CONFIGS) * (4 if sys.version_info >= (3, 12) else 3)


@pytest.mark.parametrize("module", ["_json", "array", "_testmultiphase"])
def test_multi_phase_stdlib_modules_are_fine(stdlib_report, module):
    _, document = stdlib_report
    rows = rows_by_key(document)
    for config in CONFIGS:
        row = rows[(module, config)]
        assert row["verdict"] == "ok", row["problems"]
        assert row["import"] == "ok" and row["init"] == "multi-phase"
        assert row["stdlib"] is True
        assert row["threads"]["failed"] == 0 and row["threads"]["calls"] == 8
        assert row["shared"] == []
        assert row["crash"] is None and row["hang"] is None
        assert row["memory"]["rounds"] == 3 and row["memory"]["threshold_kib"] == 512.0


def test_testmultiphase_declares_per_interpreter_gil(stdlib_report):
    """_testmultiphase (the module itself, not its sub-modules) declares
    Py_MOD_PER_INTERPRETER_GIL_SUPPORTED on 3.12+, and Py_MOD_GIL_NOT_USED on 3.13+."""
    _, document = stdlib_report
    declares = rows_by_key(document)[("_testmultiphase", "legacy")]["declares"]
    if sys.version_info >= (3, 12):
        assert declares["multiple_interpreters"] == 2
        assert declares["multiple_interpreters_text"] == "per-interpreter GIL"
    else:
        assert declares["multiple_interpreters"] is None
    assert declares["gil"] == (1 if sys.version_info >= (3, 13) else None)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="_testsinglephase exists from 3.12")
def test_testsinglephase_refused_in_isolated_imported_in_legacy(stdlib_report):
    _, document = stdlib_report
    rows = rows_by_key(document)
    isolated = rows[("_testsinglephase", "isolated")]
    assert isolated["import"] == "refused" and isolated["verdict"] == "refused"
    assert "does not support loading in subinterpreters" in isolated["error"]
    assert 'CPython says "module _testsinglephase does not support loading in subinterpreters"' in \
        isolated["problems"][0]["message"]
    legacy = rows[("_testsinglephase", "legacy")]
    assert legacy["import"] == "ok" and legacy["init"] == "single-phase"
    if PY312_1_LEGACY_SINGLE_PHASE_CRASH and legacy["crash"] is not None:
        # Two legacy interpreters with a single-phase module: CPython 3.12.1 crashes at the end
        # (most runs, not all): attributed to CPython, not to the module.
        assert legacy["verdict"] == "cpython defect"
        assert legacy["crash"]["known_defect"] and legacy["crash"]["phase"] == "end"
        assert "not shown to be at fault" in legacy["problems"][0]["message"]
    else:
        assert legacy["verdict"] == "ok", legacy["problems"]
        assert {s["name"] for s in legacy["shared"]} >= {"sum"}  # m_copy: shared by design
        assert "shared by design" in legacy["notes"][0]


def test_stdlib_exit_status(stdlib_report):
    result, document = stdlib_report
    expected = 1 if sys.version_info >= (3, 12) else 0  # _testsinglephase is refused in isolated
    assert result.returncode == expected
    assert document["fine"] is (expected == 0)


@pytest.mark.skipif(not HAS_ISOLATED or PY312_1_LEGACY_SINGLE_PHASE_CRASH,
                    reason="needs _testsinglephase, and a CPython without the 3.12.1 legacy crash")
def test_testsinglephase_legacy_only_is_fine():
    result = check("_testsinglephase", "--config", "legacy", "--memory-rounds", "1")
    assert result.returncode == 0, result.stdout
    assert cli.ALL_FINE.format(count=1, configs="legacy") in result.stdout


# ---- the defect modules of the core tests ----


def test_extmods_report_follows_schema(extmods_report):
    _, document = extmods_report
    assert_schema(document)
    assert len(document["results"]) == 4 * len(CONFIGS)


def test_good_ext_fine_everywhere(extmods_report):
    _, document = extmods_report
    for config in CONFIGS:
        row = rows_by_key(document)[("good_ext", config)]
        assert row["fine"], row["problems"]
        assert row["init"] == "multi-phase" and row["stdlib"] is False
        assert row["shared"] == [] and row["threads"]["failed"] == 0
        assert row["memory"]["retained_kib"] < row["memory"]["threshold_kib"]


@needs_isolated
def test_single_phase_ext_refused_in_isolated(extmods_report):
    _, document = extmods_report
    rows = rows_by_key(document)
    isolated = rows[("single_phase_ext", "isolated")]
    assert isolated["verdict"] == "refused" and not isolated["fine"]
    assert isolated["threads"] is None  # nothing more to run once refused
    assert "port it to multi-phase init" in isolated["problems"][0]["message"]
    legacy = rows[("single_phase_ext", "legacy")]
    assert legacy["import"] == "ok" and legacy["init"] == "single-phase"


def test_static_state_ext_shared_objects_found(extmods_report):
    _, document = extmods_report
    for config in CONFIGS:
        row = rows_by_key(document)[("static_state_ext", config)]
        assert row["verdict"] == "shared objects"
        assert {"name": "get_cached_sys()", "type": "module"} in row["shared"]
        assert "get_cached_sys()" in row["problems"][0]["message"]
        assert "module state" in row["problems"][0]["message"]


def test_crash_on_end_ext_crash_reported(extmods_report):
    _, document = extmods_report
    for config in CONFIGS:
        row = rows_by_key(document)[("crash_on_end_ext", config)]
        assert row["import"] == "ok"  # one interpreter alone is fine; the second end crashes
        assert row["verdict"] == "crashed"
        crash = row["crash"]
        assert crash["phase"] == "end" and crash["step"] == "threads"
        assert f"({config}), creator thread, phase: end" in row["problems"][0]["message"]
        if crash["signal"] == "SIGABRT" and sys.version_info[:3] in ((3, 12, 1), (3, 13, 0)):
            # The planted NULL dereference is a SIGSEGV, but these CPythons' own aborts when
            # interpreters end (docs/cpython-quirks.md) can strike first, in the same phase: seen
            # once in 3.13.0 CI.  The phase and the place are what this test checks then.
            continue
        assert crash["signal"] == "SIGSEGV" and crash["known_defect"] is None
        assert "crashed the child process with SIGSEGV" in row["problems"][0]["message"]


def test_extmods_exit_status(extmods_report):
    result, document = extmods_report
    assert result.returncode == 1 and document["fine"] is False


def test_table_and_exit_status(extmods_dir):
    result = check("good_ext", "single_phase_ext", "--memory-rounds", "1", env_path=extmods_dir)
    lines = result.stdout.splitlines()
    assert lines[0].split() == list(cli.COLUMNS)
    good = [line.split() for line in lines if line.startswith("good_ext ")]
    assert [cells[1] for cells in good] == CONFIGS
    assert all(cells[2] == "ok" and cells[-1] == "ok" for cells in good)
    if HAS_ISOLATED:
        assert result.returncode == 1
        assert any(line.startswith("single_phase_ext  isolated  refused") for line in lines)
        assert "[single_phase_ext isolated] refused: module 'single_phase_ext' cannot be imported" in result.stdout
        # 1 (isolated refusal), or 2 where CPython 3.12.1 crashes on the legacy single-phase run
        failed = 2 if "[single_phase_ext legacy] cpython defect" in result.stdout else 1
        assert cli.SOME_FAILED.format(failed=failed, count=2 * len(CONFIGS)) in result.stdout
    else:
        assert result.returncode == 0


def test_good_ext_alone_exits_zero(extmods_dir):
    result = check("good_ext", "--memory-rounds", "1", env_path=extmods_dir)
    assert result.returncode == 0, result.stdout
    assert cli.ALL_FINE.format(count=1, configs=" and ".join(CONFIGS)) in result.stdout


# ---- bad input ----


def test_unknown_module_is_a_not_found_failure():
    result = check("no_such_module_xyz", "--config", "legacy", "--json")
    assert result.returncode == 1
    (row,) = json.loads(result.stdout)["results"]
    assert row["verdict"] == "not found" and row["import"] == "not found"
    assert "No module named 'no_such_module_xyz'" in row["error"]
    assert "check the spelling" in row["problems"][0]["message"]


@pytest.mark.parametrize(("args", "expected"), [
    pytest.param(["not-a-module"], cli.BAD_MODULE_NAME.format(name="not-a-module"), id="bad-name"),
    pytest.param(["pkg/mod.py"], cli.BAD_MODULE_NAME.format(name="pkg/mod.py"), id="file-path"),
    pytest.param(["_json", "--threads", "0"], "must be a positive integer, got '0'", id="threads-0"),
    pytest.param(["_json", "--timeout", "-1"], "must be a number > 0, got '-1'", id="timeout"),
    pytest.param(["_json", "--memory-rounds", "x"], "must be an integer >= 0, got 'x'", id="rounds"),
    pytest.param(["_json", "--config", "shared"], cli.BAD_CONFIG.format(config="shared"), id="config"),
    pytest.param([], "the following arguments are required: MODULE", id="no-module"),
])
def test_bad_input_is_a_usage_error(args, expected):
    result = check(*args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stderr.startswith("usage: pytest-subinterp check")


@pytest.mark.skipif(HAS_ISOLATED, reason="isolated interpreters exist on 3.12+")
def test_isolated_before_312_is_a_usage_error():
    result = check("_json", "--config", "isolated")
    assert result.returncode == 2 and result.stderr.startswith("usage: pytest-subinterp check")
    assert cli.NO_ISOLATED.format(config="isolated", version=sys.version.split()[0]) in result.stderr


def test_no_command_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "pytest_subinterp"], capture_output=True, text=True)
    assert result.returncode == 2 and "COMMAND" in result.stderr


def test_check_does_not_import_pytest():
    """check works without pytest: a whole run (argument parsing, the probes' launcher, analysis,
    output) leaves neither pytest nor _pytest in sys.modules of its process."""
    code = (
        "import sys\n"
        "from pytest_subinterp.check import main\n"
        "status = main(['check', '_json', '--config', 'legacy', '--memory-rounds', '0', '--json'])\n"
        "loaded = sorted(m for m in sys.modules if m.partition('.')[0] in ('pytest', '_pytest'))\n"
        "assert not loaded, loaded\n"
        "sys.exit(status)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["verdict"] == "ok"


@needs_isolated
def test_package_with_a_swallowed_refusal_is_a_fallback(extmods_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """A package that catches its extension's refusal and uses pure Python imports fine: check
    reports the fallback, as the plugin does in tests (before: 0 of 15 found on real packages)."""
    package = tmp_path / "fallback_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "try:\n    from single_phase_ext import add\nexcept ImportError:\n    def add(a, b):\n        return a + b\n")
    result = check("fallback_pkg", "--config", "isolated", "--json", "--memory-rounds", "0",
                   env_path=pathlib.Path(f"{extmods_dir}{os.pathsep}{tmp_path}"))
    (row,) = json.loads(result.stdout)["results"]
    assert row["import"] == "ok" and row["verdict"] == "fallback", row["problems"]
    (problem,) = row["problems"]
    assert problem["message"].startswith("'fallback_pkg' imported in an isolated sub-interpreter, but its extension "
                                         "module 'single_phase_ext' was refused there")
    assert result.returncode == 1


def test_module_that_loads_in_one_interpreter_per_process_is_a_refusal(tmp_path: pathlib.Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: numpy, Cython and PyO3 modules came out of `check --config legacy` as 'thread errors
    ... make Py_mod_exec safe to run concurrently'.  A module whose import works in one
    interpreter and fails in every other one of the process is a refusal, as in the plugin."""
    (tmp_path / "once_per_process.py").write_text(
        "import os\n"
        "# process-wide state: the first interpreter of each process sets it up, the others cannot\n"
        "_flag = os.path.join(os.environ['ONCE_DIR'], f'flag-{os.getpid()}')\n"
        "try:\n"
        "    os.close(os.open(_flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))\n"
        "except FileExistsError:\n"
        "    raise RuntimeError('process-wide state already initialized') from None\n")
    monkeypatch.setenv("ONCE_DIR", str(tmp_path))
    result = check("once_per_process", "--config", "legacy", "--json", "--memory-rounds", "0",
                   "--interpreters", "2", "--threads", "1", env_path=tmp_path)
    (row,) = json.loads(result.stdout)["results"]
    assert row["verdict"] == "refused" and row["import"] == "refused", row["problems"]
    assert row["problems"][0]["message"].startswith(
        "module 'once_per_process' loads into one interpreter per process: imported in a legacy "
        "sub-interpreter it works, but its import fails in every other interpreter of the process "
        "(RuntimeError: process-wide state already initialized; interpreters 2 of 2)")
    assert result.returncode == 1
