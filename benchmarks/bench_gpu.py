"""GPU benchmark suite: cyrelu's CuPy kernels against cupy.maximum, torch CUDA and a
device-to-device copy of the same bytes, timed with CUDA events.

``run(ctx)`` returns rows (``harness.row``) for ``bench.py --gpu``; ``python
benchmarks/bench_gpu.py [--quick] [--json PATH]`` runs it standalone and prints the rows,
the ratios and the issue's targets:

  * relu, float32, n = 1e8: within 1.1x of the copy's time
  * BatchNorm training forward and backward: at most torch's time (cuDNN)

Rows named "cyrelu" write into a preallocated ``out=`` (as the copy does); "cyrelu (new
array)" allocates its result from CuPy's memory pool.  Each row's ``seconds`` is the best
per-call time over several batches of calls, measured
between two CUDA events on the stream the work runs on (CuPy's and torch's current
streams), so host overhead counts only where it keeps the GPU idle.
"""

import argparse
import json
import os
import sys

try:  # run as a suite from bench.py (benchmarks/ on sys.path) or as a file
    from harness import row
except ImportError:
    try:  # imported as benchmarks.bench_gpu from the repository root
        from benchmarks.harness import row
    except ImportError:  # python -P benchmarks/bench_gpu.py
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from harness import row

SUITE = "gpu"


# ---- timing --------------------------------------------------------------------------


def _cupy_timer(cupy):
    def elapsed(fn, number):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        return cupy.cuda.get_elapsed_time(start, end) / 1e3

    return elapsed


def _torch_timer(torch):
    def elapsed(fn, number):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    return elapsed


def gpu_time(elapsed, fn, *, min_time=0.05, repeats=7, max_number=10000):
    """Best per-call seconds of fn() over ``repeats`` batches, each batch lasting at least
    min_time / repeats (the number of calls per batch is calibrated first)."""
    fn()
    elapsed(fn, 1)  # warm-up: kernel compilation, allocator pools, clocks
    number = 1
    while number < max_number:
        if elapsed(fn, number) >= min_time / repeats:
            break
        number *= 2
    return min(elapsed(fn, number) / number for _ in range(repeats))


# ---- the suite -----------------------------------------------------------------------


def _device_name(cupy):
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def _torch_cuda(ctx):
    torch = getattr(ctx, "torch", None)
    if torch is None:
        try:
            import torch
        except ImportError:
            return None
    try:
        return torch if torch.cuda.is_available() else None
    except Exception:
        return None


def _bn_functions():
    import cyrelu

    fwd = getattr(cyrelu, "batch_norm", None)
    bwd = getattr(cyrelu, "batch_norm_backward", None)
    if fwd is None or bwd is None:  # the CPU BatchNorm has not landed: call the backend
        import cyrelu.cuda as gpu

        return gpu.batch_norm, gpu.batch_norm_backward
    return fwd, bwd


