"""Every CUDA kernel source compiles, on any machine with nvcc (no GPU needed); and
importing cyrelu never imports CuPy.

Each ``cyrelu/cuda/*.cu`` file is compiled to PTX as the loader hands it to NVRTC (the
inlined source plus one ``extern "C"`` kernel per instantiation in
``_loader.NAME_EXPRESSIONS``), for the oldest and a current architecture, with warnings as
errors, and with ``-ftz=true`` as CuPy always adds it: no flush-to-zero float32
instruction may be left (the activations, the diagnostics and BatchNorm keep subnormals,
as the CPU path and PyTorch do).  The sources are taken from the installed
package, so this also checks that they ship as package data.
"""

import glob
import importlib.util
import os
import re
import shutil
import subprocess

import pytest

NVCC = shutil.which("nvcc")
requires_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found")

ARCHS = ("compute_75", "compute_90")


def _cuda_dir():
    spec = importlib.util.find_spec("cyrelu")  # does not import cyrelu.cuda (nor CuPy)
    return os.path.join(next(iter(spec.submodule_search_locations)), "cuda")


def _loader():
    """cyrelu.cuda._loader (importing cyrelu.cuda needs no CuPy)."""
    from cyrelu.cuda import _loader

    return _loader


def _sources():
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(_cuda_dir(), "*.cu")))


def test_sources_are_shipped():
    assert _sources() == sorted(_loader().NAME_EXPRESSIONS), (
        "every .cu file needs its kernel list in _loader.NAME_EXPRESSIONS, and every list "
        "its .cu file in the installed package"
    )


def test_loader_inlines_includes():
    loader = _loader()
    for name in _sources():
        text = loader.source(name)
        assert '#include "' not in text
        assert "#include <" not in text, "NVRTC sources must not need system headers"


def _check_ptx(name, text, exprs, loader):
    entries = re.findall(r"\.entry\s+(\S+?)\(", text)
    assert sorted(entries) == sorted(loader.kernel_name(e) for e in exprs)
    # The 16-byte paths really are 128-bit accesses.
    if name == "elementwise.cu":
        assert "ld.global.v4.f32" in text and "st.global.v4.f32" in text
        assert "ld.global.v2.f64" in text and "ld.global.v4.u32" in text
    # ReLU must never be lowered to max (max(NaN, 0) is 0).
    assert "max.f32" not in text and "max.f64" not in text
    # -ftz=true must not reach any float32 instruction: relu(-1e-40) is 0, not -1e-40;
    # leaky_relu(1e-40) is 1e-40, not 0; subnormals are not zeros for sparsity.
    ftz = sorted(set(re.findall(r"\b[a-z]+(?:\.[a-z0-9]+)*\.ftz(?:\.[a-z0-9]+)*", text)))
    assert not ftz, "flush-to-zero instructions in %s: %s" % (name, ftz)


@requires_nvcc
@pytest.mark.source_check
@pytest.mark.parametrize("name", _sources())
def test_compiles_to_ptx(tmp_path, name):
    loader = _loader()
    exprs = loader.NAME_EXPRESSIONS[name]
    # What NVRTC gets: the inlined source and one extern "C" kernel per instantiation.
    wrapper = tmp_path / ("all_" + name)
    wrapper.write_text(loader.program(name, exprs))
    # One nvcc per architecture, side by side (each is one single-threaded front end:
    # batchnorm.cu takes about 45 s for each on 2 cores, together about 50 s).
    runs = []
    for arch in ARCHS:
        ptx = tmp_path / ("%s.%s.ptx" % (name, arch))
        # -ftz=true: CuPy appends it to every compile, unconditionally
        cmd = [
            NVCC,
            "--ptx",
            *loader.OPTIONS,
            "-ftz=true",
            "-arch=" + arch,
            "-Werror",
            "all-warnings",
            str(wrapper),
            "-o",
            str(ptx),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs.append((arch, ptx, proc))
    results = [(arch, ptx, proc.communicate(), proc.returncode) for arch, ptx, proc in runs]
    for arch, ptx, (out, err), returncode in results:
        assert returncode == 0, "nvcc -arch=%s failed:\n%s\n%s" % (arch, out, err)
        _check_ptx(name, ptx.read_text(), exprs, loader)


def _cupy_nvrtc():
    """CuPy's NVRTC program class, where CuPy and libnvrtc are installed (no GPU needed)."""
    try:
        from cupy.cuda import compiler

        compiler._get_nvrtc_version()
        return compiler._NVRTCProgram
    except Exception:  # no CuPy, no libnvrtc, or CuPy internals moved
        return None


@pytest.mark.source_check
@pytest.mark.skipif(_cupy_nvrtc() is None, reason="CuPy with NVRTC not available")
@pytest.mark.parametrize("name", _sources())
def test_compiles_with_nvrtc_like_cupy(name):
    """What cupy.RawModule does, minus the device: NVRTC with the loader's options and
    CuPy's own additions (-ftz=true among them), one element type at a time."""
    from cupy.cuda.compiler import CompileException

    loader = _loader()
    texts = []
    for grp in sorted({loader.group(e) for e in loader.NAME_EXPRESSIONS[name]}):
        exprs = [e for e in loader.NAME_EXPRESSIONS[name] if loader.group(e) == grp]
        try:
            prog = _cupy_nvrtc()(loader.program(name, exprs), name, (), (), method="ptx")
            ptx, _ = prog.compile(
                (
                    *loader.OPTIONS,
                    "-ftz=true",
                    "-arch=compute_90",
                    "--device-as-default-execution-space",
                ),
                None,
            )
        except CompileException:
            raise
        except (TypeError, AttributeError, ValueError) as exc:  # CuPy's internals moved
            pytest.skip("this CuPy's NVRTC wrapper differs: %s" % exc)
        texts.append(ptx.decode() if isinstance(ptx, bytes) else ptx)
    _check_ptx(name, "\n".join(texts), loader.NAME_EXPRESSIONS[name], loader)
