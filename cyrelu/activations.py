"""The activations, forward and backward: the public functions.

Each function validates once, then calls the Cython entry points in
``cyrelu._activations``.  Semantics are PyTorch's (see the README):

====================  ============================  ========================================
function              result                        special values
====================  ============================  ========================================
relu                  x if x > 0 else 0             NaN -> NaN, -0.0 -> -0.0, -inf -> 0
leaky_relu            x if x > 0 else alpha*x       NaN -> NaN, any alpha (also > 1, < 0)
relu_backward         g if x > 0 else 0             0 at x == 0; g where x is NaN
leaky_relu_backward   g if x > 0 else alpha*g       alpha*g at x == 0 and where x is NaN
relu6                 min(max(x, 0), 6)             NaN -> NaN, -0.0 -> -0.0
relu6_backward        g if 0 < x < 6 else 0         0 at x == 0 and x == 6; g where x is NaN
hardtanh              min(max(x, lo), hi)           NaN -> NaN, -0.0 kept
hardtanh_backward     g if lo < x < hi else 0       0 at the bounds; g where x is NaN
hardsigmoid           min(max(x + 3, 0), 6) / 6     NaN -> NaN
hardsigmoid_backward  g / 6 if -3 < x < 3 else 0    0 at x == +-3 and where x is NaN
hardswish             x * hardsigmoid(x)            NaN -> NaN, -inf -> -0.0, +inf -> inf
hardswish_backward    g * (x / 3 + 0.5) on (-3, 3)  0 at x <= -3, g at x >= 3; NaN -> NaN
prelu                 x if x > 0 else w[c] * x      NaN -> NaN; w: 1 or C values (axis)
prelu_backward        g if x > 0 else w[c] * g      w*g at x == 0 and where x is NaN
====================  ============================  ========================================

Which activations exist, their codes and parameters come from the activation table
(``cyrelu/_activation_table.py``, ``cyrelu/cuda/activation_table.h``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np

from cyrelu import _activations as _k, _prelu as _p
from cyrelu._activation_table import (
    CODES as _CODES,
    kernel_scalars as _kernel_scalars,
)
from cyrelu._backend import backend_for
from cyrelu._layout import coalesce, prelu_box
from cyrelu._validation import (
    as_float_array,
    check_out,
    check_same,
    may_overlap_partly,
    prelu_weight,
)

if TYPE_CHECKING:  # numpy.typing is not imported at run time (import cost)
    from numpy.typing import ArrayLike, NDArray

    # NumPy input gives an ndarray; a GPU library's array gives that library's
    # array type (cyrelu/_backend.py), which the annotations do not spell out.
    FloatArray = NDArray[np.floating[Any]]

__all__ = [
    "relu",
    "leaky_relu",
    "relu_backward",
    "leaky_relu_backward",
    "relu6",
    "relu6_backward",
    "hardsigmoid",
    "hardsigmoid_backward",
    "hardswish",
    "hardswish_backward",
    "hardtanh",
    "hardtanh_backward",
    "elu",
    "elu_backward",
    "celu",
    "celu_backward",
    "selu",
    "selu_backward",
    "silu",
    "silu_backward",
    "softplus",
    "softplus_backward",
    "gelu",
    "gelu_backward",
    "mish",
    "mish_backward",
    "prelu",
    "prelu_backward",
]

# The activations without a parameter, or whose parameters are of the table's kind
# "real", try the kernels' fast entry first, with their parameters as given (it takes
# finite floats, and leaves anything else to _forward / _backward, which check them):
# a call on a small array then costs a few tenths of a microsecond.  The other kinds
# have rules of their own (rounding for "bound", 0 refused for "nonzero", a string for
# "approximate"), applied first.
_RELU = _CODES["relu"]
_LEAKY_RELU = _CODES["leaky_relu"]
_RELU6 = _CODES["relu6"]
_HARDSIGMOID = _CODES["hardsigmoid"]
_HARDSWISH = _CODES["hardswish"]
_ELU = _CODES["elu"]
_SELU = _CODES["selu"]
_SILU = _CODES["silu"]
_MISH = _CODES["mish"]
# hardtanh, celu, softplus and gelu take the fast entry too where their own rule is met
# by a plain float or int (not bool): ordered bounds and data other than float16 (whose
# bounds are rounded first), an alpha or beta other than 0, approximate "none" or
# "tanh" (the kernels' a: 0 or 1).  Anything else (NaN or infinite values included,
# which the fast entry refuses) goes through _forward / _backward's checks.
_HARDTANH = _CODES["hardtanh"]
_CELU = _CODES["celu"]
_SOFTPLUS = _CODES["softplus"]
_GELU = _CODES["gelu"]
_PLAIN = (float, int)
_GELU_FORMS = {"none": 0.0, "tanh": 1.0}


def _ordered_bounds(x: object, lo: object, hi: object) -> bool:
    """hardtanh's fast-entry rule: plain bounds, lo <= hi, a float32/float64 ndarray."""
    return (
        type(lo) in _PLAIN
        and type(hi) in _PLAIN
        and lo <= hi  # type: ignore[operator]
        and type(x) is np.ndarray
        and x.dtype.char != "e"
    )


