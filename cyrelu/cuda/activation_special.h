/* The special-function math of the smooth members of the ReLU family: elu, celu, selu,
 * silu, softplus, gelu (erf and tanh forms) and mish, forward value and derivative,
 * in float and in double, for one element.  Shared by the C kernels and the CUDA
 * kernels: plain C99 that is also CUDA C++ device code, with no #include (the file is
 * inlined into runtime-compiled sources).
 *
 *   T cyr_<name>_fwd_S(T x, T a, T b)   f(x)           S = f (float) or d (double)
 *   T cyr_<name>_grad_S(T x, T a, T b)  f'(x) (the kernels multiply by the gradient)
 *
 * a, b: the parameters (0 where unused): elu, celu: a = alpha (celu: nonzero);
 * softplus: a = beta (nonzero), b = threshold; gelu: a == 0 the erf form, a != 0 the
 * tanh form (also cyr_gelu_erf_fwd_S(x), cyr_gelu_erf_grad_S(x), cyr_gelu_tanh_fwd_S(x),
 * cyr_gelu_tanh_grad_S(x): a kernel loop vectorises only when the form is chosen
 * outside it).  The semantics are torch.nn.functional's (the branch conditions compare
 * the same rounded values as torch: x > 0, beta * x > threshold), the values are
 * the exact functions' within a few rounding errors:
 *
 *   float: within 4 ulp of the correctly rounded value over the whole float range,
 *          subnormal results included (measured by tests/test_special_math.py, which
 *          prints the table: at most 3.4 ulp (gelu'), 1 to 2.5 for most); double:
 *          within 1e-14 relative (measured: at most 7e-16).
 *   Derivatives near their zeros (gelu' at -0.7518, silu' at -1.2785, mish' at
 *   -1.1924, the tanh gelu' at -0.7528) are differences of terms of size 1/4 to 1:
 *   accurate in absolute terms (a few ulp of 1/4), their relative error growing as
 *   the value vanishes.
 *
 * Special values: NaN gives NaN (value and derivative); +-inf give the limits
 * (gelu, silu, mish -> -0.0 at -inf, +inf at +inf; elu -> -alpha; softplus -> 0;
 * derivatives -> 0, 1 or scale); -0.0 gives -0.0 where torch does (elu, celu, selu,
 * silu, gelu, mish); subnormal inputs and results are exact to the rounding (no
 * flush to zero is assumed: exponents are built in two steps, 2^k = 2^(k/2) 2^(k-k/2),
 * after the factors that keep the value normal have been multiplied in; CUDA code
 * built with -ftz=true flushes float subnormals all the same).
 *
 * How: no libm (its calls block vectorisation).  Every function is branch-free
 * (ternaries on compares, which GCC turns into blends) so that a plain -O3 loop over
 * it vectorises (GCC 12: every function with AVX2 and with AVX-512; with SSE2 alone
 * all but the double values of elu, celu and selu); no fused multiply-add (the build
 * uses -ffp-contract=off, so every backend rounds alike).  A ternary whose arms feed
 * an exponential or a division makes GCC compute that once per arm and blend (silu's
 * `x < 0 ? x : -x` doubled its loop to 100 AVX-512 instructions): -|x| is taken from
 * the sign bit (cyr_negabs_f_), a quotient's numerator chosen on the bits
 * (cyr_sel_f_), and a scale 2^k that only one arm needs is the constant 2^-64 chosen
 * per element (cyr_pow2_64_f_).  float silu, AVX-512: 100 -> 43 instructions.
 *   e^y:      y = k ln2 + r, |r| <= ln2/2, with ln2 in two parts (Cody and Waite: the
 *             first has few enough bits that k * ln2_hi is exact); e^r = 1 + r + r^2 Q(r)
 *             (Q: relative error 2^-26.5 float, 2^-52 double, so e^r within 0.5 ulp
 *             plus the last addition's rounding).  Arguments that are not
 *             representable (beta x, x / alpha, -x^2/2, the tanh gelu's argument) are
 *             passed as an unevaluated sum h + l, exact or within 2^-44 relative
 *             (Dekker's products; the l joins r), since an argument's rounding error
 *             |y| 2^-24 would be multiplied into the result's relative error.
 *   expm1(y) = 2^k (e^r - 1) + (2^k - 1): both parts exact but the last addition,
 *             which does not cancel for y <= 0 (|2^k (e^r - 1)| <= 0.67 |result|).
 *   log1p(e), 0 <= e <= 1 (softplus): 2 atanh(s), s = e / (2 + e) in [0, 1/3],
 *             2s + s^3 P(s^2) (P: 2^-25 float, 2^-54 double); below e = 2^-30 (float),
 *             2^-60 (double) log1p(e) = e to the rounding, taken from e's 2^k form.
 *   gelu (erf): gelu(x) = x - x E R(|x|) (x > 0) or x E R(|x|) (x <= 0), and
 *             gelu'(x) = 1 + E H(|x|) or -E H(|x|), with E = e^(-x^2/2) (float: x^2 =
 *             uh^2 + (2 uh + ul) ul, uh = |x| with its low 12 bits cleared, exact but
 *             for one rounding of the small second part; double: Dekker),
 *             R(u) = erfc(u/sqrt2) e^(u^2/2) / 2 and
 *             H(u) = u/sqrt(2 pi) - R(u) fitted by pieces [0,2), [2,4), [4,15]
 *             (float) or [4,40] (double), the last in v = 2 (4/u)^2 - 1 with
 *             R = P(v)/u and H = u P(v), each coefficient chosen per element; no
 *             cancellation anywhere (1 + E H >= 1/2).
 *   gelu (tanh) = x sigmoid(z), z = 2 sqrt(2/pi) (x + 0.044715 x^3) in double-float;
 *   silu = x sigmoid(x); sigmoid from e^-|z|: 1/(1+e) or e/(1+e).
 *   mish = x tanh(softplus(x)) = x n/(n+2), n = q (q + 2), q = e^x (x <= 0), and
 *             x (1 + 2q)/(1 + 2q + 2q^2), q = e^-x (x > 0): nothing overflows (float:
 *             the rational part in double, see cyr_mish_f_).
 * The coefficients come from tools/fit_special.py (weighted least squares on
 * Chebyshev nodes in mpmath, rounded to the type; its --check prints each fit's
 * error); the block between the markers below is its output, unedited.
 */
#ifndef CYRELU_ACTIVATION_SPECIAL_H
#define CYRELU_ACTIVATION_SPECIAL_H

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define CYR_SPF_ __device__ __forceinline__
#define CYR_F2I(x) __float_as_int(x)
#define CYR_I2F(i) __int_as_float(i)
#define CYR_D2L(x) __double_as_longlong(x)
#define CYR_L2D(i) __longlong_as_double(i)
#elif defined(__GNUC__) /* forced: a kernel loop vectorises only with every call inlined */
#define CYR_SPF_ static inline __attribute__((always_inline))
#else
#define CYR_SPF_ static inline
#endif
#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
static inline int cyr_f2i_(float x) { int i; __builtin_memcpy(&i, &x, sizeof i); return i; }
static inline float cyr_i2f_(int i) { float x; __builtin_memcpy(&x, &i, sizeof x); return x; }
static inline long long cyr_d2l_(double x) { long long i; __builtin_memcpy(&i, &x, sizeof i); return i; }
static inline double cyr_l2d_(long long i) { double x; __builtin_memcpy(&x, &i, sizeof x); return x; }
#define CYR_F2I(x) cyr_f2i_(x)
#define CYR_I2F(i) cyr_i2f_(i)
#define CYR_D2L(x) cyr_d2l_(x)
#define CYR_L2D(i) cyr_l2d_(i)
#endif

