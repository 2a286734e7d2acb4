"""``python -m pytest_subinterp check MODULE [MODULE ...]``: see pytest_subinterp/check/."""

from pytest_subinterp.check import main

if __name__ == "__main__":
    raise SystemExit(main())
