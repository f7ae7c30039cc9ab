/* Type-generic bodies of the activation kernels; include only from activations.h,
 * with CYR_T (the element type), CYR_SUFFIX (e.g. f32_avx2) and CYR_TARGET (the
 * instruction-set attribute, possibly empty) defined.
 *
 * Every operation comes in three loop shapes:
 *   contiguous, output distinct from the inputs (restrict pointers: vectorises;
 *               large outputs are written with streaming stores, see common.h)
 *   contiguous, output written over one of the inputs (in place)
 *   strided, byte strides of any sign (the output may be an input)
 * and one function per shape that picks the operation and the aliasing case:
 *   cyr_unary_S(op, x, y, n, a, b)        y = f(x)       (op: a CYR_ACT_* code;
 *                                         a, b its parameters)
 *   cyr_binary_S(op, g, x, out, n, a, b)  out = f'(x) * g
 * plus their _strided twins.  Exact aliasing (out == x or out == g) is allowed;
 * partial overlap is resolved by the caller.
 */

#if CYR_IS_HALF
/* ---- float16 storage: converted tiles through this instruction set's float kernels ----
 * Each tile of CYR_HALF_TILE elements is converted to float (exact), run through the
 * float copy's loop (CYR_F32), and rounded back once (half.h); so float16 results are
 * float32 arithmetic rounded once, bitwise the same in every copy.  Outputs large
 * enough to stream are rounded into an aligned half tile and streamed out. */
#define CYR_HT CYR_HALF_TILE

/* Tiles of CYR_HT elements converted to float in an L1 buffer, run through the float
 * copy's contiguous loop, rounded back (or into an aligned half tile, streamed out):
 * every activation in the baseline copy, and those computed by activation_special.h
 * (CYR_SPECIAL_ACTIVATIONS, compute-bound) in the AVX2 and AVX-512 copies, whose float
 * loops are the vectorised ones. */
CYR_INLINE CYR_TARGET void CYR_NAME(unary_float_tiles)(int op, const cyr_half *x, cyr_half *y,
                                                 Py_ssize_t n, float a, float b, int stream) {
    CYR_ALIGN64 float xt[CYR_HT];
    CYR_ALIGN64 float yt[CYR_HT];
    for (Py_ssize_t i = 0; i < n; i += CYR_HT) {
        const Py_ssize_t m = n - i < CYR_HT ? n - i : CYR_HT;
        CYR_ISA_FN(h2f)(x + i, xt, m);
        CYR_F32(unary_plain)(op, xt, yt, m, a, b);
        CYR_ISA_FN(f2h_out)(yt, y + i, m, stream);
    }
}

CYR_INLINE CYR_TARGET void CYR_NAME(binary_float_tiles)(int op, const cyr_half *g, const cyr_half *x,
                                                  cyr_half *out, Py_ssize_t n, float a, float b,
                                                  int stream) {
    CYR_ALIGN64 float gt[CYR_HT];
    CYR_ALIGN64 float xt[CYR_HT];
    CYR_ALIGN64 float ot[CYR_HT];
    for (Py_ssize_t i = 0; i < n; i += CYR_HT) {
        const Py_ssize_t m = n - i < CYR_HT ? n - i : CYR_HT;
        CYR_ISA_FN(h2f)(g + i, gt, m);
        CYR_ISA_FN(h2f)(x + i, xt, m);
        CYR_F32(binary_plain)(op, gt, xt, ot, m, a, b);
        CYR_ISA_FN(f2h_out)(ot, out + i, m, stream);
    }
}

/* Whether `op` is computed by activation_special.h's functions. */
CYR_INLINE int CYR_NAME(is_special)(int op) {
#define CYR_SPECIAL_CASE_(name, NAME) case CYR_ACT_##NAME:
    switch (op) {
    CYR_SPECIAL_ACTIVATIONS(CYR_SPECIAL_CASE_)
        return 1;
    default:
        return 0;
    }
#undef CYR_SPECIAL_CASE_
}

#if CYR_ISA_ID >= 1
/* The AVX2 and AVX-512 copies do it in registers: load a vector of halves widened to
 * float (vcvtph2ps), the float operation, round back (vcvtps2ph, to nearest even) and
 * store, or stream when the output streams (16- or 32-byte stores; the caller has
 * aligned the output to 64 bytes).  The operation is the float kernel's, written with
 * ordered comparisons so that NaN takes the same branch as in the scalar code; the
 * tail runs through the portable conversions and the float copy's element functions. */
#if CYR_ISA_ID == 1
#define CYR_HV __m256
#define CYR_HW 8
#define CYR_H_LOAD(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define CYR_H_STORE(p, v) \
    _mm_storeu_si128((__m128i *)(p), _mm256_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT))
#define CYR_H_STREAM(p, v) \
    _mm_stream_si128((__m128i *)(p), _mm256_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT))
