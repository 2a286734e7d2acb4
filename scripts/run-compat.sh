#!/usr/bin/env bash
# tests/compat beside the users' plugins (tests/compat/requirements.txt, pinned): one fresh venv
# per Python with pytest-subinterp built from this checkout.  Usage: scripts/run-compat.sh
# VERSION... (scripts/run-tests.sh calls it with 3.13.0 3.12.1 after the main runs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/python-for.sh"
if [ "$#" -eq 0 ]; then
    echo "usage: scripts/run-compat.sh VERSION... (e.g. 3.13.0 3.12.1)" >&2
    exit 2
fi
for version in "$@"; do
    venv="$ROOT/.venv-compat-$version"
    echo "=== CPython $version: compat venv $venv (pytest-subinterp + the pinned plugins)"
    make_base_venv "$version" "$venv" -r "$ROOT/tests/compat/requirements.txt"
    status=0
    (cd "$ROOT/tests" && "$venv/bin/python" -m pytest -p no:cacheprovider -p no:randomly -W error --rootdir="$ROOT" \
        -c "$ROOT/pyproject.toml" -o asyncio_default_fixture_loop_scope=function "$ROOT/tests/compat") || status=$?
    if [ "$status" -ne 0 ]; then
        echo "=== CPython $version: compat FAILED (exit $status)"
        exit "$status"
    fi
done
