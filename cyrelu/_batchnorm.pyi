"""Type stub of the compiled BatchNorm entry points (cyrelu/_batchnorm.pyx)."""

import numpy as np
from numpy.typing import NDArray

def uses_channel_layout(inner: int) -> bool: ...
def forward_train(
    x: NDArray[np.floating],
    y: NDArray[np.floating],
    outer: int,
    C: int,
    inner: int,
    weight: NDArray[np.floating] | None,
    bias: NDArray[np.floating] | None,
    eps: float,
    momentum: float,
    running_mean: NDArray[np.floating] | None,
    running_var: NDArray[np.floating] | None,
    act: int,
    alpha: float,
    save_mean: NDArray[np.floating] | None,
    save_invstd: NDArray[np.floating] | None,
    num_threads: int | None,
) -> None: ...
def forward_eval(
    x: NDArray[np.floating],
    y: NDArray[np.floating],
    outer: int,
    C: int,
    inner: int,
    weight: NDArray[np.floating] | None,
    bias: NDArray[np.floating] | None,
    eps: float,
    running_mean: NDArray[np.floating],
    running_var: NDArray[np.floating],
    act: int,
    alpha: float,
    save_mean: NDArray[np.floating] | None,
    save_invstd: NDArray[np.floating] | None,
    num_threads: int | None,
) -> None: ...
def backward(
    dy: NDArray[np.floating],
    x: NDArray[np.floating],
    y: NDArray[np.floating] | None,
    dx: NDArray[np.floating],
    outer: int,
    C: int,
    inner: int,
    save_mean: NDArray[np.floating],
    save_invstd: NDArray[np.floating],
    weight: NDArray[np.floating] | None,
    train: bool,
    act: int,
    alpha: float,
    grad_weight: NDArray[np.floating],
    grad_bias: NDArray[np.floating],
    num_threads: int | None,
) -> None: ...
def backward_pipelined(
    x: NDArray[np.floating],
    outer: int,
    C: int,
    inner: int,
    has_y: bool,
    num_threads: int | None,
) -> bool: ...
