/* The BatchNorm kernels' cost per element with the data in cache: the arithmetic, not
 * the memory traffic (benchmarks/bn_floor.py measures whole calls against a copy).  One
 * thread, float32, each figure the best of 7 rounds of repeated calls, in ns per element,
 * beside memcpy of the same bytes:
 *
 *   - per channel, one channel of NCHW (32, 64, 56, 56) (392 KiB): the statistics, the
 *     training forward, the backward (ungated, and gated by relu from the output), and
 *     its second pass alone (dx from given sums);
 *   - the row layout, (98, 1024) (392 KiB): the column statistics, the backward's dot
 *     (ungated and gated), dx (ungated and gated).
 *
 * Build and run from the repository root (CYRELU_ISA=base|avx2 caps the copy, as for the
 * extension):
 *   cc -O3 -fno-math-errno -fno-trapping-math -ffp-contract=off -Itests/c/shim -Iinclude \
 *      benchmarks/bn_kernel_cost.c -o /tmp/bn_kernel_cost -lm && /tmp/bn_kernel_cost
 * (the extension's own flags: setup.py's optimisation_flags).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cyrelu/activations.h"
#include "cyrelu/batchnorm.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define REPS 1000
#define TIME(label, n, stmt)                                                              \
    do {                                                                                   \
        double best = 1e30;                                                                \
        for (int r = 0; r < 7; ++r) {                                                      \
            const double t0 = now();                                                       \
            for (int k = 0; k < REPS; ++k) {                                               \
                stmt;                                                                      \
            }                                                                              \
            const double e = now() - t0;                                                   \
            if (e < best) best = e;                                                        \
        }                                                                                  \
        printf("%-34s %.3f ns/element\n", label, best / REPS / (double)(n) * 1e9);        \
    } while (0)

/* The shape and the flags reach the kernels through these, which the compiler cannot
 * see through: with literals, GCC specialised the kernels to them (interprocedural
 * constant propagation) and, in some of those copies, kept the AVX2 reductions'
 * accumulators on the stack, which the extension's kernels (called with run-time
 * values) do not: the AVX2 channel statistics measured 0.30 ns an element, not 0.17. */
static volatile Py_ssize_t v_outer = 32, v_inner = 3136, v_w = 1024, v_one = 1, v_zero = 0;

int main(void) {
    const Py_ssize_t outer = v_outer, inner = v_inner, n = outer * inner, w = v_w, rows = n / w;
    const Py_ssize_t C = v_one, c = v_zero;
    const int i0 = (int)v_zero, i1 = (int)v_one;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    float *dy = malloc(n * sizeof(float)), *dx = malloc(n * sizeof(float));
    static float one[1024], zero[1024], fm[1024], fk[1024], fmdy[1024], fA[1024];
    static double gm[1024], gv[1024], tm[3 * 1024], s0[1024], s1[1024];
    double mean = 0, m2 = 0, var = 0, sums[2] = {1.0, 2.0};
    srand(1);
    for (Py_ssize_t i = 0; i < n; ++i) {
        x[i] = (float)(rand() % 1000) / 100.f - 5.f;
        dy[i] = (float)(rand() % 1000) / 500.f - 1.f;
        y[i] = x[i] > 0 ? x[i] : 0.f;
    }
    for (int j = 0; j < 1024; ++j) {
        one[j] = 1.f;
        fm[j] = 0.1f;
        fk[j] = 0.2f;
        fmdy[j] = 0.3f;
        fA[j] = 0.4f;
    }
    TIME("memcpy", n, memcpy(dx, x, n * sizeof(float)); __asm__ volatile("" ::"r"(dx) : "memory"));
    TIME("channel: statistics", n, cyr_bn_channel_stats_f32(x, outer, C, inner, c, &mean, &m2));
    TIME("channel: training forward", n,
         cyr_bn_train_channel_f32(x, y, outer, C, inner, c, 1.0, 0.0, 1e-5, i0, 0.f, 0.f, i0,
                                  NULL, NULL, &mean, &var));
    for (Py_ssize_t i = 0; i < n; ++i) y[i] = x[i] > 0 ? x[i] : 0.f;
    TIME("channel: backward", n,
         cyr_bn_backward_channel_f32(dy, x, NULL, dx, outer, C, inner, c, 0.0, 0.3, 1.0, i1, i0,
                                     0.f, 0.f, one, zero, i0, sums));
    TIME("channel: backward, relu from y", n,
         cyr_bn_backward_channel_f32(dy, x, y, dx, outer, C, inner, c, 0.0, 0.3, 1.0, i1, i1,
                                     0.f, 0.f, one, zero, i0, sums));
    sums[0] = 1.0;
    sums[1] = 2.0;
    TIME("channel: dx pass", n,
         cyr_bn_channel_dx_f32(dy, x, NULL, dx, outer, C, inner, c, 0.0, 0.3, 1.0, sums,
                               (double)n, i1, i0, 0.f, 0.f, one, zero, i0));
    TIME("channel: dx pass, relu from y", n,
         cyr_bn_channel_dx_f32(dy, x, y, dx, outer, C, inner, c, 0.0, 0.3, 1.0, sums,
                               (double)n, i1, i1, 0.f, 0.f, one, zero, i0));
    TIME("rows: column statistics", n,
         cyr_bn_group_colstats_f32(x, rows, w, rows, gm, gv, tm));
    TIME("rows: backward dot", n,
         cyr_bn_dot_cols_f32(i0, dy, x, NULL, rows, w, gm, 0.f, 0.f, one, zero, s0, s1, NULL));
    TIME("rows: backward dot, relu from y", n,
         cyr_bn_dot_cols_f32(i1, dy, x, y, rows, w, gm, 0.f, 0.f, one, zero, s0, s1, NULL));
    TIME("rows: dx", n,
         cyr_bn_dx_cols_f32(i0, i1, dy, x, NULL, dx, rows, w, fm, fk, fmdy, fA, 0.f, 0.f, one,
                            zero));
    TIME("rows: dx, relu from y", n,
         cyr_bn_dx_cols_f32(i1, i1, dy, x, y, dx, rows, w, fm, fk, fmdy, fA, 0.f, 0.f, one,
                            zero));
    printf("(checksums %g %g %g %g)\n", mean, var, s0[0], (double)dx[0]);
    free(x);
    free(y);
    free(dy);
    free(dx);
    return 0;
}
