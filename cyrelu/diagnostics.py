"""ReLU diagnostics and an inference helper: the public functions.

==================  ==============================================================
dead_units          per channel: True where every value is <= threshold (a ReLU
                    unit that passes no gradient for this batch)
sparsity            fraction of exact zeros, overall or per channel
fold_batch_norm     the layer before an inference-mode BatchNorm, with the
                    BatchNorm folded into its weight and bias
==================  ==============================================================

``dead_units`` and ``sparsity`` make one parallel pass over the data with the
compiled counts of ``cyrelu._diagnostics``: integer counts, so the results are
the same for any thread count.  The channel axis may be any axis: the data is
seen as ``(outer, C, inner)``, a view where the strides allow it and a copy
otherwise; float16 data is counted in place, as float16.
"""

from __future__ import annotations

from typing import overload

import numpy as np
import numpy.typing as npt

from cyrelu import _diagnostics as _k
from cyrelu._backend import backend_for
from cyrelu._validation import (
    as_float_array,
    check_real,
    dead_units_args as _dead_units_args,
    diagnostics_axis as _normalise_axis,
    sparsity_args as _sparsity_args,
    threshold_in as _threshold_in,
)

__all__ = ["dead_units", "sparsity", "fold_batch_norm"]

_F64 = np.dtype(np.float64)


# ---- shared helpers ------------------------------------------------------------------


def _box(x: np.ndarray, axis: int | None) -> np.ndarray:
    """A float16/32/64, aligned, 3-D (outer, C, inner) view (or copy) of x."""
    if not x.flags.aligned:
        x = x.copy()
    if axis is None:
        return x.reshape(1, 1, x.size)  # a view when x is contiguous, else a copy
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    inner = int(np.prod(x.shape[axis + 1 :], dtype=np.int64))
    view = x.reshape(outer, x.shape[axis], inner)  # a view where strides allow, else a copy
    if inner == 1 and outer > 1 and abs(view.strides[0]) < abs(view.strides[1]):
        # channels far apart in memory, samples close (e.g. a transposed (N, C)):
        # count along the samples instead, (1, C, outer): same counts, linear reads
        view = view.transpose(2, 1, 0)
    return view


# ---- dead_units ----------------------------------------------------------------------


def dead_units(
    pre_activation: npt.ArrayLike,
    *,
    axis: int = 1,
    threshold: float = 0.0,
    num_threads: int | None = None,
) -> npt.NDArray[np.bool_]:
    """Which ReLU units are dead for this batch: one bool per channel along ``axis``.

    A channel is dead when every one of its values is ``<= threshold``: a ReLU
    passes no gradient there (``relu_backward`` is 0 at ``x <= 0``).  A NaN is
    not ``<= threshold``, so a channel holding a NaN is *not* dead, in line
    with ``relu_backward``, which passes the gradient where ``x`` is NaN.

    Parameters
    ----------
    pre_activation : array_like of float16, float32 or float64
        The input of the ReLU, e.g. ``(N, C)`` or ``(N, C, H, W)``; any layout.
    axis : int
        The channel axis (default 1; negative counts from the end).
    threshold : float
        A real number, +-inf allowed, NaN not.  The comparison is exact (for
        float32 data the threshold is not rounded up).
    num_threads : int, optional
        Threads to use; None means OpenMP's default.  The result does not
        depend on it.

    Returns
    -------
    ndarray of bool, shape ``(pre_activation.shape[axis],)``

    Raises TypeError for a non-float dtype or a non-int axis; ValueError for an
    out-of-range axis, a NaN threshold, or channels with no values at all.
    """
    be = backend_for(pre_activation)
    if be is not None:
        return be.dead_units(  # type: ignore[no-any-return]
            pre_activation, axis=axis, threshold=threshold, num_threads=num_threads
        )
    x = as_float_array(pre_activation, "pre_activation")
    ax, t = _dead_units_args(x.shape, axis, threshold)
    view = _box(x, ax)
    alive = _k.channel_counts(_k.OP_ALIVE, view, _threshold_in(t, view.dtype), num_threads)
    dead: npt.NDArray[np.bool_] = alive == 0
    return dead


# ---- sparsity ------------------------------------------------------------------------


@overload
def sparsity(x: npt.ArrayLike, *, axis: None = None, num_threads: int | None = None) -> float: ...
@overload
def sparsity(
    x: npt.ArrayLike, *, axis: int, num_threads: int | None = None
) -> npt.NDArray[np.float64]: ...


