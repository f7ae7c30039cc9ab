""":mod:`cyrelu.activations` for dask arrays: every activation of the table and its gradient.

Each function returns a lazy dask array with the input's chunks, whose every chunk is
the public function applied to the input's chunk: the NumPy kernels for NumPy chunks,
the CuPy backend for CuPy chunks (the backend is chosen per chunk), so the results are
bitwise those of the in-memory path.  The functions are made from the activation table
(``cyrelu/_activation_table.py``) with the public functions' signatures, so a new
activation needs nothing here.

Checked at call time, before a graph is built: the dtype, the gradient's shape and
dtype against ``x`` (a gradient with other chunks is rechunked to ``x``'s), the
activation's parameter and ``num_threads``; ``out`` must be None.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

import cyrelu
from cyrelu import _activation_table as _table
from cyrelu.dask import _graph as G

__all__: list[str] = []


def _probe(
    public: Callable[..., Any], dtype: np.dtype[Any], arrays: int, kwargs: dict[str, Any]
) -> None:
    """The scalar arguments checked by the public function itself, on empty NumPy
    arrays: the rules of the in-memory path, before any graph is built."""
    empty = np.empty(0, dtype=dtype)
    public(*([empty] * arrays), **kwargs)


def _table_functions(name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``name`` and ``name_backward`` for dask arrays, with the signatures of the public
    functions of the same names."""
    forward_public = getattr(cyrelu, name)
    backward_public = getattr(cyrelu, name + "_backward")
    forward_sig = inspect.signature(forward_public)
    backward_sig = inspect.signature(backward_public)
    params = [p[0] for p in _table.TABLE[name].params]

    def scalars(arguments: dict[str, Any]) -> dict[str, Any]:
        G.check_no_out(arguments["out"])
        G.check_threads(arguments["num_threads"])
        kwargs = {p: arguments[p] for p in params}
        kwargs["num_threads"] = arguments["num_threads"]
        return kwargs

    def forward(*args: Any, **kwargs: Any) -> Any:
        bound = forward_sig.bind(*args, **kwargs)
        bound.apply_defaults()
        x = G.as_dask(bound.arguments["x"], "x")
        fixed = scalars(bound.arguments)
        _probe(forward_public, x.dtype, 1, fixed)
        return x.map_blocks(forward_public, dtype=x.dtype, meta=x._meta, **fixed)

    def backward(*args: Any, **kwargs: Any) -> Any:
        bound = backward_sig.bind(*args, **kwargs)
        bound.apply_defaults()
        fixed = scalars(bound.arguments)
        g, x = G.lazy_pair(
            bound.arguments["grad_output"], "grad_output", bound.arguments["x"], "x"
        )
        _probe(backward_public, x.dtype, 2, fixed)
        return G.dask_array().map_blocks(
            backward_public, g, x, dtype=x.dtype, meta=x._meta, **fixed
        )

    for fn, public, sig in (
        (forward, forward_public, forward_sig),
        (backward, backward_public, backward_sig),
    ):
        fn.__name__ = fn.__qualname__ = public.__name__
        fn.__doc__ = ":func:`cyrelu.%s` for dask arrays." % public.__name__
        fn.__signature__ = sig  # type: ignore[attr-defined]
    return forward, backward


for _name in _table.TABLE:
    globals()[_name], globals()[_name + "_backward"] = _table_functions(_name)
    __all__ += [_name, _name + "_backward"]