/* BEGIN generated by tools/fit_special.py */
#define CYR_F_EXP(r) ((((0.5f + (r) * 0.1666666716337204f) + ((r) * (r)) * (0.04166646674275398f + (r) * 0.008333372883498669f)) + (((r) * (r)) * ((r) * (r))) * (0.0013933581067249179f + (r) * 0.00019849518139380962f)))
#define CYR_F_ATANH(w) ((((0.6666666865348816f + (w) * 0.3999970853328705f) + ((w) * (w)) * (0.28592273592948914f + (w) * 0.21707788109779358f)) + (((w) * (w)) * ((w) * (w))) * 0.23218846321105957f))
#define CYR_F_GELU_R(v, s0, s1) \
    (((s0) ? 0.2615782916545868f : ((s1) ? 0.12151394784450531f : 0.38749298453330994f)) + (v) * (((s0) ? -0.137364000082016f : ((s1) ? -0.03440043702721596f : -0.010557716712355614f)) + (v) * (((s0) ? 0.06210711970925331f : ((s1) ? 0.009156321175396442f : 0.0007856361917220056f)) + (v) * (((s0) ? -0.025085242465138435f : ((s1) ? -0.002310488373041153f : -8.965565939433873e-05f)) + (v) * (((s0) ? 0.009255580604076385f : ((s1) ? 0.0005562127334997058f : 1.3290998140291777e-05f)) + (v) * (((s0) ? -0.0031681794207543135f : ((s1) ? -0.00012838309339713305f : -2.367020670135389e-06f)) + (v) * (((s0) ? 0.001014595851302147f : ((s1) ? 2.851681892934721e-05f : 4.835332561015093e-07f)) + (v) * (((s0) ? -0.0003023722383659333f : ((s1) ? -6.088981990615139e-06f : -1.088877681354461e-07f)) + (v) * (((s0) ? 8.818673086352646e-05f : ((s1) ? 1.2678769962803926e-06f : 2.771820639679845e-08f)) + (v) * (((s0) ? -2.9197297408245504e-05f : ((s1) ? -2.8402843099684105e-07f : -9.04774477561432e-09f)) + (v) * (((s0) ? 7.222363365144702e-06f : ((s1) ? 5.4397037985154384e-08f : 2.281652200508688e-09f)))))))))))))
#define CYR_F_GELU_H(v, s0, s1) \
    (((s0) ? 0.1373639851808548f : ((s1) ? 1.075312852859497f : 0.386833131313324f)) + (v) * (((s0) ? 0.5363062620162964f : ((s1) ? 0.43334272503852844f : -0.011779227294027805f)) + (v) * (((s0) ? -0.06210719794034958f : ((s1) ? -0.009156321175396442f : 0.0003053775290027261f)) + (v) * (((s0) ? 0.02508540265262127f : ((s1) ? 0.002310488373041153f : -2.1749383449787274e-05f)) + (v) * (((s0) ? -0.009254973381757736f : ((s1) ? -0.0005562097067013383f : 2.386406549703679e-06f)) + (v) * (((s0) ? 0.0031675975769758224f : ((s1) ? 0.0001283831661567092f : -3.4142607319154195e-07f)) + (v) * (((s0) ? -0.0010162765393033624f : ((s1) ? -2.8525284506031312e-05f : 5.881529219209369e-08f)) + (v) * (((s0) ? 0.0003031512605957687f : ((s1) ? 6.088883765187347e-06f : -1.1570732816323925e-08f)) + (v) * (((s0) ? -8.628498471807688e-05f : ((s1) ? -1.2581845112435985e-06f : 2.605869076077738e-09f)) + (v) * (((s0) ? 2.8850070521002635e-05f : ((s1) ? 2.8407254148987704e-07f : -7.455291384239615e-10f)) + (v) * (((s0) ? -7.977035238582175e-06f : ((s1) ? -5.827930849022778e-08f : 1.7365466009611197e-10f)))))))))))))
#define CYR_D_EXP(r) (((((0.5000000000000001 + (r) * 0.1666666666666664) + ((r) * (r)) * (0.041666666666624386 + (r) * 0.008333333333360084)) + (((r) * (r)) * ((r) * (r))) * ((0.0013888888917104204 + (r) * 0.00019841269772982644) + ((r) * (r)) * (2.4801521445661873e-05 + (r) * 2.7557368517088595e-06))) + ((((r) * (r)) * ((r) * (r))) * (((r) * (r)) * ((r) * (r)))) * (2.7620024539571695e-07 + (r) * 2.5063341564076658e-08)))
#define CYR_D_ATANH(w) (((((0.6666666666666666 + (w) * 0.40000000000000013) + ((w) * (w)) * (0.2857142857142198 + (w) * 0.22222222223326837)) + (((w) * (w)) * ((w) * (w))) * ((0.18181818086377868 + (w) * 0.15384620238118504) + ((w) * (w)) * (0.13333177361030601 + (w) * 0.11767990823931197))) + ((((w) * (w)) * ((w) * (w))) * (((w) * (w)) * ((w) * (w)))) * ((0.10480474396450687 + (w) * 0.09941519818597504) + ((w) * (w)) * (0.06336028423593638 + (w) * 0.15228119440827975))))
#define CYR_D_GELU_R(v, s0, s1) \
    (((s0) ? 0.2615782918651234 : ((s1) ? 0.12151394835556217 : 0.3874929820222399)) + (v) * (((s0) ? -0.1373639885363093 : ((s1) ? -0.034400435334746175 : -0.010557716944035437)) + (v) * (((s0) ? 0.062107151664407036 : ((s1) ? 0.009156321175661819 : 0.0007856362267678149)) + (v) * (((s0) ? -0.025085612290634086 : ((s1) ? -0.0023104906025869067 : -8.965574422901286e-05)) + (v) * (((s0) ? 0.009255384843443248 : ((s1) ? 0.0005562123419752745 : 1.329091955843719e-05)) + (v) * (((s0) ? -0.00316604548943834 : ((s1) ? -0.00012837071533221668 : -2.366484875778129e-06)) + (v) * (((s0) ? 0.0010148898923339844 : ((s1) ? 2.8516699329770745e-05 : 4.837851970124516e-07)) + (v) * (((s0) ? -0.0003073079424413643 : ((s1) ? -6.117231048985585e-06 : -1.1031590792767836e-07)) + (v) * (((s0) ? 8.844774373777424e-05 : ((s1) ? 1.2706257728516648e-06 : 2.750393752542132e-08)) + (v) * (((s0) ? -2.4317799870319574e-05 : ((s1) ? -2.561504144974197e-07 : -7.3897671140120745e-09)) + (v) * (((s0) ? 6.4129943820428925e-06 : ((s1) ? 5.0217452936743634e-08 : 2.1163771280353587e-09)) + (v) * (((s0) ? -1.6277095303790599e-06 : ((s1) ? -9.59073231421059e-09 : -6.408469779630746e-10)) + (v) * (((s0) ? 3.987737477583764e-07 : ((s1) ? 1.7871046622402287e-09 : 2.037563577428423e-10)) + (v) * (((s0) ? -9.45336795058889e-08 : ((s1) ? -3.25339926441936e-10 : -6.698324993709278e-11)) + (v) * (((s0) ? 2.1731424114774785e-08 : ((s1) ? 5.793464604448958e-11 : 2.3251317303819043e-11)) + (v) * (((s0) ? -4.853209776251868e-09 : ((s1) ? -1.0102304457271053e-11 : -9.397277612017236e-12)) + (v) * (((s0) ? 1.0548820314383785e-09 : ((s1) ? 1.7267118563801168e-12 : 2.710537379421411e-12)) + (v) * (((s0) ? -2.2374068360098578e-10 : ((s1) ? -2.896455715992557e-13 : -3.710057266166619e-14)) + (v) * (((s0) ? 4.620135257674728e-11 : ((s1) ? 4.7679568453006266e-14 : 1.1332031436268362e-12)) + (v) * (((s0) ? -9.12465406168148e-12 : ((s1) ? -7.64140822228182e-15 : -7.890231615454934e-13)) + (v) * (((s0) ? 1.8237813805722038e-12 : ((s1) ? 1.2191321458632574e-15 : -4.3455303150777236e-13)) + (v) * (((s0) ? -4.3628308551141404e-13 : ((s1) ? -2.1968400930663936e-16 : 9.043665223869237e-14)) + (v) * (((s0) ? 7.881057419400592e-14 : ((s1) ? 3.318145926119079e-17 : 1.5953935679699787e-13)))))))))))))))))))))))))
