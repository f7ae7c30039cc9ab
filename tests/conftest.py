"""Shared test fixtures: the optional oracles (PyTorch) and random data helpers."""

import numpy as np
import pytest

try:  # PyTorch is an optional oracle: tests that need it skip without it.
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")
