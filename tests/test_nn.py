"""cyrelu.nn layers: against PyTorch's modules (when installed) and NumPy formulas."""

import numpy as np
import pytest

from cyrelu import nn

from conftest import requires_torch, torch


def _bn_ref(x, mean, var, w, b, eps):
    bs = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(bs)) / np.sqrt(var.reshape(bs) + eps) * w.reshape(bs) + b.reshape(bs)


def test_relu_and_leaky_layers(rng):
    x = rng.standard_normal((4, 5))
    g = rng.standard_normal((4, 5))
    r = nn.ReLU()
    np.testing.assert_array_equal(r(x), np.where(x < 0, 0.0, x))
    np.testing.assert_array_equal(r.backward(g), np.where(x > 0, g, 0.0))
    lk = nn.LeakyReLU(0.1)
    np.testing.assert_allclose(lk.forward(x), np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(lk.backward(g), np.where(x > 0, g, 0.1 * g))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.ReLU().backward(g)
    assert r.eval() is r and not r.training
    assert r.train() is r and r.training


def test_batchnorm_defaults():
    bn = nn.BatchNorm(3)
    assert bn.weight.dtype == np.float32 and bn.weight.shape == (3,)
    np.testing.assert_array_equal(bn.weight, 1)
    np.testing.assert_array_equal(bn.bias, 0)
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)
    assert bn.training
    with pytest.raises(RuntimeError):
        bn.backward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError):
        nn.BatchNorm(0)
    with pytest.raises(TypeError):
        nn.BatchNorm(3, dtype=np.int32)
    with pytest.raises(ValueError):
        nn.BatchNorm(3, momentum=2.0)
    with pytest.raises(ValueError):
        nn.BatchNorm(3, eps=0.0)
    with pytest.raises(ValueError):
        nn.BatchNorm(3, activation="tanh")


def test_batchnorm_train_eval_numpy(rng):
    bn = nn.BatchNorm(4, dtype=np.float64, momentum=0.5)
    bn.weight[:] = rng.standard_normal(4)
    bn.bias[:] = rng.standard_normal(4)
    x = rng.standard_normal((6, 4, 3))
    y = bn(x)
    m = x.mean(axis=(0, 2))
    v = x.var(axis=(0, 2))
    np.testing.assert_allclose(
        y, _bn_ref(x, m, v, bn.weight, bn.bias, 1e-5), rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(bn.running_mean, 0.5 * m, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.5 + 0.5 * x.var(axis=(0, 2), ddof=1), rtol=1e-12)
    assert bn.num_batches_tracked == 1
    bn.eval()
    x2 = rng.standard_normal((5, 4, 3))
    y2 = bn(x2)
    np.testing.assert_allclose(
        y2,
        _bn_ref(x2, bn.running_mean, bn.running_var, bn.weight, bn.bias, 1e-5),
        rtol=1e-10,
        atol=1e-10,
    )
    g = rng.standard_normal(x2.shape)
    gi = bn.backward(g)
    bs = (1, -1, 1)
    np.testing.assert_allclose(
        gi, g * (bn.weight / np.sqrt(bn.running_var + 1e-5)).reshape(bs), rtol=1e-10
    )
    np.testing.assert_allclose(bn.grad_bias, g.sum(axis=(0, 2)), rtol=1e-10)


def test_batchnorm_without_affine_or_running_stats(rng):
    bn = nn.BatchNorm(3, affine=False, track_running_stats=False, dtype=np.float64)
    assert bn.weight is None and bn.running_mean is None
    x = rng.standard_normal((8, 3))
    bn.eval()  # no running statistics: batch statistics in eval mode too (PyTorch)
    y = bn(x)
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-10)
    gi = bn.backward(np.ones_like(x))
    np.testing.assert_allclose(gi, 0.0, atol=1e-10)  # d(sum of normalised)/dx = 0
    assert bn.state_dict() == {}


def test_state_dict_roundtrip_savez(rng, tmp_path):
    bn = nn.BatchNorm(5, axis=-1, activation="relu")
    for _ in range(3):
        bn(rng.standard_normal((7, 5)).astype(np.float32))
    bn.weight[:] = rng.standard_normal(5)
    path = tmp_path / "bn.npz"
    np.savez(path, **bn.state_dict())
    other = nn.BatchNorm(5, axis=-1, activation="relu")
    with np.load(path) as data:
        other.load_state_dict(data)
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[k], v)
    assert other.num_batches_tracked == 3
    # state_dict returns copies
    sd = bn.state_dict()
    sd["weight"][:] = 0
    assert np.any(bn.weight != 0)
    with pytest.raises(KeyError):
        other.load_state_dict({"weight": np.ones(5)})
    with pytest.raises(ValueError):
        bad = bn.state_dict()
        bad["bias"] = np.zeros(4)
        other.load_state_dict(bad)
    other.load_state_dict({"weight": np.full(5, 2.0)}, strict=False)
    np.testing.assert_array_equal(other.weight, 2.0)


@requires_torch
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu"])
def test_batchnorm_layer_matches_torch(rng, activation):
    F = torch.nn.functional
    C = 6
    ours = nn.BatchNorm(C, momentum=0.2, activation=activation, alpha=0.1)
    theirs = torch.nn.BatchNorm2d(C, momentum=0.2)
    w = rng.standard_normal(C).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    ours.weight[:] = w
    ours.bias[:] = b
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(w))
        theirs.bias.copy_(torch.from_numpy(b))

    def act(t):
        if activation == "relu":
            return F.relu(t)
        if activation == "leaky_relu":
            return F.leaky_relu(t, 0.1)
        return t

    for step, mode in enumerate(["train", "train", "train", "eval", "train"]):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        x = (rng.standard_normal((4, C, 5, 5)) * (step + 1)).astype(np.float32)
        g = rng.standard_normal(x.shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_()
        theirs.zero_grad()
        yt = act(theirs(xt))
        yt.backward(torch.from_numpy(g))
        y = ours(x)
        gi = ours.backward(g)
        t = dict(rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(y, yt.detach().numpy(), **t)
        np.testing.assert_allclose(gi, xt.grad.numpy(), **t)
        np.testing.assert_allclose(ours.grad_weight, theirs.weight.grad.numpy(), **t)
        np.testing.assert_allclose(ours.grad_bias, theirs.bias.grad.numpy(), **t)
        np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), **t)
        np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), **t)
