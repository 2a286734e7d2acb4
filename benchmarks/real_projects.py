#!/usr/bin/env python3
"""Whole-suite mode on real projects: `--subinterp-all` on the test suites of PyPI extension projects.

For each project (pinned version, built from its sdist with the C compiler) this script, in a work
directory outside the repo:

1. creates a venv for the given Python (default: the one running this script) and installs pytest,
   pytest-xdist, pytest-subinterp (from this repo, ``pip install --no-build-isolation ROOT``), the
   project from its sdist (``--no-binary``) and the project's test requirements;
2. copies the sdist's tests directory out (and only that: the package's source tree is never on
   ``sys.path``, so the tests import the INSTALLED package and its compiled modules), with a minimal
   ``pytest.ini`` of ours (the project's markers, none of its ``addopts``: coverage, codspeed, ...);
3. collects the suite, picks at most ``--max-tests`` tests spread evenly over it (the same subset
   for both runs), and runs it (a) plain, ``-p no:subinterp``, and (b) with ``--subinterp-all``
   (pytest-subinterp's defaults, 2 interpreters x 4 threads unless overridden), both with
   ``--junitxml``;
4. reports per project: tests collected/selected, reports received, passed in sub-interpreters,
   failed, crashed, hung, import refused, leaked, fallback, skipped, the tests that pass plainly but
   not in sub-interpreters (with the first line of why), wall times and their ratio; and checks
   the counts of the plugin's 'subinterp verdicts' terminal section against the junit XML.

    python benchmarks/real_projects.py [--python PY] [--projects a,b,c] [--json OUT]
                                       [--max-tests N] [-n N] [--subinterp-threads T] ...

Prints a table and writes JSON (default: WORKDIR/py<ver>/results.json).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pytest_subinterp.verdicts import Verdict  # noqa: E402 - after the path to this checkout

# ---- the projects --------------------------------------------------------------------------------
# tests: directory of the sdist copied out; ignore: globs (relative to it) not collected;
# requires: test requirements (wheels are fine: only the project itself is built from source);
# modules: the compiled modules that must import from the installed package;
# ini: extra lines for our pytest.ini (markers the suite uses, its own semantics such as xfail_strict).
PROJECTS: dict[str, dict[str, Any]] = {
    "markupsafe": {
        "version": "3.0.4",
        "kind": "C (multi-phase, Py_mod_multiple_interpreters)",
        "tests": "tests",
        "ignore": [],
        "requires": [],
        "modules": ["markupsafe._speedups"],
        "ini": ["markers =", "    thread_unsafe: pytest-run-parallel marker"],
    },
    "msgpack": {
        "version": "1.2.4",
        "kind": "Cython (_cmsgpack), pure-Python fallback",
        "tests": "test",
        "ignore": ["uneeded_test_multithreading.py"],
        "requires": [],
        "modules": ["msgpack._cmsgpack"],
        "ini": [],
    },
    "multidict": {
        "version": "7.2.1",
        "kind": "C (_multidict), pure-Python twin",
        "tests": "tests",
        "ignore": [
            "isolated",
            "test_*_benchmarks.py",
            "test_callgrind_driver.py",
            "test_mypy.py",
            "test_release_notes_md.py",
            "test_hypothesis_*.py",
        ],
        "requires": ["objgraph", "psutil"],
        "modules": ["multidict._multidict"],
        "args": ["-m", "not hypothesis"],
        "ini": [
            "xfail_strict = true",
            "empty_parameter_set_mark = xfail",
            "markers =",
            "    leaks: memory leak tests",
            "    hypothesis: Hypothesis-based tests",
            "    capi: C API tests",
            "    expensive: slow under emulation",
            "    threaded: concurrency tests",
            "    benchmark_shard_2: benchmarks",
        ],
    },
    "ujson": {
        "version": "6.1.0",
        "kind": "C/C++ (ujson, double-conversion)",
        "tests": "tests",
        "ignore": ["benchmark.py", "fuzz.py", "memory.py"],
        "requires": [],
        "modules": ["ujson"],
        "ini": ["markers =", "    skip_leak_test: not rerun for memory leaks"],
    },
    "pyrsistent": {
        "version": "0.20.0",
        "kind": "C (pvectorc, single-phase), pure-Python fallback",
        "tests": "tests",
        "ignore": ["hypothesis_vector_test.py", "memory_profiling.py"],
        # segfaults in plain pytest on 3.13.0 (pvectorc's evolver), which would end the plain run
        "deselect": ["tests/vector_test.py::test_evolver_extend[pvectorc]"],
        "requires": [],
        "modules": ["pvectorc"],
        "ini": ["python_files = *_test.py test_*.py"],
    },
}
DEFAULT_PROJECTS = "markupsafe,msgpack,multidict,ujson,pyrsistent"

# Loaded with -p in both runs (and passed on by pytest-subinterp to its inner sessions, where it
# keeps the one wanted test anyway): dumps the collected node ids, or keeps only the listed ones.
SELECT_PLUGIN = '''\
"""Test selection for benchmarks/real_projects.py (written by it)."""
import json
import os


def pytest_collection_modifyitems(session, config, items):
    dump = os.environ.get("RP_DUMP")
    if dump:
        with open(dump, "w") as f:
            json.dump([item.nodeid for item in items], f)
    keep = os.environ.get("RP_KEEP")
    if keep:
        with open(keep) as f:
            wanted = set(json.load(f))
        selected = [item for item in items if item.nodeid in wanted]
        deselected = [item for item in items if item.nodeid not in wanted]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = selected
'''

# The summary titles of the 'subinterp verdicts' section, back to their verdict words.
VERDICT_TITLES = {verdict.summary_title: verdict.value for verdict in Verdict}


# ---- helpers -------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[real_projects {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float | None = None, out: Path | None = None, check: bool = True) -> dict[str, Any]:
    """Run cmd in its own process group; kill the group after timeout. Output goes to `out`."""
    t0 = time.monotonic()
    fh = open(out, "w") if out else subprocess.PIPE
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    timed_out = False
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            stdout, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, _ = proc.communicate()
    finally:
        if out:
            fh.close()
    wall = time.monotonic() - t0
    text = out.read_text(errors="replace") if out else (stdout or "")
    if check and (proc.returncode != 0 or timed_out):
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{text[-3000:]}")
    return {"rc": proc.returncode, "wall": wall, "timed_out": timed_out, "output": text}


def py_version(python: str) -> str:
    return subprocess.check_output(
        [python, "-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"], text=True
    ).strip()


def plugin_revision() -> str:
    try:
        return subprocess.check_output(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], text=True, stderr=subprocess.DEVNULL
        ).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---- setup ---------------------------------------------------------------------------------------
def make_venv(python: str, vdir: Path, plugin_src: Path) -> Path:
    vpy = vdir / "bin" / "python"
    if not vpy.exists():
        log(f"creating venv {vdir}")
        run([python, "-m", "venv", str(vdir)])
    pip = [str(vpy), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, "--upgrade", "pytest", "pytest-xdist", "setuptools>=77", "wheel"])  # 3.10/3.11 venvs: setuptools 65
    log(f"installing pytest-subinterp from {plugin_src}")
    run([*pip, "--no-build-isolation", "--force-reinstall", "--no-deps", str(plugin_src)])
    site = subprocess.check_output([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   text=True).strip()
    (Path(site) / "rp_select.py").write_text(SELECT_PLUGIN)
    return vpy


def installed_version(vpy: Path, dist: str) -> str | None:
    r = run([str(vpy), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"], check=False)
    return r["output"].strip() if r["rc"] == 0 else None


def fetch_sdist(name: str, version: str, sdists: Path, vpy: Path) -> Path:
    sdists.mkdir(parents=True, exist_ok=True)
    found = [p for p in sdists.iterdir() if p.name.lower().startswith(f"{name}-{version}.") and p.name.endswith((".tar.gz", ".zip"))]
    if not found:
        log(f"downloading sdist {name}=={version}")
        run([str(vpy), "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps", "-d", str(sdists),
             f"{name}=={version}"])
        found = [p for p in sdists.iterdir() if p.name.lower().startswith(f"{name}-{version}.")]
    return found[0]


def install_project(vpy: Path, name: str, spec: dict[str, Any], sdist: Path) -> dict[str, Any]:
    pip = [str(vpy), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    build_wall = 0.0
    if installed_version(vpy, name) != spec["version"]:
        log(f"building {name} {spec['version']} from {sdist.name}")
        build_wall = run([*pip, "--no-binary", name, "--no-deps", str(sdist)])["wall"]
    if spec["requires"]:
        run([*pip, *spec["requires"]])
    # The compiled modules must import from site-packages (not from any source tree).
    probe = ("import importlib, json, sys; out = {}\n"
             f"for m in {spec['modules']!r}:\n"
             "    try: out[m] = importlib.import_module(m).__file__\n"
             "    except Exception as e: out[m] = 'NOT IMPORTABLE: %r' % (e,)\n"
             "print(json.dumps(out))")
    r = run([str(vpy), "-I", "-c", probe], cwd=Path("/"))
    modules = json.loads(r["output"].strip().splitlines()[-1])
    return {"build_wall": round(build_wall, 1), "modules": modules}


def prepare_tests(name: str, spec: dict[str, Any], sdist: Path, pdir: Path) -> None:
    """Copy only the tests directory of the sdist into pdir, with our pytest.ini."""
    if pdir.exists():
        shutil.rmtree(pdir)
    pdir.mkdir(parents=True)
    with tarfile.open(sdist) as tf:
        top = tf.getnames()[0].split("/")[0]
        prefix = f"{top}/{spec['tests']}/"
        members = [m for m in tf.getmembers() if m.name.startswith(prefix)]
        for m in members:
            m.name = m.name[len(top) + 1:]
        tf.extractall(pdir, members=members, filter="data") if sys.version_info >= (3, 12) else tf.extractall(
            pdir, members=members)
    ignore = [f"--ignore-glob={spec['tests']}/{g}" for g in spec["ignore"]]
    ini = ["[pytest]", f"testpaths = {spec['tests']}", *spec["ini"]]
    (pdir / "pytest.ini").write_text("\n".join(ini) + "\n")
    (pdir / "rp_args.json").write_text(json.dumps([*ignore, *spec.get("args", [])]))


def spread(items: list[str], n: int) -> list[str]:
    """At most n items, evenly spaced over the list (every file of a suite gets its share)."""
    if n <= 0 or len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


# ---- reading results -----------------------------------------------------------------------------
def read_junit(path: Path) -> dict[str, dict[str, Any]]:
    """nodeid-ish key -> outcome, message, verdict (from the subinterp_verdict property)."""
    results: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return results
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return results
    for tc in root.iter("testcase"):
        key = f"{tc.get('classname')}::{tc.get('name')}"
        outcome, message = "passed", ""
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        for child in tc:
            if child.tag in ("failure", "error"):
                outcome = "error" if child.tag == "error" and outcome == "passed" else "failed"
                message = message or (child.get("message") or (child.text or "")[:400])
            elif child.tag == "skipped":
                if outcome == "passed":
                    outcome = "skipped"
                message = message or (child.get("message") or "")
        if key in results:  # duplicate testcase (setup + teardown errors): keep the worst
            prev = results[key]
            prev["duplicates"] = prev.get("duplicates", 1) + 1
            if outcome in ("failed", "error"):
                prev["outcome"], prev["message"] = outcome, prev["message"] or message
            continue
        results[key] = {"outcome": outcome, "message": message, "verdict": props.get("subinterp_verdict"),
                        "time": float(tc.get("time") or 0)}
    return results


def read_verdict_section(output: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    m = re.search(r"^=+ subinterp verdicts =+$(.*?)(?=^=+ |\Z)", output, re.M | re.S)
    if not m:
        return counts
    for line in m.group(1).splitlines():
        mm = re.match(r"^(\S.*): (\d+)$", line)
        if mm and mm.group(1) in VERDICT_TITLES:
            counts[VERDICT_TITLES[mm.group(1)]] = int(mm.group(2))
    return counts


def summary_line(output: str) -> str:
    lines = [ln for ln in output.splitlines()
             if re.search(r"\b(passed|failed|errors?|skipped|deselected|no tests ran)\b.* in [\d.]+s", ln)]
    return lines[-1].strip("= ") if lines else ""


def classify(plain: dict[str, dict[str, Any]], sub: dict[str, dict[str, Any]], out: str) -> dict[str, Any]:
    c: collections.Counter[str] = collections.Counter()
    regressions = []
    verdicts: collections.Counter[str] = collections.Counter()
    for key, r in sub.items():
        msg = r["message"] or ""
        verdict = r["verdict"]
        if verdict:
            verdicts[verdict] += 1
        if r["outcome"] in ("failed", "error"):
            if "worker crashed" in msg or verdict == "crashed":
                c["crashed"] += 1
            elif verdict == "hung" or "did not finish within" in msg:
                c["hung"] += 1
            elif verdict == "import refused":
                c["import refused"] += 1
            elif verdict == "leaked":
                c["leaked"] += 1
            elif verdict == "infrastructure" or r["outcome"] == "error" and not verdict:
                c["error"] += 1
            else:
                c["failed"] += 1
        elif r["outcome"] == "skipped":
            c["skipped"] += 1
        else:
            c["fallback" if verdict == "fallback" else "passed"] += 1
        p = plain.get(key)
        if p and p["outcome"] == "passed" and r["outcome"] in ("failed", "error"):
            first = next((ln for ln in msg.splitlines() if ln.strip()), "")
            regressions.append({"test": key, "verdict": verdict, "message": first[:300]})
    section = read_verdict_section(out)
    junit_verdicts = dict(verdicts)
    mismatch = {k: (section.get(k, 0), junit_verdicts.get(k, 0))
                for k in set(section) | set(junit_verdicts) if section.get(k, 0) != junit_verdicts.get(k, 0)}
    return {"counts": dict(c), "regressions": regressions, "verdict_section": section,
            "junit_verdicts": junit_verdicts, "section_vs_junit_mismatch": mismatch}


# ---- one project ---------------------------------------------------------------------------------
def run_project(name: str, vpy: Path, pydir: Path, sdists: Path, args: argparse.Namespace) -> dict[str, Any]:
    spec = PROJECTS[name]
    res: dict[str, Any] = {"project": name, "version": spec["version"], "kind": spec["kind"]}
    sdist = fetch_sdist(name, spec["version"], sdists, vpy)
    res.update(install_project(vpy, name, spec, sdist))
    pdir = pydir / name
    prepare_tests(name, spec, sdist, pdir)
    extra = json.loads((pdir / "rp_args.json").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    base = [str(vpy), "-m", "pytest", "-c", "pytest.ini", "--rootdir", ".", "-p", "rp_select", "-p", "no:cacheprovider",
            *extra]

    # collect, then choose the subset both runs use
    dump = pdir / "collected.json"
    r = run([*base, "-p", "no:subinterp", "--collect-only", "-q"], cwd=pdir, env={**env, "RP_DUMP": str(dump)},
            out=pdir / "collect.log", check=False, timeout=300)
    collected = json.loads(dump.read_text()) if dump.exists() else []
    res["collected"] = len(collected)
    res["collect_rc"] = r["rc"]
    res["deselected_known_bad"] = [n for n in spec.get("deselect", []) if n in collected]
    selected = spread([n for n in collected if n not in spec.get("deselect", [])], args.max_tests)
    res["selected"] = len(selected)
    keep = pdir / "selected.json"
    keep.write_text(json.dumps(selected))
    env["RP_KEEP"] = str(keep)

    log(f"{name}: plain run of {len(selected)}/{len(collected)} tests")
    plain = run([*base, "-p", "no:subinterp", "-q", "-rfE", "--junitxml", "plain.xml"], cwd=pdir, env=env,
                out=pdir / "plain.log", check=False, timeout=args.project_timeout)
    sub_args = ["--subinterp-all", "-rfE", "-q"]
    if args.workers:
        sub_args += ["-n", str(args.workers)]
    for opt in ("threads", "interpreters", "config", "rounds", "timeout", "leaks"):
        v = getattr(args, f"subinterp_{opt}")
        if v is not None:
            sub_args += [f"--subinterp-{opt}", str(v)]
    sub_args += args.extra
    log(f"{name}: --subinterp-all run ({' '.join(sub_args)})")
    sub = run([*base, *sub_args, "--junitxml", "subinterp.xml"], cwd=pdir, env=env,
              out=pdir / "subinterp.log", check=False, timeout=args.project_timeout)
    pj, sj = read_junit(pdir / "plain.xml"), read_junit(pdir / "subinterp.xml")
    res["plain"] = {"rc": plain["rc"], "wall": round(plain["wall"], 1), "summary": summary_line(plain["output"]),
                    "timed_out": plain["timed_out"],
                    "crashed": plain["rc"] < 0 or "Fatal Python error" in plain["output"],
                    "counts": dict(collections.Counter(r["outcome"] for r in pj.values()))}
    res["subinterp"] = {"rc": sub["rc"], "wall": round(sub["wall"], 1), "summary": summary_line(sub["output"]),
                        "timed_out": sub["timed_out"], "args": sub_args, "reports": len(sj)}
    res["subinterp"].update(classify(pj, sj, sub["output"]))
    res["internalerror"] = "INTERNALERROR" in sub["output"]
    res["lost_reports"] = sorted(set(pj) - set(sj))[:50] if not sub["timed_out"] else "run timed out"
    res["ratio"] = round(sub["wall"] / plain["wall"], 1) if plain["wall"] > 0 else None
    res["per_test_s"] = round(sub["wall"] / max(1, len(sj)), 2)
    res["logs"] = str(pdir)
    return res


# ---- output --------------------------------------------------------------------------------------
COLUMNS = ["project", "version", "collected", "run", "passed", "failed", "crashed", "hung", "refused", "leaked",
           "fallback", "skipped", "error", "plain s", "subinterp s", "ratio", "s/test"]


def table_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        if "error_setup" in r:
            rows.append([r["project"], r.get("version", ""), "setup failed: " + r["error_setup"][:60]])
            continue
        c = r["subinterp"]["counts"]
        rows.append([r["project"], r["version"], str(r["collected"]), str(r["subinterp"]["reports"]),
                     str(c.get("passed", 0)), str(c.get("failed", 0)), str(c.get("crashed", 0)), str(c.get("hung", 0)),
                     str(c.get("import refused", 0)), str(c.get("leaked", 0)), str(c.get("fallback", 0)),
                     str(c.get("skipped", 0)), str(c.get("error", 0)),
                     f"{r['plain']['wall']:.1f}" + (" (crash)" if r["plain"].get("crashed") else ""),
                     f"{r['subinterp']['wall']:.1f}" + (" (cap)" if r["subinterp"]["timed_out"] else ""),
                     f"{r['ratio']}x", f"{r['per_test_s']}"])
    return rows


def render_table(results: list[dict[str, Any]], markdown: bool = False) -> str:
    rows = table_rows(results)
    if markdown:
        out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        out += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(out)
    widths = [max(len(COLUMNS[i]), *(len(row[i]) for row in rows if i < len(row))) for i in range(len(COLUMNS))]
    fmt = lambda row: "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))  # noqa: E731
    return "\n".join([fmt(COLUMNS), fmt(["-" * w for w in widths]), *(fmt(row) for row in rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="Python to test with (default: this one)")
    ap.add_argument("--projects", default=DEFAULT_PROJECTS, help=f"comma-separated, of: {','.join(PROJECTS)}")
    ap.add_argument("--json", help="write results here (default: WORKDIR/py<ver>/results.json)")
    ap.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    ap.add_argument("--workdir", default="/tmp/pytest-subinterp-real-projects", help="venvs, sdists, test copies, logs")
    ap.add_argument("--plugin-src", default=str(ROOT), help="what to pip install as pytest-subinterp (default: repo root)")
    ap.add_argument("--max-tests", type=int, default=120, help="at most N tests per project, spread evenly (0: all)")
    ap.add_argument("-n", "--workers", type=int, default=2, help="pytest-xdist workers for the subinterp run (0: none)")
    ap.add_argument("--project-timeout", type=float, default=600, help="cap on each pytest run, seconds")
    for opt in ("threads", "interpreters", "config", "rounds", "timeout", "leaks"):
        ap.add_argument(f"--subinterp-{opt}", default=None, help=f"passed on as --subinterp-{opt}")
    ap.add_argument("extra", nargs="*", help="more pytest args for the subinterp run (after --)")
    args = ap.parse_args(argv)

    ver = py_version(args.python)
    work = Path(args.workdir)
    pydir = work / f"py{ver}"
    pydir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    vpy = make_venv(args.python, pydir / "venv", Path(args.plugin_src))
    versions = json.loads(run([str(vpy), "-c", "import json, importlib.metadata as m; print(json.dumps("
                                               "{d: m.version(d) for d in ('pytest', 'pytest-xdist', 'pytest-subinterp')}))"])["output"])
    results = []
    for name in [p.strip() for p in args.projects.split(",") if p.strip()]:
        if name not in PROJECTS:
            ap.error(f"unknown project {name!r}; known: {', '.join(PROJECTS)}")
        try:
            results.append(run_project(name, vpy, pydir, work / "sdists", args))
        except Exception as e:  # a project that does not build here must not hide the others
            log(f"{name}: {e}")
            results.append({"project": name, "version": PROJECTS[name]["version"], "error_setup": str(e)})
        r = results[-1]
        if "subinterp" in r:
            log(f"{name}: plain '{r['plain']['summary']}' | subinterp '{r['subinterp']['summary']}'")
    doc = {"python": ver, "python_executable": args.python, "plugin_revision": plugin_revision(), "versions": versions,
           "settings": {"max_tests": args.max_tests, "workers": args.workers,
                        **{o: getattr(args, f"subinterp_{o}") for o in ("threads", "interpreters", "config", "rounds",
                                                                        "timeout", "leaks")}},
           "total_wall": round(time.monotonic() - t0, 1), "results": results}
    out = Path(args.json) if args.json else pydir / "results.json"
    out.write_text(json.dumps(doc, indent=2))
    print(f"\nPython {ver}, pytest-subinterp {doc['plugin_revision']}, "
          f"--subinterp-all with -n {args.workers}, at most {args.max_tests} tests per project")
    print(render_table(results))
    if args.markdown:
        print("\n" + render_table(results, markdown=True))
    for r in results:
        if r.get("subinterp"):
            s = r["subinterp"]
            notes = []
            if r["plain"].get("crashed"):
                notes.append("the PLAIN run crashed (see plain.log): its wall time and outcomes are partial")
            if r["internalerror"]:
                notes.append("INTERNALERROR in the output")
            if r["lost_reports"]:
                notes.append(f"lost reports: {r['lost_reports']}")
            if s["section_vs_junit_mismatch"]:
                notes.append(f"verdict section vs junit (section, junit): {s['section_vs_junit_mismatch']}")
            bad = [m for m, f in r["modules"].items() if "site-packages" not in f]
            if bad:
                notes.append(f"compiled modules not from site-packages: {bad}")
            if s["regressions"]:
                notes.append(f"{len(s['regressions'])} pass plainly but not in sub-interpreters:")
                notes += [f"    {x['test']} [{x['verdict']}]: {x['message'][:150]}" for x in s["regressions"][:8]]
                if len(s["regressions"]) > 8:
                    notes.append(f"    ... ({len(s['regressions']) - 8} more in the JSON)")
            if notes:
                print(f"\n{r['project']}:\n  " + "\n  ".join(notes))
    print(f"\nJSON: {out}; logs under {pydir}; total {doc['total_wall']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
