/* The cache sizes the kernels plan with, and the thresholds derived from them.
 *
 * Every size-dependent choice in the kernels (when outputs stream past the caches,
 * how large a BatchNorm slab is reduced in one piece, whether the pipelined backward
 * fits) comes from two numbers: the per-core L2 cache and the L3 (last-level) cache.
 * They are read once per extension module, in this order:
 *
 *   1. CYRELU_L2_BYTES / CYRELU_L3_BYTES in the environment: a byte count, with an
 *      optional K, M or G suffix (powers of 1024), e.g. "512K", "2M", "1048576";
 *   2. the operating system: glibc's sysconf, then Linux's
 *      /sys/devices/system/cpu/cpuN/cache (the smallest L2 over all CPUs, so that a
 *      hybrid CPU plans for its smaller cores);
 *   3. a fallback: 1 MiB of L2 and 8 MiB of L3.
 *
 * A value outside the plausible range (L2: 64 KiB to 64 MiB; L3: the L2 size to
 * 4 GiB) is ignored, whichever source it came from, and the next source is used.
 * cyr_cache_info() tells where each value came from (show_config prints it).
 */
#ifndef CYRELU_CACHE_H
#define CYRELU_CACHE_H

#include <Python.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#  include <unistd.h>
#endif

#define CYR_L2_FALLBACK ((Py_ssize_t)1 << 20)
#define CYR_L3_FALLBACK ((Py_ssize_t)8 << 20)
#define CYR_L2_MIN ((Py_ssize_t)64 << 10)
#define CYR_L2_MAX ((Py_ssize_t)64 << 20)
#define CYR_L3_MAX ((Py_ssize_t)4 << 30)

/* Where a size came from. */
enum { CYR_SRC_FALLBACK = 0, CYR_SRC_ENV = 1, CYR_SRC_OS = 2 };

typedef struct {
    Py_ssize_t l2, l3;          /* in force */
    Py_ssize_t l2_os, l3_os;    /* as the OS reported them (0: nothing usable) */
    int l2_src, l3_src;         /* CYR_SRC_* */
    int l2_env_bad, l3_env_bad; /* an override was set but unusable */
    Py_ssize_t cpus;            /* online CPUs sharing the L3 (at least 1) */
} cyr_cache_info_t;

/* "512K", "2M", "1G", "1048576" -> bytes; -1 for anything else (empty, junk, overflow). */
static Py_ssize_t cyr_parse_bytes(const char *s) {
    Py_ssize_t v = 0, mult = 1;
    const char *p = s;
    if (s == NULL) return -1;
    while (*p == ' ') ++p;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; ++p) {
        if (v > ((Py_ssize_t)1 << 50)) return -1;
        v = v * 10 + (*p - '0');
    }
    switch (*p) {
    case 'k': case 'K': mult = (Py_ssize_t)1 << 10; ++p; break;
    case 'm': case 'M': mult = (Py_ssize_t)1 << 20; ++p; break;
    case 'g': case 'G': mult = (Py_ssize_t)1 << 30; ++p; break;
    default: break;
    }
    if (*p == 'i' || *p == 'I') ++p;          /* "KiB" */
    if (*p == 'b' || *p == 'B') ++p;
    while (*p == ' ') ++p;
    if (*p != '\0' || v > ((Py_ssize_t)1 << 40)) return -1;
    return v * mult;
}

/* The plausible-range test shared by every source. */
static int cyr_cache_plausible(int level, Py_ssize_t bytes, Py_ssize_t l2) {
    if (level == 2) return bytes >= CYR_L2_MIN && bytes <= CYR_L2_MAX;
    return bytes >= l2 && bytes <= CYR_L3_MAX;
}

#if defined(__linux__)
/* The smallest size of cache `level` (data or unified) over the CPUs listed in /sys,
 * or 0.  Sizes there read like "512K". */
static Py_ssize_t cyr_cache_sysfs(int level) {
    Py_ssize_t best = 0;
    char path[128], buf[64];
    for (int cpu = 0; cpu < 1024; ++cpu) {
        int seen_cpu = 0;
        for (int idx = 0; idx < 8; ++idx) {
            FILE *f;
            int lv = -1;
            Py_ssize_t size;
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/level",
                     cpu, idx);
            f = fopen(path, "r");
            if (f == NULL) break;
            seen_cpu = 1;
            if (fscanf(f, "%d", &lv) != 1) lv = -1;
            fclose(f);
            if (lv != level) continue;
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/type",
                     cpu, idx);
            f = fopen(path, "r");
            if (f != NULL) {
                if (fgets(buf, sizeof buf, f) != NULL && strncmp(buf, "Instruction", 11) == 0) {
                    fclose(f);
                    continue;
                }
                fclose(f);
            }
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/size",
                     cpu, idx);
            f = fopen(path, "r");
            if (f == NULL) continue;
            if (fgets(buf, sizeof buf, f) != NULL) {
                buf[strcspn(buf, "\r\n")] = '\0';
                size = cyr_parse_bytes(buf);
                if (size > 0 && (best == 0 || size < best)) best = size;
            }
            fclose(f);
        }
        if (!seen_cpu) {
            if (cpu == 0) continue;  /* cpu0 may be offline or hidden; try the next */
            break;
        }
    }
    return best;
}
#endif

