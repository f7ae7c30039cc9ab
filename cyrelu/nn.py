"""Layers for NumPy training loops: ``ReLU``, ``ReLU6``, ``Hardsigmoid``, ``Hardswish``,
``Hardtanh``, ``LeakyReLU``, ``ELU``, ``CELU``, ``SELU``, ``SiLU``, ``Softplus``,
``GELU``, ``Mish``, ``PReLU`` and ``BatchNorm``.

Each layer has ``forward(x)`` (also ``layer(x)``) and ``backward(grad_output) ->
grad_input``, keeping what the backward needs from the last forward, and
``train()`` / ``eval()``.  ``BatchNorm`` holds its parameters, their gradients and
its running statistics as NumPy arrays and saves them with ``state_dict()`` (a
dict of arrays: ``np.savez(path, **layer.state_dict())`` and
``layer.load_state_dict(np.load(path))`` round-trip).

Gradients are *overwritten* by every ``backward`` (not accumulated as in PyTorch):
read ``grad_weight`` / ``grad_bias`` after each backward.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from cyrelu import _bn_activation, activations as _act
from cyrelu._activation_table import kernel_scalars
from cyrelu._validation import check_bounds, check_real
from cyrelu.activations import (
    hardsigmoid,
    hardsigmoid_backward,
    hardswish,
    hardswish_backward,
    hardtanh,
    hardtanh_backward,
    leaky_relu,
    leaky_relu_backward,
    prelu,
    prelu_backward,
    relu,
    relu6,
    relu6_backward,
    relu_backward,
)
from cyrelu.batchnorm import batch_norm, batch_norm_backward

__all__ = [
    "Module",
    "ReLU",
    "ReLU6",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "ELU",
    "CELU",
    "SELU",
    "SiLU",
    "Softplus",
    "GELU",
    "Mish",
    "BatchNorm",
    "PReLU",
]

FloatArray = NDArray[np.floating]


class Module:
    """Base class: the training flag, ``__call__`` and the forward/backward contract."""

    training: bool

    def __init__(self) -> None:
        self.training = True

    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=False`` is :meth:`eval`); returns self."""
        self.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode; returns self."""
        return self.train(False)

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Copies of the layer's arrays (parameters, running statistics): none for an
        activation layer, whose parameters are its constructor's arguments (as in torch)."""
        return {}

    def load_state_dict(self, state: Mapping[str, ArrayLike], strict: bool = True) -> None:
        """Load :meth:`state_dict`'s arrays.  A layer without arrays has nothing to load:
        with ``strict``, any key is a KeyError."""
        keys = sorted(state.keys())
        if strict and keys:
            raise KeyError("%s has no state, got keys %s" % (type(self).__name__, keys))

    def forward(self, x: ArrayLike) -> FloatArray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad_output: ArrayLike) -> FloatArray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: ArrayLike) -> FloatArray:
        return self.forward(x)

    def _saved(self, value: Any | None) -> Any:
        if value is None:
            raise RuntimeError("%s.backward() called before forward()" % type(self).__name__)
        return value


class ReLU(Module):
    """``max(x, 0)`` (see :func:`cyrelu.relu`); backward needs the last forward's input."""

    def __init__(self, *, num_threads: int | None = None) -> None:
        super().__init__()
        self.num_threads = num_threads
        self._x: ArrayLike | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        # the function's input rules (TypeError for masked arrays, other libraries'
        # arrays, ...): x is checked by the call, and kept only once accepted
        y: FloatArray = relu(x, num_threads=self.num_threads)
        self._x = x
        return y

    def backward(self, grad_output: ArrayLike) -> FloatArray:
        g: FloatArray = relu_backward(
            grad_output, self._saved(self._x), num_threads=self.num_threads
        )
        return g

    def __repr__(self) -> str:
        return "ReLU()"


