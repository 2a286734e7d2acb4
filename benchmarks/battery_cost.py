"""What a battery costs, against CPython's floor and against one subprocess per test.

Run: python benchmarks/battery_cost.py [--batteries N] [--tests N] [--pairs N] [--quick] [--json PATH]
Everything comes from one run on one Python (sys.executable); ratios are what matters.  See
docs/benchmarks.md for the columns.

(a) floor: the C helper alone, in a fresh process per battery (timed after its start-up):
    create K interpreters, import pytest and the trivial test module in each, T threads call a
    trivial body, end them (benchmarks/floor_entry.py).
(b) battery: the same trivial test, marked, through pytest, for both start modes:
    --subinterp-start=template (the default: a zygote holds template interpreters that already
    imported pytest and forks a child per battery that inherits them; before 3.12 the plugin
    falls back to fork) and --subinterp-start=fork (fresh interpreters in each forked child),
    each with --subinterp-leaks=off and =fail.  Two numbers each: the controller wall per
    battery the plugin prints in -rA ("2x4x1 isolated: 132 ms"), and the whole session's wall
    divided by its number of tests (pytest start-up, the zygote, and the one-off control run
    that leak checks with templates need, amortised).
(c) 200 unmarked tests, plugin on vs -p no:subinterp: --pairs pairs of sessions in alternating
    order; the medians of the pairs' wall and CPU-time ratios (the target is judged on CPU time,
    which a shared machine's scheduling does not blur; both are printed).
(d) one subprocess per test, the alternative a user would write by hand (median of --tests):
    d1  python -m pytest FILE::test_i -p no:cacheprovider -p no:subinterp, one process per test
        (process isolation, no sub-interpreters at all);
    d2  python -c SCRIPT per test: CPython's own module (_interpreters on 3.13,
        _xxsubinterpreters before) creates K interpreters (isolated = its default config, legacy
        = its legacy config), T threading.Threads call run_string("import pytest; import
        test_mod; test_mod.test_i()") concurrently (thread t in interpreter t % K; run_string
        refuses a second concurrent run in one interpreter, so threads sharing one take turns),
        destroy them, exit.  Wall from process start to exit.

Targets: battery <= 1.15x floor (K=2, T=4, isolated; checked for the default start, template,
and for fresh interpreters, fork), and with templates <= 0.5x the floor; K=1, T=1 at least 1.7x
faster than one subprocess per test (d1); unmarked tests <= 2% slower with the plugin.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from pytest_subinterp import quirks

HERE = Path(__file__).resolve().parent
SHAPES = ((2, 4), (1, 1))
STARTS = ("template", "fork")
LEAK_MODES = ("off", "fail")
TEST_BODY = "    assert 1 + 1 == 2\n"
CHILD_TIMEOUT_S = 600

FLOOR_CHILD = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {here!r})
    from pytest_subinterp import _subinterp
    import pytest
    t0 = time.perf_counter()
    r = _subinterp.run_battery({config!r}, {k}, {t}, 1, "floor_entry:run", "", 60.0)
    wall = time.perf_counter() - t0
    assert all(i["ended"] and not i["entry_error"] for i in r["interpreters"]), r
    print(wall)
    os._exit(0)
    """
)

