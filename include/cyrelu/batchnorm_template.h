/* Type-generic bodies of the BatchNorm kernels; include only from batchnorm.h,
 * with CYR_T (the element type), CYR_SUFFIX (e.g. f32_avx2) and CYR_TARGET (the
 * instruction-set attribute, possibly empty) defined.  The `static CYR_TARGET`
 * functions are the kernels batchnorm.h's entry points dispatch to.
 *
 * `act` arguments are CYR_ACT_* codes (cyrelu/cuda/activation_table.h; CYR_ACT_NONE: none); the *_impl functions take it as a parameter
 * and are only called with a literal from a switch, so after inlining every loop
 * is specialised for one activation (no branch inside the loop).
 * Reductions return double and use CYR_BN_LANES independent accumulators: the
 * order of additions is fixed by the code, not by the compiler or thread count.
 * The float16 copy (CYR_IS_HALF) is batchnorm_half_template.h: the same kernels on
 * converted tiles, through this file's float copy.
 */

/* the fused activation's parameters (a and b) in the arithmetic's type, and the
 * backward's gate parameters (batchnorm.h) */
#define CYR_BN_PAR CYR_CAT(bn_par, CYR_C)
#define CYR_BN_GATEP CYR_CAT(bn_gatep, CYR_C)

/* the gate's parameters from the channel (or column) j on */
CYR_BN_INLINE CYR_TARGET CYR_BN_GATEP CYR_NAME(bn_gatep_at)(CYR_BN_GATEP p, Py_ssize_t j) {
    p.sc += j;
    p.sh += j;
    return p;
}

#if CYR_IS_HALF
#include "batchnorm_half_template.h"
#else /* float and double */

/* The reductions' lanes in double vectors (vecd.h): the CYR_BN_LANES lanes of the
 * per-channel reductions are CYR_BN_VD_Q vectors of CYR_VD_N doubles. */
#if CYR_ISA_ID >= 1
#define CYR_BN_VD_Q (CYR_BN_LANES / CYR_VD_N)
/* the row layout's four rows r0..r3 at columns [j, j + CYR_VD_N): d0..d3 = x - mean */
#define CYR_BN_VD_DEV4_(r0, r1, r2, r3, mean, j)                                           \
    const CYR_VD m_ = CYR_VD_LOADU((mean) + (j));                                          \
    const CYR_VD d0 = CYR_VD_SUB(CYR_NAME(vd_ld)((r0) + (j)), m_);                         \
    const CYR_VD d1 = CYR_VD_SUB(CYR_NAME(vd_ld)((r1) + (j)), m_);                         \
    const CYR_VD d2 = CYR_VD_SUB(CYR_NAME(vd_ld)((r2) + (j)), m_);                         \
    const CYR_VD d3 = CYR_VD_SUB(CYR_NAME(vd_ld)((r3) + (j)), m_)
#endif

/* ---- the math of one element ------------------------------------------------ */
#define CYR_BN_ACT_CASE_(name, NAME) \
    case CYR_ACT_##NAME: return CYR_NAME(name##_elem)(v, a.a, a.b);
CYR_BN_INLINE CYR_TARGET CYR_T CYR_NAME(bn_act)(int act, CYR_T v, CYR_BN_PAR a) {
    switch (act) {
    CYR_BN_FORWARD_ACTIVATIONS(CYR_BN_ACT_CASE_)
    default: return v;
    }
}
#undef CYR_BN_ACT_CASE_

/* dy gated by the fused activation at v = src[i] * sc + sh: the forward's output (sc 1,
 * sh 0: exact) or its pre-activation recomputed from x (the forward's own scale and
 * shift, so the forward's value bit for bit). */
#define CYR_BN_GATE_CASE_(name, NAME) \
    case CYR_ACT_##NAME: return CYR_NAME(name##_backward_elem)(g, src[i] * sc + sh, a.a, a.b);
CYR_BN_INLINE CYR_TARGET CYR_T CYR_NAME(bn_gate)(int act, CYR_T g, const CYR_T *src, Py_ssize_t i,
                                                 CYR_T sc, CYR_T sh, CYR_BN_GATEP a) {
    switch (act) {
    CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_GATE_CASE_)
    default: return g;
    }
}
#undef CYR_BN_GATE_CASE_

/* The gate of the activations outside CYR_BN_BACKWARD_LOOP_ACTIVATIONS (CYR_BN_IS_TILED_BW,
 * batchnorm.h), into an L1 tile z of n elements, in two steps:
 *   bn_tile_z     z = src * sc + sh, the pre-activation recomputed with the forward's own
 *                 scale and shift (its values bit for bit): one pair (cols 0), or one per
 *                 element (cols 1: the row layout's columns);
 *   bn_tile_gate  z = dy times the activation's derivative at z, by the activation's own
 *                 backward loop (activations_template.h: the loop <name>_backward runs,
 *                 so the gate is bitwise that function's at the same pre-activation); or,
 *                 for elu, celu and selu with the gate's at_y, z being the forward's
 *                 output (sc 1, sh 0), the derivative read there (CYR_BN_GATE_AT_OUTPUT). */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_tile_z)(const CYR_T *CYR_RESTRICT src, Py_ssize_t n,
                                                 const CYR_T *CYR_RESTRICT sc,
                                                 const CYR_T *CYR_RESTRICT sh, int cols,
                                                 CYR_T *CYR_RESTRICT z) {
    if (cols) {
        for (Py_ssize_t i = 0; i < n; ++i) z[i] = src[i] * sc[i] + sh[i];
    } else {
        const CYR_T s = sc[0], h = sh[0];
        for (Py_ssize_t i = 0; i < n; ++i) z[i] = src[i] * s + h;
    }
}

#define CYR_BN_TILE_GATE_CASE_(name, NAME)                                                 \
    case CYR_ACT_##NAME:                                                                   \
        if (CYR_BN_IS_TILED_BW(CYR_ACT_##NAME))                                            \
            CYR_NAME(name##_backward_inplace_x)(dy, z, n, a.a, a.b);                       \
        break;
static CYR_TARGET void CYR_NAME(bn_tile_gate)(int act, const CYR_T *CYR_RESTRICT dy, Py_ssize_t n,
                                           CYR_BN_GATEP a, CYR_T *CYR_RESTRICT z) {
    if (a.at_y) { /* elu, celu, selu: z holds the output (CYR_BN_GATE_AT_OUTPUT, batchnorm.h) */
        const CYR_T pos = act == CYR_ACT_SELU ? (CYR_T)CYR_D_SELU_SCALE : (CYR_T)1;
        const CYR_T f = a.a, s = a.b;
        for (Py_ssize_t i = 0; i < n; ++i) z[i] = dy[i] * (z[i] > 0 ? pos : f * (z[i] + s));
        return;
    }
    switch (act) {
    CYR_BN_FORWARD_ACTIVATIONS(CYR_BN_TILE_GATE_CASE_)
    default: break;
    }
}
#undef CYR_BN_TILE_GATE_CASE_

/* ---- reductions over one contiguous run ---------------------------------------- */
/* Each adds into caller-owned accumulators: acc[k] (CYR_BN_LANES lanes) takes the
 * elements of full lane groups, *tail the rest, so one set of accumulators runs
 * across all the rows of a channel and is totalled once. */

/* acc += x[0:n].  The AVX2 and AVX-512 copies hold the 16 lanes in vector registers
 * through intrinsics (as bn_dot_acc_impl does): left to the compiler, the AVX-512 copy
 * of this loop kept them in one zmm, one ymm, one xmm and two scalar registers, and a
 * channel's statistics took 0.23 ns an element instead of 0.17 (in L2, one thread,
 * Zen 4).  Lane k adds the same elements in the same order in every copy. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_sum_acc)(const CYR_T *CYR_RESTRICT x, Py_ssize_t n,
                                     double *CYR_RESTRICT acc, double *CYR_RESTRICT tail) {
    Py_ssize_t i = 0;
#if CYR_ISA_ID >= 1
    if (n >= CYR_BN_LANES) {
        CYR_VD av[CYR_BN_VD_Q];
        for (int q = 0; q < CYR_BN_VD_Q; ++q) av[q] = CYR_VD_LOADU(acc + CYR_VD_N * q);
        for (; i + CYR_BN_LANES <= n; i += CYR_BN_LANES) {
            CYR_BN_PREFETCH(x + i + CYR_BN_PREFETCH_AHEAD);
            for (int q = 0; q < CYR_BN_VD_Q; ++q)
                av[q] = CYR_VD_ADD(av[q], CYR_NAME(vd_ld)(x + i + CYR_VD_N * q));
        }
        for (int q = 0; q < CYR_BN_VD_Q; ++q) CYR_VD_STOREU(acc + CYR_VD_N * q, av[q]);
    }
#else
    for (; i + CYR_BN_LANES <= n; i += CYR_BN_LANES) {
        CYR_BN_PREFETCH(x + i + CYR_BN_PREFETCH_AHEAD);
        for (int k = 0; k < CYR_BN_LANES; ++k) acc[k] += (double)x[i + k];
    }
#endif
    for (; i < n; ++i) *tail += (double)x[i];
}

/* s1 += x[0:n] - k and, where sq, s2 += (x[0:n] - k)**2, lanes as bn_sum_acc's (t[0]
 * and t[1] take the elements past the last whole lane group).  The AVX-512 copy keeps
 * each of the two sums in two vector registers, as bn_sum_acc: with one read, in L2
 * (one thread, Zen 5), a channel's statistics took 0.08 ns an element instead of the two
 * passes' 0.10. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_shift_acc)(const CYR_T *CYR_RESTRICT x, Py_ssize_t n,
                                                    double k, int sq, double *CYR_RESTRICT s1,
                                                    double *CYR_RESTRICT s2,
                                                    double *CYR_RESTRICT t) {
    Py_ssize_t i = 0;
#if CYR_ISA_ID >= 1
    if (n >= CYR_BN_LANES) {
        const CYR_VD kv = CYR_VD_SET1(k);
        CYR_VD a1[CYR_BN_VD_Q], a2[CYR_BN_VD_Q];
        for (int q = 0; q < CYR_BN_VD_Q; ++q) {
            a1[q] = CYR_VD_LOADU(s1 + CYR_VD_N * q);
            a2[q] = CYR_VD_LOADU(s2 + CYR_VD_N * q);
        }
        for (; i + CYR_BN_LANES <= n; i += CYR_BN_LANES) {
            CYR_BN_PREFETCH(x + i + CYR_BN_PREFETCH_AHEAD);
            for (int q = 0; q < CYR_BN_VD_Q; ++q) {
                const CYR_VD d = CYR_VD_SUB(CYR_NAME(vd_ld)(x + i + CYR_VD_N * q), kv);
                a1[q] = CYR_VD_ADD_ON_FMA(a1[q], d);
                if (sq) a2[q] = CYR_VD_ADD(a2[q], CYR_VD_MUL(d, d));
            }
        }
        for (int q = 0; q < CYR_BN_VD_Q; ++q) {
            CYR_VD_STOREU(s1 + CYR_VD_N * q, a1[q]);
            CYR_VD_STOREU(s2 + CYR_VD_N * q, a2[q]);
        }
    }
#else
    for (; i + CYR_BN_LANES <= n; i += CYR_BN_LANES) {
        CYR_BN_PREFETCH(x + i + CYR_BN_PREFETCH_AHEAD);
        for (int j = 0; j < CYR_BN_LANES; ++j) {
            const double d = (double)x[i + j] - k;
            s1[j] += d;
            if (sq) s2[j] += d * d;
        }
    }
#endif
    for (; i < n; ++i) {
        const double d = (double)x[i] - k;
        t[0] += d;
        if (sq) t[1] += d * d;
    }
}

/* The whole lane groups of the next run of up to CYR_BN_GATE_RUN elements from i on: their
 * number, and, when act is not none, dy gated by the activation into gt, in one plain
 * loop the compiler vectorises (gated 16 elements at a time inside the lane loop, the
 * elements were loaded one by one into vector registers: the backward's gated pass
 * took 3x the ungated one's time, in L2 on a Zen 4). */
CYR_BN_INLINE CYR_TARGET Py_ssize_t CYR_NAME(bn_gate_run)(int act, const CYR_T *CYR_RESTRICT dy,
                                                        const CYR_T *CYR_RESTRICT y, Py_ssize_t i,
                                                        Py_ssize_t n, CYR_T sc, CYR_T sh,
                                                        CYR_BN_GATEP a, CYR_T *CYR_RESTRICT gt) {
    Py_ssize_t len = (n - i) / CYR_BN_LANES * CYR_BN_LANES;
    if (len > CYR_BN_GATE_RUN) len = CYR_BN_GATE_RUN;
    if (act != CYR_ACT_NONE)
        for (Py_ssize_t j = 0; j < len; ++j)
            gt[j] = CYR_NAME(bn_gate)(act, dy[i + j], y + i, j, sc, sh, a);
    return len;
}

/* s0 += g, s1 += g * (x - mean) with g = dy gated by the activation; tails in t[0], t[1].
 * The AVX2 and AVX-512 copies hold the 16 lanes in vector registers through intrinsics:
 * left to the compiler, the lanes were sometimes split into scalar registers (half the
 * speed, and the backward is compute-bound here once pipelined).  Lane k takes the
 * same elements and the same operations (no fused multiply-add) in every copy, so all
 * copies give bitwise the same sums. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dot_acc_impl)(int act, const CYR_T *CYR_RESTRICT dy,
                                          const CYR_T *CYR_RESTRICT x,
                                          const CYR_T *CYR_RESTRICT y, Py_ssize_t n,
                                          double mean, CYR_BN_GATEP a, double *CYR_RESTRICT s0,
                                          double *CYR_RESTRICT s1, double *CYR_RESTRICT t) {
    const CYR_T sc = a.sc[0], sh = a.sh[0];
    Py_ssize_t i = 0;
#if CYR_ISA_ID >= 1
    CYR_T gt[CYR_BN_GATE_RUN];
#endif
#if CYR_ISA_ID >= 1
    if (n >= CYR_BN_LANES) {
        CYR_VD av[CYR_BN_VD_Q], bv[CYR_BN_VD_Q];
        const CYR_VD m = CYR_VD_SET1(mean);
        for (int q = 0; q < CYR_BN_VD_Q; ++q) {
            av[q] = CYR_VD_LOADU(s0 + CYR_VD_N * q);
            bv[q] = CYR_VD_LOADU(s1 + CYR_VD_N * q);
        }
        while (i + CYR_BN_LANES <= n) {
            const Py_ssize_t len = CYR_NAME(bn_gate_run)(act, dy, y, i, n, sc, sh, a, gt);
            const CYR_T *gp = act != CYR_ACT_NONE ? gt : dy + i;
            for (Py_ssize_t j = 0; j < len; j += CYR_BN_LANES, i += CYR_BN_LANES)
                for (int q = 0; q < CYR_BN_VD_Q; ++q) {
                    const CYR_VD g = CYR_NAME(vd_ld)(gp + j + CYR_VD_N * q);
                    const CYR_VD d = CYR_VD_SUB(CYR_NAME(vd_ld)(x + i + CYR_VD_N * q), m);
                    av[q] = CYR_VD_ADD_ON_FMA(av[q], g);
                    bv[q] = CYR_VD_ADD(bv[q], CYR_VD_MUL(g, d));
                }
        }
        for (int q = 0; q < CYR_BN_VD_Q; ++q) {
            CYR_VD_STOREU(s0 + CYR_VD_N * q, av[q]);
            CYR_VD_STOREU(s1 + CYR_VD_N * q, bv[q]);
        }
    }
#else
    for (; i + CYR_BN_LANES <= n; i += CYR_BN_LANES) {
        for (int k = 0; k < CYR_BN_LANES; ++k) {
            const double g = (double)CYR_NAME(bn_gate)(act, dy[i + k], y, i + k, sc, sh, a);
            s0[k] += g;
            s1[k] += g * ((double)x[i + k] - mean);
        }
    }
#endif
    for (; i < n; ++i) {
        const double g = (double)CYR_NAME(bn_gate)(act, dy[i], y, i, sc, sh, a);
        t[0] += g;
        t[1] += g * ((double)x[i] - mean);
    }
}

/* ---- elementwise passes over one contiguous run, one (scale, shift) ---------------- */

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_affine_impl)(int act, const CYR_T *CYR_RESTRICT x,
                                         CYR_T *CYR_RESTRICT y, Py_ssize_t n, CYR_T scale,
                                         CYR_T shift, CYR_BN_PAR a) {
    for (Py_ssize_t i = 0; i < n; ++i) y[i] = CYR_NAME(bn_act)(act, x[i] * scale + shift, a);
}

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_affine_inplace_impl)(int act, CYR_T *CYR_RESTRICT x, Py_ssize_t n,
                                                 CYR_T scale, CYR_T shift, CYR_BN_PAR a) {
    for (Py_ssize_t i = 0; i < n; ++i) x[i] = CYR_NAME(bn_act)(act, x[i] * scale + shift, a);
}

/* y = act(x * scale + shift); y may be exactly x.  The expensive activations: the
 * affine part into an L1 tile, then the activation's own loop over the tile (the same
 * bits: the pre-activation is rounded to CYR_T either way, then the same function). */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_affine)(int act, const CYR_T *x, CYR_T *y, Py_ssize_t n,
                                    CYR_T scale, CYR_T shift, CYR_BN_PAR a) {
    if (CYR_BN_IS_SPECIAL(act)) {
        CYR_ALIGN64 CYR_T tile[CYR_BN_ACT_TILE_N(CYR_T)];
        for (Py_ssize_t i = 0; i < n; i += CYR_BN_ACT_TILE_N(CYR_T)) {
            const Py_ssize_t len =
                n - i < CYR_BN_ACT_TILE_N(CYR_T) ? n - i : CYR_BN_ACT_TILE_N(CYR_T);
            CYR_NAME(bn_affine_impl)(CYR_ACT_NONE, x + i, tile, len, scale, shift, a);
            CYR_NAME(unary_plain)(act, tile, y + i, len, a.a, a.b);
        }
        return;
    }
    if ((const CYR_T *)y == x) {
        switch (act) {
#define CYR_BN_CALL(ACT) CYR_NAME(bn_affine_inplace_impl)(ACT, y, n, scale, shift, a)
        CYR_BN_FORWARD_ACTIVATIONS(CYR_BN_FCASE_)
        default: CYR_BN_CALL(CYR_ACT_NONE); break;
#undef CYR_BN_CALL
        }
    } else {
        switch (act) {
#define CYR_BN_CALL(ACT) CYR_NAME(bn_affine_impl)(ACT, x, y, n, scale, shift, a)
        CYR_BN_FORWARD_ACTIVATIONS(CYR_BN_FCASE_)
        default: CYR_BN_CALL(CYR_ACT_NONE); break;
#undef CYR_BN_CALL
        }
    }
}

