"""Coroutine tests in the battery threads: each thread drives its own call in a new event loop.

pytest-asyncio's loop (and anyio's runner) belong to the creator thread and run one coroutine at a
time; a battery runs the body in several threads at once, so each gets a loop of its own: asyncio's,
or the backend anyio's ``anyio_backend`` fixture names.
"""

from __future__ import annotations

from typing import Any


def in_own_event_loop(coroutine_function: Any, anyio_backend: tuple[str, dict[str, Any]] | None = None) -> Any:
    """A sync callable that runs the test coroutine to completion in a new event loop of the
    calling thread (each battery thread drives its own call; pytest-asyncio's loop belongs to the
    creator thread and cannot run in several threads at once).  With anyio's ``anyio_backend``
    the loop is that backend's (anyio.run), as anyio's own runner would use."""
    import asyncio
    import functools
    import importlib

    def run(**kwargs: Any) -> None:
        if anyio_backend is None:
            asyncio.run(coroutine_function(**kwargs))
            return
        anyio = importlib.import_module("anyio")  # only where anyio's plugin gave a backend
        name, options = anyio_backend
        anyio.run(functools.partial(coroutine_function, **kwargs), backend=name, backend_options=options)

    return run


def anyio_backend(funcargs: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """anyio's backend of the test (its ``anyio_backend`` fixture: a name, or (name, options)),
    or None when the test does not use anyio's plugin."""
    backend = funcargs.get("anyio_backend")
    if not backend:
        return None
    if isinstance(backend, str):
        return backend, {}
    if isinstance(backend, tuple) and len(backend) == 2:
        name, options = backend
        if isinstance(name, str) and isinstance(options, dict):
            return name, options
    raise TypeError(f"anyio_backend must be a string or a (string, dict) tuple, not {backend!r}")
