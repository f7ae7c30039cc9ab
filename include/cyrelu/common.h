/* Shared definitions for cyrelu's C kernels.
 *
 * Kernels are `static inline` functions on `restrict` pointers with plain loops
 * that gcc, clang and MSVC vectorise.  Indices are Py_ssize_t, so arrays of more
 * than 2**31 elements work.  This header is included from Cython-generated C,
 * after Python.h, which defines Py_ssize_t.
 */
#ifndef CYRELU_COMMON_H
#define CYRELU_COMMON_H

#include <Python.h>
#include <stddef.h>

#if defined(_MSC_VER)
#  define CYR_RESTRICT __restrict
#else
#  define CYR_RESTRICT __restrict__
#endif

#define CYR_INLINE static inline
/* Functions a vectorised loop must inline whatever their size (an element's math: a
 * loop calling one is left scalar). */
#if defined(_MSC_VER)
#  define CYR_ALWAYS_INLINE static __forceinline
#else
#  define CYR_ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

/* Glue the template's suffix onto a name: with CYR_SUFFIX f32_base, CYR_NAME(relu) -> cyr_relu_f32_base. */
#define CYR_CAT2(a, b) cyr_##a##_##b
#define CYR_CAT(a, b) CYR_CAT2(a, b)
#define CYR_NAME(name) CYR_CAT(name, CYR_SUFFIX)

#if defined(_MSC_VER)
#  define CYR_ALIGN64 __declspec(align(64))
#else
#  define CYR_ALIGN64 __attribute__((aligned(64)))
#endif

/* ---- streaming (non-temporal) stores ---------------------------------------------
 * A kernel whose output is much larger than the core's L2 cache spends a third of
 * its memory traffic reading the output's cache lines before overwriting them
 * (read-for-ownership).  Streaming stores skip that read.  Kernels compute a tile
 * into an L1-resident buffer with their ordinary vectorised loop and stream the tile
 * out with cyr_stream_store, so the element math stays written once.  Only outputs
 * of at least cyr_stream_min_bytes() per call (per thread; derived from the L2 size,
 * see cache.h) stream; smaller ones are better left in cache for the next operation
 * to read.
 */
#include "cache.h"
#define CYR_TILE_BYTES 4096

#if defined(__x86_64__) || defined(_M_X64)
#  include <emmintrin.h>
#  define CYR_HAVE_STREAM 1
/* dst and src 16-byte aligned, nbytes a multiple of 64. */
CYR_INLINE void cyr_stream_store(void *dst, const void *src, Py_ssize_t nbytes) {
    char *d = (char *)dst;
    const char *s = (const char *)src;
    for (Py_ssize_t i = 0; i < nbytes; i += 64) {
        __m128i a = _mm_load_si128((const __m128i *)(s + i));
        __m128i b = _mm_load_si128((const __m128i *)(s + i + 16));
        __m128i c = _mm_load_si128((const __m128i *)(s + i + 32));
        __m128i e = _mm_load_si128((const __m128i *)(s + i + 48));
        _mm_stream_si128((__m128i *)(d + i), a);
        _mm_stream_si128((__m128i *)(d + i + 16), b);
        _mm_stream_si128((__m128i *)(d + i + 32), c);
        _mm_stream_si128((__m128i *)(d + i + 48), e);
    }
}
/* Streaming stores are weakly ordered: fence before other threads may read. */
CYR_INLINE void cyr_stream_fence(void) { _mm_sfence(); }
#else
#  define CYR_HAVE_STREAM 0
#endif

/* ---- runtime instruction-set dispatch ---------------------------------------------
 * Wheels are built for the baseline ISA (SSE2 on x86-64), but a loop that runs from
 * L2 cache is twice as fast with AVX2 and faster again with AVX-512.  With gcc and
 * clang on x86-64 each kernel template is therefore compiled three times, with
 * target attributes (no global -march flag, so the module still loads on any CPU),
 * and the entry points pick one per call from cyr_isa_level().  Elsewhere (MSVC,
 * ARM, where NEON is baseline) only the baseline copy exists.
 *
 * CYRELU_ISA=base|avx2|avx512 in the environment caps the level (read on first use):
 * for tests that compare the copies, and for debugging.  It never raises the level
 * above what the CPU supports.
 */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(CYRELU_NO_ISA_DISPATCH)
