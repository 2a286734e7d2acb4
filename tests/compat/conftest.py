"""tests/compat: pytest-subinterp beside the user's plugins (tests/compat/requirements.txt).
Each test module importorskips its plugin, so the main run skips them where it is missing."""

from __future__ import annotations

import pytest

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture
def compat_pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester with an ini that silences pytest-asyncio's configuration warning."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makeini(INI)
    return pytester
