/* float16 (IEEE binary16) storage: conversions to and from float, exact, in every
 * instruction set.
 *
 * float16 data is stored as uint16_t bit patterns (cyr_half) and computed in float:
 * every half value is exactly a float, so a kernel converts its inputs, runs the float
 * arithmetic and rounds the result once to half.  The conversions exist in one
 * portable form and one per instruction set, all giving the same bits:
 *
 *   half -> float   exact.  NaN keeps its sign and payload and becomes quiet (the
 *                   quiet bit is set), as the F16C and AVX-512 instructions do.
 *   float -> half   round to nearest, ties to even; overflow gives +-inf; results
 *                   below the normal range are subnormals, rounded correctly (no
 *                   flush to zero); -0.0 stays -0.0; NaN keeps its sign and the top
 *                   9 bits of its payload and becomes quiet, as the instructions do.
 *
 * The portable form is plain integer and float arithmetic that compilers vectorise;
 * the AVX2 copies (which require F16C, present on every AVX2 CPU) use vcvtph2ps /
 * vcvtps2ph, the AVX-512 copies their 16-wide forms.  Kernels convert tiles of
 * CYR_HALF_TILE elements through L1-resident float buffers (cyr_h2f_ISA / cyr_f2h_ISA)
 * and run the float kernel of the same instruction set on them.
 */
#ifndef CYRELU_HALF_H
#define CYRELU_HALF_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef uint16_t cyr_half;

/* Elements per conversion tile: 512 floats (2 KiB) per buffer, so that a kernel's
 * two or three buffers stay in L1 beside the data streaming through. */
#define CYR_HALF_TILE 512

static inline uint32_t cyr_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float cyr_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* half -> float, exactly (portable). */
static inline float cyr_h2f_scalar(cyr_half h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t em = h & 0x7FFFu;
    /* normal: rebias the exponent (15 -> 127) */
    const uint32_t normal = (em << 13) + ((uint32_t)(127 - 15) << 23);
    /* subnormal or zero: em * 2**-24, exact in float */
    const uint32_t sub = cyr_f32_bits((float)em * 5.9604644775390625e-8f);
    /* inf / NaN: all-ones exponent, payload shifted up, NaN made quiet */
    const uint32_t special = 0x7F800000u | ((em & 0x3FFu) << 13) | (em > 0x7C00u ? 0x400000u : 0u);
    const uint32_t mag = em >= 0x7C00u ? special : (em >= 0x0400u ? normal : sub);
    return cyr_bits_f32(sign | mag);
}

/* float -> half, round to nearest even (portable).  Assumes the default rounding mode
 * (round to nearest), as every kernel does. */
static inline cyr_half cyr_f2h_scalar(float f) {
    const uint32_t x = cyr_f32_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7FFFFFFFu;
    /* NaN: quiet, top payload bits kept */
    const uint32_t nan = 0x7E00u | ((ax >> 13) & 0x3FFu);
    /* normal half range [2**-14, 65520): round the 13 dropped bits to even, rebias */
    const uint32_t normal = (ax + 0xFFFu + ((ax >> 13) & 1u) - ((uint32_t)(127 - 15) << 23)) >> 13;
    /* below 2**-14: adding 0.5 (whose ulp is 2**-24, the half subnormal step) rounds to
     * the nearest multiple of 2**-24 in the FPU's own round-to-nearest-even; the low
     * bits of the sum are then the half's bits (up to 0x0400, the smallest normal). */
    const uint32_t sub = cyr_f32_bits(cyr_bits_f32(ax) + 0.5f) - 0x3F000000u;
    const uint32_t mag = ax > 0x7F800000u ? nan
                       : ax >= 0x477FF000u ? 0x7C00u          /* rounds to inf, or is inf */
                       : ax >= 0x38800000u ? normal : sub;
    return (cyr_half)(sign | mag);
}

#if defined(_MSC_VER)
#  define CYR_HALF_RESTRICT __restrict
#else
#  define CYR_HALF_RESTRICT __restrict__
#endif

