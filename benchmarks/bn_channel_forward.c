/* BatchNorm's per-channel (NCHW-like) training forward on whole arrays, as the extension
 * runs it on THREADS threads (runs of neighbouring channels handed out in turn, each
 * channel's statistics carried from the one before where the kernel pipelines), against
 * relu into y (a read and a streamed write: the forward's floor where a channel stays in
 * the L2) and memcpy, all in one process, taken in turn round after round; each figure
 * the best of ROUNDS calls.  Two versions of the kernels can run side by side in that one
 * process (the shared machine's speed moved by up to 2x between processes, and even more
 * between the runs of two): this file is compiled once per version as a kernel object
 * (-DKERNELS=tag, against that version's include/), once as the driver.  float32, data
 * with a large offset per element (i % 7 * 1000), (32, 64, 56, 56) by default.
 *
 * Build and run from the repository root (OLD: an older checkout's root, optional):
 *   F="-O3 -fopenmp -fno-math-errno -fno-trapping-math -ffp-contract=off -Itests/c/shim"
 *   cc $F -Iinclude -DKERNELS=new -c benchmarks/bn_channel_forward.c -o /tmp/bcf_new.o
 *   cc $F -I$OLD/include -DKERNELS=old -c benchmarks/bn_channel_forward.c -o /tmp/bcf_old.o
 *   cc $F -DWITH_OLD benchmarks/bn_channel_forward.c /tmp/bcf_new.o /tmp/bcf_old.o \
 *      -o /tmp/bcf -lm && /tmp/bcf [THREADS [ROUNDS [OUTER C INNER]]]
 * (without the old version: no -DWITH_OLD, nor its object).  The figures: microseconds of
 * memcpy and relu, then each version's forward as a ratio to relu's time; the means and
 * variances of the versions are compared (relative 1e-6), and a difference printed.
 */
#include <Python.h>

#include <stdio.h>
#include <stdlib.h>

#define CAT2_(a, b) a##_##b
#define CAT_(a, b) CAT2_(a, b)

#ifdef KERNELS /* ---- a version's kernels ---------------------------------------------- */

#include "cyrelu/activations.h"
#include "cyrelu/batchnorm.h"

/* the training forward of every channel (no weight or bias), as _train_channels runs it */
void CAT_(bn_forward, KERNELS)(const float *x, float *y, Py_ssize_t outer, Py_ssize_t C,
                                Py_ssize_t inner, double *mean, double *var, int nt) {
    const Py_ssize_t k = C / (nt * 4) > 0 ? C / (nt * 4) : 1; /* _channel_chunk */
    const Py_ssize_t pieces = (C + k - 1) / k;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic)
#endif
    for (Py_ssize_t p = 0; p < pieces; ++p) {
        double carry[2][CYR_BN_CARRY];
        const Py_ssize_t c0 = p * k, c1 = c0 + k < C ? c0 + k : C;
        int h = 0;
        for (Py_ssize_t c = c0; c < c1; ++c, h = 1 - h)
            cyr_bn_train_channel_f32(x, y, outer, C, inner, c, 1.0, 0.0, 1e-5, 0, 0.f, 0.f, 1,
                                     c > c0 ? carry[h] : NULL, c + 1 < c1 ? carry[1 - h] : NULL,
                                     &mean[c], &var[c]);
    }
}

/* relu(x) into y, streamed: rows of 1024 elements split evenly between nt threads, the
 * last taking what is left past the whole rows */
void CAT_(bn_relu, KERNELS)(const float *x, float *y, Py_ssize_t n, int nt) {
    enum { W = 1024, COEFS = W + CYR_BN_COEF_EXT_N(float) };
    static float one[COEFS], zero[COEFS];
    const Py_ssize_t rows = n / W;
    for (int j = 0; j < COEFS; ++j) one[j] = 1.f;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int t = 0; t < nt; ++t) {
        const Py_ssize_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
        cyr_bn_affine_rows_stream_f32(CYR_ACT_RELU, x + r0 * W, y + r0 * W, r1 - r0, W, one,
                                      zero, 0.f, 0.f);
        if (t == nt - 1 && n > rows * W)
            cyr_bn_affine_rows_stream_f32(CYR_ACT_RELU, x + rows * W, y + rows * W, 1,
                                          n - rows * W, one, zero, 0.f, 0.f);
    }
}

