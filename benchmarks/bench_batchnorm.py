"""BatchNorm benchmark suite: cyrelu against PyTorch (same thread count) and a copy of x.

Cases, all float32: training forward, inference forward, backward (training mode)
and fused BN+ReLU training forward, for
  (32, 64, 56, 56) NCHW            axis=1
  (32, 64, 56, 56) channels-last   the same data stored NHWC: cyrelu gets the
                                   (32, 56, 56, 64) array with axis=-1, torch the
                                   channels_last tensor
  (256, 256, 14, 14) NCHW          axis=1
  (4096, 1024)                     axis=1
  (8, 32, 224, 224) NCHW           axis=1: channel slabs (1.6 MB) larger than the L2
  (128, 64)                        axis=1: a small call, whose time is the per-call cost
The "copy" rows time ``np.copyto`` into a preallocated array (impl "copy") and
torch's ``copy_`` (impl "torch-copy"): the floor a memory-bound kernel is judged by.

Every activation with BatchNorm, (32, 64, 56, 56) NCHW float32 (impl "cyrelu-<name>"): the
training forward with ``activation=<name>`` and its backward with ``bias=`` (the derivative
at the pre-activation, recomputed in the backward's own passes: in the loops for the
members of CYR_BN_BACKWARD_LOOP_ACTIVATIONS, through L1 tiles for the smooth ones), and for
the members whose derivative the output gives, the backward with ``output=`` too (impl
"cyrelu-<name>-output"), and for the others, the same backward
composed by hand from the public functions (impl "cyrelu-<name>-composed": the
pre-activation, the activation's backward, BatchNorm's backward), beside BatchNorm alone
(impl "cyrelu") in the same rounds: the ratio to BatchNorm alone is read between rows of
a case ("train fwd+act", "backward+act").

float16 rows, (32, 64, 28, 28) NCHW: training forward, inference and backward with
float16 data (impl "cyrelu-f16", and "torch-f16" where torch runs float16 batch_norm
on the CPU) beside the same cases in float32 ("cyrelu", "torch"), measured in turn in
one run: the float16/float32 ratio is read between rows of a case.
"""

import numpy as np

import cyrelu

import harness  # benchmarks/ is on sys.path (bench.py puts it there)

SUITE = "batchnorm"

SHAPES = [
    ("NCHW (32,64,56,56)", (32, 64, 56, 56), False),
    ("NHWC (32,64,56,56)", (32, 64, 56, 56), True),
    ("NCHW (256,256,14,14)", (256, 256, 14, 14), False),
    ("NC (4096,1024)", (4096, 1024), False),
    ("NCHW (8,32,224,224)", (8, 32, 224, 224), False),
    ("NC (128,64)", (128, 64), False),
]

HALF_SHAPE = ("NCHW (32,64,28,28)", (32, 64, 28, 28))


def _measure(ctx, fns):
    """Best time of each function, the functions taken in turn, round after round (so
    cyrelu, torch and the copies see the same machine load), each round timed with
    ``harness.best_time``."""
    rounds, min_time = (3, 0.01) if ctx.quick else (7, 0.05)
    return harness.best_times(fns, rounds=rounds, min_time=min_time)


