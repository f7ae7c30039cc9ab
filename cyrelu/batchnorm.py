"""Batch normalisation, forward and backward: the public functions.

Each function validates once, then calls its one Cython entry point in
``cyrelu._batchnorm`` (forward_train, forward_eval, backward), which runs the whole
operation.  Semantics are PyTorch's ``torch.nn.functional.batch_norm``
and its autograd (see the README), with the channel axis chosen by ``axis``.

Memory layout: ``x`` is read in place when it is C-contiguous, or contiguous
after a permutation of its axes (e.g. an NCHW-shaped view of channels-last
data, or any transpose of a contiguous array); the result then has the same
layout as ``x``.  Any other ``x`` (slices with gaps, unaligned data) is first
copied to a C-contiguous array.

Alignment: the kernels only ever see aligned memory.  Unaligned inputs (any
argument) are copied; an unaligned ``out`` or running statistic receives its
result through an aligned temporary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cyrelu import (
    _activation_table as _table,
    _batchnorm as _k,
    _bn_activation as _act,
    activations as _functions,
)
from cyrelu._backend import backend_for
from cyrelu._validation import (
    aligned,
    as_float_array,
    batch_norm_args as _forward_args,
    channel_axis,
    check_out,
    check_same,
    may_overlap_partly,
    per_channel as _per_channel,
    running_stat as _running,
)

__all__ = ["batch_norm", "batch_norm_backward"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)

# None or an activation's name from the table (cyrelu/_activation_table.py)
Activation = str | None
FloatArray = NDArray[np.floating]


# ---- public functions ---------------------------------------------------------------


@overload
def batch_norm(
    x: ArrayLike,
    running_mean: FloatArray | None = ...,
    running_var: FloatArray | None = ...,
    weight: ArrayLike | None = ...,
    bias: ArrayLike | None = ...,
    training: bool = ...,
    momentum: float = ...,
    eps: float = ...,
    *,
    axis: int = ...,
    activation: Activation = ...,
    alpha: float | None = ...,
    activation_params: Mapping[str, Any] | None = ...,
    out: FloatArray | None = ...,
    return_stats: Literal[False] = ...,
    num_threads: int | None = ...,
) -> FloatArray: ...


@overload
def batch_norm(
    x: ArrayLike,
    running_mean: FloatArray | None = ...,
    running_var: FloatArray | None = ...,
    weight: ArrayLike | None = ...,
    bias: ArrayLike | None = ...,
    training: bool = ...,
    momentum: float = ...,
    eps: float = ...,
    *,
    axis: int = ...,
    activation: Activation = ...,
    alpha: float | None = ...,
    activation_params: Mapping[str, Any] | None = ...,
    out: FloatArray | None = ...,
    return_stats: Literal[True],
    num_threads: int | None = ...,
) -> tuple[FloatArray, FloatArray, FloatArray]: ...


@overload
def batch_norm(
    x: ArrayLike,
    running_mean: FloatArray | None = ...,
    running_var: FloatArray | None = ...,
    weight: ArrayLike | None = ...,
    bias: ArrayLike | None = ...,
    training: bool = ...,
    momentum: float = ...,
    eps: float = ...,
    *,
    axis: int = ...,
    activation: Activation = ...,
    alpha: float | None = ...,
    activation_params: Mapping[str, Any] | None = ...,
    out: FloatArray | None = ...,
    return_stats: bool = ...,
    num_threads: int | None = ...,
) -> FloatArray | tuple[FloatArray, FloatArray, FloatArray]: ...


def batch_norm(
    x: ArrayLike,
    running_mean: FloatArray | None = None,
    running_var: FloatArray | None = None,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    axis: int = 1,
    activation: Activation = None,
    alpha: float | None = None,
    activation_params: Mapping[str, Any] | None = None,
    out: FloatArray | None = None,
    return_stats: bool = False,
    num_threads: int | None = None,
) -> FloatArray | tuple[FloatArray, FloatArray, FloatArray]:
    """Batch normalisation over every axis but ``axis`` (PyTorch's semantics).

    Parameters
    ----------
    x : array_like of float16, float32 or float64, ndim >= 2
        ``axis`` is the channel axis (1 for NCHW and (N, C); -1 for channels-last).
        float16 is computed in float32 and rounded once on the way out.
    running_mean, running_var : ndarray (C,) of float32/float64, optional
        Required when ``training`` is False.  When ``training`` is True they are
        updated in place (if given, and they must then be writable):
        ``running = (1 - momentum) * running + momentum * batch``, with the
        unbiased batch variance for ``running_var``.
    weight, bias : array_like (C,), optional
        Affine parameters (default 1 and 0).
    training : bool
        True: normalise with the batch mean and biased batch variance (at least
        2 values per channel).  False: normalise with the running statistics.
    momentum : float in [0, 1];  eps : float > 0
    axis : int
        Channel axis, negative allowed.
    activation : None or an activation's name
        An activation applied to the normalised output: any of the table's ("relu",
        "leaky_relu", "relu6", "hardtanh", "hardsigmoid", "hardswish", "elu", "selu",
        "celu", "silu", "softplus", "gelu", "mish"), fused into the normalising pass
        (the same values as applying the activation's function to the normalised
        output; float16: rounded once, not twice).
    alpha : float, optional
        The activation's parameter named alpha (leaky_relu's slope, elu's and celu's
        alpha); None, the default, is the activation's own default (0.2 for
        leaky_relu, 1.0 for elu and celu).  Ignored by activations without one.
    activation_params : mapping, optional
        The activation's other parameters by name, as its function takes them:
        ``{"min_val": 0.0, "max_val": 6.0}`` for hardtanh, ``{"beta": 2.0,
        "threshold": 10.0}`` for softplus, ``{"approximate": "tanh"}`` for gelu
        (missing ones: their defaults).  An unknown name, a parameter given twice
        (also as ``alpha``), or parameters without an activation are a ValueError.
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype (``out=x`` works in place).
    return_stats : bool
        Also return ``save_mean`` and ``save_invstd`` (float32 for float16/32
        data, float64 for float64): the batch mean and ``1/sqrt(var + eps)``
        in training, the running statistics' in evaluation.
    num_threads : int, optional
        Threads to use (None: OpenMP's default).  Results do not depend on it.

    Returns
    -------
    y, or (y, save_mean, save_invstd) when ``return_stats`` is True.
    """
    if not _act.fused_forward(activation):  # composed: normalise, then the activation
        values = _act.params(activation, alpha, activation_params)
        name = str(activation)
        _table.kernel_scalars(name, getattr(x, "dtype", None), *values)  # bounds
        res = batch_norm(
            x,
            running_mean,
            running_var,
            weight,
            bias,
            training,
            momentum,
            eps,
            axis=axis,
            out=out,
            return_stats=return_stats,
            num_threads=num_threads,
        )
        if return_stats:
            y, save_mean, save_invstd = res
            return _act.apply(name, values, y, num_threads), save_mean, save_invstd
        return _act.apply(name, values, res, num_threads)  # type: ignore[no-any-return]
    be = backend_for(x, running_mean, running_var, weight, bias, out)
    if be is not None:
        return be.batch_norm(  # type: ignore[no-any-return]
            x,
            running_mean,
            running_var,
            weight,
            bias,
            training,
            momentum,
            eps,
            axis=axis,
            activation=activation,
            alpha=alpha,
            activation_params=activation_params,
            out=out,
            return_stats=return_stats,
            num_threads=num_threads,
        )
    xa = as_float_array(x, "x")
    ax, C, act, _, momentum, eps = _forward_args(xa.shape, axis, activation, alpha, momentum, eps)
    # the fused activation's parameters for the kernels (checked before anything is written)
    ka, kb = _act.kernel_params(activation, alpha, activation_params, xa.dtype)
    training = bool(training)
    w = _per_channel(weight, "weight", C)
    b = _per_channel(bias, "bias", C)
    rm = _running(running_mean, "running_mean", C, training)
    rv = _running(running_var, "running_var", C, training)
    if not training and (rm is None or rv is None):
        raise ValueError("running_mean and running_var are required when training=False")
    # the kernels read and update aligned running statistics; unaligned ones are
    # updated through aligned copies, written back at the end
    rm_k = None if rm is None else aligned(rm)
    rv_k = None if rv is None else aligned(rv)
    if out is not None:
        check_out(out, xa.shape, xa.dtype)
    n = xa.size // C if C else 0
    if training and n < 2 and C > 0:
        raise ValueError(
            "expected more than 1 value per channel when training, got input shape %s "
            "(channel axis %d)" % (xa.shape, ax)
        )
    stats_dtype = _F64 if xa.dtype == _F64 else _F32

    if out is not None and may_overlap_partly(out, xa):
        xa = xa.copy()
    x3, order = _as_contiguous(xa)
    outer, inner = _outer_inner(x3.shape, order.index(ax))
    y3, y = _output_view(out, x3, order)

    save_mean = np.empty(C, dtype=stats_dtype) if return_stats else None
    save_invstd = np.empty(C, dtype=stats_dtype) if return_stats else None
    if training:
        _k.forward_train(
            x3,
            y3,
            outer,
            C,
            inner,
            w,
            b,
            eps,
            momentum,
            rm_k,
            rv_k,
            act,
            ka,
            kb,
            save_mean,
            save_invstd,
            num_threads,
        )
        if rm is not None and rm_k is not None and rm_k is not rm:
            np.copyto(rm, rm_k)
        if rv is not None and rv_k is not None and rv_k is not rv:
            np.copyto(rv, rv_k)
    else:
        assert rm_k is not None and rv_k is not None
        _k.forward_eval(
            x3,
            y3,
            outer,
            C,
            inner,
            w,
            b,
            eps,
            rm_k,
            rv_k,
            act,
            ka,
            kb,
            save_mean,
            save_invstd,
            num_threads,
        )
    if y is not out and out is not None:
        np.copyto(out, y)
        y = out
    if save_mean is not None and save_invstd is not None:
        return y, save_mean, save_invstd
    return y


def batch_norm_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    save_mean: ArrayLike,
    save_invstd: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    training: bool = True,
    axis: int = 1,
    activation: Activation = None,
    alpha: float | None = None,
    activation_params: Mapping[str, Any] | None = None,
    output: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    out: FloatArray | None = None,
    num_threads: int | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Gradients of :func:`batch_norm`: ``(grad_input, grad_weight, grad_bias)``.

    ``save_mean``/``save_invstd`` are what the forward returned with
    ``return_stats=True``.  ``training=True`` gives the full gradient through the
    batch statistics (PyTorch's formula); ``training=False`` gives
    ``grad_input = grad_output * weight * save_invstd``.

    With an ``activation`` (and its ``alpha`` / ``activation_params``, as given to the
    forward), ``grad_output`` is first multiplied by the activation's derivative at
    the forward's pre-activation, as PyTorch's autograd would.  The derivative is taken:

    - from ``output`` (the forward's result) where it can be read there: "relu",
      "relu6", "hardtanh", "celu", "selu", and "leaky_relu" and "elu" with
      ``alpha > 0``.  The forward's own values, so this is preferred when given;
    - else, with ``bias`` (the forward's bias; zeros for none), at the pre-activation
      recomputed from ``x``, the saved statistics, ``weight`` and ``bias``.

    The others ("hardsigmoid", "hardswish", "silu", "softplus", "gelu", "mish") need
    ``bias``; neither given is a ValueError.

    "relu", "leaky_relu", "relu6" and "hardtanh" are fused into the backward's own two
    passes (no pass of their own): from ``output``, or, for NumPy, Dask and CuPy data,
    at the pre-activation the kernels recompute from ``x`` and ``bias`` in the same
    passes (there leaky_relu's alpha may be any real).  The latter reads one array less, so
    ``bias`` without ``output`` is the fastest form of these.  In the row layout ((N, C)
    and channels-last data, float32/float64) the first pass keeps the gated
    ``grad_output`` in ``grad_input`` for the second.  With ``bias``, the other
    activations are fused too for float32 and float64 NumPy and Dask data: the kernels
    run the activation's own backward over the recomputed pre-activation in L1 tiles,
    keeping the gated ``grad_output`` in ``grad_input`` between the two passes (bitwise
    the activation's backward function, then this one's).  The CuPy kernels take every
    activation with ``bias`` in their two passes, for float16 data too (the
    derivative at the pre-activation computed in float).  "elu", "celu" and "selu" with
    ``output`` alone (no ``bias``) the kernels read from the output in their own passes
    (NumPy and Dask: in the same L1 tiles), for every dtype (``y > 0 ? 1 : y + alpha``,
    ``y / alpha + 1``, ``y + scale * alpha``, as torch's ``elu_backward(is_result=True)``).
    Elsewhere (float16 NumPy data with ``bias``) the derivative takes a pass of its own
    first.

    ``out`` receives ``grad_input`` (shape and dtype of ``x``).  ``grad_weight`` and
    ``grad_bias`` have ``weight``'s dtype, or float32 (float64 for float64 data) when
    ``weight`` is None.
    """
    if activation_params is None:
        fast = _k.backward_fast(
            grad_output,
            x,
            save_mean,
            save_invstd,
            weight,
            training,
            axis,
            activation,
            alpha,
            output,
            bias,
            out,
            num_threads,
        )
        if fast is not None:  # the common case, checked at C speed
            return fast
    values = _act.params(activation, alpha, activation_params)
    # where the kernels take the activation's derivative: at the output (the forward's
    # own values: preferred), else, with bias=, at the pre-activation they recompute
    # (from_z: NumPy data, and the backends whose kernels do it, Dask's and CuPy's:
    # _act.backend_fuses_backward_z)
    from_y = _act.fused_backward(activation, values, output)
    from_z = at_y = False
    be = None
    if not from_y and bias is None and _act.result_gate(activation, values, output):
        # elu, celu, selu: the NumPy kernels (and those of the backends that say so) read
        # the derivative from the output too (with bias= too, the pre-activation serves:
        # exact in the negative tail)
        be = backend_for(grad_output, x, save_mean, save_invstd, weight, output, out)
        at_y = be is None
        from_y = _act.backend_result_gate(be)
    if not from_y and _act.fused_backward_z(activation, bias):
        be = backend_for(grad_output, x, save_mean, save_invstd, weight, bias, out)
        from_z = _act.backend_fuses_backward_z(be, activation, bias, getattr(x, "dtype", None))
    if not (from_y or from_z):
        # gate grad_output by the derivative first, then the plain backward
        g = _gated(
            str(activation), values, grad_output, x, save_mean, save_invstd, weight, bias,
            output, axis, num_threads,
        )  # fmt: skip
        return batch_norm_backward(
            g,
            x,
            save_mean,
            save_invstd,
            weight,
            training=training,
            axis=axis,
            out=out,
            num_threads=num_threads,
        )
    if not (from_z or at_y):
        be = backend_for(grad_output, x, save_mean, save_invstd, weight, output, out)
    if be is not None:
        return be.batch_norm_backward(  # type: ignore[no-any-return]
            grad_output,
            x,
            save_mean,
            save_invstd,
            weight,
            training=training,
            axis=axis,
            activation=activation,
            alpha=alpha,
            activation_params=activation_params,
            output=output,
            bias=bias if from_z else None,
            out=out,
            num_threads=num_threads,
        )
    g = as_float_array(grad_output, "grad_output")
    xa = as_float_array(x, "x")
    check_same("grad_output", g, "x", xa)
    # with from_z any alpha: the derivative is taken at the pre-activation (at_y: checked)
    ax, C, act = _act.backward_gate(xa.shape, axis, activation, alpha, from_z or at_y)
    if at_y:  # the result gate: its flag on the code, its factor and shift as (a, b)
        act |= _k.GATE_AT_OUTPUT
        ka, kb = _act.result_gate_params(str(activation), values)
    else:
        ka, kb = _table.kernel_scalars(str(activation), xa.dtype, *values) if act else (0.0, 0.0)
    training = bool(training)
    mean = _per_channel(save_mean, "save_mean", C, required=True)
    invstd = _per_channel(save_invstd, "save_invstd", C, required=True)
    w = _per_channel(weight, "weight", C)
    b = _per_channel(bias, "bias", C)  # not needed where output gives the derivative; checked
    ya = None
    if act != _table.NONE and not from_z:
        if output is None:
            raise ValueError(
                "output (the forward's result) is required with activation=%r" % activation
            )
        ya = as_float_array(output, "output")
        check_same("output", ya, "x", xa)
    if out is not None:
        check_out(out, xa.shape, xa.dtype)
    if weight is not None:
        pdtype = np.asarray(weight).dtype
    else:
        pdtype = _F64 if xa.dtype == _F64 else _F32

    x3, order = _as_contiguous(xa)
    g3 = _in_layout(g, order)
    y3 = None if ya is None else _in_layout(ya, order)
    outer, inner = _outer_inner(x3.shape, order.index(ax))
    dst = out
    if out is not None and any(np.may_share_memory(out, a) for a in (g, xa, ya) if a is not None):
        dst = None  # write a fresh array, then copy
    dx3, dx = _output_view(dst, x3, order)
    grad_weight = np.empty(C, dtype=pdtype)
    grad_bias = np.empty(C, dtype=pdtype)
    _k.backward(
        g3,
        x3,
        y3,
        dx3,
        outer,
        C,
        inner,
        mean,
        invstd,
        w,
        b if from_z else None,
        from_z,
        training,
        act,
        ka,
        kb,
        grad_weight,
        grad_bias,
        num_threads,
    )
    if out is not None and dx is not out:
        np.copyto(out, dx)
        dx = out
    return dx, grad_weight, grad_bias


def _gated(
    name: str,
    values: tuple[Any, ...],
    grad_output: ArrayLike,
    x: ArrayLike,
    save_mean: ArrayLike,
    save_invstd: ArrayLike,
    weight: ArrayLike | None,
    bias: ArrayLike | None,
    output: ArrayLike | None,
    axis: int,
    num_threads: int | None,
) -> Any:
    """grad_output times activation ``name``'s derivative (_bn_activation.gate), the
    arguments checked first (as the general path checks them) on any backend."""
    arrays = (grad_output, x, save_mean, save_invstd, weight, bias, output)
    if backend_for(*arrays) is None:  # NumPy: array_likes checked and converted
        xa = as_float_array(x, "x")
        g = as_float_array(grad_output, "grad_output")
        check_same("grad_output", g, "x", xa)
        ax, C = channel_axis(xa.shape, axis)
        ya = None
        if output is not None:
            ya = as_float_array(output, "output")
            check_same("output", ya, "x", xa)
        mean = _per_channel(save_mean, "save_mean", C, required=True)
        invstd = _per_channel(save_invstd, "save_invstd", C, required=True)
        w = _per_channel(weight, "weight", C)
        b = _per_channel(bias, "bias", C)
        if b is None:
            return _act.gate(name, values, g, xa, mean, invstd, w, b, ya, ax, num_threads)
        # the pre-activation by the forward's own normalising pass, then the gate in place
        x3, order = _as_contiguous(xa)
        outer, inner = _outer_inner(x3.shape, order.index(ax))
        z3, z = _output_view(None, x3, order)
        _k.preactivation(x3, z3, outer, C, inner, mean, invstd, w, b, num_threads)
        backward: Any = getattr(_functions, name + "_backward")
        return backward(g, z, *values, out=z, num_threads=num_threads)
    shape = tuple(getattr(x, "shape", ()))
    ax, C = channel_axis(shape, axis)
    for label, a in (("grad_output", grad_output), ("output", output)):
        if a is not None and tuple(getattr(a, "shape", ())) != shape:
            raise ValueError(
                "%s has shape %s, x has %s" % (label, tuple(getattr(a, "shape", ())), shape)
            )
    for label, a in (("save_mean", save_mean), ("save_invstd", save_invstd),
                     ("weight", weight), ("bias", bias)):  # fmt: skip
        if a is not None and tuple(getattr(a, "shape", ())) != (C,):
            raise ValueError(
                "%s must have shape (%d,), got %s" % (label, C, tuple(getattr(a, "shape", ())))
            )
    return _act.gate(
        name, values, grad_output, x, save_mean, save_invstd, weight, bias, output, ax,
        num_threads,
    )  # fmt: skip


# ---- shared machinery --------------------------------------------------------------


def _as_contiguous(a: NDArray[np.floating]) -> tuple[NDArray[np.floating], list[int]]:
    """``(view, order)``: ``a.transpose(order)`` C-contiguous and aligned (a copy of ``a``
    when no permutation of its axes is contiguous)."""
    order = list(range(a.ndim))
    if a.flags.c_contiguous and a.flags.aligned:
        return a, order
    if a.flags.aligned:
        perm = sorted(order, key=lambda d: -abs(a.strides[d]))
        t = a.transpose(perm)
        if t.flags.c_contiguous and all(s >= 0 for s in t.strides):
            return t, perm
    # np.ascontiguousarray keeps a contiguous but unaligned array as it is
    return aligned(np.ascontiguousarray(a)), order


def _in_layout(a: NDArray[np.floating], order: list[int]) -> NDArray[np.floating]:
    t = a.transpose(order)
    if t.flags.c_contiguous and t.flags.aligned:
        return t
    return aligned(np.ascontiguousarray(t))


def _outer_inner(shape: tuple[int, ...], ax: int) -> tuple[int, int]:
    return math.prod(shape[:ax]), math.prod(shape[ax + 1 :])


def _output_view(
    out: NDArray[np.floating] | None, x3: NDArray[np.floating], order: list[int]
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """(y3, y): y3 is a C-contiguous array in x3's axis order the kernel writes, y the
    result in the caller's axis order (``out`` itself when it can be written directly)."""
    identity = order == list(range(len(order)))
    if out is not None:
        t = out if identity else out.transpose(order)
        if t.flags.c_contiguous and t.flags.aligned:
            return t, out
    y3 = np.empty(x3.shape, dtype=x3.dtype)
    return y3, (y3 if identity else y3.transpose(list(np.argsort(order))))
