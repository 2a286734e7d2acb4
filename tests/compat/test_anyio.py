"""anyio's pytest plugin: an ``@pytest.mark.anyio`` marked test runs in every battery thread, in
an event loop of the backend its ``anyio_backend`` fixture names; anyio's own runner (once, in the
creator thread) never takes the call."""

from __future__ import annotations

import pytest

pytest.importorskip("anyio")


def test_anyio_test_runs_in_every_battery_thread(compat_pytester: pytest.Pytester) -> None:
    compat_pytester.makepyfile("""
        import threading

        import anyio
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.subinterp(threads=2)
        @pytest.mark.anyio
        async def test_sleeps(anyio_backend):
            await anyio.sleep(0.01)  # a pending future: no false memory leak (leak checks on)
            assert anyio.get_current_task() is not None

        @pytest.mark.subinterp(threads=2, leaks="off")
        @pytest.mark.anyio
        async def test_fails_in_every_call(anyio_backend):
            await anyio.sleep(0)
            raise AssertionError(f"fails in {threading.get_ident()}")
        """)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-rf")
    result.assert_outcomes(passed=1, failed=1)
    # run by both battery threads (one call each, in interpreters 1 and 2), not once by anyio's
    # runner in the creator thread
    result.stdout.fnmatch_lines(["*test failed in 2 of 2 calls (isolated, in interpreters 1, 2 of 2)*"])
    result.stdout.no_fnmatch_line("*state leak*")
    result.stdout.no_fnmatch_line("*did not run in every expected*")


def test_anyio_backend_options_are_used(compat_pytester: pytest.Pytester) -> None:
    """(name, options): the options reach anyio.run (asyncio's debug mode here)."""
    compat_pytester.makepyfile("""
        import asyncio

        import pytest

        @pytest.fixture
        def anyio_backend():
            return ("asyncio", {"debug": True})

        @pytest.mark.subinterp(threads=2, leaks="off")
        @pytest.mark.anyio
        async def test_debug_loop(anyio_backend):
            assert asyncio.get_running_loop().get_debug()
        """)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