/* bn_affine for an output that streams (see "streaming stores" in common.h): the head
 * up to a 64-byte boundary, then tiles computed in an L1 buffer and streamed out, then
 * the tail.  y distinct from x.  The caller fences (cyr_stream_fence) when done. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_affine_stream)(int act, const CYR_T *x, CYR_T *y,
                                                        Py_ssize_t n, CYR_T scale,
                                                        CYR_T shift, CYR_BN_PAR a) {
#if CYR_HAVE_STREAM
    CYR_ALIGN64 CYR_T tile[CYR_BN_ACT_TILE_N(CYR_T)];
    const Py_ssize_t tn = CYR_BN_STREAM_TILE_N_(act);
    const Py_ssize_t head = CYR_BN_HEAD_N(y, CYR_T);
    Py_ssize_t i = head < n ? head : n;
    CYR_NAME(bn_affine)(act, x, y, i, scale, shift, a);
    for (; i + tn <= n; i += tn) {
        CYR_NAME(bn_affine)(act, x + i, tile, tn, scale, shift, a);
        CYR_ISA_FN(stream_store)(y + i, tile, tn * (Py_ssize_t)sizeof(CYR_T));
    }
    CYR_NAME(bn_affine)(act, x + i, y + i, n - i, scale, shift, a);
#else
    CYR_NAME(bn_affine)(act, x, y, n, scale, shift, a);
#endif
}

/* ---- elementwise passes over one row of W columns, per-column parameters ----------- */

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_affine_cols_impl)(int act, const CYR_T *CYR_RESTRICT x,
                                              CYR_T *CYR_RESTRICT y, Py_ssize_t w,
                                              const CYR_T *CYR_RESTRICT scale,
                                              const CYR_T *CYR_RESTRICT shift, CYR_BN_PAR a) {
    for (Py_ssize_t j = 0; j < w; ++j) y[j] = CYR_NAME(bn_act)(act, x[j] * scale[j] + shift[j], a);
}

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_affine_cols_inplace_impl)(int act, CYR_T *CYR_RESTRICT x, Py_ssize_t w,
                                                      const CYR_T *CYR_RESTRICT scale,
                                                      const CYR_T *CYR_RESTRICT shift, CYR_BN_PAR a) {
    for (Py_ssize_t j = 0; j < w; ++j) x[j] = CYR_NAME(bn_act)(act, x[j] * scale[j] + shift[j], a);
}

/* n elements of a run of contiguous rows of w columns, the first at column j0 (< w):
 * y[i] = act(x[i] * scale[col] + shift[col]), y distinct from x: one loop where the
 * coefficients' repeated tail reaches (CYR_BN_COEF_EXT_N), else row by row piece. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_affine_cols_pieces)(int act, const CYR_T *x, CYR_T *y,
                                                             Py_ssize_t j0, Py_ssize_t n,
                                                             Py_ssize_t w, const CYR_T *scale,
                                                             const CYR_T *shift, CYR_BN_PAR a) {
    Py_ssize_t i = 0, j = j0;
    if (j0 + n <= w + CYR_BN_COEF_EXT_N(CYR_T)) {
        switch (act) {
#define CYR_BN_CALL(ACT) \
    CYR_NAME(bn_affine_cols_impl)(ACT, x, y, n, scale + j0, shift + j0, a)
        CYR_BN_FORWARD_ACTIVATIONS(CYR_BN_FCASE_)
        default: CYR_BN_CALL(CYR_ACT_NONE); break;
#undef CYR_BN_CALL
        }
        return;
    }
    while (i < n) {
        const Py_ssize_t len = n - i < w - j ? n - i : w - j;
        switch (act) {
#define CYR_BN_CALL(ACT) \
    CYR_NAME(bn_affine_cols_impl)(ACT, x + i, y + i, len, scale + j, shift + j, a)
        CYR_BN_FORWARD_ACTIVATIONS(CYR_BN_FCASE_)
        default: CYR_BN_CALL(CYR_ACT_NONE); break;
#undef CYR_BN_CALL
        }
        i += len;
        j = 0;
    }
}

/* bn_affine_cols_pieces; for the activations of activation_special.h, the affine part
 * row piece by row piece into an L1 tile, then the activation's own loop over the whole
 * tile (a loop per row piece of short rows spent more on its setup than on its
 * elements: 1.5x the time of the two calls, BatchNorm then the activation, channels
 * last with 64 channels).  The same values, bit for bit: the pre-activation is rounded
 * to CYR_T either way, then the same function is applied.  Here y may be exactly x. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_affine_cols_wrap)(int act, const CYR_T *x, CYR_T *y,
                                                           Py_ssize_t j0, Py_ssize_t n,
                                                           Py_ssize_t w, const CYR_T *scale,
                                                           const CYR_T *shift, CYR_BN_PAR a) {
    if (!CYR_BN_IS_SPECIAL(act)) {
        CYR_NAME(bn_affine_cols_pieces)(act, x, y, j0, n, w, scale, shift, a);
        return;
    }
    CYR_ALIGN64 CYR_T tile[CYR_BN_ACT_TILE_N(CYR_T)];
    for (Py_ssize_t i = 0; i < n; i += CYR_BN_ACT_TILE_N(CYR_T)) {
        const Py_ssize_t len = n - i < CYR_BN_ACT_TILE_N(CYR_T) ? n - i : CYR_BN_ACT_TILE_N(CYR_T);
        CYR_NAME(bn_affine_cols_pieces)(CYR_ACT_NONE, x + i, tile, (j0 + i) % w, len, w, scale,
                                        shift, a);
        CYR_NAME(unary_plain)(act, tile, y + i, len, a.a, a.b);
    }
}

/* rows x w, consecutive rows ld elements apart: y = act(x * scale[col] + shift[col]);
 * y may be exactly x. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_affine_rows_ld)(int act, const CYR_T *x, CYR_T *y, Py_ssize_t rows,
                                            Py_ssize_t w, Py_ssize_t ld, const CYR_T *scale,
                                            const CYR_T *shift, CYR_BN_PAR a) {
    const Py_ssize_t rb = w * (Py_ssize_t)sizeof(CYR_T);
    if (CYR_BN_IS_SPECIAL(act)) {  /* in L1 tiles, across row ends where rows are contiguous */
        if (ld == w) {
            CYR_NAME(bn_affine_cols_wrap)(act, x, y, 0, rows * w, w, scale, shift, a);
            return;
        }
        for (Py_ssize_t r = 0; r < rows; ++r)
            CYR_NAME(bn_affine_cols_wrap)(act, x + r * ld, y + r * ld, 0, w, w, scale, shift, a);
        return;
    }
    for (Py_ssize_t r = 0; r < rows; ++r) {
        const CYR_T *xr = x + r * ld;
        CYR_T *yr = y + r * ld;
        if (rb < CYR_BN_SHORT_ROW_BYTES) {
            cyr_bn_prefetch_run((const char *)xr + CYR_BN_AHEAD_BYTES, rb);
            if ((const CYR_T *)yr != xr)
                cyr_bn_prefetchw_run((char *)yr + CYR_BN_AHEAD_BYTES, rb);
        }
        if ((const CYR_T *)yr == xr) {
            switch (act) {
#define CYR_BN_CALL(ACT) CYR_NAME(bn_affine_cols_inplace_impl)(ACT, yr, w, scale, shift, a)
            CYR_BN_FORWARD_ACTIVATIONS(CYR_BN_FCASE_)
            default: CYR_BN_CALL(CYR_ACT_NONE); break;
#undef CYR_BN_CALL
            }
        } else {
            switch (act) {
#define CYR_BN_CALL(ACT) CYR_NAME(bn_affine_cols_impl)(ACT, xr, yr, w, scale, shift, a)
            CYR_BN_FORWARD_ACTIVATIONS(CYR_BN_FCASE_)
            default: CYR_BN_CALL(CYR_ACT_NONE); break;
#undef CYR_BN_CALL
            }
        }
    }
}