#define CYR_D_GELU_H(v, s0, s1) \
    (((s0) ? 0.1373639885363093 : ((s1) ? 1.0753128928487359 : 0.38683312471323766)) + (v) * (((s0) ? 0.536306268937742 : ((s1) ? 0.43334271573617883 : -0.01177922703369389)) + (v) * (((s0) ? -0.062107151664407036 : ((s1) ? -0.009156321175661819 : 0.00030537752241461316)) + (v) * (((s0) ? 0.02508561229063409 : ((s1) ? 0.0023104906025869067 : -2.1749390079336977e-05)) + (v) * (((s0) ? -0.009255384843443218 : ((s1) ? -0.0005562123419752745 : 2.3864007709607545e-06)) + (v) * (((s0) ? 0.0031660454894382566 : ((s1) ? 0.00012837071533221668 : -3.4138858383835166e-07)) + (v) * (((s0) ? -0.0010148898923344396 : ((s1) ? -2.851669932977088e-05 : 5.883436484060467e-08)) + (v) * (((s0) ? 0.0003073079424421918 : ((s1) ? 6.117231048985578e-06 : -1.1670915409346152e-08)) + (v) * (((s0) ? -8.844774373415325e-05 : ((s1) ? -1.270625772850599e-06 : 2.587875155859782e-09)) + (v) * (((s0) ? 2.4317799865803255e-05 : ((s1) ? 2.5615041449745567e-07 : -6.285655942860625e-10)) + (v) * (((s0) ? -6.4129943988524765e-06 : ((s1) ? -5.0217452941723155e-08 : 1.6478925832433354e-10)) + (v) * (((s0) ? 1.6277095451919105e-06 : ((s1) ? 9.59073231409185e-09 : -4.6124239062874996e-11)) + (v) * (((s0) ? -3.987736990971739e-07 : ((s1) ? -1.7871046477386526e-09 : 1.3663798263036101e-11)) + (v) * (((s0) ? 9.453364906237412e-08 : ((s1) ? 3.253399266872669e-10 : -4.2304563855708905e-12)) + (v) * (((s0) ? -2.1731514609288543e-08 : ((s1) ? -5.7934673161315875e-11 : 1.381567593145808e-12)) + (v) * (((s0) ? 4.853249274157547e-09 : ((s1) ? 1.0102304137489896e-11 : -5.072397432292876e-13)) + (v) * (((s0) ? -1.054773889179455e-09 : ((s1) ? -1.726679288397154e-12 : 1.5076211412490666e-13)) + (v) * (((s0) ? 2.237092711186529e-10 : ((s1) ? 2.8964582697225833e-13 : -1.861182066458103e-14)) + (v) * (((s0) ? -4.6281621959503454e-11 : ((s1) ? -4.7703853374193806e-14 : 4.738990549328558e-14)) + (v) * (((s0) ? 9.138633514395649e-12 : ((s1) ? 7.641294153501353e-15 : -3.045181017198696e-14)) + (v) * (((s0) ? -1.7901020692228747e-12 : ((s1) ? -1.2088998566672593e-15 : -1.5431364943347655e-14)) + (v) * (((s0) ? 4.3361721108542935e-13 : ((s1) ? 2.1970583455772398e-16 : 2.9501851577881386e-15)) + (v) * (((s0) ? -8.491436780387586e-14 : ((s1) ? -3.504303939645888e-17 : 5.964610859716864e-15)))))))))))))))))))))))))
/* END generated */

/* ---- float ------------------------------------------------------------------- */

#define CYR_F_LOG2E 1.442695f
#define CYR_F_LN2_HI 0.693145751953125f      /* 15 bits: k * CYR_F_LN2_HI is exact */
#define CYR_F_LN2_LO 1.4286068e-06f
#define CYR_F_SHIFT 12582912.0f              /* 1.5 * 2^23: t + SHIFT - SHIFT rounds t */
#define CYR_F_SPLIT 4097.0f                  /* 2^12 + 1: Dekker's split */
#define CYR_F_EXP_LO -110.0f                 /* c e^y < 2^-150 below (c < 400) */
#define CYR_F_EXP_HI 89.5f                   /* e^y overflows above (celu, alpha < 0) */
#define CYR_F_EM1_BIG 20.0f                  /* e^y - 1 == e^y beyond (k >= 29) */
#define CYR_F_TAIL 110.0f                    /* silu, mish: |x| e^-|x| < 2^-150 beyond */
#define CYR_F_SOFTPLUS_LO -150.0f            /* e^(beta x) / beta rounds to 0 below */
#define CYR_F_SOFTPLUS_TINY -21.0f           /* log1p(e) == e to 2^-31 when e < 2^-30 */
#define CYR_F_GELU_TANH_CLAMP 12.0f          /* e^-|z| == 0 beyond */
#define CYR_F_SELU_SCALE 1.050701f
#define CYR_F_SELU_SA 1.7580993f             /* scale * alpha */
#define CYR_F_GT_C_HI 1.5957692f             /* 2 sqrt(2/pi) = HI + LO */
#define CYR_F_GT_C_LO -4.534068e-08f
#define CYR_F_GT_CK_HI 0.071354814f          /* 2 sqrt(2/pi) 0.044715 = HI + LO */
#define CYR_F_GT_CK_LO 2.3988325e-09f
#define CYR_F_GT_CK3 0.21406445f             /* 3 * 2 sqrt(2/pi) 0.044715 */

/* 2^e for -126 <= e <= 127 */
CYR_SPF_ float cyr_pow2_f_(int e) { return CYR_I2F((int)((unsigned)(e + 127) << 23)); }

/* m 2^k, exact but for one rounding (subnormal results too), for -252 <= k <= 254 */
CYR_SPF_ float cyr_ldexp_f_(float m, int k)
{
    int k1 = k >> 1;
    return m * cyr_pow2_f_(k1) * cyr_pow2_f_(k - k1);
}

/* m 2^k where only a sum with a number near 1 needs it: k below -126 gives m 2^-126,
 * as negligible there as the exact value (one multiply instead of cyr_ldexp_f_'s two) */
CYR_SPF_ float cyr_scale_f_(float m, int k) { return m * cyr_pow2_f_(k < -126 ? -126 : k); }

/* v (1 + p), rounded twice (the product v p, small, and the sum): one rounding
 * fewer than forming 1 + p first */
CYR_SPF_ float cyr_mul1p_f_(float v, float p) { return v + v * p; }

