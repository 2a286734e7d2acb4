"""Each planted defect of the compiled fixture modules (tests/extmods) is caught with its message.

The modules are built once per session (``extmods_dir``); ``subinterp_pytester`` runs pytest in a
subprocess whose sub-interpreters can import them.  Controls (``no_fnmatch_line``) check that a
correct module, and stdlib modules that CPython itself refuses, raise no alarm.
"""

from __future__ import annotations

import sys

import pytest
from conftest import HAS_ISOLATED, needs_isolated

from pytest_subinterp import messages

DEFAULT_CONFIG = "isolated" if HAS_ISOLATED else "legacy"
REFUSED_ISOLATED = messages.IMPORT_REFUSED.format(
    module="single_phase_ext", article="an", config="isolated", reason=messages.REFUSAL_REASON_ISOLATED,
    fix=messages.REFUSAL_FIX_ISOLATED,
)
# A pure-Python fallback package, as real packages write them.
FALLBACK_PACKAGE = """
    try:
        from single_phase_ext import add
    except ImportError:
        def add(a, b):
            return a + b
"""


def fallback_line(config: str = "isolated") -> str:
    """messages.FALLBACK_USED for single_phase_ext, wildcards for interpreter and CPython's text."""
    return "*" + messages.FALLBACK_USED.format(module="single_phase_ext", config=config, interp="*",
                                               message="*") + "*"


def no_alarm(result: pytest.RunResult) -> None:
    """Neither a refusal nor a fallback nor a crash was reported."""
    for pattern in ("*cannot be imported in an*", "*SubinterpFallbackWarning*", "*was refused in*",
                    "*crashed*"):
        result.stdout.no_fnmatch_line(pattern)


# ---- good_ext: the control -----------------------------------------------------------------

def test_good_module_passes_in_every_config(subinterp_pytester: pytest.Pytester) -> None:
    """A correct multi-phase module passes in isolated, legacy and both, with no alarm."""
    subinterp_pytester.makepyfile(test_good="""
        import sys
        import pytest
        import good_ext

        def check():
            assert good_ext.add(2, 3) == 5
            assert good_ext.exec_count() == 1
            assert good_ext.get_cached_sys() is sys
            counter = good_ext.Counter()
            assert (counter.incr(), counter.incr()) == (1, 2)

        @pytest.mark.subinterp(threads=2, interpreters=2, config="isolated")
        def test_isolated():
            check()

        @pytest.mark.subinterp(threads=2, interpreters=2, config="legacy")
        def test_legacy():
            check()

        @pytest.mark.subinterp(threads=2, interpreters=2, rounds=2, config="both")
        def test_both():
            check()
    """)
    result = subinterp_pytester.runpytest_subprocess("-rA")
    if HAS_ISOLATED:
        result.assert_outcomes(passed=3)
    else:
        result.assert_outcomes(passed=2, skipped=1)  # config='isolated' needs 3.12+
    result.stdout.fnmatch_lines(["PASSED*test_legacy*"], consecutive=False)
    result.stdout.fnmatch_lines(["PASSED*test_both*"], consecutive=False)
    no_alarm(result)


# ---- single_phase_ext: refused in isolated interpreters -----------------------------------

@needs_isolated
def test_single_phase_import_in_body_is_refused_in_isolated(subinterp_pytester: pytest.Pytester) -> None:
    """Importing a single-phase module in the body fails with IMPORT_REFUSED and its fix."""
    subinterp_pytester.makepyfile(test_single="""
        import pytest

        @pytest.mark.subinterp(threads=2, interpreters=2, config="isolated")
        def test_imports_single_phase():
            import single_phase_ext
            assert single_phase_ext.add(2, 3) == 5
    """)
    result = subinterp_pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{REFUSED_ISOLATED}*"])
    result.stdout.fnmatch_lines(["*does not support loading in subinterpreters*"])
    result.stdout.no_fnmatch_line("*SubinterpFallbackWarning*")  # it failed: not a silent fallback
    result.stdout.no_fnmatch_line("*crashed*")


