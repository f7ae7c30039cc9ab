/* C-level check of the kernel headers in include/cyrelu/, on whatever machine and
 * architecture this is compiled for: x86-64 natively, aarch64 cross-compiled and run
 * under qemu-user (tools/check_arm64.sh), and from the test suite
 * (tests/test_c_kernels.py).  Each kernel is compared with a plain scalar reference
 * written here:
 *
 *   - relu / leaky_relu forward and backward (cyr_unary_*, cyr_binary_* and their
 *     strided forms, in place and out of place) for float, double and float16, with
 *     NaN, -0.0, +-inf and subnormal inputs; float16 over all 65,536 bit patterns;
 *   - the float16 conversions of half.h: half -> float over all 65,536 patterns
 *     (exact, NaN quietened), float -> half (round to nearest even) over every
 *     float16 value, every midpoint between neighbours and the floats beside it, every
 *     combination of the top 19 bits with chosen low bits, and random patterns,
 *     against a reference computed in double and, on aarch64, against the hardware's
 *     own conversion (__fp16);
 *   - the diagnostic counts (cyr_diag_count_*) over several box layouts and strides;
 *   - BatchNorm: training forward per channel and in the row layout, the eval
 *     forward, and the backward (per channel, pipelined, row layout), against double
 *     references;
 *   - PReLU (cyr_prelu_*, check_prelu.h): forward, grad_input, the grad_weight piece
 *     sums and the one-pass backward.
 *
 * Where the headers compile several instruction-set copies (x86-64), every copy the
 * CPU supports is checked.  Prints one line per failure and a summary
 * "kernel_check: N passed, M failed"; exits 1 on any failure.
 *
 * Build (see tools/check_arm64.sh):
 *   cc -O3 -fno-math-errno -fno-trapping-math -Itests/c/shim -Iinclude \
 *      tests/c/kernel_check.c -o kernel_check -lm
 * tests/c/shim/Python.h stands in for Python's header (only Py_ssize_t is used).
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cyrelu/activations.h"
#include "cyrelu/batchnorm.h"
#include "cyrelu/diagnostics.h"
#include "cyrelu/prelu.h"

/* ---- bookkeeping --------------------------------------------------------------------- */
static long n_passed = 0, n_failed = 0;
static const char *isa_name = "base";

static void pass(void) { ++n_passed; }

static void fail_msg(const char *fmt, ...) {
    va_list ap;
    ++n_failed;
    if (n_failed > 50) return;
    fprintf(stderr, "FAIL [%s] ", isa_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "kernel_check: out of memory\n");
        exit(2);
    }
    return p;
}

/* xorshift64*: reproducible inputs */
static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}
static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1p-53; }

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* ---- float16 references ---------------------------------------------------------------
 * Written independently of half.h: exponent and mantissa fields scaled with ldexp, and
 * rounding by rint() of the value divided by its quantum, in double. */

/* half -> float bits: exact; NaN keeps sign and payload, quiet bit set. */
static uint32_t ref_h2f_bits(uint16_t h) {
    const uint32_t s = (uint32_t)(h & 0x8000u) << 16;
    const int e = (h >> 10) & 31;
    const uint32_t m = h & 0x3FFu;
    double v;
    if (e == 31) return s | 0x7F800000u | (m << 13) | (m ? 0x400000u : 0u);
    v = e == 0 ? ldexp((double)m, -24) : ldexp((double)(m + 1024), e - 25);
    return s | f32_bits((float)v);
}
static float ref_h2f(uint16_t h) { return bits_f32(ref_h2f_bits(h)); }

/* float -> half, round to nearest even; NaN: quiet, sign and top 10 payload bits kept. */
static uint16_t ref_f2h(float f) {
    const uint32_t b = f32_bits(f);
    const uint16_t s = (uint16_t)((b >> 16) & 0x8000u);
    double a, q, r;
    int e, E;
    uint32_t h;
    if (isnan(f)) return (uint16_t)(s | 0x7E00u | ((b >> 13) & 0x3FFu));
    if (isinf(f)) return (uint16_t)(s | 0x7C00u);
    a = fabs((double)f);
    if (a == 0) return s;
    (void)frexp(a, &e);              /* a = m * 2**e, m in [0.5, 1) */
    E = e - 1 < -14 ? -14 : e - 1;   /* the binade, clamped to the subnormal one */
    q = ldexp(1.0, E - 10);          /* the half quantum in that binade */
    r = rint(a / q);                 /* exact division; rint rounds to nearest even */
    /* (E + 15) << 10 | (r - 1024) for normals; r itself for subnormals (E == -14, so the
     * same formula); r == 2048 carries into the next binade; too large is infinity. */
    h = ((uint32_t)(E + 15) << 10) + (uint32_t)r - 1024u;
    if (E > 15 || h >= 0x7C00u) h = 0x7C00u;
    return (uint16_t)(s | h);
}

