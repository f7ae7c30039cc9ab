"""Cython entry points of the activation kernels (include/cyrelu/activations.h).

The wrapper layer (cyrelu/activations.py) has already validated everything:
inputs and ``out`` are aligned, native-endian float16/32/64 arrays of one shape
and dtype, and ``out`` overlaps an input only by being exactly that input.  This
layer only splits the work across threads, releases the GIL and calls C.

``unary_fast``/``binary_fast`` take the common case (plain C-contiguous,
aligned, native float32/float64 ndarrays) straight from the public function and
check it at C speed: for n = 1e3 a Python-level check would cost more than the
kernel.  They return None for anything else, which then goes through the full
validation in the wrapper layer.

Two paths:
  flat     every array contiguous in the same order: one 1-D loop over memory,
           cut into one chunk per thread.
  strided  anything else: the caller passes a coalesced iteration layout
           (shape, per-array byte strides, innermost axis last); rows of the
           innermost axis are shared out across threads.
"""

from cython.parallel cimport prange
cimport numpy as cnp
from libc.string cimport memcpy

from cyrelu._ndarray cimport disjoint_or_same, plain_array, same_shape
from cyrelu._parallel cimport threads_for, resolve_threads, ELEMENTWISE_GRAIN

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    object PyArray_NewLikeArray(cnp.ndarray prototype, cnp.NPY_ORDER order,
                                cnp.PyArray_Descr *descr, int subok)


cdef extern from "cyrelu/activations.h" nogil:
    # the activation table (cyrelu/cuda/activation_table.h)
    int CYR_ACT_NONE
    ctypedef struct cyr_act_info:
        const char *name
        int code
        const char *params
        const char *from_output
    const cyr_act_info cyr_act_table[]
    int CYR_ACT_TABLE_LEN
    const char cyr_bn_forward_names[]
    const char cyr_bn_backward_names[]
    void cyr_unary_f32(int op, const float *x, float *y, Py_ssize_t n, float a, float b)
    void cyr_unary_f64(int op, const double *x, double *y, Py_ssize_t n, double a, double b)
    void cyr_unary_strided_f32(int op, const char *x, Py_ssize_t sx, char *y, Py_ssize_t sy,
                               Py_ssize_t n, float a, float b)
    void cyr_unary_strided_f64(int op, const char *x, Py_ssize_t sx, char *y, Py_ssize_t sy,
                               Py_ssize_t n, double a, double b)
    void cyr_binary_f32(int op, const float *g, const float *x, float *out, Py_ssize_t n,
                        float a, float b)
    void cyr_binary_f64(int op, const double *g, const double *x, double *out, Py_ssize_t n,
                        double a, double b)
    void cyr_binary_strided_f32(int op, const char *g, Py_ssize_t sg, const char *x,
                                Py_ssize_t sx, char *out, Py_ssize_t so, Py_ssize_t n,
                                float a, float b)
    void cyr_binary_strided_f64(int op, const char *g, Py_ssize_t sg, const char *x,
                                Py_ssize_t sx, char *out, Py_ssize_t so, Py_ssize_t n,
                                double a, double b)
    # float16 data as its bit patterns (cyr_half), alpha in float
    ctypedef unsigned short cyr_half
    void cyr_unary_f16(int op, const cyr_half *x, cyr_half *y, Py_ssize_t n, float a, float b)
    void cyr_unary_strided_f16(int op, const char *x, Py_ssize_t sx, char *y, Py_ssize_t sy,
                               Py_ssize_t n, float a, float b)
    void cyr_binary_f16(int op, const cyr_half *g, const cyr_half *x, cyr_half *out,
                        Py_ssize_t n, float a, float b)
    void cyr_binary_strided_f16(int op, const char *g, Py_ssize_t sg, const char *x,
                                Py_ssize_t sx, char *out, Py_ssize_t so, Py_ssize_t n,
                                float a, float b)

# The element types of the kernels: float16 (as its bits), float32, float64.  alpha
# travels as double and is rounded to the arithmetic's type (float for float16 and
# float32) at the C call.
ctypedef fused elem_t:
    cyr_half
    float
    double

# The activation table, as the C kernels were compiled with it: name -> (code, params,
# from_output), in code order (read by cyrelu/_activation_table.py), and the code of no
# activation (BatchNorm's activation=None).
ACT_NONE = CYR_ACT_NONE
ACTIVATIONS = {
    cyr_act_table[i].name.decode("ascii"): (
        cyr_act_table[i].code,
        cyr_act_table[i].params.decode("ascii"),
        cyr_act_table[i].from_output.decode("ascii"),
    )
    for i in range(CYR_ACT_TABLE_LEN)
}
# The activations BatchNorm's kernels fuse into its forward, and into its backward too.
BN_FORWARD = tuple(cyr_bn_forward_names.decode("ascii").split())
BN_BACKWARD = tuple(cyr_bn_backward_names.decode("ascii").split())

