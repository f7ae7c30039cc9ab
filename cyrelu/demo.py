"""``python -m cyrelu.demo``: the classic ReLU claims, tested with numbers.

Trains a deep MLP (``--depth`` hidden layers, 16 by default) on a generated
two-dimensional spiral classification task, for every combination of

* activation: sigmoid, tanh (NumPy), relu, leaky_relu (cyrelu's kernels);
* initialisation: Xavier (Glorot & Bengio: ``xavier_normal``, gain 1) or Kaiming
  (He et al.: ``kaiming_normal``, fan_in, with the activation's gain:
  sqrt(2) for relu, sqrt(2/(1+a^2)) for leaky_relu, 1 for sigmoid, 5/3 for tanh);
* with or without BatchNorm (``cyrelu.nn.BatchNorm`` between each hidden
  linear layer and its activation),

and prints one table: final training loss and accuracy, held-out accuracy, the
gradient norm of the first hidden layer's weights over the last layer's at
initialisation (the vanishing-gradient evidence), the mean fraction of exact
zeros in the hidden activations (``cyrelu.sparsity``), the fraction of dead
units (``cyrelu.dead_units`` on the pre-activations of the whole training set:
units whose input is <= 0 for every sample; for leaky_relu such units still
pass ``alpha`` times the gradient) and the time per epoch.

The network is plain NumPy matmuls (``x @ W``, weights drawn in PyTorch's
``(out, in)`` shape and transposed) with cyrelu's ``relu``, ``leaky_relu`` and
their backwards, trained by SGD with momentum (learning rate decayed to 0 along
a cosine) on softmax cross-entropy, in float32.  Everything is generated from
``--seed``: the same seed gives the same table (timings aside).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

import cyrelu
from cyrelu import init

__all__ = ["Config", "make_spirals", "MLP", "train", "run", "format_table", "main"]

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu")
INITS = ("xavier", "kaiming")
LEAKY_ALPHA = 0.01  # PyTorch's default slope

Array = npt.NDArray[np.floating]


# ---- data ------------------------------------------------------------------------------


def make_spirals(
    n: int, n_classes: int, rng: np.random.Generator, noise: float = 0.1, turns: float = 1.25
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """``n`` points on ``n_classes`` interleaved spiral arms in the plane, with
    Gaussian noise, standardised; labels 0..n_classes-1 (balanced)."""
    y = np.arange(n) % n_classes
    r = rng.random(n) ** 0.5  # uniform density over the disc the arms sweep
    theta = 2 * np.pi * (turns * r + y / n_classes)
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1) * 3.0
    x += noise * rng.standard_normal(x.shape) * (0.3 + r[:, None])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    perm = rng.permutation(n)
    return x[perm].astype(np.float32), y[perm].astype(np.int64)


# ---- the network -----------------------------------------------------------------------


class Linear:
    """``y = x @ W + b`` with ``W`` of shape (in, out)."""

    def __init__(self, weight: Array, bias: Array | None) -> None:
        self.weight = weight
        self.bias = bias
        self.grad_weight = np.zeros_like(weight)
        self.grad_bias = None if bias is None else np.zeros_like(bias)
        self._x: Array | None = None

    def forward(self, x: Array) -> Array:
        self._x = x
        y = x @ self.weight
        if self.bias is not None:
            y += self.bias
        return y

    def backward(self, grad: Array) -> Array:
        assert self._x is not None
        np.matmul(self._x.T, grad, out=self.grad_weight)
        if self.grad_bias is not None:
            np.sum(grad, axis=0, out=self.grad_bias)
        return grad @ self.weight.T


class Activation:
    """One activation's forward and backward; relu/leaky_relu are cyrelu's kernels."""

    def __init__(self, name: str) -> None:
        if name not in ACTIVATIONS:
            raise ValueError("unknown activation %r; expected one of %s" % (name, ACTIVATIONS))
        self.name = name
        self._z: Array | None = None
        self._a: Array | None = None

    def forward(self, z: Array) -> Array:
        self._z = z
        if self.name == "relu":
            a = cyrelu.relu(z)
        elif self.name == "leaky_relu":
            a = cyrelu.leaky_relu(z, LEAKY_ALPHA)
        elif self.name == "tanh":
            a = np.tanh(z)
        else:  # a sigmoid that never overflows
            a = 0.5 * (1.0 + np.tanh(0.5 * z))
        self._a = a
        return a

    def backward(self, grad: Array) -> Array:
        assert self._z is not None and self._a is not None
        if self.name == "relu":
            return cyrelu.relu_backward(grad, self._z)
        if self.name == "leaky_relu":
            return cyrelu.leaky_relu_backward(grad, self._z, LEAKY_ALPHA)
        a = self._a
        if self.name == "tanh":
            return grad * (1.0 - a * a)
        return grad * (a * (1.0 - a))


class MLP:
    """``depth`` hidden blocks [Linear -> (BatchNorm) -> activation] and a linear output."""

    def __init__(
        self,
        n_in: int,
        width: int,
        depth: int,
        n_out: int,
        activation: str,
        init_name: str,
        batch_norm: bool,
        rng: np.random.Generator,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        if init_name not in INITS:
            raise ValueError("unknown initialisation %r; expected one of %s" % (init_name, INITS))
        self.activation = activation
        self.batch_norm = batch_norm
        self.dtype = np.dtype(dtype)
        self.linears: list[Linear] = []
        self.norms: list[Any] = []
        self.acts: list[Activation] = []
        sizes = [n_in] + [width] * depth
        for i in range(depth):
            w = self._weight(sizes[i + 1], sizes[i], init_name, activation, rng)
            bias = None if batch_norm else np.zeros(sizes[i + 1], dtype=self.dtype)
            self.linears.append(Linear(w, bias))
            if batch_norm:
                from cyrelu import nn  # the layer API: forward/backward, train()/eval()

                self.norms.append(nn.BatchNorm(sizes[i + 1], axis=1, dtype=self.dtype))
            self.acts.append(Activation(activation))
        w = self._weight(n_out, width, init_name, "linear", rng)
        self.output = Linear(w, np.zeros(n_out, dtype=self.dtype))
        self.pre_activations: list[Array] = []
        self.hidden: list[Array] = []

    def _weight(
        self, n_out: int, n_in: int, init_name: str, nonlinearity: str, rng: np.random.Generator
    ) -> Array:
        # PyTorch's (out, in) shape, transposed for x @ W
        if init_name == "xavier":
            w = init.xavier_normal((n_out, n_in), gain=1.0, rng=rng, dtype=self.dtype)
        elif nonlinearity == "leaky_relu":
            w = init.kaiming_normal(
                (n_out, n_in), a=LEAKY_ALPHA, nonlinearity="leaky_relu", rng=rng, dtype=self.dtype
            )
        else:
            w = init.kaiming_normal(
                (n_out, n_in), nonlinearity=nonlinearity, rng=rng, dtype=self.dtype
            )
        return np.ascontiguousarray(w.T)

    def layers(self) -> list[Linear]:
        return [*self.linears, self.output]

    def train(self) -> None:
        for bn in self.norms:
            bn.train()

    def eval(self) -> None:
        for bn in self.norms:
            bn.eval()

    def forward(self, x: Array, keep: bool = False) -> Array:
        """Logits; with ``keep`` the pre-activations and hidden outputs are kept."""
        self.pre_activations, self.hidden = [], []
        h = x
        for i, (lin, act) in enumerate(zip(self.linears, self.acts, strict=True)):
            z = lin.forward(h)
            if self.batch_norm:
                z = self.norms[i](z)
            h = act.forward(z)
            if keep:
                self.pre_activations.append(z)
                self.hidden.append(h)
        return self.output.forward(h)

    def backward(self, grad: Array) -> None:
        g = self.output.backward(grad)
        for i in range(len(self.linears) - 1, -1, -1):
            g = self.acts[i].backward(g)
            if self.batch_norm:
                g = self.norms[i].backward(g)
            g = self.linears[i].backward(g)

    def parameters(self) -> list[tuple[Array, Array]]:
        """(parameter, gradient) pairs; parameters are updated in place."""
        pairs: list[tuple[Array, Array]] = []
        for lin in self.layers():
            pairs.append((lin.weight, lin.grad_weight))
            if lin.bias is not None and lin.grad_bias is not None:
                pairs.append((lin.bias, lin.grad_bias))
        for bn in self.norms:
            if getattr(bn, "weight", None) is not None:
                pairs.append((bn.weight, bn.grad_weight))
                pairs.append((bn.bias, bn.grad_bias))
        return pairs


def cross_entropy(logits: Array, y: npt.NDArray[np.int64]) -> tuple[float, Array, float]:
    """Mean softmax cross-entropy, its gradient w.r.t. the logits, and the accuracy."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    n = logits.shape[0]
    rows = np.arange(n)
    loss = float(np.mean(np.log(s[:, 0]) - z[rows, y]))
    p = e / s
    p[rows, y] -= 1.0
    p /= n
    acc = float(np.mean(np.argmax(logits, axis=1) == y))
    return loss, p.astype(logits.dtype, copy=False), acc


