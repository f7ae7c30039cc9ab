"""The special-function math of cyrelu/cuda/activation_special.h, at the C level.

The header is compiled into a small shared library with the system C compiler (once
per instruction set the compiler and the CPU support: baseline, AVX2 + FMA, AVX-512,
so that GCC's vectorised copies are the ones checked), loaded with ctypes and
evaluated over the whole float32 range (log-spaced magnitudes of both signs from the
smallest subnormal to the largest float, dense grids over the transition regions,
every float16 bit pattern, the special values) against float64 references, and in
double against mpmath.

Error rules.  float: |y - ref| <= 4 ulp(ref) (ulp of a subnormal: 2^-149), the
references computed in float64 by forms that do not cancel (erfc, expm1, sigmoid
from exp(-|z|)), each within 2^-40 relative: well below the half ulp that decides
the rounding.  double: |y - ref| <= 1e-14 max(|ref|, 2^-1022) against mpmath at 40
digits.  Derivatives with a zero (gelu' at -0.7518, tanh gelu' at -0.7528, silu' at
-1.2785, mish' at -1.1924) are differences of terms of size about 1/4 there, so they
are judged in ulps of max(|ref|, 1/16) (float) and relative to max(|ref|, 1/16)
(double): an absolute error of a few ulp of 1/16 where the value vanishes.

``python tests/test_special_math.py`` prints the measured maxima (ulp and relative
error per function and instruction set).
"""

import ctypes
import math
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADER = ROOT / "cyrelu" / "cuda" / "activation_special.h"

NAMES = ("elu", "celu", "selu", "silu", "softplus", "gelu", "mish")
# (function, a, b): the parameter sets checked; the derivative-zero floor applies to
# the derivatives listed in ZERO_FLOOR
CASES = [
    ("elu", 1.0, 0.0),
    ("elu", 0.5, 0.0),
    ("celu", 1.0, 0.0),
    ("celu", 2.5, 0.0),
    ("selu", 0.0, 0.0),
    ("silu", 0.0, 0.0),
    ("softplus", 1.0, 20.0),
    ("softplus", 2.0, 10.0),
    ("softplus", 0.25, 20.0),
    ("softplus", 3.0, 20.0),
    ("gelu", 0.0, 0.0),
    ("gelu", 1.0, 0.0),
    ("mish", 0.0, 0.0),
]
ZERO_FLOOR = {"silu", "gelu", "mish"}
SELU_SCALE_ALPHA = 1.7580993408473768  # selu's scale * alpha, rounded once
ZERO_SCALE = 0.25
FLOAT_ULP = 4.0
DOUBLE_REL = 1e-14

WRAPPER = """
#include "activation_special.h"
#define CYR_WRAP(name, T, S)                                                        \\
    void name##_fwd_##S##_v(const T *x, T *y, long n, T a, T b)                   \\
    { for (long i = 0; i < n; i++) y[i] = cyr_##name##_fwd_##S(x[i], a, b); }     \\
    void name##_grad_##S##_v(const T *x, T *y, long n, T a, T b)                  \\
    { for (long i = 0; i < n; i++) y[i] = cyr_##name##_grad_##S(x[i], a, b); }
#define CYR_WRAP2(name) CYR_WRAP(name, float, f) CYR_WRAP(name, double, d)
CYR_WRAP2(elu) CYR_WRAP2(celu) CYR_WRAP2(selu) CYR_WRAP2(silu) CYR_WRAP2(softplus)
CYR_WRAP2(gelu) CYR_WRAP2(mish)
int cyr_isa_ok(int isa)
{
#if defined(__x86_64__) || defined(__i386__)
    if (isa == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == 2) return __builtin_cpu_supports("avx512f");
#endif
    return isa == 0;
}
"""
ISAS = [("baseline", []), ("avx2", ["-mavx2", "-mfma"]), ("avx512", ["-mavx512f", "-mavx512dq"])]


def _compiler():
    cc = os.environ.get("CC", "cc").split()
    return cc if cc and shutil.which(cc[0]) else None


pytestmark = [
    pytest.mark.source_check,
    pytest.mark.skipif(not HEADER.is_file(), reason="needs the source tree's cyrelu/cuda"),
    pytest.mark.skipif(_compiler() is None, reason="no C compiler (cc or $CC)"),
]