def _forward(
    name: str, x: ArrayLike, out: FloatArray | None, num_threads: int | None, *params: object
) -> FloatArray:
    """Every activation's forward, ``name(x, *params, out=out, num_threads=num_threads)``:
    the parameters checked by the table's rules (for ``x``'s dtype; None is no number),
    then the kernels' fast entry for the common case (an exact, contiguous, aligned
    ndarray), else the array's backend (CuPy, Dask), else the general path (any layout,
    overlap, array_like input)."""
    a, b = _kernel_scalars(name, getattr(x, "dtype", None), *params)
    code = _CODES[name]
    y = _k.unary_fast(code, x, out, a, num_threads, b)
    if y is not None:
        return y
    be = backend_for(x, out)
    if be is not None:
        return cast("FloatArray", getattr(be, name)(x, *params, out=out, num_threads=num_threads))
    return _unary(code, x, out, a, num_threads, b)


def _backward(
    name: str,
    grad_output: ArrayLike,
    x: ArrayLike,
    out: FloatArray | None,
    num_threads: int | None,
    *params: object,
) -> FloatArray:
    """Every activation's backward, ``name_backward(grad_output, x, *params, ...)``, by
    the same steps as :func:`_forward`."""
    a, b = _kernel_scalars(name, getattr(x, "dtype", None), *params)
    code = _CODES[name]
    y = _k.binary_fast(code, grad_output, x, out, a, num_threads, b)
    if y is not None:
        return y
    be = backend_for(grad_output, x, out)
    if be is not None:
        return cast(
            "FloatArray",
            getattr(be, name + "_backward")(
                grad_output, x, *params, out=out, num_threads=num_threads
            ),
        )
    return _binary(code, grad_output, x, out, a, num_threads, b)


def relu(
    x: ArrayLike, /, out: FloatArray | None = None, *, num_threads: int | None = None
) -> FloatArray:
    """Rectified linear unit, ``max(x, 0)`` with PyTorch's semantics.

    Parameters
    ----------
    x : array_like of float16, float32 or float64
        Any shape and memory layout.  Other dtypes raise TypeError.
    out : ndarray, optional
        Writable array of exactly ``x``'s shape and dtype; ``out=x`` works in place.
    num_threads : int, optional
        Threads to use; None means OpenMP's default (``OMP_NUM_THREADS``,
        threadpoolctl limits).  Small arrays always run on the calling thread.

    Returns
    -------
    ndarray
        ``out`` if given, else a new array.  ``x`` where ``x > 0``, else 0;
        NaN stays NaN, +inf stays +inf, -inf and -0.0... see the module table.
    """
    y = _k.unary_fast(_RELU, x, out, 0.0, num_threads)
    return y if y is not None else _forward("relu", x, out, num_threads)


