""":mod:`cyrelu.activations` for CuPy arrays: relu, leaky_relu and their gradients.

Exact (the same comparisons and one multiply as the CPU path); any memory layout; a
non-contiguous ``out`` is written in place.  Launch plans (kernel, grid, scalar
arguments) are cached per shape, strides, dtype, alignment and device; a call whose
arrays match an earlier successful call's in all of those launches that call's plan
after checking only the current device and overlaps (the per-call fast path).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from cyrelu import _activation_table as _table
from cyrelu._validation import check_real, check_same
from cyrelu.cuda import _launch as L, _loader
from cyrelu.cuda._launch import cupy

__all__ = [
    "relu",
    "leaky_relu",
    "relu_backward",
    "leaky_relu_backward",
]

_ACT = _table.CODES  # activation name -> the kernels' code (cyrelu/cuda/activation_table.h)

Array = Any  # a cupy.ndarray (CuPy ships no type information)
Plan = tuple[Any, tuple[int], tuple[Any, ...]]  # kernel, grid, fixed scalar arguments

_PLANS: dict[tuple[Any, ...], Plan | None] = {}  # launch-plan key -> plan
_PLAN_LIMIT = 512
_BLOCK = (L.THREADS,)


def _plan(kind: str, op: int, dev: int, arrays: list[Array], out: Array) -> Plan | None:
    """The kernel (flat or strided, and its index type), grid and fixed arguments; None
    beyond 4 independent axes.  The index type is chosen for the largest grid any kernel
    could get (the device's threads; registers only lower it)."""
    x = arrays[-1]
    n = x.size
    ctype = L.CTYPE[x.dtype]
    if L.same_flat_layout(out, *arrays):
        head = L.head([*arrays, out], n, x.itemsize)
        vec = 16 // x.itemsize
        work = max((n - head) // vec, min(head, n)) + vec
        index, it = L.index_type(n, L.blocks(work, L.grid_limit(dev)) * L.THREADS)
        fn = _loader_fn("%s_flat<%s, %d, %s>" % (kind, ctype, op, index))
        return fn, (L.blocks(work, L.grid_limit(dev, fn)),), (it(n), it(head))
    layout = L.element_strides(x.shape, [out.strides] + [b.strides for b in arrays], x.itemsize)
    if layout is None:
        return None
    dims, strides = layout
    # the largest offset from any array's data pointer, of either sign
    reach = max(sum((d - 1) * abs(s) for d, s in zip(dims, st, strict=False)) for st in strides)
    index, it = L.index_type(max(n, reach), L.blocks(n, L.grid_limit(dev)) * L.THREADS)
    args = [it(n), it(dims[1]), it(dims[2]), it(dims[3])]
    for st in [*strides[1:], strides[0]]:  # the inputs', then out's
        args.extend(it(s) for s in st)
    fn = _loader_fn("%s_strided<%s, %d, %s>" % (kind, ctype, op, index))
    return fn, (L.blocks(n, L.grid_limit(dev, fn)),), tuple(args)


def _loader_fn(expr: str) -> Any:
    return _loader.function("elementwise.cu", expr)


class _Fast:
    """A call's key -> its launch plan, its device, and the byte extents (relative to
    the data pointers) of the inputs and of out, for the per-call overlap check."""

    __slots__ = ("alpha_t", "dev", "in_extents", "out_extent", "plan")

    def __init__(
        self, plan: Plan, dev: int, alpha_t: Any, out: Array, arrays: list[Array]
    ) -> None:
        self.plan, self.dev, self.alpha_t = plan, dev, alpha_t
        self.out_extent = L.extent(out)
        # (lo, hi, an input at out's address is out itself)
        self.in_extents = [(*L.extent(a), a.strides == out.strides) for a in arrays]


_FAST: dict[tuple[Any, ...], _Fast] = {}


def _fast_key(op: int, inputs: tuple[Array, ...], out: Array) -> tuple[Any, ...] | None:
    try:
        if len(inputs) == 1:
            return (op, L.array_key(inputs[0]), L.array_key(out))
        return (op, L.array_key(inputs[0]), L.array_key(inputs[1]), L.array_key(out))
    except L.NotFast:
        return None


def _fast_ok(f: _Fast, inputs: tuple[Array, ...], out: Array) -> bool:
    """The checks a key cannot make: the current device, and out partly overlapping an
    input (the general path copies that input first)."""
    if L.get_device() != f.dev:
        return False
    if out is not None:
        op = out.data.ptr
        o0, o1 = op + f.out_extent[0], op + f.out_extent[1]
        for a, (lo, hi, same) in zip(inputs, f.in_extents, strict=False):
            p = a.data.ptr
            if o0 < p + hi and p + lo < o1 and not (same and p == op):
                return False
    return True


def _elementwise(
    kind: str,
    op: int,
    inputs: tuple[Array, ...],
    out: Array,
    alpha: float,
    num_threads: int | None,
    beta: float = 0.0,
) -> Array:
    """``inputs``: (x,) for the forward, (grad_output, x) for the backward; ``alpha``,
    ``beta``: the activation's parameters.  A call with
    the array keys of an earlier one (see cyrelu.cuda._launch) launches that call's
    plan after the per-call checks; any other goes through _general."""
    L.check_threads(num_threads)  # validated like the CPU path; the GPU ignores it
    key = _fast_key(op, inputs, out)
    f = None if key is None else _FAST.get(key)
    if f is None or not _fast_ok(f, inputs, out):
        return _general(kind, op, inputs, out, alpha, key, beta)
    if out is None:
        out = cupy.empty_like(inputs[-1])  # aligned, as the plan's was
    fn, grid, fixed = f.plan
    fn(grid, _BLOCK, (*inputs, out, *fixed, f.alpha_t(alpha), f.alpha_t(beta)))
    return out


def _general(
    kind: str,
    op: int,
    inputs: Sequence[Array],
    out: Array,
    alpha: float,
    key: tuple[Any, ...] | None,
    beta: float = 0.0,
) -> Array:
    """Every check; copies where out partly overlaps an input, or where the layout has
    more than 4 independent axes.  Remembers the call under ``key`` when it made none."""
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
    copied = False
    # CuPy allocates (and copies) on the current device: make it x's for all of it
    with L.CurrentDevice(dev):
        if out is None:
            out = cupy.empty_like(x)
        elif any(L.overlaps_partly(out, a) for a in arrays):
            arrays = [a.copy() if L.overlaps_partly(out, a) else a for a in arrays]
            copied = True
        if x.size == 0:
            return out
        pkey = (
            kind,
            op,
            dev,
            x.dtype,
            x.shape,
            out.strides,
            tuple(a.strides for a in arrays),
            tuple(a.data.ptr % 16 for a in arrays),
            out.data.ptr % 16,
        )
        plan = _PLANS.get(pkey)
        if plan is None:
            plan = _plan(kind, op, dev, arrays, out)
            if len(_PLANS) >= _PLAN_LIMIT:
                _PLANS.clear()
            _PLANS[pkey] = plan
        if plan is None:  # more than 4 independent axes: go through contiguous copies
            tmp = cupy.empty(x.shape, dtype=x.dtype)
            _general(kind, op, [cupy.ascontiguousarray(b) for b in arrays], tmp, alpha, None, beta)
            out[...] = tmp
            return out
        fn, grid, fixed = plan
        alpha_t = L.ACC[x.dtype].type
        fn(grid, _BLOCK, (*arrays, out, *fixed, alpha_t(alpha), alpha_t(beta)))
    if key is not None and not copied:
        L.remember(_FAST, key, _Fast(plan, dev, alpha_t, out, arrays))
    return out


def relu(x: Array, /, out: Array | None = None, *, num_threads: int | None = None) -> Array:
    """:func:`cyrelu.relu` for CuPy arrays."""
    return _elementwise("unary", _ACT["relu"], (x,), out, 0.0, num_threads)


def leaky_relu(
    x: Array, /, alpha: float = 0.2, out: Array | None = None, *, num_threads: int | None = None
) -> Array:
    """:func:`cyrelu.leaky_relu` for CuPy arrays (alpha rounded to float32 for float16/32)."""
    alpha = check_real(alpha, "alpha")
    return _elementwise("unary", _ACT["leaky_relu"], (x,), out, alpha, num_threads)


def relu_backward(
    grad_output: Array, x: Array, /, out: Array | None = None, *, num_threads: int | None = None
) -> Array:
    """:func:`cyrelu.relu_backward` for CuPy arrays."""
    return _elementwise("binary", _ACT["relu"], (grad_output, x), out, 0.0, num_threads)


def leaky_relu_backward(
    grad_output: Array,
    x: Array,
    /,
    alpha: float = 0.2,
    out: Array | None = None,
    *,
    num_threads: int | None = None,
) -> Array:
    """:func:`cyrelu.leaky_relu_backward` for CuPy arrays."""
    alpha = check_real(alpha, "alpha")
    return _elementwise("binary", _ACT["leaky_relu"], (grad_output, x), out, alpha, num_threads)


def _table_functions(name: str) -> tuple[Callable[..., Array], Callable[..., Array]]:
    """``name`` and ``name_backward`` for an activation of the table (the ones with
    functions of their own above excepted), with the public functions' signatures:
    ``(x, /, <parameters>, out=None, *, num_threads=None)``, the parameters and their
    defaults from the table, checked and rounded by its rules (``kernel_scalars``)."""
    code = _ACT[name]
    names = [p[0] for p in _table.TABLE[name].params]
    slots = [*names, "out"]

    def parse(args: tuple[Any, ...], kwargs: dict[str, Any], fn: str) -> tuple[Any, ...]:
        if len(args) > len(slots):
            raise TypeError(
                "%s() takes at most %d optional positional arguments (%d given)"
                % (fn, len(slots), len(args))
            )
        given = dict(zip(slots, args, strict=False))
        for key, value in kwargs.items():
            if key not in slots or key in given:
                raise TypeError("%s() got an unexpected or repeated argument %r" % (fn, key))
            given[key] = value
        # missing parameters take the table's defaults; a None given is no number
        return tuple(given.get(n, d) for n, d, _ in _table.TABLE[name].params), given.get("out")

    def forward(x: Array, /, *args: Any, num_threads: int | None = None, **kwargs: Any) -> Array:
        values, out = parse(args, kwargs, name)
        a, b = _table.kernel_scalars(name, getattr(x, "dtype", None), *values)
        return _elementwise("unary", code, (x,), out, a, num_threads, b)

    def backward(
        grad_output: Array, x: Array, /, *args: Any, num_threads: int | None = None, **kwargs: Any
    ) -> Array:
        values, out = parse(args, kwargs, name + "_backward")
        a, b = _table.kernel_scalars(name, getattr(x, "dtype", None), *values)
        return _elementwise("binary", code, (grad_output, x), out, a, num_threads, b)

    def signature(first: list[str]) -> inspect.Signature:
        P = inspect.Parameter
        params = [P(n, P.POSITIONAL_ONLY) for n in first]
        params += [
            P(n, P.POSITIONAL_OR_KEYWORD, default=d) for n, d, _ in _table.TABLE[name].params
        ]
        params += [P("out", P.POSITIONAL_OR_KEYWORD, default=None)]
        params += [P("num_threads", P.KEYWORD_ONLY, default=None)]
        return inspect.Signature(params)

    forward.__signature__ = signature(["x"])  # type: ignore[attr-defined]
    backward.__signature__ = signature(["grad_output", "x"])  # type: ignore[attr-defined]
    forward.__name__, backward.__name__ = name, name + "_backward"
    forward.__qualname__, backward.__qualname__ = name, name + "_backward"
    forward.__doc__ = ":func:`cyrelu.%s` for CuPy arrays." % name
    backward.__doc__ = ":func:`cyrelu.%s_backward` for CuPy arrays." % name
    return forward, backward


for _name in _table.TABLE:
    if _name not in globals():
        globals()[_name], globals()[_name + "_backward"] = _table_functions(_name)
        __all__ += [_name, _name + "_backward"]
