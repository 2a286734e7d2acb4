"""pytest-asyncio: an async def marked test runs, each battery thread driving the coroutine in
its own event loop in its interpreter."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_asyncio")


def test_async_test_runs_in_a_loop_per_thread(compat_pytester: pytest.Pytester) -> None:
    compat_pytester.makepyfile("""
        import asyncio
        import threading
        import pytest

        loops = {}

        @pytest.mark.subinterp(leaks="off", threads=2)
        @pytest.mark.asyncio
        async def test_async():
            await asyncio.sleep(0.01)
            loops[threading.get_ident()] = id(asyncio.get_running_loop())

        @pytest.mark.subinterp(leaks="off", threads=2)
        async def test_async_auto():
            await asyncio.sleep(0)
        """)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly",
                                                  "-o", "asyncio_mode=auto")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*Coroutine item*")


def test_awaiting_a_future_is_no_memory_leak(compat_pytester: pytest.Pytester) -> None:
    """With leak checks on: pytest-asyncio's entry point is named 'asyncio', and `-p asyncio` made
    the inner sessions assertion-rewrite the standard library's asyncio; an interpreter that had
    awaited a pending future then kept ~1.2-1.6 MiB when it ended (innerplugins.py)."""
    compat_pytester.makepyfile("""
        import asyncio
        import pytest

        @pytest.mark.subinterp(threads=2)
        @pytest.mark.asyncio
        async def test_sleeps():
            await asyncio.sleep(0.01)

        @pytest.mark.subinterp(threads=2)
        def test_sync_sleeps():
            asyncio.run(asyncio.sleep(0.01))
        """)
    result = compat_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*state leak*")
