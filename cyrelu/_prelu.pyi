# Type stub for the compiled module cyrelu/_prelu.pyx (internal entry points; the public,
# validated API is cyrelu.activations.prelu / prelu_backward).
from typing import Any

import numpy as np
from numpy.typing import NDArray

_A = NDArray[np.floating[Any]]

def forward(x: _A, y: _A, C: int, inner: int, w: _A, num_threads: int | None) -> None: ...
def forward_fast(
    x: object, w: object, out: object, axis: object, num_threads: int | None
) -> _A | None: ...
def backward_input(
    g: _A, x: _A, out: _A, C: int, inner: int, w: _A, num_threads: int | None
) -> None: ...
def weight_sums(
    g: _A, x: _A, outer: int, C: int, inner: int, num_threads: int | None
) -> NDArray[np.float64]: ...
def backward_fused(
    g: _A, x: _A, out: _A, w: _A, outer: int, C: int, inner: int, num_threads: int | None
) -> NDArray[np.float64]: ...
