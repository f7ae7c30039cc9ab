"""Cython entry points of the BatchNorm kernels (include/cyrelu/batchnorm.h).

The wrapper layer (cyrelu/batchnorm.py) has already validated everything: the big
arrays are aligned, C-contiguous float32/float64 arrays of one dtype seen as
(outer, C, inner); the per-channel arrays are float64 and C-contiguous.  This
layer picks the loop shape, splits the work across threads, releases the GIL and
calls C.

Loop shapes (see batchnorm.h):
  per channel  inner >= CHANNEL_MIN_INNER: threads own whole channels.
  per row      otherwise: rows of W = C * inner columns, cut into at most
               MAX_GROUPS fixed groups (their number depends only on the shape,
               never on the thread count), merged in group order.
Both shapes give bitwise identical results for any thread count: every channel,
row group or output piece is computed by one thread from the same inputs in the same
order, whichever thread takes it, so the loops hand the work out dynamically.
"""

cimport cython
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt
cimport numpy as cnp
import numpy as np

from cyrelu._parallel cimport threads_for, resolve_threads, ELEMENTWISE_GRAIN

cnp.import_array()


cdef extern from "cyrelu/batchnorm.h" nogil:
    int CYR_BN_ACT_NONE
    int CYR_BN_ACT_RELU
    int CYR_BN_ACT_LEAKY
    Py_ssize_t CYR_STREAM_MIN_BYTES
    void cyr_bn_chan_merge(double na, double *mean_a, double *m2_a, double nb,
                           const double *mean_b, const double *m2_b, Py_ssize_t w)
    void cyr_bn_train_channel_f32(const float *x, float *y, Py_ssize_t outer, Py_ssize_t C,
                                  Py_ssize_t inner, Py_ssize_t c, double w, double b, double eps,
                                  int act, float a, int stream, double *mean_out,
                                  double *var_out)
    void cyr_bn_train_channel_f64(const double *x, double *y, Py_ssize_t outer, Py_ssize_t C,
                                  Py_ssize_t inner, Py_ssize_t c, double w, double b, double eps,
                                  int act, double a, int stream, double *mean_out,
                                  double *var_out)
    void cyr_bn_affine_chan_rows_f32(int act, const float *x, float *y, Py_ssize_t r0,
                                     Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner,
                                     const float *scale, const float *shift, float a, int stream)
    void cyr_bn_affine_chan_rows_f64(int act, const double *x, double *y, Py_ssize_t r0,
                                     Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner,
                                     const double *scale, const double *shift, double a, int stream)
    void cyr_bn_affine_rows_f32(int act, const float *x, float *y, Py_ssize_t rows,
                                Py_ssize_t w, const float *scale, const float *shift, float a)
    void cyr_bn_affine_rows_f64(int act, const double *x, double *y, Py_ssize_t rows,
                                Py_ssize_t w, const double *scale, const double *shift, double a)
    void cyr_bn_group_colstats_f32(const float *x, Py_ssize_t rows, Py_ssize_t w,
                                   Py_ssize_t block_rows, double *gmean, double *gm2,
                                   double *tmean, double *tm2)
    void cyr_bn_group_colstats_f64(const double *x, Py_ssize_t rows, Py_ssize_t w,
                                   Py_ssize_t block_rows, double *gmean, double *gm2,
                                   double *tmean, double *tm2)
    void cyr_bn_backward_channel_f32(const float *dy, const float *x, const float *y, float *dx,
                                     Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                                     Py_ssize_t c, double mean, double invstd, double w,
                                     int train, int act, float a, int stream, double *sums)
    void cyr_bn_backward_channel_f64(const double *dy, const double *x, const double *y,
                                     double *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                                     Py_ssize_t c, double mean, double invstd, double w,
                                     int train, int act, double a, int stream, double *sums)
    void cyr_bn_dot_cols_f32(int act, const float *dy, const float *x, const float *y,
                             Py_ssize_t rows, Py_ssize_t w, const double *mean, float a,
                             double *s0, double *s1)
    void cyr_bn_dot_cols_f64(int act, const double *dy, const double *x, const double *y,
                             Py_ssize_t rows, Py_ssize_t w, const double *mean, double a,
                             double *s0, double *s1)
    void cyr_bn_dx_cols_f32(int act, int train, const float *dy, const float *x, const float *y,
                            float *dx, Py_ssize_t rows, Py_ssize_t w, const float *mean,
                            const float *k, const float *mdy, const float *A, float a)
    void cyr_bn_dx_cols_f64(int act, int train, const double *dy, const double *x,
                            const double *y, double *dx, Py_ssize_t rows, Py_ssize_t w,
                            const double *mean, const double *k, const double *mdy,
                            const double *A, double a)

