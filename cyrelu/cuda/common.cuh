/* Shared device helpers for cyrelu's CUDA kernels.
 *
 * Included by the kernel sources (elementwise.cu, batchnorm.cu).  The Python
 * loader inlines this file into each source before compiling it with NVRTC, so
 * the kernels need no include paths and no CUDA headers at all: NVRTC's
 * built-ins (warp shuffles, sqrt) are all they use.
 *
 * float16 is carried as its bit pattern (cyr_half) and converted with the same
 * PTX instructions that cuda_fp16.h's __half2float / __float2half_rn emit
 * (cvt.f32.f16 and cvt.rn.f16.f32).  That keeps the sources free of the fp16
 * header, whose versions vary between CUDA releases and CuPy's bundled copy.
 * Half arithmetic is always done in float and rounded once, to nearest-even.
 */
#ifndef CYRELU_CUDA_COMMON_CUH
#define CYRELU_CUDA_COMMON_CUH

struct __align__(2) cyr_half {
    unsigned short bits;
};

/* Element type -> the type the math is done in (and its loads/stores). */
template <typename T> struct cyr_traits;

template <> struct cyr_traits<float> {
    typedef float acc;
    static __device__ __forceinline__ float load(float v) { return v; }
    static __device__ __forceinline__ float store(float v) { return v; }
};

template <> struct cyr_traits<double> {
    typedef double acc;
    static __device__ __forceinline__ double load(double v) { return v; }
    static __device__ __forceinline__ double store(double v) { return v; }
};

template <> struct cyr_traits<cyr_half> {
    typedef float acc;
#ifndef CYR_HOST_EMULATION
    static __device__ __forceinline__ float load(cyr_half h) {
        float f;
        asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.bits));
        return f;
    }
    static __device__ __forceinline__ cyr_half store(float f) {
        cyr_half h;
        asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(f));
        return h;
    }
#else /* the CPU emulation used by the tests (tests/cuda_emulation): the compiler's _Float16 */
    static float load(cyr_half h) {
        _Float16 v;
        __builtin_memcpy(&v, &h.bits, 2);
        return (float)v;
    }
    static cyr_half store(float f) {
        const _Float16 v = (_Float16)f;
        cyr_half h;
        __builtin_memcpy(&h.bits, &v, 2);
        return h;
    }
#endif
};

/* 16 bytes of T, loaded and stored as one 128-bit access (ld/st.global.v4 / v2.f64).
 * Only ever dereferenced at 16-byte-aligned addresses (the host checks). */
#ifndef CYR_CHECK_ALIGNED /* the CPU emulation checks what a GPU would fault on */
#define CYR_CHECK_ALIGNED(p, n)
#endif

template <typename T> struct __align__(16) cyr_pack {
    enum { N = 16 / sizeof(T) };
    T v[16 / sizeof(T)];
    static __device__ __forceinline__ cyr_pack load(const T *p) {
        CYR_CHECK_ALIGNED(p, 16);
        return *reinterpret_cast<const cyr_pack *>(p);
    }
    __device__ __forceinline__ void store(T *p) const {
        CYR_CHECK_ALIGNED(p, 16);
        *reinterpret_cast<cyr_pack *>(p) = *this;
    }
};

/* ---- float32 arithmetic that no compiler flag changes ---------------------------------
 * CuPy compiles every kernel with -ftz=true, which turns each float compare, multiply,
 * add and float<->double conversion into its flush-to-zero form (setp.lt.ftz.f32,
 * mul.ftz.f32, cvt.ftz.f64.f32): subnormal inputs and results become zero.  The CPU path
 * (and PyTorch) keep them, so every float32 operation whose result we promise to match
 * is written here without .ftz: compares on the bit pattern, arithmetic and conversions
 * as inline PTX (ptxas assembles inline PTX as written, whatever NVRTC's flags).  The
 * double overloads are plain C++ (.ftz does not exist for f64).  tests/test_cuda_compile.py
 * compiles every kernel with -ftz=true and checks that no .ftz.f32 instruction is left. */
