""":mod:`cyrelu.batchnorm` for dask arrays: batch_norm and batch_norm_backward.

Training (``batch_norm(..., training=True)``): one pass over the data on the cluster
computes each channel's statistics.  Every chunk gives, per channel it holds, its
(count, mean, M2) in float64 (M2: the sum of squared deviations from the chunk's mean),
from the compiled kernel ``cyrelu._batchnorm.channel_moments``; a tree reduction merges
them with Chan's formula (never ``E[x**2] - E[x]**2``), and only these per-channel
numbers travel between workers and to the client.  The call then updates the running
statistics (NumPy arrays) in place with the in-memory path's rule and returns ``y`` as
a lazy dask array, each of whose chunks is the public ``batch_norm`` in evaluation mode
with the batch's mean and biased variance: the in-memory formula, chunk by chunk.
Evaluation is lazy throughout.

Backward: one pass gives each channel's sums ``(sum(g), sum(g * (x - mean)))``
(``partial_sums`` per chunk, summed in a tree), from which ``grad_weight`` and
``grad_bias`` come back as NumPy arrays; ``grad_input`` is lazy, each chunk computed
from the whole batch's sums (``partial_dx``).  These compiled pieces are
``backward``'s own steps (cyrelu/_batchnorm.pyx).

The chunks may split any axis, the channel axis included.  They must be NumPy arrays
(the kernels are the CPU ones); the per-channel arguments are NumPy arrays (or lists)
on the client.  Everything is checked when the function is called.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

import cyrelu
from cyrelu import _activation_table as _table, _batchnorm as _k, _bn_activation as _act
from cyrelu._validation import (
    aligned,
    batch_norm_args,
    check_same,
    per_channel,
    running_stat,
)
from cyrelu.dask import _graph as G

__all__ = ["batch_norm", "batch_norm_backward"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
# the per-chunk and merged statistics of one channel
_MOMENTS = np.dtype([("n", _F64), ("mean", _F64), ("m2", _F64)])

Float64 = NDArray[np.float64]


def _float64(values: NDArray[Any] | None, C: int, default: float) -> Float64:
    """A checked per-channel argument as a contiguous float64 array (``default``
    everywhere when absent): the form the graph splits along the channel axis."""
    if values is None:
        return np.full(C, default, dtype=np.float64)
    return np.ascontiguousarray(values, dtype=np.float64)


def stats_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """save_mean's and save_invstd's dtype for data of ``dtype``: float32, or float64
    for float64 data."""
    return _F64 if dtype == _F64 else _F32


# ---- the statistics pass --------------------------------------------------------------


def _moments_chunk(
    block: NDArray[Any],
    axis: tuple[int, ...],
    keepdims: bool,
    *,
    ax: int,
    num_threads: int | None,
    computing_meta: bool = False,
) -> Any:
    """(count, mean, M2) of each channel of one chunk, shaped as the chunk reduced over
    ``axis`` with kept dimensions."""
    if computing_meta:
        return block
    shape = [1] * block.ndim
    shape[ax] = block.shape[ax]
    x3 = G.box(block, ax)
    moments = _k.channel_moments(x3, x3.shape[0], x3.shape[1], x3.shape[2], num_threads)
    return {
        "n": moments[0].reshape(shape),
        "mean": moments[1].reshape(shape),
        "m2": moments[2].reshape(shape),
    }


def _merge(parts: dict[str, NDArray[np.float64]], ax: int) -> tuple[Float64, Float64, Float64]:
    """Chan's merge of the moments of several chunks (``parts``: the chunks' moments
    stacked along the reduced axes), channel by channel, in order."""
    n, mean, m2 = (np.moveaxis(parts[k], ax, -1) for k in ("n", "mean", "m2"))
    C = n.shape[-1]
    n, mean, m2 = (a.reshape(-1, C) for a in (n, mean, m2))
    na, mean_a, m2_a = n[0].copy(), mean[0].copy(), m2[0].copy()
    for nb, mean_b, m2_b in zip(n[1:], mean[1:], m2[1:], strict=True):
        total = na + nb
        with np.errstate(invalid="ignore", divide="ignore"):
            fb = np.where(total > 0, nb / total, 0.0)
        d = mean_b - mean_a
        mean_a += d * fb
        m2_a += m2_b + d * d * (na * fb)
        na = total
    return na, mean_a, m2_a


def _moments_combine(
    parts: dict[str, NDArray[np.float64]], axis: tuple[int, ...], keepdims: bool, *, ax: int
) -> dict[str, Float64]:
    shape = [1] * parts["n"].ndim
    shape[ax] = parts["n"].shape[ax]
    merged = _merge(parts, ax)
    return {k: v.reshape(shape) for k, v in zip(("n", "mean", "m2"), merged, strict=True)}


def _moments_aggregate(
    parts: dict[str, NDArray[np.float64]], axis: tuple[int, ...], keepdims: bool, *, ax: int
) -> NDArray[np.void]:
    n, mean, m2 = _merge(parts, ax)
    out = np.empty(n.shape, dtype=_MOMENTS)
    out["n"], out["mean"], out["m2"] = n, mean, m2
    return out


def channel_moments(x: Any, ax: int, num_threads: int | None = None) -> Any:
    """A lazy (C,) array of each channel's (n, mean, m2) over the dask array ``x`` (NumPy
    chunks; channel axis ``ax``): one read of every chunk, merged in a tree."""
    da = G.dask_array()
    return da.reduction(
        x,
        partial(_moments_chunk, ax=ax, num_threads=num_threads),
        partial(_moments_aggregate, ax=ax),
        combine=partial(_moments_combine, ax=ax),
        axis=tuple(i for i in range(x.ndim) if i != ax),
        keepdims=False,
        dtype=_MOMENTS,
        concatenate=True,
        meta=np.empty((0,), dtype=_MOMENTS),
        name="cyrelu-moments",
    )


# ---- forward ---------------------------------------------------------------------------


def _normalise_block(
    block: NDArray[Any],
    mean: NDArray[Any],
    var: NDArray[Any],
    w: Float64,
    b: Float64,
    *,
    eps: float,
    axis: int,
    activation: str | None,
    alpha: float | None,
    activation_params: Any,
    num_threads: int | None,
) -> Any:
    """One chunk: the public evaluation-mode batch_norm with these statistics."""
    return cyrelu.batch_norm(
        block,
        mean,
        var,
        w,
        b,
        False,
        0.0,
        eps,
        axis=axis,
        activation=activation,
        alpha=alpha,
        activation_params=activation_params,
        num_threads=num_threads,
    )


def _normalise(
    x: Any,
    ax: int,
    mean: NDArray[Any],
    var: NDArray[Any],
    w: Float64,
    b: Float64,
    eps: float,
    activation: str | None,
    alpha: float | None,
    activation_params: Any,
    num_threads: int | None,
) -> Any:
    da = G.dask_array()
    ind = tuple(range(x.ndim))
    per_channel_args: list[Any] = []
    for values in (mean, var, w, b):
        per_channel_args += [G.per_channel_chunks(values, x, ax), (ax,)]
    return da.blockwise(
        _normalise_block,
        ind,
        x,
        ind,
        *per_channel_args,
        dtype=x.dtype,
        meta=x._meta,
        eps=eps,
        axis=ax,
        activation=activation,
        alpha=alpha,
        activation_params=activation_params,
        num_threads=num_threads,
    )


def batch_norm(
    x: Any,
    running_mean: Any = None,
    running_var: Any = None,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    axis: int = 1,
    activation: str | None = None,
    alpha: float | None = None,
    activation_params: Any = None,
    out: Any = None,
    return_stats: bool = False,
    num_threads: int | None = None,
) -> Any:
    """:func:`cyrelu.batch_norm` for a dask array ``x``: ``y`` lazy; in training, the
    statistics computed (one pass on the cluster) and the running statistics updated
    before the call returns; ``save_mean`` / ``save_invstd`` NumPy arrays."""
    if _act.defer_forward(activation, activation_params):
        return cyrelu.batch_norm(
            x, running_mean, running_var, weight, bias, training, momentum, eps, axis=axis,
            activation=activation, alpha=alpha, activation_params=activation_params,
            out=out, return_stats=return_stats, num_threads=num_threads,
        )  # fmt: skip
    xd = G.on_host(G.as_dask(x, "x"), "x", "batch_norm")
    ax, C, _, _, momentum_, eps_ = batch_norm_args(
        xd.shape, axis, activation, alpha, momentum, eps
    )
    # the activation's parameters, checked now (each chunk's call takes them as given)
    _act.kernel_params(activation, alpha, activation_params, xd.dtype)
    G.check_no_out(out)
    G.check_threads(num_threads)
    training = bool(training)
    w64 = _float64(per_channel(weight, "weight", C), C, 1.0)
    b64 = _float64(per_channel(bias, "bias", C), C, 0.0)
    rm = running_stat(running_mean, "running_mean", C, training)
    rv = running_stat(running_var, "running_var", C, training)
    if not training and (rm is None or rv is None):
        raise ValueError("running_mean and running_var are required when training=False")
    n = xd.size // C if C else 0
    if training and n < 2 and C > 0:
        raise ValueError(
            "expected more than 1 value per channel when training, got input shape %s "
            "(channel axis %d)" % (xd.shape, ax)
        )
    sdtype = stats_dtype(xd.dtype)
    if training:
        moments = (
            channel_moments(xd, ax, num_threads).compute() if C else np.zeros(0, dtype=_MOMENTS)
        )
        mean64 = np.ascontiguousarray(moments["mean"])
        var64 = np.ascontiguousarray(moments["m2"] / n if C else moments["m2"])
        # the running statistics: the in-memory path's rule, through aligned copies
        rm_k = None if rm is None else aligned(rm)
        rv_k = None if rv is None else aligned(rv)
        invstd64 = np.empty(C, dtype=np.float64)
        _k.finish_stats(mean64, var64, eps_, momentum_, n, rm_k, rv_k, invstd64)
        if rm is not None and rm_k is not None and rm_k is not rm:
            np.copyto(rm, rm_k)
        if rv is not None and rv_k is not None and rv_k is not rv:
            np.copyto(rv, rv_k)
        y = _normalise(
            xd,
            ax,
            mean64,
            var64,
            w64,
            b64,
            eps_,
            activation,
            alpha,
            activation_params,
            num_threads,
        )
    else:
        assert rm is not None and rv is not None
        mean64 = np.ascontiguousarray(rm, dtype=np.float64)
        invstd64 = 1.0 / np.sqrt(np.asarray(rv, dtype=np.float64) + eps_)  # forward_eval's
        y = _normalise(
            xd, ax, rm, rv, w64, b64, eps_, activation, alpha, activation_params, num_threads
        )
    if return_stats:
        return y, mean64.astype(sdtype), invstd64.astype(sdtype)
    return y


# ---- backward ---------------------------------------------------------------------------


def _chunk_values(values: NDArray[Any]) -> Float64:
    """A chunk of a per-channel float64 array as the compiled entries read it: aligned
    (read-only, as chunks that come over the network are, is fine)."""
    return aligned(np.asarray(values, dtype=np.float64))


def _sums_block(
    g: NDArray[Any],
    x: NDArray[Any],
    y: NDArray[Any] | None,
    mean: NDArray[Any],
    invstd: NDArray[Any] | None,
    w: NDArray[Any] | None,
    b: NDArray[Any] | None,
    *,
    ax: int,
    act: int,
    alpha: float,
    beta: float,
    num_threads: int | None,
) -> Float64:
    """One chunk's per-channel (sum(g), sum(g * (x - mean))), g gated by the activation
    (at the output y, or with b at the pre-activation recomputed from x, invstd, w and
    b), shaped as the chunk with every axis but the channel axis of length 1, and a last
    axis of 2."""
    g3, x3 = G.box(g, ax), G.box(x, ax)
    y3 = None if y is None else G.box(y, ax)
    outer, C, inner = x3.shape
    sums = np.empty((C, 2), dtype=np.float64)
    z: tuple[Float64, ...] = ()
    if b is not None:
        assert invstd is not None and w is not None
        z = (_chunk_values(invstd), _chunk_values(w), _chunk_values(b))
    _k.partial_sums(
        g3, x3, y3, outer, C, inner, _chunk_values(mean), act, alpha, beta, sums, num_threads, *z
    )
    shape = [1] * x.ndim + [2]
    shape[ax] = C
    return sums.reshape(shape)


def _dx_block(
    g: NDArray[Any],
    x: NDArray[Any],
    y: NDArray[Any] | None,
    mean: NDArray[Any],
    invstd: NDArray[Any],
    w: NDArray[Any],
    s0: NDArray[Any],
    s1: NDArray[Any],
    b: NDArray[Any] | None,
    *,
    ax: int,
    n: float,
    training: bool,
    act: int,
    alpha: float,
    beta: float,
    num_threads: int | None,
) -> NDArray[Any]:
    """One chunk of grad_input, from the whole batch's per-channel sums (s0, s1) over
    n values per channel; the gate as _sums_block's."""
    g3, x3 = G.box(g, ax), G.box(x, ax)
    y3 = None if y is None else G.box(y, ax)
    outer, C, inner = x3.shape
    sums = np.ascontiguousarray(np.stack([s0, s1], axis=1), dtype=np.float64)
    dx3 = np.empty(x3.shape, dtype=x3.dtype)
    _k.partial_dx(
        g3,
        x3,
        y3,
        dx3,
        outer,
        C,
        inner,
        _chunk_values(mean),
        _chunk_values(invstd),
        _chunk_values(w),
        sums,
        n,
        training,
        act,
        alpha,
        beta,
        num_threads,
        None if b is None else _chunk_values(b),
    )
    return dx3.reshape(x.shape)


