"""What the installed package promises: one version, type information, build
facts in show_config(), and an import that pulls in nothing optional.

These run against whatever ``import cyrelu`` finds, which in CI is the installed
wheel, run from a directory outside the source tree.
"""

import contextlib
import importlib.metadata
import io
import os
import pathlib
import re
import subprocess
import sys

import pytest

import cyrelu
from cyrelu import _parallel

PKG_DIR = pathlib.Path(cyrelu.__file__).resolve().parent
EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "typed_usage.py"
# Extension-module suffixes of every platform (.so, .pyd, debug variants, ...).
_EXT_SUFFIXES = (".so", ".pyd")


def _compiled_modules():
    """(directory, module name) of every extension module in the installed package."""
    return sorted(
        (p.parent, p.name.split(".")[0]) for p in PKG_DIR.rglob("*") if p.suffix in _EXT_SUFFIXES
    )


def test_version_is_pep440_and_matches_installed_metadata():
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", cyrelu.__version__)
    try:
        dist_version = importlib.metadata.version("cyrelu")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("cyrelu is not installed (an in-place build)")
    assert dist_version == cyrelu.__version__


def test_ships_py_typed():
    assert (PKG_DIR / "py.typed").is_file()


def test_every_compiled_module_has_a_stub():
    compiled = _compiled_modules()
    assert compiled, "no compiled extension modules next to %s" % PKG_DIR
    missing = [str(d / m) for d, m in compiled if not (d / (m + ".pyi")).is_file()]
    assert not missing, "compiled modules without a .pyi stub: %s" % missing


def test_public_api_is_complete():
    for name in cyrelu.__all__:
        assert hasattr(cyrelu, name), name


@pytest.mark.skipif(not EXAMPLE.is_file(), reason="needs the source tree's examples/")
def test_typed_example_uses_every_public_name():
    text = EXAMPLE.read_text()
    missing = [name for name in cyrelu.__all__ if "cyrelu." + name not in text]
    assert not missing, "examples/typed_usage.py does not use: %s" % missing


def _show_config_text():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cyrelu.show_config()
    return buf.getvalue()


def test_show_config_reports_the_build():
    text = _show_config_text()
    assert cyrelu.__version__ in text
    for key in ("version", "openmp", "compiler", "simd", "default_threads", "gpu"):
        assert re.search(r"^\s+%s\s+:" % key, text, re.M), (key, text)
    openmp_line = re.search(r"^\s+openmp\s+:\s*(.*)$", text, re.M).group(1)
    if _parallel.openmp_version():
        assert openmp_line.startswith("on")
    else:
        assert openmp_line == "off (serial build)"
        assert _parallel.effective_n_threads(None) == 1


def test_show_config_matches_the_expected_build():
    # CI says which build it installed: CYRELU_EXPECT_OPENMP=1 (wheel) or 0 (serial).
    expected = os.environ.get("CYRELU_EXPECT_OPENMP")
    if expected is None:
        pytest.skip("CYRELU_EXPECT_OPENMP not set")
    config = cyrelu._config.config()
    if expected == "1":
        assert config["openmp"].startswith("on"), config
        assert config["openmp_runtime"] not in ("none", "unknown"), config
    else:
        assert config["openmp"] == "off (serial build)", config
        assert config["default_threads"] == 1, config


def test_import_pulls_in_no_optional_package(tmp_path):
    # A fresh interpreter, outside any source tree, importing this same cyrelu.
    env = dict(os.environ, PYTHONPATH=str(PKG_DIR.parent))
    # numpy.random is NumPy's own but costs ~15 ms: only the initialisers need it, on use.
    optional = [
        "cupy",
        "dask",
        "distributed",
        "torch",
        "threadpoolctl",
        "scipy",
        "hypothesis",
        "pytest",
        "numpy.random",
    ]
    code = (
        "import os, sys, cyrelu\n"
        "assert os.path.realpath(cyrelu.__file__).startswith(%r), cyrelu.__file__\n"
        "print(','.join(m for m in %r if m in sys.modules))\n" % (str(PKG_DIR), optional)
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", "import cyrelu imported: %s" % out.stdout.strip()
