"""Cython entry points of the BatchNorm kernels (include/cyrelu/batchnorm.h).

The wrapper layer (cyrelu/batchnorm.py) has already validated everything: the big
arrays are aligned, C-contiguous float32/float64/float16 arrays of one dtype seen as
(outer, C, inner) (float16 computed in float32 by the kernels, with float32 scale/shift
and row-layout parameters); the per-channel arrays are float64 and C-contiguous (but for the
running statistics, which finish_stats and running_invstd take as they are).  This
layer picks the loop shape, splits the work across threads, releases the GIL and
calls C.

Loop shapes (see batchnorm.h):
  per channel  inner >= CHANNEL_MIN_INNER: threads own whole channels.
  per row      otherwise: rows of W = C * inner columns, cut into at most
               MAX_GROUPS fixed groups (their number depends only on the shape,
               never on the thread count), merged in group order; fewer when
               their scratch would pass a fixed share of the input (_group_rows).
The per-channel backward whose output streams and whose channel slabs fit twice in
the L2 cache is pipelined: each thread takes a run of neighbouring channels and
writes one channel's gradient while it reads the next one's inputs
(bn_backward_channels_piped).
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
    Py_ssize_t cyr_stream_min_bytes()
    Py_ssize_t cyr_l2_bytes()
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
    void cyr_bn_backward_channels_piped_f32(const float *dy, const float *x, const float *y,
                                            float *dx, Py_ssize_t outer, Py_ssize_t C,
                                            Py_ssize_t inner, Py_ssize_t c0, Py_ssize_t c1,
                                            const double *mean, const double *invstd,
                                            const double *w, int train, int act, float a,
                                            double *sums)
    void cyr_bn_backward_channels_piped_f64(const double *dy, const double *x,
                                            const double *y, double *dx, Py_ssize_t outer,
                                            Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c0,
                                            Py_ssize_t c1, const double *mean,
                                            const double *invstd, const double *w, int train,
                                            int act, double a, double *sums)
    # float16 data as its bit patterns (cyr_half); parameters and alpha in float
    ctypedef unsigned short cyr_half
    void cyr_bn_train_channel_f16(const cyr_half *x, cyr_half *y, Py_ssize_t outer,
                                  Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c, double w,
                                  double b, double eps, int act, float a, int stream,
                                  double *mean_out, double *var_out)
    void cyr_bn_affine_chan_rows_f16(int act, const cyr_half *x, cyr_half *y, Py_ssize_t r0,
                                     Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner,
                                     const float *scale, const float *shift, float a,
                                     int stream)
    void cyr_bn_affine_rows_f16(int act, const cyr_half *x, cyr_half *y, Py_ssize_t rows,
                                Py_ssize_t w, const float *scale, const float *shift, float a)
    void cyr_bn_group_colstats_f16(const cyr_half *x, Py_ssize_t rows, Py_ssize_t w,
                                   Py_ssize_t block_rows, double *gmean, double *gm2,
                                   double *tmean, double *tm2)
    void cyr_bn_backward_channel_f16(const cyr_half *dy, const cyr_half *x, const cyr_half *y,
                                     cyr_half *dx, Py_ssize_t outer, Py_ssize_t C,
                                     Py_ssize_t inner, Py_ssize_t c, double mean,
                                     double invstd, double w, int train, int act, float a,
                                     int stream, double *sums)
    void cyr_bn_dot_cols_f16(int act, const cyr_half *dy, const cyr_half *x, const cyr_half *y,
                             Py_ssize_t rows, Py_ssize_t w, const double *mean, float a,
                             double *s0, double *s1)
    void cyr_bn_dx_cols_f16(int act, int train, const cyr_half *dy, const cyr_half *x,
                            const cyr_half *y, cyr_half *dx, Py_ssize_t rows, Py_ssize_t w,
                            const float *mean, const float *k, const float *mdy,
                            const float *A, float a)
    int cyr_isa_level()
    void cyr_bn_dx_coefs(const double *sums, double n, double invstd, double w, int train,
                         double *k, double *mdy, double *A)
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

# `act` arguments are codes of the activation table (cyrelu/_activation_table.py).

cdef enum:
    # A channel's runs shorter than this use the row layout instead.
    CHANNEL_MIN_INNER = 32
    # Row layout: a block (two passes in cache) holds about this many elements...
    BLOCK_ELEMS = 16384
    # ...and the rows are cut into at most this many fixed groups,
    MAX_GROUPS = 64
    # whose float64 scratch (a block of 4 * W or 2 * W doubles each) stays within
    # max(SCRATCH_MIN_BYTES, input bytes / SCRATCH_INPUT_DIV): few very wide rows get
    # fewer groups, so the scratch never grows beyond a fixed share of the input.
    SCRATCH_MIN_BYTES = 4194304
    SCRATCH_INPUT_DIV = 16
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


cdef inline void _backward_channels_piped(const floating *dy, const floating *x,
                                         const floating *y, floating *dx, Py_ssize_t outer,
                                         Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c0,
                                         Py_ssize_t c1, const double *mean,
                                         const double *invstd, const double *w, int train,
                                         int act, floating a, double *sums) noexcept nogil:
    if floating is float:
        cyr_bn_backward_channels_piped_f32(dy, x, y, dx, outer, C, inner, c0, c1, mean, invstd,
                                           w, train, act, a, sums)
    else:
        cyr_bn_backward_channels_piped_f64(dy, x, y, dx, outer, C, inner, c0, c1, mean, invstd,
                                           w, train, act, a, sums)


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


cdef Py_ssize_t _group_rows(Py_ssize_t rows, Py_ssize_t w, Py_ssize_t per_group,
                            Py_ssize_t itemsize) noexcept nogil:
    """Rows per group for the row layout, each group needing `per_group` doubles of
    scratch: a function of the shape only (never of the thread count)."""
    cdef Py_ssize_t block_rows = max(1, BLOCK_ELEMS // max(w, 1))
    cdef Py_ssize_t groups = min(<Py_ssize_t>MAX_GROUPS, _cdiv(rows, block_rows))
    cdef Py_ssize_t budget = max(<Py_ssize_t>SCRATCH_MIN_BYTES,
                                 rows * w * itemsize // SCRATCH_INPUT_DIV)
    groups = min(groups, budget // (_line_pad(per_group) * 8))
    groups = max(groups, 1)
    return _cdiv(rows, groups)


cdef inline Py_ssize_t _line_pad(Py_ssize_t n) noexcept nogil:
    """n doubles rounded up to whole 64-byte cache lines."""
    return (n + 7) // 8 * 8


cdef double *_group_scratch(Py_ssize_t groups, Py_ssize_t per_group, Py_ssize_t *stride,
                            list keep, bint zero):
    """Scratch of `groups` blocks of `per_group` doubles, each block starting on its own
    64-byte line: threads accumulate into their groups' blocks row after row, and two
    blocks sharing a line would bounce it between the cores (measured: 2 threads slower
    than 1).  The array is appended to `keep`, which must outlive the pointer."""
    stride[0] = _line_pad(per_group)
    cdef cnp.ndarray buf = (np.zeros if zero else np.empty)(max(groups, 1) * stride[0] + 8,
                                                             dtype=np.float64)
    keep.append(buf)
    cdef char *p = <char *>cnp.PyArray_DATA(buf)
    return <double *>(p + (64 - (<size_t>p) % 64) % 64)


cdef inline Py_ssize_t _block_rows(Py_ssize_t w) noexcept nogil:
    return max(1, BLOCK_ELEMS // max(w, 1))


cdef inline int _streams(Py_ssize_t out_bytes, Py_ssize_t run_bytes, int nt) noexcept nogil:
    """Whether an output of out_bytes, written by nt threads in contiguous runs of
    run_bytes, is written with streaming stores: the activations' rule
    (cyr_stream_min_bytes() per thread, cache.h), and runs of at least STREAM_MIN_RUN
    bytes (short runs would mix streamed and cached stores in the lines where they
    meet, which measured slower)."""
    return (out_bytes >= cyr_stream_min_bytes() * <Py_ssize_t>max(nt, 1)
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
                    Py_ssize_t gstride, Py_ssize_t gsize, Py_ssize_t groups,
                    int nt) noexcept nogil:
    # s: one block of gstride >= 4 * w doubles per group (see _group_colstats)
    cdef Py_ssize_t g, block_rows = _block_rows(w)
    if nt <= 1:
        for g in range(groups):
            _group_colstats(x + g * gsize * w, min(gsize, rows - g * gsize), w, block_rows,
                            s + g * gstride)
    else:
        for g in prange(groups, schedule="dynamic", num_threads=nt):
            _group_colstats(x + g * gsize * w, min(gsize, rows - g * gsize), w, block_rows,
                            s + g * gstride)
    # merge the groups in order into group 0
    for g in range(1, groups):
        cyr_bn_chan_merge(<double>(g * gsize), s, s + w,
                          <double>min(gsize, rows - g * gsize), s + g * gstride,
                          s + g * gstride + w, w)


def batch_stats(cnp.ndarray x, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                double[::1] mean, double[::1] var, num_threads):
    """Row layout only: batch mean and biased variance per channel of (outer, C, inner)
    data (x contiguous), into float64 arrays of length C."""
    cdef Py_ssize_t w = C * inner, rows = outer
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef Py_ssize_t gsize = _group_rows(rows, w, 4 * w, cnp.PyArray_ITEMSIZE(x))
    cdef Py_ssize_t groups = _cdiv(rows, gsize)
    cdef Py_ssize_t gstride
    cdef list keep = []
    cdef double *s = _group_scratch(groups, 4 * w, &gstride, keep, False)
    cdef Py_ssize_t c, i, j
    cdef double na, d, n_col = <double>rows
    cdef double m, m2
    nt = <int>min(<Py_ssize_t>_row_threads(rows, w, nt), groups)
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _colstats[float](<const float *>xp, rows, w, s, gstride, gsize, groups, nt)
        elif typenum == cnp.NPY_FLOAT16:
            _colstats_h(<const cyr_half *>xp, rows, w, s, gstride, gsize, groups, nt)
        else:
            _colstats[double](<const double *>xp, rows, w, s, gstride, gsize, groups, nt)
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
        elif typenum == cnp.NPY_FLOAT16:
            _train_channels_h(<const cyr_half *>xp, <cyr_half *>yp, outer, C, inner, &w[0],
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
        elif typenum == cnp.NPY_FLOAT16:
            _normalise_h(<const cyr_half *>xp, <cyr_half *>yp, outer, C, inner,
                         <const float *>sp, <const float *>hp, act, <float>alpha, nt)
        else:
            _normalise[double](<const double *>xp, <double *>yp, outer, C, inner,
                               <const double *>sp, <const double *>hp, act, alpha, nt)


# ---- float16 data -------------------------------------------------------------------
# The loops above for float16 (cyr_half) data: the same work partition (channels, row
# groups, row chunks), so the same pieces reach the kernels, which compute as the float
# kernels do on the converted data (batchnorm_half_template.h); per-channel and
# per-column parameters and alpha are float.  No pipelined backward.

cdef void _train_channels_h(const cyr_half *x, cyr_half *y, Py_ssize_t outer, Py_ssize_t C,
                            Py_ssize_t inner, const double *w, const double *b, double eps,
                            int act, float a, double *mean, double *var, int stream,
                            int nt) noexcept nogil:
    cdef Py_ssize_t c
    if nt <= 1:
        for c in range(C):
            cyr_bn_train_channel_f16(x, y, outer, C, inner, c, w[c], b[c], eps, act, a, stream,
                                     &mean[c], &var[c])
    else:
        for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, nt), num_threads=nt):
            cyr_bn_train_channel_f16(x, y, outer, C, inner, c, w[c], b[c], eps, act, a, stream,
                                     &mean[c], &var[c])


cdef void _colstats_h(const cyr_half *x, Py_ssize_t rows, Py_ssize_t w, double *s,
                      Py_ssize_t gstride, Py_ssize_t gsize, Py_ssize_t groups,
                      int nt) noexcept nogil:
    # s: one block of gstride >= 4 * w doubles per group (see _group_colstats)
    cdef Py_ssize_t g, block_rows = _block_rows(w)
    if nt <= 1:
        for g in range(groups):
            cyr_bn_group_colstats_f16(x + g * gsize * w, min(gsize, rows - g * gsize), w,
                                      block_rows, s + g * gstride, s + g * gstride + w,
                                      s + g * gstride + 2 * w, s + g * gstride + 3 * w)
    else:
        for g in prange(groups, schedule="dynamic", num_threads=nt):
            cyr_bn_group_colstats_f16(x + g * gsize * w, min(gsize, rows - g * gsize), w,
                                      block_rows, s + g * gstride, s + g * gstride + w,
                                      s + g * gstride + 2 * w, s + g * gstride + 3 * w)
    for g in range(1, groups):
        cyr_bn_chan_merge(<double>(g * gsize), s, s + w,
                          <double>min(gsize, rows - g * gsize), s + g * gstride,
                          s + g * gstride + w, w)


cdef void _affine_rows_back_h(int act, const cyr_half *x, cyr_half *y, Py_ssize_t r0,
                              Py_ssize_t r1, Py_ssize_t w, const float *scale,
                              const float *shift, float a) noexcept nogil:
    cdef Py_ssize_t bl = _block_rows(w), e = r1, s
    while e > r0:
        s = max(r0, e - bl)
        cyr_bn_affine_rows_f16(act, x + s * w, y + s * w, e - s, w, scale, shift, a)
        e = s


cdef void _normalise_h(const cyr_half *x, cyr_half *y, Py_ssize_t outer, Py_ssize_t C,
                       Py_ssize_t inner, const float *scale, const float *shift, int act,
                       float a, int nt) noexcept nogil:
    cdef Py_ssize_t rows, chunk, t, r0, w, nchunks
    cdef int stream
    if inner >= CHANNEL_MIN_INNER:
        rows = outer * C
        nt = _row_threads(rows, inner, nt)
        stream = _streams(rows * inner * 2, inner * 2, nt)
        if nt <= 1:
            cyr_bn_affine_chan_rows_f16(act, x, y, 0, rows, C, inner, scale, shift, a, stream)
            return
        nchunks = min(rows, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
        chunk = _cdiv(rows, nchunks)
        for t in prange(nchunks, schedule="dynamic", num_threads=nt):
            r0 = t * chunk
            if r0 < rows:
                cyr_bn_affine_chan_rows_f16(act, x, y, r0, min(rows, r0 + chunk), C, inner,
                                            scale, shift, a, stream)
    else:
        w = C * inner
        nt = _row_threads(outer, w, nt)
        if nt <= 1:
            _affine_rows_back_h(act, x, y, 0, outer, w, scale, shift, a)
            return
        nchunks = min(outer, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
        chunk = _cdiv(outer, nchunks)
        for t in prange(nchunks, schedule="dynamic", num_threads=nt):
            r0 = (nchunks - 1 - t) * chunk  # last chunk first (see _affine_rows_back)
            if r0 < outer:
                _affine_rows_back_h(act, x, y, r0, min(outer, r0 + chunk), w, scale, shift, a)


cdef void _backward_channels_h(const cyr_half *dy, const cyr_half *x, const cyr_half *y,
                               cyr_half *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                               const double *mean, const double *invstd, const double *w,
                               int train, int act, float a, double *sums, int stream,
                               int nt) noexcept nogil:
    cdef Py_ssize_t c
    if nt <= 1:
        for c in range(C):
            cyr_bn_backward_channel_f16(dy, x, y, dx, outer, C, inner, c, mean[c], invstd[c],
                                        w[c], train, act, a, stream, sums + 2 * c)
    else:
        for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, nt), num_threads=nt):
            cyr_bn_backward_channel_f16(dy, x, y, dx, outer, C, inner, c, mean[c], invstd[c],
                                        w[c], train, act, a, stream, sums + 2 * c)


cdef void _dot_groups_h(const cyr_half *dy, const cyr_half *x, const cyr_half *y,
                        Py_ssize_t rows, Py_ssize_t w, const double *mean_cols, int act,
                        float a, double *s, Py_ssize_t gstride, Py_ssize_t gsize,
                        Py_ssize_t groups, int nt) noexcept nogil:
    cdef Py_ssize_t g, off
    if nt <= 1:
        for g in range(groups):
            off = g * gsize * w
            cyr_bn_dot_cols_f16(act, dy + off, x + off, (y + off) if y != NULL else NULL,
                                min(gsize, rows - g * gsize), w, mean_cols, a,
                                s + g * gstride, s + g * gstride + w)
    else:
        for g in prange(groups, schedule="dynamic", num_threads=nt):
            off = g * gsize * w
            cyr_bn_dot_cols_f16(act, dy + off, x + off, (y + off) if y != NULL else NULL,
                                min(gsize, rows - g * gsize), w, mean_cols, a,
                                s + g * gstride, s + g * gstride + w)


cdef void _dx_cols_back_h(int act, int train, const cyr_half *dy, const cyr_half *x,
                          const cyr_half *y, cyr_half *dx, Py_ssize_t r0, Py_ssize_t r1,
                          Py_ssize_t w, const float *p, float a) noexcept nogil:
    cdef Py_ssize_t bl = _block_rows(w), e = r1, s
    while e > r0:
        s = max(r0, e - bl)
        cyr_bn_dx_cols_f16(act, train, dy + s * w, x + s * w,
                           (y + s * w) if y != NULL else NULL, dx + s * w, e - s, w, p, p + w,
                           p + 2 * w, p + 3 * w, a)
        e = s


cdef void _dx_rows_h(const cyr_half *dy, const cyr_half *x, const cyr_half *y, cyr_half *dx,
                     Py_ssize_t rows, Py_ssize_t w, const float *p, int train, int act,
                     float a, int nt) noexcept nogil:
    cdef Py_ssize_t chunk, t, r0, nchunks
    nt = _row_threads(rows, w, nt)
    if nt <= 1:
        _dx_cols_back_h(act, train, dy, x, y, dx, 0, rows, w, p, a)
        return
    nchunks = min(rows, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
    chunk = _cdiv(rows, nchunks)
    for t in prange(nchunks, schedule="dynamic", num_threads=nt):
        r0 = (nchunks - 1 - t) * chunk  # last chunk first (see _affine_rows_back)
        if r0 < rows:
            _dx_cols_back_h(act, train, dy, x, y, dx, r0, min(rows, r0 + chunk), w, p, a)


# ---- per-channel arithmetic ---------------------------------------------------------
# The few operations per channel around the kernels, in C: as NumPy expressions on
# arrays of C elements they cost about a microsecond each, which dominated small calls.

cdef inline double _get(const char *p, int f32, Py_ssize_t off) noexcept nogil:
    # element at byte offset off of a float32 (f32) or float64 array
    return (<const float *>(p + off))[0] if f32 else (<const double *>(p + off))[0]


cdef inline void _set(char *p, int f32, Py_ssize_t off, double v) noexcept nogil:
    if f32:
        (<float *>(p + off))[0] = <float>v
    else:
        (<double *>(p + off))[0] = v


def finish_stats(double[::1] mean, double[::1] var, double eps, double momentum, double n,
                 object running_mean, object running_var, double[::1] invstd):
    """Training: invstd = 1 / sqrt(var + eps), and the running statistics (float32 or
    float64 1-D arrays of length C, any stride, or None) updated in place with PyTorch's
    rule, running = (1 - momentum) * running + momentum * batch, the batch variance made
    unbiased for running_var (var * n / (n - 1), n values per channel)."""
    cdef Py_ssize_t c, C = mean.shape[0]
    cdef char *rm = NULL
    cdef char *rv = NULL
    cdef int rm32 = 0, rv32 = 0
    cdef Py_ssize_t ms = 0, vs = 0
    cdef double keep = 1.0 - momentum
    cdef double unbias = n / (n - 1.0) if n > 1 else 1.0
    if running_mean is not None:
        rm = <char *>cnp.PyArray_DATA(<cnp.ndarray>running_mean)
        rm32 = cnp.PyArray_TYPE(<cnp.ndarray>running_mean) == cnp.NPY_FLOAT32
        ms = cnp.PyArray_STRIDE(<cnp.ndarray>running_mean, 0)
    if running_var is not None:
        rv = <char *>cnp.PyArray_DATA(<cnp.ndarray>running_var)
        rv32 = cnp.PyArray_TYPE(<cnp.ndarray>running_var) == cnp.NPY_FLOAT32
        vs = cnp.PyArray_STRIDE(<cnp.ndarray>running_var, 0)
    for c in range(C):
        invstd[c] = 1.0 / sqrt(var[c] + eps)
        if rm != NULL:
            _set(rm, rm32, c * ms, keep * _get(rm, rm32, c * ms) + momentum * mean[c])
        if rv != NULL:
            _set(rv, rv32, c * vs, keep * _get(rv, rv32, c * vs) + momentum * (var[c] * unbias))


def running_invstd(object running_var, double eps, double[::1] invstd):
    """Evaluation: invstd = 1 / sqrt(running_var + eps) (running_var a float32/float64
    1-D array, any stride)."""
    cdef Py_ssize_t c
    cdef char *rv = <char *>cnp.PyArray_DATA(<cnp.ndarray>running_var)
    cdef int rv32 = cnp.PyArray_TYPE(<cnp.ndarray>running_var) == cnp.NPY_FLOAT32
    cdef Py_ssize_t vs = cnp.PyArray_STRIDE(<cnp.ndarray>running_var, 0)
    for c in range(invstd.shape[0]):
        invstd[c] = 1.0 / sqrt(_get(rv, rv32, c * vs) + eps)


def affine_coefs(double[::1] mean, double[::1] invstd, double[::1] w, double[::1] b,
                 Py_ssize_t inner, cnp.ndarray scale, cnp.ndarray shift):
    """scale = w * invstd and shift = b - mean * scale per channel, in the contiguous
    float32/float64 arrays scale and shift: each value once (length C) or repeated
    for the inner columns of its channel (length C * inner, the row layout)."""
    cdef Py_ssize_t c, i, C = mean.shape[0]
    cdef Py_ssize_t rep = inner if cnp.PyArray_SIZE(scale) != C else 1
    cdef char *sp = <char *>cnp.PyArray_DATA(scale)
    cdef char *hp = <char *>cnp.PyArray_DATA(shift)
    cdef int f32 = cnp.PyArray_TYPE(scale) == cnp.NPY_FLOAT32
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(scale)
    cdef double sc, sh
    for c in range(C):
        sc = w[c] * invstd[c]
        sh = b[c] - mean[c] * sc
        for i in range(c * rep, (c + 1) * rep):
            _set(sp, f32, i * isz, sc)
            _set(hp, f32, i * isz, sh)


def dx_coefs(double[:, ::1] sums, double n, double[::1] mean, double[::1] invstd,
             double[::1] w, bint train, Py_ssize_t inner, cnp.ndarray params):
    """Row layout: the per-column parameters of the input gradient into params, a
    contiguous (4, C * inner) float32/float64 array: mean, then k, mean(g) and A
    (cyr_bn_dx_coefs), each repeated for the inner columns of its channel."""
    cdef Py_ssize_t c, i, C = mean.shape[0], W = C * inner
    cdef char *p = <char *>cnp.PyArray_DATA(params)
    cdef int f32 = cnp.PyArray_TYPE(params) == cnp.NPY_FLOAT32
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(params)
    cdef double v[4]
    cdef int r
    for c in range(C):
        v[0] = mean[c]
        cyr_bn_dx_coefs(&sums[c, 0], n, invstd[c], w[c], train, &v[1], &v[2], &v[3])
        for r in range(4):
            for i in range(r * W + c * inner, r * W + (c + 1) * inner):
                _set(p, f32, i * isz, v[r])


# ---- backward -----------------------------------------------------------------------

cdef void _backward_channels(const floating *dy, const floating *x, const floating *y,
                             floating *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                             const double *mean, const double *invstd, const double *w,
                             int train, int act, floating a, double *sums, int stream,
                             int piped, int nt) noexcept nogil:
    cdef Py_ssize_t c, t, chunk, nchunks
    if piped:  # runs of neighbouring channels, each pipelined (bn_backward_channels_piped)
        if nt <= 1:
            _backward_channels_piped(dy, x, y, dx, outer, C, inner, 0, C, mean, invstd, w,
                                     train, act, a, sums)
            return
        chunk = _channel_chunk(C, nt)
        nchunks = _cdiv(C, chunk)
        for t in prange(nchunks, schedule="dynamic", num_threads=nt):
            _backward_channels_piped(dy, x, y, dx, outer, C, inner, t * chunk,
                                     min(C, t * chunk + chunk), mean, invstd, w, train, act,
                                     a, sums)
        return
    if nt <= 1:
        for c in range(C):
            _backward_channel(dy, x, y, dx, outer, C, inner, c, mean[c], invstd[c], w[c],
                              train, act, a, stream, sums + 2 * c)
    else:
        for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, nt), num_threads=nt):
            _backward_channel(dy, x, y, dx, outer, C, inner, c, mean[c], invstd[c], w[c],
                              train, act, a, stream, sums + 2 * c)


cdef int _backward_plan(Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, Py_ssize_t itemsize,
                       bint has_dx, bint has_y, int nt, int *stream, int *piped) noexcept nogil:
    """Threads for the per-channel backward, whether dx streams, and whether it is
    pipelined (bn_backward_channels_piped): dx streams, the slabs of two channels (dy,
    x, and y if fused) fit in 7/8 of the L2 cache, and the AVX2 or AVX-512 kernels run
    (the pipelining was measured with their vector lanes; with the baseline copy's
    plain loop it was 5% slower than no pipelining)."""
    cdef Py_ssize_t slab = outer * inner * itemsize * (3 if has_y else 2)
    nt = threads_for(outer * C * inner, ELEMENTWISE_GRAIN, nt)
    nt = <int>min(<Py_ssize_t>nt, C)
    stream[0] = has_dx and _streams(outer * C * inner * itemsize, inner * itemsize, nt)
    piped[0] = (stream[0] and C > 1 and 2 * slab <= cyr_l2_bytes() // 8 * 7
                and cyr_isa_level() >= 1 and itemsize != 2)  # none for float16
    return nt


def backward_pipelined(cnp.ndarray x, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                       bint has_y, num_threads):
    """Whether backward_channels on these arrays (with dx) takes the pipelined kernel:
    for the tests, which must reach it."""
    cdef int stream, piped
    _backward_plan(outer, C, inner, cnp.PyArray_ITEMSIZE(x), True, has_y,
                   resolve_threads(num_threads), &stream, &piped)
    return bool(piped)


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
    cdef int stream, piped
    nt = _backward_plan(outer, C, inner, cnp.PyArray_ITEMSIZE(x), dx is not None,
                        y is not None, nt, &stream, &piped)
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _backward_channels[float](<const float *>dyp, <const float *>xp, <const float *>yp,
                                      <float *>dxp, outer, C, inner, &mean[0], &invstd[0], &w[0],
                                      train, act, <float>alpha, &sums[0, 0], stream, piped, nt)
        elif typenum == cnp.NPY_FLOAT16:
            _backward_channels_h(<const cyr_half *>dyp, <const cyr_half *>xp,
                                 <const cyr_half *>yp, <cyr_half *>dxp, outer, C, inner,
                                 &mean[0], &invstd[0], &w[0], train, act, <float>alpha,
                                 &sums[0, 0], stream, nt)
        else:
            _backward_channels[double](<const double *>dyp, <const double *>xp,
                                       <const double *>yp, <double *>dxp, outer, C, inner,
                                       &mean[0], &invstd[0], &w[0], train, act, alpha,
                                       &sums[0, 0], stream, piped, nt)


cdef void _dot_groups(const floating *dy, const floating *x, const floating *y, Py_ssize_t rows,
                      Py_ssize_t w, const double *mean_cols, int act, floating a, double *s,
                      Py_ssize_t gstride, Py_ssize_t gsize, Py_ssize_t groups,
                      int nt) noexcept nogil:
    # s: one zeroed block of gstride >= 2 * w doubles per group
    cdef Py_ssize_t g, off
    if nt <= 1:
        for g in range(groups):
            off = g * gsize * w
            _dot_cols(act, dy + off, x + off, (y + off) if y != NULL else NULL,
                      min(gsize, rows - g * gsize), w, mean_cols, a, s + g * gstride)
    else:
        for g in prange(groups, schedule="dynamic", num_threads=nt):
            off = g * gsize * w
            _dot_cols(act, dy + off, x + off, (y + off) if y != NULL else NULL,
                      min(gsize, rows - g * gsize), w, mean_cols, a, s + g * gstride)


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
    cdef Py_ssize_t gsize = _group_rows(rows, w, 2 * w, cnp.PyArray_ITEMSIZE(x))
    cdef Py_ssize_t groups = _cdiv(rows, gsize)
    cdef Py_ssize_t gstride
    cdef list keep = []
    cdef double *s = _group_scratch(groups, 2 * w, &gstride, keep, True)
    cdef cnp.ndarray mean_cols = np.ascontiguousarray(np.repeat(np.asarray(mean), inner))
    cdef const double *mc = <const double *>cnp.PyArray_DATA(mean_cols)
    cdef double t0, t1
    if y is not None:
        yp = cnp.PyArray_DATA(<cnp.ndarray>y)
    nt = <int>min(<Py_ssize_t>_row_threads(rows, w, nt), groups)
    with nogil:
        if rows > 0:
            if typenum == cnp.NPY_FLOAT32:
                _dot_groups[float](<const float *>dyp, <const float *>xp, <const float *>yp,
                                   rows, w, mc, act, <float>alpha, s, gstride, gsize, groups,
                                   nt)
            elif typenum == cnp.NPY_FLOAT16:
                _dot_groups_h(<const cyr_half *>dyp, <const cyr_half *>xp,
                              <const cyr_half *>yp, rows, w, mc, act, <float>alpha, s, gstride,
                              gsize, groups, nt)
            else:
                _dot_groups[double](<const double *>dyp, <const double *>xp,
                                    <const double *>yp, rows, w, mc, act, alpha, s, gstride,
                                    gsize, groups, nt)
            for g in range(1, groups):
                for j in range(2 * w):
                    s[j] += s[g * gstride + j]
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
        elif typenum == cnp.NPY_FLOAT16:
            _dx_rows_h(<const cyr_half *>dyp, <const cyr_half *>xp, <const cyr_half *>yp,
                       <cyr_half *>dxp, outer, w, <const float *>pp, train, act, <float>alpha,
                       nt)
        else:
            _dx_rows[double](<const double *>dyp, <const double *>xp, <const double *>yp,
                             <double *>dxp, outer, w, <const double *>pp, train, act, alpha, nt)


# ---- per-channel moments, to be merged across arrays (the Dask backend) -------------

cdef extern from "cyrelu/batchnorm.h" nogil:
    void cyr_bn_channel_stats_f32(const float *x, Py_ssize_t outer, Py_ssize_t C,
                                  Py_ssize_t inner, Py_ssize_t c, double *mean, double *m2)
    void cyr_bn_channel_stats_f64(const double *x, Py_ssize_t outer, Py_ssize_t C,
                                  Py_ssize_t inner, Py_ssize_t c, double *mean, double *m2)
    void cyr_bn_channel_stats_f16(const cyr_half *x, Py_ssize_t outer, Py_ssize_t C,
                                  Py_ssize_t inner, Py_ssize_t c, double *mean, double *m2)


cdef inline void _channel_stats(int typenum, const void *x, Py_ssize_t outer, Py_ssize_t C,
                                Py_ssize_t inner, Py_ssize_t c, double *mean,
                                double *m2) noexcept nogil:
    if typenum == cnp.NPY_FLOAT32:
        cyr_bn_channel_stats_f32(<const float *>x, outer, C, inner, c, mean, m2)
    elif typenum == cnp.NPY_FLOAT16:
        cyr_bn_channel_stats_f16(<const cyr_half *>x, outer, C, inner, c, mean, m2)
    else:
        cyr_bn_channel_stats_f64(<const double *>x, outer, C, inner, c, mean, m2)


def channel_moments(cnp.ndarray x, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                    num_threads):
    """(count, mean, M2) of each channel of (outer, C, inner) data (x contiguous), as a
    float64 array of shape (3, C): the number of values, their mean and the sum of their
    squared deviations from it, which Chan's formula merges across arrays.  One pass over
    memory: per channel (the statistics of train_channels) or by rows (batch_stats)."""
    cdef cnp.ndarray res = np.zeros((3, C), dtype=np.float64)
    cdef double[:, ::1] r = res
    cdef double n = <double>outer * <double>inner
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef Py_ssize_t c
    if n == 0 or C == 0:
        return res
    res[0] = n
    if inner < CHANNEL_MIN_INNER:
        batch_stats(x, outer, C, inner, res[1], res[2], num_threads)  # the biased variance
        res[2] *= n
        return res
    nt = threads_for(outer * C * inner, ELEMENTWISE_GRAIN, nt)
    nt = <int>min(<Py_ssize_t>nt, C)
    with nogil:
        if nt <= 1:
            for c in range(C):
                _channel_stats(typenum, xp, outer, C, inner, c, &r[1, c], &r[2, c])
        else:
            for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, nt),
                            num_threads=nt):
                _channel_stats(typenum, xp, outer, C, inner, c, &r[1, c], &r[2, c])
    return res


cdef extern from "cyrelu/batchnorm.h" nogil:
    void cyr_bn_channel_dx_f32(const float *dy, const float *x, const float *y, float *dx,
                               Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c,
                               double mean, double invstd, double w, const double *sums,
                               double n, int train, int act, float a, int stream)
    void cyr_bn_channel_dx_f64(const double *dy, const double *x, const double *y,
                               double *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                               Py_ssize_t c, double mean, double invstd, double w,
                               const double *sums, double n, int train, int act, double a,
                               int stream)
    void cyr_bn_channel_dx_f16(const cyr_half *dy, const cyr_half *x, const cyr_half *y,
                               cyr_half *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                               Py_ssize_t c, double mean, double invstd, double w,
                               const double *sums, double n, int train, int act, float a,
                               int stream)


cdef inline void _channel_dx(int typenum, const void *dy, const void *x, const void *y,
                             void *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                             Py_ssize_t c, double mean, double invstd, double w,
                             const double *sums, double n, int train, int act, double a,
                             int stream) noexcept nogil:
    if typenum == cnp.NPY_FLOAT32:
        cyr_bn_channel_dx_f32(<const float *>dy, <const float *>x, <const float *>y,
                              <float *>dx, outer, C, inner, c, mean, invstd, w, sums, n, train,
                              act, <float>a, stream)
    elif typenum == cnp.NPY_FLOAT16:
        cyr_bn_channel_dx_f16(<const cyr_half *>dy, <const cyr_half *>x, <const cyr_half *>y,
                              <cyr_half *>dx, outer, C, inner, c, mean, invstd, w, sums, n,
                              train, act, <float>a, stream)
    else:
        cyr_bn_channel_dx_f64(<const double *>dy, <const double *>x, <const double *>y,
                              <double *>dx, outer, C, inner, c, mean, invstd, w, sums, n,
                              train, act, a, stream)


def channel_dx(cnp.ndarray dy, cnp.ndarray x, object y, cnp.ndarray dx, Py_ssize_t outer,
               Py_ssize_t C, Py_ssize_t inner, double[::1] mean, double[::1] invstd,
               double[::1] w, double[:, ::1] sums, double n, bint train, int act, double alpha,
               num_threads):
    """Per-channel layout: the input gradient of (outer, C, inner) data that is part of a
    larger batch, from that batch's sums[c] = (sum(g), sum(g * (x - mean))) over n values
    per channel (backward_channels takes them from this data itself)."""
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef const void *dyp = cnp.PyArray_DATA(dy)
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef const void *yp = NULL
    cdef void *dxp = cnp.PyArray_DATA(dx)
    cdef Py_ssize_t c
    cdef int stream
    if y is not None:
        yp = cnp.PyArray_DATA(<cnp.ndarray>y)
    if outer * C * inner == 0:
        return
    nt = threads_for(outer * C * inner, ELEMENTWISE_GRAIN, nt)
    nt = <int>min(<Py_ssize_t>nt, C)
    stream = _streams(cnp.PyArray_NBYTES(dx), inner * cnp.PyArray_ITEMSIZE(dx), nt)
    with nogil:
        if nt <= 1:
            for c in range(C):
                _channel_dx(typenum, dyp, xp, yp, dxp, outer, C, inner, c, mean[c], invstd[c],
                            w[c], &sums[c, 0], n, train, act, alpha, stream)
        else:
            for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, nt),
                            num_threads=nt):
                _channel_dx(typenum, dyp, xp, yp, dxp, outer, C, inner, c, mean[c],
                            invstd[c], w[c], &sums[c, 0], n, train, act, alpha, stream)
