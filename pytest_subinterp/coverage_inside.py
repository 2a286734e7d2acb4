"""Coverage of the code that runs inside the sub-interpreters (coverage.py, pytest-cov).

coverage.py measures the interpreter it was started in; the battery's interpreters are others,
in another process.  As coverage.py does for subprocesses, each interpreter starts a collector
of its own that writes a data file beside the session's, named with a random suffix
(``.coverage.<host>.<pid>.<random>``), which ``coverage combine`` merges -- pytest-cov's
``--cov`` combines every such file of its data directory when the session ends.

The outer side (:func:`settings_of_session`) reads the session's active ``coverage.Coverage``
(``Coverage.current()``: pytest-cov's, or ``coverage run``'s) and passes its data file, config
file, source, include, omit and branch settings in the inner spec; the inner side
(:func:`start`, :func:`stop`) runs in each interpreter around its pytest session.

Which tracer: ``sys.monitoring`` (coverage's ``sysmon`` core) on 3.12+, which sees every thread
of the interpreter, the battery's native threads included.  Before 3.12 only the Python tracer is
sure to load in a sub-interpreter and it traces the threads Python starts, not the battery's
native threads: there, collection, fixtures and module-level code are counted, the test bodies
are not (docs/compatibility.md).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pytest_subinterp import compat


def settings_of_session() -> dict[str, Any] | None:
    """The active coverage measurement of this process, as the inner spec carries it; None
    when coverage.py is not measuring (never imported, or not started)."""
    module = sys.modules.get("coverage")
    if module is None:
        return None
    current = module.Coverage.current()
    if current is None:
        return None
    config = current.config
    config_file = config.config_file if isinstance(config.config_file, str) else None
    return {
        "data_file": os.path.abspath(config.data_file),
        "config_file": os.path.abspath(config_file) if config_file else None,
        "source": list(config.source or ()) or None,
        "source_pkgs": list(getattr(config, "source_pkgs", None) or ()) or None,
        "include": list(config.run_include or ()) or None,
        "omit": list(config.run_omit or ()) or None,
        "branch": bool(config.branch),
    }


def start(settings: dict[str, Any] | None) -> Any:
    """Start a collector in this interpreter (None when there is nothing to measure, or when
    coverage.py cannot start here: then the interpreter runs unmeasured, never fails)."""
    if not settings:
        return None
    try:
        import coverage  # type: ignore[import-not-found, unused-ignore]  # optional: the user's

        cov = coverage.Coverage(
            data_file=settings["data_file"], data_suffix=True, config_file=settings["config_file"] or False,
            source=settings["source"], source_pkgs=settings["source_pkgs"], include=settings["include"],
            omit=settings["omit"], branch=settings["branch"])
        cov.set_option("run:core", "sysmon" if compat.has_sys_monitoring() else "pytrace")
        cov.start()
    except Exception:  # noqa: BLE001 - coverage is a bonus: the battery runs without it
        return None
    return cov


def stop(cov: Any) -> None:
    """Stop the collector of this interpreter and write its data file."""
    if cov is None:
        return
    try:
        cov.stop()
        cov.save()
    except Exception:  # noqa: BLE001 - as above
        pass
