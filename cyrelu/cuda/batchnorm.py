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
workspace allocation, addressed by offsets from its base pointer (only the statistics a
call returns become arrays).

Per-call fast path: a call whose arrays have exactly the shapes, strides, dtypes,
devices and alignments of an earlier successful call (and the same axis, activation and
training flag) reuses what that call derived -- its argument checks, layout and launch
plan -- and only checks what can change with equal keys: the real-valued arguments
(alpha, momentum, eps, with the CPU path's rules), the current device and overlaps
between ``out`` and the inputs, or between the running statistics.  Anything else goes
through the general path, which gives the same results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cyrelu import _bn_activation as _act
from cyrelu._validation import (
    batch_norm_args,
    batch_norm_backward_alpha,
    batch_norm_reals,
    check_same,
)
from cyrelu.cuda import _launch as L, _loader
from cyrelu.cuda._launch import cupy

__all__ = ["batch_norm", "batch_norm_backward"]

Array = Any  # a cupy.ndarray (CuPy ships no type information)
Kernel = Any  # a compiled kernel: kernel(grid, block, args)

_NC_ROWS = 8  # CYR_NC_ROWS in batchnorm.cu
_MAX_GRID_Y = 65535
# Blocks a reduction aims for, whatever the device: the partition of every per-channel
# sum (and so its rounding) depends on the shape alone, so the bits are the same on an
# H100, an H200 or a MIG slice.  2048 blocks of 256 threads fill 132 SMs about twice.
_RED_BLOCKS = 2048
_PART = 3  # doubles per partial (CYR_PART)
_PLAN_LIMIT = 512

_BLOCK = (L.THREADS,)
_ADDR = np.uint64  # a device address passed for a pointer parameter
_NULL = _ADDR(0)  # a null pointer (the apply pass's shift, outside the backward from bias)
_F64 = np.float64
_ZERO64 = np.float64(0.0)
_TRAINING = (np.int32(0), np.int32(1))


def _bn(expr: str) -> Kernel:
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
    arrays: Sequence[Array], ax: int, out: Array = None
) -> tuple[list[Array], tuple[int, ...], Geometry]:
    """(views, order, geometry): ``arrays`` (same shape and dtype; None entries kept) as
    C-contiguous views in the memory order of the first, when they all share one layout
    that some axis permutation makes C-contiguous and none partly overlaps ``out``; else
    C-contiguous copies (order: the identity)."""
    x = arrays[0]
    order = L.memory_order(x)
    ok = order is not None
    if ok:
        for a in arrays[1:]:
            if a is not None and a.strides != x.strides:
                ok = False
                break
    if ok and out is not None:
        for a in arrays:
            if a is not None and L.overlaps_partly(out, a):
                ok = False
                break
    ident = tuple(range(x.ndim))
    views: list[Array]
    if ok:
        assert order is not None
        views = (
            list(arrays)
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


def _inverse(order: tuple[int, ...]) -> tuple[int, ...] | None:
    """The permutation undoing ``order``; None for the identity."""
    if order == tuple(range(len(order))):
        return None
    return tuple(int(i) for i in np.argsort(order))


def target(out: Array | None, like: Array, order: tuple[int, ...]) -> tuple[Array, Array]:
    """(kernel view, result): where the kernel writes, C-contiguous in ``order``, and the
    array of x's shape it is.  ``out`` itself when its layout is that, else a new array
    (the caller copies it into out)."""
    inv = _inverse(order)
    if out is not None:
        t = out if inv is None else out.transpose(order)
        if t.flags.c_contiguous and all(s >= 0 for s in t.strides):
            return t, out
    t = cupy.empty(like.shape, dtype=like.dtype)
    return t, (t if inv is None else t.transpose(inv))


def _read_in_place(views: Sequence[Array], arrays: Sequence[Array]) -> bool:
    """True when in_memory_order gave views of ``arrays`` (no copies)."""
    return all(a is None or v.data.ptr == a.data.ptr for v, a in zip(views, arrays, strict=False))


# ---- launch plans --------------------------------------------------------------------

_plans: dict[tuple[Any, ...], Any] = {}


def _cache(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    plan = _plans.get(key)
    if plan is None:
        plan = build()
        if len(_plans) >= _PLAN_LIMIT:
            _plans.clear()
        _plans[key] = plan
    return plan


class _Reduce:
    __slots__ = ("block", "fn", "grid", "nctr", "nsplit", "part_bytes", "shape_args")

    fn: Kernel
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
    if geo.nc:
        bx = L.cdiv(geo.C, 32)
        p.nsplit = max(1, min(L.cdiv(_RED_BLOCKS, bx), L.cdiv(geo.N, _NC_ROWS * 4), _MAX_GRID_Y))
        index, it = L.index_type(geo.N * geo.C, p.nsplit * 32 * _NC_ROWS)
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
        index, it = L.index_type(geo.N * geo.C * geo.S, p.nsplit * L.THREADS)
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
    return _cache(key, lambda: _reduce_plan(L.CTYPE[dtype], dtype.itemsize, mode, act, geo, vec))  # type: ignore[no-any-return]


Apply = tuple[Kernel, tuple[int], tuple[Any, ...]]  # kernel, grid, trailing arguments


def _apply_plan(
    dtype: np.dtype[Any], mode: int, act: int, geo: Geometry, vec: bool, dev: int
) -> Apply:
    """The elementwise pass: the kernel of this layout (NC or NCS), unit (16-byte packs
    or elements) and index type, and its grid (the grid only changes which thread does
    which unit, never a result)."""
    width = 16 // dtype.itemsize
    vec = vec and (geo.C if geo.nc else geo.S) % width == 0
    n = geo.N * geo.C * geo.S
    units = n // (width if vec else 1)
    # the index type for the largest grid any kernel could get (the device's threads)
    index, it = L.index_type(n, L.blocks(units, L.grid_limit(dev)) * L.THREADS)
    fn = _bn(
        "apply<%s, %d, %d, %d, %d, %s>" % (L.CTYPE[dtype], mode, act, int(geo.nc), int(vec), index)
    )
    return (
        fn,
        (L.blocks(units, L.grid_limit(dev, fn)),),
        (it(geo.N), it(geo.C), it(1 if geo.nc else geo.S)),
    )


def reduce(
    plan: _Reduce,
    dev: int,
    x: Array,
    dy: Array | None,
    yo: Array | None,
    part: Any,
    alpha: float,
    thr: float,
    sm: Any,
    si: Any,
    coef: Any,
    M: float,
    eps: float,
    momentum: float,
    training: int,
    kinds: int,
    params: Sequence[Any | None],
) -> None:
    """One per-channel reduction with its last-block finish (see batchnorm.cu).  The
    outputs (part, sm, si, coef, params) are arrays or device addresses."""
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


def kinds_of(*dtypes: np.dtype[Any] | None) -> int:
    """Per-channel parameter kinds, 2 bits each: 0 absent, 1 float32, 2 float64."""
    k = 0
    for i, d in enumerate(dtypes):
        if d is not None:
            k |= (2 if d == L.F64 else 1) << (2 * i)
    return k


def _dtype(p: Array | None) -> np.dtype[Any] | None:
    return None if p is None else p.dtype


def _per_channel(value: object, name: str, C: int, dev: int) -> Array:
    """``value`` checked as a per-channel parameter (None stays None)."""
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


def _contiguous(p: Array) -> Array:
    return p if p is None or p.flags.c_contiguous else cupy.ascontiguousarray(p)


# ---- the per-call fast path ----------------------------------------------------------


def _partly(a: int, b: int, nbytes: int) -> bool:
    """Two dense ranges of ``nbytes`` at a and b share memory without being the same."""
    return a != b and a < b + nbytes and b < a + nbytes


# ---- BatchNorm forward ---------------------------------------------------------------


class _Forward:
    """What a forward call launches for one geometry, dtype, mode, activation, set of
    parameter dtypes, alignment and device; the workspace holds save_mean, save_invstd
    (csz bytes each), 4 coefficients per channel and the reduction's partials."""

    __slots__ = (
        "C",
        "C64",
        "M",
        "acc",
        "alpha_t",
        "apply",
        "csz",
        "eval_fn",
        "eval_grid",
        "kinds",
        "part",
        "red",
        "si",
        "ws_len",
        "zero",
    )

    C: int
    acc: np.dtype[Any]
    csz: int
    si: int  # save_invstd's first element in the workspace
    ws_len: int
    part: int
    red: _Reduce | None
    M: np.float64
    eval_fn: Kernel  # None in training
    eval_grid: tuple[int]
    C64: np.int64
    kinds: np.int32
    apply: Apply | None
    alpha_t: Callable[[float], Any]
    zero: Any


def _build_forward(
    dtype: np.dtype[Any],
    geo: Geometry,
    training: bool,
    act: int,
    kinds: int,
    xvec: bool,
    vec: bool,
    dev: int,
) -> _Forward:
    p = _Forward()
    acc = L.ACC[dtype]
    p.C, p.acc, p.kinds, p.alpha_t = geo.C, acc, np.int32(kinds), acc.type
    p.zero = acc.type(0.0)
    p.csz = L.pad16(geo.C * acc.itemsize)
    p.si = p.csz // acc.itemsize
    nbytes = 6 * p.csz
    p.red = p.eval_fn = None
    if training:
        p.red = reduce_plan(dtype, _loader.RED_STATS, 0, geo, xvec, dev)
        p.part = nbytes
        nbytes += p.red.part_bytes
        p.M = np.float64(geo.M)
    else:
        p.eval_fn = _bn("eval_coef<%s>" % L.CTYPE[dtype])
        p.eval_grid = (L.cdiv(geo.C, L.THREADS),)
        p.C64 = np.int64(geo.C)
    p.ws_len = L.cdiv(nbytes, acc.itemsize)
    p.apply = _apply_plan(dtype, _loader.APPLY_FWD, act, geo, vec, dev) if geo.N * geo.S else None
    return p


def _forward_plan(
    dtype: np.dtype[Any],
    geo: Geometry,
    training: bool,
    act: int,
    kinds: int,
    xvec: bool,
    vec: bool,
    dev: int,
) -> _Forward:
    key = ("forward", dtype, geo.N, geo.C, geo.S, training, act, kinds, xvec, vec, dev)
    plan: _Forward = _cache(
        key,
        lambda: _build_forward(dtype, geo, training, act, kinds, xvec, vec, dev),
    )
    return plan


def _forward(
    p: _Forward,
    x: Array,
    y: Array,
    params: Sequence[Array | None],
    alpha: float,
    beta: float,
    momentum: float,
    eps: float,
    dev: int,
) -> Array:
    """The launches of one forward call (x and y in memory order, the running
    statistics updated in training); returns the workspace."""
    ws = cupy.empty(p.ws_len, p.acc)
    base = ws.data.ptr
    sm, si, coef = _ADDR(base), _ADDR(base + p.csz), _ADDR(base + 2 * p.csz)
    prm = [sm if q is None else q for q in params]  # absent: any valid address
    r = p.red
    if r is not None:
        r.fn(
            r.grid,
            r.block,
            (
                x,
                x,
                x,
                p.zero,
                p.zero,
                *r.shape_args,
                _ADDR(base + p.part),
                L.counter(dev, r.nctr),
                sm,
                si,
                coef,
                p.M,
                _F64(eps),
                _F64(momentum),
                _TRAINING[1],
                p.kinds,
                *prm,
            ),
        )
    else:
        p.eval_fn(p.eval_grid, _BLOCK, (p.C64, _F64(eps), p.kinds, *prm, sm, si, coef))
    if p.apply is not None:
        fn, grid, tail = p.apply
        fn(grid, _BLOCK, (x, x, x, y, coef, _NULL, p.alpha_t(alpha), p.alpha_t(beta), *tail))
    return ws


class _FastForward:
    """A forward call's key -> its plan, and what the per-call checks need."""

    __slots__ = ("dev", "dtype", "inv", "nbytes", "plan", "shape", "stats")

    def __init__(
        self,
        plan: _Forward,
        dev: int,
        x: Array,
        xk: Array,
        order: tuple[int, ...],
        stats: tuple[int, int] | None,
    ) -> None:
        self.plan, self.dev, self.nbytes = plan, dev, x.nbytes
        self.shape, self.dtype, self.inv = xk.shape, x.dtype, _inverse(order)
        self.stats = stats  # (running_mean, running_var) bytes, when training updates both


_fast_forward: dict[tuple[Any, ...], _FastForward] = {}


def _call_key(
    arrays: tuple[object, ...], training: object, axis: object, activation: object
) -> tuple[Any, ...] | None:
    """A call's key for the per-call fast paths: each array's key (``L.array_key``; None
    stays None) and the arguments that decide the plan.  None when one of them is not
    of a plain type (such calls take the general path)."""
    if (
        type(training) is not bool
        or type(axis) is not int
        or not (activation is None or type(activation) is str)
    ):
        return None
    try:
        return (*map(L.array_key, arrays), training, axis, activation)
    except L.NotFast:
        return None


def _fast_forward_ok(
    f: _FastForward, x: Array, running_mean: Array, running_var: Array, out: Array | None
) -> bool:
    """The checks a key cannot make: the current device, and overlaps (which the general
    path resolves with copies)."""
    if L.get_device() != f.dev:
        return False
    if out is not None and _partly(out.data.ptr, x.data.ptr, f.nbytes):
        return False
    if f.stats is not None:
        a, b = running_mean.data.ptr, running_var.data.ptr
        if a < b + f.stats[1] and b < a + f.stats[0]:
            return False
    return True


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
    alpha: float | None = None,
    activation_params: Any = None,
    out: Array | None = None,
    return_stats: bool = False,
    num_threads: int | None = None,
) -> Any:
    """:func:`cyrelu.batch_norm` for CuPy arrays.  The result has x's memory layout when
    some permutation of x's axes is C-contiguous (else it is C-contiguous), or is ``out``.
    ``save_mean`` and ``save_invstd`` share one allocation."""
    if _act.defer_forward(activation, activation_params):
        import cyrelu

        return cyrelu.batch_norm(
            x, running_mean, running_var, weight, bias, training, momentum, eps, axis=axis,
            activation=activation, alpha=alpha, activation_params=activation_params,
            out=out, return_stats=return_stats, num_threads=num_threads,
        )  # fmt: skip
    L.check_threads(num_threads)
    key = _call_key((x, out, running_mean, running_var, weight, bias), training, axis, activation)
    f = None if key is None else _fast_forward.get(key)
    if f is None or not _fast_forward_ok(f, x, running_mean, running_var, out):
        return _batch_norm(
            x,
            running_mean,
            running_var,
            weight,
            bias,
            training,
            momentum,
            eps,
            axis,
            activation,
            alpha,
            activation_params,
            out,
            return_stats,
            key,
        )
    _, momentum_, eps_ = batch_norm_reals(activation, alpha, momentum, eps)
    ka, kb = _act.kernel_params(activation, alpha, activation_params, f.dtype)
    y = out
    if y is None:
        y = cupy.empty(f.shape, f.dtype)
    ws = _forward(
        f.plan, x, y, (running_mean, running_var, weight, bias), ka, kb, momentum_, eps_, f.dev
    )
    if out is None and f.inv is not None:
        y = y.transpose(f.inv)
    if return_stats:
        C, si = f.plan.C, f.plan.si
        return y, ws[:C], ws[si : si + C]
    return y


def _batch_norm(
    x: Array,
    running_mean: Array | None,
    running_var: Array | None,
    weight: Array | None,
    bias: Array | None,
    training: object,
    momentum: object,
    eps: object,
    axis: object,
    activation: object,
    alpha: object,
    activation_params: object,
    out: Array | None,
    return_stats: bool,
    key: tuple[Any, ...] | None,
) -> Any:
    """The general path: every check, copies where the layout needs them; remembers the
    call for the fast path (under ``key``) when it read and wrote everything in place."""
    x = L.as_array(x, "x")
    ax, C, act, _, momentum_, eps_ = batch_norm_args(
        x.shape, axis, activation, alpha, momentum, eps
    )
    ka, kb = _act.kernel_params(activation, alpha, activation_params, x.dtype)
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
            rm is not None
            and rv is not None
            and rm_k is rm
            and rv_k is rv
            and L.overlaps_partly(rm, rv)
        ):
            rv_k = rv.copy()
        params = (rm_k, rv_k, w_k, b_k)
        yk, y = target(out, xk, order)
        in_place = (
            x.size > 0
            and _read_in_place([xk], [x])
            and rm_k is rm
            and rv_k is rv
            and w_k is w
            and b_k is b
            and (out is None or (y is out and out.strides == x.strides))
        )
        plan = _forward_plan(
            x.dtype,
            geo,
            training,
            act,
            kinds_of(*map(_dtype, params)),
            L.aligned(xk),
            L.aligned(yk, xk),
            dev,
        )
        ws = _forward(plan, xk, yk, params, ka, kb, momentum_, eps_, dev)
        if rm is not None and rm_k is not rm:
            rm[...] = rm_k
        if rv is not None and rv_k is not rv:
            rv[...] = rv_k
        if out is not None and y is not out:
            out[...] = y
            y = out
    if key is not None and in_place:
        stats = None
        if training and rm is not None and rv is not None:
            stats = (rm.nbytes, rv.nbytes)
        L.remember(_fast_forward, key, _FastForward(plan, dev, x, xk, order, stats))
    return (y, ws[:C], ws[plan.si : plan.si + C]) if return_stats else y


