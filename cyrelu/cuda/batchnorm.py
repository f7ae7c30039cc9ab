""":mod:`cyrelu.batchnorm` for CuPy arrays, and the per-channel reduction machinery the
diagnostics share.

x is used where it lies whenever some permutation of its axes is C-contiguous (NCHW,
channels-last data viewed as NCHW with ``axis=1``, any transpose): in memory order it is
(N, C, S) with the channel axis in the middle, and S == 1 (channels fastest, as for
channels-last) runs the row kernels (per-column statistics over rows).  The result then
has x's memory layout.  Other inputs are copied to C-contiguous arrays first.

The reduction partition depends on (N, C, S) alone, never on the device or on pointer
alignment, so results are bitwise reproducible across devices.  Launch plans (kernels,
grids, split counts, workspace offsets) are cached per geometry, dtype, alignment and
device; every temporary of a call (statistics, coefficients, partials) lives in one
workspace allocation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from cyrelu._validation import batch_norm_args, batch_norm_backward_args, check_same
from cyrelu.cuda import _launch as L, _loader
from cyrelu.cuda._launch import Array, cupy

__all__ = ["batch_norm", "batch_norm_backward"]

_NC_ROWS = 8  # CYR_NC_ROWS in batchnorm.cu
_MAX_GRID_Y = 65535
# Blocks a reduction aims for, whatever the device: the partition of every per-channel
# sum (and so its rounding) depends on the shape alone, so the bits are the same on an
# H100, an H200 or a MIG slice.  2048 blocks of 256 threads fill 132 SMs about twice.
_RED_BLOCKS = 2048
_PART = 3  # doubles per partial (CYR_PART)
_PLAN_LIMIT = 512


def _bn(expr: str) -> _loader.RawKernel:
    return _loader.function("batchnorm.cu", expr)


# ---- geometry ------------------------------------------------------------------------


class Geometry:
    """x seen in memory order as (N, C, S); S == 1 uses the NC (rows, channels) kernels."""

    __slots__ = ("C", "M", "N", "S", "nc")

    def __init__(self, N: int, C: int, S: int) -> None:
        self.N, self.C, self.S = N, C, S
        self.nc = S == 1
        self.M = N * S  # elements per channel


def in_memory_order(
    arrays: Sequence[Array | None], ax: int, out: Array | None = None
) -> tuple[Sequence[Array | None], tuple[int, ...], Geometry]:
    """(views, order, geometry): ``arrays`` (same shape and dtype; None entries kept) as
    C-contiguous views in the memory order of the first, when they all share one layout
    that some axis permutation makes C-contiguous and none partly overlaps ``out``; else
    C-contiguous copies (order: the identity)."""
    x: Array = arrays[0]  # never None
    order = L.memory_order(x)
    if order is not None:
        for a in arrays[1:]:
            if a is not None and a.strides != x.strides:
                order = None
                break
    if order is not None and out is not None:
        for a in arrays:
            if a is not None and L.overlaps_partly(out, a):
                order = None
                break
    ident = tuple(range(x.ndim))
    views: Sequence[Array | None]
    if order is not None:
        views = (
            arrays
            if order == ident
            else [None if a is None else a.transpose(order) for a in arrays]
        )
    else:
        order = ident
        views = []
        for a in arrays:
            if a is None:
                views.append(None)
                continue
            c = cupy.ascontiguousarray(a)
            if c is a and out is not None and L.overlaps_partly(out, a):
                c = a.copy()
            views.append(c)
    shape = x.shape
    p = order.index(ax)
    geo = Geometry(
        math.prod(shape[d] for d in order[:p]),
        shape[ax],
        math.prod(shape[d] for d in order[p + 1 :]),
    )
    return views, order, geo


def target(out: Array | None, like: Array, order: tuple[int, ...]) -> tuple[Array, Array]:
    """(kernel view, result): where the kernel writes, C-contiguous in ``order``, and the
    array of x's shape it is.  ``out`` itself when its layout is that, else a new array
    (the caller copies it into out)."""
    ident = order == tuple(range(len(order)))
    if out is not None:
        t = out if ident else out.transpose(order)
        if t.flags.c_contiguous and all(s >= 0 for s in t.strides):
            return t, out
    t = cupy.empty(like.shape, dtype=like.dtype)
    return t, (t if ident else t.transpose(tuple(int(i) for i in np.argsort(order))))


# ---- launch plans --------------------------------------------------------------------

_P = TypeVar("_P")
_plans: dict[tuple[Any, ...], Any] = {}  # plan key -> a _Reduce or an apply plan


def _cache(key: tuple[Any, ...], build: Callable[[], _P]) -> _P:
    plan = _plans.get(key)
    if plan is None:
        plan = build()
        if len(_plans) >= _PLAN_LIMIT:
            _plans.clear()
        _plans[key] = plan
    return plan


class _Reduce:
    __slots__ = ("block", "fn", "grid", "nctr", "nsplit", "part_bytes", "shape_args")

    fn: _loader.RawKernel
    grid: tuple[int, int]
    block: tuple[int, ...]
    shape_args: tuple[np.integer[Any], ...]
    nsplit: int
    nctr: int
    part_bytes: int


def _reduce_plan(
    ctype: str, itemsize: int, mode: int, act: int, geo: Geometry, vec: bool
) -> _Reduce:
    p = _Reduce()
    index = "int" if geo.N * geo.C * geo.S + (1 << 26) < L.INT32_LIMIT else "long long"
    it = np.int32 if index == "int" else np.int64
    if geo.nc:
        bx = L.cdiv(geo.C, 32)
        p.nsplit = max(1, min(L.cdiv(_RED_BLOCKS, bx), L.cdiv(geo.N, _NC_ROWS * 4), _MAX_GRID_Y))
        p.fn = _bn("reduce_nc<%s, %d, %d, %s>" % (ctype, mode, act, index))
        p.grid, p.block = (bx, p.nsplit), (32, _NC_ROWS)
        p.shape_args = (it(geo.N), it(geo.C))
        p.nctr = bx
    else:
        pack = 16 // itemsize
        width = pack if geo.S % pack == 0 else 1  # the shape's: fixes the partition
        units = geo.N * (geo.S // width)
        p.nsplit = max(
            1, min(L.cdiv(_RED_BLOCKS, geo.C), L.cdiv(units, L.THREADS * 4), _MAX_GRID_Y)
        )
        # vec (the pointers' alignment) only changes how units load
        p.fn = _bn(
            "reduce_ncs<%s, %d, %d, %d, %s>" % (ctype, mode, act, int(width > 1 and vec), index)
        )
        p.grid, p.block = (geo.C, p.nsplit), (L.THREADS,)
        p.shape_args = (it(geo.N), it(geo.C), it(geo.S), np.int32(width))
        p.nctr = geo.C
    p.part_bytes = p.nsplit * geo.C * _PART * 8
    return p


def reduce_plan(
    dtype: np.dtype[Any], mode: int, act: int, geo: Geometry, vec: bool, dev: int
) -> _Reduce:
    key = ("reduce", dtype, mode, act, geo.N, geo.C, geo.S, vec, dev)
    return _cache(key, lambda: _reduce_plan(L.CTYPE[dtype], dtype.itemsize, mode, act, geo, vec))


# (kernel, grid, the shape's scalar arguments) of an apply launch
_Apply = tuple[_loader.RawKernel, tuple[int], tuple[np.integer[Any], ...]]


def _apply_plan(
    dtype: np.dtype[Any], mode: int, act: int, geo: Geometry, vec: bool, dev: int
) -> _Apply:
    fn = _bn("apply<%s, %d, %d>" % (L.CTYPE[dtype], mode, act))
    width = 16 // dtype.itemsize
    vec = vec and (geo.C if geo.nc else geo.S) % width == 0
    units = geo.N * geo.C * geo.S // (width if vec else 1)
    return (
        fn,
        (L.blocks(units, L.grid_limit(dev, fn)),),
        (
            np.int64(geo.N),
            np.int64(geo.C),
            np.int64(1 if geo.nc else geo.S),
            np.int32(geo.nc),
            np.int32(vec),
        ),
    )


def apply(
    mode: int,
    act: int,
    geo: Geometry,
    x: Array | None,
    dy: Array | None,
    yo: Array | None,
    out: Array,
    coef: Array,
    alpha: float,
    dev: int,
) -> None:
    vec = L.aligned(*[a for a in (out, x, dy, yo) if a is not None])
    fn, grid, tail = _cache(
        ("apply", out.dtype, mode, act, geo.N, geo.C, geo.S, vec, dev),
        lambda: _apply_plan(out.dtype, mode, act, geo, vec, dev),
    )
    x = out if x is None else x
    dy = x if dy is None else dy
    yo = x if yo is None else yo
    fn(grid, (L.THREADS,), (x, dy, yo, out, coef, L.ACC[out.dtype].type(alpha), *tail))


def reduce(
    plan: _Reduce,
    dev: int,
    x: Array,
    dy: Array | None,
    yo: Array | None,
    part: Array,
    alpha: float,
    thr: float,
    sm: Array,
    si: Array,
    coef: Array,
    M: float,
    eps: float,
    momentum: float,
    training: int,
    kinds: int,
    params: tuple[Array | None, ...],
) -> None:
    """One per-channel reduction with its last-block finish (see batchnorm.cu)."""
    acc = L.ACC[x.dtype].type
    dy = x if dy is None else dy
    yo = x if yo is None else yo
    p = [sm if q is None else q for q in params]
    plan.fn(
        plan.grid,
        plan.block,
        (
            x,
            dy,
            yo,
            acc(alpha),
            acc(thr),
            *plan.shape_args,
            part,
            L.counter(dev, plan.nctr),
            sm,
            si,
            coef,
            np.float64(M),
            np.float64(eps),
            np.float64(momentum),
            np.int32(training),
            np.int32(kinds),
            *p,
        ),
    )


def kinds_of(*params: Array | None) -> int:
    """Per-channel parameter kinds, 2 bits each: 0 absent, 1 float32, 2 float64."""
    k = 0
    for i, p in enumerate(params):
        if p is not None:
            k |= (2 if p.dtype == L.F64 else 1) << (2 * i)
    return k


def _per_channel(value: object, name: str, C: int, dev: int) -> Array | None:
    if value is None:
        return None
    if not isinstance(value, cupy.ndarray):
        raise TypeError("%s: expected a cupy.ndarray, got %s" % (name, type(value).__name__))
    if value.dtype not in L.PER_CHANNEL_DTYPES:
        raise TypeError(
            "%s: unsupported dtype %s; expected float32 or float64" % (name, value.dtype)
        )
    if value.ndim != 1 or value.shape[0] != C:
        raise ValueError(
            "%s must be 1-D of length C=%d (the channel axis), got shape %s"
            % (name, C, value.shape)
        )
    L.check_device(dev, name, value)
    return value


def _contiguous(p: Array | None) -> Array | None:
    return p if p is None or p.flags.c_contiguous else cupy.ascontiguousarray(p)


# ---- BatchNorm -----------------------------------------------------------------------


def batch_norm(
    x: Array,
    running_mean: Array | None = None,
    running_var: Array | None = None,
    weight: Array | None = None,
    bias: Array | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    axis: int = 1,
    activation: str | None = None,
    alpha: float = 0.2,
    out: Array | None = None,
    return_stats: bool = False,
    num_threads: int | None = None,
) -> Array | tuple[Array, Array, Array]:
    """:func:`cyrelu.batch_norm` for CuPy arrays.  The result has x's memory layout when
    some permutation of x's axes is C-contiguous (else it is C-contiguous), or is ``out``.
    ``save_mean`` and ``save_invstd`` share one allocation."""
    L.check_threads(num_threads)
    x = L.as_array(x, "x")
    ax, C, act, alpha, momentum, eps = batch_norm_args(
        x.shape, axis, activation, alpha, momentum, eps
    )
    training = bool(training)
    dev = x.device.id
    w = _per_channel(weight, "weight", C, dev)
    b = _per_channel(bias, "bias", C, dev)
    rm = _per_channel(running_mean, "running_mean", C, dev)
    rv = _per_channel(running_var, "running_var", C, dev)
    if not training and (rm is None or rv is None):
        raise ValueError("running_mean and running_var are required when training=False")
    if out is not None:
        L.check_out(out, x.shape, x.dtype)
        L.check_device(dev, "out", out)
    acc = L.ACC[x.dtype]
    if training and C > 0 and x.size // C < 2:
        raise ValueError(
            "expected more than 1 value per channel when training, got input shape %s "
            "(channel axis %d)" % (x.shape, ax)
        )
    with L.CurrentDevice(dev):
        if C == 0:
            save_mean = cupy.empty(C, dtype=acc)
            save_invstd = cupy.empty(C, dtype=acc)
            y = out if out is not None else cupy.empty(x.shape, dtype=x.dtype)
            return (y, save_mean, save_invstd) if return_stats else y
        (xk,), order, geo = in_memory_order([x], ax, out)
        # each per-channel parameter is float32 or float64 on its own (kinds)
        w_k, b_k = _contiguous(w), _contiguous(b)
        # running stats are updated in place: a contiguous stand-in where they are not
        rm_k, rv_k = _contiguous(rm), _contiguous(rv)
        if (
            rm_k is rm
            and rv_k is rv
            and rm is not None
            and rv is not None
            and L.overlaps_partly(rm, rv)
        ):
            rv_k = rv.copy()
        params = (rm_k, rv_k, w_k, b_k)
        kinds = kinds_of(*params)
        yk, y = target(out, xk, order)
        csz = L.pad16(C * acc.itemsize)
        if training:
            plan = reduce_plan(x.dtype, _loader.RED_STATS, 0, geo, L.aligned(xk), dev)
            ws = L.workspace(2 * csz + 4 * csz + plan.part_bytes)
        else:
            ws = L.workspace(6 * csz)
        save_mean = L.carve(ws, 0, C, acc)
        save_invstd = L.carve(ws, csz, C, acc)
        coef = L.carve(ws, 2 * csz, 4 * C, acc)
        if training:
            # statistics, running stats (each one given, as on the CPU) and coefficients
            part = L.carve(ws, 6 * csz, plan.part_bytes // 8, L.F64)
            reduce(
                plan,
                dev,
                xk,
                None,
                None,
                part,
                0.0,
                0.0,
                save_mean,
                save_invstd,
                coef,
                geo.M,
                eps,
                momentum,
                1,
                kinds,
                params,
            )
            if rm is not None and rm_k is not rm:
                rm[...] = rm_k
            if rv is not None and rv_k is not rv:
                rv[...] = rv_k
        else:
            fn = _bn("eval_coef<%s>" % L.CTYPE[x.dtype])
            fn(
                (L.cdiv(C, L.THREADS),),
                (L.THREADS,),
                (
                    np.int64(C),
                    np.float64(eps),
                    np.int32(kinds),
                    *[save_mean if q is None else q for q in params],
                    save_mean,
                    save_invstd,
                    coef,
                ),
            )
        if x.size:
            apply(_loader.APPLY_FWD, act, geo, xk, None, None, yk, coef, alpha, dev)
        if out is not None and y is not out:
            out[...] = y
            y = out
    return (y, save_mean, save_invstd) if return_stats else y


def batch_norm_backward(
    grad_output: Array,
    x: Array,
    save_mean: Array,
    save_invstd: Array,
    weight: Array | None = None,
    *,
    training: bool = True,
    axis: int = 1,
    activation: str | None = None,
    alpha: float = 0.2,
    output: Array | None = None,
    out: Array | None = None,
    num_threads: int | None = None,
) -> tuple[Array, Array, Array]:
    """:func:`cyrelu.batch_norm_backward` for CuPy arrays:
    ``(grad_input, grad_weight, grad_bias)``; grad_input has x's memory layout (as
    :func:`batch_norm`'s result), grad_weight and grad_bias share one allocation."""
    L.check_threads(num_threads)
    g = L.as_array(grad_output, "grad_output")
    x = L.as_array(x, "x")
    check_same("grad_output", g, "x", x)
    ax, C, act, alpha = batch_norm_backward_args(x.shape, axis, activation, alpha)
    training = bool(training)
    dev = x.device.id
    L.check_device(dev, "grad_output", g)
    if save_mean is None:
        raise ValueError("save_mean is required")
    if save_invstd is None:
        raise ValueError("save_invstd is required")
    # not None: both were checked above
    sm: Array = _per_channel(save_mean, "save_mean", C, dev)
    si: Array = _per_channel(save_invstd, "save_invstd", C, dev)
    w = _per_channel(weight, "weight", C, dev)
    yo = None
    if act != 0:
        if output is None:
            raise ValueError(
                "output (the forward's result) is required with activation=%r" % activation
            )
        yo = L.as_array(output, "output")
        check_same("output", yo, "x", x)
        L.check_device(dev, "output", yo)
    if out is not None:
        L.check_out(out, x.shape, x.dtype)
        L.check_device(dev, "out", out)
    acc = L.ACC[x.dtype]
    gdtype = w.dtype if w is not None else acc
    with L.CurrentDevice(dev):
        if C == 0:
            gi = out if out is not None else cupy.empty(x.shape, dtype=x.dtype)
            return gi, cupy.empty(C, dtype=gdtype), cupy.empty(C, dtype=gdtype)
        if sm.dtype != acc or not sm.flags.c_contiguous:
            sm = cupy.ascontiguousarray(sm, dtype=acc)
        if si.dtype != acc or not si.flags.c_contiguous:
            si = cupy.ascontiguousarray(si, dtype=acc)
        w_k = _contiguous(w)
        (xk, gk, yk), order, geo = in_memory_order([x, g, yo], ax, out)
        gik, gi = target(out, xk, order)
        if x.size:
            plan = reduce_plan(
                x.dtype,
                _loader.RED_GRAD,
                act,
                geo,
                L.aligned(*[a for a in (xk, gk, yk) if a is not None]),
                dev,
            )
        else:  # no elements: zero sums, finished by a reduction over an empty channel
            geo0 = Geometry(0, C, 1)
            plan = reduce_plan(x.dtype, _loader.RED_GRAD, 0, geo0, True, dev)
        gsz = L.pad16(C * gdtype.itemsize)
        csz = L.pad16(C * acc.itemsize)
        ws = L.workspace(2 * gsz + 4 * csz + plan.part_bytes)
        grad_weight = L.carve(ws, 0, C, gdtype)
        grad_bias = L.carve(ws, gsz, C, gdtype)
        coef = L.carve(ws, 2 * gsz, 4 * C, acc)
        part = L.carve(ws, 2 * gsz + 4 * csz, plan.part_bytes // 8, L.F64)
        params = (w_k, grad_weight, grad_bias, None)
        kinds = kinds_of(*params)
        if x.size:
            reduce(
                plan,
                dev,
                xk,
                gk,
                yk,
                part,
                alpha,
                0.0,
                sm,
                si,
                coef,
                max(geo.M, 1),
                0.0,
                0.0,
                int(training),
                kinds,
                params,
            )
            mode = _loader.APPLY_BWD_TRAIN if training else _loader.APPLY_BWD_EVAL
            apply(mode, act, geo, xk, gk, yk, gik, coef, alpha, dev)
        else:
            reduce(
                plan,
                dev,
                xk,
                None,
                None,
                part,
                0.0,
                0.0,
                sm,
                si,
                coef,
                1.0,
                0.0,
                0.0,
                int(training),
                kinds,
                params,
            )
        if out is not None and gi is not out:
            out[...] = gi
            gi = out
    return gi, grad_weight, grad_bias
