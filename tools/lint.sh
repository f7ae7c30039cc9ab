#!/usr/bin/env bash
# Linters and type checks, configured in pyproject.toml; run them before you push.
#
#   ruff         ruff check: the Python sources, tests, benchmarks and tools
#   format       ruff format --check: the same files (fix with `ruff format .`)
#   cython-lint  cython-lint on the Cython sources (cyrelu/*.pyx, *.pxd)
#   mypy         mypy --strict on the package cyrelu (the compiled modules through
#                their .pyi stubs)
#   stubtest     python -m mypy.stubtest: the hand-written stubs of the compiled modules
#                (cyrelu._activations, _batchnorm, _diagnostics, _parallel) against the
#                modules themselves; allowlist: tools/stubtest-allowlist.txt
#
# Usage: bash tools/lint.sh [CHECK...]   (default: all five, in that order)
#
# Every named check runs, even after a failure; the exit status is 1 if any failed,
# and the last line names them.  The tools are the `lint` extra's pinned versions:
# pip install ruff cython-lint mypy as listed in pyproject.toml ([project.optional-
# dependencies] lint), next to numpy.
#
# stubtest imports the compiled modules: those of an in-place build
# (`python setup.py build_ext --inplace`) when cyrelu/ holds them, else those of the
# installed cyrelu, checked from a temporary directory outside the checkout.
#
# Environment:
#   PYTHON=python   interpreter that runs mypy and stubtest (the one cyrelu and numpy
#                   are installed for)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}
MODULES=(cyrelu._activations cyrelu._batchnorm cyrelu._diagnostics cyrelu._parallel cyrelu._prelu)
ALL=(ruff format cython-lint mypy stubtest)
cd "$ROOT"

stubtest() {
    local args=(-m mypy.stubtest --allowlist "$ROOT/tools/stubtest-allowlist.txt" "${MODULES[@]}")
    if compgen -G "cyrelu/_activations.*.so" >/dev/null \
        || compgen -G "cyrelu/_activations.*.pyd" >/dev/null; then
        echo "(the in-place build in $ROOT/cyrelu)"
        "$PYTHON" "${args[@]}"
        return
    fi
    local dir status
    dir=$(mktemp -d "${TMPDIR:-/tmp}/cyrelu-stubtest.XXXXXX")
    # outside the checkout, where the source tree cannot shadow the installed package
    (cd "$dir" && "$PYTHON" -c "import cyrelu; print('(installed: %s)' % cyrelu.__file__)" \
        && "$PYTHON" "${args[@]}")
    status=$?
    rm -rf "$dir"
    if [ $status -ne 0 ]; then
        echo "tools/lint.sh: stubtest needs the compiled modules: build in place" \
            "(python setup.py build_ext --inplace) or install cyrelu" >&2
    fi
    return $status
}

check() {
    case $1 in
        ruff) ruff check . ;;
        format) ruff format --check . ;;
        cython-lint) cython-lint cyrelu ;;
        mypy) "$PYTHON" -m mypy --strict -p cyrelu ;;
        stubtest) stubtest ;;
        *)
            echo "tools/lint.sh: unknown check '$1' (known: ${ALL[*]})" >&2
            return 2
            ;;
    esac
}

checks=("$@")
[ $# -ne 0 ] || checks=("${ALL[@]}")
failed=()
for name in "${checks[@]}"; do
    echo "=== $name"
    start=$SECONDS
    if check "$name"; then
        echo "--- $name: ok ($((SECONDS - start))s)"
    else
        echo "--- $name: FAILED ($((SECONDS - start))s)"
        failed+=("$name")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "tools/lint.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "tools/lint.sh: all passed"
