/* Type-generic bodies of the BatchNorm kernels; include only from batchnorm.h,
 * with CYR_T (the element type) and CYR_SUFFIX (f32 / f64) defined.
 *
 * `act` arguments are CYR_BN_ACT_*; the *_impl functions take it as a parameter
 * and are only called with a literal from a switch, so after inlining every loop
 * is specialised for one activation (no branch inside the loop).
 * Reductions return double and use CYR_BN_LANES independent accumulators: the
 * order of additions is fixed by the code, not by the compiler or thread count.
 */

/* ---- the math of one element ------------------------------------------------ */
CYR_INLINE CYR_T CYR_NAME(bn_act)(int act, CYR_T v, CYR_T a) {
    if (act == CYR_BN_ACT_RELU) return CYR_NAME(relu_elem)(v, a);
    if (act == CYR_BN_ACT_LEAKY) return CYR_NAME(leaky_relu_elem)(v, a);
    return v;
}

/* dy gated by the fused activation, looked up on the forward's output y. */
CYR_INLINE CYR_T CYR_NAME(bn_gate)(int act, CYR_T g, const CYR_T *y, Py_ssize_t i, CYR_T a) {
    if (act == CYR_BN_ACT_RELU) return CYR_NAME(relu_backward_elem)(g, y[i], a);
    if (act == CYR_BN_ACT_LEAKY) return CYR_NAME(leaky_relu_backward_elem)(g, y[i], a);
    return g;
}

/* ---- reductions over one contiguous run ---------------------------------------- */

/* sum(x[0:n]) in double. */
CYR_INLINE double CYR_NAME(bn_sum)(const CYR_T *CYR_RESTRICT x, Py_ssize_t n) {
    double acc[CYR_BN_LANES] = {0};
    double tail = 0.0;
    Py_ssize_t i = 0;
    for (; i + CYR_BN_LANES <= n; i += CYR_BN_LANES)
        for (int k = 0; k < CYR_BN_LANES; ++k) acc[k] += (double)x[i + k];
    for (; i < n; ++i) tail += (double)x[i];
    return cyr_bn_lanes_total(acc) + tail;
}

/* sum((x[0:n] - mean)**2) in double. */
CYR_INLINE double CYR_NAME(bn_sqdev)(const CYR_T *CYR_RESTRICT x, Py_ssize_t n, double mean) {
    double acc[CYR_BN_LANES] = {0};
    double tail = 0.0;
    Py_ssize_t i = 0;
    for (; i + CYR_BN_LANES <= n; i += CYR_BN_LANES)
        for (int k = 0; k < CYR_BN_LANES; ++k) {
            const double d = (double)x[i + k] - mean;
            acc[k] += d * d;
        }
    for (; i < n; ++i) {
        const double d = (double)x[i] - mean;
        tail += d * d;
    }
    return cyr_bn_lanes_total(acc) + tail;
}

/* s[0] += sum(g), s[1] += sum(g * (x - mean)) with g = dy gated by the activation. */
CYR_INLINE void CYR_NAME(bn_dot_impl)(int act, const CYR_T *CYR_RESTRICT dy,
                                      const CYR_T *CYR_RESTRICT x, const CYR_T *CYR_RESTRICT y,
                                      Py_ssize_t n, double mean, CYR_T a, double *s) {
    double s0[CYR_BN_LANES] = {0}, s1[CYR_BN_LANES] = {0};
    double t0 = 0.0, t1 = 0.0;
    Py_ssize_t i = 0;
    for (; i + CYR_BN_LANES <= n; i += CYR_BN_LANES)
        for (int k = 0; k < CYR_BN_LANES; ++k) {
            const double g = (double)CYR_NAME(bn_gate)(act, dy[i + k], y, i + k, a);
            s0[k] += g;
            s1[k] += g * ((double)x[i + k] - mean);
        }
    for (; i < n; ++i) {
        const double g = (double)CYR_NAME(bn_gate)(act, dy[i], y, i, a);
        t0 += g;
        t1 += g * ((double)x[i] - mean);
    }
    s[0] += cyr_bn_lanes_total(s0) + t0;
    s[1] += cyr_bn_lanes_total(s1) + t1;
}

