"""End-to-end tests of one battery: a marked test runs in K sub-interpreters x T native threads x R rounds.

Every test runs pytest in a subprocess (the plugin forks children).  What happened inside the
sub-interpreters is proved with files: ``recorder.record(kind)`` leaves one empty file per call in
the directory named by $SUBINTERP_E2E_DIR, named after the calling interpreter's id (0 is the main
interpreter), the native thread id and the class of ``threading.current_thread()``.
"""

from __future__ import annotations

import collections
import pathlib
import sys
from dataclasses import dataclass

import pytest
from conftest import HAS_ISOLATED, needs_isolated

from pytest_subinterp import messages
from pytest_subinterp.markers import ISOLATED_NEEDS_312, ISOLATED_SKIPPED_IN_BOTH
from pytest_subinterp.options import default_config


@pytest.fixture(autouse=True)
def _count_only_battery_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests count the calls of the test body; the per-call leak detector calls it again
    (tests/test_leaks.py covers the detectors), so leak checks are off here."""
    monkeypatch.setenv("PYTEST_SUBINTERP_LEAKS", "off")

DEFAULT = default_config()  # "isolated" on 3.12+, "legacy" before
PY_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
only_before_312 = pytest.mark.skipif(HAS_ISOLATED, reason="checks the Python < 3.12 fallback (legacy only)")

RECORDER = '''
"""Leave one file per call in $SUBINTERP_E2E_DIR: <kind>.<interpreter id>.<native thread id>.<thread class>.<random>"""
import os
import tempfile
import threading

import gilstate_ext


def record(kind):
    name = ".".join([kind, str(gilstate_ext.current_interpreter_id()), str(threading.get_native_id()),
                     type(threading.current_thread()).__name__, ""])
    fd, _ = tempfile.mkstemp(prefix=name, dir=os.environ["SUBINTERP_E2E_DIR"])
    os.close(fd)
'''


@dataclass(frozen=True)
class Call:
    """One recorded call."""

    kind: str
    interp: int
    native: int
    thread_class: str


@pytest.fixture
def calls_dir(subinterp_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """An empty directory for recorder files, named to the subprocess by $SUBINTERP_E2E_DIR; installs recorder.py."""
    subinterp_pytester.makepyfile(recorder=RECORDER)
    directory = subinterp_pytester.mkdir("calls")
    monkeypatch.setenv("SUBINTERP_E2E_DIR", str(directory))
    return directory


def recorded(directory: pathlib.Path, kind: str | None = None) -> list[Call]:
    """The calls recorded in directory (of one kind, if given)."""
    found = []
    for path in directory.iterdir():
        name, interp, native, thread_class, _ = path.name.split(".")
        if kind is None or name == kind:
            found.append(Call(name, int(interp), int(native), thread_class))
    return found


def battery_line(interps: int, threads: int, rounds: int, config: str) -> str:
    """The fnmatch pattern of a 'subinterp battery' section line."""
    return f"{interps}x{threads}x{rounds} {config}: * ms"


# ---- a passing battery in each config ----

PASSING = """
import pytest
import good_ext
import recorder

@pytest.mark.subinterp(config={config!r})
def test_good():
    assert good_ext.add(2, 3) == 5
    assert good_ext.exec_count() == 1
    counter = good_ext.Counter()
    assert [counter.incr() for _ in range(3)] == [1, 2, 3]
    recorder.record("call")
