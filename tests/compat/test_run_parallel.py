"""pytest-run-parallel's markers: thread_unsafe / parallel_threads(1) run each fresh interpreter
from one thread at a time; parallel_threads(n) caps the threads; the report says so."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_run_parallel")


def test_markers_cap_the_threads(compat_pytester: pytest.Pytester) -> None:
    compat_pytester.makepyfile("""
        import threading
        import pytest

        running = []
        lock = threading.Lock()

        def check_alone(limit):
            with lock:
                running.append(1)
                assert len(running) <= limit
            import time
            time.sleep(0.05)
            with lock:
                running.pop()

        @pytest.mark.subinterp(leaks="off", threads=4)
        @pytest.mark.thread_unsafe(reason="global state")
        def test_unsafe():
            check_alone(1)

        @pytest.mark.subinterp(leaks="off", threads=4)
        @pytest.mark.parallel_threads(2)
        def test_two():
            check_alone(2)
        """)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-rP")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*1 thread(s) at a time in each of 2 fresh interpreters "
                                 "(@pytest.mark.thread_unsafe: global state, pytest-run-parallel's marker)*"])
    result.stdout.fnmatch_lines(["*2 thread(s) at a time in each of 2 fresh interpreters "
                                 "(@pytest.mark.parallel_threads(2)*"])
