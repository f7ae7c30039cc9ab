#!/usr/bin/env python
"""Host cost per call of the CuPy backend: the Python and CuPy work around the kernels.

Each function is first called for real (compiling its kernels), then timed twice:
  real      the whole call, kernels included, on a small tensor (synchronised once per
            batch of calls, so the launches overlap as in a training loop);
  stubbed   every compiled kernel replaced by a no-op with the same attributes, on the
            issue's shapes (BatchNorm (64, 256, 28, 28) float32, relu n = 1e6): what the
            host spends per call (argument checks, launch plans, allocations).
The host cost must stay well under the kernel time for the GPU path to pay off.  The
stubbed table also counts, per call, the kernel launches and the device allocations
(through ``cupy.cuda.set_allocator``); under the emulated CuPy it counts every
``cupy.ndarray`` created as well (views included: each costs on a real CuPy too).

    python benchmarks/gpu_host_cost.py     (needs CuPy and a GPU)
    PYTHONPATH=tests/cuda_emulation python benchmarks/gpu_host_cost.py --stubbed-only

``--stubbed-only`` stubs the kernels before the first call (nothing is compiled) and
skips the real calls: with the emulated CuPy of the tests (``tests/cuda_emulation``) it
measures the backend's Python side on any machine.  Emulated arrays are NumPy arrays,
so their attribute lookups and allocations cost less than CuPy's: compare those figures
with each other, not with a GPU's.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _best(fn: Callable[[], object], n: int, sync: Callable[[], None] | None = None) -> float:
    for _ in range(min(n, 200)):
        fn()
    if sync:
        sync()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if sync:
            sync()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


class _Counts:
    """Per-call counters: kernel launches, device allocations, arrays created."""

    def __init__(self) -> None:
        self.launches = 0
        self.allocations = 0
        self.arrays = 0


COUNTS = _Counts()


class _Stub:
    """A compiled kernel's stand-in: its attributes, and a call that only counts."""

    def __init__(self, fn: object = None) -> None:
        for attr in ("num_regs", "max_threads_per_block", "shared_size_bytes"):
            setattr(self, attr, getattr(fn, attr, 0))

    def __call__(self, *args: object, **kwargs: object) -> None:
        COUNTS.launches += 1


class _StubModule:
    def get_function(self, name: str) -> _Stub:
        return _Stub()


def _count_allocations(cupy: Any) -> bool:
    """Count device allocations (and, under the emulated CuPy, every array created);
    True when arrays are counted."""
    if cupy.__version__.endswith("emulated"):
        nd = cupy.ndarray

        def finalize(self: np.ndarray, obj: object) -> None:
            COUNTS.arrays += 1
            # new memory: a copy owns it; the emulation's allocations wrap a fresh
            # NumPy array (views, slices and transposes come from a cupy.ndarray)
            if self.flags.owndata or type(obj) is np.ndarray:
                COUNTS.allocations += 1

        nd.__array_finalize__ = finalize
        return True
    pool = cupy.get_default_memory_pool()

    def malloc(nbytes: int) -> Any:
        COUNTS.allocations += 1
        return pool.malloc(nbytes)

    cupy.cuda.set_allocator(malloc)
    return False


def _per_call(fn: Callable[[], object], n: int = 100) -> tuple[float, float, float]:
    COUNTS.launches = COUNTS.allocations = COUNTS.arrays = 0
    for _ in range(n):
        fn()
    return COUNTS.launches / n, COUNTS.allocations / n, COUNTS.arrays / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stubbed-only",
        action="store_true",
        help="stub the kernels before the first call; no real calls",
    )
    args = parser.parse_args(argv)

    import cupy

    import cyrelu
    from cyrelu.cuda import _loader

    dev = cupy.cuda.Device()
    sync = dev.synchronize
    rng = np.random.default_rng(0)

    def case(shape: tuple[int, ...], C: int) -> tuple[Any, ...]:
        x = cupy.asarray(rng.standard_normal(shape).astype(np.float32))
        g = cupy.asarray(rng.standard_normal(shape).astype(np.float32))
        rm, rv = cupy.zeros(C, np.float32), cupy.ones(C, np.float32)
        w, b = cupy.ones(C, np.float32), cupy.zeros(C, np.float32)
        y = cupy.empty_like(x)
        return x, g, rm, rv, w, b, y

    def calls(shape: tuple[int, ...], C: int, n_relu: int) -> dict[str, Callable[[], object]]:
        x, g, rm, rv, w, b, y = case(shape, C)
        _, sm, si = cyrelu.batch_norm(x, rm, rv, w, b, training=True, return_stats=True)
        r = cupy.asarray(rng.standard_normal(n_relu).astype(np.float32))
        ro = cupy.empty_like(r)
        return {
            "batch_norm training forward (out=)": lambda: cyrelu.batch_norm(
                x, rm, rv, w, b, training=True, return_stats=True, out=y
            ),
            "batch_norm eval forward (out=)": lambda: cyrelu.batch_norm(
                x, rm, rv, w, b, training=False, out=y
            ),
            "batch_norm backward (out=)": lambda: cyrelu.batch_norm_backward(
                g, x, sm, si, w, out=y
            ),
            "relu (out=)": lambda: cyrelu.relu(r, out=ro),
            "relu (new array)": lambda: cyrelu.relu(r),
        }

    print("device:", cupy.cuda.runtime.getDeviceProperties(dev.id)["name"].decode())
    if args.stubbed_only:
        _loader.module = lambda name, grp: _StubModule()  # type: ignore[assignment]
    else:
        small = calls((8, 16, 4, 4), 16, 4096)
        for fn in small.values():  # compile every kernel, then time real calls
            fn()
        sync()
        print("real calls, small tensors (8, 16, 4, 4) / n = 4096, us per call:")
        for name, fn in small.items():
            print("  %-40s %8.1f" % (name, _best(fn, 2000, sync)))

    big = calls((64, 256, 28, 28), 256, 10**6)
    for fn in big.values():
        fn()
    sync()
    if not args.stubbed_only:
        from cyrelu.cuda import activations as gact, batchnorm as gbn

        for key, fn in list(_loader._functions.items()):
            _loader._functions[key] = _Stub(fn)
        # every cache that holds a compiled kernel: the launch plans, the fast paths'
        for cache in (gact._PLANS, gact._FAST, gbn._plans, gbn._fast_forward, gbn._fast_backward):
            cache.clear()
        for fn in big.values():  # the launch plans again, with the stubs
            fn()
    times = {name: _best(fn, 3000) for name, fn in big.items()}
    arrays = _count_allocations(cupy)  # after the timing: counting costs time
    print(
        "stubbed kernels, (64, 256, 28, 28) / n = 1e6, host us per call; per call: "
        "kernel launches, device allocations%s:" % (", arrays created" if arrays else "")
    )
    for name, fn in big.items():
        launches, allocations, created = _per_call(fn)
        line = "  %-40s %8.1f %6.1f %6.1f" % (name, times[name], launches, allocations)
        print(line + (" %6.1f" % created if arrays else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
