"""``show_config()``: the facts of this build and this process, for bug reports."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
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


def _warn_bad_isa_request() -> None:
    """At import: an unknown CYRELU_ISA is ignored by the kernels; say so, once."""
    request = _parallel.isa_request()
    if request is not None and request.startswith("invalid: "):
        warnings.warn(
            "cyrelu: ignoring CYRELU_ISA=%r; accepted values (case-insensitive): %s"
            % (request[len("invalid: ") :], ", ".join(_parallel.ISA_ACCEPTED)),
            RuntimeWarning,
            stacklevel=3,
        )


def _isa_request_text(request: str | None) -> str:
    if request is None:
        return "unset (the best the CPU supports)"
    if request.startswith("invalid: "):
        return "%r, not a known value: ignored (accepted: %s)" % (
            request[len("invalid: ") :],
            ", ".join(_parallel.ISA_ACCEPTED),
        )
    return "%r" % request


def _mib(n: int) -> str:
    if n % (1 << 20) == 0:
        return "%d MiB" % (n >> 20)
    return "%d KiB" % (n >> 10) if n % 1024 == 0 else "%d bytes" % n


def _cache_line(level: int) -> str:
    c = _parallel.cache_info()
    key = "l%d" % level
    text = "%s (%s" % (_mib(c[key + "_bytes"]), c[key + "_source"])
    if c[key + "_source"] != "OS":
        os_value = c[key + "_os_bytes"]
        text += "; OS reports %s" % (_mib(os_value) if os_value else "nothing usable")
    if c[key + "_env_ignored"]:
        text += "; CYRELU_L%d_BYTES=%r ignored" % (
            level,
            os.environ.get("CYRELU_L%d_BYTES" % level),
        )
    return text + ")"


def _plan_line() -> str:
    c = _parallel.cache_info()
    return "streaming stores from %s per thread; BatchNorm slabs reduced whole up to %s" % (
        _mib(c["stream_min_bytes"]),
        _mib(c["slab_bytes"]),
    )


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
        "cyrelu_isa": _isa_request_text(info["isa_request"]),
        "openmp": ("on (_OPENMP %d)" % omp) if omp else "off (serial build)",
        "openmp_runtime": _openmp_runtime() if omp else "none",
        "default_threads": _parallel.effective_n_threads(None),
        "l2_cache": _cache_line(2),
        "l3_cache": _cache_line(3),
        "kernel_plan": _plan_line(),
        "fork_child": (
            "yes, parallel regions run serially (OpenMP is not fork-safe)"
            if info["fork_child"]
            else "no"
        ),
        "gpu": _gpu_status(),
    }


def warn_cache_overrides() -> None:
    """At import: a RuntimeWarning for each CYRELU_L2_BYTES / CYRELU_L3_BYTES value that
    is set but unusable (junk, or outside the plausible range), naming what is used."""
    import warnings

    c = _parallel.cache_info()
    for level in (2, 3):
        key = "l%d" % level
        if c[key + "_env_ignored"]:
            warnings.warn(
                "cyrelu: CYRELU_L%d_BYTES=%r is not a usable cache size (a byte count such "
                "as 524288, 512K or 2M, within %s); using %s from the %s instead"
                % (
                    level,
                    os.environ.get("CYRELU_L%d_BYTES" % level),
                    "64 KiB to 64 MiB" if level == 2 else "the L2 size to 4 GiB",
                    _mib(c[key + "_bytes"]),
                    c[key + "_source"],
                ),
                RuntimeWarning,
                stacklevel=3,
            )


def show_config() -> None:
    """Print the build facts: version, OpenMP on/off and its runtime, compiler,
    SIMD flags compiled in, default thread count, CuPy/GPU availability."""
    cfg = config()
    width = max(len(k) for k in cfg)
    print("cyrelu build configuration")
    for key, value in cfg.items():
        print("  %-*s : %s" % (width, key, value))
