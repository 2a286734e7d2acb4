"""How the inner sessions load the outer session's plugins, where pytest's own loading differs.

The inner sessions run with entry-point autoload off and name each plugin the outer session
loaded with ``-p`` (plugins.py decides which); what ``-p NAME`` does beyond loading the plugin is
undone here.
"""

from __future__ import annotations

from typing import Any


def register_shadowing_plugins(args: list[str], pluginmanager: Any) -> None:
    """Register, under their names, the entry-point plugins that ``-p NAME`` would load although
    NAME is also another importable module (pytest-asyncio's entry point is called ``asyncio``).

    For ``-p NAME`` pytest marks the module NAME for assertion rewriting before it loads the entry
    point of that name (PytestPluginManager.import_plugin); with autoload off, as in every inner
    session, ``-p asyncio`` made the whole stdlib asyncio package load through pytest's rewriting
    hook, which the outer session (entry points autoloaded: only the plugin's distribution is
    marked) never does.  That is not only a difference: on 3.12/3.13 an isolated interpreter that
    awaited a pending future keeps part of asyncio alive when it ends (~40 KiB, also without
    pytest), and with the rewritten asyncio that part held ~1.2-1.6 MiB: a false 'state leak
    (memory)' of every test awaiting a future.  A plugin already registered under NAME makes
    pytest skip ``-p NAME``, marking included; ``-p no:NAME`` still unregisters it."""
    import importlib.util

    names = [value for flag, value in zip(args, args[1:])
             if flag == "-p" and not value.startswith("no:") and "." not in value]
    shadowing = []
    for name in names:
        try:
            if importlib.util.find_spec(name) is not None:
                shadowing.append(name)
        except (ImportError, ValueError):
            continue
    if not shadowing:
        return
    from importlib.metadata import entry_points

    by_name = {entry.name: entry for entry in entry_points(group="pytest11")}
    for name in shadowing:
        entry = by_name.get(name)
        if entry is None or entry.module.split(".")[0] == name or pluginmanager.get_plugin(name) is not None:
            continue  # a module of that name, or the plugin's own package: -p marks what autoload does
        pluginmanager.register(entry.load(), name)
