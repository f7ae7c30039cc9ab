"""Speed of cyrelu/cuda/activation_special.h against torch, one thread, float32.

    python benchmarks/bench_special.py [--n 1000000] [--repeat 30]

Compiles plain loops over the header's functions with the system C compiler at the
extension's flags (-O3 -ffp-contract=off -fno-math-errno -fno-trapping-math), once per
instruction set the CPU has (AVX2 + FMA, AVX-512), and times over n float32 values:
  fwd   y[i] = f(x[i])
  bwd   y[i] = g[i] * f'(x[i])   (what a backward kernel does)
against torch.nn.functional's forward and aten's *_backward with
torch.set_num_threads(1), in the same run (the minimum of --repeat runs each, in
ns/element).

    python benchmarks/bench_special.py --against DIR

compares the header with another copy of it instead (DIR holds an
activation_special.h, e.g. from `git show REV:cyrelu/cuda/activation_special.h`): both
are compiled and their loops called in turn, in a new order every round, in one
process, so the ratios hold however fast the machine is at the moment.

The figures are a proxy: the integrated kernels add their own loop structure.  The
targets (issue #12): each forward at most 0.83x torch's, each
backward at most 1.5x its own forward.
"""

import argparse
import ctypes
import os
import pathlib
import random
import shutil
import subprocess
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADER_DIR = ROOT / "cyrelu" / "cuda"

# (label, C function stem, a, b)
CASES = [
    ("elu", "elu", 1.0, 0.0),
    ("celu", "celu", 1.0, 0.0),
    ("selu", "selu", 0.0, 0.0),
    ("silu", "silu", 0.0, 0.0),
    ("softplus", "softplus", 1.0, 20.0),
    ("gelu", "gelu_erf", 0.0, 0.0),
    ("gelu_tanh", "gelu_tanh", 1.0, 0.0),
    ("mish", "mish", 0.0, 0.0),
]

SOURCE = """
#include "activation_special.h"
#define P(stem) \\
void stem##_fwd(const float *restrict x, float *restrict y, long n, float a, float b) \\
{ for (long i = 0; i < n; i++) y[i] = cyr_##stem##_fwd_f(x[i], a, b); } \\
void stem##_bwd(const float *restrict g, const float *restrict x, float *restrict y, \\
                long n, float a, float b) \\
{ for (long i = 0; i < n; i++) y[i] = g[i] * cyr_##stem##_grad_f(x[i], a, b); }
#define G(stem) \\
void stem##_fwd(const float *restrict x, float *restrict y, long n, float a, float b) \\
{ (void)a; (void)b; for (long i = 0; i < n; i++) y[i] = cyr_##stem##_fwd_f(x[i]); } \\
void stem##_bwd(const float *restrict g, const float *restrict x, float *restrict y, \\
                long n, float a, float b) \\
{ (void)a; (void)b; for (long i = 0; i < n; i++) y[i] = g[i] * cyr_##stem##_grad_f(x[i]); }
P(elu) P(celu) P(selu) P(silu) P(softplus) G(gelu_erf) G(gelu_tanh) P(mish)
int isa_ok(int isa)
{
    if (isa == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return __builtin_cpu_supports("avx512f");
}
"""
ISAS = [
    ("avx2", ["-mavx2", "-mfma"]),
    ("avx512", ["-mavx512f", "-mavx512dq", "-mprefer-vector-width=512"]),
]


