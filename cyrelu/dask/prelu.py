""":func:`cyrelu.prelu` and :func:`cyrelu.prelu_backward` for dask arrays.

The forward and grad_input are lazy dask arrays with the input's chunks: each chunk is
the public function applied to the chunk with its channels' slice of the weight (the
NumPy kernels for NumPy chunks, the CuPy backend for CuPy chunks), so the results are
bitwise those of the in-memory path.  grad_weight is a reduction on the cluster,
returned as a NumPy array: each chunk's per-channel sums in float64 (the compiled
kernel, ``cyrelu._prelu.weight_sums``), then a tree sum of those in float64, rounded
once to the data's dtype.  Like BatchNorm's, the backward runs on NumPy chunks.

Checked at call time, before a graph is built: the data's dtype and shape, the weight
(an in-memory array of the chunks' library: NumPy or a list, or CuPy) and ``axis`` by
the in-memory rules (``_validation.prelu_axis``), ``num_threads``; ``out`` must be None.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

import cyrelu
from cyrelu import _prelu as _k
from cyrelu._layout import prelu_box
from cyrelu._validation import aligned, as_float_array, prelu_axis
from cyrelu.dask import _graph as G

__all__ = ["prelu", "prelu_backward"]


def _weight(weight: object, x: Any, axis: object) -> tuple[Any, int]:
    """The weight as an in-memory array of the library of x's chunks, and the channel
    axis (-1: one channel, or one weight for every element)."""
    if G.is_dask(weight):
        raise TypeError(
            "weight: pass an in-memory array (NumPy, or CuPy for CuPy chunks), not a "
            "dask array; it is small: weight.compute() gives one"
        )
    if G.library(weight) != G.library(x):
        raise TypeError(
            "weight is a %s array but x is a dask array of %s chunks; pass arrays of one "
            "library" % (G.library(weight), G.library(x))
        )
    w: Any = as_float_array(weight, "weight") if G.library(x) == "numpy" else weight
    ax = prelu_axis(w, x, axis)
    return w, (ax if w.size > 1 else -1)


def _channel_weight(w: Any, x: Any, ax: int) -> Any:
    """The weight as a dask array of x's ndim, its channels chunked as x's channel axis
    and length 1 elsewhere (map_blocks broadcasts it to every chunk of those channels)."""
    shape = [1] * x.ndim
    shape[ax] = w.size
    chunks = tuple((1,) if d != ax else x.chunks[ax] for d in range(x.ndim))
    return G.dask_array().from_array(w.reshape(shape), chunks=chunks, asarray=False)


def _forward_block(block: Any, wblock: Any, *, ax: int, num_threads: int | None) -> Any:
    return cyrelu.prelu(block, wblock.reshape(-1), axis=max(ax, 0), num_threads=num_threads)


def _grad_input_block(
    gblock: Any, block: Any, wblock: Any, *, ax: int, num_threads: int | None
) -> Any:
    gi, _ = cyrelu.prelu_backward(
        gblock, block, wblock.reshape(-1), axis=max(ax, 0), num_threads=num_threads
    )
    return gi


def _lazy(fn: Any, arrays: list[Any], w: Any, x: Any, ax: int, num_threads: int | None) -> Any:
    """``fn`` over the chunks of ``arrays`` (x's chunks) and their weight."""
    da = G.dask_array()
    if ax < 0:  # one weight: the same for every chunk
        wd = da.from_array(w.reshape((1,) * x.ndim), chunks=(1,) * x.ndim, asarray=False)
    else:
        wd = _channel_weight(w, x, ax)
    return da.map_blocks(
        fn, *arrays, wd, ax=ax, num_threads=num_threads, dtype=x.dtype, meta=x._meta
    )


def prelu(
    x: Any,
    weight: Any,
    /,
    *,
    axis: int = 1,
    out: None = None,
    num_threads: int | None = None,
) -> Any:
    """:func:`cyrelu.prelu` for dask arrays (lazy, x's chunks)."""
    xd = G.as_dask(x, "x")
    G.check_no_out(out)
    G.check_threads(num_threads)
    w, ax = _weight(weight, xd, axis)
    return _lazy(_forward_block, [xd], w, xd, ax, num_threads)


def _sums_block(
    gblock: NDArray[Any], block: NDArray[Any], *, ax: int, num_threads: int | None
) -> NDArray[np.float64]:
    """A chunk's per-channel sums of x > 0 ? 0 : x * g in float64, keeping its dims (all
    1 but the channel axis; all 1 for one weight)."""
    nd = block.ndim
    shape = [1] * nd
    if ax >= 0:
        shape[ax] = block.shape[ax]
    if block.size == 0:
        return np.zeros(shape)
    math_type = np.float32 if block.dtype == np.float16 else block.dtype
    g = aligned(np.ascontiguousarray(gblock, dtype=math_type))
    xb = aligned(np.ascontiguousarray(block, dtype=math_type))
    outer, C, inner = prelu_box(xb.shape, True, ax, xb.shape[ax] if ax >= 0 else 1)
    sums: NDArray[np.float64] = _k.weight_sums(g, xb, outer, C, inner, num_threads)
    return sums.reshape(shape)


def prelu_backward(
    grad_output: Any,
    x: Any,
    weight: Any,
    /,
    *,
    axis: int = 1,
    out: None = None,
    num_threads: int | None = None,
) -> tuple[Any, NDArray[Any]]:
    """:func:`cyrelu.prelu_backward` for dask arrays of NumPy chunks: (grad_input, lazy
    with x's chunks; grad_weight, a NumPy array computed on the cluster)."""
    G.check_no_out(out)
    G.check_threads(num_threads)
    g, xd = G.lazy_pair(grad_output, "grad_output", x, "x")
    G.on_host(xd, "x", "prelu_backward")
    w, ax = _weight(weight, xd, axis)
    grad_input = _lazy(_grad_input_block, [g, xd], w, xd, ax, num_threads)
    da = G.dask_array()
    chunks = tuple((1,) * len(c) if d != ax else c for d, c in enumerate(xd.chunks))
    parts = da.map_blocks(
        _sums_block,
        g,
        xd,
        ax=ax,
        num_threads=num_threads,
        chunks=chunks,
        dtype=np.float64,
        meta=np.empty((0,) * xd.ndim, np.float64),
    )
    sums = parts.sum(axis=tuple(d for d in range(xd.ndim) if d != ax)).compute()
    grad_weight = np.asarray(sums, np.float64).astype(xd.dtype).reshape(np.shape(w))
    return grad_input, grad_weight
