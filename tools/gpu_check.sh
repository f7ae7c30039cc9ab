#!/usr/bin/env bash
# One-shot GPU check: install cyrelu on a machine with an NVIDIA GPU, run the GPU tests
# and the GPU benchmark, and write everything to one folder.
#
#   tools/gpu_check.sh [OUTDIR]        (OUTDIR defaults to $OUT, else ./gpu-results)
#
# Run it from anywhere; it works in the repository root.  It needs Python 3 (>= 3.11
# for -P) with NumPy, Cython, setuptools, CuPy and optionally PyTorch with CUDA already
# installed, and nvcc on PATH for the compile test; pytest if present (otherwise the
# bundled tools/mini_pytest.py runs the same test files).  Nothing is downloaded: the
# build uses the installed build dependencies (--no-build-isolation --no-deps
# --no-index).  The package goes into a directory under OUTDIR (removed at the end), so
# the system Python is left alone.  PYTHON=... picks the interpreter (default python3).
# Every step has a time limit; the whole run stays under about 7 minutes.  A missing
# prerequisite (setuptools >= 77, numpy, Cython, Python.h, CuPy, a visible device) or a
# failed build stops it at once, with the reason in summary.txt.
#
# Written to OUTDIR:
#   summary.txt        device, versions, test counts, benchmark targets (read this first)
#   nvidia-smi.txt     nvidia-smi and nvidia-smi -q
#   versions.txt       python, numpy, cupy, torch, nvcc, cyrelu.show_config()
#   prereq.txt         the prerequisite check
#   install.log        the build of the CPU extension
#   pytest.log, pytest-junit.xml   tests/test_gpu.py and tests/test_cuda_compile.py
#   bench.txt, bench.json          the GPU benchmark (rows, ratios, targets)
#   bench-driver.txt/.json         the same suite through benchmarks/bench.py --gpu
# Exit status: 0 when the install worked and every test passed, 1 otherwise.

set -u
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUTDIR=${1:-${OUT:-$REPO/gpu-results}}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
PY=${PYTHON:-python3}
START=$(date +%s)
status=0

log() { echo "[gpu_check $(($(date +%s) - START))s] $*" | tee -a "$OUTDIR/summary.txt"; }

: >"$OUTDIR/summary.txt"
log "repository: $REPO ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
log "output: $OUTDIR"

# ---- the machine ----------------------------------------------------------------------
{ nvidia-smi; echo; nvidia-smi -q; } >"$OUTDIR/nvidia-smi.txt" 2>&1
log "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"

# ---- prerequisites: fail fast, and say why --------------------------------------------
fail() {
    log "PREREQUISITE MISSING: $*"
    log "nothing was tested; status 1"
    exit 1
}
command -v "$PY" >/dev/null 2>&1 || fail "no Python interpreter '$PY' (set PYTHON=...)"
timeout 60 "$PY" - >"$OUTDIR/prereq.txt" 2>&1 <<'EOF2'
import os, sys, sysconfig
problems = []
try:
    import setuptools
    major = int(setuptools.__version__.split(".")[0])
    if major < 77:
        problems.append("setuptools %s is too old for pyproject's license field (needs >= 77; "
                        "the build uses the installed one)" % setuptools.__version__)
except Exception as exc:
    problems.append("setuptools not importable: %s" % exc)
for name in ("numpy", "Cython"):
    try:
        __import__(name)
    except Exception as exc:
        problems.append("%s not importable: %s" % (name, exc))
inc = sysconfig.get_paths().get("include") or ""
if not os.path.exists(os.path.join(inc, "Python.h")):
    problems.append("no Python.h in %s (install the Python development headers)" % inc)
try:
    import cupy
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        n = 0
        problems.append("CuPy %s sees no CUDA device: %s" % (cupy.__version__, exc))
    else:
        if n == 0:
            problems.append("CuPy %s sees no CUDA device" % cupy.__version__)
except Exception as exc:
    problems.append("CuPy not importable: %s" % exc)
for p in problems:
    print("MISSING:", p)
sys.exit(1 if problems else 0)
EOF2
rc=$?
if [ $rc -ne 0 ]; then
    grep MISSING "$OUTDIR/prereq.txt" | tee -a "$OUTDIR/summary.txt"
    [ $rc -eq 124 ] && fail "the prerequisite check timed out"
    fail "$(grep -c MISSING "$OUTDIR/prereq.txt") prerequisite(s), see above"
fi
log "prerequisites: setuptools, numpy, Cython, Python.h, CuPy and a device are there"

# ---- build ------------------------------------------------------------------------------
# A copy of the source tree under OUTDIR, built in place with every core (setup.cfg's
# build_ext parallel), put first on PYTHONPATH: the system site-packages and the source
# tree are left alone, and nothing is downloaded.
SITE="$OUTDIR/.site"
rm -rf "$SITE"
mkdir -p "$SITE"
tar -C "$REPO" --exclude=./.git --exclude=./build --exclude='*.so' \
    --exclude="./$(basename "$OUTDIR")" -cf - . | tar -C "$SITE" -xf -
JOBS=$(nproc 2>/dev/null || echo 4)
RUN="$PY"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-$(mktemp -d)/cupy-cache}"
log "building the CPU extension in $SITE (-j $JOBS)"
(cd "$SITE" && timeout 300 "$PY" setup.py build_ext --inplace -j "$JOBS") \
    >"$OUTDIR/install.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
    [ $rc -eq 124 ] && log "BUILD TIMED OUT after 300 s"
    log "BUILD FAILED (exit $rc): no GPU test was run; last lines of install.log:"
    tail -25 "$OUTDIR/install.log" | tee -a "$OUTDIR/summary.txt"
    rm -rf "$SITE"
    exit 1