def sparsity(
    x: npt.ArrayLike,
    *,
    axis: int | None = None,
    num_threads: int | None = None,
) -> float | npt.NDArray[np.float64]:
    """Fraction of exact zeros in ``x``: a float, or one float64 per channel along ``axis``.

    ``-0.0`` is a zero; NaN is not.  After a ReLU this is the fraction of
    inactive units (ReLU maps every negative input to exactly 0).

    Parameters
    ----------
    x : array_like of float16, float32 or float64
        Any shape and layout.
    axis : int, optional
        None (default): one fraction over all of ``x``.  An int: the channel
        axis; the result has shape ``(x.shape[axis],)``.
    num_threads : int, optional
        Threads to use; None means OpenMP's default.  The result does not
        depend on it.

    Raises TypeError for a non-float dtype or a non-int axis; ValueError for an
    out-of-range axis or when there is nothing to count (an empty ``x``, or
    channels with no values).
    """
    be = backend_for(x)
    if be is not None:
        return be.sparsity(x, axis=axis, num_threads=num_threads)  # type: ignore[no-any-return]
    a = as_float_array(x, "x")
    ax, per_channel = _sparsity_args(a.shape, axis)
    if ax is None:
        zeros = _k.channel_counts(_k.OP_ZEROS, _box(a, None), 0.0, num_threads)
        return float(zeros[0]) / a.size
    if per_channel == 0:
        return np.zeros(0, dtype=np.float64)
    zeros = _k.channel_counts(_k.OP_ZEROS, _box(a, ax), 0.0, num_threads)
    return zeros / float(per_channel)


# ---- fold_batch_norm -----------------------------------------------------------------


def _channel_vector(value: npt.ArrayLike, name: str, nchan: int, ax: int) -> np.ndarray:
    a = as_float_array(value, name)
    if a.shape != (nchan,):
        raise ValueError(
            "%s has shape %s; expected (%d,), one value per output channel "
            "(weight.shape[%d])" % (name, a.shape, nchan, ax)
        )
    return a.astype(np.float64)


def fold_batch_norm(
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    running_mean: npt.ArrayLike,
    running_var: npt.ArrayLike,
    bn_weight: npt.ArrayLike | None = None,
    bn_bias: npt.ArrayLike | None = None,
    eps: float = 1e-5,
    *,
    axis: int = 0,
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
    """Fold an inference-mode BatchNorm into the layer before it.

    For a layer ``z = W x + b`` followed by ``BN(z) = gamma * (z - mean) /
    sqrt(var + eps) + beta`` (running statistics, as at inference), with, per
    output channel c::

        scale[c]  = gamma[c] / sqrt(running_var[c] + eps)
        W'[c]     = W[c] * scale[c]                 (every weight of channel c)
        b'[c]     = (b[c] - running_mean[c]) * scale[c] + beta[c]

    the folded layer ``W' x + b'`` computes ``BN(W x + b)``.

    Parameters
    ----------
    weight : array_like of float16/32/64, ndim >= 1
        The layer's weight.  ``axis`` is its output-channel axis: 0 for
        PyTorch's Linear ``(out, in)`` and Conv ``(out, in, kh, kw)``, 1 for a
        NumPy ``x @ W`` weight ``(in, out)``.
    bias : array_like, shape (C,), or None
        The layer's bias (None: no bias, i.e. zeros).
    running_mean, running_var : array_like, shape (C,)
        The BatchNorm's running statistics; ``running_var`` must be >= 0.
    bn_weight, bn_bias : array_like, shape (C,), optional
        gamma and beta (None: 1 and 0, a BatchNorm without affine parameters).
    eps : float
        The BatchNorm's eps (>= 0; ``running_var + eps`` must be > 0).

    Returns
    -------
    (folded_weight, folded_bias)
        New arrays in ``weight``'s dtype (computed in float64 and rounded
        once): folded_weight has weight's shape, folded_bias has shape (C,).

    Raises TypeError for non-float arrays; ValueError for mismatched shapes,
    a negative variance, a negative or non-finite eps, or a zero denominator.
    """
    w = as_float_array(weight, "weight")
    if w.ndim < 1:
        raise ValueError("weight must have at least 1 dimension, got a scalar")
    ax = _normalise_axis(axis, w.ndim, "weight")
    nchan = w.shape[ax]
    if running_mean is None or running_var is None:
        raise TypeError("running_mean and running_var are required (got None)")
    mean = _channel_vector(running_mean, "running_mean", nchan, ax)
    var = _channel_vector(running_var, "running_var", nchan, ax)
    gamma = (
        np.ones(nchan) if bn_weight is None else _channel_vector(bn_weight, "bn_weight", nchan, ax)
    )
    beta = np.zeros(nchan) if bn_bias is None else _channel_vector(bn_bias, "bn_bias", nchan, ax)
    b = np.zeros(nchan) if bias is None else _channel_vector(bias, "bias", nchan, ax)
    eps = check_real(eps, "eps")
    if eps < 0:
        raise ValueError("eps must be >= 0, got %r" % eps)
    if np.any(var < 0):
        raise ValueError(
            "running_var must be >= 0; channel(s) %s are negative"
            % np.flatnonzero(var < 0)[:10].tolist()
        )
    denom = var + eps
    if np.any(denom == 0):
        raise ValueError(
            "running_var + eps is 0 for channel(s) %s; use eps > 0"
            % np.flatnonzero(denom == 0)[:10].tolist()
        )
    scale = gamma / np.sqrt(denom)
    shape = [1] * w.ndim
    shape[ax] = nchan
    folded_w = (w.astype(np.float64) * scale.reshape(shape)).astype(w.dtype)
    folded_b = ((b - mean) * scale + beta).astype(w.dtype)
    return folded_w, folded_b
