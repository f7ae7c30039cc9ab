"""Lazy compilation of the ``.cu`` kernel sources: one ``cupy.RawModule`` per source and
device, built on first use and cached for the life of the process (CuPy also keeps the
compiled binaries in its on-disk kernel cache, so later processes skip NVRTC).

This module imports CuPy only inside :func:`module`, so the kernel lists below can be
read without CuPy (``tests/test_cuda_compile.py`` compiles the same instantiations with
nvcc and NVRTC on machines without a GPU).
"""

import os
import re
import threading

HERE = os.path.dirname(os.path.abspath(__file__))

# C++ spellings of the element types, by NumPy dtype name.
CTYPE = {"float16": "cyr_half", "float32": "float", "float64": "double"}
# the type the math is done in (the dtype of saved statistics and coefficients)
ACC_DTYPE = {"float16": "float32", "float32": "float32", "float64": "float64"}

_TYPES = ("float", "double", "cyr_half")
# per-channel parameters (weight, bias, running stats, gradients): float32 or float64
_PARAM_TYPES = ("float", "double")

# reduction (MODE, ACT) pairs and apply (MODE, ACT) pairs; see batchnorm.cu
RED_STATS, RED_GRAD, RED_ALIVE, RED_ZEROS = 0, 1, 2, 3
APPLY_FWD, APPLY_BWD_TRAIN, APPLY_BWD_EVAL = 0, 1, 2
ACT_CODES = {None: 0, "relu": 1, "leaky_relu": 2}
_RED_PAIRS = ((RED_STATS, 0), (RED_GRAD, 0), (RED_GRAD, 1), (RED_GRAD, 2), (RED_ALIVE, 0),
              (RED_ZEROS, 0))


def _names():
    ew = []
    for t in _TYPES:
        for op in (0, 1):
            for k in ("unary_flat", "binary_flat", "unary_strided", "binary_strided"):
                ew.append("%s<%s, %d>" % (k, t, op))
    bn = ["sum_partials"]
    for t in _TYPES:
        for mode, act in _RED_PAIRS:
            bn.append("reduce_ncs<%s, %d, %d>" % (t, mode, act))
            bn.append("reduce_nc<%s, %d, %d>" % (t, mode, act))
        for p in _PARAM_TYPES:
            for w in _PARAM_TYPES:
                bn.append("finalize_stats<%s, %s, %s>" % (t, p, w))
                bn.append("eval_coef<%s, %s, %s>" % (t, p, w))
                bn.append("finalize_grad<%s, %s, %s>" % (t, p, w))
        for mode in (APPLY_FWD, APPLY_BWD_TRAIN, APPLY_BWD_EVAL):
            for act in (0, 1, 2):
                bn.append("apply<%s, %d, %d>" % (t, mode, act))
    return {"elementwise.cu": tuple(ew), "batchnorm.cu": tuple(bn)}


NAME_EXPRESSIONS = _names()

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.M)


def source(name):
    """The source of ``name`` with its local ``#include "..."`` lines inlined (NVRTC then
    needs no include path)."""
    with open(os.path.join(HERE, name)) as fh:
        text = fh.read()

    def inline(match):
        with open(os.path.join(HERE, match.group(1))) as fh:
            return fh.read()

    return _INCLUDE.sub(inline, text)


def group(expr):
    """The compilation group of a kernel: its element type (the first template argument),
    so a program that only uses float32 compiles only the float kernels."""
    _, sep, rest = expr.partition("<")
    return rest.split(",")[0].strip() if sep else ""


_lock = threading.Lock()
_modules = {}  # (source name, group, device id) -> cupy.RawModule
_functions = {}  # (source name, device id, name expression) -> cupy.RawKernel


def module(name, grp):
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
                mod = cupy.RawModule(code=source(name), options=("-std=c++14",),
                                     name_expressions=exprs)
                mod.compile()
                _modules[key] = mod
    return mod


def function(name, expr):
    """Kernel ``expr`` (one of ``NAME_EXPRESSIONS[name]``) for the current device."""
    import cupy

    key = (name, cupy.cuda.runtime.getDevice(), expr)
    fn = _functions.get(key)
    if fn is None:
        fn = module(name, group(expr)).get_function(expr)
        _functions[key] = fn
    return fn


_SM_COUNT = {}


def sm_count():
    """Streaming multiprocessors of the current device (cached per device)."""
    import cupy

    dev = cupy.cuda.runtime.getDevice()
    n = _SM_COUNT.get(dev)
    if n is None:
        n = _SM_COUNT[dev] = int(cupy.cuda.Device(dev).attributes["MultiProcessorCount"])
    return n
