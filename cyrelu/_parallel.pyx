"""The single authority on thread counts.

``resolve_threads(None)`` is OpenMP's current default, ``omp_get_max_threads()``,
which honours ``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits`` (it
sets the limit through the same OpenMP runtime this module links).  A build
without OpenMP always reports 1.
"""

import operator


cdef int resolve_threads(object num_threads) except -1:
    cdef Py_ssize_t n
    if num_threads is None:
        return max(1, omp_get_max_threads())
    if isinstance(num_threads, bool):
        raise ValueError("num_threads must be None or a positive int, got %r" % (num_threads,))
    try:
        n = operator.index(num_threads)
    except TypeError:
        raise ValueError(
            "num_threads must be None or a positive int, got %r" % (num_threads,)
        ) from None
    if n < 1:
        raise ValueError("num_threads must be None or a positive int, got %r" % (num_threads,))
    return <int>min(n, 1 << 16)


def effective_n_threads(num_threads=None):
    """The number of threads a kernel may use for ``num_threads`` (None: OpenMP's default).

    Raises ValueError for anything but None or a positive int.
    """
    return resolve_threads(num_threads)


def openmp_version():
    """The ``_OPENMP`` date the extension was compiled with (e.g. 201511), or 0 for a serial build."""
    return CYR_OPENMP_VERSION


def build_info():
    """Compiler and SIMD facts recorded at compile time, as a dict."""
    return {
        "compiler": _compiler_string(),
        "simd": [name for name, on in _simd_flags() if on],
        "openmp": CYR_OPENMP_VERSION,
        "isa": _ISA_NAMES[cyr_isa_level()],
        "isa_request": cyr_isa_request,
    }


_ISA_NAMES = {0: "baseline", 1: "AVX2", 2: "AVX-512"}
_CACHE_SOURCES = {0: "fallback", 1: "environment", 2: "OS"}


cdef extern from "cyrelu/cache.h":
    ctypedef struct cyr_cache_info_t:
        Py_ssize_t l2, l3, l2_os, l3_os
        int l2_src, l3_src, l2_env_bad, l3_env_bad
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
    CYRELU_L3_BYTES set but unusable), ``stream_min_bytes`` (outputs of at least this
    many bytes per thread are written with streaming stores) and ``slab_bytes``
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
