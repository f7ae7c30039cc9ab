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

try:  # run as part of the package (benchmarks.bench) or as a script from benchmarks/
    from benchmarks import harness
except ImportError:  # pragma: no cover
    import harness  # type: ignore[no-redef]

import cyrelu

SUITE = "batchnorm"

SHAPES = [
    ("NCHW (32,64,56,56)", (32, 64, 56, 56), False),
    ("NHWC (32,64,56,56)", (32, 64, 56, 56), True),
    ("NCHW (256,256,14,14)", (256, 256, 14, 14), False),
    ("NC (4096,1024)", (4096, 1024), False),
]


def _timer(ctx):
    if ctx.quick:
        return lambda fn: harness.best_time(fn, min_time=0.02, repeats=3)
    return lambda fn: harness.best_time(fn, min_time=0.2, repeats=7)


def run(ctx):
    timed = _timer(ctx)
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

        def case(name):
            return "%s %s" % (name, label)

        # ---- cyrelu
        rows.append(harness.row(SUITE, case("train fwd"), "cyrelu", timed(
            lambda: cyrelu.batch_norm(x, rm, rv, w, b, True, axis=axis, out=y,
                                      num_threads=nt)), 2 * nbytes))
        rows.append(harness.row(SUITE, case("train fwd+relu"), "cyrelu", timed(
            lambda: cyrelu.batch_norm(x, rm, rv, w, b, True, axis=axis, activation="relu",
                                      out=y, num_threads=nt)), 2 * nbytes))
        rows.append(harness.row(SUITE, case("eval fwd"), "cyrelu", timed(
            lambda: cyrelu.batch_norm(x, rm, rv, w, b, False, axis=axis, out=y,
                                      num_threads=nt)), 2 * nbytes))
        rows.append(harness.row(SUITE, case("backward"), "cyrelu", timed(
            lambda: cyrelu.batch_norm_backward(dy, x, save_mean, save_invstd, w, axis=axis,
                                               out=dx, num_threads=nt)), 3 * nbytes))
        copy_t = timed(lambda: np.copyto(y, x))
        for name in ("train fwd", "train fwd+relu", "eval fwd", "backward"):
            rows.append(harness.row(SUITE, case(name), "copy", copy_t, 2 * nbytes))

        # ---- torch, same data and thread count (the caller sets torch.set_num_threads)
        if torch is not None:
            F = torch.nn.functional
            xt = torch.from_numpy(x_nc.copy())
            if channels_last:
                xt = xt.contiguous(memory_format=torch.channels_last)
            wt, bt = torch.from_numpy(w), torch.from_numpy(b)
            rmt, rvt = torch.zeros(C), torch.ones(C)
            yt = torch.empty_like(xt)
            with torch.no_grad():
                rows.append(harness.row(SUITE, case("train fwd"), "torch", timed(
                    lambda: F.batch_norm(xt, rmt, rvt, wt, bt, True)), 2 * nbytes))
                rows.append(harness.row(SUITE, case("train fwd+relu"), "torch", timed(
                    lambda: F.relu(F.batch_norm(xt, rmt, rvt, wt, bt, True), inplace=True)),
                    2 * nbytes))
                rows.append(harness.row(SUITE, case("eval fwd"), "torch", timed(
                    lambda: F.batch_norm(xt, rmt, rvt, wt, bt, False)), 2 * nbytes))
                tcopy = timed(lambda: yt.copy_(xt))
            for name in ("train fwd", "train fwd+relu", "eval fwd", "backward"):
                rows.append(harness.row(SUITE, case(name), "torch-copy", tcopy, 2 * nbytes))
            # backward: the aten kernel autograd calls, with the saved statistics
            dyt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(dy, -1, 1))
                                   if channels_last else dy.copy())
            if channels_last:
                dyt = dyt.contiguous(memory_format=torch.channels_last)
            smt, sit = torch.from_numpy(save_mean), torch.from_numpy(save_invstd)
            mask = [True, True, True]
            rows.append(harness.row(SUITE, case("backward"), "torch", timed(
                lambda: torch.ops.aten.native_batch_norm_backward(
                    dyt, xt, wt, rmt, rvt, smt, sit, True, 1e-5, mask)), 3 * nbytes))
    return rows
