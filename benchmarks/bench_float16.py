"""float16 suite: the elementwise kernels and the diagnostics on float16 data at
n = 2e6, beside the same call on float32 data and PyTorch's float16 kernel, measured in
turn in one run.  float16 moves half the bytes of float32, so at memory speed it takes
about half the time; the targets are at most 0.6x float32's time and at most torch's
float16 time.  Every call writes into a preallocated output.
"""

import numpy as np

import cyrelu

from harness import best_times, row

SUITE = "float16"
# the smooth members with an out= kernel in torch (aten) to compare with
SMOOTH = ("elu", "silu", "gelu", "mish", "softplus")


def run(ctx):
    n = 2_000_000
    rounds, min_time = (5, 0.02) if ctx.quick else (11, 0.1)
    torch = ctx.torch
    nt = ctx.threads
    rng = np.random.default_rng(0)
    data = {}
    for dt in (np.float16, np.float32):
        x = rng.standard_normal(n).astype(dt)
        g = rng.standard_normal(n).astype(dt)
        data[dt] = (x, g, np.empty_like(x))
    rows = []
    cases = {}

    def add(case, impl, f, nbytes):
        cases.setdefault(case, []).append((impl, f, nbytes))

    for dt, name in ((np.float16, "float16"), (np.float32, "float32")):
        x, g, y = data[dt]
        nb = x.nbytes
        add(
            "relu n=2e6",
            "cyrelu " + name,
            lambda x=x, y=y: cyrelu.relu(x, out=y, num_threads=nt),
            2 * nb,
        )
        add(
            "leaky_relu n=2e6",
            "cyrelu " + name,
            lambda x=x, y=y: cyrelu.leaky_relu(x, 0.2, out=y, num_threads=nt),
            2 * nb,
        )
        add(
            "relu_backward n=2e6",
            "cyrelu " + name,
            lambda x=x, g=g, y=y: cyrelu.relu_backward(g, x, out=y, num_threads=nt),
            3 * nb,
        )
        add(
            "leaky_relu_backward n=2e6",
            "cyrelu " + name,
            lambda x=x, g=g, y=y: cyrelu.leaky_relu_backward(g, x, 0.2, out=y, num_threads=nt),
            3 * nb,
        )
        x2 = x.reshape(-1, 64)
        add("sparsity n=2e6", "cyrelu " + name, lambda x=x: cyrelu.sparsity(x, num_threads=nt), nb)
        add(
            "dead_units (31250, 64)",
            "cyrelu " + name,
            lambda x2=x2: cyrelu.dead_units(x2, axis=1, num_threads=nt),
            nb,
        )
        if torch is not None:
            tx, tg, ty = (torch.from_numpy(a) for a in (x, g, y))
            add(
                "relu n=2e6",
                "torch " + name,
                lambda tx=tx, ty=ty: torch.clamp_min(tx, 0, out=ty),
                2 * nb,
            )
            lk = torch.ops.aten.leaky_relu.out
            add(
                "leaky_relu n=2e6",
                "torch " + name,
                lambda tx=tx, ty=ty: lk(tx, 0.2, out=ty),
                2 * nb,
            )
            thr = torch.ops.aten.threshold_backward.grad_input
            add(
                "relu_backward n=2e6",
                "torch " + name,
                lambda tg=tg, tx=tx, ty=ty: thr(tg, tx, 0.0, grad_input=ty),
                3 * nb,
            )
            lbw = torch.ops.aten.leaky_relu_backward.grad_input
            add(
                "leaky_relu_backward n=2e6",
                "torch " + name,
                lambda tg=tg, tx=tx, ty=ty: lbw(tg, tx, 0.2, False, grad_input=ty),
                3 * nb,
            )
    # the smooth members (activation_special.h): float16 runs the float kernel on
    # converted tiles, so it should take about float32's time, not a scalar fallback's
    for name in SMOOTH:
        for dt, dname in ((np.float16, "float16"), (np.float32, "float32")):
            x, g, y = data[dt]
            fn = getattr(cyrelu, name)
            add(
                "%s n=2e6" % name,
                "cyrelu " + dname,
                lambda x=x, y=y, fn=fn: fn(x, out=y, num_threads=nt),
                2 * x.nbytes,
            )
            if torch is not None:
                tx, ty = torch.from_numpy(x), torch.from_numpy(y)
                tfn = getattr(torch.ops.aten, name).out
                add(
                    "%s n=2e6" % name,
                    "torch " + dname,
                    lambda tx=tx, ty=ty, tfn=tfn: tfn(tx, out=ty),
                    2 * x.nbytes,
                )
    for case, items in cases.items():
        best = best_times({impl: f for impl, f, _ in items}, rounds=rounds, min_time=min_time)
        for impl, _, nbytes in items:
            rows.append(row(SUITE, case, impl, best[impl], nbytes, n=n, threads=nt))
    return rows
