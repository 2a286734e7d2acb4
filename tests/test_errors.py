"""End-to-end tests of bad input: marker arguments (collection errors), option values (usage errors), registration."""

from __future__ import annotations

import pytest

from pytest_subinterp import MARKER_LINE
from pytest_subinterp.markers import (
    BAD_VALUE_MESSAGE,
    POSITIONAL_MESSAGE,
    UNKNOWN_KEYWORD_MESSAGE,
    VALID_KEYWORDS,
)
from pytest_subinterp.options import (
    CHOICE_MESSAGE,
    CONFIGS,
    GROUP_DESCRIPTION,
    INTERPRETERS_HINT,
    LEAKS,
    OPTIONS,
    POSITIVE_INT_MESSAGE,
    ROUNDS_HINT,
    SCOPES,
    THREADS_HINT,
    TIMEOUT_MESSAGE,
)

NODEID = "test_bad.py::test_a"


def _bad_value(key: str, value: object, problem: str) -> str:
    return BAD_VALUE_MESSAGE.format(nodeid=NODEID, key=key, value=value, problem=problem)


def _choice(key: str, value: object, choices: tuple[object, ...]) -> str:
    allowed = ", ".join(str(choice) for choice in choices)
    return _bad_value(key, value, CHOICE_MESSAGE.format(where=key, allowed=allowed, value=value))


def _positive(key: str, value: object, hint: str) -> str:
    return _bad_value(key, value, POSITIVE_INT_MESSAGE.format(where=key, value=value, hint=hint))


BAD_MARKERS = [
    pytest.param("thread=2",
                 UNKNOWN_KEYWORD_MESSAGE.format(nodeid=NODEID, key="thread", valid=", ".join(VALID_KEYWORDS)),
                 id="unknown-keyword"),
    pytest.param("threads=0", _positive("threads", 0, THREADS_HINT), id="threads-0"),
    pytest.param("interpreters=-1", _positive("interpreters", -1, INTERPRETERS_HINT), id="interpreters-negative"),
    pytest.param("rounds='2'", _positive("rounds", "2", ROUNDS_HINT), id="rounds-str"),
    pytest.param("threads=True", _positive("threads", True, THREADS_HINT), id="threads-bool"),
    pytest.param("config='foo'", _choice("config", "foo", CONFIGS), id="config-foo"),
    pytest.param("timeout=0", _bad_value("timeout", 0, TIMEOUT_MESSAGE.format(where="timeout", value=0)),
                 id="timeout-0"),
    pytest.param("leaks='sometimes'", _choice("leaks", "sometimes", (*LEAKS, None)), id="leaks-sometimes"),
    pytest.param("scope='session'", _choice("scope", "session", (*SCOPES, None)), id="scope-session"),
    pytest.param("2", POSITIONAL_MESSAGE.format(nodeid=NODEID, args="2"), id="positional"),
]


@pytest.mark.parametrize(("marker_args", "message"), BAD_MARKERS)
def test_bad_marker_argument_is_a_collection_error(pytester: pytest.Pytester, marker_args: str, message: str) -> None:
    """A bad marker argument is a collection error naming the test and the allowed values, without our traceback."""
    pytester.makepyfile(test_bad=f"""
        import pytest

        @pytest.mark.subinterp({marker_args})
        def test_a():
            pass
    """)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting test_bad.py*"])
    assert message in result.stdout.lines, message
    result.stdout.fnmatch_lines(["ERROR test_bad.py*", "*Interrupted: 1 error during collection*"])
    result.stdout.no_fnmatch_line("*pytest_subinterp/*.py*")
    result.stdout.no_fnmatch_line("*Traceback*")