#ifndef CYR_HOST_EMULATION
__device__ __forceinline__ unsigned cyr_bits(float v) { return __float_as_uint(v); }
__device__ __forceinline__ float cyr_mul(float a, float b) {
    float r;
    asm("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ float cyr_add(float a, float b) {
    float r;
    asm("add.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ float cyr_sub(float a, float b) {
    float r;
    asm("sub.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ float cyr_div(float a, float b) {
    float r;
    asm("div.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ double cyr_f64(float a) {
    double r;
    asm("cvt.f64.f32 %0, %1;" : "=d"(r) : "f"(a));
    return r;
}
__device__ __forceinline__ float cyr_f32(double a) {
    float r;
    asm("cvt.rn.f32.f64 %0, %1;" : "=f"(r) : "d"(a));
    return r;
}
#else /* the CPU emulation: the host compiler's IEEE arithmetic */
inline unsigned cyr_bits(float v) {
    unsigned u;
    __builtin_memcpy(&u, &v, 4);
    return u;
}
inline float cyr_mul(float a, float b) { return a * b; }
inline float cyr_add(float a, float b) { return a + b; }
inline float cyr_sub(float a, float b) { return a - b; }
inline float cyr_div(float a, float b) { return a / b; }
inline double cyr_f64(float a) { return (double)a; }
inline float cyr_f32(double a) { return (float)a; }
#endif
__device__ __forceinline__ double cyr_mul(double a, double b) { return a * b; }
__device__ __forceinline__ double cyr_add(double a, double b) { return a + b; }
__device__ __forceinline__ double cyr_sub(double a, double b) { return a - b; }
__device__ __forceinline__ double cyr_div(double a, double b) { return a / b; }
__device__ __forceinline__ double cyr_f64(double a) { return a; }
/* double -> the math type A (float or double) */
template <typename A> __device__ __forceinline__ A cyr_from_f64(double a);
template <> __device__ __forceinline__ float cyr_from_f64<float>(double a) { return cyr_f32(a); }
template <> __device__ __forceinline__ double cyr_from_f64<double>(double a) { return a; }

/* IEEE compares with 0 on the bit pattern (NaN compares false, -0.0 == 0.0). */
__device__ __forceinline__ bool cyr_eq0(float v) { return (cyr_bits(v) << 1) == 0u; }
__device__ __forceinline__ bool cyr_lt0(float v) {
    const unsigned u = cyr_bits(v);
    return u > 0x80000000u && u <= 0xff800000u; /* negative, not -0.0, not NaN */
}
__device__ __forceinline__ bool cyr_gt0(float v) {
    const unsigned u = cyr_bits(v);
    return u - 1u < 0x7f800000u; /* 0x00000001 ..= 0x7f800000: positive, not NaN */
}
__device__ __forceinline__ bool cyr_le0(float v) { return cyr_eq0(v) || cyr_lt0(v); }
/* v <= t: the bit patterns mapped to unsigned integers in the order of the values */
__device__ __forceinline__ unsigned cyr_order_key(float v) {
    unsigned u = cyr_bits(v);
    if ((u << 1) == 0u) u = 0u; /* -0.0 == 0.0 */
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ bool cyr_isnan(float v) { return (cyr_bits(v) << 1) > 0xff000000u; }
__device__ __forceinline__ bool cyr_le(float v, float t) {
    return !cyr_isnan(v) && !cyr_isnan(t) && cyr_order_key(v) <= cyr_order_key(t);
}
__device__ __forceinline__ bool cyr_eq0(double v) { return v == 0.0; }
__device__ __forceinline__ bool cyr_lt0(double v) { return v < 0.0; }
__device__ __forceinline__ bool cyr_gt0(double v) { return v > 0.0; }
__device__ __forceinline__ bool cyr_le0(double v) { return v <= 0.0; }
__device__ __forceinline__ bool cyr_le(double v, double t) { return v <= t; }

/* General compares on the bit pattern: ordered (false when either is NaN), -0.0 == 0.0. */
__device__ __forceinline__ bool cyr_lt(float v, float t) {
    return !cyr_isnan(v) && !cyr_isnan(t) && cyr_order_key(v) < cyr_order_key(t);
}
__device__ __forceinline__ bool cyr_lt(double v, double t) { return v < t; }

/* The math of one element: the activation table's (activation_table.h,
 * activation_math.h; the C kernels expand the same macros).  Its primitives here are
 * the bit-level compares above and cyr_mul / cyr_add / cyr_div, so no flush-to-zero
 * flag changes a result;
 * never fmaxf: fmaxf(NaN, 0) is 0, and ReLU must keep NaN (and -0.0). */
#include "activation_table.h"

#define CYR_K(c) A(c)
#define CYR_SEL(CMP, x, c, t, f) (CYR_CMP_##CMP((x), A(c)) ? (t) : (f))
#define CYR_SELV(CMP, x, y, t, f) (CYR_CMP_##CMP((x), (y)) ? (t) : (f))
#define CYR_CMP_LT(x, c) cyr_lt(x, c)
#define CYR_CMP_LE(x, c) cyr_le(x, c)
#define CYR_CMP_GT(x, c) cyr_lt(c, x)
#define CYR_CMP_GE(x, c) cyr_le(c, x)
#define CYR_MUL(a, b) cyr_mul((a), (b))
#define CYR_ADD(a, b) cyr_add((a), (b))
#define CYR_DIV(a, b) cyr_div((a), (b))
/* the smooth members: their double functions (activation_special.h) for every type, so
 * no flush-to-zero flag touches them; rounded once to the math type A */
#define CYR_SPECIAL(fn, v, a, b) cyr_from_f64<A>(cyr_##fn##_d(cyr_f64(v), cyr_f64(a), cyr_f64(b)))

/* OP: a CYR_ACT_* code; CYR_ACT_NONE (BatchNorm's no activation) is the identity. */
#define CYR_FWD_CASE_(name, NAME, code, params, from_output) \
    case CYR_ACT_##NAME: return CYR_FWD_##name(v, a, b);
#define CYR_BWD_CASE_(name, NAME, code, params, from_output) \
    case CYR_ACT_##NAME: return CYR_BWD_##name(g, v, a, b);
template <int OP, typename A> __device__ __forceinline__ A cyr_fwd(A v, A a, A b) {
    (void)a;
    (void)b;
    switch (OP) {
    CYR_ACTIVATIONS(CYR_FWD_CASE_)
    default: return v;
    }
}

template <int OP, typename A> __device__ __forceinline__ A cyr_bwd(A g, A v, A a, A b) {
    (void)a;
    (void)b;
    switch (OP) {
    CYR_ACTIVATIONS(CYR_BWD_CASE_)
    default: return g;
    }
}
#undef CYR_FWD_CASE_
#undef CYR_BWD_CASE_

/* Grid-stride loop helpers, in the kernel's index type I: long long (arrays may exceed
 * 2**31 elements), or int, which the host chooses only when every index the kernel
 * computes -- the size plus what a grid-stride loop runs past it -- stays below 2**31
 * (cyrelu/cuda/_launch.py, index_type): 32-bit multiplies, divisions and registers. */
template <typename I = long long> __device__ __forceinline__ I cyr_tid() {
    return (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x;
}
template <typename I = long long> __device__ __forceinline__ I cyr_nthreads() {
    return (I)gridDim.x * (I)blockDim.x;
}

/* Sum over the block (blockDim.x * blockDim.y a multiple of 32, at most 1024):
 * warp shuffles with the full mask (every lane of every warp takes part), then
 * the warps' partials in a fixed order.  The result is valid in thread 0 only.
 * `shared` must hold 32 doubles.  Deterministic: the same order every launch. */
__device__ __forceinline__ double cyr_warp_sum(double v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

__device__ __forceinline__ double cyr_block_sum(double v, double *shared) {
    const int t = threadIdx.x + threadIdx.y * blockDim.x;
    const int lane = t & 31, warp = t >> 5;
    const int nwarps = (blockDim.x * blockDim.y) >> 5;
    v = cyr_warp_sum(v);
    __syncthreads(); /* `shared` may still be read from a previous call */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nwarps ? shared[lane] : 0.0;
        v = cyr_warp_sum(v);
    }
    return v;
}

#endif /* CYRELU_CUDA_COMMON_CUH */