#  define CYR_ISA_DISPATCH 1
/* F16C (the float16 conversions) comes with every AVX2 and AVX-512 CPU (the AVX-512
 * copy names it for the 8-wide conversions it shares with the AVX2 copy); FMA is
 * deliberately left out, so that no copy contracts a * b + c differently from the
 * baseline (the one fused multiply-add used, vecd.h's addition on the FMA units, is
 * written in assembly; the AVX2 level asks the CPU for FMA, which every AVX2 CPU has). */
#  define CYR_TARGET_AVX2 __attribute__((target("avx2,f16c")))
#  define CYR_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,f16c")))
#else
#  define CYR_ISA_DISPATCH 0
#endif

enum { CYR_ISA_BASE = 0, CYR_ISA_AVX2 = 1, CYR_ISA_AVX512 = 2 };

/* cyr_stream_store with each instruction set's widest stores: the AVX2 and AVX-512
 * copies of a template call CYR_ISA_FN(stream_store), which names the one for their
 * set (dst and src then 64-byte aligned, as the tiles and the heads make them).  One
 * 64-byte store per line instead of four 16-byte ones measured 10% faster for the
 * BatchNorm backward. */
#define CYR_ISA_FN(name) CYR_CAT(name, CYR_ISA_SUFFIX)
#if CYR_HAVE_STREAM
#  define cyr_stream_store_base cyr_stream_store
#endif
#if CYR_ISA_DISPATCH
#  include <immintrin.h>
static inline CYR_TARGET_AVX2 void cyr_stream_store_avx2(void *dst, const void *src,
                                                         Py_ssize_t nbytes) {
    char *d = (char *)dst;
    const char *s = (const char *)src;
    for (Py_ssize_t i = 0; i < nbytes; i += 64) {
        __m256i a = _mm256_load_si256((const __m256i *)(s + i));
        __m256i b = _mm256_load_si256((const __m256i *)(s + i + 32));
        _mm256_stream_si256((__m256i *)(d + i), a);
        _mm256_stream_si256((__m256i *)(d + i + 32), b);
    }
}
static inline CYR_TARGET_AVX512 void cyr_stream_store_avx512(void *dst, const void *src,
                                                             Py_ssize_t nbytes) {
    char *d = (char *)dst;
    const char *s = (const char *)src;
    for (Py_ssize_t i = 0; i < nbytes; i += 64)
        _mm512_stream_si512((__m512i *)(d + i), _mm512_load_si512((const void *)(s + i)));
}
#endif

#include <stdlib.h>
#include <string.h>

/* What CYRELU_ISA asked for: 0 unset, 1 a recognised value, -1 anything else (then
 * ignored; the Python layer warns, naming the accepted values). */
static int cyr_isa_request = 0;

/* The accepted values of CYRELU_ISA, case-insensitive: base (alias baseline), avx2,
 * avx512.  Returns the cap level, or -1 for anything else. */
static int cyr_isa_parse(const char *cap) {
    char low[16];
    size_t i;
    for (i = 0; cap[i] != '\0' && i + 1 < sizeof low; ++i)
        low[i] = (char)((cap[i] >= 'A' && cap[i] <= 'Z') ? cap[i] - 'A' + 'a' : cap[i]);
    if (cap[i] != '\0') return -1;
    low[i] = '\0';
    if (strcmp(low, "base") == 0 || strcmp(low, "baseline") == 0) return CYR_ISA_BASE;
    if (strcmp(low, "avx2") == 0) return CYR_ISA_AVX2;
    if (strcmp(low, "avx512") == 0 || strcmp(low, "avx-512") == 0) return CYR_ISA_AVX512;
    return -1;
}

static int cyr_isa_detect(void) {
    int level = CYR_ISA_BASE;
    const char *cap = getenv("CYRELU_ISA");
#if CYR_ISA_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
        __builtin_cpu_supports("fma"))  /* vecd.h's CYR_VD_ADD_ON_FMA */
        level = CYR_ISA_AVX2;
    if (level == CYR_ISA_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq"))
        level = CYR_ISA_AVX512;
#endif
    if (cap != NULL && cap[0] != '\0') {
        const int want = cyr_isa_parse(cap);
        cyr_isa_request = want < 0 ? -1 : 1;
        if (want >= 0 && want < level) level = want;
    }
    return level;
}

/* The level in use; detected once per extension module (idempotent, so the benign
 * first-use race between threads stores the same value). */
static int cyr_isa_cached = -1;
CYR_INLINE int cyr_isa_level(void) {
    int level = cyr_isa_cached;
    if (level < 0) {
        level = cyr_isa_detect();
        cyr_isa_cached = level;
    }
    return level;
}

#endif /* CYRELU_COMMON_H */