class ReLU6(Module):
    """``min(max(x, 0), 6)`` (see :func:`cyrelu.relu6`); backward needs the last forward's x."""

    def __init__(self, *, num_threads: int | None = None) -> None:
        super().__init__()
        self.num_threads = num_threads
        self._x: ArrayLike | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        # x is checked by the call (np.asarray would compute a dask array), and kept
        # only once accepted
        y: FloatArray = relu6(x, num_threads=self.num_threads)
        self._x = x
        return y

    def backward(self, grad_output: ArrayLike) -> FloatArray:
        g: FloatArray = relu6_backward(
            grad_output, self._saved(self._x), num_threads=self.num_threads
        )
        return g

    def __repr__(self) -> str:
        return "ReLU6()"


class Hardsigmoid(Module):
    """``min(max(x + 3, 0), 6) / 6`` (see :func:`cyrelu.hardsigmoid`); backward needs the
    last forward's input."""

    def __init__(self, *, num_threads: int | None = None) -> None:
        super().__init__()
        self.num_threads = num_threads
        self._x: ArrayLike | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        # x is checked by the call (np.asarray would compute a dask array), and kept
        # only once accepted
        y: FloatArray = hardsigmoid(x, num_threads=self.num_threads)
        self._x = x
        return y

    def backward(self, grad_output: ArrayLike) -> FloatArray:
        g: FloatArray = hardsigmoid_backward(
            grad_output, self._saved(self._x), num_threads=self.num_threads
        )
        return g

    def __repr__(self) -> str:
        return "Hardsigmoid()"


class Hardswish(Module):
    """``x * min(max(x + 3, 0), 6) / 6`` (see :func:`cyrelu.hardswish`); backward needs
    the last forward's input."""

    def __init__(self, *, num_threads: int | None = None) -> None:
        super().__init__()
        self.num_threads = num_threads
        self._x: ArrayLike | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        # x is checked by the call (np.asarray would compute a dask array), and kept
        # only once accepted
        y: FloatArray = hardswish(x, num_threads=self.num_threads)
        self._x = x
        return y

    def backward(self, grad_output: ArrayLike) -> FloatArray:
        g: FloatArray = hardswish_backward(
            grad_output, self._saved(self._x), num_threads=self.num_threads
        )
        return g

    def __repr__(self) -> str:
        return "Hardswish()"


class Hardtanh(Module):
    """``min(max(x, min_val), max_val)`` (see :func:`cyrelu.hardtanh`); backward needs the
    last forward's input."""

    def __init__(
        self, min_val: float = -1.0, max_val: float = 1.0, *, num_threads: int | None = None
    ) -> None:
        super().__init__()
        self.min_val, self.max_val = check_bounds(
            check_real(min_val, "min_val"), check_real(max_val, "max_val")
        )
        self.num_threads = num_threads
        self._x: ArrayLike | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        # x is checked by the call (np.asarray would compute a dask array), and kept
        # only once accepted
        y: FloatArray = hardtanh(x, self.min_val, self.max_val, num_threads=self.num_threads)
        self._x = x
        return y

    def backward(self, grad_output: ArrayLike) -> FloatArray:
        g: FloatArray = hardtanh_backward(
            grad_output,
            self._saved(self._x),
            self.min_val,
            self.max_val,
            num_threads=self.num_threads,
        )
        return g

    def __repr__(self) -> str:
        return "Hardtanh(min_val=%r, max_val=%r)" % (self.min_val, self.max_val)


class LeakyReLU(Module):
    """``x if x > 0 else alpha * x`` (see :func:`cyrelu.leaky_relu`)."""

    def __init__(self, alpha: float = 0.2, *, num_threads: int | None = None) -> None:
        super().__init__()
        self.alpha = check_real(alpha, "alpha")
        self.num_threads = num_threads
        self._x: ArrayLike | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        y: FloatArray = leaky_relu(x, self.alpha, num_threads=self.num_threads)
        self._x = x
        return y

    def backward(self, grad_output: ArrayLike) -> FloatArray:
        g: FloatArray = leaky_relu_backward(
            grad_output, self._saved(self._x), self.alpha, num_threads=self.num_threads
        )
        return g

    def __repr__(self) -> str:
        return "LeakyReLU(alpha=%r)" % self.alpha


