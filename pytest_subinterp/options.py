"""Command-line options, ini keys and env vars of pytest-subinterp, resolved into one Settings.

Precedence for every setting: CLI > env ``PYTEST_SUBINTERP_*`` > ini ``subinterp_*`` > default.
An empty env var or ini value counts as "not given".
"""

# No `from __future__ import annotations` here: every pytest run imports this module, and
# NamedTuple turns each string annotation into a ForwardRef by compiling it (one per field).

import math
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

GROUP = "subinterp"
GROUP_DESCRIPTION = "sub-interpreter batteries (pytest-subinterp)"
ENV_PREFIX = "PYTEST_SUBINTERP_"
INI_PREFIX = "subinterp_"

CONFIGS = ("isolated", "legacy", "both")
LEAKS = ("fail", "warn", "off")
SCOPES = ("test", "module")
STARTS = ("template", "fork", "spawn")
TRUE_WORDS = ("1", "true", "yes", "on", "y", "t")
FALSE_WORDS = ("0", "false", "no", "off", "n", "f")

# Upper bounds: beyond them a value is a usage (or collection) error, never a crash of the C
# helper or of the session.  Measured on a 2-core, 24 GiB machine (3.13.0, isolated, leaks off):
# 128 interpreters x 1,024 threads: 35 s and 2.3 GB for the battery; 256 x 1,024 is what the
# limits allow (docs/limits.md has the figures).  A timeout beyond a day is a mistake (and
# 1e300 s overflows time_t in every deadline computed from it).
MAX_THREADS = 1024
MAX_INTERPRETERS = 256
MAX_ROUNDS = 1000
MAX_TIMEOUT_S = 86400.0
MAXIMA = {"threads": MAX_THREADS, "interpreters": MAX_INTERPRETERS, "rounds": MAX_ROUNDS}

# ---- message templates (tests import these) ----
POSITIVE_INT_MESSAGE = "{where} must be a positive integer, got {value!r}{hint}"
TOO_LARGE_MESSAGE = "{where} must be at most {limit} ({what}), got {value!r}; see docs/limits.md"
TIMEOUT_MESSAGE = "{where} must be a number of seconds > 0, got {value!r}"
TIMEOUT_TOO_LARGE_MESSAGE = (
    "{where} must be at most {limit:g} seconds (one day), got {value!r}; a battery that needs longer is hung"
)
CHOICE_MESSAGE = "{where} must be one of {allowed}, got {value!r}"
BOOL_MESSAGE = "{where} must be a boolean (true/false, yes/no, on/off, 1/0), got {value!r}"
PATH_MESSAGE = "{where} must be a file path, got {value!r}"
INI_UNREADABLE_MESSAGE = "ini {name} could not be read: {error}; {fix}"
INI_STRING_FIX = 'write the value as a string, e.g. {name} = "{example}"'
INI_BOOL_FIX = "use true or false"

THREADS_HINT = "; use 1 to run each test in one thread"
INTERPRETERS_HINT = "; use 1 to run each test in one sub-interpreter"
ROUNDS_HINT = "; use 1 to run each battery once"
POSITIVE_INT_HINTS = {"threads": THREADS_HINT, "interpreters": INTERPRETERS_HINT, "rounds": ROUNDS_HINT}
LIMIT_REASONS = {
    "threads": "native threads per battery",
    "interpreters": "sub-interpreters per battery, each ~10-20 MB",
    "rounds": "rounds per battery",
}

_INT_RE = re.compile(r"[+-]?[0-9]+")
_MISSING = object()


def default_config() -> str:
    """Return the default interpreter config for the running Python: isolated from 3.12, else legacy."""
    # compat.has_isolated(), inlined: every pytest run imports this module, and no other.
    return "isolated" if tuple(sys.version_info[:2]) >= (3, 12) else "legacy"


class Settings(NamedTuple):
    """Resolved pytest-subinterp settings for one session (or one test, after marker overrides).

    Immutable.  A NamedTuple rather than a dataclass: every pytest run imports the plugin, and a
    frozen dataclass costs about 1 ms to create (measured on 3.12/3.13), a NamedTuple 0.1 ms."""

    threads: int = 4
    interpreters: int = 2
    config: str = default_config()  # this process's Python: isolated from 3.12, else legacy
    rounds: int = 1
    timeout: float = 120.0
    leaks: str = "fail"
    all: bool = False
    strict: bool = False
    disabled: bool = False
    scope: str = "test"
    report: str | None = None
    start: str = "template"

    def replace(self, **kw: Any) -> "Settings":
        """Return a copy with the given fields replaced."""
        return self._replace(**kw)


# ---- validators (public: markers.py checks marker arguments with them; strings=False rejects str values) ----


