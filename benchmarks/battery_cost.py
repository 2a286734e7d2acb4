"""Battery cost against CPython's floor, and the plugin's cost on unmarked tests.

Run: python benchmarks/battery_cost.py [--batteries N] [--json PATH]
All numbers come from one run on one Python; ratios are what matters.

(a) floor: the C helper alone, in a fresh child process per battery: create K interpreters
    (in parallel where the config allows), import pytest in each, T threads call a trivial body,
    end them.  (b) battery: one marked trivial test through pytest (controller wall time per
    battery, as the plugin reports it), without and with leak checks.  (c) 200 unmarked tests with the plugin on vs -p no:subinterp.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

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


def measure_floor(config: str, k: int, t: int, n: int) -> list[float]:
    """Wall seconds of n floor batteries, each in a fresh process (after its start-up)."""
    code = FLOOR_CHILD.format(here=str(HERE), config=config, k=k, t=t)
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    out = []
    for _ in range(n):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        out.append(float(proc.stdout.strip().splitlines()[-1]))
    return out


def measure_batteries(config: str, k: int, t: int, n: int, leaks: str = "off") -> list[float]:
    """Controller wall seconds per battery for n marked trivial tests in one session."""
    with tempfile.TemporaryDirectory() as tmp:
        body = "\n".join(
            f"@pytest.mark.subinterp(config={config!r}, interpreters={k}, threads={t})\n"
            f"def test_{i}():\n    assert 1 + 1 == 2\n" for i in range(n)
        )
        Path(tmp, "test_marked.py").write_text("import pytest\n\n" + body)
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", f"--subinterp-leaks={leaks}",
             "test_marked.py"],
            cwd=tmp, capture_output=True, text=True,
        )
        times = [float(m) / 1000 for m in re.findall(rf"{k}x{t}x1 {config}: (\d+) ms", proc.stdout)]
        if len(times) != n:
            raise RuntimeError(proc.stdout[-3000:])
        return times


def measure_unmarked(n_tests: int, repeats: int) -> dict[str, float]:
    """Best-of wall seconds of a session of unmarked tests, plugin on vs off."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_plain.py").write_text(
            "\n".join(f"def test_{i}():\n    assert {i} + 1 > {i}\n" for i in range(n_tests))
        )
        best = {}
        for label, extra in (("with", []), ("without", ["-p", "no:subinterp"])):
            walls = []
            for _ in range(repeats):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
                               cwd=tmp, capture_output=True, check=True)
                walls.append(time.perf_counter() - start)
            best[label] = min(walls)
        return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batteries", type=int, default=10)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    version = ".".join(map(str, sys.version_info[:3]))
    configs = ["isolated", "legacy"] if sys.version_info >= (3, 12) else ["legacy"]
    rows = []
    for config in configs:
        for k, t in ((2, 4), (1, 1)):
            floor = statistics.median(measure_floor(config, k, t, args.batteries))
            battery = statistics.median(measure_batteries(config, k, t, args.batteries))
            with_leaks = statistics.median(measure_batteries(config, k, t, args.batteries, "fail"))
            rows.append({"python": version, "config": config, "K": k, "T": t,
                         "floor_ms": round(floor * 1000, 1), "battery_ms": round(battery * 1000, 1),
                         "ratio": round(battery / floor, 2), "battery_with_leak_checks_ms": round(with_leaks * 1000, 1),
                         "leak_checks_ratio": round(with_leaks / battery, 2)})
            print(f"{version} {config:8} K={k} T={t}: floor {floor * 1000:6.1f} ms  battery "
                  f"{battery * 1000:6.1f} ms  ratio {battery / floor:.2f}  |  with leak checks "
                  f"{with_leaks * 1000:6.1f} ms ({with_leaks / battery:.2f}x the battery)")
    unmarked = measure_unmarked(200, 5)
    overhead = unmarked["with"] / unmarked["without"]
    print(f"{version} 200 unmarked tests: with plugin {unmarked['with'] * 1000:.0f} ms, without "
          f"{unmarked['without'] * 1000:.0f} ms, ratio {overhead:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"batteries": rows, "unmarked": {**unmarked, "ratio": overhead}}, indent=2))


if __name__ == "__main__":
    main()