/* a * b = hi + *lo exactly (Dekker, no FMA), |a|, |b| < 2^115 and no underflow */
CYR_SPF_ float cyr_two_prod_f_(float a, float b, float *lo)
{
    float ca = CYR_F_SPLIT * a, cb = CYR_F_SPLIT * b;
    float ah = ca - (ca - a), al = a - ah;
    float bh = cb - (cb - b), bl = b - bh;
    float hi = a * b;
    *lo = ((ah * bh - hi) + ah * bl + al * bh) + al * bl;
    return hi;
}

/* beta x = hi + *lo exactly: x itself where beta is 1 (torch's default; the kernels
 * pass a literal 1 then, and the product of Dekker's parts folds away) */
CYR_SPF_ float cyr_beta_prod_f_(float x, float beta, float *lo)
{
    if (beta == 1.0f) {
        *lo = 0.0f;
        return x;
    }
    return cyr_two_prod_f_(x, beta, lo);
}

/* e^(h + l) = (1 + p) 2^*k: returns p = e^r - 1, r = h + l - k ln2, |r| <= ln2/2 + |l|;
 * |h| < 2^21, |l| small.  p within 2^-26.5 |r^2| of e^r - 1 (Q's fit) plus roundings.
 * with_l: a literal, 0 where there is no second part (an added 0.0 is not folded). */
CYR_SPF_ float cyr_expr_l_f_(float h, float l, int with_l, int *k)
{
    float t = h * CYR_F_LOG2E + CYR_F_SHIFT;
    float kf = t - CYR_F_SHIFT;
    float r = h - kf * CYR_F_LN2_HI;
    r = (with_l ? r + l : r) - kf * CYR_F_LN2_LO;
    *k = CYR_F2I(t) - CYR_F2I(CYR_F_SHIFT);
    return r + r * r * CYR_F_EXP(r);
}

CYR_SPF_ float cyr_expr_f_(float h, float l, int *k) { return cyr_expr_l_f_(h, l, 1, k); }

/* e^h = (1 + p) 2^*k */
CYR_SPF_ float cyr_expr0_f_(float h, int *k) { return cyr_expr_l_f_(h, 0.0f, 0, k); }

/* -|x|, by the sign bit.  Not a ternary: GCC turns `x < 0 ? x : -x` feeding an
 * exponential into two copies of the exponential, one per arm, blended at the end. */
CYR_SPF_ float cyr_negabs_f_(float x) { return CYR_I2F(CYR_F2I(x) | (int)0x80000000u); }

/* l with its sign flipped where z > 0 (or z is +0): the second part of -|z + l| */
CYR_SPF_ float cyr_negabs_lo_f_(float z, float l) { return CYR_I2F(CYR_F2I(l) ^ (~CYR_F2I(z) & (int)0x80000000u)); }

/* 2^(k + 64), -190 <= k <= 63: m 2^(k + 64) is exact while normal, and times
 * CYR_F_2M64 it is m 2^k rounded once (a subnormal result too): cyr_ldexp_f_'s rounding
 * with one multiply fewer, where the 2^-64 is a constant chosen per element */
#define CYR_F_2M64 5.421010862427522e-20f /* 2^-64 */
CYR_SPF_ float cyr_pow2_64_f_(int k) { return cyr_pow2_f_(k + 64); }

/* max(u, c) for u, c <= 0 (c not NaN), on the bits: the unsigned minimum (a larger
 * magnitude is a larger pattern), one instruction where a ternary takes masks; a NaN u
 * gives c, so callers carry NaN through x itself */
CYR_SPF_ float cyr_negmax_f_(float u, float c)
{
    unsigned ub = (unsigned)CYR_F2I(u), cb = (unsigned)CYR_F2I(c);
    return CYR_I2F((int)(ub < cb ? ub : cb));
}

/* c ? t : f on the bits: one blend where a ternary in front of a division would make
 * GCC divide in each arm */
CYR_SPF_ float cyr_sel_f_(int c, float t, float f)
{
    int m = -(c != 0);
    return CYR_I2F((CYR_F2I(t) & m) | (CYR_F2I(f) & ~m));
}

/* e^y - 1 (y <= CYR_F_EXP_HI; -0.0 kept) */
CYR_SPF_ float cyr_expm1_f_(float y)
{
    float yc = y < -40.0f ? -40.0f : (y > CYR_F_EXP_HI ? CYR_F_EXP_HI : y);
    int k;
    float p = cyr_expr0_f_(yc, &k);
    float s = cyr_pow2_f_(k); /* used where yc <= CYR_F_EM1_BIG: k is small */
    float v = yc > CYR_F_EM1_BIG ? cyr_ldexp_f_(1.0f + p, k) - 1.0f : s * p + (s - 1.0f);
    return y == 0.0f ? y : v;
}

/* e^y - 1 for y <= 0 (-0.0 kept), the elu and selu side: no overflow branch; a
 * positive y gives e^-y - 1, which the callers do not select */
CYR_SPF_ float cyr_expm1_neg_f_(float y)
{
    float yn = cyr_negabs_f_(y), yc = yn < -40.0f ? -40.0f : yn;
    int k;
    float p = cyr_expr0_f_(yc, &k);
    float s = cyr_pow2_f_(k);
    float v = s * p + (s - 1.0f);
    return y == 0.0f ? y : v;
}

/* c e^(h + l), c a factor that keeps c (1 + p) normal */
CYR_SPF_ float cyr_exp_times_f_(float h, float l, float c)
{
    float hc = h < CYR_F_EXP_LO ? CYR_F_EXP_LO : (h > CYR_F_EXP_HI ? CYR_F_EXP_HI : h);
    float lc = hc == h ? l : 0.0f;
    int k;
    float p = cyr_expr_f_(hc, lc, &k);
    return cyr_ldexp_f_(c * (1.0f + p), k);
}

/* elu: x > 0 ? x : alpha (e^x - 1); derivative 1 or alpha e^x (alpha at 0) */
CYR_SPF_ float cyr_elu_fwd_f(float x, float a, float b)
{
    (void)b;
    return x > 0.0f ? x : a * cyr_expm1_neg_f_(x);
}

CYR_SPF_ float cyr_elu_grad_f(float x, float a, float b)
{
    (void)b;
    return x > 0.0f ? 1.0f : cyr_exp_times_f_(x, 0.0f, a);
}

/* celu: x > 0 ? x : alpha (e^(x/alpha) - 1); derivative 1 or e^(x/alpha) (1 at 0),
 * x/alpha carried exactly as q + l into the exponential */
CYR_SPF_ float cyr_celu_fwd_f(float x, float a, float b)
{
    (void)b;
    return x > 0.0f ? x : a * cyr_expm1_f_(x / a);
}

CYR_SPF_ float cyr_celu_grad_f(float x, float a, float b)
{
    float ra = 1.0f / a; /* loop-invariant: q's error is carried by the second part */
    float q = x * ra, pl, ph = cyr_two_prod_f_(q, a, &pl);
    (void)b;
    return x > 0.0f ? 1.0f : cyr_exp_times_f_(q, ((x - ph) - pl) * ra, 1.0f);
}

/* selu: scale (x > 0 ? x : alpha (e^x - 1)); derivative scale or scale alpha e^x */
CYR_SPF_ float cyr_selu_fwd_f(float x, float a, float b)
{
    (void)a;
    (void)b;
    return x > 0.0f ? CYR_F_SELU_SCALE * x : CYR_F_SELU_SA * cyr_expm1_neg_f_(x);
}

