"""What ``pytest-subinterp check`` runs inside each sub-interpreter, and its memory child.

:func:`run` is the battery entry (``pytest_subinterp.check.entry:run``) called by the C helper on
each interpreter's creator thread; it returns JSON.  Modes (``spec["mode"]``):

- ``import``: import the module once, say how (refused? single-phase? declared slots?).
- ``threads``: the battery threads import it concurrently (first rendezvous); then, with every
  interpreter still alive (second rendezvous), the creator lists the ids of objects reachable
  from the module so that the controller can find objects shared across interpreters.
- ``memory``: import the module (or nothing: the control) and return.

``python -m pytest_subinterp.check.entry REQUEST.json`` is the memory child: it runs sequential
one-interpreter batteries in its main interpreter (control first, then the module) and records
the resident set size after each, so that the controller can subtract the control.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from pytest_subinterp import compat

ENTRY = "pytest_subinterp.check.entry:run"
MEMORY_RESULT_FILE = "memory.json"
# A blocked stdlib extension module -> the pure-Python module its users import in its place.
BLOCKED_FALLBACKS = {"_datetime": "_pydatetime", "_decimal": "_pydecimal", "_hashlib": "hashlib",
                     "_tracemalloc": "tracemalloc", "readline": "rlcompleter"}
# Objects of these types are CPython's own business when shared (small ints, interned strings).
_VALUE_TYPES = (str, bytes, int, float, complex, bool, type(None))
# Per-interpreter importlib objects, never the extension's.
_SKIPPED_ATTRIBUTES = ("__builtins__", "__loader__", "__spec__")


def _helper() -> Any:
    from pytest_subinterp import _subinterp

    return _subinterp


def _prepare(spec: dict[str, Any]) -> None:
    for entry in reversed(spec.get("path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    for name in spec.get("block_modules", ()):
        # CPython defects, see quirks.py: keep the pure-Python fallbacks in this interpreter.
        if name != spec["module"]:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def _not_found(name: str, exc: BaseException) -> bool:
    """True when `exc` says that `name` itself (or a parent package) does not exist."""
    missing = getattr(exc, "name", None)
    return isinstance(exc, ModuleNotFoundError) and bool(missing) and (
        name == missing or name.startswith(f"{missing}.")
    )


def describe(module: Any) -> dict[str, Any]:
    """How the module was built: init kind, declared slots, file, METH_NOARGS names."""
    helper = _helper()
    path = getattr(module, "__file__", None)
    slots = helper.module_slots(module)
    if slots is None:
        if path and path.endswith(_extension_suffixes()):
            # Multi-phase modules always keep their def; a legacy interpreter's copy of a
            # single-phase module is a plain module filled from CPython's saved dict (m_copy).
            init = "single-phase"
        else:
            init = "python" if path else "no PyModuleDef"
        slots = {"multi_phase": None, "multiple_interpreters": None, "gil": None, "noargs": []}
    else:
        init = "multi-phase" if slots["multi_phase"] else "single-phase"
    return {"init": init, "path": path, "slots": slots}


def _extension_suffixes() -> tuple[str, ...]:
    from importlib import machinery

    return tuple(machinery.EXTENSION_SUFFIXES)


def _import_once(spec: dict[str, Any]) -> dict[str, Any]:
    name = spec["module"]
    helper = _helper()
    helper.set_phase("import")
    before = set(sys.modules)
    try:
        module = importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 - every outcome is reported
        return {
            "imported": False,
            "not_found": _not_found(name, exc),
            "error_type": type(exc).__name__,
            "error": str(exc),
            "traceback": traceback.format_exc(),
            # The extension refused: the file advice.py reads for the fix in its generator's terms.
            "path": getattr(exc, "path", None),
        }
    out: dict[str, Any] = {"imported": True, **describe(module)}
    # The stdlib modules this import wanted but pytest-subinterp blocked (quirks.py): their
    # pure-Python replacement was imported instead.
    new = set(sys.modules) - before
    out["blocked_used"] = [blocked for blocked in spec.get("block_modules", ())
                           if BLOCKED_FALLBACKS.get(blocked) in new]
    if out["init"] == "single-phase":
        helper.breadcrumb(f"single-phase {name}")  # quirks.py: CPython's own crashes at end
    return out


def _is_cpython_static(obj: Any) -> bool:
    """True for objects CPython itself shares between interpreters (immortal or static)."""
    if compat.is_immortal(obj):
        return True
    if isinstance(obj, _VALUE_TYPES):
        return True
    if isinstance(obj, (tuple, frozenset)) and not obj:
        return True
    if isinstance(obj, type):
        return obj.__module__ == "builtins" and not obj.__flags__ & (1 << 9)  # static builtin type
    return obj is Ellipsis or obj is NotImplemented


def probe_objects(module: Any, getters: list[str]) -> dict[str, Any]:
    """Objects reachable from the module: attributes, their types, results of its getters."""
    found: dict[str, Any] = {}
    for key, value in list(vars(module).items()):
        if key in _SKIPPED_ATTRIBUTES:
            continue
        found[key] = value
        found[f"type({key})"] = type(value)
    for name in getters:
        function = getattr(module, name, None)
        if not callable(function):
            continue
        try:
            found[f"{name}()"] = function()
        except Exception:  # noqa: BLE001,S112 - a getter that fails tells nothing about sharing
            continue
    return found


def _threads(spec: dict[str, Any]) -> dict[str, Any]:
    name = spec["module"]
    helper = _helper()

    def import_it(thread: int, round_: int) -> str | None:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - the record carries it
            return traceback.format_exc()
        return None

    calls = helper.call_point(import_it)
    out: dict[str, Any] = {"calls": calls, "ids": {}}
    module = sys.modules.get(name)
    kept: dict[str, Any] = {}
    if module is not None:
        info = describe(module)
        if info["init"] == "single-phase":
            helper.breadcrumb(f"single-phase {name}")
        getters = [n for n in info["slots"]["noargs"] if n.startswith("get")] if spec.get("getters") else []
        kept = probe_objects(module, getters)
        out["ids"] = {
            label: [id(obj), type(obj).__qualname__]
            for label, obj in kept.items()
            if not _is_cpython_static(obj)
        }
    # Second rendezvous: every interpreter holds its objects (`kept`) until all have listed
    # theirs, so equal ids mean one object seen from two interpreters, not a reused address.
    helper.call_point(None)
    del kept
    helper.set_phase("finish")
    return out


def run(spec_json: str, index: int) -> str:
    """Battery entry point called by the C helper in interpreter `index`; returns JSON."""
    spec = json.loads(spec_json)
    _prepare(spec)
    # The plugin's recorder: refusals a package swallows (its pure-Python fallback) are reported,
    # and loads/refusals leave the breadcrumbs a crash is attributed by.
    from pytest_subinterp.inner import RefusalRecorder, note_loaded_extensions

    recorder = RefusalRecorder()
    recorder.install()
    note_loaded_extensions()
    mode = spec["mode"]
    if mode == "import":
        out = _import_once(spec)
    elif mode == "threads":
        out = _threads(spec)
    elif mode == "memory":
        out = _import_once(spec) if spec["module"] else {"imported": None}
        out.pop("traceback", None)
    else:
        raise ValueError(f"pytest_subinterp.check.entry.run: unknown mode {mode!r}")
    out["index"] = index
    out["refusals"] = recorder.refusals
    return json.dumps(out, default=repr)


# ---- memory child (main interpreter) ----


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc), else the peak (resource)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def measure(request: dict[str, Any]) -> dict[str, Any]:
    """Sequential batteries of one interpreter each, alternating a control (nothing imported)
    and the module, so that both see the same allocator state; the RSS growth of each lifetime
    is recorded.  One lifetime of each warms up first and is not counted."""
    helper = _helper()
    out: dict[str, Any] = {"control": {"growth": [], "errors": []},
                           "module": {"growth": [], "errors": []}}
    for round_ in range(request["rounds"] + 1):
        for series, module in (("control", ""), ("module", request["module"])):
            spec = {**request["spec"], "mode": "memory", "module": module}
            before = rss_bytes()
            result = helper.run_battery(config=request["config"], interpreters=1, threads=1, rounds=1,
                                        entry=ENTRY, arg=json.dumps(spec), timeout=float(request["timeout"]))
            growth = rss_bytes() - before
            slot = result["interpreters"][0]
            error = slot["entry_error"] or slot["create_error"] or ("hung" if result["hung"] else None)
            if error:
                out[series]["errors"].append(error)
            if round_ > 0:
                out[series]["growth"].append(growth)
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m pytest_subinterp.check.entry REQUEST.json``: the memory child."""
    from pytest_subinterp import child

    args = sys.argv[1:] if argv is None else argv
    request = json.loads(Path(args[0]).read_text())
    directory = Path(request["dir"])
    code = 0
    try:
        progress_fd = child.redirect_output(directory)
        helper = _helper()
        helper.install_crash_handler(progress_fd)
        try:
            import datetime  # noqa: F401 - 3.13.0: main must import _datetime first (quirk 5)
        except ImportError:
            pass
        data = measure(request)
        child.write_json_atomically(directory / MEMORY_RESULT_FILE, data)
    except BaseException:  # noqa: BLE001 - the controller reports it
        code = child.EXIT_INTERNAL_ERROR
        (directory / child.ERROR_FILE).write_text(traceback.format_exc())
    finally:
        os._exit(code)  # never run CPython's at-exit code after sub-interpreters (quirks.py)


if __name__ == "__main__":
    main()
