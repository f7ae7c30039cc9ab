"""The Dask backend: cyrelu's public functions for ``dask.array.Array`` arguments.

``cyrelu._backend.backend_for`` imports this package only when a dask array arrives
(``import cyrelu`` never imports dask).  The functions live in modules that mirror the
CPU ones (:mod:`cyrelu.dask.activations`, :mod:`cyrelu.dask.batchnorm`,
:mod:`cyrelu.dask.diagnostics`, :mod:`cyrelu.dask.prelu`); each has the name, signature
and defaults of its public twin, which calls it with the same arguments.

Elementwise functions and ``y`` / ``grad_input`` of BatchNorm come back as lazy dask
arrays with the input's chunks, each chunk computed by cyrelu's kernels; the
reductions (BatchNorm's statistics and parameter gradients, the diagnostics) run as
tree reductions on the cluster, one read of each chunk, and return NumPy results.
Arguments are checked when a function is called, never at ``compute()``.

Importing this package needs no dask (the modules import ``dask.array`` on their
first call), so the signatures can be checked anywhere.
"""

from cyrelu.dask import activations as _activations
from cyrelu.dask.activations import *  # noqa: F403 (every activation of the table)
from cyrelu.dask.batchnorm import batch_norm, batch_norm_backward
from cyrelu.dask.diagnostics import dead_units, sparsity
from cyrelu.dask.prelu import prelu, prelu_backward

# batch_norm_backward takes bias= itself: its chunks' kernels recompute the
# pre-activation, where the NumPy kernels would (read by
# cyrelu._bn_activation.backend_fuses_backward_z; the CuPy backend's rule is "any dtype")
BATCH_NORM_BACKWARD_FROM_BIAS = True
# ...and output= for elu, celu and selu: the chunks' kernels read the derivative there
# (cyrelu._bn_activation.backend_result_gate)
BATCH_NORM_BACKWARD_RESULT_GATE = True

__all__ = [*_activations.__all__, "batch_norm", "batch_norm_backward", "dead_units", "sparsity"]
__all__ += ["prelu", "prelu_backward"]
