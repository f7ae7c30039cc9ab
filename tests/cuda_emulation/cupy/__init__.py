"""A stand-in for CuPy that runs cyrelu's CUDA kernels on the CPU (tests only).

Put ``tests/cuda_emulation`` first on ``sys.path`` and ``import cupy`` gets this module:
arrays are NumPy arrays of a subclass named ``cupy.ndarray`` (so cyrelu's dispatcher
sends them to the GPU backend), one fake device, and ``RawModule`` compiles the kernel
source it is given with the host C++ compiler against ``shim.hpp`` and runs launches
through it.  Kernel arguments are passed exactly as CuPy passes them (arrays as
pointers, NumPy scalars by their C type), so a host/kernel type mismatch shows up here
as wrong results.  Only what cyrelu's backend, its tests and its benchmark use exists.
"""

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import types
from typing import ClassVar

import numpy as np

__version__ = "0.0-emulated"
HERE = os.path.dirname(os.path.abspath(__file__))
SHIM = os.path.join(os.path.dirname(HERE), "shim.hpp")
SM_COUNT = int(os.environ.get("CYRELU_EMULATED_SMS", "16"))


class _Memory:
    device_id = 0

    def __init__(self, ptr):
        self.ptr = ptr

    def copy_from_device_async(self, src, nbytes, stream=None):
        ctypes.memmove(self.ptr, src.ptr, nbytes)


class _Device:
    def __init__(self, id=None):
        self.id = 0 if id is None else int(id)
        if self.id != 0:
            raise RuntimeError("the emulation has one device")
        self.attributes = {
            "MultiProcessorCount": SM_COUNT,
            "MaxThreadsPerMultiProcessor": 2048,
            "MaxRegistersPerMultiprocessor": 65536,
        }

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        pass


class ndarray(np.ndarray):
    """A NumPy array that poses as a CuPy array.  ``data`` and ``device`` are cheap after
    the first lookup, as CuPy's attributes are (the host-cost benchmark runs on this)."""

    @property
    def data(self):
        mem = self.__dict__.get("_data")
        if mem is None:  # an array's memory never moves
            mem = self.__dict__["_data"] = _Memory(self.__array_interface__["data"][0])
        return mem

    @property
    def device(self):
        return _DEVICE

    def get(self):
        return np.array(self)

    def __getitem__(self, index):
        r = super().__getitem__(index)
        if not isinstance(r, np.ndarray):  # CuPy returns 0-d arrays, not scalars
            r = np.asarray(r).view(ndarray)
        return r


ndarray.__module__ = "cupy"
_DEVICE = _Device(0)


def _wrap(a):
    return a.view(ndarray)


def asarray(a, dtype=None):
    if isinstance(a, ndarray) and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    return _wrap(np.array(a, dtype=dtype, copy=True))


def ascontiguousarray(a, dtype=None):
    if (
        isinstance(a, ndarray)
        and a.flags.c_contiguous
        and (dtype is None or np.dtype(dtype) == a.dtype)
    ):
        return a
    return _wrap(np.ascontiguousarray(a, dtype=dtype))


def asfortranarray(a, dtype=None):
    return _wrap(np.asfortranarray(a, dtype=dtype))


def empty(shape, dtype=float, order="C"):
    return _wrap(np.empty(shape, dtype=dtype, order=order))


def empty_like(a, dtype=None):
    return _wrap(np.empty_like(a, dtype=dtype))


def zeros(shape, dtype=float):
    return _wrap(np.zeros(shape, dtype=dtype))


def ones(shape, dtype=float):
    return _wrap(np.ones(shape, dtype=dtype))


def full(shape, value, dtype=None):
    return _wrap(np.full(shape, value, dtype=dtype))


def maximum(a, b, out=None):
    return np.maximum(a, b, out=out)


# ---- kernels -------------------------------------------------------------------------

_BUILD_DIR = os.path.join(tempfile.gettempdir(), "cyrelu-cuda-emulation")
_build_lock = threading.Lock()
_libs = {}


def _build(code, exprs):
    with open(SHIM) as fh:
        shim = fh.read()
    key = hashlib.sha256((code + "\0" + "\0".join(exprs) + shim).encode())
    key = key.hexdigest()[:20]
    if key in _libs:
        return _libs[key]
    os.makedirs(_BUILD_DIR, exist_ok=True)
    so = os.path.join(_BUILD_DIR, key + ".so")
    with _build_lock:
        if not os.path.exists(so):
            src = os.path.join(_BUILD_DIR, key + ".cpp")
            lines = ['#include "%s"' % SHIM, code]
            for i, e in enumerate(exprs):
                # kernels with barriers or shuffles run as fibers, the rest sequentially
                plain = e.startswith(("unary_", "binary_", "apply", "eval_coef"))
                sync = "false" if plain else "true"
                lines.append(
                    'extern "C" void cyr_launch_%d(unsigned gx, unsigned gy, unsigned bx, '
                    "unsigned by, void **args) { cyr_launch(&%s, %s, gx, gy, bx, by, args); }"
                    % (i, e, sync)
                )
            with open(src, "w") as fh:
                fh.write("\n".join(lines) + "\n")
            cxx = os.environ.get("CXX", "g++")
            tmp = so + ".%d.tmp" % os.getpid()
            subprocess.run(
                [
                    cxx,
                    "-std=c++20",
                    "-O1",
                    "-shared",
                    "-fPIC",
                    "-pthread",
                    "-Wno-unknown-pragmas",
                    src,
                    "-o",
                    tmp,
                ],
                check=True,
            )
            os.replace(tmp, so)
    lib = ctypes.CDLL(so)
    _libs[key] = lib
    return lib


