"""What a refused import means and how to fix it, in the terms of the tool that made the module.

A refusal is classified first (whose limit it is, and which of CPython's rules refused it), then
the module's *generator* (pybind11, nanobind, Cython, PyO3, cffi, mypyc or plain C/C++) is read
from its shared object, and the fix is given in that generator's own API, with the version that
has it.  Pure: no pytest, importable in the controller.  The refused extension is never imported
or loaded here (Cython and PyO3 modules load into one interpreter per process): its file is only
read as bytes.

Which message CPython gives (checked in CPython 3.12 and 3.13 sources):

* every refusal by CPython says ``module X does not support loading in subinterpreters``
  (``_PyImport_CheckSubinterpIncompatibleExtensionAllowed`` in Python/import.c), only in an
  interpreter whose config has ``check_multi_interp_extensions`` (isolated ones; legacy
  ``Py_NewInterpreter`` interpreters have it off, so they refuse nothing of this kind);
* single-phase modules: after their ``PyInit_*`` ran (3.12: ``_PyImport_LoadDynamicModuleWithSpec``
  in Python/importdl.c; 3.13: ``import_run_extension`` in Python/import.c);
* multi-phase modules: ``PyModule_FromDefAndSpec2`` (Objects/moduleobject.c), before
  ``Py_mod_create``: refused when ``Py_mod_multiple_interpreters`` is
  ``Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED`` (0), or is ``..._SUPPORTED`` (1) or missing (a
  missing slot means 1) in an interpreter with its own GIL.

So the message cannot tell these cases apart; the shared object can (see ``_inspect``).  The
other messages come from generators: Cython's "Interpreter change detected - this module can
only be loaded into one interpreter per process" (Cython's default build, no module state),
PyO3's "PyO3 modules do not yet support subinterpreters" (on 3.12+ PyO3 also declares the slot
as not supported, so isolated interpreters give CPython's message first) and "cannot load
module more than once per process" (e.g. NumPy 2).
"""

from __future__ import annotations

import dataclasses
import functools
import mmap
import os
import re
import sys
from dataclasses import dataclass

from pytest_subinterp import compat, messages, quirks

# ---- kinds of refusal ---------------------------------------------------------------------------

STDLIB = "stdlib"  # one of CPython's own modules: CPython's limit
SINGLE_PHASE = "single-phase"  # PyInit_* returns a module (PyModule_Create)
NO_SLOT = "multi-phase without slot"  # PyModuleDef_Init, no Py_mod_multiple_interpreters
NOT_SUPPORTED = "not supported"  # the slot says Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED
LEGACY_ONLY = "legacy only"  # the slot says Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED
ONE_PER_PROCESS = "one interpreter per process"  # the module's own check refused it
UNKNOWN = "unknown"  # CPython refused it, and its file could not be read

# ---- generators ---------------------------------------------------------------------------------

C = "C/C++"
PYBIND11 = "pybind11"
NANOBIND = "nanobind"
CYTHON = "Cython"
PYO3 = "PyO3"
CFFI = "cffi"
MYPYC = "mypyc"

# Strings each generator leaves in every module it builds (in .rodata or the dynamic symbol
# table, so they survive stripping), checked in this order: the first generator with a hit wins.
_MARKERS: tuple[tuple[str, tuple[bytes, ...]], ...] = (
    (PYO3, (b"pyo3_runtime", b"PyO3 modules")),  # PanicException's module; the interpreter check
    (NANOBIND, (b"__nb_internals", b"nb_bound_method")),  # internals capsule; its method type
    (PYBIND11, (b"__pybind11_internals", b"pybind11_object")),  # internals id; the base type
    (CYTHON, (b"cython_runtime", b"__pyx_capi__", b"_cython_3_")),  # traceback helper; C API
    (MYPYC, (b"__mypyc_attrs__", b"CPyStatic_", b"mypyc")),
    (CFFI, (b"_cffi_backend", b"_cffi_init")),  # every API-mode module loads _cffi_backend
)

