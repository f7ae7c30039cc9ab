"""Cython entry point of the diagnostic counts (include/cyrelu/diagnostics.h).

The wrapper layer (cyrelu/diagnostics.py) has already validated everything and
handed over an aligned, native-endian float16/float32/float64 3-D view (outer, C, inner)
of the data, with any strides, and a threshold already in the data's type.
This layer only cuts the box into one piece per thread (along its longest
axis), releases the GIL, lets every thread count into its own row of partial
counts, and adds the rows up: integer counts, so the result does not depend on
the thread count.
"""

from cython.parallel cimport prange
cimport numpy as cnp
import numpy as np

from cyrelu._parallel cimport threads_for, resolve_threads, ELEMENTWISE_GRAIN

cnp.import_array()


cdef extern from "cyrelu/diagnostics.h" nogil:
    int CYR_DIAG_ZEROS
    int CYR_DIAG_ALIVE
    void cyr_diag_count_f32(int op, const char *x, Py_ssize_t so, Py_ssize_t sc, Py_ssize_t si,
                            Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t c0, Py_ssize_t c1,
                            Py_ssize_t i0, Py_ssize_t i1, float t, Py_ssize_t *acc)
    void cyr_diag_count_f64(int op, const char *x, Py_ssize_t so, Py_ssize_t sc, Py_ssize_t si,
                            Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t c0, Py_ssize_t c1,
                            Py_ssize_t i0, Py_ssize_t i1, double t, Py_ssize_t *acc)
    void cyr_diag_count_f16(int op, const char *x, Py_ssize_t so, Py_ssize_t sc, Py_ssize_t si,
                            Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t c0, Py_ssize_t c1,
                            Py_ssize_t i0, Py_ssize_t i1, float t, Py_ssize_t *acc)

OP_ZEROS = CYR_DIAG_ZEROS
OP_ALIVE = CYR_DIAG_ALIVE

cdef enum:
    ACC_PAD = 16   # Py_ssize_t entries: at least 64 bytes
    KIND_F64 = 0
    KIND_F32 = 1
    KIND_F16 = 2


cdef struct Box:
    const char *data
    Py_ssize_t shape[3]
    Py_ssize_t strides[3]


cdef inline void _count_piece(int op, const Box *b, int split, Py_ssize_t lo, Py_ssize_t hi,
                              int kind, double t, Py_ssize_t *acc) noexcept nogil:
    """Count the piece [lo, hi) of the box along axis `split` into acc."""
    cdef Py_ssize_t r[6]
    r[0] = 0
    r[1] = b.shape[0]
    r[2] = 0
    r[3] = b.shape[1]
    r[4] = 0
    r[5] = b.shape[2]
    r[2 * split] = lo
    r[2 * split + 1] = hi
    if lo >= hi:
        return
    if kind == KIND_F32:
        cyr_diag_count_f32(op, b.data, b.strides[0], b.strides[1], b.strides[2],
                           r[0], r[1], r[2], r[3], r[4], r[5], <float>t, acc)
    elif kind == KIND_F16:
        cyr_diag_count_f16(op, b.data, b.strides[0], b.strides[1], b.strides[2],
                           r[0], r[1], r[2], r[3], r[4], r[5], <float>t, acc)
    else:
        cyr_diag_count_f64(op, b.data, b.strides[0], b.strides[1], b.strides[2],
                           r[0], r[1], r[2], r[3], r[4], r[5], t, acc)


def channel_counts(int op, cnp.ndarray x, double threshold, num_threads):
    """Per-channel counts (int64, shape (C,)) of a 3-D float16/float32/float64 view x
    of shape (outer, C, inner); `threshold` is used by OP_ALIVE only and must be
    exactly representable in float32 for float16/float32 data (float64 otherwise)."""
    cdef Box b
    cdef int d, split, t, nt
    cdef Py_ssize_t work, chunk, lo, hi, nchan, row
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef int kind = (KIND_F32 if typenum == cnp.NPY_FLOAT32
                     else KIND_F16 if typenum == cnp.NPY_FLOAT16 else KIND_F64)
    cdef cnp.ndarray acc
    cdef Py_ssize_t *accp
    if cnp.PyArray_NDIM(x) != 3:
        raise ValueError("internal: channel_counts needs a 3-D view")
    b.data = <const char *>cnp.PyArray_DATA(x)
    for d in range(3):
        b.shape[d] = cnp.PyArray_DIM(x, d)
        b.strides[d] = cnp.PyArray_STRIDE(x, d)
    nchan = b.shape[1]
    work = b.shape[0] * b.shape[1] * b.shape[2]
    nt = threads_for(work, ELEMENTWISE_GRAIN, resolve_threads(num_threads))
    # cut along the longest axis (ties: the outermost)
    split = 0
    for d in range(1, 3):
        if b.shape[d] > b.shape[split]:
            split = d
    if nt > b.shape[split]:
        nt = <int>b.shape[split]
    if nt < 1:
        nt = 1
    # one row of partial counts per thread, 64 bytes apart (no false sharing)
    row = nchan + ACC_PAD
    acc = np.zeros((nt, row), dtype=np.intp)
    accp = <Py_ssize_t *>cnp.PyArray_DATA(acc)
    if work == 0:
        return acc[:, :nchan].sum(axis=0, dtype=np.int64)
    with nogil:
        if nt == 1:
            _count_piece(op, &b, split, 0, b.shape[split], kind, threshold, accp)
        else:
            chunk = (b.shape[split] + nt - 1) // nt
            for t in prange(nt, schedule="static", num_threads=nt):
                lo = t * chunk
                hi = min(lo + chunk, b.shape[split])
                _count_piece(op, &b, split, lo, hi, kind, threshold, accp + t * row)
    return acc[:, :nchan].sum(axis=0, dtype=np.int64)
