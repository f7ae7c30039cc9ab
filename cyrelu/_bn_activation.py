"""BatchNorm's ``activation=`` for every activation of the table, on every backend.

The BatchNorm kernels fuse the activations of activation_table.h's lists into their own
passes (forward: ``_activation_table.BN_FORWARD``, every activation with at most two
parameters, which is every one today; backward, reading the derivative from the output:
``BN_BACKWARD``).  Each backend takes the fused activation's parameters for its kernels
from BatchNorm's ``alpha`` and ``activation_params`` (:func:`kernel_params`).  What the
kernels do not fuse is composed here from the public functions, so it runs on NumPy,
CuPy and Dask arrays alike:

- forward (an activation outside BN_FORWARD; none today): batch_norm without the
  activation, then the activation's function applied to the result in place;
- backward, where the backend's kernels do not take the derivative themselves (the
  NumPy, Dask and CuPy kernels take every activation at the pre-activation they
  recompute from ``bias=`` (the NumPy kernels not for float16 data), those of
  ``BN_BACKWARD`` at ``output``, and elu, celu and selu at ``output`` too
  (:func:`result_gate_call`)): ``grad_output`` gated by the activation's derivative, then
  batch_norm's backward without the activation.  The derivative is taken at the
  pre-activation recomputed from ``x``, the saved statistics, ``weight`` and ``bias``
  (``bias=``), or, where it can be read from the output (elu with alpha > 0, celu,
  selu, and the fused ones), from ``output``.

Parameters: BatchNorm's ``alpha`` is the activation's parameter named alpha (leaky_relu,
elu, celu; None: its default); ``activation_params`` gives any parameter by name
(hardtanh's min_val/max_val, softplus's beta/threshold, gelu's approximate).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cyrelu import _activation_table as _table
from cyrelu._validation import activation_code, batch_norm_backward_args, channel_axis

_F64 = np.dtype(np.float64)
_F32 = np.dtype(np.float32)

# the derivative read from the output y where the table's rule (the backward function
# applied to y) does not give it, as torch's elu_backward with is_result=True:
# y > 0 -> pos, else factor * (y + shift)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_RESULT_GRAD = frozenset({"elu", "celu", "selu"})


def _result_grad(activation: str, a: float) -> tuple[float, float, float]:
    """(pos, factor, shift) of :data:`_RESULT_GRAD`'s members, ``a`` their alpha."""
    if activation == "elu":
        return 1.0, 1.0, a
    if activation == "celu":
        return 1.0, 1.0 / a, a
    return _SELU_SCALE, 1.0, _SELU_SCALE * _SELU_ALPHA


def params(activation: object, alpha: object, activation_params: object) -> tuple[Any, ...]:
    """The activation's parameters in the table's order, from BatchNorm's ``alpha`` (the
    parameter named alpha; None: its default) and ``activation_params`` (by name; None:
    none), each checked by the table's rule.  ValueError for an unknown activation or
    parameter name, or a parameter given twice; TypeError for ``activation_params``
    that is not a mapping."""
    values = _by_name(activation, alpha, activation_params)
    if values:
        _table.scalars(str(activation), *values)  # each checked by its rule
    return values


def _by_name(activation: object, alpha: object, activation_params: object) -> tuple[Any, ...]:
    """:func:`params` without the values' own checks: the names resolved (and their
    errors raised), the values as given."""
    code = activation_code(activation)
    if activation_params is not None and not isinstance(activation_params, Mapping):
        raise TypeError(
            "activation_params must be a mapping of parameter names to values, got %r"
            % (activation_params,)
        )
    given = dict(activation_params or {})
    if code == _table.NONE:
        if given:
            raise ValueError("activation_params %r given without an activation" % (given,))
        return ()
    spec = _table.TABLE[str(activation)].params
    names = [p[0] for p in spec]
    for key in given:
        if key not in names:
            raise ValueError(
                "%s has no parameter %r (its parameters: %s)"
                % (activation, key, ", ".join(names) or "none")
            )
    if alpha is not None and "alpha" in names:
        if "alpha" in given:
            raise ValueError("alpha given twice: as alpha=%r and in activation_params" % alpha)
        given["alpha"] = alpha
    return tuple(given.get(n, default) for n, default, _ in spec)


