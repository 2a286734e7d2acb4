"""How the inner sessions load the outer session's plugins, where pytest's own loading differs.

The inner sessions run with entry-point autoload off and name each plugin the outer session
loaded with ``-p`` (plugins.py decides which); what ``-p NAME`` does beyond loading the plugin is
undone here.
"""

from __future__ import annotations

from typing import Any


def plugin_args(names: list[str]) -> list[str]:
    """``-p NAME`` for each plugin an inner session loads (each once, under its registered name):
    the batteries' (session.py) and the plugin probe's (plugincheck.py) command lines."""
    args: list[str] = []
    for name in names:
        args += ["-p", name]
    return args


def register_shadowing_plugins(shadowing: dict[str, str], pluginmanager: Any) -> None:
    """Register, under their names, the plugins that ``-p NAME`` would load although NAME is also
    another importable module (``shadowing``: name -> plugin module, decided once by the
    controller: plugins.shadows_a_module; pytest-asyncio's entry point is called ``asyncio``).

    For ``-p NAME`` pytest marks the module NAME for assertion rewriting before it loads the entry
    point of that name (PytestPluginManager.import_plugin); with autoload off, as in every inner
    session, ``-p asyncio`` made the whole stdlib asyncio package load through pytest's rewriting
    hook, which the outer session (entry points autoloaded: only the plugin's distribution is
    marked) never does.  That is not only a difference: on 3.12/3.13 an isolated interpreter that
    awaited a pending future keeps part of asyncio alive when it ends (~40 KiB, also without
    pytest), and with the rewritten asyncio that part held ~1.2-1.6 MiB: a false 'state leak
    (memory)' of every test awaiting a future.  A plugin already registered under NAME makes
    pytest skip ``-p NAME``, marking included; ``-p no:NAME`` still unregisters it."""
    import importlib

    for name, module in shadowing.items():
        if pluginmanager.get_plugin(name) is None:
            pluginmanager.register(importlib.import_module(module), name)
