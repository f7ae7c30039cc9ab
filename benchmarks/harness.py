"""Shared timing helpers for the benchmark suites (benchmarks/bench_*.py).

Each suite module defines ``run(ctx)`` and returns a list of rows; ``bench.py``
prints them and writes them to ``benchmarks/results/``.  A row is a dict with
``suite``, ``case`` (what is measured, e.g. "relu n=1e6"), ``impl`` (cyrelu,
numpy, torch, copy, ...), ``seconds`` (best of the repeats) and optionally
``bytes`` (memory traffic, for GB/s).  Ratios are always taken between rows of
the same case in the same run.
"""

import gc
import time


class Context:
    """What a suite needs to know: quick or full, thread count, torch if present."""

    def __init__(self, quick, threads, torch=None, gpu=False):
        self.quick = quick
        self.threads = threads
        self.torch = torch
        self.gpu = gpu


def best_time(fn, *, min_time=0.05, repeats=7, max_number=100000):
    """Best per-call time of ``fn()`` in seconds: calls are batched so each repeat
    lasts at least ``min_time`` / ``repeats``; the minimum over repeats is reported
    (the least-disturbed run on a shared machine)."""
    fn()  # warm-up: page faults, lazy initialisation, thread-pool start
    number = 1
    while number < max_number:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 >= min_time / repeats:
            break
        number *= 2
    gc_was = gc.isenabled()
    gc.disable()
    try:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            best = min(best, (time.perf_counter() - t0) / number)
    finally:
        if gc_was:
            gc.enable()
    return best


def best_times(fns, *, rounds=3, min_time=0.01):
    """Best time of each function in the dict ``fns``, the functions taken in turn,
    round after round, so every implementation sees the same machine load; each
    round is one ``best_time`` batch."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], best_time(fn, min_time=min_time, repeats=1))
    return best


def row(suite, case, impl, seconds, nbytes=None, **extra):
    r = {"suite": suite, "case": case, "impl": impl, "seconds": seconds}
    if nbytes is not None:
        r["bytes"] = nbytes
    r.update(extra)
    return r
