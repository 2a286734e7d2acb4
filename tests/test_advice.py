"""Refusal advice fits the module: its kind of refusal and its generator (advice.py).

Unit tests read real shared objects built by real generators (tests/genmods, built once per
session by the ``genmods`` fixture: pybind11, Cython and plain-C slot variants; tests/extmods for
single-phase C) and never import them here.  End-to-end tests check the whole message a user
sees when a marked test imports such a module in an isolated interpreter.
"""

from __future__ import annotations

import pathlib
import sys

import pytest
from conftest import needs_isolated

from pytest_subinterp import advice, compat, messages

CPYTHON_REFUSAL = "module {} does not support loading in subinterpreters"
CYTHON_ONE = "Interpreter change detected - this module can only be loaded into one interpreter per process."
PYO3_ONE = "PyO3 modules do not yet support subinterpreters, see https://github.com/PyO3/pyo3/issues/576"

GenMods = tuple[dict[str, pathlib.Path], dict[str, str]]


def built(genmods: GenMods, name: str) -> pathlib.Path:
    """The built module ``name``, or skip (with the reason) where its tool is missing."""
    paths, skipped = genmods
    if name in skipped:
        pytest.skip(skipped[name])
    return paths[name]


def single_phase(extmods_dir: pathlib.Path) -> pathlib.Path:
    return next(extmods_dir.glob("single_phase_ext.*"))


# ---- the shared object: generator, init style, slot ----------------------------------------------

@pytest.mark.parametrize(("name", "generator", "multi_phase", "slot"), [
    ("noslot_ext", advice.C, True, None),
    ("legacyonly_ext", advice.C, True, 1),
    ("notsupported_ext", advice.C, True, 0),
    ("pb_default", advice.PYBIND11, True, None),  # pybind11 fills its slots at run time
    ("cy_default", advice.CYTHON, True, None),  # default build: no module state, no slot
])
def test_inspect_generator_modules(genmods: GenMods, name: str, generator: str,
                                   multi_phase: bool, slot: int | None) -> None:
    shared = advice.inspect(str(built(genmods, name)))
    if slot is not None and sys.version_info < (3, 12):
        slot = None  # the slot exists from 3.12 (multiphase_slot.c leaves it out before)
    assert shared == advice.SharedObject(generator, multi_phase, slot)


def test_inspect_plain_c(extmods_dir: pathlib.Path) -> None:
    assert advice.inspect(str(single_phase(extmods_dir))) == advice.SharedObject(advice.C, False, None)
    good = advice.inspect(str(next(extmods_dir.glob("good_ext.*"))))
    assert good is not None and good.multi_phase
    assert good.slot == (2 if sys.version_info >= (3, 12) else None)


def test_inspect_never_loads_the_module(genmods: GenMods) -> None:
    """Reading the file must not import it: a Cython module loads into one interpreter per
    process, so loading it in the controller would make every sub-interpreter refuse it."""
    advice.inspect(str(built(genmods, "cy_default")))
    assert "cy_default" not in sys.modules


def test_inspect_unreadable(tmp_path: pathlib.Path) -> None:
    assert advice.inspect(None) is None
    assert advice.inspect(str(tmp_path / "missing.so")) is None
    (tmp_path / "empty.so").write_bytes(b"")
    assert advice.inspect(str(tmp_path / "empty.so")) is None


def test_inspect_is_cached(genmods: GenMods) -> None:
    path = str(built(genmods, "noslot_ext"))
    advice.inspect(path)
    hits = advice._inspect_cached.cache_info().hits
    advice.inspect(path)
    assert advice._inspect_cached.cache_info().hits == hits + 1


# ---- classification and the fix -------------------------------------------------------------------

