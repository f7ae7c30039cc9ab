"""Thread counts, thread safety, threadpoolctl and the instruction-set copies."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import cyrelu
from cyrelu import _parallel

from reference import (
    assert_same_bits,
    leaky_relu_backward_ref,
    leaky_relu_ref,
    relu_backward_ref,
    relu_ref,
)

N_BIG = 1_000_003  # well above the size at which kernels go parallel


# `python -c` puts its working directory first on sys.path: run it next to the
# cyrelu under test (site-packages for an installed wheel), never in the source
# tree, whose cyrelu/ has no compiled modules after a plain `pip install .`.
_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))


def _run(code, **env):
    full_env = dict(os.environ)
    full_env.update(env)
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=full_env,
        check=True,
        cwd=_PKG_PARENT,
    )
    return res.stdout.strip()


@pytest.mark.parametrize("layout", ["flat", "strided"])
def test_one_and_two_threads_give_identical_results(layout, rng):
    x = rng.standard_normal(N_BIG if layout == "flat" else (1001, 2003)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    if layout == "strided":
        x, g = x.T, g[::-1].T
    for f in (
        lambda t: cyrelu.relu(x, num_threads=t),
        lambda t: cyrelu.leaky_relu(x, 0.3, num_threads=t),
        lambda t: cyrelu.relu_backward(g, x, num_threads=t),
        lambda t: cyrelu.leaky_relu_backward(g, x, 0.3, num_threads=t),
    ):
        one, two = f(1), f(2)
        assert one.tobytes() == two.tobytes()
    assert_same_bits(cyrelu.leaky_relu(x, 0.3, num_threads=2), leaky_relu_ref(x, 0.3))


def test_many_threads_requested_is_fine(rng):
    x = rng.standard_normal(N_BIG)
    assert_same_bits(cyrelu.relu(x, num_threads=64), relu_ref(x))


def test_concurrent_calls_from_python_threads():
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(300_000 + 1000 * i).astype(np.float32) for i in range(8)]
    grads = [rng.standard_normal(a.shape).astype(np.float32) for a in inputs]
    errors = []
    barrier = threading.Barrier(8)

    def work(i):
        try:
            barrier.wait()
            for _ in range(5):
                assert_same_bits(cyrelu.relu(inputs[i]), relu_ref(inputs[i]))
                assert_same_bits(
                    cyrelu.leaky_relu(inputs[i], 0.1 * i), leaky_relu_ref(inputs[i], 0.1 * i)
                )
                assert_same_bits(
                    cyrelu.relu_backward(grads[i], inputs[i]),
                    relu_backward_ref(grads[i], inputs[i]),
                )
                assert_same_bits(
                    cyrelu.leaky_relu_backward(grads[i], inputs[i], 0.5),
                    leaky_relu_backward_ref(grads[i], inputs[i], 0.5),
                )
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_kernels_release_the_gil():
    """While a long kernel runs in one thread, another Python thread keeps running."""
    x = np.random.default_rng(1).standard_normal(20_000_000).astype(np.float32)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        before = len(ticks)
        for _ in range(5):
            cyrelu.relu(x, out=x, num_threads=1)
        during = len(ticks) - before
    finally:
        stop.set()
        t.join()
    assert during > 0


def test_omp_num_threads_is_the_default():
    code = "from cyrelu import _parallel; print(_parallel.effective_n_threads())"
    assert _run(code, OMP_NUM_THREADS="1") == "1"
    if _parallel.openmp_version():
        assert _run(code, OMP_NUM_THREADS="3") == "3"


def test_effective_n_threads_explicit():
    assert _parallel.effective_n_threads(5) == 5
    with pytest.raises(ValueError):
        _parallel.effective_n_threads(0)


def test_threadpoolctl_sees_and_limits_the_runtime():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _parallel.openmp_version():
        pytest.skip("serial build: no OpenMP runtime to control")
    info = threadpoolctl.threadpool_info()
    assert any(p["user_api"] == "openmp" for p in info), info
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _parallel.effective_n_threads(None) == 1
        x = np.random.default_rng(2).standard_normal(N_BIG)
        assert_same_bits(cyrelu.relu(x), relu_ref(x))
    assert _parallel.effective_n_threads(None) == max(1, _default_threads())


def _default_threads():
    return int(_run("from cyrelu import _parallel; print(_parallel.effective_n_threads())"))


@pytest.mark.kernel_choice
@pytest.mark.sweeps_itself
@pytest.mark.parametrize("isa", ["base", "avx2", "avx512"])
def test_every_instruction_set_copy_agrees_with_the_reference(isa):
    """CYRELU_ISA caps the runtime dispatch, so each compiled copy is checked here
    (on CPUs without a level, the cap falls back to what the CPU has)."""
    code = (
        "import numpy as np, cyrelu, sys\n"
        "sys.path.insert(0, %r)\n"
        "from reference import *\n"
        "from test_activations import special_array\n"
        "for dt in (np.float16, np.float32, np.float64):\n"
        "    for n in (1, 15, 333, 100003, 3000017):\n"
        "        x = special_array(dt, n=max(n, 70), seed=n)[:n]\n"
        "        g = special_array(dt, n=max(n, 70), seed=n + 1)[:n]\n"
        "        assert_same_bits(cyrelu.relu(x), relu_ref(x))\n"
        "        assert_same_bits(cyrelu.leaky_relu(x, 1.5), leaky_relu_ref(x, 1.5))\n"
        "        assert_same_bits(cyrelu.relu_backward(g, x), relu_backward_ref(g, x))\n"
        "        assert_same_bits(cyrelu.leaky_relu_backward(g, x, 0.5),\n"
        "                         leaky_relu_backward_ref(g, x, 0.5))\n"
        "        y = x.copy(); cyrelu.relu(y, out=y); assert_same_bits(y, relu_ref(x))\n"
        "print('ok', cyrelu._parallel.build_info()['isa'])\n"
    ) % os.path.dirname(os.path.abspath(__file__))
    out = _run(code, CYRELU_ISA=isa)
    assert out.startswith("ok"), out


@pytest.mark.skipif(
    os.environ.get("CYRELU_BIG_TESTS") != "1",
    reason="needs ~9 GB of memory; set CYRELU_BIG_TESTS=1 to run",
)
def test_more_than_2_31_elements():
    n = 2**31 + 37
    x = np.full(n, -1.0, dtype=np.float32)
    x[-5:] = 2.0
    x[:3] = 3.0
    cyrelu.relu(x, out=x)
    assert x[0] == 3.0 and x[-1] == 2.0 and x[-6] == 0.0 and x[2**31 + 10] == 0.0
    assert not np.any(x[3:-5])