def run(ctx):
    import cupy
    import numpy as np

    import cyrelu

    quick = bool(getattr(ctx, "quick", False))
    smoke = bool(getattr(ctx, "smoke", False))  # tiny sizes: checks the suite runs
    torch = _torch_cuda(ctx)
    ce = _cupy_timer(cupy)
    te = _torch_timer(torch) if torch is not None else None
    tkw = dict(min_time=0.02 if quick else 0.1, repeats=5 if quick else 9)
    if smoke:
        tkw = dict(min_time=0.0, repeats=1, max_number=1)
    dev = _device_name(cupy)
    rows = []

    def add(case, impl, seconds, nbytes, **extra):
        rows.append(row(SUITE, case, impl, seconds, nbytes, device=dev, **extra))

    rs = cupy.random.RandomState(0)

    # -- elementwise -------------------------------------------------------------------
    sizes = [10**8, 10**6] if quick else [10**8, 10**7, 10**6, 10**5]
    if smoke:
        sizes = [10**4]
    for n in sizes:
        label = "1e%d" % round(np.log10(n))
        for dtype in (
            [np.float32] if quick and n != 10**8 and not smoke else [np.float32, np.float16]
        ):
            dn = np.dtype(dtype).name
            x = rs.standard_normal(n, dtype=np.float32).astype(dtype)
            g = rs.standard_normal(n, dtype=np.float32).astype(dtype)
            y = cupy.empty_like(x)
            nb = 2 * x.nbytes
            case = "relu n=%s %s" % (label, dn)
            add(case, "cyrelu", gpu_time(ce, lambda: cyrelu.relu(x, out=y), **tkw), nb)
            add(case, "cyrelu (new array)", gpu_time(ce, lambda: cyrelu.relu(x), **tkw), nb)
            add(case, "cupy.maximum", gpu_time(ce, lambda: cupy.maximum(x, 0, out=y), **tkw), nb)
            add(
                case,
                "copy (D2D memcpy)",
                gpu_time(ce, lambda: y.data.copy_from_device_async(x.data, x.nbytes), **tkw),
                nb,
            )
            if torch is not None:
                xt = torch.as_tensor(x, device="cuda")
                add(case, "torch.relu", gpu_time(te, lambda: torch.relu(xt), **tkw), nb)
            if (n == 10**8 or smoke) and dtype == np.float32:
                case = "leaky_relu n=%s %s" % (label, dn)
                add(
                    case,
                    "cyrelu",
                    gpu_time(ce, lambda: cyrelu.leaky_relu(x, 0.01, out=y), **tkw),
                    nb,
                )
                if torch is not None:
                    add(
                        case,
                        "torch leaky_relu",
                        gpu_time(te, lambda: torch.nn.functional.leaky_relu(xt, 0.01), **tkw),
                        nb,
                    )
                case = "relu_backward n=%s %s" % (label, dn)
                nb3 = 3 * x.nbytes
                add(
                    case,
                    "cyrelu",
                    gpu_time(ce, lambda: cyrelu.relu_backward(g, x, out=y), **tkw),
                    nb3,
                )
                if torch is not None:
                    gt = torch.as_tensor(g, device="cuda")
                    add(
                        case,
                        "torch threshold_backward",
                        gpu_time(te, lambda: torch.ops.aten.threshold_backward(gt, xt, 0), **tkw),
                        nb3,
                    )
                    del gt
            x = g = y = None  # frees the device memory before the next size
            if torch is not None:
                xt = None
                torch.cuda.empty_cache()
            cupy.get_default_memory_pool().free_all_blocks()

    # -- BatchNorm ---------------------------------------------------------------------
    bn, bn_backward = _bn_functions()
    shapes = [(32, 64, 112, 112), (64, 256, 28, 28)]
    if not quick:
        shapes += [(256, 512, 7, 7), (128, 64, 56, 56)]
    if smoke:
        shapes = [(4, 8, 4, 6)]
    layouts = ["NCHW", "NHWC"]
    for shape in shapes:
        N, C, H, W = shape
        for layout in layouts:
            if layout == "NCHW":
                x = rs.standard_normal(shape, dtype=np.float32)
                axis = 1
            else:
                x = rs.standard_normal((N, H, W, C), dtype=np.float32)
                axis = -1
            dy = rs.standard_normal(x.shape, dtype=np.float32)
            w = rs.standard_normal(C, dtype=np.float32)
            b = rs.standard_normal(C, dtype=np.float32)
            rm = cupy.zeros(C, dtype=np.float32)
            rv = cupy.ones(C, dtype=np.float32)
            y = cupy.empty_like(x)
            gi = cupy.empty_like(x)
            tag = "%s %s float32" % ("x".join(map(str, shape)), layout)
            nb_fwd = 3 * x.nbytes  # read twice (stats, normalise), write once
            nb_bwd = 5 * x.nbytes  # dy, x read twice, dx written
            add(
                "batch_norm train fwd " + tag,
                "cyrelu",
                gpu_time(ce, lambda: bn(x, rm, rv, w, b, True, axis=axis, out=y), **tkw),
                nb_fwd,
            )
            add(
                "batch_norm eval fwd " + tag,
                "cyrelu",
                gpu_time(ce, lambda: bn(x, rm, rv, w, b, False, axis=axis, out=y), **tkw),
                2 * x.nbytes,
            )
            _, sm, si = bn(x, rm, rv, w, b, True, axis=axis, return_stats=True)
            add(
                "batch_norm train bwd " + tag,
                "cyrelu",
                gpu_time(
                    ce,
                    lambda: bn_backward(dy, x, sm, si, w, training=True, axis=axis, out=gi),
                    **tkw,
                ),
                nb_bwd,
            )
            # the backward from bias=: the activation's derivative at the pre-activation
            # the two kernels recompute (the same bytes as the plain backward)
            for act in ("relu", "gelu"):
                add(
                    "batch_norm train bwd+%s(bias=) %s" % (act, tag),
                    "cyrelu",
                    gpu_time(
                        ce,
                        lambda act=act: bn_backward(
                            dy,
                            x,
                            sm,
                            si,
                            w,
                            training=True,
                            axis=axis,
                            activation=act,
                            bias=b,
                            out=gi,
                        ),
                        **tkw,
                    ),
                    nb_bwd,
                )
            add(
                "batch_norm train fwd+relu " + tag,
                "cyrelu",
                gpu_time(
                    ce,
                    lambda: bn(x, rm, rv, w, b, True, axis=axis, activation="relu", out=y),
                    **tkw,
                ),
                nb_fwd,
            )
            if torch is not None:
                F = torch.nn.functional
                if layout == "NCHW":
                    xt = torch.as_tensor(x, device="cuda")
                    dyt = torch.as_tensor(dy, device="cuda")
                else:  # the same bytes as an NCHW-shaped channels_last tensor
                    xt = torch.as_tensor(x, device="cuda").permute(0, 3, 1, 2)
                    dyt = torch.as_tensor(dy, device="cuda").permute(0, 3, 1, 2)
                wt, bt = torch.as_tensor(w, device="cuda"), torch.as_tensor(b, device="cuda")
                rmt, rvt = torch.zeros_like(wt), torch.ones_like(wt)
                add(
                    "batch_norm train fwd " + tag,
                    "torch F.batch_norm",
                    gpu_time(
                        te, lambda: F.batch_norm(xt, rmt, rvt, wt, bt, True, 0.1, 1e-5), **tkw
                    ),
                    nb_fwd,
                )
                add(
                    "batch_norm eval fwd " + tag,
                    "torch F.batch_norm",
                    gpu_time(
                        te, lambda: F.batch_norm(xt, rmt, rvt, wt, bt, False, 0.1, 1e-5), **tkw
                    ),
                    2 * x.nbytes,
                )
                fn, impl = _torch_bn_backward(torch, xt, wt, bt, rmt, rvt, dyt)
                add("batch_norm train bwd " + tag, impl, gpu_time(te, fn, **tkw), nb_bwd)
                add(
                    "batch_norm train fwd+relu " + tag,
                    "torch F.batch_norm + relu_",
                    gpu_time(
                        te,
                        lambda: F.batch_norm(xt, rmt, rvt, wt, bt, True, 0.1, 1e-5).relu_(),
                        **tkw,
                    ),
                    nb_fwd,
                )
                del xt, dyt, fn
                torch.cuda.empty_cache()
            x = dy = y = gi = None  # frees the device memory before the next shape
            cupy.get_default_memory_pool().free_all_blocks()
    return rows


