"""What differs between the CPython and pytest versions pytest-subinterp runs on, in one place.

Two kinds of knowledge live here and nowhere else:

* **capabilities** of the running CPython (isolated interpreters, template interpreters, immortal
  objects), read at call time so that tests can monkeypatch ``sys.version_info``;
* every **private API** of CPython or pytest the plugin uses, each behind a small function with a
  comment naming the versions it was checked on and what happens where it is missing.

CPython's sub-interpreter *defects* (crashes to avoid or attribute) are in ``quirks.py``; this
module is about what exists, not about what is broken.  Imports nothing heavy: the inner
sessions import it in every interpreter.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

# ---- capabilities of the running CPython --------------------------------------------------------

# 3.12+ ob_refcnt of an immortal object is ~2**32 (PEP 683); 3.11's statically allocated
# singletons (small ints, the empty tuple, ...) start at 999999999 (_PyObject_IMMORTAL_INIT) and
# are shared by every interpreter just the same.  Nothing real gets close to 2**29.
IMMORTAL_REFCOUNT = 1 << 29


def python_version() -> str:
    """The running CPython as users write it: "3.13.0"."""
    return ".".join(map(str, sys.version_info[:3]))


def python_minor() -> str:
    """The running CPython's "X.Y"."""
    major, minor = sys.version_info[:2]
    return f"{major}.{minor}"


def has_isolated() -> bool:
    """Own-GIL sub-interpreters (``Py_NewInterpreterFromConfig``, PEP 684) exist from 3.12; 3.10
    and 3.11 have only ``Py_NewInterpreter`` (legacy, shared GIL)."""
    return tuple(sys.version_info[:2]) >= (3, 12)


def templates_supported() -> bool:
    """Template interpreters need 3.12+ (``Py_EndInterpreter`` of an interpreter whose creating
    thread state lived in another process's thread) and ``fork``."""
    return has_isolated() and hasattr(os, "fork")


def has_sys_monitoring() -> bool:
    """``sys.monitoring`` (PEP 669), per interpreter and for every thread of it, from 3.12."""
    return hasattr(sys, "monitoring")


def sub_main_thread_is_process_main() -> bool:
    """3.13 gives a sub-interpreter's main thread the process main thread's id; on 3.12 the
    creator thread must be made the interpreter's main thread after a fork (``_after_fork``)."""
    return tuple(sys.version_info[:2]) >= (3, 13)


def is_immortal(obj: object) -> bool:
    """Whether CPython shares `obj` between all interpreters as an immortal (3.12+) or statically
    allocated (3.11, e.g. small ints) object: by its reference count on 3.10 - 3.13, or by
    ``sys._is_immortal`` where it exists (3.14)."""
    checker = getattr(sys, "_is_immortal", None)
    if checker is not None:
        return bool(checker(obj))
    return sys.getrefcount(obj) >= IMMORTAL_REFCOUNT


def total_refcount() -> int | None:
    """``sys.gettotalrefcount()`` of debug builds (``--with-pydebug``); None on release builds."""
    getter = getattr(sys, "gettotalrefcount", None)
    return int(getter()) if getter is not None else None


# ---- private CPython APIs (Python level) ----------------------------------------------------------

def is_dummy_thread(thread: threading.Thread) -> bool:
    """``threading._DummyThread``: what ``threading.current_thread()`` makes for a thread Python did
    not start (the battery's native threads).  Private, unchanged 3.10 - 3.13."""
    dummy = getattr(threading, "_DummyThread", None)
    return dummy is not None and isinstance(thread, dummy)


def rerun_threading_after_fork() -> None:
    """``threading._after_fork()``: make the calling thread this interpreter's main thread after a
    raw ``fork()``.  CPython runs at-fork hooks in the main interpreter only (checked on 3.12.1;
    3.13 does not need it, see sub_main_thread_is_process_main)."""
    after_fork = getattr(threading, "_after_fork", None)
    if after_fork is not None:
        after_fork()


def replace_os_environ(data: dict[bytes, bytes]) -> None:
    """Make ``os.environ`` the process environment `data` (bytes -> bytes).  ``os.environ._data`` is
    the mapping behind both ``environ`` and ``environb`` on POSIX (3.10 - 3.13); replacing it
    in place keeps every reference to ``os.environ`` valid."""
    table = os.environ._data  # type: ignore[attr-defined]
    table.clear()
    table.update(data)


# ---- private pytest APIs (checked on pytest 8.0 - 9.2) -------------------------------------------

def default_plugin_names() -> tuple[str, ...]:
    """pytest's built-in plugins (``_pytest.config.default_plugins``), to pre-import them."""
    from _pytest.config import default_plugins

    return tuple(default_plugins)


def fixture_argnames(item: pytest.Function) -> tuple[str, ...]:
    """The arguments the test function itself asks for (``item._fixtureinfo.argnames``): the
    funcargs pytest passes to it, not the fixtures they need in turn."""
    return tuple(item._fixtureinfo.argnames)


