/* Type-generic parts of kernel_check.c: the float and double checks of the
 * activations, the diagnostic counts and the BatchNorm kernels.  Included twice,
 * with CT (float / double), CS (f32 / f64), CT_NAME ("f32" / "f64") and CT_EPS (the
 * type's unit roundoff, for the BatchNorm tolerances) defined.  No include guard. */

#define KN(name) KN_(name, CS)
#define KN_(a, b) KN__(a, b)
#define KN__(a, b) cyr_##a##_##b
#define TN(name) TN_(name, CS)
#define TN_(a, b) TN__(a, b)
#define TN__(a, b) a##_##b

/* ---- references ------------------------------------------------------------------ */
/* The products of two floats are exact in double, so the float references round once,
 * as the kernels do; for double the product is the kernel's own operation. */
static CT TN(ref_mul)(CT a, CT v) { return (CT)((double)a * (double)v); }

static CT TN(ref_relu)(CT v) {
    if (isnan(v)) return v;
    return (signbit(v) && v != 0) ? (CT)0 : v;  /* -0.0 stays -0.0 */
}
static CT TN(ref_leaky)(CT v, CT a) { return (!isnan(v) && v > 0) ? v : TN(ref_mul)(a, v); }
static CT TN(ref_relu_bw)(CT g, CT v) { return (isnan(v) || v > 0) ? g : (CT)0; }
static CT TN(ref_leaky_bw)(CT g, CT v, CT a) { return (!isnan(v) && v > 0) ? g : TN(ref_mul)(a, g); }

static int TN(same)(CT a, CT b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;  /* -0.0 and 0.0 differ */
}

/* Test inputs: the special values first, then random values and random bit patterns. */
static void TN(fill_values)(CT *x, Py_ssize_t n, uint64_t seed) {
    const CT sp[] = {(CT)NAN, (CT)-NAN, (CT)0.0, (CT)-0.0, (CT)INFINITY, (CT)-INFINITY,
                     (CT)1, (CT)-1, (CT)0.5, (CT)-0.5,
                     sizeof(CT) == 4 ? (CT)FLT_MIN : (CT)DBL_MIN,
                     sizeof(CT) == 4 ? (CT)-FLT_MIN : (CT)-DBL_MIN,
                     sizeof(CT) == 4 ? (CT)FLT_TRUE_MIN : (CT)DBL_TRUE_MIN,
                     sizeof(CT) == 4 ? (CT)-FLT_TRUE_MIN : (CT)-DBL_TRUE_MIN,
                     sizeof(CT) == 4 ? (CT)(FLT_MIN / 3) : (CT)(DBL_MIN / 3),
                     sizeof(CT) == 4 ? (CT)(-FLT_MIN / 3) : (CT)(-DBL_MIN / 3),
                     sizeof(CT) == 4 ? (CT)FLT_MAX : (CT)DBL_MAX,
                     sizeof(CT) == 4 ? (CT)-FLT_MAX : (CT)-DBL_MAX};
    const Py_ssize_t ns = (Py_ssize_t)(sizeof sp / sizeof sp[0]);
    uint64_t s = seed;
    for (Py_ssize_t i = 0; i < n; ++i) {
        if (i < ns) { x[i] = sp[i]; continue; }
        if (rng_next(&s) % 4 == 0) {  /* a random bit pattern: any class of value */
            uint64_t b = rng_next(&s);
            if (sizeof(CT) == 4) { uint32_t u = (uint32_t)b; memcpy(&x[i], &u, 4); }
            else memcpy(&x[i], &b, sizeof(CT));
        } else {
            x[i] = (CT)(rng_uniform(&s) * 8.0 - 4.0);
        }
    }
}

/* ---- activations ------------------------------------------------------------------- */
static void TN(expect_unary)(const char *what, int op, CT a, const CT *x, const CT *y,
                             Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; ++i) {
        const CT want = op == CYR_ACT_RELU ? TN(ref_relu)(x[i]) : TN(ref_leaky)(x[i], a);
        if (!TN(same)(y[i], want)) {
            fail_msg("%s %s op %d a=%g: element %ld: x=%a got %a want %a", what, CT_NAME, op,
                     (double)a, (long)i, (double)x[i], (double)y[i], (double)want);
            return;
        }
    }
    pass();
}

static void TN(expect_binary)(const char *what, int op, CT a, const CT *g, const CT *x,
                              const CT *out, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; ++i) {
        const CT want = op == CYR_ACT_RELU ? TN(ref_relu_bw)(g[i], x[i])
                                          : TN(ref_leaky_bw)(g[i], x[i], a);
        if (!TN(same)(out[i], want)) {
            fail_msg("%s %s op %d a=%g: element %ld: g=%a x=%a got %a want %a", what, CT_NAME,
                     op, (double)a, (long)i, (double)g[i], (double)x[i], (double)out[i],
                     (double)want);
            return;
        }
    }
    pass();
}

