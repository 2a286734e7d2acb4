"""pytest-subinterp: run tests in fresh CPython sub-interpreters from native threads."""

__version__ = "0.1.0"
__all__ = ["MARKER_LINE", "MARKER_NAME", "__version__"]

# The marker, here rather than in markers.py: every pytest run needs these two (the plugin
# registers the marker and looks for it on each test); markers.py, which checks a marker's
# arguments, is imported only when a test carries one.
MARKER_NAME = "subinterp"
MARKER_LINE = (
    "subinterp(threads=4, interpreters=2, config='isolated', rounds=1, timeout=120, leaks=None, scope=None): "
    "run this test in fresh sub-interpreters from native threads (pytest-subinterp)"
)