CYR_SPF_ float cyr_selu_grad_f(float x, float a, float b)
{
    (void)a;
    (void)b;
    return x > 0.0f ? CYR_F_SELU_SCALE : cyr_exp_times_f_(x, 0.0f, CYR_F_SELU_SA);
}

/* silu: x sigmoid(x), from e = e^-|x|: x / (1 + e) (x >= 0) or x e / (1 + e);
 * derivative sigmoid(x) (1 + x (1 - sigmoid(x))): (1 + e + x e) / (1 + e)^2 or
 * e (1 + x + e) / (1 + e)^2 */
CYR_SPF_ float cyr_silu_fwd_f(float x, float a, float b)
{
    float uq = cyr_negmax_f_(cyr_negabs_f_(x), -CYR_F_TAIL);
    int k, neg = x < 0.0f;
    float p = cyr_expr0_f_(uq, &k), s = cyr_pow2_64_f_(k);
    float d = 1.0f + (1.0f + p) * (s * CYR_F_2M64); /* 1 + e, e = e^-|x| */
    (void)a;
    (void)b;
    return (cyr_sel_f_(neg, cyr_mul1p_f_(uq, p) * s, x) / d) * (neg ? CYR_F_2M64 : 1.0f);
}

CYR_SPF_ float cyr_silu_grad_f(float x, float a, float b)
{
    float u = cyr_negabs_f_(x), uq = u < -CYR_F_TAIL ? -CYR_F_TAIL : u; /* NaN kept */
    int k, neg = x < 0.0f;
    float p = cyr_expr0_f_(uq, &k), s = cyr_pow2_64_f_(k);
    float e = (1.0f + p) * (s * CYR_F_2M64), d = 1.0f + e;
    (void)a;
    (void)b;
    return (cyr_sel_f_(neg, cyr_mul1p_f_((1.0f + uq) + e, p) * s, d - uq * e) / (d * d)) * (neg ? CYR_F_2M64 : 1.0f);
}

/* softplus (beta = a, threshold = b): beta x > threshold ? x :
 * max(x, 0) + log1p(e) / beta, e = e^-|beta x| (beta x exact as z + zl);
 * derivative 1 or sigmoid(beta x) */
CYR_SPF_ float cyr_softplus_fwd_f(float x, float a, float b)
{
    float zl, z = cyr_beta_prod_f_(x, a, &zl);
    float h = cyr_negabs_f_(z), l = cyr_negabs_lo_f_(z, zl);
    int clamp = h < CYR_F_SOFTPLUS_LO, tiny = h < CYR_F_SOFTPLUS_TINY, k;
    float p = cyr_expr_f_(clamp ? CYR_F_SOFTPLUS_LO : h, cyr_sel_f_(clamp, 0.0f, l), &k), m = 1.0f + p;
    float e = cyr_scale_f_(m, k);
    float s = e / (2.0f + e), w = s * s;
    float lp = 2.0f * s + s * w * CYR_F_ATANH(w);
    float v = cyr_ldexp_f_(cyr_sel_f_(tiny, m, lp) / a, tiny ? k : 0);
    return z > b ? x : (z > 0.0f ? x + v : v);
}

CYR_SPF_ float cyr_softplus_grad_f(float x, float a, float b)
{
    float zl, z = cyr_beta_prod_f_(x, a, &zl);
    float h = cyr_negabs_f_(z), l = cyr_negabs_lo_f_(z, zl);
    int clamp = h < CYR_F_EXP_LO, pos = z > 0.0f, k;
    float p = cyr_expr_f_(clamp ? CYR_F_EXP_LO : h, cyr_sel_f_(clamp, 0.0f, l), &k), m = 1.0f + p;
    float s = cyr_pow2_64_f_(k), d = 1.0f + m * (s * CYR_F_2M64);
    float sg = (cyr_sel_f_(pos, 1.0f, m * s) / d) * (pos ? 1.0f : CYR_F_2M64);
    return z > b ? 1.0f : sg;
}

/* gelu, erf form: 0.5 x erfc(-x/sqrt2) = x - x E R(|x|) (x > 0) or x E R(|x|), and
 * derivative 1 + E H(|x|) or -E H(|x|), E = e^(-x^2/2) = (1 + p) 2^k (see the top) */
CYR_SPF_ float cyr_gelu_erf_f_(float x, int grad)
{
    float u = CYR_I2F(CYR_F2I(x) & 0x7fffffff);
    float uc = u > 15.0f ? 15.0f : u;
    float xs = x < -15.0f ? -15.0f : (x > 15.0f ? 15.0f : x);
    /* u^2 = uh^2 + (2 uh + ul) ul: uh has 12 significant bits and ul the other 12, so
     * every product is exact and only the last sum rounds (2^-24 of a part 2^-10 of
     * u^2 at most); Dekker's split takes two operations more per operand */
    float uh = CYR_I2F(CYR_F2I(uc) & (int)0xfffff000), ul = uc - uh;
    int k;
    float p = cyr_expr_f_(-0.5f * (uh * uh), -0.5f * ((uh + uh) * ul + ul * ul), &k), s = cyr_pow2_64_f_(k);
    float w = 4.0f / uc;
    float v = uc < 2.0f ? uc - 1.0f : (uc < 4.0f ? uc - 3.0f : 2.0f * (w * w) - 1.0f);
    float r, hh, f, g;
    if (!grad) {
        r = CYR_F_GELU_R(v, uc < 2.0f, uc < 4.0f);
        r = uc < 4.0f ? r : r * w * 0.25f;
        f = cyr_mul1p_f_(xs, p) * r * s * CYR_F_2M64;
        return x > 0.0f ? x - f : f;
    }
    hh = CYR_F_GELU_H(v, uc < 2.0f, uc < 4.0f);
    hh = uc < 4.0f ? hh : hh * uc;
    g = cyr_mul1p_f_(hh, p) * s * CYR_F_2M64;
    return x < 0.0f ? -g : 1.0f + g;
}

/* gelu, tanh form: x sigmoid(z), z = 2 sqrt(2/pi) (x + 0.044715 x^3) = x (C + CK x^2)
 * carried as z + zl (double-float, 2^-44 relative); from e = e^-|z|: x / (1 + e) or
 * x e / (1 + e), and derivative (torch's s + x s (1 - s) z'(x), s = sigmoid(z))
 * (1 + e + x D e) / (1 + e)^2 or e (1 + e + x D) / (1 + e)^2, D = C + 3 CK x^2 */
CYR_SPF_ float cyr_gelu_tanh_f_(float x, int grad)
{
    float xq = x < -CYR_F_GELU_TANH_CLAMP ? -CYR_F_GELU_TANH_CLAMP
                                          : (x > CYR_F_GELU_TANH_CLAMP ? CYR_F_GELU_TANH_CLAMP : x);
    float ql, qq = cyr_two_prod_f_(xq, xq, &ql);
    float tl, t = cyr_two_prod_f_(CYR_F_GT_CK_HI, qq, &tl);
    float sh = CYR_F_GT_C_HI + t, sb = sh - CYR_F_GT_C_HI;
    float sl = ((CYR_F_GT_C_HI - (sh - sb)) + (t - sb)) +
               ((tl + CYR_F_GT_CK_HI * ql + CYR_F_GT_CK_LO * qq) + CYR_F_GT_C_LO);
    float zl, z = cyr_two_prod_f_(xq, sh, &zl);
    float h, l, p, s, e, d, dz;
    int k, clamp, neg = x < 0.0f;
    zl = zl + xq * sl;
    /* -|z| as h + l, at most CYR_F_TAIL (e^-|z| then rounds the result to 0 all the same) */
    h = cyr_negabs_f_(z);
    clamp = h < -CYR_F_TAIL;
    l = cyr_sel_f_(clamp, 0.0f, cyr_negabs_lo_f_(z, zl));
    p = cyr_expr_f_(clamp ? -CYR_F_TAIL : h, l, &k);
    s = cyr_pow2_64_f_(k);
    e = (1.0f + p) * (s * CYR_F_2M64);
    d = 1.0f + e;
    if (!grad)
        return (cyr_sel_f_(neg, cyr_mul1p_f_(xq, p) * s, x) / d) * (neg ? CYR_F_2M64 : 1.0f);
    dz = CYR_F_GT_C_HI + CYR_F_GT_CK3 * (xq * xq);
    return (cyr_sel_f_(neg, cyr_mul1p_f_(d + xq * dz, p) * s, d + xq * dz * e) / (d * d)) * (neg ? CYR_F_2M64 : 1.0f);
}

