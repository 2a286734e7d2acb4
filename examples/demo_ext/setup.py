"""Build the demo's C modules; metadata lives in pyproject.toml.

Each C source is a byte-identical copy of a fixture module in the pytest-subinterp repository
(tests/extmods/*.c, checked by tests/test_extmods.py); EXT_NAME / EXT_QUALNAME give it its module
name here.  _fallback.c is a copy of the single-phase module, used by subinterp_demo.fallback.
"""

from setuptools import Extension, setup

# module name inside the package -> C source under src/subinterp_demo/
MODULES = ["_good", "_single_phase", "_static_state", "_crash_on_end", "_gilstate", "_fallback"]


def extension(name: str) -> Extension:
    return Extension(
        f"subinterp_demo.{name}",
        sources=[f"src/subinterp_demo/{name}.c"],
        define_macros=[("EXT_NAME", name), ("EXT_QUALNAME", f'"subinterp_demo.{name}"')],
        extra_compile_args=["-pthread"],  # _gilstate starts a pthread
        extra_link_args=["-pthread"],
    )


setup(ext_modules=[extension(name) for name in MODULES])
