"""Extension modules with planted sub-interpreter defects: the pytest-subinterp demo.

Import the submodules you need (subinterp_demo._good, ...); this package imports none of them, so
that importing it loads no C code.
"""
