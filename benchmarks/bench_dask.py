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

relu is also run on a second cluster whose workers keep the memory of freed chunks
(``WORKER_MEMORY_KEPT``, set as docs/dask.md tells users to: "dask 2w x 1t, reuse"), and,
for comparison with it, in a single process that reuses one output array ("cyrelu, out=
reused"): both skip the system's zeroing of fresh pages, which the other rows pay.  For
every cluster case the CPU time per chunk is printed, split into the workers' user and
system time and this process's (the client and the scheduler): on 2 vCPUs shared by all
of them, that is where the time beyond the kernels goes.
"""

import numpy as np

import cyrelu

SUITE = "dask"
MB = 1_000_000
GiB = 1 << 30

# docs/dask.md, "Worker memory": one malloc arena, no mmap'd chunks and no trimming below
# 4 GiB, so that a worker hands the memory of freed chunks to the next ones instead of
# unmapping it and zeroing fresh pages for every new chunk
WORKER_MEMORY_KEPT = {
    "distributed.nanny.pre-spawn-environ.MALLOC_ARENA_MAX": 1,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_MAX_": 0,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 4 * GiB,
}


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


def _worker_times():
    import os

    return os.times()[:2]


def _cpu_seconds(client):
    """CPU seconds so far: the workers' user and system time (summed over the worker
    processes) and this process's user + system time (the client and the scheduler)."""
    import os

    workers = client.run(_worker_times).values()
    own = os.times()
    return (
        sum(t[0] for t in workers),
        sum(t[1] for t in workers),
        own[0] + own[1],
    )


def _best_on_cluster(distributed, client, make, inputs, repeats):
    """Best time of building ``make(*inputs)``'s graph and computing its results into
    worker memory (persist, then wait), and the mean CPU seconds of a repeat (workers'
    user, workers' system, client and scheduler), after one repeat that is not counted
    (the workers' first calls import cyrelu, and memory they keep is then in place).
    Each repeat sees the inputs under new names (an identity step that dask fuses into
    the first task of each chunk), so that it computes everything again rather than
    finding the last repeat's results."""
    import time
    import uuid

    best = float("inf")
    cpu = [0.0, 0.0, 0.0]
    for i in range(repeats + 1):
        fresh = [
            a.map_blocks(_same, dtype=a.dtype, meta=a._meta, token=uuid.uuid4().hex)
            for a in inputs
        ]
        before = _cpu_seconds(client)
        t0 = time.perf_counter()
        out = make(*fresh)
        outs = out if isinstance(out, tuple) else (out,)
        lazy = [o.persist() for o in outs if hasattr(o, "persist")]
        distributed.wait(lazy)
        elapsed = time.perf_counter() - t0
        after = _cpu_seconds(client)
        del lazy, outs, out
        if i == 0:
            continue
        best = min(best, elapsed)
        cpu = [c + (a - b) / repeats for c, a, b in zip(cpu, after, before, strict=True)]
    return best, cpu


def _start_cluster(distributed):
    """A 2-worker LocalCluster (one thread per worker process) and its client.  Starting
    a worker writes the nanny's pre-spawn settings into this process's environment, where
    they would override the next cluster's: restored once the workers have started."""
    import logging
    import os

    environ = dict(os.environ)
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        memory_limit=0,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    os.environ.clear()
    os.environ.update(environ)
    return cluster, distributed.Client(cluster)


def run(ctx):
    try:
        import dask.array as da
        import distributed
    except ImportError as exc:  # the suite needs the dask extra
        print("suite dask not available: %s (pip install '.[dask]')" % exc)
        return []
    import dask

    repeats = 3 if ctx.quick else 5
    n = (512 if ctx.quick else 1024) * MB // 4
    single = _relu_in_memory(n, ctx.threads, repeats)
    rows = _relu_single_process(n, single)
    cluster, client = _start_cluster(distributed)
    try:
        rows += _relu(
            da, distributed, client, repeats, n, "dask 2w x 1t", single["cyrelu 1 thread"]
        )
        rows += _batchnorm(ctx, da, distributed, client, repeats)
    finally:
        client.close()
        cluster.close()
    with dask.config.set(WORKER_MEMORY_KEPT):
        cluster, client = _start_cluster(distributed)
    try:
        rows += _relu(
            da, distributed, client, repeats, n, "dask 2w x 1t, reuse", single["cyrelu 1 thread"]
        )
    finally:
        client.close()
        cluster.close()
    return rows


RELU_CHUNKS_MB = (1, 16, 64)


def _relu_case(n, chunk_mb):
    return "relu %d MB, %d MB chunks" % (n * 4 // MB, chunk_mb)


def _relu_single_process(n, times):
    """The single-process rows of every relu case, from ``_relu_in_memory``'s times."""
    return [
        {"suite": SUITE, "case": _relu_case(n, c), "impl": impl, "seconds": t, "bytes": 8 * n}
        for c in RELU_CHUNKS_MB
        for impl, t in times.items()
    ]


def _relu(da, distributed, client, repeats, n, impl, t_one):
    """relu's cases on ``client``'s cluster, as rows ``impl``; ``t_one``: the
    single-thread time, for the per-chunk overhead."""
    rows = []
    for chunk_mb in RELU_CHUNKS_MB:
        x = (
            da.random.default_rng(0)
            .standard_normal(n, chunks=chunk_mb * MB // 4, dtype=np.float32)
            .persist()
        )
        distributed.wait(x)
        t, cpu = _best_on_cluster(distributed, client, cyrelu.relu, [x], repeats)
        chunks = x.npartitions
        del x
        rows.append(
            {
                "suite": SUITE,
                "case": _relu_case(n, chunk_mb),
                "impl": impl,
                "seconds": t,
                "bytes": 8 * n,
                "chunks": chunks,
                "overhead_per_chunk": (2 * t - t_one) / chunks,
                "cpu_per_chunk": [c / chunks for c in cpu],
            }
        )
    _print_overheads(rows)
    return rows


def _relu_in_memory(n, threads, repeats):
    """The single-process times by row name: all threads and one thread, each call with a
    new output array (as on the cluster, whose chunks are new arrays), and all threads
    writing into one output array reused by every call."""
    xn = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    out = np.empty_like(xn)
    return {
        "cyrelu": _best(lambda: cyrelu.relu(xn, num_threads=threads), repeats),
        "cyrelu 1 thread": _best(lambda: cyrelu.relu(xn, num_threads=1), repeats),
        "cyrelu, out= reused": _best(
            lambda: cyrelu.relu(xn, out=out, num_threads=threads), repeats
        ),
    }


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
            t, cpu = _best_on_cluster(distributed, client, make, inputs, repeats)
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
                    "cpu_per_chunk": [c / x.npartitions for c in cpu],
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
        if r.get("cpu_per_chunk") is None:
            continue
        line = "%-44s %-21s %3d chunks, CPU per chunk: workers %.2f user + %.2f sys, " % (
            r["case"],
            r["impl"],
            r["chunks"],
            r["cpu_per_chunk"][0] * 1e3,
            r["cpu_per_chunk"][1] * 1e3,
        )
        line += "client+scheduler %.2f ms" % (r["cpu_per_chunk"][2] * 1e3)
        if r.get("overhead_per_chunk") is not None:
            line += "; overhead %.2f ms" % (r["overhead_per_chunk"] * 1e3)
        print(line)
    print()