# d2: argv = here, config, K, T, test name, modules to block (comma-separated).  A script that
# works has to get around CPython's defects (docs/cpython-quirks.md), here as the plugin does:
# it blocks modules (see script_blocked_modules), imports threading from the main thread first
# (3.11: destroy() hangs when an interpreter first imported threading in another thread), and
# leaves with os._exit (3.12.1 and 3.13.0 can abort at exit after isolated interpreters
# imported pytest).
HAND_WRITTEN_CHILD = textwrap.dedent(
    """
    import os, sys, threading
    try:
        import _interpreters as interpreters
    except ImportError:
        import _xxsubinterpreters as interpreters
    here, config, test = sys.argv[1], sys.argv[2], sys.argv[5]
    k, t = int(sys.argv[3]), int(sys.argv[4])
    blocked = [name for name in sys.argv[6].split(",") if name]

    def create():
        if interpreters.__name__ == "_interpreters":
            return interpreters.create(config)
        return interpreters.create(isolated=config == "isolated")

    ids = [create() for _ in range(k)]
    prelude = f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); import threading"
    for interp in ids:
        interpreters.run_string(interp, prelude)
    turns = [threading.Lock() for _ in ids]
    code = f"import sys; sys.path.insert(0, {here!r}); import pytest; import test_mod; test_mod.{test}()"
    failures = []

    def run(thread):
        index = thread % k
        with turns[index]:
            try:
                error = interpreters.run_string(ids[index], code)
            except Exception as exc:
                error = exc
        if error is not None:
            failures.append(f"thread {thread}: {error}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(t)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for interp in ids:
        interpreters.destroy(interp)
    if failures:
        print("\\n".join(failures), file=sys.stderr, flush=True)
        os._exit(1)
    os._exit(0)
    """
)


# ---- helpers ----


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def timed_run(cmd: list[str], cwd: Path | str | None = None,
              env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run cmd to completion; return the process and its wall seconds from start to exit."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                          check=False)
    return proc, time.perf_counter() - start


def checked(proc: subprocess.CompletedProcess[str], what: str) -> subprocess.CompletedProcess[str]:
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def write_tests(directory: Path, n: int, mark: str = "") -> None:
    """test_mod.py with n trivial tests test_0..test_{n-1}, each preceded by `mark` (if any)."""
    prefix = f"{mark}\n" if mark else ""
    body = "\n".join(f"{prefix}def test_{i}():\n{TEST_BODY}" for i in range(n))
    (directory / "test_mod.py").write_text("import pytest\n\n" + body)


def script_blocked_modules(config: str) -> list[str]:
    """Modules the d2 script blocks in its interpreters: those the plugin blocks (3.12.1 isolated:
    a second interpreter importing _datetime or _decimal aborts) and, on 3.13 isolated, _datetime
    (3.13.0 aborts when two isolated interpreters that used it are destroyed in turn; the plugin
    attributes that abort to CPython, a script just dies).  The pure-Python fallback costs no
    measurable time."""
    blocked = quirks.blocked_modules(config)
    if sys.version_info[:2] == (3, 13) and config == "isolated" and "_datetime" not in blocked:
        blocked.append("_datetime")
    return blocked


def subinterpreters_module() -> str | None:
    """CPython's own (private) sub-interpreter module on this Python, if any."""
    for name in ("_interpreters", "_xxsubinterpreters"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


# ---- (a) floor ----


def measure_floor(config: str, k: int, t: int, n: int) -> list[float]:
    """Wall seconds of n floor batteries, each in a fresh process (after its start-up)."""
    code = FLOOR_CHILD.format(here=str(HERE), config=config, k=k, t=t)
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    out = []
    for _ in range(n):
        proc = checked(timed_run([sys.executable, "-c", code], env=env)[0], "floor")
        out.append(float(proc.stdout.strip().splitlines()[-1]))
    return out


# ---- (b) batteries through pytest ----


def measure_batteries(config: str, k: int, t: int, n: int, start: str = "template",
                      leaks: str = "off") -> dict[str, Any]:
    """One session of n marked trivial tests: controller wall per battery (as the plugin prints it
    in -rA) and the session's wall per test."""
    with tempfile.TemporaryDirectory() as tmp:
        write_tests(Path(tmp), n, f"@pytest.mark.subinterp(config={config!r}, interpreters={k}, threads={t})")
        proc, wall = timed_run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", f"--subinterp-start={start}",
             f"--subinterp-leaks={leaks}", "test_mod.py"], cwd=tmp)
    batteries = [float(m) / 1000 for m in re.findall(rf"{k}x{t}x1 {config}: (\d+) ms", proc.stdout)]
    if proc.returncode != 0 or len(batteries) != n:
        raise RuntimeError(f"start={start} leaks={leaks} session exited {proc.returncode} with "
                           f"{len(batteries)}/{n} batteries:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return {"battery_s": batteries, "session_s": wall, "per_test_s": wall / n}


def measure_battery_modes(config: str, k: int, t: int, n: int) -> dict[str, dict[str, dict[str, Any]]]:
    """measure_batteries for every start mode x leak mode: result[start][leaks]."""
    return {start: {leaks: measure_batteries(config, k, t, n, start, leaks) for leaks in LEAK_MODES}
            for start in STARTS}


# ---- (c) unmarked tests ----


def children_cpu_s() -> float:
    """User + system CPU seconds of the waited-for children so far (getrusage: microseconds;
    os.times() counts in clock ticks, 10 ms here, 3% of a session)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_unmarked(n_tests: int, pairs: int) -> dict[str, Any]:
    """Sessions of unmarked tests, plugin on vs off, in `pairs` pairs whose order alternates (run
    in blocks, the second side profits from warm caches: a block-wise run showed 18 ms between
    sides that alternating runs put at 4-5 ms).  Per side the best wall and the session's CPU
    time (user + system of the child: the plugin's own work, without the scheduling noise of a
    shared machine), and per measure the median of the pairs' ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_plain.py").write_text(
            "\n".join(f"def test_{i}():\n    assert {i} + 1 > {i}\n" for i in range(n_tests))
        )
        sides = {"with": [], "without": ["-p", "no:subinterp"]}
        runs: dict[str, list[tuple[float, float]]] = {label: [] for label in sides}
        for index in range(pairs + 1):  # the first pair warms the caches up and is not counted
            order = list(sides) if index % 2 else list(reversed(sides))
            for label in order:
                before = children_cpu_s()
                proc, wall = timed_run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                        *sides[label]], tmp)
                cpu = children_cpu_s() - before
                checked(proc, "unmarked session")
                if index:
                    runs[label].append((wall, cpu))
    with_, without = runs["with"], runs["without"]
    return {
        "with_wall_s": min(w for w, _ in with_), "without_wall_s": min(w for w, _ in without),
        "with_cpu_s": statistics.median(c for _, c in with_),
        "without_cpu_s": statistics.median(c for _, c in without),
        "wall_ratio": statistics.median(a[0] / b[0] for a, b in zip(with_, without)),
        "cpu_ratio": statistics.median(a[1] / b[1] for a, b in zip(with_, without)),
    }


