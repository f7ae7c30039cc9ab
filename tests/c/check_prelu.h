/* The PReLU kernels (include/cyrelu/prelu.h) against scalar references, for kernel_check.c
 * (after check_typed.h, whose leaky_relu references are prelu's with the channel's weight
 * as the slope): the forward and grad_input for float, double and float16, over runs
 * (channels first), rows (channels last) and a single weight, whole and cut at odd
 * positions (as the threads cut them), in place; the grad_weight piece sums against a
 * double reference, and the one-pass backward against both.  No include guard. */

static const Py_ssize_t PRELU_SHAPES[][3] = {  /* outer, C, inner */
    {3, 5, 37}, {50, 7, 1}, {1, 1, 1000}, {2, 3, 4100}, {40, 1100, 1},
};
#define PRELU_NSHAPES ((int)(sizeof PRELU_SHAPES / sizeof PRELU_SHAPES[0]))

/* data in [-3, 3] with NaN, +-0.0 and +-inf among it; a weight in [-1.5, 1.5] */
static double prelu_value(uint64_t *s, Py_ssize_t i) {
    static const double special[] = {0.0, -0.0, NAN, INFINITY, -INFINITY, 1e-40};
    if (i % 97 == 5) return special[(i / 97) % 6];
    return 6.0 * rng_uniform(s) - 3.0;
}

/* grad_weight's piece length, as cyrelu/_prelu.pyx chooses it */
static Py_ssize_t prelu_plen(Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner) {
    Py_ssize_t plen;
    if (inner != 1) return CYR_PRELU_PIECE;
    plen = (CYR_PRELU_PIECE + C - 1) / C;
    return plen > (outer + 63) / 64 ? plen : (outer + 63) / 64;
}

