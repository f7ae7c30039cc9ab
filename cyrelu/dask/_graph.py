"""What the Dask backend's functions share: the import of dask.array, the checks of the
dask arrays and of the arrays that come with them, and the chunks seen as
``(outer, C, inner)`` arrays for the compiled kernels.

Every check here runs when the public function is called, before any graph is built:
a wrong dtype, shape, axis or chunk library never waits for ``compute()``.  Dask has
no complete type stubs, so dask objects are ``Any`` here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cyrelu._validation import (
    aligned,
    as_float_array,
    check_float_dtype,
    check_num_threads,
    check_same,
)


def dask_array() -> Any:
    """The ``dask.array`` module (imported on the first call with a dask array)."""
    import dask.array

    return dask.array


def is_dask(value: object) -> bool:
    """Whether ``value`` is a Dask collection (told from its type's module, so that no
    other check has to import dask)."""
    return type(value).__module__.partition(".")[0] == "dask"


def library(value: object) -> str:
    """The array library of ``value``, or of its chunks for a dask array: "numpy",
    "cupy", ..."""
    meta = getattr(value, "_meta", value) if is_dask(value) else value
    if isinstance(meta, (list, tuple)):
        return "numpy"  # array-likes become NumPy arrays, as on the NumPy path
    return type(meta).__module__.partition(".")[0]


def as_dask(value: object, name: str) -> Any:
    """``value`` as a dask array of float16/32/64 values and a known shape: TypeError for
    another type or dtype, ValueError for unknown chunk sizes."""
    da = dask_array()
    if not isinstance(value, da.Array):
        raise TypeError(
            "%s: expected a dask.array.Array, got %s.%s"
            % (name, type(value).__module__, type(value).__qualname__)
        )
    check_float_dtype(value.dtype, name)
    if any(math.isnan(s) for s in value.shape):
        raise ValueError(
            "%s has unknown chunk sizes (shape %s); call %s.compute_chunk_sizes() "
            "first" % (name, value.shape, name)
        )
    return value


def on_host(x: Any, name: str, what: str) -> Any:
    """``x`` (a checked dask array) when its chunks are NumPy arrays, for the functions
    whose per-chunk work runs the CPU kernels; TypeError otherwise."""
    lib = library(x)
    if lib != "numpy":
        raise TypeError(
            "%s: %s on dask arrays runs on NumPy chunks, got %s chunks; convert "
            "them with %s.map_blocks(lambda b: b.get())" % (name, what, lib, name)
        )
    return x


def like(value: object, name: str, x: Any, xname: str) -> Any:
    """An argument that goes with the dask array ``x`` (same shape and dtype), as a dask
    array with ``x``'s chunks: a dask array (rechunked where its chunks differ), or an
    in-memory array of the library of ``x``'s chunks (NumPy arrays and lists, or CuPy
    arrays), cut into ``x``'s chunks.  TypeError for another library or dtype,
    ValueError for another shape."""
    da = dask_array()
    if is_dask(value):
        a = as_dask(value, name)
        if library(a) != library(x):
            raise TypeError(
                "%s has %s chunks but %s has %s chunks; both must be of one "
                "library" % (name, library(a), xname, library(x))
            )
    else:
        if library(value) != library(x):
            raise TypeError(
                "%s is a %s array but %s is a dask array of %s chunks; pass "
                "arrays of one library (nothing is moved between devices "
                "implicitly)" % (name, library(value), xname, library(x))
            )
        a = as_float_array(value, name) if library(x) == "numpy" else value
    check_same(xname, x, name, a)
    if not is_dask(a):
        return da.from_array(a, chunks=x.chunks, asarray=False)
    return a if a.chunks == x.chunks else a.rechunk(x.chunks)


def lazy_pair(a: object, aname: str, b: object, bname: str) -> tuple[Any, Any]:
    """Two arguments of one shape and dtype, at least one a dask array, as dask arrays
    with the same chunks (the second's when it is a dask array, else the first's)."""
    if is_dask(b):
        bd = as_dask(b, bname)
        return like(a, aname, bd, bname), bd
    ad = as_dask(a, aname)
    return ad, like(b, bname, ad, aname)


def check_no_out(out: object) -> None:
    """``out`` must be None: a dask result is a lazy array, not written into another."""
    if out is not None:
        raise TypeError(
            "out must be None for dask arrays: the result is a lazy dask array (write it "
            "with dask.array.store or to_zarr), got %s" % type(out).__name__
        )


def check_threads(num_threads: object) -> None:
    """``num_threads`` as the public functions check it (None: OpenMP's default on each
    worker)."""
    if num_threads is not None:
        check_num_threads(num_threads)


def outer_inner(shape: tuple[int, ...], ax: int) -> tuple[int, int]:
    """(outer, inner) of data of ``shape`` with the channel axis ``ax``."""
    return math.prod(shape[:ax]), math.prod(shape[ax + 1 :])


def box(block: NDArray[Any], ax: int) -> NDArray[Any]:
    """A NumPy chunk as an aligned, C-contiguous ``(outer, C, inner)`` array (a view
    when the chunk is already one, as dask's chunks usually are)."""
    outer, inner = outer_inner(block.shape, ax)
    return aligned(np.ascontiguousarray(block)).reshape(outer, block.shape[ax], inner)


def per_channel_chunks(values: NDArray[Any], x: Any, ax: int) -> Any:
    """A per-channel NumPy array as a 1-D dask array chunked as ``x``'s channel axis."""
    return dask_array().from_array(values, chunks=(x.chunks[ax],))
