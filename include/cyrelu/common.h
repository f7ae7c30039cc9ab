/* Shared definitions for cyrelu's C kernels.
 *
 * Kernels are `static inline` functions on `restrict` pointers with plain loops
 * that gcc, clang and MSVC vectorise.  Indices are Py_ssize_t, so arrays of more
 * than 2**31 elements work.  This header is included from Cython-generated C,
 * after Python.h, which defines Py_ssize_t.
 */
#ifndef CYRELU_COMMON_H
#define CYRELU_COMMON_H

#include <Python.h>
#include <stddef.h>

#if defined(_MSC_VER)
#  define CYR_RESTRICT __restrict
#else
#  define CYR_RESTRICT __restrict__
#endif

#define CYR_INLINE static inline

/* Glue a type suffix onto a name: CYR_NAME(relu, f32) -> cyr_relu_f32. */
#define CYR_CAT2(a, b) cyr_##a##_##b
#define CYR_CAT(a, b) CYR_CAT2(a, b)
#define CYR_NAME(name) CYR_CAT(name, CYR_SUFFIX)

#endif /* CYRELU_COMMON_H */
