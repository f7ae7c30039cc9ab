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
    }


_ISA_NAMES = {0: "baseline", 1: "AVX2", 2: "AVX-512"}


cdef extern from "cyrelu/common.h":
    int cyr_isa_level() noexcept nogil


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
