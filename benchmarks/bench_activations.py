"""Activation suite: relu, leaky_relu, relu6, hardtanh, hardsigmoid, hardswish, the smooth
members (elu, celu, selu, silu, softplus, gelu in both forms, mish), prelu and
their backwards, float32, at n = 1e3 ... 1e7.

Compared in one run against:
  numpy       np.maximum(x, 0, out=y); np.where(x > 0, x, x * a) for leaky (which
              allocates: NumPy has no out= form of it); g * (x > 0) for the backward
  torch       torch.clamp_min(x, 0, out=y), aten leaky_relu.out, threshold_backward and
              leaky_relu_backward (grad_input= forms), with the same thread count
  copy-1t     np.copyto(y, x): one thread copying the bytes the kernel reads once
  copy-Nt     the same copy split across the same number of threads (cyrelu's own
              OpenMP memcpy, and torch's Tensor.copy_): the memory-bandwidth limit
Every call writes into a preallocated output, so allocation is not measured.
"""

import numpy as np

import cyrelu
from cyrelu import _activations

from harness import best_times, row

SUITE = "activations"


def run(ctx):
    sizes = (
        [10**3, 10**5, 10**6, 10**7] if ctx.quick else [10**3, 10**4, 10**5, 10**6, 10**7, 10**8]
    )
    rounds, min_time = (5, 0.02) if ctx.quick else (9, 0.1)
    torch = ctx.torch
    nt = ctx.threads
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        x = rng.standard_normal(n).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        y = np.empty_like(x)
        mask = np.empty(n, dtype=bool)
        nb = x.nbytes
        tag = "n=1e%d" % round(np.log10(n))
        pending = []

        def add(case, impl, f, nbytes):
            pending.append((case, impl, f, nbytes))

        if torch is not None:
            tx, tg, ty = torch.from_numpy(x), torch.from_numpy(g), torch.from_numpy(y)

        # forward: read x, write y
        case = "relu " + tag
        add(case, "cyrelu", lambda: cyrelu.relu(x, out=y, num_threads=nt), 2 * nb)
        add(case, "numpy maximum", lambda: np.maximum(x, 0, out=y), 2 * nb)
        if torch is not None:
            add(case, "torch clamp_min", lambda: torch.clamp_min(tx, 0, out=ty), 2 * nb)
        add(case, "copy-1t np.copyto", lambda: np.copyto(y, x), 2 * nb)
        add(case, "copy-%dt cyrelu" % nt, lambda: _activations.copy_flat(x, y, nt), 2 * nb)
        if torch is not None:
            add(case, "copy-%dt torch" % nt, lambda: ty.copy_(tx), 2 * nb)

        case = "leaky_relu " + tag
        add(case, "cyrelu", lambda: cyrelu.leaky_relu(x, 0.2, out=y, num_threads=nt), 2 * nb)
        a32 = np.float32(0.2)
        add(case, "numpy where", lambda: np.where(x > 0, x, x * a32), 2 * nb)
        if torch is not None:
            lk = torch.ops.aten.leaky_relu.out
            add(case, "torch leaky_relu", lambda: lk(tx, 0.2, out=ty), 2 * nb)
        add(case, "copy-%dt cyrelu" % nt, lambda: _activations.copy_flat(x, y, nt), 2 * nb)

        # backward: read g and x, write the gradient
        case = "relu_backward " + tag
        add(case, "cyrelu", lambda: cyrelu.relu_backward(g, x, out=y, num_threads=nt), 3 * nb)

        def np_relu_bw():
            np.greater(x, 0, out=mask)
            np.multiply(g, mask, out=y)

        add(case, "numpy g*(x>0)", np_relu_bw, 3 * nb)
        if torch is not None:
            thr = torch.ops.aten.threshold_backward.grad_input
            add(case, "torch threshold_backward", lambda: thr(tg, tx, 0.0, grad_input=ty), 3 * nb)
        add(case, "copy-%dt cyrelu" % nt, lambda: _activations.copy_flat(x, y, nt), 2 * nb)

        case = "leaky_relu_backward " + tag
        add(
            case,
            "cyrelu",
            lambda: cyrelu.leaky_relu_backward(g, x, 0.2, out=y, num_threads=nt),
            3 * nb,
        )
        if torch is not None:
            lbw = torch.ops.aten.leaky_relu_backward.grad_input
            add(
                case,
                "torch leaky_relu_backward",
                lambda: lbw(tg, tx, 0.2, False, grad_input=ty),
                3 * nb,
            )
        add(case, "copy-%dt cyrelu" % nt, lambda: _activations.copy_flat(x, y, nt), 2 * nb)

        # the table's other members (at their default parameters) against torch's out= forms
        aten = torch.ops.aten if torch is not None else None
        for name, t_fwd, t_bwd in [
            (
                "relu6",
                lambda: aten.hardtanh.out(tx, 0.0, 6.0, out=ty),
                lambda: aten.hardtanh_backward.grad_input(tg, tx, 0.0, 6.0, grad_input=ty),
            ),
            (
                "hardtanh",
                lambda: aten.hardtanh.out(tx, -1.0, 1.0, out=ty),
                lambda: aten.hardtanh_backward.grad_input(tg, tx, -1.0, 1.0, grad_input=ty),
            ),
            (
                "hardsigmoid",
                lambda: aten.hardsigmoid.out(tx, out=ty),
                lambda: aten.hardsigmoid_backward.grad_input(tg, tx, grad_input=ty),
            ),
            (
                "hardswish",
                lambda: aten.hardswish.out(tx, out=ty),
                lambda: aten.hardswish_backward.out(tg, tx, out=ty),
            ),
        ]:
            fwd, bwd = getattr(cyrelu, name), getattr(cyrelu, name + "_backward")
            case = name + " " + tag
            add(case, "cyrelu", lambda fwd=fwd: fwd(x, out=y, num_threads=nt), 2 * nb)
            if torch is not None:
                add(case, "torch " + name, t_fwd, 2 * nb)
            case = name + "_backward " + tag
            add(case, "cyrelu", lambda bwd=bwd: bwd(g, x, out=y, num_threads=nt), 3 * nb)
            if torch is not None:
                add(case, "torch " + name + "_backward", t_bwd, 3 * nb)

        # the smooth members at their defaults (gelu in both forms); torch's forwards
        # allocate their output (no out= form for every one), its backwards are aten's
        F = torch.nn.functional if torch is not None else None
        sa, ss = 1.6732632423543772, 1.0507009873554805
        for name, kw, t_fwd, t_bwd in [
            (
                "elu",
                {},
                lambda: F.elu(tx),
                lambda: aten.elu_backward(tg, 1.0, 1.0, 1.0, False, tx),
            ),
            (
                "celu",
                {},
                lambda: F.celu(tx),
                lambda: aten.elu_backward(tg, 1.0, 1.0, 1.0, False, tx),
            ),
            (
                "selu",
                {},
                lambda: F.selu(tx),
                lambda: aten.elu_backward(tg, sa, ss, 1.0, False, tx),
            ),
            ("silu", {}, lambda: F.silu(tx), lambda: aten.silu_backward(tg, tx)),
            (
                "softplus",
                {},
                lambda: F.softplus(tx),
                lambda: aten.softplus_backward(tg, tx, 1.0, 20.0),
            ),
            ("gelu", {}, lambda: F.gelu(tx), lambda: aten.gelu_backward(tg, tx)),
            (
                "gelu",
                {"approximate": "tanh"},
                lambda: F.gelu(tx, approximate="tanh"),
                lambda: aten.gelu_backward(tg, tx, approximate="tanh"),
            ),
            ("mish", {}, lambda: F.mish(tx), lambda: aten.mish_backward(tg, tx)),
        ]:
            fwd, bwd = getattr(cyrelu, name), getattr(cyrelu, name + "_backward")
            label = name + ("_tanh" if kw else "")
            case = label + " " + tag
            add(case, "cyrelu", lambda fwd=fwd, kw=kw: fwd(x, out=y, num_threads=nt, **kw), 2 * nb)
            if torch is not None:
                add(case, "torch " + label, t_fwd, 2 * nb)
            case = label + "_backward " + tag
            add(
                case,
                "cyrelu",
                lambda bwd=bwd, kw=kw: bwd(g, x, out=y, num_threads=nt, **kw),
                3 * nb,
            )
            if torch is not None:
                add(case, "torch " + label + "_backward", t_bwd, 3 * nb)

        # prelu with a weight per channel, on (N, 10, inner) data (inner = H * W up to
        # 1000); relu on the same data in the same case, so the ratio is measured in
        # one interleaved run.  torch has no out= form: its rows allocate the result.
        inner = min(1000, n // 10)
        x3, g3, y3 = (a.reshape(-1, 10, inner) for a in (x, g, y))
        w = np.linspace(0.05, 0.5, 10, dtype=np.float32)
        case = "prelu " + tag
        add(case, "cyrelu", lambda: cyrelu.prelu(x3, w, out=y3, num_threads=nt), 2 * nb)
        add(case, "cyrelu relu", lambda: cyrelu.relu(x3, out=y3, num_threads=nt), 2 * nb)
        if torch is not None:
            tx3, tg3, tw = torch.from_numpy(x3), torch.from_numpy(g3), torch.from_numpy(w)
            add(case, "torch prelu", lambda: torch.nn.functional.prelu(tx3, tw), 2 * nb)
        case = "prelu_backward " + tag
        add(
            case,
            "cyrelu",
            lambda: cyrelu.prelu_backward(g3, x3, w, out=y3, num_threads=nt),
            3 * nb,
        )
        if torch is not None:
            pbw = torch.ops.aten._prelu_kernel_backward
            tw3 = tw.reshape(10, 1)

            def torch_prelu_bw():  # autograd's two steps: the kernel, the weight's sum
                gi, gw_full = pbw(tg3, tx3, tw3)
                return gi, gw_full.sum((0, 2))

            add(case, "torch prelu_backward", torch_prelu_bw, 3 * nb)

        # every implementation of a case measured in turn, round after round
        for case in dict.fromkeys(p[0] for p in pending):
            items = [p for p in pending if p[0] == case]
            best = best_times(
                {impl: f for _, impl, f, _ in items}, rounds=rounds, min_time=min_time
            )
            for _, impl, _, nbytes in items:
                rows.append(row(SUITE, case, impl, best[impl], nbytes, n=n, threads=nt))
    return rows