/* rows x W, contiguous rows. */
static CYR_TARGET void CYR_NAME(bn_affine_rows)(int act, const CYR_T *x, CYR_T *y, Py_ssize_t rows,
                                         Py_ssize_t w, const CYR_T *scale, const CYR_T *shift,
                                         CYR_BN_PAR a) {
    CYR_NAME(bn_affine_rows_ld)(act, x, y, rows, w, w, scale, shift, a);
}

/* bn_affine_rows with the output streamed (see "streaming stores" in common.h), y
 * distinct from x: the rows are one contiguous run, written as the head up to a 64-byte
 * boundary, then tiles computed in an L1 buffer (across row ends) and streamed out,
 * then the tail; fenced. */
static CYR_TARGET void CYR_NAME(bn_affine_rows_stream)(int act, const CYR_T *x, CYR_T *y,
                                                      Py_ssize_t rows, Py_ssize_t w,
                                                      const CYR_T *scale, const CYR_T *shift,
                                                      CYR_BN_PAR a) {
#if CYR_HAVE_STREAM
    CYR_ALIGN64 CYR_T tile[CYR_BN_ACT_TILE_N(CYR_T)];
    const Py_ssize_t tn = CYR_BN_STREAM_TILE_N_(act);
    const Py_ssize_t n = rows * w;
    const int ahead = w * (Py_ssize_t)sizeof(CYR_T) < CYR_BN_SHORT_ROW_BYTES;
    Py_ssize_t i = CYR_BN_HEAD_N(y, CYR_T) < n ? CYR_BN_HEAD_N(y, CYR_T) : n;
    CYR_NAME(bn_affine_cols_wrap)(act, x, y, 0, i, w, scale, shift, a);
    for (; i + tn <= n; i += tn) {
        if (ahead)
            cyr_bn_prefetch_run((const char *)(x + i) + CYR_BN_AHEAD_BYTES,
                                tn * (Py_ssize_t)sizeof(CYR_T));
        CYR_NAME(bn_affine_cols_wrap)(act, x + i, tile, i % w, tn, w, scale, shift, a);
        CYR_ISA_FN(stream_store)(y + i, tile, tn * (Py_ssize_t)sizeof(CYR_T));
    }
    CYR_NAME(bn_affine_cols_wrap)(act, x + i, y + i, i % w, n - i, w, scale, shift, a);
    cyr_stream_fence();
#else
    CYR_NAME(bn_affine_rows)(act, x, y, rows, w, scale, shift, a);
#endif
}

/* ---- training forward, one channel of a (outer, C, inner) array -------------------- */

/* A channel's statistics in one read: its rows' sums shifted by k (bn_shift_acc), into
 * s (CYR_BN_CARRY doubles, laid out as batchnorm.h says), made the mean and M2 by
 * cyr_bn_shift_done.  float32 (and float16) data take s1 and s2 at once; float64 data,
 * whose squares float64 cannot hold exactly, take s1 alone (sq 0), then M2 from a second
 * read of the rows in cache, shifted by their mean (bn_chan_shift_finish). */
#define CYR_BN_SQ (sizeof(CYR_T) != sizeof(double))

/* s zeroed and its shift k set for a chunk of `rows` rows of a channel (x at its first
 * row): the mean of the first cyr_bn_shift_cols elements of each of its first
 * CYR_BN_SHIFT_ROWS(rows) rows (cyr_bn_shift_of; cyr_bn_shift_done says why). */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_chan_shift_begin)(const CYR_T *x, Py_ssize_t step,
                                                           Py_ssize_t inner, Py_ssize_t rows,
                                                           double *s) {
    const Py_ssize_t m = CYR_BN_SHIFT_ROWS(rows), e = cyr_bn_shift_cols(rows, inner);
    double h[CYR_BN_LANES + 1] = {0};
    for (int j = 0; j < CYR_BN_CARRY; ++j) s[j] = 0.0;
    for (Py_ssize_t o = 0; o < m; ++o)
        CYR_NAME(bn_sum_acc)(x + o * step, e, h, h + CYR_BN_LANES);
    s[CYR_BN_SH_K] = cyr_bn_shift_of(h, (double)m * (double)e);
}

/* Row o of [o0, o1) joins the shifted sums s (sq: s2 too); the row CYR_BN_PREFETCH_ROWS
 * ahead is prefetched where asked, and a long row is read paced (cyr_bn_paces,
 * batchnorm.h: the next row prefetched piece by piece).  The training forward runs it
 * for the next channel during this one's normalising pass (bn_train_channel): rows in
 * the same order, the same sums either way. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_chan_shift_row)(const CYR_T *x, Py_ssize_t step,
                                                         Py_ssize_t inner, Py_ssize_t o,
                                                         Py_ssize_t o1, int prefetch, int sq,
                                                         double *s) {
    const double k = s[CYR_BN_SH_K];
    double *s2 = s + CYR_BN_LANES, *t = s + CYR_BN_SH_TAIL;
    if (prefetch && o + CYR_BN_PREFETCH_ROWS < o1)
        cyr_bn_prefetch_run(x + (o + CYR_BN_PREFETCH_ROWS) * step,
                            inner * (Py_ssize_t)sizeof(CYR_T));
    if (!cyr_bn_paces(prefetch, o, o1)) {
        CYR_NAME(bn_shift_acc)(x + o * step, inner, k, sq, s, s2, t);
        return;
    }
    for (Py_ssize_t i = 0, e; i < inner; i = e) {  /* paced (CYR_BN_PACE_BYTES) */
        e = CYR_BN_PACE_END(i, inner, CYR_T);
        cyr_bn_prefetch_run(x + (o + 1) * step + i, (e - i) * (Py_ssize_t)sizeof(CYR_T));
        CYR_NAME(bn_shift_acc)(x + o * step + i, e - i, k, sq, s, s2, t);
    }
}

/* The mean and M2 of rows [o0, o1) of a channel from their shifted sums s (taken with
 * sq = CYR_BN_SQ; s is consumed).  float64: the second read, in cache, shifted by the
 * mean and corrected by its own s1 (s1 near 0): as accurate as two passes. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_chan_shift_finish)(const CYR_T *x, Py_ssize_t step,
                                                            Py_ssize_t inner, Py_ssize_t o0,
                                                            Py_ssize_t o1, double *s,
                                                            double *mean_out, double *m2_out) {
    const double n = (double)(o1 - o0) * (double)inner;
    if (CYR_BN_SQ) {
        cyr_bn_shift_done(s, n, mean_out, m2_out);
        return;
    }
    cyr_bn_shift_done(s, n, mean_out, NULL);
    for (int j = 0; j < CYR_BN_SH_K; ++j) s[j] = 0.0;
    s[CYR_BN_SH_K] = *mean_out;  /* a non-finite mean needs no care: M2 is NaN either way */
    for (Py_ssize_t o = o0; o < o1; ++o)
        CYR_NAME(bn_shift_acc)(x + o * step, inner, *mean_out, 1, s, s + CYR_BN_LANES,
                               s + CYR_BN_SH_TAIL);
    {
        double mean;
        cyr_bn_shift_done(s, n, &mean, m2_out);  /* the mean stands */
    }
}

/* The statistics (double) of rows [o0, o1) of channel c: *mean_out and *m2_out (the sum
 * of squared deviations).  x points at the channel's first row. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_channel_chunk_stats)(const CYR_T *x, Py_ssize_t step,
                                                   Py_ssize_t inner, Py_ssize_t o0,
                                                   Py_ssize_t o1, int prefetch,
                                                   double *mean_out, double *m2_out) {
    double s[CYR_BN_CARRY];
    CYR_NAME(bn_chan_shift_begin)(x + o0 * step, step, inner, o1 - o0, s);
    for (Py_ssize_t o = o0; o < o1; ++o)
        CYR_NAME(bn_chan_shift_row)(x, step, inner, o, o1, prefetch, CYR_BN_SQ, s);
    CYR_NAME(bn_chan_shift_finish)(x, step, inner, o0, o1, s, mean_out, m2_out);
}

/* Mean and M2 (the sum of squared deviations) of channel c of (outer, C, inner) data.  A
 * slab larger than cyr_slab_bytes() is taken in chunks of rows that fit (each one read,
 * float64's second in cache, merged in order with Chan's update), so the statistics read
 * memory once. */
static CYR_TARGET void CYR_NAME(bn_channel_stats)(const CYR_T *x, Py_ssize_t outer, Py_ssize_t C,
                                           Py_ssize_t inner, Py_ssize_t c, double *mean_out,
                                           double *m2_out) {
    const Py_ssize_t step = C * inner;
    const Py_ssize_t row_bytes = inner * (Py_ssize_t)sizeof(CYR_T);
    const Py_ssize_t slab_bytes = cyr_slab_bytes();
    const Py_ssize_t chunk = row_bytes >= slab_bytes ? 1 : slab_bytes / row_bytes;
    const int prefetch = cyr_bn_wants_prefetch(row_bytes);
    double mean, m2, na;
    Py_ssize_t o;
    x += c * inner;
    CYR_NAME(bn_channel_chunk_stats)(x, step, inner, 0, outer < chunk ? outer : chunk, prefetch,
                                     &mean, &m2);
    na = (double)(outer < chunk ? outer : chunk) * (double)inner;
    for (o = chunk; o < outer; o += chunk) {
        const Py_ssize_t o1 = outer - o < chunk ? outer : o + chunk;
        double mb, m2b;
        CYR_NAME(bn_channel_chunk_stats)(x, step, inner, o, o1, prefetch, &mb, &m2b);
        cyr_bn_chan_merge(na, &mean, &m2, (double)(o1 - o) * (double)inner, &mb, &m2b, 1);
        na += (double)(o1 - o) * (double)inner;
    }
    *mean_out = mean;
    *m2_out = m2;
}

/* Statistics of channel c (bn_channel_stats), then y = act(x * scale + shift) over the
 * same slab while it is still in cache.  Writes the batch mean and biased variance.
 *
 * A run of channels taken in turn by one thread overlaps them where two slabs fit in L2
 * (cyr_bn_pipelines) and the rows are short enough to prefetch (cyr_bn_wants_prefetch):
 * while this channel is normalised (memory-bound: its output goes out, the next slab
 * comes in), the next channel's statistics read (its shifted sums) runs on the rows as
 * they arrive, into carry_out (CYR_BN_CARRY doubles; NULL: not asked, or c is the run's
 * last channel).  carry_in, when not NULL, holds this channel's, taken so during the
 * previous one.  The same additions in the same order as bn_channel_stats: the same
 * bits.  Otherwise the next slab (if it fits in L2 beside this one) is prefetched into
 * L2 as this one is normalised, so that its statistics start from L2.  Measured (Zen 5,
 * float32, 2 threads, against that prefetch alone, runs on a shared machine): rows of
 * 3 KiB ((64, 128, 28, 28)) 3-21% faster, of 784 bytes 2-6%; rows of 12 KiB
 * ((32, 64, 56, 56)) 0-8% slower, so longer rows keep the prefetch. */