def fused_forward(activation: object) -> bool:
    """Whether the BatchNorm kernels fuse ``activation`` into the forward themselves."""
    return activation is None or (isinstance(activation, str) and activation in _table.BN_FORWARD)


def fused_backward(activation: object, values: tuple[Any, ...], output: object) -> bool:
    """Whether the BatchNorm kernels fuse ``activation`` (parameters ``values``) into the
    backward themselves: listed, and its derivative read from ``output``."""
    if activation is None:
        return True
    return (
        isinstance(activation, str)
        and activation in _table.BN_BACKWARD
        and output is not None
        and _table.grad_from_output(str(activation), _table.scalars(str(activation), *values)[0])
    )


def result_gate(activation: object, values: tuple[Any, ...], output: object) -> bool:
    """Whether ``activation`` (parameters ``values``) is one whose derivative the NumPy
    kernels read from ``output`` through the result gate: elu with alpha > 0, celu and
    selu (:func:`result_gate_params`; torch's elu_backward with is_result=True)."""
    if output is None or not isinstance(activation, str) or activation not in _RESULT_GRAD:
        return False
    return activation != "elu" or _table.scalars(activation, *values)[0] > 0.0


def result_gate_params(activation: str, values: tuple[Any, ...]) -> tuple[float, float]:
    """The kernels' ``(a, b)`` for the result gate of :func:`result_gate`'s members: the
    derivative ``y > 0 ? pos : a * (y + b)`` at the output y (``pos``, selu's scale or 1,
    the kernels take from the activation's code; include/cyrelu/batchnorm.h)."""
    _, factor, shift = _result_grad(activation, _table.scalars(activation, *values)[0])
    return factor, shift


def result_gate_call(
    activation: object, alpha: object, activation_params: object, output: object, bias: object
) -> bool:
    """Whether a batch_norm_backward call takes the derivative of elu, celu or selu from
    ``output`` through the result gate (:func:`result_gate`): given without ``bias``
    (with it, the pre-activation serves)."""
    if bias is not None or output is None or not isinstance(activation, str):
        return False
    if activation not in _RESULT_GRAD:
        return False
    return result_gate(activation, params(activation, alpha, activation_params), output)


def backend_result_gate(backend: Any) -> bool:
    """Whether ``backend`` (None: the NumPy kernels) takes :func:`result_gate_call`'s calls
    in its own kernels.  A backend module says so with ``BATCH_NORM_BACKWARD_RESULT_GATE =
    True`` (Dask's chunks run the NumPy kernels; CuPy's kernels take it too); else the
    public function composes the call."""
    return backend is None or bool(getattr(backend, "BATCH_NORM_BACKWARD_RESULT_GATE", False))


def backward_kernel_params(
    activation: object, alpha: object, activation_params: object, dtype: Any, at_y: bool
) -> tuple[float, float]:
    """The backward kernels' ``(a, b)``: the result gate's factor and shift where the
    derivative of elu, celu or selu is read from the output (``at_y``,
    :func:`result_gate_call`), else :func:`kernel_params`."""
    if at_y:
        return result_gate_params(str(activation), params(activation, alpha, activation_params))
    return kernel_params(activation, alpha, activation_params, dtype)


def fused_backward_z(activation: object, bias: object, dtype: object = None) -> bool:
    """Whether the BatchNorm kernels (NumPy data) fuse ``activation`` into the backward
    at the pre-activation they recompute from x, the statistics, weight and ``bias``, for
    data of ``dtype``: with ``bias`` given, any activation of the table for float32 and
    float64 data (CYR_BN_BACKWARD_LOOP_ACTIVATIONS, the relu family, hardsigmoid and
    hardswish, in the kernels' loops; the smooth ones through L1 tiles, their gate kept in
    dx between the passes), those of CYR_BN_BACKWARD_ACTIVATIONS for float16 data.
    float16 data cannot keep a float gate in its dx, and taking the derivative in both
    passes was slower than the composed path for the smooth ones (gelu 3.6-5.3x
    BatchNorm's backward alone against 2.6-3.8x; 2 threads, Zen 4) and no faster for
    hardsigmoid and hardswish in the loops (hardswish 1.35-2.15x against 1.23-1.93x:
    faster on NCHW, slower on (4096, 1024); Zen 5).  ``dtype`` None: any activation of
    the table, whatever the data's dtype.  Used where the output cannot give the
    derivative (:func:`fused_backward`, which keeps the forward's own values, is
    preferred)."""
    if bias is None or not isinstance(activation, str):
        return False
    if dtype is None:  # a backend's kernels (BATCH_NORM_BACKWARD_FROM_BIAS): any dtype
        return activation in _table.TABLE
    if activation in _table.BN_BACKWARD:
        return True
    return activation in _table.TABLE and str(dtype) != "float16"


