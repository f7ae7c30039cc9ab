# Type stub for the compiled module cyrelu/_activations.pyx (internal entry points;
# the public, validated API is cyrelu.activations).
from typing import Any

import numpy as np
from numpy.typing import NDArray

_A = NDArray[np.floating[Any]]

ACT_NONE: int
ACTIVATIONS: dict[str, tuple[int, str, str]]
BN_FORWARD: tuple[str, ...]
BN_BACKWARD: tuple[str, ...]

def unary_flat(
    op: int, x: _A, y: _A, alpha: float, num_threads: int | None, beta: float = ...
) -> None: ...
def binary_flat(
    op: int, g: _A, x: _A, out: _A, alpha: float, num_threads: int | None, beta: float = ...
) -> None: ...
def copy_flat(src: _A, dst: _A, num_threads: int | None) -> None: ...
def unary_fast(
    op: int, x: object, out: object, alpha: object, num_threads: int | None, beta: object = ...
) -> _A | None: ...
def binary_fast(
    op: int,
    g: object,
    x: object,
    out: object,
    alpha: object,
    num_threads: int | None,
    beta: object = ...,
) -> _A | None: ...
def unary_strided(
    op: int,
    x: _A,
    y: _A,
    shape: tuple[int, ...],
    strides: tuple[tuple[int, ...], ...],
    alpha: float,
    num_threads: int | None,
    beta: float = ...,
) -> None: ...
def binary_strided(
    op: int,
    g: _A,
    x: _A,
    out: _A,
    shape: tuple[int, ...],
    strides: tuple[tuple[int, ...], ...],
    alpha: float,
    num_threads: int | None,
    beta: float = ...,
) -> None: ...