def test_single_phase_passes_in_legacy(subinterp_pytester: pytest.Pytester) -> None:
    """Legacy interpreters load single-phase modules: the same test passes there.

    One interpreter: CPython 3.12.1 itself segfaults when a single-phase module imported in two
    live legacy interpreters is destroyed (CPYTHON-QUIRKS.md, crash 3).
    """
    subinterp_pytester.makepyfile(test_single="""
        import pytest

        @pytest.mark.subinterp(threads=2, interpreters=1, rounds=2, config="legacy")
        def test_imports_single_phase():
            import single_phase_ext
            assert single_phase_ext.add(2, 3) == 5
    """)
    result = subinterp_pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    no_alarm(result)


MODULE_LEVEL_SINGLE_PHASE = """
    import pytest
    import single_phase_ext

    @pytest.mark.subinterp(threads=2, interpreters=2, config="isolated")
    def test_uses_single_phase():
        assert single_phase_ext.add(2, 3) == 5

    def test_plain():
        assert single_phase_ext.add(1, 1) == 2
"""


@needs_isolated
def test_single_phase_import_at_module_level_is_an_import_refused_setup_error(
    subinterp_pytester: pytest.Pytester,
) -> None:
    """A refused import while the test module is imported is an error at setup, not a crash."""
    subinterp_pytester.makepyfile(test_single_module=MODULE_LEVEL_SINGLE_PHASE)
    result = subinterp_pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_uses_single_phase*",
        "*cannot be imported in an isolated sub-interpreter: " + messages.REFUSAL_REASON_ISOLATED + "*",
        "[[]isolated interpreter *] ImportError while importing test module*",
        "*import single_phase_ext*",
    ])
    result.stdout.fnmatch_lines(["import refused by a sub-interpreter: 1"])
    result.stdout.no_fnmatch_line("*SubinterpFallbackWarning*")
    result.stdout.no_fnmatch_line("*crashed*")


@needs_isolated
def test_single_phase_import_at_module_level_names_the_module(subinterp_pytester: pytest.Pytester) -> None:
    """The setup error's headline is IMPORT_REFUSED for single_phase_ext itself."""
    subinterp_pytester.makepyfile(test_single_module=MODULE_LEVEL_SINGLE_PHASE)
    result = subinterp_pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_uses_single_phase*", f"{REFUSED_ISOLATED}"])
    result.stdout.no_fnmatch_line("module 'readline' cannot be imported*")


# ---- static_state_ext: C statics shared by every interpreter --------------------------------

def test_static_state_fails_in_the_second_interpreter(subinterp_pytester: pytest.Pytester) -> None:
    """exec_count() == 1 fails in every interpreter (one counter for all); get_cached_sys() is sys
    fails in the interpreter that imported second."""
    subinterp_pytester.makepyfile(test_static="""
        import sys
        import pytest
        import static_state_ext

        @pytest.mark.subinterp(threads=2, interpreters=2)
        def test_exec_count():
            assert static_state_ext.exec_count() == 1

        @pytest.mark.subinterp(threads=2, interpreters=2)
        def test_cached_sys():
            same = static_state_ext.get_cached_sys() is sys  # no repr of another interpreter's object
            assert same, "cached sys is not this interpreter's sys"

        def test_plain():
            assert static_state_ext.exec_count() == 1
            assert static_state_ext.get_cached_sys() is sys
    """)
    result = subinterp_pytester.runpytest_subprocess()
    result.assert_outcomes(failed=2, passed=1)
    # Counted across both interpreters: the exec counter is 2 in both by the time any body runs
    # (every interpreter imports the module before the calls start), so every call of test_exec
    # fails; the cached sys is wrong only where the module was not executed last.
    both = messages.FAILED_SUMMARY.format(failed_calls=2, calls=2, interp=1, n_interps=2, config=DEFAULT_CONFIG,
                                          thread=1, n_threads=2, round=1, n_rounds=1,
                                          failed_interps="interpreters 1, 2 of 2")
    one = messages.FAILED_SUMMARY.format(failed_calls=1, calls=1, interp="*", n_interps=2, config=DEFAULT_CONFIG,
                                         thread="*", n_threads=2, round=1, n_rounds=1,
                                         failed_interps="interpreter * of 2")
    result.stdout.fnmatch_lines(["*assert 2 == 1*"])
    result.stdout.fnmatch_lines(["*cached sys is not this interpreter's sys*"])
    result.stdout.fnmatch_lines([f"*{both}*", f"*{one}*"])
    result.stdout.no_fnmatch_line("*crashed*")


