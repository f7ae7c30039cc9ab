"""Dask benchmark suite: cyrelu on a 2-worker dask.distributed LocalCluster (one thread
per worker process) against the single-process NumPy path on the same data.

Cases, all float32:
  relu                      512 MB (quick; 1 GB with --full) in chunks of 1, 16 and 64 MB
  BatchNorm training fwd    (640, 64, 56, 56) NCHW (1280 with --full), chunks of 20 and 80
                            samples (16 and 64 MB): the statistics pass (computed in the
                            call) and the normalisation of y
  BatchNorm backward        the same data: the sums pass (in the call) and grad_input

Rows: "cyrelu" is the single-process NumPy path with the threads of the run (by default
every core: the same cores the two workers share), "cyrelu 1 thread" the same with one
thread (both allocate their output, as every chunk on the cluster does), "dask 2w x 1t"
the graph on the cluster, its inputs generated and persisted on the workers beforehand and
its outputs persisted there (nothing is gathered).  The
per-chunk overhead is the worker time beyond the single-thread kernel time, per chunk:
(2 * t_dask - t_1thread) / chunks.
"""

import logging

import numpy as np

import cyrelu

SUITE = "dask"
MB = 1_000_000


def _best(fn, repeats):
    import time

    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _same(block):
    return block


def _best_on_cluster(distributed, make, inputs, repeats):
    """Best time of building ``make(*inputs)``'s graph and computing its results into
    worker memory (persist, then wait).  Each repeat sees the inputs under new names
    (an identity step that dask fuses into the first task of each chunk), so that it
    computes everything again rather than finding the last repeat's results."""
    import time
    import uuid

    best = float("inf")
    for _ in range(repeats):
        fresh = [
            a.map_blocks(_same, dtype=a.dtype, meta=a._meta, token=uuid.uuid4().hex)
            for a in inputs
        ]
        t0 = time.perf_counter()
        out = make(*fresh)
        outs = out if isinstance(out, tuple) else (out,)
        lazy = [o.persist() for o in outs if hasattr(o, "persist")]
        distributed.wait(lazy)
        best = min(best, time.perf_counter() - t0)
        del lazy, outs, out
    return best


def run(ctx):
    try:
        import dask.array as da
        import distributed
    except ImportError as exc:  # the suite needs the dask extra
        print("suite dask not available: %s (pip install '.[dask]')" % exc)
        return []
    repeats = 3 if ctx.quick else 5
    rows = []
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        memory_limit=0,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster)
    try:
        rows += _relu(ctx, da, distributed, client, repeats)
        rows += _batchnorm(ctx, da, distributed, client, repeats)
    finally:
        client.close()
        cluster.close()
    return rows


