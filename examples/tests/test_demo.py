"""What a maintainer of subinterp_demo would test: one ordinary test per module.

All of these pass under plain pytest (one interpreter).  Under pytest-subinterp each runs in
fresh sub-interpreters from several native threads, and the planted defects show: see
../README.md for the verdict expected for each.
"""

import sys

import pytest


@pytest.mark.subinterp
def test_good():
    from subinterp_demo import _good

    assert _good.add(2, 3) == 5
    counter = _good.Counter()
    assert counter.incr() == 1
    assert counter.incr() == 2
    assert counter.value == 2
    assert _good.get_cached_sys() is sys


@pytest.mark.subinterp
def test_single_phase():
    from subinterp_demo import _single_phase

    assert _single_phase.add(2, 3) == 5


@pytest.mark.subinterp
def test_static_state():
    from subinterp_demo import _static_state

    assert _static_state.exec_count() == 1
    assert _static_state.get_cached_sys() is sys


@pytest.mark.subinterp
def test_crash_on_end():
    from subinterp_demo import _crash_on_end

    assert _crash_on_end.add(2, 3) == 5


@pytest.mark.subinterp
def test_gilstate():
    from subinterp_demo import _gilstate

    assert _gilstate.call_in_thread() == _gilstate.current_interpreter_id()


@pytest.mark.subinterp
def test_fallback():
    from subinterp_demo import fallback

    assert fallback.add(2, 3) == 5
