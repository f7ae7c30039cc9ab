# OpenMP, wrapped once: the rest of the package cimports from here and never
# needs to know whether the build has OpenMP (a serial build reports 1 thread).

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define CYR_OPENMP_VERSION _OPENMP
    #else
    #define CYR_OPENMP_VERSION 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_thread_num(void) { return 0; }
    #endif
    """
    int CYR_OPENMP_VERSION
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil


# Below this many elements per thread, another thread costs more than it saves
# (waking a thread is a few microseconds; a memory-bound kernel moves about
# 10 GB/s per core, so 64 KiB of work per thread is the break-even region).
cdef enum:
    ELEMENTWISE_GRAIN = 32768


cdef inline int threads_for(Py_ssize_t work, Py_ssize_t grain, int n_threads) noexcept nogil:
    """How many threads to use for `work` items when `n_threads` are allowed:
    1 (no parallel region at all) for small work, never more than work // grain."""
    cdef Py_ssize_t useful
    if n_threads <= 1 or work < 2 * grain:
        return 1
    useful = work // grain
    return <int>useful if useful < n_threads else n_threads


cdef int resolve_threads(object num_threads) except -1
