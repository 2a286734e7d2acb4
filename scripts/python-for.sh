# Source me: python_for VERSION prints the path of that CPython (pyenv, or pythonX.Y on PATH).
python_for() {
    local version=$1 prefix
    if command -v pyenv >/dev/null 2>&1 && prefix=$(pyenv prefix "$version" 2>/dev/null); then
        echo "$prefix/bin/python3"
        return 0
    fi
    local short=${version%.*}
    command -v "python$short" 2>/dev/null && return 0
    return 1
}

# make_base_venv VERSION DIR [PIP ARGS...]: a venv with pytest, the build tools and PIP ARGS, then
# pytest-subinterp built from this checkout (without build isolation).  The test venvs
# (make_venv) and the compat venvs (scripts/run-compat.sh) differ only in PIP ARGS.
make_base_venv() {
    local version=$1 dir=$2 python
    shift 2
    python=$(python_for "$version") || { echo "Python $version not found" >&2; return 1; }
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
    # --upgrade: 3.10 and 3.11 venvs come with setuptools 65 from ensurepip, and the SPDX license
    # string of pyproject.toml (built below without build isolation) needs setuptools >= 77.
    "$dir/bin/python" -m pip install -q --upgrade "pytest>=8" "setuptools>=77" wheel "$@"
    "$dir/bin/python" -m pip install -q --no-build-isolation "$ROOT"
}

# make_venv VERSION DIR: a venv with pytest-subinterp (built from this checkout) and test tools:
# pytest-xdist, and the build tools of the generator tests (tests/genbuild.py,
# tests/test_advice.py), real pybind11 and Cython modules, so that the refusal advice is checked
# on what they emit.
make_venv() {
    make_base_venv "$1" "$2" "pytest-xdist>=3.5" "pybind11==3.1.0" "cython==3.3.1"
}

# make_lint_venv DIR: a venv with the pinned linters and pytest (mypy checks the plugin against
# pytest's own types), for the package sources as they are.
make_lint_venv() {
    local dir=$1 python
    python=$(python_for 3.13.0) || python=$(command -v python3)
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$dir/bin/python" -m pip install -q "ruff==0.17.6" "mypy==2.4.1" "pytest==9.2.0"
}
