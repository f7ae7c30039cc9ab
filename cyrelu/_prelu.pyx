"""Cython entry points of the PReLU kernels (include/cyrelu/prelu.h).

The wrapper layer (cyrelu/activations.py) has already validated everything: the
arrays are aligned, native-endian and contiguous in one order, seen in memory order
as (outer, C, inner); the weight is a contiguous array of C values (C = 1 for a
single weight) in the data's type (float32 for float16 data); an output overlaps
an input only by being exactly that input.  This layer splits the work across
threads, releases the GIL and calls C.

The elementwise passes cut the flat range into one chunk per thread.  The
grad_weight sums cut each channel into pieces fixed by the shape alone
(prelu.h) and add the pieces in order, so that no bit depends on the thread
count.
"""

from cython.parallel cimport prange
cimport numpy as cnp
import numpy as np

from cyrelu._ndarray cimport disjoint, plain_array
from cyrelu._parallel cimport threads_for, resolve_threads, ELEMENTWISE_GRAIN

cnp.import_array()


cdef extern from "cyrelu/prelu.h" nogil:
    ctypedef unsigned short cyr_half
    Py_ssize_t CYR_PRELU_PIECE
    void cyr_prelu_f32(const float *x, float *y, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t C,
                       Py_ssize_t inner, const float *w)
    void cyr_prelu_f64(const double *x, double *y, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t C,
                       Py_ssize_t inner, const double *w)
    void cyr_prelu_f16(const cyr_half *x, cyr_half *y, Py_ssize_t n, Py_ssize_t pos,
                       Py_ssize_t C, Py_ssize_t inner, const float *w)
    void cyr_prelu_backward_f32(const float *g, const float *x, float *out, Py_ssize_t n,
                                Py_ssize_t pos, Py_ssize_t C, Py_ssize_t inner, const float *w)
    void cyr_prelu_backward_f64(const double *g, const double *x, double *out, Py_ssize_t n,
                                Py_ssize_t pos, Py_ssize_t C, Py_ssize_t inner,
                                const double *w)
    void cyr_prelu_backward_f16(const cyr_half *g, const cyr_half *x, cyr_half *out,
                                Py_ssize_t n, Py_ssize_t pos, Py_ssize_t C, Py_ssize_t inner,
                                const float *w)
    void cyr_prelu_wsum_f32(const float *g, const float *x, Py_ssize_t outer, Py_ssize_t C,
                            Py_ssize_t inner, Py_ssize_t plen, Py_ssize_t p, Py_ssize_t c0,
                            Py_ssize_t c1, double *acc)
    void cyr_prelu_wsum_f64(const double *g, const double *x, Py_ssize_t outer, Py_ssize_t C,
                            Py_ssize_t inner, Py_ssize_t plen, Py_ssize_t p, Py_ssize_t c0,
                            Py_ssize_t c1, double *acc)
    void cyr_prelu_backward_fused_f32(const float *g, const float *x, float *out,
                                      const float *w, Py_ssize_t outer, Py_ssize_t C,
                                      Py_ssize_t inner, Py_ssize_t plen, Py_ssize_t p,
                                      Py_ssize_t c0, Py_ssize_t c1, double *acc)
    void cyr_prelu_backward_fused_f64(const double *g, const double *x, double *out,
                                      const double *w, Py_ssize_t outer, Py_ssize_t C,
                                      Py_ssize_t inner, Py_ssize_t plen, Py_ssize_t p,
                                      Py_ssize_t c0, Py_ssize_t c1, double *acc)

# Chunk boundaries fall on multiples of this many elements (a 64-byte line for float32).
cdef enum:
    CHUNK_ALIGN = 16
    # channels-last grad_weight sums: channel blocks at least this wide (threads that
    # write grad_input share a cache line only at a block's ends), and pieces at most
    LANES_MIN = 1024
    PIECES_MAX = 64
    # channels last: the elementwise passes run rows of at least this many elements
    ROW_MIN = 1024