def build(directory):
    """{isa: ctypes library} for each instruction set the compiler and CPU support."""
    src = pathlib.Path(directory) / "special.c"
    src.write_text(WRAPPER)
    libs = {}
    for i, (isa, flags) in enumerate(ISAS):
        so = pathlib.Path(directory) / f"special_{isa}.so"
        cmd = [
            *_compiler(),
            "-O3",
            "-fno-math-errno",
            "-fno-trapping-math",
            "-ffp-contract=off",
            "-std=c99",
            "-shared",
            "-fPIC",
            *flags,
            "-I" + str(HEADER.parent),
            str(src),
            "-o",
            str(so),
        ]
        build = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if build.returncode != 0:
            if i == 0:
                raise AssertionError("compilation failed:\n" + build.stderr[-4000:])
            continue  # the compiler lacks these flags (another architecture)
        lib = ctypes.CDLL(str(so))
        if lib.cyr_isa_ok(i):
            libs[isa] = lib
    return libs


def evaluate(lib, name, kind, x, a, b):
    """The library's f (kind 'fwd') or f' ('grad') over x (float32 or float64)."""
    s = "f" if x.dtype == np.float32 else "d"
    ctype = ctypes.c_float if s == "f" else ctypes.c_double
    fn = getattr(lib, f"{name}_{kind}_{s}_v")
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctype, ctype]
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    fn(x.ctypes.data, y.ctypes.data, x.size, ctype(a), ctype(b))
    return y


# ---- float32 points and float64 references ------------------------------------


def float_points():
    tiny = float(np.float32(2.0**-149))
    big = float(np.finfo(np.float32).max)
    mags = np.minimum(np.geomspace(tiny, big, 400_000), big)
    dense = np.linspace(-16, 16, 200_001)
    tails = np.linspace(-160, 160, 100_001)
    half = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, tiny, -tiny, big, -big, 2.0**-126, -(2.0**-126)]
    with np.errstate(invalid="ignore"):  # the NaN
        return np.concatenate([mags, -mags, dense, tails, half, special]).astype(np.float32)


