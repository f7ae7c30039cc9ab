"""cyrelu: fast, PyTorch-exact activation and normalisation kernels for NumPy.

Public API (see the README for the full semantics):

    the activations and their gradients (cyrelu.activations: relu, leaky_relu, ...)
    batch_norm, batch_norm_backward
    nn (NumPy layers: ReLU, LeakyReLU, BatchNorm)
    dead_units, sparsity, fold_batch_norm
    init (Xavier and Kaiming initialisers)
    show_config, __version__
"""

from cyrelu._version import __version__

try:
    from cyrelu import activations as _activation_functions
    from cyrelu.activations import *  # noqa: F403 (the activation table's functions)
    from cyrelu.batchnorm import batch_norm, batch_norm_backward
except ImportError as exc:  # pragma: no cover - only a broken install gets here
    if "_activations" in str(exc) or "_parallel" in str(exc) or "_batchnorm" in str(exc):
        raise ImportError(
            "cyrelu's compiled extension could not be imported (%s). If you are in a source "
            "checkout, build it first: `pip install .` (or `python setup.py build_ext "
            "--inplace` for development)." % exc
        ) from exc
    raise
from cyrelu import init, nn
from cyrelu._config import (
    _warn_bad_isa_request,
    show_config,
    warn_cache_overrides as _warn_cache_overrides,
)
from cyrelu.diagnostics import dead_units, fold_batch_norm, sparsity

_warn_cache_overrides()
_warn_bad_isa_request()

__all__ = [
    "__version__",
    *_activation_functions.__all__,
    "batch_norm",
    "batch_norm_backward",
    "nn",
    "show_config",
    "dead_units",
    "sparsity",
    "fold_batch_norm",
    "init",
]
