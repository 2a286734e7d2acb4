#!/usr/bin/env bash
# The test command: lint and type-check the package (ruff, mypy --strict), then build
# pytest-subinterp for CPython 3.13, 3.12 (isolated + legacy) and 3.11 and 3.10 (legacy only) in
# fresh venvs, and run tests/ on each.  Usage: scripts/run-tests.sh [pytest args]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/python-for.sh"
VERSIONS=${SUBINTERP_PYTHONS:-"3.13.0 3.12.1 3.11.7 3.10.13"}
status=0
lint_venv="$ROOT/.venv-lint"
echo "=== lint: ruff and mypy --strict (configuration in pyproject.toml)"
make_lint_venv "$lint_venv"
(cd "$ROOT" && "$lint_venv/bin/ruff" check pytest_subinterp tests benchmarks examples conftest.py)
(cd "$ROOT" && "$lint_venv/bin/mypy")
for version in $VERSIONS; do
    venv="$ROOT/.venv-test-$version"
    echo "=== CPython $version: installing pytest-subinterp into $venv"
    make_venv "$version" "$venv"
    echo "=== CPython $version: running tests"
    # Run from a neutral directory so that the installed package (with its built C helper) is
    # tested, not the source tree.
    (cd "$ROOT/tests" && "$venv/bin/python" -m pytest -p no:cacheprovider -W error --rootdir="$ROOT" -c "$ROOT/pyproject.toml" "$ROOT/tests" "$@") || status=$?
    if [ "$status" -ne 0 ]; then
        echo "=== CPython $version: FAILED (exit $status)"
        exit "$status"
    fi
done
# The user's plugins (tests/compat/requirements.txt, pinned) beside pytest-subinterp: tests/compat
# only, on 3.13 and 3.12 (the main run above skips tests/compat where the plugins are missing).
compat_versions=""
for version in ${SUBINTERP_COMPAT_PYTHONS:-3.13.0 3.12.1}; do
    case " $VERSIONS " in *" $version "*) compat_versions="$compat_versions $version" ;; esac
done
if [ -n "$compat_versions" ]; then
    bash "$ROOT/scripts/run-compat.sh" $compat_versions
fi
echo "=== all Pythons passed: $VERSIONS"
