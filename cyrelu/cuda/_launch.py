"""Plumbing shared by the GPU backend modules: CuPy (imported when present), dtype
tables, argument checks that are about CuPy arrays, the per-call fast paths' keys, launch
geometry and the per-call workspace.

Importing this module (and so every backend module) works without CuPy: the backend is
only ever called with CuPy arrays, so CuPy is there whenever a function here runs, and
the signatures can be inspected on machines without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    import cupy as cupy  # re-exported to the backend modules
except ImportError:  # pragma: no cover - depends on the environment
    cupy = None

from cyrelu._layout import coalesce
from cyrelu._validation import check_float_dtype
from cyrelu.cuda import _loader

Array = Any  # a cupy.ndarray (CuPy ships no type information)

F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
FLOATS = (F16, F32, F64)
PER_CHANNEL_DTYPES = (F32, F64)

THREADS = 256  # threads per block of the 1-D kernels (CYR_THREADS in batchnorm.cu)
_DEFAULT_BLOCKS_PER_SM = 8  # 8 x 256 threads: a full H100/A100 SM

# C++ element type of each dtype (kernel template argument), and the math type
CTYPE = {np.dtype(k): v for k, v in _loader.CTYPE.items()}
ACC = {np.dtype(k): np.dtype(v) for k, v in _loader.ACC_DTYPE.items()}

# Launches whose every index stays below this use the kernels' 32-bit index type
# (index_type).  Private: the tests lower it to 0 to run the 64-bit kernels on small
# arrays; it is read when a launch plan is made (plans are cached per shape).
INDEX32_LIMIT = 2**31


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


# ---- arguments -----------------------------------------------------------------------


def as_array(value: object, name: str) -> Array:
    """A CuPy float16/32/64 array, or TypeError.  (Mixing array libraries was already
    refused by the dispatcher; lists and scalars reach here only next to CuPy arrays.)"""
    if isinstance(value, cupy.ndarray):
        if value.dtype in FLOATS:
            return value
        check_float_dtype(value.dtype, name)
        return value
    raise TypeError(
        "%s: expected a cupy.ndarray, got %s; move it to the GPU first, e.g. "
        "with cupy.asarray()" % (name, type(value).__name__)
    )


def check_threads(num_threads: int | None) -> None:
    """``num_threads`` validated as on the CPU path (the GPU does not use it)."""
    if num_threads is not None:
        from cyrelu._parallel import effective_n_threads

        effective_n_threads(num_threads)


def check_device(device_id: int, name: str, a: Array) -> None:
    if a is not None and a.device.id != device_id:
        raise ValueError("%s is on GPU %d, but x is on GPU %d" % (name, a.device.id, device_id))


def check_out(
    out: object, shape: tuple[int, ...], dtype: np.dtype[Any], name: str = "out"
) -> Array:
    if not isinstance(out, cupy.ndarray):
        raise TypeError("%s must be a cupy.ndarray, got %s" % (name, type(out).__name__))
    if out.dtype != dtype:
        raise TypeError("%s has dtype %s, but the result is %s" % (name, out.dtype, dtype))
    if out.shape != shape:
        raise ValueError("%s has shape %s, but the result has shape %s" % (name, out.shape, shape))
    return out


def extent(a: Array) -> tuple[int, int]:
    """[lo, hi): the byte range of a's elements, relative to its data pointer."""
    lo = hi = 0
    for n, s in zip(a.shape, a.strides, strict=False):
        if s > 0:
            hi += (n - 1) * s
        else:
            lo += (n - 1) * s
    return lo, hi + a.itemsize


def _extent(a: Array) -> tuple[int, int]:
    """[lo, hi) byte range of a's elements."""
    p = a.data.ptr
    lo, hi = extent(a)
    return p + lo, p + hi


def _aliases(a: Array, b: Array) -> bool:
    return bool(a.data.ptr == b.data.ptr and a.strides == b.strides and a.shape == b.shape)


def overlaps_partly(out: Array, inp: Array) -> bool:
    """True when out may share memory with inp without being exactly inp."""
    if out.size == 0 or inp.size == 0:
        return False
    a0, a1 = _extent(out)
    b0, b1 = _extent(inp)
    return a0 < b1 and b0 < a1 and not _aliases(out, inp)


# ---- the per-call fast paths -----------------------------------------------------------
# A call whose arrays have exactly the shapes, strides, dtypes, devices and alignments of
# an earlier successful call (array_key) reuses what that call's checks and plan derived;
# what such a key cannot show (the current device, overlaps) is checked per call.

NDARRAY: Any = getattr(cupy, "ndarray", None)  # the exact type a fast path takes
# the current device, looked up once (functions here run only where CuPy is installed)
get_device: Any = None if cupy is None else cupy.cuda.runtime.getDevice
FAST_LIMIT = 512  # entries per fast-path cache (cleared when full)


class NotFast(Exception):
    """An argument a fast path does not take (the general path decides about it)."""


def array_key(a: Any) -> tuple[object, ...] | None:
    """What a call's checks and launch plan depend on in array ``a``: shape, strides,
    dtype, device and alignment (None for None).  NotFast for anything but a
    cupy.ndarray (subclasses too: the general path checks those)."""
    if a is None:
        return None
    if type(a) is not NDARRAY:
        raise NotFast
    mem = a.data
    return (a.shape, a.strides, a.dtype, mem.device_id, mem.ptr & 15)


def remember(cache: dict[Any, Any], key: tuple[object, ...], entry: object) -> None:
    if len(cache) >= FAST_LIMIT:
        cache.clear()
    cache[key] = entry


