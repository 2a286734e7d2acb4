"""Build the C helper; metadata lives in pyproject.toml.

The helper uses the full (non-limited) C API of the Python that builds it, so it is built once per
Python version (no abi3 wheel): sub-interpreter creation and thread-state calls are not in the
limited API.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pytest_subinterp._subinterp",
            # One file per job; csrc/subinterp.h says which.
            sources=[
                "csrc/module.c",
                "csrc/threadstate.c",
                "csrc/interp.c",
                "csrc/battery.c",
                "csrc/results.c",
                "csrc/diagnostics.c",
                "csrc/templates.c",
                "csrc/introspect.c",
            ],
            depends=["csrc/subinterp.h"],
            extra_compile_args=["-Wall", "-Wextra"],
        )
    ]
)