# Chunk boundaries fall on multiples of this many elements (a 64-byte line for float32).
cdef enum:
    CHUNK_ALIGN = 16
    MAX_DIMS = 64


# ---- one call of the C kernel on a range --------------------------------------------

cdef inline void _unary_range(int op, const elem_t *x, elem_t *y, Py_ssize_t n,
                              double a, double b) noexcept nogil:
    if elem_t is float:
        cyr_unary_f32(op, x, y, n, <float>a, <float>b)
    elif elem_t is double:
        cyr_unary_f64(op, x, y, n, a, b)
    else:
        cyr_unary_f16(op, x, y, n, <float>a, <float>b)


cdef inline void _binary_range(int op, const elem_t *g, const elem_t *x, elem_t *out,
                               Py_ssize_t n, double a, double b) noexcept nogil:
    if elem_t is float:
        cyr_binary_f32(op, g, x, out, n, <float>a, <float>b)
    elif elem_t is double:
        cyr_binary_f64(op, g, x, out, n, a, b)
    else:
        cyr_binary_f16(op, g, x, out, n, <float>a, <float>b)


cdef inline Py_ssize_t _chunk(Py_ssize_t n, int nt) noexcept nogil:
    cdef Py_ssize_t c = (n + nt - 1) // nt
    return (c + CHUNK_ALIGN - 1) // CHUNK_ALIGN * CHUNK_ALIGN


# ---- flat path ----------------------------------------------------------------------

cdef void _unary_flat(int op, const elem_t *x, elem_t *y, Py_ssize_t n, double a, double b,
                      int nt) noexcept nogil:
    cdef Py_ssize_t chunk, start
    cdef int t
    if nt <= 1:
        _unary_range(op, x, y, n, a, b)
        return
    chunk = _chunk(n, nt)
    for t in prange(nt, schedule="static", num_threads=nt):
        start = t * chunk
        if start < n:
            _unary_range(op, x + start, y + start, min(chunk, n - start), a, b)


cdef void _binary_flat(int op, const elem_t *g, const elem_t *x, elem_t *out,
                       Py_ssize_t n, double a, double b, int nt) noexcept nogil:
    cdef Py_ssize_t chunk, start
    cdef int t
    if nt <= 1:
        _binary_range(op, g, x, out, n, a, b)
        return
    chunk = _chunk(n, nt)
    for t in prange(nt, schedule="static", num_threads=nt):
        start = t * chunk
        if start < n:
            _binary_range(op, g + start, x + start, out + start, min(chunk, n - start), a, b)


def unary_flat(int op, cnp.ndarray x, cnp.ndarray y, double alpha, num_threads, double beta=0.0):
    """y = f(x) over contiguous x and y of one layout (y may be x)."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef int nt = threads_for(n, ELEMENTWISE_GRAIN, resolve_threads(num_threads))
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = cnp.PyArray_DATA(y)
    if n == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _unary_flat[float](op, <const float *>xp, <float *>yp, n, alpha, beta, nt)
        elif typenum == cnp.NPY_FLOAT64:
            _unary_flat[double](op, <const double *>xp, <double *>yp, n, alpha, beta, nt)
        else:
            _unary_flat[cyr_half](op, <const cyr_half *>xp, <cyr_half *>yp, n, alpha, beta, nt)


def binary_flat(int op, cnp.ndarray g, cnp.ndarray x, cnp.ndarray out, double alpha,
                num_threads, double beta=0.0):
    """out = f'(x) * g over contiguous arrays of one layout (out may be g or x)."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef int nt = threads_for(n, ELEMENTWISE_GRAIN, resolve_threads(num_threads))
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef void *gp = cnp.PyArray_DATA(g)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *op_ = cnp.PyArray_DATA(out)
    if n == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _binary_flat[float](op, <const float *>gp, <const float *>xp, <float *>op_, n,
                                alpha, beta, nt)
        elif typenum == cnp.NPY_FLOAT64:
            _binary_flat[double](op, <const double *>gp, <const double *>xp, <double *>op_, n,
                                 alpha, beta, nt)
        else:
            _binary_flat[cyr_half](op, <const cyr_half *>gp, <const cyr_half *>xp,
                                   <cyr_half *>op_, n, alpha, beta, nt)


