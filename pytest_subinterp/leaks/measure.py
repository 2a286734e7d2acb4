"""State-leak measurements that run inside an interpreter of a battery (detectors 2 and 3).

Imported by the inner session in every interpreter (and pre-imported by template interpreters,
see templates.interpreter.SESSION_MODULES): it must not import pytest or anything heavy.
verdict.py judges what is measured here.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

from pytest_subinterp import compat
from pytest_subinterp.leaks.verdict import (
    CALLS_PER_BATCH,
    CALLS_PER_CONFIRM_BATCH,
    CONFIRM_BATCHES,
    MEASURED_BATCHES,
    REPEAT_BUDGET_S,
    TOTAL_CALLS,
    WARMUP_CALLS,
    suspicious_growth,
)


def measure_test(helper: Any, index: int, call_once: Callable[[], object] | None,
                 reset: Callable[[], object] | None = None) -> dict[str, Any]:
    """Leak detectors that need every interpreter alive: between two barriers, each
    interpreter snapshots its extension objects; interpreter 1 also measures per-call growth
    while the others wait (legacy interpreters share one allocator).  `helper`: the C helper
    (barrier, is_single_phase); `call_once`: one call of the test body, None when the body
    cannot be repeated (it raised, or never ran here); `reset`: empties what the test's fixtures
    and pytest keep by design across the repeated calls (inner.Accumulators), before each sample.
    Returns the test's leak data."""
    helper.barrier()
    data: dict[str, Any] = {"snapshot": shared_object_snapshot(helper.is_single_phase)}
    if index == 0 and call_once is not None:
        # The no-op control first: it also warms the measuring itself up.
        data["control"] = growth_per_call(lambda: None, reset)
        data["growth"] = growth_per_call(call_once, reset)
        if data["growth"] and data["control"] and suspicious_growth(data["growth"], data["control"]):
            data["growth"]["confirm"] = confirm_growth(call_once, reset)
    helper.barrier()
    return data


# ---- per-call growth (detector 2) ------------------------------------------------------------

def _measure_batches(fn: Callable[[], object], batches: int, calls_per_batch: int,
                     reset: Callable[[], object] | None = None) -> dict[str, list[int]]:
    """GC-tracked objects, allocated blocks and (debug builds) references added by each of
    `batches` batches of `calls_per_batch` calls.  The samples live in lists allocated up front:
    the only allocation the measuring adds is one int per sample, the same in the no-op control."""
    has_refs = compat.total_refcount() is not None  # debug builds
    blocks = [0] * (batches + 1)
    tracked = [0] * (batches + 1)
    refs = [0] * (batches + 1)
    for index in range(batches + 1):
        if index:
            for _ in range(calls_per_batch):
                fn()
        if reset is not None:
            reset()  # what fixtures keep until their teardown is not the body's growth
        gc.collect()
        tracked[index] = len(gc.get_objects())
        blocks[index] = sys.getallocatedblocks()
        if has_refs:
            refs[index] = compat.total_refcount() or 0
    return {"blocks": [b - a for a, b in zip(blocks, blocks[1:])],
            "objects": [b - a for a, b in zip(tracked, tracked[1:])],
            "refs": [b - a for a, b in zip(refs, refs[1:])] if has_refs else []}


def confirm_growth(fn: Callable[[], object], reset: Callable[[], object] | None = None) -> dict[str, list[int]] | None:
    """CONFIRM_BATCHES batches of CALLS_PER_CONFIRM_BATCH more calls, measured like
    growth_per_call's (run right after it, when its batches all grew); None if fn raised."""
    try:
        return _measure_batches(fn, CONFIRM_BATCHES, CALLS_PER_CONFIRM_BATCH, reset)
    except BaseException:  # noqa: BLE001 - a test that cannot be repeated is not measured
        return None


def growth_per_call(fn: Callable[[], object], reset: Callable[[], object] | None = None) -> dict[str, list[int]] | None:
    """Blocks (and refs) added per batch of CALLS_PER_BATCH calls, for MEASURED_BATCHES batches
    after WARMUP_CALLS; None if fn raised, started threads, or is too slow to repeat.

    Batches, not single calls: CPython's own caches and free lists grow by about one block per
    call for the first few dozen calls of ordinary I/O (open/close), so one call is too little
    to tell that from a one-object leak."""
    import threading
    import time

    threads_before = threading.active_count()
    try:
        start = time.perf_counter()
        fn()
        if (time.perf_counter() - start) * TOTAL_CALLS > REPEAT_BUDGET_S:
            return None  # too slow to call TOTAL_CALLS more times
        for _ in range(WARMUP_CALLS - 1):
            fn()
            if threading.active_count() != threads_before:
                return None  # each call starts threads: reported as threads left running
        growth = _measure_batches(fn, MEASURED_BATCHES, CALLS_PER_BATCH, reset)
    except BaseException:  # noqa: BLE001 - a test that cannot be repeated is not measured
        return None
    if threading.active_count() != threads_before:
        return None
    return growth


# ---- objects reachable from extension modules (detector 3) -------------------------------------

def project_extension_modules() -> list[tuple[str, Any]]:
    """(name, module) of the extension modules loaded here that are not CPython's own."""
    from importlib.machinery import ExtensionFileLoader

    from pytest_subinterp.quirks import is_stdlib_path

    return [(name, module) for name, module in list(sys.modules.items())
            if isinstance(getattr(module, "__loader__", None), ExtensionFileLoader)
            and not is_stdlib_path(getattr(module, "__file__", None))]


def shared_object_snapshot(is_single_phase: Callable[[object], bool]) -> dict[str, list[Any]]:
    """{path: [id, type name]} of objects reachable from extension module namespaces."""
    import builtins

    common = {id(value) for value in vars(builtins).values()}
    snapshot: dict[str, list[Any]] = {}
    for module_name, module in project_extension_modules():
        if is_single_phase(module):
            continue  # shared by design in legacy interpreters; refused by isolated ones
        for attr, value in list(vars(module).items()):
            if attr.startswith("__") or id(value) in common:
                continue
            if isinstance(value, type):
                if not str(getattr(value, "__module__", "")).startswith(module_name.split(".")[0]):
                    continue  # a type of another (e.g. stdlib C) module, re-exported
                # The module's own static types count even when immortal (3.13 makes static
                # types immortal): being one object in every interpreter is the defect.
            elif compat.is_immortal(value):
                continue
            path = f"{module_name}.{attr}"
            snapshot[path] = [id(value), type(value).__qualname__]
    return snapshot
