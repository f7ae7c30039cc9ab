"""Fork safety: a child forked after the parent ran parallel kernels must not hang.

OpenMP's thread pool does not survive fork (libgomp's child waits forever for
threads that no longer exist), so cyrelu runs serially in a forked child.  Each
scenario runs in a subprocess under a timeout, so that a regression fails the
test instead of hanging the suite.
"""

import os
import subprocess
import sys
import textwrap

import pytest

import cyrelu

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))

# Shared by both scenarios: data large enough to go parallel, the parent's results
# computed with 2 threads (which starts the OpenMP thread pool), and the work the
# child does, returning whether every result matched and how many RuntimeWarnings
# it saw.
_PRELUDE = textwrap.dedent(
    """
    import os, sys, warnings
    import numpy as np
    import cyrelu

    rng = np.random.default_rng(0)
    x = rng.standard_normal(1_000_003).astype(np.float32)
    xb = rng.standard_normal((8, 4, 250_000)).astype(np.float32)
    want_relu = cyrelu.relu(x, num_threads=2)
    want_bn = cyrelu.batch_norm(xb, np.zeros(4, np.float32), np.ones(4, np.float32),
                                training=True, num_threads=2)
    want_dead = cyrelu.dead_units(xb, num_threads=2)
    assert not cyrelu._parallel.is_fork_child()

    def child_work(_=None):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ok = cyrelu.relu(x, num_threads=2).tobytes() == want_relu.tobytes()
            ok &= cyrelu.relu(x).tobytes() == want_relu.tobytes()
            got = cyrelu.batch_norm(xb, np.zeros(4, np.float32), np.ones(4, np.float32),
                                    training=True, num_threads=2)
            ok &= got.tobytes() == want_bn.tobytes()
            ok &= bool((cyrelu.dead_units(xb, num_threads=4) == want_dead).all())
            ok &= cyrelu._parallel.effective_n_threads(None) == 1
            ok &= cyrelu._parallel.is_fork_child()
        n_warn = sum(issubclass(w.category, RuntimeWarning) and "fork" in str(w.message)
                     for w in caught)
        return ok, n_warn
    """
)


def _run(body):
    code = _PRELUDE + textwrap.dedent(body)
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=_PKG_PARENT
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout.split()


def _expected_warnings():
    # a serial build has no thread pool to protect: it never warns
    return "1" if cyrelu._parallel.openmp_version() else "0"


def test_os_fork_child_runs_serially_and_correctly():
    out = _run(
        """
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                ok, n_warn = child_work()
                os.write(w, ("%d %d" % (ok, n_warn)).encode())
            finally:
                os._exit(0)
        os.close(w)
        msg = os.read(r, 100).decode()
        os.waitpid(pid, 0)
        print(msg)
        # the parent is untouched: still parallel, still not a fork child
        print(int(cyrelu._parallel.is_fork_child()))
        """
    )
    assert out == ["1", _expected_warnings(), "0"]


def test_fork_multiprocessing_pool():
    out = _run(
        """
        import multiprocessing as mp
        with mp.get_context("fork").Pool(2) as pool:
            results = pool.map(child_work, range(4))
        print(all(ok for ok, _ in results))
        # each worker warns at most once, however many tasks it runs
        print(max(n for _, n in results) <= 1, sum(n for _, n in results) >= 1)
        """
    )
    openmp = cyrelu._parallel.openmp_version() != 0
    assert out == ["True", "True", str(openmp)]


def test_show_config_reports_fork_child():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
            import os, cyrelu
            cyrelu.show_config()
            pid = os.fork()
            if pid == 0:
                cyrelu.show_config()
                os._exit(0)
            os.waitpid(pid, 0)
            """
            ),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=_PKG_PARENT,
        check=True,
    ).stdout
    lines = [ln for ln in out.splitlines() if "fork_child" in ln]
    assert len(lines) == 2
    assert lines[0].split(":", 1)[1].strip() == "no"
    assert "yes, parallel regions run serially (OpenMP is not fork-safe)" in lines[1]
