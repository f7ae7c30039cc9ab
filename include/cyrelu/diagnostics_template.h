/* Type-generic bodies of the diagnostic counts; include only from diagnostics.h,
 * with CYR_T (the element type), CYR_SUFFIX (e.g. f32_avx2) and CYR_TARGET (the
 * instruction-set attribute, possibly empty) defined.
 *
 * Two loop shapes per predicate:
 *   channels innermost (one inner element, e.g. (N, C) with axis=1, or channels
 *   closer together in memory than the inner elements, e.g. channels-last data):
 *   for each (outer, inner) pair, one pass along the channels, acc[c] += p(v);
 *   otherwise: for each (outer, channel) pair, one run of inner elements.
 * Unit strides get their own loops, which the compiler vectorises.
 * Entry point: cyr_diag_count_S(op, x, so, sc, si, o0, o1, c0, c1, i0, i1, t, acc),
 * one per (type, ISA); diagnostics.h picks the ISA.
 */

/* ---- the predicate for one element ------------------------------------------- */
#if CYR_IS_HALF
/* float16, on the bits: zero is +-0 (exponent and mantissa bits clear); v <= t for a
 * non-NaN v is an integer comparison of order keys (half.h: cyr_half_key).  For float16
 * the loops below carry, in place of the threshold t, the key of the largest half <= t
 * (an integer of at most 15 bits, exact in float), computed once in diag_count. */
CYR_INLINE CYR_TARGET unsigned int CYR_NAME(diag_zeros_elem)(cyr_half v, float t) { (void)t; return (v & 0x7FFFu) == 0; }
CYR_INLINE CYR_TARGET unsigned int CYR_NAME(diag_alive_elem)(cyr_half v, float t) {
    const int16_t m = (int16_t)(v & 0x7FFF), tk = (int16_t)t;
    const int16_t key = (int16_t)((v & 0x8000u) ? -m : m);
    return (unsigned int)((m > 0x7C00) | (key > tk));
}
#else
CYR_INLINE CYR_TARGET unsigned int CYR_NAME(diag_zeros_elem)(CYR_T v, CYR_C t) { (void)t; return v == (CYR_T)0; }
CYR_INLINE CYR_TARGET unsigned int CYR_NAME(diag_alive_elem)(CYR_T v, CYR_C t) { return !(v <= t); }
#endif

/* ---- loops -------------------------------------------------------------------- */
#define CYR_DIAG_LOOPS(pred)                                                                   \
/* number of the n elements at x (byte stride s) that satisfy the predicate; counted in      \
 * 32-bit blocks, which vectorise twice as wide as 64-bit counters */                        \