/* What the operating system says about cache `level` (2 or 3), or 0. */
static Py_ssize_t cyr_cache_os(int level) {
    Py_ssize_t v = 0;
#if defined(__linux__) && defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
    long s = sysconf(level == 2 ? _SC_LEVEL2_CACHE_SIZE : _SC_LEVEL3_CACHE_SIZE);
    if (s > 0) v = (Py_ssize_t)s;
#endif
#if defined(__linux__)
    {
        Py_ssize_t fs = cyr_cache_sysfs(level);
        if (fs > 0 && (v == 0 || fs < v)) v = fs;
    }
#endif
    (void)level;
    return v;
}

/* Pick one size from (override, OS value, fallback); pure, for the tests. */
static Py_ssize_t cyr_cache_pick(int level, Py_ssize_t env, Py_ssize_t os_value,
                                 Py_ssize_t l2, int *src) {
    if (env >= 0 && cyr_cache_plausible(level, env, l2)) { *src = CYR_SRC_ENV; return env; }
    if (os_value > 0 && cyr_cache_plausible(level, os_value, l2)) {
        *src = CYR_SRC_OS;
        return os_value;
    }
    *src = CYR_SRC_FALLBACK;
    if (level == 2) return CYR_L2_FALLBACK;
    return CYR_L3_FALLBACK > l2 ? CYR_L3_FALLBACK : 4 * l2;
}

static cyr_cache_info_t cyr_cache_state;
static int cyr_cache_ready = 0;

/* The sizes in force; computed on first use (idempotent, so the benign first-use race
 * between threads stores the same values). */
static const cyr_cache_info_t *cyr_cache_info(void) {
    if (!cyr_cache_ready) {
        cyr_cache_info_t c;
        const char *e2 = getenv("CYRELU_L2_BYTES"), *e3 = getenv("CYRELU_L3_BYTES");
        Py_ssize_t v2 = e2 && *e2 ? cyr_parse_bytes(e2) : -1;
        Py_ssize_t v3 = e3 && *e3 ? cyr_parse_bytes(e3) : -1;
        memset(&c, 0, sizeof c);
        c.l2_os = cyr_cache_os(2);
        c.l3_os = cyr_cache_os(3);
        c.l2 = cyr_cache_pick(2, v2, c.l2_os, 0, &c.l2_src);
        c.l3 = cyr_cache_pick(3, v3, c.l3_os, c.l2, &c.l3_src);
        c.cpus = 1;
#if defined(__linux__) && defined(_SC_NPROCESSORS_ONLN)
        {
            const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
            if (ncpu > 1) c.cpus = (Py_ssize_t)ncpu;
        }
#endif
        c.l2_env_bad = e2 && *e2 && c.l2_src != CYR_SRC_ENV;
        c.l3_env_bad = e3 && *e3 && c.l3_src != CYR_SRC_ENV;
        cyr_cache_state = c;
        cyr_cache_ready = 1;
    }
    return &cyr_cache_state;
}

static inline Py_ssize_t cyr_l2_bytes(void) { return cyr_cache_info()->l2; }

/* ---- thresholds derived from the cache sizes ---------------------------------------
 * Streaming (non-temporal) stores: an output is written past the caches when a thread
 * writes at least half the per-core L2 and half of its core's share of the L3 (the L3
 * over the online CPUs).  Smaller outputs stay in cache for whatever reads them next;
 * streaming them costs a trip to memory.  Measured with relu, float32, 2 threads:
 * on Zen 3 (AMD EPYC, 512 KiB L2, 32 MiB L3, 2 CPUs) n = 2e6 took 136 us cached and
 * 370 us streamed, n = 1e7 2.38 ms cached and 1.80 ms streamed; on Sapphire Rapids
 * (2 MiB L2) streaming from 1 MiB per thread was fastest for n >= 1e6. */
static inline Py_ssize_t cyr_stream_min_bytes(void) {
    const cyr_cache_info_t *c = cyr_cache_info();
    const Py_ssize_t from_l2 = c->l2 / 2, from_l3 = c->l3 / (2 * c->cpus);
    return from_l2 > from_l3 ? from_l2 : from_l3;
}

/* A BatchNorm channel slab larger than this is reduced in row chunks of at most this
 * size, each read once (float64: twice, the second from L2): half the per-core L2. */
static inline Py_ssize_t cyr_slab_bytes(void) { return cyr_l2_bytes() / 2; }

/* Whether two channel slabs of this size fit in the per-core L2 with a fifth of it to
 * spare (for the rest of the working set): the training forward then prefetches the
 * next channel's slab while it normalises this one.  Measured on Zen 4 (1 MiB L2, 2
 * threads), (32, 64, 56, 56) float32 (401 KB slabs): 4-13% faster. */
static inline int cyr_bn_fits_twice(Py_ssize_t slab) { return 5 * slab <= 2 * cyr_l2_bytes(); }

/* Whether a thread's run of channels overlaps them (bn_train_channel): the slabs fit in
 * L2 two at a time (cyr_bn_fits_twice), so each one's statistics are one chunk. */
static inline int cyr_bn_pipelines(Py_ssize_t slab) {
    return cyr_bn_fits_twice(slab) && slab <= cyr_slab_bytes();
}

#endif /* CYRELU_CACHE_H */
