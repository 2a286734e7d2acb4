"""pytest-subinterp: run tests in fresh CPython sub-interpreters from native threads."""

__version__ = "0.1.0"
__all__ = ["__version__"]
