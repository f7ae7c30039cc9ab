"""An out-of-core training step of BatchNorm + ReLU on a dask.distributed cluster.

    pip install 'cyrelu[dask]'        # zarr too, to store the result: pip install zarr
    python examples/dask_training.py [--samples 512] [--chunk 32] [--out y.zarr]

A LocalCluster of two worker processes stands for a cluster of machines: the same code
runs against ``Client("tcp://scheduler:8786")``.  The batch is generated on the workers,
chunk by chunk, and never gathered: the BatchNorm statistics and the parameter gradients
come back to the client as a few numbers per channel, the activations and the input
gradient stay lazy until stored (``to_zarr``, or ``da.store`` into any array-like).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from typing import Any

import dask.array
import distributed
import numpy as np

import cyrelu
from cyrelu import nn

# dask has no complete type stubs: its modules are Any here
da: Any = dask.array
dist: Any = distributed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=512, help="batch size (N)")
    p.add_argument("--chunk", type=int, default=32, help="samples per chunk")
    p.add_argument("--out", default=None, help="where to store y as zarr (needs zarr)")
    args = p.parse_args(argv)
    C, H, W = 32, 28, 28
    with (
        dist.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        dist.Client(cluster) as client,
    ):
        print("cluster:", client)
        # the batch and the upstream gradient, made on the workers (never on the client)
        rng = da.random.default_rng(0)
        shape, chunks = (args.samples, C, H, W), (args.chunk, C, H, W)
        x: Any = rng.standard_normal(shape, chunks=chunks, dtype=np.float32) * 3 + 1
        grad_y: Any = rng.standard_normal(shape, chunks=chunks, dtype=np.float32)
        print("x: %s, %.1f MB in %d chunks" % (x.shape, x.nbytes / 1e6, x.npartitions))

        bn = nn.BatchNorm(C, activation="relu")  # parameters on the client, as NumPy arrays
        assert bn.weight is not None and bn.bias is not None and bn.running_mean is not None
        y = bn(x)  # one pass over x on the cluster: per-channel statistics; y is lazy
        print("running_mean[:4] after one step:", np.round(bn.running_mean[:4], 4))
        grad_x = bn.backward(grad_y)  # one pass for grad_weight / grad_bias; grad_x lazy
        assert bn.grad_weight is not None and bn.grad_bias is not None
        print("grad_weight[:4]:", np.round(bn.grad_weight[:4], 4))

        # an SGD step on the parameters, which live on the client
        lr = 0.01
        bn.weight -= lr * bn.grad_weight
        bn.bias -= lr * bn.grad_bias

        # the lazy results are written by the workers, chunk by chunk
        _store(y, grad_x, args.out)
    return 0


def _store(y: Any, grad_x: Any, out: str | None) -> None:
    try:
        import zarr  # noqa: F401  (to_zarr needs it)
    except ImportError:
        # without zarr: reduce on the cluster instead of storing
        print(
            "zarr not installed: sparsity of y = %.3f (counted on the workers)"
            % cyrelu.sparsity(y)
        )
        return
    path = out or os.path.join(tempfile.mkdtemp(), "step.zarr")
    da.to_zarr(y, path, component="y", overwrite=True)
    da.to_zarr(grad_x, path, component="grad_x", overwrite=True)
    print("stored y and grad_x in", path)


if __name__ == "__main__":
    raise SystemExit(main())
