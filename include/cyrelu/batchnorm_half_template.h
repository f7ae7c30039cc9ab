/* float16 storage for the BatchNorm kernels: the half copy of batchnorm_template.h,
 * included from it when CYR_IS_HALF (CYR_T = cyr_half, arithmetic in float: CYR_C).
 *
 * Every kernel keeps the float kernel's outer structure (channels, chunks of rows, row
 * groups and blocks, streaming), and runs the float copy of the same instruction set
 * (CYR_F32) on tiles converted to float in L1 buffers (half.h, exact), rounding the
 * outputs once back to half.  The result is bitwise what the float kernel gives on the
 * data converted to float32, rounded to half:
 *   - per-channel reductions are fed row by row in pieces of CYR_HALF_TILE elements, a
 *     multiple of CYR_BN_LANES, so every element joins the same lane, and each row's
 *     last few elements the same tail, as in one float run;
 *   - the row layout's column statistics and sums are per column, in row order, four
 *     rows per sweep: tiles of whole columns and a multiple of 4 rows add the same
 *     values in the same order;
 *   - chunk sizes (slabs reduced in pieces) are computed with sizeof(float), as the
 *     float kernel on float32 data does;
 *   - the per-channel and per-column parameters (scale, shift, mean, k, ...) are float.
 * Scratch is bounded: a few tiles on the stack, whatever the shape.
 */

#define CYR_BN_HT CYR_HALF_TILE
/* bytes per element */
#define CYR_BN_HB ((Py_ssize_t)sizeof(cyr_half))
/* Row layout: elements per converted tile (rows x columns). */
#define CYR_BN_HRT 1024

/* The reductions of one run read straight from half data in the AVX2 and AVX-512
 * copies: 8 halves converted (vcvtph2ps, exact) and widened to double in vector
 * registers, each lane taking the elements the float kernel's lane takes (lane k:
 * element i + k of each group of 16), with the same operations, so the sums are bitwise
 * the float kernel's.  (Through a float tile, gcc left the float kernel's lanes in
 * scalar registers here.)  So do the elementwise passes, but for the smooth
 * activations, whose math is not written on vectors: they go through float tiles,
 * where the float kernel vectorises them.  The baseline copy runs the float kernel on
 * converted tiles.  Measured on Zen 4 (2 threads), (32, 64, 56, 56) NCHW float16, the
 * AVX-512 copy before and after it took this path, alternating runs: training forward
 * 2.7-3.6 -> 1.5-1.6 ms, inference 0.50-0.83 -> 0.29-0.30 ms, backward 2.7-3.5 ->
 * 1.9-2.4 ms. */
#if CYR_ISA_ID >= 1
#define CYR_BN_H8(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define CYR_BN_LO(f) _mm256_cvtps_pd(_mm256_castps256_ps128(f))
#define CYR_BN_HI(f) _mm256_cvtps_pd(_mm256_extractf128_ps((f), 1))

/* acc += x[0:n] (bn_sum_acc) */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_hsum_acc)(const cyr_half *x, Py_ssize_t n, double *acc,
                                                   double *tail) {
    Py_ssize_t i = 0;
    if (n >= CYR_BN_LANES) {
        __m256d a0 = _mm256_loadu_pd(acc), a1 = _mm256_loadu_pd(acc + 4);
        __m256d a2 = _mm256_loadu_pd(acc + 8), a3 = _mm256_loadu_pd(acc + 12);
        for (; i + CYR_BN_LANES <= n; i += CYR_BN_LANES) {
            const __m256 f0 = CYR_BN_H8(x + i), f1 = CYR_BN_H8(x + i + 8);
            CYR_BN_PREFETCH(x + i + 2 * CYR_BN_PREFETCH_AHEAD);
            a0 = _mm256_add_pd(a0, CYR_BN_LO(f0));
            a1 = _mm256_add_pd(a1, CYR_BN_HI(f0));
            a2 = _mm256_add_pd(a2, CYR_BN_LO(f1));
            a3 = _mm256_add_pd(a3, CYR_BN_HI(f1));
        }
        _mm256_storeu_pd(acc, a0);
        _mm256_storeu_pd(acc + 4, a1);
        _mm256_storeu_pd(acc + 8, a2);
        _mm256_storeu_pd(acc + 12, a3);
    }
    for (; i < n; ++i) *tail += (double)cyr_h2f_scalar(x[i]);
}

/* s1 += x[0:n] - k, s2 += (x[0:n] - k)**2, t: their tails (bn_shift_acc, sq) */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_hshift_acc)(const cyr_half *x, Py_ssize_t n, double k,
                                                     double *s1, double *s2, double *t) {
    Py_ssize_t i = 0;
    if (n >= CYR_BN_LANES) {
        const __m256d kv = _mm256_set1_pd(k);
        __m256d a0 = _mm256_loadu_pd(s1), a1 = _mm256_loadu_pd(s1 + 4);
        __m256d a2 = _mm256_loadu_pd(s1 + 8), a3 = _mm256_loadu_pd(s1 + 12);
        __m256d b0 = _mm256_loadu_pd(s2), b1 = _mm256_loadu_pd(s2 + 4);
        __m256d b2 = _mm256_loadu_pd(s2 + 8), b3 = _mm256_loadu_pd(s2 + 12);
        for (; i + CYR_BN_LANES <= n; i += CYR_BN_LANES) {
            const __m256 f0 = CYR_BN_H8(x + i), f1 = CYR_BN_H8(x + i + 8);
            CYR_BN_PREFETCH(x + i + 2 * CYR_BN_PREFETCH_AHEAD);
            const __m256d d0 = _mm256_sub_pd(CYR_BN_LO(f0), kv);
            const __m256d d1 = _mm256_sub_pd(CYR_BN_HI(f0), kv);
            const __m256d d2 = _mm256_sub_pd(CYR_BN_LO(f1), kv);
            const __m256d d3 = _mm256_sub_pd(CYR_BN_HI(f1), kv);
            a0 = cyr_vd_add_on_fma_avx2(a0, d0);
            a1 = cyr_vd_add_on_fma_avx2(a1, d1);
            a2 = cyr_vd_add_on_fma_avx2(a2, d2);
            a3 = cyr_vd_add_on_fma_avx2(a3, d3);
            b0 = _mm256_add_pd(b0, _mm256_mul_pd(d0, d0));
            b1 = _mm256_add_pd(b1, _mm256_mul_pd(d1, d1));
            b2 = _mm256_add_pd(b2, _mm256_mul_pd(d2, d2));
            b3 = _mm256_add_pd(b3, _mm256_mul_pd(d3, d3));
        }
        _mm256_storeu_pd(s1, a0);
        _mm256_storeu_pd(s1 + 4, a1);
        _mm256_storeu_pd(s1 + 8, a2);
        _mm256_storeu_pd(s1 + 12, a3);
        _mm256_storeu_pd(s2, b0);
        _mm256_storeu_pd(s2 + 4, b1);
        _mm256_storeu_pd(s2 + 8, b2);
        _mm256_storeu_pd(s2 + 12, b3);
    }
    for (; i < n; ++i) {
        const double d = (double)cyr_h2f_scalar(x[i]) - k;
        t[0] += d;
        t[1] += d * d;
    }
}