ACT_NONE = CYR_BN_ACT_NONE
ACT_RELU = CYR_BN_ACT_RELU
ACT_LEAKY = CYR_BN_ACT_LEAKY

cdef enum:
    # A channel's runs shorter than this use the row layout instead.
    CHANNEL_MIN_INNER = 32
    # Row layout: a block (two passes in cache) holds about this many elements...
    BLOCK_ELEMS = 16384
    # ...and the rows are cut into at most this many fixed groups.
    MAX_GROUPS = 64
    # Elementwise passes: pieces per thread, handed out dynamically, so that a thread
    # slowed down by another process on its core does not hold the others up.
    CHUNKS_PER_THREAD = 8
    # Per-channel outputs stream only in contiguous runs of at least this many bytes.
    STREAM_MIN_RUN = 4096


def uses_channel_layout(Py_ssize_t inner):
    """True when (outer, C, inner) data takes the per-channel loop shape."""
    return inner >= CHANNEL_MIN_INNER


cdef inline void _train_channel(const floating *x, floating *y, Py_ssize_t outer, Py_ssize_t C,
                                Py_ssize_t inner, Py_ssize_t c, double w, double b, double eps,
                                int act, floating a, int stream, double *mean,
                                double *var) noexcept nogil:
    if floating is float:
        cyr_bn_train_channel_f32(x, y, outer, C, inner, c, w, b, eps, act, a, stream, mean, var)
    else:
        cyr_bn_train_channel_f64(x, y, outer, C, inner, c, w, b, eps, act, a, stream, mean, var)


cdef inline void _group_colstats(const floating *x, Py_ssize_t rows, Py_ssize_t w,
                                 Py_ssize_t block_rows, double *s) noexcept nogil:
    # s: 4 * w doubles: group mean, group M2, block scratch (2 * w)
    if floating is float:
        cyr_bn_group_colstats_f32(x, rows, w, block_rows, s, s + w, s + 2 * w, s + 3 * w)
    else:
        cyr_bn_group_colstats_f64(x, rows, w, block_rows, s, s + w, s + 2 * w, s + 3 * w)


cdef inline void _affine_rows(int act, const floating *x, floating *y, Py_ssize_t rows,
                              Py_ssize_t w, const floating *scale, const floating *shift,
                              floating a) noexcept nogil:
    if floating is float:
        cyr_bn_affine_rows_f32(act, x, y, rows, w, scale, shift, a)
    else:
        cyr_bn_affine_rows_f64(act, x, y, rows, w, scale, shift, a)


cdef inline void _affine_chan_rows(int act, const floating *x, floating *y, Py_ssize_t r0,
                                   Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner,
                                   const floating *scale, const floating *shift,
                                   floating a, int stream) noexcept nogil:
    if floating is float:
        cyr_bn_affine_chan_rows_f32(act, x, y, r0, r1, C, inner, scale, shift, a, stream)
    else:
        cyr_bn_affine_chan_rows_f64(act, x, y, r0, r1, C, inner, scale, shift, a, stream)


