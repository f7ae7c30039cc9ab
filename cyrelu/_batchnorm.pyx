"""Cython entry points of the BatchNorm kernels (include/cyrelu/batchnorm.h).

One entry per public operation: forward_train, forward_eval and backward each run the
whole operation (statistics, their finishing and the running-statistic update, the
per-channel coefficients, the pass over the data with the fused activation) in one
call, with the GIL released and their scratch allocated once, up front.

The wrapper layer (cyrelu/batchnorm.py) has already validated everything: the big
arrays are aligned, C-contiguous float32/float64/float16 arrays of one dtype seen as
(outer, C, inner) (float16 computed in float32 by the kernels, with float32 scale/shift
and row-layout parameters); the per-channel arrays (weight, bias, running and saved
statistics, and the per-channel results) are aligned 1-D float32/float64 arrays of
length C, of any stride, or None where optional.  This layer picks the loop shape,
splits the work across threads, releases the GIL and calls C.

Loop shapes (see batchnorm.h):
  per channel  inner >= CHANNEL_MIN_INNER: threads own whole channels.
  per row      otherwise: rows of W = C * inner columns, cut into at most
               MAX_GROUPS fixed groups (their number depends only on the shape,
               never on the thread count), merged in group order; fewer when
               their scratch would pass a fixed share of the input (_group_rows);
               a group's statistics are taken block by block (_block_rows, from the
               shape and, but for float32, the planner's L2 size), merged in block
               order.
The per-channel backward whose output streams and whose channel slabs fit twice in
the L2 cache is pipelined: each thread takes a run of neighbouring channels and
writes one channel's gradient while it reads the next one's inputs
(bn_backward_channels_piped).
Both shapes give bitwise identical results for any thread count: every channel,
row group or output piece is computed by one thread from the same inputs in the same
order, whichever thread takes it, so the loops hand the work out dynamically.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset
cimport numpy as cnp
import numpy as np

from cyrelu._ndarray cimport disjoint, plain_array, same_shape
from cyrelu._parallel cimport threads_for, resolve_threads, ELEMENTWISE_GRAIN
from cyrelu import _activation_table as _table, _bn_activation

cnp.import_array()

# backward's act for elu, celu and selu with their derivative read from the output (the
# code plus this; the parameters then the derivative's factor and shift: batchnorm.h)
GATE_AT_OUTPUT = CYR_BN_GATE_AT_OUTPUT


cdef extern from "cyrelu/batchnorm.h" nogil:
    int CYR_ACT_NONE  # no activation (cyrelu/cuda/activation_table.h)
    int CYR_BN_GATE_AT_OUTPUT  # added to elu's, celu's, selu's code: the gate from the output
    enum: CYR_BN_CARRY  # doubles of a channel's statistics read, carried to the next
    enum: CYR_BN_COEF_EXT_BYTES  # the row layout's coefficients' repeated tail (_row_coefs)
    Py_ssize_t cyr_stream_min_bytes()
    Py_ssize_t cyr_l2_bytes()
    void cyr_bn_chan_merge(double na, double *mean_a, double *m2_a, double nb,
                           const double *mean_b, const double *m2_b, Py_ssize_t w)
    void cyr_bn_train_channel_f32(const float *x, float *y, Py_ssize_t outer, Py_ssize_t C,
                                  Py_ssize_t inner, Py_ssize_t c, double w, double b, double eps,
                                  int act, float a, float pb, int stream, const double *carry_in,
                                  double *carry_out, double *mean_out, double *var_out)
    void cyr_bn_train_channel_f64(const double *x, double *y, Py_ssize_t outer, Py_ssize_t C,
                                  Py_ssize_t inner, Py_ssize_t c, double w, double b, double eps,
                                  int act, double a, double pb, int stream, const double *carry_in,
                                  double *carry_out, double *mean_out, double *var_out)
    void cyr_bn_affine_chan_rows_f32(int act, const float *x, float *y, Py_ssize_t r0,
                                     Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner,
                                     const float *scale, const float *shift, float a, float b,
                                     int stream)
    void cyr_bn_affine_chan_rows_f64(int act, const double *x, double *y, Py_ssize_t r0,
                                     Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner,
                                     const double *scale, const double *shift, double a,
                                     double b, int stream)
    void cyr_bn_affine_rows_f32(int act, const float *x, float *y, Py_ssize_t rows,
                                Py_ssize_t w, const float *scale, const float *shift, float a,
                                float b)
    void cyr_bn_affine_rows_f64(int act, const double *x, double *y, Py_ssize_t rows,
                                Py_ssize_t w, const double *scale, const double *shift, double a,
                                double b)
    void cyr_bn_affine_rows_stream_f32(int act, const float *x, float *y, Py_ssize_t rows,
                                       Py_ssize_t w, const float *scale, const float *shift,
                                       float a, float b)
    void cyr_bn_affine_rows_stream_f64(int act, const double *x, double *y, Py_ssize_t rows,
                                       Py_ssize_t w, const double *scale, const double *shift,
                                       double a, double b)
    void cyr_bn_group_colstats_f32(const float *x, Py_ssize_t rows, Py_ssize_t w,
                                   Py_ssize_t block_rows, double *gmean, double *gm2,
                                   double *t)
    void cyr_bn_group_colstats_f64(const double *x, Py_ssize_t rows, Py_ssize_t w,
                                   Py_ssize_t block_rows, double *gmean, double *gm2,
                                   double *t)
    void cyr_bn_backward_channel_f32(const float *dy, const float *x, const float *y, float *dx,
                                     Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                                     Py_ssize_t c, double mean, double invstd, double w,
                                     int train, int act, float a, float b, const float *sc,
                                     const float *sh, int stream, double *sums)
    void cyr_bn_backward_channel_f64(const double *dy, const double *x, const double *y,
                                     double *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                                     Py_ssize_t c, double mean, double invstd, double w,
                                     int train, int act, double a, double b,
                                     const double *sc, const double *sh, int stream,
                                     double *sums)
    void cyr_bn_backward_channels_piped_f32(const float *dy, const float *x, const float *y,
                                            float *dx, Py_ssize_t outer, Py_ssize_t C,
                                            Py_ssize_t inner, Py_ssize_t c0, Py_ssize_t c1,
                                            const double *mean, const double *invstd,
                                            const double *w, int train, int act, float a,
                                            float b, const float *sc, const float *sh,
                                            double *sums)
    void cyr_bn_backward_channels_piped_f64(const double *dy, const double *x,
                                            const double *y, double *dx, Py_ssize_t outer,
                                            Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c0,
                                            Py_ssize_t c1, const double *mean,
                                            const double *invstd, const double *w, int train,
                                            int act, double a, double b, const double *sc,
                                            const double *sh, double *sums)
    # float16 data as its bit patterns (cyr_half); parameters and alpha in float
    ctypedef unsigned short cyr_half
    void cyr_bn_train_channel_f16(const cyr_half *x, cyr_half *y, Py_ssize_t outer,
                                  Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c, double w,
                                  double b, double eps, int act, float a, float pb, int stream,
                                  double *mean_out, double *var_out)
    void cyr_bn_affine_chan_rows_f16(int act, const cyr_half *x, cyr_half *y, Py_ssize_t r0,
                                     Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner,
                                     const float *scale, const float *shift, float a, float b,
                                     int stream)
    void cyr_bn_affine_rows_f16(int act, const cyr_half *x, cyr_half *y, Py_ssize_t rows,
                                Py_ssize_t w, const float *scale, const float *shift, float a,
                                float b)
    void cyr_bn_group_colstats_f16(const cyr_half *x, Py_ssize_t rows, Py_ssize_t w,
                                   Py_ssize_t block_rows, double *gmean, double *gm2,
                                   double *t)
    void cyr_bn_backward_channel_f16(const cyr_half *dy, const cyr_half *x, const cyr_half *y,
                                     cyr_half *dx, Py_ssize_t outer, Py_ssize_t C,
                                     Py_ssize_t inner, Py_ssize_t c, double mean,
                                     double invstd, double w, int train, int act, float a,
                                     float b, const float *sc, const float *sh, int stream,
                                     double *sums)
    void cyr_bn_dot_cols_f16(int act, const cyr_half *dy, const cyr_half *x, const cyr_half *y,
                             Py_ssize_t rows, Py_ssize_t w, const double *mean, float a,
                             float b, const float *sc, const float *sh, double *s0,
                             double *s1)
    void cyr_bn_dx_cols_f16(int act, int train, const cyr_half *dy, const cyr_half *x,
                            const cyr_half *y, cyr_half *dx, Py_ssize_t rows, Py_ssize_t w,
                            const float *mean, const float *k, const float *mdy,
                            const float *A, float a, float b, const float *sc,
                            const float *sh)
    int cyr_isa_level()
    void cyr_bn_dx_coefs(const double *sums, double n, double invstd, double w, int train,
                         double *k, double *mdy, double *A)
    int cyr_bn_keeps_gate(int act)
    int cyr_bn_keeps_gate_rows(int act, int at_z, Py_ssize_t row_bytes)
    void cyr_bn_dot_cols_f32(int act, const float *dy, const float *x, const float *y,
                             Py_ssize_t rows, Py_ssize_t w, const double *mean, float a,
                             float b, const float *sc, const float *sh, double *s0,
                             double *s1, float *gs)
    void cyr_bn_dot_cols_f64(int act, const double *dy, const double *x, const double *y,
                             Py_ssize_t rows, Py_ssize_t w, const double *mean, double a,
                             double b, const double *sc, const double *sh, double *s0,
                             double *s1, double *gs)
    void cyr_bn_dx_cols_f32(int act, int train, const float *dy, const float *x, const float *y,
                            float *dx, Py_ssize_t rows, Py_ssize_t w, const float *mean,
                            const float *k, const float *mdy, const float *A, float a,
                            float b, const float *sc, const float *sh)
    void cyr_bn_dx_cols_f64(int act, int train, const double *dy, const double *x,
                            const double *y, double *dx, Py_ssize_t rows, Py_ssize_t w,
                            const double *mean, const double *k, const double *mdy,
                            const double *A, double a, double b, const double *sc,
                            const double *sh)
    void cyr_bn_dx_cols_stream_f32(int act, int train, const float *dy, const float *x,
                                   const float *y, float *dx, Py_ssize_t rows, Py_ssize_t w,
                                   const float *mean, const float *k, const float *mdy,
                                   const float *A, float a, float b, const float *sc,
                                   const float *sh)
    void cyr_bn_dx_cols_stream_f64(int act, int train, const double *dy, const double *x,
                                   const double *y, double *dx, Py_ssize_t rows, Py_ssize_t w,
                                   const double *mean, const double *k, const double *mdy,
                                   const double *A, double a, double b, const double *sc,
                                   const double *sh)

# `act` arguments are codes of the activation table (cyrelu/_activation_table.py).


cdef enum:
    # A channel's runs shorter than this use the row layout instead.
    CHANNEL_MIN_INNER = 32
    # Row layout: the rows are cut into groups of at least BLOCK_ELEMS elements...
    BLOCK_ELEMS = 16384
    # ...at most this many fixed groups,
    MAX_GROUPS = 64
    # whose float64 scratch (a block of GROUP_STATS * W or 2 * W doubles each) stays within
    # max(SCRATCH_MIN_BYTES, input bytes / SCRATCH_INPUT_DIV): few very wide rows get
    # fewer groups, so the scratch never grows beyond a fixed share of the input.
    SCRATCH_MIN_BYTES = 4194304
    SCRATCH_INPUT_DIV = 16
    # A group's statistics are taken in blocks of at most this many rows (_block_rows),
    # each in one read (bn_block_colstats: the sums of each column shifted by the
    # block's first row, whose cancellation grows with the block's rows;
    # batchnorm_template.h), merged in order; every merge costs one pass over the
    # group's w columns.
    STATS_BLOCK_ROWS = 256
    # The forward statistics' doubles per column and group: the group's mean and M2,
    # and a block's shift (then mean), M2 and shifted sum.
    GROUP_STATS = 5
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
                                int act, floating a, floating pb, int stream,
                                const double *carry_in, double *carry_out, double *mean,
                                double *var) noexcept nogil:
    if floating is float:
        cyr_bn_train_channel_f32(x, y, outer, C, inner, c, w, b, eps, act, a, pb, stream,
                                 carry_in, carry_out, mean, var)
    else:
        cyr_bn_train_channel_f64(x, y, outer, C, inner, c, w, b, eps, act, a, pb, stream,
                                 carry_in, carry_out, mean, var)


cdef inline void _group_colstats(const floating *x, Py_ssize_t rows, Py_ssize_t w,
                                 Py_ssize_t block_rows, double *s) noexcept nogil:
    # s: GROUP_STATS * w doubles: group mean, group M2, block scratch (3 * w)
    if floating is float:
        cyr_bn_group_colstats_f32(x, rows, w, block_rows, s, s + w, s + 2 * w)
    else:
        cyr_bn_group_colstats_f64(x, rows, w, block_rows, s, s + w, s + 2 * w)


cdef inline void _affine_rows(int act, const floating *x, floating *y, Py_ssize_t rows,
                              Py_ssize_t w, const floating *scale, const floating *shift,
                              floating a, floating b, int stream) noexcept nogil:
    if floating is float:
        if stream:
            cyr_bn_affine_rows_stream_f32(act, x, y, rows, w, scale, shift, a, b)
        else:
            cyr_bn_affine_rows_f32(act, x, y, rows, w, scale, shift, a, b)
    else:
        if stream:
            cyr_bn_affine_rows_stream_f64(act, x, y, rows, w, scale, shift, a, b)
        else:
            cyr_bn_affine_rows_f64(act, x, y, rows, w, scale, shift, a, b)


cdef inline void _affine_chan_rows(int act, const floating *x, floating *y, Py_ssize_t r0,
                                   Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner,
                                   const floating *scale, const floating *shift,
                                   floating a, floating b, int stream) noexcept nogil:
    if floating is float:
        cyr_bn_affine_chan_rows_f32(act, x, y, r0, r1, C, inner, scale, shift, a, b, stream)
    else:
        cyr_bn_affine_chan_rows_f64(act, x, y, r0, r1, C, inner, scale, shift, a, b, stream)


cdef inline void _backward_channel(const floating *dy, const floating *x, const floating *y,
                                   floating *dx, Py_ssize_t outer, Py_ssize_t C,
                                   Py_ssize_t inner, Py_ssize_t c, double mean, double invstd,
                                   double w, int train, int act, floating a, floating b,
                                   const floating *sc, const floating *sh, int stream,
                                   double *sums) noexcept nogil:
    # sc, sh: the gate's per-channel arrays (channel c's taken here)
    if floating is float:
        cyr_bn_backward_channel_f32(dy, x, y, dx, outer, C, inner, c, mean, invstd, w, train,
                                    act, a, b, sc + c, sh + c, stream, sums)
    else:
        cyr_bn_backward_channel_f64(dy, x, y, dx, outer, C, inner, c, mean, invstd, w, train,
                                    act, a, b, sc + c, sh + c, stream, sums)


cdef inline void _backward_channels_piped(const floating *dy, const floating *x,
                                          const floating *y, floating *dx, Py_ssize_t outer,
                                          Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c0,
                                          Py_ssize_t c1, const double *mean,
                                          const double *invstd, const double *w, int train,
                                          int act, floating a, floating b, const floating *sc,
                                          const floating *sh, double *sums) noexcept nogil:
    if floating is float:
        cyr_bn_backward_channels_piped_f32(dy, x, y, dx, outer, C, inner, c0, c1, mean, invstd,
                                           w, train, act, a, b, sc, sh, sums)
    else:
        cyr_bn_backward_channels_piped_f64(dy, x, y, dx, outer, C, inner, c0, c1, mean, invstd,
                                           w, train, act, a, b, sc, sh, sums)


cdef inline void _dot_cols(int act, const floating *dy, const floating *x, const floating *y,
                           Py_ssize_t rows, Py_ssize_t w, const double *mean, floating a,
                           floating b, const floating *sc, const floating *sh,
                           double *s, floating *keep_in) noexcept nogil:
    # keep_in: NULL, or dx, to keep the gate in (cyr_bn_keeps_gate)
    if floating is float:
        cyr_bn_dot_cols_f32(act, dy, x, y, rows, w, mean, a, b, sc, sh, s, s + w, keep_in)
    else:
        cyr_bn_dot_cols_f64(act, dy, x, y, rows, w, mean, a, b, sc, sh, s, s + w, keep_in)


cdef inline void _dx_cols(int act, int train, const floating *dy, const floating *x,
                          const floating *y, floating *dx, Py_ssize_t rows, Py_ssize_t w,
                          const floating *p, Py_ssize_t ps, floating a, floating b,
                          const floating *sc, const floating *sh, int stream) noexcept nogil:
    # p: 4 arrays, ps elements apart, of parameters per column: mean, k, mdy, A
    if floating is float:
        if stream:
            cyr_bn_dx_cols_stream_f32(act, train, dy, x, y, dx, rows, w, p, p + ps,
                                      p + 2 * ps, p + 3 * ps, a, b, sc, sh)
        else:
            cyr_bn_dx_cols_f32(act, train, dy, x, y, dx, rows, w, p, p + ps, p + 2 * ps,
                               p + 3 * ps, a, b, sc, sh)
    else:
        if stream:
            cyr_bn_dx_cols_stream_f64(act, train, dy, x, y, dx, rows, w, p, p + ps,
                                      p + 2 * ps, p + 3 * ps, a, b, sc, sh)
        else:
            cyr_bn_dx_cols_f64(act, train, dy, x, y, dx, rows, w, p, p + ps, p + 2 * ps,
                               p + 3 * ps, a, b, sc, sh)


# ---- helpers ------------------------------------------------------------------------


cdef inline Py_ssize_t _cdiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef Py_ssize_t _group_rows(Py_ssize_t rows, Py_ssize_t w, Py_ssize_t per_group,
                            Py_ssize_t itemsize) noexcept nogil:
    """Rows per group for the row layout, each group needing `per_group` doubles of
    scratch: a function of the shape only (never of the thread count)."""
    cdef Py_ssize_t unit = max(1, BLOCK_ELEMS // max(w, 1))
    cdef Py_ssize_t groups = min(<Py_ssize_t>MAX_GROUPS, _cdiv(rows, unit))
    cdef Py_ssize_t budget = max(<Py_ssize_t>SCRATCH_MIN_BYTES,
                                 rows * w * itemsize // SCRATCH_INPUT_DIV)
    groups = min(groups, budget // (_line_pad(per_group) * 8))
    groups = max(groups, 1)
    return _cdiv(rows, groups)


cdef inline Py_ssize_t _line_pad(Py_ssize_t n) noexcept nogil:
    """n doubles rounded up to whole 64-byte cache lines."""
    return (n + 7) // 8 * 8


cdef inline Py_ssize_t _lines(Py_ssize_t nbytes) noexcept nogil:
    """nbytes rounded up to whole 64-byte cache lines."""
    return (nbytes + 63) // 64 * 64


cdef char *_scratch(Py_ssize_t nbytes, void **block) except NULL:
    """An operation's scratch, allocated once: nbytes starting on a 64-byte line, the
    pieces carved from it at multiples of 64 bytes (_lines).  Row groups accumulate
    into blocks of their own lines: threads writing blocks that share a line would
    bounce it between the cores (measured: 2 threads slower than 1).  *block receives
    the pointer to free()."""
    block[0] = malloc(nbytes + 64)
    if block[0] == NULL:
        raise MemoryError("cyrelu: cannot allocate %d bytes of BatchNorm scratch" % nbytes)
    return <char *>block[0] + (64 - (<size_t>block[0]) % 64) % 64


cdef inline Py_ssize_t _block_rows(Py_ssize_t w, Py_ssize_t itemsize) noexcept nogil:
    """Rows per block of the row layout's statistics: STATS_BLOCK_ROWS, and for the data
    that come back to a block (float64's second read, float16's column tiles, each a
    pass down the block's rows; bn_block_colstats), no more than a quarter of the
    planner's L2 holds."""
    if itemsize == 4:
        return STATS_BLOCK_ROWS
    return max(1, min(<Py_ssize_t>STATS_BLOCK_ROWS,
                      cyr_l2_bytes() // (4 * itemsize * max(w, 1))))


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


cdef inline int _group_threads(Py_ssize_t rows, Py_ssize_t w, Py_ssize_t groups,
                               int nt) noexcept nogil:
    """Threads over the row layout's row groups: _row_threads, at most one per group."""
    return <int>min(<Py_ssize_t>_row_threads(rows, w, nt), groups)


# ---- per-channel arithmetic ---------------------------------------------------------
# The few operations per channel around the kernels, in C: as NumPy expressions on
# arrays of C elements they cost about a microsecond each, which dominated small calls.


ctypedef struct _Chan:
    # a per-channel array: float32 (f32) or float64 values `stride` bytes apart; p is
    # NULL for an absent (None) array, which reads as `absent` in every channel
    char *p
    Py_ssize_t stride
    int f32
    double absent


cdef _Chan _chan(cnp.ndarray a, double absent):
    cdef _Chan r
    r.p = NULL
    r.stride = 0
    r.f32 = 0
    r.absent = absent
    if a is not None:
        r.p = <char *>cnp.PyArray_DATA(a)
        r.stride = cnp.PyArray_STRIDE(a, 0)
        r.f32 = cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32
    return r


cdef inline _Chan _doubles(double *p) noexcept nogil:
    # a contiguous float64 scratch array seen as a per-channel array
    cdef _Chan r
    r.p = <char *>p
    r.stride = sizeof(double)
    r.f32 = 0
    r.absent = 0.0
    return r


cdef inline double _at(_Chan a, Py_ssize_t c) noexcept nogil:
    if a.p == NULL:
        return a.absent
    if a.f32:
        return (<const float *>(a.p + c * a.stride))[0]
    return (<const double *>(a.p + c * a.stride))[0]


cdef inline void _put(_Chan a, Py_ssize_t c, double v) noexcept nogil:
    if a.f32:
        (<float *>(a.p + c * a.stride))[0] = <float>v
    else:
        (<double *>(a.p + c * a.stride))[0] = v


cdef inline void _set(void *p, int f32, Py_ssize_t i, double v) noexcept nogil:
    # element i of a contiguous float32 (f32) or float64 buffer
    if f32:
        (<float *>p)[i] = <float>v
    else:
        (<double *>p)[i] = v


cdef void _load(_Chan a, Py_ssize_t C, double *dst) noexcept nogil:
    """dst[c] = a[c] as a double: the per-channel arrays the backward kernels take."""
    cdef Py_ssize_t c
    for c in range(C):
        dst[c] = _at(a, c)


cdef void _store(_Chan a, _Chan v, Py_ssize_t C) noexcept nogil:
    """a[c] = v[c], rounded to a's dtype (nothing when a is None)."""
    cdef Py_ssize_t c
    if a.p != NULL:
        for c in range(C):
            _put(a, c, _at(v, c))


cdef void _finish_train(const double *mean, const double *var, double eps, double momentum,
                        double n, Py_ssize_t C, _Chan rm, _Chan rv,
                        double *invstd) noexcept nogil:
    """Training: invstd = 1 / sqrt(var + eps), and the running statistics (absent, or
    updated in place) with PyTorch's rule, running = (1 - momentum) * running +
    momentum * batch, the batch variance made unbiased for running_var (var * n / (n - 1),
    n values per channel)."""
    cdef Py_ssize_t c
    cdef double keep = 1.0 - momentum
    cdef double unbias = n / (n - 1.0) if n > 1 else 1.0
    for c in range(C):
        invstd[c] = 1.0 / sqrt(var[c] + eps)
        if rm.p != NULL:
            _put(rm, c, keep * _at(rm, c) + momentum * mean[c])
        if rv.p != NULL:
            _put(rv, c, keep * _at(rv, c) + momentum * (var[c] * unbias))


cdef void _affine_coefs(_Chan mean, const double *invstd, _Chan w, _Chan b, Py_ssize_t C,
                        Py_ssize_t rep, int f32, void *scale, void *shift) noexcept nogil:
    """scale = w * invstd and shift = b - mean * scale per channel, into contiguous
    float32 (f32) or float64 buffers: each value `rep` times, once per channel (rep 1,
    the per-channel layout) or for the inner columns of its channel (rep = inner, the
    row layout)."""
    cdef Py_ssize_t c, i
    cdef double sc, sh
    for c in range(C):
        sc = _at(w, c) * invstd[c]
        sh = _at(b, c) - _at(mean, c) * sc
        for i in range(c * rep, (c + 1) * rep):
            _set(scale, f32, i, sc)
            _set(shift, f32, i, sh)


cdef inline Py_ssize_t _coef_bytes(Py_ssize_t n, int f32) noexcept nogil:
    """Bytes of one array of n per-column coefficients with its repeated tail and room to
    shift it within a line (_row_coefs)."""
    return _lines(n * (4 if f32 else 8) + CYR_BN_COEF_EXT_BYTES) + 64


cdef char *_row_coefs(char *base, const void *y, Py_ssize_t itemsize, int f32,
                      int stream) noexcept nogil:
    """Where one array of the row layout's coefficients starts in its block (base, on a
    line, of _coef_bytes).  Where the output streams (_rows_stream), at the output's
    offset within its 64-byte line, in elements, so that a streamed tile, which starts
    on a line, reads its coefficients from a line too (batchnorm.h,
    CYR_BN_COEF_EXT_BYTES).  Elsewhere on the line, where each row's loop starts
    (shifted there, a (1000, 100) float32 inference forward in L2 took 1.15x the time);
    and so for float16 data, normalised in float tiles that start on a line with a row."""
    cdef Py_ssize_t e = (<size_t>y % 64) // itemsize
    if itemsize == 2 or not stream:
        return base
    return base + (e * (4 if f32 else 8)) % 64


cdef void _repeat_coefs(void *p, int f32, Py_ssize_t w) noexcept nogil:
    """The repeated tail of one coefficient array of w columns: element w + j is element
    j, for CYR_BN_COEF_EXT_BYTES (batchnorm.h)."""
    cdef Py_ssize_t size = 4 if f32 else 8
    cdef Py_ssize_t n = CYR_BN_COEF_EXT_BYTES // size, done = 0, m
    cdef char *c = <char *>p
    while done < n:  # in pieces of at most w, each copied from w elements before it
        m = min(w, n - done)
        memcpy(c + (w + done) * size, c + done * size, m * size)
        done += m


cdef void _gate_coefs(bint from_z, _Chan mean, const double *invstd, _Chan w, _Chan b,
                      Py_ssize_t C, Py_ssize_t rep, int f32, void *sc,
                      void *sh) noexcept nogil:
    """The backward's gate parameters (batchnorm.h's cyr_bn_gatep_*), laid out as
    _affine_coefs': the activation's derivative is taken at src * sc + sh, src being x
    with the forward's scale and shift (from_z: the pre-activation recomputed, bit for
    bit the forward's normalising pass) or the forward's output with 1 and 0."""
    cdef Py_ssize_t i
    if from_z:
        _affine_coefs(mean, invstd, w, b, C, rep, f32, sc, sh)
        return
    for i in range(C * rep):
        _set(sc, f32, i, 1.0)
        _set(sh, f32, i, 0.0)


cdef void _dx_params(const double *sums, double n, const double *mean, const double *invstd,
                     const double *w, int train, Py_ssize_t C, Py_ssize_t inner, int f32,
                     void *params, Py_ssize_t ps) noexcept nogil:
    """Row layout: the per-column parameters of the input gradient, four float32 (f32)
    or float64 arrays of C * inner columns, ps elements apart: mean, then k, mean(g) and
    A (cyr_bn_dx_coefs), each repeated for the inner columns of its channel, each with
    its repeated tail (_repeat_coefs)."""
    cdef Py_ssize_t c, i, W = C * inner, size = 4 if f32 else 8
    cdef double v[4]
    cdef int r
    for c in range(C):
        v[0] = mean[c]
        cyr_bn_dx_coefs(&sums[2 * c], n, invstd[c], w[c], train, &v[1], &v[2], &v[3])
        for r in range(4):
            for i in range(r * ps + c * inner, r * ps + (c + 1) * inner):
                _set(params, f32, i, v[r])
    for r in range(4):
        _repeat_coefs(<char *>params + r * ps * size, f32, W)


# ---- training-forward statistics and normalisation ----------------------------------


cdef void _train_channel_run(const floating *x, floating *y, Py_ssize_t outer, Py_ssize_t C,
                             Py_ssize_t inner, Py_ssize_t c0, Py_ssize_t c1, _Chan w, _Chan b,
                             double eps, int act, floating a, floating pb, int stream,
                             double *mean, double *var) noexcept nogil:
    """Channels [c0, c1) in turn, each one's statistics read carried from the one
    before (cyr_bn_train_channel: taken while that one was normalised)."""
    cdef double carry[2][CYR_BN_CARRY]
    cdef Py_ssize_t c, k = 0
    for c in range(c0, c1):
        _train_channel(x, y, outer, C, inner, c, _at(w, c), _at(b, c), eps, act, a, pb, stream,
                       carry[k] if c > c0 else NULL, carry[1 - k] if c + 1 < c1 else NULL,
                       &mean[c], &var[c])
        k = 1 - k


cdef void _train_channels(const floating *x, floating *y, Py_ssize_t outer, Py_ssize_t C,
                          Py_ssize_t inner, _Chan w, _Chan b, double eps, int act,
                          floating a, floating pb, double *mean, double *var, int stream,
                          int nt) noexcept nogil:
    # runs of neighbouring channels (_channel_chunk) handed out in turn, as prange's
    # dynamic schedule with that chunk size would
    cdef Py_ssize_t t, k = _channel_chunk(C, nt)
    if nt <= 1:
        _train_channel_run(x, y, outer, C, inner, 0, C, w, b, eps, act, a, pb, stream, mean,
                           var)
    else:
        for t in prange(_cdiv(C, k), schedule="dynamic", num_threads=nt):
            _train_channel_run(x, y, outer, C, inner, t * k, min(C, t * k + k), w, b, eps, act,
                               a, pb, stream, mean, var)


cdef void _colstats(const floating *x, Py_ssize_t rows, Py_ssize_t w, double *s,
                    Py_ssize_t gstride, Py_ssize_t gsize, Py_ssize_t groups,
                    int nt) noexcept nogil:
    # s: one block of gstride >= GROUP_STATS * w doubles per group (see _group_colstats)
    cdef Py_ssize_t g, block_rows = _block_rows(w, sizeof(floating))
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


cdef void _row_stats(int typenum, const void *x, Py_ssize_t outer, Py_ssize_t C,
                     Py_ssize_t inner, double *s, Py_ssize_t gstride, Py_ssize_t gsize,
                     Py_ssize_t groups, int nt, double *mean, double *var) noexcept nogil:
    """Row layout: batch mean and biased variance per channel of (outer, C, inner) data
    (outer > 0), into mean and var (C doubles each); s: the groups' scratch."""
    cdef Py_ssize_t w = C * inner, rows = outer
    cdef Py_ssize_t c, i, j
    cdef double na, d, n_col = <double>rows
    cdef double m, m2
    nt = _group_threads(rows, w, groups, nt)
    if typenum == cnp.NPY_FLOAT32:
        _colstats[float](<const float *>x, rows, w, s, gstride, gsize, groups, nt)
    elif typenum == cnp.NPY_FLOAT16:
        _colstats_h(<const cyr_half *>x, rows, w, s, gstride, gsize, groups, nt)
    else:
        _colstats[double](<const double *>x, rows, w, s, gstride, gsize, groups, nt)
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


cdef void _train_any(int typenum, const void *x, void *y, Py_ssize_t outer, Py_ssize_t C,
                     Py_ssize_t inner, _Chan w, _Chan b, double eps, int act, double alpha,
                     double beta,
                     double *mean, double *var, int stream, int nt) noexcept nogil:
    """Per-channel layout: statistics and y = act(bn(x)) in one call per channel (y may
    be x), for data of any of the three dtypes."""
    if typenum == cnp.NPY_FLOAT32:
        _train_channels[float](<const float *>x, <float *>y, outer, C, inner, w, b, eps, act,
                               <float>alpha, <float>beta, mean, var, stream, nt)
    elif typenum == cnp.NPY_FLOAT16:
        _train_channels_h(<const cyr_half *>x, <cyr_half *>y, outer, C, inner, w, b, eps,
                          act, <float>alpha, <float>beta, mean, var, stream, nt)
    else:
        _train_channels[double](<const double *>x, <double *>y, outer, C, inner, w, b, eps,
                                act, alpha, beta, mean, var, stream, nt)


cdef inline int _row_pass_streams(Py_ssize_t rows, Py_ssize_t w, Py_ssize_t itemsize,
                                  int nt) noexcept nogil:
    """Whether a row-layout pass over rows x w (_normalise, _dx_rows), in the chunks
    those cut, streams an output distinct from its inputs."""
    cdef int mt = _row_threads(rows, w, nt)
    cdef Py_ssize_t chunk = _cdiv(rows, min(rows, <Py_ssize_t>mt * CHUNKS_PER_THREAD))
    return _streams(rows * w * itemsize, chunk * w * itemsize, mt)


cdef inline int _rows_stream(const void *x, const void *y, Py_ssize_t outer, Py_ssize_t w,
                             Py_ssize_t itemsize, int nt) noexcept nogil:
    """Whether the row layout's normalising pass (_normalise) streams its output."""
    return y != x and _row_pass_streams(outer, w, itemsize, nt)


cdef void _normalise(const floating *x, floating *y, Py_ssize_t outer, Py_ssize_t C,
                     Py_ssize_t inner, const floating *scale, const floating *shift, int act,
                     floating a, floating b, int nt) noexcept nogil:
    cdef Py_ssize_t rows, chunk, t, r0, w, nchunks
    cdef int stream
    if inner >= CHANNEL_MIN_INNER:
        rows = outer * C
        nt = _row_threads(rows, inner, nt)
        stream = _streams(rows * inner * <Py_ssize_t>sizeof(floating),
                          inner * <Py_ssize_t>sizeof(floating), nt)
        if nt <= 1:
            _affine_chan_rows(act, x, y, 0, rows, C, inner, scale, shift, a, b, stream)
            return
        nchunks = min(rows, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
        chunk = _cdiv(rows, nchunks)
        for t in prange(nchunks, schedule="dynamic", num_threads=nt):
            r0 = t * chunk
            if r0 < rows:
                _affine_chan_rows(act, x, y, r0, min(rows, r0 + chunk), C, inner, scale, shift, a,
                                  b, stream)
    else:
        w = C * inner
        stream = _rows_stream(x, y, outer, w, sizeof(floating), nt)
        nt = _row_threads(outer, w, nt)
        nchunks = min(outer, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
        chunk = _cdiv(outer, nchunks)
        if nt <= 1:
            _affine_rows(act, x, y, outer, w, scale, shift, a, b, stream)
            return
        for t in prange(nchunks, schedule="dynamic", num_threads=nt):
            r0 = t * chunk
            if r0 < outer:
                _affine_rows(act, x + r0 * w, y + r0 * w, min(outer, r0 + chunk) - r0, w, scale,
                             shift, a, b, stream)


cdef void _normalise_any(int typenum, const void *x, void *y, Py_ssize_t outer, Py_ssize_t C,
                         Py_ssize_t inner, const void *scale, const void *shift, int act,
                         double alpha, double beta, int nt) noexcept nogil:
    """y = act(x * scale[c] + shift[c]) (y may be x); scale/shift float for float32 and
    float16 data, double for float64, of length C for the per-channel layout and
    C * inner for the row layout."""
    if typenum == cnp.NPY_FLOAT32:
        _normalise[float](<const float *>x, <float *>y, outer, C, inner, <const float *>scale,
                          <const float *>shift, act, <float>alpha, <float>beta, nt)
    elif typenum == cnp.NPY_FLOAT16:
        _normalise_h(<const cyr_half *>x, <cyr_half *>y, outer, C, inner,
                     <const float *>scale, <const float *>shift, act, <float>alpha, <float>beta,
                     nt)
    else:
        _normalise[double](<const double *>x, <double *>y, outer, C, inner,
                           <const double *>scale, <const double *>shift, act, alpha, beta, nt)


# ---- float16 data -------------------------------------------------------------------
# The loops above for float16 (cyr_half) data: the same work partition (channels, row
# groups, row chunks), so the same pieces reach the kernels, which compute as the float
# kernels do on the converted data (batchnorm_half_template.h); per-channel and
# per-column parameters and alpha are float.  No pipelined backward.


cdef void _train_channels_h(const cyr_half *x, cyr_half *y, Py_ssize_t outer, Py_ssize_t C,
                            Py_ssize_t inner, _Chan w, _Chan b, double eps, int act,
                            float a, float pb, double *mean, double *var, int stream,
                            int nt) noexcept nogil:
    cdef Py_ssize_t c
    if nt <= 1:
        for c in range(C):
            cyr_bn_train_channel_f16(x, y, outer, C, inner, c, _at(w, c), _at(b, c), eps, act,
                                     a, pb, stream, &mean[c], &var[c])
    else:
        for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, nt), num_threads=nt):
            cyr_bn_train_channel_f16(x, y, outer, C, inner, c, _at(w, c), _at(b, c), eps, act,
                                     a, pb, stream, &mean[c], &var[c])


cdef void _colstats_h(const cyr_half *x, Py_ssize_t rows, Py_ssize_t w, double *s,
                      Py_ssize_t gstride, Py_ssize_t gsize, Py_ssize_t groups,
                      int nt) noexcept nogil:
    # s: one block of gstride >= GROUP_STATS * w doubles per group (see _group_colstats)
    cdef Py_ssize_t g, block_rows = _block_rows(w, sizeof(cyr_half))
    if nt <= 1:
        for g in range(groups):
            cyr_bn_group_colstats_f16(x + g * gsize * w, min(gsize, rows - g * gsize), w,
                                      block_rows, s + g * gstride, s + g * gstride + w,
                                      s + g * gstride + 2 * w)
    else:
        for g in prange(groups, schedule="dynamic", num_threads=nt):
            cyr_bn_group_colstats_f16(x + g * gsize * w, min(gsize, rows - g * gsize), w,
                                      block_rows, s + g * gstride, s + g * gstride + w,
                                      s + g * gstride + 2 * w)
    for g in range(1, groups):
        cyr_bn_chan_merge(<double>(g * gsize), s, s + w,
                          <double>min(gsize, rows - g * gsize), s + g * gstride,
                          s + g * gstride + w, w)


cdef void _normalise_h(const cyr_half *x, cyr_half *y, Py_ssize_t outer, Py_ssize_t C,
                       Py_ssize_t inner, const float *scale, const float *shift, int act,
                       float a, float b, int nt) noexcept nogil:
    cdef Py_ssize_t rows, chunk, t, r0, w, nchunks
    cdef int stream
    if inner >= CHANNEL_MIN_INNER:
        rows = outer * C
        nt = _row_threads(rows, inner, nt)
        stream = _streams(rows * inner * 2, inner * 2, nt)
        if nt <= 1:
            cyr_bn_affine_chan_rows_f16(act, x, y, 0, rows, C, inner, scale, shift, a, b, stream)
            return
        nchunks = min(rows, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
        chunk = _cdiv(rows, nchunks)
        for t in prange(nchunks, schedule="dynamic", num_threads=nt):
            r0 = t * chunk
            if r0 < rows:
                cyr_bn_affine_chan_rows_f16(act, x, y, r0, min(rows, r0 + chunk), C, inner,
                                            scale, shift, a, b, stream)
    else:
        w = C * inner
        nt = _row_threads(outer, w, nt)
        if nt <= 1:
            cyr_bn_affine_rows_f16(act, x, y, outer, w, scale, shift, a, b)
            return
        nchunks = min(outer, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
        chunk = _cdiv(outer, nchunks)
        for t in prange(nchunks, schedule="dynamic", num_threads=nt):
            r0 = t * chunk
            if r0 < outer:
                cyr_bn_affine_rows_f16(act, x + r0 * w, y + r0 * w, min(outer, r0 + chunk) - r0,
                                       w, scale, shift, a, b)


cdef void _backward_channels_h(const cyr_half *dy, const cyr_half *x, const cyr_half *y,
                               cyr_half *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                               const double *mean, const double *invstd, const double *w,
                               int train, int act, float a, float b, const float *sc,
                               const float *sh, double *sums, int stream,
                               int nt) noexcept nogil:
    cdef Py_ssize_t c
    if nt <= 1:
        for c in range(C):
            cyr_bn_backward_channel_f16(dy, x, y, dx, outer, C, inner, c, mean[c], invstd[c],
                                        w[c], train, act, a, b, sc + c, sh + c, stream,
                                        sums + 2 * c)
    else:
        for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, nt), num_threads=nt):
            cyr_bn_backward_channel_f16(dy, x, y, dx, outer, C, inner, c, mean[c], invstd[c],
                                        w[c], train, act, a, b, sc + c, sh + c, stream,
                                        sums + 2 * c)


cdef void _dot_groups_h(const cyr_half *dy, const cyr_half *x, const cyr_half *y,
                        Py_ssize_t rows, Py_ssize_t w, const double *mean_cols, int act,
                        float a, float b, const float *sc, const float *sh, double *s,
                        Py_ssize_t gstride, Py_ssize_t gsize, Py_ssize_t groups,
                        int nt) noexcept nogil:
    cdef Py_ssize_t g, off
    if nt <= 1:
        for g in range(groups):
            off = g * gsize * w
            memset(s + g * gstride, 0, 2 * w * sizeof(double))
            cyr_bn_dot_cols_f16(act, dy + off, x + off, (y + off) if y != NULL else NULL,
                                min(gsize, rows - g * gsize), w, mean_cols, a, b, sc, sh,
                                s + g * gstride, s + g * gstride + w)
    else:
        for g in prange(groups, schedule="dynamic", num_threads=nt):
            off = g * gsize * w
            memset(s + g * gstride, 0, 2 * w * sizeof(double))
            cyr_bn_dot_cols_f16(act, dy + off, x + off, (y + off) if y != NULL else NULL,
                                min(gsize, rows - g * gsize), w, mean_cols, a, b, sc, sh,
                                s + g * gstride, s + g * gstride + w)


cdef void _dx_rows_h(const cyr_half *dy, const cyr_half *x, const cyr_half *y, cyr_half *dx,
                     Py_ssize_t rows, Py_ssize_t w, const float *p, Py_ssize_t ps, int train,
                     int act, float a, float b, const float *sc, const float *sh,
                     int nt) noexcept nogil:
    cdef Py_ssize_t chunk, t, r0, nchunks
    nt = _row_threads(rows, w, nt)
    if nt <= 1:
        cyr_bn_dx_cols_f16(act, train, dy, x, y, dx, rows, w, p, p + ps, p + 2 * ps,
                           p + 3 * ps, a, b, sc, sh)
        return
    nchunks = min(rows, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
    chunk = _cdiv(rows, nchunks)
    for t in prange(nchunks, schedule="dynamic", num_threads=nt):
        r0 = t * chunk
        if r0 < rows:
            cyr_bn_dx_cols_f16(act, train, dy + r0 * w, x + r0 * w,
                               (y + r0 * w) if y != NULL else NULL, dx + r0 * w,
                               min(rows, r0 + chunk) - r0, w, p, p + ps, p + 2 * ps,
                               p + 3 * ps, a, b, sc, sh)


# ---- backward -----------------------------------------------------------------------


cdef void _backward_channels(const floating *dy, const floating *x, const floating *y,
                             floating *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                             const double *mean, const double *invstd, const double *w,
                             int train, int act, floating a, floating b, const floating *sc,
                             const floating *sh, double *sums, int stream, int piped,
                             int nt) noexcept nogil:
    cdef Py_ssize_t c, t, chunk, nchunks
    if piped:  # runs of neighbouring channels, each pipelined (bn_backward_channels_piped)
        if nt <= 1:
            _backward_channels_piped(dy, x, y, dx, outer, C, inner, 0, C, mean, invstd, w,
                                     train, act, a, b, sc, sh, sums)
            return
        chunk = _channel_chunk(C, nt)
        nchunks = _cdiv(C, chunk)
        for t in prange(nchunks, schedule="dynamic", num_threads=nt):
            _backward_channels_piped(dy, x, y, dx, outer, C, inner, t * chunk,
                                     min(C, t * chunk + chunk), mean, invstd, w, train, act,
                                     a, b, sc, sh, sums)
        return
    if nt <= 1:
        for c in range(C):
            _backward_channel(dy, x, y, dx, outer, C, inner, c, mean[c], invstd[c], w[c],
                              train, act, a, b, sc, sh, stream, sums + 2 * c)
    else:
        for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, nt), num_threads=nt):
            _backward_channel(dy, x, y, dx, outer, C, inner, c, mean[c], invstd[c], w[c],
                              train, act, a, b, sc, sh, stream, sums + 2 * c)


cdef int _backward_plan(Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, Py_ssize_t itemsize,
                        bint has_y, int nt, int *stream, int *piped) noexcept nogil:
    """Threads for the per-channel backward, whether dx streams, and whether it is
    pipelined (bn_backward_channels_piped): dx streams, the slabs of two channels (dy,
    x, and has_y: y if fused, or dx keeping the gate) fit in 7/8 of the L2 cache, and
    the AVX2 or AVX-512 kernels run
    (the pipelining was measured with their vector lanes; with the baseline copy's
    plain loop it was 5% slower than no pipelining)."""
    cdef Py_ssize_t slab = outer * inner * itemsize * (3 if has_y else 2)
    nt = threads_for(outer * C * inner, ELEMENTWISE_GRAIN, nt)
    nt = <int>min(<Py_ssize_t>nt, C)
    stream[0] = _streams(outer * C * inner * itemsize, inner * itemsize, nt)
    piped[0] = (stream[0] and C > 1 and 2 * slab <= cyr_l2_bytes() // 8 * 7
                and cyr_isa_level() >= 1 and itemsize != 2)  # none for float16
    return nt


def backward_pipelined(cnp.ndarray x, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                       bint has_y, num_threads):
    """Whether backward on these arrays (per-channel layout) takes the pipelined kernel:
    for the tests, which must reach it."""
    cdef int stream, piped
    _backward_plan(outer, C, inner, cnp.PyArray_ITEMSIZE(x), has_y,
                   resolve_threads(num_threads), &stream, &piped)
    return bool(piped)


def backward_fold_threads(cnp.ndarray x, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                          num_threads):
    """Threads that fold the row-layout backward's group sums (_fold_groups) for these
    arrays: for the tests, which must reach the parallel fold."""
    cdef Py_ssize_t w = C * inner
    cdef Py_ssize_t gsize = _group_rows(outer, w, 2 * w, cnp.PyArray_ITEMSIZE(x))
    cdef Py_ssize_t groups = _cdiv(outer, gsize)
    return _slice_threads(groups, 2 * w,
                          _group_threads(outer, w, groups, resolve_threads(num_threads)))


def stats_blocks(cnp.ndarray x, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner):
    """(rows per group, rows per block) of the row layout's statistics for these arrays:
    for the tests, which must reach groups of several blocks (_group_colstats)."""
    cdef Py_ssize_t w = C * inner, itemsize = cnp.PyArray_ITEMSIZE(x)
    return _group_rows(outer, w, GROUP_STATS * w, itemsize), _block_rows(w, itemsize)


cdef void _backward_any(int typenum, const void *dy, const void *x, const void *y, void *dx,
                        Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, const double *mean,
                        const double *invstd, const double *w, int train, int act,
                        double alpha, double beta, const void *sc, const void *sh,
                        double *sums, int stream, int piped, int nt) noexcept nogil:
    """Per-channel layout: sums[2c:2c + 2] = (sum(g), sum(g * (x - mean))) and the input
    gradient, for data of any of the three dtypes; sc, sh: the gate's per-channel
    parameters (_gate_coefs)."""
    if typenum == cnp.NPY_FLOAT32:
        _backward_channels[float](<const float *>dy, <const float *>x, <const float *>y,
                                  <float *>dx, outer, C, inner, mean, invstd, w, train, act,
                                  <float>alpha, <float>beta, <const float *>sc,
                                  <const float *>sh, sums, stream, piped, nt)
    elif typenum == cnp.NPY_FLOAT16:
        _backward_channels_h(<const cyr_half *>dy, <const cyr_half *>x, <const cyr_half *>y,
                             <cyr_half *>dx, outer, C, inner, mean, invstd, w, train, act,
                             <float>alpha, <float>beta, <const float *>sc, <const float *>sh,
                             sums, stream, nt)
    else:
        _backward_channels[double](<const double *>dy, <const double *>x, <const double *>y,
                                   <double *>dx, outer, C, inner, mean, invstd, w, train, act,
                                   alpha, beta, <const double *>sc, <const double *>sh, sums,
                                   stream, piped, nt)


cdef void _dot_groups(const floating *dy, const floating *x, const floating *y, Py_ssize_t rows,
                      Py_ssize_t w, const double *mean_cols, int act, floating a,
                      floating b, const floating *sc, const floating *sh, double *s,
                      Py_ssize_t gstride, Py_ssize_t gsize, Py_ssize_t groups,
                      int nt, floating *keep_in) noexcept nogil:
    # s: one block of gstride >= 2 * w doubles per group, zeroed here by the task that
    # fills it; keep_in: NULL or dx (_dot_cols)
    cdef Py_ssize_t g, off
    if nt <= 1:
        for g in range(groups):
            off = g * gsize * w
            memset(s + g * gstride, 0, 2 * w * sizeof(double))
            _dot_cols(act, dy + off, x + off, (y + off) if y != NULL else NULL,
                      min(gsize, rows - g * gsize), w, mean_cols, a, b, sc, sh,
                      s + g * gstride, (keep_in + off) if keep_in != NULL else NULL)
    else:
        for g in prange(groups, schedule="dynamic", num_threads=nt):
            off = g * gsize * w
            memset(s + g * gstride, 0, 2 * w * sizeof(double))
            _dot_cols(act, dy + off, x + off, (y + off) if y != NULL else NULL,
                      min(gsize, rows - g * gsize), w, mean_cols, a, b, sc, sh,
                      s + g * gstride, (keep_in + off) if keep_in != NULL else NULL)


cdef void _fold_groups(double *s, Py_ssize_t n, Py_ssize_t gstride, Py_ssize_t groups,
                       int nt) noexcept nogil:
    """s[0:n] += each later group's block s[g * gstride:][0:n], in group order, slices
    of the n columns in parallel (each column's additions the same, in the same order)."""
    cdef Py_ssize_t t, j0, span
    cdef int mt = _slice_threads(groups, n, nt)
    if mt <= 1:
        _fold_slice(s, 0, n, gstride, groups)
        return
    span = _slice_span(n, mt)
    for t in prange(mt, schedule="static", num_threads=mt):
        j0 = t * span
        if j0 < n:
            _fold_slice(s, j0, min(n, j0 + span), gstride, groups)


cdef inline void _fold_slice(double *s, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t gstride,
                             Py_ssize_t groups) noexcept nogil:
    cdef Py_ssize_t g, j
    for g in range(1, groups):
        for j in range(j0, j1):
            s[j] += s[g * gstride + j]


cdef inline int _slice_threads(Py_ssize_t groups, Py_ssize_t w, int nt) noexcept nogil:
    """Threads for folding `groups` blocks of w columns into the first: slices of at
    least 64 columns (whole cache lines of doubles), and enough work to pay for a
    parallel region."""
    if groups <= 1:
        return 1
    return <int>min(<Py_ssize_t>threads_for((groups - 1) * w, ELEMENTWISE_GRAIN, nt),
                    max(<Py_ssize_t>1, w // 64))


cdef inline Py_ssize_t _slice_span(Py_ssize_t w, int mt) noexcept nogil:
    """Columns per slice: w over mt threads, rounded up to whole 64-byte lines."""
    return _lines(_cdiv(w, mt) * 8) // 8


cdef void _row_sums(int typenum, const void *dy, const void *x, const void *y,
                    Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, const double *mean,
                    double *mean_cols, int act, double alpha, double beta, const void *sc,
                    const void *sh, double *s, Py_ssize_t gstride, Py_ssize_t gsize,
                    Py_ssize_t groups, int nt, double *sums, void *keep_in) noexcept nogil:
    """Row layout (outer > 0): sums[2c:2c + 2] = (sum(g), sum(g * (x - mean[c]))), g = dy
    gated by act (sc, sh: the gate's per-column parameters, _gate_coefs), and g stored
    into keep_in (dx; float32 and float64 data) when it is not NULL.  Scratch: mean_cols
    (C * inner doubles, each channel's mean repeated for its inner columns) and s (the
    groups' sums, groups * gstride doubles), both filled here."""
    cdef Py_ssize_t w = C * inner, rows = outer, c, i
    cdef double t0, t1
    for c in range(C):
        for i in range(inner):
            mean_cols[c * inner + i] = mean[c]
    nt = _group_threads(rows, w, groups, nt)
    if typenum == cnp.NPY_FLOAT32:
        _dot_groups[float](<const float *>dy, <const float *>x, <const float *>y, rows, w,
                           mean_cols, act, <float>alpha, <float>beta, <const float *>sc,
                           <const float *>sh, s, gstride, gsize, groups, nt, <float *>keep_in)
    elif typenum == cnp.NPY_FLOAT16:
        _dot_groups_h(<const cyr_half *>dy, <const cyr_half *>x, <const cyr_half *>y, rows, w,
                      mean_cols, act, <float>alpha, <float>beta, <const float *>sc,
                      <const float *>sh, s, gstride, gsize, groups, nt)
    else:
        _dot_groups[double](<const double *>dy, <const double *>x, <const double *>y, rows, w,
                            mean_cols, act, alpha, beta, <const double *>sc,
                            <const double *>sh, s, gstride, gsize, groups, nt, <double *>keep_in)
    _fold_groups(s, 2 * w, gstride, groups, nt)
    for c in range(C):
        t0 = 0.0
        t1 = 0.0
        for i in range(inner):
            t0 = t0 + s[c * inner + i]
            t1 = t1 + s[w + c * inner + i]
        sums[2 * c] = t0
        sums[2 * c + 1] = t1


cdef inline int _dx_stream(const void *dy, const void *x, const void *dx, Py_ssize_t rows,
                           Py_ssize_t w, Py_ssize_t itemsize, int nt) noexcept nogil:
    """Whether the row layout's input gradient (_dx_rows) streams dx (streaming stores
    leave the inputs in the cache), which it does unless dx is one of them."""
    return dx != dy and dx != x and _row_pass_streams(rows, w, itemsize, nt)


cdef void _dx_rows(const floating *dy, const floating *x, const floating *y, floating *dx,
                   Py_ssize_t rows, Py_ssize_t w, const floating *p, Py_ssize_t ps,
                   int train, int act, floating a, floating b, const floating *sc,
                   const floating *sh, int nt) noexcept nogil:
    cdef Py_ssize_t chunk, t, r0, nchunks
    cdef int stream = _dx_stream(dy, x, dx, rows, w, sizeof(floating), nt)
    nt = _row_threads(rows, w, nt)
    nchunks = min(rows, <Py_ssize_t>nt * CHUNKS_PER_THREAD)
    chunk = _cdiv(rows, nchunks)
    if nt <= 1:
        _dx_cols(act, train, dy, x, y, dx, rows, w, p, ps, a, b, sc, sh, stream)
        return
    for t in prange(nchunks, schedule="dynamic", num_threads=nt):
        r0 = t * chunk
        if r0 < rows:
            _dx_cols(act, train, dy + r0 * w, x + r0 * w, (y + r0 * w) if y != NULL else NULL,
                     dx + r0 * w, min(rows, r0 + chunk) - r0, w, p, ps, a, b, sc, sh, stream)


cdef void _dx_any(int typenum, const void *dy, const void *x, const void *y, void *dx,
                  Py_ssize_t rows, Py_ssize_t w, const void *p, Py_ssize_t ps, int train,
                  int act, double alpha, double beta, const void *sc, const void *sh,
                  int nt) noexcept nogil:
    """Row layout: the input gradient; p holds the four arrays of per-column parameters
    of the parameters' type, ps elements apart (_dx_params), sc and sh the gate's
    (_gate_coefs), all with their repeated tails (_repeat_coefs)."""
    if typenum == cnp.NPY_FLOAT32:
        _dx_rows[float](<const float *>dy, <const float *>x, <const float *>y, <float *>dx,
                        rows, w, <const float *>p, ps, train, act, <float>alpha,
                        <float>beta, <const float *>sc, <const float *>sh, nt)
    elif typenum == cnp.NPY_FLOAT16:
        _dx_rows_h(<const cyr_half *>dy, <const cyr_half *>x, <const cyr_half *>y,
                   <cyr_half *>dx, rows, w, <const float *>p, ps, train, act, <float>alpha,
                   <float>beta, <const float *>sc, <const float *>sh, nt)
    else:
        _dx_rows[double](<const double *>dy, <const double *>x, <const double *>y,
                         <double *>dx, rows, w, <const double *>p, ps, train, act, alpha,
                         beta, <const double *>sc, <const double *>sh, nt)


# ---- the entry points: one per public operation ---------------------------------------


def forward_train(cnp.ndarray x not None, cnp.ndarray y not None, Py_ssize_t outer,
                  Py_ssize_t C, Py_ssize_t inner, cnp.ndarray weight, cnp.ndarray bias,
                  double eps, double momentum, cnp.ndarray running_mean,
                  cnp.ndarray running_var, int act, double alpha, double beta,
                  cnp.ndarray save_mean,
                  cnp.ndarray save_invstd, num_threads):
    """Training forward: y = act(w * (x - mean) * invstd + b) with the batch mean and
    biased variance (y may be x; at least 2 values per channel unless x is empty).
    The running statistics given are updated in place (_finish_train); save_mean and
    save_invstd, when given, receive the batch mean and invstd.  weight / bias None:
    1 and 0."""
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(x)
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = cnp.PyArray_DATA(y)
    cdef _Chan wa = _chan(weight, 1.0), ba = _chan(bias, 0.0)
    cdef _Chan rm = _chan(running_mean, 0.0), rv = _chan(running_var, 0.0)
    cdef _Chan sm = _chan(save_mean, 0.0), si = _chan(save_invstd, 0.0)
    cdef Py_ssize_t w = C * inner, size = outer * w
    cdef bint rows = size > 0 and inner < CHANNEL_MIN_INNER
    cdef int f32 = typenum != cnp.NPY_FLOAT64  # the parameters' type (float for float16)
    cdef Py_ssize_t gsize = 0, groups = 0, gstride = 0, group_bytes = 0, coef_bytes = 0
    cdef int tnt, stream
    if rows:
        gsize = _group_rows(outer, w, GROUP_STATS * w, itemsize)
        groups = _cdiv(outer, gsize)
        gstride = _line_pad(GROUP_STATS * w)
        group_bytes = groups * gstride * 8
        coef_bytes = _coef_bytes(w, f32)
    # per channel: mean, var, invstd; the row layout adds the groups' statistics, then,
    # in the same bytes, scale and shift per column (_row_coefs)
    cdef Py_ssize_t cb = _lines(C * 8)
    cdef void *block
    cdef char *s = _scratch(3 * cb + max(group_bytes, 2 * coef_bytes), &block)
    cdef double *mean = <double *>s
    cdef double *var = <double *>(s + cb)
    cdef double *invstd = <double *>(s + 2 * cb)
    cdef double *gs = <double *>(s + 3 * cb)
    cdef int st = rows and _rows_stream(xp, yp, outer, w, itemsize, nt)
    cdef char *scale = _row_coefs(s + 3 * cb, yp, itemsize, f32, st)
    cdef char *shift = _row_coefs(s + 3 * cb + coef_bytes, yp, itemsize, f32, st)
    with nogil:
        if rows:
            _row_stats(typenum, xp, outer, C, inner, gs, gstride, gsize, groups, nt, mean, var)
        elif size:  # statistics and output in one pass over each channel
            tnt = <int>min(<Py_ssize_t>threads_for(size, ELEMENTWISE_GRAIN, nt), C)
            stream = _streams(size * itemsize, inner * itemsize, tnt) and yp != xp
            _train_any(typenum, xp, yp, outer, C, inner, wa, ba, eps, act, alpha, beta, mean, var,
                       stream, tnt)
        _finish_train(mean, var, eps, momentum, <double>(outer * inner), C, rm, rv, invstd)
        if rows:
            _affine_coefs(_doubles(mean), invstd, wa, ba, C, inner, f32, scale, shift)
            _repeat_coefs(scale, f32, w)
            _repeat_coefs(shift, f32, w)
            _normalise_any(typenum, xp, yp, outer, C, inner, scale, shift, act, alpha, beta,
                           nt)
        _store(sm, _doubles(mean), C)
        _store(si, _doubles(invstd), C)
    free(block)


cdef int _normalise_by(cnp.ndarray x, cnp.ndarray y, Py_ssize_t outer, Py_ssize_t C,
                       Py_ssize_t inner, _Chan mean, const double *invstd, _Chan w, _Chan b,
                       int act, double alpha, double beta, int nt) except -1:
    """y = act(x * scale + shift) with scale = w * invstd and shift = b - mean * scale per
    channel (per column in the row layout); y may be x.  The normalising pass of
    forward_eval and preactivation."""
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = cnp.PyArray_DATA(y)
    # scale / shift per channel, or per column in the row layout
    cdef Py_ssize_t rep = 1 if inner >= CHANNEL_MIN_INNER else inner
    cdef int f32 = typenum != cnp.NPY_FLOAT64
    cdef Py_ssize_t coef_bytes = _coef_bytes(C * rep, f32)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(x)
    cdef void *block
    cdef char *s
    cdef char *scale
    cdef char *shift
    cdef int st
    if outer * C * inner == 0:
        return 0
    s = _scratch(2 * coef_bytes, &block)
    st = inner < CHANNEL_MIN_INNER and _rows_stream(xp, yp, outer, C * inner, itemsize, nt)
    scale = _row_coefs(s, yp, itemsize, f32, st)
    shift = _row_coefs(s + coef_bytes, yp, itemsize, f32, st)
    with nogil:
        _affine_coefs(mean, invstd, w, b, C, rep, f32, scale, shift)
        if inner < CHANNEL_MIN_INNER:  # the row layout's (_row_coefs)
            _repeat_coefs(scale, f32, C * rep)
            _repeat_coefs(shift, f32, C * rep)
        _normalise_any(typenum, xp, yp, outer, C, inner, scale, shift, act, alpha, beta, nt)
    free(block)
    return 0


def forward_eval(cnp.ndarray x not None, cnp.ndarray y not None, Py_ssize_t outer,
                 Py_ssize_t C, Py_ssize_t inner, cnp.ndarray weight, cnp.ndarray bias,
                 double eps, cnp.ndarray running_mean not None,
                 cnp.ndarray running_var not None, int act, double alpha, double beta,
                 cnp.ndarray save_mean, cnp.ndarray save_invstd, num_threads):
    """Inference forward: y = act(w * (x - running_mean) * invstd + b), invstd =
    1 / sqrt(running_var + eps) (y may be x); save_mean and save_invstd, when given,
    receive running_mean and invstd.  weight / bias None: 1 and 0."""
    cdef int nt = resolve_threads(num_threads)
    cdef _Chan rm = _chan(running_mean, 0.0), rv = _chan(running_var, 0.0)
    cdef _Chan sm = _chan(save_mean, 0.0), si = _chan(save_invstd, 0.0)
    cdef Py_ssize_t c
    cdef void *block
    cdef double *invstd = <double *>_scratch(_lines(C * 8), &block)
    try:
        for c in range(C):
            invstd[c] = 1.0 / sqrt(_at(rv, c) + eps)
        _normalise_by(x, y, outer, C, inner, rm, invstd, _chan(weight, 1.0), _chan(bias, 0.0),
                      act, alpha, beta, nt)
        _store(sm, rm, C)
        _store(si, _doubles(invstd), C)
    finally:
        free(block)


def preactivation(cnp.ndarray x not None, cnp.ndarray z not None, Py_ssize_t outer,
                  Py_ssize_t C, Py_ssize_t inner, cnp.ndarray save_mean not None,
                  cnp.ndarray save_invstd not None, cnp.ndarray weight, cnp.ndarray bias,
                  num_threads):
    """The forward's value before its activation, z = w * (x - save_mean) * save_invstd
    + b, as the forward computes it (z may be x): where batch_norm_backward takes an
    unfused activation's derivative.  weight / bias None: 1 and 0."""
    cdef void *block
    cdef double *invstd = <double *>_scratch(_lines(C * 8), &block)
    try:
        _load(_chan(save_invstd, 0.0), C, invstd)
        _normalise_by(x, z, outer, C, inner, _chan(save_mean, 0.0), invstd,
                      _chan(weight, 1.0), _chan(bias, 0.0), CYR_ACT_NONE, 0.0, 0.0,
                      resolve_threads(num_threads))
    finally:
        free(block)


def backward(cnp.ndarray dy not None, cnp.ndarray x not None, cnp.ndarray y,
             cnp.ndarray dx not None, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
             cnp.ndarray save_mean not None, cnp.ndarray save_invstd not None,
             cnp.ndarray weight, cnp.ndarray bias, bint from_z, bint train, int act,
             double alpha, double beta, cnp.ndarray grad_weight not None,
             cnp.ndarray grad_bias not None, num_threads):
    """The gradients of the forward: the input gradient into dx, grad_weight =
    sum(g * (x - mean)) * invstd and grad_bias = sum(g) per channel, g = dy times the
    activation's derivative (act; alpha and beta its parameters), read at y (the
    forward's output) or, from_z, at the pre-activation recomputed from x, the
    statistics, weight and bias (y unused).  train: the full gradient through the batch
    statistics, else dx = g * w * invstd.  weight / bias None: 1 and 0."""
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(x)
    cdef const void *dyp = cnp.PyArray_DATA(dy)
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef const void *yp = xp if from_z else (NULL if y is None else cnp.PyArray_DATA(y))
    cdef void *dxp = cnp.PyArray_DATA(dx)
    cdef _Chan ma = _chan(save_mean, 0.0), ia = _chan(save_invstd, 0.0)
    cdef _Chan wa = _chan(weight, 1.0), ba = _chan(bias, 0.0)
    cdef _Chan gw = _chan(grad_weight, 0.0), gb = _chan(grad_bias, 0.0)
    cdef Py_ssize_t w = C * inner, size = outer * w, c
    cdef bint rows = size > 0 and inner < CHANNEL_MIN_INNER
    cdef int f32 = typenum != cnp.NPY_FLOAT64  # the parameters' type (float for float16)
    # the gate kept in dx between the passes (float32/float64): the row layout's passes
    # are told here (cyr_bn_keeps_gate_rows); the per-channel kernels decide it themselves
    # (the tiled activations)
    cdef bint keep = (typenum != cnp.NPY_FLOAT16 and act != CYR_ACT_NONE
                      and (cyr_bn_keeps_gate(act)
                           or (rows and cyr_bn_keeps_gate_rows(act, from_z, w * itemsize))))
    cdef Py_ssize_t gsize = 0, groups = 0, gstride = 0, group_bytes = 0, cols_bytes = 0
    cdef Py_ssize_t params_bytes = 0
    cdef int bnt, stream, piped
    if rows:
        gsize = _group_rows(outer, w, 2 * w, itemsize)
        groups = _cdiv(outer, gsize)
        gstride = _line_pad(2 * w)
        group_bytes = groups * gstride * 8
        cols_bytes = _lines(w * 8)
        params_bytes = 4 * _coef_bytes(w, f32)
    # per channel: mean, invstd, w and the two sums, then the gate's sc and sh (per
    # column in the row layout); the row layout adds each column's mean and the groups'
    # sums, then, in the same bytes, the (4, W) parameters of the input gradient
    cdef Py_ssize_t cb = _lines(C * 8)
    cdef Py_ssize_t rep = inner if rows else 1
    cdef Py_ssize_t gb_ = _coef_bytes(C * rep, f32)
    # the row layout's per-column arrays with their repeated tails, at dx's offset in a
    # line where it streams (_row_coefs); the four of dx ps elements apart
    cdef int st = rows and not keep and _dx_stream(dyp, xp, dxp, outer, w, itemsize, nt)
    cdef Py_ssize_t ps = _coef_bytes(w, f32) // (4 if f32 else 8)
    cdef void *block
    cdef char *s = _scratch(5 * cb + 2 * gb_ + max(cols_bytes + group_bytes, params_bytes),
                            &block)
    cdef double *mean = <double *>s
    cdef double *invstd = <double *>(s + cb)
    cdef double *wv = <double *>(s + 2 * cb)
    cdef double *sums = <double *>(s + 3 * cb)  # (C, 2): 2 * cb bytes
    cdef void *gsc = _row_coefs(s + 5 * cb, dxp, itemsize, f32, st)
    cdef void *gsh = _row_coefs(s + 5 * cb + gb_, dxp, itemsize, f32, st)
    cdef double *mean_cols = <double *>(s + 5 * cb + 2 * gb_)
    cdef double *gs = <double *>(s + 5 * cb + 2 * gb_ + cols_bytes)
    cdef char *params = _row_coefs(s + 5 * cb + 2 * gb_, dxp, itemsize, f32, st)
    with nogil:
        _load(ma, C, mean)
        _load(ia, C, invstd)
        _load(wa, C, wv)
        memset(sums, 0, 2 * C * sizeof(double))
        _gate_coefs(from_z, _doubles(mean), invstd, wa, ba, C, rep, f32, gsc, gsh)
        if rows:
            _repeat_coefs(gsc, f32, w)
            _repeat_coefs(gsh, f32, w)
            _row_sums(typenum, dyp, xp, yp, outer, C, inner, mean, mean_cols, act, alpha, beta,
                      gsc, gsh, gs, gstride, gsize, groups, nt, sums, dxp if keep else NULL)
            _dx_params(sums, <double>(outer * inner), mean, invstd, wv, train, C, inner, f32,
                       params, ps)
            if keep:  # from the gate in dx, in place (the kernels' dy == dx, no activation)
                _dx_any(typenum, dxp, xp, NULL, dxp, outer, w, params, ps, train,
                        CYR_ACT_NONE, 0.0, 0.0, gsc, gsh, nt)
            else:
                _dx_any(typenum, dyp, xp, yp, dxp, outer, w, params, ps, train, act, alpha,
                        beta, gsc, gsh, nt)
        elif size:
            # a third array in cache per channel: y, or dx holding the kept gate
            bnt = _backward_plan(outer, C, inner, itemsize, (yp != NULL and yp != xp) or keep,
                                 nt, &stream, &piped)
            _backward_any(typenum, dyp, xp, yp, dxp, outer, C, inner, mean, invstd, wv, train,
                          act, alpha, beta, gsc, gsh, sums, stream, piped, bnt)
        for c in range(C):
            _put(gw, c, sums[2 * c + 1] * invstd[c])
            _put(gb, c, sums[2 * c])
    free(block)


# ---- fast entry for the common backward call ------------------------------------------
# batch_norm_backward's arguments checked at C speed for the common case: exact, aligned,
# C-contiguous float16/32/64 ndarrays for grad_output and x (and output, with a fused
# activation), per-channel arrays as the general path takes them, no overlap with `out`,
# plain Python scalars.  Anything else returns None, and the general path (which also
# raises every error) takes the call: a small call then costs little more than its kernel.

# every activation of the table: name -> (code, the kernels' (a, b) by default, whether
# it has parameters other than BatchNorm's alpha: hardtanh's bounds, softplus's, gelu's)
_BN_CODES = {name: (_table.CODES[name], _table.scalars(name),
                    _table.TABLE[name].params[:1] != ()
                    and _table.TABLE[name].params[0][0] != "alpha")
             for name in _table.TABLE}
# those whose derivative the kernels read from the output: in their loops, and through
# the result gate (elu with alpha > 0, celu, selu; _bn_activation.result_gate)
_BN_BACKWARD_CODES = {name: _BN_CODES[name] for name in _table.BN_BACKWARD}


cdef inline bint _fast_channel(object a, Py_ssize_t C) noexcept:
    """A per-channel array the kernels read as given: an exact, aligned, native ndarray,
    float32 or float64, 1-D of length C (any stride)."""
    cdef cnp.ndarray arr
    cdef int t
    if type(a) is not cnp.ndarray:
        return False
    arr = <cnp.ndarray>a
    t = cnp.PyArray_TYPE(arr)
    return ((t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64) and cnp.PyArray_NDIM(arr) == 1
            and cnp.PyArray_DIM(arr, 0) == C and cnp.PyArray_ISALIGNED(arr)
            and cnp.PyArray_ISNOTSWAPPED(arr))


def backward_fast(grad_output, x, save_mean, save_invstd, weight, training, axis,
                  activation, alpha, output, bias, out, num_threads):
    """batch_norm_backward's common case: ``(grad_input, grad_weight, grad_bias)``, or
    None for the general path.  With an activation: ``output`` alone, where the kernels
    read the derivative there (its own rule, or the result gate of elu, celu and selu),
    or ``bias`` alone (the pre-activation recomputed: every activation, the tiled ones
    for float32/float64 data), as the general path would take them."""
    cdef cnp.ndarray xa, ga, ya = None, oa
    cdef int nd, ax, act = 0, typenum
    cdef Py_ssize_t C, outer = 1, inner = 1, d
    cdef double a = 0.0, b = 0.0
    cdef bint own_params = False, from_z = False, at_y = False
    if not plain_array(x, -1, True) or not plain_array(grad_output, -1, True):
        return None
    xa, ga = <cnp.ndarray>x, <cnp.ndarray>grad_output
    typenum = cnp.PyArray_TYPE(xa)
    nd = cnp.PyArray_NDIM(xa)
    if cnp.PyArray_TYPE(ga) != typenum or nd < 2 or not same_shape(xa, ga):
        return None
    if type(axis) is not int or type(training) is not bool or not -nd <= axis < nd:
        return None
    ax = axis + nd if axis < 0 else axis
    C = cnp.PyArray_DIM(xa, ax)
    for d in range(nd):
        if d < ax:
            outer *= cnp.PyArray_DIM(xa, d)
        elif d > ax:
            inner *= cnp.PyArray_DIM(xa, d)
    if not _fast_channel(save_mean, C) or not _fast_channel(save_invstd, C):
        return None
    if weight is not None and not _fast_channel(weight, C):
        return None
    if activation is None:
        if bias is not None:
            return None
    else:
        if type(activation) is not str or activation not in _BN_CODES:
            return None
        act, (a, b), own_params = _BN_CODES[activation]
        if bias is not None:  # the derivative at the pre-activation
            if (output is not None or not _fast_channel(bias, C)
                    or (typenum == cnp.NPY_FLOAT16 and activation not in _BN_BACKWARD_CODES)):
                return None  # both (the general path chooses), or float16 composed
            from_z = True
        else:
            if activation in _bn_activation._RESULT_GRAD:
                at_y = True
            elif activation not in _BN_BACKWARD_CODES:
                return None  # the general path raises: it needs bias=
            if not plain_array(output, typenum, True) or not same_shape(xa, <cnp.ndarray>output):
                return None
            ya = <cnp.ndarray>output
    if alpha is None:
        pass  # the activation's default (0.0 for no activation)
    elif own_params:
        return None  # BatchNorm's alpha is not this activation's: the general path
    elif type(alpha) is float:
        a = alpha
        if not a - a == 0.0:
            return None  # not finite: the general path raises
        if act != 0 and activation == "celu" and a == 0.0:
            return None
        if act != 0 and not from_z and not at_y and not _table.grad_from_output(activation, a):
            return None  # leaky_relu's alpha <= 0 from the output: the general path raises
        if at_y and activation == "elu" and not a > 0.0:
            return None
    else:
        return None
    if at_y:  # the result gate's factor and shift (as _bn_activation.result_gate_params)
        _, a, b = _bn_activation._result_grad(activation, a)
        act |= CYR_BN_GATE_AT_OUTPUT
    if out is None:
        oa = <cnp.ndarray>cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(xa), typenum, 0)
    else:
        if not plain_array(out, typenum, True) or not same_shape(xa, <cnp.ndarray>out):
            return None
        oa = <cnp.ndarray>out
        if (not cnp.PyArray_ISWRITEABLE(oa) or not disjoint(oa, xa) or not disjoint(oa, ga)
                or (ya is not None and not disjoint(oa, ya))):
            return None
    pdtype = (weight.dtype if weight is not None
              else (np.float64 if typenum == cnp.NPY_FLOAT64 else np.float32))
    grad_weight = np.empty(C, dtype=pdtype)
    grad_bias = np.empty(C, dtype=pdtype)
    backward(ga, xa, ya, oa, outer, C, inner, save_mean, save_invstd, weight,
             bias if from_z else None, from_z, training, act, a, b, grad_weight, grad_bias,
             num_threads)
    return oa, grad_weight, grad_bias


# ---- pieces of an operation for data split across arrays: the Dask backend ----------
# The Dask backend (cyrelu/dask/batchnorm.py) runs forward_train's and backward's steps
# chunk by chunk, merging the per-channel numbers between them: each chunk's moments
# (channel_moments), the running-statistic update and invstd from the merged ones
# (finish_stats), each chunk's gradient sums (partial_sums), then each chunk's input
# gradient from the summed ones (partial_dx).  Built from the helpers above, with the
# same scratch, loop shapes and thread counts as the whole operations.

cdef extern from "cyrelu/batchnorm.h" nogil:
    void cyr_bn_channel_stats_f32(const float *x, Py_ssize_t outer, Py_ssize_t C,
                                  Py_ssize_t inner, Py_ssize_t c, double *mean, double *m2)
    void cyr_bn_channel_stats_f64(const double *x, Py_ssize_t outer, Py_ssize_t C,
                                  Py_ssize_t inner, Py_ssize_t c, double *mean, double *m2)
    void cyr_bn_channel_stats_f16(const cyr_half *x, Py_ssize_t outer, Py_ssize_t C,
                                  Py_ssize_t inner, Py_ssize_t c, double *mean, double *m2)
    void cyr_bn_channel_dx_f32(const float *dy, const float *x, const float *y, float *dx,
                               Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c,
                               double mean, double invstd, double w, const double *sums,
                               double n, int train, int act, float a, float b,
                               const float *sc, const float *sh, int stream)
    void cyr_bn_channel_dx_f64(const double *dy, const double *x, const double *y,
                               double *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                               Py_ssize_t c, double mean, double invstd, double w,
                               const double *sums, double n, int train, int act, double a,
                               double b, const double *sc, const double *sh, int stream)
    void cyr_bn_channel_dx_f16(const cyr_half *dy, const cyr_half *x, const cyr_half *y,
                               cyr_half *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                               Py_ssize_t c, double mean, double invstd, double w,
                               const double *sums, double n, int train, int act, float a,
                               float b, const float *sc, const float *sh, int stream)


cdef inline void _channel_stats(int typenum, const void *x, Py_ssize_t outer, Py_ssize_t C,
                                Py_ssize_t inner, Py_ssize_t c, double *mean,
                                double *m2) noexcept nogil:
    if typenum == cnp.NPY_FLOAT32:
        cyr_bn_channel_stats_f32(<const float *>x, outer, C, inner, c, mean, m2)
    elif typenum == cnp.NPY_FLOAT16:
        cyr_bn_channel_stats_f16(<const cyr_half *>x, outer, C, inner, c, mean, m2)
    else:
        cyr_bn_channel_stats_f64(<const double *>x, outer, C, inner, c, mean, m2)


cdef inline void _channel_dx(int typenum, const void *dy, const void *x, const void *y,
                             void *dx, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                             Py_ssize_t c, double mean, double invstd, double w,
                             const double *sums, double n, int train, int act, double a,
                             double b, const void *sc, const void *sh,
                             int stream) noexcept nogil:
    # sc, sh: the gate's parameters of channel c, in the parameters' type
    if typenum == cnp.NPY_FLOAT32:
        cyr_bn_channel_dx_f32(<const float *>dy, <const float *>x, <const float *>y,
                              <float *>dx, outer, C, inner, c, mean, invstd, w, sums, n, train,
                              act, <float>a, <float>b, <const float *>sc, <const float *>sh,
                              stream)
    elif typenum == cnp.NPY_FLOAT16:
        cyr_bn_channel_dx_f16(<const cyr_half *>dy, <const cyr_half *>x, <const cyr_half *>y,
                              <cyr_half *>dx, outer, C, inner, c, mean, invstd, w, sums, n,
                              train, act, <float>a, <float>b, <const float *>sc,
                              <const float *>sh, stream)
    else:
        cyr_bn_channel_dx_f64(<const double *>dy, <const double *>x, <const double *>y,
                              <double *>dx, outer, C, inner, c, mean, invstd, w, sums, n,
                              train, act, a, b, <const double *>sc, <const double *>sh,
                              stream)


def channel_moments(cnp.ndarray x not None, Py_ssize_t outer, Py_ssize_t C,
                    Py_ssize_t inner, num_threads):
    """(count, mean, M2) of each channel of (outer, C, inner) data, as a float64 array of
    shape (3, C): the number of values, their mean and the sum of their squared
    deviations from it, which Chan's formula merges across arrays.  One pass over
    memory, as forward_train's statistics: per channel (bn_channel_stats), or by rows
    (_row_stats, M2 = the biased variance times the count)."""
    cdef cnp.npy_intp dims[2]
    dims[0] = 3
    dims[1] = C
    cdef cnp.ndarray res = cnp.PyArray_ZEROS(2, dims, cnp.NPY_FLOAT64, 0)
    cdef double *r = <double *>cnp.PyArray_DATA(res)
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(x)
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef Py_ssize_t w = C * inner, size = outer * w, c
    cdef double n = <double>(outer * inner)
    cdef Py_ssize_t gsize, groups, gstride
    cdef void *block
    cdef char *s
    if size == 0:
        return res
    if inner < CHANNEL_MIN_INNER:  # forward_train's row-layout scratch
        gsize = _group_rows(outer, w, GROUP_STATS * w, itemsize)
        groups = _cdiv(outer, gsize)
        gstride = _line_pad(GROUP_STATS * w)
        s = _scratch(groups * gstride * 8, &block)
        with nogil:
            _row_stats(typenum, xp, outer, C, inner, <double *>s, gstride, gsize, groups, nt,
                       r + C, r + 2 * C)
            for c in range(C):
                r[c] = n
                r[2 * C + c] = r[2 * C + c] * n
        free(block)
        return res
    nt = <int>min(<Py_ssize_t>threads_for(size, ELEMENTWISE_GRAIN, nt), C)
    with nogil:
        for c in range(C):
            r[c] = n
        if nt <= 1:
            for c in range(C):
                _channel_stats(typenum, xp, outer, C, inner, c, &r[C + c], &r[2 * C + c])
        else:
            for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, nt),
                            num_threads=nt):
                _channel_stats(typenum, xp, outer, C, inner, c, &r[C + c], &r[2 * C + c])
    return res


def finish_stats(cnp.ndarray mean not None, cnp.ndarray var not None, double eps,
                 double momentum, double n, cnp.ndarray running_mean,
                 cnp.ndarray running_var, cnp.ndarray invstd not None):
    """forward_train's step after the statistics (_finish_train): invstd = 1 / sqrt(var +
    eps) from the batch mean and biased variance over n values per channel (contiguous
    float64 arrays of length C), and the running statistics given updated in place."""
    cdef Py_ssize_t C = cnp.PyArray_DIM(mean, 0)
    cdef _Chan rm = _chan(running_mean, 0.0), rv = _chan(running_var, 0.0)
    cdef const double *mp = <const double *>cnp.PyArray_DATA(mean)
    cdef const double *vp = <const double *>cnp.PyArray_DATA(var)
    cdef double *ip = <double *>cnp.PyArray_DATA(invstd)
    with nogil:
        _finish_train(mp, vp, eps, momentum, n, C, rm, rv, ip)


def partial_sums(cnp.ndarray dy not None, cnp.ndarray x not None, cnp.ndarray y,
                 Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, cnp.ndarray mean not None,
                 int act, double alpha, double beta, cnp.ndarray sums not None, num_threads,
                 cnp.ndarray invstd=None, cnp.ndarray weight=None, cnp.ndarray bias=None):
    """backward's first pass over (outer, C, inner) data that is part of a larger batch:
    sums[c] = (sum(g), sum(g * (x - mean[c]))), g = dy gated by act, into the contiguous
    float64 (C, 2) array sums; mean: the whole batch's.  The gate reads the forward's
    output y, or, with bias (y None), the pre-activation recomputed from x, the batch's
    mean and invstd, weight (None: 1) and bias, as backward's from_z."""
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(x)
    cdef const void *dyp = cnp.PyArray_DATA(dy)
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef bint from_z = bias is not None
    cdef const void *yp = xp if from_z else (NULL if y is None else cnp.PyArray_DATA(y))
    cdef double *sp = <double *>cnp.PyArray_DATA(sums)
    cdef _Chan ma = _chan(mean, 0.0), ia = _chan(invstd, 0.0)
    cdef _Chan wa = _chan(weight, 1.0), ba = _chan(bias, 0.0)
    cdef Py_ssize_t w = C * inner, size = outer * w
    cdef bint rows = inner < CHANNEL_MIN_INNER
    cdef Py_ssize_t gsize = 0, groups = 0, gstride = 0, group_bytes = 0, cols_bytes = 0
    cdef int bnt, stream, piped
    if size == 0:
        memset(sp, 0, 2 * C * sizeof(double))
        return
    if rows:  # backward's row-layout scratch
        gsize = _group_rows(outer, w, 2 * w, itemsize)
        groups = _cdiv(outer, gsize)
        gstride = _line_pad(2 * w)
        group_bytes = groups * gstride * 8
        cols_bytes = _lines(w * 8)
    # per channel: mean, then the gate's sc and sh (1 and 0: the derivative read at y;
    # per column in the row layout); the row layout adds each column's mean and the
    # groups' sums
    cdef Py_ssize_t cb = _lines(C * 8)
    cdef int f32 = typenum != cnp.NPY_FLOAT64
    cdef Py_ssize_t rep = inner if rows else 1
    cdef Py_ssize_t gb_ = _lines(C * rep * (4 if f32 else 8))
    cdef void *block
    cdef char *s = _scratch(2 * cb + 2 * gb_ + cols_bytes + group_bytes, &block)
    cdef double *mv = <double *>s
    cdef double *iv = <double *>(s + cb)  # from_z only
    cdef void *gsc = s + 2 * cb
    cdef void *gsh = s + 2 * cb + gb_
    cdef double *mean_cols = <double *>(s + 2 * cb + 2 * gb_)
    cdef double *gs = <double *>(s + 2 * cb + 2 * gb_ + cols_bytes)
    if from_z and invstd is None:
        raise ValueError("partial_sums: bias needs invstd")
    if act != 0 and yp == NULL:
        raise ValueError("partial_sums: an activation needs y or bias")
    with nogil:
        _load(ma, C, mv)
        if from_z:
            _load(ia, C, iv)
        memset(sp, 0, 2 * C * sizeof(double))
        _gate_coefs(from_z, _doubles(mv), iv, wa, ba, C, rep, f32, gsc, gsh)
        if rows:
            _row_sums(typenum, dyp, xp, yp, outer, C, inner, mv, mean_cols, act, alpha, beta,
                      gsc, gsh, gs, gstride, gsize, groups, nt, sp, NULL)
        else:  # the per-channel kernel without dx: its first pass only (invstd, w unused)
            bnt = _backward_plan(outer, C, inner, itemsize, yp != NULL, nt, &stream, &piped)
            _backward_any(typenum, dyp, xp, yp, NULL, outer, C, inner, mv, mv, mv, 1, act,
                          alpha, beta, gsc, gsh, sp, 0, 0, bnt)
    free(block)


def partial_dx(cnp.ndarray dy not None, cnp.ndarray x not None, cnp.ndarray y,
               cnp.ndarray dx not None, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
               cnp.ndarray mean not None, cnp.ndarray invstd not None, cnp.ndarray weight,
               cnp.ndarray sums not None, double n, bint train, int act, double alpha,
               double beta, num_threads, cnp.ndarray bias=None):
    """backward's input gradient for (outer, C, inner) data that is part of a larger
    batch, from that batch's sums (partial_sums, summed: a contiguous float64 (C, 2)
    array) over n values per channel; mean and invstd: the batch's (save_mean,
    save_invstd).  weight None: 1.  The gate reads y, or with bias (y None) the
    pre-activation recomputed from x, as partial_sums'."""
    cdef int nt = resolve_threads(num_threads)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(x)
    cdef const void *dyp = cnp.PyArray_DATA(dy)
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef bint from_z = bias is not None
    cdef const void *yp = xp if from_z else (NULL if y is None else cnp.PyArray_DATA(y))
    cdef void *dxp = cnp.PyArray_DATA(dx)
    cdef const double *sp = <const double *>cnp.PyArray_DATA(sums)
    cdef _Chan ma = _chan(mean, 0.0), ia = _chan(invstd, 0.0), wa = _chan(weight, 1.0)
    cdef _Chan ba = _chan(bias, 0.0)
    cdef Py_ssize_t w = C * inner, size = outer * w, c
    cdef bint rows = inner < CHANNEL_MIN_INNER
    cdef int f32 = typenum != cnp.NPY_FLOAT64  # the parameters' type (float for float16)
    cdef Py_ssize_t params_bytes = 4 * _coef_bytes(w, f32) if rows else 0
    cdef Py_ssize_t ps = _coef_bytes(w, f32) // (4 if f32 else 8)
    cdef int cnt, stream
    cdef int st = rows and size > 0 and _dx_stream(dyp, xp, dxp, outer, w, itemsize, nt)
    if act != 0 and yp == NULL:
        raise ValueError("partial_dx: an activation needs y or bias")
    if size == 0:
        return
    # per channel: mean, invstd, w, then the gate's sc and sh (1 and 0: the derivative
    # read at y; per column in the row layout); the row layout adds the (4, W)
    # parameters of dx
    cdef Py_ssize_t cb = _lines(C * 8)
    cdef Py_ssize_t rep = inner if rows else 1
    cdef Py_ssize_t gb_ = _coef_bytes(C * rep, f32)
    cdef void *block
    cdef char *s = _scratch(3 * cb + 2 * gb_ + params_bytes, &block)
    cdef double *mv = <double *>s
    cdef double *iv = <double *>(s + cb)
    cdef double *wv = <double *>(s + 2 * cb)
    cdef char *gsc = _row_coefs(s + 3 * cb, dxp, itemsize, f32, st)
    cdef char *gsh = _row_coefs(s + 3 * cb + gb_, dxp, itemsize, f32, st)
    cdef char *params = _row_coefs(s + 3 * cb + 2 * gb_, dxp, itemsize, f32, st)
    with nogil:
        _load(ma, C, mv)
        _load(ia, C, iv)
        _load(wa, C, wv)
        _gate_coefs(from_z, _doubles(mv), iv, wa, ba, C, rep, f32, gsc, gsh)
        if rows:
            _repeat_coefs(gsc, f32, w)
            _repeat_coefs(gsh, f32, w)
            _dx_params(sp, n, mv, iv, wv, train, C, inner, f32, params, ps)
            _dx_any(typenum, dyp, xp, yp, dxp, outer, w, params, ps, train, act, alpha, beta,
                    gsc, gsh, nt)
        else:
            cnt = <int>min(<Py_ssize_t>threads_for(size, ELEMENTWISE_GRAIN, nt), C)
            stream = _streams(size * itemsize, inner * itemsize, cnt)
            if cnt <= 1:
                for c in range(C):
                    _channel_dx(typenum, dyp, xp, yp, dxp, outer, C, inner, c, mv[c], iv[c],
                                wv[c], sp + 2 * c, n, train, act, alpha, beta,
                                gsc + c * (4 if f32 else 8), gsh + c * (4 if f32 else 8),
                                stream)
            else:
                for c in prange(C, schedule="dynamic", chunksize=_channel_chunk(C, cnt),
                                num_threads=cnt):
                    _channel_dx(typenum, dyp, xp, yp, dxp, outer, C, inner, c, mv[c], iv[c],
                                wv[c], sp + 2 * c, n, train, act, alpha, beta,
                                gsc + c * (4 if f32 else 8), gsh + c * (4 if f32 else 8),
                                stream)
    free(block)