static int half_is_nan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }

#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#  define HAVE_HW_HALF 1
/* The hardware's conversions (fcvt), through the compiler's __fp16 storage type. */
static uint16_t hw_f2h(float f) {
    volatile float vf = f;
    __fp16 h = (__fp16)vf;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}
static uint32_t hw_h2f_bits(uint16_t u) {
    __fp16 h;
    volatile float f;
    memcpy(&h, &u, 2);
    f = (float)h;
    return f32_bits(f);
}
#else
#  define HAVE_HW_HALF 0
#endif

/* ---- float16 conversions ------------------------------------------------------------- */
typedef void (*h2f_fn)(const cyr_half *, float *, Py_ssize_t);
typedef void (*f2h_fn)(const float *, cyr_half *, Py_ssize_t);

static void check_h2f(const char *name, h2f_fn h2f) {
    cyr_half *src = xmalloc(65536 * sizeof(cyr_half));
    float *dst = xmalloc(65536 * sizeof(float));
    long bad = 0;
    for (uint32_t i = 0; i < 65536; ++i) src[i] = (cyr_half)i;
    h2f(src, dst, 65536);
    for (uint32_t i = 0; i < 65536; ++i) {
        const uint32_t want = ref_h2f_bits((uint16_t)i);
        if (f32_bits(dst[i]) != want || f32_bits(cyr_h2f_scalar((cyr_half)i)) != want) {
            if (bad++ < 5)
                fail_msg("%s(0x%04x) = 0x%08x (scalar 0x%08x), want 0x%08x", name, i,
                         f32_bits(dst[i]), f32_bits(cyr_h2f_scalar((cyr_half)i)), want);
        }
    }
    if (bad == 0) pass();
    else fail_msg("%s: %ld of 65536 half patterns wrong", name, bad);
    free(src);
    free(dst);
}

/* The float inputs of the float -> half check (see the file's comment). */
static float *f2h_inputs(Py_ssize_t *count) {
    static const uint32_t lows[] = {0x0000, 0x0001, 0x07FF, 0x0FFF, 0x1000, 0x1001, 0x17FF, 0x1FFF};
    const Py_ssize_t n_low = (Py_ssize_t)(sizeof lows / sizeof lows[0]);
    const Py_ssize_t cap = ((Py_ssize_t)1 << 19) * n_low + 0x7C00 * 6 + 65536 + ((Py_ssize_t)1 << 18);
    float *v = xmalloc((size_t)cap * sizeof(float));
    Py_ssize_t n = 0;
    uint64_t s = 99;
    for (uint32_t hi = 0; hi < (1u << 19); ++hi)
        for (Py_ssize_t k = 0; k < n_low; ++k) v[n++] = bits_f32((hi << 13) | lows[k]);
    for (uint32_t h = 0; h < 0x7C00u; ++h) {
        /* the midpoint of h and h + 1 (exact in float), and its float neighbours */
        const float mid = h + 1 == 0x7C00u ? 65520.0f
                                           : (float)(((double)ref_h2f((uint16_t)h) +
                                                      (double)ref_h2f((uint16_t)(h + 1))) / 2);
        const float m3[3] = {mid, nextafterf(mid, 0.0f), nextafterf(mid, INFINITY)};
        for (int k = 0; k < 3; ++k) { v[n++] = m3[k]; v[n++] = -m3[k]; }
    }
    for (uint32_t h = 0; h < 65536; ++h) v[n++] = ref_h2f((uint16_t)h);  /* every half value */
    for (Py_ssize_t k = 0; k < ((Py_ssize_t)1 << 18); ++k) v[n++] = bits_f32((uint32_t)rng_next(&s));
    *count = n;
    return v;
}

