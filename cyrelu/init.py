"""Weight initialisers with ``torch.nn.init``'s formulas and shape convention.

Shapes follow PyTorch: ``(fan_out, fan_in, *receptive_field)``.  A Linear
layer's weight is ``(out_features, in_features)`` and a convolution's is
``(out_channels, in_channels, kh, kw)``; the fans are::

    fan_in  = shape[1] * prod(shape[2:])
    fan_out = shape[0] * prod(shape[2:])

For the ``x @ W`` layout common in NumPy code (``W`` of shape ``(in, out)``),
draw the PyTorch-shaped array and transpose it, so the fans are right::

    W = init.kaiming_normal((n_out, n_in), nonlinearity="relu", rng=0).T   # (n_in, n_out)

(``.T`` is a view; wrap it in ``np.ascontiguousarray`` if you want C order.)
Passing ``(n_in, n_out)`` directly would swap fan_in and fan_out.

The distributions, with ``gain = calculate_gain(...)``:

==================  =============================================================
xavier_uniform      U(-b, b),  b = gain * sqrt(6 / (fan_in + fan_out))
xavier_normal       N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out))
kaiming_uniform     U(-b, b),  b = gain * sqrt(3 / fan),  fan = fan_in or fan_out
kaiming_normal      N(0, s^2), s = gain / sqrt(fan)
==================  =============================================================

Every function returns a new array of the requested float dtype (float16,
float32 or float64; samples are drawn in float64 and rounded once).  ``rng``
is None (fresh OS entropy), an int seed (reproducible) or a
``numpy.random.Generator`` (used, and advanced, as is).
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from cyrelu._validation import check_float_dtype, check_real

__all__ = [
    "calculate_gain",
    "calculate_fan_in_and_fan_out",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
]

if TYPE_CHECKING:  # numpy.random costs ~15 ms to import: only when an initialiser runs
    RNGLike = None | int | np.random.Generator
Shape = int | Sequence[int]
Mode = Literal["fan_in", "fan_out"]

_LINEAR_FNS = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
_NONLINEARITIES = (*_LINEAR_FNS, "sigmoid", "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (``torch.nn.init.calculate_gain``).

    ==========================  =====================================
    nonlinearity                gain
    ==========================  =====================================
    'linear', 'conv*d', ...     1
    'sigmoid'                   1
    'tanh'                      5/3
    'relu'                      sqrt(2)
    'leaky_relu'                sqrt(2 / (1 + slope**2)); ``param`` is the
                                slope, default 0.01
    'selu'                      3/4
    ==========================  =====================================

    ``param`` is used only by 'leaky_relu'.  An unknown nonlinearity, or a
    leaky_relu slope that is not a finite real number (a bool, a string, NaN,
    inf), raises ValueError.
    """
    if not isinstance(nonlinearity, str) or nonlinearity not in _NONLINEARITIES:
        raise ValueError(
            "unsupported nonlinearity %r; expected one of %s"
            % (nonlinearity, ", ".join(repr(n) for n in _NONLINEARITIES))
        )
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    # leaky_relu
    if param is None:
        slope = 0.01
    else:
        # as PyTorch's calculate_gain: a slope that is not a finite real number (a bool,
        # a string, NaN, inf, too large for a float) is a ValueError
        try:
            slope = check_real(param, "negative_slope")
        except (TypeError, ValueError):
            raise ValueError("negative_slope %r is not a valid number" % (param,)) from None
    return math.sqrt(2.0 / (1 + slope**2))


def _normalise_shape(shape: Shape) -> tuple[int, ...]:
    if isinstance(shape, (bool, np.bool_)):
        raise TypeError("shape must be a sequence of ints, got %r" % (shape,))
    dims: tuple[object, ...]
    if isinstance(shape, (numbers.Integral, np.integer)):
        dims = (int(shape),)
    else:
        try:
            dims = tuple(shape)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError("shape must be a sequence of ints, got %r" % (shape,)) from None
    out: list[int] = []
    for d in dims:
        if isinstance(d, (bool, np.bool_)):
            raise TypeError("shape must contain ints, got %r" % (shape,))
        try:
            out.append(operator.index(d))  # type: ignore[arg-type]
        except TypeError:
            raise TypeError("shape must contain ints, got %r" % (shape,)) from None
    if len(out) < 2:
        raise ValueError(
            "fan in and fan out cannot be computed for a shape with fewer than 2 "
            "dimensions, got %r; weights are (fan_out, fan_in, *receptive_field)" % (tuple(out),)
        )
    if any(d <= 0 for d in out):
        raise ValueError("every dimension of shape must be positive, got %r" % (tuple(out),))
    return tuple(out)


