/* Type-generic bodies of the PReLU kernels; include only from prelu.h, with CYR_T,
 * CYR_SUFFIX, CYR_TARGET (and the rest of instantiate.h's names) defined.
 *
 * A call walks its range [pos, pos + n) of the (outer, C, inner) order in pieces that
 * share one weight: runs of one channel (inner > 1, or a single channel), or rows of
 * the C channels (inner == 1, channels last: a weight per element).  Each piece is a
 * plain loop the compilers vectorise.
 */

/* The walk: for each piece, `m` elements from offset `i` of the call, of channel `c`
 * (runs) or starting at channel `c` (rows), RUN or ROW. */
#define CYR_PRELU_WALK(RUN, ROW)                                                           \
    if (inner == 1 && C > 1) {                                                             \
        Py_ssize_t c = pos % C, i = 0;                                                     \
        while (i < n) {                                                                    \
            const Py_ssize_t m = C - c < n - i ? C - c : n - i;                            \
            ROW;                                                                           \
            i += m;                                                                        \
            c = 0;                                                                         \
        }                                                                                  \
    } else {                                                                               \
        Py_ssize_t c = (pos / inner) % C, r = pos % inner, i = 0;                          \
        while (i < n) {                                                                    \
            const Py_ssize_t m = inner - r < n - i ? inner - r : n - i;                    \
            RUN;                                                                           \
            i += m;                                                                        \
            r = 0;                                                                         \
            c = c + 1 == C ? 0 : c + 1;                                                    \
        }                                                                                  \
    }

#if !CYR_IS_HALF
/* c ? t : f on the bits (activation_special.h's selects), not a branch: GCC compiled the
 * loops' scalar remainders (a run's or row's last few elements) with a branch on each
 * element's sign, which real data mispredicts half the time; channels last with 100
 * channels, the backward took 2.5x its vectorised time (Zen 5, in L2). */
#define CYR_PRELU_SEL(c, t, f)                                                             \
    (sizeof(CYR_T) == sizeof(double) ? (CYR_T)cyr_sel_d_((c), (double)(t), (double)(f))    \
                                     : (CYR_T)cyr_sel_f_((c), (float)(t), (float)(f)))