def validate_positive_int(value: object, where: str, hint: str = "", *, strings: bool = True) -> int:
    """Return value as an int >= 1 or raise UsageError naming where it came from."""
    number = _as_int(value, strings)
    if number is None or number < 1:
        raise pytest.UsageError(POSITIVE_INT_MESSAGE.format(where=where, value=value, hint=hint))
    return number


def validate_count(value: object, where: str, field: str, *, strings: bool = True) -> int:
    """Return value as an int in 1..MAXIMA[field] or raise UsageError naming where it came from."""
    number = validate_positive_int(value, where, POSITIVE_INT_HINTS[field], strings=strings)
    if number > MAXIMA[field]:
        raise pytest.UsageError(TOO_LARGE_MESSAGE.format(where=where, limit=MAXIMA[field],
                                                         what=LIMIT_REASONS[field], value=value))
    return number


def validate_timeout(value: object, where: str, *, strings: bool = True) -> float:
    """Return value as a float in (0, MAX_TIMEOUT_S] or raise UsageError naming where it came from."""
    number = _as_number(value, strings)
    if number is None or not math.isfinite(number) or number <= 0:
        raise pytest.UsageError(TIMEOUT_MESSAGE.format(where=where, value=value))
    if number > MAX_TIMEOUT_S:
        raise pytest.UsageError(TIMEOUT_TOO_LARGE_MESSAGE.format(where=where, limit=MAX_TIMEOUT_S, value=value))
    return number


def validate_choice(value: object, where: str, choices: tuple[str | None, ...]) -> Any:
    """Return value if it is one of choices or raise UsageError listing them."""
    if (isinstance(value, str) or value is None) and value in choices:
        return value
    allowed = ", ".join(str(choice) for choice in choices)
    raise pytest.UsageError(CHOICE_MESSAGE.format(where=where, allowed=allowed, value=value))


def validate_bool(value: object, where: str) -> bool:
    """Return value as a bool (accepting true/false words) or raise UsageError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise pytest.UsageError(BOOL_MESSAGE.format(where=where, value=value))


def validate_path(value: object, where: str) -> str:
    """Return value as a non-empty path string or raise UsageError."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise pytest.UsageError(PATH_MESSAGE.format(where=where, value=value))
    return value


