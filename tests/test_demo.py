"""python -m cyrelu.demo: a tiny configuration learns, is deterministic, and its
backward pass matches finite differences (the end-to-end check of the gradients)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import cyrelu
from cyrelu import demo

TINY = dict(depth=4, width=32, samples=512, test_samples=256, epochs=12, batch_size=64)


def test_relu_batchnorm_learns():
    cfg = demo.Config(activations=("relu",), inits=("kaiming",), batch_norms=(True,), **TINY)
    (r,) = demo.run(cfg)
    chance = math.log(cfg.n_classes)
    assert r.batch_norm and r.activation == "relu"
    assert not r.diverged
    assert r.loss_history[-1] < r.loss_history[0]
    assert r.loss < 0.5 * chance, (r.loss, r.loss_history)
    assert r.accuracy > 0.75
    assert 0.0 < r.sparsity < 1.0  # a ReLU network has exact zeros, and not only zeros
    assert 0.0 <= r.dead_fraction <= 1.0


def test_deterministic_for_a_seed():
    cfg = demo.Config(
        activations=("leaky_relu", "tanh"),
        inits=("xavier",),
        batch_norms=(False, True),
        **dict(TINY, epochs=2),
    )
    a, b = demo.run(cfg), demo.run(cfg)
    for ra, rb in zip(a, b, strict=True):
        assert ra.loss_history == rb.loss_history
        assert ra.grad_norms == rb.grad_norms
        assert (ra.loss, ra.accuracy, ra.sparsity) == (rb.loss, rb.accuracy, rb.sparsity)
    other = demo.run(
        demo.Config(
            activations=("leaky_relu",),
            inits=("xavier",),
            batch_norms=(False,),
            **dict(TINY, epochs=2, seed=1),
        )
    )
    assert other[0].loss_history != a[0].loss_history


def test_spirals_are_balanced_and_standardised():
    x, y = demo.make_spirals(400, 4, np.random.default_rng(0))
    assert x.shape == (400, 2) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [100] * 4
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1, rtol=1e-4)


@pytest.mark.parametrize("activation", demo.ACTIVATIONS)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_backward_matches_finite_differences(activation, batch_norm):
    rng = np.random.default_rng(3)
    net = demo.MLP(2, 5, 3, 3, activation, "kaiming", batch_norm, rng, dtype=np.float64)
    x = rng.standard_normal((12, 2))
    y = rng.integers(0, 3, size=12)
    net.train()

    def loss_at():
        return demo.cross_entropy(net.forward(x), y)[0]

    _, g, _ = demo.cross_entropy(net.forward(x), y)
    net.backward(g)
    h = 1e-6
    for lin in net.layers():
        analytic = lin.grad_weight.copy()
        for idx in [(0, 0), (lin.weight.shape[0] - 1, lin.weight.shape[1] - 1), (1, 2)]:
            idx = (idx[0] % lin.weight.shape[0], idx[1] % lin.weight.shape[1])
            old = lin.weight[idx]
            lin.weight[idx] = old + h
            up = loss_at()
            lin.weight[idx] = old - h
            down = loss_at()
            lin.weight[idx] = old
            numeric = (up - down) / (2 * h)
            assert analytic[idx] == pytest.approx(numeric, rel=1e-4, abs=1e-8), (lin, idx)
    if batch_norm:
        _, g, _ = demo.cross_entropy(net.forward(x), y)
        net.backward(g)
        bn = net.norms[0]
        analytic = np.array(bn.grad_weight, dtype=np.float64)
        old = float(bn.weight[1])
        bn.weight[1] = old + h
        up = loss_at()
        bn.weight[1] = old - h
        down = loss_at()
        bn.weight[1] = old
        assert analytic[1] == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-8)


def test_cli_table_and_json(tmp_path, capsys):
    path = tmp_path / "out.json"
    rc = demo.main(
        [
            "--epochs",
            "1",
            "--depth",
            "2",
            "--width",
            "8",
            "--samples",
            "128",
            "--activations",
            "relu,sigmoid",
            "--seed",
            "5",
            "--json",
            str(path),
            "--quiet",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    for col in (
        "activation",
        "init",
        "BN",
        "loss",
        "train acc",
        "g1/gL at init",
        "sparsity",
        "dead",
        "s/epoch",
    ):
        assert col in out
    assert out.count("| relu ") == 4 and out.count("| sigmoid ") == 4
    data = json.loads(path.read_text())
    assert data["config"]["seed"] == 5 and data["config"]["depth"] == 2
    assert len(data["results"]) == 8
    r = data["results"][0]
    assert r["activation"] == "relu" and 0 <= r["dead_fraction"] <= 1
    assert len(r["grad_norms"]) == 3 and len(r["loss_history"]) == 1
    r = data["results"][-1]
    assert r["activation"] == "sigmoid" and r["dead_fraction"] is None  # not defined


def test_cli_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        demo.main(["--activations", "swish"])
    assert exc.value.code == 2
    assert "swish" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        demo.main(["--depth", "0"])
    with pytest.raises(SystemExit):
        demo.main(["--samples", "3"])
    with pytest.raises(SystemExit):
        demo.main(["--seed", "-1"])


def test_plot_needs_matplotlib(tmp_path, capsys):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(SystemExit) as exc:
            demo.main(["--plot", str(tmp_path / "p.png"), "--epochs", "1"])
        assert exc.value.code == 2
        assert "matplotlib" in capsys.readouterr().err
    else:
        rc = demo.main(
            [
                "--plot",
                str(tmp_path / "p.png"),
                "--epochs",
                "1",
                "--depth",
                "2",
                "--width",
                "8",
                "--samples",
                "64",
                "--activations",
                "relu",
                "--quiet",
            ]
        )
        assert rc == 0 and (tmp_path / "p.png").stat().st_size > 0


def test_module_entry_point():
    # run next to the cyrelu this test imported (the installed one in CI), not the source tree
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))
    out = subprocess.run(
        [sys.executable, "-m", "cyrelu.demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=pkg_parent,
    )
    assert out.returncode == 0, out.stderr
    for opt in ("--epochs", "--depth", "--seed", "--json", "--plot"):
        assert opt in out.stdout