/* gelu's two forms on their own: a loop over cyr_gelu_*_f with a parameter the compiler
 * cannot see is not vectorised by GCC (the two bodies together are not if-converted);
 * a loop over one of these four is */
CYR_SPF_ float cyr_gelu_erf_fwd_f(float x) { return cyr_gelu_erf_f_(x, 0); }
CYR_SPF_ float cyr_gelu_erf_grad_f(float x) { return cyr_gelu_erf_f_(x, 1); }
CYR_SPF_ float cyr_gelu_tanh_fwd_f(float x) { return cyr_gelu_tanh_f_(x, 0); }
CYR_SPF_ float cyr_gelu_tanh_grad_f(float x) { return cyr_gelu_tanh_f_(x, 1); }

CYR_SPF_ float cyr_gelu_fwd_f(float x, float a, float b)
{
    (void)b;
    return a == 0.0f ? cyr_gelu_erf_f_(x, 0) : cyr_gelu_tanh_f_(x, 0);
}

CYR_SPF_ float cyr_gelu_grad_f(float x, float a, float b)
{
    (void)b;
    return a == 0.0f ? cyr_gelu_erf_f_(x, 1) : cyr_gelu_tanh_f_(x, 1);
}

/* mish: x tanh(softplus(x)): x q (q + 2) / (n + 2), n = q (q + 2), q = e^x (x < 0), or
 * x A / B, A = 1 + 2q, B = A + 2q^2, q = e^-x; derivative
 * q ((q + 2)(n + 2) + 4 x (1 + q)) / (n + 2)^2 or (A B + 4 x q^2 (1 + q)) / B^2.
 * The exponential is float's; the rational part, five to seven roundings in float (up
 * to 4.9 ulp measured), is done in double from q = (1 + p) 2^k, exact there, so that
 * only p's error and the final rounding remain (subnormal results rounded once). */
CYR_SPF_ float cyr_mish_f_(float x, int grad)
{
    float xq = x < -CYR_F_TAIL ? -CYR_F_TAIL : (x > CYR_F_TAIL ? CYR_F_TAIL : x);
    int k;
    float p = cyr_expr0_f_(cyr_negabs_f_(xq), &k);
    double q = (1.0 + (double)p) * CYR_L2D((long long)((unsigned long long)(k + 1023) << 52));
    double xd = (double)xq, q2 = q + 2.0, n2 = q * q2 + 2.0;
    double aa = 1.0 + 2.0 * q, bb = aa + 2.0 * (q * q);
    if (!grad)
        return (float)((x < 0.0f ? xd * q * q2 : (double)x * aa) / (x < 0.0f ? n2 : bb));
    return (float)((x < 0.0f ? q * (q2 * n2 + 4.0 * xd * (1.0 + q)) : aa * bb + 4.0 * xd * (q * q) * (1.0 + q)) /
                   (x < 0.0f ? n2 * n2 : bb * bb));
}

CYR_SPF_ float cyr_mish_fwd_f(float x, float a, float b)
{
    (void)a;
    (void)b;
    return cyr_mish_f_(x, 0);
}

CYR_SPF_ float cyr_mish_grad_f(float x, float a, float b)
{
    (void)a;
    (void)b;
    return cyr_mish_f_(x, 1);
}

/* ---- double ------------------------------------------------------------------ */

#define CYR_D_LOG2E 1.4426950408889634
#define CYR_D_LN2_HI 0.6931471803691238        /* 32 bits: k * CYR_D_LN2_HI is exact */
#define CYR_D_LN2_LO 1.9082149292705877e-10
#define CYR_D_SHIFT 6755399441055744.0         /* 1.5 * 2^52 */
#define CYR_D_SPLIT 134217729.0                /* 2^27 + 1 */
#define CYR_D_EXP_LO -760.0
#define CYR_D_EXP_HI 710.5
#define CYR_D_EM1_BIG 40.0
#define CYR_D_TAIL 760.0
#define CYR_D_SOFTPLUS_LO -800.0
#define CYR_D_SOFTPLUS_TINY -42.0
#define CYR_D_GELU_TANH_CLAMP 23.0
#define CYR_D_SELU_SCALE 1.0507009873554805
#define CYR_D_SELU_SA 1.7580993408473768
#define CYR_D_GT_C_HI 1.5957691216057308
#define CYR_D_GT_C_LO -9.96930880911092e-17
#define CYR_D_GT_CK_HI 0.07135481627260025
#define CYR_D_GT_CK_LO -6.175149918155315e-19
#define CYR_D_GT_CK3 0.21406444881780073

/* 2^e for -1022 <= e <= 1023 */
CYR_SPF_ double cyr_pow2_d_(long long e) { return CYR_L2D((long long)((unsigned long long)(e + 1023) << 52)); }

/* m 2^k, exact but for one rounding (subnormal results too), for -2044 <= k <= 2046 */
CYR_SPF_ double cyr_ldexp_d_(double m, int k)
{
    long long k1 = k >> 1;
    return m * cyr_pow2_d_(k1) * cyr_pow2_d_(k - k1);
}

/* m 2^k where only a sum with a number near 1 needs it: k below -1022 gives m 2^-1022,
 * as negligible there as the exact value (one multiply instead of cyr_ldexp_d_'s two) */
CYR_SPF_ double cyr_scale_d_(double m, long long k) { return m * cyr_pow2_d_(k < -1022 ? -1022 : k); }

/* v (1 + p), rounded twice (the product v p, small, and the sum): one rounding
 * fewer than forming 1 + p first */
CYR_SPF_ double cyr_mul1p_d_(double v, double p) { return v + v * p; }

/* -|x|, the second part of -|z + l|, and c ? t : f on the bits: as cyr_negabs_f_,
 * cyr_negabs_lo_f_ and cyr_sel_f_ (the ternaries they replace double GCC's work) */
CYR_SPF_ double cyr_negabs_d_(double x) { return CYR_L2D(CYR_D2L(x) | (long long)0x8000000000000000ull); }
CYR_SPF_ double cyr_negabs_lo_d_(double z, double l)
{
    return CYR_L2D(CYR_D2L(l) ^ (~CYR_D2L(z) & (long long)0x8000000000000000ull));
}
CYR_SPF_ double cyr_sel_d_(long long c, double t, double f)
{
    long long m = -(long long)(c != 0);
    return CYR_L2D((CYR_D2L(t) & m) | (CYR_D2L(f) & ~m));
}

/* a * b = hi + *lo exactly (Dekker, no FMA), |a|, |b| < 2^995 and no underflow */
CYR_SPF_ double cyr_two_prod_d_(double a, double b, double *lo)
{
    double ca = CYR_D_SPLIT * a, cb = CYR_D_SPLIT * b;
    double ah = ca - (ca - a), al = a - ah;
    double bh = cb - (cb - b), bl = b - bh;
    double hi = a * b;
    *lo = ((ah * bh - hi) + ah * bl + al * bh) + al * bl;
    return hi;
}