static CYR_TARGET void CYR_NAME(bn_train_channel)(const CYR_T *x, CYR_T *y, Py_ssize_t outer,
                                           Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c,
                                           double w, double b, double eps, int act, CYR_BN_PAR a,
                                           int stream, const double *carry_in,
                                           double *carry_out, double *mean_out,
                                           double *var_out) {
    const Py_ssize_t step = C * inner;
    const Py_ssize_t row_bytes = inner * (Py_ssize_t)sizeof(CYR_T);
    const int prefetch = cyr_bn_wants_prefetch(row_bytes);
    const int pipe = prefetch && cyr_bn_pipelines(outer * row_bytes);
    double mean, m2, var, invstd, scale;
    Py_ssize_t o;
    if (pipe && carry_in != NULL) {
        double s[CYR_BN_CARRY];
        for (int k = 0; k < CYR_BN_CARRY; ++k) s[k] = carry_in[k];
        CYR_NAME(bn_chan_shift_finish)(x + c * inner, step, inner, 0, outer, s, &mean, &m2);
    } else {
        CYR_NAME(bn_channel_stats)(x, outer, C, inner, c, &mean, &m2);
    }
    x += c * inner;
    y += c * inner;
    var = m2 / ((double)outer * (double)inner);
    invstd = 1.0 / sqrt(var + eps);
    scale = w * invstd;
    const int carry = pipe && carry_out != NULL && c + 1 < C;
    const int next = !carry && c + 1 < C && cyr_bn_fits_twice(outer * row_bytes);
    if (carry) CYR_NAME(bn_chan_shift_begin)(x + inner, step, inner, outer, carry_out);
    if (stream && (const CYR_T *)y != x) {
        for (o = 0; o < outer; ++o) {
            if (next) cyr_bn_prefetch_l2_run(x + inner + o * step, row_bytes);
            CYR_NAME(bn_affine_stream)(act, x + o * step, y + o * step, inner, (CYR_T)scale,
                                       (CYR_T)(b - mean * scale), a);
            if (carry)
                CYR_NAME(bn_chan_shift_row)(x + inner, step, inner, o, outer, prefetch,
                                            CYR_BN_SQ, carry_out);
        }
#if CYR_HAVE_STREAM
        cyr_stream_fence();
#endif
    } else {
        for (o = 0; o < outer; ++o) {
            if (o + CYR_BN_PREFETCH_ROWS < outer)  /* the output lines, for writing */
                cyr_bn_prefetchw_run(y + (o + CYR_BN_PREFETCH_ROWS) * step, row_bytes);
            if (next) cyr_bn_prefetch_l2_run(x + inner + o * step, row_bytes);
            CYR_NAME(bn_affine)(act, x + o * step, y + o * step, inner, (CYR_T)scale,
                                (CYR_T)(b - mean * scale), a);
            if (carry)
                CYR_NAME(bn_chan_shift_row)(x + inner, step, inner, o, outer, prefetch,
                                            CYR_BN_SQ, carry_out);
        }
    }
    *mean_out = mean;
    *var_out = var;
}

/* y = act(x * scale[c] + shift[c]) for the rows [r0, r1) of the (outer * C) rows of
 * length inner (row r belongs to channel r % C); y may be exactly x. */
static CYR_TARGET void CYR_NAME(bn_affine_chan_rows)(int act, const CYR_T *x, CYR_T *y, Py_ssize_t r0,
                                              Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner,
                                              const CYR_T *scale, const CYR_T *shift, CYR_BN_PAR a,
                                              int stream) {
    if (stream && (const CYR_T *)y != x) {
        for (Py_ssize_t r = r0; r < r1; ++r) {
            const Py_ssize_t c = r % C;
            CYR_NAME(bn_affine_stream)(act, x + r * inner, y + r * inner, inner, scale[c],
                                       shift[c], a);
        }
#if CYR_HAVE_STREAM
        cyr_stream_fence();
#endif
        return;
    }
    for (Py_ssize_t r = r0; r < r1; ++r) {
        const Py_ssize_t c = r % C;
        CYR_NAME(bn_affine)(act, x + r * inner, y + r * inner, inner, scale[c], shift[c], a);
    }
}

/* ---- statistics per column, for the row layout -------------------------------------- */

/* The shift of a block's one-pass sums: k[j] = its first row's x[0, j] where finite,
 * else 0 (an infinite or NaN shift would turn the block's finite values into NaN and
 * lose an infinite mean; with 0 the sums carry them as two passes do). */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_colshift)(const CYR_T *CYR_RESTRICT x, Py_ssize_t w,
                                                   double *CYR_RESTRICT k) {
    for (Py_ssize_t j = 0; j < w; ++j) {
        const double v = (double)x[j];
        k[j] = fabs(v) <= DBL_MAX ? v : 0.0;
    }
}

/* s1[j] += the sum over `rows` rows of d = x[r, j] - k[j] and (sq) s2[j] += that of
 * d * d, one read of x: four rows per sweep over the accumulators (a quarter of their
 * loads and stores), summed as ((d0 + d1) + (d2 + d3)) before joining the column's.
 * Splitting the rows at multiples of 4 (or the columns anywhere) adds the same values in
 * the same order: the float16 copy relies on it.  ahead (rows contiguous, ld == w): each
 * sweep prefetches CYR_BN_ROWS_AHEAD(its bytes) past itself, in memory order, a line per
 * 64 bytes it reads (see batchnorm.h); spelled out in the loop, where the compiler keeps
 * them (tests/test_c_kernels.py checks). */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_colshift_acc)(const CYR_T *CYR_RESTRICT x,
                                                       Py_ssize_t rows, Py_ssize_t w,
                                                       Py_ssize_t ld, int ahead, int sq,
                                                       const double *CYR_RESTRICT k,
                                                       double *CYR_RESTRICT s1,
                                                       double *CYR_RESTRICT s2) {
    Py_ssize_t r, j;
    const Py_ssize_t rb = 4 * w * (Py_ssize_t)sizeof(CYR_T);
    for (r = 0; r + 4 <= rows; r += 4) {
        const CYR_T *CYR_RESTRICT x0 = x + r * ld;
        const CYR_T *CYR_RESTRICT x1 = x0 + ld;
        const CYR_T *CYR_RESTRICT x2 = x1 + ld;
        const CYR_T *CYR_RESTRICT x3 = x2 + ld;
        const char *pf = (const char *)x0 + CYR_BN_ROWS_AHEAD(rb);
        j = 0;
#if CYR_ISA_ID >= 1
        for (; j + CYR_VD_N <= w; j += CYR_VD_N) {
            if (ahead && CYR_BN_ROWS_AHEAD_BYTES) {
                /* the sweep reads 4 * CYR_VD_N elements per step: as many bytes ahead */
                const char *p = pf + 4 * j * (Py_ssize_t)sizeof(CYR_T);
                for (int q = 0; q < 4 * CYR_VD_N * (int)sizeof(CYR_T); q += 64)
                    CYR_BN_PREFETCH(p + q);
            }
            CYR_BN_VD_DEV4_(x0, x1, x2, x3, k, j);
            CYR_VD_STOREU(s1 + j, CYR_VD_ADD_ON_FMA(CYR_VD_LOADU(s1 + j),
                                                    CYR_VD_ADD_ON_FMA(CYR_VD_ADD_ON_FMA(d0, d1),
                                                                      CYR_VD_ADD_ON_FMA(d2, d3))));
            if (sq)
                CYR_VD_STOREU(
                    s2 + j,
                    CYR_VD_ADD(CYR_VD_LOADU(s2 + j),
                               CYR_VD_ADD(CYR_VD_ADD(CYR_VD_MUL(d0, d0), CYR_VD_MUL(d1, d1)),
                                          CYR_VD_ADD(CYR_VD_MUL(d2, d2), CYR_VD_MUL(d3, d3)))));
        }
#else
        /* the baseline's loop below is the compiler's to vectorise: the sweep's
         * prefetches go first */
        if (ahead && CYR_BN_ROWS_AHEAD_BYTES) cyr_bn_prefetch_run(pf, rb);
#endif
        for (; j < w; ++j) {
            const double m = k[j];
            const double d0 = (double)x0[j] - m, d1 = (double)x1[j] - m;
            const double d2 = (double)x2[j] - m, d3 = (double)x3[j] - m;
            s1[j] += (d0 + d1) + (d2 + d3);
            if (sq) s2[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
        }
    }
    for (; r < rows; ++r) {
        const CYR_T *CYR_RESTRICT xr = x + r * ld;
        for (j = 0; j < w; ++j) {
            const double d = (double)xr[j] - k[j];
            s1[j] += d;
            if (sq) s2[j] += d * d;
        }
    }
}

/* A block's mean and M2 from its shifted sums (bn_colshift_acc over its n rows): mean[j]
 * holds the shift k[j] and m2[j] the sum s2[j] on entry (mean NULL: M2 alone, the shift
 * being the mean already: bn_block_colstats' float64 second read).  M2 = s2 - s1 * s1 / n,
 * where s1 * s1 / n = n * (mean - k)**2 <= n * M2 (k is one of the block's values, whose
 * squared deviation is one term of M2) and so s2 <= (n + 1) * M2: the subtraction
 * magnifies the sums' rounding at most 2n + 1 times, 513 for the row layout's blocks of
 * at most 256 rows (9 of float64's 53 bits), far below the float32 rounding of what is
 * computed from them. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_colshift_done)(Py_ssize_t n, Py_ssize_t w,
                                                        double *CYR_RESTRICT mean,
                                                        double *CYR_RESTRICT m2,
                                                        const double *CYR_RESTRICT s1) {
    const double inv = 1.0 / (double)n;
    for (Py_ssize_t j = 0; j < w; ++j) {
        const double d = s1[j] * inv, q = m2[j] - s1[j] * d;
        if (mean != NULL) mean[j] += d;
        m2[j] = q < 0.0 ? 0.0 : q; /* rounding's only; NaN stays */
    }
}

/* Mean and M2 (sum of squared deviations) of each of the W columns of `rows` contiguous
 * rows; s1: W doubles of scratch.  float32 (and float16) data take one read
 * (bn_colshift_acc): their differences from the shift and the squares of those are exact
 * in float64, so only the sums round, far below the data's own precision.  float64
 * data have no such room: the first read takes the mean alone, and a second, of the
 * block in cache (the Python layer sizes its blocks to the L2), the sums shifted by the
 * mean, M2 corrected by that pass's own sum (s2 - s1 * s1 / n, s1 near 0): as accurate
 * as two passes. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_block_colstats)(const CYR_T *CYR_RESTRICT x, Py_ssize_t rows,
                                            Py_ssize_t w, double *CYR_RESTRICT mean,
                                            double *CYR_RESTRICT m2, double *CYR_RESTRICT s1) {
    const int twice = sizeof(CYR_T) == sizeof(double);
    Py_ssize_t j;
    CYR_NAME(bn_colshift)(x, w, mean);
    for (j = 0; j < w; ++j) { m2[j] = 0.0; s1[j] = 0.0; }
    CYR_NAME(bn_colshift_acc)(x, rows, w, w, 1, !twice, mean, s1, m2);
    CYR_NAME(bn_colshift_done)(rows, w, mean, m2, s1);
    if (twice) {
        /* a non-finite mean needs no care: its M2 is NaN either way */
        for (j = 0; j < w; ++j) { m2[j] = 0.0; s1[j] = 0.0; }
        CYR_NAME(bn_colshift_acc)(x, rows, w, w, 0, 1, mean, s1, m2);
        CYR_NAME(bn_colshift_done)(rows, w, NULL, m2, s1);
    }
}

/* Column statistics of a group of `rows` contiguous rows, block by block (block_rows
 * each), merged in order.  t: 3 * W doubles of scratch. */
static CYR_TARGET void CYR_NAME(bn_group_colstats)(const CYR_T *x, Py_ssize_t rows, Py_ssize_t w,
                                            Py_ssize_t block_rows, double *gmean, double *gm2,
                                            double *t) {
    Py_ssize_t r0, nb;
    double na;
    nb = rows < block_rows ? rows : block_rows;
    CYR_NAME(bn_block_colstats)(x, nb, w, gmean, gm2, t);
    na = (double)nb;
    for (r0 = nb; r0 < rows; r0 += nb) {
        nb = rows - r0 < block_rows ? rows - r0 : block_rows;
        CYR_NAME(bn_block_colstats)(x + r0 * w, nb, w, t, t + w, t + 2 * w);
        cyr_bn_chan_merge(na, gmean, gm2, (double)nb, t, t + w, w);
        na += (double)nb;
    }
}

/* ---- backward ---------------------------------------------------------------------- */

