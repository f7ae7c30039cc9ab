"""Input checking shared by every public function: one place decides what is accepted.

Rules (the same for every kernel):
  * float32 and float64 arrays are computed natively; float16 is accepted and
    computed in float32 by the caller; every other dtype raises TypeError naming it.
  * array-likes (lists, tuples, Python and NumPy scalars) go through ``np.asarray``;
    arrays of other libraries raise TypeError (nothing is converted behind the
    caller's back, and a GPU array never silently becomes a host copy).
  * ``out`` must be a writable ndarray of exactly the result's shape and dtype.
  * the kernels read and write only aligned memory: an unaligned input is copied
    (``aligned``), an unaligned output is computed into an aligned temporary and
    copied back (``aligned_target``).
  * one exception type per kind of mistake: a wrong *type* (not a number, not an
    array, wrong dtype, a non-int axis) is a TypeError; a value out of range (NaN,
    infinite, too large for a float, an axis out of range) is a ValueError naming
    the argument.  ``num_threads`` is the documented exception: anything but None or
    an int in [1, 2**31 - 1] is a ValueError.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
HALF = np.dtype(np.float16)
_ARRAY_LIKE_SCALARS = (numbers.Number, np.generic)


def as_float_array(value: object, name: str) -> NDArray[np.floating[Any]]:
    """``value`` as a float16/32/64 ndarray, or TypeError saying why not."""
    if type(value) is not np.ndarray:
        if isinstance(value, np.ma.MaskedArray):
            raise TypeError(
                "%s: masked arrays are not supported (the mask would be lost); "
                "pass np.ma.getdata(%s) or a filled array" % (name, name)
            )
        if not isinstance(value, (np.ndarray, list, tuple, *_ARRAY_LIKE_SCALARS)):
            tname = type(value).__module__ + "." + type(value).__qualname__
            raise TypeError(
                "%s: expected a numpy.ndarray (or a list/scalar), got %s; convert it "
                "explicitly, e.g. with np.asarray()" % (name, tname)
            )
        value = np.asarray(value)
    check_float_dtype(value.dtype, name)
    return value


def as_ndarray(value: object, name: str, lists: bool = False) -> NDArray[Any]:
    """An ndarray (subclasses such as np.memmap included, seen as a plain ndarray view
    of the same memory, so that writes reach them), or a list/tuple when ``lists``;
    TypeError otherwise (masked arrays too: the mask would be lost)."""
    if type(value) is np.ndarray:
        return value
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            "%s: masked arrays are not supported (the mask would be lost); "
            "pass np.ma.getdata(%s) or a filled array" % (name, name)
        )
    if isinstance(value, np.ndarray) or (lists and isinstance(value, (list, tuple))):
        return np.asarray(value)
    raise TypeError(
        "%s: expected a numpy.ndarray%s, got %s"
        % (name, " (or a list)" if lists else "", type(value).__name__)
    )


def check_float_dtype(dtype: np.dtype[Any], name: str) -> None:
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        if not dtype.isnative:
            raise TypeError(
                "%s: non-native byte order %s is not supported; convert with "
                "%s.astype(%s.dtype.newbyteorder('='))" % (name, dtype.str, name, name)
            )
        return
    raise TypeError(
        "%s: unsupported dtype %s; expected float32 or float64 (or float16)" % (name, dtype)
    )


def check_same(name_a: str, a: NDArray[Any], name_b: str, b: NDArray[Any]) -> None:
    """Equal shapes and dtypes, no broadcasting."""
    if a.dtype != b.dtype:
        raise TypeError(
            "%s and %s must have the same dtype, got %s and %s"
            % (name_a, name_b, a.dtype, b.dtype)
        )
    if a.shape != b.shape:
        raise ValueError(
            "%s and %s must have the same shape (no broadcasting), got %s and %s"
            % (name_a, name_b, a.shape, b.shape)
        )


# ---- scalar-argument rules of BatchNorm and the diagnostics ---------------------------
# One definition for the CPU path (cyrelu.batchnorm, cyrelu.diagnostics) and the GPU
# backend (cyrelu.cuda), so both accept and refuse alike.


def activation_code(activation: object) -> int:
    """None or an activation's name from the table (cyrelu/_activation_table.py) as its
    kernel code, else ValueError."""
    from cyrelu import _activation_table as table  # the table checks with check_real

    return table.code(activation)


def fused_activation_code(activation: object) -> int:
    """The BatchNorm kernels' ``activation=``: :func:`activation_code`, and ValueError
    for an activation they are not built for (activation_table.h's
    CYR_BN_FORWARD_ACTIVATIONS: every one with at most two parameters, which is every
    one today); the public functions would compose such a one
    (cyrelu/_bn_activation.py) and pass the kernels only the others."""
    from cyrelu import _activation_table as table

    act = activation_code(activation)
    if act != table.NONE and activation not in table.BN_FORWARD:
        raise ValueError(
            "the BatchNorm kernels do not fuse %r (activation_table.h's "
            "CYR_BN_FORWARD_ACTIVATIONS); cyrelu.batch_norm composes it "
            "(cyrelu/_bn_activation.py)" % activation
        )
    return act


def channel_axis(shape: tuple[int, ...], axis: object) -> tuple[int, int]:
    """BatchNorm's (axis, C) for data of ``shape``: at least 2 dimensions, a valid
    channel axis (normalize_axis: a non-int axis is a TypeError, one out of range a
    ValueError)."""
    if len(shape) < 2:
        raise ValueError("x must have at least 2 dimensions (N, C, ...), got shape %s" % (shape,))
    ax = normalize_axis(axis, len(shape), "x")
    return ax, shape[ax]


def batch_norm_args(
    shape: tuple[int, ...],
    axis: object,
    activation: object,
    alpha: object,
    momentum: object,
    eps: object,
) -> tuple[int, int, int, float, float, float]:
    """batch_norm's scalar arguments checked: (axis, C, activation code, alpha,
    momentum, eps)."""
    ax, C = channel_axis(shape, axis)
    act = fused_activation_code(activation)
    return (ax, C, act, *batch_norm_reals(activation, alpha, momentum, eps))


def batch_norm_backward_args(
    shape: tuple[int, ...], axis: object, activation: object, alpha: object
) -> tuple[int, int, int, float]:
    """batch_norm_backward's scalar arguments checked: (axis, C, activation code, alpha)."""
    ax, C = channel_axis(shape, axis)
    act = fused_activation_code(activation)
    return ax, C, act, batch_norm_backward_alpha(activation, act, alpha)


