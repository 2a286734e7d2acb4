"""State-leak verdicts: thresholds, and when what was measured is a leak.  Pure functions.

Five detectors (PRODUCT.md section 5), each compared with a control measured the same way in
the same child process, so that what CPython itself retains is never blamed on the extension:

1. memory per interpreter lifetime: malloc'd bytes (glibc ``mallinfo2``: in-use heap + mmapped
   blocks) retained by ended interpreters, test battery vs a trivial control battery, then
   confirmed over sequential single-interpreter lifetimes (warm-up + measured);
2. allocated blocks (and total references on debug builds) per call inside one interpreter, as
   CPython's ``regrtest -R``: warm-up calls, then every measured call must grow;
3. objects reachable from an extension module's namespace that are the same object in two
   interpreters alive at once (static types, cached objects), immortal objects excepted;
4. threads left running (reported by analysis.py with the same policy);
5. file descriptors left open per interpreter lifetime (same series as 1).

What is measured where: measure.py inside the interpreters (2 and 3), sequence.py in the battery
child (1 and 5); policy.py is the controller's re-runs.  This module judges their figures, and
imports nothing heavy: measure.py imports it in every interpreter.

Measured on this project's machine (3.12.1/3.13.0): an isolated interpreter that ran a trivial
inner pytest session retains 394,032-394,096 malloc'd bytes, every lifetime the same; legacy
retains ~50 bytes.  RSS varies by megabytes and is reported, never decided on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BYTES_PER_LIFETIME_THRESHOLD = 64 * 1024
FDS_PER_LIFETIME_THRESHOLD = 1
WARMUP_CALLS = 8
CALLS_PER_BATCH = 4
MEASURED_BATCHES = 3
TOTAL_CALLS = WARMUP_CALLS + CALLS_PER_BATCH * MEASURED_BATCHES
REPEAT_BUDGET_S = 1.0  # a test whose calls would take longer is not repeated
BLOCKS_PER_CALL_THRESHOLD = 4
# Per-call detectors: what is counted, and how much growth per call is a leak.
PER_CALL_THRESHOLDS = (("objects", 1), ("blocks", BLOCKS_PER_CALL_THRESHOLD), ("refs", 1))
# When every measured batch grew, CONFIRM_BATCHES longer batches must grow as much per call:
# CPython's and the test's own caches (lru_cache, the re cache, interned strings, warnings
# registries) stop growing once full, a leak does not (seen on multidict's pure-Python tests:
# +27, +24, +23 blocks per 4 calls that a longer run does not keep up).
CONFIRM_BATCHES = 2
CALLS_PER_CONFIRM_BATCH = 16

HINTS = {
    "memory": "memory allocated per module instance is never freed: free it in m_free/m_clear "
              "(module state), not only at process exit",
    "fds": "a file descriptor opened per module instance is never closed: close it in m_free",
    "blocks": "each call leaves objects behind: a missing Py_DECREF (or a cache that never stops "
              "growing) in the code the test calls",
    "shared": "a static PyTypeObject or an object cached in a C static is shared by all "
              "interpreters: use PyType_FromModuleAndSpec and keep objects in module state",
    "threads": "join threads before the test and its fixtures finish",
}


@dataclass(frozen=True)
class Finding:
    """One leak: which detector, the figure, the baseline it was compared with, and a hint."""

    detector: str
    figure: str
    baseline: str
    config: str
    where: str

    def message(self) -> str:
        """The one-paragraph text shown in the report."""
        return (f"state leak ({self.detector}) in {self.config} interpreters: {self.figure}; "
                f"baseline {self.baseline}; measured {self.where}. Usual cause: {HINTS[self.detector]}")


# ---- memory and fds per interpreter lifetime (sequence.py measures them) ---------------------

# What CPython itself retains per ended interpreter that ran an inner pytest session (malloc'd
# bytes, measured here; rounded up).  Only used to decide whether a lifetime series is worth
# running: the series has its own control.
TYPICAL_RETENTION = {"isolated": 450 * 1024, "legacy": 16 * 1024}


def suspicious(test: dict[str, int | None], control: dict[str, int | None], interpreters: int,
               config: str = "isolated") -> bool:
    """Whether one battery grew more than its control (or than CPython's usual retention, when
    the control itself retained more: seen on 3.11 legacy): then a lifetime series decides."""
    test_malloc, control_malloc = test.get("malloc"), control.get("malloc")
    if test_malloc is not None and control_malloc is not None:
        baseline = min(control_malloc / interpreters, TYPICAL_RETENTION.get(config, 0))
        if test_malloc / interpreters - baseline >= BYTES_PER_LIFETIME_THRESHOLD:
            return True
    test_fds, control_fds = test.get("fds"), control.get("fds")
    if test_fds is not None and control_fds is not None:
        return test_fds - control_fds >= FDS_PER_LIFETIME_THRESHOLD
    return False


def lifetime_findings(series: list[dict[str, Any]], config: str) -> list[Finding]:
    """Findings from the sequential lifetimes: every measured test lifetime must retain the excess
    over the control, the lowest of the measured control lifetimes.  CPython's own retention is
    the floor of a lifetime and chance only adds to it: one control lifetime once retained 130 KiB
    more than the others (3.13.0, a template battery), and compared pair by pair that control hid
    a 128 KiB leak that every test lifetime showed."""
    measured = [pair for pair in series if not pair["warmup"]]
    if not measured:
        return []
    findings = []
    for key, detector, threshold, unit in (("malloc", "memory", BYTES_PER_LIFETIME_THRESHOLD, "bytes"),
                                           ("fds", "fds", FDS_PER_LIFETIME_THRESHOLD, "fds")):
        tests = [pair["test"].get(key) for pair in measured]
        controls = [pair["control"].get(key) for pair in measured]
        if None in tests or None in controls:
            continue
        excess = [test - min(controls) for test in tests]
        if all(value >= threshold for value in excess):
            findings.append(Finding(
                detector, f"+{_fmt(min(excess), unit)} per interpreter lifetime beyond the control "
                          f"(test retained {', '.join(_fmt(v, unit) for v in tests)})",
                f"trivial test retained {', '.join(_fmt(v, unit) for v in controls)} per lifetime",
                config, f"over {len(measured)} sequential lifetimes after {len(series) - len(measured)} warm-up"))
    return findings


def _fmt(value: int, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 1024:.1f} KiB"
    return f"{value} {unit}"


# ---- allocations per call (measure.py measures them) -----------------------------------------

def _grew(values: list[int], baseline: list[int], per_call: int) -> bool:
    return bool(values) and len(values) == len(baseline) and all(
        v - c >= per_call * CALLS_PER_BATCH for v, c in zip(values, baseline))


def suspicious_growth(test: dict[str, list[int]], control: dict[str, list[int]]) -> bool:
    """Whether some detector fired on the measured batches (then confirm_growth runs)."""
    return any(_grew(test.get(key) or [], control.get(key) or [], per_call)
               for key, per_call in PER_CALL_THRESHOLDS)


def _confirmed(confirm: dict[str, list[int]] | None, control: dict[str, list[int]], key: str,
               per_call: int) -> bool:
    """The confirmation batches grew at least as much per call beyond the control's rate."""
    if confirm is None:
        return True  # not measured (a test body that raised on a later call): the batches decide
    values, baseline = confirm.get(key) or [], control.get(key) or []
    if not values or not baseline:
        return False
    control_per_call = max(baseline) / CALLS_PER_BATCH
    return all(v - control_per_call * CALLS_PER_CONFIRM_BATCH >= per_call * CALLS_PER_CONFIRM_BATCH
               for v in values)