cdef inline Py_ssize_t _chunk(Py_ssize_t n, int nt) noexcept nogil:
    cdef Py_ssize_t c = (n + nt - 1) // nt
    return (c + CHUNK_ALIGN - 1) // CHUNK_ALIGN * CHUNK_ALIGN


cdef inline void _forward_range(int typenum, const char *x, char *y, Py_ssize_t start,
                                Py_ssize_t m, Py_ssize_t C, Py_ssize_t inner,
                                const void *w) noexcept nogil:
    if typenum == cnp.NPY_FLOAT32:
        cyr_prelu_f32(<const float *>x + start, <float *>y + start, m, start, C, inner,
                      <const float *>w)
    elif typenum == cnp.NPY_FLOAT64:
        cyr_prelu_f64(<const double *>x + start, <double *>y + start, m, start, C, inner,
                      <const double *>w)
    else:
        cyr_prelu_f16(<const cyr_half *>x + start, <cyr_half *>y + start, m, start, C, inner,
                      <const float *>w)


cdef inline void _backward_range(int typenum, const char *g, const char *x, char *out,
                                 Py_ssize_t start, Py_ssize_t m, Py_ssize_t C,
                                 Py_ssize_t inner, const void *w) noexcept nogil:
    if typenum == cnp.NPY_FLOAT32:
        cyr_prelu_backward_f32(<const float *>g + start, <const float *>x + start,
                               <float *>out + start, m, start, C, inner, <const float *>w)
    elif typenum == cnp.NPY_FLOAT64:
        cyr_prelu_backward_f64(<const double *>g + start, <const double *>x + start,
                               <double *>out + start, m, start, C, inner, <const double *>w)
    else:
        cyr_prelu_backward_f16(<const cyr_half *>g + start, <const cyr_half *>x + start,
                               <cyr_half *>out + start, m, start, C, inner, <const float *>w)


cdef inline tuple _rows(cnp.ndarray w, Py_ssize_t C, Py_ssize_t inner, Py_ssize_t n):
    """Channels last with few channels: the weight repeated k times as the weight of
    k * C channels (element i's weight is w[i % C] either way), so that the kernels run
    rows of at least ROW_MIN elements instead of C."""
    cdef Py_ssize_t k
    if inner != 1 or C <= 1 or C >= ROW_MIN or n <= C:
        return w, C
    k = (ROW_MIN + C - 1) // C
    return np.tile(w, k), C * k


def forward(cnp.ndarray x, cnp.ndarray y, Py_ssize_t C, Py_ssize_t inner, cnp.ndarray w,
            num_threads):
    """y = prelu(x) over contiguous x and y of one layout (y may be x)."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x), chunk, start
    cdef int nt = threads_for(n, ELEMENTWISE_GRAIN, resolve_threads(num_threads))
    cdef int typenum = cnp.PyArray_TYPE(x), t
    cdef const char *xp = <const char *>cnp.PyArray_DATA(x)
    cdef char *yp = <char *>cnp.PyArray_DATA(y)
    cdef const void *wp
    if n == 0:
        return
    w, C = _rows(w, C, inner, n)
    wp = cnp.PyArray_DATA(w)
    with nogil:
        if nt <= 1:
            _forward_range(typenum, xp, yp, 0, n, C, inner, wp)
        else:
            chunk = _chunk(n, nt)
            for t in prange(nt, schedule="static", num_threads=nt):
                start = t * chunk
                if start < n:
                    _forward_range(typenum, xp, yp, start, min(chunk, n - start), C, inner,
                                   wp)


def backward_input(cnp.ndarray g, cnp.ndarray x, cnp.ndarray out, Py_ssize_t C,
                   Py_ssize_t inner, cnp.ndarray w, num_threads):
    """out = prelu's grad_input over contiguous arrays of one layout (out may be g or x)."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x), chunk, start
    cdef int nt = threads_for(n, ELEMENTWISE_GRAIN, resolve_threads(num_threads))
    cdef int typenum = cnp.PyArray_TYPE(x), t
    cdef const char *gp = <const char *>cnp.PyArray_DATA(g)
    cdef const char *xp = <const char *>cnp.PyArray_DATA(x)
    cdef char *op_ = <char *>cnp.PyArray_DATA(out)
    cdef const void *wp
    if n == 0:
        return
    w, C = _rows(w, C, inner, n)
    wp = cnp.PyArray_DATA(w)
    with nogil:
        if nt <= 1:
            _backward_range(typenum, gp, xp, op_, 0, n, C, inner, wp)
        else:
            chunk = _chunk(n, nt)
            for t in prange(nt, schedule="static", num_threads=nt):
                start = t * chunk
                if start < n:
                    _backward_range(typenum, gp, xp, op_, start, min(chunk, n - start), C,
                                    inner, wp)