def _torch_bn_backward(torch, xt, wt, bt, rmt, rvt, dyt):
    """torch's BatchNorm backward as one call: cuDNN's where available, else the native
    kernel (what autograd would run after F.batch_norm)."""
    try:
        out = torch.ops.aten.cudnn_batch_norm(xt, wt, bt, rmt, rvt, True, 0.1, 1e-5)
        _, sm, sv, reserve = out
        dyc = dyt.contiguous(memory_format=torch.channels_last) if not dyt.is_contiguous() else dyt

        def fn():
            return torch.ops.aten.cudnn_batch_norm_backward(
                xt, dyc, wt, rmt, rvt, sm, sv, 1e-5, reserve
            )

        fn()
        torch.cuda.synchronize()
        return fn, "torch cudnn_batch_norm_backward"
    except Exception:
        _, sm, si = torch.ops.aten.native_batch_norm(xt, wt, bt, rmt, rvt, True, 0.1, 1e-5)

        def fn():
            return torch.ops.aten.native_batch_norm_backward(
                dyt, xt, wt, rmt, rvt, sm, si, True, 1e-5, [True, True, True]
            )

        return fn, "torch native_batch_norm_backward"


# ---- report --------------------------------------------------------------------------

TARGETS = [
    # (case prefix, our impl, reference impl, max ratio)
    ("relu n=1e8 float32", "cyrelu", "copy (D2D memcpy)", 1.1),
    ("batch_norm train fwd ", "cyrelu", "torch F.batch_norm", 1.0),
    ("batch_norm train bwd ", "cyrelu", "torch ", 1.0),
]