# ---- (d) one subprocess per test ----


def measure_pytest_per_test(n: int) -> list[float]:
    """d1: wall seconds of `python -m pytest test_mod.py::test_i` without the plugin, one process per test."""
    with tempfile.TemporaryDirectory() as tmp:
        write_tests(Path(tmp), n)
        walls = []
        for i in range(n):
            proc, wall = timed_run([sys.executable, "-m", "pytest", "-q", f"test_mod.py::test_{i}",
                                    "-p", "no:cacheprovider", "-p", "no:subinterp"], tmp)
            checked(proc, f"pytest test_mod.py::test_{i}")
            walls.append(wall)
        return walls


def measure_script_per_test(config: str, k: int, t: int, n: int) -> list[float]:
    """d2: wall seconds of the hand-written sub-interpreter script, one process per test."""
    blocked = ",".join(script_blocked_modules(config))
    with tempfile.TemporaryDirectory() as tmp:
        write_tests(Path(tmp), n)
        walls = []
        for i in range(n):
            proc, wall = timed_run([sys.executable, "-c", HAND_WRITTEN_CHILD, tmp, config, str(k), str(t), f"test_{i}",
                                    blocked], tmp)
            checked(proc, f"hand-written script for test_{i}")
            walls.append(wall)
        return walls


# ---- one row: config x K x T ----


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else round(numerator / denominator, 2)


