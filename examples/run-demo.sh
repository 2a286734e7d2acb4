#!/usr/bin/env bash
# The main job: install pytest-subinterp and the demo extension package (examples/demo_ext) into
# a fresh venv, then run the demo's ordinary tests under sub-interpreters and show the verdicts.
# Each demo module plants one classic defect; the expected verdicts are in examples/README.md.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/python-for.sh"
VERSION=${SUBINTERP_DEMO_PYTHON:-3.13.0}
venv="$ROOT/.venv-demo-$VERSION"
set -e
make_venv "$VERSION" "$venv"
"$venv/bin/python" -m pip install -q --no-build-isolation "$ROOT/examples/demo_ext"
set +e
cd "$ROOT/examples"
echo "=== 1. The demo's tests as plain pytest runs them: all pass (the defects do not show; the deadlock is left out, plain pytest would hang on it)"
"$venv/bin/python" -m pytest -p no:cacheprovider -p no:subinterp -q tests --deselect tests/test_demo.py::test_deadlock
echo
echo "=== 2. Without any test: can each C module be loaded in sub-interpreters at all?"
"$venv/bin/python" -m pytest_subinterp check subinterp_demo._good subinterp_demo._single_phase \
    subinterp_demo._static_state subinterp_demo._crash_on_end subinterp_demo._gilstate \
    subinterp_demo._fallback
echo
echo "=== 3. The demo's tests in sub-interpreters (2 interpreters x 4 threads, isolated and legacy)"
"$venv/bin/python" -m pytest -p no:cacheprovider -v --subinterp-config=both -W default tests
code=$?
echo
if [ "$code" -eq 1 ]; then
    echo "=== Demo done: the failures above are the planted defects (see examples/README.md)."
    exit 0
fi
echo "=== Unexpected pytest exit code $code"
exit "$code"