# ---- the bandwidth ruler --------------------------------------------------------------

def copy_flat(cnp.ndarray src, cnp.ndarray dst, num_threads):
    """dst[...] = src for contiguous arrays of one size, split across threads exactly like
    the kernels above: the memory-bandwidth limit the benchmarks compare against."""
    cdef Py_ssize_t nbytes = cnp.PyArray_NBYTES(src), chunk, start
    cdef int nt = threads_for(cnp.PyArray_SIZE(src), ELEMENTWISE_GRAIN,
                              resolve_threads(num_threads))
    cdef char *s = <char *>cnp.PyArray_DATA(src)
    cdef char *d = <char *>cnp.PyArray_DATA(dst)
    cdef int t
    if cnp.PyArray_NBYTES(dst) != nbytes:
        raise ValueError("copy_flat: sizes differ")
    with nogil:
        if nt <= 1:
            memcpy(d, s, nbytes)
        else:
            chunk = _chunk(nbytes, nt)
            for t in prange(nt, schedule="static", num_threads=nt):
                start = t * chunk
                if start < nbytes:
                    memcpy(d + start, s + start, min(chunk, nbytes - start))


# ---- fast entry for the common case --------------------------------------------------

cdef inline object _fast_out(cnp.ndarray x, object out, int typenum):
    """`out` ready to write (a new array if None), or None if it needs the general path."""
    cdef cnp.ndarray o
    if out is None:
        return PyArray_NewLikeArray(x, cnp.NPY_KEEPORDER, NULL, 0)
    if not plain_array(out, typenum, True):
        return None
    o = <cnp.ndarray>out
    if not cnp.PyArray_ISWRITEABLE(o) or not same_shape(x, o):
        return None
    return o


cdef inline bint _fast_alpha(object alpha, double *value) noexcept:
    """A plain finite float/int alpha (not bool); anything else goes the general way."""
    cdef type t = type(alpha)
    if t is float or t is int:
        try:
            value[0] = <double>alpha
        except Exception:
            return False
        return value[0] - value[0] == 0.0    # finite
    return False


def unary_fast(int op, x, out, alpha, num_threads, beta=0.0):
    """Common-case y = f(x): returns y, or None when the general path must handle it."""
    cdef cnp.ndarray xa, ya
    cdef double a = 0.0, b = 0.0
    if not plain_array(x, -1, True):
        return None
    xa = <cnp.ndarray>x
    if not _fast_alpha(alpha, &a) or not _fast_alpha(beta, &b):
        return None
    res = _fast_out(xa, out, cnp.PyArray_TYPE(xa))
    if res is None:
        return None
    ya = <cnp.ndarray>res
    if not disjoint_or_same(xa, ya):
        return None
    unary_flat(op, xa, ya, a, num_threads, b)
    return ya


def binary_fast(int op, g, x, out, alpha, num_threads, beta=0.0):
    """Common-case out = f'(x) * g: returns out, or None for the general path."""
    cdef cnp.ndarray ga, xa, oa
    cdef double a = 0.0, b = 0.0
    if not plain_array(x, -1, True):
        return None
    xa = <cnp.ndarray>x
    if not plain_array(g, cnp.PyArray_TYPE(xa), True) or not same_shape(xa, <cnp.ndarray>g):
        return None
    ga = <cnp.ndarray>g
    if not _fast_alpha(alpha, &a) or not _fast_alpha(beta, &b):
        return None
    res = _fast_out(xa, out, cnp.PyArray_TYPE(xa))
    if res is None:
        return None
    oa = <cnp.ndarray>res
    if not disjoint_or_same(xa, oa) or not disjoint_or_same(ga, oa):
        return None
    binary_flat(op, ga, xa, oa, a, num_threads, b)
    return oa


# ---- strided path -------------------------------------------------------------------

cdef struct Layout:
    int ndim                      # >= 1; axis ndim-1 is the innermost loop
    Py_ssize_t shape[MAX_DIMS]
    Py_ssize_t strides[3][MAX_DIMS]   # byte strides of up to three arrays
    char *data[3]


cdef inline void _row_offsets(const Layout *L, Py_ssize_t row, int narrays,
                              Py_ssize_t *offsets) noexcept nogil:
    """Byte offsets of row `row` (a flat index over every axis but the innermost)."""
    cdef Py_ssize_t d, k
    cdef Py_ssize_t idx
    for k in range(narrays):
        offsets[k] = 0
    for d in range(L.ndim - 2, -1, -1):
        idx = row % L.shape[d]
        row = row // L.shape[d]
        for k in range(narrays):
            offsets[k] += idx * L.strides[k][d]


