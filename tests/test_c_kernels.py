"""The C kernel headers checked at the C level: tests/c/kernel_check.c, compiled with
the system C compiler and run on this machine.

The program compares every kernel family (activations, float16 conversions,
diagnostic counts, BatchNorm) with scalar references, for every instruction-set copy
the CPU supports (see its header comment).  It is built at -O1 here, to keep the
suite quick; tools/check_arm64.sh builds it at the extension's -O3, natively and
cross-compiled for aarch64.  Needs the source tree's include/ (skips when run
against an installed wheel from elsewhere) and a C compiler (``$CC`` or ``cc``).
"""

import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "c" / "kernel_check.c"
HEADERS = ROOT / "include" / "cyrelu"


def _compiler():
    cc = os.environ.get("CC", "cc").split()
    return cc if cc and shutil.which(cc[0]) else None


def _compile(flags, source, *rest, timeout=300):
    """The C compiler run on `source` against the headers (the test shim and include/),
    with `flags` before and `rest` after; the finished process."""
    cmd = [
        *_compiler(),
        *flags,
        "-I" + str(ROOT / "tests" / "c" / "shim"),
        "-I" + str(ROOT / "include"),
        str(source),
        *rest,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


pytestmark = [
    pytest.mark.source_check,
    pytest.mark.skipif(
        not (SOURCE.is_file() and HEADERS.is_dir()),
        reason="needs the source tree's tests/c and include/",
    ),
    pytest.mark.skipif(_compiler() is None, reason="no C compiler (cc or $CC)"),
]


def test_kernel_check_passes(tmp_path):
    exe = tmp_path / "kernel_check"
    build = _compile(
        ["-O1", "-fno-math-errno", "-fno-trapping-math"],
        SOURCE,
        "-o",
        str(exe),
        "-lm",
        timeout=900,
    )
    assert build.returncode == 0, "compilation failed:\n" + build.stderr[-4000:]
    env = dict(os.environ)
    env.pop("CYRELU_ISA", None)  # check every copy the CPU has
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=900, env=env)
    lines = run.stdout.strip().splitlines()
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert (
        lines
        and lines[-1].startswith("kernel_check: ")
        and lines[-1].endswith(" passed, 0 failed")
    ), run.stdout[-2000:]


