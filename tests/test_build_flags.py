"""The OpenMP flag selection in setup.py, for every platform, on this machine.

``openmp_flags`` is a pure function of (compiler type, platform, environment), so
the macOS and Windows branches are checked here even though only Linux builds here.
These tests need the source tree's setup.py and skip when run against an
installed wheel from elsewhere.
"""

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

SETUP_PY = pathlib.Path(__file__).resolve().parent.parent / "setup.py"

pytestmark = pytest.mark.skipif(not SETUP_PY.is_file(), reason="needs the source tree's setup.py")


@pytest.fixture(scope="module")
def setup_mod():
    spec = importlib.util.spec_from_file_location("cyrelu_setup_under_test", SETUP_PY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # safe: setup() only runs under __main__
    return mod


@pytest.mark.parametrize("compiler", ["unix", "mingw32", "cygwin"])
@pytest.mark.parametrize("platform", ["linux", "win32", "freebsd14"])
def test_gcc_style_compilers_use_fopenmp(setup_mod, compiler, platform):
    assert setup_mod.openmp_flags(compiler, platform, {}) == (["-fopenmp"], ["-fopenmp"])


def test_msvc_uses_slash_openmp_and_links_vcomp_implicitly(setup_mod):
    assert setup_mod.openmp_flags("msvc", "win32", {}) == (["/openmp"], [])


def test_macos_with_explicit_prefix(setup_mod):
    flags = setup_mod.openmp_flags("unix", "darwin", {"CYRELU_OPENMP_PREFIX": "/opt/omp"})
    assert flags == (
        ["-Xpreprocessor", "-fopenmp", "-I/opt/omp/include"],
        ["-L/opt/omp/lib", "-lomp"],
    )


def test_macos_finds_homebrew_libomp(setup_mod, tmp_path):
    (tmp_path / "opt" / "libomp").mkdir(parents=True)
    prefix = str(tmp_path / "opt" / "libomp")
    compile_args, link_args = setup_mod.openmp_flags(
        "unix", "darwin", {"HOMEBREW_PREFIX": str(tmp_path)}
    )
    assert compile_args == ["-Xpreprocessor", "-fopenmp", "-I" + prefix + "/include"]
    assert link_args == ["-L" + prefix + "/lib", "-lomp"]


def test_macos_without_libomp_still_asks_for_it(setup_mod, tmp_path, monkeypatch):
    # No prefix found: plain flags; the build's probe then decides (serial fallback).
    monkeypatch.setattr(setup_mod, "_homebrew_libomp_prefix", lambda env: None)
    assert setup_mod.openmp_flags("unix", "darwin", {}) == (
        ["-Xpreprocessor", "-fopenmp"],
        ["-lomp"],
    )


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on", " 1 "])
@pytest.mark.parametrize(
    "compiler,platform", [("unix", "linux"), ("msvc", "win32"), ("unix", "darwin")]
)
def test_disable_env_forces_serial_everywhere(setup_mod, value, compiler, platform):
    env = {setup_mod.DISABLE_ENV: value, "CYRELU_OPENMP_PREFIX": "/opt/omp"}
    assert setup_mod.openmp_flags(compiler, platform, env) is None


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "OFF"])
def test_disable_env_falsy_values_keep_openmp(setup_mod, value):
    env = {setup_mod.DISABLE_ENV: value}
    assert setup_mod.openmp_flags("unix", "linux", env) == (["-fopenmp"], ["-fopenmp"])


def test_optimisation_flags_keep_ieee_semantics(setup_mod):
    assert setup_mod.optimisation_flags("msvc") == ["/O2"]
    unix = setup_mod.optimisation_flags("unix")
    assert "-O3" in unix
    for forbidden in ("-ffast-math", "-Ofast", "-march=native", "-funsafe-math-optimizations"):
        assert forbidden not in unix
    # no fused multiply-adds the source did not ask for: the same bits on every platform
    assert "-ffp-contract=off" in unix


@pytest.mark.parametrize("level", ["0", "1", "2", "3"])
def test_opt_level_env_sets_only_the_o_flag(setup_mod, level):
    flags = setup_mod.optimisation_flags("unix", {setup_mod.OPT_LEVEL_ENV: level})
    assert flags == ["-O" + level, *setup_mod.optimisation_flags("unix")[1:]]
    assert setup_mod.optimisation_flags("msvc", {setup_mod.OPT_LEVEL_ENV: level}) == ["/O2"]


