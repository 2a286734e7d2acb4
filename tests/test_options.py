"""Unit tests of pytest_subinterp.options: registration, precedence CLI > env > ini > default, messages."""

from __future__ import annotations

import sys

import pytest

from pytest_subinterp import options
from pytest_subinterp.options import (
    BOOL_MESSAGE,
    CHOICE_MESSAGE,
    GROUP_DESCRIPTION,
    INI_BOOL_FIX,
    INI_STRING_FIX,
    INI_UNREADABLE_MESSAGE,
    INTERPRETERS_HINT,
    OPTIONS,
    PATH_MESSAGE,
    POSITIVE_INT_MESSAGE,
    ROUNDS_HINT,
    THREADS_HINT,
    TIMEOUT_MESSAGE,
    Settings,
    default_config,
    resolve,
)

# The options come from this local conftest, not from an installed plugin (run with -p no:subinterp).
CONFTEST = """
from pytest_subinterp.options import add_options, resolve

def pytest_addoption(parser):
    add_options(parser)

def pytest_configure(config):
    config._subinterp_test_settings = resolve(config)

def pytest_report_header(config):
    return "resolved: " + repr(config._subinterp_test_settings)
"""
NO_PLUGIN = ("-p", "no:subinterp")
needs_native_toml = pytest.mark.skipif(
    int(pytest.__version__.split(".")[0]) < 9, reason="native [tool.pytest] TOML needs pytest 9"
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove any PYTEST_SUBINTERP_* variable of the outer environment."""
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)


@pytest.fixture
def local(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir whose conftest registers the options and resolves them in pytest_configure."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    return pytester


def settings_for(pytester: pytest.Pytester, *args: str) -> Settings:
    """Parse a config with args (options registered by the local conftest) and resolve it."""
    config = pytester.parseconfig(*NO_PLUGIN, *args)
    return resolve(config)


def usage_error(pytester: pytest.Pytester, *args: str) -> str:
    """Run pytest with args, assert it exits with a usage error, and return stderr."""
    result = pytester.runpytest(*NO_PLUGIN, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    return result.stderr.str()


# ---- Settings and defaults ----


def test_settings_is_frozen_and_replace_returns_copy() -> None:
    """Settings cannot be mutated; replace() returns a changed copy."""
    base = Settings()
    with pytest.raises(AttributeError):
        base.threads = 3  # type: ignore[misc]
    changed = base.replace(threads=3, leaks="warn")
    assert (changed.threads, changed.leaks) == (3, "warn")
    assert base.threads == 4


def test_settings_fields() -> None:
    """Settings has exactly the documented fields, in order."""
    names = list(Settings._fields)
    assert names == [
        "threads", "interpreters", "config", "rounds", "timeout", "leaks",
        "all", "strict", "disabled", "scope", "report", "start",
    ]  # fmt: skip


@pytest.mark.parametrize(("version", "expected"), [((3, 10, 0), "legacy"), ((3, 11, 9), "legacy"),
                                                   ((3, 12, 0), "isolated"), ((3, 14, 1), "isolated")])
def test_default_config_follows_python_version(monkeypatch: pytest.MonkeyPatch, version, expected) -> None:
    """The default config is isolated from Python 3.12 and legacy before."""
    monkeypatch.setattr(sys, "version_info", version)
    assert default_config() == expected


def test_defaults(local: pytest.Pytester) -> None:
    """With no CLI, env or ini value every setting has its documented default."""
    settings = settings_for(local)
    assert settings == Settings(
        threads=4, interpreters=2, config=default_config(), rounds=1, timeout=120.0, leaks="fail",
        all=False, strict=False, disabled=False, scope="test", report=None, start="template",
    )  # fmt: skip


# ---- each option from each source ----

VALUES = [
    # field, CLI args, env/ini raw text, expected
    ("threads", ["--subinterp-threads", "8"], "8", 8),
    ("interpreters", ["--subinterp-interpreters=3"], "3", 3),
    ("config", ["--subinterp-config", "both"], "both", "both"),
    ("config", ["--subinterp-config=legacy"], "legacy", "legacy"),
    ("rounds", ["--subinterp-rounds=5"], "5", 5),
    ("timeout", ["--subinterp-timeout", "2.5"], "2.5", 2.5),
    ("leaks", ["--subinterp-leaks=warn"], "warn", "warn"),
    ("leaks", ["--subinterp-leaks=off"], "off", "off"),
    ("all", ["--subinterp-all"], "true", True),
    ("strict", ["--subinterp-strict"], "yes", True),
    ("disabled", ["--no-subinterp"], "1", True),
    ("scope", ["--subinterp-scope", "module"], "module", "module"),
    ("report", ["--subinterp-report", "out/report.json"], "out/report.json", "out/report.json"),
    ("start", ["--subinterp-start=fork"], "fork", "fork"),
    ("start", ["--subinterp-start", "spawn"], "spawn", "spawn"),
]
IDS = [f"{field}={expected}" for field, _, _, expected in VALUES]


def option_named(field: str) -> options._Option:
    """Return the _Option of a Settings field."""
    return next(option for option in OPTIONS if option.field == field)


@pytest.mark.parametrize(("field", "cli", "raw", "expected"), VALUES, ids=IDS)
def test_value_from_cli(local: pytest.Pytester, field: str, cli: list[str], raw: str, expected) -> None:
    """Each option is read from the command line."""
    assert getattr(settings_for(local, *cli), field) == expected


@pytest.mark.parametrize(("field", "cli", "raw", "expected"), VALUES, ids=IDS)
def test_value_from_env(local: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, field, cli, raw, expected) -> None:
    """Each option is read from its PYTEST_SUBINTERP_* env var."""
    monkeypatch.setenv(option_named(field).env, raw)
    assert getattr(settings_for(local), field) == expected


@pytest.mark.parametrize(("field", "cli", "raw", "expected"), VALUES, ids=IDS)
def test_value_from_ini(local: pytest.Pytester, field: str, cli: list[str], raw: str, expected) -> None:
    """Each option is read from its subinterp_* ini key."""
    local.makeini(f"[pytest]\n{option_named(field).ini} = {raw}\n")
    assert getattr(settings_for(local), field) == expected


def test_env_and_ini_names() -> None:
    """Every option follows the stem naming: --subinterp-x / subinterp_x / PYTEST_SUBINTERP_X."""
    names = {option.field: (option.flag, option.dest, option.ini, option.env) for option in OPTIONS}
    assert names["threads"] == ("--subinterp-threads", "subinterp_threads", "subinterp_threads",
                                "PYTEST_SUBINTERP_THREADS")  # fmt: skip
    assert names["disabled"] == ("--no-subinterp", "no_subinterp", "subinterp_disabled", "PYTEST_SUBINTERP_DISABLED")
    assert set(names) == set(Settings._fields)


# ---- precedence ----


def test_cli_beats_env_beats_ini(local: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI > env > ini > default, option by option."""
    local.makeini("[pytest]\nsubinterp_threads = 2\nsubinterp_rounds = 3\nsubinterp_leaks = warn\n")
    monkeypatch.setenv("PYTEST_SUBINTERP_THREADS", "5")
    monkeypatch.setenv("PYTEST_SUBINTERP_ROUNDS", "6")
    settings = settings_for(local, "--subinterp-threads=7")
    assert (settings.threads, settings.rounds, settings.leaks, settings.interpreters) == (7, 6, "warn", 2)


def test_env_false_overrides_ini_true(local: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag set in ini can be turned off by its env var."""
    local.makeini("[pytest]\nsubinterp_all = true\nsubinterp_strict = true\n")
    monkeypatch.setenv("PYTEST_SUBINTERP_ALL", "0")
    settings = settings_for(local)
    assert (settings.all, settings.strict) == (False, True)


def test_empty_env_and_ini_count_as_not_given(local: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty env var falls through to ini, an empty ini value to the default."""
    local.makeini("[pytest]\nsubinterp_threads = 3\nsubinterp_rounds =\n")
    monkeypatch.setenv("PYTEST_SUBINTERP_THREADS", "")
    monkeypatch.setenv("PYTEST_SUBINTERP_ROUNDS", "  ")
    settings = settings_for(local)
    assert (settings.threads, settings.rounds) == (3, 1)


def test_isolated_on_any_python_is_not_a_usage_error(local: pytest.Pytester) -> None:
    """config=isolated is accepted on every Python; markers.configs_to_run decides what runs."""
    assert settings_for(local, "--subinterp-config=isolated").config == "isolated"


def test_resolved_in_a_real_run(local: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local conftest resolves the settings at configure time of a real run."""
    monkeypatch.setenv("PYTEST_SUBINTERP_INTERPRETERS", "3")
    result = local.runpytest(*NO_PLUGIN, "--subinterp-threads=2")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["resolved: Settings(threads=2, interpreters=3, *)"])


@needs_native_toml
def test_native_toml_values(local: pytest.Pytester) -> None:
    """In native [tool.pytest] TOML, ints, floats and bools need no quotes."""
    local.makepyprojecttoml(
        "[tool.pytest]\nsubinterp_threads = 6\nsubinterp_timeout = 1.5\nsubinterp_all = true\nsubinterp_strict = 'yes'\n"
    )
    settings = settings_for(local)
    assert (settings.threads, settings.timeout, settings.all, settings.strict) == (6, 1.5, True, True)


def test_ini_options_table_in_pyproject(local: pytest.Pytester) -> None:
    """[tool.pytest.ini_options] values are read too."""
    local.makepyprojecttoml("[tool.pytest.ini_options]\nsubinterp_interpreters = 5\nsubinterp_scope = 'module'\n")
    settings = settings_for(local)
    assert (settings.interpreters, settings.scope) == (5, "module")


# ---- bad values: usage error (exit 4) naming the source and the allowed values ----

BAD_CLI = [
    ("--subinterp-threads=0", POSITIVE_INT_MESSAGE.format(where="--subinterp-threads", value="0", hint=THREADS_HINT)),
    ("--subinterp-threads=two", POSITIVE_INT_MESSAGE.format(where="--subinterp-threads", value="two", hint=THREADS_HINT)),
    ("--subinterp-threads=2.0", POSITIVE_INT_MESSAGE.format(where="--subinterp-threads", value="2.0", hint=THREADS_HINT)),
    ("--subinterp-interpreters=-1",
     POSITIVE_INT_MESSAGE.format(where="--subinterp-interpreters", value="-1", hint=INTERPRETERS_HINT)),
    ("--subinterp-rounds=0", POSITIVE_INT_MESSAGE.format(where="--subinterp-rounds", value="0", hint=ROUNDS_HINT)),
    ("--subinterp-timeout=0", TIMEOUT_MESSAGE.format(where="--subinterp-timeout", value="0")),
    ("--subinterp-timeout=soon", TIMEOUT_MESSAGE.format(where="--subinterp-timeout", value="soon")),
    ("--subinterp-timeout=nan", TIMEOUT_MESSAGE.format(where="--subinterp-timeout", value="nan")),
    ("--subinterp-timeout=inf", TIMEOUT_MESSAGE.format(where="--subinterp-timeout", value="inf")),
    ("--subinterp-config=foo",
     CHOICE_MESSAGE.format(where="--subinterp-config", allowed="isolated, legacy, both", value="foo")),
    ("--subinterp-leaks=maybe",
     CHOICE_MESSAGE.format(where="--subinterp-leaks", allowed="fail, warn, off", value="maybe")),
    ("--subinterp-scope=session",
     CHOICE_MESSAGE.format(where="--subinterp-scope", allowed="test, module", value="session")),
    ("--subinterp-report=", PATH_MESSAGE.format(where="--subinterp-report", value="")),
    ("--subinterp-start=thread",
     CHOICE_MESSAGE.format(where="--subinterp-start", allowed="template, fork, spawn", value="thread")),
]  # fmt: skip


@pytest.mark.parametrize(("arg", "message"), BAD_CLI, ids=[arg for arg, _ in BAD_CLI])
def test_bad_cli_value_is_usage_error(local: pytest.Pytester, arg: str, message: str) -> None:
    """An invalid CLI value exits with a usage error that names the flag."""
    assert message in usage_error(local, arg)


def test_bad_threads_message_text() -> None:
    """The message the spec shows, word for word."""
    text = POSITIVE_INT_MESSAGE.format(where="--subinterp-threads", value="0", hint=THREADS_HINT)
    assert text == "--subinterp-threads must be a positive integer, got '0'; use 1 to run each test in one thread"


BAD_ENV = [
    ("PYTEST_SUBINTERP_THREADS", "0",
     POSITIVE_INT_MESSAGE.format(where="env PYTEST_SUBINTERP_THREADS", value="0", hint=THREADS_HINT)),
    ("PYTEST_SUBINTERP_INTERPRETERS", "x",
     POSITIVE_INT_MESSAGE.format(where="env PYTEST_SUBINTERP_INTERPRETERS", value="x", hint=INTERPRETERS_HINT)),
    ("PYTEST_SUBINTERP_ROUNDS", "1.5",
     POSITIVE_INT_MESSAGE.format(where="env PYTEST_SUBINTERP_ROUNDS", value="1.5", hint=ROUNDS_HINT)),
    ("PYTEST_SUBINTERP_TIMEOUT", "-3", "env PYTEST_SUBINTERP_TIMEOUT must be a number of seconds > 0, got '-3'"),
    ("PYTEST_SUBINTERP_CONFIG", "own-gil",
     CHOICE_MESSAGE.format(where="env PYTEST_SUBINTERP_CONFIG", allowed="isolated, legacy, both", value="own-gil")),
    ("PYTEST_SUBINTERP_LEAKS", "FAIL!",
     CHOICE_MESSAGE.format(where="env PYTEST_SUBINTERP_LEAKS", allowed="fail, warn, off", value="FAIL!")),
    ("PYTEST_SUBINTERP_SCOPE", "class",
     CHOICE_MESSAGE.format(where="env PYTEST_SUBINTERP_SCOPE", allowed="test, module", value="class")),
    ("PYTEST_SUBINTERP_ALL", "maybe", BOOL_MESSAGE.format(where="env PYTEST_SUBINTERP_ALL", value="maybe")),
    ("PYTEST_SUBINTERP_STRICT", "2", BOOL_MESSAGE.format(where="env PYTEST_SUBINTERP_STRICT", value="2")),
    ("PYTEST_SUBINTERP_DISABLED", "nope", BOOL_MESSAGE.format(where="env PYTEST_SUBINTERP_DISABLED", value="nope")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "raw", "message"), BAD_ENV, ids=[name for name, _, _ in BAD_ENV])
def test_bad_env_value_is_usage_error(
    local: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str, raw: str, message: str
) -> None:
    """An invalid env value exits with a usage error that names the variable."""
    monkeypatch.setenv(name, raw)
    assert message in usage_error(local)


BAD_INI = [
    ("subinterp_threads", "0",
     POSITIVE_INT_MESSAGE.format(where="ini subinterp_threads", value="0", hint=THREADS_HINT)),
    ("subinterp_rounds", "many",
     POSITIVE_INT_MESSAGE.format(where="ini subinterp_rounds", value="many", hint=ROUNDS_HINT)),
    ("subinterp_timeout", "0.0", TIMEOUT_MESSAGE.format(where="ini subinterp_timeout", value="0.0")),
    ("subinterp_config", "foo", "ini subinterp_config must be one of isolated, legacy, both, got 'foo'"),
    ("subinterp_leaks", "loud",
     CHOICE_MESSAGE.format(where="ini subinterp_leaks", allowed="fail, warn, off", value="loud")),
    ("subinterp_scope", "session",
     CHOICE_MESSAGE.format(where="ini subinterp_scope", allowed="test, module", value="session")),
    ("subinterp_all", "maybe", BOOL_MESSAGE.format(where="ini subinterp_all", value="maybe")),
]  # fmt: skip


@pytest.mark.parametrize(("key", "raw", "message"), BAD_INI, ids=[key for key, _, _ in BAD_INI])
def test_bad_ini_value_is_usage_error(local: pytest.Pytester, key: str, raw: str, message: str) -> None:
    """An invalid ini value exits with a usage error that names the key."""
    local.makeini(f"[pytest]\n{key} = {raw}\n")
    assert message in usage_error(local)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("subinterp_threads = 0",
         POSITIVE_INT_MESSAGE.format(where="ini subinterp_threads", value=0, hint=THREADS_HINT)),
        ("subinterp_threads = true",
         POSITIVE_INT_MESSAGE.format(where="ini subinterp_threads", value=True, hint=THREADS_HINT)),
        ("subinterp_timeout = -1", TIMEOUT_MESSAGE.format(where="ini subinterp_timeout", value=-1)),
        ("subinterp_all = 'maybe'", BOOL_MESSAGE.format(where="ini subinterp_all", value="maybe")),
    ],
)  # fmt: skip
@needs_native_toml
def test_bad_native_toml_value_is_usage_error(local: pytest.Pytester, toml: str, message: str) -> None:
    """Native TOML values are validated like the others (and bool is not an int)."""
    local.makepyprojecttoml(f"[tool.pytest]\n{toml}\n")
    assert message in usage_error(local)


def test_bad_value_beaten_by_good_higher_source(local: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value in a lower-precedence source is never read when a higher one gives the option."""
    local.makeini("[pytest]\nsubinterp_threads = zero\n")
    monkeypatch.setenv("PYTEST_SUBINTERP_THREADS", "2")
    assert settings_for(local).threads == 2


def test_unreadable_ini_message() -> None:
    """If pytest cannot read an ini key and hides its raw value, the message says how to fix it."""

    class Unreadable:
        """A config whose getini always fails and that has no inicfg."""

        def getini(self, name: str) -> object:
            raise TypeError("expects a string, got list")

    with pytest.raises(pytest.UsageError) as excinfo:
        options._read_ini(Unreadable(), option_named("threads"))  # type: ignore[arg-type]
    fix = INI_STRING_FIX.format(name="subinterp_threads", example="4")
    expected = INI_UNREADABLE_MESSAGE.format(name="subinterp_threads", error="expects a string, got list", fix=fix)
    assert str(excinfo.value) == expected
    with pytest.raises(pytest.UsageError, match=INI_BOOL_FIX):
        options._read_ini(Unreadable(), option_named("all"))  # type: ignore[arg-type]


# ---- validators (shared with markers.py) ----


@pytest.mark.parametrize(("value", "expected"), [("1", 1), (" 12 ", 12), ("+3", 3), (7, 7)])
def test_validate_positive_int_accepts(value: object, expected: int) -> None:
    """Positive integers, as ints or decimal strings, are accepted."""
    assert options.validate_positive_int(value, "x") == expected


@pytest.mark.parametrize("value", ["0", "-2", "1.0", "1e3", "1_000", "", "٣", True, False, 2.0, None, 0])
def test_validate_positive_int_rejects(value: object) -> None:
    """Zero, negatives, floats, bools and non-decimal strings are rejected."""
    with pytest.raises(pytest.UsageError, match="^where must be a positive integer, got "):
        options.validate_positive_int(value, "where")


def test_validate_positive_int_without_strings() -> None:
    """strings=False (marker arguments) rejects "4"."""
    with pytest.raises(pytest.UsageError):
        options.validate_positive_int("4", "threads", strings=False)


@pytest.mark.parametrize(("value", "expected"), [("0.5", 0.5), ("120", 120.0), (3, 3.0), (1.5, 1.5)])
def test_validate_timeout_accepts(value: object, expected: float) -> None:
    """Finite numbers > 0 are accepted and returned as float."""
    result = options.validate_timeout(value, "t")
    assert result == expected and isinstance(result, float)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "x", True, 0, -0.5, float("nan"), float("inf"), None])
def test_validate_timeout_rejects(value: object) -> None:
    """Zero, negatives, non-finite, bools and non-numbers are rejected."""
    with pytest.raises(pytest.UsageError, match="must be a number of seconds > 0"):
        options.validate_timeout(value, "t")


def test_validate_choice() -> None:
    """Only exact choices are accepted; None only when it is a choice."""
    assert options.validate_choice("warn", "w", ("fail", "warn")) == "warn"
    assert options.validate_choice(None, "w", ("fail", None)) is None
    for bad in ("Warn", None, 1):
        with pytest.raises(pytest.UsageError, match="^w must be one of fail, warn, got "):
            options.validate_choice(bad, "w", ("fail", "warn"))


@pytest.mark.parametrize(("value", "expected"), [("TRUE", True), ("on", True), ("1", True), ("no", False),
                                                 ("Off", False), (True, True), (False, False)])
def test_validate_bool(value: object, expected: bool) -> None:
    """Usual truth words are accepted in any case."""
    assert options.validate_bool(value, "b") is expected


# ---- help ----


def test_help_shows_group_options_and_ini_keys(local: pytest.Pytester) -> None:
    """pytest --help lists every option under the subinterp group and every ini key."""
    result = local.runpytest(*NO_PLUGIN, "--help")
    assert result.ret == 0
    out = result.stdout.str()
    assert f"{GROUP_DESCRIPTION}:" in out
    group = out.split(f"{GROUP_DESCRIPTION}:", 1)[1]
    for option in OPTIONS:
        assert option.flag in group
        assert option.env in group
        assert option.ini in out
    assert "--subinterp-threads=N native threads per battery (default: 4)" in " ".join(group.split())
