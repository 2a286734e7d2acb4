"""Unit tests of pytest_subinterp.markers: marker sources, overrides, strict argument checks, configs_to_run."""

from __future__ import annotations

import sys

import pytest

from pytest_subinterp import MARKER_LINE
from pytest_subinterp.markers import (
    BAD_VALUE_MESSAGE,
    ISOLATED_NEEDS_312,
    ISOLATED_SKIPPED_IN_BOTH,
    POSITIONAL_MESSAGE,
    UNKNOWN_KEYWORD_MESSAGE,
    VALID_KEYWORDS,
    MarkerError,
    configs_to_run,
    marker_settings,
)
from pytest_subinterp.options import (
    CHOICE_MESSAGE,
    INTERPRETERS_HINT,
    POSITIVE_INT_MESSAGE,
    ROUNDS_HINT,
    THREADS_HINT,
    TIMEOUT_MESSAGE,
    Settings,
)

# The marker is registered by this local conftest, not by an installed plugin (run with -p no:subinterp).
CONFTEST = """
from pytest_subinterp import MARKER_LINE

def pytest_configure(config):
    config.addinivalue_line("markers", MARKER_LINE)
"""
ARGS = ("-p", "no:subinterp", "--strict-markers")
BASE = Settings(threads=3, interpreters=5, config="legacy", rounds=2, timeout=9.0, leaks="warn", scope="module")
NODEID = "tests/test_x.py::test_a"


def collect(pytester: pytest.Pytester, source: str) -> dict[str, pytest.Item]:
    """Write source as tests/test_x.py next to the local conftest; return its items by name."""
    pytester.makeconftest(CONFTEST)
    pytester.mkdir("tests")
    path = pytester.path.joinpath("tests", "test_x.py")
    path.write_text(source, encoding="utf-8")
    # Collect without running a session (as Pytester.getnode does): much faster than inline_genitems.
    config = pytester.parseconfigure(*ARGS, str(path))
    session = pytest.Session.from_config(config)
    config.hook.pytest_sessionstart(session=session)
    items = session.perform_collect()
    assert session.testsfailed == 0, "collection errors (e.g. an unregistered marker)"
    return {item.name: item for item in items}


def settings_of(pytester: pytest.Pytester, source: str, name: str = "test_a") -> Settings:
    """Return marker_settings(BASE) for test name in source."""
    return marker_settings(collect(pytester, source)[name], BASE)


def marker_error(pytester: pytest.Pytester, marker_args: str) -> str:
    """Return the MarkerError text for test_a decorated with @pytest.mark.subinterp(marker_args)."""
    source = f"import pytest\n\n@pytest.mark.subinterp({marker_args})\ndef test_a():\n    pass\n"
    item = collect(pytester, source)["test_a"]
    with pytest.raises(MarkerError) as excinfo:
        marker_settings(item, BASE)
    return str(excinfo.value)


# ---- registration ----


def test_marker_line_shape() -> None:
    """MARKER_LINE documents the signature and the purpose, as --markers shows it."""
    assert MARKER_LINE.startswith("subinterp(threads=4, interpreters=2, config='isolated', rounds=1, timeout=120, ")
    assert MARKER_LINE.endswith(": run this test in fresh sub-interpreters from native threads (pytest-subinterp)")
    for keyword in VALID_KEYWORDS:
        assert f"{keyword}=" in MARKER_LINE.split(":")[0]