/* ---- elementwise passes over one contiguous run, one (scale, shift) ---------------- */

CYR_INLINE void CYR_NAME(bn_affine_impl)(int act, const CYR_T *CYR_RESTRICT x,
                                         CYR_T *CYR_RESTRICT y, Py_ssize_t n, CYR_T scale,
                                         CYR_T shift, CYR_T a) {
    for (Py_ssize_t i = 0; i < n; ++i) y[i] = CYR_NAME(bn_act)(act, x[i] * scale + shift, a);
}

CYR_INLINE void CYR_NAME(bn_affine_inplace_impl)(int act, CYR_T *CYR_RESTRICT x, Py_ssize_t n,
                                                 CYR_T scale, CYR_T shift, CYR_T a) {
    for (Py_ssize_t i = 0; i < n; ++i) x[i] = CYR_NAME(bn_act)(act, x[i] * scale + shift, a);
}

/* y = act(x * scale + shift); y may be exactly x. */
CYR_INLINE void CYR_NAME(bn_affine)(int act, const CYR_T *x, CYR_T *y, Py_ssize_t n,
                                    CYR_T scale, CYR_T shift, CYR_T a) {
    if ((const CYR_T *)y == x) {
        switch (act) {
        case CYR_BN_ACT_RELU: CYR_NAME(bn_affine_inplace_impl)(CYR_BN_ACT_RELU, y, n, scale, shift, a); break;
        case CYR_BN_ACT_LEAKY: CYR_NAME(bn_affine_inplace_impl)(CYR_BN_ACT_LEAKY, y, n, scale, shift, a); break;
        default: CYR_NAME(bn_affine_inplace_impl)(CYR_BN_ACT_NONE, y, n, scale, shift, a); break;
        }
    } else {
        switch (act) {
        case CYR_BN_ACT_RELU: CYR_NAME(bn_affine_impl)(CYR_BN_ACT_RELU, x, y, n, scale, shift, a); break;
        case CYR_BN_ACT_LEAKY: CYR_NAME(bn_affine_impl)(CYR_BN_ACT_LEAKY, x, y, n, scale, shift, a); break;
        default: CYR_NAME(bn_affine_impl)(CYR_BN_ACT_NONE, x, y, n, scale, shift, a); break;
        }
    }
}

/* ---- elementwise passes over one row of W columns, per-column parameters ----------- */

CYR_INLINE void CYR_NAME(bn_affine_cols_impl)(int act, const CYR_T *CYR_RESTRICT x,
                                              CYR_T *CYR_RESTRICT y, Py_ssize_t w,
                                              const CYR_T *CYR_RESTRICT scale,
                                              const CYR_T *CYR_RESTRICT shift, CYR_T a) {
    for (Py_ssize_t j = 0; j < w; ++j) y[j] = CYR_NAME(bn_act)(act, x[j] * scale[j] + shift[j], a);
}

CYR_INLINE void CYR_NAME(bn_affine_cols_inplace_impl)(int act, CYR_T *CYR_RESTRICT x, Py_ssize_t w,
                                                      const CYR_T *CYR_RESTRICT scale,
                                                      const CYR_T *CYR_RESTRICT shift, CYR_T a) {
    for (Py_ssize_t j = 0; j < w; ++j) x[j] = CYR_NAME(bn_act)(act, x[j] * scale[j] + shift[j], a);
}