/* The table's math on 8 lanes of float (activation_math.h), as the float kernels
 * compute it: ordered compares, so NaN takes the scalar code's branch. */
#pragma push_macro("CYR_SEL")
#pragma push_macro("CYR_SELV")
#pragma push_macro("CYR_K")
#pragma push_macro("CYR_MUL")
#pragma push_macro("CYR_ADD")
#pragma push_macro("CYR_DIV")
#pragma push_macro("CYR_SPECIAL")
#undef CYR_SPECIAL
#undef CYR_SEL
#undef CYR_SELV
#undef CYR_K
#undef CYR_MUL
#undef CYR_ADD
#undef CYR_DIV
#define CYR_K(c) _mm256_set1_ps((float)(c))
#define CYR_SEL(CMP, x, c, t, f) _mm256_blendv_ps((f), (t), _mm256_cmp_ps((x), CYR_K(c), _CMP_##CMP##_OQ))
#define CYR_SELV(CMP, x, y, t, f) _mm256_blendv_ps((f), (t), _mm256_cmp_ps((x), (y), _CMP_##CMP##_OQ))
#define CYR_MUL(a, b) _mm256_mul_ps((a), (b))
#define CYR_ADD(a, b) _mm256_add_ps((a), (b))
#define CYR_DIV(a, b) _mm256_div_ps((a), (b))
/* Never evaluated (as in activations_template.h): bn_affine_run sends the activations
 * computed by activation_special.h to the float tiles before the direct path, so their
 * cases below are dead code; NaN, should one be missing from its check. */
#define CYR_SPECIAL(fn, v, a, b) _mm256_add_ps((v), _mm256_set1_ps(__builtin_nanf("")))

/* dy gated by the fused activation at y * sc + sh (bn_gate). */
#define CYR_BN_H_CASE_(name, NAME) \
    case CYR_ACT_##NAME:                                                                   \
        return CYR_BWD_##name(g, _mm256_add_ps(_mm256_mul_ps(CYR_BN_H8(y), sc), sh), a, b);
CYR_BN_INLINE CYR_TARGET __m256 CYR_NAME(bn_hgate8)(int act, __m256 g, const cyr_half *y, __m256 sc,
                                                   __m256 sh, __m256 a, __m256 b) {
    switch (act) {
    CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_H_CASE_)
    default: return g;
    }
}
#undef CYR_BN_H_CASE_

/* s0 += g, s1 += g * (x - mean) (bn_dot_acc_impl); tails in t[0], t[1]. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_hdot_acc_impl)(int act, const cyr_half *dy,
                                                        const cyr_half *x, const cyr_half *y,
                                                        Py_ssize_t n, double mean, CYR_BN_GATEP a,
                                                        double *s0, double *s1, double *t) {
    Py_ssize_t i = 0;
    if (n >= CYR_BN_LANES) {
        __m256d av[4], bv[4];
        const __m256d m = _mm256_set1_pd(mean);
        const __m256 a8 = _mm256_set1_ps(a.a), b8 = _mm256_set1_ps(a.b);
        const __m256 sc8 = _mm256_set1_ps(a.sc[0]), sh8 = _mm256_set1_ps(a.sh[0]);
        for (int q = 0; q < 4; ++q) {
            av[q] = _mm256_loadu_pd(s0 + 4 * q);
            bv[q] = _mm256_loadu_pd(s1 + 4 * q);
        }
        for (; i + CYR_BN_LANES <= n; i += CYR_BN_LANES) {
            for (int h = 0; h < 2; ++h) {
                const __m256 g = CYR_NAME(bn_hgate8)(act, CYR_BN_H8(dy + i + 8 * h),
                                                     y ? y + i + 8 * h : NULL, sc8, sh8, a8,
                                                     b8);
                const __m256 xf = CYR_BN_H8(x + i + 8 * h);
                const __m256d g0 = CYR_BN_LO(g), g1 = CYR_BN_HI(g);
                av[2 * h] = cyr_vd_add_on_fma_avx2(av[2 * h], g0);
                av[2 * h + 1] = cyr_vd_add_on_fma_avx2(av[2 * h + 1], g1);
                bv[2 * h] = _mm256_add_pd(bv[2 * h], _mm256_mul_pd(g0, _mm256_sub_pd(CYR_BN_LO(xf), m)));
                bv[2 * h + 1] = _mm256_add_pd(bv[2 * h + 1],
                                              _mm256_mul_pd(g1, _mm256_sub_pd(CYR_BN_HI(xf), m)));
            }
        }
        for (int q = 0; q < 4; ++q) {
            _mm256_storeu_pd(s0 + 4 * q, av[q]);
            _mm256_storeu_pd(s1 + 4 * q, bv[q]);
        }
    }
    for (; i < n; ++i) {
        const float gv = cyr_h2f_scalar(dy[i]);
        float gf = gv;
        switch (act) {
#define CYR_BN_T_CASE_(name, NAME) \
        case CYR_ACT_##NAME:                                                                   \
            gf = CYR_F32(name##_backward_elem)(gv, cyr_h2f_scalar(y[i]) * a.sc[0] + a.sh[0],  \
                                               a.a, a.b);                                      \
            break;
        CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_T_CASE_)
#undef CYR_BN_T_CASE_
        default: break;
        }
        const double g = (double)gf;
        t[0] += g;
        t[1] += g * ((double)cyr_h2f_scalar(x[i]) - mean);
    }
}

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_hdot_acc)(int act, const cyr_half *dy, const cyr_half *x,
                                                   const cyr_half *y, Py_ssize_t n, double mean,
                                                   CYR_BN_GATEP a, double *s0, double *s1, double *t) {
    switch (act) {
#define CYR_BN_CALL(ACT) CYR_NAME(bn_hdot_acc_impl)(ACT, dy, x, y, n, mean, a, s0, s1, t)
    CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_CASE_)
    default: CYR_BN_CALL(CYR_ACT_NONE); break;
#undef CYR_BN_CALL
    }
}
/* The elementwise passes, 8 elements at a time, in float as the float kernel computes
 * them (no fused multiply-add), rounded to half (vcvtps2ph, round to nearest even).
 * Elements [0, n8) with n8 a multiple of 8; dst 16-byte aligned when stream. */