def _sigmoid(z):
    """sigmoid(z) and 1 - sigmoid(z) in float64, neither by a subtraction."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z)), 1.0 / (1.0 + np.exp(z))


_erfc = np.frompyfunc(math.erfc, 1, 1)


def float_reference(name, kind, x, a, b):
    """float64 references computed from float32 x and parameters."""
    x = x.astype(np.float64)
    a32, b32 = float(np.float32(a)), float(np.float32(b))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if name in ("elu", "selu", "celu"):
            scale = 1.0507009873554804934 if name == "selu" else 1.0
            alpha = 1.6732632423543772848 if name == "selu" else a32
            y = x / a32 if name == "celu" else x
            if kind == "fwd":
                out = np.where(x > 0, scale * x, scale * alpha * np.expm1(y))
            else:
                neg = alpha * scale * np.exp(y) if name != "celu" else np.exp(y)
                out = np.where(x > 0, scale, neg)
        elif name == "silu":
            s, sm = _sigmoid(x)
            out = x * s if kind == "fwd" else s * (1 + x * sm)
        elif name == "softplus":
            z = x * a32  # exact in float64
            zf = z.astype(np.float32).astype(np.float64)  # torch's rounded compare
            if kind == "fwd":
                lp = np.log1p(np.exp(-np.abs(z))) / a32
                out = np.where(z > 0, x + lp, lp)
                out = np.where(zf > b32, x, out)
            else:
                out = np.where(zf > b32, 1.0, _sigmoid(z)[0])
        elif name == "gelu" and a == 0:
            phi = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
            cdf = 0.5 * _erfc(-x / math.sqrt(2)).astype(np.float64)
            out = x * cdf if kind == "fwd" else cdf + x * phi
        elif name == "gelu":
            c = 2 * math.sqrt(2 / math.pi)
            z = c * x * (1 + 0.044715 * x * x)
            s, sm = _sigmoid(z)
            dz = c * (1 + 3 * 0.044715 * x * x)
            out = x * s if kind == "fwd" else s * (1 + x * sm * dz)
        else:  # mish
            sp = np.where(x > 30, x, np.log1p(np.exp(x)))
            t = np.tanh(sp)
            sech2 = 1 / np.cosh(sp) ** 2
            if kind == "fwd":
                out = x * t
            else:
                out = t + x * sech2 * _sigmoid(x)[0]
        if name in ("silu", "gelu", "mish"):  # the limits at +-inf
            out = np.where(np.isinf(x), np.where(x > 0, x if kind == "fwd" else 1.0, 0.0), out)
    return out


def ulp_errors(y, ref, floor=0.0):
    """|y - ref| in ulps of float32 at max(|ref|, floor); NaN where only one is NaN."""
    y = y.astype(np.float64)
    with np.errstate(over="ignore"):  # the correctly rounded value of a ref > FLT_MAX is inf
        ref = np.where(np.isinf(ref.astype(np.float32)), ref.astype(np.float32), ref)
    mag = np.maximum(np.abs(ref), floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.floor(np.log2(np.where(mag > 0, mag, 1.0)))
    ulp = np.exp2(np.maximum(e, -126) - 23)
    ulp = np.where(mag > 0, ulp, 2.0**-149)
    same = (y == ref) | (np.isnan(y) & np.isnan(ref))
    with np.errstate(invalid="ignore"):
        err = np.where(same, 0.0, np.abs(y - ref) / ulp)
    return np.where(np.isnan(err), np.inf, err)


# ---- double points and mpmath references --------------------------------------


def double_points(n=15_000):
    rng = np.random.default_rng(7)
    mags = np.exp(rng.uniform(math.log(1e-30), math.log(1e4), n // 2))
    dense = rng.uniform(-42, 42, n - 2 * (n // 2))
    x = np.concatenate([mags, -mags, dense, [0.0, 1e-310, -1e-310, 1e300, -1e300]])
    return x


def mp_reference(name, kind, x, a, b):
    import mpmath as mp

    mp.mp.dps = 40
    out = np.empty(x.size)
    for i, xv in enumerate(x.tolist()):
        t = mp.mpf(xv)
        if abs(xv) > 1e5:  # beyond the exponentials' range: the limits, exactly
            scale = 1.0507009873554804934193349852946 if name == "selu" else 1.0
            if xv > 0:
                out[i] = scale * xv if kind == "fwd" else scale
            elif kind == "fwd" and name in ("elu", "celu", "selu"):
                alpha = 1.6732632423543772848170429916717 if name == "selu" else a
                out[i] = -scale * alpha
            else:
                out[i] = -0.0 if kind == "fwd" and name != "softplus" else 0.0
            continue
        if name in ("elu", "selu", "celu"):
            scale = mp.mpf("1.0507009873554804934193349852946") if name == "selu" else 1
            alpha = mp.mpf("1.6732632423543772848170429916717") if name == "selu" else mp.mpf(a)
            y = t / alpha if name == "celu" else t
            if kind == "fwd":
                v = scale * t if t > 0 else scale * alpha * mp.expm1(y)
            else:
                v = (
                    scale
                    if t > 0
                    else (mp.exp(y) if name == "celu" else scale * alpha * mp.exp(y))
                )
        elif name == "silu":
            s = 1 / (1 + mp.exp(-t))
            v = t * s if kind == "fwd" else s * (1 + t * (1 - s))
        elif name == "softplus":
            z = t * mp.mpf(a)
            if z > b:
                v = t if kind == "fwd" else 1
            else:
                v = mp.log1p(mp.exp(z)) / a if kind == "fwd" else 1 / (1 + mp.exp(-z))
        elif name == "gelu" and a == 0:
            cdf = mp.erfc(-t / mp.sqrt(2)) / 2
            v = t * cdf if kind == "fwd" else cdf + t * mp.npdf(t)
        elif name == "gelu":
            z = 2 * mp.sqrt(2 / mp.pi) * (t + mp.mpf("0.044715") * t**3)
            s = 1 / (1 + mp.exp(-z))
            dz = 2 * mp.sqrt(2 / mp.pi) * (1 + 3 * mp.mpf("0.044715") * t**2)
            v = t * s if kind == "fwd" else s + t * s * (1 - s) * dz
        else:
            tt = mp.tanh(mp.log1p(mp.exp(t)))
            v = t * tt if kind == "fwd" else tt + t * (1 - tt**2) / (1 + mp.exp(-t))
        out[i] = float(v)
    return out


def rel_errors(y, ref, floor=0.0):
    mag = np.maximum(np.maximum(np.abs(ref), floor), 2.0**-1022)
    same = (y == ref) | (np.isnan(y) & np.isnan(ref))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(same, 0.0, np.abs(y - ref) / mag)
    return np.where(np.isnan(err), np.inf, err)


# ---- the tests ----------------------------------------------------------------


@pytest.fixture(scope="module")
def libs(tmp_path_factory):
    return build(tmp_path_factory.mktemp("special"))


@pytest.fixture(scope="module")
def fpoints():
    return float_points()


def float_max_errors(libs, x):
    """{(case, kind, isa): max ulp error} over x."""
    table = {}
    for name, a, b in CASES:
        for kind in ("fwd", "grad"):
            ref = float_reference(name, kind, x, a, b)
            floor = ZERO_SCALE if kind == "grad" and name in ZERO_FLOOR else 0.0
            for isa, lib in libs.items():
                err = ulp_errors(evaluate(lib, name, kind, x, a, b), ref, floor)
                table[(f"{name}({a:g},{b:g})", kind, isa)] = (
                    float(err.max()),
                    float(x[err.argmax()]),
                )
    return table


def test_float_within_4_ulp(libs, fpoints):
    assert fpoints.size >= 1_000_000
    bad = {k: v for k, v in float_max_errors(libs, fpoints).items() if not v[0] <= FLOAT_ULP}
    assert not bad, bad


def test_double_against_mpmath(libs):
    x = double_points()
    bad = {}
    for name, a, b in CASES:
        for kind in ("fwd", "grad"):
            ref = mp_reference(name, kind, x, a, b)
            floor = ZERO_SCALE if kind == "grad" and name in ZERO_FLOOR else 0.0
            for isa, lib in libs.items():
                err = rel_errors(evaluate(lib, name, kind, x, a, b), ref, floor)
                if not err.max() <= DOUBLE_REL:
                    bad[(name, a, b, kind, isa)] = (float(err.max()), float(x[err.argmax()]))
    assert not bad, bad


@pytest.mark.parametrize("kind", ["fwd", "grad"])
def test_special_values(libs, kind):
    """NaN -> NaN; the limits at +-inf; -0.0 kept where torch keeps it."""
    lib = libs["baseline"]
    for dtype in (np.float32, np.float64):
        x = np.array([np.nan, np.inf, -np.inf, -0.0], dtype=dtype)
        for name, a, b in CASES:
            y = evaluate(lib, name, kind, x, a, b)
            assert np.isnan(y[0]), (name, a, kind, dtype)
            if kind == "fwd":
                lim_neg = {"elu": -a, "celu": -a, "selu": -SELU_SCALE_ALPHA}.get(name, 0.0)
                assert y[1] == np.inf, (name, a, kind, dtype)
                assert y[2] == np.asarray(lim_neg, dtype=dtype), (name, a, kind, dtype, y[2])
                if name != "softplus":
                    assert y[3] == 0 and np.signbit(y[3]), (name, a, kind, dtype)
            else:
                lim_pos = 1.0507009873554805 if name == "selu" else 1.0
                assert y[1] == np.asarray(lim_pos, dtype=dtype), (name, a, kind, dtype, y[1])
                assert y[2] == 0, (name, a, kind, dtype, y[2])


def main():
    with tempfile.TemporaryDirectory() as d:
        lib_map = build(d)
        x = float_points()
        print(
            f"float32: {x.size} points, max error in ulp"
            " (derivatives with a zero: ulp of max(|f'|, 1/4))"
        )
        for (case, kind, isa), (err, at) in float_max_errors(lib_map, x).items():
            print(f"  {case:18s} {kind:4s} {isa:8s} {err:6.3f}  at x = {at:.9g}")
        xd = double_points()
        print(f"double: {xd.size} points against mpmath, max relative error")
        for name, a, b in CASES:
            for kind in ("fwd", "grad"):
                ref = mp_reference(name, kind, xd, a, b)
                floor = ZERO_SCALE if kind == "grad" and name in ZERO_FLOOR else 0.0
                errs = [
                    rel_errors(evaluate(lib, name, kind, xd, a, b), ref, floor).max()
                    for lib in lib_map.values()
                ]
                print(f"  {name}({a:g},{b:g}) {kind:4s} {max(errs):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def test_special_activations_list_matches_the_math():
    """activation_table.h's CYR_SPECIAL_ACTIVATIONS (the activations the vector float16
    kernels run on float tiles) is exactly the set whose math is CYR_SPECIAL: one
    missing would run a placeholder that gives NaN."""
    import re

    cuda = ROOT / "cyrelu" / "cuda"
    math_h = (cuda / "activation_math.h").read_text()
    uses = set(re.findall(r"#define CYR_FWD_(\w+)\(v, a, b\) CYR_SPECIAL\(", math_h))
    table_h = (cuda / "activation_table.h").read_text()
    body = table_h.split("#define CYR_SPECIAL_ACTIVATIONS(X)", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"X\((\w+), \w+\)", body))
    assert uses == listed == set(NAMES)
