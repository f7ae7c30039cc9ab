/* Stand-in for Python.h when the kernel headers are compiled on their own (tests/c):
 * the headers need nothing from Python but Py_ssize_t, and a cross-compiler for
 * another architecture has no Python headers to find. */
#ifndef CYRELU_TEST_PYTHON_SHIM_H
#define CYRELU_TEST_PYTHON_SHIM_H
#include <stddef.h>
typedef ptrdiff_t Py_ssize_t;
#endif