/* bn_dot_acc for a tiled activation (CYR_BN_IS_TILED_BW; y is x): the gated tile, then
 * the plain sums over it.  The tiles are whole lane groups (CYR_BN_ACT_TILE_N is a
 * multiple of CYR_BN_LANES), so each element joins the lane (or the tail) it joins in
 * one run: the sums are bitwise those of the plain backward given the gated dy.  With
 * gs (dx's run: the gate kept there, CYR_BN_KEEPS_GATE, batchnorm.h) the tiles are gs's,
 * so the gated values stay there for the dx pass. */
static CYR_TARGET void CYR_NAME(bn_dot_acc_tiled)(int act, const CYR_T *dy, const CYR_T *x,
                                               const CYR_T *y, Py_ssize_t n, double mean,
                                               CYR_BN_GATEP a, double *s0, double *s1,
                                               double *t, CYR_T *gs) {
    CYR_ALIGN64 CYR_T tile[CYR_BN_ACT_TILE_N(CYR_T)];
    for (Py_ssize_t i = 0; i < n; i += CYR_BN_ACT_TILE_N(CYR_T)) {
        const Py_ssize_t len = n - i < CYR_BN_ACT_TILE_N(CYR_T) ? n - i : CYR_BN_ACT_TILE_N(CYR_T);
        CYR_T *gt = gs != NULL ? gs + i : tile;
        CYR_NAME(bn_tile_z)(y + i, len, a.sc, a.sh, 0, gt);
        CYR_NAME(bn_tile_gate)(act, dy + i, len, a, gt);
        CYR_NAME(bn_dot_acc_impl)(CYR_ACT_NONE, gt, x + i, NULL, len, mean, a, s0, s1, t);
    }
}

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dot_acc)(int act, const CYR_T *dy, const CYR_T *x, const CYR_T *y,
                                     Py_ssize_t n, double mean, CYR_BN_GATEP a, double *s0, double *s1,
                                     double *t) {
    if (CYR_BN_IS_TILED_BW(act)) {
        CYR_NAME(bn_dot_acc_tiled)(act, dy, x, y, n, mean, a, s0, s1, t, NULL);
        return;
    }
    switch (act) {
#define CYR_BN_CALL(ACT) CYR_NAME(bn_dot_acc_impl)(ACT, dy, x, y, n, mean, a, s0, s1, t)
    CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_CASE_)
    default: CYR_BN_CALL(CYR_ACT_NONE); break;
#undef CYR_BN_CALL
    }
}

/* dx from the gate kept in d (d: dx, holding the gated dy), in place: bn_dx_impl's
 * loop where dy is dx (which its restrict pointers rule out). */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dx_gated)(int train, CYR_T *CYR_RESTRICT d,
                                                   const CYR_T *CYR_RESTRICT x, Py_ssize_t n,
                                                   CYR_T mean, CYR_T k, CYR_T mdy, CYR_T A) {
    if (train) {
        for (Py_ssize_t i = 0; i < n; ++i) d[i] = CYR_BN_DX_TRAIN(d[i], x[i], mean, k, mdy, A);
    } else {
        for (Py_ssize_t i = 0; i < n; ++i) d[i] = d[i] * A;
    }
}

/* training: dx = (g - (x - mean) * k - mdy) * A;  eval (train == 0): dx = g * A. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dx_impl)(int act, int train, const CYR_T *CYR_RESTRICT dy,
                                     const CYR_T *CYR_RESTRICT x, const CYR_T *CYR_RESTRICT y,
                                     CYR_T *CYR_RESTRICT dx, Py_ssize_t n, CYR_T mean, CYR_T k,
                                     CYR_T mdy, CYR_T A, CYR_BN_GATEP a) {
    const CYR_T sc = a.sc[0], sh = a.sh[0];
    if (train) {
        for (Py_ssize_t i = 0; i < n; ++i) {
            const CYR_T g = CYR_NAME(bn_gate)(act, dy[i], y, i, sc, sh, a);
            dx[i] = CYR_BN_DX_TRAIN(g, x[i], mean, k, mdy, A);
        }
    } else {
        for (Py_ssize_t i = 0; i < n; ++i) dx[i] = CYR_NAME(bn_gate)(act, dy[i], y, i, sc, sh, a) * A;
    }
}

/* bn_dx for a tiled activation (CYR_BN_IS_TILED_BW; y is x): the gated tile, then the
 * plain dx from it. */
static CYR_TARGET void CYR_NAME(bn_dx_tiled)(int act, int train, const CYR_T *dy, const CYR_T *x,
                                          const CYR_T *y, CYR_T *dx, Py_ssize_t n, CYR_T mean,
                                          CYR_T k, CYR_T mdy, CYR_T A, CYR_BN_GATEP a) {
    CYR_ALIGN64 CYR_T gt[CYR_BN_ACT_TILE_N(CYR_T)];
    for (Py_ssize_t i = 0; i < n; i += CYR_BN_ACT_TILE_N(CYR_T)) {
        const Py_ssize_t len = n - i < CYR_BN_ACT_TILE_N(CYR_T) ? n - i : CYR_BN_ACT_TILE_N(CYR_T);
        CYR_NAME(bn_tile_z)(y + i, len, a.sc, a.sh, 0, gt);
        CYR_NAME(bn_tile_gate)(act, dy + i, len, a, gt);
        if (train)
            CYR_NAME(bn_dx_impl)(CYR_ACT_NONE, 1, gt, x + i, NULL, dx + i, len, mean, k, mdy, A, a);
        else
            CYR_NAME(bn_dx_impl)(CYR_ACT_NONE, 0, gt, x + i, NULL, dx + i, len, mean, k, mdy, A, a);
    }
}

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dx)(int act, int train, const CYR_T *dy, const CYR_T *x,
                                const CYR_T *y, CYR_T *dx, Py_ssize_t n, CYR_T mean, CYR_T k,
                                CYR_T mdy, CYR_T A, CYR_BN_GATEP a) {
    if (CYR_BN_IS_TILED_BW(act)) {
        CYR_NAME(bn_dx_tiled)(act, train, dy, x, y, dx, n, mean, k, mdy, A, a);
        return;
    }
    switch (act * 2 + (train != 0)) {
#define CYR_BN_CALL(ACT, TRAIN) CYR_NAME(bn_dx_impl)(ACT, TRAIN, dy, x, y, dx, n, mean, k, mdy, A, a)
    CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_CASE2_)
    case 1: CYR_BN_CALL(CYR_ACT_NONE, 1); break;
    default: CYR_BN_CALL(CYR_ACT_NONE, 0); break;
#undef CYR_BN_CALL
    }
}

/* Pass 1 of channel c of (outer, C, inner) arrays: sums[0] = sum(g) and
 * sums[1] = sum(g * (x - mean)), g = dy gated by the activation (y may be NULL when
 * act is none); g also stored into gs (dx) when gs is not NULL (CYR_BN_KEEPS_GATE).
 * Each row is one bn_dot_acc run, so the lanes each element joins depend only on its
 * place in its row. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_channel_dot)(const CYR_T *dy, const CYR_T *x, const CYR_T *y,
                                         Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                                         Py_ssize_t c, double mean, int act, CYR_BN_GATEP a,
                                         CYR_T *gs, double *sums) {
    const Py_ssize_t step = C * inner;
    const int prefetch = cyr_bn_wants_prefetch(inner * (Py_ssize_t)sizeof(CYR_T));
    const Py_ssize_t pd = CYR_BN_PREFETCH_ROWS * step, bytes = inner * (Py_ssize_t)sizeof(CYR_T);
    double s0[CYR_BN_LANES] = {0}, s1[CYR_BN_LANES] = {0}, t[2] = {0.0, 0.0};
    for (Py_ssize_t o = 0; o < outer; ++o) {
        const Py_ssize_t off = o * step + c * inner;
        if (prefetch && o + CYR_BN_PREFETCH_ROWS < outer) {
            cyr_bn_prefetch_run(dy + off + pd, bytes);
            cyr_bn_prefetch_run(x + off + pd, bytes);
            if (y && y != x) cyr_bn_prefetch_run(y + off + pd, bytes);
        }
        const int paced = cyr_bn_paces(prefetch, o, outer);
        for (Py_ssize_t i = 0, e; i < inner; i = e) {  /* paced: pieces (CYR_BN_PACE_BYTES) */
            e = paced ? CYR_BN_PACE_END(i, inner, CYR_T) : inner;
            if (paced) {  /* the next row's piece (batchnorm.h) */
                const Py_ssize_t nb = (e - i) * (Py_ssize_t)sizeof(CYR_T);
                cyr_bn_prefetch_run(dy + off + step + i, nb);
                cyr_bn_prefetch_run(x + off + step + i, nb);
                if (y && y != x) cyr_bn_prefetch_run(y + off + step + i, nb);
            }
            if (gs)
                CYR_NAME(bn_dot_acc_tiled)(act, dy + off + i, x + off + i, y + off + i, e - i,
                                           mean, a, s0, s1, t, gs + off + i);
            else
                CYR_NAME(bn_dot_acc)(act, dy + off + i, x + off + i, y ? y + off + i : NULL,
                                     e - i, mean, a, s0, s1, t);
        }
    }
    sums[0] = cyr_bn_lanes_total(s0) + t[0];
    sums[1] = cyr_bn_lanes_total(s1) + t[1];
}

/* cyr_bn_dx_coefs (batchnorm.h) in the element type. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dx_coefs)(const double *sums, double n, double invstd, double w,
                                      int train, CYR_T *k, CYR_T *mdy, CYR_T *A) {
    double kk, m, aa;
    cyr_bn_dx_coefs(sums, n, invstd, w, train, &kk, &m, &aa);
    *k = (CYR_T)kk;
    *mdy = (CYR_T)m;
    *A = (CYR_T)aa;
}

/* dx of one contiguous run of n elements, streamed (see "streaming stores" in
 * common.h): the head up to a 64-byte boundary, then tiles computed in `tile` (an
 * aligned L1 buffer of CYR_BN_TILE_N elements) and streamed out, then the tail.  The
 * caller fences (cyr_stream_fence) when done. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dx_stream)(int act, int train, const CYR_T *dy, const CYR_T *x,
                                       const CYR_T *y, CYR_T *dx, Py_ssize_t n, CYR_T mean,
                                       CYR_T k, CYR_T mdy, CYR_T A, CYR_BN_GATEP a, CYR_T *tile) {
#if CYR_HAVE_STREAM
    Py_ssize_t i = CYR_BN_HEAD_N(dx, CYR_T) < n ? CYR_BN_HEAD_N(dx, CYR_T) : n;
    CYR_NAME(bn_dx)(act, train, dy, x, y, dx, i, mean, k, mdy, A, a);
    for (; i + CYR_BN_TILE_N(CYR_T) <= n; i += CYR_BN_TILE_N(CYR_T)) {
        CYR_NAME(bn_dx)(act, train, dy + i, x + i, y ? y + i : NULL, tile, CYR_BN_TILE_N(CYR_T),
                        mean, k, mdy, A, a);
        CYR_ISA_FN(stream_store)(dx + i, tile, CYR_BN_TILE_BYTES);
    }
    CYR_NAME(bn_dx)(act, train, dy + i, x + i, y ? y + i : NULL, dx + i, n - i, mean, k, mdy,
                    A, a);
#else
    (void)tile;
    CYR_NAME(bn_dx)(act, train, dy, x, y, dx, n, mean, k, mdy, A, a);
#endif
}

/* dx of channel c of (outer, C, inner) arrays from the channel's sums (sum(g),
 * sum(g * (x - mean))) over n values: this data's (bn_backward_channel), or a larger
 * batch's that this data is a part of.  Last row first, as the gated pass: the sums'
 * pass leaves the slab's end in cache, and where dy and x together (784 KiB of NCHW
 * (32, 64, 56, 56) float32) nearly fill the L2, walking first to last asks first for
 * the rows evicted first.  Measured (Zen 5, 1 MiB L2, both orders in one process): that
 * backward took 0.94-0.99x the time on 2 threads, 0.91-0.92x on one; (8, 32, 224, 224),
 * whose slabs are three times the L2, 0.98-1.05x. */