/* beta x = hi + *lo exactly, x itself where beta is 1 (as cyr_beta_prod_f_) */
CYR_SPF_ double cyr_beta_prod_d_(double x, double beta, double *lo)
{
    if (beta == 1.0) {
        *lo = 0.0;
        return x;
    }
    return cyr_two_prod_d_(x, beta, lo);
}

/* e^(h + l) = (1 + p) 2^*k: returns p = e^r - 1, r = h + l - k ln2, |r| <= ln2/2 + |l|;
 * |h| < 2^50, |l| small.  p within 2^-52 |r^2| of e^r - 1 (Q's fit) plus roundings. */
CYR_SPF_ double cyr_expr_d_(double h, double l, long long *k)
{
    double t = h * CYR_D_LOG2E + CYR_D_SHIFT;
    double kf = t - CYR_D_SHIFT;
    double r = ((h - kf * CYR_D_LN2_HI) + l) - kf * CYR_D_LN2_LO;
    *k = CYR_D2L(t) - CYR_D2L(CYR_D_SHIFT);
    return r + r * r * CYR_D_EXP(r);
}

/* e^y - 1 (y <= CYR_D_EXP_HI; -0.0 kept) */
CYR_SPF_ double cyr_expm1_d_(double y)
{
    double yc = y < -40.0 ? -40.0 : (y > CYR_D_EXP_HI ? CYR_D_EXP_HI : y);
    long long k;
    double p = cyr_expr_d_(yc, 0.0, &k);
    double s = cyr_pow2_d_(k); /* used where yc <= CYR_D_EM1_BIG: k is small */
    double v = yc > CYR_D_EM1_BIG ? cyr_ldexp_d_(1.0 + p, k) - 1.0 : s * p + (s - 1.0);
    return y == 0.0 ? y : v;
}

/* c e^(h + l), c a factor that keeps c (1 + p) normal */
CYR_SPF_ double cyr_exp_times_d_(double h, double l, double c)
{
    double hc = h < CYR_D_EXP_LO ? CYR_D_EXP_LO : (h > CYR_D_EXP_HI ? CYR_D_EXP_HI : h);
    double lc = hc == h ? l : 0.0;
    long long k;
    double p = cyr_expr_d_(hc, lc, &k);
    return cyr_ldexp_d_(c * (1.0 + p), k);
}

/* elu: x > 0 ? x : alpha (e^x - 1); derivative 1 or alpha e^x (alpha at 0) */
CYR_SPF_ double cyr_elu_fwd_d(double x, double a, double b)
{
    (void)b;
    return x > 0.0 ? x : a * cyr_expm1_d_(x);
}

CYR_SPF_ double cyr_elu_grad_d(double x, double a, double b)
{
    (void)b;
    return x > 0.0 ? 1.0 : cyr_exp_times_d_(x, 0.0, a);
}

/* celu: x > 0 ? x : alpha (e^(x/alpha) - 1); derivative 1 or e^(x/alpha) (1 at 0),
 * x/alpha carried exactly as q + l into the exponential */
CYR_SPF_ double cyr_celu_fwd_d(double x, double a, double b)
{
    (void)b;
    return x > 0.0 ? x : a * cyr_expm1_d_(x / a);
}

CYR_SPF_ double cyr_celu_grad_d(double x, double a, double b)
{
    double ra = 1.0 / a; /* loop-invariant: q's error is carried by the second part */
    double q = x * ra, pl, ph = cyr_two_prod_d_(q, a, &pl);
    (void)b;
    return x > 0.0 ? 1.0 : cyr_exp_times_d_(q, ((x - ph) - pl) * ra, 1.0);
}

/* selu: scale (x > 0 ? x : alpha (e^x - 1)); derivative scale or scale alpha e^x */
CYR_SPF_ double cyr_selu_fwd_d(double x, double a, double b)
{
    (void)a;
    (void)b;
    return x > 0.0 ? CYR_D_SELU_SCALE * x : CYR_D_SELU_SA * cyr_expm1_d_(x);
}

CYR_SPF_ double cyr_selu_grad_d(double x, double a, double b)
{
    (void)a;
    (void)b;
    return x > 0.0 ? CYR_D_SELU_SCALE : cyr_exp_times_d_(x, 0.0, CYR_D_SELU_SA);
}

/* silu: x sigmoid(x), from e = e^-|x|: x / (1 + e) (x >= 0) or x e / (1 + e);
 * derivative sigmoid(x) (1 + x (1 - sigmoid(x))): (1 + e + x e) / (1 + e)^2 or
 * e (1 + x + e) / (1 + e)^2 */
CYR_SPF_ double cyr_silu_fwd_d(double x, double a, double b)
{
    double xq = x < -CYR_D_TAIL ? -CYR_D_TAIL : (x > CYR_D_TAIL ? CYR_D_TAIL : x);
    long long k;
    double p = cyr_expr_d_(cyr_negabs_d_(xq), 0.0, &k), m = 1.0 + p;
    double d = 1.0 + cyr_scale_d_(m, k);
    (void)a;
    (void)b;
    return cyr_ldexp_d_(cyr_sel_d_(x < 0.0, cyr_mul1p_d_(xq, p), x) / d, x < 0.0 ? k : 0);
}

CYR_SPF_ double cyr_silu_grad_d(double x, double a, double b)
{
    double xq = x < -CYR_D_TAIL ? -CYR_D_TAIL : (x > CYR_D_TAIL ? CYR_D_TAIL : x);
    long long k;
    double p = cyr_expr_d_(cyr_negabs_d_(xq), 0.0, &k), m = 1.0 + p;
    double e = cyr_scale_d_(m, k), d = 1.0 + e;
    (void)a;
    (void)b;
    return cyr_ldexp_d_(cyr_sel_d_(x < 0.0, cyr_mul1p_d_((1.0 + xq) + e, p), d + xq * e) / (d * d), x < 0.0 ? k : 0);
}

/* softplus (beta = a, threshold = b): beta x > threshold ? x :
 * max(x, 0) + log1p(e) / beta, e = e^-|beta x| (beta x exact as z + zl);
 * derivative 1 or sigmoid(beta x) */
CYR_SPF_ double cyr_softplus_fwd_d(double x, double a, double b)
{
    double zl, z = cyr_beta_prod_d_(x, a, &zl);
    double h = cyr_negabs_d_(z), l = cyr_negabs_lo_d_(z, zl);
    double hc = h < CYR_D_SOFTPLUS_LO ? CYR_D_SOFTPLUS_LO : h, lc = cyr_sel_d_(hc == h, l, 0.0);
    long long k;
    double p = cyr_expr_d_(hc, lc, &k), m = 1.0 + p;
    double e = cyr_scale_d_(m, k);
    double s = e / (2.0 + e), w = s * s;
    double lp = 2.0 * s + s * w * CYR_D_ATANH(w);
    double v = cyr_ldexp_d_(cyr_sel_d_(hc < CYR_D_SOFTPLUS_TINY, m, lp) / a, hc < CYR_D_SOFTPLUS_TINY ? k : 0);
    return z > b ? x : (z > 0.0 ? x + v : v);
}

