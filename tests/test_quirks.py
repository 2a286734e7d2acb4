"""Unit tests of the CPython-defect table and the breadcrumb parser (no batteries)."""

from __future__ import annotations

import sys

from pytest_subinterp import crash, messages, quirks

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


def _evidence(text: str) -> quirks.Evidence:
    return crash.evidence(crash.parse_progress(text))


def test_known_defect_single_phase_legacy_3121():
    text = "single-phase foo._bar\ncrash SIGSEGV interp=1 thread=-1 round=-1 phase=end\n"
    defect = quirks.match_known_defect(text, "legacy", (3, 12, 1), _evidence(text))
    assert defect is not None and "single-phase" in defect.description
    assert quirks.match_known_defect(text, "legacy", (3, 13, 0), _evidence(text)) is None
    # a crash at end without a single-phase module is the extension's
    text = "crash SIGSEGV interp=1 thread=-1 round=-1 phase=end"
    assert quirks.match_known_defect(text, "legacy", (3, 12, 1), _evidence(text)) is None


def test_known_defect_abort_after_refusal_3121_isolated():
    """The abort text alone proves nothing: the record must show a refusal before it."""
    refused = "refused interp=0 _testsinglephase /usr/lib/python3.12/lib-dynload/_testsinglephase.so\n"
    text = refused + "double free or corruption (out)\n"
    assert quirks.match_known_defect(text, "isolated", (3, 12, 1), _evidence(text)) is not None
    assert quirks.match_known_defect(text, "legacy", (3, 12, 1), _evidence(text)) is None
    bare = "double free or corruption (out)"
    assert quirks.match_known_defect(bare, "isolated", (3, 12, 1), _evidence(bare)) is None
    assert quirks.match_known_defect(bare, "isolated", (3, 12, 1)) is None  # no evidence, no blame


DATETIME = "loaded interp=0 _datetime /opt/py/lib/python3.13/lib-dynload/_datetime.cpython-313-x86_64-linux-gnu.so\n"


def test_known_defect_datetime_3130_needs_datetime_and_the_end_phase():
    """3.13.0's _datetime abort: blamed on CPython only with _datetime loaded, at interpreter end,
    and no frame of the project's own extension on the native stack."""
    at_end = DATETIME + "crash SIGABRT interp=1 thread=-1 round=-1 phase=end\nfree(): invalid pointer\n"
    assert quirks.match_known_defect(at_end, "isolated", (3, 13, 0), _evidence(at_end)) is not None
    # the same text during the import of an extension (a Cython module's own Py_mod_exec)
    in_import = DATETIME + "crash SIGABRT interp=1 thread=-1 round=-1 phase=import\nfree(): invalid pointer\n"
    assert quirks.match_known_defect(in_import, "isolated", (3, 13, 0), _evidence(in_import)) is None
    # without _datetime loaded
    bare = "crash SIGABRT interp=1 thread=-1 round=-1 phase=end\nfree(): invalid pointer\n"
    assert quirks.match_known_defect(bare, "isolated", (3, 13, 0), _evidence(bare)) is None


def test_mixed_evidence_names_both():
    stack = ("native-stack-begin\n/site/pkgs/site-packages/mypkg/_ext.cpython-313-x86_64-linux-gnu.so(f+0x1) [0x1]\n"
             "/opt/py/lib/libpython3.13.so.1.0(+0x2) [0x2]\nnative-stack-end\n")
    text = DATETIME + "crash SIGABRT interp=1 thread=-1 round=-1 phase=end\n" + stack + "free(): invalid pointer\n"
    found = _evidence(text)
    assert found.project_frames == ("/site/pkgs/site-packages/mypkg/_ext.cpython-313-x86_64-linux-gnu.so",)
    defect, mixed = quirks.attribute(text, "isolated", found, (3, 13, 0))
    assert defect is not None and mixed
    assert quirks.match_known_defect(text, "isolated", (3, 13, 0), found) is None  # not exonerated


def test_attribution_note_names_the_extension_without_a_defect():
    stack = "native-stack-begin\n/w/site-packages/pkg/_c.so(+0x1) [0x1]\nnative-stack-end\n"
    text = "crash SIGSEGV interp=0 thread=0 round=0 phase=call\n" + stack
    note = crash.attribution_note(text, "isolated", crash.parse_progress(text))
    assert note == messages.CRASH_IN_EXTENSION.format(frames="/w/site-packages/pkg/_c.so")
    loaded = "loaded interp=0 pkg._c /w/site-packages/pkg/_c.so\ncrash SIGSEGV interp=0 thread=0 round=0 phase=call\n"
    note = crash.attribution_note(loaded, "isolated", crash.parse_progress(loaded))
    assert note == messages.CRASH_AFTER_LOAD.format(module="pkg._c", path="/w/site-packages/pkg/_c.so")


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
