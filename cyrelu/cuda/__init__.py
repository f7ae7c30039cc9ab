"""The CuPy backend: cyrelu's public functions for ``cupy.ndarray`` arguments.

``cyrelu._backend.backend_for`` imports this module only when a CuPy array arrives, so
importing CuPy here is fine.  Every function has the name and signature of its public
twin and is called by it with the same arguments; results are CuPy arrays on the
inputs' device.  The kernels are our own (``*.cu`` next to this file, compiled by
``_loader`` once per device), with the CPU path's semantics bit for bit where the math
allows (the activations and their gradients are exact; BatchNorm agrees to rounding).

Rules, as on the CPU path: float16/float32/float64 only (float16 math in float32,
rounded once), ``out`` of exactly the result's shape and dtype (and here: a CuPy array
on the same device), gradients and inputs of equal shape and dtype, ``num_threads``
validated and otherwise ignored.  Any memory layout is accepted; a non-contiguous
``out`` is written in place.
"""

import math

import cupy
import numpy as np

from cyrelu._layout import coalesce
from cyrelu._parallel import effective_n_threads
from cyrelu._validation import check_float_dtype, check_real, check_same
# The scalar-argument rules are the CPU functions' own, so both paths accept and refuse alike.
from cyrelu.batchnorm import _backward_args, _forward_args
from cyrelu.diagnostics import _dead_units_args, _normalise_axis, _threshold_in
from cyrelu.cuda import _loader
from cyrelu import _activation_table

_ACT = _activation_table.CODES  # activation name (None: none) -> kernel code

__all__ = [
    "relu",
    "leaky_relu",
    "relu_backward",
    "leaky_relu_backward",
    "batch_norm",
    "batch_norm_backward",
    "dead_units",
    "sparsity",
]

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_PER_CHANNEL_DTYPES = (_F32, _F64)

_THREADS = 256  # threads per block of the 1-D kernels (CYR_THREADS in batchnorm.cu)
_NC_ROWS = 8  # CYR_NC_ROWS in batchnorm.cu
_BLOCKS_PER_SM = 8  # 8 x 256 threads: a full H100/A100 SM (the elementwise grids)
_MAX_GRID_Y = 65535
# Blocks a reduction aims for, whatever the device: the partition of every per-channel
# sum (and so its rounding) depends on the shape alone, so the bits are the same on an
# H100, an H200 or a MIG slice.  2048 blocks of 256 threads fill 132 SMs about twice.
_RED_BLOCKS = 2048
_PART = 3  # doubles per partial (CYR_PART)


# ---- validation ----------------------------------------------------------------------


def _array(value, name):
    """A CuPy float16/32/64 array, or TypeError.  (Mixing array libraries was already
    refused by the dispatcher; lists and scalars reach here only next to CuPy arrays.)"""
    if not isinstance(value, cupy.ndarray):
        raise TypeError("%s: expected a cupy.ndarray, got %s; move it to the GPU first, e.g. "
                        "with cupy.asarray()" % (name, type(value).__name__))
    check_float_dtype(value.dtype, name)
    return value


def _check_device(device, *named):
    for name, a in named:
        if a is not None and a.device.id != device.id:
            raise ValueError("%s is on GPU %d, but x is on GPU %d" % (name, a.device.id,
                                                                      device.id))


def _check_out(out, shape, dtype, name="out"):
    if not isinstance(out, cupy.ndarray):
        raise TypeError("%s must be a cupy.ndarray, got %s" % (name, type(out).__name__))
    if out.dtype != dtype:
        raise TypeError("%s has dtype %s, but the result is %s" % (name, out.dtype, dtype))
    if out.shape != shape:
        raise ValueError("%s has shape %s, but the result has shape %s" % (name, out.shape,
                                                                          shape))
    return out


def _extent(a):
    """[lo, hi) byte range of a's elements."""
    lo = hi = a.data.ptr
    for n, s in zip(a.shape, a.strides):
        if s > 0:
            hi += (n - 1) * s
        else:
            lo += (n - 1) * s
    return lo, hi + a.itemsize


def _aliases(a, b):
    return a.data.ptr == b.data.ptr and a.strides == b.strides and a.shape == b.shape


def _overlaps_partly(out, inp):
    """True when out may share memory with inp without being exactly inp."""
    if out.size == 0 or inp.size == 0:
        return False
    a0, a1 = _extent(out)
    b0, b1 = _extent(inp)
    return a0 < b1 and b0 < a1 and not _aliases(out, inp)