static CYR_TARGET void CYR_NAME(bn_channel_dx)(const CYR_T *dy, const CYR_T *x, const CYR_T *y,
                                        CYR_T *dx, Py_ssize_t outer, Py_ssize_t C,
                                        Py_ssize_t inner, Py_ssize_t c, double mean,
                                        double invstd, double w, const double *sums, double n,
                                        int train, int act, CYR_BN_GATEP a, int stream) {
    const Py_ssize_t step = C * inner;
    const Py_ssize_t pd = CYR_BN_PREFETCH_ROWS * step, bytes = inner * (Py_ssize_t)sizeof(CYR_T);
    const CYR_T mean_t = (CYR_T)mean;
    CYR_T k, mdy, A;
    Py_ssize_t o, off;
    CYR_NAME(bn_dx_coefs)(sums, n, invstd, w, train, &k, &mdy, &A);
    (void)stream;  /* without streaming stores (not x86-64), dx is always written plainly */
#if CYR_HAVE_STREAM
    if (stream) {
        CYR_ALIGN64 CYR_T tile[CYR_BN_TILE_N(CYR_T)];
        for (o = outer - 1; o >= 0; --o) {
            off = o * step + c * inner;
            CYR_NAME(bn_dx_stream)(act, train, dy + off, x + off, y ? y + off : NULL, dx + off,
                                   inner, mean_t, k, mdy, A, a, tile);
        }
        cyr_stream_fence();
        return;
    }
#endif
    for (o = outer - 1; o >= 0; --o) {
        off = o * step + c * inner;
        if (o >= CYR_BN_PREFETCH_ROWS)  /* the output lines, for writing */
            cyr_bn_prefetchw_run(dx + off - pd, bytes);
        CYR_NAME(bn_dx)(act, train, dy + off, x + off, y ? y + off : NULL, dx + off, inner,
                        mean_t, k, mdy, A, a);
    }
}

/* Channel c of (outer, C, inner) arrays: pass 1 (bn_channel_dot), then, when dx is not
 * NULL, dx from the same slabs while they are in cache (bn_channel_dx; with the gate
 * kept in dx, bn_dx_gated over it). */
static CYR_TARGET void CYR_NAME(bn_backward_channel)(const CYR_T *dy, const CYR_T *x, const CYR_T *y,
                                              CYR_T *dx, Py_ssize_t outer, Py_ssize_t C,
                                              Py_ssize_t inner, Py_ssize_t c, double mean,
                                              double invstd, double w, int train, int act,
                                              CYR_BN_GATEP a, int stream, double *sums) {
    const int keep = dx != NULL && CYR_BN_KEEPS_GATE(act);
    CYR_NAME(bn_channel_dot)(dy, x, y, outer, C, inner, c, mean, act, a, keep ? dx : NULL,
                             sums);
    if (dx == NULL) return;
    if (keep) {
        const Py_ssize_t step = C * inner;
        CYR_T k, mdy, A;
        CYR_NAME(bn_dx_coefs)(sums, (double)outer * (double)inner, invstd, w, train, &k, &mdy,
                              &A);
        /* last row first: pass 1 left the slab's end in cache (its start may be gone
         * when dy, x and dx together outgrow the L2) */
        for (Py_ssize_t o = outer - 1; o >= 0; --o)
            CYR_NAME(bn_dx_gated)(train, dx + o * step + c * inner, x + o * step + c * inner,
                                  inner, (CYR_T)mean, k, mdy, A);
        return;
    }
    CYR_NAME(bn_channel_dx)(dy, x, y, dx, outer, C, inner, c, mean, invstd, w, sums,
                            (double)outer * (double)inner, train, act, a, stream);
}

/* Channels [c0, c1) of (outer, C, inner) arrays with dx streamed, pipelined: pass 1 of
 * channel c0 alone, then for each channel c, piece by piece along each row, its dx
 * (from the slabs pass 1 left in cache) alternating with pass 1 of channel c + 1 over
 * the same row (from memory), so that the core keeps reading while it writes.  Needs
 * the slabs of two channels to fit in its cache.  Every channel's sums are bitwise
 * those of bn_channel_dot: the pieces are whole lane groups (CYR_BN_PIPE_N is a multiple
 * of CYR_BN_LANES) taken in order, so each element joins the same lane, and the row's
 * last few elements the same tail.  sums: 2 per channel; mean, invstd and w: one per
 * channel. */
static CYR_TARGET void CYR_NAME(bn_backward_channels_piped)(const CYR_T *dy, const CYR_T *x,
                                                     const CYR_T *y, CYR_T *dx,
                                                     Py_ssize_t outer, Py_ssize_t C,
                                                     Py_ssize_t inner, Py_ssize_t c0,
                                                     Py_ssize_t c1, const double *mean,
                                                     const double *invstd, const double *w,
                                                     int train, int act, CYR_BN_GATEP a,
                                                     double *sums) {
    const Py_ssize_t step = C * inner;
    const int prefetch = cyr_bn_wants_prefetch(inner * (Py_ssize_t)sizeof(CYR_T));
    const Py_ssize_t pd = CYR_BN_PREFETCH_ROWS * step, bytes = inner * (Py_ssize_t)sizeof(CYR_T);
    const int keep = CYR_BN_KEEPS_GATE(act);
    CYR_ALIGN64 CYR_T tile[CYR_BN_TILE_N(CYR_T)];
    if (c0 >= c1) return;
    CYR_NAME(bn_channel_dot)(dy, x, y, outer, C, inner, c0, mean[c0], act,
                             CYR_NAME(bn_gatep_at)(a, c0), keep ? dx : NULL, sums + 2 * c0);
    for (Py_ssize_t c = c0; c < c1; ++c) {
        const int next = c + 1 < c1;
        const CYR_T mean_t = (CYR_T)mean[c];
        const CYR_BN_GATEP ac = CYR_NAME(bn_gatep_at)(a, c);
        const CYR_BN_GATEP an = CYR_NAME(bn_gatep_at)(a, next ? c + 1 : c);
        double s0[CYR_BN_LANES] = {0}, s1[CYR_BN_LANES] = {0}, t[2] = {0.0, 0.0};
        CYR_T k, mdy, A;
        CYR_NAME(bn_dx_coefs)(sums + 2 * c, (double)outer * (double)inner, invstd[c], w[c],
                              train, &k, &mdy, &A);
        for (Py_ssize_t o = 0; o < outer; ++o) {
            const Py_ssize_t off = o * step + c * inner, offn = off + inner;
            const CYR_T *dyr = dy + off, *xr = x + off, *yr = y ? y + off : NULL;
            CYR_T *dxr = dx + off;
            /* dx: the head to a 64-byte boundary, then pieces of CYR_BN_PIPE_N streamed;
             * pass 1 of the next channel: pieces of CYR_BN_PIPE_N from the row's start. */
            Py_ssize_t i = keep ? 0
                           : CYR_BN_HEAD_N(dxr, CYR_T) < inner ? CYR_BN_HEAD_N(dxr, CYR_T) : inner;
            Py_ssize_t j = next ? 0 : inner;
            CYR_NAME(bn_dx)(act, train, dyr, xr, yr, dxr, i, mean_t, k, mdy, A, ac);
            if (next && prefetch && o + CYR_BN_PREFETCH_ROWS < outer) {
                cyr_bn_prefetch_run(dy + offn + pd, bytes);
                cyr_bn_prefetch_run(x + offn + pd, bytes);
                if (y && y != x) cyr_bn_prefetch_run(y + offn + pd, bytes);
            }
            while (i < inner || j < inner) {
                if (i < inner) {
                    const Py_ssize_t e = inner - i < CYR_BN_PIPE_N(CYR_T)
                                             ? inner : i + CYR_BN_PIPE_N(CYR_T);
                    if (keep)  /* in place, in cache: plain stores */
                        CYR_NAME(bn_dx_gated)(train, dxr + i, xr + i, e - i, mean_t, k, mdy, A);
                    else
                        CYR_NAME(bn_dx_stream)(act, train, dyr + i, xr + i, yr ? yr + i : NULL,
                                               dxr + i, e - i, mean_t, k, mdy, A, ac, tile);
                    i = e;
                }
                if (j < inner) {
                    const Py_ssize_t e = inner - j < CYR_BN_PIPE_N(CYR_T)
                                             ? inner : j + CYR_BN_PIPE_N(CYR_T);
                    if (keep)
                        CYR_NAME(bn_dot_acc_tiled)(act, dy + offn + j, x + offn + j,
                                                   y + offn + j, e - j, mean[c + 1], an, s0,
                                                   s1, t, dx + offn + j);
                    else
                        CYR_NAME(bn_dot_acc)(act, dy + offn + j, x + offn + j,
                                             y ? y + offn + j : NULL, e - j, mean[c + 1], an,
                                             s0, s1, t);
                    j = e;
                }
            }
        }
        if (next) {
            sums[2 * (c + 1)] = cyr_bn_lanes_total(s0) + t[0];
            sums[2 * (c + 1) + 1] = cyr_bn_lanes_total(s1) + t[1];
        }
    }
#if CYR_HAVE_STREAM
    cyr_stream_fence();
#endif
}

/* Row layout: add sum(g) and sum(g * (x - mean[col])) per column over `rows` rows of W
 * columns into s0[W], s1[W] (double).  Four rows per sweep over the accumulators (a
 * quarter of their loads and stores), added as ((r0 + r1) + (r2 + r3)).  Column j's
 * four rows, in every copy: */
#define CYR_BN_DOT4_(j, g0, g1, g2, g3, X0, X1, X2, X3, M, S0, S1)                        \
    do {                                                                                   \
        S0[j] += (g0 + g1) + (g2 + g3);                                                    \
        S1[j] += (g0 * ((double)X0[j] - M) + g1 * ((double)X1[j] - M))                     \
                 + (g2 * ((double)X2[j] - M) + g3 * ((double)X3[j] - M));                  \
    } while (0)
