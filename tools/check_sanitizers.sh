#!/usr/bin/env bash
# The extension built with AddressSanitizer + UndefinedBehaviorSanitizer (OpenMP on:
# CYRELU_REQUIRE_OPENMP=1, so a failed OpenMP probe cannot quietly give a serial
# build), in its own venv (.venv-asan), and the test suite run against it.
#   * any UBSan report is fatal (-fno-sanitize-recover=undefined, halt_on_error=1);
#   * leak detection is off: CPython and NumPy keep allocations alive until exit by
#     design, which LeakSanitizer reports as leaks;
#   * the interpreter is not instrumented, so libasan is preloaded (it must come first);
#   * PyTorch is not installed here (its oracle tests skip): its own libraries are
#     not built for ASan and would only slow the stage down.
# Measured on 2 shared cores: about 8 minutes at -O3 (5 of them building); the build
# now uses -O1, the source checks are deselected, and the tests run as two processes.
# Usage: tools/check_sanitizers.sh  (from anywhere; needs python3 and gcc)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T0=$SECONDS
fail() { echo "check_sanitizers: FAILED: $*" >&2; exit 1; }
step() { echo "--- check_sanitizers [$((SECONDS - T0))s] $*"; }

CC=${CC:-gcc}
LIBASAN=$("$CC" -print-file-name=libasan.so)
[ -f "$LIBASAN" ] || fail "$CC has no libasan.so ($LIBASAN)"

step "venv .venv-asan"
rm -rf .venv-asan
python3 -m venv .venv-asan
. .venv-asan/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "setuptools>=77" "Cython>=3.0" "numpy>=2.0" \
    pytest hypothesis threadpoolctl || fail "installing build and test dependencies"

step "sanitized build (OpenMP required)"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# Build from a copy of the sources (tracked and untracked-but-not-ignored files), so
# that no object or module of an unsanitized build in the checkout is reused.
SRC=$(mktemp -d)
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$SRC"
# -O1 (CYRELU_OPT_LEVEL): instrumented -O3 code took six times longer to compile.
# -g1: line tables only, for the reports' file:line frames (full -g is most of a build's
# time for the kernels' instruction-set copies; setup.py keeps what CFLAGS asks for).
(cd "$SRC" && CC="$CC" CFLAGS="$SAN -g1" LDFLAGS="$SAN" CYRELU_REQUIRE_OPENMP=1 CYRELU_OPT_LEVEL=1 \
    python -m pip install -q --no-build-isolation --no-deps .) || fail "sanitized build"

step "the test suite under ASan + UBSan"
export ASAN_OPTIONS=detect_leaks=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# Fewer hypothesis examples (tests/conftest.py): everything runs several times slower.
export CYRELU_HYPOTHESIS_PROFILE=sanitizer
export CYRELU_EXPECT_OPENMP=1
RUN_DIR=$(mktemp -d)
cp -r "$SRC/tests" "$SRC/pyproject.toml" "$RUN_DIR"/   # the tests of the sources built
# Run outside the checkout, so that the installed (sanitized) cyrelu is imported.
# The source checks (marker source_check) are left out: they test the C and CUDA sources
# with other compilers (nvcc, g++ for the CUDA emulation, cc for tests/c), which are not
# the code under test and ran in .ci/run's first stage; nvcc and its helper binaries,
# with libasan preloaded into them, abort before compiling anything.
# Also left out: BatchNorm with each activation and its parameters
# (tests/test_batchnorm_activations.py, about 550 tests of composition in Python over
# kernels that test_batchnorm_fused.py and test_smooth.py run here) and the Dask tests
# (dask is not installed here: they would skip).
# The suite runs as two processes side by side (CYRELU_TEST_SHARD, tests/conftest.py:
# every other test each), since one instrumented process keeps about one core busy:
# about 250 s as one process on 2 vCPUs.  Each shard's output is printed when both end.
SHARDS=2
PIDS=()
for ((i = 0; i < SHARDS; i++)); do
    (cd "$RUN_DIR" && CYRELU_TEST_SHARD="$i/$SHARDS" LD_PRELOAD="$LIBASAN" python -m pytest -q \
        -p no:cacheprovider \
        --ignore=tests/test_cuda_compile.py --ignore=tests/test_batchnorm_activations.py \
        --ignore=tests/test_dask.py --ignore=tests/test_prelu_dask.py \
        -m "not source_check" tests) > "$RUN_DIR/shard$i.log" 2>&1 &
    PIDS+=($!)
done
FAILED=()
for ((i = 0; i < SHARDS; i++)); do
    echo "--- check_sanitizers: shard $i/$SHARDS"
    if wait "${PIDS[$i]}"; then
        tail -n 3 "$RUN_DIR/shard$i.log"
    else
        FAILED+=("$i/$SHARDS")
        cat "$RUN_DIR/shard$i.log"   # a failure's whole report
    fi
done
[ ${#FAILED[@]} -eq 0 ] || fail "tests under ASan/UBSan (shard ${FAILED[*]})"
# Captured first, then searched: `... | grep -q` under pipefail fails at random when
# grep exits at its match before show_config has finished printing (a broken pipe).
CONFIG=$(cd "$RUN_DIR" && LD_PRELOAD="$LIBASAN" python -c "import cyrelu; cyrelu.show_config()")
grep -q "openmp  *: on" <<<"$CONFIG" || fail "the sanitized build lost OpenMP"
rm -rf "$RUN_DIR" "$SRC"
deactivate
echo "check_sanitizers: clean ($((SECONDS - T0))s)"
