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
# Every step has a time limit; the whole run stays under about 8 minutes.
#
# Written to OUTDIR:
#   summary.txt        device, versions, test counts, benchmark targets (read this first)
#   nvidia-smi.txt     nvidia-smi and nvidia-smi -q
#   versions.txt       python, numpy, cupy, torch, nvcc, cyrelu.show_config()
#   install.log        the pip build and install
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

# ---- install ----------------------------------------------------------------------------
# Into a private directory under OUTDIR (put first on PYTHONPATH), built by the system
# Python with its own setuptools/Cython/NumPy: the system site-packages are not touched,
# and no virtual environment's bundled (possibly older) setuptools gets in the way.
SITE="$OUTDIR/.site"
rm -rf "$SITE"
RUN="$PY"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-$(mktemp -d)/cupy-cache}"
log "installing into $SITE"
timeout 240 "$PY" -m pip install -v --no-build-isolation --no-deps --no-index \
    --target "$SITE" "$REPO" >"$OUTDIR/install.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
    log "INSTALL FAILED (exit $rc); last lines of install.log:"
    tail -25 "$OUTDIR/install.log" | tee -a "$OUTDIR/summary.txt"
    exit 1
fi
log "installed"

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
    (cd "$REPO" && timeout 270 $P -m pytest tests/test_gpu.py tests/test_cuda_compile.py \
        -q -ra -p no:cacheprovider --durations=10 --junitxml="$OUTDIR/pytest-junit.xml") \
        >"$OUTDIR/pytest.log" 2>&1
    rc=$?
else  # no pytest on the machine and no network to get it: the bundled stand-in
    log "pytest is not installed: using tools/mini_pytest.py"
    (cd "$REPO" && timeout 270 "$RUN" tools/mini_pytest.py tests/test_gpu.py \
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
left=$((480 - ($(date +%s) - START)))
if [ -f "$REPO/benchmarks/bench.py" ] && [ $left -gt 200 ] && [ "$BENCH_ARGS" = "--quick" ]; then
    log "running benchmarks/bench.py --gpu --quick"
    (cd "$REPO" && timeout $((left / 2)) "$RUN" benchmarks/bench.py --gpu --quick \
        --json "$OUTDIR/bench-driver.json") \
        >"$OUTDIR/bench-driver.txt" 2>&1
    log "bench.py --gpu: exit $?"
fi
left=$((470 - ($(date +%s) - START)))
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

rm -rf "$SITE"  # keep only the results
log "done in $(($(date +%s) - START))s, status $status"
exit $status