def calculate_fan_in_and_fan_out(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of this shape, PyTorch's convention.

    ``fan_in = shape[1] * prod(shape[2:])``, ``fan_out = shape[0] * prod(shape[2:])``.
    ValueError for fewer than 2 dimensions or a non-positive dimension.
    """
    dims = _normalise_shape(shape)
    receptive = 1
    for d in dims[2:]:
        receptive *= d
    return dims[1] * receptive, dims[0] * receptive


def _correct_fan(dims: tuple[int, ...], mode: str) -> int:
    if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):
        raise ValueError("mode %r is not supported; use 'fan_in' or 'fan_out'" % (mode,))
    fan_in, fan_out = calculate_fan_in_and_fan_out(dims)
    return fan_in if mode.lower() == "fan_in" else fan_out


def _generator(rng: RNGLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, (numbers.Integral, np.integer)):
        raise TypeError(
            "rng must be None, an int seed or a numpy.random.Generator, got %s"
            % type(rng).__name__
        )
    if rng < 0:
        raise ValueError("rng seed must be non-negative, got %d" % rng)
    return np.random.default_rng(int(rng))


def _float_dtype(dtype: npt.DTypeLike) -> np.dtype[np.floating]:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError("dtype %r is not understood; expected a float dtype" % (dtype,)) from None
    check_float_dtype(dt, "dtype")
    return dt  # type: ignore[return-value]


def _uniform(
    dims: tuple[int, ...], bound: float, rng: RNGLike, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating]:
    dt = _float_dtype(dtype)
    gen = _generator(rng)
    return gen.uniform(-bound, bound, size=dims).astype(dt, copy=False)


def _normal(
    dims: tuple[int, ...], std: float, rng: RNGLike, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating]:
    dt = _float_dtype(dtype)
    gen = _generator(rng)
    return gen.normal(0.0, std, size=dims).astype(dt, copy=False)


def _gain(gain: float) -> float:
    return check_real(gain, "gain")


def xavier_uniform(
    shape: Shape,
    gain: float = 1.0,
    *,
    rng: RNGLike = None,
    dtype: npt.DTypeLike = np.float32,
) -> npt.NDArray[np.floating]:
    """Glorot/Xavier uniform: ``U(-b, b)`` with ``b = gain * sqrt(6 / (fan_in + fan_out))``.

    ``shape`` is PyTorch's ``(fan_out, fan_in, *receptive_field)``; for an
    ``x @ W`` weight use ``xavier_uniform((n_out, n_in)).T``.
    """
    dims = _normalise_shape(shape)
    fan_in, fan_out = calculate_fan_in_and_fan_out(dims)
    std = _gain(gain) * math.sqrt(2.0 / float(fan_in + fan_out))
    return _uniform(dims, math.sqrt(3.0) * std, rng, dtype)


def xavier_normal(
    shape: Shape,
    gain: float = 1.0,
    *,
    rng: RNGLike = None,
    dtype: npt.DTypeLike = np.float32,
) -> npt.NDArray[np.floating]:
    """Glorot/Xavier normal: ``N(0, s^2)`` with ``s = gain * sqrt(2 / (fan_in + fan_out))``.

    ``shape`` is PyTorch's ``(fan_out, fan_in, *receptive_field)``; for an
    ``x @ W`` weight use ``xavier_normal((n_out, n_in)).T``.
    """
    dims = _normalise_shape(shape)
    fan_in, fan_out = calculate_fan_in_and_fan_out(dims)
    std = _gain(gain) * math.sqrt(2.0 / float(fan_in + fan_out))
    return _normal(dims, std, rng, dtype)


def kaiming_uniform(
    shape: Shape,
    a: float = 0.0,
    mode: Mode = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: RNGLike = None,
    dtype: npt.DTypeLike = np.float32,
) -> npt.NDArray[np.floating]:
    """He/Kaiming uniform: ``U(-b, b)`` with ``b = gain * sqrt(3 / fan)``.

    ``gain = calculate_gain(nonlinearity, a)`` (``a`` is the negative slope of
    the leaky ReLU that follows, used only with 'leaky_relu'); ``fan`` is
    fan_in (keeps the forward variance) or fan_out (keeps the backward one).
    ``shape`` is PyTorch's ``(fan_out, fan_in, *receptive_field)``; for an
    ``x @ W`` weight use ``kaiming_uniform((n_out, n_in), ...).T``.
    """
    dims = _normalise_shape(shape)
    fan = _correct_fan(dims, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _uniform(dims, math.sqrt(3.0) * std, rng, dtype)


def kaiming_normal(
    shape: Shape,
    a: float = 0.0,
    mode: Mode = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: RNGLike = None,
    dtype: npt.DTypeLike = np.float32,
) -> npt.NDArray[np.floating]:
    """He/Kaiming normal: ``N(0, s^2)`` with ``s = gain / sqrt(fan)``.

    ``gain``, ``a``, ``mode`` and ``shape`` are as for :func:`kaiming_uniform`.
    """
    dims = _normalise_shape(shape)
    fan = _correct_fan(dims, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _normal(dims, std, rng, dtype)