class _Smooth(Module):
    """The smooth members' layers: ``forward`` runs :func:`cyrelu.<name>` with the
    layer's parameters (checked once, by the activation table's rules, when the layer
    is made), ``backward`` its ``<name>_backward`` on the last forward's input."""

    _name: str
    _params: tuple[str, ...] = ()

    def __init__(self, *values: Any, num_threads: int | None = None) -> None:
        super().__init__()
        kernel_scalars(self._name, None, *values)  # the checks, now
        for pname, value in zip(self._params, values, strict=True):
            setattr(self, pname, value)
        self.num_threads = num_threads
        self._x: ArrayLike | None = None

    def _values(self) -> list[Any]:
        return [getattr(self, p) for p in self._params]

    def forward(self, x: ArrayLike) -> FloatArray:
        # x is checked by the call (np.asarray would compute a dask array), and kept
        # only once accepted
        fn = getattr(_act, self._name)
        y: FloatArray = fn(x, *self._values(), num_threads=self.num_threads)
        self._x = x
        return y

    def backward(self, grad_output: ArrayLike) -> FloatArray:
        fn = getattr(_act, self._name + "_backward")
        g: FloatArray = fn(
            grad_output, self._saved(self._x), *self._values(), num_threads=self.num_threads
        )
        return g

    def __repr__(self) -> str:
        args = ", ".join("%s=%r" % (p, getattr(self, p)) for p in self._params)
        return "%s(%s)" % (type(self).__name__, args)


class ELU(_Smooth):
    """``x if x > 0 else alpha * (exp(x) - 1)`` (see :func:`cyrelu.elu`)."""

    _name, _params = "elu", ("alpha",)

    def __init__(self, alpha: float = 1.0, *, num_threads: int | None = None) -> None:
        super().__init__(alpha, num_threads=num_threads)


class CELU(_Smooth):
    """``x if x > 0 else alpha * (exp(x / alpha) - 1)`` (see :func:`cyrelu.celu`)."""

    _name, _params = "celu", ("alpha",)

    def __init__(self, alpha: float = 1.0, *, num_threads: int | None = None) -> None:
        super().__init__(alpha, num_threads=num_threads)


class SELU(_Smooth):
    """``scale * elu(x, alpha)`` with torch's constants (see :func:`cyrelu.selu`)."""

    _name = "selu"

    def __init__(self, *, num_threads: int | None = None) -> None:
        super().__init__(num_threads=num_threads)


class SiLU(_Smooth):
    """``x * sigmoid(x)`` (see :func:`cyrelu.silu`)."""

    _name = "silu"

    def __init__(self, *, num_threads: int | None = None) -> None:
        super().__init__(num_threads=num_threads)


class Softplus(_Smooth):
    """``log(1 + exp(beta * x)) / beta``, ``x`` above the threshold (see
    :func:`cyrelu.softplus`)."""

    _name, _params = "softplus", ("beta", "threshold")

    def __init__(
        self, beta: float = 1.0, threshold: float = 20.0, *, num_threads: int | None = None
    ) -> None:
        super().__init__(beta, threshold, num_threads=num_threads)


class GELU(_Smooth):
    """``x * Phi(x)``, or its tanh approximation (see :func:`cyrelu.gelu`)."""

    _name, _params = "gelu", ("approximate",)

    def __init__(self, approximate: str = "none", *, num_threads: int | None = None) -> None:
        super().__init__(approximate, num_threads=num_threads)


class Mish(_Smooth):
    """``x * tanh(softplus(x))`` (see :func:`cyrelu.mish`)."""

    _name = "mish"

    def __init__(self, *, num_threads: int | None = None) -> None:
        super().__init__(num_threads=num_threads)