def batch_norm_backward(
    grad_output: Any,
    x: Any,
    save_mean: Any,
    save_invstd: Any,
    weight: Any = None,
    *,
    training: bool = True,
    axis: int = 1,
    activation: str | None = None,
    alpha: float | None = None,
    activation_params: Any = None,
    output: Any = None,
    bias: Any = None,
    out: Any = None,
    num_threads: int | None = None,
) -> Any:
    """:func:`cyrelu.batch_norm_backward` for dask arrays: ``grad_input`` lazy,
    ``grad_weight`` and ``grad_bias`` NumPy arrays from one reduction pass."""
    # elu, celu and selu from output (no bias): the chunks' kernels read the derivative
    at_y = _act.result_gate_call(activation, alpha, activation_params, output, bias)
    if not at_y and _act.defer_backward(
        activation, activation_params, output, bias, from_bias=True
    ):
        return cyrelu.batch_norm_backward(
            grad_output, x, save_mean, save_invstd, weight, training=training, axis=axis,
            activation=activation, alpha=alpha, activation_params=activation_params,
            output=output, bias=bias, out=out, num_threads=num_threads,
        )  # fmt: skip
    g, xd = G.lazy_pair(grad_output, "grad_output", x, "x")
    G.on_host(xd, "x", "batch_norm_backward")
    # the gate: at the forward's output where it gives the derivative (as the NumPy path
    # prefers it), else (defer_backward: bias given) at the pre-activation each chunk's
    # kernels recompute from x, the statistics, weight and bias, for any activation and
    # alpha, as the NumPy path does
    from_z = _act.backend_gate_at_z(activation, alpha, activation_params, output, bias)
    ax, C, act = _act.backward_gate(xd.shape, axis, activation, alpha, from_z or at_y)
    ka, kb = _act.backward_kernel_params(activation, alpha, activation_params, xd.dtype, at_y)
    if at_y:  # the result gate's flag on the kernels' code
        act |= _k.GATE_AT_OUTPUT
    G.check_no_out(out)
    G.check_threads(num_threads)
    training = bool(training)
    mean64 = np.ascontiguousarray(
        per_channel(save_mean, "save_mean", C, required=True), dtype=np.float64
    )
    invstd64 = np.ascontiguousarray(
        per_channel(save_invstd, "save_invstd", C, required=True), dtype=np.float64
    )
    w64 = _float64(per_channel(weight, "weight", C), C, 1.0)
    yd = None
    b64 = None
    if act != _table.NONE:
        if not from_z:
            yd = G.like(output, "output", xd, "x")
            check_same("output", yd, "x", xd)
        else:
            b64 = _float64(per_channel(bias, "bias", C), C, 0.0)
    # the parameter gradients' dtype: weight's, else float32 (float64 for float64 data)
    pdtype = np.asarray(weight).dtype if weight is not None else stats_dtype(xd.dtype)

    da = G.dask_array()
    ind = tuple(range(xd.ndim))
    reduced = tuple(i for i in ind if i != ax)
    y_arg: tuple[Any, Any] = (None, None) if yd is None else (yd, ind)
    mean_d = G.per_channel_chunks(mean64, xd, ax)
    z_args: tuple[Any, ...] = (None, None) * 3  # invstd, w, b for the recomputed gate
    b_arg: tuple[Any, Any] = (None, None)
    if b64 is not None:
        z_args = tuple(
            a for v in (invstd64, w64, b64) for a in (G.per_channel_chunks(v, xd, ax), (ax,))
        )
        b_arg = z_args[4:]
    per_block = da.blockwise(
        _sums_block,
        (*ind, xd.ndim),
        g,
        ind,
        xd,
        ind,
        *y_arg,
        mean_d,
        (ax,),
        *z_args,
        new_axes={xd.ndim: 2},
        adjust_chunks={i: 1 for i in reduced},
        dtype=np.float64,
        meta=np.empty((0,) * (xd.ndim + 1), dtype=np.float64),
        ax=ax,
        act=act,
        alpha=ka,
        beta=kb,
        num_threads=num_threads,
    )
    sums = (
        np.ascontiguousarray(per_block.sum(axis=reduced).compute()) if C else np.zeros((0, 2))
    )  # one pass on the cluster
    n = xd.size // C if C else 0
    grad_input = da.blockwise(
        _dx_block,
        ind,
        g,
        ind,
        xd,
        ind,
        *y_arg,
        *(
            a
            for v in (mean64, invstd64, w64, sums[:, 0], sums[:, 1])
            for a in (G.per_channel_chunks(np.ascontiguousarray(v), xd, ax), (ax,))
        ),
        *b_arg,
        dtype=xd.dtype,
        meta=xd._meta,
        ax=ax,
        n=float(n),
        training=training,
        act=act,
        alpha=ka,
        beta=kb,
        num_threads=num_threads,
    )
    grad_weight = (sums[:, 1] * invstd64).astype(pdtype)
    grad_bias = sums[:, 0].astype(pdtype)
    return grad_input, grad_weight, grad_bias