# ---- fast entry for the common case --------------------------------------------------

cdef extern from "numpy/arrayobject.h":
    object PyArray_NewLikeArray(cnp.ndarray prototype, cnp.NPY_ORDER order,
                                cnp.PyArray_Descr *descr, int subok)


def forward_fast(x, w, out, axis, num_threads):
    """Common-case prelu, checked at C speed: x a C-contiguous float32/float64 ndarray,
    w a contiguous 1-D ndarray of its type and a valid length, out None or an array like
    x (x itself, or disjoint from x and w), axis an int in range.  Returns the output,
    or None for everything else, which the general path validates (and refuses)."""
    cdef cnp.ndarray xa, wa, ya
    cdef int typenum, nd, ax, d
    cdef Py_ssize_t n, C, inner = 1, nw
    if not plain_array(x, -1, False) or type(axis) is not int:
        return None
    xa = <cnp.ndarray>x
    typenum = cnp.PyArray_TYPE(xa)
    if not plain_array(w, typenum, False) or cnp.PyArray_NDIM(<cnp.ndarray>w) != 1:
        return None
    wa = <cnp.ndarray>w
    n = cnp.PyArray_SIZE(xa)
    nw = cnp.PyArray_DIM(wa, 0)
    nd = cnp.PyArray_NDIM(xa)
    if n == 0:
        return None
    if nw == 1:
        C, inner = 1, n
    else:
        if nd < 2 or not -nd <= axis < nd:
            return None
        ax = axis % nd
        C = cnp.PyArray_DIM(xa, ax)
        if nw != C:
            return None
        for d in range(ax + 1, nd):
            inner *= cnp.PyArray_DIM(xa, d)
    if out is None:
        ya = <cnp.ndarray>PyArray_NewLikeArray(xa, cnp.NPY_KEEPORDER, NULL, 0)
    else:
        if not plain_array(out, typenum, False):
            return None
        ya = <cnp.ndarray>out
        if not cnp.PyArray_ISWRITEABLE(ya) or cnp.PyArray_NDIM(ya) != nd:
            return None
        for d in range(nd):
            if cnp.PyArray_DIM(ya, d) != cnp.PyArray_DIM(xa, d):
                return None
        if (cnp.PyArray_DATA(ya) != cnp.PyArray_DATA(xa) and not disjoint(xa, ya)) \
                or not disjoint(wa, ya):
            return None
    forward(xa, ya, C, inner, wa, num_threads)
    return ya


cdef inline void _wsum_unit(int typenum, const void *g, const void *x, void *out,
                            const void *w, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                            Py_ssize_t plen, Py_ssize_t p, Py_ssize_t c0, Py_ssize_t c1,
                            double *acc) noexcept nogil:
    """Piece p of channels [c0, c1): the sums, and grad_input into out unless it is NULL."""
    if out == NULL:
        if typenum == cnp.NPY_FLOAT32:
            cyr_prelu_wsum_f32(<const float *>g, <const float *>x, outer, C, inner, plen, p,
                               c0, c1, acc)
        else:
            cyr_prelu_wsum_f64(<const double *>g, <const double *>x, outer, C, inner, plen, p,
                               c0, c1, acc)
    elif typenum == cnp.NPY_FLOAT32:
        cyr_prelu_backward_fused_f32(<const float *>g, <const float *>x, <float *>out,
                                     <const float *>w, outer, C, inner, plen, p, c0, c1, acc)
    else:
        cyr_prelu_backward_fused_f64(<const double *>g, <const double *>x, <double *>out,
                                     <const double *>w, outer, C, inner, plen, p, c0, c1, acc)


