"""Every public name of cyrelu, used the way a typed caller would.

CI runs ``mypy --strict examples/typed_usage.py`` against the *installed* package
(so the wheel's ``py.typed`` marker and ``.pyi`` stubs are what is checked) and
then runs this file.  A new public function gets one line below;
tests/test_packaging.py fails while a name in ``cyrelu.__all__`` is missing here.
"""

from typing import Any

import numpy as np
from numpy.typing import NDArray

import cyrelu

Floats = NDArray[np.floating[Any]]

x: NDArray[np.float32] = np.linspace(-2.0, 2.0, 16, dtype=np.float32).reshape(4, 4)
g: NDArray[np.float32] = np.ones_like(x)
buf: NDArray[np.float32] = np.empty_like(x)

# One line per public function.
y: Floats = cyrelu.relu(x, out=buf, num_threads=1)
y = cyrelu.leaky_relu(x, 0.1, num_threads=None)
y = cyrelu.relu_backward(g, x)
y = cyrelu.leaky_relu_backward(g, x, alpha=0.1, out=buf)
y = cyrelu.relu6(x, out=buf)
y = cyrelu.relu6_backward(g, x, num_threads=1)
y = cyrelu.hardtanh(x, -0.5, 2.0, out=buf)
y = cyrelu.hardtanh_backward(g, x, min_val=-0.5, max_val=2.0, num_threads=1)
y = cyrelu.elu(x, 0.5, out=buf)
y = cyrelu.elu_backward(g, x, alpha=0.5)
y = cyrelu.celu(x, 2.0)
y = cyrelu.celu_backward(g, x, 2.0)
y = cyrelu.selu(x, num_threads=1)
y = cyrelu.selu_backward(g, x)
y = cyrelu.silu(x)
y = cyrelu.silu_backward(g, x)
y = cyrelu.softplus(x, beta=2.0, threshold=10.0)
y = cyrelu.softplus_backward(g, x, 2.0, 10.0)
y = cyrelu.gelu(x, approximate="tanh")
y = cyrelu.gelu_backward(g, x)
y = cyrelu.mish(x)
y = cyrelu.mish_backward(g, x)
y = cyrelu.hardsigmoid(x, out=buf)
y = cyrelu.hardsigmoid_backward(g, x, num_threads=1)
y = cyrelu.hardswish(x, num_threads=None)
y = cyrelu.hardswish_backward(g, x, out=buf)
for layer in (cyrelu.nn.Hardtanh(-0.5, 2.0), cyrelu.nn.Hardsigmoid(), cyrelu.nn.Hardswish()):
    y = layer(x)
    y = layer.backward(g)
C = x.shape[1]
rm: NDArray[np.float32] = np.zeros(C, np.float32)
rv: NDArray[np.float32] = np.ones(C, np.float32)
w: NDArray[np.float32] = np.ones(C, np.float32)
y = cyrelu.batch_norm(x, rm, rv, w, None, True, 0.1, 1e-5, axis=1, activation="relu")
y, mean, invstd = cyrelu.batch_norm(x, rm, rv, training=True, axis=-1, return_stats=True)
gx, gw, gb = cyrelu.batch_norm_backward(g, x, mean, invstd, w, axis=-1, num_threads=1)
bn = cyrelu.nn.BatchNorm(C, activation="leaky_relu", alpha=0.1)
y = bn(x)
gx = bn.backward(g)
bn.eval().train()
bn.load_state_dict(bn.state_dict())
y = cyrelu.nn.ReLU().forward(x)
y = cyrelu.nn.LeakyReLU(0.1)(x)
y = cyrelu.prelu(x, np.full(4, 0.25, np.float32), axis=1, out=buf)
gx, gw = cyrelu.prelu_backward(g, x, np.full(1, 0.25, np.float32), axis=-1, num_threads=1)
prelu_layer = cyrelu.nn.PReLU(4, axis=1, init=0.1)
y = prelu_layer(x)
gx = prelu_layer.backward(g)
prelu_layer.load_state_dict(prelu_layer.state_dict())
dead: NDArray[np.bool_] = cyrelu.dead_units(x, axis=1, threshold=0.0)
frac: float = cyrelu.sparsity(y)
per_channel: NDArray[np.float64] = cyrelu.sparsity(y, axis=1, num_threads=1)
w_folded, b_folded = cyrelu.fold_batch_norm(x, None, np.zeros(4), np.ones(4), axis=0)
w_init: Floats = cyrelu.init.kaiming_normal((4, 4), nonlinearity="relu", rng=0)
cyrelu.show_config()
version: str = cyrelu.__version__

if __name__ == "__main__":
    print("typed_usage: cyrelu", version, "ok:", float(y.sum()))
