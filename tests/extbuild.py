"""Compile the test extension modules (tests/extmods/*.c) for the running Python.

A direct compiler call, not setuptools, so that fixtures stay fast.  Safe to call from several
pytest-xdist workers at once: each call compiles to a private temporary name in the output
directory and then os.replace()s it onto the final name, which is atomic.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import shlex
import subprocess
import sys
import sysconfig
import uuid

EXTMODS_DIR = pathlib.Path(__file__).resolve().parent / "extmods"
EXT_SUFFIX: str = sysconfig.get_config_var("EXT_SUFFIX")
# -pthread: gilstate_ext starts a pthread (a no-op on glibc >= 2.34, needed on older ones).
CFLAGS = ("-shared", "-fPIC", "-O1", "-g", "-pthread", "-Wall", "-Wextra")
# What malloc_leak_ext leaves behind per interpreter lifetime beyond a correct module's lifetime,
# in KiB: its 128 KiB block plus malloc's chunk header, within the few KiB of CPython's own noise
# (126.0-130.3 KiB seen from the plugin's figure, 3.12.1 and 3.13.0).  test_extmods measures it
# with mallinfo2, test_leaks reads the plugin's figure.
MALLOC_LEAK_EXCESS_KIB = (120, 144)


def compiler() -> list[str]:
    """The C compiler command: $CC if set (it may carry flags), else ``cc``."""
    return shlex.split(os.environ.get("CC") or "cc")


def compile_command(source: pathlib.Path, output: pathlib.Path) -> list[str]:
    """The command line that compiles ``source`` into the extension module ``output``."""
    includes = {sysconfig.get_paths()["include"], sysconfig.get_paths()["platinclude"]}
    command = [*compiler(), *CFLAGS]
    for include in sorted(includes):
        command.append(f"-I{include}")
    if sys.platform == "darwin":
        # Python's symbols come from the interpreter that loads the module, not from a library.
        command += ["-undefined", "dynamic_lookup"]
    return [*command, str(source), "-o", str(output)]


def build_extension(source: pathlib.Path, out_dir: pathlib.Path) -> pathlib.Path:
    """Compile one .c file into ``<out_dir>/<stem><EXT_SUFFIX>``; skip it when that is newer."""
    source = pathlib.Path(source)
    out_dir = pathlib.Path(out_dir)
    output = out_dir / f"{source.stem}{EXT_SUFFIX}"
    if output.exists() and output.stat().st_mtime_ns >= source.stat().st_mtime_ns:
        return output
    out_dir.mkdir(parents=True, exist_ok=True)
    temporary = out_dir / f".{source.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp{EXT_SUFFIX}"
    command = compile_command(source, temporary)
    try:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"build_extension: compiling {source} failed with exit code {result.returncode}\n"
                f"$ {shlex.join(command)}\n{result.stdout}"
            )
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return output


def build_all(out_dir: pathlib.Path) -> pathlib.Path:
    """Build every tests/extmods/*.c into ``out_dir`` (in parallel) and return ``out_dir``."""
    sources = sorted(EXTMODS_DIR.glob("*.c"))
    if not sources:
        raise RuntimeError(f"build_all: no C sources found in {EXTMODS_DIR}")
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(sources), os.cpu_count() or 1)) as pool:
        for future in [pool.submit(build_extension, source, out_dir) for source in sources]:
            future.result()
    return pathlib.Path(out_dir)