# C++ element type of each dtype (kernel template argument), and the math type
_CTYPE = {np.dtype(k): v for k, v in _loader.CTYPE.items()}
_ACC = {np.dtype(k): np.dtype(v) for k, v in _loader.ACC_DTYPE.items()}


def _alpha_scalar(dtype, value):
    """A scalar of the type the kernels do their math in (float for float16/32)."""
    return _ACC[dtype].type(value)


def _cdiv(a, b):
    return -(-a // b)


def _blocks(work):
    return max(1, min(_cdiv(work, _THREADS), _loader.sm_count() * _BLOCKS_PER_SM))


def _head(arrays, n, itemsize):
    """Elements before the first 16-byte boundary if every array has the same
    misalignment (so the rest can use 16-byte packs), else n (no packs)."""
    mis = {a.data.ptr % 16 for a in arrays}
    if len(mis) != 1:
        return n
    m = mis.pop()
    if m % itemsize:
        return n
    return min(n, ((16 - m) % 16) // itemsize)


def _same_flat_layout(*arrays):
    if all(a.flags.c_contiguous for a in arrays):
        return True
    return all(a.flags.f_contiguous for a in arrays)


def _element_strides(shape, byte_strides, itemsize):
    """Coalesced (shape, element strides per array) padded to 4 axes, or None when that is
    not possible (more than 4 axes, or a stride that is not a whole number of elements)."""
    shape, strides = coalesce(shape, *byte_strides)
    if len(shape) > 4 or any(s % itemsize for st in strides for s in st):
        return None
    pad = 4 - len(shape)
    shape = (1,) * pad + tuple(shape)
    strides = [(0,) * pad + tuple(s // itemsize for s in st) for st in strides]
    return shape, strides


# ---- activations ---------------------------------------------------------------------


def _ew(expr):
    return _loader.function("elementwise.cu", expr)


def _elementwise(kind, op, inputs, out, alpha, num_threads):
    """``inputs``: (x,) for the forward, (grad_output, x) for the backward."""
    effective_n_threads(num_threads)  # validated like the CPU path; the GPU ignores it
    names = ("x",) if kind == "unary" else ("grad_output", "x")
    arrays = [_array(a, n) for a, n in zip(inputs, names)]
    x = arrays[-1]
    if kind == "binary":
        check_same("grad_output", arrays[0], "x", x)
    _check_device(x.device, *zip(names, arrays))
    if out is not None:
        _check_out(out, x.shape, x.dtype)
        _check_device(x.device, ("out", out))
    # CuPy allocates (and copies) on the current device: make it x's for all of it
    with x.device:
        if out is None:
            out = cupy.empty_like(x)
        if x.size == 0:
            return out
        arrays = [a.copy() if _overlaps_partly(out, a) else a for a in arrays]
        ctype = _CTYPE[x.dtype]
        a = _alpha_scalar(x.dtype, alpha)
        n = x.size
        if _same_flat_layout(out, *arrays):
            head = _head(arrays + [out], n, x.itemsize)
            vec = 16 // x.itemsize
            work = max((n - head) // vec, min(head, n)) + vec
            fn = _ew("%s_flat<%s, %d>" % (kind, ctype, op))
            fn((_blocks(work),), (_THREADS,), (*arrays, out, np.int64(n), np.int64(head), a))
            return out
        layout = _element_strides(x.shape, [out.strides] + [b.strides for b in arrays],
                                  x.itemsize)
        if layout is None:  # more than 4 independent axes: go through contiguous copies
            tmp = cupy.empty(x.shape, dtype=x.dtype)
            _elementwise(kind, op, [cupy.ascontiguousarray(b) for b in arrays], tmp, alpha,
                         None)
            out[...] = tmp
            return out
        (_, d1, d2, d3), strides = layout
        ostr, istr = strides[0], strides[1:]
        args = [*arrays, out, np.int64(n), np.int64(d1), np.int64(d2), np.int64(d3)]
        for st in istr + [ostr]:
            args.extend(np.int64(s) for s in st)
        args.append(a)
        fn = _ew("%s_strided<%s, %d>" % (kind, ctype, op))
        fn((_blocks(n),), (_THREADS,), tuple(args))
    return out


def relu(x, out=None, num_threads=None):
    """:func:`cyrelu.relu` for CuPy arrays."""
    return _elementwise("unary", _ACT["relu"], (x,), out, 0.0, num_threads)


def leaky_relu(x, alpha=0.2, out=None, num_threads=None):
    """:func:`cyrelu.leaky_relu` for CuPy arrays (alpha rounded to float32 for float16/32)."""
    alpha = check_real(alpha, "alpha")
    return _elementwise("unary", _ACT["leaky_relu"], (x,), out, alpha, num_threads)


def relu_backward(grad_output, x, out=None, num_threads=None):
    """:func:`cyrelu.relu_backward` for CuPy arrays."""
    return _elementwise("binary", _ACT["relu"], (grad_output, x), out, 0.0, num_threads)


def leaky_relu_backward(grad_output, x, alpha=0.2, out=None, num_threads=None):
    """:func:`cyrelu.leaky_relu_backward` for CuPy arrays."""
    alpha = check_real(alpha, "alpha")
    return _elementwise("binary", _ACT["leaky_relu"], (grad_output, x), out, alpha,
                        num_threads)


def _table_functions(name):
    """``name`` and ``name_backward`` for an activation of the table without a parameter
    (the table's other activations have their own functions above)."""
    code = _ACT[name]

    def forward(x, out=None, num_threads=None):
        return _elementwise("unary", code, (x,), out, 0.0, num_threads)

    def backward(grad_output, x, out=None, num_threads=None):
        return _elementwise("binary", code, (grad_output, x), out, 0.0, num_threads)

    forward.__name__, backward.__name__ = name, name + "_backward"
    forward.__doc__ = ":func:`cyrelu.%s` for CuPy arrays." % name
    backward.__doc__ = ":func:`cyrelu.%s_backward` for CuPy arrays." % name
    return forward, backward


for _name, _entry in _activation_table.TABLE.items():
    if _name not in globals() and not _entry.params:
        globals()[_name], globals()[_name + "_backward"] = _table_functions(_name)
        __all__ += [_name, _name + "_backward"]


# ---- per-channel machinery (BatchNorm and the diagnostics) ---------------------------


def _bn(expr):
    return _loader.function("batchnorm.cu", expr)


class _Layout:
    """x (C-contiguous) seen as (N, C, S); S == 1 uses the NC (rows, channels) kernels."""

    def __init__(self, shape, ax):
        self.N = math.prod(shape[:ax])
        self.C = shape[ax]
        self.S = math.prod(shape[ax + 1:])
        self.nc = self.S == 1
        self.M = self.N * self.S  # elements per channel


def _aligned(*arrays):
    return all(a.data.ptr % 16 == 0 for a in arrays)


_counters = {}  # (device id, stream pointer) -> uint32 cupy array, all zeros between launches


def _counter(n):
    """Arrival counters of the reductions' last-block step for the current stream: the
    kernels leave them at zero, so one array serves every launch on that stream
    (launches on one stream run in order; other streams get their own)."""
    key = (cupy.cuda.runtime.getDevice(), cupy.cuda.get_current_stream().ptr)
    buf = _counters.get(key)
    if buf is None or buf.size < n:
        buf = _counters[key] = cupy.zeros(max(n, 1024, 0 if buf is None else 2 * buf.size),
                                          dtype=np.uint32)
    return buf


def _kinds(*params):
    """Per-channel parameter kinds, 2 bits each: 0 absent, 1 float32, 2 float64."""
    k = 0
    for i, p in enumerate(params):
        if p is not None:
            k |= (2 if p.dtype == _F64 else 1) << (2 * i)
    return np.int32(k)


def _ptr(p, dummy):
    return dummy if p is None else p


def _index_type(lay):
    """int when every offset (and index + grid stride) of the reduction fits in 31 bits."""
    return "int" if lay.N * lay.C * lay.S + (1 << 26) < 2 ** 31 else "long long"


def _reduce(ctype, mode, act, lay, x, dy=None, yo=None, *, alpha=0.0, thr=0.0, sm, si, coef,
            M=1.0, eps=0.0, momentum=0.0, training=1, params=(None, None, None, None),
            kinds=np.int32(0)):
    """Per-channel reduction and its last-block finish (see batchnorm.cu)."""
    acc = _ACC[x.dtype]
    used = [x] + [a for a in (dy, yo) if a is not None]
    dy = x if dy is None else dy
    yo = x if yo is None else yo
    a = acc.type(alpha)
    t = acc.type(thr)
    index = _index_type(lay)
    it = np.int32 if index == "int" else np.int64
    p = [_ptr(q, sm) for q in params]
    if lay.nc:
        bx = _cdiv(lay.C, 32)
        nsplit = max(1, min(_cdiv(_RED_BLOCKS, bx), _cdiv(lay.N, _NC_ROWS * 4), _MAX_GRID_Y))
        part = cupy.empty(nsplit * lay.C * _PART, dtype=np.float64)
        fn = _bn("reduce_nc<%s, %d, %d, %s>" % (ctype, mode, act, index))
        fn((bx, nsplit), (32, _NC_ROWS),
           (x, dy, yo, a, t, it(lay.N), it(lay.C), part, _counter(bx), sm, si, coef,
            np.float64(M), np.float64(eps), np.float64(momentum), np.int32(training), kinds,
            *p))
    else:
        pack = 16 // x.itemsize
        width = pack if lay.S % pack == 0 else 1  # the shape's: fixes the partition
        vec = int(width > 1 and _aligned(*used))  # the pointers': only how units load
        units = lay.N * (lay.S // width)
        nsplit = max(1, min(_cdiv(_RED_BLOCKS, lay.C), _cdiv(units, _THREADS * 4),
                            _MAX_GRID_Y))
        part = cupy.empty(nsplit * lay.C * _PART, dtype=np.float64)
        fn = _bn("reduce_ncs<%s, %d, %d, %d, %s>" % (ctype, mode, act, vec, index))
        fn((lay.C, nsplit), (_THREADS,),
           (x, dy, yo, a, t, it(lay.N), it(lay.C), it(lay.S), np.int32(width), part,
            _counter(lay.C), sm, si, coef, np.float64(M), np.float64(eps),
            np.float64(momentum), np.int32(training), kinds, *p))
    return part


def _apply(ctype, mode, act, lay, x, dy, yo, out, coef, alpha):
    used = [out] + [a for a in (x, dy, yo) if a is not None]
    x = out if x is None else x
    dy = x if dy is None else dy
    yo = x if yo is None else yo
    width = 16 // out.itemsize
    vec = (lay.C if lay.nc else lay.S) % width == 0 and _aligned(*used)
    units = out.size // (width if vec else 1)
    fn = _bn("apply<%s, %d, %d>" % (ctype, mode, act))
    fn((_blocks(units),), (_THREADS,),
       (x, dy, yo, out, coef, _alpha_scalar(out.dtype, alpha), np.int64(lay.N),
        np.int64(lay.C), np.int64(1 if lay.nc else lay.S), np.int32(lay.nc), np.int32(vec)))


def _per_channel(value, name, C, device):
    if value is None:
        return None
    if not isinstance(value, cupy.ndarray):
        raise TypeError("%s: expected a cupy.ndarray, got %s" % (name, type(value).__name__))
    if value.dtype not in _PER_CHANNEL_DTYPES:
        raise TypeError("%s: unsupported dtype %s; expected float32 or float64"
                        % (name, value.dtype))
    if value.ndim != 1 or value.shape[0] != C:
        raise ValueError("%s must be 1-D of length C=%d (the channel axis), got shape %s"
                         % (name, C, value.shape))
    _check_device(device, (name, value))
    return value


def _ctype_of(a, default="float"):
    return default if a is None else _CTYPE[a.dtype]


def _contiguous_input(a, out):
    """a as a C-contiguous array that does not partly overlap out."""
    c = cupy.ascontiguousarray(a)
    if c is a and out is not None and _overlaps_partly(out, a):
        c = a.copy()
    return c


def _target(out, x):
    """Where the kernel writes: out itself when C-contiguous, else a fresh array (copied
    into out afterwards).  The inputs went through _contiguous_input first, so none of
    them partly overlaps out."""
    if out is not None and out.flags.c_contiguous:
        return out
    return cupy.empty(x.shape, dtype=x.dtype)


# ---- BatchNorm -----------------------------------------------------------------------


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
               training=False, momentum=0.1, eps=1e-5, *, axis=1, activation=None,
               alpha=0.2, out=None, return_stats=False, num_threads=None):
    """:func:`cyrelu.batch_norm` for CuPy arrays.  The result is C-contiguous (or ``out``)."""
    effective_n_threads(num_threads)
    x = _array(x, "x")
    ax, C, act, alpha, momentum, eps = _forward_args(x.shape, axis, activation, alpha,
                                                     momentum, eps)
    training = bool(training)
    dev = x.device
    w = _per_channel(weight, "weight", C, dev)
    b = _per_channel(bias, "bias", C, dev)
    rm = _per_channel(running_mean, "running_mean", C, dev)
    rv = _per_channel(running_var, "running_var", C, dev)
    if not training and (rm is None or rv is None):
        raise ValueError("running_mean and running_var are required when training=False")
    if out is not None:
        _check_out(out, x.shape, x.dtype)
        _check_device(dev, ("out", out))
    lay = _Layout(x.shape, ax)
    if training and lay.M < 2 and C > 0:
        raise ValueError(
            "expected more than 1 value per channel when training, got input shape %s "
            "(channel axis %d)" % (x.shape, ax)
        )
    acc = _F64 if x.dtype == _F64 else _F32
    ctype = _CTYPE[x.dtype]
    with dev:
        save_mean = cupy.empty(C, dtype=acc)
        save_invstd = cupy.empty(C, dtype=acc)
        if C == 0 or x.size == 0 and training:
            y = out if out is not None else cupy.empty(x.shape, dtype=x.dtype)
            return (y, save_mean, save_invstd) if return_stats else y
        # each per-channel parameter is float32 or float64 on its own (kinds)
        w_k = None if w is None else cupy.ascontiguousarray(w)
        b_k = None if b is None else cupy.ascontiguousarray(b)
        # running stats are updated in place: a contiguous stand-in where they are not
        rm_k = None if rm is None else cupy.ascontiguousarray(rm)
        rv_k = None if rv is None else cupy.ascontiguousarray(rv)
        if rm is not None and rv is not None and rm_k is rm and rv_k is rv and \
                _overlaps_partly(rm, rv):
            rv_k = rv.copy()
        params = (rm_k, rv_k, w_k, b_k)
        kinds = _kinds(*params)
        coef = cupy.empty(4 * C, dtype=acc)
        xc = _contiguous_input(x, out)
        y = _target(out, x)
        if training:
            # statistics, running stats (each one given, as on the CPU) and coefficients
            _reduce(ctype, _loader.RED_STATS, 0, lay, xc, sm=save_mean, si=save_invstd,
                    coef=coef, M=lay.M, eps=eps, momentum=momentum, params=params,
                    kinds=kinds)
            if rm is not None and rm_k is not rm:
                rm[...] = rm_k
            if rv is not None and rv_k is not rv:
                rv[...] = rv_k
        else:
            fn = _bn("eval_coef<%s>" % ctype)
            fn((_cdiv(C, _THREADS),), (_THREADS,),
               (np.int64(C), np.float64(eps), kinds, *[_ptr(q, save_mean) for q in params],
                save_mean, save_invstd, coef))
        if x.size:
            _apply(ctype, _loader.APPLY_FWD, act, lay, xc, None, None, y, coef, alpha)
        if out is not None and y is not out:
            out[...] = y
            y = out
    return (y, save_mean, save_invstd) if return_stats else y


def batch_norm_backward(grad_output, x, save_mean, save_invstd, weight=None, *,
                        training=True, axis=1, activation=None, alpha=0.2, output=None,
                        out=None, num_threads=None):
    """:func:`cyrelu.batch_norm_backward` for CuPy arrays:
    ``(grad_input, grad_weight, grad_bias)``."""
    effective_n_threads(num_threads)
    g = _array(grad_output, "grad_output")
    x = _array(x, "x")
    check_same("grad_output", g, "x", x)
    ax, C, act, alpha = _backward_args(x.shape, axis, activation, alpha)
    training = bool(training)
    dev = x.device
    _check_device(dev, ("grad_output", g))
    if save_mean is None:
        raise ValueError("save_mean is required")
    if save_invstd is None:
        raise ValueError("save_invstd is required")
    sm = _per_channel(save_mean, "save_mean", C, dev)
    si = _per_channel(save_invstd, "save_invstd", C, dev)
    w = _per_channel(weight, "weight", C, dev)
    yo = None
    if act != _ACT[None]:
        if output is None:
            raise ValueError("output (the forward's result) is required with activation=%r"
                             % activation)
        yo = _array(output, "output")
        check_same("output", yo, "x", x)
        _check_device(dev, ("output", yo))
    if out is not None:
        _check_out(out, x.shape, x.dtype)
        _check_device(dev, ("out", out))
    acc = _F64 if x.dtype == _F64 else _F32
    gdtype = w.dtype if w is not None else acc
    ctype = _CTYPE[x.dtype]
    lay = _Layout(x.shape, ax)
    with dev:
        grad_weight = cupy.empty(C, dtype=gdtype)
        grad_bias = cupy.empty(C, dtype=gdtype)
        if C == 0:
            gi = out if out is not None else cupy.empty(x.shape, dtype=x.dtype)
            return gi, grad_weight, grad_bias
        sm = cupy.ascontiguousarray(sm, dtype=acc)
        si = cupy.ascontiguousarray(si, dtype=acc)
        w_k = None if w is None else cupy.ascontiguousarray(w)
        gc = _contiguous_input(g, out)
        xc = _contiguous_input(x, out)
        yc = None if yo is None else _contiguous_input(yo, out)
        gi = _target(out, x)
        coef = cupy.empty(4 * C, dtype=acc)
        params = (w_k, grad_weight, grad_bias, None)
        kinds = _kinds(*params)
        if x.size:
            _reduce(ctype, _loader.RED_GRAD, act, lay, xc, gc, yc, alpha=alpha, sm=sm, si=si,
                    coef=coef, M=max(lay.M, 1), training=int(training), params=params,
                    kinds=kinds)
        else:  # no elements: zero sums, finished by a reduction over an empty channel
            _reduce(ctype, _loader.RED_GRAD, 0, _Layout((0, C), 1), xc, sm=sm, si=si, coef=coef,
                    M=1.0, training=int(training), params=params, kinds=kinds)
        if x.size:
            mode = _loader.APPLY_BWD_TRAIN if training else _loader.APPLY_BWD_EVAL
            _apply(ctype, mode, act, lay, xc, gc, yc, gi, coef, alpha)
        if out is not None and gi is not out:
            out[...] = gi
            gi = out
    return gi, grad_weight, grad_bias


# ---- diagnostics ---------------------------------------------------------------------


def _channel_counts(x, ax, mode, thr=0.0):
    """Per channel along ``ax`` (or over everything when ax is None): float64 counts."""
    xc = cupy.ascontiguousarray(x)
    if ax is None:  # one channel holding every element: the NCS kernels with C = 1
        lay = _Layout((1, x.size, 1), 1)
        lay.N, lay.C, lay.S, lay.nc, lay.M = 1, 1, x.size, False, x.size
    else:
        lay = _Layout(x.shape, ax)
    counts = cupy.zeros(lay.C, dtype=np.float64)
    if lay.C == 0 or x.size == 0:
        return counts
    dummy = cupy.empty(0, dtype=_ACC[x.dtype])
    _reduce(_CTYPE[x.dtype], mode, 0, lay, xc, thr=thr, sm=dummy, si=dummy, coef=dummy,
            params=(counts, None, None, None), kinds=np.int32(2))
    return counts


def dead_units(pre_activation, *, axis=1, threshold=0.0):
    """Twin of ``cyrelu.dead_units`` for CuPy arrays: a boolean CuPy array with one entry
    per channel along ``axis``, True where every value is ``<= threshold`` (exactly; a
    NaN is not <= threshold, so its channel is alive)."""
    x = _array(pre_activation, "pre_activation")
    ax, t = _dead_units_args(x.shape, axis, threshold)
    acc = _F64 if x.dtype == _F64 else _F32
    with x.device:
        alive = _channel_counts(x, ax, _loader.RED_ALIVE, _threshold_in(t, acc))
        return alive == 0


def sparsity(x, *, axis=None):
    """Twin of ``cyrelu.sparsity`` for CuPy arrays: the fraction of exact zeros (-0.0 is
    one, NaN is not), a Python float when ``axis`` is None, else a float64 CuPy array
    with one entry per channel."""
    a = _array(x, "x")
    if axis is None:
        if a.size == 0:
            raise ValueError("sparsity of an empty array is undefined (x has shape %s)"
                             % (a.shape,))
        with a.device:
            zeros = _channel_counts(a, None, _loader.RED_ZEROS)
            return float(zeros[0].get()) / a.size
    ax = _normalise_axis(axis, a.ndim, "x")
    nchan = a.shape[ax]
    with a.device:
        if nchan == 0:
            return cupy.zeros(0, dtype=np.float64)
        per_channel = a.size // nchan
        if per_channel == 0:
            raise ValueError(
                "x has shape %s: its channels along axis %d hold no values" % (a.shape, ax))
        zeros = _channel_counts(a, ax, _loader.RED_ZEROS)
        return zeros / float(per_channel)
