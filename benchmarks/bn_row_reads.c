/* BatchNorm's row-layout kernels reading whole (rows, w) arrays, one thread: the first
 * passes, which read four rows at a time.  (4096, 1024) by default (rows of 4 KiB; float32:
 * 16 MiB an array), each figure the best of 15 rounds in microseconds, with the arrays
 * from memory (a 64 MiB read before every call) and from the L3 (no flush; where they
 * fit there):
 *
 *   - memcpy of x, and a plain read of x (and of x and dy) in order;
 *   - the statistics as the extension takes them: 64 row groups, each in blocks
 *     (BLOCK rows: 256 for float32, what a quarter of a 1 MiB L2 holds for float64),
 *     merged;
 *   - the backward's sums (bn_dot_cols, ungated) over the same groups, and its input
 *     gradient pass with streamed stores (bn_dx_cols_stream).
 *
 * Build and run from the repository root; -DF64 for float64, ROWS and W as the
 * arguments (the last two; the first is 1 for the flush, 0 without):
 *   cc -O3 -fno-math-errno -fno-trapping-math -ffp-contract=off -Itests/c/shim -Iinclude \
 *      benchmarks/bn_row_reads.c -o /tmp/bn_row_reads -lm && /tmp/bn_row_reads 1
 * The statistics' call is GROUP_COLSTATS(x, rows, w, block_rows, stats): headers before
 * the one-read statistics took two scratch arrays instead of one, so the figures against
 * them came from this file built with
 *   '-DGROUP_COLSTATS(x,r,w,b,s)=cyr_bn_group_colstats_f32(x,r,w,b,s,s+w,s+2*w,s+3*w)'
 * (cyr_bn_group_colstats_f64 with -DF64) and -Iinclude of that version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cyrelu/activations.h"
#include "cyrelu/batchnorm.h"

#ifdef F64
typedef double T;
#define KN(name) cyr_bn_##name##_f64
#define IS_F64 1
#else
typedef float T;
#define KN(name) cyr_bn_##name##_f32
#define IS_F64 0
#endif
#ifndef GROUP_COLSTATS
#define GROUP_COLSTATS(x, r, w, b, s) KN(group_colstats)(x, r, w, b, s, s + (w), s + 2 * (w))
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static volatile float sink;

/* The sum of n floats from p into a (16 lanes): a plain read the compiler vectorises. */
static void sum_run(const float *restrict p, Py_ssize_t n, float *restrict a) {
    for (Py_ssize_t i = 0; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) a[j] += p[i + j];
}

#define GROUPS 64

int main(int argc, char **argv) {
    const int flush = argc > 1 ? atoi(argv[1]) : 1;
    const Py_ssize_t rows = argc > 2 ? atol(argv[2]) : 4096, w = argc > 3 ? atol(argv[3]) : 1024;
    const Py_ssize_t n = rows * w, gs = (rows + GROUPS - 1) / GROUPS;
    const Py_ssize_t fit = (1 << 20) / (4 * (Py_ssize_t)sizeof(T) * w);
    const Py_ssize_t block = IS_F64 ? (fit < 1 ? 1 : fit < 256 ? fit : 256) : 256;
    const Py_ssize_t fn = (64 << 20) / 4, vb = n * (Py_ssize_t)sizeof(T) / 4;
    /* 16 bytes past a cache line, as NumPy puts large arrays */
    T *x = (T *)((char *)aligned_alloc(64, (size_t)(n * sizeof(T) + 64)) + 16);
    T *dy = (T *)((char *)aligned_alloc(64, (size_t)(n * sizeof(T) + 64)) + 16);
    T *y = (T *)((char *)aligned_alloc(64, (size_t)(n * sizeof(T) + 64)) + 16);
    float *f = malloc((size_t)fn * sizeof(float));
    double *s = calloc((size_t)(GROUPS * 5 * w), sizeof(double));
    double *mz = calloc((size_t)w, sizeof(double)); /* the backward's mean */
    T *par = calloc((size_t)(6 * w), sizeof(T));
    T *k = par, *A = par + w, *one = par + 2 * w, *zero = par + 3 * w, *m = par + 4 * w;
    T *mdy = par + 5 * w;
    double best[6] = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
    for (Py_ssize_t i = 0; i < n; ++i) {
        x[i] = (T)((double)((i * 2654435761u) % 1000) / 100.0 + 3.0);
        dy[i] = (T)((double)((i * 40503u) % 777) / 100.0 - 3.0);
    }
    for (Py_ssize_t i = 0; i < fn; ++i) f[i] = 1.f;
    for (Py_ssize_t j = 0; j < w; ++j) {
        k[j] = (T)0.01;
        A[j] = one[j] = (T)1;
    }
    for (int r = 0; r < 15; ++r) {
        float a[16] = {0};
        double t0, t1;
        for (int c = 0; c < 6; ++c) {
            if (flush) sum_run(f, fn, a);
            t0 = now();
            switch (c) {
            case 0: memcpy(y, x, (size_t)(n * sizeof(T))); break;
            case 1: sum_run((const float *)x, vb, a); break;
            case 2:
                sum_run((const float *)x, vb, a);
                sum_run((const float *)dy, vb, a);
                break;
            case 3:
                for (Py_ssize_t g = 0; g * gs < rows; ++g) {
                    const Py_ssize_t nr = rows - g * gs < gs ? rows - g * gs : gs;
                    GROUP_COLSTATS(x + g * gs * w, nr, w, block, s + g * 5 * w);
                }
                break;
            case 4:
                for (Py_ssize_t g = 0; g * gs < rows; ++g) {
                    const Py_ssize_t nr = rows - g * gs < gs ? rows - g * gs : gs;
                    KN(dot_cols)(0, dy + g * gs * w, x + g * gs * w, NULL, nr, w, mz, (T)0,
                                 (T)0, one, zero, s + g * 5 * w + 2 * w, s + g * 5 * w + 3 * w,
                                 NULL);
                }
                break;
            default:
                KN(dx_cols_stream)(0, 1, dy, x, NULL, y, rows, w, m, k, mdy, A, (T)0, (T)0, one,
                                   zero);
            }
            t1 = now();
            if (t1 - t0 < best[c]) best[c] = t1 - t0;
        }
        for (int j = 0; j < 16; ++j) sink += a[j];
    }
    printf("(%ld, %ld) %s, %s, blocks of %ld rows, one thread, us:\n", (long)rows, (long)w,
           IS_F64 ? "float64" : "float32", flush ? "from memory" : "no flush", (long)block);
    printf("  memcpy %.0f  read x %.0f  read x+dy %.0f  statistics %.0f  backward sums %.0f"
           "  dx streamed %.0f\n",
           best[0] * 1e6, best[1] * 1e6, best[2] * 1e6, best[3] * 1e6, best[4] * 1e6,
           best[5] * 1e6);
    printf("  (checksums %.9g %.9g %.9g)\n", s[0], s[w], (double)y[7]);
    return 0;
}