/* An integer with the order of the values of non-NaN halves: +-0 -> 0, positive halves
 * -> their bits, negative ones -> minus their magnitude bits. */
static inline int32_t cyr_half_key(cyr_half h) {
    const int32_t m = (int32_t)(h & 0x7FFFu);
    return (h & 0x8000u) ? -m : m;
}

/* The key of the largest non-NaN half whose value is <= t (t not NaN). */
static inline int32_t cyr_half_key_at_most(float t) {
    const cyr_half h = cyr_f2h_scalar(t);
    return cyr_half_key(h) - (cyr_h2f_scalar(h) > t ? 1 : 0);
}

static inline void cyr_h2f_base(const cyr_half *CYR_HALF_RESTRICT src,
                                float *CYR_HALF_RESTRICT dst, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; ++i) dst[i] = cyr_h2f_scalar(src[i]);
}

static inline void cyr_f2h_base(const float *CYR_HALF_RESTRICT src,
                                cyr_half *CYR_HALF_RESTRICT dst, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; ++i) dst[i] = cyr_f2h_scalar(src[i]);
}

#if CYR_ISA_DISPATCH
#  include <immintrin.h>
static inline CYR_TARGET_AVX2 void cyr_h2f_avx2(const cyr_half *src, float *dst, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (int k = 0; k < (int)(n - i) && k < 16; ++k) dst[i + k] = cyr_h2f_scalar(src[i + k]);
}
static inline CYR_TARGET_AVX2 void cyr_f2h_avx2(const float *src, cyr_half *dst, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (int k = 0; k < (int)(n - i) && k < 16; ++k) dst[i + k] = cyr_f2h_scalar(src[i + k]);
}
static inline CYR_TARGET_AVX512 void cyr_h2f_avx512(const cyr_half *src, float *dst,
                                                    Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i,
                         _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (int k = 0; k < (int)(n - i) && k < 16; ++k) dst[i + k] = cyr_h2f_scalar(src[i + k]);
}
static inline CYR_TARGET_AVX512 void cyr_f2h_avx512(const float *src, cyr_half *dst,
                                                    Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (int k = 0; k < (int)(n - i) && k < 16; ++k) dst[i + k] = cyr_f2h_scalar(src[i + k]);
}
#endif

/* A kernel's float result tile of m elements rounded to float16 into dst, in each
 * instruction set (cyr_f2h_out_ISA, called as CYR_ISA_FN(f2h_out)): with `stream` and
 * a whole tile (dst is then 64-byte aligned, as the kernels' heads make it) through an
 * aligned L1 buffer and streaming stores (see "streaming stores" in common.h), else
 * stored directly. */
#if CYR_HAVE_STREAM
#  define CYR_HALF_STREAM_(ISA, dst, src) \
    cyr_stream_store_##ISA((dst), (src), CYR_HALF_TILE * (Py_ssize_t)sizeof(cyr_half))
#else
#  define CYR_HALF_STREAM_(ISA, dst, src) ((void)(dst), (void)(src))
#endif
#define CYR_HALF_OUT_(ISA, TARGET)                                                       \
    static inline TARGET void cyr_f2h_out_##ISA(const float *src, cyr_half *dst,         \
                                                Py_ssize_t m, int stream) {             \
        if (CYR_HAVE_STREAM && stream && m == CYR_HALF_TILE) {                           \
            CYR_ALIGN64 cyr_half h[CYR_HALF_TILE];                                       \
            cyr_f2h_##ISA(src, h, m);                                                    \
            CYR_HALF_STREAM_(ISA, dst, h);                                               \
        } else {                                                                         \
            cyr_f2h_##ISA(src, dst, m);                                                  \
        }                                                                                \
    }
CYR_HALF_OUT_(base, )
#if CYR_ISA_DISPATCH
CYR_HALF_OUT_(avx2, CYR_TARGET_AVX2)
CYR_HALF_OUT_(avx512, CYR_TARGET_AVX512)
#endif
#undef CYR_HALF_OUT_
#undef CYR_HALF_STREAM_

#endif /* CYRELU_HALF_H */
