"""Unit tests of the CPython-defect table and the breadcrumb parser (no batteries)."""

from __future__ import annotations

import sys

from pytest_subinterp import crash, quirks

PROGRESS = """\
phase create interp=0 thread=-1 round=-1
phase import interp=0 thread=-1 round=-1
phase call-wait interp=0 thread=-1 round=-1
phase call interp=0 thread=1 round=0
done call interp=0 thread=1 round=0 status=0
phase call interp=0 thread=2 round=0
crash SIGSEGV interp=0 thread=2 round=0 phase=call
native-stack-begin
/lib/libc.so.6(+0x3c050)[0x7f]
phase call interp=0 thread=3 round=0
native-stack-end
python-stack-begin
  File "/t/test_x.py", line 5 in test_a
python-stack-end
"""


def test_parse_progress_finds_the_crashing_thread_and_its_stacks():
    progress = crash.parse_progress(PROGRESS)
    assert progress.crash_signal == "SIGSEGV"
    assert progress.culprit == crash.Where("call", 0, 2, 0)
    assert progress.culprit.user_phase == "call" and progress.culprit.when == "call"
    assert progress.native_stack == ["/lib/libc.so.6(+0x3c050)[0x7f]"]  # interleaved line left out
    assert progress.python_stack == ['  File "/t/test_x.py", line 5 in test_a']
    assert progress.done_calls == 1 and progress.failed_calls == 0


def test_parse_progress_without_crash_line_blames_the_last_open_call():
    progress = crash.parse_progress("phase call interp=1 thread=0 round=2\nphase end interp=0 thread=-1 round=-1\n")
    assert progress.crash_signal is None
    assert progress.culprit == crash.Where("call", 1, 0, 2)


def test_phase_end_maps_to_teardown():
    where = crash.parse_progress("phase end interp=1 thread=-1 round=-1\n").culprit
    assert where is not None and where.user_phase == "end" and where.when == "teardown"


def test_blocked_modules_only_for_312_isolated():
    assert quirks.blocked_modules("isolated", (3, 12)) == ["_datetime", "_decimal", "_hashlib", "readline",
                                                           "_tracemalloc"]
    assert quirks.blocked_modules("legacy", (3, 12)) == []
    assert quirks.blocked_modules("isolated", (3, 13)) == ["readline"]
    assert quirks.blocked_modules("legacy", (3, 13)) == []


def test_known_defect_single_phase_legacy_3121():
    text = "single-phase foo._bar\ncrash SIGSEGV interp=1 thread=-1 round=-1 phase=end\n"
    defect = quirks.match_known_defect(text, "legacy", (3, 12, 1))
    assert defect is not None and "single-phase" in defect.description
    assert quirks.match_known_defect(text, "legacy", (3, 13, 0)) is None
    # a crash at end without a single-phase module is the extension's
    assert quirks.match_known_defect("crash SIGSEGV interp=1 thread=-1 round=-1 phase=end", "legacy", (3, 12, 1)) is None


def test_known_defect_abort_after_refusal_3121_isolated():
    defect = quirks.match_known_defect("double free or corruption (out)", "isolated", (3, 12, 1))
    assert defect is not None
    assert quirks.match_known_defect("double free or corruption (out)", "legacy", (3, 12, 1)) is None


def test_refusal_patterns():
    assert quirks.is_subinterpreter_refusal("module _x does not support loading in subinterpreters")
    assert quirks.is_subinterpreter_refusal(
        "Interpreter change detected - this module can only be loaded into one interpreter per process.")
    assert quirks.is_subinterpreter_refusal("PyO3 modules do not yet support subinterpreters")
    assert not quirks.is_subinterpreter_refusal("No module named 'foo'")


def test_stdlib_paths_are_not_extensions():
    import os

    stdlib = os.path.dirname(os.__file__)
    assert quirks.is_stdlib_path(os.path.join(stdlib, "lib-dynload", "_ctypes.so"))
    assert not quirks.is_stdlib_path(os.path.join(stdlib, "site-packages", "pkg", "_c.so"))
    assert not quirks.is_stdlib_path("/home/me/project/pkg/_c.so")


def test_refused_module_name():
    assert quirks.refused_module_name("ImportError: module _tracemalloc does not support loading in subinterpreters") == "_tracemalloc"
    assert quirks.refused_module_name("No module named 'x'") is None


def test_blocked_module_in_a_collection_error():
    text = "E   ModuleNotFoundError: import of _tracemalloc halted; None in sys.modules"
    expected = "_tracemalloc" if sys.version_info[:2] == (3, 12) else None
    assert quirks.blocked_module_in(text, "isolated") == expected
    assert quirks.blocked_module_in(text, "legacy") is None
    assert quirks.blocked_module_in("import of mypkg halted; None in sys.modules", "isolated") is None