@pytest.mark.parametrize(("name", "kind", "reason", "fix"), [
    ("noslot_ext", advice.NO_SLOT, messages.REFUSAL_REASON_NO_SLOT, messages.REFUSAL_FIX_C_SLOT),
    ("legacyonly_ext", advice.LEGACY_ONLY, messages.REFUSAL_REASON_LEGACY_ONLY, messages.REFUSAL_FIX_C_SLOT),
    ("notsupported_ext", advice.NOT_SUPPORTED, messages.REFUSAL_REASON_NOT_SUPPORTED, messages.REFUSAL_FIX_C_SLOT),
    ("pb_default", advice.NOT_SUPPORTED, messages.REFUSAL_REASON_PYBIND11, messages.REFUSAL_FIX_PYBIND11),
    ("cy_default", advice.NO_SLOT, messages.REFUSAL_REASON_NO_SLOT, messages.REFUSAL_FIX_CYTHON),
])
def test_advise_generator_modules(genmods: GenMods, name: str, kind: str, reason: str, fix: str) -> None:
    if sys.version_info < (3, 12) and name != "pb_default" and kind != advice.NO_SLOT:
        pytest.skip("the Py_mod_multiple_interpreters slot exists from CPython 3.12")
    result = advice.advise(name, str(built(genmods, name)), CPYTHON_REFUSAL.format(name), "isolated")
    assert (result.kind, result.reason, result.fix) == (kind, reason, fix)
    assert result.message() == (f"module '{name}' cannot be imported in an isolated sub-interpreter: "
                                f"{reason}; {fix}")


def test_advise_single_phase_c_keeps_the_porting_advice(extmods_dir: pathlib.Path) -> None:
    result = advice.advise("single_phase_ext", str(single_phase(extmods_dir)),
                           CPYTHON_REFUSAL.format("single_phase_ext"), "isolated")
    assert (result.kind, result.generator) == (advice.SINGLE_PHASE, advice.C)
    assert result.fix == messages.REFUSAL_FIX_ISOLATED


def test_advise_stdlib_is_cpythons_limit() -> None:
    testsinglephase = pytest.importorskip("_testsinglephase")
    result = advice.advise("_testsinglephase", testsinglephase.__file__,
                           CPYTHON_REFUSAL.format("_testsinglephase"), "isolated")
    assert result.kind == advice.STDLIB and result.generator is None
    assert result.reason == messages.REFUSAL_REASON_STDLIB.format(version=compat.python_version())
    assert "port it" not in result.message()


def test_advise_one_per_process_by_message(genmods: GenMods) -> None:
    cython = advice.advise("cy_default", str(built(genmods, "cy_default")), CYTHON_ONE, "legacy")
    assert (cython.kind, cython.generator, cython.fix) == (advice.ONE_PER_PROCESS, advice.CYTHON,
                                                           messages.REFUSAL_FIX_CYTHON)
    assert cython.message().startswith("module 'cy_default' cannot be imported in a legacy sub-interpreter: "
                                       'it loads into one interpreter per process ("Interpreter change detected')
    pyo3 = advice.advise("rs", None, PYO3_ONE, "legacy")  # known from the message alone
    assert (pyo3.kind, pyo3.generator, pyo3.fix) == (advice.ONE_PER_PROCESS, advice.PYO3, messages.REFUSAL_FIX_PYO3)
    other = advice.advise("np", None, "cannot load module more than once per process", "isolated")
    assert (other.kind, other.generator, other.fix) == (advice.ONE_PER_PROCESS, None,
                                                        messages.REFUSAL_FIX_ONE_PER_PROCESS)


def test_advise_without_a_file_is_generic() -> None:
    result = advice.advise("m", None, CPYTHON_REFUSAL.format("m"), "isolated")
    assert (result.kind, result.reason, result.fix) == (advice.UNKNOWN, messages.REFUSAL_REASON_ISOLATED,
                                                        messages.REFUSAL_FIX_ISOLATED)