# ---- BatchNorm backward --------------------------------------------------------------


class _Backward:
    """What a backward call launches for one geometry, dtype, activation, mode, set of
    parameter dtypes (the bias's too: the backward from the pre-activation), alignment
    and device; the workspace (of the gradients' dtype) holds grad_weight, grad_bias
    (gsz bytes each), 4 coefficients per channel, then the pre-activation's shift per
    channel (the backward from bias), and the reduction's partials."""

    __slots__ = (
        "C",
        "M",
        "alpha_t",
        "apply",
        "coef",
        "gb",
        "gdtype",
        "gsz",
        "kinds",
        "part",
        "red",
        "shift",
        "training",
        "ws_len",
    )

    C: int
    gdtype: np.dtype[Any]
    gsz: int
    gb: int  # grad_bias's first element in the workspace
    coef: int
    shift: int  # the pre-activation's shift: 4 C coefficients after coef (batchnorm.cu)
    part: int
    ws_len: int
    red: _Reduce
    M: np.float64
    training: np.int32
    kinds: np.int32
    apply: Apply | None
    alpha_t: Callable[[float], Any]


def _build_backward(
    dtype: np.dtype[Any],
    gdtype: np.dtype[Any],
    geo: Geometry,
    act: int,
    training: bool,
    kinds: int,
    xvec: bool,
    vec: bool,
    dev: int,
) -> _Backward:
    p = _Backward()
    acc = L.ACC[dtype]
    p.C, p.gdtype, p.kinds, p.alpha_t = geo.C, gdtype, np.int32(kinds), acc.type
    p.training = _TRAINING[training]
    if geo.N * geo.S:
        p.red = reduce_plan(dtype, _loader.RED_GRAD, act, geo, xvec, dev)
        mode = _loader.APPLY_BWD_TRAIN if training else _loader.APPLY_BWD_EVAL
        p.apply = _apply_plan(dtype, mode, act, geo, vec, dev)
    else:  # no elements: zero sums, finished by a reduction over an empty channel
        p.red = reduce_plan(dtype, _loader.RED_GRAD, 0, Geometry(0, geo.C, 1), True, dev)
        p.apply = None
    p.M = np.float64(max(geo.M, 1))
    p.gsz = L.pad16(geo.C * gdtype.itemsize)
    p.gb = p.gsz // gdtype.itemsize
    p.coef = 2 * p.gsz
    p.shift = p.coef + 4 * geo.C * acc.itemsize
    p.part = p.coef + 5 * L.pad16(geo.C * acc.itemsize)
    p.ws_len = L.cdiv(p.part + p.red.part_bytes, gdtype.itemsize)
    return p