#define CYR_BN_H_CASE_(name, NAME) \
    case CYR_ACT_##NAME: return CYR_FWD_##name(v, a, b);
CYR_BN_INLINE CYR_TARGET __m256 CYR_NAME(bn_hact8)(int act, __m256 v, __m256 a, __m256 b) {
    switch (act) {
    CYR_BN_FORWARD_ACTIVATIONS(CYR_BN_H_CASE_)
    default: return v;
    }
}
#undef CYR_BN_H_CASE_
#undef CYR_SEL
#undef CYR_SELV
#undef CYR_K
#undef CYR_MUL
#undef CYR_ADD
#undef CYR_DIV
#undef CYR_SPECIAL
#pragma pop_macro("CYR_SPECIAL")
#pragma pop_macro("CYR_SEL")
#pragma pop_macro("CYR_SELV")
#pragma pop_macro("CYR_K")
#pragma pop_macro("CYR_MUL")
#pragma pop_macro("CYR_ADD")
#pragma pop_macro("CYR_DIV")

#define CYR_BN_PUT8(dst, v, stream)                                                         \
    do {                                                                                   \
        const __m128i h_ = _mm256_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT);                 \
        if (stream) _mm_stream_si128((__m128i *)(dst), h_);                                \
        else _mm_storeu_si128((__m128i *)(dst), h_);                                       \
    } while (0)

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_haffine8_impl)(int act, const cyr_half *x, cyr_half *y,
                                                        Py_ssize_t n8, float scale, float shift,
                                                        CYR_BN_PAR a, int stream) {
    const __m256 sc = _mm256_set1_ps(scale), sh = _mm256_set1_ps(shift);
    const __m256 a8 = _mm256_set1_ps(a.a), b8 = _mm256_set1_ps(a.b);
    for (Py_ssize_t i = 0; i < n8; i += 8) {
        const __m256 v = _mm256_add_ps(_mm256_mul_ps(CYR_BN_H8(x + i), sc), sh);
        CYR_BN_PUT8(y + i, CYR_NAME(bn_hact8)(act, v, a8, b8), stream);
    }
}

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_haffine8)(int act, const cyr_half *x, cyr_half *y,
                                                   Py_ssize_t n8, float scale, float shift,
                                                   CYR_BN_PAR a, int stream) {
    switch (act) {
#define CYR_BN_CALL(ACT) CYR_NAME(bn_haffine8_impl)(ACT, x, y, n8, scale, shift, a, stream)
    CYR_BN_FORWARD_ACTIVATIONS(CYR_BN_FCASE_)
    default: CYR_BN_CALL(CYR_ACT_NONE); break;
#undef CYR_BN_CALL
    }
}

/* training: dx = (g - (x - mean) * k - mdy) * A;  eval: dx = g * A (bn_dx_impl). */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_hdx8_impl)(int act, int train, const cyr_half *dy,
                                                    const cyr_half *x, const cyr_half *y,
                                                    cyr_half *dx, Py_ssize_t n8, float mean,
                                                    float k, float mdy, float A, CYR_BN_GATEP a,
                                                    int stream) {
    const __m256 m = _mm256_set1_ps(mean), kk = _mm256_set1_ps(k), md = _mm256_set1_ps(mdy);
    const __m256 AA = _mm256_set1_ps(A), a8 = _mm256_set1_ps(a.a), b8 = _mm256_set1_ps(a.b);
    const __m256 sc8 = _mm256_set1_ps(a.sc[0]), sh8 = _mm256_set1_ps(a.sh[0]);
    for (Py_ssize_t i = 0; i < n8; i += 8) {
        const __m256 g =
            CYR_NAME(bn_hgate8)(act, CYR_BN_H8(dy + i), y ? y + i : NULL, sc8, sh8, a8, b8);
        __m256 v;
        if (train)
            v = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(g, _mm256_mul_ps(
                    _mm256_sub_ps(CYR_BN_H8(x + i), m), kk)), md), AA);
        else
            v = _mm256_mul_ps(g, AA);
        CYR_BN_PUT8(dx + i, v, stream);
    }
}

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_hdx8)(int act, int train, const cyr_half *dy,
                                               const cyr_half *x, const cyr_half *y, cyr_half *dx,
                                               Py_ssize_t n8, float mean, float k, float mdy,
                                               float A, CYR_BN_GATEP a, int stream) {
    switch (act * 2 + (train != 0)) {
#define CYR_BN_CALL(ACT, TRAIN) CYR_NAME(bn_hdx8_impl)(ACT, TRAIN, dy, x, y, dx, n8, mean, k, mdy, A, a, stream)
    CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_CASE2_)
    case 1: CYR_BN_CALL(CYR_ACT_NONE, 1); break;
    default: CYR_BN_CALL(CYR_ACT_NONE, 0); break;
#undef CYR_BN_CALL
    }
}
#undef CYR_BN_PUT8

