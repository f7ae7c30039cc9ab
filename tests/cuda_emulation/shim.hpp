/* Runs cyrelu's CUDA kernels on the CPU, for tests on machines without a GPU.
 *
 * The kernel sources are compiled by the host C++ compiler with CUDA's keywords and
 * built-ins defined here.  A launch runs the grid's blocks one after another; within a
 * block, kernels that synchronise (reduce_*: __syncthreads, warp shuffles) run their
 * threads as fibers with real barriers, the others run their threads one after another
 * (a valid schedule for kernels without synchronisation).  Slow, but every index, every
 * load and store and every reduction step is the real kernel code.
 */
#pragma once
#include <cstdio>
#include <cstdlib>
#include <ucontext.h>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#define CYR_HOST_EMULATION 1
/* a GPU faults on a misaligned vector access: so does the emulation */
#define CYR_CHECK_ALIGNED(p, n)                                                            \
    do {                                                                                   \
        if (reinterpret_cast<unsigned long long>(p) % (n)) {                               \
            std::fprintf(stderr, "cuda emulation: misaligned %d-byte access at %p (%s:%d)\n", \
                         (int)(n), (const void *)(p), __FILE__, __LINE__);                 \
            std::abort();                                                                  \
        }                                                                                  \
    } while (0)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) alignas(n)
#define __launch_bounds__(...)

/* Blocks run one after another, so device-wide fences and atomics are plain memory
 * operations here (the last block of a reduction is the one launched last). */
inline void __threadfence() {}
inline unsigned atomicAdd(unsigned *p, unsigned v) {
    const unsigned old = *p;
    *p = old + v;
    return old;
}

/* __shared__ variables become function-level statics: one per kernel instantiation,
 * which is right because blocks run one at a time. */
struct cyr_dim3 {
    unsigned x = 1, y = 1, z = 1;
};
thread_local cyr_dim3 threadIdx, blockIdx;
cyr_dim3 blockDim, gridDim; /* the same for every thread of a launch */

/* ---- a block's threads as fibers (ucontext), scheduled round-robin on one OS thread --
 * A fiber runs until it waits at a barrier (__syncthreads: the block; a warp shuffle:
 * its warp), then the next runnable fiber runs.  The last arrival releases a barrier. */
struct cyr_fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    bool done = false;
    int wait_bar = -1;
    unsigned long wait_gen = 0;
    unsigned tx = 0, ty = 0;
};

struct cyr_sched {
    ucontext_t main;
    std::vector<cyr_fiber> fibers;
    int current = 0;
    std::vector<unsigned> expected, arrived; /* barrier 0: block; 1 + w: warp w */
    std::vector<unsigned long> gen;
    std::vector<double> slots;               /* shuffle exchange, 32 per warp */
    std::function<void()> body;
};
static cyr_sched *cyr_S = nullptr;

inline void cyr_barrier(int id) {
    cyr_sched &S = *cyr_S;
    if (++S.arrived[id] == S.expected[id]) {
        S.arrived[id] = 0;
        ++S.gen[id];
        return;
    }
    cyr_fiber &f = S.fibers[S.current];
    f.wait_bar = id;
    f.wait_gen = S.gen[id];
    swapcontext(&f.ctx, &S.main);
}

inline void __syncthreads() {
    if (cyr_S) cyr_barrier(0);
}

template <typename V> inline V __shfl_down_sync(unsigned mask, V v, int off) {
    static_assert(sizeof(V) <= sizeof(double), "shuffle of a wide type");
    (void)mask;
    const unsigned t = threadIdx.x + threadIdx.y * blockDim.x;
    const unsigned lane = t & 31, warp = t >> 5;
    double *slots = &cyr_S->slots[warp * 32];
    double slot = 0;
    std::memcpy(&slot, &v, sizeof(V));
    slots[lane] = slot;
    cyr_barrier(1 + warp);
    V r = v;
    if (lane + off < 32) std::memcpy(&r, &slots[lane + off], sizeof(V));
    cyr_barrier(1 + warp);
    return r;
}

static void cyr_fiber_entry() {
    cyr_S->body();
    cyr_S->fibers[cyr_S->current].done = true; /* returns to uc_link = the scheduler */
}

/* call k with its arguments unpacked from CUDA's launch convention (void *args[]) */
template <typename... A, std::size_t... I>
void cyr_call(void (*k)(A...), void **args, std::index_sequence<I...>) {
    k(*reinterpret_cast<typename std::remove_reference<A>::type *>(args[I])...);
}

template <typename... A>
void cyr_launch(void (*k)(A...), bool sync, unsigned gx, unsigned gy, unsigned bx,
                unsigned by, void **args) {
    gridDim.x = gx, gridDim.y = gy, gridDim.z = 1;
    blockDim.x = bx, blockDim.y = by, blockDim.z = 1;
    const unsigned nthreads = bx * by, nwarps = (nthreads + 31) / 32;
    auto call = [&] { cyr_call(k, args, std::index_sequence_for<A...>{}); };
    static cyr_sched S; /* fiber stacks are reused from launch to launch */
    if (sync) {
        if (S.fibers.size() < nthreads) S.fibers.resize(nthreads);
        for (auto &f : S.fibers)
            if (f.stack.empty()) f.stack.resize(128 * 1024);
        S.expected.assign(1 + nwarps, 32);
        S.expected[0] = nthreads;
        S.slots.assign(nwarps * 32, 0.0);
        S.body = call;
    }
    for (unsigned bj = 0; bj < gy; ++bj)
        for (unsigned bi = 0; bi < gx; ++bi) {
            blockIdx.x = bi, blockIdx.y = bj;
            if (!sync) { /* no synchronisation in the kernel: threads one after another */
                for (unsigned t = 0; t < nthreads; ++t) {
                    threadIdx.x = t % bx, threadIdx.y = t / bx;
                    call();
                }
                continue;
            }
            S.arrived.assign(1 + nwarps, 0);
            S.gen.assign(1 + nwarps, 0);
            for (unsigned t = 0; t < nthreads; ++t) {
                cyr_fiber &f = S.fibers[t];
                f.done = false, f.wait_bar = -1, f.tx = t % bx, f.ty = t / bx;
                getcontext(&f.ctx);
                f.ctx.uc_stack.ss_sp = f.stack.data();
                f.ctx.uc_stack.ss_size = f.stack.size();
                f.ctx.uc_link = &S.main;
                makecontext(&f.ctx, cyr_fiber_entry, 0);
            }
            cyr_S = &S;
            for (;;) {
                bool any = false, ran = false;
                for (unsigned t = 0; t < nthreads; ++t) {
                    cyr_fiber &f = S.fibers[t];
                    if (f.done) continue;
                    any = true;
                    if (f.wait_bar >= 0 && S.gen[f.wait_bar] == f.wait_gen) continue;
                    f.wait_bar = -1;
                    S.current = (int)t;
                    threadIdx.x = f.tx, threadIdx.y = f.ty;
                    swapcontext(&S.main, &f.ctx);
                    ran = true;
                }
                if (!any) break;
                if (!ran) {
                    std::fprintf(stderr, "cuda emulation: deadlock at a barrier\n");
                    std::abort();
                }
            }
            cyr_S = nullptr;
        }
}
