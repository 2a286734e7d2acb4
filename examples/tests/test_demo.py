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


# ---- defects of the test or of Python code, shown the same way -----------------------------
# These need no C module: what a battery finds about thread safety, leaks, left threads, hangs
# and calls that never ran holds for any code.

_seen = []


@pytest.mark.subinterp
def test_cache_grows_per_call():
    # a module-level cache that keeps a new list from every call: a per-call leak
    _seen.append([len(_seen)])


_state = {"busy": False}


@pytest.mark.subinterp(config="isolated")
def test_not_thread_safe():
    # a critical section without a lock: two threads of one interpreter get in at once
    import time

    assert not _state["busy"], "another thread of this interpreter is inside"
    _state["busy"] = True
    time.sleep(0.05)
    _state["busy"] = False


@pytest.mark.subinterp(config="isolated")
def test_forgotten_thread():
    # a thread the test never joins: still running when the test and its fixtures are done
    # (a left thread is a state leak: reported unless leaks="off")
    import threading
    import time

    threading.Thread(target=time.sleep, args=(3,), name="forgotten").start()


@pytest.mark.subinterp(config="isolated", leaks="off", timeout=5)
def test_deadlock():
    # a lock taken twice by the same thread: the battery is reported hung after 5 s
    import threading

    lock = threading.Lock()
    lock.acquire()
    lock.acquire()


@pytest.fixture
def only_in_first_interpreter():
    from pytest_subinterp import _subinterp

    if _subinterp.interpreter_index() > 0:
        pytest.skip("not in this interpreter")


@pytest.mark.subinterp(config="isolated", leaks="off")
def test_skipped_in_some_interpreters(only_in_first_interpreter):
    # half the calls never run: no proof of a pass
    pass
