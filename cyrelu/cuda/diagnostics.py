""":mod:`cyrelu.diagnostics` for CuPy arrays: dead_units and sparsity.

Counts are exact (float64 sums of 0/1), so they are read from x where it lies (any
axis permutation of a C-contiguous array) with the BatchNorm reduction kernels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cyrelu._validation import dead_units_args, sparsity_args, threshold_in
from cyrelu.cuda import _launch as L, _loader
from cyrelu.cuda._launch import cupy
from cyrelu.cuda.batchnorm import Geometry, in_memory_order, reduce, reduce_plan

__all__ = ["dead_units", "sparsity"]

Array = Any  # a cupy.ndarray (CuPy ships no type information)


def _channel_counts(x: Array, ax: int | None, mode: int, thr: float = 0.0) -> Array:
    """Per channel along ``ax`` (or over everything when ax is None): float64 counts."""
    dev = x.device.id
    if ax is None:  # one channel holding every element, in any memory order
        order = L.memory_order(x)
        xk = x if order is not None else cupy.ascontiguousarray(x)
        geo = Geometry(1, 1, x.size)
    else:
        (xk,), _, geo = in_memory_order([x], ax)
    counts = cupy.zeros(geo.C, dtype=np.float64)
    if geo.C == 0 or x.size == 0:
        return counts
    plan = reduce_plan(x.dtype, mode, 0, geo, L.aligned(xk), dev)
    part = L.workspace(plan.part_bytes)  # the statistics' pointers are not used here
    reduce(
        plan,
        dev,
        xk,
        None,
        None,
        part,
        0.0,
        thr,
        part,
        part,
        part,
        1.0,
        0.0,
        0.0,
        1,
        2,
        (counts, None, None, None),
    )
    return counts


def dead_units(
    pre_activation: Array, *, axis: int = 1, threshold: float = 0.0, num_threads: int | None = None
) -> Array:
    """:func:`cyrelu.dead_units` for CuPy arrays: a boolean CuPy array with one entry per
    channel along ``axis``, True where every value is ``<= threshold`` (exactly; a NaN is
    not <= threshold, so its channel is alive).  ``num_threads`` is validated and
    otherwise ignored."""
    L.check_threads(num_threads)
    x = L.as_array(pre_activation, "pre_activation")
    ax, t = dead_units_args(x.shape, axis, threshold)
    with L.CurrentDevice(x.device.id):
        alive = _channel_counts(x, ax, _loader.RED_ALIVE, threshold_in(t, L.ACC[x.dtype]))
        return alive == 0


def sparsity(
    x: Array, *, axis: int | None = None, num_threads: int | None = None
) -> float | Array:
    """:func:`cyrelu.sparsity` for CuPy arrays: the fraction of exact zeros (-0.0 is one,
    NaN is not), a Python float when ``axis`` is None, else a float64 CuPy array with one
    entry per channel.  ``num_threads`` is validated and otherwise ignored."""
    L.check_threads(num_threads)
    a = L.as_array(x, "x")
    ax, per_channel = sparsity_args(a.shape, axis)
    with L.CurrentDevice(a.device.id):
        if ax is None:
            zeros = _channel_counts(a, None, _loader.RED_ZEROS)
            return float(zeros[0].get()) / a.size
        if per_channel == 0:
            return cupy.zeros(0, dtype=np.float64)
        zeros = _channel_counts(a, ax, _loader.RED_ZEROS)
        return zeros / float(per_channel)