fi
log "built"

# python -c / -m put the current directory first on sys.path, where the source tree's
# cyrelu/ (without its compiled extension) would shadow the installed package: -P
# (Python >= 3.11) stops that.  Scripts only get their own directory, which is fine.
if "$RUN" -P -c "" 2>/dev/null; then P="$RUN -P"; else P="$RUN"; fi

{
    echo "== python"; $P -c "import sys; print(sys.version)"
    echo "== packages"
    $P - <<'EOF'
import importlib
for name in ("numpy", "cupy", "torch", "Cython", "pytest", "cyrelu"):
    try:
        m = importlib.import_module(name)
        print("%-8s %s  (%s)" % (name, getattr(m, "__version__", "?"), getattr(m, "__file__", "")))
    except Exception as exc:
        print("%-8s not importable: %s" % (name, exc))
try:
    import torch
    print("torch cuda:", torch.version.cuda, "available:", torch.cuda.is_available(),
          "cudnn:", torch.backends.cudnn.version())
except Exception as exc:
    print("torch:", exc)
EOF
    echo "== cupy"; $P -c "import cupy; cupy.show_config()"
    echo "== nvcc"; nvcc --version
    echo "== cyrelu"; $P -c "import cyrelu; cyrelu.show_config()"
} >"$OUTDIR/versions.txt" 2>&1
log "versions: $(grep -E '^(numpy|cupy|torch) ' "$OUTDIR/versions.txt" | awk '{printf "%s %s; ", $1, $2}')"

# ---- tests ------------------------------------------------------------------------------
log "running GPU tests"
if $P -c "import pytest" 2>/dev/null; then
    (cd "$REPO" && timeout 240 $P -m pytest tests/test_gpu.py tests/test_cuda_compile.py \
        -q -ra -p no:cacheprovider --durations=15 --junitxml="$OUTDIR/pytest-junit.xml") \
        >"$OUTDIR/pytest.log" 2>&1
    rc=$?
else  # no pytest on the machine and no network to get it: the bundled stand-in
    log "pytest is not installed: using tools/mini_pytest.py"
    (cd "$REPO" && timeout 240 "$RUN" tools/mini_pytest.py tests/test_gpu.py \
        tests/test_cuda_compile.py) >"$OUTDIR/pytest.log" 2>&1
    rc=$?
fi
[ $rc -ne 0 ] && status=1
log "tests: exit $rc; $(tail -1 "$OUTDIR/pytest.log")"
if [ $rc -ne 0 ]; then
    grep -E "^(FAILED|ERROR)" "$OUTDIR/pytest.log" | head -40 | tee -a "$OUTDIR/summary.txt"
fi
if grep -qE "SKIPPED.*test_gpu.py.*(could not import|no usable CUDA device)" "$OUTDIR/pytest.log"; then
    log "WARNING: the GPU tests were skipped (no CuPy or no usable device): nothing was checked"
    status=1
fi

# ---- benchmark --------------------------------------------------------------------------
# The suite driver if it is there (bench.py --gpu calls bench_gpu.run), and the suite on
# its own as well, which also writes the JSON with the targets.
# GPU_CHECK_SMOKE=1: tiny benchmark sizes and no driver run (for trying the script out
# against tests/cuda_emulation, which runs the kernels on the CPU)
BENCH_ARGS="--quick"
[ "${GPU_CHECK_SMOKE:-0}" != 0 ] && BENCH_ARGS="--smoke"
left=$((400 - ($(date +%s) - START)))
if [ -f "$REPO/benchmarks/bench.py" ] && [ $left -gt 200 ] && [ "$BENCH_ARGS" = "--quick" ]; then
    log "running benchmarks/bench.py --gpu --quick"
    (cd "$REPO" && timeout $((left / 2)) "$RUN" benchmarks/bench.py --gpu --quick \
        --json "$OUTDIR/bench-driver.json") \
        >"$OUTDIR/bench-driver.txt" 2>&1
    log "bench.py --gpu: exit $?"
fi
left=$((410 - ($(date +%s) - START)))
if [ $left -gt 30 ]; then
    log "running benchmarks/bench_gpu.py $BENCH_ARGS (limit ${left}s)"
    (cd "$REPO" && timeout $left "$RUN" benchmarks/bench_gpu.py $BENCH_ARGS --json "$OUTDIR/bench.json") \
        >"$OUTDIR/bench.txt" 2>&1
    rc=$?
    log "bench_gpu.py: exit $rc"
    sed -n '/^targets:/,$p' "$OUTDIR/bench.txt" | tee -a "$OUTDIR/summary.txt"
else
    log "no time left for the benchmark"
fi
# copy the results into the source tree's benchmarks/results as well, if writable
if [ -f "$OUTDIR/bench.json" ] && [ -w "$REPO/benchmarks/results" ] && [ "$BENCH_ARGS" = "--quick" ]; then
    cp "$OUTDIR/bench.txt" "$REPO/benchmarks/results/gpu-latest.txt"
    cp "$OUTDIR/bench.json" "$REPO/benchmarks/results/gpu-latest.json"
fi

# host cost per call, kernels stubbed (benchmarks/gpu_host_cost.py)
if [ -f "$REPO/benchmarks/gpu_host_cost.py" ]; then
    (cd "$REPO" && timeout 120 "$RUN" benchmarks/gpu_host_cost.py) >"$OUTDIR/host-cost.txt" 2>&1
    log "host cost: exit $?"
    cat "$OUTDIR/host-cost.txt" | tee -a "$OUTDIR/summary.txt" >/dev/null
fi

rm -rf "$SITE"  # keep only the results
log "done in $(($(date +%s) - START))s, status $status"
exit $status
