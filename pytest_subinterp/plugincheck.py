"""The plugin probe, run inside one sub-interpreter (``plugins.PROBE_ENTRY``).

A trivial inner session with every plugin the outer session would pass in; when it fails, one
session per plugin, to name the ones that cannot load here (their error's last line is the
reason).  Returns JSON ``{"plugins": {name: error or null}}``.
"""

from __future__ import annotations

import io
import json
import traceback
from typing import Any

from pytest_subinterp import compat
from pytest_subinterp.inner import block_modules
from pytest_subinterp.innerplugins import plugin_args


def _session(spec: dict[str, Any], names: list[str]) -> str | None:
    """None when a session with these plugins runs the control test; else what went wrong."""
    import contextlib

    import pytest

    args = [*spec["args"], *plugin_args(names), f"--basetemp={spec['basetemp']}/probe", spec["control_test"]]
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = int(pytest.main(args))
    except BaseException:  # noqa: BLE001 - the reason the plugin is left out
        return traceback.format_exc()
    if code == 0:
        return None
    return output.getvalue() or f"the inner session exited with status {code}"


def probe(spec_json: str, index: int) -> str:
    """Battery entry: which of spec["plugins"] load in this interpreter."""
    from pytest_subinterp import _subinterp

    spec = json.loads(spec_json)
    results: dict[str, str | None] = {}
    try:
        block_modules(spec)
        import pytest  # noqa: F401

        compat.tolerate_unusable_tracemalloc()
        names = list(spec["plugins"])
        together = _session(spec, names) if names else None
        for name in names:
            results[name] = None if together is None else _session(spec, [name])
    finally:
        _subinterp.call_point(None)  # the battery's thread is not kept waiting
    return json.dumps({"plugins": results})
