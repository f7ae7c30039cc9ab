"""Fit the polynomial coefficients of cyrelu/cuda/activation_special.h, reproducibly.

    python tools/fit_special.py            # prints the header's generated macros
    python tools/fit_special.py --check    # with each fit's error as a comment

Each fit is a weighted least-squares polynomial on Chebyshev nodes (three nodes per
coefficient), solved in mpmath at 50 digits, with weight 1/|f| (relative error; where
f has a zero the weight is capped at 1/floor).  Least squares on Chebyshev nodes comes
within a small factor of the minimax error, which the budgets below leave room for.
The coefficients are then rounded to the target type (float or double), and the
error of the rounded polynomial, evaluated exactly, is measured on 4000 points.

exp and atanh are written in Estrin's scheme, the gelu pieces in Horner's (see
estrin(): with a coefficient chosen per element among three, Estrin's made gelu's
AVX-512 loop 7% slower, where it made the others 3-14% faster).

Tables (the variable v of every polynomial is chosen so that |v| <= 1 or so):
  exp      e^r = 1 + r + r^2 Q(r),  |r| <= ln2/2              Q relative error
  atanh    log1p(e) = 2s + s^3 P(s^2),  s = e/(2+e) in [0, 1/3]  P relative error
  gelu_r   R(u) = erfc(u/sqrt2) e^(u^2/2) / 2 on u >= 0, by three pieces (so that
           GCC if-converts the choice of coefficients: five did not): piece i covers
           [lo, hi) with v = (u - mid) / half; the last piece, from lo out to the
           clamp u = 15 (float) or 40 (double), uses v = 2 (lo/u)^2 - 1 and
           R = P(v)/u (the asymptotic form)
  gelu_h   H(u) = u/sqrt(2 pi) - R(u) (for gelu', fitted directly), the same pieces
           with H = u P(v) on the last; H has a zero at u = 0.7518 (the zero of
           gelu'), where the weight is capped (absolute error 2^-p there)
"""

import argparse

import mpmath as mp
import numpy as np

mp.mp.dps = 50

LN2 = mp.log(2)


def _round(c, kind):
    """c rounded to float32 or float64, as an mpf."""
    if kind == "float":
        return mp.mpf(float(np.float32(float(c))))
    return mp.mpf(float(c))


def fit(func, lo, hi, deg, vmap, kind, floor=None, nodes=None):
    """Coefficients (rounded to kind) of the polynomial in v = vmap(x) approximating
    func on [lo, hi], and the maximum weighted error of the rounded polynomial."""
    n = nodes or 3 * (deg + 1)
    xs = [(lo + hi) / 2 + (hi - lo) / 2 * mp.cos(mp.pi * (k + mp.mpf(0.5)) / n) for k in range(n)]
    rows, rhs = [], []
    for x in xs:
        f = func(x)
        w = 1 / max(abs(f), floor) if floor else 1 / abs(f)
        v = vmap(x)
        rows.append([w * v**j for j in range(deg + 1)])
        rhs.append(w * f)
    coef, _ = mp.qr_solve(mp.matrix(rows), mp.matrix(rhs))
    coef = [_round(coef[j], kind) for j in range(deg + 1)]
    err = 0
    for k in range(4001):
        x = lo + (hi - lo) * k / 4000
        f = func(x)
        v = vmap(x)
        p = mp.mpf(0)
        for c in reversed(coef):
            p = p * v + c
        scale = max(abs(f), floor) if floor else abs(f)
        err = max(err, abs(p - f) / scale)
    return coef, err


def _exp_q(r):
    if abs(r) < mp.mpf("1e-20"):
        return mp.mpf(0.5) + r / 6
    return (mp.exp(r) - 1 - r) / r**2


def _atanh_p(w):
    if w < mp.mpf("1e-30"):
        return mp.mpf(2) / 3
    s = mp.sqrt(w)
    return (2 * mp.atanh(s) - 2 * s) / s**3


def gelu_r(u):
    return mp.erfc(u / mp.sqrt(2)) * mp.exp(u * u / 2) / 2


def gelu_h(u):
    return u / mp.sqrt(2 * mp.pi) - gelu_r(u)


# the pieces of gelu_r / gelu_h: (lo, hi, mid, half); the last is the 1/u^2 tail
PIECES = {
    "float": [(0, 2, 1, 1), (2, 4, 3, 1), (4, 15, None, None)],
    "double": [(0, 2, 1, 1), (2, 4, 3, 1), (4, 40, None, None)],
}
DEGREES = {
    "float": {"exp": 5, "atanh": 4, "gelu": 10},
    "double": {"exp": 9, "atanh": 11, "gelu": 22},
}


