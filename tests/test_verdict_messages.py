"""What a failing battery prints: counts across all interpreters, each distinct traceback once,
and an unhandled exception in a test's own thread as plain pytest treats it."""

from __future__ import annotations

import sys

import pytest


@pytest.mark.skipif(sys.version_info < (3, 12), reason="config='both' runs isolated interpreters from 3.12")
def test_failure_in_every_call_is_counted_across_interpreters_and_printed_once(pytester: pytest.Pytester) -> None:
    """Before: 'failed in 2 of 2 calls in interpreter 1/2', and with config='both' one traceback up
    to 8 times."""
    pytester.makepyfile("""
        import pytest

        @pytest.mark.subinterp(config="both", leaks="off")
        def test_every_call_fails():
            assert 1 == 2
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "test failed in 4 of 4 calls (isolated, in interpreters 1, 2 of 2); first: interpreter 1/2, thread 1/4*",
        "test failed in 4 of 4 calls (legacy, in interpreters 1, 2 of 2); first: interpreter 1/2, thread 1/4*",
        "the same traceback in 7 more call(s): isolated interpreter 1/2, thread 3/4, round 1/1; *",
    ])
    # The traceback once: one source line and one E line (the short summary line aside).
    assert sum(line.startswith(">       assert 1 == 2") for line in result.stdout.lines) == 1
    assert sum(line.startswith("E       assert 1 == 2") for line in result.stdout.lines) == 1


def test_unhandled_exception_in_a_thread_is_not_a_failure(pytester: pytest.Pytester) -> None:
    """Plain pytest passes such a test with a warning; on 3.13.0 the battery used to fail it with
    "module 'tracemalloc' has no attribute 'get_object_traceback'"."""
    pytester.makepyfile("""
        import threading
        import pytest

        @pytest.mark.subinterp(leaks="off")
        def test_thread_raises():
            thread = threading.Thread(target=lambda: 1 / 0)
            thread.start()
            thread.join()
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*get_object_traceback*")


CAUSE_TESTS = """
import time
import pytest
import static_state_ext

state = {"busy": False}

@pytest.mark.subinterp(leaks="off")
def test_not_thread_safe():
    # two threads of one interpreter inside at once: only with several threads per interpreter
    assert not state["busy"], "another thread of this interpreter is inside"
    state["busy"] = True
    time.sleep(0.05)
    state["busy"] = False

@pytest.mark.subinterp(leaks="off", threads=4, interpreters=2)
def test_shared_static():
    # one C counter for every interpreter: fails with one thread per interpreter too
    assert static_state_ext.exec_count() == 1
"""


def test_cause_thread_safety_or_isolation(subinterp_pytester: pytest.Pytester) -> None:
    """A failure in some calls gets a confirmation battery with one thread per interpreter."""
    subinterp_pytester.makepyfile(test_causes=CAUSE_TESTS)
    result = subinterp_pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-report=r.json")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*thread-safety failure: with one thread per interpreter (2 threads, one round*"])
    result.stdout.fnmatch_lines(["*isolation failure: it fails with one thread per interpreter too*"])
    result.stdout.fnmatch_lines(["*test_causes.py::test_not_thread_safe (thread-safety)",
                                 "*test_causes.py::test_shared_static (isolation)"])
    import json

    causes = {t["nodeid"].split("::")[-1]: t["cause"]
              for t in json.loads((subinterp_pytester.path / "r.json").read_text())["tests"]}
    assert causes == {"test_not_thread_safe": "thread-safety", "test_shared_static": "isolation"}


@pytest.mark.skipif(sys.version_info < (3, 12), reason="isolated interpreters from 3.12")
def test_heap_corruption_text_in_an_extension_is_not_blamed_on_cpython(subinterp_pytester: pytest.Pytester) -> None:
    """Before: 'free(): invalid pointer' in an extension's own Py_mod_exec was 'a known defect of
    CPython 3.13.0 itself ... the extension is not shown to be at fault' (text alone matched)."""
    subinterp_pytester.makepyfile("""
        import pytest

        @pytest.mark.subinterp(leaks="off", threads=2, interpreters=2)
        def test_imports_it():
            import abort_in_exec_ext
    """)
    result = subinterp_pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*subinterp worker crashed with SIGABRT*"])
    result.stdout.no_fnmatch_line("*known defect of CPython*")
    result.stdout.fnmatch_lines(["*the native stack of the crashing thread has frames in *abort_in_exec_ext*"])
