"""``check``'s command line: parse the arguments, check every module under every config, print.

The console script ``pytest-subinterp`` and ``python -m pytest_subinterp`` reach :func:`main`
through ``pytest_subinterp.check.main``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from pytest_subinterp import __version__, compat
from pytest_subinterp.check import analysis, table
from pytest_subinterp.check.messages import ALL_FINE, BAD_CONFIG, BAD_MODULE_NAME, NO_ISOLATED, SOME_FAILED
from pytest_subinterp.check.runner import Runner

_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_BOTH = ["isolated", "legacy"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got '{text}'")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got '{text}'")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got '{text}'")
    return value


def _module_name(text: str) -> str:
    if not _MODULE_NAME.match(text):
        raise argparse.ArgumentTypeError(BAD_MODULE_NAME.format(name=text))
    return text


def _config(text: str) -> str:
    if text not in ("isolated", "legacy", "both"):
        raise argparse.ArgumentTypeError(BAD_CONFIG.format(config=text))
    if text != "legacy" and not compat.has_isolated():
        raise argparse.ArgumentTypeError(NO_ISOLATED.format(config=text, version=sys.version.split()[0]))
    return text


def _configs(args: argparse.Namespace) -> list[str]:
    return list(_BOTH) if args.config == "both" else [args.config]


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``pytest-subinterp``."""
    parser = argparse.ArgumentParser(prog="pytest-subinterp",
                                     description="Sub-interpreter readiness tools of pytest-subinterp.")
    parser.add_argument("--version", action="version", version=f"pytest-subinterp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check", help="check whether modules work in sub-interpreters (no tests needed)",
        description="Import each MODULE in fresh isolated and legacy sub-interpreters and from "
                    "several threads, in child processes, and report what happens. Exit status 0 "
                    "only if every module is fine under every config asked for.")
    check.add_argument("modules", nargs="+", metavar="MODULE", type=_module_name,
                       help="importable module name")
    default_config = "both" if compat.has_isolated() else "legacy"
    check.add_argument("--config", type=_config, default=default_config, metavar="{isolated,legacy,both}",
                       help=f"interpreter config(s) to check (default: {default_config})")
    check.add_argument("--json", action="store_true", help="print JSON (docs/check.md) instead of a table")
    check.add_argument("--threads", type=_positive_int, default=4,
                       help="threads importing the module at once (default: 4)")
    check.add_argument("--interpreters", type=_positive_int, default=2,
                       help="interpreters alive at once (default: 2; shared objects need 2+)")
    check.add_argument("--timeout", type=_positive_float, default=60.0,
                       help="seconds per step before it counts as hung (default: 60)")
    check.add_argument("--memory-rounds", type=_non_negative_int, default=5,
                       help="sequential interpreters of the memory step; 0 skips it (default: 5)")
    check.add_argument("--leak-threshold", type=_positive_float, default=512.0,
                       help="KiB retained per interpreter lifetime beyond the control that count "
                            "as a leak (default: 512)")
    check.add_argument("--no-getters", dest="getters", action="store_false",
                       help="do not call the module's get*() functions without arguments when "
                            "looking for shared objects")
    return parser


def run_check(args: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """All rows and the exit status."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="pytest-subinterp-check-") as tmp:
        runner = Runner(args, Path(tmp))
        try:
            for module in args.modules:
                for config in _configs(args):
                    row = analysis.check_one(runner, module, config)
                    analysis.apply_leak_threshold(row, args.leak_threshold)
                    rows.append(row)
        finally:
            runner.close()
    return rows, 0 if all(row["fine"] for row in rows) else 1


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]), run the checks, print; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    rows, status = run_check(args)
    if args.json:
        print(table.format_json(rows, python=sys.version.split()[0], configs=_configs(args),
                                interpreters=args.interpreters, threads=args.threads,
                                memory_rounds=args.memory_rounds, fine=status == 0))
    else:
        print(table.format_table(rows))
        print()
        if status == 0:
            print(ALL_FINE.format(count=len(args.modules), configs=" and ".join(_configs(args))))
        else:
            print(SOME_FAILED.format(failed=sum(not r["fine"] for r in rows), count=len(rows)))
    return status