def test_marker_is_listed_by_markers(pytester: pytest.Pytester) -> None:
    """The registered line appears in pytest --markers."""
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest(*ARGS, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.subinterp(threads=4, *): run this test in fresh sub-interpreters*"])


def test_strict_markers_accepts_registered_marker(pytester: pytest.Pytester) -> None:
    """A marked test passes under --strict-markers once MARKER_LINE is registered."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("import pytest\n\n@pytest.mark.subinterp(threads=2)\ndef test_a():\n    pass\n")
    pytester.runpytest(*ARGS).assert_outcomes(passed=1)


# ---- overrides ----


def test_unmarked_test_keeps_base(pytester: pytest.Pytester) -> None:
    """Without a subinterp marker the base settings are returned unchanged."""
    item = collect(pytester, "def test_a():\n    pass\n")["test_a"]
    assert marker_settings(item, BASE) is BASE


def test_bare_marker_keeps_base(pytester: pytest.Pytester) -> None:
    """@pytest.mark.subinterp with no arguments takes every value from the options."""
    assert settings_of(pytester, "import pytest\n\n@pytest.mark.subinterp\ndef test_a():\n    pass\n") == BASE


def test_every_keyword_overrides(pytester: pytest.Pytester) -> None:
    """Each keyword replaces its Settings field; the other fields stay."""
    source = """
import pytest

@pytest.mark.subinterp(threads=6, interpreters=1, config="both", rounds=4, timeout=2.5, leaks="off", scope="test")
def test_a():
    pass
"""
    expected = BASE.replace(threads=6, interpreters=1, config="both", rounds=4, timeout=2.5, leaks="off", scope="test")
    assert settings_of(pytester, source) == expected


def test_int_timeout_becomes_float(pytester: pytest.Pytester) -> None:
    """timeout=30 is stored as 30.0."""
    source = "import pytest\n\n@pytest.mark.subinterp(timeout=30)\ndef test_a():\n    pass\n"
    timeout = settings_of(pytester, source).timeout
    assert timeout == 30.0 and isinstance(timeout, float)


def test_none_leaks_and_scope_mean_base(pytester: pytest.Pytester) -> None:
    """leaks=None and scope=None keep the values from the options."""
    source = "import pytest\n\n@pytest.mark.subinterp(leaks=None, scope=None, threads=1)\ndef test_a():\n    pass\n"
    assert settings_of(pytester, source) == BASE.replace(threads=1)


# ---- marker sources ----


def test_marker_on_class(pytester: pytest.Pytester) -> None:
    """A class marker applies to its methods."""
    source = """
import pytest

@pytest.mark.subinterp(threads=7)
class TestA:
    def test_a(self):
        pass
"""
    assert settings_of(pytester, source).threads == 7


def test_marker_from_module_pytestmark(pytester: pytest.Pytester) -> None:
    """A module pytestmark applies to every test of the module."""
    source = """
import pytest

pytestmark = [pytest.mark.subinterp(rounds=9)]

def test_a():
    pass

def test_b():
    pass
"""
    items = collect(pytester, source)
    assert [marker_settings(items[name], BASE).rounds for name in ("test_a", "test_b")] == [9, 9]


def test_marker_from_param_marks(pytester: pytest.Pytester) -> None:
    """pytest.param(..., marks=pytest.mark.subinterp(...)) marks only that parameter."""
    source = """
import pytest

@pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.subinterp(interpreters=4)), 2])
def test_a(x):
    pass
"""
    items = collect(pytester, source)
    assert marker_settings(items["test_a[1]"], BASE).interpreters == 4
    assert marker_settings(items["test_a[2]"], BASE) is BASE


def test_closest_marker_wins(pytester: pytest.Pytester) -> None:
    """Function beats class beats module; the closest marker is used whole, not merged."""
    source = """
import pytest

pytestmark = pytest.mark.subinterp(threads=2, rounds=3)

@pytest.mark.subinterp(threads=5)
class TestA:
    @pytest.mark.subinterp(threads=8)
    def test_fn(self):
        pass

    def test_cls(self):
        pass

def test_mod():
    pass