def summarise(modes: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Medians in ms (plus the raw samples) of measure_battery_modes' result."""
    return {start: {leaks: {"battery_ms": ms(statistics.median(m["battery_s"])),
                            "per_test_session_ms": ms(m["per_test_s"]),
                            "session_ms": ms(m["session_s"]),
                            "battery_samples_ms": [ms(s) for s in m["battery_s"]]}
                    for leaks, m in by_leaks.items()}
            for start, by_leaks in modes.items()}


def measure_row(config: str, k: int, t: int, sizes: argparse.Namespace, d1_ms: float) -> dict[str, Any]:
    floor_ms = ms(statistics.median(measure_floor(config, k, t, sizes.batteries)))
    batteries = summarise(measure_battery_modes(config, k, t, sizes.batteries))
    d2_ms = None
    if subinterpreters_module():
        d2_ms = ms(statistics.median(measure_script_per_test(config, k, t, sizes.tests)))
    template, template_default = batteries["template"]["off"], batteries["template"]["fail"]
    ratios = {
        **{f"{start}_vs_floor": ratio(batteries[start]["off"]["battery_ms"], floor_ms) for start in STARTS},
        **{f"{start}_leak_checks_vs_off": ratio(by_leaks["fail"]["battery_ms"], by_leaks["off"]["battery_ms"])
           for start, by_leaks in batteries.items()},
        "d1_vs_template_battery": ratio(d1_ms, template["battery_ms"]),
        "d1_vs_template_per_test_session": ratio(d1_ms, template["per_test_session_ms"]),
        "d1_vs_default_per_test_session": ratio(d1_ms, template_default["per_test_session_ms"]),
        "d2_vs_template_battery": ratio(d2_ms, template["battery_ms"]),
        "d2_vs_template_per_test_session": ratio(d2_ms, template["per_test_session_ms"]),
        "d2_vs_default_per_test_session": ratio(d2_ms, template_default["per_test_session_ms"]),
    }
    return {"config": config, "K": k, "T": t, "floor_ms": floor_ms, "batteries": batteries,
            "d1_pytest_per_test_ms": d1_ms, "d2_script_per_test_ms": d2_ms,
            "d2_blocked_modules": script_blocked_modules(config), "ratios": ratios}


def print_row(version: str, row: dict[str, Any]) -> None:
    print(f"\n{version} {row['config']} K={row['K']} T={row['T']}: floor {row['floor_ms']:.1f} ms")
    print(f"  {'start':9} {'leaks':5} {'battery':>10} {'/floor':>7} {'per test (session)':>19}")
    for start, by_leaks in row["batteries"].items():
        for leaks, m in by_leaks.items():
            print(f"  {start:9} {leaks:5} {m['battery_ms']:7.1f} ms {m['battery_ms'] / row['floor_ms']:7.2f} "
                  f"{m['per_test_session_ms']:16.1f} ms")
    r = row["ratios"]
    for name, key, value in (("d1 pytest per test", "d1", row["d1_pytest_per_test_ms"]),
                             (f"d2 {subinterpreters_module()} script", "d2", row["d2_script_per_test_ms"])):
        if value is None:
            print(f"  {name}: not measured (no sub-interpreter module on this Python)")
            continue
        print(f"  {name:30} {value:7.1f} ms = {r[f'{key}_vs_template_battery']}x template battery, "
              f"{r[f'{key}_vs_template_per_test_session']}x template per-test session wall "
              f"({r[f'{key}_vs_default_per_test_session']}x with leak checks)")


# ---- targets ----


def targets(rows: list[dict[str, Any]], unmarked: dict[str, Any]) -> list[dict[str, Any]]:
    """The goals in the module docstring, evaluated on this run's numbers (batteries without leak
    checks; the 1.7x goal per battery and per test of the whole session)."""
    def goal(text: str, value: float | None, limit: float, at_most: bool = True) -> dict[str, Any]:
        met = value is not None and (value <= limit if at_most else value >= limit)
        return {"target": text, "value": value, "met": met}

    out = []
    for r in rows:
        shape, x = (r["K"], r["T"]), r["ratios"]
        if shape == (2, 4) and r["config"] == "isolated":
            out.append(goal("default battery (template) <= 1.15x floor (isolated 2x4)", x["template_vs_floor"], 1.15))
            out.append(goal("fresh-interpreter battery (fork) <= 1.15x floor (isolated 2x4)", x["fork_vs_floor"], 1.15))
            out.append(goal("template battery <= 0.5x floor (isolated 2x4)", x["template_vs_floor"], 0.5))
        if shape == (1, 1):
            for key, what in (("d1_vs_template_battery", "template battery"),
                              ("d1_vs_template_per_test_session", "template session wall per test")):
                out.append(goal(f"subprocess per test (d1) >= 1.7x {what} ({r['config']} 1x1)", x[key], 1.7,
                                at_most=False))
    out.append(goal("200 unmarked tests <= 1.02x without the plugin (CPU time, median of pairs)",
                    round(unmarked["cpu_ratio"], 3), 1.02))
    return out


# ---- main ----


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batteries", type=int, default=10,
                        help="floor runs, and marked tests per session, for (a) and (b)")
    parser.add_argument("--tests", type=int, default=10, help="tests run one process each, (d)")
    parser.add_argument("--pairs", type=int, default=30, help="pairs of sessions for (c)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 batteries, 3 tests, 2 pairs")
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args()
    if args.quick:
        args.batteries, args.tests, args.pairs = 3, 3, 2
    return args


