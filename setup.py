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
            sources=["csrc/_subinterp.c"],
            extra_compile_args=["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
        )
    ]
)
