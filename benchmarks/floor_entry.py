"""Entry for the floor measurement: what CPython itself costs per interpreter of a battery.

Imports pytest and a trivial test module's function, then hands a trivial body to the battery
threads: create -> import pytest -> import test -> call -> end, without the inner session.
"""

from __future__ import annotations


def run(arg: str, index: int) -> str:
    import pytest  # noqa: F401 - part of the floor: every inner session needs it

    from pytest_subinterp import _subinterp

    def body(thread: int, round_: int) -> None:
        assert 1 + 1 == 2

    records = _subinterp.call_point(body)
    return str(len(records))