#define CYR_H_SET1(a) _mm256_set1_ps(a)
#define CYR_H_ZERO() _mm256_setzero_ps()
#define CYR_H_MUL(a, b) _mm256_mul_ps((a), (b))
#define CYR_H_ADD(a, b) _mm256_add_ps((a), (b))
#define CYR_H_DIV(a, b) _mm256_div_ps((a), (b))
#define CYR_H_STOREA(p, v) _mm256_store_ps((p), (v))
#define CYR_H_LOADA(p) _mm256_load_ps(p)
#define CYR_H_LANE0(v) _mm256_cvtss_f32(v)
/* (x CMP y) ? t : f */
#define CYR_H_SEL(cmp, x, y, t, f) _mm256_blendv_ps((f), (t), _mm256_cmp_ps((x), (y), cmp))
#else
#define CYR_HV __m512
#define CYR_HW 16
#define CYR_H_LOAD(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define CYR_H_STORE(p, v) \
    _mm256_storeu_si256((__m256i *)(p), _mm512_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT))
#define CYR_H_STREAM(p, v) \
    _mm256_stream_si256((__m256i *)(p), _mm512_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT))
#define CYR_H_SET1(a) _mm512_set1_ps(a)
#define CYR_H_ZERO() _mm512_setzero_ps()
#define CYR_H_MUL(a, b) _mm512_mul_ps((a), (b))
#define CYR_H_ADD(a, b) _mm512_add_ps((a), (b))
#define CYR_H_DIV(a, b) _mm512_div_ps((a), (b))
#define CYR_H_STOREA(p, v) _mm512_store_ps((p), (v))
#define CYR_H_LOADA(p) _mm512_load_ps(p)
#define CYR_H_LANE0(v) _mm512_cvtss_f32(v)
#define CYR_H_SEL(cmp, x, y, t, f) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((x), (y), cmp), (f), (t))
#endif
/* The table's math on vectors (activation_math.h): ordered compares, so NaN takes the
 * scalar code's branch. */
#pragma push_macro("CYR_SEL")
#pragma push_macro("CYR_SELV")
#pragma push_macro("CYR_K")
#pragma push_macro("CYR_MUL")
#pragma push_macro("CYR_ADD")
#pragma push_macro("CYR_DIV")
#pragma push_macro("CYR_SPECIAL")
#undef CYR_SEL
#undef CYR_SELV
#undef CYR_K
#undef CYR_MUL
#undef CYR_ADD
#undef CYR_DIV
#undef CYR_SPECIAL
/* Never evaluated: unary_tiles and binary_tiles send the activations computed by
 * activation_special.h (CYR_SPECIAL_ACTIVATIONS) to the float tiles before the switch,
 * so their cases below are dead code; NaN, should one be missing from the list. */
#define CYR_SPECIAL(fn, v, a, b) CYR_H_ADD((v), CYR_H_SET1(__builtin_nanf("")))
#define CYR_K(c) CYR_H_SET1((float)(c))
#define CYR_SEL(CMP, x, c, t, f) CYR_H_SEL(_CMP_##CMP##_OQ, x, CYR_K(c), t, f)
#define CYR_SELV(CMP, x, y, t, f) CYR_H_SEL(_CMP_##CMP##_OQ, x, y, t, f)
#define CYR_MUL(a, b) CYR_H_MUL((a), (b))
#define CYR_ADD(a, b) CYR_H_ADD((a), (b))
#define CYR_DIV(a, b) CYR_H_DIV((a), (b))
#define CYR_H_LOOP(STORE, EXPR)                                                            \
    for (; i + CYR_HW <= n; i += CYR_HW) {                                                 \
        const CYR_HV v = CYR_H_LOAD(x + i);                                                \
        STORE(y + i, EXPR);                                                                \
    }
#define CYR_H_LOOP2(STORE, EXPR)                                                           \
    for (; i + CYR_HW <= n; i += CYR_HW) {                                                 \
        const CYR_HV gv = CYR_H_LOAD(g + i), v = CYR_H_LOAD(x + i);                       \
        STORE(y + i, EXPR);                                                                \
    }