def leaky_relu(
    x: ArrayLike,
    /,
    alpha: float = 0.2,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Leaky ReLU: ``x`` where ``x > 0``, else ``alpha * x`` (PyTorch's semantics).

    ``alpha`` may be any finite real, including ``alpha > 1`` and ``alpha < 0``
    (unlike the textbook ``max(alpha*x, x)``, which is wrong for ``alpha > 1``).
    The default 0.2 is TensorFlow's; PyTorch and ONNX default to 0.01.
    NaN stays NaN.  ``x``, ``out`` and ``num_threads`` are as for :func:`relu`.
    For float32 input, alpha is rounded to float32 (as PyTorch does).
    """
    y = _k.unary_fast(_LEAKY_RELU, x, out, alpha, num_threads)
    return y if y is not None else _forward("leaky_relu", x, out, num_threads, alpha)


def relu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`relu`: ``grad_output`` where ``x > 0``, else 0.

    The gradient at exactly ``x == 0`` is 0; where ``x`` is NaN the gradient
    passes through (PyTorch's ``threshold_backward``).  Passing the forward's
    output instead of ``x`` gives the same result.  ``grad_output`` and ``x``
    must have the same shape and dtype (no broadcasting).
    """
    y = _k.binary_fast(_RELU, grad_output, x, out, 0.0, num_threads)
    return y if y is not None else _backward("relu", grad_output, x, out, num_threads)


def leaky_relu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    alpha: float = 0.2,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`leaky_relu`: ``grad_output`` where ``x > 0``, else
    ``alpha * grad_output``.

    At ``x == 0`` and where ``x`` is NaN the result is ``alpha * grad_output``
    (PyTorch's ``leaky_relu_backward``).  For ``alpha > 0`` the forward's output
    can stand in for ``x``.
    """
    y = _k.binary_fast(_LEAKY_RELU, grad_output, x, out, alpha, num_threads)
    return y if y is not None else _backward("leaky_relu", grad_output, x, out, num_threads, alpha)


def relu6(
    x: ArrayLike, /, out: FloatArray | None = None, *, num_threads: int | None = None
) -> FloatArray:
    """ReLU6, ``min(max(x, 0), 6)`` with PyTorch's semantics (``torch.nn.functional.relu6``).

    NaN stays NaN and -0.0 stays -0.0 (as torch's ``hardtanh(x, 0, 6)``); -inf gives 0,
    +inf gives 6.  ``x``, ``out`` and ``num_threads`` are as for :func:`relu`.
    """
    y = _k.unary_fast(_RELU6, x, out, 0.0, num_threads)
    return y if y is not None else _forward("relu6", x, out, num_threads)


def relu6_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`relu6`: ``grad_output`` where ``0 < x < 6``, else 0.

    The gradient is 0 at exactly ``x == 0`` and ``x == 6`` (PyTorch's
    ``hardtanh_backward``); where ``x`` is NaN it passes through (PyTorch's scalar code
    does so; its vectorised code gives 0 there, so torch itself depends on the position).
    Passing the forward's output instead of ``x`` gives the same result.
    """
    y = _k.binary_fast(_RELU6, grad_output, x, out, 0.0, num_threads)
    return y if y is not None else _backward("relu6", grad_output, x, out, num_threads)


def hardsigmoid(
    x: ArrayLike, /, out: FloatArray | None = None, *, num_threads: int | None = None
) -> FloatArray:
    """Hard sigmoid, ``min(max(x + 3, 0), 6) / 6`` (``torch.nn.functional.hardsigmoid``).

    Bit for bit PyTorch's: 0 at ``x <= -3``, 1 at ``x >= 3``, ``(x + 3) / 6`` between,
    each rounded once; NaN stays NaN.  ``x``, ``out`` and ``num_threads`` are as for
    :func:`relu`.
    """
    y = _k.unary_fast(_HARDSIGMOID, x, out, 0.0, num_threads)
    return y if y is not None else _forward("hardsigmoid", x, out, num_threads)


def hardsigmoid_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`hardsigmoid`: ``grad_output / 6`` where ``-3 < x < 3``, else 0.

    0 at exactly ``x == -3`` and ``x == 3`` and where ``x`` is NaN (PyTorch's
    ``hardsigmoid_backward``).  The factor is 1/6 rounded to ``x``'s type; PyTorch's
    float64 kernel multiplies by float32's 1/6 instead (3e-8 relative off).
    """
    y = _k.binary_fast(_HARDSIGMOID, grad_output, x, out, 0.0, num_threads)
    return y if y is not None else _backward("hardsigmoid", grad_output, x, out, num_threads)


def hardswish(
    x: ArrayLike, /, out: FloatArray | None = None, *, num_threads: int | None = None
) -> FloatArray:
    """Hard swish, ``x * min(max(x + 3, 0), 6) / 6`` (``torch.nn.functional.hardswish``).

    -0.0 at ``x <= -3``, ``x`` itself at ``x >= 3``, ``x * (x + 3) / 6`` between (each
    operation rounded once, PyTorch's bits).  Two deliberate differences from
    PyTorch, which evaluates ``x * 6 / 6`` above 3: there its result can be one ulp
    off ``x`` and overflows to inf beyond about 5.7e37 in float32, and ``-inf`` gives
    NaN; here ``x >= 3`` gives ``x`` exactly and ``-inf`` gives -0.0.  NaN stays NaN.
    ``x``, ``out`` and ``num_threads`` are as for :func:`relu`.
    """
    y = _k.unary_fast(_HARDSWISH, x, out, 0.0, num_threads)
    return y if y is not None else _forward("hardswish", x, out, num_threads)


def hardswish_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`hardswish`: 0 at ``x <= -3``, ``grad_output`` at ``x >= 3``,
    ``grad_output * (x / 3 + 0.5)`` between (PyTorch's ``hardswish_backward``, bit for
    bit, including 0 at -3 and ``g`` at 3).  NaN in ``x`` gives NaN (PyTorch's float16
    kernel gives ``g`` there).
    """
    y = _k.binary_fast(_HARDSWISH, grad_output, x, out, 0.0, num_threads)
    return y if y is not None else _backward("hardswish", grad_output, x, out, num_threads)


def hardtanh(
    x: ArrayLike,
    /,
    min_val: float = -1.0,
    max_val: float = 1.0,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Hard tanh, ``min(max(x, min_val), max_val)`` (``torch.nn.functional.hardtanh``).

    Bit for bit PyTorch's: NaN stays NaN and -0.0 stays -0.0; the bounds are rounded to
    the input's type (float16 bounds beyond 65504 become +-inf, where torch raises).
    ``min_val > max_val`` and non-finite bounds are a ValueError.  ``x``, ``out`` and
    ``num_threads`` are as for :func:`relu`.
    """
    if _ordered_bounds(x, min_val, max_val):
        y = _k.unary_fast(_HARDTANH, x, out, min_val, num_threads, max_val)
        if y is not None:
            return y
    return _forward("hardtanh", x, out, num_threads, min_val, max_val)


def hardtanh_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    min_val: float = -1.0,
    max_val: float = 1.0,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`hardtanh`: ``grad_output`` where ``min_val < x < max_val``, else 0.

    0 at exactly the bounds (PyTorch's ``hardtanh_backward``); where ``x`` is NaN the
    gradient passes through (PyTorch's scalar code; see :func:`relu6_backward`).  The
    forward's output can stand in for ``x``.
    """
    if _ordered_bounds(x, min_val, max_val):
        y = _k.binary_fast(_HARDTANH, grad_output, x, out, min_val, num_threads, max_val)
        if y is not None:
            return y
    return _backward("hardtanh", grad_output, x, out, num_threads, min_val, max_val)


# ---- the smooth members: each value within a few ulp (activation_special.h) ----


def elu(
    x: ArrayLike,
    /,
    alpha: float = 1.0,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """ELU, ``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)`` (``torch.nn.functional.elu``).

    Computed as ``alpha * expm1(x)``, within a few ulp of the exact value (see
    the Semantics page).  ``-inf`` gives ``-alpha``, NaN stays NaN.  ``alpha`` is any
    finite real (ValueError otherwise).  ``x``, ``out`` and ``num_threads`` are as for
    :func:`relu`.
    """
    y = _k.unary_fast(_ELU, x, out, alpha, num_threads)
    return y if y is not None else _forward("elu", x, out, num_threads, alpha)


def elu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    alpha: float = 1.0,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`elu`: ``grad_output`` where ``x > 0``, else
    ``grad_output * alpha * exp(x)`` (``alpha * grad_output`` at ``x == 0``, as torch).

    The gradient with respect to ``x``; ``grad_output``, ``x``, ``out`` and
    ``num_threads`` are as for :func:`relu_backward`.
    """
    y = _k.binary_fast(_ELU, grad_output, x, out, alpha, num_threads)
    return y if y is not None else _backward("elu", grad_output, x, out, num_threads, alpha)


def celu(
    x: ArrayLike,
    /,
    alpha: float = 1.0,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """CELU, ``x`` where ``x > 0``, else ``alpha * (exp(x / alpha) - 1)``
    (``torch.nn.functional.celu``).

    ``alpha`` is a finite real other than 0 (ValueError otherwise, as torch); ``-inf``
    gives ``-alpha`` for ``alpha > 0``.  ``x``, ``out`` and ``num_threads`` are as for
    :func:`relu`.
    """
    if type(alpha) in _PLAIN and alpha != 0:
        y = _k.unary_fast(_CELU, x, out, alpha, num_threads)
        if y is not None:
            return y
    return _forward("celu", x, out, num_threads, alpha)


def celu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    alpha: float = 1.0,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`celu`: ``grad_output`` where ``x > 0``, else
    ``grad_output * exp(x / alpha)`` (``grad_output`` at ``x == 0``, as torch).

    The gradient with respect to ``x``; ``grad_output``, ``x``, ``out`` and
    ``num_threads`` are as for :func:`relu_backward`.
    """
    if type(alpha) in _PLAIN and alpha != 0:
        y = _k.binary_fast(_CELU, grad_output, x, out, alpha, num_threads)
        if y is not None:
            return y
    return _backward("celu", grad_output, x, out, num_threads, alpha)


def selu(
    x: ArrayLike,
    /,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """SELU, ``scale * elu(x, alpha)`` with torch's constants ``alpha = 1.6732632423543772``
    and ``scale = 1.0507009873554805`` (``torch.nn.functional.selu``).

    ``x``, ``out`` and ``num_threads`` are as for :func:`relu`.
    """
    y = _k.unary_fast(_SELU, x, out, 0.0, num_threads)
    return y if y is not None else _forward("selu", x, out, num_threads)


def selu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`selu`: ``scale * grad_output`` where ``x > 0``, else
    ``grad_output * scale * alpha * exp(x)`` (the negative branch at ``x == 0``, as torch).

    The gradient with respect to ``x``; ``grad_output``, ``x``, ``out`` and
    ``num_threads`` are as for :func:`relu_backward`.
    """
    y = _k.binary_fast(_SELU, grad_output, x, out, 0.0, num_threads)
    return y if y is not None else _backward("selu", grad_output, x, out, num_threads)


def silu(
    x: ArrayLike,
    /,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """SiLU (swish), ``x * sigmoid(x)`` (``torch.nn.functional.silu``).

    Within a few ulp of the exact value over the whole range.  ``-inf`` gives 0 (torch:
    NaN), ``+inf`` gives ``+inf``, NaN stays NaN.  ``x``, ``out`` and ``num_threads``
    are as for :func:`relu`.
    """
    y = _k.unary_fast(_SILU, x, out, 0.0, num_threads)
    return y if y is not None else _forward("silu", x, out, num_threads)


def silu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`silu`: ``grad_output * sigmoid(x) * (1 + x * (1 - sigmoid(x)))``,
    with ``1 - sigmoid(x)`` computed as ``sigmoid(-x)`` (no cancellation); 0 at ``-inf``,
    1 at ``+inf``.

    The gradient with respect to ``x``; ``grad_output``, ``x``, ``out`` and
    ``num_threads`` are as for :func:`relu_backward`.
    """
    y = _k.binary_fast(_SILU, grad_output, x, out, 0.0, num_threads)
    return y if y is not None else _backward("silu", grad_output, x, out, num_threads)


def softplus(
    x: ArrayLike,
    /,
    beta: float = 1.0,
    threshold: float = 20.0,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Softplus, ``log(1 + exp(beta * x)) / beta``, and ``x`` where ``beta * x > threshold``
    (``torch.nn.functional.softplus``).

    Computed as ``(max(z, 0) + log1p(exp(-|z|))) / beta`` with ``z = beta * x``, within
    a few ulp of the exact value.  ``beta`` is a finite real other than 0 and
    ``threshold`` a finite real (ValueError otherwise).  ``x``, ``out`` and
    ``num_threads`` are as for :func:`relu`.
    """
    if type(beta) in _PLAIN and beta != 0 and type(threshold) in _PLAIN:
        y = _k.unary_fast(_SOFTPLUS, x, out, beta, num_threads, threshold)
        if y is not None:
            return y
    return _forward("softplus", x, out, num_threads, beta, threshold)


def softplus_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    beta: float = 1.0,
    threshold: float = 20.0,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`softplus`: ``grad_output * sigmoid(beta * x)``, and
    ``grad_output`` where ``beta * x > threshold`` (torch's).

    The gradient with respect to ``x``; ``grad_output``, ``x``, ``out`` and
    ``num_threads`` are as for :func:`relu_backward`.
    """
    if type(beta) in _PLAIN and beta != 0 and type(threshold) in _PLAIN:
        y = _k.binary_fast(_SOFTPLUS, grad_output, x, out, beta, num_threads, threshold)
        if y is not None:
            return y
    return _backward("softplus", grad_output, x, out, num_threads, beta, threshold)


def gelu(
    x: ArrayLike,
    /,
    approximate: str = "none",
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """GELU, ``x * Phi(x)`` (``approximate="none"``, the erf form) or
    ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))`` (``"tanh"``)
    (``torch.nn.functional.gelu``).

    Computed without cancellation (``0.5 * x * erfc(-x / sqrt(2))``, and ``x *
    sigmoid(2 * u)`` for the tanh form), so the far negative tail keeps its relative
    accuracy: ``gelu(-11.5)`` is about ``-1e-29`` where torch's float32 gives 0.  ``-inf``
    gives 0 (torch: NaN).  Another ``approximate`` is a ValueError.  ``x``, ``out`` and
    ``num_threads`` are as for :func:`relu`.
    """
    form = _GELU_FORMS.get(approximate) if type(approximate) is str else None
    if form is not None:
        y = _k.unary_fast(_GELU, x, out, form, num_threads)
        if y is not None:
            return y
    return _forward("gelu", x, out, num_threads, approximate)


def gelu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    approximate: str = "none",
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`gelu`: ``grad_output * (Phi(x) + x * phi(x))`` for the erf form,
    the derivative of the tanh form for ``"tanh"``; 0 at ``-inf``, 1 at ``+inf``.

    The gradient with respect to ``x``; ``grad_output``, ``x``, ``out`` and
    ``num_threads`` are as for :func:`relu_backward`.
    """
    form = _GELU_FORMS.get(approximate) if type(approximate) is str else None
    if form is not None:
        y = _k.binary_fast(_GELU, grad_output, x, out, form, num_threads)
        if y is not None:
            return y
    return _backward("gelu", grad_output, x, out, num_threads, approximate)


def mish(
    x: ArrayLike,
    /,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Mish, ``x * tanh(softplus(x))`` (``torch.nn.functional.mish``).

    Computed as ``x * n / (n + 2)`` with ``n = e**x * (e**x + 2)``, within a few ulp of
    the exact value.  ``-inf`` gives 0 (torch: NaN).  ``x``, ``out`` and ``num_threads``
    are as for :func:`relu`.
    """
    y = _k.unary_fast(_MISH, x, out, 0.0, num_threads)
    return y if y is not None else _forward("mish", x, out, num_threads)


def mish_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    out: FloatArray | None = None,
    *,
    num_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`mish`; 0 at ``-inf``, 1 at ``+inf``.

    The gradient with respect to ``x``; ``grad_output``, ``x``, ``out`` and
    ``num_threads`` are as for :func:`relu_backward`.
    """
    y = _k.binary_fast(_MISH, grad_output, x, out, 0.0, num_threads)
    return y if y is not None else _backward("mish", grad_output, x, out, num_threads)


# ---- shared machinery --------------------------------------------------------------


def _same_flat_layout(*arrays: FloatArray) -> bool:
    """Every array contiguous, all in the same order (so one 1-D loop over memory works)."""
    if all(a.flags.c_contiguous for a in arrays):
        return True
    return all(a.flags.f_contiguous for a in arrays)


def _usable(a: FloatArray) -> FloatArray:
    """An input the kernels can read directly (aligned); else an aligned copy."""
    return a if a.flags.aligned else a.copy()


def _unary(
    op: int,
    x_in: ArrayLike,
    out: FloatArray | None,
    alpha: float,
    num_threads: int | None,
    beta: float = 0.0,
) -> FloatArray:
    x = as_float_array(x_in, "x")
    if out is None:
        out = np.empty_like(x)
    else:
        check_out(out, x.shape, x.dtype)
    if x.size == 0:
        return out
    if may_overlap_partly(out, x):
        x = x.copy()
    x = _usable(x)
    target = out if out.flags.aligned else np.empty_like(x)
    if _same_flat_layout(x, target):
        _k.unary_flat(op, x, target, alpha, num_threads, beta)
    else:
        shape, strides = coalesce(x.shape, target.strides, x.strides)
        _k.unary_strided(op, x, target, shape, (strides[1], strides[0]), alpha, num_threads, beta)
    if target is not out:
        np.copyto(out, target)
    return out


def _binary(
    op: int,
    grad_output: ArrayLike,
    x_in: ArrayLike,
    out: FloatArray | None,
    alpha: float,
    num_threads: int | None,
    beta: float = 0.0,
) -> FloatArray:
    g = as_float_array(grad_output, "grad_output")
    x = as_float_array(x_in, "x")
    check_same("grad_output", g, "x", x)
    if out is None:
        out = np.empty_like(x)
    else:
        check_out(out, x.shape, x.dtype)
    if x.size == 0:
        return out
    if may_overlap_partly(out, g):
        g = g.copy()
    if may_overlap_partly(out, x):
        x = x.copy()
    g, x = _usable(g), _usable(x)
    target = out if out.flags.aligned else np.empty_like(x)
    if _same_flat_layout(g, x, target):
        _k.binary_flat(op, g, x, target, alpha, num_threads, beta)
    else:
        shape, strides = coalesce(x.shape, target.strides, g.strides, x.strides)
        _k.binary_strided(
            op, g, x, target, shape, (strides[1], strides[2], strides[0]), alpha, num_threads, beta
        )
    if target is not out:
        np.copyto(out, target)
    return out


# ---- prelu: a learnable weight per channel -------------------------------------------


def _prelu_kernel_weight(w: FloatArray, dtype: np.dtype[Any]) -> FloatArray:
    """The weight as the kernels read it: a new contiguous 1-D array (never sharing memory
    with an output) in the arithmetic's type (float32 for float16 data, exact)."""
    return np.array(w.reshape(-1), dtype=np.float32 if dtype == np.float16 else dtype)


def _contiguous_alike(*arrays: FloatArray) -> tuple[FloatArray, ...]:
    """The arrays as they are when all are contiguous in one order; else C-contiguous
    copies of the inputs (all but the last) and a new C-contiguous last (the output)."""
    if _same_flat_layout(*arrays):
        return arrays
    *inputs, target = arrays
    return (*(np.ascontiguousarray(a) for a in inputs), np.empty(target.shape, target.dtype))


def prelu(
    x: ArrayLike,
    weight: ArrayLike,
    /,
    *,
    axis: int = 1,
    out: FloatArray | None = None,
    num_threads: int | None = None,
) -> FloatArray:
    """Parametric ReLU: ``x`` where ``x > 0``, else ``weight[c] * x`` with ``c`` the
    element's channel (``torch.nn.functional.prelu``, bit for bit).

    Parameters
    ----------
    x : array_like of float16, float32 or float64
        Any shape and memory layout.
    weight : array_like
        1-D (or 0-d) of ``x``'s dtype (TypeError otherwise, naming both): one value for
        every element, or one per channel, C = ``x.shape[axis]``.  A 0-d or 1-D ``x`` has
        a single channel, as in torch.  Any value (also > 1, < 0, NaN) is used as given.
    axis : int, optional
        The channel axis (default 1, PyTorch's NCHW); negative counts from the end.
    out : ndarray, optional
        Writable array of exactly ``x``'s shape and dtype; ``out=x`` works in place.
    num_threads : int, optional
        As for :func:`relu`; the result is the same for any thread count.

    Returns
    -------
    ndarray
        ``out`` if given, else a new array.  NaN stays NaN; float16 computes
        ``weight * x`` in float32 and rounds once, as PyTorch does.
    """
    y = _p.forward_fast(x, weight, out, axis, num_threads)
    if y is not None:
        return y
    be = backend_for(x, weight, out)
    if be is not None:
        return cast("FloatArray", be.prelu(x, weight, axis=axis, out=out, num_threads=num_threads))
    xa = as_float_array(x, "x")
    w, ax = prelu_weight(weight, xa, axis)
    if out is None:
        out = np.empty_like(xa)
    else:
        check_out(out, xa.shape, xa.dtype)
    wk = _prelu_kernel_weight(w, xa.dtype)
    if xa.size == 0:
        return out
    if may_overlap_partly(out, xa):
        xa = xa.copy()
    xa = _usable(xa)
    target = out if out.flags.aligned else np.empty_like(xa)
    xs, ts = _contiguous_alike(xa, target)
    _, C, inner = prelu_box(xs.shape, xs.flags.c_contiguous, ax, wk.size)
    _p.forward(xs, ts, C, inner, wk, num_threads)
    if ts is not out:
        np.copyto(out, ts)
    return out


def prelu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    /,
    *,
    axis: int = 1,
    out: FloatArray | None = None,
    num_threads: int | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Gradients of :func:`prelu`: ``(grad_input, grad_weight)``.

    ``grad_input`` is ``grad_output`` where ``x > 0``, else ``weight[c] * grad_output``
    (so ``weight * g`` at ``x == 0`` and where ``x`` is NaN: PyTorch's, bit for bit);
    it is written to ``out`` when given (``out`` may be ``grad_output`` or ``x``).
    ``grad_weight`` has ``weight``'s shape and dtype: the sum, over each channel's
    elements, of ``x * grad_output`` where ``x <= 0`` (NaN where ``x`` is NaN),
    accumulated in float64 in an order fixed by the shape (the same bits for any
    thread count) and rounded once.  ``grad_output`` and ``x`` must have the same
    shape and dtype; ``weight`` and ``axis`` are as for :func:`prelu`.
    """
    be = backend_for(grad_output, x, weight, out)
    if be is not None:
        return cast(
            "tuple[FloatArray, FloatArray]",
            be.prelu_backward(grad_output, x, weight, axis=axis, out=out, num_threads=num_threads),
        )
    g = as_float_array(grad_output, "grad_output")
    xa = as_float_array(x, "x")
    check_same("grad_output", g, "x", xa)
    w, ax = prelu_weight(weight, xa, axis)
    if out is None:
        out = np.empty_like(xa)
    else:
        check_out(out, xa.shape, xa.dtype)
    wk = _prelu_kernel_weight(w, xa.dtype)
    if xa.size == 0:
        return out, np.zeros(w.shape, xa.dtype)
    if may_overlap_partly(out, g):
        g = g.copy()
    if may_overlap_partly(out, xa):
        xa = xa.copy()
    g, xa = _usable(g), _usable(xa)
    target = out if out.flags.aligned else np.empty_like(xa)
    gs, xs, ts = _contiguous_alike(g, xa, target)
    outer, C, inner = prelu_box(xs.shape, xs.flags.c_contiguous, ax, wk.size)
    if xs.dtype == np.float16:  # the sums first: out may be grad_output or x
        sums = _p.weight_sums(
            gs.astype(np.float32), xs.astype(np.float32), outer, C, inner, num_threads
        )
        _p.backward_input(gs, xs, ts, C, inner, wk, num_threads)
    else:  # one pass: both read each element before writing it
        sums = _p.backward_fused(gs, xs, ts, wk, outer, C, inner, num_threads)
    if ts is not out:
        np.copyto(out, ts)
    return out, sums.astype(xa.dtype).reshape(w.shape)
