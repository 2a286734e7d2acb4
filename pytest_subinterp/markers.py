"""The @pytest.mark.subinterp(...) marker: strict argument checks and overrides of Settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_subinterp import MARKER_NAME, compat
from pytest_subinterp.options import (
    CONFIGS,
    LEAKS,
    SCOPES,
    Settings,
    validate_choice,
    validate_count,
    validate_timeout,
)

VALID_KEYWORDS = ("threads", "interpreters", "config", "rounds", "timeout", "leaks", "scope")

# ---- message templates (tests import these) ----
POSITIONAL_MESSAGE = (
    "{nodeid}: @pytest.mark.subinterp takes keyword arguments only, got positional {args}; "
    "use e.g. @pytest.mark.subinterp(threads=4)"
)
UNKNOWN_KEYWORD_MESSAGE = "{nodeid}: @pytest.mark.subinterp got unknown keyword {key!r} (valid: {valid})"
BAD_VALUE_MESSAGE = "{nodeid}: @pytest.mark.subinterp({key}={value!r}): {problem}"
ISOLATED_NEEDS_312 = (
    "config='isolated' needs Python 3.12+ (own-GIL sub-interpreters); "
    "this is Python {version}: use config='legacy' or 'both'"
)
ISOLATED_SKIPPED_IN_BOTH = (
    "config='both': the isolated run was skipped, it needs Python 3.12+ (own-GIL sub-interpreters); "
    "this is Python {version}: only the legacy run was done"
)


class MarkerError(Exception):
    """Invalid @pytest.mark.subinterp arguments; str() is the full message for the user."""


_CHECKS: dict[str, Callable[[object, str], Any]] = {
    "threads": lambda v, w: validate_count(v, w, "threads", strings=False),
    "interpreters": lambda v, w: validate_count(v, w, "interpreters", strings=False),
    "config": lambda v, w: validate_choice(v, w, CONFIGS),
    "rounds": lambda v, w: validate_count(v, w, "rounds", strings=False),
    "timeout": lambda v, w: validate_timeout(v, w, strings=False),
    "leaks": lambda v, w: validate_choice(v, w, (*LEAKS, None)),
    "scope": lambda v, w: validate_choice(v, w, (*SCOPES, None)),
}


def marker_settings(item: pytest.Item, base: Settings) -> Settings:
    """Return base overridden by the closest subinterp marker of item; MarkerError if its arguments are bad."""
    marker = item.get_closest_marker(MARKER_NAME)
    if marker is None:
        return base
    if marker.args:
        args = ", ".join(repr(arg) for arg in marker.args)
        raise MarkerError(POSITIONAL_MESSAGE.format(nodeid=item.nodeid, args=args))
    overrides = {}
    for key, value in marker.kwargs.items():
        checked = _check_keyword(item.nodeid, key, value)
        if checked is not None:
            overrides[key] = checked
    return base.replace(**overrides)


def _check_keyword(nodeid: str, key: str, value: object) -> Any:
    """Return the validated value of one marker keyword (None means "use base")."""
    check = _CHECKS.get(key)
    if check is None:
        raise MarkerError(UNKNOWN_KEYWORD_MESSAGE.format(nodeid=nodeid, key=key, valid=", ".join(VALID_KEYWORDS)))
    try:
        return check(value, key)
    except pytest.UsageError as error:
        raise MarkerError(BAD_VALUE_MESSAGE.format(nodeid=nodeid, key=key, value=value, problem=error)) from None


def configs_to_run(settings: Settings) -> tuple[list[str], str | None]:
    """Return the concrete configs to run for settings.config and, if some were dropped, why."""
    if settings.config not in CONFIGS:
        raise ValueError(f"unknown sub-interpreter config {settings.config!r} (valid: {', '.join(CONFIGS)})")
    if compat.has_isolated():
        return (["isolated", "legacy"] if settings.config == "both" else [settings.config]), None
    version = compat.python_minor()
    if settings.config == "isolated":
        return [], ISOLATED_NEEDS_312.format(version=version)
    if settings.config == "both":
        return ["legacy"], ISOLATED_SKIPPED_IN_BOTH.format(version=version)
    return ["legacy"], None