/* rows x W: y = act(x * scale[col] + shift[col]); y may be exactly x. */
CYR_BN_KERNEL void CYR_NAME(bn_affine_rows)(int act, const CYR_T *x, CYR_T *y, Py_ssize_t rows,
                                         Py_ssize_t w, const CYR_T *scale, const CYR_T *shift,
                                         CYR_T a) {
    for (Py_ssize_t r = 0; r < rows; ++r) {
        const CYR_T *xr = x + r * w;
        CYR_T *yr = y + r * w;
        if ((const CYR_T *)yr == xr) {
            switch (act) {
            case CYR_BN_ACT_RELU: CYR_NAME(bn_affine_cols_inplace_impl)(CYR_BN_ACT_RELU, yr, w, scale, shift, a); break;
            case CYR_BN_ACT_LEAKY: CYR_NAME(bn_affine_cols_inplace_impl)(CYR_BN_ACT_LEAKY, yr, w, scale, shift, a); break;
            default: CYR_NAME(bn_affine_cols_inplace_impl)(CYR_BN_ACT_NONE, yr, w, scale, shift, a); break;
            }
        } else {
            switch (act) {
            case CYR_BN_ACT_RELU: CYR_NAME(bn_affine_cols_impl)(CYR_BN_ACT_RELU, xr, yr, w, scale, shift, a); break;
            case CYR_BN_ACT_LEAKY: CYR_NAME(bn_affine_cols_impl)(CYR_BN_ACT_LEAKY, xr, yr, w, scale, shift, a); break;
            default: CYR_NAME(bn_affine_cols_impl)(CYR_BN_ACT_NONE, xr, yr, w, scale, shift, a); break;
            }
        }
    }
}

/* ---- training forward, one channel of a (outer, C, inner) array -------------------- */

/* Statistics of channel c (two-pass, double), then y = act(x * scale + shift) over the
 * same slab while it is still in cache.  Writes the batch mean and biased variance. */
CYR_BN_KERNEL void CYR_NAME(bn_train_channel)(const CYR_T *x, CYR_T *y, Py_ssize_t outer,
                                           Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c,
                                           double w, double b, double eps, int act, CYR_T a,
                                           double *mean_out, double *var_out) {
    const Py_ssize_t step = C * inner;
    const double n = (double)outer * (double)inner;
    double s = 0.0, m2 = 0.0, mean, var, invstd, scale;
    Py_ssize_t o;
    for (o = 0; o < outer; ++o) s += CYR_NAME(bn_sum)(x + o * step + c * inner, inner);
    mean = s / n;
    for (o = 0; o < outer; ++o) m2 += CYR_NAME(bn_sqdev)(x + o * step + c * inner, inner, mean);
    var = m2 / n;
    invstd = 1.0 / sqrt(var + eps);
    scale = w * invstd;
    for (o = 0; o < outer; ++o)
        CYR_NAME(bn_affine)(act, x + o * step + c * inner, y + o * step + c * inner, inner,
                            (CYR_T)scale, (CYR_T)(b - mean * scale), a);
    *mean_out = mean;
    *var_out = var;
}

/* y = act(x * scale[c] + shift[c]) for the rows [r0, r1) of the (outer * C) rows of
 * length inner (row r belongs to channel r % C); y may be exactly x. */
CYR_BN_KERNEL void CYR_NAME(bn_affine_chan_rows)(int act, const CYR_T *x, CYR_T *y, Py_ssize_t r0,
                                              Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner,
                                              const CYR_T *scale, const CYR_T *shift, CYR_T a) {
    for (Py_ssize_t r = r0; r < r1; ++r) {
        const Py_ssize_t c = r % C;
        CYR_NAME(bn_affine)(act, x + r * inner, y + r * inner, inner, scale[c], shift[c], a);
    }
}

/* ---- statistics per column, for the row layout -------------------------------------- */

/* Mean and M2 (sum of squared deviations) of each of the W columns of `rows` rows,
 * two-pass over a block small enough to stay in cache. */