def targets(rows):
    """[(case, ours_s, ref_impl, ref_s, ratio, limit, ok)] for every targeted case."""
    out = []
    by_case = {}
    for r in rows:
        by_case.setdefault(r["case"], []).append(r)
    for case, rs in by_case.items():
        for prefix, ours, ref, limit in TARGETS:
            if not case.startswith(prefix):
                continue
            mine = [r for r in rs if r["impl"] == ours]
            refs = [r for r in rs if r["impl"].startswith(ref)]
            if mine and refs:
                ratio = mine[0]["seconds"] / refs[0]["seconds"]
                out.append(
                    (
                        case,
                        mine[0]["seconds"],
                        refs[0]["impl"],
                        refs[0]["seconds"],
                        ratio,
                        limit,
                        ratio <= limit,
                    )
                )
    return out


def format_rows(rows):
    lines = ["%-46s %-34s %11s %9s" % ("case", "impl", "time", "GB/s")]
    for r in rows:
        gbs = r.get("bytes", 0) / r["seconds"] / 1e9 if r.get("bytes") else float("nan")
        lines.append("%-46s %-34s %9.1fus %9.0f" % (r["case"], r["impl"], r["seconds"] * 1e6, gbs))
    lines.append("")
    lines.append("targets:")
    for case, mine, ref, refs, ratio, limit, ok in targets(rows):
        lines.append(
            "  %-46s %8.1fus vs %-32s %8.1fus  ratio %.3f (<= %.2f) %s"
            % (case, mine * 1e6, ref, refs * 1e6, ratio, limit, "OK" if ok else "MISSED")
        )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer cases, shorter timing")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, one call each: only checks that the suite runs",
    )
    p.add_argument("--json", help="also write the rows (and targets) to this JSON file")
    args = p.parse_args(argv)

    class _Ctx:
        quick = args.quick or args.smoke
        smoke = args.smoke
        threads = None
        torch = None
        gpu = True

    rows = run(_Ctx())
    text = format_rows(rows)
    print(text)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "rows": rows,
                    "targets": [
                        dict(
                            zip(
                                (
                                    "case",
                                    "seconds",
                                    "ref_impl",
                                    "ref_seconds",
                                    "ratio",
                                    "limit",
                                    "ok",
                                ),
                                t,
                                strict=True,
                            )
                        )
                        for t in targets(rows)
                    ],
                },
                fh,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