static void check_f2h(const char *name, f2h_fn f2h, const float *in, Py_ssize_t n) {
    const Py_ssize_t chunk = 4096;
    cyr_half *out = xmalloc((size_t)chunk * sizeof(cyr_half));
    long bad = 0, bad_hw = 0;
    for (Py_ssize_t i0 = 0; i0 < n; i0 += chunk) {
        const Py_ssize_t m = n - i0 < chunk ? n - i0 : chunk;
        f2h(in + i0, out, m);
        for (Py_ssize_t i = 0; i < m; ++i) {
            const float f = in[i0 + i];
            const uint16_t want = ref_f2h(f);
            const uint16_t sc = cyr_f2h_scalar(f);
            if (out[i] != want || sc != want) {
                if (bad++ < 10)
                    fail_msg("%s(%a = 0x%08x) = 0x%04x (scalar 0x%04x), want 0x%04x", name,
                             (double)f, f32_bits(f), out[i], sc, want);
            }
#if HAVE_HW_HALF
            {
                const uint16_t hw = hw_f2h(f);
                if (hw != want || hw != out[i]) {
                    if (bad_hw++ < 10)
                        fail_msg("%s(%a = 0x%08x): kernel 0x%04x, reference 0x%04x, "
                                 "hardware 0x%04x", name, (double)f, f32_bits(f), out[i], want, hw);
                }
            }
#endif
        }
    }
    if (bad == 0) pass();
    else fail_msg("%s: %ld of %ld floats converted wrongly", name, bad, (long)n);
#if HAVE_HW_HALF
    if (bad_hw == 0) pass();
    else fail_msg("%s: %ld of %ld floats differ from the hardware conversion", name, bad_hw, (long)n);
#endif
    (void)bad_hw;
    free(out);
}

static void check_half_conversions(int level) {
    Py_ssize_t n;
    float *in = f2h_inputs(&n);
#if HAVE_HW_HALF
    {   /* the references themselves against the hardware, all 65536 half patterns */
        long bad = 0;
        for (uint32_t i = 0; i < 65536; ++i)
            if (hw_h2f_bits((uint16_t)i) != ref_h2f_bits((uint16_t)i) && bad++ < 5)
                fail_msg("hardware half->float(0x%04x) = 0x%08x, reference 0x%08x", i,
                         hw_h2f_bits((uint16_t)i), ref_h2f_bits((uint16_t)i));
        if (bad == 0) pass();
    }
#endif
    if (level == CYR_ISA_BASE) {
        check_h2f("cyr_h2f_base", cyr_h2f_base);
        check_f2h("cyr_f2h_base", cyr_f2h_base, in, n);
    }
#if CYR_ISA_DISPATCH
    if (level == CYR_ISA_AVX2) {
        check_h2f("cyr_h2f_avx2", cyr_h2f_avx2);
        check_f2h("cyr_f2h_avx2", cyr_f2h_avx2, in, n);
    }
    if (level == CYR_ISA_AVX512) {
        check_h2f("cyr_h2f_avx512", cyr_h2f_avx512);
        check_f2h("cyr_f2h_avx512", cyr_f2h_avx512, in, n);
    }
#endif
    free(in);
}

/* ---- float and double: activations, diagnostics, BatchNorm --------------------------- */
#define CT float
#define CS f32
#define CT_NAME "f32"
#define CT_EPS ((double)FLT_EPSILON)
#include "check_typed.h"
#undef CT
#undef CS
#undef CT_NAME
#undef CT_EPS
#define CT double
#define CS f64
#define CT_NAME "f64"
#define CT_EPS DBL_EPSILON
#include "check_typed.h"
#undef CT
#undef CS
#undef CT_NAME
#undef CT_EPS

/* ---- float16 activations and diagnostics ---------------------------------------------- */
static uint16_t ref_half_unary(int op, uint16_t h, float a) {
    const float v = ref_h2f(h);
    return ref_f2h(op == CYR_ACT_RELU ? ref_relu_f32(v) : ref_leaky_f32(v, a));
}
static uint16_t ref_half_binary(int op, uint16_t g, uint16_t h, float a) {
    const float gv = ref_h2f(g), v = ref_h2f(h);
    return ref_f2h(op == CYR_ACT_RELU ? ref_relu_bw_f32(gv, v) : ref_leaky_bw_f32(gv, v, a));
}
static int same_half(uint16_t a, uint16_t b) {
    return a == b || (half_is_nan(a) && half_is_nan(b));
}

static void expect_half(const char *what, int op, float a, const cyr_half *g, const cyr_half *x,
                        const cyr_half *out, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; ++i) {
        const uint16_t want = g ? ref_half_binary(op, g[i], x[i], a) : ref_half_unary(op, x[i], a);
        if (!same_half(out[i], want)) {
            fail_msg("%s f16 op %d a=%g: element %ld: g=0x%04x x=0x%04x got 0x%04x want 0x%04x",
                     what, op, (double)a, (long)i, g ? g[i] : 0, x[i], out[i], want);
            return;
        }
    }
    pass();
}

