/* BatchNorm's per-channel kernels reading whole NCHW arrays from memory, one thread: how
 * the rows of a channel are read.  NCHW (32, 64, 56, 56) float32 (25.7 MB an array, rows
 * of 12.25 KiB, 784 KiB apart), each figure the best of 15 rounds in microseconds, the
 * caches flushed (a 64 MiB read) before every call:
 *
 *   - memcpy of x, and plain reads of x (and of x and dy) in order;
 *   - the same reads channel by channel, row after row (the kernels' order), plain and
 *     with the next row prefetched piece by piece as the current one is read (the
 *     pacing of batchnorm.h, CYR_BN_PACE_BYTES), into L1 or (x and dy) into L2;
 *   - the kernels: a channel's statistics, the training forward, the backward (streamed
 *     dx), and the backward's first pass alone (its sums), over all 64 channels.
 *
 * Build and run from the repository root (CYRELU_ISA=base|avx2 caps the copy):
 *   cc -O3 -fno-math-errno -fno-trapping-math -ffp-contract=off -Itests/c/shim -Iinclude \
 *      benchmarks/bn_paced_rows.c -o /tmp/bn_paced_rows -lm && /tmp/bn_paced_rows
 * (benchmarks/bn_kernel_cost.c measures the same kernels with the data in cache.)
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

/* through volatile variables, so that the compiler does not specialise the kernels to
 * the shape (see bn_kernel_cost.c) */
static volatile Py_ssize_t v_outer = 32, v_C = 64, v_inner = 3136;
static volatile float sink;

/* The sum of n floats from p into a (16 lanes): a plain read the compiler vectorises. */
static void sum_run(const float *restrict p, Py_ssize_t n, float *restrict a) {
    for (Py_ssize_t i = 0; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) a[j] += p[i + j];
}

/* x, and dy when not NULL, read in memory order */
static void read_all(const float *x, const float *dy, Py_ssize_t n) {
    float a[16] = {0};
    sum_run(x, n, a);
    if (dy) sum_run(dy, n, a);
    for (int j = 0; j < 16; ++j) sink += a[j];
}

/* the same by channel (rows of inner elements, C * inner apart), in pieces of 1 KiB,
 * each preceded (paced) by a prefetch of the same piece of the next row (as the kernels
 * do, batchnorm.h's CYR_BN_PACE_BYTES; written out here, so that this file also builds
 * against the headers of versions without it): paced 1 into L1, 2 into L2 */
static void prefetch_run(const float *p, Py_ssize_t n, int l2) {
    if (l2)  /* prefetcht1: into L2 */
        for (Py_ssize_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 2);
    else  /* prefetcht0: into L1 too, as the kernels do */
        for (Py_ssize_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 3);
}

static void read_channels(const float *x, const float *dy, Py_ssize_t outer, Py_ssize_t C,
                          Py_ssize_t inner, int paced) {
    const Py_ssize_t step = C * inner, piece = 256;
    float a[16] = {0};
    for (Py_ssize_t c = 0; c < C; ++c)
        for (Py_ssize_t o = 0; o < outer; ++o)
            for (Py_ssize_t i = 0; i < inner; i += piece) {
                const Py_ssize_t off = o * step + c * inner + i;
                const Py_ssize_t len = inner - i < piece ? inner - i : piece;
                if (paced && o + 1 < outer) {
                    prefetch_run(x + off + step, len, paced == 2);
                    if (dy) prefetch_run(dy + off + step, len, paced == 2);
                }
                sum_run(x + off, len, a);
                if (dy) sum_run(dy + off, len, a);
            }
    for (int j = 0; j < 16; ++j) sink += a[j];
}

#define CASES 12

int main(void) {
    const Py_ssize_t outer = v_outer, C = v_C, inner = v_inner, n = outer * C * inner;
    const Py_ssize_t flush_n = (Py_ssize_t)16 << 20;
    float *x = malloc(n * sizeof(float)), *dy = malloc(n * sizeof(float));
    float *dx = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    float *flush = malloc(flush_n * sizeof(float));
    static float one[64], zero[64];
    double sums[128], best[CASES];
    const char *names[CASES] = {
        "memcpy x",
        "read x in order",
        "read x and dy in order",
        "read x by channel",
        "read x by channel, paced",
        "read x and dy by channel",
        "read x and dy by channel, paced",
        "read x and dy by channel, paced, L2",
        "kernel: statistics",
        "kernel: training forward",
        "kernel: backward",
        "kernel: backward, first pass alone",
    };
    srand(1);
    for (Py_ssize_t i = 0; i < n; ++i) {
        x[i] = (float)(rand() % 1000) / 100.f - 5.f;
        dy[i] = (float)(rand() % 1000) / 500.f - 1.f;
        dx[i] = y[i] = 0.f;
    }
    memset(flush, 1, flush_n * sizeof(float));
    for (int j = 0; j < 64; ++j) one[j] = 1.f;
    for (int k = 0; k < CASES; ++k) best[k] = 1e30;
    for (int r = 0; r < 15; ++r)
        for (int k = 0; k < CASES; ++k) {
            double m, v, t0, e;
            {   /* the caches flushed by a read of 64 MiB (clean lines: nothing to write back) */
                float f = 0.f;
                for (Py_ssize_t i = 0; i < flush_n; i += 16) f += flush[i];
                sink += f;
            }
            t0 = now();
            switch (k) {
            case 0: memcpy(dx, x, n * sizeof(float)); break;
            case 1: read_all(x, NULL, n); break;
            case 2: read_all(x, dy, n); break;
            case 3: read_channels(x, NULL, outer, C, inner, 0); break;
            case 4: read_channels(x, NULL, outer, C, inner, 1); break;
            case 5: read_channels(x, dy, outer, C, inner, 0); break;
            case 6: read_channels(x, dy, outer, C, inner, 1); break;
            case 7: read_channels(x, dy, outer, C, inner, 2); break;
            case 8:
                for (Py_ssize_t c = 0; c < C; ++c) cyr_bn_channel_stats_f32(x, outer, C, inner, c, &m, &v);
                break;
            case 9:
                for (Py_ssize_t c = 0; c < C; ++c)
                    cyr_bn_train_channel_f32(x, y, outer, C, inner, c, 1.0, 0.0, 1e-5, 0, 0.f, 0.f,
                                             1, NULL, NULL, &m, &v);
                break;
            default:  /* 10: dx streamed; 11: no dx, the sums alone */
                for (Py_ssize_t c = 0; c < C; ++c)
                    cyr_bn_backward_channel_f32(dy, x, NULL, k == 10 ? dx : NULL, outer, C, inner,
                                                c, 0.0, 0.3, 1.0, 1, 0, 0.f, 0.f, one, zero, 1,
                                                sums + 2 * c);
                break;
            }
            __asm__ volatile("" ::"r"(dx), "r"(y) : "memory");
            e = now() - t0;
            if (e < best[k]) best[k] = e;
        }
    for (int k = 0; k < CASES; ++k)
        printf("%-34s %7.0f us  %.2fx memcpy\n", names[k], best[k] * 1e6, best[k] / best[0]);
    printf("(checksums %g %g)\n", (double)sink, sums[1]);
    free(x); free(dy); free(dx); free(y); free(flush);
    return 0;
}
