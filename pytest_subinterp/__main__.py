"""``python -m pytest_subinterp check MODULE [MODULE ...]``: see pytest_subinterp/cli.py."""

from pytest_subinterp.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