def _as_int(value: object, strings: bool) -> int | None:
    """Return value as an int, or None if it is not one (bool is not an int)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if strings and isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value)
    return None


def _as_number(value: object, strings: bool) -> float | None:
    """Return value as a float, or None if it is not a number (bool is not a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if strings and isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


# ---- option table ----


class _Option(NamedTuple):
    """One setting: its CLI flag, ini key, env var, parser and help.  (A NamedTuple: the plugin
    is imported by every pytest run, and a second dataclass costs a measurable part of that.)"""

    field: str
    flag: str
    dest: str
    ini: str
    env: str
    kind: str  # "value" (takes an argument) or "flag" (store_true)
    metavar: str | None
    help: str
    example: str

    def parse(self, value: object, where: str) -> Any:
        """Validate a raw value from where ("--flag", "env X", "ini x") into the Settings type."""
        return _PARSERS[self.field](value, where)


def _option(field: str, kind: str, metavar: str | None, help: str, example: str, flag: str = "") -> _Option:
    """Build an _Option with the stem naming rules: --subinterp-x, subinterp_x, PYTEST_SUBINTERP_X."""
    flag = flag or f"--subinterp-{field}"
    dest = flag.lstrip("-").replace("-", "_")
    return _Option(
        field=field,
        flag=flag,
        dest=dest,
        ini=f"{INI_PREFIX}{field}",
        env=f"{ENV_PREFIX}{field.upper()}",
        kind=kind,
        metavar=metavar,
        help=f"{help} [ini {INI_PREFIX}{field}, env {ENV_PREFIX}{field.upper()}]",
        example=example,
    )


OPTIONS: tuple[_Option, ...] = (
    _option("threads", "value", "N", "native threads per battery (default: 4)", "4"),
    _option("interpreters", "value", "K", "sub-interpreters per battery (default: 2)", "2"),
    _option(
        "config",
        "value",
        "{isolated,legacy,both}",
        "interpreter config: isolated (own GIL, 3.12+), legacy (shared GIL) or both "
        "(default: isolated on Python 3.12+, legacy before)",
        "isolated",
    ),
    _option("rounds", "value", "R",
            "rounds each thread runs the test, visiting a new interpreter each round (default: 1)", "1"),
    _option("timeout", "value", "S", "seconds before a battery counts as hung and is killed (default: 120)", "120"),
    _option("leaks", "value", "{fail,warn,off}", "what a state-leak finding does (default: fail)", "fail"),
    _option("all", "flag", None, "treat every collected test as marked with @pytest.mark.subinterp", "true"),
    _option(
        "strict",
        "flag",
        None,
        "fail (instead of warn) when a refused extension is silently replaced by a pure-Python fallback",
        "true",
    ),
    _option(
        "scope",
        "value",
        "{test,module}",
        "interpreter lifetime: fresh interpreters per test, or shared by a module's tests (default: test)",
        "test",
    ),
    _option(
        "start",
        "value",
        "{template,fork,spawn}",
        "how battery processes start: template (forked from a process holding template "
        "interpreters that already imported pytest; Python 3.12+, else fork), fork (fresh "
        "interpreters in a forked process) or spawn (a new process per battery) (default: template)",
        "template",
    ),
    _option("report", "value", "PATH",
            "write a JSON report of every battery to PATH (default: none)", "subinterp.json"),
    _option(
        "disabled",
        "flag",
        None,
        "run tests marked subinterp as ordinary tests, without sub-interpreters",
        "true",
        flag="--no-subinterp",
    ),
)

_PARSERS: dict[str, Callable[[object, str], Any]] = {
    "threads": lambda v, w: validate_count(v, w, "threads"),
    "interpreters": lambda v, w: validate_count(v, w, "interpreters"),
    "config": lambda v, w: validate_choice(v, w, CONFIGS),
    "rounds": lambda v, w: validate_count(v, w, "rounds"),
    "timeout": validate_timeout,
    "leaks": lambda v, w: validate_choice(v, w, LEAKS),
    "all": validate_bool,
    "strict": validate_bool,
    "scope": lambda v, w: validate_choice(v, w, SCOPES),
    "report": validate_path,
    "start": lambda v, w: validate_choice(v, w, STARTS),
    "disabled": validate_bool,
}


# ---- registration ----


def add_options(parser: pytest.Parser) -> None:
    """Register every pytest-subinterp CLI option and ini key in the "subinterp" group."""
    group = parser.getgroup(GROUP, GROUP_DESCRIPTION)
    for option in OPTIONS:
        _add_cli(group, option)
        _add_ini(parser, option)


def _add_cli(group: Any, option: _Option) -> None:
    """Add one CLI option; default None so resolve() can tell "not given"."""
    if option.kind == "flag":
        group.addoption(option.flag, action="store_true", dest=option.dest, default=None, help=option.help)
    else:
        group.addoption(option.flag, dest=option.dest, default=None, metavar=option.metavar, help=option.help)


def _add_ini(parser: pytest.Parser, option: _Option) -> None:
    """Add one ini key (bool for flags, string otherwise); default None so resolve() can tell "not set"."""
    help = option.help.rsplit(" [", 1)[0]
    if option.kind == "flag":
        parser.addini(option.ini, f"{help} [pytest-subinterp]", type="bool", default=None)
    else:
        parser.addini(option.ini, f"{help} [pytest-subinterp]", type="string", default=None)


# ---- resolution ----


def resolve(config: pytest.Config) -> Settings:
    """Resolve Settings from CLI > env PYTEST_SUBINTERP_* > ini subinterp_* > default; UsageError if invalid."""
    values = {}
    for option in OPTIONS:
        value = _resolve_one(config, option)
        if value is not None:
            values[option.field] = value
    return Settings(**values)


def _resolve_one(config: pytest.Config, option: _Option) -> Any:
    """Return the parsed value of the first source that gives option, or None if none does."""
    cli = config.getoption(option.dest, default=None)
    if cli is not None:
        return option.parse(cli, option.flag)
    env = os.environ.get(option.env)
    if env is not None and env.strip():
        return option.parse(env, f"env {option.env}")
    ini = _read_ini(config, option)
    if not _is_unset(ini):
        return option.parse(ini, f"ini {option.ini}")
    return None


def _read_ini(config: pytest.Config, option: _Option) -> object:
    """Return the ini value; if pytest cannot coerce it (e.g. a native TOML int), return the raw value."""
    try:
        return config.getini(option.ini)
    except (TypeError, ValueError, pytest.UsageError) as error:  # pytest 9.2 raises UsageError
        raw = _raw_ini(config, option.ini)
        if raw is not _MISSING:
            return raw
        if option.kind == "flag":
            fix = INI_BOOL_FIX
        else:
            fix = INI_STRING_FIX.format(name=option.ini, example=option.example)
        raise pytest.UsageError(INI_UNREADABLE_MESSAGE.format(name=option.ini, error=error, fix=fix)) from None


def _raw_ini(config: pytest.Config, name: str) -> object:
    """Return the uncoerced value of ini key name, or _MISSING if this pytest does not expose it."""
    from pytest_subinterp import compat

    return compat.raw_ini_value(config, name, _MISSING)


def _is_unset(value: object) -> bool:
    """Return True for the values getini gives for a key that is absent or empty."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list) and not value