#define CYR_H_UNARY_CASE_(name, NAME, code, params, from_output)                          \
    case CYR_ACT_##NAME:                                                                   \
        if (stream) { CYR_H_LOOP(CYR_H_STREAM, CYR_FWD_##name(v, av, bv)) }                    \
        else { CYR_H_LOOP(CYR_H_STORE, CYR_FWD_##name(v, av, bv)) }                            \
        for (; i < n; ++i)                                                                 \
            y[i] = cyr_f2h_scalar(CYR_F32(name##_elem)(cyr_h2f_scalar(x[i]), a, b));          \
        break;
#define CYR_H_BINARY_CASE_(name, NAME, code, params, from_output)                         \
    case CYR_ACT_##NAME:                                                                   \
        if (stream) { CYR_H_LOOP2(CYR_H_STREAM, CYR_BWD_##name(gv, v, av, bv)) }               \
        else { CYR_H_LOOP2(CYR_H_STORE, CYR_BWD_##name(gv, v, av, bv)) }                       \
        for (; i < n; ++i)                                                                 \
            y[i] = cyr_f2h_scalar(CYR_F32(name##_backward_elem)(cyr_h2f_scalar(g[i]),      \
                                                                cyr_h2f_scalar(x[i]), a, b));  \
        break;

/* relu and its gradient on the bits, without converting: the result is the input (or
 * g) itself, with a NaN made quiet (0x0200 set, as the conversions do), or +0.  So 16
 * (AVX2) or 32 (AVX-512) halves per instruction instead of 8 or 16 through vcvtph2ps /
 * vcvtps2ph, whose throughput would otherwise bound these two.  Bitwise the converted
 * path's result:
 *   relu(h):      h < 0 and not -0.0 and not NaN -> +0, else quiet(h)
 *   relu'(g, x):  x <= 0 (+-0 or negative, not NaN) -> +0, else quiet(g) */
#if CYR_ISA_ID == 1
#define CYR_HB __m256i
#define CYR_HBW 16
#define CYR_HB_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define CYR_HB_STORE(p, v) _mm256_storeu_si256((__m256i *)(p), (v))
#define CYR_HB_STREAM(p, v) _mm256_stream_si256((__m256i *)(p), (v))
/* quiet NaN: h | (isnan ? 0x0200 : 0); isnan: (h & 0x7fff) > 0x7c00 */
#define CYR_HB_ISNAN(h) _mm256_cmpgt_epi16(_mm256_and_si256((h), _mm256_set1_epi16(0x7fff)), \
                                           _mm256_set1_epi16(0x7c00))
#define CYR_HB_QUIET(h, nan) _mm256_or_si256((h), _mm256_and_si256((nan), _mm256_set1_epi16(0x0200)))
/* relu: zero where -32768 < h < 0 (negative, not -0.0) and not NaN */
#define CYR_HB_RELU(h)                                                                     \
    ({ const __m256i nan_ = CYR_HB_ISNAN(h);                                               \
       const __m256i neg_ = _mm256_and_si256(_mm256_cmpgt_epi16(_mm256_setzero_si256(), (h)), \
                                             _mm256_cmpgt_epi16((h), _mm256_set1_epi16(-32768))); \
       _mm256_andnot_si256(_mm256_andnot_si256(nan_, neg_), CYR_HB_QUIET((h), nan_)); })
/* relu': zero where x <= 0 as a signed integer (+0, -0 and negatives) and x not NaN */
#define CYR_HB_RELU_BW(gh, xh)                                                             \
    ({ const __m256i le_ = _mm256_cmpgt_epi16(_mm256_set1_epi16(1), (xh));                 \
       const __m256i zero_ = _mm256_andnot_si256(CYR_HB_ISNAN(xh), le_);                   \
       _mm256_andnot_si256(zero_, CYR_HB_QUIET((gh), CYR_HB_ISNAN(gh))); })
#else
#define CYR_HB __m512i
#define CYR_HBW 32
#define CYR_HB_LOAD(p) _mm512_loadu_si512((const void *)(p))
#define CYR_HB_STORE(p, v) _mm512_storeu_si512((void *)(p), (v))
#define CYR_HB_STREAM(p, v) _mm512_stream_si512((__m512i *)(p), (v))
#define CYR_HB_ISNAN(h) _mm512_cmpgt_epi16_mask(_mm512_and_si512((h), _mm512_set1_epi16(0x7fff)), \
                                                _mm512_set1_epi16(0x7c00))
#define CYR_HB_QUIET(h, nan) _mm512_mask_mov_epi16((h), (nan), \
                                                  _mm512_or_si512((h), _mm512_set1_epi16(0x0200)))
#define CYR_HB_RELU(h)                                                                     \
    ({ const __mmask32 nan_ = CYR_HB_ISNAN(h);                                             \
       const __mmask32 neg_ = _mm512_cmpgt_epi16_mask(_mm512_setzero_si512(), (h)) &       \
                              _mm512_cmpgt_epi16_mask((h), _mm512_set1_epi16(-32768));     \
       const __m512i q_ = _mm512_mask_mov_epi16((h), nan_,                                  \
                                                _mm512_or_si512((h), _mm512_set1_epi16(0x0200))); \
       _mm512_maskz_mov_epi16((__mmask32)~(neg_ & ~nan_), q_); })
#define CYR_HB_RELU_BW(gh, xh)                                                             \
    ({ const __mmask32 zero_ = _mm512_cmpgt_epi16_mask(_mm512_set1_epi16(1), (xh)) &       \
                               (__mmask32)~CYR_HB_ISNAN(xh);                               \
       const __m512i q_ = _mm512_mask_mov_epi16((gh), CYR_HB_ISNAN(gh),                     \
                                                _mm512_or_si512((gh), _mm512_set1_epi16(0x0200))); \
       _mm512_maskz_mov_epi16((__mmask32)~zero_, q_); })
#endif

CYR_INLINE CYR_TARGET void CYR_NAME(relu_bits)(const cyr_half *x, cyr_half *y, Py_ssize_t n,
                                               int stream) {
    Py_ssize_t i = 0;
    if (stream) {
        for (; i + CYR_HBW <= n; i += CYR_HBW) {
            const CYR_HB h = CYR_HB_LOAD(x + i);
            CYR_HB_STREAM(y + i, CYR_HB_RELU(h));
        }
    } else {
        for (; i + CYR_HBW <= n; i += CYR_HBW) {
            const CYR_HB h = CYR_HB_LOAD(x + i);
            CYR_HB_STORE(y + i, CYR_HB_RELU(h));
        }
    }
    for (; i < n; ++i)
        y[i] = cyr_f2h_scalar(CYR_F32(relu_elem)(cyr_h2f_scalar(x[i]), 0.0f, 0.0f));
}

CYR_INLINE CYR_TARGET void CYR_NAME(relu_backward_bits)(const cyr_half *g, const cyr_half *x,
                                                        cyr_half *y, Py_ssize_t n, int stream) {
    Py_ssize_t i = 0;
    if (stream) {
        for (; i + CYR_HBW <= n; i += CYR_HBW) {
            const CYR_HB gh = CYR_HB_LOAD(g + i), xh = CYR_HB_LOAD(x + i);
            CYR_HB_STREAM(y + i, CYR_HB_RELU_BW(gh, xh));
        }
    } else {
        for (; i + CYR_HBW <= n; i += CYR_HBW) {
            const CYR_HB gh = CYR_HB_LOAD(g + i), xh = CYR_HB_LOAD(x + i);
            CYR_HB_STORE(y + i, CYR_HB_RELU_BW(gh, xh));
        }
    }
    for (; i < n; ++i)
        y[i] = cyr_f2h_scalar(CYR_F32(relu_backward_elem)(cyr_h2f_scalar(g[i]),
                                                          cyr_h2f_scalar(x[i]), 0.0f, 0.0f));
}
#undef CYR_HB
#undef CYR_HBW
#undef CYR_HB_LOAD
#undef CYR_HB_STORE
#undef CYR_HB_STREAM
#undef CYR_HB_ISNAN
#undef CYR_HB_QUIET
#undef CYR_HB_RELU
#undef CYR_HB_RELU_BW

CYR_INLINE CYR_TARGET void CYR_NAME(unary_tiles)(int op, const cyr_half *x, cyr_half *y,
                                                 Py_ssize_t n, float a, float b, int stream) {
    const CYR_HV av = CYR_H_SET1(a), bv = CYR_H_SET1(b);
    Py_ssize_t i = 0;
    (void)av;
    (void)bv;
    if (op == CYR_ACT_RELU) {
        CYR_NAME(relu_bits)(x, y, n, stream);
        return;
    }
    if (CYR_NAME(is_special)(op)) {
        CYR_NAME(unary_float_tiles)(op, x, y, n, a, b, stream);
        return;
    }
    switch (op) {
    CYR_ACTIVATIONS(CYR_H_UNARY_CASE_)
    default: break;
    }
}

CYR_INLINE CYR_TARGET void CYR_NAME(binary_tiles)(int op, const cyr_half *g, const cyr_half *x,
                                                  cyr_half *y, Py_ssize_t n, float a, float b,
                                                  int stream) {
    const CYR_HV av = CYR_H_SET1(a), bv = CYR_H_SET1(b);
    Py_ssize_t i = 0;
    (void)av;
    (void)bv;
    if (op == CYR_ACT_RELU) {
        CYR_NAME(relu_backward_bits)(g, x, y, n, stream);
        return;
    }
    if (CYR_NAME(is_special)(op)) {
        CYR_NAME(binary_float_tiles)(op, g, x, y, n, a, b, stream);
        return;
    }
    switch (op) {
    CYR_ACTIVATIONS(CYR_H_BINARY_CASE_)
    default: break;
    }
}
#undef CYR_H_UNARY_CASE_
#undef CYR_H_BINARY_CASE_
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
#undef CYR_HV
#undef CYR_HW
#undef CYR_H_LOAD
#undef CYR_H_STORE
#undef CYR_H_STREAM
#undef CYR_H_SET1
#undef CYR_H_ZERO
#undef CYR_H_MUL
#undef CYR_H_ADD
#undef CYR_H_DIV
#undef CYR_H_STOREA
#undef CYR_H_LOADA
#undef CYR_H_LANE0
#undef CYR_H_SEL
#undef CYR_H_LOOP
#undef CYR_H_LOOP2
#else /* the baseline copy: every activation through the float tiles */
CYR_INLINE CYR_TARGET void CYR_NAME(unary_tiles)(int op, const cyr_half *x, cyr_half *y,
                                                 Py_ssize_t n, float a, float b, int stream) {
    CYR_NAME(unary_float_tiles)(op, x, y, n, a, b, stream);
}

CYR_INLINE CYR_TARGET void CYR_NAME(binary_tiles)(int op, const cyr_half *g, const cyr_half *x,
                                                  cyr_half *out, Py_ssize_t n, float a, float b,
                                                  int stream) {
    CYR_NAME(binary_float_tiles)(op, g, x, out, n, a, b, stream);
}
#endif

/* Whether the output streams; if so, the head up to its 64-byte boundary first. */
#define CYR_HALF_STREAMS(n) ((n) * (Py_ssize_t)sizeof(cyr_half) >= cyr_stream_min_bytes())
#define CYR_HALF_HEAD(p) ((Py_ssize_t)(((64 - ((size_t)(p) & 63)) & 63) / sizeof(cyr_half)))

CYR_INLINE CYR_TARGET void CYR_NAME(unary)(int op, const cyr_half *x, cyr_half *y, Py_ssize_t n,
                                           float a, float b) {
    if ((const cyr_half *)y != x && CYR_HAVE_STREAM && CYR_HALF_STREAMS(n)) {
        const Py_ssize_t h = CYR_HALF_HEAD(y) < n ? CYR_HALF_HEAD(y) : n;
        CYR_NAME(unary_tiles)(op, x, y, h, a, b, 0);
        CYR_NAME(unary_tiles)(op, x + h, y + h, n - h, a, b, 1);
#if CYR_HAVE_STREAM
        cyr_stream_fence();
#endif
    } else {
        CYR_NAME(unary_tiles)(op, x, y, n, a, b, 0);
    }
}

CYR_INLINE CYR_TARGET void CYR_NAME(binary)(int op, const cyr_half *g, const cyr_half *x,
                                            cyr_half *out, Py_ssize_t n, float a, float b) {
    if ((const cyr_half *)out != g && (const cyr_half *)out != x && CYR_HAVE_STREAM &&
        CYR_HALF_STREAMS(n)) {
        const Py_ssize_t h = CYR_HALF_HEAD(out) < n ? CYR_HALF_HEAD(out) : n;
        CYR_NAME(binary_tiles)(op, g, x, out, h, a, b, 0);
        CYR_NAME(binary_tiles)(op, g + h, x + h, out + h, n - h, a, b, 1);
#if CYR_HAVE_STREAM
        cyr_stream_fence();
#endif
    } else {
        CYR_NAME(binary_tiles)(op, g, x, out, n, a, b, 0);
    }
}
#undef CYR_HALF_STREAMS
#undef CYR_HALF_HEAD
#undef CYR_HT

/* Strided: element by element through the exact portable conversions. */
#define CYR_H_UNARY_CASE_(name, NAME, code, params, from_output)                          \
    case CYR_ACT_##NAME:                                                                   \
        for (Py_ssize_t i = 0; i < n; ++i) {                                               \
            const float v = cyr_h2f_scalar(*(const cyr_half *)(x + i * sx));               \
            *(cyr_half *)(y + i * sy) = cyr_f2h_scalar(CYR_F32(name##_elem)(v, a, b));        \
        }                                                                                  \
        break;
#define CYR_H_BINARY_CASE_(name, NAME, code, params, from_output)                         \
    case CYR_ACT_##NAME:                                                                   \
        for (Py_ssize_t i = 0; i < n; ++i) {                                               \
            const float gv = cyr_h2f_scalar(*(const cyr_half *)(g + i * sg));              \
            const float v = cyr_h2f_scalar(*(const cyr_half *)(x + i * sx));               \
            *(cyr_half *)(out + i * so) =                                                  \
                cyr_f2h_scalar(CYR_F32(name##_backward_elem)(gv, v, a, b));                   \
        }                                                                                  \
        break;

CYR_INLINE CYR_TARGET void CYR_NAME(unary_strided)(int op, const char *x, Py_ssize_t sx,
                                                   char *y, Py_ssize_t sy, Py_ssize_t n,
                                                   float a, float b) {
    switch (op) {
    CYR_ACTIVATIONS(CYR_H_UNARY_CASE_)
    default: break;
    }
}

CYR_INLINE CYR_TARGET void CYR_NAME(binary_strided)(int op, const char *g, Py_ssize_t sg,
                                                    const char *x, Py_ssize_t sx, char *out,
                                                    Py_ssize_t so, Py_ssize_t n, float a, float b) {
    switch (op) {
    CYR_ACTIVATIONS(CYR_H_BINARY_CASE_)
    default: break;
    }
}
#undef CYR_H_UNARY_CASE_
#undef CYR_H_BINARY_CASE_

#else /* float and double */
/* ---- the math of one element: the table's (activation_math.h) ---------------- */
#define CYR_ELEM_(name, NAME, code, params, from_output)                                  \
CYR_ALWAYS_INLINE CYR_TARGET CYR_T CYR_NAME(name##_elem)(CYR_T v, CYR_C a, CYR_C b) {               \
    (void)a;                                                                               \
    (void)b;                                                                               \
    return CYR_FWD_##name(v, a, b);                                                           \
}                                                                                          \
CYR_ALWAYS_INLINE CYR_TARGET CYR_T CYR_NAME(name##_backward_elem)(CYR_T g, CYR_T v, CYR_C a,      \
                                                                     CYR_C b) {            \
    (void)a;                                                                               \
    (void)b;                                                                               \
    return CYR_BWD_##name(g, v, a, b);                                                        \
}
CYR_ACTIVATIONS(CYR_ELEM_)
#undef CYR_ELEM_

/* ---- loops -------------------------------------------------------------------- */
/* gelu's parameter chooses its form (0: erf, else tanh): chosen once, outside the loop,
 * so that each loop inlines one form and vectorises (a loop holding both does not).
 * softplus with beta = 1 (torch's default) takes the same first loop, with the literal
 * 1: beta x is x, and the exact product's arithmetic folds away (same value, same
 * bits, a quarter fewer instructions).  For every other activation the first loop is
 * dead code. */
#define CYR_UNIT_PARAM_(NAME) \
    ((CYR_ACT_##NAME == CYR_ACT_GELU && a != 0) || (CYR_ACT_##NAME == CYR_ACT_SOFTPLUS && a == 1))
#define CYR_FORM_(NAME) (CYR_ACT_##NAME == CYR_ACT_GELU ? (CYR_C)0 : a)
#define CYR_UNARY_LOOPS(op, NAME)                                                              \
CYR_INLINE CYR_TARGET void CYR_NAME(op)(const CYR_T *CYR_RESTRICT x, CYR_T *CYR_RESTRICT y,               \
                             Py_ssize_t n, CYR_C a, CYR_C b) {                                          \
    if (CYR_UNIT_PARAM_(NAME)) {                                                                \
        for (Py_ssize_t i = 0; i < n; ++i) y[i] = CYR_NAME(op##_elem)(x[i], (CYR_C)1, b);      \
        return;                                                                                \
    }                                                                                          \
    const CYR_C a_ = CYR_FORM_(NAME);                                                          \
    for (Py_ssize_t i = 0; i < n; ++i) y[i] = CYR_NAME(op##_elem)(x[i], a_, b);                    \
}                                                                                              \
CYR_INLINE CYR_TARGET void CYR_NAME(op##_inplace)(CYR_T *CYR_RESTRICT x, Py_ssize_t n, CYR_C a, CYR_C b) {         \
    if (CYR_UNIT_PARAM_(NAME)) {                                                                \
        for (Py_ssize_t i = 0; i < n; ++i) x[i] = CYR_NAME(op##_elem)(x[i], (CYR_C)1, b);      \
        return;                                                                                \
    }                                                                                          \
    const CYR_C a_ = CYR_FORM_(NAME);                                                          \
    for (Py_ssize_t i = 0; i < n; ++i) x[i] = CYR_NAME(op##_elem)(x[i], a_, b);                    \
}                                                                                              \
CYR_INLINE CYR_TARGET void CYR_NAME(op##_strided)(const char *x, Py_ssize_t sx, char *y, Py_ssize_t sy,   \
                                       Py_ssize_t n, CYR_C a, CYR_C b) {                                \
    for (Py_ssize_t i = 0; i < n; ++i)                                                         \
        *(CYR_T *)(y + i * sy) = CYR_NAME(op##_elem)(*(const CYR_T *)(x + i * sx), a, b);         \
}

#define CYR_BINARY_LOOP_(NAME, op, dst)                                                        \
    if (CYR_UNIT_PARAM_(NAME)) {                                                                \
        for (Py_ssize_t i = 0; i < n; ++i) dst[i] = CYR_NAME(op##_elem)(g[i], x[i], (CYR_C)1, b); \
        return;                                                                                \
    }                                                                                          \
    const CYR_C a_ = CYR_FORM_(NAME);                                                          \
    for (Py_ssize_t i = 0; i < n; ++i) dst[i] = CYR_NAME(op##_elem)(g[i], x[i], a_, b);
#define CYR_BINARY_LOOPS(op, NAME)                                                             \
CYR_INLINE CYR_TARGET void CYR_NAME(op)(const CYR_T *CYR_RESTRICT g, const CYR_T *CYR_RESTRICT x,         \
                             CYR_T *CYR_RESTRICT out, Py_ssize_t n, CYR_C a, CYR_C b) {                 \
    CYR_BINARY_LOOP_(NAME, op, out)                                                            \
}                                                                                              \
CYR_INLINE CYR_TARGET void CYR_NAME(op##_inplace_g)(CYR_T *CYR_RESTRICT g, const CYR_T *CYR_RESTRICT x,   \
                                         Py_ssize_t n, CYR_C a, CYR_C b) {                              \
    CYR_BINARY_LOOP_(NAME, op, g)                                                              \
}                                                                                              \
CYR_INLINE CYR_TARGET void CYR_NAME(op##_inplace_x)(const CYR_T *CYR_RESTRICT g, CYR_T *CYR_RESTRICT x,   \
                                         Py_ssize_t n, CYR_C a, CYR_C b) {                              \
    CYR_BINARY_LOOP_(NAME, op, x)                                                              \
}                                                                                              \
CYR_INLINE CYR_TARGET void CYR_NAME(op##_strided)(const char *g, Py_ssize_t sg, const char *x,            \
                                       Py_ssize_t sx, char *out, Py_ssize_t so,                \
                                       Py_ssize_t n, CYR_C a, CYR_C b) {                                \
    for (Py_ssize_t i = 0; i < n; ++i)                                                         \
        *(CYR_T *)(out + i * so) = CYR_NAME(op##_elem)(*(const CYR_T *)(g + i * sg),           \
                                                       *(const CYR_T *)(x + i * sx), a, b);       \
}

#define CYR_LOOPS_(name, NAME, code, params, from_output)                                 \
    CYR_UNARY_LOOPS(name, NAME)                                                            \
    CYR_BINARY_LOOPS(name##_backward, NAME)
CYR_ACTIVATIONS(CYR_LOOPS_)
#undef CYR_LOOPS_

#undef CYR_UNARY_LOOPS
#undef CYR_BINARY_LOOPS
#undef CYR_BINARY_LOOP_
#undef CYR_UNIT_PARAM_
#undef CYR_FORM_

/* ---- per-operation choice, contiguous out of place ----------------------------- */
CYR_INLINE CYR_TARGET void CYR_NAME(unary_plain)(int op, const CYR_T *CYR_RESTRICT x,
                                                 CYR_T *CYR_RESTRICT y, Py_ssize_t n, CYR_C a, CYR_C b) {
#define CYR_CASE_(name, NAME, code, params, from_output) \
    case CYR_ACT_##NAME: CYR_NAME(name)(x, y, n, a, b); break;
    switch (op) { CYR_ACTIVATIONS(CYR_CASE_) default: break; }
#undef CYR_CASE_
}

CYR_INLINE CYR_TARGET void CYR_NAME(binary_plain)(int op, const CYR_T *CYR_RESTRICT g,
                                                  const CYR_T *CYR_RESTRICT x,
                                                  CYR_T *CYR_RESTRICT out, Py_ssize_t n,
                                                  CYR_C a, CYR_C b) {
#define CYR_CASE_(name, NAME, code, params, from_output) \
    case CYR_ACT_##NAME: CYR_NAME(name##_backward)(g, x, out, n, a, b); break;
    switch (op) { CYR_ACTIVATIONS(CYR_CASE_) default: break; }
#undef CYR_CASE_
}

#if CYR_HAVE_STREAM
/* Large outputs: the head up to a 64-byte boundary of the output, then whole tiles
 * computed into an L1-resident buffer by the plain loop and streamed out, then the
 * tail (see "streaming stores" in common.h). */
#define CYR_TILE_N ((Py_ssize_t)(CYR_TILE_BYTES / sizeof(CYR_T)))
#define CYR_HEAD_N(p) ((Py_ssize_t)(((64 - ((size_t)(p) & 63)) & 63) / sizeof(CYR_T)))

CYR_INLINE CYR_TARGET void CYR_NAME(unary_stream)(int op, const CYR_T *CYR_RESTRICT x,
                                                  CYR_T *CYR_RESTRICT y, Py_ssize_t n, CYR_C a, CYR_C b) {
    CYR_ALIGN64 CYR_T tile[CYR_TILE_BYTES / sizeof(CYR_T)];
    Py_ssize_t i = CYR_HEAD_N(y) < n ? CYR_HEAD_N(y) : n;
    CYR_NAME(unary_plain)(op, x, y, i, a, b);
    for (; i + CYR_TILE_N <= n; i += CYR_TILE_N) {
        CYR_NAME(unary_plain)(op, x + i, tile, CYR_TILE_N, a, b);
        CYR_ISA_FN(stream_store)(y + i, tile, CYR_TILE_BYTES);
    }
    CYR_NAME(unary_plain)(op, x + i, y + i, n - i, a, b);
    cyr_stream_fence();
}

CYR_INLINE CYR_TARGET void CYR_NAME(binary_stream)(int op, const CYR_T *CYR_RESTRICT g,
                                                   const CYR_T *CYR_RESTRICT x,
                                                   CYR_T *CYR_RESTRICT out, Py_ssize_t n,
                                                   CYR_C a, CYR_C b) {
    CYR_ALIGN64 CYR_T tile[CYR_TILE_BYTES / sizeof(CYR_T)];
    Py_ssize_t i = CYR_HEAD_N(out) < n ? CYR_HEAD_N(out) : n;
    CYR_NAME(binary_plain)(op, g, x, out, i, a, b);
    for (; i + CYR_TILE_N <= n; i += CYR_TILE_N) {
        CYR_NAME(binary_plain)(op, g + i, x + i, tile, CYR_TILE_N, a, b);
        CYR_ISA_FN(stream_store)(out + i, tile, CYR_TILE_BYTES);
    }
    CYR_NAME(binary_plain)(op, g + i, x + i, out + i, n - i, a, b);
    cyr_stream_fence();
}
#undef CYR_TILE_N
#undef CYR_HEAD_N
#define CYR_STREAMS(n) ((n) * (Py_ssize_t)sizeof(CYR_T) >= cyr_stream_min_bytes())
#else
#define CYR_STREAMS(n) 0
#define unary_stream unary_plain
#define binary_stream binary_plain
#endif

/* ---- entry points: pick the aliasing case and the store kind -------------------- */
CYR_INLINE CYR_TARGET void CYR_NAME(unary)(int op, const CYR_T *x, CYR_T *y, Py_ssize_t n,
                                           CYR_C a, CYR_C b) {
    if ((const CYR_T *)y == x) {
#define CYR_CASE_(name, NAME, code, params, from_output) \
    case CYR_ACT_##NAME: CYR_NAME(name##_inplace)(y, n, a, b); break;
        switch (op) { CYR_ACTIVATIONS(CYR_CASE_) default: break; }
#undef CYR_CASE_
    } else if (CYR_STREAMS(n)) {
        CYR_NAME(unary_stream)(op, x, y, n, a, b);
    } else {
        CYR_NAME(unary_plain)(op, x, y, n, a, b);
    }
}

CYR_INLINE CYR_TARGET void CYR_NAME(unary_strided)(int op, const char *x, Py_ssize_t sx,
                                                   char *y, Py_ssize_t sy, Py_ssize_t n,
                                                   CYR_C a, CYR_C b) {
#define CYR_CASE_(name, NAME, code, params, from_output) \
    case CYR_ACT_##NAME: CYR_NAME(name##_strided)(x, sx, y, sy, n, a, b); break;
    switch (op) { CYR_ACTIVATIONS(CYR_CASE_) default: break; }
#undef CYR_CASE_
}

CYR_INLINE CYR_TARGET void CYR_NAME(binary)(int op, const CYR_T *g, const CYR_T *x,
                                            CYR_T *out, Py_ssize_t n, CYR_C a, CYR_C b) {
    if ((const CYR_T *)out == g) {
#define CYR_CASE_(name, NAME, code, params, from_output) \
    case CYR_ACT_##NAME: CYR_NAME(name##_backward_inplace_g)(out, x, n, a, b); break;
        switch (op) { CYR_ACTIVATIONS(CYR_CASE_) default: break; }
#undef CYR_CASE_
    } else if ((const CYR_T *)out == x) {
#define CYR_CASE_(name, NAME, code, params, from_output) \
    case CYR_ACT_##NAME: CYR_NAME(name##_backward_inplace_x)(g, out, n, a, b); break;
        switch (op) { CYR_ACTIVATIONS(CYR_CASE_) default: break; }
#undef CYR_CASE_
    } else if (CYR_STREAMS(n)) {
        CYR_NAME(binary_stream)(op, g, x, out, n, a, b);
    } else {
        CYR_NAME(binary_plain)(op, g, x, out, n, a, b);
    }
}

CYR_INLINE CYR_TARGET void CYR_NAME(binary_strided)(int op, const char *g, Py_ssize_t sg,
                                                    const char *x, Py_ssize_t sx, char *out,
                                                    Py_ssize_t so, Py_ssize_t n, CYR_C a, CYR_C b) {
#define CYR_CASE_(name, NAME, code, params, from_output) \
    case CYR_ACT_##NAME: CYR_NAME(name##_backward_strided)(g, sg, x, sx, out, so, n, a, b); break;
    switch (op) { CYR_ACTIVATIONS(CYR_CASE_) default: break; }
#undef CYR_CASE_
}

#undef CYR_STREAMS
#if !CYR_HAVE_STREAM
#undef unary_stream
#undef binary_stream
#endif

#endif /* CYR_IS_HALF */