static void TN(check_activations)(void) {
    /* 1000 elements: the plain loops; 20000: above the streaming threshold that main()
     * sets (CYRELU_L2_BYTES), so that the x86 streaming paths run too.  The output is
     * offset by one element from its allocation, so the streamed heads are not empty. */
    const Py_ssize_t sizes[] = {1000, 20000};
    const CT alphas[] = {(CT)0.01, (CT)0, (CT)-0.25, (CT)2};
    for (int si = 0; si < 2; ++si) {
        const Py_ssize_t n = sizes[si];
        CT *x = xmalloc((size_t)(n + 1) * sizeof(CT)), *g = xmalloc((size_t)(n + 1) * sizeof(CT));
        CT *yb = xmalloc((size_t)(2 * n + 2) * sizeof(CT)), *y = yb + 1;
        CT *xs = xmalloc((size_t)(2 * n) * sizeof(CT));
        TN(fill_values)(x, n, 1 + (uint64_t)n);
        TN(fill_values)(g, n, 7 + (uint64_t)n);
        /* g with specials at other places than x */
        for (Py_ssize_t i = 0; i + 1 < n; i += 2) { CT t = g[i]; g[i] = g[i + 1]; g[i + 1] = t; }
        for (Py_ssize_t i = 0; i < n; ++i) { xs[2 * i] = x[i]; xs[2 * i + 1] = (CT)12345; }
        for (int op = CYR_ACT_RELU; op <= CYR_ACT_LEAKY_RELU; ++op) {
            for (int ai = 0; ai < 4; ++ai) {
                const CT a = alphas[ai];
                if (op == CYR_ACT_RELU && ai > 0) break;
                /* unary: out of place, in place, strided (stride 2 in, -1 out) */
                KN(unary)(op, x, y, n, a, 0);
                TN(expect_unary)("unary", op, a, x, y, n);
                memcpy(y, x, (size_t)n * sizeof(CT));
                KN(unary)(op, y, y, n, a, 0);
                TN(expect_unary)("unary in place", op, a, x, y, n);
                {
                    CT *rev = xmalloc((size_t)n * sizeof(CT));
                    KN(unary_strided)(op, (const char *)xs, 2 * (Py_ssize_t)sizeof(CT),
                                      (char *)(y + n - 1), -(Py_ssize_t)sizeof(CT), n, a, 0);
                    for (Py_ssize_t i = 0; i < n; ++i) rev[i] = y[n - 1 - i];
                    TN(expect_unary)("unary strided", op, a, x, rev, n);
                    free(rev);
                }
                /* binary: out of place, out == g, out == x, strided */
                KN(binary)(op, g, x, y, n, a, 0);
                TN(expect_binary)("binary", op, a, g, x, y, n);
                memcpy(y, g, (size_t)n * sizeof(CT));
                KN(binary)(op, y, x, y, n, a, 0);
                TN(expect_binary)("binary out==g", op, a, g, x, y, n);
                memcpy(y, x, (size_t)n * sizeof(CT));
                KN(binary)(op, g, y, y, n, a, 0);
                TN(expect_binary)("binary out==x", op, a, g, x, y, n);
                {
                    CT *rev = xmalloc((size_t)n * sizeof(CT));
                    KN(binary_strided)(op, (const char *)(g + n - 1), -(Py_ssize_t)sizeof(CT),
                                       (const char *)xs, 2 * (Py_ssize_t)sizeof(CT), (char *)y,
                                       (Py_ssize_t)sizeof(CT), n, a, 0);
                    for (Py_ssize_t i = 0; i < n; ++i) rev[i] = g[n - 1 - i];
                    TN(expect_binary)("binary strided", op, a, rev, x, y, n);
                    free(rev);
                }
            }
        }
        free(x); free(g); free(yb); free(xs);
    }
}

/* ---- diagnostics ------------------------------------------------------------------- */
static unsigned TN(ref_pred)(int op, CT v, CT t) {
    if (op == CYR_DIAG_ZEROS) return !isnan(v) && v == 0;  /* +-0 */
    return isnan(v) || v > t;
}

/* One call over the sub-box, against a plain count; acc starts non-zero (calls add). */
static void TN(diag_case)(const char *what, const char *x, Py_ssize_t so, Py_ssize_t sc,
                          Py_ssize_t si, Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t c0,
                          Py_ssize_t c1, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t C) {
    const CT ts[] = {(CT)0, (CT)0.5, (CT)-1};
    Py_ssize_t *acc = xmalloc((size_t)C * sizeof(Py_ssize_t));
    for (int op = CYR_ACT_RELU; op <= CYR_ACT_LEAKY_RELU; ++op) {
        for (int ti = 0; ti < 3; ++ti) {
            const CT t = ts[ti];
            int ok = 1;
            if (op == CYR_DIAG_ZEROS && ti > 0) break;
            for (Py_ssize_t c = 0; c < C; ++c) acc[c] = 100 + c;
            KN(diag_count)(op, x, so, sc, si, o0, o1, c0, c1, i0, i1, t, acc);
            for (Py_ssize_t c = 0; c < C && ok; ++c) {
                Py_ssize_t want = 100 + c;
                if (c >= c0 && c < c1)
                    for (Py_ssize_t o = o0; o < o1; ++o)
                        for (Py_ssize_t i = i0; i < i1; ++i)
                            want += TN(ref_pred)(op, *(const CT *)(x + o * so + c * sc + i * si), t);
                if (acc[c] != want) {
                    fail_msg("diag %s %s op %d t=%g: channel %ld: got %ld want %ld", what,
                             CT_NAME, op, (double)t, (long)c, (long)acc[c], (long)want);
                    ok = 0;
                }
            }
            if (ok) pass();
        }
    }
    free(acc);
}

