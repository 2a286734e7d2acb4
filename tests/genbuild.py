"""Build tiny modules with real generators (tests/genmods): pybind11, Cython, and plain-C
multi-phase variants of the Py_mod_multiple_interpreters slot.

Used by the session fixture ``genmods`` (tests/conftest.py).  Direct compiler calls as in
extbuild.py (no setuptools), all modules in parallel, each skipped when its tool is missing:
``build_all`` returns the built paths and, for the others, why they were not built.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import sysconfig
import uuid

import extbuild

GENMODS_DIR = pathlib.Path(__file__).resolve().parent / "genmods"

# name -> C macros of tests/genmods/multiphase_slot.c
SLOT_VARIANTS = {
    "noslot_ext": {},
    "legacyonly_ext": {"SLOT_VALUE": "Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED"},
    "notsupported_ext": {"SLOT_VALUE": "Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED"},
}


def _cxx() -> list[str] | None:
    command = shlex.split(os.environ.get("CXX") or "c++")
    return command if shutil.which(command[0]) else None


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"genbuild: {what} failed with exit code {result.returncode}\n"
                           f"$ {shlex.join(command)}\n{result.stdout}")


def _compile(command: list[str], source: pathlib.Path, output: pathlib.Path) -> pathlib.Path:
    """Compile into a private temporary name, then os.replace() it onto ``output`` (atomic)."""
    if output.exists() and output.stat().st_mtime_ns >= source.stat().st_mtime_ns:
        return output
    temporary = output.with_name(f".{output.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        _run([*command, "-o", str(temporary)], f"compiling {source.name}")
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return output


def _c_command(source: pathlib.Path, defines: dict[str, str]) -> list[str]:
    command = extbuild.compile_command(source, pathlib.Path("unused"))[:-2]  # drop "-o unused"
    return [*command, *(f"-D{key}={value}" for key, value in defines.items())]


def build_slot_variant(name: str, out_dir: pathlib.Path) -> pathlib.Path:
    """tests/genmods/multiphase_slot.c as module ``name`` (see SLOT_VARIANTS)."""
    source = GENMODS_DIR / "multiphase_slot.c"
    defines = {"MOD_NAME": name, **SLOT_VARIANTS[name]}
    return _compile(_c_command(source, defines), source, out_dir / f"{name}{extbuild.EXT_SUFFIX}")


def build_pybind11(out_dir: pathlib.Path) -> pathlib.Path:
    """tests/genmods/pb_default.cpp with the installed pybind11."""
    import pybind11

    source = GENMODS_DIR / "pb_default.cpp"
    command = [*(_cxx() or ["c++"]), "-shared", "-fPIC", "-O0", "-std=c++17",
               f"-I{pybind11.get_include()}",
               *(f"-I{path}" for path in sorted({sysconfig.get_paths()["include"],
                                                  sysconfig.get_paths()["platinclude"]})),
               *(["-undefined", "dynamic_lookup"] if sys.platform == "darwin" else []),
               str(source)]
    return _compile(command, source, out_dir / f"pb_default{extbuild.EXT_SUFFIX}")


def build_cython(out_dir: pathlib.Path) -> pathlib.Path:
    """tests/genmods/cy_default.pyx: cythonized (default directives) and compiled."""
    source = GENMODS_DIR / "cy_default.pyx"
    generated = out_dir / "cy_default.c"
    if not generated.exists() or generated.stat().st_mtime_ns < source.stat().st_mtime_ns:
        temporary = out_dir / f".cy_default.{os.getpid()}.{uuid.uuid4().hex}.c"
        try:
            _run([sys.executable, "-m", "cython", "-3", str(source), "-o", str(temporary)], "cythonize")
            os.replace(temporary, generated)
        finally:
            temporary.unlink(missing_ok=True)
    command = [*_c_command(generated, {})]
    command[command.index("-O1")] = "-O0"  # the generated C is large; speed over code
    return _compile(command, generated, out_dir / f"cy_default{extbuild.EXT_SUFFIX}")


def missing_tools() -> dict[str, str]:
    """Module name -> why it cannot be built here."""
    missing = {}
    if importlib.util.find_spec("pybind11") is None:
        missing["pb_default"] = "pybind11 is not installed (pip install pybind11)"
    elif _cxx() is None:
        missing["pb_default"] = "no C++ compiler (c++ or $CXX)"
    if importlib.util.find_spec("Cython") is None:
        missing["cy_default"] = "Cython is not installed (pip install cython)"
    return missing


def build_all(out_dir: pathlib.Path) -> tuple[dict[str, pathlib.Path], dict[str, str]]:
    """Build every generator module into ``out_dir``: (built name -> path, skipped name -> why)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    skipped = missing_tools()
    jobs = {name: (build_slot_variant, name, out_dir) for name in SLOT_VARIANTS}
    if "pb_default" not in skipped:
        jobs["pb_default"] = (build_pybind11, out_dir)
    if "cy_default" not in skipped:
        jobs["cy_default"] = (build_cython, out_dir)
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {name: pool.submit(job[0], *job[1:]) for name, job in jobs.items()}
        built = {name: future.result() for name, future in futures.items()}
    return built, skipped
