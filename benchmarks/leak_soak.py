"""Soak check of the leak detectors: run a session of leak-free tests N times, count false
positives, and report what leak checks cost per battery.

Run: python benchmarks/leak_soak.py [--runs 20]
The session: a correct multi-phase module (good_ext), pure-Python tests, tests that allocate and
free large objects and cycles, tmp_path I/O (tests/test_leaks.py CLEAN_TESTS), with
--subinterp-leaks=fail; then the same session with --subinterp-leaks=off for the cost ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import extbuild  # noqa: E402


def clean_tests() -> str:
    source = (ROOT / "tests" / "test_leaks.py").read_text()
    namespace: dict[str, object] = {}
    start = source.index("CLEAN_TESTS = ")
    end = source.index('"""\n', source.index('f"""', start) + 4) + 4
    exec("HAS_ISOLATED = " + repr(sys.version_info >= (3, 12)) + "\n"
         "CONFIG = 'isolated' if HAS_ISOLATED else 'legacy'\n" + source[start:end], namespace)
    return str(namespace["CLEAN_TESTS"])


def run_session(directory: Path, leaks: str, env: dict[str, str]) -> tuple[int, float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"--subinterp-leaks={leaks}"], cwd=directory, env=env,
                          capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - start, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        extdir = extbuild.build_all(directory / "ext")
        (directory / "test_clean.py").write_text(clean_tests())
        env = {**os.environ, "PYTHONPATH": str(extdir)}
        env.pop("PYTEST_ADDOPTS", None)
        failures, walls = 0, []
        for run in range(args.runs):
            code, wall, out = run_session(directory, "fail", env)
            walls.append(wall)
            if code != 0:
                failures += 1
                print(f"run {run}: exit {code}\n{out[-2000:]}")
        off = [run_session(directory, "off", env)[1] for _ in range(3)]
    version = ".".join(map(str, sys.version_info[:3]))
    print(f"{version}: {args.runs} sessions of 6 leak-free tests with --subinterp-leaks=fail: "
          f"{failures} with a false positive")
    print(f"{version}: session wall with leak checks {min(walls):.2f} s, without {min(off):.2f} s "
          f"(ratio {min(walls) / min(off):.2f}; 6 batteries each)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