def test_debug_info_off_unless_asked(setup_mod):
    """No debug information by default (-g0 after Python's own -g), kept when
    CYRELU_DEBUG_INFO is set or $CFLAGS asks for it."""
    assert setup_mod.optimisation_flags("unix")[-1] == "-g0"
    assert setup_mod.debug_info_flags({}) == ["-g0"]
    assert setup_mod.debug_info_flags({"CFLAGS": "-O2 -g0"}) == ["-g0"]
    assert setup_mod.debug_info_flags({setup_mod.DEBUG_INFO_ENV: "1"}) == []
    for cflags in ("-g", "-fsanitize=address -g", "-g1", "-ggdb3"):
        assert setup_mod.debug_info_flags({"CFLAGS": cflags}) == []
        assert "-g0" not in setup_mod.optimisation_flags("unix", {"CFLAGS": cflags})


@pytest.mark.parametrize("bad", ["fast", "4", "-O1", "s"])
def test_opt_level_env_rejects_other_values(setup_mod, bad):
    with pytest.raises(ValueError, match="CYRELU_OPT_LEVEL"):
        setup_mod.optimisation_flags("unix", {setup_mod.OPT_LEVEL_ENV: bad})


# ---- the OpenMP probe uses the build's flags -------------------------------------------


def test_probe_args_carry_cflags_and_ldflags_into_the_executable_link(setup_mod):
    compiler_so = ["gcc", "-O3", "-fsanitize=address", "-fPIC"]
    linker_so = ["gcc", "-shared", "-L/py/lib", "-fsanitize=address"]
    env = {"CFLAGS": "-fsanitize=address --coverage", "LDFLAGS": "-Wl,-z,now"}
    cargs, largs = setup_mod.probe_args(compiler_so, linker_so, ["-fopenmp"], ["-fopenmp"], env)
    assert cargs == ["--coverage", "-fopenmp"]  # -fsanitize is already in compiler_so
    assert "-shared" not in largs
    for flag in ("-L/py/lib", "-fsanitize=address", "--coverage", "-Wl,-z,now", "-fopenmp"):
        assert flag in largs
    assert largs.count("-fsanitize=address") == 1
    assert largs[-1] == "-fopenmp"


def test_probe_args_for_an_uncustomised_compiler(setup_mod):
    # no configured command lines (e.g. MSVC's object has none): the environment's flags
    cargs, largs = setup_mod.probe_args(None, None, ["/openmp"], [], {"CFLAGS": "/Zi"})
    assert cargs == ["/Zi", "/openmp"]
    assert largs == ["/Zi"]


def _real_compiler(env):
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    old = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        customize_compiler(compiler)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return compiler


def _sanitizer_available():
    cc = shutil.which("gcc")
    if cc is None or not sys.platform.startswith("linux"):
        return False
    lib = subprocess.run(
        [cc, "-print-file-name=libasan.so"], capture_output=True, text=True
    ).stdout.strip()
    return os.path.isabs(lib) and os.path.exists(lib)


@pytest.mark.skipif(not _sanitizer_available(), reason="needs gcc with libasan")
def test_probe_succeeds_with_sanitizer_cflags(setup_mod):
    env = dict(
        os.environ,
        CC="gcc",
        CFLAGS="-fsanitize=address,undefined",
        LDFLAGS="-fsanitize=address,undefined",
    )
    env.pop(setup_mod.DISABLE_ENV, None)
    compiler = _real_compiler(env)
    flags = setup_mod.openmp_flags(compiler.compiler_type, sys.platform, env)
    assert setup_mod.probe_openmp(compiler, *flags, env=env)
    assert setup_mod.checked_openmp_flags(compiler, sys.platform, env) == flags


@pytest.mark.skipif(not _sanitizer_available(), reason="needs gcc")
def test_failed_probe_is_an_error_when_openmp_is_required(setup_mod):
    # flags the linker cannot satisfy make the probe fail
    env = dict(os.environ, CC="gcc", LDFLAGS="-lcyrelu-no-such-library")
    env.pop(setup_mod.DISABLE_ENV, None)
    compiler = _real_compiler(env)
    assert not setup_mod.probe_openmp(compiler, ["-fopenmp"], ["-fopenmp"], env=env)
    with pytest.raises(RuntimeError, match="CYRELU_REQUIRE_OPENMP"):
        setup_mod.checked_openmp_flags(
            compiler, sys.platform, dict(env, **{setup_mod.REQUIRE_ENV: "1"})
        )
    with pytest.warns(UserWarning, match="serial"):
        assert setup_mod.checked_openmp_flags(compiler, sys.platform, env) is None