def _backward_plan(
    dtype: np.dtype[Any],
    gdtype: np.dtype[Any],
    geo: Geometry,
    act: int,
    training: bool,
    kinds: int,
    xvec: bool,
    vec: bool,
    dev: int,
) -> _Backward:
    key = ("backward", dtype, gdtype, geo.N, geo.C, geo.S, act, training, kinds, xvec, vec, dev)
    plan: _Backward = _cache(
        key,
        lambda: _build_backward(dtype, gdtype, geo, act, training, kinds, xvec, vec, dev),
    )
    return plan


def _backward(
    p: _Backward,
    x: Array,
    g: Array,
    yo: Array | None,
    gi: Array,
    sm: Array,
    si: Array,
    w: Array | None,
    b: Array | None,
    alpha: float,
    beta: float,
    dev: int,
) -> Array:
    """The launches of one backward call (x, g, yo and gi in memory order), alpha and
    beta the activation's two parameters; with the forward's bias ``b`` (the plan's
    kinds say it is there), the activation's derivative is taken at the pre-activation
    the kernels recompute, not on yo; returns the workspace."""
    ws = cupy.empty(p.ws_len, p.gdtype)
    base = ws.data.ptr
    gw, gb, coef = _ADDR(base), _ADDR(base + p.gsz), _ADDR(base + p.coef)
    a, beta_k = p.alpha_t(alpha), p.alpha_t(beta)
    yo = x if yo is None else yo
    r = p.red
    r.fn(
        r.grid,
        r.block,
        (
            x,
            g,
            yo,
            a,
            beta_k,  # the reduction's threshold argument: the gradient's second parameter
            *r.shape_args,
            _ADDR(base + p.part),
            L.counter(dev, r.nctr),
            sm,
            si,
            coef,
            p.M,
            _ZERO64,
            _ZERO64,
            p.training,
            p.kinds,
            gw if w is None else w,
            gw,
            gb,
            gw if b is None else b,
        ),
    )
    if p.apply is not None:
        fn, grid, tail = p.apply
        shift = _NULL if b is None else _ADDR(base + p.shift)
        fn(grid, _BLOCK, (x, g, yo, gi, coef, shift, a, beta_k, *tail))
    return ws