CYR_INLINE CYR_TARGET Py_ssize_t CYR_NAME(diag_##pred##_run)(const char *x, Py_ssize_t s, Py_ssize_t n,   \
                                                  CYR_C t) {                                   \
    Py_ssize_t count = 0;                                                                      \
    for (Py_ssize_t b = 0; b < n; b += CYR_DIAG_BLOCK) {                                       \
        const Py_ssize_t m = n - b < CYR_DIAG_BLOCK ? n - b : CYR_DIAG_BLOCK;                  \
        unsigned int k = 0;                                                                    \
        if (s == (Py_ssize_t)sizeof(CYR_T)) {                                                  \
            const CYR_T *CYR_RESTRICT p = (const CYR_T *)x + b;                                \
            if (CYR_IS_HALF) {                                                                 \
                /* 16-bit data, 16-bit counters (twice the lanes), in blocks they cannot      \
                 * overflow */                                                                 \
                for (Py_ssize_t i0 = 0; i0 < m; i0 += 65535) {                                 \
                    const Py_ssize_t e = m - i0 < 65535 ? m : i0 + 65535;                      \
                    unsigned short k16 = 0;                                                    \
                    for (Py_ssize_t i = i0; i < e; ++i)                                        \
                        k16 += (unsigned short)CYR_NAME(diag_##pred##_elem)(p[i], t);          \
                    k += k16;                                                                  \
                }                                                                              \
            } else {                                                                           \
                for (Py_ssize_t i = 0; i < m; ++i) k += CYR_NAME(diag_##pred##_elem)(p[i], t); \
            }                                                                                  \
        } else {                                                                               \
            const char *q = x + b * s;                                                         \
            for (Py_ssize_t i = 0; i < m; ++i)                                                 \
                k += CYR_NAME(diag_##pred##_elem)(*(const CYR_T *)(q + i * s), t);             \
        }                                                                                      \
        count += k;                                                                            \
    }                                                                                          \
    return count;                                                                              \
}                                                                                              \
/* acc[c] += count over the sub-box; channels innermost when they are the closest in         \
 * memory (or there is a single inner element), else one run per (outer, channel) */         \
CYR_INLINE CYR_TARGET void CYR_NAME(diag_##pred)(const char *x, Py_ssize_t so, Py_ssize_t sc,             \
                                      Py_ssize_t si, Py_ssize_t o0, Py_ssize_t o1,             \
                                      Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t i0,             \
                                      Py_ssize_t i1, CYR_C t, Py_ssize_t *CYR_RESTRICT acc) {  \
    if (i1 - i0 == 1 || (sc < 0 ? -sc : sc) < (si < 0 ? -si : si)) {                           \
        /* tiles of channels counted in 32-bit counters, added to acc when full or done */     \
        unsigned int tile[CYR_DIAG_TILE];                                                      \
        for (Py_ssize_t cb = c0; cb < c1; cb += CYR_DIAG_TILE) {                               \
            const Py_ssize_t w = c1 - cb < CYR_DIAG_TILE ? c1 - cb : CYR_DIAG_TILE;            \
            Py_ssize_t rows = 0;                                                               \
            for (Py_ssize_t c = 0; c < w; ++c) tile[c] = 0;                                    \
            for (Py_ssize_t o = o0; o < o1; ++o) {                                             \
                for (Py_ssize_t i = i0; i < i1; ++i) {                                         \
                    const char *row = x + o * so + i * si + cb * sc;                           \
                    if (sc == (Py_ssize_t)sizeof(CYR_T)) {                                     \
                        const CYR_T *CYR_RESTRICT p = (const CYR_T *)row;                      \
                        for (Py_ssize_t c = 0; c < w; ++c)                                     \
                            tile[c] += CYR_NAME(diag_##pred##_elem)(p[c], t);                  \
                    } else {                                                                   \
                        for (Py_ssize_t c = 0; c < w; ++c)                                     \
                            tile[c] += CYR_NAME(diag_##pred##_elem)(                           \
                                *(const CYR_T *)(row + c * sc), t);                            \
                    }                                                                          \
                    if (++rows == CYR_DIAG_BLOCK) {                                            \
                        for (Py_ssize_t c = 0; c < w; ++c) { acc[cb + c] += tile[c]; tile[c] = 0; }\
                        rows = 0;                                                              \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            for (Py_ssize_t c = 0; c < w; ++c) acc[cb + c] += tile[c];                         \
        }                                                                                      \
    } else {                                                                                   \
        for (Py_ssize_t o = o0; o < o1; ++o)                                                   \
            for (Py_ssize_t c = c0; c < c1; ++c)                                               \
                acc[c] += CYR_NAME(diag_##pred##_run)(x + o * so + c * sc + i0 * si, si,       \
                                                      i1 - i0, t);                             \
    }                                                                                          \
}

CYR_DIAG_LOOPS(zeros)
CYR_DIAG_LOOPS(alive)

#undef CYR_DIAG_LOOPS

/* ---- entry point: pick the predicate ------------------------------------------ */
CYR_INLINE CYR_TARGET void CYR_NAME(diag_count)(int op, const char *x, Py_ssize_t so, Py_ssize_t sc,
                                     Py_ssize_t si, Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t c0,
                                     Py_ssize_t c1, Py_ssize_t i0, Py_ssize_t i1, CYR_C t,
                                     Py_ssize_t *acc) {
#if CYR_IS_HALF
    t = (float)cyr_half_key_at_most(t);
#endif
    if (op == CYR_DIAG_ZEROS) CYR_NAME(diag_zeros)(x, so, sc, si, o0, o1, c0, c1, i0, i1, t, acc);
    else CYR_NAME(diag_alive)(x, so, sc, si, o0, o1, c0, c1, i0, i1, t, acc);
}
