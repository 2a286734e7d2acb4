"""The leak-measuring sequence of a battery child, in its main interpreter (detectors 1 and 5).

What the child runs around the test's battery, and the process memory it measures between them:
with fresh interpreters, a warm-up and a control battery before the test; with template
interpreters, the test against the control the controller measured once per shape
(template_control, cached by policy.py); in both, when the test retained more than its control,
sequential single-interpreter lifetimes (lifetime_series).  verdict.py judges the figures.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pytest_subinterp import child
from pytest_subinterp.leaks.verdict import suspicious

if TYPE_CHECKING:
    from pytest_subinterp.protocol import BatteryRequest, HelperResult, LeakMeasurement

SERIES_WARMUP = 1
SERIES_MEASURED = 2
# The most batteries one child runs with leak checks: a warm-up, the control, the test and a
# lifetime series (a test and a control battery per lifetime).
MAX_BATTERIES = 3 + 2 * (SERIES_WARMUP + SERIES_MEASURED)


def run(request: BatteryRequest) -> HelperResult:
    """The battery `request` asks for, with its leak measurements: the template control (role
    "control"), or the test's battery in template or in fresh interpreters."""
    if request.get("role") == "control":
        return template_control(request)
    if request.get("use_templates"):
        return template_battery(request)
    return fresh_battery(request)


def template_control(request: BatteryRequest) -> HelperResult:
    """The control of template batteries: the trivial test in the inherited templates, measured.
    Every child forked from the zygote starts from the same memory, so one control serves every
    battery of the same shape (the controller caches it)."""
    before = process_memory()
    result = child.run_helper(request, request["control_spec"], "control", templates=True)
    result["leak_measurement"] = {"measured": difference(before, process_memory())}
    return result


def template_battery(request: BatteryRequest) -> HelperResult:
    """The test's battery in the inherited templates, measured against the cached control (see
    template_control); when it retained more, the lifetime series decides, as without templates."""
    before = process_memory()
    result = child.run_helper(request, request["spec"], "test", templates=True)
    control = request["template_control"]
    info: LeakMeasurement = {
        "control": control["measured"],
        "test": difference(before, process_memory()),
        "control_errors": control["errors"],
        "series": [],
    }
    if not result["hung"] and suspicious(info["test"], info["control"], request["interpreters"],
                                         request["config"]):
        if request["spec"].get("unfreeze"):
            lifetime_series(request, info)
        else:
            info["needs_unfrozen"] = True  # the controller runs it again unfrozen (policy.py)
    result["leak_measurement"] = info
    return result


def fresh_battery(request: BatteryRequest) -> HelperResult:
    """The test's battery between measurements, after a control battery (a trivial test, the
    same steps) that also absorbs the process's one-time costs; when the test retained more
    than the control, sequential single-interpreter lifetimes decide (verdict.py)."""
    control_spec = request["control_spec"]
    # The first battery of a shape in a process retains one-time costs: ~250 KB for the first
    # isolated lifetime on 3.13, ~600 KB for a first 2x4 legacy battery on 3.11 (thread caches
    # of the allocator; a single-interpreter warm-up does not absorb it).  A warm-up battery of
    # the same shape does: then the control matches a correct module's battery within a few KiB.
    child.run_helper(request, control_spec, "warm-up")
    before = process_memory()
    control = child.run_helper(request, control_spec, "control")
    middle = process_memory()
    result = child.run_helper(request, request["spec"], "test")
    after = process_memory()
    info: LeakMeasurement = {
        "control": difference(before, middle),
        "test": difference(middle, after),
        "control_errors": child.errors_of(control),
        "series": [],
    }
    if not result["hung"] and not control["hung"] and suspicious(
            info["test"], info["control"], request["interpreters"], request["config"]):
        lifetime_series(request, info)
    result["leak_measurement"] = info
    return result


def lifetime_series(request: BatteryRequest, info: LeakMeasurement) -> None:
    """Sequential single-interpreter lifetimes (fresh interpreters), test and control alternating."""
    quiet = {**request["spec"], "check_leaks": False}
    quiet_control = {**request["control_spec"], "check_leaks": False}
    for index in range(SERIES_WARMUP + SERIES_MEASURED):
        start = process_memory()
        child.run_helper(request, quiet, "lifetime-test", single=True)
        mid = process_memory()
        child.run_helper(request, quiet_control, "lifetime-control", single=True)
        end = process_memory()
        info["series"].append({"warmup": index < SERIES_WARMUP,
                               "test": difference(start, mid),
                               "control": difference(mid, end)})


# ---- process memory (the child's main interpreter) --------------------------------------------

_MALLINFO: list[Any] = []


def _mallinfo2() -> Any:
    """glibc's mallinfo2 via ctypes, or None.  Only ever called in the child's main interpreter
    (3.12 refuses _ctypes in isolated interpreters), hence the lazy import."""
    if not _MALLINFO:
        import ctypes
        import ctypes.util

        class MallInfo2(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                "fordblks", "keepcost")]

        try:
            function = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallinfo2
            function.restype = MallInfo2
        except (OSError, AttributeError):
            function = None  # not glibc >= 2.33: memory is judged on file descriptors only
        _MALLINFO.append(function)
    return _MALLINFO[0]


def process_memory() -> dict[str, int | None]:
    """malloc'd bytes in use, RSS and open file descriptors of this process."""
    malloc = None
    mallinfo = _mallinfo2()
    if mallinfo is not None:
        info = mallinfo()
        malloc = int(info.uordblks + info.hblkhd)
    rss = None
    try:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    fds = None
    try:
        fds = len(os.listdir("/proc/self/fd")) - 1  # the listing itself holds one
    except OSError:
        pass
    return {"malloc": malloc, "rss": rss, "fds": fds}


def difference(before: dict[str, int | None], after: dict[str, int | None]) -> dict[str, int | None]:
    """after - before, key by key (None where either is unknown)."""
    changes: dict[str, int | None] = {}
    for key, start in before.items():
        end = after.get(key)
        changes[key] = end - start if end is not None and start is not None else None
    return changes