# ---- one experiment --------------------------------------------------------------------


@dataclass
class Config:
    """The experiment's settings (the defaults run in well under a minute on 2 cores)."""

    depth: int = 16
    width: int = 64
    n_classes: int = 4
    samples: int = 2048
    test_samples: int = 1024
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    seed: int = 0
    activations: Sequence[str] = ACTIVATIONS
    inits: Sequence[str] = INITS
    batch_norms: Sequence[bool] = (False, True)


@dataclass
class Result:
    activation: str
    init: str
    batch_norm: bool
    loss: float
    accuracy: float
    test_accuracy: float
    grad_norms: list[float]
    grad_ratio: float
    sparsity: float
    dead_fraction: float
    time_per_epoch: float
    loss_history: list[float] = field(default_factory=list)
    diverged: bool = False

    @property
    def label(self) -> str:
        return "%s / %s / %s" % (self.activation, self.init, "BN" if self.batch_norm else "-")


def _grad_norms(net: MLP, x: Array, y: npt.NDArray[np.int64]) -> list[float]:
    """Per layer (hidden layers, then the output layer), the root-mean-square of the
    weight gradient, ``|dL/dW| / sqrt(W.size)``, for one batch in training mode (the
    RMS, so that the 2-input first layer compares fairly with the square ones)."""
    net.train()
    _, g, _ = cross_entropy(net.forward(x), y)
    net.backward(g)
    return [
        float(np.linalg.norm(lin.grad_weight.astype(np.float64)) / math.sqrt(lin.grad_weight.size))
        for lin in net.layers()
    ]


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf") if a > 0 else float("nan")