/* The AVX2 and AVX-512 copies gate a run of columns of the four rows into an L1 tile
 * first (one plain loop each, which the compiler vectorises), then add it in with
 * intrinsics, CYR_VD_N columns at a time, the same operations per column: left to the
 * compiler, the AVX2 copy mixed scalar and vector code and took twice the AVX-512
 * copy's time ((98, 1024) in L2, one thread, Zen 4). */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dot_cols_impl)(int act, const CYR_T *CYR_RESTRICT dy,
                                           const CYR_T *CYR_RESTRICT x,
                                           const CYR_T *CYR_RESTRICT y, Py_ssize_t rows,
                                           Py_ssize_t w, Py_ssize_t ld, int ahead,
                                           const double *CYR_RESTRICT mean,
                                           CYR_BN_GATEP a, double *CYR_RESTRICT s0,
                                           double *CYR_RESTRICT s1) {
    Py_ssize_t r = 0;
    const Py_ssize_t rb = 4 * w * (Py_ssize_t)sizeof(CYR_T);
#if CYR_ISA_ID >= 1
    CYR_T gt[4][CYR_BN_GATE_RUN / 4];
#endif
    /* rows of at least CYR_BN_SHORT_ROW_BYTES (the shorter ones prefetch below): read
     * ahead as bn_colshift_acc, where dy and x are the arrays' contiguous rows */
    const int far = ahead && ld == w && rb >= 4 * CYR_BN_SHORT_ROW_BYTES;
    const int far_y = far && act != CYR_ACT_NONE && y != x;
    for (; r + 4 <= rows; r += 4) {
        const Py_ssize_t o0 = r * ld, o1 = o0 + ld, o2 = o1 + ld, o3 = o2 + ld;
        if (ld == w && rb < 4 * CYR_BN_SHORT_ROW_BYTES) {
            cyr_bn_prefetch_run((const char *)(dy + o0) + CYR_BN_AHEAD_BYTES, rb);
            cyr_bn_prefetch_run((const char *)(x + o0) + CYR_BN_AHEAD_BYTES, rb);
            if (act != CYR_ACT_NONE && y != x)
                cyr_bn_prefetch_run((const char *)(y + o0) + CYR_BN_AHEAD_BYTES, rb);
        }
#if CYR_ISA_ID >= 1
        for (Py_ssize_t j0 = 0; j0 < w; j0 += CYR_BN_GATE_RUN / 4) {
            const Py_ssize_t len = w - j0 < CYR_BN_GATE_RUN / 4 ? w - j0 : CYR_BN_GATE_RUN / 4;
            const CYR_T *g0p = dy + o0 + j0, *g1p = dy + o1 + j0;
            const CYR_T *g2p = dy + o2 + j0, *g3p = dy + o3 + j0;
            const CYR_T *x0 = x + o0 + j0, *x1 = x + o1 + j0, *x2 = x + o2 + j0, *x3 = x + o3 + j0;
            const double *mj = mean + j0;
            double *a0 = s0 + j0, *a1 = s1 + j0;
            Py_ssize_t j = 0;
            if (act != CYR_ACT_NONE) {
                const CYR_T *sc = a.sc + j0, *sh = a.sh + j0;
                const Py_ssize_t off[4] = {o0 + j0, o1 + j0, o2 + j0, o3 + j0};
                for (int q = 0; q < 4; ++q)
                    for (Py_ssize_t i = 0; i < len; ++i)
                        gt[q][i] = CYR_NAME(bn_gate)(act, dy[off[q] + i], y + off[q], i, sc[i],
                                                     sh[i], a);
                g0p = gt[0];
                g1p = gt[1];
                g2p = gt[2];
                g3p = gt[3];
            }
            for (; j + CYR_VD_N <= len; j += CYR_VD_N) {
                if (far && CYR_BN_ROWS_AHEAD_BYTES) {
                    /* the sweep reads 4 * CYR_VD_N elements of each array per step */
                    const Py_ssize_t b = CYR_BN_ROWS_AHEAD(rb) +
                                         4 * (j0 + j) * (Py_ssize_t)sizeof(CYR_T);
                    for (int q = 0; q < 4 * CYR_VD_N * (int)sizeof(CYR_T); q += 64) {
                        CYR_BN_PREFETCH((const char *)(dy + o0) + b + q);
                        CYR_BN_PREFETCH((const char *)(x + o0) + b + q);
                        if (far_y) CYR_BN_PREFETCH((const char *)(y + o0) + b + q);
                    }
                }
                const CYR_VD g0 = CYR_NAME(vd_ld)(g0p + j), g1 = CYR_NAME(vd_ld)(g1p + j);
                const CYR_VD g2 = CYR_NAME(vd_ld)(g2p + j), g3 = CYR_NAME(vd_ld)(g3p + j);
                CYR_BN_VD_DEV4_(x0, x1, x2, x3, mj, j);
                CYR_VD_STOREU(a0 + j, CYR_VD_ADD_ON_FMA(CYR_VD_LOADU(a0 + j),
                                                        CYR_VD_ADD_ON_FMA(CYR_VD_ADD_ON_FMA(g0, g1),
                                                                          CYR_VD_ADD_ON_FMA(g2, g3))));
                CYR_VD_STOREU(
                    a1 + j,
                    CYR_VD_ADD(CYR_VD_LOADU(a1 + j),
                               CYR_VD_ADD(CYR_VD_ADD(CYR_VD_MUL(g0, d0), CYR_VD_MUL(g1, d1)),
                                          CYR_VD_ADD(CYR_VD_MUL(g2, d2), CYR_VD_MUL(g3, d3)))));
            }
            for (; j < len; ++j) {
                const double g0 = (double)g0p[j], g1 = (double)g1p[j];
                const double g2 = (double)g2p[j], g3 = (double)g3p[j];
                CYR_BN_DOT4_(j, g0, g1, g2, g3, x0, x1, x2, x3, mj[j], a0, a1);
            }
        }
#else
        if (far && CYR_BN_ROWS_AHEAD_BYTES) { /* the baseline's: the sweep's first */
            cyr_bn_prefetch_run((const char *)(dy + o0) + CYR_BN_ROWS_AHEAD(rb), rb);
            cyr_bn_prefetch_run((const char *)(x + o0) + CYR_BN_ROWS_AHEAD(rb), rb);
            if (far_y) cyr_bn_prefetch_run((const char *)(y + o0) + CYR_BN_ROWS_AHEAD(rb), rb);
        }
        for (Py_ssize_t j = 0; j < w; ++j) {
            const double g0 = (double)CYR_NAME(bn_gate)(act, dy[o0 + j], y, o0 + j, a.sc[j], a.sh[j], a);
            const double g1 = (double)CYR_NAME(bn_gate)(act, dy[o1 + j], y, o1 + j, a.sc[j], a.sh[j], a);
            const double g2 = (double)CYR_NAME(bn_gate)(act, dy[o2 + j], y, o2 + j, a.sc[j], a.sh[j], a);
            const double g3 = (double)CYR_NAME(bn_gate)(act, dy[o3 + j], y, o3 + j, a.sc[j], a.sh[j], a);
            const CYR_T *x0 = x + o0, *x1 = x + o1, *x2 = x + o2, *x3 = x + o3;
            CYR_BN_DOT4_(j, g0, g1, g2, g3, x0, x1, x2, x3, mean[j], s0, s1);
        }
#endif
    }
#undef CYR_BN_DOT4_
    for (; r < rows; ++r) {
        const Py_ssize_t off = r * ld;
        for (Py_ssize_t j = 0; j < w; ++j) {
            const double g = (double)CYR_NAME(bn_gate)(act, dy[off + j], y, off + j, a.sc[j], a.sh[j], a);
            s0[j] += g;
            s1[j] += g * ((double)x[off + j] - mean[j]);
        }
    }
}

/* Tiles of the row layout for a tiled activation: cw columns (all w, up to a quarter of
 * the tile) of kr rows (a multiple of 4). */
#define CYR_BN_TCW_(w) ((w) < CYR_BN_ACT_TILE_N(CYR_T) / 4 ? (w) : CYR_BN_ACT_TILE_N(CYR_T) / 4)
#define CYR_BN_TKR_(cw) (CYR_BN_ACT_TILE_N(CYR_T) / (cw) / 4 * 4)

/* The gated tile of rows [r0, r0 + nr) and columns [j0, j0 + n) of (rows, ld) data into
 * gt (nr rows of n): the pre-activation row by row, then the gate, over the whole tile
 * at once where its rows are contiguous in dy. */
static CYR_TARGET void CYR_NAME(bn_gate_block)(int act, const CYR_T *dy, const CYR_T *y,
                                            Py_ssize_t ld, Py_ssize_t nr, Py_ssize_t n,
                                            CYR_BN_GATEP a, CYR_T *gt) {
    for (Py_ssize_t r = 0; r < nr; ++r)
        CYR_NAME(bn_tile_z)(y + r * ld, n, a.sc, a.sh, 1, gt + r * n);
    if (ld == n) {
        CYR_NAME(bn_tile_gate)(act, dy, nr * n, a, gt);
    } else {
        for (Py_ssize_t r = 0; r < nr; ++r)
            CYR_NAME(bn_tile_gate)(act, dy + r * ld, n, a, gt + r * n);
    }
}

/* bn_dot_cols_ld for a tiled activation (y is x): the plain sums over gated tiles of
 * whole groups of 4 rows (x copied beside where the tile's rows are not x's), so each
 * column adds the same values in the same order as the plain backward given the gated
 * dy. */
static CYR_TARGET void CYR_NAME(bn_dot_cols_tiled)(int act, const CYR_T *dy, const CYR_T *x,
                                                const CYR_T *y, Py_ssize_t rows, Py_ssize_t w,
                                                Py_ssize_t ld, const double *mean,
                                                CYR_BN_GATEP a, double *s0, double *s1) {
    CYR_ALIGN64 CYR_T gt[CYR_BN_ACT_TILE_N(CYR_T)];
    CYR_ALIGN64 CYR_T xt[CYR_BN_ACT_TILE_N(CYR_T)];
    const Py_ssize_t cw = CYR_BN_TCW_(w), kr = CYR_BN_TKR_(cw);
    for (Py_ssize_t r0 = 0; r0 < rows; r0 += kr) {
        const Py_ssize_t nr = rows - r0 < kr ? rows - r0 : kr;
        for (Py_ssize_t j0 = 0; j0 < w; j0 += cw) {
            const Py_ssize_t n = w - j0 < cw ? w - j0 : cw, off = r0 * ld + j0;
            const CYR_T *xs = x + off;
            const CYR_BN_GATEP aj = CYR_NAME(bn_gatep_at)(a, j0);
            CYR_NAME(bn_gate_block)(act, dy + off, y + off, ld, nr, n, aj, gt);
            if (ld != n) {
                for (Py_ssize_t r = 0; r < nr; ++r)
                    memcpy(xt + r * n, x + off + r * ld, (size_t)n * sizeof(CYR_T));
                xs = xt;
            }
            CYR_NAME(bn_dot_cols_impl)(CYR_ACT_NONE, gt, xs, NULL, nr, n, n, 0, mean + j0, aj,
                                       s0 + j0, s1 + j0);
        }
    }
}

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dot_cols_ld)(int act, const CYR_T *dy, const CYR_T *x,
                                         const CYR_T *y, Py_ssize_t rows, Py_ssize_t w,
                                         Py_ssize_t ld, const double *mean, CYR_BN_GATEP a, double *s0,
                                         double *s1) {
    if (CYR_BN_IS_TILED_BW(act)) {
        CYR_NAME(bn_dot_cols_tiled)(act, dy, x, y, rows, w, ld, mean, a, s0, s1);
        return;
    }
    switch (act) {
#define CYR_BN_CALL(ACT) CYR_NAME(bn_dot_cols_impl)(ACT, dy, x, y, rows, w, ld, 1, mean, a, s0, s1)
    CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_CASE_)
    default: CYR_BN_CALL(CYR_ACT_NONE); break;
#undef CYR_BN_CALL
    }
}

/* Row layout: rows of w columns of dy gated by an activation of
 * CYR_BN_BACKWARD_ACTIVATIONS into g (bn_gate's values, per-column sc and sh). */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_gate_rows_impl)(int act, const CYR_T *CYR_RESTRICT dy,
                                                         const CYR_T *CYR_RESTRICT y,
                                                         Py_ssize_t rows, Py_ssize_t w,
                                                         CYR_BN_GATEP a, CYR_T *CYR_RESTRICT g) {
    const Py_ssize_t rb = w * (Py_ssize_t)sizeof(CYR_T);
    for (Py_ssize_t r = 0; r < rows; ++r) {
        if (rb < CYR_BN_SHORT_ROW_BYTES) {  /* as bn_dot_cols_impl */
            cyr_bn_prefetch_run((const char *)(dy + r * w) + CYR_BN_AHEAD_BYTES, rb);
            cyr_bn_prefetch_run((const char *)(y + r * w) + CYR_BN_AHEAD_BYTES, rb);
        }
        for (Py_ssize_t j = 0; j < w; ++j)
            g[r * w + j] = CYR_NAME(bn_gate)(act, dy[r * w + j], y + r * w, j, a.sc[j], a.sh[j], a);
    }
}

static CYR_TARGET void CYR_NAME(bn_gate_rows)(int act, const CYR_T *dy, const CYR_T *y,
                                           Py_ssize_t rows, Py_ssize_t w, CYR_BN_GATEP a,
                                           CYR_T *g) {
    switch (act) {
#define CYR_BN_CALL(ACT) CYR_NAME(bn_gate_rows_impl)(ACT, dy, y, rows, w, a, g)
    CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_CASE_)
    default: break;
#undef CYR_BN_CALL
    }
}

/* Row layout, pass 1 over `rows` contiguous rows of w columns: bn_dot_cols_ld; with gs
 * (dx: the gate kept there, cyr_bn_keeps_gate_rows in batchnorm.h) the
 * gated values are written into gs in blocks of whole groups of 4 rows (the tiled
 * activations through their tiles, the others by bn_gate_rows), then summed from there
 * (the same values, added in the same order). */
static CYR_TARGET void CYR_NAME(bn_dot_cols)(int act, const CYR_T *dy, const CYR_T *x, const CYR_T *y,
                                      Py_ssize_t rows, Py_ssize_t w, const double *mean, CYR_BN_GATEP a,
                                      double *s0, double *s1, CYR_T *gs) {
    if (gs != NULL && act != CYR_ACT_NONE) {
        const Py_ssize_t kr = CYR_BN_TKR_(CYR_BN_TCW_(w));
        for (Py_ssize_t r0 = 0; r0 < rows; r0 += kr) {
            const Py_ssize_t nr = rows - r0 < kr ? rows - r0 : kr, off = r0 * w;
            if (CYR_BN_IS_TILED_BW(act))
                CYR_NAME(bn_gate_block)(act, dy + off, y + off, w, nr, w, a, gs + off);
            else
                CYR_NAME(bn_gate_rows)(act, dy + off, y + off, nr, w, a, gs + off);
            CYR_NAME(bn_dot_cols_impl)(CYR_ACT_NONE, gs + off, x + off, NULL, nr, w, w, 1, mean, a,
                                       s0, s1);
        }
        return;
    }
    CYR_NAME(bn_dot_cols_ld)(act, dy, x, y, rows, w, w, mean, a, s0, s1);
}