def per_call_findings(test: dict[str, Any], control: dict[str, list[int]], config: str) -> list[Finding]:
    """A leak when every measured batch grew more than the no-op control's batch did: by at
    least one GC-tracked object per call (a leaked list, dict, tuple or instance), one reference
    per call (debug builds), or BLOCKS_PER_CALL_THRESHOLD allocated blocks per call, and the
    longer confirmation batches (test["confirm"]) kept growing as fast.  Blocks alone are noisy:
    `Path.write_text` grows CPython's own caches by 1 block per call on 3.13 and 2 on 3.11 for
    dozens of calls, so a single leaked str/int per call is only seen on debug builds.  One
    finding per test: the first detector that fires."""
    findings = []
    confirm = test.get("confirm")
    for key, per_call in PER_CALL_THRESHOLDS:
        values, baseline = test.get(key) or [], control.get(key) or []
        if _grew(values, baseline, per_call) and _confirmed(confirm, control, key, per_call):
            what = {"objects": "GC-tracked objects", "blocks": "allocated blocks", "refs": "references"}[key]
            findings.append(Finding(
                "blocks", f"+{', +'.join(map(str, values))} {what} per {CALLS_PER_BATCH} calls",
                f"no-op calls: {', '.join(f'+{c}' for c in baseline)}", config,
                f"in interpreter 1 over {len(values)} batches of {CALLS_PER_BATCH} calls after "
                f"{WARMUP_CALLS} warm-up calls"
                + (f", then +{', +'.join(map(str, confirm[key]))} per {CALLS_PER_CONFIRM_BATCH} calls"
                   if confirm and confirm.get(key) else "")
                + (f"; and again in a second battery (+{', +'.join(map(str, test['rerun'].get(key) or []))} "
                   f"per {CALLS_PER_BATCH} calls)" if test.get("rerun") else "")))
            break
    return findings


