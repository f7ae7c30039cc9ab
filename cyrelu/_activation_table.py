"""The activation table for Python: codes, parameters and their checks.

Read from the compiled kernels (``cyrelu._activations.ACTIVATIONS``, built from
``cyrelu/cuda/activation_table.h``), so the Python side, the C kernels and the CUDA
kernels share one declaration of each activation.  Every consumer (the public
functions, BatchNorm's ``activation=``, the layers, the CuPy backend) looks codes and
parameter rules up here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from cyrelu import _activations as _k
from cyrelu._validation import check_bounds, check_real


def _check_nonzero(value: object, name: str) -> float:
    v = check_real(value, name)
    if v == 0.0:
        raise ValueError("%s must not be 0, got %r" % (name, value))
    return v


# gelu's approximate: the kernels' a (0: the erf form, 1: the tanh form)
_APPROXIMATE = {"none": 0.0, "tanh": 1.0}


def _check_approximate(value: object, name: str) -> float:
    if not isinstance(value, str):
        raise TypeError("%s must be 'none' or 'tanh', got %r" % (name, value))
    try:
        return _APPROXIMATE[value]
    except KeyError:
        raise ValueError("%s must be 'none' or 'tanh', got %r" % (name, value)) from None


# parameter check kinds of the table's "name=default:check" strings: "bound" is a real
# that kernel_scalars rounds to the data's type (a second bound may not be below the
# first); "nonzero" a real other than 0; "approximate" gelu's "none" or "tanh"
_CHECKS = {
    "real": check_real,
    "bound": check_real,
    "nonzero": _check_nonzero,
    "approximate": _check_approximate,
}
_F16 = np.dtype(np.float16)


class Activation(NamedTuple):
    name: str
    code: int
    # (parameter name, default, check kind); the kernels take at most two parameters
    params: tuple[tuple[str, Any, str], ...]
    # when the derivative can be computed from the output: "always", "" or "<param>>0"
    from_output: str


def _parse_params(spec: str) -> tuple[tuple[str, Any, str], ...]:
    out = []
    for item in filter(None, spec.split(",")):
        name, _, rest = item.partition("=")
        default, _, kind = rest.partition(":")
        kind = kind.strip()
        # the default as the public functions take it: a float, or a string for a choice
        value: Any = default.strip() if kind == "approximate" else float(default)
        out.append((name.strip(), value, kind))
    return tuple(out)


#: name -> Activation, in code order
TABLE: dict[str, Activation] = {
    name: Activation(name, code, _parse_params(params), from_output)
    for name, (code, params, from_output) in _k.ACTIVATIONS.items()
}
#: the code of no activation (BatchNorm's ``activation=None``)
NONE: int = _k.ACT_NONE
#: activation name (None for none) -> code
CODES: dict[str | None, int] = {None: NONE, **{a.name: a.code for a in TABLE.values()}}
#: the names, for messages
NAMES: tuple[str, ...] = tuple(TABLE)
#: the activations BatchNorm fuses into its forward (every one with at most two parameters,
#: the kernels' a and b), and into its backward too (those with at most one whose
#: derivative can be read from the output): the BatchNorm kernels are built for these
BN_FORWARD: frozenset[str] = frozenset(_k.BN_FORWARD)
BN_BACKWARD: frozenset[str] = frozenset(_k.BN_BACKWARD)


def code(activation: object) -> int:
    """The code of ``activation`` (a table name or None); ValueError for anything else."""
    try:
        return CODES[activation]  # type: ignore[index]
    except (KeyError, TypeError):
        raise ValueError(
            "activation must be None or one of %s, got %r"
            % (", ".join(repr(n) for n in NAMES), activation)
        ) from None


def scalar(name: str, value: object = None) -> float:
    """The kernels' scalar parameter of activation ``name``: ``value`` checked by the
    table's rule (the default when None); 0.0 for an activation without parameters."""
    params = TABLE[name].params
    if not params:
        return 0.0
    pname, default, kind = params[0]
    return float(_CHECKS[kind](default if value is None else value, pname))


def scalars(name: str, *values: object) -> tuple[float, float]:
    """The kernels' two scalar parameters ``(a, b)`` of activation ``name``: ``values``
    checked by the table's rules (missing ones are the defaults; None is no number, a
    TypeError); 0.0 where it has fewer."""
    params = TABLE[name].params
    out = [0.0, 0.0]
    for k, (pname, default, kind) in enumerate(params):
        value = values[k] if k < len(values) else default
        out[k] = float(_CHECKS[kind](value, pname))
    return out[0], out[1]


def kernel_scalars(name: str, dtype: Any, *values: object) -> tuple[float, float]:
    """``scalars`` for data of ``dtype``, with the rules of the "bound" kind: a second
    bound below the first is a ValueError (as torch's hardtanh), and bounds are rounded
    to float16 for float16 data, as torch does (beyond its range they become +-inf).
    What every backend passes the kernels as ``(a, b)``."""
    a, b = scalars(name, *values)
    params = TABLE[name].params
    if params and params[0][2] == "bound":
        if len(params) > 1:
            a, b = check_bounds(a, b, params[0][0], params[1][0])
        if dtype == _F16:
            with np.errstate(over="ignore"):
                a, b = float(np.float16(a)), float(np.float16(b))
    return a, b


def grad_from_output(name: str, value: float) -> bool:
    """Whether activation ``name``'s derivative can be read from its output (with its
    parameter ``value``)."""
    rule = TABLE[name].from_output
    if rule == "always":
        return True
    if rule.endswith(">0"):
        return value > 0.0
    return False
