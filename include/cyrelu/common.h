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

/* Glue a type suffix onto a name: CYR_NAME(relu, f32) -> cyr_relu_f32. */
#define CYR_CAT2(a, b) cyr_##a##_##b
#define CYR_CAT(a, b) CYR_CAT2(a, b)
#define CYR_NAME(name) CYR_CAT(name, CYR_SUFFIX)

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
#  define CYR_TARGET_AVX2 __attribute__((target("avx2")))
#  define CYR_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))
#else
#  define CYR_ISA_DISPATCH 0
#endif

enum { CYR_ISA_BASE = 0, CYR_ISA_AVX2 = 1, CYR_ISA_AVX512 = 2 };

#include <stdlib.h>
#include <string.h>

static int cyr_isa_detect(void) {
    int level = CYR_ISA_BASE;
    const char *cap = getenv("CYRELU_ISA");
#if CYR_ISA_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) level = CYR_ISA_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        level = CYR_ISA_AVX512;
#endif
    if (cap != NULL) {
        if (strcmp(cap, "base") == 0) level = CYR_ISA_BASE;
        else if (strcmp(cap, "avx2") == 0 && level > CYR_ISA_AVX2) level = CYR_ISA_AVX2;
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