static void TN(diag_values)(CT *x, Py_ssize_t n, uint64_t seed) {
    const CT pool[] = {(CT)0, (CT)-0.0, (CT)NAN, (CT)-NAN, (CT)0.5, (CT)-0.5, (CT)1, (CT)-1,
                       (CT)INFINITY, (CT)-INFINITY, (CT)0.25, (CT)0.75,
                       sizeof(CT) == 4 ? (CT)FLT_TRUE_MIN : (CT)DBL_TRUE_MIN};
    uint64_t s = seed;
    for (Py_ssize_t i = 0; i < n; ++i) {
        const uint64_t r = rng_next(&s);
        x[i] = r % 3 == 0 ? (CT)(rng_uniform(&s) * 4 - 2) : pool[(r >> 8) % 13];
    }
}

static void TN(check_diagnostics)(void) {
    const Py_ssize_t sz = (Py_ssize_t)sizeof(CT);
    {   /* (outer, C, inner) contiguous, channels in the middle: runs per channel */
        const Py_ssize_t O = 3, C = 5, I = 37;
        CT *x = xmalloc((size_t)(O * C * I) * sizeof(CT));
        TN(diag_values)(x, O * C * I, 11);
        TN(diag_case)("NCHW", (const char *)x, C * I * sz, I * sz, sz, 0, O, 0, C, 0, I, C);
        TN(diag_case)("NCHW sub-box", (const char *)x, C * I * sz, I * sz, sz, 1, 3, 1, 4, 2, 30, C);
        /* reversed channels: negative channel stride */
        TN(diag_case)("NCHW reversed channels", (const char *)(x + (C - 1) * I), C * I * sz,
                      -I * sz, sz, 0, O, 0, C, 0, I, C);
        /* channels-last view of the same memory: (outer, inner, C) in memory */
        TN(diag_case)("channels-last", (const char *)x, C * I * sz, sz, C * sz, 0, O, 0, C, 0, I, C);
        /* every other inner element: non-unit inner stride */
        TN(diag_case)("strided inner", (const char *)x, C * I * sz, I * sz, 2 * sz, 0, O, 0, C,
                      0, I / 2, C);
        free(x);
    }
    {   /* (N, C) with more channels than one counting tile (CYR_DIAG_TILE) */
        const Py_ssize_t O = 9, C = CYR_DIAG_TILE + 77;
        CT *x = xmalloc((size_t)(O * C) * sizeof(CT));
        TN(diag_values)(x, O * C, 12);
        TN(diag_case)("(N, C)", (const char *)x, C * sz, sz, sz, 0, O, 0, C, 0, 1, C);
        TN(diag_case)("(N, C) sub-box", (const char *)x, C * sz, sz, sz, 2, 8, 5, C - 3, 0, 1, C);
        TN(diag_case)("(N, C) channel stride 2", (const char *)x, C * sz, 2 * sz, sz, 0, O, 0,
                      C / 2, 0, 1, C / 2);
        free(x);
    }
}

/* ---- BatchNorm --------------------------------------------------------------------- */
static double TN(ref_act)(int act, double v, CT a) {
    if (act == CYR_ACT_RELU) return v < 0 ? 0.0 : v;
    if (act == CYR_ACT_LEAKY_RELU) return v > 0 ? v : (double)a * v;
    return v;
}
static double TN(ref_gate)(int act, CT g, CT y, CT a) {
    if (act == CYR_ACT_RELU) return y <= 0 ? 0.0 : (double)g;
    /* the gated gradient is rounded to the element type, as in the activations' backward */
    if (act == CYR_ACT_LEAKY_RELU) return y > 0 ? (double)g : (double)TN(ref_mul)(a, g);
    return (double)g;
}

/* |got - want| <= tol * scale */
static int TN(close)(double got, double want, double tol, double scale) {
    return fabs(got - want) <= tol * scale;
}

/* Reference statistics of channel c of an (O, C, I) array, in double, two-pass. */
static void TN(ref_stats)(const CT *x, Py_ssize_t O, Py_ssize_t C, Py_ssize_t I, Py_ssize_t c,
                          double *mean, double *var) {
    double s = 0, m2 = 0;
    const double n = (double)(O * I);
    for (Py_ssize_t o = 0; o < O; ++o)
        for (Py_ssize_t i = 0; i < I; ++i) s += (double)x[(o * C + c) * I + i];
    s /= n;
    for (Py_ssize_t o = 0; o < O; ++o)
        for (Py_ssize_t i = 0; i < I; ++i) {
            const double d = (double)x[(o * C + c) * I + i] - s;
            m2 += d * d;
        }
    *mean = s;
    *var = m2 / n;
}