class _FastBackward:
    """A backward call's key -> its plan, and what the per-call checks need."""

    __slots__ = ("act", "dev", "dtype", "inv", "nbytes", "plan", "shape")

    def __init__(
        self, plan: _Backward, dev: int, act: int, x: Array, xk: Array, order: tuple[int, ...]
    ) -> None:
        self.plan, self.dev, self.act, self.nbytes = plan, dev, act, x.nbytes
        self.shape, self.dtype, self.inv = xk.shape, x.dtype, _inverse(order)


_fast_backward: dict[tuple[Any, ...], _FastBackward] = {}


def _fast_backward_ok(
    f: _FastBackward, g: Array, x: Array, output: Array, out: Array | None
) -> bool:
    if L.get_device() != f.dev:
        return False
    if out is not None:
        op = out.data.ptr
        if _partly(op, x.data.ptr, f.nbytes) or _partly(op, g.data.ptr, f.nbytes):
            return False
        if f.act and output is not None and _partly(op, output.data.ptr, f.nbytes):
            return False
    return True


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
    alpha: float | None = None,
    activation_params: Any = None,
    output: Array | None = None,
    bias: Array | None = None,
    out: Array | None = None,
    num_threads: int | None = None,
) -> tuple[Array, Array, Array]:
    """:func:`cyrelu.batch_norm_backward` for CuPy arrays:
    ``(grad_input, grad_weight, grad_bias)``; grad_input has x's memory layout (as
    :func:`batch_norm`'s result), grad_weight and grad_bias share one allocation.  With
    ``bias``, the kernels take the activation's derivative at the pre-activation they
    recompute from x, the statistics, weight and bias (any activation), unless
    ``output`` gives it (as on the CPU path); elu, celu and selu with ``output`` alone
    (no ``bias``) through the kernels' result gate."""
    at_y = _act.result_gate_call(activation, alpha, activation_params, output, bias)
    if not at_y and _act.defer_backward(
        activation, activation_params, output, bias, from_bias=True
    ):
        import cyrelu

        return cyrelu.batch_norm_backward(
            grad_output, x, save_mean, save_invstd, weight, training=training, axis=axis,
            activation=activation, alpha=alpha, activation_params=activation_params,
            output=output, bias=bias, out=out, num_threads=num_threads,
        )  # fmt: skip
    L.check_threads(num_threads)
    # output, or bias (the backward from the pre-activation), decides the plan only with
    # an activation; calls with bias and output take the general path (which reads
    # output where it gives the derivative)
    fused, zb = None, None
    if activation is not None:
        fused, zb = (output, None) if bias is None else (None, bias)
    key = None
    if output is None or bias is None:
        key = _call_key(
            (grad_output, x, out, save_mean, save_invstd, weight, fused, zb),
            training,
            axis,
            activation,
        )
    f = None if key is None else _fast_backward.get(key)
    if f is None or not _fast_backward_ok(f, grad_output, x, output, out):
        return _batch_norm_backward(
            grad_output,
            x,
            save_mean,
            save_invstd,
            weight,
            training,
            axis,
            activation,
            alpha,
            activation_params,
            output,
            bias,
            out,
            key,
            at_y,
        )
    if zb is None and not at_y:
        batch_norm_backward_alpha(activation, f.act, alpha)  # leaky_relu's: > 0
    ka, kb = _act.backward_kernel_params(activation, alpha, activation_params, f.dtype, at_y)
    gi = out
    if gi is None:
        gi = cupy.empty(f.shape, f.dtype)
    ws = _backward(
        f.plan,
        x,
        grad_output,
        output if f.act and zb is None else None,
        gi,
        save_mean,
        save_invstd,
        weight,
        zb,
        ka,
        kb,
        f.dev,
    )
    if out is None and f.inv is not None:
        gi = gi.transpose(f.inv)
    C, gb = f.plan.C, f.plan.gb
    return gi, ws[:C], ws[gb : gb + C]