class _Kernel:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, grid, block, args):
        grid = tuple(grid) + (1,) * (2 - len(grid))
        block = tuple(block) + (1,) * (2 - len(block))
        holders = []
        for a in args:
            if isinstance(a, np.ndarray):
                holders.append(ctypes.c_void_p(a.__array_interface__["data"][0]))
            elif isinstance(a, np.int64):
                holders.append(ctypes.c_longlong(int(a)))
            elif isinstance(a, np.uint64):  # a device address, for a pointer parameter
                holders.append(ctypes.c_uint64(int(a)))
            elif isinstance(a, np.int32):
                holders.append(ctypes.c_int(int(a)))
            elif isinstance(a, np.float32):
                holders.append(ctypes.c_float(float(a)))
            elif isinstance(a, np.float64):
                holders.append(ctypes.c_double(float(a)))
            else:
                raise TypeError(
                    "kernel argument of type %s: pass NumPy scalars of the "
                    "kernel's C type" % type(a).__name__
                )
        ptrs = (ctypes.c_void_p * max(1, len(holders)))(
            *[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in holders]
        )
        self.fn(
            ctypes.c_uint(grid[0]),
            ctypes.c_uint(grid[1]),
            ctypes.c_uint(block[0]),
            ctypes.c_uint(block[1]),
            ptrs,
        )


# the kernels of a program: its CYR_KERNEL_<family>(name, ...) lines (cyrelu.cuda._loader)
_KERNEL_LINE = re.compile(r"^CYR_KERNEL_\w+\((\w+),", re.M)


class RawModule:
    def __init__(self, code=None, options=(), name_expressions=(), **kw):
        if name_expressions:
            raise NotImplementedError('the emulation runs extern "C" kernels only')
        self.code = code
        self.exprs = _KERNEL_LINE.findall(code)
        self.lib = None

    def compile(self, log_stream=None):
        if self.lib is None:
            self.lib = _build(self.code, self.exprs)

    def get_function(self, name):
        self.compile()
        return _Kernel(getattr(self.lib, "cyr_launch_%d" % self.exprs.index(name)))


class _RandomState:
    def __init__(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def standard_normal(self, size=None, dtype=float):
        return _wrap(self._rng.standard_normal(size).astype(dtype))


random = types.SimpleNamespace(RandomState=_RandomState)


# ---- cupy.cuda -----------------------------------------------------------------------


class _Event:
    def record(self, stream=None):
        import time

        self.t = time.perf_counter()

    def synchronize(self):
        pass


class Stream:
    """A stream: kernels run at once on the CPU, so only identity and nesting matter."""

    _count = 0
    _stack: ClassVar[list["Stream"]] = []

    def __init__(self, non_blocking=False, null=False, ptr=None):
        self.non_blocking = non_blocking
        if ptr is None:
            Stream._count += 1
            ptr = 0 if null else 0x1000 + Stream._count
        self.ptr = ptr

    def __enter__(self):
        Stream._stack.append(self)
        return self

    def __exit__(self, *exc):
        Stream._stack.pop()
        return False

    def synchronize(self):
        pass

    def use(self):
        Stream._stack[:] = [self]
        return self


_NULL_STREAM = Stream(null=True)


def _get_current_stream():
    return Stream._stack[-1] if Stream._stack else _NULL_STREAM


cuda = types.SimpleNamespace(
    Stream=Stream,
    get_current_stream=_get_current_stream,
    Device=_Device,
    Event=_Event,
    get_elapsed_time=lambda a, b: (b.t - a.t) * 1e3,
    runtime=types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDevice=lambda: 0,
        setDevice=lambda d: None,
        getDeviceProperties=lambda i: {"name": b"CPU emulation of a CUDA device"},
    ),
)


def get_default_memory_pool():
    return types.SimpleNamespace(free_all_blocks=lambda: None)


def show_config():
    print("cyrelu's CPU emulation of CuPy (tests/cuda_emulation)")


if shutil.which(os.environ.get("CXX", "g++")) is None:  # pragma: no cover
    raise ImportError("the CUDA emulation needs a C++20 compiler (g++)")
