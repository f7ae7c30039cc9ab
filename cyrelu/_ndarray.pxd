# Checks on ndarrays at C speed, shared by the compiled modules' fast entries (the
# common case: exact ndarrays, C-contiguous, aligned, native byte order); anything else
# takes the Python wrapper's general path.

cimport numpy as cnp


cdef inline bint plain_array(object a, int typenum, bint float16_ok) noexcept:
    """An exact ndarray of `typenum` (or, with typenum < 0, float32 or float64, and
    float16 too where float16_ok), C-contiguous, aligned, native byte order."""
    cdef cnp.ndarray arr
    cdef int t
    if type(a) is not cnp.ndarray:
        return False
    arr = <cnp.ndarray>a
    t = cnp.PyArray_TYPE(arr)
    if typenum >= 0:
        if t != typenum:
            return False
    elif t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64 and not (
            float16_ok and t == cnp.NPY_FLOAT16):
        return False
    return (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)
            and cnp.PyArray_ISNOTSWAPPED(arr))


cdef inline bint same_shape(cnp.ndarray a, cnp.ndarray b) noexcept:
    cdef int d, nd = cnp.PyArray_NDIM(a)
    if cnp.PyArray_NDIM(b) != nd:
        return False
    for d in range(nd):
        if cnp.PyArray_DIM(a, d) != cnp.PyArray_DIM(b, d):
            return False
    return True


cdef inline bint disjoint(cnp.ndarray a, cnp.ndarray b) noexcept:
    """The two arrays' memory does not overlap (C-contiguous arrays)."""
    cdef char *pa = <char *>cnp.PyArray_DATA(a)
    cdef char *pb = <char *>cnp.PyArray_DATA(b)
    return pa + cnp.PyArray_NBYTES(a) <= pb or pb + cnp.PyArray_NBYTES(b) <= pa


cdef inline bint disjoint_or_same(cnp.ndarray a, cnp.ndarray b) noexcept:
    """Two C-contiguous arrays of one shape: either the very same memory or no overlap."""
    return cnp.PyArray_DATA(a) == cnp.PyArray_DATA(b) or disjoint(a, b)