def main() -> None:
    args = parse_args()
    # Measure what users get: Pythons cache bytecode.  Without the cache (this machine's default
    # environment sets PYTHONDONTWRITEBYTECODE) every interpreter compiles the plugin's modules.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    version = platform.python_version()
    configs = ["isolated", "legacy"] if sys.version_info >= (3, 12) else ["legacy"]
    print(f"Python {version} ({sys.executable}), {os.cpu_count()} CPUs, batteries={args.batteries} "
          f"tests={args.tests} pairs={args.pairs}{' (quick: smoke only, not a measurement)' if args.quick else ''}")
    if sys.version_info < (3, 12):
        print("note: before 3.12 --subinterp-start=template falls back to fork")
    d1_ms = ms(statistics.median(measure_pytest_per_test(args.tests)))
    rows = []
    for config in configs:
        for k, t in SHAPES:
            rows.append(measure_row(config, k, t, args, d1_ms))
            print_row(version, rows[-1])
    unmarked = measure_unmarked(200, args.pairs)
    print(f"\n{version} 200 unmarked tests, with plugin / without: wall {ms(unmarked['with_wall_s'])} / "
          f"{ms(unmarked['without_wall_s'])} ms (best), CPU {ms(unmarked['with_cpu_s'])} / "
          f"{ms(unmarked['without_cpu_s'])} ms (median); median ratio of {args.pairs} pairs: wall "
          f"{unmarked['wall_ratio']:.3f}, CPU {unmarked['cpu_ratio']:.3f}")
    goals = targets(rows, unmarked)
    print("\ntargets" + (" (quick run: not meaningful)" if args.quick else "") + ":")
    for goal in goals:
        print(f"  {'met   ' if goal['met'] else 'MISSED'} {goal['target']}: {goal['value']}")
    if args.json:
        report = {"python": version, "executable": sys.executable, "cpus": os.cpu_count(),
                  "platform": platform.platform(), "quick": args.quick,
                  "sizes": {"batteries": args.batteries, "tests": args.tests, "pairs": args.pairs},
                  "subinterpreters_module": subinterpreters_module(), "rows": rows,
                  "unmarked": {(key[:-2] + "_ms" if key.endswith("_s") else key):
                               (ms(value) if key.endswith("_s") else round(value, 3))
                               for key, value in unmarked.items()},
                  "targets": goals}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