def teardown_exact(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Finalize the fixtures `nextitem` does not share, as pytest's own teardown phase does
    (``session._setupstate.teardown_exact``)."""
    item.session._setupstate.teardown_exact(nextitem)


def repr_failure(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
    """How pytest shows an error of `item` (``Node._repr_failure_py``) with the session's
    ``--tb`` style."""
    style = item.config.getoption("tbstyle", "auto")
    return item._repr_failure_py(excinfo, style=style)


def tmp_path_factory(config: pytest.Config) -> pytest.TempPathFactory:
    """The session's ``tmp_path_factory`` (``config._tmp_path_factory``, set by pytest's tmpdir
    plugin at configure time)."""
    factory: pytest.TempPathFactory = config._tmp_path_factory  # type: ignore[attr-defined]
    return factory


def raw_ini_value(config: pytest.Config, name: str, missing: object) -> object:
    """The uncoerced value of ini key `name`, or `missing` where this pytest does not expose it.
    pytest 9.2 keeps ``ConfigValue`` objects in ``_inicfg`` (``inicfg`` is deprecated there);
    pytest 8 keeps plain values in ``inicfg``."""
    for attribute in ("_inicfg", "inicfg"):
        table = getattr(config, attribute, None)
        try:
            value = table[name]  # type: ignore[index]
        except (KeyError, TypeError):
            continue
        return getattr(value, "value", value)
    return missing


def tolerate_unusable_tracemalloc() -> None:
    """Where this interpreter cannot load ``_tracemalloc`` (refused by isolated interpreters on
    3.13, blocked on 3.12: docs/cpython-quirks.md), make pytest's
    ``_pytest.tracemalloc.tracemalloc_message`` answer "" on an error, as it does when
    ``import tracemalloc`` fails.  Its callers, the thread-exception and unraisable-exception
    hooks, otherwise fail the test with "module 'tracemalloc' has no attribute
    'get_object_traceback'" (a partly initialised module, seen on 3.13.0) where plain pytest only
    warns.  Private: checked on pytest 8.3 - 9.2, where both hooks import the function by name."""
    try:
        import _tracemalloc  # noqa: F401
        return
    except ImportError:
        pass
    import importlib

    try:
        module = importlib.import_module("_pytest.tracemalloc")
    except ImportError:
        return  # an older pytest without it: nothing to guard
    original = getattr(module, "tracemalloc_message", None)
    if original is None:
        return

    def tracemalloc_message(source: object) -> str:
        try:
            return str(original(source))
        except (AttributeError, ImportError):
            return ""

    setattr(module, "tracemalloc_message", tracemalloc_message)  # noqa: B010 - a module mypy cannot see into
    for name in ("_pytest.threadexception", "_pytest.unraisableexception"):
        try:
            user = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(user, "tracemalloc_message", None) is original:
            setattr(user, "tracemalloc_message", tracemalloc_message)  # noqa: B010


def rerun_plan(item: pytest.Item) -> tuple[int, float] | None:
    """(reruns, delay in seconds) that pytest-rerunfailures asks for `item` (its --reruns option or
    @pytest.mark.flaky), or None without the plugin or reruns.  Uses the plugin's own readers
    (get_reruns_count, get_reruns_delay; public functions of pytest_rerunfailures, checked on 14 -
    16.7); their condition and error filters (--only-rerun, --rerun-except) are not applied."""
    plugin = item.config.pluginmanager.get_plugin("rerunfailures")
    if plugin is None:
        return None
    count = plugin.get_reruns_count(item)
    if not count:
        return None
    try:
        delay = float(plugin.get_reruns_delay(item) or 0)
    except (TypeError, ValueError):
        delay = 0.0
    return int(count), max(delay, 0.0)


def fixture_definitions(item: pytest.Item) -> dict[str, Any]:
    """{fixture name: its FixtureDefs} of every fixture `item` uses, directly or not
    (``item._fixtureinfo.name2fixturedefs``, pytest 8.0 - 9.2); {} for items without it."""
    info = getattr(item, "_fixtureinfo", None)
    return dict(getattr(info, "name2fixturedefs", None) or {})


def pytest_timeout_of(item: pytest.Item) -> tuple[float, str] | None:
    """(seconds, where it comes from) of pytest-timeout's timeout for `item` (its --timeout, ini
    or env, or @pytest.mark.timeout), or None without the plugin or a timeout.  Uses the plugin's
    own reader ``pytest_timeout._get_item_settings`` (private, checked on 2.1 - 2.4), so that its
    validation and precedence apply."""
    module = item.config.pluginmanager.get_plugin("timeout")
    reader = getattr(module, "_get_item_settings", None)
    if reader is None:
        return None
    timeout = reader(item).timeout
    if timeout is None or timeout <= 0:
        return None
    where = "@pytest.mark.timeout" if item.get_closest_marker("timeout") is not None else "--timeout"
    return float(timeout), where


def raw_test_function(function: Any) -> Any:
    """The coroutine function of a test that pytest-asyncio wrapped to run synchronously in its own
    loop (0.21 - 0.26 ``wrap_in_sync`` keeps it as ``_raw_test_func``; 1.x ``_synchronize_coroutine``
    uses functools.wraps: ``__wrapped__``); `function` itself otherwise."""
    import inspect

    if inspect.iscoroutinefunction(function):
        return function
    for attribute in ("_raw_test_func", "__wrapped__"):
        inner = getattr(function, attribute, None)
        if inner is not None and inspect.iscoroutinefunction(inner):
            return inner
    return function


def warnings_record_list() -> list[Any] | None:
    """The list the innermost ``warnings.catch_warnings(record=True)`` appends to (pytest's own per
    test, or the recwarn fixture's), or None.  CPython 3.10 - 3.13 install ``list.append`` as
    ``warnings._showwarnmsg_impl`` (private); 3.14's context-aware warnings may differ: then None."""
    import warnings

    impl = getattr(warnings, "_showwarnmsg_impl", None)
    target = getattr(impl, "__self__", None)
    return target if isinstance(target, list) else None