static void check_half_activations(void) {
    /* every half pattern as x; 65536 halves (128 KiB) are above the streaming threshold */
    const Py_ssize_t sizes[] = {1000, 65536};
    const float alphas[] = {0.01f, 0.0f, -0.25f, 2.0f};
    for (int si = 0; si < 2; ++si) {
        const Py_ssize_t n = sizes[si];
        cyr_half *x = xmalloc((size_t)n * sizeof(cyr_half)), *g = xmalloc((size_t)n * sizeof(cyr_half));
        cyr_half *yb = xmalloc((size_t)(2 * n + 2) * sizeof(cyr_half)), *y = yb + 1;
        cyr_half *xs = xmalloc((size_t)(2 * n) * sizeof(cyr_half));
        cyr_half *rev = xmalloc((size_t)n * sizeof(cyr_half));
        uint64_t s = 5;
        for (Py_ssize_t i = 0; i < n; ++i) {
            x[i] = (cyr_half)(n == 65536 ? i : (Py_ssize_t)(rng_next(&s) & 0xFFFF));
            g[i] = (cyr_half)(rng_next(&s) & 0xFFFF);
            xs[2 * i] = x[i];
            xs[2 * i + 1] = 0x3C00;
        }
        for (int op = CYR_ACT_RELU; op <= CYR_ACT_LEAKY_RELU; ++op) {
            for (int ai = 0; ai < 4; ++ai) {
                const float a = alphas[ai];
                if (op == CYR_ACT_RELU && ai > 0) break;
                cyr_unary_f16(op, x, y, n, a, 0.0f);
                expect_half("unary", op, a, NULL, x, y, n);
                memcpy(y, x, (size_t)n * sizeof(cyr_half));
                cyr_unary_f16(op, y, y, n, a, 0.0f);
                expect_half("unary in place", op, a, NULL, x, y, n);
                cyr_unary_strided_f16(op, (const char *)xs, 4, (char *)(y + n - 1), -2, n, a, 0.0f);
                for (Py_ssize_t i = 0; i < n; ++i) rev[i] = y[n - 1 - i];
                expect_half("unary strided", op, a, NULL, x, rev, n);
                cyr_binary_f16(op, g, x, y, n, a, 0.0f);
                expect_half("binary", op, a, g, x, y, n);
                memcpy(y, g, (size_t)n * sizeof(cyr_half));
                cyr_binary_f16(op, y, x, y, n, a, 0.0f);
                expect_half("binary out==g", op, a, g, x, y, n);
                memcpy(y, x, (size_t)n * sizeof(cyr_half));
                cyr_binary_f16(op, g, y, y, n, a, 0.0f);
                expect_half("binary out==x", op, a, g, x, y, n);
                cyr_binary_strided_f16(op, (const char *)(g + n - 1), -2, (const char *)xs, 4,
                                       (char *)y, 2, n, a, 0.0f);
                for (Py_ssize_t i = 0; i < n; ++i) rev[i] = g[n - 1 - i];
                expect_half("binary strided", op, a, rev, x, y, n);
            }
        }
        free(x); free(g); free(yb); free(xs); free(rev);
    }
}

static void half_diag_case(const char *what, const char *x, Py_ssize_t so, Py_ssize_t sc,
                           Py_ssize_t si, Py_ssize_t O, Py_ssize_t C, Py_ssize_t I) {
    const float ts[] = {0.0f, 0.5f, -1.0f};
    Py_ssize_t *acc = xmalloc((size_t)C * sizeof(Py_ssize_t));
    for (int op = 0; op < 2; ++op) {
        for (int ti = 0; ti < 3; ++ti) {
            const float t = ts[ti];
            int ok = 1;
            if (op == CYR_DIAG_ZEROS && ti > 0) break;
            for (Py_ssize_t c = 0; c < C; ++c) acc[c] = 7;
            cyr_diag_count_f16(op, x, so, sc, si, 0, O, 0, C, 0, I, t, acc);
            for (Py_ssize_t c = 0; c < C && ok; ++c) {
                Py_ssize_t want = 7;
                for (Py_ssize_t o = 0; o < O; ++o)
                    for (Py_ssize_t i = 0; i < I; ++i) {
                        const uint16_t h = *(const uint16_t *)(x + o * so + c * sc + i * si);
                        const float v = ref_h2f(h);
                        want += op == CYR_DIAG_ZEROS ? (!isnan(v) && v == 0) : (isnan(v) || v > t);
                    }
                if (acc[c] != want) {
                    fail_msg("diag %s f16 op %d t=%g: channel %ld: got %ld want %ld", what, op,
                             (double)t, (long)c, (long)acc[c], (long)want);
                    ok = 0;
                }
            }
            if (ok) pass();
        }
    }
    free(acc);
}