class CurrentDevice:
    """``with CurrentDevice(id):`` makes ``id`` current only when it is not already (a
    device switch costs two runtime calls; the common case has none)."""

    __slots__ = ("dev", "prev")

    def __init__(self, dev: int) -> None:
        self.dev = dev
        self.prev: int | None = None

    def __enter__(self) -> None:
        cur = cupy.cuda.runtime.getDevice()
        if cur != self.dev:
            self.prev = cur
            cupy.cuda.runtime.setDevice(self.dev)

    def __exit__(self, *exc: object) -> None:
        if self.prev is not None:
            cupy.cuda.runtime.setDevice(self.prev)
            self.prev = None


# ---- launch geometry -----------------------------------------------------------------

# (device id, kernel) -> most blocks of THREADS threads the device holds
_resident: dict[tuple[int, int], int] = {}


def grid_limit(dev: int, fn: object = None) -> int:
    """Blocks of THREADS threads that fill device ``dev`` once: SMs times the blocks an SM
    holds (by threads, and by registers when the kernel says how many it uses).  Cached
    per device and kernel.  Only the elementwise and apply kernels use it: their results
    do not depend on the grid."""
    key = (dev, id(fn))
    n = _resident.get(key)
    if n is None:
        sms, threads_sm, regs_sm = _loader.device_limits(dev)
        per_sm = threads_sm // THREADS if threads_sm else _DEFAULT_BLOCKS_PER_SM
        regs = getattr(fn, "num_regs", 0) if fn is not None else 0
        try:
            regs = int(regs)
        except (TypeError, ValueError):
            regs = 0
        if regs > 0 and regs_sm:
            per_sm = min(per_sm, max(1, regs_sm // (regs * THREADS)))
        n = _resident[key] = max(1, sms * max(1, per_sm))
    return n


def blocks(work: int, limit: int) -> int:
    return max(1, min(cdiv(work, THREADS), limit))


def index_type(n: int, threads: int) -> tuple[str, type[np.integer[Any]]]:
    """The index type of a kernel launch (its C++ name, for the template argument, and
    the NumPy type of its index arguments): "int" when ``n`` -- the elements, or the
    largest offset, it addresses -- plus four grid strides of ``threads`` threads (what
    a grid-stride loop may compute past the end) is below INDEX32_LIMIT, else
    "long long"."""
    if n + 4 * threads < INDEX32_LIMIT:
        return "int", np.int32
    return "long long", np.int64


def head(arrays: Sequence[Array], n: int, itemsize: int) -> int:
    """Elements before the first 16-byte boundary if every array has the same
    misalignment (so the rest can use 16-byte packs), else n (no packs)."""
    m = arrays[0].data.ptr % 16
    for a in arrays[1:]:
        if a.data.ptr % 16 != m:
            return n
    if m % itemsize:
        return n
    return int(min(n, ((16 - m) % 16) // itemsize))


def aligned(*arrays: Array) -> bool:
    return all(not a.data.ptr % 16 for a in arrays)


def same_flat_layout(*arrays: Array) -> bool:
    for a in arrays:
        if not a.flags.c_contiguous:
            break
    else:
        return True
    return all(a.flags.f_contiguous for a in arrays)


def element_strides(
    shape: tuple[int, ...], byte_strides: Sequence[tuple[int, ...]], itemsize: int
) -> tuple[tuple[int, ...], list[tuple[int, ...]]] | None:
    """Coalesced (shape, element strides per array) padded to 4 axes, or None when that is
    not possible (more than 4 axes, or a stride that is not a whole number of elements)."""
    dims, strides = coalesce(shape, *byte_strides)
    if len(dims) > 4 or any(s % itemsize for st in strides for s in st):
        return None
    pad = 4 - len(dims)
    return ((1,) * pad + dims, [(0,) * pad + tuple(s // itemsize for s in st) for st in strides])


def memory_order(a: Array) -> tuple[int, ...] | None:
    """The axis order in which ``a`` is C-contiguous (identity for a C-contiguous array),
    or None when no permutation of its axes is (slices with gaps, negative strides)."""
    order = tuple(range(a.ndim))
    if a.flags.c_contiguous:
        return order
    perm = tuple(sorted(order, key=lambda d: -abs(a.strides[d])))
    t = a.transpose(perm)
    if t.flags.c_contiguous and all(s >= 0 for s in t.strides):
        return perm
    return None


# ---- the workspace: one allocation per call -------------------------------------------


def workspace(nbytes: int) -> Array:
    """Raw device memory for one call's temporaries (statistics, coefficients, partials),
    addressed by byte offsets (multiples of 16) from its base pointer."""
    return cupy.empty(max(nbytes, 16), dtype=np.uint8)


def pad16(n: int) -> int:
    return (n + 15) & ~15


# (device id, stream pointer) -> uint32 cupy array, all zeros between launches
_counters: dict[tuple[int, int], Any] = {}


def counter(dev: int, n: int) -> Array:
    """Arrival counters of the reductions' last-block step for the current stream: the
    kernels leave them at zero, so one array serves every launch on that stream
    (launches on one stream run in order; other streams get their own)."""
    key = (dev, cupy.cuda.get_current_stream().ptr)
    buf = _counters.get(key)
    if buf is None or buf.size < n:
        buf = _counters[key] = cupy.zeros(
            max(n, 1024, 0 if buf is None else 2 * buf.size), dtype=np.uint32
        )
    return buf