CYR_INLINE void CYR_NAME(bn_block_colstats)(const CYR_T *CYR_RESTRICT x, Py_ssize_t rows,
                                            Py_ssize_t w, double *CYR_RESTRICT mean,
                                            double *CYR_RESTRICT m2) {
    Py_ssize_t r, j;
    const double inv = 1.0 / (double)rows;
    for (j = 0; j < w; ++j) { mean[j] = 0.0; m2[j] = 0.0; }
    for (r = 0; r < rows; ++r) {
        const CYR_T *CYR_RESTRICT xr = x + r * w;
        for (j = 0; j < w; ++j) mean[j] += (double)xr[j];
    }
    for (j = 0; j < w; ++j) mean[j] *= inv;
    for (r = 0; r < rows; ++r) {
        const CYR_T *CYR_RESTRICT xr = x + r * w;
        for (j = 0; j < w; ++j) {
            const double d = (double)xr[j] - mean[j];
            m2[j] += d * d;
        }
    }
}

/* Column statistics of a group of `rows` rows, block by block (block_rows each),
 * merged in order.  tmean/tm2 are W doubles of scratch. */
CYR_BN_KERNEL void CYR_NAME(bn_group_colstats)(const CYR_T *x, Py_ssize_t rows, Py_ssize_t w,
                                            Py_ssize_t block_rows, double *gmean, double *gm2,
                                            double *tmean, double *tm2) {
    Py_ssize_t r0 = 0, nb;
    double na;
    nb = rows < block_rows ? rows : block_rows;
    CYR_NAME(bn_block_colstats)(x, nb, w, gmean, gm2);
    na = (double)nb;
    for (r0 = nb; r0 < rows; r0 += nb) {
        nb = rows - r0 < block_rows ? rows - r0 : block_rows;
        CYR_NAME(bn_block_colstats)(x + r0 * w, nb, w, tmean, tm2);
        cyr_bn_chan_merge(na, gmean, gm2, (double)nb, tmean, tm2, w);
        na += (double)nb;
    }
}

/* ---- backward ---------------------------------------------------------------------- */

CYR_INLINE void CYR_NAME(bn_dot)(int act, const CYR_T *dy, const CYR_T *x, const CYR_T *y,
                                 Py_ssize_t n, double mean, CYR_T a, double *s) {
    switch (act) {
    case CYR_BN_ACT_RELU: CYR_NAME(bn_dot_impl)(CYR_BN_ACT_RELU, dy, x, y, n, mean, a, s); break;
    case CYR_BN_ACT_LEAKY: CYR_NAME(bn_dot_impl)(CYR_BN_ACT_LEAKY, dy, x, y, n, mean, a, s); break;
    default: CYR_NAME(bn_dot_impl)(CYR_BN_ACT_NONE, dy, x, y, n, mean, a, s); break;
    }
}

/* training: dx = (g - (x - mean) * k - mdy) * A;  eval (train == 0): dx = g * A. */
CYR_INLINE void CYR_NAME(bn_dx_impl)(int act, int train, const CYR_T *CYR_RESTRICT dy,
                                     const CYR_T *CYR_RESTRICT x, const CYR_T *CYR_RESTRICT y,
                                     CYR_T *CYR_RESTRICT dx, Py_ssize_t n, CYR_T mean, CYR_T k,
                                     CYR_T mdy, CYR_T A, CYR_T a) {
    if (train) {
        for (Py_ssize_t i = 0; i < n; ++i) {
            const CYR_T g = CYR_NAME(bn_gate)(act, dy[i], y, i, a);
            dx[i] = (g - (x[i] - mean) * k - mdy) * A;
        }
    } else {
        for (Py_ssize_t i = 0; i < n; ++i) dx[i] = CYR_NAME(bn_gate)(act, dy[i], y, i, a) * A;
    }
}