static int TN(bitwise_equal)(const CT *p, const CT *q, Py_ssize_t n) {
    return memcmp(p, q, (size_t)n * sizeof(CT)) == 0;
}

/* One (O, C, I) shape through the per-channel and the row-layout kernels, forward and
 * backward, every fused activation, training and eval. */
static void TN(bn_shape)(Py_ssize_t O, Py_ssize_t C, Py_ssize_t I, uint64_t seed) {
    const Py_ssize_t N = O * C * I, W = C * I;
    const double eps = 1e-5, n = (double)(O * I);
    const double tol_stat = 1e3 * DBL_EPSILON * (double)(O * I);
    const double tol = 64 * CT_EPS;
    const CT a = (CT)0.1;
    CT *x = xmalloc((size_t)N * sizeof(CT)), *y = xmalloc((size_t)N * sizeof(CT));
    CT *y2 = xmalloc((size_t)N * sizeof(CT)), *dy = xmalloc((size_t)N * sizeof(CT));
    CT *dx = xmalloc((size_t)N * sizeof(CT)), *dx2 = xmalloc((size_t)N * sizeof(CT));
    double *mean = xmalloc((size_t)C * sizeof(double)), *var = xmalloc((size_t)C * sizeof(double));
    double *invstd = xmalloc((size_t)C * sizeof(double)), *w = xmalloc((size_t)C * sizeof(double));
    double *b = xmalloc((size_t)C * sizeof(double));
    double *sums = xmalloc((size_t)(2 * C) * sizeof(double)), *sums2 = xmalloc((size_t)(2 * C) * sizeof(double));
    /* the backward gate's sc and sh per channel or column: 1 and 0 (the derivative at y) */
    CT *gsc = xmalloc((size_t)W * sizeof(CT)), *gsh = xmalloc((size_t)W * sizeof(CT));
    for (Py_ssize_t j = 0; j < W; ++j) {
        gsc[j] = 1;
        gsh[j] = 0;
    }
    double *cs = xmalloc((size_t)(5 * W) * sizeof(double));
    /* 4 * W coefficients, or two arrays of W and their repeated tails
     * (CYR_BN_COEF_EXT_N, batchnorm.h) */
    CT *colp = xmalloc((size_t)(4 * W + 2 * CYR_BN_COEF_EXT_N(CT)) * sizeof(CT));
    uint64_t s = seed;
    char what[96];
    for (Py_ssize_t o = 0; o < O; ++o)
        for (Py_ssize_t c = 0; c < C; ++c)
            for (Py_ssize_t i = 0; i < I; ++i) {
                x[(o * C + c) * I + i] = (CT)(rng_uniform(&s) * 4 - 1.5 + 0.5 * (double)c);
                dy[(o * C + c) * I + i] = (CT)(rng_uniform(&s) * 2 - 1);
            }
    for (Py_ssize_t c = 0; c < C; ++c) {
        TN(ref_stats)(x, O, C, I, c, &mean[c], &var[c]);
        invstd[c] = 1.0 / sqrt(var[c] + eps);
        w[c] = 0.5 + 0.25 * (double)c;
        b[c] = 0.125 * (double)c - 0.2;
    }
    snprintf(what, sizeof what, "bn (%ld, %ld, %ld) %s", (long)O, (long)C, (long)I, CT_NAME);

    for (int act = 0; act < 3; ++act) {
        /* -- training forward, per channel: statistics and y -- */
        for (int stream = 0; stream < 2; ++stream) {
            int ok = 1;
            for (Py_ssize_t c = 0; c < C; ++c) {
                double m, v;
                KN(bn_train_channel)(x, stream ? y2 : y, O, C, I, c, w[c], b[c], eps, act, a,
                                     0, stream, NULL, NULL, &m, &v);
                if (ok && !(TN(close)(m, mean[c], tol_stat, 1 + fabs(mean[c])) &&
                            TN(close)(v, var[c], tol_stat, var[c]))) {
                    fail_msg("%s train_channel act %d stream %d: channel %ld mean %.17g (%.17g) "
                             "var %.17g (%.17g)", what, act, stream, (long)c, m, mean[c], v, var[c]);
                    ok = 0;
                }
            }
            if (ok) pass();
        }
        {   /* y against the reference; the streamed y bitwise the same */
            int ok = 1;
            for (Py_ssize_t e = 0; e < N && ok; ++e) {
                const Py_ssize_t c = (e / I) % C;
                const double sc = w[c] * invstd[c], sh = b[c] - mean[c] * sc;
                const double want = TN(ref_act)(act, ((double)x[e] - mean[c]) * sc + b[c], a);
                if (!TN(close)((double)y[e], want, tol, fabs((double)x[e] * sc) + fabs(sh) + 1e-300)) {
                    fail_msg("%s train_channel act %d: y[%ld] = %.9g, want %.9g", what, act,
                             (long)e, (double)y[e], want);
                    ok = 0;
                }
            }
            if (ok) pass();
            if (TN(bitwise_equal)(y, y2, N)) pass();
            else fail_msg("%s train_channel act %d: streamed y differs from plain y", what, act);
        }
        {   /* in place: y == x gives the same bits */
            int ok = 1;
            memcpy(y2, x, (size_t)N * sizeof(CT));
            for (Py_ssize_t c = 0; c < C; ++c) {
                double m, v;
                KN(bn_train_channel)(y2, y2, O, C, I, c, w[c], b[c], eps, act, a, 0, 0, NULL,
                                     NULL, &m, &v);
            }
            if (!TN(bitwise_equal)(y, y2, N)) {
                fail_msg("%s train_channel act %d: in place differs", what, act);
                ok = 0;
            }
            if (ok) pass();
        }
        /* a run of channels, each one's statistics read carried from the one before
         * (taken during its normalising pass): the same statistics and y, bit for bit */
        for (int stream = 0; stream < 2; ++stream) {
            double carry[2][CYR_BN_CARRY];
            int ok = 1, k = 0;
            for (Py_ssize_t c = 0; c < C; ++c) {
                double m, v, m0, v0;
                KN(bn_train_channel)(x, y2, O, C, I, c, w[c], b[c], eps, act, a, 0, 0, NULL,
                                     NULL, &m0, &v0);
                KN(bn_train_channel)(x, y2, O, C, I, c, w[c], b[c], eps, act, a, 0, stream,
                                     c > 0 ? carry[k] : NULL, c + 1 < C ? carry[1 - k] : NULL,
                                     &m, &v);
                k = 1 - k;
                if (ok && (memcmp(&m, &m0, sizeof m) != 0 || memcmp(&v, &v0, sizeof v) != 0)) {
                    fail_msg("%s train_channel act %d stream %d: carried channel %ld mean "
                             "%.17g (%.17g) var %.17g (%.17g)", what, act, stream, (long)c, m,
                             m0, v, v0);
                    ok = 0;
                }
            }
            if (ok && !TN(bitwise_equal)(y, y2, N)) {
                fail_msg("%s train_channel act %d stream %d: carried y differs", what, act,
                         stream);
                ok = 0;
            }
            if (ok) pass();
        }
        /* -- eval forward per channel rows (affine_chan_rows) with y's scale/shift -- */
        for (int stream = 0; stream < 2; ++stream) {
            CT *scale = colp, *shift = colp + C;
            int ok = 1;
            for (Py_ssize_t c = 0; c < C; ++c) {
                scale[c] = (CT)(w[c] * invstd[c]);
                shift[c] = (CT)(b[c] - mean[c] * (w[c] * invstd[c]));
            }
            KN(bn_affine_chan_rows)(act, x, y2, 0, O * C, C, I, scale, shift, a, 0, stream);
            for (Py_ssize_t e = 0; e < N && ok; ++e) {
                const Py_ssize_t c = (e / I) % C;
                const double sc = w[c] * invstd[c], sh = b[c] - mean[c] * sc;
                const double want = TN(ref_act)(act, ((double)x[e] - mean[c]) * sc + b[c], a);
                if (!TN(close)((double)y2[e], want, tol, fabs((double)x[e] * sc) + fabs(sh) + 1e-300)) {
                    fail_msg("%s affine_chan_rows act %d stream %d: y[%ld] = %.9g, want %.9g",
                             what, act, stream, (long)e, (double)y2[e], want);
                    ok = 0;
                }
            }
            if (ok) pass();
        }
        /* -- row layout: column statistics, then y with per-column parameters -- */
        {
            const Py_ssize_t block_rows = 4;
            double *gmean = cs, *gm2 = cs + W;
            int ok = 1;
            KN(bn_group_colstats)(x, O, W, block_rows, gmean, gm2, cs + 2 * W);
            for (Py_ssize_t j = 0; j < W && ok; ++j) {
                double m = 0, m2 = 0;
                for (Py_ssize_t o = 0; o < O; ++o) m += (double)x[o * W + j];
                m /= (double)O;
                for (Py_ssize_t o = 0; o < O; ++o) {
                    const double d = (double)x[o * W + j] - m;
                    m2 += d * d;
                }
                if (!(TN(close)(gmean[j], m, tol_stat, 1 + fabs(m)) &&
                      TN(close)(gm2[j], m2, tol_stat, m2 + 1e-300))) {
                    fail_msg("%s group_colstats: column %ld mean %.17g (%.17g) m2 %.17g (%.17g)",
                             what, (long)j, gmean[j], m, gm2[j], m2);
                    ok = 0;
                }
            }
            if (ok) pass();
            ok = 1;
            {
                CT *scale = colp, *shift = colp + W + CYR_BN_COEF_EXT_N(CT);
                for (Py_ssize_t j = 0; j < W + CYR_BN_COEF_EXT_N(CT); ++j) {
                    const Py_ssize_t c = j % W / I;
                    scale[j] = (CT)(w[c] * invstd[c]);
                    shift[j] = (CT)(b[c] - mean[c] * (w[c] * invstd[c]));
                }
                KN(bn_affine_rows)(act, x, dx, O, W, scale, shift, a, 0);
            }
            if (!TN(bitwise_equal)(dx, y2, N)) {
                /* the same operations as affine_chan_rows (y2, just above), the same bits */
                fail_msg("%s affine_rows act %d: differs from affine_chan_rows", what, act);
                ok = 0;
            }
            if (ok) pass();
        }

        /* -- backward: y (this activation's forward output) gates dy -- */
        for (int train = 0; train < 2; ++train) {
            const CT *yg = act == CYR_ACT_NONE ? NULL : y;
            double *g = xmalloc((size_t)N * sizeof(double));
            double *rs = xmalloc((size_t)(2 * C) * sizeof(double));
            double *ra = xmalloc((size_t)(2 * C) * sizeof(double));
            int ok;
            for (Py_ssize_t c = 0; c < 2 * C; ++c) rs[c] = ra[c] = 0;
            for (Py_ssize_t e = 0; e < N; ++e) {
                const Py_ssize_t c = (e / I) % C;
                g[e] = TN(ref_gate)(act, dy[e], y[e], a);
                rs[2 * c] += g[e];
                rs[2 * c + 1] += g[e] * ((double)x[e] - mean[c]);
                ra[2 * c] += fabs(g[e]);
                ra[2 * c + 1] += fabs(g[e] * ((double)x[e] - mean[c]));
            }
            /* per channel, plain and streamed */
            for (int stream = 0; stream < 2; ++stream) {
                CT *out = stream ? dx2 : dx;
                ok = 1;
                for (Py_ssize_t c = 0; c < C; ++c)
                    KN(bn_backward_channel)(dy, x, yg, out, O, C, I, c, mean[c], invstd[c], w[c],
                                            train, act, a, 0, gsc + c, gsh + c, stream,
                                            sums + 2 * c);
                for (Py_ssize_t c = 0; c < C && ok; ++c)
                    if (!(TN(close)(sums[2 * c], rs[2 * c], tol_stat, ra[2 * c] + 1e-300) &&
                          TN(close)(sums[2 * c + 1], rs[2 * c + 1], tol_stat, ra[2 * c + 1] + 1e-300))) {
                        fail_msg("%s backward_channel act %d train %d: channel %ld sums %.17g %.17g "
                                 "want %.17g %.17g", what, act, train, (long)c, sums[2 * c],
                                 sums[2 * c + 1], rs[2 * c], rs[2 * c + 1]);
                        ok = 0;
                    }
                for (Py_ssize_t e = 0; e < N && ok; ++e) {
                    const Py_ssize_t c = (e / I) % C;
                    const double A = w[c] * invstd[c];
                    const double k = train ? rs[2 * c + 1] / n * invstd[c] * invstd[c] : 0;
                    const double mdy = train ? rs[2 * c] / n : 0;
                    const double xm = (double)x[e] - mean[c];
                    const double want = (g[e] - xm * k - mdy) * A;
                    const double scale = fabs(A) * (fabs(g[e]) + (fabs((double)x[e]) + fabs(mean[c])) *
                                                    (fabs(k) + ra[2 * c + 1] / n * invstd[c] * invstd[c])
                                                    + fabs(mdy) + ra[2 * c] / n) + 1e-300;
                    if (!TN(close)((double)out[e], want, tol, scale)) {
                        fail_msg("%s backward_channel act %d train %d stream %d: dx[%ld] = %.9g, "
                                 "want %.9g", what, act, train, stream, (long)e, (double)out[e], want);
                        ok = 0;
                    }
                }
                if (ok) pass();
            }
            if (TN(bitwise_equal)(dx, dx2, N)) pass();
            else fail_msg("%s backward_channel act %d train %d: streamed dx differs", what, act, train);
            /* pipelined over all channels: the same sums and dx, bitwise */
            for (Py_ssize_t c = 0; c < C; ++c) sums2[2 * c] = sums2[2 * c + 1] = -1;
            {
                double *sums1 = xmalloc((size_t)(2 * C) * sizeof(double));
                for (Py_ssize_t c = 0; c < C; ++c)
                    KN(bn_backward_channel)(dy, x, yg, dx, O, C, I, c, mean[c], invstd[c], w[c],
                                            train, act, a, 0, gsc + c, gsh + c, 0,
                                            sums1 + 2 * c);
                KN(bn_backward_channels_piped)(dy, x, yg, dx2, O, C, I, 0, C, mean, invstd, w,
                                               train, act, a, 0, gsc, gsh, sums2);
                if (memcmp(sums1, sums2, (size_t)(2 * C) * sizeof(double)) == 0 &&
                    TN(bitwise_equal)(dx, dx2, N))
                    pass();
                else
                    fail_msg("%s backward_channels_piped act %d train %d: differs from "
                             "backward_channel", what, act, train);
                free(sums1);
            }
            /* row layout: column sums, channel coefficients, dx */
            {
                double *s0 = cs, *s1 = cs + W, *cmean = cs + 2 * W;
                CT *pm = colp, *pk = colp + W, *pmdy = colp + 2 * W, *pA = colp + 3 * W;
                ok = 1;
                for (Py_ssize_t j = 0; j < W; ++j) {
                    s0[j] = s1[j] = 0;
                    cmean[j] = mean[j / I];
                }
                KN(bn_dot_cols)(act, dy, x, yg, O, W, cmean, a, 0, gsc, gsh, s0, s1, NULL);
                for (Py_ssize_t j = 0; j < W && ok; ++j) {
                    double r0 = 0, r1 = 0, q0 = 0, q1 = 0;
                    for (Py_ssize_t o = 0; o < O; ++o) {
                        const double gg = g[o * W + j], xm = (double)x[o * W + j] - cmean[j];
                        r0 += gg; r1 += gg * xm; q0 += fabs(gg); q1 += fabs(gg * xm);
                    }
                    if (!(TN(close)(s0[j], r0, tol_stat, q0 + 1e-300) &&
                          TN(close)(s1[j], r1, tol_stat, q1 + 1e-300))) {
                        fail_msg("%s dot_cols act %d: column %ld sums %.17g %.17g want %.17g %.17g",
                                 what, act, (long)j, s0[j], s1[j], r0, r1);
                        ok = 0;
                    }
                }
                for (Py_ssize_t c = 0; c < C; ++c) {
                    double cc[2] = {0, 0}, k, mdy, A;
                    for (Py_ssize_t i = 0; i < I; ++i) { cc[0] += s0[c * I + i]; cc[1] += s1[c * I + i]; }
                    cyr_bn_dx_coefs(cc, n, invstd[c], w[c], train, &k, &mdy, &A);
                    for (Py_ssize_t i = 0; i < I; ++i) {
                        pm[c * I + i] = (CT)mean[c];
                        pk[c * I + i] = (CT)k;
                        pmdy[c * I + i] = (CT)mdy;
                        pA[c * I + i] = (CT)A;
                    }
                }
                KN(bn_dx_cols)(act, train, dy, x, yg, dx2, O, W, pm, pk, pmdy, pA, a, 0, gsc,
                                gsh);
                for (Py_ssize_t e = 0; e < N && ok; ++e) {
                    const Py_ssize_t c = (e / I) % C;
                    const double A = w[c] * invstd[c];
                    const double k = train ? rs[2 * c + 1] / n * invstd[c] * invstd[c] : 0;
                    const double mdy = train ? rs[2 * c] / n : 0;
                    const double want = (g[e] - ((double)x[e] - mean[c]) * k - mdy) * A;
                    const double scale = fabs(A) * (fabs(g[e]) + (fabs((double)x[e]) + fabs(mean[c])) *
                                                    (fabs(k) + ra[2 * c + 1] / n * invstd[c] * invstd[c])
                                                    + fabs(mdy) + ra[2 * c] / n) + 1e-300;
                    if (!TN(close)((double)dx2[e], want, tol, scale)) {
                        fail_msg("%s dx_cols act %d train %d: dx[%ld] = %.9g, want %.9g", what,
                                 act, train, (long)e, (double)dx2[e], want);
                        ok = 0;
                    }
                }
                if (ok) pass();
            }
            free(g); free(rs); free(ra);
        }
    }

    /* -- backward from the pre-activation with an activation taken through L1 tiles
     * (silu; hardsigmoid and hardswish are in the loops): the gate kept in dx between
     * the passes (dx given) and taken twice (pass 1 without dx, then the dx pass) give
     * the same bits, per channel and in the row layout; the sums against a double
     * reference at the kernels' pre-activation -- */
    for (int train = 0; train < 2; ++train) {
        const int act = CYR_ACT_SILU;
        CT *sc = colp, *sh = colp + W;  /* the forward's scale and shift, per column */
        double *rs = xmalloc((size_t)(2 * C) * sizeof(double));
        double *ra = xmalloc((size_t)(2 * C) * sizeof(double));
        int ok = 1;
        for (Py_ssize_t j = 0; j < W; ++j) {
            const Py_ssize_t c = j / I;
            sc[j] = (CT)(w[c] * invstd[c]);
            sh[j] = (CT)(b[c] - mean[c] * (w[c] * invstd[c]));
        }
        for (Py_ssize_t c = 0; c < 2 * C; ++c) rs[c] = ra[c] = 0;
        for (Py_ssize_t e = 0; e < N; ++e) {
            const Py_ssize_t c = (e / I) % C;
            const double z = (double)(CT)(x[e] * sc[c * I] + sh[c * I]);
            const double sg = 1.0 / (1.0 + exp(-z)), d = sg * (1.0 + z * (1.0 - sg));
            const double gg = (double)dy[e] * d, xm = (double)x[e] - mean[c];
            rs[2 * c] += gg; rs[2 * c + 1] += gg * xm;
            ra[2 * c] += fabs(gg); ra[2 * c + 1] += fabs(gg * xm);
        }
        for (Py_ssize_t c = 0; c < C; ++c) {
            KN(bn_backward_channel)(dy, x, x, dx, O, C, I, c, mean[c], invstd[c], w[c], train,
                                    act, 0, 0, sc + c * I, sh + c * I, 0, sums + 2 * c);
            KN(bn_backward_channel)(dy, x, x, NULL, O, C, I, c, mean[c], invstd[c], w[c], train,
                                    act, 0, 0, sc + c * I, sh + c * I, 0, sums2 + 2 * c);
            KN(bn_channel_dx)(dy, x, x, dx2, O, C, I, c, mean[c], invstd[c], w[c], sums2 + 2 * c,
                              n, train, act, 0, 0, sc + c * I, sh + c * I, 0);
            /* the gate is rounded to CT: a few units of CT_EPS of the sum of magnitudes */
            if (!(TN(close)(sums[2 * c], rs[2 * c], tol, ra[2 * c] + 1e-300) &&
                  TN(close)(sums[2 * c + 1], rs[2 * c + 1], tol, ra[2 * c + 1] + 1e-300))) {
                fail_msg("%s tiled backward_channel train %d: channel %ld sums %.17g %.17g "
                         "want %.17g %.17g", what, train, (long)c, sums[2 * c], sums[2 * c + 1],
                         rs[2 * c], rs[2 * c + 1]);
                ok = 0;
            }
        }
        if (!(memcmp(sums, sums2, (size_t)(2 * C) * sizeof(double)) == 0 &&
              TN(bitwise_equal)(dx, dx2, N))) {
            fail_msg("%s tiled backward_channel train %d: kept gate differs", what, train);
            ok = 0;
        }
        {
            double *s0 = cs, *s1 = cs + W, *cmean = cs + 2 * W;
            double *q = xmalloc((size_t)(2 * W) * sizeof(double));
            CT *p4 = xmalloc((size_t)(4 * W) * sizeof(CT));
            for (Py_ssize_t j = 0; j < W; ++j) {
                s0[j] = s1[j] = q[j] = q[W + j] = 0;
                cmean[j] = mean[j / I];
            }
            KN(bn_dot_cols)(act, dy, x, x, O, W, cmean, 0, 0, sc, sh, s0, s1, dx);
            KN(bn_dot_cols)(act, dy, x, x, O, W, cmean, 0, 0, sc, sh, q, q + W, NULL);
            if (ok && (memcmp(s0, q, (size_t)W * sizeof(double)) != 0 ||
                       memcmp(s1, q + W, (size_t)W * sizeof(double)) != 0)) {
                fail_msg("%s tiled dot_cols: the kept gate's column sums differ", what);
                ok = 0;
            }
            free(q);
            for (Py_ssize_t j = 0; j < W; ++j) {
                const Py_ssize_t c = j / I;
                p4[j] = (CT)mean[c];
                p4[W + j] = (CT)0.25;
                p4[2 * W + j] = (CT)-0.125;
                p4[3 * W + j] = (CT)(w[c] * invstd[c]);
            }
            KN(bn_dx_cols)(act, train, dy, x, x, dx2, O, W, p4, p4 + W, p4 + 2 * W, p4 + 3 * W, 0,
                           0, sc, sh);
            /* in place from the kept gate: dy is dx, no activation */
            KN(bn_dx_cols)(CYR_ACT_NONE, train, dx, x, NULL, dx, O, W, p4, p4 + W, p4 + 2 * W,
                           p4 + 3 * W, 0, 0, sc, sh);
            if (ok && !TN(bitwise_equal)(dx, dx2, N)) {
                fail_msg("%s tiled dx_cols train %d: kept gate differs", what, train);
                ok = 0;
            }
            free(p4);
        }
        if (ok) pass();
        free(rs); free(ra);
    }
    free(x); free(y); free(y2); free(dy); free(dx); free(dx2); free(mean); free(var);
    free(invstd); free(w); free(b); free(sums); free(sums2); free(cs); free(colp);
    free(gsc); free(gsh);
}

static void TN(check_batchnorm)(void) {
    TN(bn_shape)(6, 3, 37, 21);    /* per-channel runs with lane tails */
    TN(bn_shape)(4, 3, 300, 22);   /* runs longer than the pipelined pieces and the tiles */
    TN(bn_shape)(53, 24, 1, 23);   /* (N, C): the row layout's usual shape */
    TN(bn_shape)(10, 3, 5, 24);    /* row layout with several columns per channel */
    /* rows over 8 KiB: the first passes read them paced (batchnorm.h), in pieces ending
     * with a partial piece and a lane tail; the pipelined backward (not paced) checks them */
    TN(bn_shape)(3, 2, 3079, 25);
}

#undef KN
#undef KN_
#undef KN__
#undef TN
#undef TN_
#undef TN__
