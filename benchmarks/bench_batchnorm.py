"""BatchNorm benchmark suite: cyrelu against PyTorch (same thread count) and a copy of x.

Cases, all float32: training forward, inference forward, backward (training mode)
and fused BN+ReLU training forward, for
  (32, 64, 56, 56) NCHW            axis=1
  (32, 64, 56, 56) channels-last   the same data stored NHWC: cyrelu gets the
                                   (32, 56, 56, 64) array with axis=-1, torch the
                                   channels_last tensor
  (256, 256, 14, 14) NCHW          axis=1
  (4096, 1024)                     axis=1
The "copy" rows time ``np.copyto`` into a preallocated array (impl "copy") and
torch's ``copy_`` (impl "torch-copy"): the floor a memory-bound kernel is judged by.
"""

import numpy as np

import harness  # benchmarks/ is on sys.path (bench.py puts it there)

import cyrelu

SUITE = "batchnorm"

SHAPES = [
    ("NCHW (32,64,56,56)", (32, 64, 56, 56), False),
    ("NHWC (32,64,56,56)", (32, 64, 56, 56), True),
    ("NCHW (256,256,14,14)", (256, 256, 14, 14), False),
    ("NC (4096,1024)", (4096, 1024), False),
]


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
            x, rm, rv, w, b, True, axis=axis, return_stats=True, num_threads=nt)

        # (case, impl) -> function; bytes moved per case (reads + writes of x-sized arrays)
        fns = {
            ("train fwd", "cyrelu"): lambda: cyrelu.batch_norm(
                x, rm, rv, w, b, True, axis=axis, out=y, num_threads=nt),
            ("train fwd+relu", "cyrelu"): lambda: cyrelu.batch_norm(
                x, rm, rv, w, b, True, axis=axis, activation="relu", out=y, num_threads=nt),
            ("eval fwd", "cyrelu"): lambda: cyrelu.batch_norm(
                x, rm, rv, w, b, False, axis=axis, out=y, num_threads=nt),
            ("backward", "cyrelu"): lambda: cyrelu.batch_norm_backward(
                dy, x, save_mean, save_invstd, w, axis=axis, out=dx, num_threads=nt),
            ("copy", "copy"): lambda: np.copyto(y, x),
        }
        moved = {"train fwd": 2, "train fwd+relu": 2, "eval fwd": 2, "backward": 3}

        if torch is not None:  # same data and thread count (the caller sets set_num_threads)
            F = torch.nn.functional
            xt = torch.from_numpy(x_nc.copy())
            dyt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(dy, -1, 1))
                                   if channels_last else dy.copy())
            if channels_last:
                xt = xt.contiguous(memory_format=torch.channels_last)
                dyt = dyt.contiguous(memory_format=torch.channels_last)
            wt, bt = torch.from_numpy(w), torch.from_numpy(b)
            rmt, rvt = torch.zeros(C), torch.ones(C)
            smt, sit = torch.from_numpy(save_mean), torch.from_numpy(save_invstd)
            yt = torch.empty_like(xt)
            mask = [True, True, True]
            fns.update({
                ("train fwd", "torch"): lambda: F.batch_norm(xt, rmt, rvt, wt, bt, True),
                ("train fwd+relu", "torch"): lambda: F.relu(
                    F.batch_norm(xt, rmt, rvt, wt, bt, True), inplace=True),
                ("eval fwd", "torch"): lambda: F.batch_norm(xt, rmt, rvt, wt, bt, False),
                # the aten kernel autograd calls, with the saved statistics
                ("backward", "torch"): lambda: torch.ops.aten.native_batch_norm_backward(
                    dyt, xt, wt, rmt, rvt, smt, sit, True, 1e-5, mask),
                ("copy", "torch-copy"): lambda: yt.copy_(xt),
            })
            with torch.no_grad():
                best = _measure(ctx, fns)
        else:
            best = _measure(ctx, fns)

        for (case, impl), seconds in best.items():
            if case == "copy":
                continue
            rows.append(harness.row(SUITE, "%s %s" % (case, label), impl, seconds,
                                    moved[case] * nbytes))
        for case in moved:  # the copies, as a row of every case they are compared with
            rows.append(harness.row(SUITE, "%s %s" % (case, label), "copy",
                                    best[("copy", "copy")], 2 * nbytes))
            if torch is not None:
                rows.append(harness.row(SUITE, "%s %s" % (case, label), "torch-copy",
                                        best[("copy", "torch-copy")], 2 * nbytes))
    return rows
