#!/usr/bin/env python
"""A tabular / ranking MLP served from NumPy, with cyrelu for the activations.

The model is the kind served on CPUs in production:

    256 features -> 4 x [Linear 1024 -> BatchNorm1d -> ReLU] -> Linear 1024 -> 16

This example

1. builds it in PyTorch and trains it for a few steps (so the BatchNorm running
   statistics are not the identity), or, without PyTorch, initialises it with
   ``cyrelu.init`` and gives the BatchNorms random statistics;
2. exports it as an ``.npz`` of the PyTorch ``state_dict`` (keys ``"0.weight"``,
   ``"1.running_mean"``, ...: what ``{k: v.numpy() for k, v in
   model.state_dict().items()}`` gives);
3. loads it in NumPy, folds every BatchNorm into the Linear before it with
   ``cyrelu.fold_batch_norm``, and runs it with buffers allocated once per batch
   size and ``out=`` everywhere: the matmuls and bias adds run on NumPy (BLAS), the
   ReLUs on cyrelu, in place;
4. checks the output against PyTorch's (eval mode) and prints the latency.

    python examples/inference_mlp.py [--batch 8] [--threads 1]

``benchmarks/bench.py --suite inference`` measures it against PyTorch eager,
ONNX Runtime and plain NumPy, side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np

import cyrelu
from cyrelu import init

IN_FEATURES = 256
HIDDEN = 1024
DEPTH = 4
OUT_FEATURES = 16
BN_EPS = 1e-5


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def build_torch_model(seed: int = 0, steps: int = 5) -> Any:
    """The model in PyTorch, trained for ``steps`` SGD steps on random data, in eval mode."""
    torch = _torch()
    if torch is None:
        raise RuntimeError("PyTorch is not installed")
    torch.manual_seed(seed)
    layers: list[Any] = []
    width = IN_FEATURES
    for _ in range(DEPTH):
        layers += [
            torch.nn.Linear(width, HIDDEN),
            torch.nn.BatchNorm1d(HIDDEN, eps=BN_EPS),
            torch.nn.ReLU(),
        ]
        width = HIDDEN
    layers.append(torch.nn.Linear(width, OUT_FEATURES))
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(256, IN_FEATURES, generator=gen) * 2.0 + 0.5
        target = torch.randn(256, OUT_FEATURES, generator=gen)
        loss = torch.nn.functional.mse_loss(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def random_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
    """The same model's ``state_dict`` without PyTorch: He-initialised Linears
    (``cyrelu.init``), BatchNorms with random affine parameters and statistics."""
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}
    width = IN_FEATURES
    for i in range(DEPTH):
        lin, bn = 3 * i, 3 * i + 1
        sd["%d.weight" % lin] = init.kaiming_normal(
            (HIDDEN, width), nonlinearity="relu", rng=seed + i
        )
        sd["%d.bias" % lin] = rng.uniform(-0.1, 0.1, HIDDEN).astype(np.float32)
        sd["%d.weight" % bn] = rng.uniform(0.5, 1.5, HIDDEN).astype(np.float32)
        sd["%d.bias" % bn] = rng.uniform(-0.2, 0.2, HIDDEN).astype(np.float32)
        sd["%d.running_mean" % bn] = rng.normal(0.0, 0.5, HIDDEN).astype(np.float32)
        sd["%d.running_var" % bn] = rng.uniform(0.5, 2.0, HIDDEN).astype(np.float32)
        width = HIDDEN
    last = 3 * DEPTH
    sd["%d.weight" % last] = init.kaiming_normal(
        (OUT_FEATURES, width), nonlinearity="relu", rng=seed + DEPTH
    )
    sd["%d.bias" % last] = np.zeros(OUT_FEATURES, np.float32)
    return sd


def export_npz(path: str, state_dict: dict[str, Any]) -> None:
    """Write a ``state_dict`` (PyTorch tensors or NumPy arrays) as an ``.npz``."""
    arrays = {
        k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v)
        for k, v in state_dict.items()
        if not k.endswith("num_batches_tracked")
    }
    np.savez(path, **arrays)


class FoldedMLP:
    """The exported model, BatchNorms folded into their Linears, run with NumPy + cyrelu.

    Per hidden layer, three calls and no allocation: ``np.matmul(h, W, out=z)``
    (BLAS), ``np.add(z, b, out=z)`` and ``cyrelu.relu(z, out=z)``.  At these sizes a
    call's fixed cost matters as much as its bandwidth: cyrelu's relu costs about a
    quarter of a microsecond at batch 1, so the two elementwise passes together stay
    near a microsecond (``cyrelu.batch_norm`` in inference mode could fuse the add
    into the ReLU, but its argument checks cost more than the pass it saves here).
    Buffers are allocated once per batch size and reused; a request's output is a
    view of the last buffer unless ``out`` is given.

    ``num_threads`` is cyrelu's thread count.  The default, 1, keeps cyrelu's OpenMP
    threads from waking while the BLAS thread pool spins between the matmuls: with
    both pools on the same cores each wakes as the other goes idle, and a batch of 64
    took about ten times as long (measured on 2 cores).  The ReLU passes are a small
    fraction of the matmuls' time (``benchmarks/bench.py --suite inference``).
    """

    def __init__(self, npz_path: str, *, num_threads: int | None = 1) -> None:
        sd = np.load(npz_path)
        self.num_threads = num_threads
        self.weights: list[np.ndarray] = []  # (in, out), C-contiguous: h @ W
        self.biases: list[np.ndarray] = []  # b', the folded biases
        for i in range(DEPTH):
            lin, bn = 3 * i, 3 * i + 1
            w, b = cyrelu.fold_batch_norm(
                sd["%d.weight" % lin],
                sd["%d.bias" % lin],
                sd["%d.running_mean" % bn],
                sd["%d.running_var" % bn],
                sd["%d.weight" % bn],
                sd["%d.bias" % bn],
                BN_EPS,
                axis=0,
            )
            self.weights.append(np.ascontiguousarray(w.T, dtype=np.float32))
            self.biases.append(np.asarray(b, dtype=np.float32))
        last = 3 * DEPTH
        self.weights.append(np.ascontiguousarray(sd["%d.weight" % last].T, dtype=np.float32))
        self.last_bias = np.asarray(sd["%d.bias" % last], dtype=np.float32)
        self._buffers: dict[int, list[np.ndarray]] = {}

    def _buffers_for(self, batch: int) -> list[np.ndarray]:
        bufs = self._buffers.get(batch)
        if bufs is None:
            bufs = [np.empty((batch, HIDDEN), np.float32) for _ in range(2)]
            bufs.append(np.empty((batch, OUT_FEATURES), np.float32))
            self._buffers[batch] = bufs
        return bufs

    def bias_relu(self, z: np.ndarray, layer: int) -> None:
        """``z = relu(z + b)`` in place: the add on NumPy, the ReLU on cyrelu."""
        np.add(z, self.biases[layer], out=z)
        cyrelu.relu(z, out=z, num_threads=self.num_threads)

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        a, b, y = self._buffers_for(x.shape[0])
        h = x
        for i in range(DEPTH):
            z = a if i % 2 == 0 else b
            np.matmul(h, self.weights[i], out=z)
            self.bias_relu(z, i)
            h = z
        y = y if out is None else out
        np.matmul(h, self.weights[DEPTH], out=y)
        np.add(y, self.last_bias, out=y)
        return y


def numpy_reference(sd: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The unfolded model in float64 NumPy (an independent reference)."""
    h = x.astype(np.float64)
    for i in range(DEPTH):
        lin, bn = 3 * i, 3 * i + 1
        z = h @ sd["%d.weight" % lin].astype(np.float64).T + sd["%d.bias" % lin]
        z = (z - sd["%d.running_mean" % bn]) / np.sqrt(sd["%d.running_var" % bn] + BN_EPS) * sd[
            "%d.weight" % bn
        ] + sd["%d.bias" % bn]
        h = np.maximum(z, 0.0)
    last = 3 * DEPTH
    return h @ sd["%d.weight" % last].astype(np.float64).T + sd["%d.bias" % last]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="cyrelu's threads (default 1)")
    args = p.parse_args(argv)

    torch = _torch()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mlp.npz")
        if torch is not None:
            model = build_torch_model()
            export_npz(path, model.state_dict())
        else:
            model = None
            export_npz(path, random_state_dict())
        mlp = FoldedMLP(path, num_threads=args.threads)
        sd = dict(np.load(path))

    x = np.random.default_rng(1).standard_normal((args.batch, IN_FEATURES), dtype=np.float32)
    y = mlp(x).copy()
    ref = numpy_reference(sd, x)
    err = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
    print("max |error| / max |y| against the float64 NumPy reference: %.2e" % err)
    if model is not None:
        with torch.inference_mode():
            yt = model(torch.from_numpy(x)).numpy()
        print(
            "max |cyrelu - torch| / max |y|: %.2e"
            % (float(np.max(np.abs(y - yt))) / float(np.max(np.abs(yt))))
        )

    for _ in range(20):
        mlp(x)
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        mlp(x)
    dt = (time.perf_counter() - t0) / n
    print("batch %d: %.1f us per request" % (args.batch, dt * 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