"""
    items = collect(pytester, source)
    got = {name: (marker_settings(item, BASE).threads, marker_settings(item, BASE).rounds)
           for name, item in items.items()}  # fmt: skip
    assert got == {"test_fn": (8, BASE.rounds), "test_cls": (5, BASE.rounds), "test_mod": (2, 3)}


# ---- bad arguments ----


def test_unknown_keyword_message_text(pytester: pytest.Pytester) -> None:
    """The unknown-keyword message names the test, the keyword and the valid ones."""
    assert marker_error(pytester, "thread=4") == (
        "tests/test_x.py::test_a: @pytest.mark.subinterp got unknown keyword 'thread' "
        "(valid: threads, interpreters, config, rounds, timeout, leaks, scope)"
    )


def test_threads_zero_message_text(pytester: pytest.Pytester) -> None:
    """The bad-value message names the test, the argument, the problem and the fix."""
    assert marker_error(pytester, "threads=0") == (
        "tests/test_x.py::test_a: @pytest.mark.subinterp(threads=0): threads must be a positive integer, got 0"
        "; use 1 to run each test in one thread"
    )


def test_positional_argument(pytester: pytest.Pytester) -> None:
    """Positional arguments are refused."""
    assert marker_error(pytester, "4, 'legacy'") == POSITIONAL_MESSAGE.format(nodeid=NODEID, args="4, 'legacy'")


@pytest.mark.parametrize("keyword", ["gil", "thread", "timeout_s", "config_"])
def test_unknown_keyword(pytester: pytest.Pytester, keyword: str) -> None:
    """Any keyword outside VALID_KEYWORDS is refused."""
    valid = ", ".join(VALID_KEYWORDS)
    assert marker_error(pytester, f"{keyword}=1") == UNKNOWN_KEYWORD_MESSAGE.format(
        nodeid=NODEID, key=keyword, valid=valid
    )


def positive_int(key: str, value: object, hint: str) -> str:
    """Expected problem text for a bad positive-int marker argument."""
    return POSITIVE_INT_MESSAGE.format(where=key, value=value, hint=hint)


BAD_VALUES = [
    ("threads", "0", 0, positive_int("threads", 0, THREADS_HINT)),
    ("threads", "-1", -1, positive_int("threads", -1, THREADS_HINT)),
    ("threads", "True", True, positive_int("threads", True, THREADS_HINT)),
    ("threads", "2.0", 2.0, positive_int("threads", 2.0, THREADS_HINT)),
    ("threads", "'4'", "4", positive_int("threads", "4", THREADS_HINT)),
    ("threads", "None", None, positive_int("threads", None, THREADS_HINT)),
    ("interpreters", "0", 0, positive_int("interpreters", 0, INTERPRETERS_HINT)),
    ("interpreters", "False", False, positive_int("interpreters", False, INTERPRETERS_HINT)),
    ("rounds", "0", 0, positive_int("rounds", 0, ROUNDS_HINT)),
    ("rounds", "1.5", 1.5, positive_int("rounds", 1.5, ROUNDS_HINT)),
    ("timeout", "0", 0, TIMEOUT_MESSAGE.format(where="timeout", value=0)),
    ("timeout", "-2.5", -2.5, TIMEOUT_MESSAGE.format(where="timeout", value=-2.5)),
    ("timeout", "'10'", "10", TIMEOUT_MESSAGE.format(where="timeout", value="10")),
    ("timeout", "True", True, TIMEOUT_MESSAGE.format(where="timeout", value=True)),
    ("timeout", "float('nan')", float("nan"), TIMEOUT_MESSAGE.format(where="timeout", value=float("nan"))),
    ("timeout", "float('inf')", float("inf"), TIMEOUT_MESSAGE.format(where="timeout", value=float("inf"))),
    ("timeout", "None", None, TIMEOUT_MESSAGE.format(where="timeout", value=None)),
    ("config", "'foo'", "foo", CHOICE_MESSAGE.format(where="config", allowed="isolated, legacy, both", value="foo")),
    ("config", "'Isolated'", "Isolated",
     CHOICE_MESSAGE.format(where="config", allowed="isolated, legacy, both", value="Isolated")),
    ("config", "None", None, CHOICE_MESSAGE.format(where="config", allowed="isolated, legacy, both", value=None)),
    ("leaks", "'maybe'", "maybe", CHOICE_MESSAGE.format(where="leaks", allowed="fail, warn, off, None", value="maybe")),
    ("leaks", "False", False, CHOICE_MESSAGE.format(where="leaks", allowed="fail, warn, off, None", value=False)),
    ("scope", "'session'", "session",
     CHOICE_MESSAGE.format(where="scope", allowed="test, module, None", value="session")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "source", "value", "problem"), BAD_VALUES, ids=[f"{key}={source}" for key, source, _, _ in BAD_VALUES]
)
def test_bad_value(pytester: pytest.Pytester, key: str, source: str, value: object, problem: str) -> None:
    """Every bad value is a MarkerError naming the test, the argument and the allowed values."""
    expected = BAD_VALUE_MESSAGE.format(nodeid=NODEID, key=key, value=value, problem=problem)
    assert marker_error(pytester, f"{key}={source}") == expected


def test_config_foo_message_names_allowed_values(pytester: pytest.Pytester) -> None:
    """config='foo' lists the three allowed configs."""
    assert marker_error(pytester, "config='foo'") == (
        "tests/test_x.py::test_a: @pytest.mark.subinterp(config='foo'): "
        "config must be one of isolated, legacy, both, got 'foo'"
    )


def test_marker_error_is_exception_with_message() -> None:
    """MarkerError is an Exception whose str is the message."""
    assert issubclass(MarkerError, Exception)
    assert str(MarkerError("text")) == "text"


# ---- configs_to_run ----


@pytest.mark.parametrize(
    ("config", "expected"), [("isolated", ["isolated"]), ("legacy", ["legacy"]), ("both", ["isolated", "legacy"])]
)
def test_configs_to_run_312(monkeypatch: pytest.MonkeyPatch, config: str, expected: list[str]) -> None:
    """On 3.12+ every config runs, both as isolated then legacy."""
    monkeypatch.setattr(sys, "version_info", (3, 12, 0, "final", 0))
    assert configs_to_run(BASE.replace(config=config)) == (expected, None)


def test_configs_to_run_before_312(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before 3.12 isolated is dropped with a reason; both runs legacy with a note."""
    monkeypatch.setattr(sys, "version_info", (3, 11, 7, "final", 0))
    reason = ISOLATED_NEEDS_312.format(version="3.11")
    assert reason == (
        "config='isolated' needs Python 3.12+ (own-GIL sub-interpreters); "
        "this is Python 3.11: use config='legacy' or 'both'"
    )
    assert configs_to_run(BASE.replace(config="isolated")) == ([], reason)
    assert configs_to_run(BASE.replace(config="both")) == (["legacy"], ISOLATED_SKIPPED_IN_BOTH.format(version="3.11"))
    assert configs_to_run(BASE.replace(config="legacy")) == (["legacy"], None)


def test_configs_to_run_on_this_python() -> None:
    """On the running Python, isolated runs exactly when it is 3.12+."""
    runs, reason = configs_to_run(BASE.replace(config="isolated"))
    if sys.version_info >= (3, 12):
        assert (runs, reason) == (["isolated"], None)
    else:
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        assert (runs, reason) == ([], ISOLATED_NEEDS_312.format(version=version))


def test_configs_to_run_unknown_config() -> None:
    """A Settings with an unknown config is a programming error."""
    with pytest.raises(ValueError, match="unknown sub-interpreter config 'foo'"):
        configs_to_run(BASE.replace(config="foo"))