# The checks of the real-valued arguments alone, for callers that have already checked
# the shape, axis and activation of an identical call (the GPU backend's per-call fast
# path): the same rules, the same errors.


def batch_norm_alpha(activation: object, alpha: object) -> float:
    """BatchNorm's ``alpha`` for a valid ``activation``: checked by the rule of the
    activation's parameter named alpha (a real; celu's: not 0), or, for None, its default
    (the table's: 0.2 for leaky_relu, 1.0 for elu and celu); a real, or 0.0 for None,
    where the activation has no parameter named alpha (the kernels' parameters then come
    from ``activation_params``: cyrelu/_bn_activation.py's kernel_params)."""
    from cyrelu import _activation_table as table

    entry = table.TABLE.get(activation) if isinstance(activation, str) else None
    if entry is not None and entry.params and entry.params[0][0] == "alpha":
        # the default, or alpha checked by the activation's own rule (celu: not 0)
        return table.scalar(entry.name, alpha)
    return 0.0 if alpha is None else check_real(alpha, "alpha")


def batch_norm_reals(
    activation: object, alpha: object, momentum: object, eps: object
) -> tuple[float, float, float]:
    """batch_norm's (alpha, momentum, eps) checked, for a valid ``activation``."""
    alpha_ = batch_norm_alpha(activation, alpha)
    momentum_ = check_real(momentum, "momentum")
    if not 0.0 <= momentum_ <= 1.0:
        raise ValueError("momentum must be in [0, 1], got %r" % momentum_)
    eps_ = check_real(eps, "eps")
    if not eps_ > 0.0:
        raise ValueError("eps must be > 0, got %r" % eps_)
    return alpha_, momentum_, eps_


def batch_norm_backward_alpha(activation: object, act: int, alpha: object) -> float:
    """batch_norm_backward's alpha checked, for ``activation`` (of code ``act``)."""
    alpha_ = batch_norm_alpha(activation, alpha)
    from cyrelu import _activation_table as table

    if act != table.NONE and not table.grad_from_output(str(activation), alpha_):
        if activation not in table.BN_BACKWARD:
            raise ValueError(
                "the fused %s backward is not available: its derivative cannot be read "
                "from the output; call batch_norm_backward(%s_backward(grad_output, "
                "pre-activation), ...) instead" % (activation, activation)
            )
        raise ValueError(
            "the fused %s backward needs alpha > 0 (the output's sign must be the "
            "input's), got alpha=%r" % (activation, alpha_)
        )
    return alpha_


PER_CHANNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_per_channel(a: NDArray[Any], name: str, C: int) -> None:
    """A per-channel array: float32 or float64, native byte order, shape (C,)."""
    if a.dtype not in PER_CHANNEL_DTYPES:
        raise TypeError("%s: unsupported dtype %s; expected float32 or float64" % (name, a.dtype))
    if not a.dtype.isnative:
        raise TypeError("%s: non-native byte order %s is not supported" % (name, a.dtype.str))
    if a.ndim != 1 or a.shape[0] != C:
        raise ValueError(
            "%s must be 1-D of length C=%d (the channel axis), got shape %s" % (name, C, a.shape)
        )


