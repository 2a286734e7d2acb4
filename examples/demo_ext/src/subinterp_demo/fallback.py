"""The classic silent pure-Python fallback: use the C module if it imports, else Python.

subinterp_demo._fallback is single-phase, so an isolated sub-interpreter refuses it and this module
quietly defines add() in Python instead: tests still pass, but the C code never ran.
"""

try:
    from subinterp_demo._fallback import add
except ImportError:

    def add(a, b):
        """Pure-Python stand-in for subinterp_demo._fallback.add."""
        return a + b
