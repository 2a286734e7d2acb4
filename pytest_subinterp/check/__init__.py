"""``pytest-subinterp check MODULE [MODULE ...]``: is a module ready for sub-interpreters?

No tests needed.  For each module and config, in fresh child processes (the plugin's zygote or
spawner, so a crash or hang costs only that check):

1. import it once in one fresh interpreter: imported, refused (CPython's reason), or not found;
   single- or multi-phase; the Py_mod_multiple_interpreters / Py_mod_gil values it declares;
2. import it from T threads at once in K interpreters, then, with all K alive, compare the ids
   of objects reachable from it (attributes, their types, results of its ``get*()`` functions)
   to find objects shared across interpreters; a crash or hang here is reported with its phase;
3. run R sequential interpreters importing it and R importing nothing (the control), with
   ``PYTHONMALLOC=malloc``, and report the resident memory retained per interpreter lifetime
   beyond the control.

Exit status: 0 when every module is fine under every config asked for, 1 otherwise, 2 for a
usage error.  docs/check.md describes the columns and the JSON.

One job per module: ``cli`` (arguments, the loop, printing), ``runner`` (the probes in child
processes), ``analysis`` (probe results -> rows and problems), ``table`` (text and JSON),
``messages`` (check's own messages), ``entry`` (what runs inside the sub-interpreters, and the
memory child).  Nothing here imports pytest.
"""

from __future__ import annotations

# Only constants here: every sub-interpreter of a check imports this package on its way to
# ``check.entry`` (and the memory child measures what they retain), so the command line's modules
# (argparse, the launcher) are imported by main() alone.
from pytest_subinterp.check.messages import ALL_FINE, BAD_CONFIG, BAD_MODULE_NAME, NO_ISOLATED, SOME_FAILED
from pytest_subinterp.check.table import COLUMNS, JSON_SCHEMA_VERSION

__all__ = ["ALL_FINE", "BAD_CONFIG", "BAD_MODULE_NAME", "COLUMNS", "JSON_SCHEMA_VERSION", "NO_ISOLATED",
           "SOME_FAILED", "main"]


def main(argv: list[str] | None = None) -> int:
    """Console script ``pytest-subinterp`` and ``python -m pytest_subinterp``: run ``check``."""
    from pytest_subinterp.check import cli

    return cli.main(argv)
