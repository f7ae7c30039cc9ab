"""Type stub of the compiled BatchNorm entry points (cyrelu/_batchnorm.pyx)."""

from typing import Optional

import numpy as np
from numpy.typing import NDArray


def uses_channel_layout(inner: int) -> bool: ...
def batch_stats(
    x: NDArray[np.floating],
    outer: int,
    C: int,
    inner: int,
    mean: NDArray[np.float64],
    var: NDArray[np.float64],
    num_threads: Optional[int],
) -> None: ...
def train_channels(
    x: NDArray[np.floating],
    y: NDArray[np.floating],
    outer: int,
    C: int,
    inner: int,
    w: NDArray[np.float64],
    b: NDArray[np.float64],
    eps: float,
    act: int,
    alpha: float,
    mean: NDArray[np.float64],
    var: NDArray[np.float64],
    num_threads: Optional[int],
) -> None: ...
def normalise(
    x: NDArray[np.floating],
    y: NDArray[np.floating],
    outer: int,
    C: int,
    inner: int,
    scale: NDArray[np.floating],
    shift: NDArray[np.floating],
    act: int,
    alpha: float,
    num_threads: Optional[int],
) -> None: ...
def backward_channels(
    dy: NDArray[np.floating],
    x: NDArray[np.floating],
    y: Optional[NDArray[np.floating]],
    dx: Optional[NDArray[np.floating]],
    outer: int,
    C: int,
    inner: int,
    mean: NDArray[np.float64],
    invstd: NDArray[np.float64],
    w: NDArray[np.float64],
    train: bool,
    act: int,
    alpha: float,
    sums: NDArray[np.float64],
    num_threads: Optional[int],
) -> None: ...
def backward_rows_sums(
    dy: NDArray[np.floating],
    x: NDArray[np.floating],
    y: Optional[NDArray[np.floating]],
    outer: int,
    C: int,
    inner: int,
    mean: NDArray[np.float64],
    act: int,
    alpha: float,
    sums: NDArray[np.float64],
    num_threads: Optional[int],
) -> None: ...
def backward_rows_dx(
    dy: NDArray[np.floating],
    x: NDArray[np.floating],
    y: Optional[NDArray[np.floating]],
    dx: NDArray[np.floating],
    outer: int,
    C: int,
    inner: int,
    params: NDArray[np.floating],
    train: bool,
    act: int,
    alpha: float,
    num_threads: Optional[int],
) -> None: ...
def finish_stats(
    mean: NDArray[np.float64],
    var: NDArray[np.float64],
    eps: float,
    momentum: float,
    n: float,
    running_mean: Optional[NDArray[np.floating]],
    running_var: Optional[NDArray[np.floating]],
    invstd: NDArray[np.float64],
) -> None: ...
def running_invstd(
    running_var: NDArray[np.floating], eps: float, invstd: NDArray[np.float64]
) -> None: ...
def affine_coefs(
    mean: NDArray[np.float64],
    invstd: NDArray[np.float64],
    w: NDArray[np.float64],
    b: NDArray[np.float64],
    inner: int,
    scale: NDArray[np.floating],
    shift: NDArray[np.floating],
) -> None: ...
def dx_coefs(
    sums: NDArray[np.float64],
    n: float,
    mean: NDArray[np.float64],
    invstd: NDArray[np.float64],
    w: NDArray[np.float64],
    train: bool,
    inner: int,
    params: NDArray[np.floating],
) -> None: ...
def backward_pipelined(
    x: NDArray[np.floating],
    outer: int,
    C: int,
    inner: int,
    has_y: bool,
    num_threads: Optional[int],
) -> bool: ...
def channel_moments(
    x: NDArray[np.floating],
    outer: int,
    C: int,
    inner: int,
    num_threads: Optional[int],
) -> NDArray[np.float64]: ...
def channel_dx(
    dy: NDArray[np.floating],
    x: NDArray[np.floating],
    y: Optional[NDArray[np.floating]],
    dx: NDArray[np.floating],
    outer: int,
    C: int,
    inner: int,
    mean: NDArray[np.float64],
    invstd: NDArray[np.float64],
    w: NDArray[np.float64],
    sums: NDArray[np.float64],
    n: float,
    train: bool,
    act: int,
    alpha: float,
    num_threads: Optional[int],
) -> None: ...