# ---- gilstate_ext: PyGILState_* attaches to the main interpreter ----------------------------

@pytest.mark.parametrize("config", [pytest.param("isolated", marks=needs_isolated), "legacy"])
def test_gilstate_lands_in_the_wrong_interpreter(subinterp_pytester: pytest.Pytester, config: str) -> None:
    """call_in_thread() reports the main interpreter's id, not the caller's, in every interpreter."""
    subinterp_pytester.makepyfile(test_gil=f"""
        import pytest
        import gilstate_ext

        @pytest.mark.subinterp(threads=2, interpreters=2, config={config!r})
        def test_gilstate():
            assert gilstate_ext.call_in_thread() == gilstate_ext.current_interpreter_id()

        def test_plain():
            assert gilstate_ext.call_in_thread() == gilstate_ext.current_interpreter_id() == 0
    """)
    result = subinterp_pytester.runpytest_subprocess("-vv")
    result.assert_outcomes(failed=1, passed=1)
    where = messages.FAILED_WHERE.format(config=config, interp="*", n_interps=2, thread="*", n_threads=2,
                                         round=1, n_rounds=1)
    # FAILED_WHERE starts with '[': escape it for fnmatch.
    result.stdout.fnmatch_lines(["*assert 0 == *"])
    result.stdout.fnmatch_lines(["FAILED test_gil.py::test_gilstate - " + where.replace("[", "[[]") + "*assert 0 == *"])
    # Both interpreters are wrong.
    result.stdout.fnmatch_lines(["*subinterp failure in 1 call(s): * interpreter */2, thread */2*"])
    result.stdout.no_fnmatch_line("*crashed*")


# ---- a package that silently falls back to pure Python ---------------------------------------

FALLBACK_TEST = """
    import pytest
    import fallbackpkg

    @pytest.mark.subinterp(threads=2, interpreters=2, config="isolated")
    def test_add():
        assert fallbackpkg.add(2, 3) == 5
"""


@needs_isolated
def test_fallback_passes_with_a_warning(subinterp_pytester: pytest.Pytester) -> None:
    """The test passes on the fallback, but a SubinterpFallbackWarning names the refused module."""
    subinterp_pytester.makepyfile(fallbackpkg=FALLBACK_PACKAGE, test_fallback=FALLBACK_TEST)
    result = subinterp_pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*warnings summary*", "*SubinterpFallbackWarning*" + fallback_line()[1:]])
    result.stdout.no_fnmatch_line("*cannot be imported in an*")


@needs_isolated
def test_fallback_fails_under_strict(subinterp_pytester: pytest.Pytester) -> None:
    """--subinterp-strict turns the fallback into a failure with FALLBACK_USED."""
    subinterp_pytester.makepyfile(fallbackpkg=FALLBACK_PACKAGE, test_fallback=FALLBACK_TEST)
    result = subinterp_pytester.runpytest_subprocess("--subinterp-strict")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([fallback_line()])
    result.stdout.no_fnmatch_line("*SubinterpFallbackWarning*")


@needs_isolated
def test_fallback_under_w_error_fails_the_test_not_pytest(subinterp_pytester: pytest.Pytester) -> None:
    """-W error: the fallback warning becomes the test's failure; pytest itself does not break."""
    subinterp_pytester.makepyfile(fallbackpkg=FALLBACK_PACKAGE, test_fallback=FALLBACK_TEST)
    result = subinterp_pytester.runpytest_subprocess("-W", "error")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([fallback_line()])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stderr.no_fnmatch_line("*INTERNALERROR*")