CYR_SPF_ double cyr_softplus_grad_d(double x, double a, double b)
{
    double zl, z = cyr_beta_prod_d_(x, a, &zl);
    double h = cyr_negabs_d_(z), l = cyr_negabs_lo_d_(z, zl);
    double hc = h < CYR_D_EXP_LO ? CYR_D_EXP_LO : h, lc = cyr_sel_d_(hc == h, l, 0.0);
    long long k;
    double p = cyr_expr_d_(hc, lc, &k), m = 1.0 + p;
    double d = 1.0 + cyr_scale_d_(m, k);
    double sg = cyr_ldexp_d_(cyr_sel_d_(z > 0.0, 1.0, m) / d, z > 0.0 ? 0 : k);
    return z > b ? 1.0 : sg;
}

/* gelu, erf form: 0.5 x erfc(-x/sqrt2) = x - x E R(|x|) (x > 0) or x E R(|x|), and
 * derivative 1 + E H(|x|) or -E H(|x|), E = e^(-x^2/2) = (1 + p) 2^k (see the top) */
CYR_SPF_ double cyr_gelu_erf_d_(double x, int grad)
{
    double u = x < 0.0 ? -x : x;
    double uc = u > 40.0 ? 40.0 : u;
    double xs = x < -40.0 ? -40.0 : (x > 40.0 ? 40.0 : x);
    double ul, uu = cyr_two_prod_d_(uc, uc, &ul);
    long long k;
    double p = cyr_expr_d_(-0.5 * uu, -0.5 * ul, &k);
    double w = 4.0 / uc;
    double v = uc < 2.0 ? uc - 1.0 : (uc < 4.0 ? uc - 3.0 : 2.0 * (w * w) - 1.0);
    double r = CYR_D_GELU_R(v, uc < 2.0, uc < 4.0);
    double hh = CYR_D_GELU_H(v, uc < 2.0, uc < 4.0);
    double f, g;
    r = uc < 4.0 ? r : r * w * 0.25;
    hh = uc < 4.0 ? hh : hh * uc;
    f = cyr_ldexp_d_(cyr_mul1p_d_(xs, p) * r, k);
    g = cyr_ldexp_d_(cyr_mul1p_d_(hh, p), k);
    return grad ? (x < 0.0 ? -g : 1.0 + g) : (x > 0.0 ? x - f : f);
}

/* gelu, tanh form: x sigmoid(z), z = 2 sqrt(2/pi) (x + 0.044715 x^3) = x (C + CK x^2)
 * carried as z + zl (double-double, 2^-100 relative); from e = e^-|z|: x / (1 + e) or
 * x e / (1 + e), and derivative (torch's s + x s (1 - s) z'(x), s = sigmoid(z))
 * (1 + e + x D e) / (1 + e)^2 or e (1 + e + x D) / (1 + e)^2, D = C + 3 CK x^2 */
CYR_SPF_ double cyr_gelu_tanh_d_(double x, int grad)
{
    double xq = x < -CYR_D_GELU_TANH_CLAMP ? -CYR_D_GELU_TANH_CLAMP
                                          : (x > CYR_D_GELU_TANH_CLAMP ? CYR_D_GELU_TANH_CLAMP : x);
    double ql, qq = cyr_two_prod_d_(xq, xq, &ql);
    double tl, t = cyr_two_prod_d_(CYR_D_GT_CK_HI, qq, &tl);
    double sh = CYR_D_GT_C_HI + t, sb = sh - CYR_D_GT_C_HI;
    double sl = ((CYR_D_GT_C_HI - (sh - sb)) + (t - sb)) +
               ((tl + CYR_D_GT_CK_HI * ql + CYR_D_GT_CK_LO * qq) + CYR_D_GT_C_LO);
    double zl, z = cyr_two_prod_d_(xq, sh, &zl);
    long long k;
    double p, m, e, d, dz;
    zl = zl + xq * sl;
    p = cyr_expr_d_(cyr_negabs_d_(z), cyr_negabs_lo_d_(z, zl), &k);
    m = 1.0 + p;
    e = cyr_scale_d_(m, k);
    d = 1.0 + e;
    if (!grad)
        return cyr_ldexp_d_(cyr_sel_d_(x < 0.0, cyr_mul1p_d_(xq, p), x) / d, x < 0.0 ? k : 0);
    dz = CYR_D_GT_C_HI + CYR_D_GT_CK3 * (xq * xq);
    return cyr_ldexp_d_(cyr_sel_d_(x < 0.0, cyr_mul1p_d_(d + xq * dz, p), d + xq * dz * e) / (d * d), x < 0.0 ? k : 0);
}

/* gelu's two forms on their own: a loop over cyr_gelu_*_d with a parameter the compiler
 * cannot see is not vectorised by GCC (the two bodies together are not if-converted);
 * a loop over one of these four is */
CYR_SPF_ double cyr_gelu_erf_fwd_d(double x) { return cyr_gelu_erf_d_(x, 0); }
CYR_SPF_ double cyr_gelu_erf_grad_d(double x) { return cyr_gelu_erf_d_(x, 1); }
CYR_SPF_ double cyr_gelu_tanh_fwd_d(double x) { return cyr_gelu_tanh_d_(x, 0); }
CYR_SPF_ double cyr_gelu_tanh_grad_d(double x) { return cyr_gelu_tanh_d_(x, 1); }

CYR_SPF_ double cyr_gelu_fwd_d(double x, double a, double b)
{
    (void)b;
    return a == 0.0 ? cyr_gelu_erf_d_(x, 0) : cyr_gelu_tanh_d_(x, 0);
}

CYR_SPF_ double cyr_gelu_grad_d(double x, double a, double b)
{
    (void)b;
    return a == 0.0 ? cyr_gelu_erf_d_(x, 1) : cyr_gelu_tanh_d_(x, 1);
}

/* mish: x tanh(softplus(x)): x q (q + 2) / (n + 2), n = q (q + 2), q = e^x (x < 0), or
 * x A / B, A = 1 + 2q, B = A + 2q^2, q = e^-x; derivative
 * q ((q + 2)(n + 2) + 4 x (1 + q)) / (n + 2)^2 or (A B + 4 x q^2 (1 + q)) / B^2 */
CYR_SPF_ double cyr_mish_d_(double x, int grad)
{
    double xq = x < -CYR_D_TAIL ? -CYR_D_TAIL : (x > CYR_D_TAIL ? CYR_D_TAIL : x);
    long long k;
    double p = cyr_expr_d_(cyr_negabs_d_(xq), 0.0, &k), m = 1.0 + p;
    double q = cyr_scale_d_(m, k);
    double q2 = q + 2.0, n2 = q * q2 + 2.0;
    double aa = 1.0 + 2.0 * q, bb = aa + 2.0 * (q * q);
    double t = (x < 0.0 ? cyr_mul1p_d_(xq, p) * q2 : aa) / (x < 0.0 ? n2 : bb);
    if (!grad)
        return x < 0.0 ? cyr_ldexp_d_(t, k) : x * t;
    return cyr_ldexp_d_((x < 0.0 ? cyr_mul1p_d_(q2 * n2 + 4.0 * xq * (1.0 + q), p)
                                 : aa * bb + 4.0 * xq * (q * q) * (1.0 + q)) /
                            (x < 0.0 ? n2 * n2 : bb * bb),
                        x < 0.0 ? k : 0);
}

CYR_SPF_ double cyr_mish_fwd_d(double x, double a, double b)
{
    (void)a;
    (void)b;
    return cyr_mish_d_(x, 0);
}

CYR_SPF_ double cyr_mish_grad_d(double x, double a, double b)
{
    (void)a;
    (void)b;
    return cyr_mish_d_(x, 1);
}

#endif /* CYRELU_ACTIVATION_SPECIAL_H */