#undef CYR_BN_H8
#undef CYR_BN_LO
#undef CYR_BN_HI
#define CYR_BN_HALF_DIRECT 1
#else
#define CYR_BN_HALF_DIRECT 0
#endif

/* ---- per-channel layout ------------------------------------------------------------ */

/* y[0:n] = act(x * scale + shift), through float tiles; y may be exactly x.  With
 * stream (y distinct from x), the head up to y's 64-byte boundary is written as usual,
 * then whole tiles are rounded into an aligned half tile and streamed out.  The caller
 * fences (cyr_stream_fence) when done. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_affine_run)(int act, const cyr_half *x, cyr_half *y,
                                                     Py_ssize_t n, float scale, float shift,
                                                     CYR_BN_PAR a, int stream) {
    CYR_ALIGN64 float t[CYR_BN_HT];
    Py_ssize_t i = 0;
#if CYR_BN_HALF_DIRECT
    if (!CYR_NAME(is_special)(act)) {
        /* the head to y's 64-byte boundary when streaming, then groups of 8 */
        const Py_ssize_t head = !stream ? 0 : CYR_BN_HEAD_N(y, cyr_half) < n
                                                 ? CYR_BN_HEAD_N(y, cyr_half) : n;
        CYR_ISA_FN(h2f)(x, t, head);
        CYR_F32(bn_affine)(act, t, t, head, scale, shift, a);
        CYR_ISA_FN(f2h)(t, y, head);
        i = head + (n - head) / 8 * 8;
        CYR_NAME(bn_haffine8)(act, x + head, y + head, i - head, scale, shift, a, stream);
        stream = 0;
    }
#endif
#if CYR_HAVE_STREAM
    if (stream) {
        const Py_ssize_t head = CYR_BN_HEAD_N(y, cyr_half) < n ? CYR_BN_HEAD_N(y, cyr_half) : n;
        CYR_ISA_FN(h2f)(x, t, head);
        CYR_F32(bn_affine)(act, t, t, head, scale, shift, a);
        CYR_ISA_FN(f2h)(t, y, head);
        for (i = head; i + CYR_BN_HT <= n; i += CYR_BN_HT) {
            CYR_ISA_FN(h2f)(x + i, t, CYR_BN_HT);
            CYR_F32(bn_affine)(act, t, t, CYR_BN_HT, scale, shift, a);
            CYR_ISA_FN(f2h_out)(t, y + i, CYR_BN_HT, 1);
        }
    }
#endif
    (void)stream;
    for (; i < n; i += CYR_BN_HT) {
        const Py_ssize_t m = n - i < CYR_BN_HT ? n - i : CYR_BN_HT;
        CYR_ISA_FN(h2f)(x + i, t, m);
        CYR_F32(bn_affine)(act, t, t, m, scale, shift, a);
        CYR_ISA_FN(f2h)(t, y + i, m);
    }
}

/* The float kernel's bn_channel_chunk_stats on the converted rows [o0, o1) of a
 * channel (x at the channel's first row): the same shift (the first rows' mean,
 * bn_chan_shift_begin) and the same shifted sums, one read. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_channel_chunk_stats)(const cyr_half *x, Py_ssize_t step,
                                                              Py_ssize_t inner, Py_ssize_t o0,
                                                              Py_ssize_t o1, int prefetch,
                                                              double *mean_out, double *m2_out) {
    const Py_ssize_t row_bytes = inner * (Py_ssize_t)sizeof(cyr_half);
    const Py_ssize_t rk = CYR_BN_SHIFT_ROWS(o1 - o0);  /* the shift's rows, */
    const Py_ssize_t ek = cyr_bn_shift_cols(o1 - o0, inner);  /* of each the first ek */
    CYR_ALIGN64 float t[CYR_BN_HT];
    double s[CYR_BN_CARRY] = {0}, h[CYR_BN_LANES + 1] = {0}, k;
    double *s2 = s + CYR_BN_LANES, *st = s + CYR_BN_SH_TAIL;
    Py_ssize_t o, i, m;
    for (o = o0; o < o0 + rk; ++o) {
#if CYR_BN_HALF_DIRECT
        CYR_NAME(bn_hsum_acc)(x + o * step, ek, h, h + CYR_BN_LANES);
#else
        for (i = 0; i < ek; i += CYR_BN_HT) {
            m = ek - i < CYR_BN_HT ? ek - i : CYR_BN_HT;
            CYR_ISA_FN(h2f)(x + o * step + i, t, m);
            CYR_F32(bn_sum_acc)(t, m, h, h + CYR_BN_LANES);
        }
#endif
    }
    k = cyr_bn_shift_of(h, (double)rk * (double)ek);
    s[CYR_BN_SH_K] = k;
    for (o = o0; o < o1; ++o) {
        const cyr_half *xr = x + o * step;
        const int paced = cyr_bn_paces(prefetch, o, o1);  /* batchnorm.h */
        if (prefetch && o + CYR_BN_PREFETCH_ROWS < o1)
            cyr_bn_prefetch_run(x + (o + CYR_BN_PREFETCH_ROWS) * step, row_bytes);
#if CYR_BN_HALF_DIRECT
        for (i = 0; i < inner; i = m) {  /* m: the end of the piece */
            m = paced ? CYR_BN_PACE_END(i, inner, cyr_half) : inner;
            if (paced) cyr_bn_prefetch_run(xr + step + i, (m - i) * CYR_BN_HB);
            CYR_NAME(bn_hshift_acc)(xr + i, m - i, k, s, s2, st);
        }
        (void)t;
#else
        for (i = 0; i < inner; i += CYR_BN_HT) {
            m = inner - i < CYR_BN_HT ? inner - i : CYR_BN_HT;
            if (paced) cyr_bn_prefetch_run(xr + step + i, m * CYR_BN_HB);
            CYR_ISA_FN(h2f)(xr + i, t, m);
            CYR_F32(bn_shift_acc)(t, m, k, 1, s, s2, st);
        }
#endif
    }
    cyr_bn_shift_done(s, (double)(o1 - o0) * (double)inner, mean_out, m2_out);
}

