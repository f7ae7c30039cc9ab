#!/usr/bin/env python
"""cyrelu microbenchmark: cyrelu vs NumPy vs PyTorch (CPU, same thread count) vs a
plain copy of the same bytes, all measured side by side in one run.

    python benchmarks/bench.py            # quick run (about a minute)
    python benchmarks/bench.py --full     # more sizes and repeats
    python benchmarks/bench.py --suite activations --threads 1
    python benchmarks/bench.py --gpu      # the CuPy suite (needs CuPy and a GPU)
    python benchmarks/bench.py --suite dask   # a 2-worker LocalCluster (the dask extra)

Ratios are only meaningful within one run: the machine's speed changes between
runs, the ratios much less.  Results go to stdout and, with --json PATH, to a file.
"""

import argparse
import importlib
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import Context  # noqa: E402

CPU_SUITES = ["activations", "float16", "batchnorm"]
# Suites run only when asked for with --suite.
EXTRA_SUITES = ["inference"]


def _load_torch(threads):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def _environment(ctx):
    import numpy as np

    import cyrelu
    from cyrelu._config import config

    env = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cores": os.cpu_count(),
        "threads": ctx.threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cyrelu": cyrelu.__version__,
        "cyrelu_simd": config()["simd_runtime"],
        "l2_cache": config()["l2_cache"],
        "l3_cache": config()["l3_cache"],
        "torch": getattr(ctx.torch, "__version__", "not installed"),
    }
    return env


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_table(rows):
    """One block per case: each implementation's time, GB/s and its ratio to cyrelu."""
    cases = []
    for r in rows:
        key = (r["suite"], r["case"])
        if key not in cases:
            cases.append(key)
    print("%-44s %-22s %12s %9s %10s" % ("case", "impl", "time", "GB/s", "vs cyrelu"))
    for key in cases:
        block = [r for r in rows if (r["suite"], r["case"]) == key]
        # the reference row: "cyrelu", else the first cyrelu row (e.g. "cyrelu float16")
        ref = next((r["seconds"] for r in block if r["impl"] == "cyrelu"), None)
        if ref is None:
            ref = next((r["seconds"] for r in block if r["impl"].startswith("cyrelu")), None)
        for r in block:
            t = r["seconds"]
            tstr = "%.2f us" % (t * 1e6) if t < 1e-3 else "%.3f ms" % (t * 1e3)
            gbs = "%.1f" % (r["bytes"] / t / 1e9) if r.get("bytes") else ""
            ratio = "%.2fx" % (t / ref) if ref else ""
            print("%-44s %-22s %12s %9s %10s" % (key[1], r["impl"], tstr, gbs, ratio))
        print()


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="short run (the default)")
    mode.add_argument("--full", action="store_true", help="more sizes and repeats")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for cyrelu and torch (default: OpenMP's default)",
    )
    p.add_argument(
        "--suite",
        default=None,
        help="comma-separated suites (default: %s; also: %s)"
        % (",".join(CPU_SUITES), ",".join(EXTRA_SUITES)),
    )
    p.add_argument("--gpu", action="store_true", help="run the GPU (CuPy) suite instead")
    p.add_argument("--json", metavar="PATH", help="also write the rows and environment as JSON")
    args = p.parse_args(argv)

    from cyrelu._parallel import effective_n_threads

    threads = args.threads or effective_n_threads(None)
    ctx = Context(quick=not args.full, threads=threads, torch=_load_torch(threads), gpu=args.gpu)
    suites = ["gpu"] if args.gpu else (args.suite.split(",") if args.suite else CPU_SUITES)

    env = _environment(ctx)
    for k, v in env.items():
        print("%-12s %s" % (k, v))
    if ctx.torch is None:
        print("(PyTorch not installed: torch columns are skipped; pip install torch==2.13.0)")
    print()

    rows = []
    for name in suites:
        try:
            mod = importlib.import_module("bench_" + name)
        except ImportError as exc:
            print("suite %s not available: %s" % (name, exc))
            continue
        suite_rows = mod.run(ctx)
        print_table(suite_rows)
        rows.extend(suite_rows)

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"environment": env, "rows": rows}, fh, indent=1)
        print("wrote", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