@pytest.mark.parametrize(
    "name,flags",
    [
        ("bn_kernel_cost.c", []),
        ("bn_paced_rows.c", []),
        ("bn_row_reads.c", []),
        ("bn_row_reads.c", ["-DF64"]),
        ("bn_channel_forward.c", ["-DKERNELS=new"]),
        ("bn_channel_forward.c", ["-DWITH_OLD"]),
    ],
)
def test_kernel_cost_benchmark_compiles(tmp_path, name, flags):
    """benchmarks/bn_kernel_cost.c (the BatchNorm kernels' cost per element in cache),
    bn_paced_rows.c (their long rows read from memory), bn_row_reads.c (the row
    layout's, float32 and float64) and bn_channel_forward.c (the per-channel training
    forward on threads: its kernel object and its driver) still compile against the
    headers' entry points, warnings as errors."""
    bench = ROOT / "benchmarks" / name
    if not bench.is_file():
        pytest.skip("needs the source tree's benchmarks/")
    build = _compile(["-O0", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", *flags], bench)
    assert build.returncode == 0, build.stderr[-4000:]


_READ_AHEAD_PROBE = """
#include "cyrelu/batchnorm.h"
void probe(int act, const float *dy, const float *x, const float *y, float *dx,
           Py_ssize_t rows, Py_ssize_t w, const float *p, const float *sc, const float *sh) {
    %s;
}
"""


@pytest.mark.parametrize(
    "call",
    [
        "cyr_bn_dx_cols_f32(act, 1, dy, x, y, dx, rows, w, p, p, p, p, 0.f, 0.f, sc, sh)",
        "cyr_bn_dx_cols_stream_f32(act, 1, dy, x, y, dx, rows, w, p, p, p, p, 0.f, 0.f, sc, sh)",
    ],
    ids=["dx_cols", "dx_cols_stream"],
)
def test_row_layout_read_ahead_survives_the_optimiser(tmp_path, call):
    """The row layout's gradient passes prefetch short rows ahead (batchnorm.h,
    CYR_BN_AHEAD_BYTES), and the compiler keeps those prefetches at the extension's -O3.
    A helper that once wrapped them compiled to nothing under GCC 12, which no result
    shows: only the time did (relu from bias= on channels-last data took twice as long)."""
    src = tmp_path / "probe.c"
    src.write_text(_READ_AHEAD_PROBE % call)
    asm = tmp_path / "probe.s"
    flags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-S"]
    build = _compile(flags, src, "-o", str(asm))
    assert build.returncode == 0, build.stderr[-4000:]
    text = asm.read_text()
    # x86-64: prefetcht0 / prefetchw; aarch64: prfm
    assert re.search(r"\bprefetch|\bprfm\b", text), "no prefetch instruction left in " + call


def _asm_with_and_without(tmp_path, source, knob):
    """The probe `source` compiled to assembly at the extension's -O3 (its
    optimisation_flags), as it is and with `knob` (a -D that compiles some prefetches
    out): the two texts."""
    src = tmp_path / "probe.c"
    src.write_text(source)
    texts = []
    for extra in ([], [knob]):
        asm = tmp_path / ("probe%d.s" % len(extra))
        flags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-S"]
        build = _compile(flags + extra, src, "-o", str(asm))
        assert build.returncode == 0, build.stderr[-4000:]
        texts.append(asm.read_text())
    return texts


def _prefetches(text):
    """Prefetch instructions in assembly text (x86-64: prefetcht0 and kin; aarch64: prfm)."""
    return len(re.findall(r"\bprefetch\w*|\bprfm\b", text))


_PACED_PROBE = """
#include "cyrelu/batchnorm.h"
void probe(const %(T)s *dy, const %(T)s *x, %(T)s *dx, Py_ssize_t outer, Py_ssize_t C,
           Py_ssize_t inner, const %(P)s *sc, const %(P)s *sh, double *sums, double *m) {
    %(call)s;
}
"""


@pytest.mark.parametrize(
    "T,P,call",
    [
        ("float", "float", "cyr_bn_backward_channel_f32(dy, x, NULL, dx, outer, C, inner, 0, "
         "0.0, 1.0, 1.0, 1, 0, 0.f, 0.f, sc, sh, 1, sums)"),
        ("float", "float", "cyr_bn_channel_stats_f32(x, outer, C, inner, 0, m, m + 1)"),
        ("cyr_half", "float", "cyr_bn_backward_channel_f16(dy, x, NULL, dx, outer, C, inner, "
         "0, 0.0, 1.0, 1.0, 1, 0, 0.f, 0.f, sc, sh, 1, sums)"),
        ("cyr_half", "float", "cyr_bn_channel_stats_f16(x, outer, C, inner, 0, m, m + 1)"),
    ],
    ids=["backward_f32", "stats_f32", "backward_f16", "stats_f16"],
)  # fmt: skip
def test_paced_rows_prefetches_survive_the_optimiser(tmp_path, T, P, call):
    """A channel's rows over 8 KiB are read paced, the next row prefetched piece by piece
    (batchnorm.h, CYR_BN_PACE_BYTES), and the compiler keeps those prefetches at the
    extension's -O3: the probe has more prefetch instructions than with the pacing
    compiled out (CYR_BN_PACE_BYTES=0).  A helper that took them for dy, x and y lost some
    or all of them under GCC 12."""
    texts = _asm_with_and_without(
        tmp_path, _PACED_PROBE % {"T": T, "P": P, "call": call}, "-DCYR_BN_PACE_BYTES=0"
    )
    counts = [_prefetches(text) for text in texts]
    assert counts[0] > counts[1] > 0, (call, counts)


_ROWS_AHEAD_PROBE = """
#include "cyrelu/batchnorm.h"
void probe(const %(T)s *dy, const %(T)s *x, const %(T)s *y, Py_ssize_t rows, Py_ssize_t w,
           const %(T)s *sc, const %(T)s *sh, double *m) {
    %(call)s;
}
"""


@pytest.mark.parametrize(
    "T,fn,call",
    [
        ("float", "group_colstats_f32",
         "cyr_bn_group_colstats_f32(x, rows, w, 256, m, m + w, m + 2 * w)"),
        ("double", "group_colstats_f64",
         "cyr_bn_group_colstats_f64(x, rows, w, 256, m, m + w, m + 2 * w)"),
        ("float", "dot_cols_f32",
         "cyr_bn_dot_cols_f32(0, dy, x, NULL, rows, w, m, 0.f, 0.f, sc, sh, m + w, m + 2 * w, "
         "NULL)"),
        ("float", "dot_cols_f32",
         "cyr_bn_dot_cols_f32(1, dy, x, y, rows, w, m, 0.f, 0.f, sc, sh, m + w, m + 2 * w, "
         "NULL)"),
    ],
    ids=["stats_f32", "stats_f64", "dot_f32", "dot_f32_relu"],
)  # fmt: skip
def test_row_layout_read_far_ahead_survives_the_optimiser(tmp_path, T, fn, call):
    """The row layout's statistics and the backward's sums read rows of 1 KiB and more
    four at a time, prefetching CYR_BN_ROWS_AHEAD_BYTES ahead in memory order
    (batchnorm.h), and the compiler keeps those prefetches at the extension's -O3: the
    probe has more prefetch instructions than with them compiled out
    (CYR_BN_ROWS_AHEAD_BYTES=0), and on x86-64 so has each vector copy (whose loop spells
    them out)."""
    texts = _asm_with_and_without(
        tmp_path, _ROWS_AHEAD_PROBE % {"T": T, "call": call}, "-DCYR_BN_ROWS_AHEAD_BYTES=0"
    )
    counts = [_prefetches(text) for text in texts]
    assert counts[0] > counts[1], (call, counts)
    # each vector copy (from its label to its .size directive) has more than without
    copies = [
        {
            name: _prefetches(body)
            for name, body in re.findall(
                r"^(cyr_bn_%s_avx\w*?)(?:\.\w+)*:\n(.*?)^\s*\.size" % fn, text, re.M | re.S
            )
        }
        for text in texts
    ]
    for name, n in copies[0].items():
        assert n > copies[1].get(name, 0), (call, name, copies)
