#!/usr/bin/env bash
# The C kernels on aarch64: the release wheels include manylinux aarch64 builds, so
# the kernel headers must compile there (only the baseline copy exists off x86-64)
# and give the same answers.  This script
#
#   1. installs, when missing and running as root on Debian/Ubuntu, the cross
#      compiler and qemu-user (gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user);
#   2. compiles tests/c/kernel_check.c natively with gcc and runs it (every
#      instruction-set copy the CPU supports);
#   3. cross-compiles it with aarch64-linux-gnu-gcc (-Wall -Wextra -Werror: nothing in
#      the baseline copy may even warn there), statically linked;
#   4. runs the aarch64 binary under qemu-aarch64 (or qemu-aarch64-static) when
#      available; without qemu the cross-compilation alone is checked, and it says so.
#
# Flags are the extension's: -O3 -fno-math-errno -fno-trapping-math -ffp-contract=off.  The kernel
# headers contain no OpenMP pragmas (threads live in the Cython layer), so the check
# is built without -fopenmp; should a header gain one, a -fopenmp build is added
# automatically.  The Cython-generated modules (cyrelu/*.c) are not cross-compiled:
# that needs the target's Python and NumPy headers (multiarch libpython3-dev:arm64),
# which this check does without.
#
# Environment:
#   CC=gcc                     the native compiler
#   CROSS_CC=aarch64-linux-gnu-gcc
#   CYRELU_ARM64_NO_INSTALL=1  never run apt-get (fail if the cross compiler is missing)
#   CYRELU_ARM64_REQUIRE_QEMU=1  fail, rather than skip the run, without qemu
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CC=${CC:-gcc}
CROSS_CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
T0=$SECONDS
step() { echo; echo "=== check_arm64 [$((SECONDS - T0))s] $*"; }
fail() { echo "check_arm64: FAILED: $*" >&2; exit 1; }

find_qemu() {
    local q
    for q in qemu-aarch64 qemu-aarch64-static; do
        if command -v "$q" >/dev/null 2>&1; then echo "$q"; return; fi
    done
}

step "tools"
if ! command -v "$CROSS_CC" >/dev/null 2>&1 || [ -z "$(find_qemu)" ]; then
    if [ "${CYRELU_ARM64_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || fail "apt-get update"
        apt-get install -y -qq --no-install-recommends \
            gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null \
            || fail "apt-get install of the aarch64 cross tools"
    fi
fi
command -v "$CC" >/dev/null 2>&1 || fail "no native compiler ($CC)"
command -v "$CROSS_CC" >/dev/null 2>&1 \
    || fail "no aarch64 cross compiler ($CROSS_CC); install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
QEMU=$(find_qemu)
echo "native: $("$CC" --version | head -n1)"
echo "cross:  $("$CROSS_CC" --version | head -n1)"
if [ -n "$QEMU" ]; then echo "qemu:   $("$QEMU" --version | head -n1)"; else echo "qemu:   none"; fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cyrelu-arm64.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FLAGS=(-O3 -fno-math-errno -fno-trapping-math -ffp-contract=off -Wall -Wextra -I"$ROOT/tests/c/shim" -I"$ROOT/include")
SRC="$ROOT/tests/c/kernel_check.c"
VARIANTS=("")
if grep -q "pragma omp" "$ROOT"/include/cyrelu/*.h; then VARIANTS+=("-fopenmp"); fi

# The summary line must say "0 failed".
run_check() {  # label, command...
    local label=$1 out
    shift
    out=$("$@") || { echo "$out"; fail "$label: kernel_check exited non-zero"; }
    echo "$out"
    grep -q "^kernel_check: [0-9]* passed, 0 failed$" <<<"$out" || fail "$label: no success line"
}

for extra in "${VARIANTS[@]}"; do
    tag=${extra:-no-openmp}
    # Both compilations at once (they take most of the time); then the runs.
    step "compile ($tag): native with $CC, aarch64 with $CROSS_CC"
    "$CC" "${FLAGS[@]}" $extra "$SRC" -o "$WORK/kernel_check_native" -lm \
        >"$WORK/native.log" 2>&1 &
    native_pid=$!
    cross_ok=0
    "$CROSS_CC" "${FLAGS[@]}" -Werror -static $extra "$SRC" -o "$WORK/kernel_check_aarch64" -lm \
        >"$WORK/cross.log" 2>&1 || cross_ok=$?
    native_ok=0
    wait "$native_pid" || native_ok=$?
    cat "$WORK/cross.log"
    [ "$cross_ok" = 0 ] || fail "aarch64 compilation ($tag)"
    [ "$native_ok" = 0 ] || { cat "$WORK/native.log"; fail "native compilation ($tag)"; }
    if command -v file >/dev/null 2>&1; then
        kind=$(file "$WORK/kernel_check_aarch64")   # captured: no grep -q on a pipe
        grep -q "ARM aarch64" <<<"$kind" || fail "the cross-compiled binary is not aarch64"
    fi

    step "run natively ($tag)"
    run_check "native ($tag)" "$WORK/kernel_check_native"

    step "run the aarch64 binary under qemu-user ($tag)"
    if [ -n "$QEMU" ]; then
        run_check "aarch64 under $QEMU ($tag)" "$QEMU" "$WORK/kernel_check_aarch64"
    elif [ "${CYRELU_ARM64_REQUIRE_QEMU:-0}" = 1 ]; then
        fail "no qemu-aarch64 to run the aarch64 binary"
    else
        echo "check_arm64: no qemu-aarch64: the aarch64 binary was compiled but not run"
    fi
done

step "done ($((SECONDS - T0))s)"