def backend_fuses_backward_z(
    backend: Any, activation: object, bias: object, dtype: object
) -> bool:
    """Whether ``backend`` (None: the NumPy kernels) takes batch_norm_backward's ``bias=``
    for ``activation`` on data of ``dtype`` in its own kernels (else the public function
    composes the call).  A backend module says so with ``BATCH_NORM_BACKWARD_FROM_BIAS``:
    True, the NumPy kernels' rule (:func:`fused_backward_z`; Dask, whose chunks run
    them), or ``"any dtype"``, every activation of the table for every dtype (CuPy,
    whose kernels do float16 math in float)."""
    if backend is None:
        return fused_backward_z(activation, bias, dtype)
    rule = getattr(backend, "BATCH_NORM_BACKWARD_FROM_BIAS", False)
    if not rule:
        return False
    return fused_backward_z(activation, bias, None if rule == "any dtype" else dtype)


def backward_gate(
    shape: tuple[int, ...],
    axis: object,
    activation: object,
    alpha: object,
    from_z: bool,
) -> tuple[int, int, int]:
    """A batch_norm_backward's ``(axis, C, activation code)``, checked: where the
    derivative is taken at the pre-activation (``from_z``), any activation of the table
    with any alpha; else one the kernels read on the output (leaky_relu's alpha > 0)."""
    if from_z:
        ax, C = channel_axis(shape, axis)
        return ax, C, _table.code(activation)
    ax, C, act, _ = batch_norm_backward_args(shape, axis, activation, alpha)
    return ax, C, act


def backend_gate_at_z(
    activation: object, alpha: object, activation_params: object, output: object, bias: object
) -> bool:
    """Whether a backend whose kernels take ``bias=`` themselves (Dask's, CuPy's) takes the
    derivative at the pre-activation: bias given, and the output (preferred where it
    gives the derivative, as on the NumPy path) cannot give it."""
    if activation is None or bias is None:
        return False
    return not fused_backward(activation, params(activation, alpha, activation_params), output)


def defer_forward(activation: object, activation_params: object) -> bool:
    """Whether a backend's batch_norm hands the call to :func:`cyrelu.batch_norm`, which
    composes the activations the kernels do not fuse (and then calls the backend with
    none); a fused activation's parameters the backend takes itself
    (:func:`kernel_params`)."""
    return not fused_forward(activation)


def kernel_params(
    activation: object, alpha: object, activation_params: object, dtype: Any
) -> tuple[float, float]:
    """The fused activation's parameters as the kernels take them, ``(a, b)``, for data
    of ``dtype``: from BatchNorm's ``alpha`` and ``activation_params`` (:func:`params`'s
    checks; hardtanh's bounds rounded to the data's type, gelu's approximate 0 or 1, as
    :func:`cyrelu._activation_table.kernel_scalars` gives them).  ``(0.0, 0.0)`` for no
    activation.  Raises before anything is written."""
    if activation_params is None:  # the common cases, quickly
        if activation is None:
            return 0.0, 0.0
        if isinstance(activation, str) and activation in _table.TABLE:
            spec = _table.TABLE[activation].params
            if not spec or (len(spec) == 1 and spec[0][0] == "alpha"):
                return _table.scalar(activation, alpha), 0.0
            if spec[0][0] != "alpha":  # BatchNorm's alpha is not theirs: the defaults
                return _table.kernel_scalars(activation, dtype)
    values = _by_name(activation, alpha, activation_params)  # checked once, just below
    if activation is None:
        return 0.0, 0.0
    return _table.kernel_scalars(str(activation), dtype, *values)