cdef inline void _backward_channel(const floating *dy, const floating *x, const floating *y,
                                   floating *dx, Py_ssize_t outer, Py_ssize_t C,
                                   Py_ssize_t inner, Py_ssize_t c, double mean, double invstd,
                                   double w, int train, int act, floating a, int stream,
                                   double *sums) noexcept nogil:
    if floating is float:
        cyr_bn_backward_channel_f32(dy, x, y, dx, outer, C, inner, c, mean, invstd, w, train,
                                    act, a, stream, sums)
    else:
        cyr_bn_backward_channel_f64(dy, x, y, dx, outer, C, inner, c, mean, invstd, w, train,
                                    act, a, stream, sums)


cdef inline void _dot_cols(int act, const floating *dy, const floating *x, const floating *y,
                           Py_ssize_t rows, Py_ssize_t w, const double *mean, floating a,
                           double *s) noexcept nogil:
    if floating is float:
        cyr_bn_dot_cols_f32(act, dy, x, y, rows, w, mean, a, s, s + w)
    else:
        cyr_bn_dot_cols_f64(act, dy, x, y, rows, w, mean, a, s, s + w)


cdef inline void _dx_cols(int act, int train, const floating *dy, const floating *x,
                          const floating *y, floating *dx, Py_ssize_t rows, Py_ssize_t w,
                          const floating *p, floating a) noexcept nogil:
    # p: 4 * w parameters per column: mean, k, mdy, A
    if floating is float:
        cyr_bn_dx_cols_f32(act, train, dy, x, y, dx, rows, w, p, p + w, p + 2 * w, p + 3 * w, a)
    else:
        cyr_bn_dx_cols_f64(act, train, dy, x, y, dx, rows, w, p, p + w, p + 2 * w, p + 3 * w, a)


# ---- helpers ------------------------------------------------------------------------

