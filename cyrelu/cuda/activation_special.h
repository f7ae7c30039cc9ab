/* TEMPORARY stand-in (libm builtins) for the special functions; replaced by the
 * polynomial implementation. Interface: cyr_<name>_fwd_S / cyr_<name>_grad_S, S = f | d. */
#ifndef CYRELU_ACTIVATION_SPECIAL_H
#define CYRELU_ACTIVATION_SPECIAL_H
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define CYR_SPF __device__ __forceinline__ static
#define CYR_EXP_ exp
#define CYR_EXPM1_ expm1
#define CYR_LOG1P_ log1p
#define CYR_ERFC_ erfc
#define CYR_FABS_ fabs
#else
#define CYR_SPF static inline
#define CYR_EXP_ __builtin_exp
#define CYR_EXPM1_ __builtin_expm1
#define CYR_LOG1P_ __builtin_log1p
#define CYR_ERFC_ __builtin_erfc
#define CYR_FABS_ __builtin_fabs
#endif
#define CYR_SELU_ALPHA 1.6732632423543772848170429916717
#define CYR_SELU_SCALE 1.0507009873554804934193349852946
CYR_SPF double cyr_elu_fwd_d(double x, double a, double b) { (void)b; return x > 0 ? x : (x != x ? x : a * CYR_EXPM1_(x)); }
CYR_SPF double cyr_elu_grad_d(double x, double a, double b) { (void)b; return x > 0 ? 1.0 : (x != x ? x : a * CYR_EXP_(x)); }
CYR_SPF double cyr_celu_fwd_d(double x, double a, double b) { (void)b; return x > 0 ? x : (x != x ? x : a * CYR_EXPM1_(x / a)); }
CYR_SPF double cyr_celu_grad_d(double x, double a, double b) { (void)b; return x > 0 ? 1.0 : (x != x ? x : CYR_EXP_(x / a)); }
CYR_SPF double cyr_selu_fwd_d(double x, double a, double b) { (void)a; (void)b; return CYR_SELU_SCALE * cyr_elu_fwd_d(x, CYR_SELU_ALPHA, 0); }
CYR_SPF double cyr_selu_grad_d(double x, double a, double b) { (void)a; (void)b; return CYR_SELU_SCALE * cyr_elu_grad_d(x, CYR_SELU_ALPHA, 0); }
CYR_SPF double cyr_sigmoid_d_(double x) { const double t = CYR_EXP_(-CYR_FABS_(x)); return x >= 0 ? 1.0 / (1.0 + t) : t / (1.0 + t); }
CYR_SPF double cyr_silu_fwd_d(double x, double a, double b) { (void)a; (void)b; return x == -1.0 / 0.0 ? 0.0 : x * cyr_sigmoid_d_(x); }
CYR_SPF double cyr_silu_grad_d(double x, double a, double b) { (void)a; (void)b; const double s = cyr_sigmoid_d_(x), r = cyr_sigmoid_d_(-x); return (x == -1.0/0.0 || x == 1.0/0.0) ? (x > 0 ? 1.0 : 0.0) : s * (1.0 + x * r); }
CYR_SPF double cyr_softplus_fwd_d(double x, double a, double b) { const double z = x * a; return z > b ? x : ((z > 0 ? z : 0.0) + CYR_LOG1P_(CYR_EXP_(-CYR_FABS_(z)))) / a; }
CYR_SPF double cyr_softplus_grad_d(double x, double a, double b) { const double z = x * a; return z > b ? 1.0 : (z != z ? z : cyr_sigmoid_d_(z)); }
CYR_SPF double cyr_gelu_fwd_d(double x, double a, double b) {
    (void)b;
    if (x == -1.0 / 0.0) return 0.0;
    if (a == 0) return 0.5 * x * CYR_ERFC_(-x * 0.70710678118654752440);
    return x * cyr_sigmoid_d_(2.0 * 0.79788456080286535588 * (x + 0.044715 * x * x * x));
}
CYR_SPF double cyr_gelu_grad_d(double x, double a, double b) {
    (void)b;
    if (x != x) return x;
    if (x == -1.0 / 0.0) return 0.0;
    if (x == 1.0 / 0.0) return 1.0;
    if (a == 0) return 0.5 * CYR_ERFC_(-x * 0.70710678118654752440) + x * 0.39894228040143267794 * CYR_EXP_(-0.5 * x * x);
    {
        const double k = 0.79788456080286535588, u = 2.0 * k * (x + 0.044715 * x * x * x);
        const double s = cyr_sigmoid_d_(u), r = cyr_sigmoid_d_(-u);
        return s + x * 2.0 * s * r * k * (1.0 + 3.0 * 0.044715 * x * x);
    }
}
CYR_SPF double cyr_mish_fwd_d(double x, double a, double b) {
    (void)a; (void)b;
    if (x == -1.0 / 0.0) return 0.0;
    { const double u = CYR_EXP_(x < 40.0 ? x : 40.0), n = u * (u + 2.0); return x * (n / (n + 2.0)); }
}
CYR_SPF double cyr_mish_grad_d(double x, double a, double b) {
    (void)a; (void)b;
    if (x != x) return x;
    if (x == -1.0 / 0.0) return 0.0;
    if (x == 1.0 / 0.0) return 1.0;
    { const double u = CYR_EXP_(x < 40.0 ? x : 40.0), n = u * (u + 2.0), d = n + 2.0;
      return n / d + 4.0 * x * u * (u + 1.0) / (d * d); }
}
#define CYR_SP_F_(name)                                                                    \
    CYR_SPF float cyr_##name##_fwd_f(float x, float a, float b) {                          \
        return (float)cyr_##name##_fwd_d(x, a, b);                                         \
    }                                                                                      \
    CYR_SPF float cyr_##name##_grad_f(float x, float a, float b) {                         \
        return (float)cyr_##name##_grad_d(x, a, b);                                        \
    }
CYR_SP_F_(elu)
CYR_SP_F_(celu)
CYR_SP_F_(selu)
CYR_SP_F_(silu)
CYR_SP_F_(softplus)
CYR_SP_F_(gelu)
CYR_SP_F_(mish)
#undef CYR_SP_F_
#endif