/* bn_channel_stats (batchnorm_template.h) for half data: the same chunks (sized for
 * float rows) and the same merges. */
static CYR_TARGET void CYR_NAME(bn_channel_stats)(const cyr_half *x, Py_ssize_t outer,
                                                  Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c,
                                                  double *mean_out, double *m2_out) {
    const Py_ssize_t step = C * inner;
    const Py_ssize_t row_bytes_f = inner * (Py_ssize_t)sizeof(float);
    const Py_ssize_t slab_bytes = cyr_slab_bytes();
    const Py_ssize_t chunk = row_bytes_f >= slab_bytes ? 1 : slab_bytes / row_bytes_f;
    const int prefetch = cyr_bn_wants_prefetch(inner * (Py_ssize_t)sizeof(cyr_half));
    double mean, m2, na;
    Py_ssize_t o;
    x += c * inner;
    CYR_NAME(bn_channel_chunk_stats)(x, step, inner, 0, outer < chunk ? outer : chunk, prefetch,
                                     &mean, &m2);
    na = (double)(outer < chunk ? outer : chunk) * (double)inner;
    for (o = chunk; o < outer; o += chunk) {
        const Py_ssize_t o1 = outer - o < chunk ? outer : o + chunk;
        double mb, m2b;
        CYR_NAME(bn_channel_chunk_stats)(x, step, inner, o, o1, prefetch, &mb, &m2b);
        cyr_bn_chan_merge(na, &mean, &m2, (double)(o1 - o) * (double)inner, &mb, &m2b, 1);
        na += (double)(o1 - o) * (double)inner;
    }
    *mean_out = mean;
    *m2_out = m2;
}

/* bn_train_channel (batchnorm_template.h) for half data: the statistics of
 * bn_channel_stats, the same scale and shift. */
static CYR_TARGET void CYR_NAME(bn_train_channel)(const cyr_half *x, cyr_half *y,
                                                  Py_ssize_t outer, Py_ssize_t C,
                                                  Py_ssize_t inner, Py_ssize_t c, double w,
                                                  double b, double eps, int act, CYR_BN_PAR a,
                                                  int stream, double *mean_out,
                                                  double *var_out) {
    const Py_ssize_t step = C * inner;
    const int st = stream && (const cyr_half *)y != x;
    double mean, m2, var, invstd, scale;
    float sc, sh;
    Py_ssize_t o;
    CYR_NAME(bn_channel_stats)(x, outer, C, inner, c, &mean, &m2);
    x += c * inner;
    y += c * inner;
    var = m2 / ((double)outer * (double)inner);
    invstd = 1.0 / sqrt(var + eps);
    scale = w * invstd;
    sc = (float)scale;
    sh = (float)(b - mean * scale);
    for (o = 0; o < outer; ++o) {
        if (!st && o + CYR_BN_PREFETCH_ROWS < outer)  /* the output lines, for writing */
            cyr_bn_prefetchw_run(y + (o + CYR_BN_PREFETCH_ROWS) * step,
                                 inner * (Py_ssize_t)sizeof(cyr_half));
        CYR_NAME(bn_affine_run)(act, x + o * step, y + o * step, inner, sc, sh, a, st);
    }
#if CYR_HAVE_STREAM
    if (st) cyr_stream_fence();
#endif
    *mean_out = mean;
    *var_out = var;
}

/* y = act(x * scale[c] + shift[c]) for the rows [r0, r1) of the (outer * C) rows of
 * length inner (row r belongs to channel r % C); y may be exactly x. */
static CYR_TARGET void CYR_NAME(bn_affine_chan_rows)(int act, const cyr_half *x, cyr_half *y,
                                                     Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t C,
                                                     Py_ssize_t inner, const float *scale,
                                                     const float *shift, CYR_BN_PAR a, int stream) {
    const int st = stream && (const cyr_half *)y != x;
    for (Py_ssize_t r = r0; r < r1; ++r) {
        const Py_ssize_t c = r % C;
        CYR_NAME(bn_affine_run)(act, x + r * inner, y + r * inner, inner, scale[c], shift[c],
                                a, st);
    }
#if CYR_HAVE_STREAM
    if (st) cyr_stream_fence();
#endif
}