def run(ctx):
    nt = ctx.threads
    torch = ctx.torch
    rng = np.random.default_rng(0)
    rows = []
    for label, shape, channels_last in SHAPES:
        C = shape[1]
        x_nc = rng.standard_normal(shape, dtype=np.float32)
        if channels_last:
            x = np.ascontiguousarray(np.moveaxis(x_nc, 1, -1))
            axis = -1
        else:
            x = x_nc
            axis = 1
        nbytes = x.nbytes
        w = rng.standard_normal(C).astype(np.float32)
        b = rng.standard_normal(C).astype(np.float32)
        rm = np.zeros(C, np.float32)
        rv = np.ones(C, np.float32)
        y = np.empty_like(x)
        dy = rng.standard_normal(x.shape, dtype=np.float32)
        dx = np.empty_like(x)
        _, save_mean, save_invstd = cyrelu.batch_norm(
            x, rm, rv, w, b, True, axis=axis, return_stats=True, num_threads=nt
        )

        # (case, impl) -> function; bytes moved per case (reads + writes of x-sized arrays)
        fns = {
            ("train fwd", "cyrelu"): lambda: cyrelu.batch_norm(
                x, rm, rv, w, b, True, axis=axis, out=y, num_threads=nt
            ),
            ("train fwd+relu", "cyrelu"): lambda: cyrelu.batch_norm(
                x, rm, rv, w, b, True, axis=axis, activation="relu", out=y, num_threads=nt
            ),
            ("eval fwd", "cyrelu"): lambda: cyrelu.batch_norm(
                x, rm, rv, w, b, False, axis=axis, out=y, num_threads=nt
            ),
            ("backward", "cyrelu"): lambda: cyrelu.batch_norm_backward(
                dy, x, save_mean, save_invstd, w, axis=axis, out=dx, num_threads=nt
            ),
            ("copy", "copy"): lambda: np.copyto(y, x),
        }
        moved = {"train fwd": 2, "train fwd+relu": 2, "eval fwd": 2, "backward": 3}

        if torch is not None:  # same data and thread count (the caller sets set_num_threads)
            F = torch.nn.functional
            xt = torch.from_numpy(x_nc.copy())
            dyt = torch.from_numpy(
                np.ascontiguousarray(np.moveaxis(dy, -1, 1)) if channels_last else dy.copy()
            )
            if channels_last:
                xt = xt.contiguous(memory_format=torch.channels_last)
                dyt = dyt.contiguous(memory_format=torch.channels_last)
            wt, bt = torch.from_numpy(w), torch.from_numpy(b)
            rmt, rvt = torch.zeros(C), torch.ones(C)
            smt, sit = torch.from_numpy(save_mean), torch.from_numpy(save_invstd)
            yt = torch.empty_like(xt)
            mask = [True, True, True]
            fns.update(
                {
                    ("train fwd", "torch"): lambda: F.batch_norm(xt, rmt, rvt, wt, bt, True),
                    ("train fwd+relu", "torch"): lambda: F.relu(
                        F.batch_norm(xt, rmt, rvt, wt, bt, True), inplace=True
                    ),
                    ("eval fwd", "torch"): lambda: F.batch_norm(xt, rmt, rvt, wt, bt, False),
                    # the aten kernel autograd calls, with the saved statistics
                    ("backward", "torch"): lambda: torch.ops.aten.native_batch_norm_backward(
                        dyt, xt, wt, rmt, rvt, smt, sit, True, 1e-5, mask
                    ),
                    ("copy", "torch-copy"): lambda: yt.copy_(xt),
                }
            )
            with torch.no_grad():
                best = _measure(ctx, fns)
        else:
            best = _measure(ctx, fns)

        for (case, impl), seconds in best.items():
            if case == "copy":
                continue
            rows.append(
                harness.row(SUITE, "%s %s" % (case, label), impl, seconds, moved[case] * nbytes)
            )
        for case in moved:  # the copies, as a row of every case they are compared with
            rows.append(
                harness.row(
                    SUITE, "%s %s" % (case, label), "copy", best[("copy", "copy")], 2 * nbytes
                )
            )
            if torch is not None:
                rows.append(
                    harness.row(
                        SUITE,
                        "%s %s" % (case, label),
                        "torch-copy",
                        best[("copy", "torch-copy")],
                        2 * nbytes,
                    )
                )
    rows.extend(_activation_rows(ctx, rng))
    rows.extend(_half_rows(ctx, rng))
    return rows


def _activation_rows(ctx, rng):
    """BatchNorm with each activation of the table against BatchNorm alone, forward and
    backward, on one shape."""
    from cyrelu import _activation_table, _bn_activation

    nt = ctx.threads
    label, shape = "NCHW (32,64,56,56)", (32, 64, 56, 56)
    C = shape[1]
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    w = rng.uniform(0.5, 2, C).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    y, dx, z = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    _, sm, si = cyrelu.batch_norm(x, None, None, w, b, True, return_stats=True)
    fwd = {"cyrelu": lambda: cyrelu.batch_norm(x, None, None, w, b, True, out=y, num_threads=nt)}
    bwd = {"cyrelu": lambda: cyrelu.batch_norm_backward(dy, x, sm, si, w, out=dx, num_threads=nt)}
    for name in _activation_table.NAMES:
        out = cyrelu.batch_norm(x, None, None, w, b, True, activation=name)
        fwd["cyrelu-" + name] = lambda name=name: cyrelu.batch_norm(
            x, None, None, w, b, True, activation=name, out=y, num_threads=nt
        )
        sources = {"cyrelu-" + name: {"bias": b}}
        if _activation_table.TABLE[name].from_output or _bn_activation.result_gate(
            name, (), out
        ):  # the derivative read from the output (elu, celu, selu: the result gate)
            sources["cyrelu-%s-output" % name] = {"output": out}
        for impl, src in sources.items():
            bwd[impl] = lambda name=name, src=src: cyrelu.batch_norm_backward(
                dy, x, sm, si, w, activation=name, out=dx, num_threads=nt, **src
            )
        if name not in _activation_table.BN_BACKWARD:  # bias= only: beside it, composed
            bwd["cyrelu-%s-composed" % name] = lambda name=name: _composed_backward(
                name, dy, x, sm, si, w, b, z, dx, nt
            )
    rows = []
    for case, fns, moved in (("train fwd+act", fwd, 2), ("backward+act", bwd, 3)):
        for impl, seconds in _measure(ctx, fns).items():
            rows.append(
                harness.row(SUITE, "%s %s" % (case, label), impl, seconds, moved * x.nbytes)
            )
    return rows