# ---- false positives: CPython's own refusals are not the package's fallbacks -----------------

@needs_isolated
def test_stdlib_refusals_are_not_fallbacks(subinterp_pytester: pytest.Pytester) -> None:
    """Stdlib modules refused or blocked in isolated interpreters never give a fallback warning."""
    extra = ""
    if sys.version_info[:2] == (3, 12):
        # 3.12 refuses these in isolated interpreters; their packages fall back (or not) by design.
        extra = """
        try:
            import _elementtree
        except ImportError:
            pass
        import xml.etree.ElementTree
        """
    subinterp_pytester.makepyfile(test_stdlib=f"""
        import pytest
        import datetime, decimal
        try:
            import readline  # single-phase: refused by every isolated interpreter
        except ImportError:
            readline = None
        {extra}

        # One interpreter: CPython 3.12.1 can abort when a second isolated interpreter imports a
        # stdlib module another one refused (CPYTHON-QUIRKS.md, crash 1).
        @pytest.mark.subinterp(threads=2, interpreters=1, config="isolated")
        def test_uses_stdlib():
            assert readline is None
            assert str(decimal.Decimal("1.5") + 1) == "2.5"
            assert datetime.date(2024, 1, 31).isoformat() == "2024-01-31"
    """)
    result = subinterp_pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    no_alarm(result)


@needs_isolated
def test_gh_refusal_in_a_fixture_is_import_refused(subinterp_pytester: pytest.Pytester) -> None:
    """Regression (pyrsistent's whole-suite run): a refusal raised while a fixture imports the
    module is the 'import refused' verdict with the fix, as in the test body."""
    subinterp_pytester.makepyfile("""
        import pytest

        @pytest.fixture
        def ext():
            import single_phase_ext
            return single_phase_ext

        @pytest.mark.subinterp(config="isolated")
        def test_uses_fixture(ext):
            assert ext.add(1, 2) == 3
    """)
    result = subinterp_pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-leaks=off")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*module 'single_phase_ext' cannot be imported in an isolated sub-interpreter*",
        "import refused by a sub-interpreter: 1",
    ])


@needs_isolated
def test_gh_stdlib_refusal_is_not_blamed_on_the_project(pytester: pytest.Pytester) -> None:
    """Regression (msgpack's whole-suite run): a CPython module refused by isolated interpreters
    at collection time is named as CPython's limit, never as the project's module '?'."""
    stdlib = "_tracemalloc" if sys.version_info >= (3, 13) else "_ctypes"
    pytester.makepyfile(f"""
        import pytest
        import {stdlib}

        @pytest.mark.subinterp(config="isolated", interpreters=1, threads=1)
        def test_needs_stdlib():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-leaks=off")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*CPython's own module '{stdlib}' is refused by isolated sub-interpreters*"])
    result.stdout.no_fnmatch_line("*module '?'*")
    result.stdout.no_fnmatch_line("*port it to multi-phase init*")


@pytest.mark.skipif(sys.version_info[:2] != (3, 12), reason="_tracemalloc is blocked in 3.12 isolated interpreters only")
def test_blocked_tracemalloc_is_named_as_cpythons(pytester: pytest.Pytester) -> None:
    """Regression (msgpack's whole-suite run on 3.12.1: tracemalloc.start() in two isolated
    interpreters at once segfaulted): _tracemalloc is blocked, and a test that needs it is told
    it is CPython's module, blocked because CPython crashes with it."""
    pytester.makepyfile("""
        import tracemalloc
        import pytest

        @pytest.mark.subinterp(config="isolated")
        def test_needs_tracemalloc():
            tracemalloc.start()
            tracemalloc.stop()
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--subinterp-leaks=off")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*CPython's own module '_tracemalloc' is blocked in isolated sub-interpreters on Python 3.12*",
        "import refused by a sub-interpreter: 1",
    ])