static void check_half_diagnostics(void) {
    const Py_ssize_t O = 4, C = 16, I = 1024;  /* 65536 elements: every half pattern */
    cyr_half *x = xmalloc((size_t)(O * C * I) * sizeof(cyr_half));
    uint64_t s = 17;
    for (Py_ssize_t i = 0; i < O * C * I; ++i) x[i] = (cyr_half)i;
    for (Py_ssize_t i = O * C * I - 1; i > 0; --i) {  /* shuffled */
        const Py_ssize_t j = (Py_ssize_t)(rng_next(&s) % (uint64_t)(i + 1));
        cyr_half t = x[i]; x[i] = x[j]; x[j] = t;
    }
    for (Py_ssize_t i = 0; i < O * C * I; i += 3) x[i] = (rng_next(&s) & 1) ? 0x8000 : 0;
    half_diag_case("NCHW", (const char *)x, C * I * 2, I * 2, 2, O, C, I);
    half_diag_case("channels-last", (const char *)x, C * I * 2, 2, C * 2, O, C, I);
    half_diag_case("(N, C)", (const char *)x, 64 * 2, 2, 2, 1024, 64, 1);
    half_diag_case("reversed channels", (const char *)(x + (C - 1) * I), C * I * 2, -I * 2, 2, O, C, I);
    free(x);
}

#include "check_prelu.h"

/* --------------------------------------------------------------------------------------- */
/* The per-channel shift's elements (cyr_bn_shift_cols, batchnorm.h): whole lane groups
 * or the whole row, within the row, and at least a 256th of the chunk (the bound
 * cyr_bn_shift_done states rests on it). */
static void check_shift_elements(void) {
    static const Py_ssize_t rows[] = {1, 2, 3, 7, 20, 255, 256, 257, 511, 1000, 4096};
    static const Py_ssize_t inner[] = {1, 15, 16, 17, 32, 49, 784, 3079, 3136, 50176};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; ++i)
        for (size_t j = 0; j < sizeof inner / sizeof inner[0]; ++j) {
            const Py_ssize_t r = rows[i], w = inner[j], m = CYR_BN_SHIFT_ROWS(r);
            const Py_ssize_t e = cyr_bn_shift_cols(r, w);
            if (e < 1 || e > w || (e % CYR_BN_LANES != 0 && e != w) || m > r ||
                256 * m * e < r * w)
                fail_msg("shift elements of %ld rows of %ld: %ld of each of %ld rows", (long)r,
                         (long)w, (long)e, (long)m);
            else
                pass();
        }
}

static const char *level_name(int level) {
    return level == CYR_ISA_AVX512 ? "avx512" : level == CYR_ISA_AVX2 ? "avx2" : "base";
}

int main(void) {
    int max_level;
    /* A small L2, so that outputs of 32 KiB and more take the streaming-store paths
     * (x86-64) with arrays that stay small. */
    setenv("CYRELU_L2_BYTES", "64K", 1);
    max_level = cyr_isa_level();
    printf("kernel_check: %s, instruction sets checked: base",
#if defined(__aarch64__)
           "aarch64"
#elif defined(__x86_64__) || defined(_M_X64)
           "x86-64"
#else
           "other architecture"
#endif
    );
    for (int level = CYR_ISA_AVX2; level <= max_level; ++level) printf(", %s", level_name(level));
    printf("; streaming stores %s; hardware float16 reference %s\n",
           CYR_HAVE_STREAM ? "compiled" : "not compiled", HAVE_HW_HALF ? "yes" : "no");
    check_shift_elements();
    for (int level = CYR_ISA_BASE; level <= max_level; ++level) {
        cyr_isa_cached = level;  /* the entry points dispatch to this copy */
        isa_name = level_name(level);
        check_half_conversions(level);
        check_activations_f32();
        check_activations_f64();
        check_half_activations();
        check_diagnostics_f32();
        check_diagnostics_f64();
        check_half_diagnostics();
        check_batchnorm_f32();
        check_batchnorm_f64();
        check_prelu_f32();
        check_prelu_f64();
        check_prelu_f16();
    }
    printf("kernel_check: %ld passed, %ld failed\n", n_passed, n_failed);
    return n_failed == 0 ? 0 : 1;
}