def _batch_norm_backward(
    grad_output: Array,
    x: Array,
    save_mean: Array,
    save_invstd: Array,
    weight: Array | None,
    training: object,
    axis: object,
    activation: object,
    alpha: object,
    activation_params: object,
    output: Array | None,
    bias: Array | None,
    out: Array | None,
    key: tuple[Any, ...] | None,
    at_y: bool,
) -> tuple[Array, Array, Array]:
    """The general path (see _batch_norm); at_y: elu's, celu's or selu's derivative read
    from output by the result gate."""
    g = L.as_array(grad_output, "grad_output")
    x = L.as_array(x, "x")
    check_same("grad_output", g, "x", x)
    ka, kb = _act.backward_kernel_params(activation, alpha, activation_params, x.dtype, at_y)
    # the derivative read on output where it gives it, else (bias given) taken at the
    # pre-activation, for any activation and slope
    from_z = _act.backend_gate_at_z(activation, alpha, activation_params, output, bias)
    ax, C, act = _act.backward_gate(x.shape, axis, activation, alpha, from_z or at_y)
    training = bool(training)
    dev = x.device.id
    L.check_device(dev, "grad_output", g)
    if save_mean is None:
        raise ValueError("save_mean is required")
    if save_invstd is None:
        raise ValueError("save_invstd is required")
    sm = _per_channel(save_mean, "save_mean", C, dev)
    si = _per_channel(save_invstd, "save_invstd", C, dev)
    w = _per_channel(weight, "weight", C, dev)
    b = _per_channel(bias, "bias", C, dev)  # checked even where output gives the derivative
    if not from_z:
        b = None
    yo = None
    if act != 0 and not from_z:
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
        assert sm is not None and si is not None
        sm_k, si_k = sm, si
        if sm.dtype != acc or not sm.flags.c_contiguous:
            sm_k = cupy.ascontiguousarray(sm, dtype=acc)
        if si.dtype != acc or not si.flags.c_contiguous:
            si_k = cupy.ascontiguousarray(si, dtype=acc)
        w_k = _contiguous(w)
        b_k = _contiguous(b)
        (xk, gk, yk), order, geo = in_memory_order([x, g, yo], ax, out)
        gik, gi = target(out, xk, order)
        in_place = (
            x.size > 0
            and _read_in_place([xk, gk, yk], [x, g, yo])
            and sm_k is sm
            and si_k is si
            and w_k is w
            and b_k is b
            and (out is None or (gi is out and out.strides == x.strides))
        )
        plan = _backward_plan(
            x.dtype,
            gdtype,
            geo,
            act,
            training,
            kinds_of(_dtype(w_k), gdtype, gdtype, _dtype(b_k)),
            L.aligned(*[a for a in (xk, gk, yk) if a is not None]),
            L.aligned(*[a for a in (gik, xk, gk, yk) if a is not None]),
            dev,
        )
        ws = _backward(plan, xk, gk, yk, gik, sm_k, si_k, w_k, b_k, ka, kb, dev)
        if out is not None and gi is not out:
            out[...] = gi
            gi = out
    if key is not None and in_place:
        L.remember(_fast_backward, key, _FastBackward(plan, dev, act, x, xk, order))
    return gi, ws[:C], ws[plan.gb : plan.gb + C]
