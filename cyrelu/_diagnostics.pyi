"""Type stub of the compiled diagnostics module (cyrelu/_diagnostics.pyx)."""

import numpy as np
import numpy.typing as npt

OP_ZEROS: int
OP_ALIVE: int

def channel_counts(
    op: int,
    x: npt.NDArray[np.floating],
    threshold: float,
    num_threads: int | None,
) -> npt.NDArray[np.int64]: ...