_ONE_PER_PROCESS = re.compile(
    r"Interpreter change detected|more than once per process|do not yet support subinterpreters")

# {Py_mod_multiple_interpreters (3), (void *)0|1|2} in a static PyModuleDef_Slot array of a
# 64-bit little-endian object: int slot, 4 bytes padding, pointer value.
_MULTI_INTERP_SLOT = re.compile(rb"\x03\x00\x00\x00[\x00-\xff]{4}([\x00\x01\x02])\x00{7}")
_SLOT_SIZE = 16
_SLOT_END = b"\x00" * _SLOT_SIZE


@dataclass(frozen=True)
class SharedObject:
    """What an extension's file says about it (read as bytes, never loaded)."""

    generator: str = C
    multi_phase: bool | None = None  # None: could not tell
    slot: int | None = None  # the static Py_mod_multiple_interpreters value, if found


@functools.lru_cache(maxsize=256)
def _inspect_cached(path: str, _mtime_ns: int, _size: int) -> SharedObject:
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        generator = next((name for name, markers in _MARKERS
                          if any(data.find(marker) != -1 for marker in markers)), C)
        if data.find(b"PyModuleDef_Init\x00") != -1:
            multi_phase: bool | None = True
        elif data.find(b"PyModule_Create2\x00") != -1 or data.find(b"PyModule_Create\x00") != -1:
            multi_phase = False
        else:
            multi_phase = None
        slot = _static_slot(data) if multi_phase else None
    return SharedObject(generator, multi_phase, slot)


def _static_slot(data: mmap.mmap) -> int | None:
    """The value of a static ``{Py_mod_multiple_interpreters, v}`` entry: one that is 8-byte
    aligned and sits in a slot array (ids 1..4, ended by ``{0, NULL}`` within five entries).
    Slots filled in at run time (pybind11's init_slots) are not seen."""
    if sys.byteorder != "little" or sys.maxsize < 2**32:
        return None
    for match in _MULTI_INTERP_SLOT.finditer(data):
        start = match.start()
        if start % 8:
            continue
        for entry in range(start + _SLOT_SIZE, start + 6 * _SLOT_SIZE, _SLOT_SIZE):
            chunk = data[entry:entry + _SLOT_SIZE]
            if chunk == _SLOT_END:
                return match.group(1)[0]
            if len(chunk) < 4 or not 1 <= int.from_bytes(chunk[:4], "little") <= 4:
                break
    return None


def inspect(path: str | None) -> SharedObject | None:
    """Read ``path`` (an extension module's file) as bytes; None when it cannot be read.
    Cached per path, size and modification time."""
    if not path:
        return None
    try:
        stat = os.stat(path)
        return _inspect_cached(os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError):  # missing, unreadable, empty (mmap of 0 bytes)
        return None


# ---- advice -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advice:
    """A classified refusal: what kind, which generator, why, and the fix in its terms."""

    module: str
    config: str
    kind: str
    generator: str | None
    reason: str
    fix: str

    def message(self) -> str:
        """The user-facing 'import refused' line."""
        return messages.IMPORT_REFUSED.format(
            module=self.module, article=article(self.config), config=self.config,
            reason=self.reason, fix=self.fix)


