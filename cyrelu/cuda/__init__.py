"""The CuPy backend: cyrelu's public functions for ``cupy.ndarray`` arguments.

``cyrelu._backend.backend_for`` imports this package only when a CuPy array arrives.
The functions live in modules that mirror the CPU ones (:mod:`cyrelu.cuda.activations`,
:mod:`cyrelu.cuda.batchnorm`, :mod:`cyrelu.cuda.diagnostics`, :mod:`cyrelu.cuda.prelu`);
each has the name, signature and defaults of its public twin, which calls it with the
same arguments.
Results are CuPy arrays on the inputs' device.  The kernels are our own (``*.cu`` next
to this file, compiled by ``_loader`` once per device), with the CPU path's semantics
bit for bit where the math allows (the activations and their gradients are exact;
BatchNorm agrees to rounding).

Rules, as on the CPU path: float16/float32/float64 only (float16 math in float32,
rounded once), ``out`` of exactly the result's shape and dtype (and here: a CuPy array
on the same device), gradients and inputs of equal shape and dtype, ``num_threads``
validated and otherwise ignored.  Any memory layout is accepted; a non-contiguous
``out`` is written in place.

Importing this package needs no CuPy (the modules import it when it is installed), so
the signatures can be checked anywhere; calling a function needs CuPy.
"""

from cyrelu.cuda import activations as _activations
from cyrelu.cuda.activations import *  # noqa: F403 (every activation of the table)
from cyrelu.cuda.batchnorm import batch_norm, batch_norm_backward
from cyrelu.cuda.diagnostics import dead_units, sparsity
from cyrelu.cuda.prelu import prelu, prelu_backward

# batch_norm_backward takes bias= itself: for every activation and dtype, the kernels
# take the derivative at the pre-activation they recompute (read by
# cyrelu._bn_activation.backend_fuses_backward_z)
BATCH_NORM_BACKWARD_FROM_BIAS = "any dtype"
# ...and output= for elu, celu and selu: the kernels read the derivative there (the
# result gate; cyrelu._bn_activation.backend_result_gate)
BATCH_NORM_BACKWARD_RESULT_GATE = True

__all__ = [
    *_activations.__all__,
    "batch_norm",
    "batch_norm_backward",
    "dead_units",
    "sparsity",
    "prelu",
    "prelu_backward",
]
