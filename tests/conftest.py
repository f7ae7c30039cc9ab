"""Shared test fixtures: the optional oracles (PyTorch), random data helpers, and the
Dask cluster of the Dask tests."""

import logging
import os

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


@pytest.fixture(scope="module")
def client():
    """A dask.distributed client on a LocalCluster of two worker processes with one
    thread each and 1 GiB of memory, one per test module (tests/test_dask.py,
    tests/test_prelu_dask.py): closed, and this process's environment restored, before
    the next module runs.  The tests that take it skip where dask or distributed is not
    installed."""
    pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    # starting the worker processes sets OMP_NUM_THREADS=1 and others in this process's
    # environment, which later tests' subprocesses would inherit: restored afterwards
    environ = dict(os.environ)
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        memory_limit="1GiB",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    try:
        with cluster, distributed.Client(cluster) as c:
            yield c
    finally:
        os.environ.clear()
        os.environ.update(environ)


def pytest_collection_modifyitems(config, items):
    """``CYRELU_TEST_SHARD=i/n`` keeps every n-th collected test, from the i-th (0-based):
    tests/test_cuda_emulated.py runs the emulated GPU suite as n such processes side by
    side, one per core, and together they run every test once."""
    shard = os.environ.get("CYRELU_TEST_SHARD")
    if not shard:
        return
    try:
        i, n = (int(part) for part in shard.split("/"))
    except ValueError:
        raise pytest.UsageError("CYRELU_TEST_SHARD must be i/n, not %r" % shard) from None
    if not 0 <= i < n:
        raise pytest.UsageError("CYRELU_TEST_SHARD=%s: need 0 <= i < n" % shard)
    kept = [item for k, item in enumerate(items) if k % n == i]
    dropped = [item for k, item in enumerate(items) if k % n != i]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