/* Pass 1 of the backward over channel c (bn_channel_dot): each row fed in tiles. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_channel_dot)(const cyr_half *dy, const cyr_half *x,
                                                      const cyr_half *y, Py_ssize_t outer,
                                                      Py_ssize_t C, Py_ssize_t inner,
                                                      Py_ssize_t c, double mean, int act,
                                                      CYR_BN_GATEP a, double *sums) {
    const Py_ssize_t step = C * inner;
    const Py_ssize_t bytes = inner * (Py_ssize_t)sizeof(cyr_half);
    const int prefetch = cyr_bn_wants_prefetch(bytes);
    const Py_ssize_t pd = CYR_BN_PREFETCH_ROWS * step;
    CYR_ALIGN64 float gt[CYR_BN_HT];
    CYR_ALIGN64 float xt[CYR_BN_HT];
    CYR_ALIGN64 float yt[CYR_BN_HT];
    double s0[CYR_BN_LANES] = {0}, s1[CYR_BN_LANES] = {0}, t[2] = {0.0, 0.0};
    for (Py_ssize_t o = 0; o < outer; ++o) {
        const Py_ssize_t off = o * step + c * inner;
        const int paced = cyr_bn_paces(prefetch, o, outer);  /* batchnorm.h */
        if (prefetch && o + CYR_BN_PREFETCH_ROWS < outer) {
            cyr_bn_prefetch_run(dy + off + pd, bytes);
            cyr_bn_prefetch_run(x + off + pd, bytes);
            if (y && y != x) cyr_bn_prefetch_run(y + off + pd, bytes);
        }
#if CYR_BN_HALF_DIRECT
        if (!CYR_BN_IS_TILED_BW(act)) {  /* those go through the float kernels' tiles */
            for (Py_ssize_t i = 0, e; i < inner; i = e) {
                e = paced ? CYR_BN_PACE_END(i, inner, cyr_half) : inner;
                if (paced) {  /* the next row's piece (batchnorm.h) */
                    cyr_bn_prefetch_run(dy + off + step + i, (e - i) * CYR_BN_HB);
                    cyr_bn_prefetch_run(x + off + step + i, (e - i) * CYR_BN_HB);
                    if (y && y != x) cyr_bn_prefetch_run(y + off + step + i, (e - i) * CYR_BN_HB);
                }
                CYR_NAME(bn_hdot_acc)(act, dy + off + i, x + off + i, y ? y + off + i : NULL,
                                      e - i, mean, a, s0, s1, t);
            }
            continue;
        }
#endif
        for (Py_ssize_t i = 0; i < inner; i += CYR_BN_HT) {
            const Py_ssize_t m = inner - i < CYR_BN_HT ? inner - i : CYR_BN_HT;
            if (paced) {  /* the next row's tile (batchnorm.h) */
                cyr_bn_prefetch_run(dy + off + step + i, m * CYR_BN_HB);
                cyr_bn_prefetch_run(x + off + step + i, m * CYR_BN_HB);
                if (y && y != x) cyr_bn_prefetch_run(y + off + step + i, m * CYR_BN_HB);
            }
            CYR_ISA_FN(h2f)(dy + off + i, gt, m);
            CYR_ISA_FN(h2f)(x + off + i, xt, m);
            if (y) CYR_ISA_FN(h2f)(y + off + i, yt, m);
            CYR_F32(bn_dot_acc)(act, gt, xt, y ? yt : NULL, m, mean, a, s0, s1, t);
        }
    }
    sums[0] = cyr_bn_lanes_total(s0) + t[0];
    sums[1] = cyr_bn_lanes_total(s1) + t[1];
}

/* dx of one contiguous run of n elements through float tiles; streamed like
 * bn_affine_run when stream is set (dx distinct from the inputs). */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dx_run)(int act, int train, const cyr_half *dy,
                                                 const cyr_half *x, const cyr_half *y,
                                                 cyr_half *dx, Py_ssize_t n, float mean,
                                                 float k, float mdy, float A, CYR_BN_GATEP a,
                                                 int stream) {
    CYR_ALIGN64 float gt[CYR_BN_HT];
    CYR_ALIGN64 float xt[CYR_BN_HT];
    CYR_ALIGN64 float yt[CYR_BN_HT];
    CYR_ALIGN64 float ot[CYR_BN_HT];
    Py_ssize_t i = 0, m;
#if CYR_BN_HALF_DIRECT
    if (!CYR_BN_IS_TILED_BW(act)) {  /* those go through the float kernels' tiles */
        /* the head to dx's 64-byte boundary when streaming, then groups of 8 */
        const Py_ssize_t head = !stream ? 0 : CYR_BN_HEAD_N(dx, cyr_half) < n
                                                 ? CYR_BN_HEAD_N(dx, cyr_half) : n;
        CYR_ISA_FN(h2f)(dy, gt, head);
        CYR_ISA_FN(h2f)(x, xt, head);
        if (y) CYR_ISA_FN(h2f)(y, yt, head);
        CYR_F32(bn_dx)(act, train, gt, xt, y ? yt : NULL, ot, head, mean, k, mdy, A, a);
        CYR_ISA_FN(f2h)(ot, dx, head);
        i = head + (n - head) / 8 * 8;
        CYR_NAME(bn_hdx8)(act, train, dy + head, x + head, y ? y + head : NULL, dx + head,
                          i - head, mean, k, mdy, A, a, stream);
        stream = 0;
    }
#endif
#if CYR_HAVE_STREAM
    if (stream) {
        m = CYR_BN_HEAD_N(dx, cyr_half) < n ? CYR_BN_HEAD_N(dx, cyr_half) : n;
        CYR_ISA_FN(h2f)(dy, gt, m);
        CYR_ISA_FN(h2f)(x, xt, m);
        if (y) CYR_ISA_FN(h2f)(y, yt, m);
        CYR_F32(bn_dx)(act, train, gt, xt, y ? yt : NULL, ot, m, mean, k, mdy, A, a);
        CYR_ISA_FN(f2h)(ot, dx, m);
        for (i = m; i + CYR_BN_HT <= n; i += CYR_BN_HT) {
            CYR_ISA_FN(h2f)(dy + i, gt, CYR_BN_HT);
            CYR_ISA_FN(h2f)(x + i, xt, CYR_BN_HT);
            if (y) CYR_ISA_FN(h2f)(y + i, yt, CYR_BN_HT);
            CYR_F32(bn_dx)(act, train, gt, xt, y ? yt : NULL, ot, CYR_BN_HT, mean, k, mdy, A,
                           a);
            CYR_ISA_FN(f2h_out)(ot, dx + i, CYR_BN_HT, 1);
        }
    }
#endif
    (void)stream;
    for (; i < n; i += CYR_BN_HT) {
        m = n - i < CYR_BN_HT ? n - i : CYR_BN_HT;
        CYR_ISA_FN(h2f)(dy + i, gt, m);
        CYR_ISA_FN(h2f)(x + i, xt, m);
        if (y) CYR_ISA_FN(h2f)(y + i, yt, m);
        CYR_F32(bn_dx)(act, train, gt, xt, y ? yt : NULL, ot, m, mean, k, mdy, A, a);
        CYR_ISA_FN(f2h)(ot, dx + i, m);
    }
}

