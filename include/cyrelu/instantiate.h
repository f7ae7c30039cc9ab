/* Instantiate a kernel template once per (element type, instruction set).
 *
 * Usage, from a kernel header:
 *     #define CYR_TEMPLATE "activations_template.h"
 *     #include "instantiate.h"
 *     #undef CYR_TEMPLATE
 * The template is included with CYR_T (float / double), CYR_SUFFIX (f32_base,
 * f64_avx2, ...: CYR_NAME glues it onto every name), CYR_TARGET (the instruction-set
 * attribute, empty for the baseline), CYR_ISA_ID (0, 1, 2: the CYR_ISA_* level, for the
 * rare loop written with that set's intrinsics) and CYR_ISA_SUFFIX (base, avx2, avx512:
 * CYR_ISA_FN glues it onto helpers that exist once per set) defined.  The AVX2 and
 * AVX-512 copies exist only where common.h enables runtime dispatch.  No include guard:
 * included once per template.
 *
 * A template that also handles float16 storage says so with `#define CYR_TEMPLATE_HALF 1`
 * before including this file.  It is then included a third time per instruction set,
 * after the float copy, with CYR_T = cyr_half (half.h), CYR_SUFFIX f16_ISA and
 * CYR_IS_HALF 1.  In every copy CYR_C is the type the arithmetic runs in (CYR_T, or
 * float for half) and CYR_F32(name) names the float copy of `name` for the same
 * instruction set, which the half copy runs on converted tiles.
 */
#include "half.h"
#define CYR_IS_HALF 0
#define CYR_C CYR_T
#ifndef CYR_TEMPLATE_HALF
#define CYR_TEMPLATE_HALF 0
#endif
#define CYR_F32(name) CYR_CAT(name, CYR_CAT3_(f32, CYR_ISA_SUFFIX))
#define CYR_CAT3_(a, b) CYR_CAT3__(a, b)
#define CYR_CAT3__(a, b) a##_##b

#define CYR_TARGET
#define CYR_ISA_ID 0  /* = CYR_ISA_BASE */
#define CYR_ISA_SUFFIX base
#define CYR_T float
#define CYR_SUFFIX f32_base
#include CYR_TEMPLATE
#undef CYR_T
#undef CYR_SUFFIX
#define CYR_T double
#define CYR_SUFFIX f64_base
#include CYR_TEMPLATE
#undef CYR_T
#undef CYR_SUFFIX
#if CYR_TEMPLATE_HALF
#undef CYR_IS_HALF
#undef CYR_C
#define CYR_IS_HALF 1
#define CYR_C float
#define CYR_T cyr_half
#define CYR_SUFFIX f16_base
#include CYR_TEMPLATE
#undef CYR_T
#undef CYR_SUFFIX
#undef CYR_C
#undef CYR_IS_HALF
#define CYR_IS_HALF 0
#define CYR_C CYR_T
#endif
#undef CYR_TARGET
#undef CYR_ISA_ID
#undef CYR_ISA_SUFFIX

#if CYR_ISA_DISPATCH
#define CYR_TARGET CYR_TARGET_AVX2
#define CYR_ISA_ID 1  /* = CYR_ISA_AVX2 */
#define CYR_ISA_SUFFIX avx2
#define CYR_T float
#define CYR_SUFFIX f32_avx2
#include CYR_TEMPLATE
#undef CYR_T
#undef CYR_SUFFIX
#define CYR_T double
#define CYR_SUFFIX f64_avx2
#include CYR_TEMPLATE
#undef CYR_T
#undef CYR_SUFFIX
#if CYR_TEMPLATE_HALF
#undef CYR_IS_HALF
#undef CYR_C
#define CYR_IS_HALF 1
#define CYR_C float
#define CYR_T cyr_half
#define CYR_SUFFIX f16_avx2
#include CYR_TEMPLATE
#undef CYR_T
#undef CYR_SUFFIX
#undef CYR_C
#undef CYR_IS_HALF
#define CYR_IS_HALF 0
#define CYR_C CYR_T
#endif
#undef CYR_TARGET
#undef CYR_ISA_ID
#undef CYR_ISA_SUFFIX

#define CYR_TARGET CYR_TARGET_AVX512
#define CYR_ISA_ID 2  /* = CYR_ISA_AVX512 */
#define CYR_ISA_SUFFIX avx512
#define CYR_T float
#define CYR_SUFFIX f32_avx512
#include CYR_TEMPLATE
#undef CYR_T
#undef CYR_SUFFIX
#define CYR_T double
#define CYR_SUFFIX f64_avx512
#include CYR_TEMPLATE
#undef CYR_T
#undef CYR_SUFFIX
#if CYR_TEMPLATE_HALF
#undef CYR_IS_HALF
#undef CYR_C
#define CYR_IS_HALF 1
#define CYR_C float
#define CYR_T cyr_half
#define CYR_SUFFIX f16_avx512
#include CYR_TEMPLATE
#undef CYR_T
#undef CYR_SUFFIX
#undef CYR_C
#undef CYR_IS_HALF
#define CYR_IS_HALF 0
#define CYR_C CYR_T
#endif
#undef CYR_TARGET
#undef CYR_ISA_ID
#undef CYR_ISA_SUFFIX
#endif

#undef CYR_IS_HALF
#undef CYR_C
#undef CYR_TEMPLATE_HALF