def defer_backward(activation: object, activation_params: object, output: object,
                   bias: object, *, from_bias: bool = False) -> bool:  # fmt: skip
    """Whether a backend's batch_norm_backward hands the call to
    :func:`cyrelu.batch_norm_backward` (as :func:`defer_forward`): without ``from_bias``,
    any ``bias``, and an activation the kernels do not fuse into the backward from
    ``output`` (or without ``output``); with ``from_bias`` (the backend's kernels
    recompute the pre-activation, for every activation), an activation given neither
    ``output`` nor ``bias``, or ``output`` alone for one whose derivative the kernels do
    not read there.  Where both are given the backend reads ``output`` if it gives the
    derivative (:func:`fused_backward`), as the NumPy path does.  A fused activation's
    parameters (``alpha``, ``activation_params``) the backend takes itself
    (:func:`kernel_params`)."""
    del activation_params  # the backend's kernel_params call checks them
    if bias is not None and not from_bias:
        return True
    if activation is None:
        return False
    if not isinstance(activation, str) or activation not in _table.TABLE:
        return True  # the public function's error
    if bias is not None:
        return False
    return output is None or activation not in _table.BN_BACKWARD


def apply(activation: str, values: tuple[Any, ...], y: Any, num_threads: int | None) -> Any:
    """activation(y) with its parameters: in place, except on a Dask array (lazy)."""
    import cyrelu

    fn: Any = getattr(cyrelu, activation)
    out = None if type(y).__module__.partition(".")[0] == "dask" else y
    return fn(y, *values, out=out, num_threads=num_threads)


def _broadcast(v: Any, ndim: int, axis: int) -> Any:
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


def _compute_dtype(dtype: Any) -> np.dtype[Any]:
    return _F64 if np.dtype(dtype) == _F64 else _F32


def preactivation(
    x: Any, save_mean: Any, save_invstd: Any, weight: Any, bias: Any, axis: int
) -> Any:
    """The forward's pre-activation, x * scale + shift with scale = weight * invstd and
    shift = bias - mean * scale per channel (computed in float64, applied in float32,
    float64 for float64 data), in x's dtype and x's array library."""
    ct = _compute_dtype(x.dtype)
    scale = save_invstd.astype(_F64)
    if weight is not None:
        scale = scale * weight.astype(_F64)
    shift = bias.astype(_F64) - save_mean.astype(_F64) * scale
    scale = _broadcast(scale.astype(ct), x.ndim, axis)
    shift = _broadcast(shift.astype(ct), x.ndim, axis)
    return (x.astype(ct, copy=False) * scale + shift).astype(x.dtype, copy=False)


def gate(
    activation: str,
    values: tuple[Any, ...],
    grad_output: Any,
    x: Any,
    save_mean: Any,
    save_invstd: Any,
    weight: Any,
    bias: Any,
    output: Any,
    axis: int,
    num_threads: int | None,
) -> Any:
    """grad_output times the activation's derivative at the forward's pre-activation:
    recomputed from ``bias`` (with x, the statistics and weight) when it is given, else
    read from ``output``; ValueError when neither can give it."""
    import cyrelu

    backward: Any = getattr(cyrelu, activation + "_backward")
    if bias is not None:
        z = preactivation(x, save_mean, save_invstd, weight, bias, axis)
        return backward(grad_output, z, *values, num_threads=num_threads)
    if output is not None:
        a = _table.scalars(activation, *values)[0]
        if _table.grad_from_output(activation, a):
            return backward(grad_output, output, *values, num_threads=num_threads)
        if result_gate(activation, values, output):
            pos, factor, shift = _result_grad(activation, a)
            ct = _compute_dtype(output.dtype)
            y = output.astype(ct, copy=False)
            d = np.where(y > 0, ct.type(pos), ct.type(factor) * (y + ct.type(shift)))
            return (grad_output.astype(ct, copy=False) * d).astype(grad_output.dtype)
        raise ValueError(
            "the %s backward needs bias= to recompute the pre-activation: its derivative "
            "cannot be read from the output%s"
            % (activation, " unless alpha > 0" if activation in ("leaky_relu", "elu") else "")
        )
    raise ValueError(
        "activation=%r needs output= (the forward's result) or bias= (to recompute the "
        "pre-activation)" % activation
    )
