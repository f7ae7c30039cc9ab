""":mod:`cyrelu.diagnostics` for dask arrays: dead_units and sparsity, reduced on the cluster.

Each chunk runs the public function (the NumPy kernels for NumPy chunks, the CuPy
backend for CuPy chunks); a tree reduction combines the per-chunk results exactly
(dead: all chunks dead; zeros: integer counts), and only those per-channel results
travel.  The results are what the in-memory functions return: a NumPy bool array, a
float, or a NumPy float64 array.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

import cyrelu
from cyrelu._validation import dead_units_args, sparsity_args
from cyrelu.dask import _graph as G

__all__ = ["dead_units", "sparsity"]


def _host(a: Any) -> NDArray[Any]:
    """A chunk's result as a NumPy array (CuPy results are copied to the host)."""
    return np.asarray(a.get() if hasattr(a, "get") else a)


def _keepdims(values: NDArray[Any], ndim: int, ax: int | None) -> NDArray[Any]:
    shape = [1] * ndim
    if ax is not None:
        shape[ax] = values.size
    return values.reshape(shape)


def _dead_chunk(
    block: Any,
    axis: tuple[int, ...],
    keepdims: bool,
    *,
    ax: int,
    threshold: float,
    num_threads: int | None,
) -> NDArray[np.bool_]:
    if block.size == 0:  # no values: dead, as far as this chunk can tell
        return _keepdims(np.ones(block.shape[ax], dtype=np.bool_), block.ndim, ax)
    dead = cyrelu.dead_units(block, axis=ax, threshold=threshold, num_threads=num_threads)
    return _keepdims(_host(dead), block.ndim, ax)


def _all(parts: NDArray[np.bool_], axis: tuple[int, ...], keepdims: bool) -> NDArray[np.bool_]:
    result: NDArray[np.bool_] = np.all(parts, axis=axis, keepdims=keepdims)
    return result


def dead_units(
    pre_activation: Any, *, axis: int = 1, threshold: float = 0.0, num_threads: int | None = None
) -> NDArray[np.bool_]:
    """:func:`cyrelu.dead_units` for a dask array (a NumPy bool array, computed)."""
    x = G.as_dask(pre_activation, "pre_activation")
    ax, t = dead_units_args(x.shape, axis, threshold)
    G.check_threads(num_threads)
    da = G.dask_array()
    dead = da.reduction(
        x,
        partial(_dead_chunk, ax=ax, threshold=t, num_threads=num_threads),
        _all,
        axis=tuple(i for i in range(x.ndim) if i != ax),
        keepdims=False,
        dtype=np.bool_,
        meta=np.empty((0,), dtype=np.bool_),
        name="cyrelu-dead-units",
    )
    result: NDArray[np.bool_] = np.asarray(dead.compute(), dtype=np.bool_)
    return result


def _zeros_chunk(
    block: Any, axis: tuple[int, ...], keepdims: bool, *, ax: int | None, num_threads: int | None
) -> NDArray[np.int64]:
    """The chunk's count of zeros (per channel along ``ax``), from the public sparsity's
    fraction: exact, since the fraction is within an ulp of count / size."""
    if block.size == 0:
        counts = np.zeros(1 if ax is None else block.shape[ax], dtype=np.int64)
    else:
        per = block.size if ax is None else block.size // block.shape[ax]
        fraction = _host(cyrelu.sparsity(block, axis=ax, num_threads=num_threads))
        counts = np.rint(fraction.astype(np.float64) * per).astype(np.int64)
    return _keepdims(counts, block.ndim, ax)


def _sum(parts: NDArray[np.int64], axis: tuple[int, ...], keepdims: bool) -> NDArray[np.int64]:
    result: NDArray[np.int64] = np.sum(parts, axis=axis, keepdims=keepdims, dtype=np.int64)
    return result


def sparsity(
    x: Any, *, axis: int | None = None, num_threads: int | None = None
) -> float | NDArray[np.float64]:
    """:func:`cyrelu.sparsity` for a dask array (a float or a NumPy float64 array,
    computed)."""
    xd = G.as_dask(x, "x")
    ax, per_channel = sparsity_args(xd.shape, axis)
    G.check_threads(num_threads)
    if ax is not None and per_channel == 0:
        return np.zeros(0, dtype=np.float64)
    da = G.dask_array()
    reduced = tuple(range(xd.ndim)) if ax is None else tuple(i for i in range(xd.ndim) if i != ax)
    zeros = da.reduction(
        xd,
        partial(_zeros_chunk, ax=ax, num_threads=num_threads),
        _sum,
        axis=reduced,
        keepdims=False,
        dtype=np.int64,
        meta=np.empty((0,) * (xd.ndim - len(reduced)), dtype=np.int64),
        name="cyrelu-sparsity",
    ).compute()
    if ax is None:
        return float(zeros) / float(xd.size)
    result: NDArray[np.float64] = np.asarray(zeros, dtype=np.int64) / float(per_channel)
    return result