def tail_map(lo, hi):
    """v = (lo/u)^2 * 2 - 1 - the tail's variable, in [-1, 1) on [lo, hi)."""
    return lambda u: 2 * (mp.mpf(lo) / u) ** 2 - 1


def tables(kind):
    deg = DEGREES[kind]
    out = {}
    half_ln2 = LN2 / 2
    out["exp"] = fit(_exp_q, -half_ln2, half_ln2, deg["exp"], lambda r: r, kind)
    out["atanh"] = fit(_atanh_p, mp.mpf(0), mp.mpf(1) / 9, deg["atanh"], lambda w: w, kind)
    for name, func in (("gelu_r", gelu_r), ("gelu_h", gelu_h)):
        pieces = []
        for lo, hi, mid, half in PIECES[kind]:
            lo, hi = mp.mpf(lo), mp.mpf(hi)
            floor = mp.mpf(0.05) if name == "gelu_h" else None
            if mid is None:
                # R = P(v)/u (R ~ 1/u), H = u P(v) (H ~ u): P tends to a constant
                if name == "gelu_r":
                    tail = lambda u, f=func: f(u) * u  # noqa: E731
                else:
                    tail = lambda u, f=func: f(u) / u  # noqa: E731
                pieces.append(fit(tail, lo, hi, deg["gelu"], tail_map(lo, hi), kind, floor))
            else:
                mid, half = mp.mpf(mid), mp.mpf(half)
                pieces.append(
                    fit(
                        func,
                        lo,
                        hi,
                        deg["gelu"],
                        lambda u, c=mid, h=half: (u - c) / h,
                        kind,
                        floor,
                    )
                )
        out[name] = pieces
    return out


def c_literal(c, kind):
    s = repr(float(c))
    if "e" not in s and "." not in s:
        s += ".0"
    return s + ("f" if kind == "float" else "")


def horner(coefs, var):
    """Horner's scheme for one polynomial: coefs[j] (C expressions) times var^j."""
    expr = coefs[-1]
    for c in reversed(coefs[:-1]):
        expr = f"{c} + ({var}) * ({expr})"
    return f"({expr})"


def estrin(coefs, var):
    """Estrin's scheme for the same polynomial: pairs c[2i] + var c[2i+1], then pairs of
    those in var^2, var^4, ...  As many multiplies and adds as Horner's but two or three
    (the powers), and a dependency chain of about 2 log2(n) operations instead of 2n:
    a vectorised loop over these functions is bound by that chain's latency, not by
    its operation count.  float32, one thread, the C loops of bench_special.py: 3-14%
    faster than Horner's on AVX-512 and AVX2 (silu 0.266 -> 0.243 ns per element,
    AVX-512, AMD Zen 5); the same error bounds (tests/test_special_math.py)."""
    terms, power = list(coefs), f"({var})"
    while len(terms) > 1:
        pairs = [f"({terms[i]} + {power} * {terms[i + 1]})" for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            pairs.append(terms[-1])
        terms, power = pairs, f"({power} * {power})"
    return f"({terms[0]})"


def picked(pieces, j, kind):
    """The j-th coefficient chosen per element: (s0) ? piece 0 : (s1) ? piece 1 : ..."""
    lits = [c_literal(coef[j], kind) for coef, _ in pieces]
    expr = lits[-1]
    for i in reversed(range(len(lits) - 1)):
        expr = f"((s{i}) ? {lits[i]} : {expr})"
    return expr


def c_block(check=False):
    """The header's generated section: one macro per polynomial."""
    lines = []
    for kind, tag in (("float", "F"), ("double", "D")):
        t = tables(kind)
        for name, var in (("exp", "r"), ("atanh", "w")):
            coef, err = t[name]
            note = f" /* fit error 2^{float(mp.log(err, 2)):.1f} */" if check else ""
            lits = [c_literal(c, kind) for c in coef]
            lines.append(f"#define CYR_{tag}_{name.upper()}({var}) {estrin(lits, var)}{note}")
        for name in ("gelu_r", "gelu_h"):
            pieces = t[name]
            sel = ", ".join(f"s{i}" for i in range(len(pieces) - 1))
            coefs = [picked(pieces, j, kind) for j in range(len(pieces[0][0]))]
            if check:
                errs = ", ".join(f"2^{float(mp.log(e, 2)):.1f}" for _, e in pieces)
                lines.append(f"/* {kind} {name} fit errors by piece: {errs} */")
            lines.append(
                f"#define CYR_{tag}_{name.upper()}(v, {sel}) \\\n    {horner(coefs, 'v')}"
            )
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="add each fit's error as a comment")
    args = ap.parse_args()
    print(c_block(args.check))


if __name__ == "__main__":
    main()