def train(
    cfg: Config,
    activation: str,
    init_name: str,
    batch_norm: bool,
    data: tuple[Array, npt.NDArray[np.int64], Array, npt.NDArray[np.int64]],
    seed_key: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> Result:
    """Train one network; everything random comes from (cfg.seed, seed_key)."""
    x, y, x_test, y_test = data
    rng = np.random.default_rng([cfg.seed, seed_key])
    net = MLP(
        x.shape[1], cfg.width, cfg.depth, cfg.n_classes, activation, init_name, batch_norm, rng
    )
    norms = _grad_norms(net, x[: cfg.batch_size * 4], y[: cfg.batch_size * 4])
    params = net.parameters()
    velocity = [np.zeros_like(p) for p, _ in params]
    n = x.shape[0]
    history: list[float] = []
    diverged = False
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        net.train()
        # cosine decay of the learning rate, so the final numbers are not one noisy step
        lr = 0.5 * cfg.lr * (1.0 + math.cos(math.pi * epoch / cfg.epochs))
        order = rng.permutation(n)
        total = 0.0
        for b in range(0, n, cfg.batch_size):
            idx = order[b : b + cfg.batch_size]
            if idx.size < 2:  # BatchNorm needs two samples
                continue
            loss, g, _ = cross_entropy(net.forward(x[idx]), y[idx])
            net.backward(g)
            for (p, dp), v in zip(params, velocity, strict=True):
                v *= cfg.momentum
                v += dp
                p -= lr * v
            total += loss * idx.size
        history.append(total / n)
        if not math.isfinite(history[-1]):
            diverged = True
            break
        if progress is not None:
            progress(epoch + 1, history[-1])
    elapsed = time.perf_counter() - start
    epochs_run = max(1, len(history))
    # final metrics on the whole training set, inference mode
    net.eval()
    loss, _, acc = cross_entropy(net.forward(x, keep=True), y)
    sparsity = float(np.mean([cyrelu.sparsity(h) for h in net.hidden]))
    if activation in ("relu", "leaky_relu"):
        dead = sum(int(cyrelu.dead_units(z, axis=1).sum()) for z in net.pre_activations)
        dead_fraction = dead / float(cfg.width * cfg.depth)
    else:
        dead_fraction = float("nan")  # defined for rectifiers only
    _, _, test_acc = cross_entropy(net.forward(x_test), y_test)
    return Result(
        activation=activation,
        init=init_name,
        batch_norm=batch_norm,
        loss=loss,
        accuracy=acc,
        test_accuracy=test_acc,
        grad_norms=norms,
        grad_ratio=_ratio(norms[0], norms[cfg.depth - 1]),
        sparsity=sparsity,
        dead_fraction=dead_fraction,
        time_per_epoch=elapsed / epochs_run,
        loss_history=history,
        diverged=diverged or not math.isfinite(loss),
    )


def run(cfg: Config, log: Callable[[str], None] | None = None) -> list[Result]:
    """Every combination of cfg.activations x cfg.inits x cfg.batch_norms, in that order."""
    data_rng = np.random.default_rng([cfg.seed, 12345])
    x, y = make_spirals(cfg.samples, cfg.n_classes, data_rng)
    x_test, y_test = make_spirals(cfg.test_samples, cfg.n_classes, data_rng)
    combos = [(a, i, b) for a in cfg.activations for i in cfg.inits for b in cfg.batch_norms]
    results = []
    t0 = time.perf_counter()
    for k, (act, init_name, bn) in enumerate(combos):
        label = "%s / %s / %s" % (act, init_name, "BN" if bn else "no BN")
        prefix = "[%2d/%d] %-32s" % (k + 1, len(combos), label)

        def progress(epoch: int, loss: float, prefix: str = prefix) -> None:
            if log is not None and (epoch % 5 == 0 or epoch == cfg.epochs):
                log("%s epoch %3d/%d  loss %.4f" % (prefix, epoch, cfg.epochs, loss))

        r = train(cfg, act, init_name, bn, (x, y, x_test, y_test), seed_key=k, progress=progress)
        results.append(r)
        if log is not None:
            log(
                "%s done: loss %.4f, acc %.3f, %.2fs/epoch  (%.0fs elapsed)"
                % (prefix, r.loss, r.accuracy, r.time_per_epoch, time.perf_counter() - t0)
            )
    return results


# ---- output ----------------------------------------------------------------------------


def _fmt(v: float, spec: str) -> str:
    return "-" if not math.isfinite(v) else format(v, spec)


def format_table(results: Sequence[Result], cfg: Config) -> str:
    head = (
        "activation",
        "init",
        "BN",
        "loss",
        "train acc",
        "test acc",
        "g1/gL at init",
        "sparsity",
        "dead",
        "s/epoch",
    )
    rows = []
    for r in results:
        rows.append(
            (
                r.activation,
                r.init,
                "yes" if r.batch_norm else "no",
                "diverged" if r.diverged else _fmt(r.loss, ".3f"),
                _fmt(r.accuracy, ".3f"),
                _fmt(r.test_accuracy, ".3f"),
                _fmt(r.grad_ratio, ".2e"),
                _fmt(r.sparsity, ".3f"),
                _fmt(r.dead_fraction, ".3f"),
                _fmt(r.time_per_epoch, ".3f"),
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    left = 3  # text columns

    def line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i < left else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    sep = (
        "|"
        + "|".join(
            ("-" * (w + 2)) if i < left else ("-" * (w + 1) + ":") for i, w in enumerate(widths)
        )
        + "|"
    )
    title = (
        "%d hidden layers x %d units, %d-class spirals (%d train / %d test), %d epochs, "
        "SGD lr %g (cosine decay) momentum %g, batch %d, seed %d; chance loss ln(%d) = %.3f"
        % (
            cfg.depth,
            cfg.width,
            cfg.n_classes,
            cfg.samples,
            cfg.test_samples,
            cfg.epochs,
            cfg.lr,
            cfg.momentum,
            cfg.batch_size,
            cfg.seed,
            cfg.n_classes,
            math.log(cfg.n_classes),
        )
    )
    return "\n".join([title, "", line(head), sep] + [line(r) for r in rows])


def _to_json(results: Sequence[Result], cfg: Config, wall: float) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, list):
            return [clean(u) for u in v]
        return v

    return {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        "environment": {
            "cyrelu": cyrelu.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "wall_seconds": wall,
        "results": [{k: clean(v) for k, v in vars(r).items()} for r in results],
    }


def _plot(results: Sequence[Result], path: str) -> None:
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    colours = dict(
        zip(ACTIVATIONS, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True)
    )
    for r in results:
        # colour: activation; dashed: Xavier, solid: Kaiming; thick: with BatchNorm
        kw = dict(
            color=colours.get(r.activation, "black"),
            linestyle="--" if r.init == "xavier" else "-",
            linewidth=2.4 if r.batch_norm else 1.0,
            label=r.label,
        )
        ax1.semilogy(range(1, len(r.grad_norms) + 1), r.grad_norms, **kw)
        ax2.plot(range(1, len(r.loss_history) + 1), r.loss_history, **kw)
    ax1.set_xlabel("layer (input side first; the last is the output layer)")
    ax1.set_ylabel("RMS of dL/dW at initialisation")
    ax1.set_title("Gradient norm per layer at initialisation")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("training loss (mean over the epoch)")
    ax2.set_title("Training loss")
    ax2.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@contextlib.contextmanager
def _blas_threads(n: int, log: Callable[[str], None] | None) -> Iterator[None]:
    """Limit the BLAS thread pool to ``n`` threads for the run, when threadpoolctl is
    installed (BLAS reads OMP/OPENBLAS_NUM_THREADS only at start-up, before this runs)."""
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        if log is not None:
            log(
                "note: threadpoolctl is not installed, so the BLAS thread count is left as is; "
                "small matmuls run fastest on one thread (pip install threadpoolctl, or set "
                "OPENBLAS_NUM_THREADS=1)"
            )
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a positive integer, got %r" % text) from None
    if v < 1:
        raise argparse.ArgumentTypeError("expected a positive integer, got %r" % text)
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected a non-negative integer, got %r" % text
        ) from None
    if v < 0:
        raise argparse.ArgumentTypeError("expected a non-negative integer, got %r" % text)
    return v


def _parser() -> argparse.ArgumentParser:
    d = Config()
    p = argparse.ArgumentParser(
        prog="python -m cyrelu.demo",
        description="Train a deep MLP with sigmoid/tanh/relu/leaky_relu, Xavier/Kaiming "
        "initialisation, with and without BatchNorm, and compare them in one table.",
    )
    p.add_argument(
        "--epochs",
        type=_positive_int,
        default=d.epochs,
        help="training epochs per network (default %(default)s)",
    )
    p.add_argument(
        "--depth", type=_positive_int, default=d.depth, help="hidden layers (default %(default)s)"
    )
    p.add_argument(
        "--width",
        type=_positive_int,
        default=d.width,
        help="units per hidden layer (default %(default)s)",
    )
    p.add_argument(
        "--samples",
        type=_positive_int,
        default=d.samples,
        help="training samples (default %(default)s)",
    )
    p.add_argument("--seed", type=_seed, default=d.seed, help="random seed (default %(default)s)")
    p.add_argument(
        "--lr", type=float, default=d.lr, help="SGD learning rate (default %(default)s)"
    )
    p.add_argument(
        "--activations",
        default=",".join(d.activations),
        help="comma-separated subset of %s" % ",".join(ACTIVATIONS),
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        help="also write every number (and the per-layer "
        "gradient norms and loss curves) to PATH as JSON",
    )
    p.add_argument("--plot", metavar="PATH", help="save a figure (needs matplotlib)")
    p.add_argument(
        "--blas-threads",
        type=_positive_int,
        default=1,
        help="BLAS threads for the matmuls (default 1: these matrices are small, "
        "and extra BLAS threads only wait for each other; needs threadpoolctl)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    acts = tuple(a.strip() for a in args.activations.split(",") if a.strip())
    bad = [a for a in acts if a not in ACTIVATIONS]
    if bad or not acts:
        _parser().error(
            "--activations: unknown %s; choose from %s"
            % (",".join(bad) or "(none given)", ",".join(ACTIVATIONS))
        )
    if args.samples < 16:
        _parser().error("--samples must be at least 16, got %d" % args.samples)
    if args.plot:
        try:
            import matplotlib  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
        except ImportError:
            _parser().error(
                "--plot needs matplotlib, which is not installed "
                "(pip install matplotlib), or leave out --plot"
            )
    cfg = Config(
        depth=args.depth,
        width=args.width,
        samples=args.samples,
        epochs=args.epochs,
        seed=args.seed,
        lr=args.lr,
        activations=acts,
    )
    log = None if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    with _blas_threads(args.blas_threads, log):
        t0 = time.perf_counter()
        results = run(cfg, log)
        wall = time.perf_counter() - t0
    print(format_table(results, cfg))
    print("\nwall time %.1f s" % wall)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(_to_json(results, cfg, wall), fh, indent=1)
        print("wrote %s" % args.json)
    if args.plot:
        _plot(results, args.plot)
        print("wrote %s" % args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