def test_bad_marker_on_a_parameter_names_the_parametrized_test(pytester: pytest.Pytester) -> None:
    """A bad marker given through pytest.param marks names that parameter's test id."""
    pytester.makepyfile(test_bad="""
        import pytest

        @pytest.mark.parametrize("n", [1, pytest.param(2, marks=pytest.mark.subinterp(threads=0))])
        def test_p(n):
            pass
    """)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    message = BAD_VALUE_MESSAGE.format(
        nodeid="test_bad.py::test_p[2]", key="threads", value=0,
        problem=POSITIVE_INT_MESSAGE.format(where="threads", value=0, hint=THREADS_HINT))
    assert message in result.stdout.lines
    result.stdout.no_fnmatch_line("*pytest_subinterp/*.py*")


BAD_OPTIONS = [
    pytest.param(["--subinterp-threads=0"], {}, None,
                 POSITIVE_INT_MESSAGE.format(where="--subinterp-threads", value="0", hint=THREADS_HINT),
                 id="cli-threads-0"),
    pytest.param(["--subinterp-config=foo"], {}, None,
                 CHOICE_MESSAGE.format(where="--subinterp-config", allowed=", ".join(CONFIGS), value="foo"),
                 id="cli-config-foo"),
    pytest.param(["--subinterp-timeout=-1"], {}, None,
                 TIMEOUT_MESSAGE.format(where="--subinterp-timeout", value="-1"),
                 id="cli-timeout-negative"),
    pytest.param([], {}, "subinterp_rounds = x",
                 POSITIVE_INT_MESSAGE.format(where="ini subinterp_rounds", value="x", hint=ROUNDS_HINT),
                 id="ini-rounds-x"),
    pytest.param([], {"PYTEST_SUBINTERP_LEAKS": "maybe"}, None,
                 CHOICE_MESSAGE.format(where="env PYTEST_SUBINTERP_LEAKS", allowed=", ".join(LEAKS), value="maybe"),
                 id="env-leaks-maybe"),
]


@pytest.mark.parametrize(("args", "env", "ini", "message"), BAD_OPTIONS)
def test_bad_option_value_is_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                           args: list[str], env: dict[str, str], ini: str | None, message: str) -> None:
    """A bad CLI, ini or env value stops pytest with a usage error and the message of options.py."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if ini is not None:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: {message}" in result.stderr.lines, result.stderr.str()
    result.stdout.no_fnmatch_line("*passed*")
    result.stderr.no_fnmatch_line("*Traceback*")


def test_strict_markers_accepts_the_marker(subinterp_pytester: pytest.Pytester) -> None:
    """--strict-markers: the registered marker is accepted (the battery runs); an unregistered one still errors."""
    subinterp_pytester.makepyfile(
        test_strict="""
            import pytest
            import gilstate_ext

            @pytest.mark.subinterp(threads=1, interpreters=1)
            def test_marked():
                assert gilstate_ext.current_interpreter_id() != 0
        """,
        test_typo="""
            import pytest

            @pytest.mark.subinterpp
            def test_typo():
                pass
        """,
    )
    result = subinterp_pytester.runpytest_subprocess("--strict-markers", "--continue-on-collection-errors", "-v")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["test_strict.py::test_marked PASSED [[]1x1x1 *[]]*"])
    result.stdout.fnmatch_lines(["*'subinterpp' not found in `markers` configuration option*"])
    result.stdout.no_fnmatch_line("*'subinterp' not found*")


def test_help_lists_the_options_in_their_own_group(pytester: pytest.Pytester) -> None:
    """pytest --help shows every option, in order, under the plugin's group, and the ini keys."""
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"{GROUP_DESCRIPTION}:", *(f"  {option.flag}*" for option in OPTIONS)])
    result.stdout.fnmatch_lines([f"  {option.ini} (*" for option in OPTIONS])


def test_markers_shows_the_marker_line(pytester: pytest.Pytester) -> None:
    """pytest --markers documents the marker signature."""
    result = pytester.runpytest_subprocess("--markers")
    assert result.ret == pytest.ExitCode.OK
    assert f"@pytest.mark.{MARKER_LINE}" in result.stdout.lines