CYR_INLINE void CYR_NAME(bn_dx)(int act, int train, const CYR_T *dy, const CYR_T *x,
                                const CYR_T *y, CYR_T *dx, Py_ssize_t n, CYR_T mean, CYR_T k,
                                CYR_T mdy, CYR_T A, CYR_T a) {
    switch (act * 2 + (train != 0)) {
    case 2 * CYR_BN_ACT_RELU + 1: CYR_NAME(bn_dx_impl)(CYR_BN_ACT_RELU, 1, dy, x, y, dx, n, mean, k, mdy, A, a); break;
    case 2 * CYR_BN_ACT_RELU: CYR_NAME(bn_dx_impl)(CYR_BN_ACT_RELU, 0, dy, x, y, dx, n, mean, k, mdy, A, a); break;
    case 2 * CYR_BN_ACT_LEAKY + 1: CYR_NAME(bn_dx_impl)(CYR_BN_ACT_LEAKY, 1, dy, x, y, dx, n, mean, k, mdy, A, a); break;
    case 2 * CYR_BN_ACT_LEAKY: CYR_NAME(bn_dx_impl)(CYR_BN_ACT_LEAKY, 0, dy, x, y, dx, n, mean, k, mdy, A, a); break;
    case 1: CYR_NAME(bn_dx_impl)(CYR_BN_ACT_NONE, 1, dy, x, y, dx, n, mean, k, mdy, A, a); break;
    default: CYR_NAME(bn_dx_impl)(CYR_BN_ACT_NONE, 0, dy, x, y, dx, n, mean, k, mdy, A, a); break;
    }
}

/* Channel c of (outer, C, inner) arrays: sums of the gated gradient and of its product
 * with (x - mean), then (training) dx from the same slabs while they are in cache.
 * sums[0] = sum(g), sums[1] = sum(g * (x - mean)).  y may be NULL when act is none. */
CYR_BN_KERNEL void CYR_NAME(bn_backward_channel)(const CYR_T *dy, const CYR_T *x, const CYR_T *y,
                                              CYR_T *dx, Py_ssize_t outer, Py_ssize_t C,
                                              Py_ssize_t inner, Py_ssize_t c, double mean,
                                              double invstd, double w, int train, int act,
                                              CYR_T a, double *sums) {
    const Py_ssize_t step = C * inner;
    const double n = (double)outer * (double)inner;
    double k = 0.0, mdy = 0.0;
    Py_ssize_t o, off;
    sums[0] = 0.0;
    sums[1] = 0.0;
    for (o = 0; o < outer; ++o) {
        off = o * step + c * inner;
        CYR_NAME(bn_dot)(act, dy + off, x + off, y ? y + off : NULL, inner, mean, a, sums);
    }
    if (dx == NULL) return;
    if (train && n > 0) {
        mdy = sums[0] / n;
        k = sums[1] / n * invstd * invstd;
    }
    for (o = 0; o < outer; ++o) {
        off = o * step + c * inner;
        CYR_NAME(bn_dx)(act, train, dy + off, x + off, y ? y + off : NULL, dx + off, inner,
                        (CYR_T)mean, (CYR_T)k, (CYR_T)mdy, (CYR_T)(w * invstd), a);
    }
}

/* Row layout: add sum(g) and sum(g * (x - mean[col])) per column over `rows` rows of W
 * columns into s0[W], s1[W] (double). */
CYR_INLINE void CYR_NAME(bn_dot_cols_impl)(int act, const CYR_T *CYR_RESTRICT dy,
                                           const CYR_T *CYR_RESTRICT x,
                                           const CYR_T *CYR_RESTRICT y, Py_ssize_t rows,
                                           Py_ssize_t w, const double *CYR_RESTRICT mean,
                                           CYR_T a, double *CYR_RESTRICT s0,
                                           double *CYR_RESTRICT s1) {
    for (Py_ssize_t r = 0; r < rows; ++r) {
        const Py_ssize_t off = r * w;
        for (Py_ssize_t j = 0; j < w; ++j) {
            const double g = (double)CYR_NAME(bn_gate)(act, dy[off + j], y, off + j, a);
            s0[j] += g;
            s1[j] += g * ((double)x[off + j] - mean[j]);
        }
    }
}

