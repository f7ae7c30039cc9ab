"""examples/inference_mlp.py: the folded NumPy + cyrelu model computes the PyTorch model.

References: the unfolded model in float64 NumPy (always) and PyTorch's eval-mode forward
(where PyTorch is installed).  Folding BatchNorm into the Linears reassociates the
arithmetic, so the comparison is to float32 rounding of the output's scale, not bitwise.
"""

import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "inference_mlp.py"
pytestmark = pytest.mark.skipif(not EXAMPLE.is_file(), reason="needs the source tree's examples/")


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("inference_mlp", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rel_err(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.mark.parametrize("batch", [1, 8, 33])
def test_folded_model_matches_the_float64_reference(example, tmp_path, batch):
    sd = example.random_state_dict(seed=3)
    path = tmp_path / "mlp.npz"
    example.export_npz(str(path), sd)
    mlp = example.FoldedMLP(str(path))
    x = np.random.default_rng(batch).standard_normal(
        (batch, example.IN_FEATURES), dtype=np.float32
    )
    y = mlp(x)
    assert y.shape == (batch, example.OUT_FEATURES) and y.dtype == np.float32
    assert _rel_err(y, example.numpy_reference(sd, x)) < 1e-5
    out = np.empty_like(y)
    assert mlp(x, out=out) is out
    np.testing.assert_array_equal(out, y)


def test_buffers_are_reused(example, tmp_path):
    path = tmp_path / "mlp.npz"
    example.export_npz(str(path), example.random_state_dict())
    mlp = example.FoldedMLP(str(path))
    x = np.ones((4, example.IN_FEATURES), np.float32)
    first = mlp(x)
    assert mlp(x) is first  # the same preallocated output buffer, no allocation per call


def test_bias_relu_pass_is_relu_of_the_sum(example, tmp_path):
    # A hidden layer's elementwise passes (NumPy's add, cyrelu's relu) must give
    # relu(z + b) rounded once, including NaN propagation and -0.0 handling.
    path = tmp_path / "mlp.npz"
    example.export_npz(str(path), example.random_state_dict())
    mlp = example.FoldedMLP(str(path))
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, example.HIDDEN)).astype(np.float32) * 3
    z[0, :4] = [np.nan, np.inf, -np.inf, 0.0]
    want = np.maximum(z + mlp.biases[1], np.float32(0))
    want[np.isnan(z + mlp.biases[1])] = np.nan
    mlp.bias_relu(z, 1)
    np.testing.assert_array_equal(z, want)


def test_matches_pytorch(example, tmp_path):
    torch = pytest.importorskip("torch")
    model = example.build_torch_model(steps=3)
    path = tmp_path / "mlp.npz"
    example.export_npz(str(path), model.state_dict())
    mlp = example.FoldedMLP(str(path))
    x = np.random.default_rng(7).standard_normal((16, example.IN_FEATURES), dtype=np.float32)
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel_err(mlp(x), want) < 1e-5
