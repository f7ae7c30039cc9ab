""":mod:`cyrelu.activations` for CuPy arrays: relu, leaky_relu and their gradients.

Exact (the same comparisons and one multiply as the CPU path); any memory layout; a
non-contiguous ``out`` is written in place.  Launch plans (kernel, grid, scalar
arguments) are cached per shape, strides, dtype, alignment and device.
"""

import numpy as np

from cyrelu import _activation_table as _table
from cyrelu._validation import check_bounds, check_real, check_same
from cyrelu.cuda import _launch as L
from cyrelu.cuda._launch import cupy

__all__ = ["relu", "leaky_relu", "relu_backward", "leaky_relu_backward", "hardtanh",
           "hardtanh_backward"]

_ACT = _table.CODES  # activation name -> the kernels' code (cyrelu/cuda/activation_table.h)

_PLANS = {}  # launch-plan key -> (kernel, grid, fixed scalar arguments)
_PLAN_LIMIT = 512


def _plan(kind, op, dev, arrays, out):
    x = arrays[-1]
    n = x.size
    ctype = L.CTYPE[x.dtype]
    if L.same_flat_layout(out, *arrays):
        head = L.head(arrays + [out], n, x.itemsize)
        vec = 16 // x.itemsize
        work = max((n - head) // vec, min(head, n)) + vec
        fn = _loader_fn("%s_flat<%s, %d>" % (kind, ctype, op))
        return fn, (L.blocks(work, L.grid_limit(dev, fn)),), (np.int64(n), np.int64(head))
    layout = L.element_strides(x.shape, [out.strides] + [b.strides for b in arrays],
                               x.itemsize)
    if layout is None:
        return None
    (_, d1, d2, d3), strides = layout
    ostr, istr = strides[0], strides[1:]
    args = [np.int64(n), np.int64(d1), np.int64(d2), np.int64(d3)]
    for st in istr + [ostr]:
        args.extend(np.int64(s) for s in st)
    fn = _loader_fn("%s_strided<%s, %d>" % (kind, ctype, op))
    return fn, (L.blocks(n, L.grid_limit(dev, fn)),), tuple(args)


def _loader_fn(expr):
    return L._loader.function("elementwise.cu", expr)


def _elementwise(kind, op, inputs, out, alpha, num_threads, beta=0.0):
    """``inputs``: (x,) for the forward, (grad_output, x) for the backward; ``alpha``,
    ``beta``: the activation's parameters."""
    L.check_threads(num_threads)  # validated like the CPU path; the GPU ignores it
    if kind == "unary":
        x = L.as_array(inputs[0], "x")
        arrays = [x]
    else:
        g = L.as_array(inputs[0], "grad_output")
        x = L.as_array(inputs[1], "x")
        check_same("grad_output", g, "x", x)
        arrays = [g, x]
    dev = x.device.id
    if kind == "binary":
        L.check_device(dev, "grad_output", g)
    if out is not None:
        L.check_out(out, x.shape, x.dtype)
        L.check_device(dev, "out", out)
    # CuPy allocates (and copies) on the current device: make it x's for all of it
    with L.CurrentDevice(dev):
        if out is None:
            out = cupy.empty_like(x)
        elif any(L.overlaps_partly(out, a) for a in arrays):
            arrays = [a.copy() if L.overlaps_partly(out, a) else a for a in arrays]
        if x.size == 0:
            return out
        key = (kind, op, dev, x.dtype, x.shape, out.strides,
               tuple(a.strides for a in arrays), tuple(a.data.ptr % 16 for a in arrays),
               out.data.ptr % 16)
        plan = _PLANS.get(key)
        if plan is None:
            plan = _plan(kind, op, dev, arrays, out)
            if len(_PLANS) >= _PLAN_LIMIT:
                _PLANS.clear()
            _PLANS[key] = plan
        if plan is None:  # more than 4 independent axes: go through contiguous copies
            tmp = cupy.empty(x.shape, dtype=x.dtype)
            _elementwise(kind, op, [cupy.ascontiguousarray(b) for b in arrays], tmp, alpha,
                         None, beta)
            out[...] = tmp
            return out
        fn, grid, fixed = plan
        a, b = L.ACC[x.dtype].type(alpha), L.ACC[x.dtype].type(beta)
        fn(grid, (L.THREADS,), (*arrays, out, *fixed, a, b))
    return out


def relu(x, /, out=None, *, num_threads=None):
    """:func:`cyrelu.relu` for CuPy arrays."""
    return _elementwise("unary", _ACT["relu"], (x,), out, 0.0, num_threads)


def leaky_relu(x, /, alpha=0.2, out=None, *, num_threads=None):
    """:func:`cyrelu.leaky_relu` for CuPy arrays (alpha rounded to float32 for float16/32)."""
    alpha = check_real(alpha, "alpha")
    return _elementwise("unary", _ACT["leaky_relu"], (x,), out, alpha, num_threads)


def relu_backward(grad_output, x, /, out=None, *, num_threads=None):
    """:func:`cyrelu.relu_backward` for CuPy arrays."""
    return _elementwise("binary", _ACT["relu"], (grad_output, x), out, 0.0, num_threads)


def leaky_relu_backward(grad_output, x, /, alpha=0.2, out=None, *, num_threads=None):
    """:func:`cyrelu.leaky_relu_backward` for CuPy arrays."""
    alpha = check_real(alpha, "alpha")
    return _elementwise("binary", _ACT["leaky_relu"], (grad_output, x), out, alpha,
                        num_threads)


def _bounds(min_val, max_val, x):
    """hardtanh's bounds, as :func:`cyrelu.hardtanh` checks and rounds them."""
    lo, hi = check_bounds(*_table.scalars("hardtanh", min_val, max_val))
    if getattr(x, "dtype", None) == np.float16:
        with np.errstate(over="ignore"):
            lo, hi = float(np.float16(lo)), float(np.float16(hi))
    return lo, hi


def hardtanh(x, /, min_val=-1.0, max_val=1.0, out=None, *, num_threads=None):
    """:func:`cyrelu.hardtanh` for CuPy arrays (bounds rounded to float32 for float16/32)."""
    lo, hi = _bounds(min_val, max_val, x)
    return _elementwise("unary", _ACT["hardtanh"], (x,), out, lo, num_threads, hi)


def hardtanh_backward(grad_output, x, /, min_val=-1.0, max_val=1.0, out=None, *,
                      num_threads=None):
    """:func:`cyrelu.hardtanh_backward` for CuPy arrays."""
    lo, hi = _bounds(min_val, max_val, x)
    return _elementwise("binary", _ACT["hardtanh"], (grad_output, x), out, lo, num_threads,
                        hi)


def _table_functions(name):
    """``name`` and ``name_backward`` for an activation of the table without a parameter
    (the table's other activations have their own functions above), with the public
    functions' signatures."""
    code = _ACT[name]

    def forward(x, /, out=None, *, num_threads=None):
        return _elementwise("unary", code, (x,), out, 0.0, num_threads)

    def backward(grad_output, x, /, out=None, *, num_threads=None):
        return _elementwise("binary", code, (grad_output, x), out, 0.0, num_threads)

    forward.__name__, backward.__name__ = name, name + "_backward"
    forward.__qualname__, backward.__qualname__ = name, name + "_backward"
    forward.__doc__ = ":func:`cyrelu.%s` for CuPy arrays." % name
    backward.__doc__ = ":func:`cyrelu.%s_backward` for CuPy arrays." % name
    return forward, backward


for _name, _entry in _table.TABLE.items():
    if _name not in globals() and not _entry.params:
        globals()[_name], globals()[_name + "_backward"] = _table_functions(_name)
        __all__ += [_name, _name + "_backward"]