cdef inline Py_ssize_t _cdiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef Py_ssize_t _group_rows(Py_ssize_t rows, Py_ssize_t w) noexcept nogil:
    """Rows per group for the row layout: a function of the shape only."""
    cdef Py_ssize_t block_rows = max(1, BLOCK_ELEMS // max(w, 1))
    cdef Py_ssize_t groups = min(<Py_ssize_t>MAX_GROUPS, _cdiv(rows, block_rows))
    groups = max(groups, 1)
    return _cdiv(rows, groups)


cdef inline Py_ssize_t _block_rows(Py_ssize_t w) noexcept nogil:
    return max(1, BLOCK_ELEMS // max(w, 1))


cdef inline int _streams(Py_ssize_t out_bytes, Py_ssize_t run_bytes, int nt) noexcept nogil:
    """Whether an output of out_bytes, written by nt threads in contiguous runs of
    run_bytes, is written with streaming stores: the activations' rule
    (CYR_STREAM_MIN_BYTES per thread, common.h), and runs of at least STREAM_MIN_RUN
    bytes (short runs would mix streamed and cached stores in the lines where they
    meet, which measured slower)."""
    return (out_bytes >= CYR_STREAM_MIN_BYTES * <Py_ssize_t>max(nt, 1)
            and run_bytes >= STREAM_MIN_RUN)


cdef inline Py_ssize_t _channel_chunk(Py_ssize_t C, int nt) noexcept nogil:
    """Channels per piece handed to a thread: runs of neighbouring channels, so that
    two threads rarely write the cache line where one channel's row meets the next's
    (rows need not be a multiple of 64 bytes), yet several pieces per thread."""
    return max(1, C // (<Py_ssize_t>nt * CHUNKS_PER_THREAD // 2))


cdef int _row_threads(Py_ssize_t rows, Py_ssize_t w, int nt) noexcept nogil:
    nt = threads_for(rows * w, ELEMENTWISE_GRAIN, nt)
    return <int>min(<Py_ssize_t>nt, rows) if rows > 0 else 1


# ---- training-forward statistics and normalisation ----------------------------------

cdef void _train_channels(const floating *x, floating *y, Py_ssize_t outer, Py_ssize_t C,
                          Py_ssize_t inner, const double *w, const double *b, double eps,
                          int act, floating a, double *mean, double *var, int stream,
                          int nt) noexcept nogil:
    cdef Py_ssize_t c
    if nt <= 1:
        for c in range(C):
            _train_channel(x, y, outer, C, inner, c, w[c], b[c], eps, act, a, stream, &mean[c],
                           &var[c])
    else:
        for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, nt), num_threads=nt):
            _train_channel(x, y, outer, C, inner, c, w[c], b[c], eps, act, a, stream, &mean[c],
                           &var[c])


cdef void _colstats(const floating *x, Py_ssize_t rows, Py_ssize_t w, double *s,
                    Py_ssize_t gsize, Py_ssize_t groups, int nt) noexcept nogil:
    cdef Py_ssize_t g, block_rows = _block_rows(w)
    if nt <= 1:
        for g in range(groups):
            _group_colstats(x + g * gsize * w, min(gsize, rows - g * gsize), w, block_rows,
                            s + g * 4 * w)
    else:
        for g in prange(groups, schedule="dynamic", num_threads=nt):
            _group_colstats(x + g * gsize * w, min(gsize, rows - g * gsize), w, block_rows,
                            s + g * 4 * w)
    # merge the groups in order into group 0
    for g in range(1, groups):
        cyr_bn_chan_merge(<double>(g * gsize), s, s + w,
                          <double>min(gsize, rows - g * gsize), s + g * 4 * w,
                          s + g * 4 * w + w, w)


def batch_stats(cnp.ndarray x, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                double[::1] mean, double[::1] var, num_threads):
    """Row layout only: batch mean and biased variance per channel of (outer, C, inner)
    data (x contiguous), into float64 arrays of length C."""
    cdef Py_ssize_t w = C * inner, rows = outer
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef Py_ssize_t gsize = _group_rows(rows, w)
    cdef Py_ssize_t groups = _cdiv(rows, gsize)
    cdef cnp.ndarray scratch = np.empty(max(groups, 1) * 4 * w, dtype=np.float64)
    cdef double *s = <double *>cnp.PyArray_DATA(scratch)
    cdef Py_ssize_t c, i, j
    cdef double na, d, n_col = <double>rows
    cdef double m, m2
    nt = <int>min(<Py_ssize_t>_row_threads(rows, w, nt), groups)
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _colstats[float](<const float *>xp, rows, w, s, gsize, groups, nt)
        else:
            _colstats[double](<const double *>xp, rows, w, s, gsize, groups, nt)
        # fold the inner columns of each channel, in order (Chan's merge)
        for c in range(C):
            j = c * inner
            m = s[j]
            m2 = s[w + j]
            na = n_col
            for i in range(1, inner):
                d = s[j + i] - m
                m = m + d * (n_col / (na + n_col))
                m2 = m2 + s[w + j + i] + d * d * (na * n_col / (na + n_col))
                na = na + n_col
            mean[c] = m
            var[c] = m2 / (n_col * <double>inner)


def train_channels(cnp.ndarray x, cnp.ndarray y, Py_ssize_t outer, Py_ssize_t C,
                   Py_ssize_t inner, double[::1] w, double[::1] b, double eps, int act,
                   double alpha, double[::1] mean, double[::1] var, num_threads):
    """Per-channel layout: statistics and y = act(bn(x)) in one call per channel
    (y may be x).  Writes the batch mean and biased variance (float64)."""
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = cnp.PyArray_DATA(y)
    cdef int stream
    nt = threads_for(outer * C * inner, ELEMENTWISE_GRAIN, nt)
    nt = <int>min(<Py_ssize_t>nt, C)
    stream = _streams(cnp.PyArray_NBYTES(y), inner * cnp.PyArray_ITEMSIZE(y), nt) and yp != xp
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _train_channels[float](<const float *>xp, <float *>yp, outer, C, inner, &w[0],
                                   &b[0], eps, act, <float>alpha, &mean[0], &var[0], stream, nt)
        else:
            _train_channels[double](<const double *>xp, <double *>yp, outer, C, inner, &w[0],
                                    &b[0], eps, act, alpha, &mean[0], &var[0], stream, nt)


cdef void _affine_rows_back(int act, const floating *x, floating *y, Py_ssize_t r0,
                            Py_ssize_t r1, Py_ssize_t w, const floating *scale,
                            const floating *shift, floating a) noexcept nogil:
    """Rows [r0, r1) in blocks taken last to first: right after a statistics pass that
    went first to last, the last blocks are still in cache (elementwise: the order
    changes nothing in the result)."""
    cdef Py_ssize_t bl = _block_rows(w), e = r1, s
    while e > r0:
        s = max(r0, e - bl)
        _affine_rows(act, x + s * w, y + s * w, e - s, w, scale, shift, a)
        e = s


cdef void _dx_cols_back(int act, int train, const floating *dy, const floating *x,
                        const floating *y, floating *dx, Py_ssize_t r0, Py_ssize_t r1,
                        Py_ssize_t w, const floating *p, floating a) noexcept nogil:
    """Rows [r0, r1) of the input gradient, blocks last to first (see _affine_rows_back)."""
    cdef Py_ssize_t bl = _block_rows(w), e = r1, s
    while e > r0:
        s = max(r0, e - bl)
        _dx_cols(act, train, dy + s * w, x + s * w, (y + s * w) if y != NULL else NULL,
                 dx + s * w, e - s, w, p, a)
        e = s


cdef void _normalise(const floating *x, floating *y, Py_ssize_t outer, Py_ssize_t C,
                     Py_ssize_t inner, const floating *scale, const floating *shift, int act,
                     floating a, int nt) noexcept nogil:
    cdef Py_ssize_t rows, chunk, t, r0, w, nchunks
    cdef int stream
    if inner >= CHANNEL_MIN_INNER:
        rows = outer * C
        nt = _row_threads(rows, inner, nt)
        stream = _streams(rows * inner * <Py_ssize_t>sizeof(floating),
                          inner * <Py_ssize_t>sizeof(floating), nt)
        if nt <= 1:
            _affine_chan_rows(act, x, y, 0, rows, C, inner, scale, shift, a, stream)
            return
        nchunks = min(rows, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
        chunk = _cdiv(rows, nchunks)
        for t in prange(nchunks, schedule="dynamic", num_threads=nt):
            r0 = t * chunk
            if r0 < rows:
                _affine_chan_rows(act, x, y, r0, min(rows, r0 + chunk), C, inner, scale, shift, a,
                                  stream)
    else:
        w = C * inner
        nt = _row_threads(outer, w, nt)
        if nt <= 1:
            _affine_rows_back(act, x, y, 0, outer, w, scale, shift, a)
            return
        nchunks = min(outer, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
        chunk = _cdiv(outer, nchunks)
        for t in prange(nchunks, schedule="dynamic", num_threads=nt):
            r0 = (nchunks - 1 - t) * chunk  # last chunk first (see _affine_rows_back)
            if r0 < outer:
                _affine_rows_back(act, x, y, r0, min(outer, r0 + chunk), w, scale, shift, a)


def normalise(cnp.ndarray x, cnp.ndarray y, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
              cnp.ndarray scale, cnp.ndarray shift, int act, double alpha, num_threads):
    """y = act(x * scale[c] + shift[c]) (y may be x).  scale/shift: contiguous arrays of
    x's dtype, of length C for the per-channel layout and C * inner for the row layout."""
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = cnp.PyArray_DATA(y)
    cdef void *sp = cnp.PyArray_DATA(scale)
    cdef void *hp = cnp.PyArray_DATA(shift)
    if outer * C * inner == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _normalise[float](<const float *>xp, <float *>yp, outer, C, inner,
                              <const float *>sp, <const float *>hp, act, <float>alpha, nt)
        else:
            _normalise[double](<const double *>xp, <double *>yp, outer, C, inner,
                               <const double *>sp, <const double *>hp, act, alpha, nt)


# ---- backward -----------------------------------------------------------------------

cdef void _backward_channels(const floating *dy, const floating *x, const floating *y,
                             floating *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                             const double *mean, const double *invstd, const double *w,
                             int train, int act, floating a, double *sums, int stream,
                             int nt) noexcept nogil:
    cdef Py_ssize_t c
    if nt <= 1:
        for c in range(C):
            _backward_channel(dy, x, y, dx, outer, C, inner, c, mean[c], invstd[c], w[c],
                              train, act, a, stream, sums + 2 * c)
    else:
        for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, nt), num_threads=nt):
            _backward_channel(dy, x, y, dx, outer, C, inner, c, mean[c], invstd[c], w[c],
                              train, act, a, stream, sums + 2 * c)


def backward_channels(cnp.ndarray dy, cnp.ndarray x, object y, object dx, Py_ssize_t outer,
                      Py_ssize_t C, Py_ssize_t inner, double[::1] mean, double[::1] invstd,
                      double[::1] w, bint train, int act, double alpha, double[:, ::1] sums,
                      num_threads):
    """Per-channel layout: sums[c] = (sum(g), sum(g * (x - mean))) and, if dx is not None,
    the input gradient.  y (the forward's output) is needed only with an activation."""
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef void *dyp = cnp.PyArray_DATA(dy)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = NULL
    cdef void *dxp = NULL
    if y is not None:
        yp = cnp.PyArray_DATA(<cnp.ndarray>y)
    if dx is not None:
        dxp = cnp.PyArray_DATA(<cnp.ndarray>dx)
    cdef int stream
    nt = threads_for(outer * C * inner, ELEMENTWISE_GRAIN, nt)
    nt = <int>min(<Py_ssize_t>nt, C)
    stream = dx is not None and _streams(cnp.PyArray_NBYTES(x), inner * cnp.PyArray_ITEMSIZE(x),
                                         nt)
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _backward_channels[float](<const float *>dyp, <const float *>xp, <const float *>yp,
                                      <float *>dxp, outer, C, inner, &mean[0], &invstd[0], &w[0],
                                      train, act, <float>alpha, &sums[0, 0], stream, nt)
        else:
            _backward_channels[double](<const double *>dyp, <const double *>xp,
                                       <const double *>yp, <double *>dxp, outer, C, inner,
                                       &mean[0], &invstd[0], &w[0], train, act, alpha,
                                       &sums[0, 0], stream, nt)


cdef void _dot_groups(const floating *dy, const floating *x, const floating *y, Py_ssize_t rows,
                      Py_ssize_t w, const double *mean_cols, int act, floating a, double *s,
                      Py_ssize_t gsize, Py_ssize_t groups, int nt) noexcept nogil:
    cdef Py_ssize_t g, off
    if nt <= 1:
        for g in range(groups):
            off = g * gsize * w
            _dot_cols(act, dy + off, x + off, (y + off) if y != NULL else NULL,
                      min(gsize, rows - g * gsize), w, mean_cols, a, s + g * 2 * w)
    else:
        for g in prange(groups, schedule="dynamic", num_threads=nt):
            off = g * gsize * w
            _dot_cols(act, dy + off, x + off, (y + off) if y != NULL else NULL,
                      min(gsize, rows - g * gsize), w, mean_cols, a, s + g * 2 * w)


def backward_rows_sums(cnp.ndarray dy, cnp.ndarray x, object y, Py_ssize_t outer,
                       Py_ssize_t C, Py_ssize_t inner, double[::1] mean, int act, double alpha,
                       double[:, ::1] sums, num_threads):
    """Row layout: sums[c] = (sum(g), sum(g * (x - mean[c]))), g = dy gated by act."""
    cdef Py_ssize_t w = C * inner, rows = outer, g, j, c, i
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef void *dyp = cnp.PyArray_DATA(dy)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = NULL
    cdef Py_ssize_t gsize = _group_rows(rows, w)
    cdef Py_ssize_t groups = _cdiv(rows, gsize)
    cdef cnp.ndarray scratch = np.zeros(max(groups, 1) * 2 * w, dtype=np.float64)
    cdef cnp.ndarray mean_cols = np.ascontiguousarray(np.repeat(np.asarray(mean), inner))
    cdef double *s = <double *>cnp.PyArray_DATA(scratch)
    cdef const double *mc = <const double *>cnp.PyArray_DATA(mean_cols)
    cdef double t0, t1
    if y is not None:
        yp = cnp.PyArray_DATA(<cnp.ndarray>y)
    nt = <int>min(<Py_ssize_t>_row_threads(rows, w, nt), groups)
    with nogil:
        if rows > 0:
            if typenum == cnp.NPY_FLOAT32:
                _dot_groups[float](<const float *>dyp, <const float *>xp, <const float *>yp,
                                   rows, w, mc, act, <float>alpha, s, gsize, groups, nt)
            else:
                _dot_groups[double](<const double *>dyp, <const double *>xp,
                                    <const double *>yp, rows, w, mc, act, alpha, s, gsize,
                                    groups, nt)
            for g in range(1, groups):
                for j in range(2 * w):
                    s[j] += s[g * 2 * w + j]
        for c in range(C):
            t0 = 0.0
            t1 = 0.0
            for i in range(inner):
                t0 = t0 + s[c * inner + i]
                t1 = t1 + s[w + c * inner + i]
            sums[c, 0] = t0
            sums[c, 1] = t1


cdef void _dx_rows(const floating *dy, const floating *x, const floating *y, floating *dx,
                   Py_ssize_t rows, Py_ssize_t w, const floating *p, int train, int act,
                   floating a, int nt) noexcept nogil:
    cdef Py_ssize_t chunk, t, r0, nchunks
    nt = _row_threads(rows, w, nt)
    if nt <= 1:
        _dx_cols_back(act, train, dy, x, y, dx, 0, rows, w, p, a)
        return
    nchunks = min(rows, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
    chunk = _cdiv(rows, nchunks)
    for t in prange(nchunks, schedule="dynamic", num_threads=nt):
        r0 = (nchunks - 1 - t) * chunk  # last chunk first (see _affine_rows_back)
        if r0 < rows:
            _dx_cols_back(act, train, dy, x, y, dx, r0, min(rows, r0 + chunk), w, p, a)


def backward_rows_dx(cnp.ndarray dy, cnp.ndarray x, object y, cnp.ndarray dx,
                     Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, cnp.ndarray params,
                     bint train, int act, double alpha, num_threads):
    """Row layout: the input gradient; params is a contiguous (4, C * inner) array of x's
    dtype holding per column mean, k, mean(g) and A (see batchnorm_template.h)."""
    cdef Py_ssize_t w = C * inner
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef void *dyp = cnp.PyArray_DATA(dy)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = NULL
    cdef void *dxp = cnp.PyArray_DATA(dx)
    cdef void *pp = cnp.PyArray_DATA(params)
    if y is not None:
        yp = cnp.PyArray_DATA(<cnp.ndarray>y)
    if outer * w == 0:
        return
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _dx_rows[float](<const float *>dyp, <const float *>xp, <const float *>yp,
                            <float *>dxp, outer, w, <const float *>pp, train, act, <float>alpha,
                            nt)
        else:
            _dx_rows[double](<const double *>dyp, <const double *>xp, <const double *>yp,
                             <double *>dxp, outer, w, <const double *>pp, train, act, alpha, nt)
