"""Iteration layouts for the strided kernels.

``coalesce(shape, *strides)`` orders the axes so that the innermost loop runs
along the smallest stride of the first array, drops length-1 axes and merges
axes that are contiguous with each other in every array, so a strided kernel
walks memory as linearly as the arrays allow.

``prelu_box(shape, c_order, axis, nw)`` is the (outer, C, inner) view of a contiguous
array that the PReLU kernels walk (include/cyrelu/prelu.h, cyrelu/cuda/prelu.cu).
"""

import math


def coalesce(
    shape: tuple[int, ...], *strides: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """Return ``(shape, strides_per_array)`` as tuples; at least one axis."""
    axes = [d for d in range(len(shape)) if shape[d] != 1]
    if not axes:
        return (1,), tuple((0,) for _ in strides)
    # outermost first: largest |stride| of the first array (ties: keep order)
    axes.sort(key=lambda d: -abs(strides[0][d]))
    out_shape = [shape[axes[0]]]
    out_strides = [[s[axes[0]]] for s in strides]
    for d in axes[1:]:
        n = shape[d]
        if all(st[-1] == s[d] * n for st, s in zip(out_strides, strides, strict=True)):
            # the previous (outer) axis steps exactly over this one: merge them
            out_shape[-1] *= n
            for st, s in zip(out_strides, strides, strict=True):
                st[-1] = s[d]
        else:
            out_shape.append(n)
            for st, s in zip(out_strides, strides, strict=True):
                st.append(s[d])
    return tuple(out_shape), tuple(tuple(st) for st in out_strides)


def prelu_box(shape: tuple[int, ...], c_order: bool, axis: int, nw: int) -> tuple[int, int, int]:
    """(outer, C, inner) of a contiguous array of ``shape`` in its memory order (C order,
    else Fortran order) for a weight of ``nw`` values along ``axis``: C runs of ``inner``
    consecutive elements, repeated ``outer`` times; a single weight is one channel of
    every element."""
    if nw == 1:
        return 1, 1, math.prod(shape)
    dims = shape if c_order else shape[::-1]
    k = axis if c_order else len(shape) - 1 - axis
    return math.prod(dims[:k]), dims[k], math.prod(dims[k + 1 :])