#define PRELU_CHECK(CT, CS)                                                                \
static void check_prelu_##CS(void) {                                                       \
    for (int sh = 0; sh < PRELU_NSHAPES; ++sh) {                                           \
        const Py_ssize_t outer = PRELU_SHAPES[sh][0], C = PRELU_SHAPES[sh][1],             \
                         inner = PRELU_SHAPES[sh][2], n = outer * C * inner;               \
        const Py_ssize_t plen = prelu_plen(outer, C, inner);                               \
        const Py_ssize_t pieces = (outer * inner + plen - 1) / plen;                       \
        CT *x = xmalloc((size_t)n * sizeof(CT)), *g = xmalloc((size_t)n * sizeof(CT));     \
        CT *y = xmalloc((size_t)n * sizeof(CT)), *y2 = xmalloc((size_t)n * sizeof(CT));    \
        CT *w = xmalloc((size_t)C * sizeof(CT));                                           \
        double *acc = xmalloc((size_t)C * sizeof(double));                                 \
        double *acc2 = xmalloc((size_t)C * sizeof(double));                                \
        uint64_t s = 11 + (uint64_t)sh;                                                    \
        int bad = 0;                                                                       \
        for (Py_ssize_t i = 0; i < n; ++i) {                                               \
            x[i] = (CT)prelu_value(&s, i);                                                 \
            g[i] = (CT)prelu_value(&s, i + 3);                                             \
        }                                                                                  \
        for (Py_ssize_t c = 0; c < C; ++c) w[c] = (CT)(3.0 * rng_uniform(&s) - 1.5);       \
        /* forward: whole, and cut at two odd positions; in place */                       \
        const Py_ssize_t k1 = n / 3 + 1, k2 = n / 2 + 7 < n ? n / 2 + 7 : n;               \
        cyr_prelu_##CS(x, y, n, 0, C, inner, w);                                           \
        cyr_prelu_##CS(x, y2, k1, 0, C, inner, w);                                         \
        cyr_prelu_##CS(x + k1, y2 + k1, k2 - k1, k1, C, inner, w);                         \
        cyr_prelu_##CS(x + k2, y2 + k2, n - k2, k2, C, inner, w);                          \
        for (Py_ssize_t i = 0; i < n && !bad; ++i) {                                       \
            const CT want = ref_leaky_##CS(x[i], w[(i / inner) % C]);                      \
            if (!same_##CS(y[i], want) || !same_##CS(y2[i], want)) {                       \
                fail_msg("prelu %s shape %d: element %ld: got %g / %g want %g", #CS, sh,   \
                         (long)i, (double)y[i], (double)y2[i], (double)want);              \
                bad = 1;                                                                   \
            }                                                                              \
        }                                                                                  \
        memcpy(y2, x, (size_t)n * sizeof(CT));                                             \
        cyr_prelu_##CS(y2, y2, n, 0, C, inner, w);                                         \
        if (!bad && memcmp(y, y2, (size_t)n * sizeof(CT)) != 0) {                          \
            fail_msg("prelu %s shape %d: in place differs", #CS, sh);                      \
            bad = 1;                                                                       \
        }                                                                                  \
        /* grad_input: out distinct, and over grad_output */                               \
        cyr_prelu_backward_##CS(g, x, y, n, 0, C, inner, w);                               \
        memcpy(y2, g, (size_t)n * sizeof(CT));                                             \
        cyr_prelu_backward_##CS(y2, x, y2, n, 0, C, inner, w);                             \
        for (Py_ssize_t i = 0; i < n && !bad; ++i) {                                       \
            const CT want = ref_leaky_bw_##CS(g[i], x[i], w[(i / inner) % C]);            \
            if (!same_##CS(y[i], want) || !same_##CS(y2[i], want)) {                       \
                fail_msg("prelu_backward %s shape %d: element %ld: got %g / %g want %g",   \
                         #CS, sh, (long)i, (double)y[i], (double)y2[i], (double)want);     \
                bad = 1;                                                                   \
            }                                                                              \
        }                                                                                  \
        /* grad_weight: the pieces in order against a double reference; the one-pass     \
         * backward gives the same sums, bit for bit, and the same grad_input */           \
        for (Py_ssize_t c = 0; c < C && !bad; ++c) {                                       \
            double sum = 0.0, ref = 0.0, mag = 0.0;                                        \
            for (Py_ssize_t p = 0; p < pieces; ++p) {                                      \
                cyr_prelu_wsum_##CS(g, x, outer, C, inner, plen, p, c, c + 1, acc);        \
                memcpy(y2, g, (size_t)n * sizeof(CT));                                     \
                cyr_prelu_backward_fused_##CS(y2, x, y2, w, outer, C, inner, plen, p, c,   \
                                              c + 1, acc2);                                \
                if (!same_f64(acc[c], acc2[c])) {                                          \
                    fail_msg("prelu fused %s shape %d: channel %ld piece %ld: %.17g vs "   \
                             "%.17g", #CS, sh, (long)c, (long)p, acc[c], acc2[c]);         \
                    bad = 1;                                                               \
                }                                                                          \
                sum += acc[c];                                                             \
            }                                                                              \
            for (Py_ssize_t o = 0; o < outer; ++o)                                         \
                for (Py_ssize_t i = 0; i < inner; ++i) {                                   \
                    const Py_ssize_t at = (o * C + c) * inner + i;                         \
                    const double t = x[at] > 0 ? 0.0 : (double)x[at] * (double)g[at];      \
                    ref += t;                                                              \
                    mag += fabs(t);                                                        \
                }                                                                          \
            if (!isfinite(ref) ? !same_f64(sum, ref) : !(fabs(sum - ref) <= 1e-12 * mag)) { \
                fail_msg("prelu grad_weight %s shape %d: channel %ld: %.17g want %.17g",   \
                         #CS, sh, (long)c, sum, ref);                                      \
                bad = 1;                                                                   \
            }                                                                              \
        }                                                                                  \
        /* the one-pass backward's grad_input, over x, for whole pieces of all channels */ \
        memcpy(y2, x, (size_t)n * sizeof(CT));                                             \
        for (Py_ssize_t p = 0; p < pieces; ++p)                                            \
            cyr_prelu_backward_fused_##CS(g, y2, y2, w, outer, C, inner, plen, p, 0, C,    \
                                          acc2);                                           \
        cyr_prelu_backward_##CS(g, x, y, n, 0, C, inner, w);                               \
        if (!bad && memcmp(y, y2, (size_t)n * sizeof(CT)) != 0) {                          \
            fail_msg("prelu fused %s shape %d: grad_input differs", #CS, sh);              \
            bad = 1;                                                                       \
        }                                                                                  \
        if (!bad) pass();                                                                  \
        free(x); free(g); free(y); free(y2); free(w); free(acc); free(acc2);               \
    }                                                                                      \
}
PRELU_CHECK(float, f32)
PRELU_CHECK(double, f64)
#undef PRELU_CHECK

/* float16: every element through the float references, rounded once */
static void check_prelu_f16(void) {
    const Py_ssize_t C = 16, inner = 1024, n = 4 * C * inner;  /* every pattern */
    cyr_half *x = xmalloc((size_t)n * sizeof(cyr_half)), *g = xmalloc((size_t)n * sizeof(cyr_half));
    cyr_half *y = xmalloc((size_t)n * sizeof(cyr_half)), *y2 = xmalloc((size_t)n * sizeof(cyr_half));
    float w[16];
    uint64_t s = 23;
    for (Py_ssize_t i = 0; i < n; ++i) {
        x[i] = (cyr_half)i;
        g[i] = (cyr_half)(rng_next(&s) & 0xffff);
    }
    for (int c = 0; c < 16; ++c) w[c] = ref_h2f(ref_f2h((float)(3.0 * rng_uniform(&s) - 1.5)));
    for (int cl = 0; cl < 2; ++cl) {  /* channels first, channels last */
        const Py_ssize_t in = cl ? 1 : inner;
        int bad = 0;
        cyr_prelu_f16(x, y, n / 2, 0, C, in, w);
        cyr_prelu_f16(x + n / 2, y + n / 2, n - n / 2, n / 2, C, in, w);
        cyr_prelu_backward_f16(g, x, y2, n, 0, C, in, w);
        for (Py_ssize_t i = 0; i < n && !bad; ++i) {
            const float a = w[(i / in) % C];
            const uint16_t want = ref_f2h(ref_leaky_f32(ref_h2f(x[i]), a));
            const uint16_t want_bw = ref_f2h(ref_leaky_bw_f32(ref_h2f(g[i]), ref_h2f(x[i]), a));
            if (!same_half(y[i], want) || !same_half(y2[i], want_bw)) {
                fail_msg("prelu f16 (%s): element %ld: x=0x%04x got 0x%04x / 0x%04x want "
                         "0x%04x / 0x%04x", cl ? "channels last" : "channels first", (long)i,
                         x[i], y[i], y2[i], want, want_bw);
                bad = 1;
            }
        }
        if (!bad) pass();
    }
    free(x); free(g); free(y); free(y2);
}
