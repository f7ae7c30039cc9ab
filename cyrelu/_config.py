"""``show_config()``: the facts of this build and this process, for bug reports."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

import numpy as np

from cyrelu import _parallel
from cyrelu._version import __version__


def _openmp_runtime() -> str:
    """Path of the OpenMP runtime loaded into this process, if it can be found."""
    try:  # optional, and imported only here, when asked
        threadpoolctl: Any = importlib.import_module("threadpoolctl")
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        for pool in threadpoolctl.threadpool_info():
            if pool.get("user_api") == "openmp":
                return "%s (%s)" % (pool.get("filepath"), pool.get("internal_api"))
    maps = "/proc/self/maps"
    if os.path.exists(maps):
        with open(maps) as fh:
            for line in fh:
                path = line.split()[-1]
                name = os.path.basename(path)
                if name.startswith(("libgomp", "libomp", "libiomp", "vcomp")):
                    return path
    return "unknown"


def _gpu_status() -> str:
    if importlib.util.find_spec("cupy") is None:
        return "CuPy not installed"
    # Only now, at the user's request, is CuPy imported.
    try:
        cupy: Any = importlib.import_module("cupy")
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # a CuPy without a driver raises many kinds of errors
        return "CuPy %s installed, no usable GPU (%s)" % (
            getattr(sys.modules.get("cupy"), "__version__", "?"),
            type(exc).__name__,
        )
    return "CuPy %s, %d GPU(s)" % (cupy.__version__, n)


def config() -> dict[str, Any]:
    """The build facts as a dict (what :func:`show_config` prints)."""
    info = _parallel.build_info()
    omp = info["openmp"]
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "compiler": info["compiler"],
        "simd": ", ".join(info["simd"]) or "none (baseline scalar code)",
        "simd_runtime": info["isa"] + " kernels selected at run time (CYRELU_ISA caps it)",
        "openmp": ("on (_OPENMP %d)" % omp) if omp else "off (serial build)",
        "openmp_runtime": _openmp_runtime() if omp else "none",
        "default_threads": _parallel.effective_n_threads(None),
        "gpu": _gpu_status(),
    }


def show_config() -> None:
    """Print the build facts: version, OpenMP on/off and its runtime, compiler,
    SIMD flags compiled in, default thread count, CuPy/GPU availability."""
    cfg = config()
    width = max(len(k) for k in cfg)
    print("cyrelu build configuration")
    for key, value in cfg.items():
        print("  %-*s : %s" % (width, key, value))
