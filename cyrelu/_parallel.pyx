"""The single authority on thread counts.

``resolve_threads(None)`` is OpenMP's current default, ``omp_get_max_threads()``,
which honours ``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits`` (it
sets the limit through the same OpenMP runtime this module links).  A build
without OpenMP always reports 1.

Fork safety: OpenMP runtimes (libgomp in particular) are not fork-safe.  A child
forked after its parent ran a parallel region finds a thread pool whose threads
no longer exist, and its first parallel region waits for them forever.  So, as
PyTorch does, every process forked from one that imported cyrelu is marked as a
forked child (``os.register_at_fork``), and in it every kernel runs on the calling
thread: ``resolve_threads`` answers 1, and an explicit ``num_threads > 1`` gives a
one-time RuntimeWarning.  Workers that should run in parallel need the 'spawn' or
'forkserver' start method.
"""

import os
import warnings

from cyrelu._validation import check_num_threads


cdef bint _fork_child = False
cdef bint _fork_warned = False


def _after_fork_in_child():
    global _fork_child
    _fork_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def is_fork_child():
    """True in a process forked from one that had imported cyrelu: its kernels run serially."""
    return bool(_fork_child)


cdef int _fork_child_threads(Py_ssize_t requested) except -1:
    global _fork_warned
    if requested > 1 and CYR_OPENMP_VERSION and not _fork_warned:
        _fork_warned = True
        warnings.warn(
            "cyrelu: num_threads=%d ignored in a forked child process: OpenMP is not "
            "fork-safe, so cyrelu runs serially after fork (use the 'spawn' or 'forkserver' "
            "multiprocessing start method for parallel workers)" % requested,
            RuntimeWarning, stacklevel=2,
        )
    return 1


cdef int resolve_threads(object num_threads) except -1:
    cdef object n
    if num_threads is None:
        if _fork_child:
            return 1
        return max(1, omp_get_max_threads())
    n = check_num_threads(num_threads)
    if _fork_child:
        return _fork_child_threads(min(n, 1 << 16))
    return <int>min(n, 1 << 16)


def effective_n_threads(num_threads=None):
    """The number of threads a kernel may use for ``num_threads`` (None: OpenMP's default).

    Raises ValueError for anything but None or a positive int.
    """
    return resolve_threads(num_threads)


def openmp_version():
    """The ``_OPENMP`` date the extension was compiled with (e.g. 201511); 0 for a serial build."""
    return CYR_OPENMP_VERSION


def build_info():
    """Compiler and SIMD facts recorded at compile time, as a dict."""
    return {
        "compiler": _compiler_string(),
        "simd": [name for name, on in _simd_flags() if on],
        "openmp": CYR_OPENMP_VERSION,
        "isa": _ISA_NAMES[cyr_isa_level()],
        "isa_request": isa_request(),
        "fork_child": bool(_fork_child),
    }


ISA_ACCEPTED = ("base", "baseline", "avx2", "avx512", "avx-512")


def isa_request():
    """What the CYRELU_ISA environment variable asked for, as read when the kernels
    first chose their instruction set: None when unset or empty, the value as given
    when it is accepted (``ISA_ACCEPTED``, case-insensitive), or ``"invalid: VALUE"``
    for anything else (which is ignored)."""
    if cyr_isa_request == 0:
        return None
    if cyr_isa_request < 0:
        return "invalid: " + _ISA_ENV
    return _ISA_ENV


# The instruction set is chosen once per process, at import (every extension module
# reads the same CYRELU_ISA): remember what was asked for then.
_ISA_ENV = os.environ.get("CYRELU_ISA", "")
cyr_isa_level()


_ISA_NAMES = {0: "baseline", 1: "AVX2", 2: "AVX-512"}
_CACHE_SOURCES = {0: "fallback", 1: "environment", 2: "OS"}


cdef extern from "cyrelu/cache.h":
    ctypedef struct cyr_cache_info_t:
        Py_ssize_t l2, l3, l2_os, l3_os
        int l2_src, l3_src, l2_env_bad, l3_env_bad
        Py_ssize_t cpus
    const cyr_cache_info_t *cyr_cache_info() noexcept nogil
    Py_ssize_t cyr_stream_min_bytes() noexcept nogil
    Py_ssize_t cyr_slab_bytes() noexcept nogil
    Py_ssize_t cyr_parse_bytes(const char *s) noexcept nogil
    Py_ssize_t cyr_cache_pick(int level, Py_ssize_t env, Py_ssize_t os_value, Py_ssize_t l2,
                              int *src) noexcept nogil