@overload
def per_channel(
    value: object, name: str, C: int, required: Literal[True]
) -> NDArray[np.floating[Any]]: ...


@overload
def per_channel(
    value: object, name: str, C: int, required: bool = ...
) -> NDArray[np.floating[Any]] | None: ...


def per_channel(
    value: object, name: str, C: int, required: bool = False
) -> NDArray[np.floating[Any]] | None:
    """A per-channel parameter (an ndarray or a list) as the kernels read it: a
    float32/float64 array of length C (any stride, aligned; read-only is fine, it is
    never written), or None when absent and not ``required``."""
    if value is None:
        if required:
            raise ValueError("%s is required" % name)
        return None
    a = as_ndarray(value, name, lists=True)
    check_per_channel(a, name, C)
    return aligned(a)


def running_stat(value: object, name: str, C: int, training: bool) -> NDArray[Any] | None:
    """A running statistic: None, or an ndarray checked as per-channel, writable when
    ``training`` updates it in place (the array itself, so that a memmap is updated;
    lists are refused)."""
    if value is None:
        return None
    value = as_ndarray(value, name, lists=False)
    check_per_channel(value, name, C)
    if training and not value.flags.writeable:
        raise ValueError("%s is read-only, but training=True updates it in place" % name)
    return value


def check_bounds(
    lo: float, hi: float, lo_name: str = "min_val", hi_name: str = "max_val"
) -> tuple[float, float]:
    """Two (checked, finite) bounds: ValueError when ``lo > hi`` (torch's rule and message
    for hardtanh's ``min_val`` and ``max_val``)."""
    if lo > hi:
        raise ValueError(
            "%s cannot be greater than %s, got %s=%r, %s=%r"
            % (lo_name, hi_name, lo_name, lo, hi_name, hi)
        )
    return lo, hi


def diagnostics_axis(axis: object, ndim: int, name: str) -> int:
    """The diagnostics' axis of array ``name``: the one axis rule (normalize_axis)."""
    return normalize_axis(axis, ndim, name)


def threshold_in(threshold: float, dtype: np.dtype[Any]) -> float:
    """The largest value of ``dtype``'s math type (float64 for float64, else float32)
    that is <= threshold, so that ``v <= result`` exactly when ``v <= threshold``."""
    if dtype == np.float64:
        return threshold
    with np.errstate(over="ignore"):
        t32 = np.float32(threshold)
    if float(t32) > threshold:
        t32 = np.nextafter(t32, np.float32(-np.inf))
    return float(t32)


def dead_units_args(shape: tuple[int, ...], axis: object, threshold: object) -> tuple[int, float]:
    """dead_units' arguments checked: (axis, threshold)."""
    t = check_real(threshold, "threshold", finite=False)
    if t != t:
        raise ValueError("threshold must not be NaN")
    ax = diagnostics_axis(axis, len(shape), "pre_activation")
    nchan = shape[ax]
    if nchan > 0 and 0 in shape:
        raise ValueError(
            "pre_activation has shape %s: its %d channel%s along axis %d hold no values"
            % (shape, nchan, "" if nchan == 1 else "s", ax)
        )
    return ax, t


def sparsity_args(shape: tuple[int, ...], axis: object) -> tuple[int | None, int]:
    """sparsity's arguments checked: (axis or None, values per channel; 0 when there are
    no channels along ``axis``)."""
    size = math.prod(shape)
    if axis is None:
        if size == 0:
            raise ValueError("sparsity of an empty array is undefined (x has shape %s)" % (shape,))
        return None, size
    ax = diagnostics_axis(axis, len(shape), "x")
    nchan = shape[ax]
    if nchan == 0:
        return ax, 0
    per_channel = size // nchan
    if per_channel == 0:
        raise ValueError("x has shape %s: its channels along axis %d hold no values" % (shape, ax))
    return ax, per_channel


def check_out(
    out: object, shape: tuple[int, ...], dtype: np.dtype[Any], name: str = "out"
) -> NDArray[Any]:
    """``out`` must be a writable ndarray with exactly ``shape`` and ``dtype``."""
    if not isinstance(out, np.ndarray):
        raise TypeError("%s must be a numpy.ndarray, got %s" % (name, type(out).__name__))
    if out.dtype != dtype:
        raise TypeError("%s has dtype %s, but the result is %s" % (name, out.dtype, dtype))
    if out.shape != shape:
        raise ValueError("%s has shape %s, but the result has shape %s" % (name, out.shape, shape))
    if not out.flags.writeable:
        raise ValueError("%s is read-only" % name)
    return out


