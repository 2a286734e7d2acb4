"""pytest-rerunfailures beside pytest-subinterp: --reruns N and @pytest.mark.flaky re-run the whole
battery; each failed attempt is a 'rerun' report, the last attempt's reports are the result.

Before: a flaky marked test whose body is `assert False` PASSED with every call "not run" (the
inner session re-ran the body outside the battery's rendezvous), and --reruns never re-ran a
failed battery."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pytest_rerunfailures")

FLAKY = """
import os
import pytest

@pytest.mark.subinterp(leaks="off")
@pytest.mark.flaky(reruns=2)
def test_always_fails():
    assert False

@pytest.mark.subinterp(leaks="off")
def test_fails_first_time():
    flag = os.path.join(os.environ["FLAG_DIR"], "flag")
    try:
        open(flag, "x").close()
    except FileExistsError:
        return  # a later attempt: passes
    assert False, "first attempt"
"""


def test_reruns_rerun_whole_batteries(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG_DIR", str(pytester.path))
    pytester.makepyfile(FLAKY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--reruns", "1", "--subinterp-report=r.json")
    # flaky(reruns=2): two reruns then the final failure; --reruns 1: one rerun then a pass.
    outcomes = result.parseoutcomes()  # assert_outcomes takes no 'rerun' on pytest 9
    assert (outcomes.get("failed"), outcomes.get("passed"), outcomes.get("rerun")) == (1, 1, 3)
    result.stdout.no_fnmatch_line("*not run*")
    tests = {t["nodeid"].split("::")[-1]: t for t in json.loads((pytester.path / "r.json").read_text())["tests"]}
    assert len(json.loads((pytester.path / "r.json").read_text())["tests"]) == 2  # the last attempts only
    assert tests["test_always_fails"]["verdict"] == "failed"
    assert tests["test_always_fails"]["proof"][0]["failed_calls"] == 4
    assert tests["test_fails_first_time"]["verdict"] == "passed"
    result.stdout.fnmatch_lines(["*subinterp verdicts*", "failed in an interpreter/thread: 1", "*passed: 1"])
