/* Double vectors for the reduction loops written with intrinsics in the AVX2 and
 * AVX-512 copies of a kernel template (instantiate.h): BatchNorm's sums and dots,
 * PReLU's weight sums.  Left to the compiler, those loops' lanes were sometimes split
 * over vector and scalar registers (half the speed or less); with these they stay in
 * vector registers, and every lane takes the same operations in the same order as the
 * baseline copy's plain C, so all copies give the same bits.
 *
 * Inside a template copy with CYR_ISA_ID >= 1 (the names resolve through
 * CYR_ISA_SUFFIX and CYR_SUFFIX when used, so one definition serves every copy):
 *   CYR_VD               the vector type, CYR_VD_N doubles
 *   CYR_VD_LOADU/STOREU  unaligned load/store of CYR_VD_N doubles
 *   CYR_VD_ADD/SUB/MUL   lanewise arithmetic, CYR_VD_SET1(v) a broadcast
 *   CYR_VD_ADD_ON_FMA(a, b)  a + b on the FMA units, CYR_VD_ADD's bits but for which
 *                        payload two NaNs leave (below)
 *   CYR_VD_ZERO_IF_POS(x, v)  v with 0.0 in the lanes where x > 0 (not where x is NaN)
 *   CYR_NAME(vd_ld)(p)   CYR_VD_N elements of the template's type from p, widened to
 *                        double (exactly)
 */
#ifndef CYRELU_VECD_H
#define CYRELU_VECD_H

#include "common.h"

#if CYR_ISA_DISPATCH
#include <immintrin.h>

static inline CYR_TARGET_AVX2 __m256d cyr_vd_ld_f32_avx2(const float *p) {
    return _mm256_cvtps_pd(_mm_loadu_ps(p));
}
static inline CYR_TARGET_AVX2 __m256d cyr_vd_ld_f64_avx2(const double *p) {
    return _mm256_loadu_pd(p);
}
static inline CYR_TARGET_AVX512 __m512d cyr_vd_ld_f32_avx512(const float *p) {
    return _mm512_cvtps_pd(_mm256_loadu_ps(p));
}
static inline CYR_TARGET_AVX512 __m512d cyr_vd_ld_f64_avx512(const double *p) {
    return _mm512_loadu_pd(p);
}
/* a + b as the fused multiply-add b * 1 + a: the product is exact, so its one rounding is
 * the sum's, the same bits as an addition, signed zeros and infinities included.  Where a
 * and b are two NaNs with different payloads, the result is a NaN with one of them, not
 * always the one an addition keeps (Zen 3 keeps b's here, its addition a's; the form
 * a * 1 + b keeps a's there, but took a channel's statistics 0.141-0.153 ns an element
 * in cache against this form's 0.132-0.135: here the accumulator, a, is the addend).
 * AMD's Zen cores add on two pipes and multiply or fuse on two others; the statistics'
 * and the backward sums' loops are mostly additions, so moving one of them per element
 * to the other pipes made a channel's statistics in cache 0.133 ns an element instead of
 * 0.17 (benchmarks/bn_kernel_cost.c, Zen 3, AVX2, one thread).  Inline assembly, so that
 * no compiler folds it back into an addition, and no FMA target attribute, so that
 * nothing else in a copy can be contracted (common.h); the AVX2 level needs the CPU's
 * FMA (cyr_isa_detect), AVX-512 has it. */
static inline CYR_TARGET_AVX2 __m256d cyr_vd_add_on_fma_avx2(__m256d a, __m256d b) {
    const __m256d one = _mm256_set1_pd(1.0);
    __asm__("vfmadd231pd %2, %1, %0" : "+x"(a) : "x"(b), "x"(one));
    return a;
}
static inline CYR_TARGET_AVX512 __m512d cyr_vd_add_on_fma_avx512(__m512d a, __m512d b) {
    const __m512d one = _mm512_set1_pd(1.0);
    __asm__("vfmadd231pd %2, %1, %0" : "+v"(a) : "v"(b), "v"(one));
    return a;
}
/* x > 0 false (x <= 0 or NaN) keeps v's lane */
static inline CYR_TARGET_AVX2 __m256d cyr_vd_zero_if_pos_avx2(__m256d x, __m256d v) {
    return _mm256_andnot_pd(_mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GT_OQ), v);
}
static inline CYR_TARGET_AVX512 __m512d cyr_vd_zero_if_pos_avx512(__m512d x, __m512d v) {
    return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_NGT_UQ), v);
}

#define CYR_VD_T_avx2 __m256d
#define CYR_VD_N_avx2 4
#define CYR_VD_LOADU_avx2 _mm256_loadu_pd
#define CYR_VD_STOREU_avx2 _mm256_storeu_pd
#define CYR_VD_ADD_avx2 _mm256_add_pd
#define CYR_VD_SUB_avx2 _mm256_sub_pd
#define CYR_VD_MUL_avx2 _mm256_mul_pd
#define CYR_VD_SET1_avx2 _mm256_set1_pd

#define CYR_VD_T_avx512 __m512d
#define CYR_VD_N_avx512 8
#define CYR_VD_LOADU_avx512 _mm512_loadu_pd
#define CYR_VD_STOREU_avx512 _mm512_storeu_pd
#define CYR_VD_ADD_avx512 _mm512_add_pd
#define CYR_VD_SUB_avx512 _mm512_sub_pd
#define CYR_VD_MUL_avx512 _mm512_mul_pd
#define CYR_VD_SET1_avx512 _mm512_set1_pd

#define CYR_VD_GLUE_(a, b) a##b
#define CYR_VD_OF_(name, isa) CYR_VD_GLUE_(name, isa)
#define CYR_VD CYR_VD_OF_(CYR_VD_T_, CYR_ISA_SUFFIX)
#define CYR_VD_N CYR_VD_OF_(CYR_VD_N_, CYR_ISA_SUFFIX)
#define CYR_VD_LOADU CYR_VD_OF_(CYR_VD_LOADU_, CYR_ISA_SUFFIX)
#define CYR_VD_STOREU CYR_VD_OF_(CYR_VD_STOREU_, CYR_ISA_SUFFIX)
#define CYR_VD_ADD CYR_VD_OF_(CYR_VD_ADD_, CYR_ISA_SUFFIX)
#define CYR_VD_SUB CYR_VD_OF_(CYR_VD_SUB_, CYR_ISA_SUFFIX)
#define CYR_VD_MUL CYR_VD_OF_(CYR_VD_MUL_, CYR_ISA_SUFFIX)
#define CYR_VD_SET1 CYR_VD_OF_(CYR_VD_SET1_, CYR_ISA_SUFFIX)
#define CYR_VD_ZERO_IF_POS CYR_ISA_FN(vd_zero_if_pos)
#define CYR_VD_ADD_ON_FMA CYR_ISA_FN(vd_add_on_fma)
#endif /* CYR_ISA_DISPATCH */

#endif /* CYRELU_VECD_H */
