#!/usr/bin/env python
"""Host cost per call of the CuPy backend: the Python and CuPy work around the kernels.

Each function is first called for real (compiling its kernels), then timed twice:
  real      the whole call, kernels included, on a small tensor (synchronised once per
            batch of calls, so the launches overlap as in a training loop);
  stubbed   every compiled kernel replaced by a no-op with the same attributes, on the
            issue's shapes (BatchNorm (64, 256, 28, 28) float32, relu n = 1e6): what the
            host spends per call (argument checks, launch plans, allocations).
The host cost must stay well under the kernel time for the GPU path to pay off.

    python benchmarks/gpu_host_cost.py     (needs CuPy and a GPU)
"""

import sys
import time

import numpy as np


def _best(fn, n, sync=None):
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


class _Stub:
    """A compiled kernel's stand-in: its attributes, and a call that does nothing."""

    def __init__(self, fn):
        for attr in ("num_regs", "max_threads_per_block", "shared_size_bytes"):
            setattr(self, attr, getattr(fn, attr, 0))

    def __call__(self, *args, **kwargs):
        return None


def main():
    import cupy

    import cyrelu
    from cyrelu.cuda import _loader, activations as gact, batchnorm as gbn

    dev = cupy.cuda.Device()
    sync = dev.synchronize
    rng = np.random.default_rng(0)

    def case(shape, C):
        x = cupy.asarray(rng.standard_normal(shape).astype(np.float32))
        g = cupy.asarray(rng.standard_normal(shape).astype(np.float32))
        rm, rv = cupy.zeros(C, np.float32), cupy.ones(C, np.float32)
        w, b = cupy.ones(C, np.float32), cupy.zeros(C, np.float32)
        y = cupy.empty_like(x)
        return x, g, rm, rv, w, b, y

    def calls(shape, C, n_relu):
        x, g, rm, rv, w, b, y = case(shape, C)
        _, sm, si = cyrelu.batch_norm(x, rm, rv, w, b, training=True, return_stats=True)
        r = cupy.asarray(rng.standard_normal(n_relu).astype(np.float32))
        ro = cupy.empty_like(r)
        return {
            "batch_norm training forward (out=)": lambda: cyrelu.batch_norm(
                x, rm, rv, w, b, training=True, return_stats=True, out=y
            ),
            "batch_norm backward (out=)": lambda: cyrelu.batch_norm_backward(
                g, x, sm, si, w, out=y
            ),
            "relu (out=)": lambda: cyrelu.relu(r, out=ro),
            "relu (new array)": lambda: cyrelu.relu(r),
        }

    print("device:", cupy.cuda.runtime.getDeviceProperties(dev.id)["name"].decode())
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
    for key, fn in list(_loader._functions.items()):
        _loader._functions[key] = _Stub(fn)
    gact._PLANS.clear()
    gbn._plans.clear()
    print("stubbed kernels, (64, 256, 28, 28) / n = 1e6, host us per call:")
    for name, fn in big.items():
        print("  %-40s %8.1f" % (name, _best(fn, 3000)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
