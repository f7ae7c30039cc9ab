"""Every CUDA kernel source compiles, on any machine with nvcc (no GPU needed); and
importing cyrelu never imports CuPy.

Each ``cyrelu/cuda/*.cu`` file is compiled to PTX with every template instantiation the
GPU backend asks NVRTC for (``_loader.NAME_EXPRESSIONS``), for the oldest and a current
architecture, with warnings as errors.  The sources are taken from the installed
package, so this also checks that they ship as package data.
"""

import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

NVCC = shutil.which("nvcc")
requires_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found")

ARCHS = ("compute_75", "compute_90")


def _cuda_dir():
    spec = importlib.util.find_spec("cyrelu")  # does not import cyrelu.cuda (nor CuPy)
    return os.path.join(list(spec.submodule_search_locations)[0], "cuda")


def _loader():
    """cyrelu/cuda/_loader.py, loaded by path: importing the package would import CuPy."""
    spec = importlib.util.spec_from_file_location("_cyrelu_cuda_loader",
                                                  os.path.join(_cuda_dir(), "_loader.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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


@requires_nvcc
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", _sources())
def test_compiles_to_ptx(tmp_path, name, arch):
    loader = _loader()
    exprs = loader.NAME_EXPRESSIONS[name]
    # Compile the inlined source (what NVRTC gets), instantiating every kernel the
    # backend uses: taking a template kernel's address instantiates it.
    wrapper = tmp_path / ("all_" + name)
    wrapper.write_text(
        loader.source(name)
        + "\n\nvoid *cyr_instantiate_all[] = {\n"
        + ",\n".join("    (void *)&%s" % e for e in exprs)
        + "\n};\n"
    )
    ptx = tmp_path / (name + ".ptx")
    cmd = [NVCC, "--ptx", "-std=c++14", "-arch=" + arch, "-Werror", "all-warnings",
           str(wrapper), "-o", str(ptx)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, "nvcc failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    text = ptx.read_text()
    entries = re.findall(r"\.entry\s+(\S+?)\(", text)
    assert len(entries) == len(exprs), (len(entries), len(exprs))
    # The 16-byte paths really are 128-bit accesses.
    if name == "elementwise.cu":
        assert "ld.global.v4.f32" in text and "st.global.v4.f32" in text
        assert "ld.global.v2.f64" in text and "ld.global.v4.u32" in text
    # ReLU must never be lowered to max (max(NaN, 0) is 0).
    assert "max.f32" not in text and "max.f64" not in text


def _cupy_nvrtc():
    """CuPy's NVRTC program class, where CuPy and libnvrtc are installed (no GPU needed)."""
    try:
        from cupy.cuda import compiler

        compiler._get_nvrtc_version()
        return compiler._NVRTCProgram
    except Exception:  # no CuPy, no libnvrtc, or CuPy internals moved
        return None


@pytest.mark.skipif(_cupy_nvrtc() is None, reason="CuPy with NVRTC not available")
@pytest.mark.parametrize("name", _sources())
def test_compiles_with_nvrtc_like_cupy(name):
    """What cupy.RawModule does, minus the device: NVRTC with CuPy's default options and
    the loader's name expressions (every one must resolve to a lowered name)."""
    from cupy.cuda.compiler import CompileException

    loader = _loader()
    exprs = [e for e in loader.NAME_EXPRESSIONS[name]]
    try:
        prog = _cupy_nvrtc()(loader.source(name), name, (), (), name_expressions=exprs,
                             method="ptx")
        _, mapping = prog.compile(("-std=c++14", "-arch=compute_75",
                                   "--device-as-default-execution-space"), None)
    except CompileException:
        raise
    except (TypeError, AttributeError, ValueError) as exc:  # CuPy's internals moved
        pytest.skip("this CuPy's NVRTC wrapper differs: %s" % exc)
    assert sorted(mapping) == sorted(exprs)