CYR_BN_KERNEL void CYR_NAME(bn_dot_cols)(int act, const CYR_T *dy, const CYR_T *x, const CYR_T *y,
                                      Py_ssize_t rows, Py_ssize_t w, const double *mean, CYR_T a,
                                      double *s0, double *s1) {
    switch (act) {
    case CYR_BN_ACT_RELU: CYR_NAME(bn_dot_cols_impl)(CYR_BN_ACT_RELU, dy, x, y, rows, w, mean, a, s0, s1); break;
    case CYR_BN_ACT_LEAKY: CYR_NAME(bn_dot_cols_impl)(CYR_BN_ACT_LEAKY, dy, x, y, rows, w, mean, a, s0, s1); break;
    default: CYR_NAME(bn_dot_cols_impl)(CYR_BN_ACT_NONE, dy, x, y, rows, w, mean, a, s0, s1); break;
    }
}

/* Row layout: dx for `rows` rows of W columns with per-column parameters. */
CYR_INLINE void CYR_NAME(bn_dx_cols_impl)(int act, int train, const CYR_T *CYR_RESTRICT dy,
                                          const CYR_T *CYR_RESTRICT x,
                                          const CYR_T *CYR_RESTRICT y, CYR_T *CYR_RESTRICT dx,
                                          Py_ssize_t rows, Py_ssize_t w,
                                          const CYR_T *CYR_RESTRICT mean,
                                          const CYR_T *CYR_RESTRICT k,
                                          const CYR_T *CYR_RESTRICT mdy,
                                          const CYR_T *CYR_RESTRICT A, CYR_T a) {
    for (Py_ssize_t r = 0; r < rows; ++r) {
        const Py_ssize_t off = r * w;
        if (train) {
            for (Py_ssize_t j = 0; j < w; ++j) {
                const CYR_T g = CYR_NAME(bn_gate)(act, dy[off + j], y, off + j, a);
                dx[off + j] = (g - (x[off + j] - mean[j]) * k[j] - mdy[j]) * A[j];
            }
        } else {
            for (Py_ssize_t j = 0; j < w; ++j)
                dx[off + j] = CYR_NAME(bn_gate)(act, dy[off + j], y, off + j, a) * A[j];
        }
    }
}

CYR_BN_KERNEL void CYR_NAME(bn_dx_cols)(int act, int train, const CYR_T *dy, const CYR_T *x,
                                     const CYR_T *y, CYR_T *dx, Py_ssize_t rows, Py_ssize_t w,
                                     const CYR_T *mean, const CYR_T *k, const CYR_T *mdy,
                                     const CYR_T *A, CYR_T a) {
    switch (act * 2 + (train != 0)) {
    case 2 * CYR_BN_ACT_RELU + 1: CYR_NAME(bn_dx_cols_impl)(CYR_BN_ACT_RELU, 1, dy, x, y, dx, rows, w, mean, k, mdy, A, a); break;
    case 2 * CYR_BN_ACT_RELU: CYR_NAME(bn_dx_cols_impl)(CYR_BN_ACT_RELU, 0, dy, x, y, dx, rows, w, mean, k, mdy, A, a); break;
    case 2 * CYR_BN_ACT_LEAKY + 1: CYR_NAME(bn_dx_cols_impl)(CYR_BN_ACT_LEAKY, 1, dy, x, y, dx, rows, w, mean, k, mdy, A, a); break;
    case 2 * CYR_BN_ACT_LEAKY: CYR_NAME(bn_dx_cols_impl)(CYR_BN_ACT_LEAKY, 0, dy, x, y, dx, rows, w, mean, k, mdy, A, a); break;
    case 1: CYR_NAME(bn_dx_cols_impl)(CYR_BN_ACT_NONE, 1, dy, x, y, dx, rows, w, mean, k, mdy, A, a); break;
    default: CYR_NAME(bn_dx_cols_impl)(CYR_BN_ACT_NONE, 0, dy, x, y, dx, rows, w, mean, k, mdy, A, a); break;
    }
}
