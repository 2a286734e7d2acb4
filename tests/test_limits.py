"""Upper bounds of threads, interpreters, rounds and timeouts: beyond them a usage error (options)
or a collection error (marker) that names the value and the limit, before any battery runs.

Before the limits, ``timeout=1e300`` was an INTERNALERROR (time_t overflow) that left a battery
child spinning, ``threads=2**64`` a crash report of the test and ``interpreters=1000`` a segfault
of the C helper under a memory limit.
"""

from __future__ import annotations

import pytest

from pytest_subinterp.options import (
    LIMIT_REASONS,
    MAX_INTERPRETERS,
    MAX_ROUNDS,
    MAX_THREADS,
    MAX_TIMEOUT_S,
    OPTIONS,
    TIMEOUT_TOO_LARGE_MESSAGE,
    TOO_LARGE_MESSAGE,
    validate_count,
    validate_timeout,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PYTEST_SUBINTERP_* variable of the outer environment."""
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)


@pytest.mark.parametrize(("field", "limit"), [("threads", MAX_THREADS), ("interpreters", MAX_INTERPRETERS),
                                              ("rounds", MAX_ROUNDS)])
def test_counts_accept_the_limit_and_refuse_one_more(field: str, limit: int) -> None:
    """The documented maximum itself is allowed; one more is a usage error naming both."""
    assert validate_count(limit, "x", field) == limit
    with pytest.raises(pytest.UsageError) as excinfo:
        validate_count(limit + 1, f"--subinterp-{field}", field)
    assert str(excinfo.value) == TOO_LARGE_MESSAGE.format(
        where=f"--subinterp-{field}", limit=limit, what=LIMIT_REASONS[field], value=limit + 1)


def test_too_large_message_text() -> None:
    """The message, word for word: the value, the limit, why, and where to read more."""
    with pytest.raises(pytest.UsageError) as excinfo:
        validate_count(2**64, "threads", "threads", strings=False)
    assert str(excinfo.value) == (
        f"threads must be at most {MAX_THREADS} (native threads per battery), got 18446744073709551616; "
        "see docs/limits.md"
    )


def test_timeout_limit_is_one_day() -> None:
    """A day is allowed, 1e300 s (which overflowed time_t) is not."""
    assert MAX_TIMEOUT_S == 86400
    assert validate_timeout(86400, "timeout") == 86400.0
    with pytest.raises(pytest.UsageError) as excinfo:
        validate_timeout(1e300, "timeout", strings=False)
    assert str(excinfo.value) == TIMEOUT_TOO_LARGE_MESSAGE.format(where="timeout", limit=MAX_TIMEOUT_S, value=1e300)
    assert str(excinfo.value) == (
        "timeout must be at most 86400 seconds (one day), got 1e+300; a battery that needs longer is hung"
    )


@pytest.mark.parametrize(("args", "env", "expected"), [
    (["--subinterp-timeout=1e300"], {}, "--subinterp-timeout must be at most 86400 seconds"),
    ([], {"PYTEST_SUBINTERP_TIMEOUT": "1e300"}, "env PYTEST_SUBINTERP_TIMEOUT must be at most 86400 seconds"),
    (["--subinterp-threads=18446744073709551616"], {}, f"--subinterp-threads must be at most {MAX_THREADS} "),
    (["--subinterp-interpreters=1000"], {}, f"--subinterp-interpreters must be at most {MAX_INTERPRETERS} "),
    ([], {"PYTEST_SUBINTERP_ROUNDS": "100000"}, f"env PYTEST_SUBINTERP_ROUNDS must be at most {MAX_ROUNDS} "),
], ids=["cli-timeout", "env-timeout", "cli-threads", "cli-interpreters", "env-rounds"])
def test_too_large_option_is_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                            args: list[str], env: dict[str, str], expected: str) -> None:
    """Through the real plugin: exit 4 before any test runs, the message on stderr."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile("import pytest\n\n@pytest.mark.subinterp\ndef test_a():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert expected in result.stderr.str()
    result.stdout.no_fnmatch_line("*passed*")


def test_too_large_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """An ini key is checked the same way."""
    pytester.makeini("[pytest]\nsubinterp_interpreters = 257\n")
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ini subinterp_interpreters must be at most {MAX_INTERPRETERS} " in result.stderr.str()


@pytest.mark.parametrize(("marker", "expected"), [
    ("timeout=1e300", "@pytest.mark.subinterp(timeout=1e+300): timeout must be at most 86400 seconds (one day)"),
    ("threads=2**64", f"@pytest.mark.subinterp(threads=18446744073709551616): threads must be at most {MAX_THREADS}"),
    ("threads=10**9", f"@pytest.mark.subinterp(threads=1000000000): threads must be at most {MAX_THREADS}"),
    ("interpreters=1000", f"@pytest.mark.subinterp(interpreters=1000): interpreters must be at most {MAX_INTERPRETERS}"),
], ids=["timeout", "threads-2**64", "threads-1e9", "interpreters-1000"])
def test_too_large_marker_argument_is_a_collection_error(pytester: pytest.Pytester, marker: str,
                                                         expected: str) -> None:
    """A marker beyond a limit fails collection of that module, naming the test; as with any
    collection error, pytest then runs nothing (no battery child is ever started)."""
    pytester.makepyfile(test_big=f"import pytest\n\n@pytest.mark.subinterp({marker})\ndef test_a():\n    pass\n",
                        test_fine="def test_b():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*test_big.py::test_a: {expected}*"])


def test_battery_that_cannot_fit_is_a_creation_error_not_a_segfault(pytester: pytest.Pytester) -> None:
    """Under 'ulimit -v' (3 GB), 200 isolated interpreters made CPython segfault in
    Py_NewInterpreterFromConfig (the 81st, on 3.13.0); the child now refuses the battery first."""
    import resource
    import subprocess
    import sys

    pytester.makepyfile("""
        import pytest

        @pytest.mark.subinterp(interpreters=200, threads=4, leaks="off")
        def test_big():
            pass
    """)

    def limit_address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))

    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"], cwd=pytester.path,
                          capture_output=True, text=True, timeout=120, preexec_fn=limit_address_space)
    assert "1 error" in proc.stdout, proc.stdout + proc.stderr
    assert "could not create" in proc.stdout and "interpreter 1: the battery was not started: it needs about " in proc.stdout
    assert "RLIMIT_AS, 'ulimit -v'" in proc.stdout
    assert "SIGSEGV" not in proc.stdout