def _relu(ctx, da, distributed, client, repeats):
    n = (512 if ctx.quick else 1024) * MB // 4
    nbytes = 2 * n * 4
    t_all, t_one = _relu_in_memory(n, ctx.threads, repeats)
    rows = []
    for chunk_mb in (1, 16, 64):
        case = "relu %d MB, %d MB chunks" % (n * 4 // MB, chunk_mb)
        x = (
            da.random.default_rng(0)
            .standard_normal(n, chunks=chunk_mb * MB // 4, dtype=np.float32)
            .persist()
        )
        distributed.wait(x)
        t = _best_on_cluster(distributed, cyrelu.relu, [x], repeats)
        chunks = x.npartitions
        del x
        rows += [
            {"suite": SUITE, "case": case, "impl": "cyrelu", "seconds": t_all, "bytes": nbytes},
            {
                "suite": SUITE,
                "case": case,
                "impl": "cyrelu 1 thread",
                "seconds": t_one,
                "bytes": nbytes,
            },
            {
                "suite": SUITE,
                "case": case,
                "impl": "dask 2w x 1t",
                "seconds": t,
                "bytes": nbytes,
                "chunks": chunks,
                "overhead_per_chunk": (2 * t - t_one) / chunks,
            },
        ]
    _print_overheads(rows)
    return rows


def _relu_in_memory(n, threads, repeats):
    """The single-process times (all threads, one thread): a new output array each
    call, as on the cluster, whose chunks are new arrays."""
    xn = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    return (
        _best(lambda: cyrelu.relu(xn, num_threads=threads), repeats),
        _best(lambda: cyrelu.relu(xn, num_threads=1), repeats),
    )


def _batchnorm_in_memory(shape, threads, repeats):
    """The single-process times of the training forward and the backward, and the
    statistics the backward takes."""
    rng = np.random.default_rng(1)
    xn = rng.standard_normal(shape, dtype=np.float32)
    gn = rng.standard_normal(shape, dtype=np.float32)
    C = shape[1]
    rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
    _, mean, invstd = cyrelu.batch_norm(xn, rm, rv, training=True, return_stats=True)
    times = {}
    for impl, nt in (("cyrelu", threads), ("cyrelu 1 thread", 1)):
        times["fwd", impl] = _best(
            lambda nt=nt: cyrelu.batch_norm(xn, rm, rv, training=True, num_threads=nt), repeats
        )
        times["bwd", impl] = _best(
            lambda nt=nt: cyrelu.batch_norm_backward(gn, xn, mean, invstd, num_threads=nt), repeats
        )
    return times, mean, invstd


def _batchnorm(ctx, da, distributed, client, repeats):
    N, C, H, W = (640 if ctx.quick else 1280), 64, 56, 56
    base, mean, invstd = _batchnorm_in_memory((N, C, H, W), ctx.threads, repeats)
    rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
    rows = []
    for samples in (20, 80):
        chunk_mb = samples * C * H * W * 4 // MB
        r = da.random.default_rng(2)
        x = r.standard_normal((N, C, H, W), chunks=(samples, C, H, W), dtype=np.float32).persist()
        g = r.standard_normal((N, C, H, W), chunks=(samples, C, H, W), dtype=np.float32).persist()
        distributed.wait([x, g])
        for kind, make, inputs, traffic in (
            ("train fwd", lambda x: cyrelu.batch_norm(x, rm, rv, training=True), [x], 3),
            ("stats pass", lambda x: _statistics_only(x, rm, rv), [x], 1),
            ("backward", lambda g, x: cyrelu.batch_norm_backward(g, x, mean, invstd), [g, x], 5),
        ):
            case = "BN %s (%d,64,56,56), %d MB chunks" % (kind, N, chunk_mb)
            t = _best_on_cluster(distributed, make, inputs, repeats)
            nbytes = traffic * x.nbytes
            key = "bwd" if kind == "backward" else "fwd"
            if kind != "stats pass":
                rows += [
                    {
                        "suite": SUITE,
                        "case": case,
                        "impl": impl,
                        "seconds": base[key, impl],
                        "bytes": nbytes,
                    }
                    for impl in ("cyrelu", "cyrelu 1 thread")
                ]
            rows.append(
                {
                    "suite": SUITE,
                    "case": case,
                    "impl": "dask 2w x 1t",
                    "seconds": t,
                    "bytes": nbytes,
                    "chunks": x.npartitions,
                    "overhead_per_chunk": (2 * t - base[key, "cyrelu 1 thread"]) / x.npartitions
                    if kind != "stats pass"
                    else None,
                }
            )
        del x, g
    _print_overheads(rows)
    return rows


def _statistics_only(x, rm, rv):
    """The training call alone: its pass over x (y's graph is built, not computed)."""
    cyrelu.batch_norm(x, rm, rv, training=True)


def _print_overheads(rows):
    for r in rows:
        if r.get("overhead_per_chunk") is not None:
            print(
                "%-44s %d chunks, per-chunk overhead %.2f ms (worker time beyond the "
                "1-thread kernel time)" % (r["case"], r["chunks"], r["overhead_per_chunk"] * 1e3)
            )
    print()