def article(word: str) -> str:
    """'an' before a vowel ('an isolated'), else 'a' ('a legacy')."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def classify(message: str, path: str | None, shared: SharedObject | None) -> str:
    """The kind of refusal, from CPython's (or the generator's) message and the shared object."""
    if _ONE_PER_PROCESS.search(message):
        return ONE_PER_PROCESS
    if path and quirks.is_stdlib_path(path):
        return STDLIB
    if shared is None or shared.multi_phase is None:
        return UNKNOWN
    if not shared.multi_phase:
        return SINGLE_PHASE
    return {None: NO_SLOT, 0: NOT_SUPPORTED, 1: LEGACY_ONLY}.get(shared.slot, NO_SLOT)


def _generator_from_message(message: str) -> str | None:
    if "Interpreter change detected" in message:
        return CYTHON
    if "PyO3" in message:
        return PYO3
    return None


def advise(module: str, path: str | None, message: str, config: str) -> Advice:
    """Classify one refusal and give the fix that fits the module and its generator."""
    shared = inspect(path) if path and not quirks.is_stdlib_path(path) else None
    kind = classify(message, path, shared)
    generator = _generator_from_message(message) or (shared.generator if shared else None)
    if kind == STDLIB:
        return Advice(module, config, kind, None, messages.REFUSAL_REASON_STDLIB.format(
            version=compat.python_version()), messages.REFUSAL_FIX_STDLIB)
    if kind == ONE_PER_PROCESS:
        reason = messages.REFUSAL_REASON_ONE_PER_PROCESS.format(text=message.strip().rstrip("."))
    elif generator == PYBIND11 and kind == NO_SLOT:
        # pybind11 3.x always declares the slot, but fills its slot array at run time
        # (detail::init_slots), so the file does not show it: not_supported() by default, or
        # shared_gil(); both are refused by an isolated interpreter.
        kind, reason = NOT_SUPPORTED, messages.REFUSAL_REASON_PYBIND11
    else:
        reason = _REASONS[kind]
    return Advice(module, config, kind, generator, reason, _fix(kind, generator))


def refusal_message(module: str, config: str, reason_text: str, path: str | None = None,
                    quote: bool = False) -> str:
    """The 'import refused' message for one module, the one wording the plugin and ``check``
    share.  `reason_text` is CPython's ImportError; `path` the extension file (without it the
    advice is generic); `quote`: put CPython's own words into the message too (``check`` shows no
    traceback beside it; a one-interpreter-per-process reason already quotes them)."""
    found = advise(module, path, reason_text, config)
    if quote and found.kind != ONE_PER_PROCESS:
        said = messages.REFUSAL_CPYTHON_SAYS.format(text=reason_text)
        found = dataclasses.replace(found, reason=f"{said}; {found.reason}")
    return found.message()


_REASONS = {
    SINGLE_PHASE: messages.REFUSAL_REASON_ISOLATED,
    UNKNOWN: messages.REFUSAL_REASON_ISOLATED,
    NO_SLOT: messages.REFUSAL_REASON_NO_SLOT,
    NOT_SUPPORTED: messages.REFUSAL_REASON_NOT_SUPPORTED,
    LEGACY_ONLY: messages.REFUSAL_REASON_LEGACY_ONLY,
}


def _fix(kind: str, generator: str | None) -> str:
    """The fix for one kind of refusal in the generator's own terms."""
    if generator == PYBIND11:
        # pybind11 2.x: single-phase (PyModule_Create2); 3.0 builds multi-phase modules whose
        # slot defaults to not_supported (pybind11.h: multi_interp_slot()).
        return messages.REFUSAL_FIX_PYBIND11_OLD if kind == SINGLE_PHASE else messages.REFUSAL_FIX_PYBIND11
    if generator == CYTHON:
        return messages.REFUSAL_FIX_CYTHON
    if generator == NANOBIND:
        return messages.REFUSAL_FIX_NANOBIND
    if generator == PYO3:
        return messages.REFUSAL_FIX_PYO3
    if generator == CFFI:
        return messages.REFUSAL_FIX_CFFI
    if generator == MYPYC:
        return messages.REFUSAL_FIX_MYPYC
    if kind == ONE_PER_PROCESS:
        return messages.REFUSAL_FIX_ONE_PER_PROCESS
    if kind in (NO_SLOT, NOT_SUPPORTED, LEGACY_ONLY):
        return messages.REFUSAL_FIX_C_SLOT
    return messages.REFUSAL_FIX_ISOLATED