cdef inline void _unary_row(int op, const Layout *L, Py_ssize_t row, int typenum,
                            double a, double b) noexcept nogil:
    cdef Py_ssize_t off[3]
    cdef int last = L.ndim - 1
    _row_offsets(L, row, 2, off)
    if typenum == cnp.NPY_FLOAT32:
        cyr_unary_strided_f32(op, L.data[0] + off[0], L.strides[0][last],
                              L.data[1] + off[1], L.strides[1][last], L.shape[last],
                              <float>a, <float>b)
    elif typenum == cnp.NPY_FLOAT64:
        cyr_unary_strided_f64(op, L.data[0] + off[0], L.strides[0][last],
                              L.data[1] + off[1], L.strides[1][last], L.shape[last], a, b)
    else:
        cyr_unary_strided_f16(op, L.data[0] + off[0], L.strides[0][last],
                              L.data[1] + off[1], L.strides[1][last], L.shape[last],
                              <float>a, <float>b)


cdef inline void _binary_row(int op, const Layout *L, Py_ssize_t row, int typenum,
                             double a, double b) noexcept nogil:
    cdef Py_ssize_t off[3]
    cdef int last = L.ndim - 1
    _row_offsets(L, row, 3, off)
    if typenum == cnp.NPY_FLOAT32:
        cyr_binary_strided_f32(op, L.data[0] + off[0], L.strides[0][last],
                               L.data[1] + off[1], L.strides[1][last],
                               L.data[2] + off[2], L.strides[2][last], L.shape[last],
                               <float>a, <float>b)
    elif typenum == cnp.NPY_FLOAT64:
        cyr_binary_strided_f64(op, L.data[0] + off[0], L.strides[0][last],
                               L.data[1] + off[1], L.strides[1][last],
                               L.data[2] + off[2], L.strides[2][last], L.shape[last], a, b)
    else:
        cyr_binary_strided_f16(op, L.data[0] + off[0], L.strides[0][last],
                               L.data[1] + off[1], L.strides[1][last],
                               L.data[2] + off[2], L.strides[2][last], L.shape[last],
                               <float>a, <float>b)


cdef void _strided(int op, const Layout *L, int narrays, int typenum, double a, double b,
                   int nt) noexcept nogil:
    cdef Py_ssize_t rows = 1, r
    cdef int d
    for d in range(L.ndim - 1):
        rows *= L.shape[d]
    nt = threads_for(rows * L.shape[L.ndim - 1], ELEMENTWISE_GRAIN, nt)
    if nt > rows:
        nt = <int>rows
    if nt <= 1:
        for r in range(rows):
            if narrays == 2:
                _unary_row(op, L, r, typenum, a, b)
            else:
                _binary_row(op, L, r, typenum, a, b)
    else:
        for r in prange(rows, schedule="static", num_threads=nt):
            if narrays == 2:
                _unary_row(op, L, r, typenum, a, b)
            else:
                _binary_row(op, L, r, typenum, a, b)


cdef int _fill_layout(Layout *L, tuple shape, tuple strides, tuple arrays) except -1:
    cdef Py_ssize_t d, k
    cdef cnp.ndarray a
    L.ndim = len(shape)
    if L.ndim < 1 or L.ndim > MAX_DIMS:
        raise ValueError("internal: layout ndim %d out of range" % L.ndim)
    for d in range(L.ndim):
        L.shape[d] = shape[d]
    for k in range(len(arrays)):
        a = arrays[k]
        L.data[k] = <char *>cnp.PyArray_DATA(a)
        for d in range(L.ndim):
            L.strides[k][d] = strides[k][d]
    return 0


def unary_strided(int op, cnp.ndarray x, cnp.ndarray y, tuple shape, tuple strides,
                  double alpha, num_threads, double beta=0.0):
    """y = f(x) over a coalesced layout of the arrays' elements: `shape` and, per
    array, byte `strides` (x_strides, y_strides); negative strides are fine."""
    cdef Layout L
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    _fill_layout(&L, shape, strides, (x, y))
    with nogil:
        _strided(op, &L, 2, typenum, alpha, beta, nt)


def binary_strided(int op, cnp.ndarray g, cnp.ndarray x, cnp.ndarray out, tuple shape,
                   tuple strides, double alpha, num_threads, double beta=0.0):
    """out = f'(x) * g over a coalesced layout (see unary_strided)."""
    cdef Layout L
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    _fill_layout(&L, shape, strides, (g, x, out))
    with nogil:
        _strided(op, &L, 3, typenum, alpha, beta, nt)