def per_call_leaked(data: dict[str, Any]) -> bool:
    """Whether the per-call detector fires on one test's data from interpreter 1 (measure.py)."""
    growth, control = data.get("growth"), data.get("control")
    return bool(growth and control and per_call_findings(growth, control, ""))


# ---- objects shared between interpreters (measure.py snapshots them) -------------------------

def shared_findings(snapshots: list[dict[str, list[Any]]], config: str) -> list[Finding]:
    """Paths whose object has the same id in two interpreters alive at once."""
    findings = []
    seen: set[str] = set()
    for i, first in enumerate(snapshots):
        for j in range(i + 1, len(snapshots)):
            for path, (identity, type_name) in first.items():
                other = snapshots[j].get(path)
                if other is not None and other[0] == identity and path not in seen:
                    seen.add(path)
                    findings.append(Finding(
                        "shared", f"{path} ({type_name}) is the same object in interpreters {i + 1} and {j + 1}",
                        "objects of a per-interpreter module differ between interpreters (immortal "
                        "objects excepted)", config, "while both interpreters were alive"))
    return findings


# ---- one battery -----------------------------------------------------------------------------

def battery_findings(config: str, process: dict[str, Any], per_interpreter: list[dict[str, Any] | None],
                     all_ended: bool) -> tuple[list[Finding], dict[str, Any]]:
    """Detectors 1, 2, 3 and 5 on one test's battery: its findings, and its figures as the JSON
    report shows them.  `process`: what the battery child measured (sequence.py);
    `per_interpreter`: each interpreter's leak data for the test (measure.py), None where there
    is none; `all_ended`: every interpreter of the battery was ended."""
    findings: list[Finding] = []
    # An interpreter left alive (a thread still running) keeps all its memory: that is
    # reported once, as the thread, not again as memory.
    if all_ended:
        findings += lifetime_findings(process.get("series", []), config)
    snapshots, growth = [], None
    for data in per_interpreter:
        if data is None:
            continue
        snapshots.append(data.get("snapshot", {}))
        if data.get("growth") and data.get("control"):
            growth = (data["growth"], data["control"])
    findings += shared_findings(snapshots, config)
    if growth is not None:
        findings += per_call_findings(growth[0], growth[1], config)
    figures = {"config": config, **{k: v for k, v in process.items() if k != "series"},
               "series": process.get("series", []),
               "findings": [finding.message() for finding in findings]}
    return findings, figures