#else /* ---- the driver ---------------------------------------------------------------- */

#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

void bn_forward_new(const float *, float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, double *,
                    double *, int);
void bn_relu_new(const float *, float *, Py_ssize_t, int);
#ifdef WITH_OLD
void bn_forward_old(const float *, float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, double *,
                    double *, int);
#define VERSIONS 2
#else
#define VERSIONS 1
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 2 MiB-aligned and advised into huge pages, as NumPy allocates large arrays */
static float *alloc_floats(Py_ssize_t n) {
    const size_t huge = (size_t)2 << 20, bytes = ((size_t)n * sizeof(float) + huge - 1) / huge * huge;
    float *p = aligned_alloc(huge, bytes);
    if (p == NULL) exit(1);
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

int main(int argc, char **argv) {
    const int nt = argc > 1 ? atoi(argv[1]) : 2, rounds = argc > 2 ? atoi(argv[2]) : 30;
    const Py_ssize_t outer = argc > 5 ? atol(argv[3]) : 32, C = argc > 5 ? atol(argv[4]) : 64;
    const Py_ssize_t inner = argc > 5 ? atol(argv[5]) : 3136, n = outer * C * inner;
    float *x = alloc_floats(n), *y = alloc_floats(n);
    double *mean = malloc((size_t)(VERSIONS * 2 * C) * sizeof(double));
    double best[2 + VERSIONS];
    if (mean == NULL) return 1;
    srand(1);
    for (Py_ssize_t i = 0; i < n; ++i) {
        x[i] = (float)(rand() % 1000) / 100.f - 5.f + (float)(i % 7) * 1e3f;
        y[i] = 0.f;
    }
    for (int v = 0; v < 2 + VERSIONS; ++v) best[v] = 1e30;
    for (int r = 0; r < rounds; ++r)
        for (int s = 0; s < 2 + VERSIONS; ++s) {
            const int v = (s + r) % (2 + VERSIONS); /* a new order each round */
            double *m = mean + 2 * C * (v < 2 ? 0 : v - 2);
            const double t0 = now();
            if (v == 0) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
                for (int t = 0; t < nt; ++t)
                    memcpy(y + n * t / nt, x + n * t / nt,
                           (size_t)(n * (t + 1) / nt - n * t / nt) * sizeof(float));
            } else if (v == 1) {
                bn_relu_new(x, y, n, nt);
            } else if (v == 2) {
                bn_forward_new(x, y, outer, C, inner, m, m + C, nt);
#ifdef WITH_OLD
            } else {
                bn_forward_old(x, y, outer, C, inner, m, m + C, nt);
#endif
            }
            const double e = now() - t0;
            if (e < best[v]) best[v] = e;
        }
    printf("(%ld, %ld, %ld) float32, %d threads: memcpy %.0f us, relu %.0f us; forward %.2fx relu",
           (long)outer, (long)C, (long)inner, nt, best[0] * 1e6, best[1] * 1e6, best[2] / best[1]);
    if (VERSIONS > 1) printf(", old %.2fx", best[3] / best[1]);
    printf("\n");
    for (Py_ssize_t c = 0; VERSIONS > 1 && c < 2 * C; ++c)
        if (fabs(mean[c] - mean[2 * C + c]) > 1e-6 * fabs(mean[2 * C + c])) {
            printf("the versions differ: %s of channel %ld %.9g against %.9g\n",
                   c < C ? "mean" : "variance", (long)(c % C), mean[c], mean[2 * C + c]);
            return 1;
        }
    return 0;
}

#endif