class BatchNorm(Module):
    """Batch normalisation over every axis but ``axis`` (PyTorch's ``BatchNorm1d/2d/3d``).

    Parameters follow ``torch.nn.BatchNorm2d``: ``weight`` (ones) and ``bias``
    (zeros) when ``affine``; ``running_mean`` (zeros) and ``running_var`` (ones)
    when ``track_running_stats``, updated in training mode with ``momentum``.
    Without running statistics the layer normalises with batch statistics in
    evaluation mode too (as PyTorch does).  ``activation`` (any of the table's, with
    ``alpha`` and ``activation_params`` as :func:`cyrelu.batch_norm` takes them) is
    applied to the output and differentiated in the backward, from the pre-activation
    recomputed with the layer's bias where the output cannot give the derivative.
    ``dtype`` is the parameters' dtype (float32 or float64); the data may be
    float16/32/64.
    """

    weight: FloatArray | None
    bias: FloatArray | None
    grad_weight: FloatArray | None
    grad_bias: FloatArray | None
    running_mean: FloatArray | None
    running_var: FloatArray | None
    num_batches_tracked: int

    def __init__(
        self,
        num_features: int,
        *,
        axis: int = 1,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        activation: str | None = None,
        alpha: float | None = None,
        activation_params: Mapping[str, Any] | None = None,
        dtype: DTypeLike = np.float32,
        num_threads: int | None = None,
    ) -> None:
        super().__init__()
        if (
            isinstance(num_features, (bool, np.bool_))
            or not isinstance(num_features, (int, np.integer))
            or num_features < 1
        ):
            raise ValueError("num_features must be a positive int, got %r" % (num_features,))
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError("dtype must be float32 or float64, got %s" % dt)
        eps = check_real(eps, "eps")
        momentum = check_real(momentum, "momentum")
        if not eps > 0:
            raise ValueError("eps must be > 0, got %r" % eps)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError("momentum must be in [0, 1], got %r" % momentum)
        # the activation's parameters checked now (ValueError / TypeError)
        self._act_values = _bn_activation.params(activation, alpha, activation_params)
        self.num_features = int(num_features)
        self.axis = axis
        self.eps = eps
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.activation = activation
        # None: the activation's own default (batch_norm's alpha)
        self.alpha = None if alpha is None else check_real(alpha, "alpha")
        self.activation_params = None if activation_params is None else dict(activation_params)
        self.dtype = dt
        self.num_threads = num_threads
        C = self.num_features
        if self.affine:
            self.weight = np.ones(C, dt)
            self.bias = np.zeros(C, dt)
            self.grad_weight = np.zeros(C, dt)
            self.grad_bias = np.zeros(C, dt)
        else:
            self.weight = self.bias = self.grad_weight = self.grad_bias = None
        if self.track_running_stats:
            self.running_mean = np.zeros(C, dt)
            self.running_var = np.ones(C, dt)
        else:
            self.running_mean = self.running_var = None
        self.num_batches_tracked = 0
        self._cache: dict[str, Any] | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        use_batch = self.training or not self.track_running_stats
        update = self.training and self.track_running_stats
        y, mean, invstd = batch_norm(
            x,
            self.running_mean if (update or not use_batch) else None,
            self.running_var if (update or not use_batch) else None,
            self.weight,
            self.bias,
            use_batch,
            self.momentum,
            self.eps,
            axis=self.axis,
            activation=self.activation,
            alpha=self.alpha,
            activation_params=self.activation_params,
            return_stats=True,
            num_threads=self.num_threads,
        )
        if update:
            self.num_batches_tracked += 1
        self._cache = {
            "x": x,
            "y": y if self.activation is not None else None,
            "mean": mean,
            "invstd": invstd,
            "training": use_batch,
        }
        return y

    def backward(self, grad_output: ArrayLike) -> FloatArray:
        c = self._saved(self._cache)
        bias = None  # the pre-activation is recomputed with it where output cannot serve
        if not _bn_activation.fused_backward(self.activation, self._act_values, c["y"]):
            bias = self.bias
            if bias is None:
                bias = np.zeros(self.num_features, self.dtype)
        grad_input, gw, gb = batch_norm_backward(
            grad_output,
            c["x"],
            c["mean"],
            c["invstd"],
            self.weight,
            training=c["training"],
            axis=self.axis,
            activation=self.activation,
            alpha=self.alpha,
            activation_params=self.activation_params,
            output=c["y"],
            bias=bias,
            num_threads=self.num_threads,
        )
        if self.affine:
            assert self.grad_weight is not None and self.grad_bias is not None
            self.grad_weight[...] = gw
            self.grad_bias[...] = gb
        return grad_input

    # ---- persistence -------------------------------------------------------------

    def _state_names(self) -> list[str]:
        names = []
        if self.affine:
            names += ["weight", "bias"]
        if self.track_running_stats:
            names += ["running_mean", "running_var", "num_batches_tracked"]
        return names

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Copies of the parameters and running statistics, as a dict of arrays."""
        state: dict[str, NDArray[Any]] = {}
        for name in self._state_names():
            value = getattr(self, name)
            state[name] = np.array(
                value, dtype=np.int64 if name == "num_batches_tracked" else None, copy=True
            )
        return state

    def load_state_dict(self, state: Mapping[str, ArrayLike], strict: bool = True) -> None:
        """Copy values from ``state`` (e.g. ``np.load(path)`` of an ``np.savez`` file)
        into the layer's arrays (keeping their dtype).  With ``strict``, the keys must
        match :meth:`state_dict`'s exactly.

        Everything is checked before anything is assigned, so a failed call leaves the
        layer unchanged: TypeError for a ``state`` that is not a mapping or a value of a
        non-real dtype (complex, object, string: nothing is silently dropped);
        ValueError for a wrong shape or a ``num_batches_tracked`` that is not a
        non-negative integer; KeyError for mismatched keys (``strict``)."""
        if not isinstance(state, Mapping) and not (
            hasattr(state, "keys") and hasattr(state, "__getitem__")
        ):
            raise TypeError(
                "state must be a mapping of names to arrays (e.g. state_dict() "
                "or np.load(path)), got %s" % type(state).__name__
            )
        names = self._state_names()
        keys = set(state.keys())
        missing = [n for n in names if n not in keys]
        unexpected = sorted(keys - set(names))
        if strict and (missing or unexpected):
            raise KeyError(
                "state_dict mismatch: missing %s, unexpected %s" % (missing, unexpected)
            )
        new: dict[str, Any] = {}
        for name in names:
            if name in keys:
                new[name] = self._checked_state_value(name, state[name])
        for name, value in new.items():  # all checked: now assign
            if name == "num_batches_tracked":
                self.num_batches_tracked = value
            else:
                getattr(self, name)[...] = value

    def _checked_state_value(self, name: str, raw: object) -> Any:
        if isinstance(raw, np.ma.MaskedArray):
            raise TypeError("%s: masked arrays are not supported" % name)
        try:
            value = np.asarray(raw)
        except Exception as exc:
            raise TypeError("%s: not an array (%s)" % (name, exc)) from None
        if name == "num_batches_tracked":
            if value.shape != ():
                raise ValueError(
                    "num_batches_tracked must be a scalar, got shape %s" % (value.shape,)
                )
            if value.dtype.kind == "f":
                v = float(value)
                if not (math.isfinite(v) and v == math.floor(v)):
                    raise ValueError("num_batches_tracked must be an integer, got %r" % v)
            elif value.dtype.kind not in "iu":
                raise TypeError(
                    "num_batches_tracked must be an integer, got dtype %s" % value.dtype
                )
            n = int(value)
            if n < 0:
                raise ValueError("num_batches_tracked must be >= 0, got %d" % n)
            return n
        if value.dtype.kind not in "fiu":
            raise TypeError(
                "%s has dtype %s; expected real numbers (float or int)" % (name, value.dtype)
            )
        if value.shape != (self.num_features,):
            raise ValueError(
                "%s has shape %s, expected (%d,)" % (name, value.shape, self.num_features)
            )
        return value

    def __repr__(self) -> str:
        return (
            "BatchNorm(%d, axis=%r, eps=%r, momentum=%r, affine=%r, track_running_stats=%r,"
            " activation=%r)"
            % (
                self.num_features,
                self.axis,
                self.eps,
                self.momentum,
                self.affine,
                self.track_running_stats,
                self.activation,
            )
        )


class PReLU(Module):
    """``x if x > 0 else weight[c] * x`` with a learnable weight (see :func:`cyrelu.prelu`;
    ``torch.nn.PReLU``).

    ``weight`` holds ``num_parameters`` values (1: one for every element; else C, the
    length of the data's ``axis``), all ``init``, in ``dtype`` (float16, float32 or
    float64), which the data must share.  ``backward`` returns grad_input and
    overwrites ``grad_weight``.  ``state_dict()`` is ``{"weight": ...}``.
    """

    weight: FloatArray
    grad_weight: FloatArray

    def __init__(
        self,
        num_parameters: int = 1,
        *,
        axis: int = 1,
        init: float = 0.25,
        dtype: DTypeLike = np.float32,
        num_threads: int | None = None,
    ) -> None:
        super().__init__()
        if (
            isinstance(num_parameters, (bool, np.bool_))
            or not isinstance(num_parameters, (int, np.integer))
            or num_parameters < 1
        ):
            raise ValueError("num_parameters must be a positive int, got %r" % (num_parameters,))
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
            raise TypeError("axis must be an int, got %r" % (axis,))
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError("dtype must be float16, float32 or float64, got %s" % dt)
        self.num_parameters = int(num_parameters)
        self.axis = int(axis)
        self.init = check_real(init, "init")
        self.dtype = dt
        self.num_threads = num_threads
        self.weight = np.full(self.num_parameters, self.init, dt)
        self.grad_weight = np.zeros(self.num_parameters, dt)
        self._x: ArrayLike | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        y: FloatArray = prelu(x, self.weight, axis=self.axis, num_threads=self.num_threads)
        self._x = x
        return y

    def backward(self, grad_output: ArrayLike) -> FloatArray:
        grad_input, gw = prelu_backward(
            grad_output,
            self._saved(self._x),
            self.weight,
            axis=self.axis,
            num_threads=self.num_threads,
        )
        self.grad_weight[...] = gw
        return grad_input

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """A copy of the weight: ``{"weight": ...}``."""
        return {"weight": self.weight.copy()}

    def load_state_dict(self, state: Mapping[str, ArrayLike], strict: bool = True) -> None:
        """Copy ``state["weight"]`` into the weight (keeping its dtype).  Checked before
        anything is assigned: TypeError for a ``state`` that is not a mapping or a
        non-real weight; ValueError for a wrong shape; KeyError for mismatched keys
        (``strict``; without it a missing weight leaves the layer as it is)."""
        if not isinstance(state, Mapping) and not (
            hasattr(state, "keys") and hasattr(state, "__getitem__")
        ):
            raise TypeError(
                "state must be a mapping of names to arrays (e.g. state_dict() "
                "or np.load(path)), got %s" % type(state).__name__
            )
        keys = set(state.keys())
        if strict and keys != {"weight"}:
            raise KeyError(
                "state_dict mismatch: missing %s, unexpected %s"
                % ([] if "weight" in keys else ["weight"], sorted(keys - {"weight"}))
            )
        if "weight" not in keys:
            return
        raw = state["weight"]
        if isinstance(raw, np.ma.MaskedArray):
            raise TypeError("weight: masked arrays are not supported")
        try:
            value = np.asarray(raw)
        except Exception as exc:
            raise TypeError("weight: not an array (%s)" % exc) from None
        if value.dtype.kind not in "fiu":
            raise TypeError("weight has dtype %s; expected real numbers" % value.dtype)
        if value.shape != (self.num_parameters,):
            raise ValueError(
                "weight has shape %s, expected (%d,)" % (value.shape, self.num_parameters)
            )
        self.weight[...] = value

    def __repr__(self) -> str:
        return "PReLU(num_parameters=%d, axis=%d, init=%r)" % (
            self.num_parameters,
            self.axis,
            self.init,
        )
