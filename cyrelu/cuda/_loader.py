"""Lazy compilation of the ``.cu`` kernel sources: one ``cupy.RawModule`` per source,
element type, index type and device (``group``), built on first use and cached for the
life of the process.

Every kernel is a template instantiation exported under a plain ``extern "C"`` name
(``kernel_name``): the loader appends one ``CYR_KERNEL_<family>(name, args...)`` line per
instantiation to the source, and the module is built without ``name_expressions``.  A
module with name expressions is kept out of the on-disk kernel cache by CuPy releases
before 14.2, so every new process would pay for NVRTC again; a plain module is cached by
every CuPy (key: source, options, architecture, NVRTC version), so only the first process
on a machine compiles.

This module imports CuPy only inside :func:`module`, so the kernel lists below can be
read without CuPy (``tests/test_cuda_compile.py`` compiles the same instantiations with
nvcc and NVRTC on machines without a GPU).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from typing import Any

from cyrelu._activation_table import CODES as _ACT_CODES, NONE as _ACT_NONE

HERE = os.path.dirname(os.path.abspath(__file__))

# C++ spellings of the element types, by NumPy dtype name.
CTYPE = {"float16": "cyr_half", "float32": "float", "float64": "double"}
# the type the math is done in (the dtype of saved statistics and coefficients)
ACC_DTYPE = {"float16": "float32", "float32": "float32", "float64": "float64"}

_TYPES = ("float", "double", "cyr_half")
# per-channel parameters (weight, bias, running stats, gradients): float32 or float64
_PARAM_TYPES = ("float", "double")

# reduction (MODE, ACT) pairs, apply (MODE, ACT) pairs; see batchnorm.cu
RED_STATS, RED_GRAD, RED_ALIVE, RED_ZEROS = 0, 1, 2, 3
APPLY_FWD, APPLY_BWD_TRAIN, APPLY_BWD_EVAL = 0, 1, 2
# activation codes (the activation table's; None: no activation)
ACT_CODES = dict(_ACT_CODES)
_OPS = tuple(c for c in ACT_CODES.values() if c != _ACT_NONE)
_RED_PAIRS = (
    (RED_STATS, _ACT_NONE),
    (RED_GRAD, _ACT_NONE),
    *tuple((RED_GRAD, op) for op in _OPS),
    (RED_ALIVE, _ACT_NONE),
    (RED_ZEROS, _ACT_NONE),
)


def _names() -> dict[str, tuple[str, ...]]:
    ew = []
    for t in _TYPES:
        for op in _OPS:
            for k in ("unary_flat", "binary_flat", "unary_strided", "binary_strided"):
                for index in INDEX_TYPES:
                    ew.append("%s<%s, %d, %s>" % (k, t, op, index))
    bn = []
    for t in _TYPES:
        for mode, act in _RED_PAIRS:
            for index in INDEX_TYPES:
                for vec in (0, 1):
                    bn.append("reduce_ncs<%s, %d, %d, %d, %s>" % (t, mode, act, vec, index))
                bn.append("reduce_nc<%s, %d, %d, %s>" % (t, mode, act, index))
        bn.append("eval_coef<%s>" % t)
        for mode in (APPLY_FWD, APPLY_BWD_TRAIN, APPLY_BWD_EVAL):
            for act in (_ACT_NONE, *_OPS):
                for nc in (0, 1):
                    for vec in (0, 1):
                        for index in INDEX_TYPES:
                            bn.append(
                                "apply<%s, %d, %d, %d, %d, %s>" % (t, mode, act, nc, vec, index)
                            )
    return {"elementwise.cu": tuple(ew), "batchnorm.cu": tuple(bn)}


# index types of the reductions, the elementwise kernels and BatchNorm's apply pass: int
# where every index a launch computes is below 2**31 (cyrelu.cuda._launch.index_type)
INDEX_TYPES = ("int", "long long")
NAME_EXPRESSIONS = _names()
# prelu.cu: the per-channel weight kernels, per element and index type
NAME_EXPRESSIONS["prelu.cu"] = tuple(
    "%s<%s, %s>" % (k, t, index)
    for t in _TYPES
    for k in ("prelu_fwd", "prelu_bwd", "prelu_wsum", "prelu_merge")
    for index in INDEX_TYPES
)


def kernel_name(expr: str) -> str:
    """The extern "C" name of template instantiation ``expr``:
    ``reduce_nc<float, 1, 2, long long>`` -> ``reduce_nc__float_1_2_long_long``."""
    family, _, rest = expr.partition("<")
    args = [a.strip().replace(" ", "_") for a in rest.rstrip(">").split(",")] if rest else []
    return "__".join([family, "_".join(args)]) if args else family


def instantiation(expr: str) -> str:
    """The source line that defines kernel ``expr`` (the CYR_KERNEL_<family> macro)."""
    family, _, rest = expr.partition("<")
    args = [a.strip() for a in rest.rstrip(">").split(",")]
    return "CYR_KERNEL_%s(%s)" % (family, ", ".join([kernel_name(expr), *args]))


def program(name: str, exprs: Sequence[str]) -> str:
    """What NVRTC compiles: source ``name`` inlined, plus the kernels ``exprs``."""
    return (
        source(name)
        + "\n/* instantiations */\n"
        + "\n".join(instantiation(e) for e in exprs)
        + "\n"
    )


# CuPy adds -ftz=true itself (every release does); the kernels do not depend on it
OPTIONS = ("-std=c++14",)


_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.M)


def source(name: str) -> str:
    """The source of ``name`` with its local ``#include "..."`` lines inlined, recursively
    (NVRTC then needs no include path; the activation table, activation_table.h, is
    reached through common.cuh)."""
    with open(os.path.join(HERE, name)) as fh:
        text = fh.read()
    return _INCLUDE.sub(lambda m: source(m.group(1)), text)


def group(expr: str) -> str:
    """The compilation group of a kernel: its element type (the first template argument)
    and its index type (the last, for the kernels that have one; the others go with
    "int", which every program uses): ``"float/int"``.  A program that only uses float32
    arrays below 2**31 elements compiles only the float kernels with 32-bit indices."""
    _, sep, rest = expr.partition("<")
    if not sep:
        return ""
    args = [a.strip() for a in rest.rstrip(">").split(",")]
    return "%s/%s" % (args[0], args[-1] if args[-1] in INDEX_TYPES else "int")


_lock = threading.Lock()
# (source name, group, device id) -> cupy.RawModule
_modules: dict[tuple[str, str, int], Any] = {}
# (source name, device id, name expression) -> cupy.RawKernel
_functions: dict[tuple[str, int, str], Any] = {}


def module(name: str, grp: str) -> Any:
    """The compiled ``cupy.RawModule`` of source ``name``'s kernels of group ``grp`` for
    the current device."""
    import cupy

    dev = cupy.cuda.runtime.getDevice()
    key = (name, grp, dev)
    mod = _modules.get(key)
    if mod is None:
        with _lock:
            mod = _modules.get(key)
            if mod is None:
                exprs = tuple(e for e in NAME_EXPRESSIONS[name] if group(e) == grp)
                mod = cupy.RawModule(code=program(name, exprs), options=OPTIONS)
                mod.compile()
                _modules[key] = mod
    return mod


def function(name: str, expr: str) -> Any:
    """Kernel ``expr`` (one of ``NAME_EXPRESSIONS[name]``) for the current device."""
    import cupy

    key = (name, cupy.cuda.runtime.getDevice(), expr)
    fn = _functions.get(key)
    if fn is None:
        fn = module(name, group(expr)).get_function(kernel_name(expr))
        _functions[key] = fn
    return fn


_LIMITS: dict[int, tuple[int, int, int]] = {}


def device_limits(dev: int) -> tuple[int, int, int]:
    """(SMs, most resident threads per SM, 32-bit registers per SM) of device ``dev``,
    cached; 0 for an attribute the CuPy in use does not report."""
    lim = _LIMITS.get(dev)
    if lim is None:
        import cupy

        attrs = cupy.cuda.Device(dev).attributes
        lim = _LIMITS[dev] = (
            int(attrs["MultiProcessorCount"]),
            int(attrs.get("MaxThreadsPerMultiProcessor", 0)),
            int(attrs.get("MaxRegistersPerMultiprocessor", 0)),
        )
    return lim