def cache_info():
    """The cache sizes the kernels plan with, where they came from, and the thresholds
    derived from them (include/cyrelu/cache.h), as a dict:

    ``l2_bytes``, ``l3_bytes`` (in force), ``l2_source``, ``l3_source`` ("environment",
    "OS" or "fallback"), ``l2_os_bytes``, ``l3_os_bytes`` (what the OS reported, 0 for
    nothing usable), ``l2_env_ignored``, ``l3_env_ignored`` (CYRELU_L2_BYTES /
    CYRELU_L3_BYTES set but unusable), ``cpus`` (online CPUs, sharing the L3),
    ``stream_min_bytes`` (outputs of at least this many bytes per thread are written with
    streaming stores: the larger of half the L2 and half the L3 per CPU) and ``slab_bytes``
    (BatchNorm channel slabs above this are reduced in row chunks).
    """
    cdef const cyr_cache_info_t *c = cyr_cache_info()
    return {
        "l2_bytes": c.l2,
        "l3_bytes": c.l3,
        "l2_source": _CACHE_SOURCES[c.l2_src],
        "l3_source": _CACHE_SOURCES[c.l3_src],
        "l2_os_bytes": c.l2_os,
        "l3_os_bytes": c.l3_os,
        "l2_env_ignored": bool(c.l2_env_bad),
        "l3_env_ignored": bool(c.l3_env_bad),
        "cpus": c.cpus,
        "stream_min_bytes": cyr_stream_min_bytes(),
        "slab_bytes": cyr_slab_bytes(),
    }


def _parse_bytes(str text):
    """CYRELU_L2_BYTES' syntax ("512K", "2M", "1048576"): bytes, or -1 (for the tests)."""
    b = text.encode("ascii", "replace")
    return cyr_parse_bytes(b)


def _cache_pick(int level, Py_ssize_t env, Py_ssize_t os_value, Py_ssize_t l2=0):
    """The choice cache.h makes for one size: (bytes, source); for the tests, which feed
    it what a container, VM or odd CPU might report."""
    cdef int src = 0
    cdef Py_ssize_t v = cyr_cache_pick(level, env, os_value, l2, &src)
    return v, _CACHE_SOURCES[src]


cdef extern from "cyrelu/common.h":
    int cyr_isa_level() noexcept nogil
    int cyr_isa_request


cdef extern from *:
    """
    #if defined(__clang__)
    #  define CYR_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #  define CYR_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_VER)
    #  define CYR_STR2(x) #x
    #  define CYR_STR(x) CYR_STR2(x)
    #  define CYR_COMPILER "msvc " CYR_STR(_MSC_FULL_VER)
    #else
    #  define CYR_COMPILER "unknown"
    #endif
    #if defined(__SSE2__) || defined(_M_X64)
    #  define CYR_HAS_SSE2 1
    #else
    #  define CYR_HAS_SSE2 0
    #endif
    #ifdef __AVX__
    #  define CYR_HAS_AVX 1
    #else
    #  define CYR_HAS_AVX 0
    #endif
    #ifdef __AVX2__
    #  define CYR_HAS_AVX2 1
    #else
    #  define CYR_HAS_AVX2 0
    #endif
    #ifdef __AVX512F__
    #  define CYR_HAS_AVX512F 1
    #else
    #  define CYR_HAS_AVX512F 0
    #endif
    #if defined(__ARM_NEON) || defined(__ARM_NEON__)
    #  define CYR_HAS_NEON 1
    #else
    #  define CYR_HAS_NEON 0
    #endif
    """
    const char* CYR_COMPILER
    int CYR_HAS_SSE2, CYR_HAS_AVX, CYR_HAS_AVX2, CYR_HAS_AVX512F, CYR_HAS_NEON


cdef _compiler_string():
    return (<bytes>CYR_COMPILER).decode("utf-8", "replace")


cdef _simd_flags():
    return [("SSE2", CYR_HAS_SSE2), ("AVX", CYR_HAS_AVX), ("AVX2", CYR_HAS_AVX2),
            ("AVX512F", CYR_HAS_AVX512F), ("NEON", CYR_HAS_NEON)]