@pytest.mark.parametrize(("marker", "generator", "fix"), [
    (b"pyo3_runtime.PanicException", advice.PYO3, messages.REFUSAL_FIX_PYO3),
    (b"__nb_internals", advice.NANOBIND, messages.REFUSAL_FIX_NANOBIND),
    (b"_cffi_backend", advice.CFFI, messages.REFUSAL_FIX_CFFI),
    (b"__mypyc_attrs__", advice.MYPYC, messages.REFUSAL_FIX_MYPYC),
])
def test_generators_without_a_build_tool_here(tmp_path: pathlib.Path, marker: bytes, generator: str,
                                              fix: str) -> None:
    """PyO3, nanobind, cffi and mypyc are not installed in the test venv: their marker strings
    in a synthetic file (with a multi-phase entry point) stand for their modules."""
    path = tmp_path / "ext.so"
    path.write_bytes(b"\x7fELF" + b"\x00" * 60 + b"PyModuleDef_Init\x00" + marker + b"\x00")
    result = advice.advise("ext", str(path), CPYTHON_REFUSAL.format("ext"), "isolated")
    assert (result.generator, result.fix) == (generator, fix)


def test_article() -> None:
    assert [advice.article(c) for c in ("isolated", "legacy")] == ["an", "a"]


# ---- end to end: the message a user sees ---------------------------------------------------------

def run_refused(pytester: pytest.Pytester, module_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
                module: str) -> pytest.RunResult:
    """A marked test that imports ``module`` in one isolated interpreter (one: CPython 3.12.1
    can abort when a second one imports a module another refused, CPYTHON-QUIRKS.md crash 1)."""
    monkeypatch.setenv("PYTHONPATH", str(module_dir))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.subinterp(config="isolated", interpreters=1, threads=1)
        def test_imports():
            import {module}
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-leaks=off")
    result.assert_outcomes(failed=1)
    return result


def expected_line(module: str, reason: str, fix: str) -> str:
    text = messages.IMPORT_REFUSED.format(module=module, article="an", config="isolated", reason=reason, fix=fix)
    return "*" + text.replace("[", "[[]") + "*"


@needs_isolated
def test_e2e_pybind11(pytester: pytest.Pytester, genmods: GenMods, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_refused(pytester, built(genmods, "pb_default").parent, monkeypatch, "pb_default")
    result.stdout.fnmatch_lines([expected_line("pb_default", messages.REFUSAL_REASON_PYBIND11,
                                               messages.REFUSAL_FIX_PYBIND11)])
    result.stdout.no_fnmatch_line("*port it to multi-phase init*")


@needs_isolated
def test_e2e_cython(pytester: pytest.Pytester, genmods: GenMods, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_refused(pytester, built(genmods, "cy_default").parent, monkeypatch, "cy_default")
    result.stdout.fnmatch_lines([expected_line("cy_default", messages.REFUSAL_REASON_NO_SLOT,
                                               messages.REFUSAL_FIX_CYTHON)])


@needs_isolated
def test_e2e_c_slot_legacy_only(pytester: pytest.Pytester, genmods: GenMods,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_refused(pytester, built(genmods, "legacyonly_ext").parent, monkeypatch, "legacyonly_ext")
    result.stdout.fnmatch_lines([expected_line("legacyonly_ext", messages.REFUSAL_REASON_LEGACY_ONLY,
                                               messages.REFUSAL_FIX_C_SLOT)])


@needs_isolated
def test_e2e_single_phase_c(pytester: pytest.Pytester, extmods_dir: pathlib.Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_refused(pytester, extmods_dir, monkeypatch, "single_phase_ext")
    result.stdout.fnmatch_lines([expected_line("single_phase_ext", messages.REFUSAL_REASON_ISOLATED,
                                               messages.REFUSAL_FIX_ISOLATED)])


@needs_isolated
def test_e2e_stdlib(pytester: pytest.Pytester, extmods_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("_testsinglephase")
    result = run_refused(pytester, extmods_dir, monkeypatch, "_testsinglephase")
    result.stdout.fnmatch_lines([expected_line(
        "_testsinglephase", messages.REFUSAL_REASON_STDLIB.format(version=compat.python_version()),
        messages.REFUSAL_FIX_STDLIB)])
    result.stdout.no_fnmatch_line("*port it to multi-phase init*")
