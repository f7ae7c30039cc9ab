"""The GPU tests, run on the CPU: tests/test_gpu.py against an emulated CuPy.

``tests/cuda_emulation/cupy`` stands in for CuPy and compiles the CUDA kernel sources
with the host C++ compiler (``tests/cuda_emulation/shim.hpp`` supplies CUDA's built-ins,
with real barriers and warp shuffles), so on machines without a GPU every kernel still
runs: every index computation, vector load, grid-stride loop and reduction, together
with the backend's Python side (launch configurations, kernel argument types, layouts,
validation).  What it cannot show is timing, or behaviour that depends on real thread
concurrency beyond the barriers.  Needs g++ with C++20; set CYRELU_SKIP_EMULATION=1 to
skip it (it takes a minute or two).
"""

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CXX = shutil.which(os.environ.get("CXX", "g++"))


@pytest.mark.source_check
@pytest.mark.skipif(CXX is None, reason="no C++ compiler for the CUDA emulation")
@pytest.mark.skipif(
    os.environ.get("CYRELU_SKIP_EMULATION", "") not in ("", "0"),
    reason="CYRELU_SKIP_EMULATION is set",
)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the emulation uses ucontext")
@pytest.mark.skipif(
    not os.path.exists(os.path.join(HERE, "cuda_emulation", "shim.hpp")),
    reason="tests/cuda_emulation is not in this source tree",
)
def test_gpu_suite_on_emulated_cupy(tmp_path):
    import cyrelu

    env = dict(os.environ)
    # the emulated cupy first, then the cyrelu this run tests (installed, or an in-place
    # build), run from an empty directory
    where = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(HERE, "cuda_emulation"), where] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    # The suite runs as one process per core (at most 2; each a shard of the tests,
    # tests/conftest.py): its kernels run as fibers on one thread, so one process keeps
    # one core busy (about 100 s alone on 2 cores, about 60 s as two shards).
    shards = max(1, min(2, len(os.sched_getaffinity(0))))
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        os.path.join(HERE, "test_gpu.py"),
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::RuntimeWarning",
    ]
    procs = []
    for i in range(shards):
        run_dir = tmp_path / ("shard%d" % i)
        run_dir.mkdir()
        log = run_dir / "pytest.log"
        penv = dict(env, CYRELU_TEST_SHARD="%d/%d" % (i, shards))
        with open(log, "w") as fh:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                cmd, cwd=run_dir, env=penv, stdout=fh, stderr=subprocess.STDOUT
            )
        procs.append((proc, log))
    try:
        for proc, _ in procs:
            proc.wait(timeout=1200)
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, log in procs:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        assert proc.returncode == 0, tail
        assert " passed" in tail and "could not import" not in tail, tail