def check_real(value: object, name: str, *, finite: bool = True) -> float:
    """A real Python/NumPy number (not bool) as a float."""
    if (
        type(value) is not float
        and type(value) is not int
        and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real))
    ):
        raise TypeError("%s must be a real number, got %r" % (name, value))
    try:
        value = float(value)
    except OverflowError:
        raise ValueError("%s is too large for a float, got %r" % (name, value)) from None
    if finite and not math.isfinite(value):
        raise ValueError("%s must be finite, got %r" % (name, value))
    return value


def aliases(a: NDArray[Any], b: NDArray[Any]) -> bool:
    """True when a and b are views of exactly the same elements (same pointer, same strides)."""
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
    )


def may_overlap_partly(out: NDArray[Any], inp: NDArray[Any]) -> bool:
    """True when ``out`` may share memory with ``inp`` without being exactly ``inp``."""
    return np.may_share_memory(out, inp) and not aliases(out, inp)


def normalize_axis(axis: object, ndim: int, name: str) -> int:
    """``axis`` of an array ``name`` with ``ndim`` dimensions, negative allowed, as an
    index in [0, ndim): TypeError for a non-int (a bool, a float, a string), ValueError
    when out of range."""
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError("axis must be an int, got %r" % (axis,))
    try:
        ax = operator.index(axis)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError("axis must be an int, got %r" % (axis,)) from None
    if not -ndim <= ax < ndim:
        raise ValueError(
            "axis %d is out of range for %s with %d dimension%s"
            % (ax, name, ndim, "" if ndim == 1 else "s")
        )
    return ax % ndim


MAX_THREADS = 2**31 - 1


def check_num_threads(value: object) -> int:
    """``num_threads``: a positive int (not bool) up to 2**31 - 1, else ValueError.

    (None, OpenMP's default, is the caller's business.)"""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError("num_threads must be None or a positive int, got %r" % (value,))
    try:
        n = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError("num_threads must be None or a positive int, got %r" % (value,)) from None
    if n < 1 or n > MAX_THREADS:
        raise ValueError(
            "num_threads must be None or a positive int <= %d, got %r" % (MAX_THREADS, value)
        )
    return n


def aligned(a: NDArray[Any]) -> NDArray[Any]:
    """``a`` itself when its data is aligned for its dtype, else an aligned copy
    (``np.ascontiguousarray`` alone keeps an unaligned, contiguous array as it is)."""
    return a if a.flags.aligned else np.array(a, copy=True, order="K")


def aligned_target(out: NDArray[Any]) -> NDArray[Any]:
    """Where a kernel may write ``out``'s result: ``out`` itself when aligned, else a new
    aligned array of its shape, dtype and layout (the caller copies it back into ``out``)."""
    return out if out.flags.aligned else np.empty_like(out, order="K")


# ---- prelu's weight and channel axis --------------------------------------------------


def prelu_weight(weight: object, x: NDArray[Any], axis: object) -> tuple[NDArray[Any], int]:
    """prelu's ``weight`` (an array-like) checked against the ndarray ``x``: (the weight as
    an ndarray, the channel axis; see :func:`prelu_axis`)."""
    w = as_float_array(weight, "weight")
    return w, prelu_axis(w, x, axis)


def prelu_axis(w: Any, x: Any, axis: object) -> int:
    """prelu's channel axis of ``x`` for the float array ``w`` (NumPy's or a GPU
    library's: only their dtype, ndim and shape are read), or -1 where x has a single
    channel.

    As ``torch.nn.functional.prelu``: the weight is 0-d or 1-D with x's dtype (TypeError
    naming both otherwise), of length 1 or C, the length of x's ``axis``; a 0-d or 1-D x
    has a single channel (its ``axis`` is not used, but must be an int).  A weight of
    another length, or of more dimensions, is a ValueError."""
    if w.dtype != x.dtype:
        raise TypeError(
            "weight has dtype %s, but x has dtype %s: they must be the same" % (w.dtype, x.dtype)
        )
    if w.ndim > 1:
        raise ValueError("weight must be 1-D (or 0-d), got shape %s" % (tuple(w.shape),))
    nw = math.prod(w.shape)
    if x.ndim < 2:
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
            raise TypeError("axis must be an int, got %r" % (axis,))
        ax, C = -1, 1
    else:
        ax = normalize_axis(axis, x.ndim, "x")
        C = x.shape[ax]
    if nw != 1 and nw != C:
        if x.ndim < 2:
            raise ValueError(
                "weight has %d values, but a %d-d x has a single channel: expected 1 value"
                % (nw, x.ndim)
            )
        raise ValueError(
            "weight has %d values, but x has %d channels along axis %d: expected 1 or %d"
            % (nw, C, ax, C)
        )
    return ax