/* ---- the loops: restrict (distinct output) and alias (the output is an input) ---- */
#define CYR_PRELU_LOOPS_(SFX, R)                                                           \
CYR_INLINE CYR_TARGET void CYR_NAME(prelu_run##SFX)(const CYR_T *R x, CYR_T *R y,          \
                                                    Py_ssize_t n, CYR_T w) {               \
    for (Py_ssize_t i = 0; i < n; ++i) {                                                   \
        const CYR_T v = x[i];                                                              \
        y[i] = CYR_PRELU_SEL(v > (CYR_T)0, v, w * v);                                      \
    }                                                                                      \
}                                                                                          \
CYR_INLINE CYR_TARGET void CYR_NAME(prelu_row##SFX)(const CYR_T *R x, CYR_T *R y,          \
                                                    Py_ssize_t n, const CYR_T *R w) {      \
    for (Py_ssize_t i = 0; i < n; ++i) {                                                   \
        const CYR_T v = x[i];                                                              \
        y[i] = CYR_PRELU_SEL(v > (CYR_T)0, v, w[i] * v);                                   \
    }                                                                                      \
}                                                                                          \
CYR_INLINE CYR_TARGET void CYR_NAME(prelu_bwd_run##SFX)(const CYR_T *R g, const CYR_T *R x, \
                                                        CYR_T *R out, Py_ssize_t n,        \
                                                        CYR_T w) {                         \
    for (Py_ssize_t i = 0; i < n; ++i) {                                                   \
        const CYR_T gv = g[i];                                                             \
        out[i] = CYR_PRELU_SEL(x[i] > (CYR_T)0, gv, w * gv);                               \
    }                                                                                      \
}                                                                                          \
CYR_INLINE CYR_TARGET void CYR_NAME(prelu_bwd_row##SFX)(const CYR_T *R g, const CYR_T *R x, \
                                                        CYR_T *R out, Py_ssize_t n,        \
                                                        const CYR_T *R w) {                \
    for (Py_ssize_t i = 0; i < n; ++i) {                                                   \
        const CYR_T gv = g[i];                                                             \
        out[i] = CYR_PRELU_SEL(x[i] > (CYR_T)0, gv, w[i] * gv);                            \
    }                                                                                      \
}                                                                                          \
CYR_INLINE CYR_TARGET void CYR_NAME(prelu_walk##SFX)(const CYR_T *R x, CYR_T *R y,         \
                                                     Py_ssize_t n, Py_ssize_t pos,         \
                                                     Py_ssize_t C, Py_ssize_t inner,       \
                                                     const CYR_T *w) {                     \
    CYR_PRELU_WALK(CYR_NAME(prelu_run##SFX)(x + i, y + i, m, w[c]),                        \
                   CYR_NAME(prelu_row##SFX)(x + i, y + i, m, w + c))                       \
}                                                                                          \
CYR_INLINE CYR_TARGET void CYR_NAME(prelu_bwd_walk##SFX)(const CYR_T *R g,                 \
                                                         const CYR_T *R x, CYR_T *R out,   \
                                                         Py_ssize_t n, Py_ssize_t pos,     \
                                                         Py_ssize_t C, Py_ssize_t inner,   \
                                                         const CYR_T *w) {                 \
    CYR_PRELU_WALK(CYR_NAME(prelu_bwd_run##SFX)(g + i, x + i, out + i, m, w[c]),           \
                   CYR_NAME(prelu_bwd_row##SFX)(g + i, x + i, out + i, m, w + c))          \
}
CYR_PRELU_LOOPS_(, CYR_RESTRICT)
CYR_PRELU_LOOPS_(_alias, )
#undef CYR_PRELU_LOOPS_

/* ---- entry points: the aliasing case, and streaming stores for large outputs ---- */
#define CYR_STREAMS(n) (CYR_HAVE_STREAM && (n) * (Py_ssize_t)sizeof(CYR_T) >= cyr_stream_min_bytes())
#define CYR_TILE_N ((Py_ssize_t)(CYR_TILE_BYTES / sizeof(CYR_T)))
#define CYR_HEAD_N(p) ((Py_ssize_t)(((64 - ((size_t)(p) & 63)) & 63) / sizeof(CYR_T)))

CYR_INLINE CYR_TARGET void CYR_NAME(prelu)(const CYR_T *x, CYR_T *y, Py_ssize_t n,
                                           Py_ssize_t pos, Py_ssize_t C, Py_ssize_t inner,
                                           const CYR_T *w) {
    if ((const CYR_T *)y == x) {
        CYR_NAME(prelu_walk_alias)(x, y, n, pos, C, inner, w);
        return;
    }
#if CYR_HAVE_STREAM
    if (CYR_STREAMS(n)) {
        /* the head up to a 64-byte boundary of y, then tiles computed in L1 and
         * streamed out, then the tail (common.h) */
        CYR_ALIGN64 CYR_T tile[CYR_TILE_BYTES / sizeof(CYR_T)];
        Py_ssize_t i = CYR_HEAD_N(y) < n ? CYR_HEAD_N(y) : n;
        CYR_NAME(prelu_walk)(x, y, i, pos, C, inner, w);
        for (; i + CYR_TILE_N <= n; i += CYR_TILE_N) {
            CYR_NAME(prelu_walk)(x + i, tile, CYR_TILE_N, pos + i, C, inner, w);
            CYR_ISA_FN(stream_store)(y + i, tile, CYR_TILE_BYTES);
        }
        CYR_NAME(prelu_walk)(x + i, y + i, n - i, pos + i, C, inner, w);
        cyr_stream_fence();
        return;
    }
#endif
    CYR_NAME(prelu_walk)(x, y, n, pos, C, inner, w);
}

CYR_INLINE CYR_TARGET void CYR_NAME(prelu_backward)(const CYR_T *g, const CYR_T *x, CYR_T *out,
                                                    Py_ssize_t n, Py_ssize_t pos, Py_ssize_t C,
                                                    Py_ssize_t inner, const CYR_T *w) {
    if ((const CYR_T *)out == g || (const CYR_T *)out == x) {
        CYR_NAME(prelu_bwd_walk_alias)(g, x, out, n, pos, C, inner, w);
        return;
    }
#if CYR_HAVE_STREAM
    if (CYR_STREAMS(n)) {
        CYR_ALIGN64 CYR_T tile[CYR_TILE_BYTES / sizeof(CYR_T)];
        Py_ssize_t i = CYR_HEAD_N(out) < n ? CYR_HEAD_N(out) : n;
        CYR_NAME(prelu_bwd_walk)(g, x, out, i, pos, C, inner, w);
        for (; i + CYR_TILE_N <= n; i += CYR_TILE_N) {
            CYR_NAME(prelu_bwd_walk)(g + i, x + i, tile, CYR_TILE_N, pos + i, C, inner, w);
            CYR_ISA_FN(stream_store)(out + i, tile, CYR_TILE_BYTES);
        }
        CYR_NAME(prelu_bwd_walk)(g + i, x + i, out + i, n - i, pos + i, C, inner, w);
        cyr_stream_fence();
        return;
    }
#endif
    CYR_NAME(prelu_bwd_walk)(g, x, out, n, pos, C, inner, w);
}
#undef CYR_STREAMS
#undef CYR_TILE_N
#undef CYR_HEAD_N

/* ---- grad_weight: piece p of channels [c0, c1) into acc[c0..c1) -------------------
 * Piece p of a channel is its elements [p * plen, (p + 1) * plen) in memory order
 * (o * inner + i), the last piece shorter.  The element's term, in double (exact for
 * float and float16 data): 0 where x > 0, else x * g (NaN where x is NaN). */
/* The product is computed first and then selected: gcc 12 at -O3 miscompiles a sum of
 * terms whose multiply sits inside the condition (x > 0 ? 0 : x * g) in its AVX2 and
 * AVX-512 vector loops.  Selected on the bits (CYR_PRELU_SEL's reason). */
CYR_INLINE CYR_TARGET double CYR_NAME(prelu_term)(CYR_T gv, CYR_T xv) {
    const double prod = (double)xv * (double)gv;
    return cyr_sel_d_(xv > (CYR_T)0, 0.0, prod);
}
#define CYR_PRELU_TERM(gv, xv) CYR_NAME(prelu_term)((gv), (xv))

#if CYR_ISA_ID >= 1
/* prelu_term of CYR_VD_N consecutive elements, in a double vector (vecd.h) */
CYR_INLINE CYR_TARGET CYR_VD CYR_NAME(prelu_vterm)(const CYR_T *g, const CYR_T *x) {
    const CYR_VD xv = CYR_NAME(vd_ld)(x);
    return CYR_VD_ZERO_IF_POS(xv, CYR_VD_MUL(xv, CYR_NAME(vd_ld)(g)));
}
#endif

/* One run of a channel: CYR_PRELU_LANES accumulators, lane k adding the elements
 * k, k + LANES, ... in order (the compilers keep the lanes in vector registers; every
 * instruction set adds the same numbers in the same order), then the lanes in a fixed
 * tree and the tail in order.  prelu_lanes adds m (a multiple of LANES) elements. */
CYR_INLINE CYR_TARGET void CYR_NAME(prelu_lanes)(const CYR_T *CYR_RESTRICT g,
                                                 const CYR_T *CYR_RESTRICT x, Py_ssize_t m,
                                                 double *CYR_RESTRICT acc) {
#if CYR_ISA_ID >= 1
    /* AVX2 / AVX-512: the lanes in vector registers (vecd.h), each term the product
     * widened to double with the lanes where x > 0 zeroed: prelu_term's value.  Left to
     * the compiler (the loop below), the weight sums took 2.5x the time of the
     * grad_input loop beside them (in L1, one thread, Zen 5). */
    CYR_VD av[CYR_PRELU_LANES / CYR_VD_N];
    for (int q = 0; q < CYR_PRELU_LANES / CYR_VD_N; ++q) av[q] = CYR_VD_LOADU(acc + CYR_VD_N * q);
    for (Py_ssize_t i = 0; i < m; i += CYR_PRELU_LANES)
        for (int q = 0; q < CYR_PRELU_LANES / CYR_VD_N; ++q)
            av[q] = CYR_VD_ADD(av[q], CYR_NAME(prelu_vterm)(g + i + CYR_VD_N * q,
                                                            x + i + CYR_VD_N * q));
    for (int q = 0; q < CYR_PRELU_LANES / CYR_VD_N; ++q) CYR_VD_STOREU(acc + CYR_VD_N * q, av[q]);
#else
    /* the terms first, in a plain elementwise loop (vectorised with a blend: no branch on
     * the data's signs), then added into the lanes */
    CYR_ALIGN64 double term[CYR_PRELU_TERMS];
    for (Py_ssize_t i0 = 0; i0 < m; i0 += CYR_PRELU_TERMS) {
        const Py_ssize_t t = m - i0 < CYR_PRELU_TERMS ? m - i0 : CYR_PRELU_TERMS;
        for (Py_ssize_t j = 0; j < t; ++j) term[j] = CYR_PRELU_TERM(g[i0 + j], x[i0 + j]);
        for (Py_ssize_t i = 0; i < t; i += CYR_PRELU_LANES)
            for (int k = 0; k < CYR_PRELU_LANES; ++k) acc[k] += term[i + k];
    }
#endif
}

CYR_INLINE CYR_TARGET double CYR_NAME(prelu_lanes_total)(double *CYR_RESTRICT acc) {
    for (int h = CYR_PRELU_LANES / 2; h > 0; h /= 2)
        for (int k = 0; k < h; ++k) acc[k] += acc[k + h];
    return acc[0];
}

CYR_INLINE CYR_TARGET double CYR_NAME(prelu_run_sum)(const CYR_T *CYR_RESTRICT g,
                                                     const CYR_T *CYR_RESTRICT x, Py_ssize_t m) {
    double acc[CYR_PRELU_LANES] = {0.0};
    const Py_ssize_t full = m - m % CYR_PRELU_LANES;
    CYR_NAME(prelu_lanes)(g, x, full, acc);
    double s = CYR_NAME(prelu_lanes_total)(acc);
    for (Py_ssize_t i = full; i < m; ++i) s += CYR_PRELU_TERM(g[i], x[i]);
    return s;
}

/* Channels last: acc[c] += the term of row element c, for c in [c0, c1) (each channel
 * its own accumulator, adding the rows in order).  The AVX2 and AVX-512 copies update
 * CYR_VD_N accumulators per vector (the compiler's own loop took twice the time, 100
 * channels, in L2, one thread, Zen 5; so did keeping blocks of channels in registers
 * down a piece's rows, or taking a piece's sums before its grad_input). */
CYR_INLINE CYR_TARGET void CYR_NAME(prelu_row_sums)(const CYR_T *CYR_RESTRICT gr,
                                                    const CYR_T *CYR_RESTRICT xr, Py_ssize_t c0,
                                                    Py_ssize_t c1, double *CYR_RESTRICT acc) {
    Py_ssize_t c = c0;
#if CYR_ISA_ID >= 1
    for (; c + CYR_VD_N <= c1; c += CYR_VD_N)
        CYR_VD_STOREU(acc + c,
                      CYR_VD_ADD(CYR_VD_LOADU(acc + c), CYR_NAME(prelu_vterm)(gr + c, xr + c)));
#endif
    for (; c < c1; ++c) acc[c] += CYR_PRELU_TERM(gr[c], xr[c]);
}

CYR_INLINE CYR_TARGET void CYR_NAME(prelu_wsum)(const CYR_T *g, const CYR_T *x, Py_ssize_t outer,
                                                Py_ssize_t C, Py_ssize_t inner, Py_ssize_t plen,
                                                Py_ssize_t p, Py_ssize_t c0, Py_ssize_t c1,
                                                double *CYR_RESTRICT acc) {
    const Py_ssize_t len = outer * inner;
    const Py_ssize_t lo = p * plen, hi = lo + plen < len ? lo + plen : len;
    if (inner == 1) {
        /* channels last: rows of channels, one accumulator per channel (lane) */
        for (Py_ssize_t c = c0; c < c1; ++c) acc[c] = 0.0;
        for (Py_ssize_t o = lo; o < hi; ++o)
            CYR_NAME(prelu_row_sums)(g + o * C, x + o * C, c0, c1, acc);
        return;
    }
    /* runs: the piece's rows in memory order, each row's runs of channels [c0, c1) in
     * turn (each channel's runs still join its sum in order) */
    for (Py_ssize_t c = c0; c < c1; ++c) acc[c] = 0.0;
    for (Py_ssize_t idx = lo; idx < hi;) {
        const Py_ssize_t o = idx / inner, i = idx % inner;
        const Py_ssize_t m = inner - i < hi - idx ? inner - i : hi - idx;
        for (Py_ssize_t c = c0; c < c1; ++c) {
            const Py_ssize_t at = (o * C + c) * inner + i;
            acc[c] += CYR_NAME(prelu_run_sum)(g + at, x + at, m);
        }
        idx += m;
    }
}

/* ---- prelu_backward in one pass: grad_input written while the sums are taken --------
 * The same pieces and order as prelu_wsum (the same sums, bit for bit).  Each tile of
 * a run is first added to the sums, then its grad_input is written to out (the
 * grad_input loops above: restrict pointers, or the alias ones when out is g or x),
 * while the tile is in L1 (channels last: each row).  One pass over memory, and every
 * element read before it is written. */

CYR_INLINE CYR_TARGET double CYR_NAME(prelu_run_fused)(const CYR_T *g, const CYR_T *x, CYR_T *out,
                                                       Py_ssize_t m, CYR_T wc, int alias) {
    double acc[CYR_PRELU_LANES] = {0.0};
    const Py_ssize_t full = m - m % CYR_PRELU_LANES;
    for (Py_ssize_t i = 0; i < full; i += CYR_PRELU_FUSED_TILE) {
        const Py_ssize_t t = full - i < CYR_PRELU_FUSED_TILE ? full - i : CYR_PRELU_FUSED_TILE;
        CYR_NAME(prelu_lanes)(g + i, x + i, t, acc);
        if (alias) CYR_NAME(prelu_bwd_run_alias)(g + i, x + i, out + i, t, wc);
        else CYR_NAME(prelu_bwd_run)(g + i, x + i, out + i, t, wc);
    }
    double s = CYR_NAME(prelu_lanes_total)(acc);
    for (Py_ssize_t i = full; i < m; ++i) s += CYR_PRELU_TERM(g[i], x[i]);
    if (alias) CYR_NAME(prelu_bwd_run_alias)(g + full, x + full, out + full, m - full, wc);
    else CYR_NAME(prelu_bwd_run)(g + full, x + full, out + full, m - full, wc);
    return s;
}

CYR_INLINE CYR_TARGET void CYR_NAME(prelu_backward_fused)(const CYR_T *g, const CYR_T *x,
                                                          CYR_T *out, const CYR_T *w,
                                                          Py_ssize_t outer, Py_ssize_t C,
                                                          Py_ssize_t inner, Py_ssize_t plen,
                                                          Py_ssize_t p, Py_ssize_t c0,
                                                          Py_ssize_t c1, double *CYR_RESTRICT acc) {
    const int alias = (const CYR_T *)out == g || (const CYR_T *)out == x;
    const Py_ssize_t len = outer * inner;
    const Py_ssize_t lo = p * plen, hi = lo + plen < len ? lo + plen : len;
    if (inner == 1) {
        for (Py_ssize_t c = c0; c < c1; ++c) acc[c] = 0.0;
        for (Py_ssize_t o = lo; o < hi; ++o) {
            CYR_NAME(prelu_row_sums)(g + o * C, x + o * C, c0, c1, acc);
            if (alias)
                CYR_NAME(prelu_bwd_row_alias)(g + o * C + c0, x + o * C + c0, out + o * C + c0,
                                              c1 - c0, w + c0);
            else
                CYR_NAME(prelu_bwd_row)(g + o * C + c0, x + o * C + c0, out + o * C + c0,
                                        c1 - c0, w + c0);
        }
        return;
    }
    for (Py_ssize_t c = c0; c < c1; ++c) acc[c] = 0.0;  /* in prelu_wsum's order */
    for (Py_ssize_t idx = lo; idx < hi;) {
        const Py_ssize_t o = idx / inner, i = idx % inner;
        const Py_ssize_t m = inner - i < hi - idx ? inner - i : hi - idx;
        for (Py_ssize_t c = c0; c < c1; ++c) {
            const Py_ssize_t at = (o * C + c) * inner + i;
            acc[c] += CYR_NAME(prelu_run_fused)(g + at, x + at, out + at, m, w[c], alias);
        }
        idx += m;
    }
}
#undef CYR_PRELU_TERM

#else /* float16 storage: converted tiles through the float copy's walk */
#define CYR_HT CYR_HALF_TILE
#define CYR_HALF_STREAMS(n)                                                                \
    (CYR_HAVE_STREAM && (n) * (Py_ssize_t)sizeof(cyr_half) >= cyr_stream_min_bytes())
#define CYR_HALF_HEAD(p) ((Py_ssize_t)(((64 - ((size_t)(p) & 63)) & 63) / sizeof(cyr_half)))

/* Tile by tile: converted to float, walked by the float copy, the result rounded once
 * into y (or out), streamed when asked (cyr_f2h_out, half.h). */
CYR_INLINE CYR_TARGET void CYR_NAME(prelu_tiles)(const cyr_half *x, cyr_half *y, Py_ssize_t n,
                                                 Py_ssize_t pos, Py_ssize_t C, Py_ssize_t inner,
                                                 const float *w, int stream) {
    CYR_ALIGN64 float xt[CYR_HT];
    CYR_ALIGN64 float yt[CYR_HT];
    for (Py_ssize_t i = 0; i < n; i += CYR_HT) {
        const Py_ssize_t m = n - i < CYR_HT ? n - i : CYR_HT;
        CYR_ISA_FN(h2f)(x + i, xt, m);
        CYR_F32(prelu_walk)(xt, yt, m, pos + i, C, inner, w);
        CYR_ISA_FN(f2h_out)(yt, y + i, m, stream);
    }
}

CYR_INLINE CYR_TARGET void CYR_NAME(prelu_bwd_tiles)(const cyr_half *g, const cyr_half *x,
                                                     cyr_half *out, Py_ssize_t n, Py_ssize_t pos,
                                                     Py_ssize_t C, Py_ssize_t inner,
                                                     const float *w, int stream) {
    CYR_ALIGN64 float gt[CYR_HT];
    CYR_ALIGN64 float xt[CYR_HT];
    CYR_ALIGN64 float yt[CYR_HT];
    for (Py_ssize_t i = 0; i < n; i += CYR_HT) {
        const Py_ssize_t m = n - i < CYR_HT ? n - i : CYR_HT;
        CYR_ISA_FN(h2f)(g + i, gt, m);
        CYR_ISA_FN(h2f)(x + i, xt, m);
        CYR_F32(prelu_bwd_walk)(gt, xt, yt, m, pos + i, C, inner, w);
        CYR_ISA_FN(f2h_out)(yt, out + i, m, stream);
    }
}

CYR_INLINE CYR_TARGET void CYR_NAME(prelu)(const cyr_half *x, cyr_half *y, Py_ssize_t n,
                                           Py_ssize_t pos, Py_ssize_t C, Py_ssize_t inner,
                                           const float *w) {
    if ((const cyr_half *)y != x && CYR_HALF_STREAMS(n)) {
        const Py_ssize_t h = CYR_HALF_HEAD(y) < n ? CYR_HALF_HEAD(y) : n;
        CYR_NAME(prelu_tiles)(x, y, h, pos, C, inner, w, 0);
        CYR_NAME(prelu_tiles)(x + h, y + h, n - h, pos + h, C, inner, w, 1);
#if CYR_HAVE_STREAM
        cyr_stream_fence();
#endif
    } else {
        CYR_NAME(prelu_tiles)(x, y, n, pos, C, inner, w, 0);
    }
}

CYR_INLINE CYR_TARGET void CYR_NAME(prelu_backward)(const cyr_half *g, const cyr_half *x,
                                                    cyr_half *out, Py_ssize_t n, Py_ssize_t pos,
                                                    Py_ssize_t C, Py_ssize_t inner,
                                                    const float *w) {
    if ((const cyr_half *)out != g && (const cyr_half *)out != x && CYR_HALF_STREAMS(n)) {
        const Py_ssize_t h = CYR_HALF_HEAD(out) < n ? CYR_HALF_HEAD(out) : n;
        CYR_NAME(prelu_bwd_tiles)(g, x, out, h, pos, C, inner, w, 0);
        CYR_NAME(prelu_bwd_tiles)(g + h, x + h, out + h, n - h, pos + h, C, inner, w, 1);
#if CYR_HAVE_STREAM
        cyr_stream_fence();
#endif
    } else {
        CYR_NAME(prelu_bwd_tiles)(g, x, out, n, pos, C, inner, w, 0);
    }
}
#undef CYR_HALF_STREAMS
#undef CYR_HALF_HEAD
#undef CYR_HT
#endif /* CYR_IS_HALF */

#undef CYR_PRELU_WALK
