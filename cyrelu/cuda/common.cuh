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

/* The math of one element: the same expressions as include/cyrelu/activations_template.h.
 * Written as comparisons, never fmaxf: fmaxf(NaN, 0) is 0, and ReLU must keep NaN
 * (and -0.0).  NaN compares false, so relu(NaN) = NaN, relu_backward passes g where
 * x is NaN, and the leaky pair take the alpha branch. */
#define CYR_OP_RELU 0
#define CYR_OP_LEAKY 1

template <int OP, typename A> __device__ __forceinline__ A cyr_fwd(A v, A a) {
    if (OP == CYR_OP_RELU) return v < A(0) ? A(0) : v;
    return v > A(0) ? v : a * v;
}

template <int OP, typename A> __device__ __forceinline__ A cyr_bwd(A g, A v, A a) {
    if (OP == CYR_OP_RELU) return v <= A(0) ? A(0) : g;
    return v > A(0) ? g : a * g;
}

/* Grid-stride loop helpers: 64-bit indices throughout (arrays may exceed 2**31). */
__device__ __forceinline__ long long cyr_tid() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ long long cyr_nthreads() {
    return (long long)gridDim.x * blockDim.x;
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
