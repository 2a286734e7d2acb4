"""The user's plugins inside the sub-interpreters (plugins.py), without any third-party plugin: a
local plugin module given by -p that refuses to load in a sub-interpreter, as a plugin with a
compiled core does (hypothesis's 'module hypothesis._native does not support loading in
subinterpreters').  The real plugins are in tests/compat/."""

from __future__ import annotations

import pytest

from pytest_subinterp import messages

pytestmark = pytest.mark.e2e

REFUSING_PLUGIN = """
import pytest

def _in_main_interpreter():
    try:
        import _interpreters as interpreters  # 3.13
    except ImportError:
        import _xxsubinterpreters as interpreters  # 3.10 - 3.12
    current, main = interpreters.get_current(), interpreters.get_main()
    if isinstance(current, tuple):
        return current[0] == main[0]
    return current == main

if not _in_main_interpreter():
    raise ImportError("module refusing_plugin._core does not support loading in subinterpreters")

@pytest.fixture
def refusing_fixture():
    return 42
"""

TESTS = """
import pytest

@pytest.mark.subinterp(leaks="off", threads=2)
def test_does_not_use_it():
    pass

@pytest.mark.subinterp(leaks="off", threads=2)
def test_uses_its_fixture(refusing_fixture):
    assert refusing_fixture == 42

def test_unmarked_uses_it(refusing_fixture):
    assert refusing_fixture == 42
"""


def test_a_plugin_that_cannot_load_inside_is_left_out(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """It breaks no test that does not use it; the header names it and why; a marked test that
    uses its fixture fails naming the plugin, the reason and what to do."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makepyfile(refusing_plugin=REFUSING_PLUGIN, test_it=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "refusing_plugin")
    result.assert_outcomes(passed=2, errors=1)  # reported as a failed setup
    header = messages.PLUGINS_LEFT_OUT_HEADER.format(plugins="refusing_plugin (ImportError: module "
                                                     "refusing_plugin._core does not support loading in "
                                                     "subinterpreters) *")
    result.stdout.fnmatch_lines([header])
    result.stdout.fnmatch_lines(["*'test_it.py::test_uses_its_fixture' needs the plugin 'refusing_plugin' "
                                 "(from refusing_plugin; fixture 'refusing_fixture'), which cannot load in *"
                                 "sub-interpreters: ImportError: module refusing_plugin._core does not *"])
    result.stdout.no_fnmatch_line("*inner pytest session failed*")


def test_plugins_that_load_are_kept_and_named_nowhere(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A -p plugin that loads inside is passed on once: its fixture works in the battery."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makepyfile(good_plugin="import pytest\n@pytest.fixture\ndef good():\n    return 1\n",
                        test_it="""
        import pytest

        @pytest.mark.subinterp(leaks="off", threads=2)
        def test_uses_it(good):
            assert good == 1
        """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "good_plugin", "-p", "good_plugin")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*left out*")


def test_autoload_disabled_with_p_subinterp(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p subinterp: the inner sessions never load the
    battery-running plugin (it used to run its own protocol inside: every test hung in import)."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_it="""
        import pytest

        @pytest.mark.subinterp(leaks="off", threads=2, timeout=20)
        def test_it():
            pass
        """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "subinterp", "-p", "pytester")
    result.assert_outcomes(passed=1)


def test_under_xdist_the_controller_names_the_plugins_its_workers_left_out(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """-n 2: a worker's header line is never shown, so the verdict summary carries it, once."""
    pytest.importorskip("xdist")
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))  # the workers import the -p plugin
    pytester.makepyfile(refusing_plugin=REFUSING_PLUGIN, test_it=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "refusing_plugin", "-n", "2")
    result.assert_outcomes(passed=2, errors=1)
    line = messages.PLUGINS_LEFT_OUT_HEADER.format(plugins="refusing_plugin (ImportError: module refusing_plugin."
                                                   "_core does not support loading in subinterpreters) *")
    result.stdout.fnmatch_lines(["*= subinterp verdicts =*", line])
    assert sum(1 for text in result.stdout.lines if text.startswith("subinterp: plugins left out")) == 1


def test_entry_point_named_like_a_stdlib_module(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry-point plugin whose name is also a stdlib module (pytest-asyncio's is 'asyncio') is
    loaded inside under its name without that module being assertion-rewritten: ``-p NAME`` marks
    NAME for rewriting, and the rewritten stdlib asyncio made every test awaiting a future look
    like a 1.2-1.6 MiB memory leak per interpreter lifetime (innerplugins.register_shadowing_plugins)."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    dist = pytester.mkdir("shadowplug-1.0.dist-info")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shadowplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\nstatistics = shadowplug_statistics\n")
    pytester.makepyfile(shadowplug_statistics="""
        import pytest

        @pytest.fixture
        def shadow():
            return 7
        """, test_it="""
        import pytest

        @pytest.mark.subinterp(leaks="off", threads=1, interpreters=1)
        def test_it(shadow, request):
            import statistics
            assert shadow == 7
            assert request.config.pluginmanager.has_plugin("statistics")
            assert type(statistics.__loader__).__name__ == "SourceFileLoader"
        """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
