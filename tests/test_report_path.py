"""--subinterp-report PATH is checked before any test runs, and the report is written safely.

Before: ``--subinterp-report .`` or ``/proc/version`` gave a raw traceback at session end, after
every test ran, and left a stray ``<name>.tmp`` whose predictable name was followed if it was a
symlink.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_subinterp.jsonreport import (
    CANNOT_WRITE,
    IS_DIRECTORY,
    NOT_REGULAR,
    REPORT_PATH_MESSAGE,
    check_report_path,
    write_atomically,
)

pytestmark = pytest.mark.unit

UNMARKED = "def test_a():\n    pass\n"


def _usage_error(pytester: pytest.Pytester, value: str) -> str:
    pytester.makepyfile(UNMARKED)
    result = pytester.runpytest(f"--subinterp-report={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stdout.no_fnmatch_line("*passed*")
    return result.stderr.str()


def test_directory_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """'.' is the current directory: refused at start, naming the path and the fix."""
    text = _usage_error(pytester, ".")
    expected = REPORT_PATH_MESSAGE.format(path=pytester.path, problem=IS_DIRECTORY)
    assert expected in text
    assert "give the path of a JSON file in a writable directory" in text


def test_proc_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """/proc/version exists, but nothing can be created beside it (also as root)."""
    text = _usage_error(pytester, "/proc/version")
    assert "--subinterp-report /proc/version: cannot write there (" in text


def test_special_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A FIFO is not a report file."""
    os.mkfifo(pytester.path / "fifo")
    text = _usage_error(pytester, "fifo")
    assert REPORT_PATH_MESSAGE.format(path=pytester.path / "fifo", problem=NOT_REGULAR) in text


def test_directory_that_cannot_be_made_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A parent that is a file: the report's directory cannot be made."""
    (pytester.path / "plain").write_text("x")
    text = _usage_error(pytester, "plain/report.json")
    assert f"--subinterp-report {pytester.path / 'plain' / 'report.json'}: " in text
    assert CANNOT_WRITE.split("(")[0] in text


def test_good_path_is_created_with_its_directory_and_nothing_else(tmp_path: Path) -> None:
    """A path in a directory that does not exist yet is fine; the check leaves no file behind."""
    target = tmp_path / "new" / "report.json"
    check_report_path(target)
    assert list((tmp_path / "new").iterdir()) == []


def test_write_does_not_follow_a_symlink_at_the_old_tmp_name(tmp_path: Path) -> None:
    """The old predictable '<name>.tmp' is not used: a symlink there is left alone, and no
    temporary file remains."""
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "report.json.tmp").symlink_to(victim)
    write_atomically(tmp_path / "report.json", "{}")
    assert victim.read_text() == "keep me"
    assert (tmp_path / "report.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.json.tmp", "victim"]


def test_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    """When the rename fails (the target became a directory), the temporary file is removed."""
    (tmp_path / "report.json").mkdir()
    with pytest.raises(OSError):
        write_atomically(tmp_path / "report.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_session_leaves_only_the_report(pytester: pytest.Pytester) -> None:
    """After a session with a report, its directory holds the report and no temporary file."""
    pytester.makepyfile(UNMARKED)
    result = pytester.runpytest("--subinterp-report=out/report.json")
    result.assert_outcomes(passed=1)
    assert [p.name for p in (pytester.path / "out").iterdir()] == ["report.json"]