/* bn_channel_dx (batchnorm_template.h) for half data. */
static CYR_TARGET void CYR_NAME(bn_channel_dx)(const cyr_half *dy, const cyr_half *x,
                                               const cyr_half *y, cyr_half *dx,
                                               Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                                               Py_ssize_t c, double mean, double invstd,
                                               double w, const double *sums, double n,
                                               int train, int act, CYR_BN_GATEP a, int stream) {
    const Py_ssize_t step = C * inner;
    const Py_ssize_t pd = CYR_BN_PREFETCH_ROWS * step;
    const Py_ssize_t bytes = inner * (Py_ssize_t)sizeof(cyr_half);
    float k, mdy, A;
    CYR_F32(bn_dx_coefs)(sums, n, invstd, w, train, &k, &mdy, &A);
    for (Py_ssize_t o = outer - 1; o >= 0; --o) {  /* last row first, as the float kernel */
        const Py_ssize_t off = o * step + c * inner;
        if (!stream && o >= CYR_BN_PREFETCH_ROWS)  /* the output lines, for writing */
            cyr_bn_prefetchw_run(dx + off - pd, bytes);
        CYR_NAME(bn_dx_run)(act, train, dy + off, x + off, y ? y + off : NULL, dx + off, inner,
                            (float)mean, k, mdy, A, a, stream);
    }
#if CYR_HAVE_STREAM
    if (stream) cyr_stream_fence();
#endif
}

/* bn_backward_channel for half data: pass 1, then dx from the same slabs (in cache). */
static CYR_TARGET void CYR_NAME(bn_backward_channel)(const cyr_half *dy, const cyr_half *x,
                                                     const cyr_half *y, cyr_half *dx,
                                                     Py_ssize_t outer, Py_ssize_t C,
                                                     Py_ssize_t inner, Py_ssize_t c,
                                                     double mean, double invstd, double w,
                                                     int train, int act, CYR_BN_GATEP a, int stream,
                                                     double *sums) {
    CYR_NAME(bn_channel_dot)(dy, x, y, outer, C, inner, c, mean, act, a, sums);
    if (dx == NULL) return;
    CYR_NAME(bn_channel_dx)(dy, x, y, dx, outer, C, inner, c, mean, invstd, w, sums,
                            (double)outer * (double)inner, train, act, a, stream);
}

/* ---- row layout ---------------------------------------------------------------------
 * Tiles of CYR_BN_HRT elements: whole rows when a row fits (contiguous, one conversion),
 * else pieces of rows. */

/* Columns per tile and rows per tile (a multiple of 4) for the reductions. */
#define CYR_BN_HCW(w) ((w) < CYR_BN_HRT / 4 ? (w) : CYR_BN_HRT / 4)
#define CYR_BN_HKR(cw) (CYR_BN_HRT / (cw) / 4 * 4)

/* rows x cw elements of x (rows ld apart) into t (rows cw apart). */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_h2f_block)(const cyr_half *x, Py_ssize_t ld,
                                                    Py_ssize_t rows, Py_ssize_t cw, float *t) {
    if (cw == ld) {
        CYR_ISA_FN(h2f)(x, t, rows * cw);
        return;
    }
    for (Py_ssize_t r = 0; r < rows; ++r) CYR_ISA_FN(h2f)(x + r * ld, t + r * cw, cw);
}

/* The float kernel's bn_block_colstats on converted data: per column tile, the shift
 * from the block's first row, then the one-read sums over row tiles (a multiple of 4
 * rows); s1: W doubles of scratch. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_block_colstats)(const cyr_half *x, Py_ssize_t rows,
                                                         Py_ssize_t w, Py_ssize_t ld,
                                                         double *mean, double *m2,
                                                         double *s1) {
    CYR_ALIGN64 float t[CYR_BN_HRT];
    const Py_ssize_t cw = CYR_BN_HCW(w), kr = CYR_BN_HKR(cw);
    Py_ssize_t j, j0, r0, n, nr;
    for (j = 0; j < w; ++j) { m2[j] = 0.0; s1[j] = 0.0; }
    for (j0 = 0; j0 < w; j0 += cw) {
        n = w - j0 < cw ? w - j0 : cw;
        for (r0 = 0; r0 < rows; r0 += kr) {
            nr = rows - r0 < kr ? rows - r0 : kr;
            CYR_NAME(bn_h2f_block)(x + r0 * ld + j0, ld, nr, n, t);
            if (r0 == 0) CYR_F32(bn_colshift)(t, n, mean + j0);
            CYR_F32(bn_colshift_acc)(t, nr, n, n, 0, 1, mean + j0, s1 + j0, m2 + j0);
        }
    }
    CYR_F32(bn_colshift_done)(rows, w, mean, m2, s1);
}

/* Column statistics of a group of `rows` rows, as bn_group_colstats. */
static CYR_TARGET void CYR_NAME(bn_group_colstats)(const cyr_half *x, Py_ssize_t rows,
                                                   Py_ssize_t w, Py_ssize_t block_rows,
                                                   double *gmean, double *gm2, double *t) {
    Py_ssize_t r0, nb;
    double na;
    nb = rows < block_rows ? rows : block_rows;
    CYR_NAME(bn_block_colstats)(x, nb, w, w, gmean, gm2, t);
    na = (double)nb;
    for (r0 = nb; r0 < rows; r0 += nb) {
        nb = rows - r0 < block_rows ? rows - r0 : block_rows;
        CYR_NAME(bn_block_colstats)(x + r0 * w, nb, w, w, t, t + w, t + 2 * w);
        cyr_bn_chan_merge(na, gmean, gm2, (double)nb, t, t + w, w);
        na += (double)nb;
    }
}

