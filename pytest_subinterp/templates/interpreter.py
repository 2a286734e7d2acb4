"""Runs inside a template interpreter: prepared once in the zygote, adopted by one battery child.

The zygote calls :func:`prepare_template` (``zygote.TEMPLATE_ENTRY``) in each template
interpreter it makes; the battery child that inherits the template runs the inner session in it
(``inner.run``), which calls :func:`adopt_template` first and :func:`before_end` last.  Imports
nothing heavy at module top: pytest is imported by prepare_template itself.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pytest_subinterp import compat
from pytest_subinterp.inner import block_modules

# Modules every inner session imports after `import pytest` (measured on 3.12/3.13 for a trivial
# test: importlib.metadata reads plugin versions and entry points, and pulls in email and csv).
SESSION_MODULES = (
    "importlib.metadata", "email.parser", "email.message", "email.feedparser", "csv", "urllib.parse",
    "importlib.metadata._adapters", "ipaddress", "base64", "quopri", "_pytest._argcomplete",
    "pytest_subinterp.markers", "pytest_subinterp.options", "pytest_subinterp.quirks",
    "pytest_subinterp.leaks.measure", "pytest_subinterp._subinterp",
)


def prepare_template(spec_json: str, index: int) -> str:
    """Entry of a template interpreter, run once in the zygote: the CPython-defect blocks,
    pytest, its built-in plugins and the modules every session loads (nothing of the project),
    then gc.freeze().  A battery child that inherits the template then calls inner.run in it.

    Freezing is what gc.freeze is for (a forking server's objects): the collector never scans
    pytest's ~60k objects again, in the session or when the interpreter ends (measured here: a
    2x4 battery 70 -> 37 ms on 3.13), and their pages are not copied.  Objects the test creates
    are collected as usual.  Fresh interpreters are not frozen: their frozen objects would
    outlive them (8.5 MB per battery), which the memory-per-lifetime detector would measure."""
    import gc
    import importlib

    spec = json.loads(spec_json)
    block_modules(spec)
    import pytest  # noqa: F401
    blocked = set(spec.get("blocked_plugins", ()))
    names = [f"_pytest.{name}" for name in compat.default_plugin_names() if name not in blocked]
    for name in [*names, *SESSION_MODULES]:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # blocked in this config, or gone in this version: the session imports it itself
    gc.collect()
    gc.freeze()
    return json.dumps({"index": index, "modules": len(sys.modules), "frozen": gc.get_freeze_count()})


def adopt_template() -> None:
    """A template interpreter was prepared on a zygote thread and is shared by every child forked
    from the zygote: give this battery what a fresh interpreter would have.  os.environ is the
    process environment as it is now, not the zygote's when the template imported os.  CPython
    runs the at-fork hooks of the main interpreter only, so run the two that matter here:
    threading's on 3.12 (this creator thread becomes the interpreter's main thread; otherwise a
    battery thread that happens to get the zygote thread's id is taken for it) and random's (each
    battery its own seed)."""
    from pytest_subinterp import _subinterp

    compat.replace_os_environ(_subinterp.process_environ())
    if not compat.sub_main_thread_is_process_main():
        compat.rerun_threading_after_fork()
    random = sys.modules.get("random")
    if random is not None:
        random.seed()


def before_end(spec: dict[str, Any]) -> None:
    """After the inner session, before the interpreter ends: unfreeze when the controller asks."""
    if spec.get("unfreeze"):
        # Frozen template objects are never collected, and whatever the test hung on them (ABC
        # registries, caches of pytest and the stdlib) would outlive the interpreter.  When the
        # frozen battery retained more than its control, the controller re-runs it unfrozen, for
        # the same end as a fresh interpreter's (multidict's suite: 86 of 120 batteries).
        import gc

        gc.unfreeze()