cdef object _sums(cnp.ndarray g, cnp.ndarray x, void *out, const void *w, Py_ssize_t outer,
                  Py_ssize_t C, Py_ssize_t inner, num_threads):
    cdef Py_ssize_t length = outer * inner, n = cnp.PyArray_SIZE(x)
    cdef Py_ssize_t plen, pieces, width, blocks, units, u, p, c0, c, cpad
    cdef int nt = threads_for(n, ELEMENTWISE_GRAIN, resolve_threads(num_threads))
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef const void *gp = cnp.PyArray_DATA(g)
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef cnp.ndarray part
    cdef cnp.ndarray sums = np.zeros(C, dtype=np.float64)
    cdef double *pp
    cdef double *sp = <double *>cnp.PyArray_DATA(sums)
    if n == 0:
        return sums
    # the pieces, fixed by the shape: CYR_PRELU_PIECE elements of a channel, or with the
    # channels last, rows holding about that many elements (at most PIECES_MAX pieces)
    if inner == 1:
        plen = max((CYR_PRELU_PIECE + C - 1) // C, (outer + PIECES_MAX - 1) // PIECES_MAX)
    else:
        plen = CYR_PRELU_PIECE
    pieces = (length + plen - 1) // plen
    # the piece sums, a row of cpad doubles per piece starting on a 64-byte line, the
    # blocks starting on lines too: no two threads write one line (sharing a line, the
    # threads taking neighbouring pieces at once took twice the time channels last)
    cpad = (C + 7) // 8 * 8
    part = np.empty(pieces * cpad + 8, dtype=np.float64)
    pp = <double *>cnp.PyArray_DATA(part)
    pp = pp + ((64 - <size_t>pp % 64) % 64) // 8
    # units of work: (piece, block of channels); a channel's piece sum is the same
    # whichever block computes it, so only the pieces are fixed by the shape.  A unit
    # walks its piece's rows in memory order through its block's channels (for runs,
    # channel by channel instead, each 4 KB run a jump of C * inner elements, the
    # backward took 1.4x the time on (100, 10, 1000) float32, 2 threads, Zen 5)
    blocks = min(C, max(1, (4 * nt + pieces - 1) // pieces))
    width = ((C + blocks - 1) // blocks + 7) // 8 * 8
    if inner == 1:
        width = max(LANES_MIN, width)
    blocks = (C + width - 1) // width
    units = pieces * blocks
    if nt > units:
        nt = <int>units
    with nogil:
        if nt <= 1:
            for u in range(units):
                p = u // blocks
                c0 = (u % blocks) * width
                _wsum_unit(typenum, gp, xp, out, w, outer, C, inner, plen, p, c0,
                           min(c0 + width, C), pp + p * cpad)
        else:
            for u in prange(units, schedule="dynamic", num_threads=nt):
                p = u // blocks
                c0 = (u % blocks) * width
                _wsum_unit(typenum, gp, xp, out, w, outer, C, inner, plen, p, c0,
                           min(c0 + width, C), pp + p * cpad)
        for p in range(pieces):
            for c in range(C):
                sp[c] += pp[p * cpad + c]
    return sums


def weight_sums(cnp.ndarray g, cnp.ndarray x, Py_ssize_t outer, Py_ssize_t C,
                Py_ssize_t inner, num_threads):
    """Per-channel sums (float64, shape (C,)) of ``x > 0 ? 0 : x * g`` over contiguous
    float32 or float64 g and x of one layout, seen in memory order as (outer, C, inner)."""
    return _sums(g, x, NULL, NULL, outer, C, inner, num_threads)


def backward_fused(cnp.ndarray g, cnp.ndarray x, cnp.ndarray out, cnp.ndarray w,
                   Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, num_threads):
    """weight_sums and backward_input in one pass (float32 or float64; out may be g or x):
    the same sums, bit for bit, and the same grad_input."""
    return _sums(g, x, cnp.PyArray_DATA(out), cnp.PyArray_DATA(w), outer, C, inner,
                 num_threads)