def _composed_backward(name, dy, x, sm, si, w, b, z, dx, nt, axis=1):
    """The backward through ``name`` composed by hand from the public functions, as
    without the fused kernels: the pre-activation (the forward without the activation,
    in evaluation mode with the saved statistics as running ones: var = 1/invstd^2 - eps),
    the activation's backward over it in place, then BatchNorm's backward."""
    rv = 1.0 / (si * si) - 1e-5
    cyrelu.batch_norm(x, sm, rv, w, b, False, axis=axis, out=z, num_threads=nt)
    getattr(cyrelu, name + "_backward")(dy, z, out=z, num_threads=nt)
    return cyrelu.batch_norm_backward(z, x, sm, si, w, axis=axis, out=dx, num_threads=nt)


def _torch_half_ok(torch, F, xt, wt, bt):
    """Whether this torch runs float16 batch_norm (forward and backward) on the CPU."""
    try:
        x = xt[:2].clone().requires_grad_(True)
        F.batch_norm(x, None, None, wt, bt, True).sum().backward()
        return True
    except (RuntimeError, TypeError):
        return False


def _half_rows(ctx, rng):
    """float16 beside float32 on one shape: training forward, inference, backward."""
    nt = ctx.threads
    torch = ctx.torch
    label, shape = HALF_SHAPE
    C = shape[1]
    x32 = rng.standard_normal(shape, dtype=np.float32)
    dy32 = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal(C).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    fns = {}
    for impl, dt in (("cyrelu", np.float32), ("cyrelu-f16", np.float16)):
        x, dy = x32.astype(dt), dy32.astype(dt)
        y, dx = np.empty_like(x), np.empty_like(x)
        rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
        _, sm, si = cyrelu.batch_norm(x, rm, rv, w, b, True, return_stats=True, num_threads=nt)
        fns[("train fwd", impl)] = lambda x=x, y=y, rm=rm, rv=rv: cyrelu.batch_norm(
            x, rm, rv, w, b, True, out=y, num_threads=nt
        )
        fns[("eval fwd", impl)] = lambda x=x, y=y, rm=rm, rv=rv: cyrelu.batch_norm(
            x, rm, rv, w, b, False, out=y, num_threads=nt
        )
        fns[("backward", impl)] = lambda x=x, dy=dy, dx=dx, sm=sm, si=si: (
            cyrelu.batch_norm_backward(dy, x, sm, si, w, out=dx, num_threads=nt)
        )
    if torch is not None:
        F = torch.nn.functional
        wt, bt = torch.from_numpy(w), torch.from_numpy(b)
        for impl, tdt in (("torch", torch.float32), ("torch-f16", torch.float16)):
            xt = torch.from_numpy(x32).to(tdt)
            dyt = torch.from_numpy(dy32).to(tdt)
            if tdt == torch.float16 and not _torch_half_ok(torch, F, xt, wt, bt):
                continue
            rmt, rvt = torch.zeros(C), torch.ones(C)
            _, smt, sit = torch.ops.aten.native_batch_norm(xt, wt, bt, rmt, rvt, True, 0.1, 1e-5)
            fns[("train fwd", impl)] = lambda xt=xt, rmt=rmt, rvt=rvt: F.batch_norm(
                xt, rmt, rvt, wt, bt, True
            )
            fns[("eval fwd", impl)] = lambda xt=xt, rmt=rmt, rvt=rvt: F.batch_norm(
                xt, rmt, rvt, wt, bt, False
            )
            fns[("backward", impl)] = lambda xt=xt, dyt=dyt, rmt=rmt, rvt=rvt, smt=smt, sit=sit: (
                torch.ops.aten.native_batch_norm_backward(
                    dyt, xt, wt, rmt, rvt, smt, sit, True, 1e-5, [True, True, True]
                )
            )
        with torch.no_grad():
            best = _measure(ctx, fns)
    else:
        best = _measure(ctx, fns)
    moved = {"train fwd": 2, "eval fwd": 2, "backward": 3}
    rows = []
    for (case, impl), seconds in best.items():
        itemsize = 2 if impl.endswith("f16") else 4
        rows.append(
            harness.row(
                SUITE,
                "%s f16-vs-f32 %s" % (case, label),
                impl,
                seconds,
                moved[case] * itemsize * x32.size,
            )
        )
    return rows