/* Row layout: dx for n elements of a row with per-column parameters. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dx_row_impl)(int act, int train, const CYR_T *CYR_RESTRICT dy,
                                          const CYR_T *CYR_RESTRICT x,
                                          const CYR_T *CYR_RESTRICT y, CYR_T *CYR_RESTRICT dx,
                                          Py_ssize_t n, const CYR_T *CYR_RESTRICT mean,
                                          const CYR_T *CYR_RESTRICT k,
                                          const CYR_T *CYR_RESTRICT mdy,
                                          const CYR_T *CYR_RESTRICT A, CYR_BN_GATEP a) {
    if (train) {
        for (Py_ssize_t j = 0; j < n; ++j) {
            const CYR_T g = CYR_NAME(bn_gate)(act, dy[j], y, j, a.sc[j], a.sh[j], a);
            dx[j] = CYR_BN_DX_TRAIN(g, x[j], mean[j], k[j], mdy[j], A[j]);
        }
    } else {
        for (Py_ssize_t j = 0; j < n; ++j) dx[j] = CYR_NAME(bn_gate)(act, dy[j], y, j, a.sc[j], a.sh[j], a) * A[j];
    }
}

/* Row layout: dx for `rows` rows of W columns with per-column parameters. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dx_cols_impl)(int act, int train, const CYR_T *CYR_RESTRICT dy,
                                          const CYR_T *CYR_RESTRICT x,
                                          const CYR_T *CYR_RESTRICT y, CYR_T *CYR_RESTRICT dx,
                                          Py_ssize_t rows, Py_ssize_t w, Py_ssize_t ld,
                                          const CYR_T *CYR_RESTRICT mean,
                                          const CYR_T *CYR_RESTRICT k,
                                          const CYR_T *CYR_RESTRICT mdy,
                                          const CYR_T *CYR_RESTRICT A, CYR_BN_GATEP a) {
    const Py_ssize_t rb = w * (Py_ssize_t)sizeof(CYR_T);
    for (Py_ssize_t r = 0; r < rows; ++r) {
        const Py_ssize_t off = r * ld;
        if (rb < CYR_BN_SHORT_ROW_BYTES) {
            cyr_bn_prefetch_run((const char *)(dy + off) + CYR_BN_AHEAD_BYTES, rb);
            cyr_bn_prefetch_run((const char *)(x + off) + CYR_BN_AHEAD_BYTES, rb);
            if (act != CYR_ACT_NONE && y != x)
                cyr_bn_prefetch_run((const char *)(y + off) + CYR_BN_AHEAD_BYTES, rb);
            cyr_bn_prefetchw_run((char *)(dx + off) + CYR_BN_AHEAD_BYTES, rb);
        }
        CYR_NAME(bn_dx_row_impl)(act, train, dy + off, x + off, y ? y + off : NULL, dx + off,
                                 w, mean, k, mdy, A, a);
    }
}

/* bn_dx_cols_ld for a tiled activation (y is x): dx row by row from gated tiles of rows
 * [r0, r0 + nr), columns [j0, j0 + n). */
static CYR_TARGET void CYR_NAME(bn_dx_cols_tiled)(int act, int train, const CYR_T *dy,
                                               const CYR_T *x, const CYR_T *y, CYR_T *dx,
                                               Py_ssize_t rows, Py_ssize_t w, Py_ssize_t ld,
                                               const CYR_T *mean, const CYR_T *k,
                                               const CYR_T *mdy, const CYR_T *A,
                                               CYR_BN_GATEP a) {
    CYR_ALIGN64 CYR_T gt[CYR_BN_ACT_TILE_N(CYR_T)];
    const Py_ssize_t cw = w < CYR_BN_ACT_TILE_N(CYR_T) ? w : CYR_BN_ACT_TILE_N(CYR_T);
    const Py_ssize_t kr = CYR_BN_ACT_TILE_N(CYR_T) / cw;
    for (Py_ssize_t r0 = 0; r0 < rows; r0 += kr) {
        const Py_ssize_t nr = rows - r0 < kr ? rows - r0 : kr;
        for (Py_ssize_t j0 = 0; j0 < w; j0 += cw) {
            const Py_ssize_t n = w - j0 < cw ? w - j0 : cw;
            const CYR_BN_GATEP aj = CYR_NAME(bn_gatep_at)(a, j0);
            CYR_NAME(bn_gate_block)(act, dy + r0 * ld + j0, y + r0 * ld + j0, ld, nr, n, aj, gt);
            for (Py_ssize_t r = 0; r < nr; ++r) {
                const Py_ssize_t off = (r0 + r) * ld + j0;
                if (train)
                    CYR_NAME(bn_dx_row_impl)(CYR_ACT_NONE, 1, gt + r * n, x + off, NULL, dx + off,
                                             n, mean + j0, k + j0, mdy + j0, A + j0, aj);
                else
                    CYR_NAME(bn_dx_row_impl)(CYR_ACT_NONE, 0, gt + r * n, x + off, NULL, dx + off,
                                             n, mean + j0, k + j0, mdy + j0, A + j0, aj);
            }
        }
    }
}

CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dx_cols_ld)(int act, int train, const CYR_T *dy, const CYR_T *x,
                                     const CYR_T *y, CYR_T *dx, Py_ssize_t rows, Py_ssize_t w, Py_ssize_t ld,
                                     const CYR_T *mean, const CYR_T *k, const CYR_T *mdy,
                                     const CYR_T *A, CYR_BN_GATEP a) {
    if (CYR_BN_IS_TILED_BW(act)) {
        CYR_NAME(bn_dx_cols_tiled)(act, train, dy, x, y, dx, rows, w, ld, mean, k, mdy, A, a);
        return;
    }
    switch (act * 2 + (train != 0)) {
#define CYR_BN_CALL(ACT, TRAIN) CYR_NAME(bn_dx_cols_impl)(ACT, TRAIN, dy, x, y, dx, rows, w, ld, mean, k, mdy, A, a)
    CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_CASE2_)
    case 1: CYR_BN_CALL(CYR_ACT_NONE, 1); break;
    default: CYR_BN_CALL(CYR_ACT_NONE, 0); break;
#undef CYR_BN_CALL
    }
}

/* Row layout, pass 2 from the gate kept in d (dx), in place: bn_dx_row_impl's loop
 * where dy is dx (which its restrict pointers rule out), per-column parameters. */
static CYR_TARGET void CYR_NAME(bn_dx_cols_gated)(int train, CYR_T *d, const CYR_T *x,
                                               Py_ssize_t rows, Py_ssize_t w,
                                               const CYR_T *CYR_RESTRICT mean,
                                               const CYR_T *CYR_RESTRICT k,
                                               const CYR_T *CYR_RESTRICT mdy,
                                               const CYR_T *CYR_RESTRICT A) {
    const Py_ssize_t rb = w * (Py_ssize_t)sizeof(CYR_T);
    for (Py_ssize_t r = 0; r < rows; ++r) {
        CYR_T *CYR_RESTRICT dr = d + r * w;
        const CYR_T *CYR_RESTRICT xr = x + r * w;
        if (rb < CYR_BN_SHORT_ROW_BYTES) {  /* as bn_dx_cols_impl */
            cyr_bn_prefetchw_run((char *)dr + CYR_BN_AHEAD_BYTES, rb);
            cyr_bn_prefetch_run((const char *)xr + CYR_BN_AHEAD_BYTES, rb);
        }
        if (train) {
            for (Py_ssize_t j = 0; j < w; ++j)
                dr[j] = CYR_BN_DX_TRAIN(dr[j], xr[j], mean[j], k[j], mdy[j], A[j]);
        } else {
            for (Py_ssize_t j = 0; j < w; ++j) dr[j] = dr[j] * A[j];
        }
    }
}

/* Row layout: dx for `rows` contiguous rows of w columns.  dy may be exactly dx without
 * an activation: the gate kept in dx by the first pass (cyr_bn_keeps_gate_rows,
 * batchnorm.h), updated in place. */
static CYR_TARGET void CYR_NAME(bn_dx_cols)(int act, int train, const CYR_T *dy, const CYR_T *x,
                                     const CYR_T *y, CYR_T *dx, Py_ssize_t rows, Py_ssize_t w,
                                     const CYR_T *mean, const CYR_T *k, const CYR_T *mdy,
                                     const CYR_T *A, CYR_BN_GATEP a) {
    if (dy == (const CYR_T *)dx && act == CYR_ACT_NONE) {
        CYR_NAME(bn_dx_cols_gated)(train, dx, x, rows, w, mean, k, mdy, A);
        return;
    }
    CYR_NAME(bn_dx_cols_ld)(act, train, dy, x, y, dx, rows, w, w, mean, k, mdy, A, a);
}

/* n elements of runs of contiguous rows of w columns, the first at column j0 (< w): dx
 * as bn_dx_cols, in one loop where the per-column parameters' repeated tail reaches
 * (CYR_BN_COEF_EXT_N: the four of dx and the gate's), else row by row piece. */
CYR_BN_INLINE CYR_TARGET void CYR_NAME(bn_dx_cols_wrap)(int act, int train, const CYR_T *dy,
                                                       const CYR_T *x, const CYR_T *y,
                                                       CYR_T *dx, Py_ssize_t j0, Py_ssize_t n,
                                                       Py_ssize_t w, const CYR_T *mean,
                                                       const CYR_T *k, const CYR_T *mdy,
                                                       const CYR_T *A, CYR_BN_GATEP a) {
    const int whole = !CYR_BN_IS_TILED_BW(act) && j0 + n <= w + CYR_BN_COEF_EXT_N(CYR_T);
    Py_ssize_t i = 0, j = j0;
    while (i < n) {
        const Py_ssize_t len = whole ? n : (n - i < w - j ? n - i : w - j);
        if (CYR_BN_IS_TILED_BW(act)) {
            CYR_NAME(bn_dx_cols_tiled)(act, train, dy + i, x + i, y + i, dx + i, 1, len, len,
                                       mean + j, k + j, mdy + j, A + j,
                                       CYR_NAME(bn_gatep_at)(a, j));
            i += len;
            j = 0;
            continue;
        }
        switch (act * 2 + (train != 0)) {
#define CYR_BN_CALL(ACT, TRAIN)                                                          \
    CYR_NAME(bn_dx_row_impl)(ACT, TRAIN, dy + i, x + i, y ? y + i : NULL, dx + i, len,    \
                             mean + j, k + j, mdy + j, A + j, CYR_NAME(bn_gatep_at)(a, j))
        CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_CASE2_)
        case 1: CYR_BN_CALL(CYR_ACT_NONE, 1); break;
        default: CYR_BN_CALL(CYR_ACT_NONE, 0); break;
#undef CYR_BN_CALL
        }
        i += len;
        j = 0;
    }
}

/* bn_dx_cols with dx streamed, as bn_affine_rows_stream; fenced. */
static CYR_TARGET void CYR_NAME(bn_dx_cols_stream)(int act, int train, const CYR_T *dy,
                                                  const CYR_T *x, const CYR_T *y, CYR_T *dx,
                                                  Py_ssize_t rows, Py_ssize_t w,
                                                  const CYR_T *mean, const CYR_T *k,
                                                  const CYR_T *mdy, const CYR_T *A, CYR_BN_GATEP a) {
#if CYR_HAVE_STREAM
    CYR_ALIGN64 CYR_T tile[CYR_BN_TILE_N(CYR_T)];
    const Py_ssize_t n = rows * w;
    const int ahead = w * (Py_ssize_t)sizeof(CYR_T) < CYR_BN_SHORT_ROW_BYTES;
    Py_ssize_t i = CYR_BN_HEAD_N(dx, CYR_T) < n ? CYR_BN_HEAD_N(dx, CYR_T) : n;
    CYR_NAME(bn_dx_cols_wrap)(act, train, dy, x, y, dx, 0, i, w, mean, k, mdy, A, a);
    for (; i + CYR_BN_TILE_N(CYR_T) <= n; i += CYR_BN_TILE_N(CYR_T)) {
        if (ahead) {
            cyr_bn_prefetch_run((const char *)(dy + i) + CYR_BN_AHEAD_BYTES, CYR_BN_TILE_BYTES);
            cyr_bn_prefetch_run((const char *)(x + i) + CYR_BN_AHEAD_BYTES, CYR_BN_TILE_BYTES);
            if (y && y != x)
                cyr_bn_prefetch_run((const char *)(y + i) + CYR_BN_AHEAD_BYTES, CYR_BN_TILE_BYTES);
        }
        CYR_NAME(bn_dx_cols_wrap)(act, train, dy + i, x + i, y ? y + i : NULL, tile, i % w,
                                  CYR_BN_TILE_N(CYR_T), w, mean, k, mdy, A, a);
        CYR_ISA_FN(stream_store)(dx + i, tile, CYR_BN_TILE_BYTES);
    }
    CYR_NAME(bn_dx_cols_wrap)(act, train, dy + i, x + i, y ? y + i : NULL, dx + i, i % w,
                              n - i, w, mean, k, mdy, A, a);
    cyr_stream_fence();
#else
    CYR_NAME(bn_dx_cols)(act, train, dy, x, y, dx, rows, w, mean, k, mdy, A, a);
#endif
}

#undef CYR_BN_TCW_
#undef CYR_BN_TKR_
#if CYR_ISA_ID >= 1
#undef CYR_BN_VD_Q
#undef CYR_BN_VD_DEV4_
#endif
#endif /* CYR_IS_HALF */
#undef CYR_BN_PAR
#undef CYR_BN_GATEP