"""


@pytest.mark.parametrize(
    ("config", "ran"),
    [
        pytest.param("isolated", ["isolated"], marks=needs_isolated, id="isolated"),
        pytest.param("legacy", ["legacy"], id="legacy"),
        pytest.param("both", ["isolated", "legacy"], marks=needs_isolated, id="both"),
    ],
)
def test_good_ext_passes_in_each_config(subinterp_pytester: pytest.Pytester, calls_dir: pathlib.Path,
                                        config: str, ran: list[str]) -> None:
    """A correct extension passes: one PASSED line with the battery shape, one battery section per config."""
    subinterp_pytester.makepyfile(test_good=PASSING.format(config=config))
    result = subinterp_pytester.runpytest_subprocess("-v", "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"test_good.py::test_good PASSED [[]2x4x1 {'+'.join(ran)}[]]*"])
    result.stdout.fnmatch_lines(["*_ test_good _*", "*- subinterp battery -*", battery_line(2, 4, 1, ran[0])])
    for name in ran:
        result.stdout.fnmatch_lines([battery_line(2, 4, 1, name)])
    for name in {"isolated", "legacy"} - set(ran):
        result.stdout.no_fnmatch_line(battery_line(2, 4, 1, name))
    calls = recorded(calls_dir, "call")
    assert len(calls) == 4 * len(ran), calls  # T=4, R=1 per config
    assert all(call.interp != 0 for call in calls), "a call ran in the main interpreter"


@only_before_312
def test_before_312_isolated_skips_and_both_runs_legacy_only(subinterp_pytester: pytest.Pytester,
                                                             calls_dir: pathlib.Path) -> None:
    """On Python < 3.12: config='isolated' is skipped with the reason; 'both' runs legacy only and says so."""
    subinterp_pytester.makepyfile(test_old="""
        import pytest
        import recorder

        @pytest.mark.subinterp(config="isolated")
        def test_isolated():
            recorder.record("isolated")

        @pytest.mark.subinterp(config="both", threads=2)
        def test_both():
            recorder.record("both")

        @pytest.mark.subinterp(threads=2)
        def test_default():
            recorder.record("default")
    """)
    result = subinterp_pytester.runpytest_subprocess("-v", "-rA")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] test_old.py:*: {ISOLATED_NEEDS_312.format(version=PY_VERSION)}"])
    result.stdout.fnmatch_lines([
        "*_ test_both _*",
        "*- subinterp -*",
        ISOLATED_SKIPPED_IN_BOTH.format(version=PY_VERSION),
        "*- subinterp battery -*",
        battery_line(2, 2, 1, "legacy"),
    ])
    result.stdout.fnmatch_lines(["test_old.py::test_default PASSED [[]2x2x1 legacy[]]*"])
    result.stdout.no_fnmatch_line("*x1 isolated*")
    assert recorded(calls_dir, "isolated") == []
    assert len(recorded(calls_dir, "both")) == 2
    assert len(recorded(calls_dir, "default")) == 2
    assert all(call.interp != 0 for call in recorded(calls_dir))


@only_before_312
def test_before_312_isolated_skip_location_is_the_test_line(subinterp_pytester: pytest.Pytester) -> None:
    """The skip names the test's line as pytest's own skip marks do (1-based, first decorator line)."""
    subinterp_pytester.makepyfile(test_old="""
        import pytest

        @pytest.mark.subinterp(config="isolated")
        def test_isolated():
            pass
    """)
    result = subinterp_pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] test_old.py:3: {ISOLATED_NEEDS_312.format(version=PY_VERSION)}"])


# ---- failures ----


def test_failure_is_reported_once_with_interpreter_thread_and_round(subinterp_pytester: pytest.Pytester) -> None:
    """A failing assertion gives one FAILED test naming config, interpreter, thread and round, with the output."""
    subinterp_pytester.makepyfile(test_fail="""
        import pytest
        import good_ext

        @pytest.mark.subinterp
        def test_fail():
            print("printed by the body")
            assert good_ext.add(1, 2) == 4
    """)
    result = subinterp_pytester.runpytest_subprocess("-vv")
    result.assert_outcomes(failed=1)
    where = {"config": DEFAULT, "interp": 1, "n_interps": 2, "thread": 1, "n_threads": 4, "round": 1, "n_rounds": 1}
    prefix = messages.FAILED_WHERE.format(**where)
    # Counted across all interpreters: every call failed.
    summary = messages.FAILED_SUMMARY.format(**where, failed_calls=4, calls=4, failed_interps="interpreters 1, 2 of 2")
    # -vv: the short summary line is not truncated.
    assert f"FAILED test_fail.py::test_fail - {prefix}assert 3 == 4" in result.stdout.lines
    assert sum(line.startswith("FAILED ") for line in result.stdout.lines) == 1
    assert result.stdout.str().count("test_fail.py::test_fail FAILED") == 1
    result.stdout.fnmatch_lines([
        "*_ test_fail _*",
        ">       assert good_ext.add(1, 2) == 4",
        "E       assert 3 == 4",
        "*- subinterp -*",
        summary,
    ])
    # Every thread's output is kept, labelled with its interpreter.
    result.stdout.fnmatch_lines([f"*Captured stdout call [[]{DEFAULT} interpreter 1/2[]]*",
                                 "printed by the body", "printed by the body"])
    # The same traceback in the other calls is not printed again: it is listed once.
    result.stdout.fnmatch_lines([f"*the same traceback in 3 more call(s): {DEFAULT} interpreter 1/2, thread 3/4*"])
    assert result.stdout.str().count("E       assert 3 == 4") == 1
    result.stdout.no_fnmatch_line("*pytest_subinterp/inner.py*")


# ---- what runs where ----


@pytest.mark.parametrize("config", [pytest.param("isolated", marks=needs_isolated), "legacy"])
def test_threads_interpreters_rounds_from_the_marker(subinterp_pytester: pytest.Pytester, calls_dir: pathlib.Path,
                                                     config: str) -> None:
    """T native threads run R rounds each, thread t in interpreter (t + j) % K in round j: all in sub-interpreters."""
    subinterp_pytester.makepyfile(test_shape=f"""
        import pytest
        import recorder

        @pytest.mark.subinterp(threads=3, interpreters=2, rounds=2, config={config!r})
        def test_shape():
            recorder.record("call")
    """)
    result = subinterp_pytester.runpytest_subprocess("-v", "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"test_shape.py::test_shape PASSED [[]2x3x2 {config}[]]*",
                                 battery_line(2, 3, 2, config)])
    calls = recorded(calls_dir, "call")
    assert len(calls) == 3 * 2  # T * R
    assert all(call.interp != 0 for call in calls)
    per_interp = collections.Counter(call.interp for call in calls)
    assert sorted(per_interp.values()) == [3, 3], per_interp  # K = 2 interpreters share the 6 calls evenly
    per_thread = collections.defaultdict(set)
    for call in calls:
        per_thread[call.native].add(call.interp)
    assert len(per_thread) == 3, per_thread  # T distinct native threads
    assert all(len(interps) == 2 for interps in per_thread.values()), per_thread  # each visited both interpreters
    # Threads Python did not create: threading sees them as dummy threads.
    assert {call.thread_class for call in calls} == {"_DummyThread"}


def test_threads_interpreters_rounds_from_the_options(subinterp_pytester: pytest.Pytester,
                                                      calls_dir: pathlib.Path) -> None:
    """--subinterp-threads/-interpreters/-rounds shape a bare marker's battery; the marker's own arguments win."""
    subinterp_pytester.makepyfile(test_opts="""
        import pytest
        import recorder

        @pytest.mark.subinterp
        def test_bare():
            recorder.record("bare")

        @pytest.mark.subinterp(threads=1)
        def test_one_thread():
            recorder.record("one")
    """)
    result = subinterp_pytester.runpytest_subprocess(
        "-v", "-rA", "--subinterp-threads=2", "--subinterp-interpreters=1", "--subinterp-rounds=3")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*test_bare PASSED [[]1x2x3 {DEFAULT}[]]*",
                                 f"*test_one_thread PASSED [[]1x1x3 {DEFAULT}[]]*"])
    bare = recorded(calls_dir, "bare")
    assert len(bare) == 6
    assert len({call.interp for call in bare}) == 1 and bare[0].interp != 0
    assert len({call.native for call in bare}) == 2
    one = recorded(calls_dir, "one")
    assert len(one) == 3
    assert len({call.native for call in one}) == 1


def test_unmarked_tests_run_in_the_main_interpreter(subinterp_pytester: pytest.Pytester,
                                                    calls_dir: pathlib.Path) -> None:
    """In a file with marked tests, unmarked tests run as usual: main interpreter, no battery."""
    subinterp_pytester.makepyfile(test_mixed="""
        import threading
        import pytest
        import gilstate_ext
        import recorder

        def test_before():
            assert gilstate_ext.current_interpreter_id() == 0
            assert threading.current_thread() is threading.main_thread()
            recorder.record("plain")

        @pytest.mark.subinterp(threads=2)
        def test_marked():
            assert gilstate_ext.current_interpreter_id() != 0
            recorder.record("marked")

        def test_after():
            recorder.record("plain")
    """)
    result = subinterp_pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "test_mixed.py::test_before PASSED*",
        f"test_mixed.py::test_marked PASSED [[]2x2x1 {DEFAULT}[]]*",
        "test_mixed.py::test_after PASSED*",
    ])
    result.stdout.no_fnmatch_line("*test_before PASSED [[]*")
    plain = recorded(calls_dir, "plain")
    assert [call.interp for call in plain] == [0, 0]
    assert {call.thread_class for call in plain} == {"_MainThread"}
    assert len(recorded(calls_dir, "marked")) == 2


def test_no_subinterp_runs_marked_tests_as_ordinary_tests(subinterp_pytester: pytest.Pytester,
                                                          calls_dir: pathlib.Path) -> None:
    """--no-subinterp: a marked test runs once, in the main interpreter, with no battery."""
    subinterp_pytester.makepyfile(test_off="""
        import pytest
        import gilstate_ext
        import recorder

        @pytest.mark.subinterp(threads=4, interpreters=2)
        def test_marked():
            assert gilstate_ext.current_interpreter_id() == 0
            recorder.record("marked")
    """)
    result = subinterp_pytester.runpytest_subprocess("-v", "-rA", "--no-subinterp")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["test_off.py::test_marked PASSED*"])
    result.stdout.no_fnmatch_line("*subinterp battery*")
    result.stdout.no_fnmatch_line("*PASSED [[]2x4x1*")
    assert [(call.interp, call.thread_class) for call in recorded(calls_dir, "marked")] == [(0, "_MainThread")]


def test_subinterp_all_runs_unmarked_tests_in_batteries(subinterp_pytester: pytest.Pytester,
                                                        calls_dir: pathlib.Path) -> None:
    """--subinterp-all: every collected test runs in a battery, marked or not."""
    subinterp_pytester.makepyfile(test_all="""
        import pytest
        import recorder

        def test_unmarked():
            recorder.record("unmarked")

        @pytest.mark.subinterp(threads=1, interpreters=1)
        def test_marked():
            recorder.record("marked")
    """)
    result = subinterp_pytester.runpytest_subprocess("-v", "-rA", "--subinterp-all", "--subinterp-threads=2")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        f"test_all.py::test_unmarked PASSED [[]2x2x1 {DEFAULT}[]]*",
        f"test_all.py::test_marked PASSED [[]1x1x1 {DEFAULT}[]]*",
    ])
    unmarked = recorded(calls_dir, "unmarked")
    assert len(unmarked) == 2 and all(call.interp != 0 for call in unmarked)
    assert len({call.interp for call in unmarked}) == 2
    marked = recorded(calls_dir, "marked")
    assert len(marked) == 1 and marked[0].interp != 0


# ---- fixtures ----


def test_fixtures_of_every_scope_set_up_and_torn_down_in_each_interpreter(
    subinterp_pytester: pytest.Pytester, calls_dir: pathlib.Path
) -> None:
    """Fixtures of every scope (and autouse, conftest ones) are set up and torn down in each interpreter."""
    pytester = subinterp_pytester
    pytester.makeconftest("""
        import pytest
        import recorder

        @pytest.fixture(scope="session")
        def session_fix():
            recorder.record("session-setup")
            yield "session"
            recorder.record("session-teardown")

        @pytest.fixture
        def conftest_fix():
            recorder.record("conftest-setup")
            yield "conftest"
            recorder.record("conftest-teardown")
    """)
    pytester.mkpydir("pkg")
    pytester.path.joinpath("pkg", "conftest.py").write_text(
        "import pytest\n"
        "import recorder\n\n"
        "@pytest.fixture(scope='package')\n"
        "def package_fix():\n"
        "    recorder.record('package-setup')\n"
        "    yield 'package'\n"
        "    recorder.record('package-teardown')\n"
    )
    pytester.path.joinpath("pkg", "test_scopes.py").write_text(
        "import pytest\n"
        "import recorder\n\n"
        "@pytest.fixture(scope='module')\n"
        "def module_fix():\n"
        "    recorder.record('module-setup')\n"
        "    yield 'module'\n"
        "    recorder.record('module-teardown')\n\n"
        "@pytest.fixture(scope='class')\n"
        "def class_fix():\n"
        "    recorder.record('class-setup')\n"
        "    yield 'class'\n"
        "    recorder.record('class-teardown')\n\n"
        "@pytest.fixture\n"
        "def function_fix(module_fix):\n"
        "    recorder.record('function-setup')\n"
        "    yield module_fix + '+function'\n"
        "    recorder.record('function-teardown')\n\n"
        "@pytest.fixture(autouse=True)\n"
        "def autouse_fix():\n"
        "    recorder.record('autouse-setup')\n"
        "    yield\n"
        "    recorder.record('autouse-teardown')\n\n"
        "class TestScopes:\n"
        "    @pytest.mark.subinterp(threads=3, interpreters=2)\n"
        "    def test_all_scopes(self, session_fix, package_fix, module_fix, class_fix, function_fix, conftest_fix):\n"
        "        assert (session_fix, package_fix, module_fix, class_fix, function_fix, conftest_fix) == (\n"
        "            'session', 'package', 'module', 'class', 'module+function', 'conftest')\n"
        "        recorder.record('call')\n"
    )
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"pkg/test_scopes.py::TestScopes::test_all_scopes PASSED [[]2x3x1 {DEFAULT}[]]*"])
    calls = recorded(calls_dir, "call")
    assert len(calls) == 3
    interps = {call.interp for call in calls}
    assert len(interps) == 2 and 0 not in interps
    for scope in ("session", "package", "module", "class", "function", "autouse", "conftest"):
        for phase in ("setup", "teardown"):
            found = recorded(calls_dir, f"{scope}-{phase}")
            # Once per interpreter, in the interpreters that ran the calls (teardown really ran there).
            assert sorted(call.interp for call in found) == sorted(interps), (scope, phase, found)


def test_tmp_path_and_monkeypatch_work_inside(subinterp_pytester: pytest.Pytester, calls_dir: pathlib.Path) -> None:
    """tmp_path is a writable directory of the inner session; monkeypatch patches and is undone at teardown."""
    pytester = subinterp_pytester
    pytester.makepyfile(helper_mod="VALUE = 'original'\n")
    pytester.makepyfile(test_builtin="""
        import os
        import threading
        import pytest
        import helper_mod
        import recorder

        @pytest.fixture
        def check_undone():
            yield
            # Torn down after monkeypatch (set up before it): the patch must be gone by now.
            if helper_mod.VALUE == "original" and "SUBINTERP_E2E_PATCHED" not in os.environ:
                recorder.record("undone")

        @pytest.mark.subinterp(threads=2, interpreters=2)
        def test_builtins(check_undone, tmp_path, monkeypatch):
            monkeypatch.setattr(helper_mod, "VALUE", "patched")
            monkeypatch.setenv("SUBINTERP_E2E_PATCHED", "1")
            assert helper_mod.VALUE == "patched"
            path = tmp_path / f"t{threading.get_native_id()}.txt"
            path.write_text("written")
            assert path.read_text() == "written"
            assert os.path.isdir(str(tmp_path))
            recorder.record("call")
    """)
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=1)
    calls = recorded(calls_dir, "call")
    assert len(calls) == 2 and all(call.interp != 0 for call in calls)
    assert sorted(call.interp for call in recorded(calls_dir, "undone")) == sorted({call.interp for call in calls})
    # The files landed in the outer session's basetemp (the inner sessions' tmp_path is below it).
    written = list(pytester.path.rglob("t*.txt"))
    assert len(written) == 2, written


# ---- parametrize, skip, xfail ----


def test_each_parameter_is_its_own_test(subinterp_pytester: pytest.Pytester, calls_dir: pathlib.Path) -> None:
    """Parametrized marked tests: one battery and one report per parameter."""
    subinterp_pytester.makepyfile(test_params="""
        import pytest
        import recorder

        @pytest.mark.subinterp(threads=2, interpreters=1)
        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_param(n):
            recorder.record(f"param{n}")
            assert n != 2
    """)
    result = subinterp_pytester.runpytest_subprocess("-vv")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        f"test_params.py::test_param[[]1[]] PASSED [[]1x2x1 {DEFAULT}[]]*",
        "test_params.py::test_param[[]2[]] FAILED*",
        f"test_params.py::test_param[[]3[]] PASSED [[]1x2x1 {DEFAULT}[]]*",
    ])
    prefix = messages.FAILED_WHERE.format(config=DEFAULT, interp=1, n_interps=1, thread=1, n_threads=2,
                                          round=1, n_rounds=1)
    result.stdout.fnmatch_lines([f"FAILED test_params.py::test_param[[]2[]] - {prefix.replace('[', '[[]')}*"])
    for n in (1, 3):
        assert len(recorded(calls_dir, f"param{n}")) == 2
    # The failing parameter's 2 calls, and 1 more: its confirmation battery with one thread per
    # interpreter (session._find_cause), which fails too: an isolation failure, not thread safety.
    assert len(recorded(calls_dir, "param2")) == 3
    result.stdout.fnmatch_lines(["*test_params.py::test_param[[]2[]] (sub-interpreter)*"])


def test_skip_skipif_importorskip_and_xfail(subinterp_pytester: pytest.Pytester, calls_dir: pathlib.Path) -> None:
    """pytest.skip, skipif, importorskip and xfail (strict and not) give the outcomes pytest would give."""
    subinterp_pytester.makepyfile(test_marks="""
        import pytest
        import recorder

        @pytest.mark.subinterp(threads=2)
        def test_skip():
            recorder.record("skip")
            pytest.skip("skipped from the body")

        @pytest.mark.subinterp(threads=2)
        @pytest.mark.skipif(True, reason="skipped by skipif")
        def test_skipif():
            recorder.record("skipif")

        @pytest.mark.subinterp(threads=2)
        def test_importorskip():
            pytest.importorskip("no_such_module_for_subinterp")

        @pytest.mark.subinterp(threads=2)
        @pytest.mark.xfail(reason="known to fail")
        def test_xfail():
            recorder.record("xfail")
            assert False

        @pytest.mark.subinterp(threads=2)
        def test_xfail_imperative():
            pytest.xfail("xfailed from the body")

        @pytest.mark.subinterp(threads=2)
        @pytest.mark.xfail(reason="not strict")
        def test_xpass():
            pass

        @pytest.mark.subinterp(threads=2)
        @pytest.mark.xfail(reason="strict one", strict=True)
        def test_xpass_strict():
            pass
    """)
    result = subinterp_pytester.runpytest_subprocess("-rA", "-vv")
    result.assert_outcomes(skipped=3, xfailed=2, xpassed=1, failed=1)
    result.stdout.fnmatch_lines([
        "SKIPPED [[]1[]] test_marks.py:*: skipped from the body",
        "SKIPPED [[]1[]] test_marks.py:*: skipped by skipif",
        "SKIPPED [[]1[]] test_marks.py:*: could not import 'no_such_module_for_subinterp'*",
        "XFAIL test_marks.py::test_xfail - known to fail",
        "XFAIL test_marks.py::test_xfail_imperative - xfailed from the body",
        "XPASS test_marks.py::test_xpass - not strict",
        f"FAILED test_marks.py::test_xpass_strict - [[]{DEFAULT} interpreter 1/2[]] [[]XPASS(strict)[]] strict one",
    ])
    assert len(recorded(calls_dir, "skip")) == 2  # the body ran in both threads, then skipped
    assert recorded(calls_dir, "skipif") == []  # the body never ran
    assert len(recorded(calls_dir, "xfail")) == 2