def build(directory, header_dir=HEADER_DIR):
    src = pathlib.Path(directory) / "bench_special.c"
    src.write_text(SOURCE)
    cc = os.environ.get("CC", "cc").split()
    if not shutil.which(cc[0]):
        raise SystemExit("no C compiler (cc or $CC)")
    libs = {}
    for i, (isa, flags) in enumerate(ISAS, start=1):
        so = pathlib.Path(directory) / f"bench_special_{isa}.so"
        cmd = [
            *cc,
            "-O3",
            "-ffp-contract=off",
            "-fno-math-errno",
            "-fno-trapping-math",
            "-std=c99",
            "-shared",
            "-fPIC",
            *flags,
            "-I" + str(header_dir),
            str(src),
            "-o",
            str(so),
        ]
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            lib = ctypes.CDLL(str(so))
            if lib.isa_ok(i):
                libs[isa] = lib
    return libs


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def torch_pairs(torch, x, g):
    F = torch.nn.functional
    aten = torch.ops.aten
    sa = (1.0507009873554805, 1.6732632423543772)
    return {
        "elu": (lambda: F.elu(x), lambda: aten.elu_backward(g, 1.0, 1, 1, False, x)),
        "celu": (lambda: F.celu(x), lambda: aten.elu_backward(g, 1.0, 1, 1.0, False, x)),
        "selu": (lambda: F.selu(x), lambda: aten.elu_backward(g, sa[1], sa[0], 1, False, x)),
        "silu": (lambda: F.silu(x), lambda: aten.silu_backward(g, x)),
        "softplus": (lambda: F.softplus(x), lambda: aten.softplus_backward(g, x, 1.0, 20.0)),
        "gelu": (lambda: F.gelu(x), lambda: aten.gelu_backward(g, x)),
        "gelu_tanh": (
            lambda: F.gelu(x, approximate="tanh"),
            lambda: aten.gelu_backward(g, x, approximate="tanh"),
        ),
        "mish": (lambda: F.mish(x), lambda: aten.mish_backward(g, x)),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--against", metavar="DIR", help="compare with DIR/activation_special.h")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(args.n).astype(np.float32) * 3
    g = rng.standard_normal(args.n).astype(np.float32)
    y = np.empty_like(x)
    n = args.n
    if args.against:
        compare(pathlib.Path(args.against), x, g, y, args.repeat)
        return
    try:
        import torch

        torch.set_num_threads(1)
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        pairs = torch_pairs(torch, tx, tg)
    except ImportError:
        pairs = {}
    with tempfile.TemporaryDirectory() as d:
        libs = build(d)
        head = "".join(
            f" {isa + ' fwd':>11s} {isa + ' bwd':>11s} {'bwd/fwd':>7s} {'fwd/torch':>9s}"
            for isa in libs
        )
        print(f"ns/element over {n} float32, one thread, min of {args.repeat}")
        print(f"{'':10s} {'torch fwd':>9s} {'torch bwd':>9s}{head}")
        xp, gp, yp = (a.ctypes.data_as(ctypes.c_void_p) for a in (x, g, y))
        for label, stem, a, b in CASES:
            row = f"{label:10s}"
            if label in pairs:
                tf = best(pairs[label][0], args.repeat) / n * 1e9
                tb = best(pairs[label][1], args.repeat) / n * 1e9
                row += f" {tf:9.3f} {tb:9.3f}"
            else:
                tf = float("nan")
                row += f" {'-':>9s} {'-':>9s}"
            for lib in libs.values():
                fwd, bwd = getattr(lib, stem + "_fwd"), getattr(lib, stem + "_bwd")
                ca, cb = ctypes.c_float(a), ctypes.c_float(b)
                f = best(lambda: fwd(xp, yp, ctypes.c_long(n), ca, cb), args.repeat) / n * 1e9
                bw = best(lambda: bwd(gp, xp, yp, ctypes.c_long(n), ca, cb), args.repeat) / n * 1e9
                row += f" {f:11.3f} {bw:11.3f} {bw / f:7.2f} {f / tf:9.2f}"
            print(row)


def compare(other_dir, x, g, y, repeat):
    """Each loop of other_dir's header and of this one, called in turn (shuffled)."""
    if not (other_dir / "activation_special.h").is_file():
        raise SystemExit(f"no activation_special.h in {other_dir}")
    n = x.size
    xp, gp, yp = (a.ctypes.data_as(ctypes.c_void_p) for a in (x, g, y))
    with tempfile.TemporaryDirectory() as d0, tempfile.TemporaryDirectory() as d1:
        libs = {"other": build(d0, other_dir), "this": build(d1)}
        print(f"ns/element over {n} float32, one thread, best of {repeat} interleaved calls:")
        print(f"{other_dir}/activation_special.h -> this one")
        rand = random.Random(0)
        for isa in libs["this"]:
            print(isa)
            for label, stem, a, b in CASES:
                ca, cb, cn = ctypes.c_float(a), ctypes.c_float(b), ctypes.c_long(n)
                row = f"  {label:10s}"
                for kind in ("fwd", "bwd"):
                    calls = {}
                    for k, lib in libs.items():
                        f = getattr(lib[isa], f"{stem}_{kind}")
                        head = (xp, yp) if kind == "fwd" else (gp, xp, yp)
                        calls[k] = lambda f=f, head=head: f(*head, cn, ca, cb)
                    t = {k: float("inf") for k in calls}
                    order = list(calls)
                    for _ in range(repeat):
                        rand.shuffle(order)
                        for k in order:
                            t0 = time.perf_counter()
                            calls[k]()
                            t[k] = min(t[k], time.perf_counter() - t0)
                    old, new = t["other"] / n * 1e9, t["this"] / n * 1e9
                    row += f"  {kind} {old:.3f} -> {new:.3f} ({new / old:.2f}x)"
                print(row)


if __name__ == "__main__":
    main()