/* rows x w (contiguous rows): y = act(x * scale[col] + shift[col]); y may be x. */
static CYR_TARGET void CYR_NAME(bn_affine_rows)(int act, const cyr_half *x, cyr_half *y,
                                                Py_ssize_t rows, Py_ssize_t w,
                                                const float *scale, const float *shift,
                                                CYR_BN_PAR a) {
    CYR_ALIGN64 float t[CYR_BN_HRT];
    Py_ssize_t r, j, n;
    if (w <= CYR_BN_HRT) {
        const Py_ssize_t kr = CYR_BN_HRT / w;
        for (r = 0; r < rows; r += kr) {
            n = rows - r < kr ? rows - r : kr;
            CYR_ISA_FN(h2f)(x + r * w, t, n * w);
            CYR_F32(bn_affine_rows)(act, t, t, n, w, scale, shift, a);
            CYR_ISA_FN(f2h)(t, y + r * w, n * w);
        }
        return;
    }
    for (r = 0; r < rows; ++r)
        for (j = 0; j < w; j += CYR_BN_HRT) {
            n = w - j < CYR_BN_HRT ? w - j : CYR_BN_HRT;
            CYR_ISA_FN(h2f)(x + r * w + j, t, n);
            CYR_F32(bn_affine_rows)(act, t, t, 1, n, scale + j, shift + j, a);
            CYR_ISA_FN(f2h)(t, y + r * w + j, n);
        }
}

/* Row layout, pass 1 of the backward: s0[col] += g, s1[col] += g * (x - mean[col]) over
 * `rows` rows of w columns, through tiles of whole columns and a multiple of 4 rows. */
static CYR_TARGET void CYR_NAME(bn_dot_cols)(int act, const cyr_half *dy, const cyr_half *x,
                                             const cyr_half *y, Py_ssize_t rows, Py_ssize_t w,
                                             const double *mean, CYR_BN_GATEP a, double *s0,
                                             double *s1) {
    CYR_ALIGN64 float gt[CYR_BN_HRT];
    CYR_ALIGN64 float xt[CYR_BN_HRT];
    CYR_ALIGN64 float yt[CYR_BN_HRT];
    const Py_ssize_t cw = CYR_BN_HCW(w), kr = CYR_BN_HKR(cw);
    Py_ssize_t r0, j0, nr, n, off;
    for (r0 = 0; r0 < rows; r0 += kr) {
        nr = rows - r0 < kr ? rows - r0 : kr;
        for (j0 = 0; j0 < w; j0 += cw) {
            n = w - j0 < cw ? w - j0 : cw;
            off = r0 * w + j0;
            CYR_NAME(bn_h2f_block)(dy + off, w, nr, n, gt);
            CYR_NAME(bn_h2f_block)(x + off, w, nr, n, xt);
            if (y) CYR_NAME(bn_h2f_block)(y + off, w, nr, n, yt);
            CYR_F32(bn_dot_cols_ld)(act, gt, xt, y ? yt : NULL, nr, n, n, mean + j0,
                                    CYR_NAME(bn_gatep_at)(a, j0), s0 + j0, s1 + j0);
        }
    }
}

/* Row layout: dx for `rows` rows of w columns with per-column (float) parameters. */
static CYR_TARGET void CYR_NAME(bn_dx_cols)(int act, int train, const cyr_half *dy,
                                            const cyr_half *x, const cyr_half *y, cyr_half *dx,
                                            Py_ssize_t rows, Py_ssize_t w, const float *mean,
                                            const float *k, const float *mdy, const float *A,
                                            CYR_BN_GATEP a) {
    CYR_ALIGN64 float gt[CYR_BN_HRT];
    CYR_ALIGN64 float xt[CYR_BN_HRT];
    CYR_ALIGN64 float yt[CYR_BN_HRT];
    CYR_ALIGN64 float ot[CYR_BN_HRT];
    const Py_ssize_t cw = w < CYR_BN_HRT ? w : CYR_BN_HRT;
    const Py_ssize_t kr = CYR_BN_HRT / cw;
    Py_ssize_t r0, j0, nr, n, off;
    for (r0 = 0; r0 < rows; r0 += kr) {
        nr = rows - r0 < kr ? rows - r0 : kr;
        for (j0 = 0; j0 < w; j0 += cw) {
            n = w - j0 < cw ? w - j0 : cw;
            off = r0 * w + j0;
            CYR_NAME(bn_h2f_block)(dy + off, w, nr, n, gt);
            CYR_NAME(bn_h2f_block)(x + off, w, nr, n, xt);
            if (y) CYR_NAME(bn_h2f_block)(y + off, w, nr, n, yt);
            CYR_F32(bn_dx_cols_ld)(act, train, gt, xt, y ? yt : NULL, ot, nr, n, n, mean + j0,
                                   k + j0, mdy + j0, A + j0, CYR_NAME(bn_gatep_at)(a, j0));
            if (n == w) {
                CYR_ISA_FN(f2h)(ot, dx + off, nr * n);
            } else {
                for (Py_ssize_t r = 0; r < nr; ++r)
                    CYR_ISA_FN(f2h)(ot + r * n, dx + off + r * w, n);
            }
        }
    }
}

#undef CYR_BN_HALF_DIRECT
#undef CYR_BN_HCW
#undef CYR_BN_HKR
#undef CYR_BN_HT
#undef CYR_BN_HRT
#undef CYR_BN_HB
