"""Build script for cyrelu's compiled core.

Every ``cyrelu/*.pyx`` file becomes the extension module ``cyrelu.<name>``,
compiled against ``include/`` and NumPy's headers, with OpenMP where the
compiler supports it.  The flag selection lives in :func:`openmp_flags` (a
pure function, unit-tested in ``tests/test_build_flags.py``); the probe that
decides whether the compiler really accepts those flags, compiled and linked
with the build's own flags ($CFLAGS/$LDFLAGS included), is
:func:`checked_openmp_flags`.

Environment:
  CYRELU_DISABLE_OPENMP=1   build serially (debugging, or a compiler without OpenMP).
  CYRELU_REQUIRE_OPENMP=1   fail the build instead of falling back to a serial one
                            (release builds: a wheel must never lose OpenMP silently).
  CYRELU_OPENMP_PREFIX=DIR  macOS: where libomp lives (default: Homebrew's prefix).
  CYRELU_CYTHON_TRACE=1     compile with Cython line tracing (coverage, profiling).
  CYRELU_BUILD_JOBS=N       compile N extension modules at a time (default: one per CPU).
  CYRELU_OPT_LEVEL=N        gcc/clang -O level, 0 to 3 (default 3; the sanitizer check uses 1).
  CYRELU_DEBUG_INFO=1       keep the compiler's debug information (gcc/clang: no -g0).  Off
                            by default, unless $CFLAGS asks for it (-g, -g1, ...).
"""

import glob
import os
import shlex
import shutil
import sys
import tempfile
import warnings

DISABLE_ENV = "CYRELU_DISABLE_OPENMP"
REQUIRE_ENV = "CYRELU_REQUIRE_OPENMP"


def _truthy(value):
    return str(value).strip().lower() not in ("", "0", "false", "no", "off")


def openmp_flags(compiler_type, platform, env):
    """Return ``(compile_args, link_args)`` for OpenMP, or ``None`` for a serial build.

    ``compiler_type`` is distutils' name ("unix", "msvc", "mingw32", ...),
    ``platform`` is ``sys.platform`` and ``env`` a mapping like ``os.environ``.
    """
    if _truthy(env.get(DISABLE_ENV, "")):
        return None
    if compiler_type == "msvc":
        # vcomp140.dll ships with the MSVC runtime redistributable.
        return (["/openmp"], [])
    if platform == "darwin":
        # Apple clang has no -fopenmp driver flag: preprocess with it and link libomp.
        prefix = env.get("CYRELU_OPENMP_PREFIX") or _homebrew_libomp_prefix(env)
        compile_args = ["-Xpreprocessor", "-fopenmp"]
        link_args = ["-lomp"]
        if prefix:
            compile_args.append("-I" + os.path.join(prefix, "include"))
            link_args = ["-L" + os.path.join(prefix, "lib"), "-lomp"]
        return (compile_args, link_args)
    # gcc, clang, icx and mingw all spell it the same way.
    return (["-fopenmp"], ["-fopenmp"])


def _homebrew_libomp_prefix(env):
    for root in (env.get("HOMEBREW_PREFIX"), "/opt/homebrew", "/usr/local"):
        if root and os.path.isdir(os.path.join(root, "opt", "libomp")):
            return os.path.join(root, "opt", "libomp")
    return None


# Linker flags that make a shared object; the probe links an executable instead.
_SHARED_ONLY = ("-shared", "-bundle", "-dynamiclib", "/DLL")


def _env_flags(env, name):
    return shlex.split(env.get(name, "") or "")


def probe_args(compiler_so, linker_so, compile_args, link_args, env):
    """``(compile_args, link_args)`` for compiling and linking the OpenMP probe with the
    flags the extension itself will be built with.

    ``compiler_so``/``linker_so`` are the compiler object's configured command lines
    (distutils puts $CFLAGS and $LDFLAGS into them); the probe's executable link
    (``linker_exe``, a bare ``cc``) would otherwise miss them, so e.g.
    ``CFLAGS=-fsanitize=address`` or ``--coverage`` made the probe fail to link and
    OpenMP was silently dropped.  Flags of $CFLAGS/$LDFLAGS not yet in the command
    lines are added too (a compiler object not customised from the environment).
    """
    compiler_so = list(compiler_so or [])
    linker_so = list(linker_so or [])
    cflags = _env_flags(env, "CFLAGS")
    ldflags = _env_flags(env, "LDFLAGS")
    cc_extra = [f for f in cflags if f not in compiler_so[1:]]
    ld_configured = [f for f in linker_so[1:] if f not in _SHARED_ONLY]
    ld_extra = [f for f in cflags + ldflags if f not in ld_configured]
    return (cc_extra + list(compile_args), ld_configured + ld_extra + list(link_args))


_PROBE_SRC = """
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


def probe_openmp(compiler, compile_args, link_args, env=os.environ):
    """Compile and link a tiny OpenMP program with the build's flags (``probe_args``):
    True if the toolchain can."""
    cargs, largs = probe_args(
        getattr(compiler, "compiler_so", None),
        getattr(compiler, "linker_so", None),
        compile_args,
        link_args,
        env,
    )
    tmp = tempfile.mkdtemp(prefix="cyrelu-omp-")
    try:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as fh:
            fh.write(_PROBE_SRC)
        objects = compiler.compile([path], output_dir=tmp, extra_postargs=cargs)
        compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=largs)
        return True
    except Exception:  # any compile or link error means: no usable OpenMP
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def checked_openmp_flags(compiler, platform, env):
    """``openmp_flags`` confirmed by the probe: the flags, or None for a serial build.
    A failed probe is an error when CYRELU_REQUIRE_OPENMP is set, else a warning."""
    flags = openmp_flags(compiler.compiler_type, platform, env)
    if flags is None or probe_openmp(compiler, *flags, env=env):
        return flags
    if _truthy(env.get(REQUIRE_ENV, "")):
        raise RuntimeError(
            "cyrelu: %s is set but the C compiler cannot build OpenMP code with %r "
            "(and CFLAGS=%r, LDFLAGS=%r)"
            % (REQUIRE_ENV, flags, env.get("CFLAGS", ""), env.get("LDFLAGS", ""))
        )
    warnings.warn(
        "cyrelu: the C compiler cannot build OpenMP code; building the serial "
        "version (install libgomp/libomp for multithreaded kernels).",
        stacklevel=1,
    )
    return None


OPT_LEVEL_ENV = "CYRELU_OPT_LEVEL"
DEBUG_INFO_ENV = "CYRELU_DEBUG_INFO"


def optimisation_flags(compiler_type, env=None):
    """Speed flags that keep IEEE semantics: no fast-math, no native-architecture tuning.

    ``env[CYRELU_OPT_LEVEL]`` (0, 1, 2 or 3; default 3) sets gcc/clang's ``-O`` level:
    the sanitizer build uses 1, which compiles several times faster."""
    if compiler_type == "msvc":
        return ["/O2"]
    level = str((env or {}).get(OPT_LEVEL_ENV, "") or "3").strip()
    if level not in ("0", "1", "2", "3"):
        raise ValueError("%s must be 0, 1, 2 or 3, got %r" % (OPT_LEVEL_ENV, level))
    # -fno-math-errno lets sqrt vectorise; -fno-trapping-math lets the compiler
    # if-convert `x > 0 ? x : a * x`.  Neither changes a single result bit.
    # -ffp-contract=off: no fused multiply-add where the source has a multiply and an
    # add (gcc fuses by default on aarch64, and would on x86 where FMA is enabled), so
    # every platform and instruction set rounds exactly as the source says.
    flags = ["-O" + level, "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
    return flags + debug_info_flags(env)


def debug_info_flags(env=None):
    """``["-g0"]`` (gcc/clang), after Python's own ``-g``: no debug information, unless
    ``env[CYRELU_DEBUG_INFO]`` is set or ``env[CFLAGS]`` asks for it (the sanitizer
    check's ``-g``).  The kernels' heavily inlined instruction-set copies made debug
    information most of the build: without it the BatchNorm module compiles in two
    thirds of the time (105 s -> 72 s on a 2-vCPU Zen 4) into an object a fifth the size."""
    env = env or {}
    if _truthy(env.get(DEBUG_INFO_ENV, "")):
        return []
    asked = [f for f in shlex.split(env.get("CFLAGS", "")) if f.startswith("-g") and f != "-g0"]
    return [] if asked else ["-g0"]


if __name__ == "__main__":
    import numpy
    from Cython.Build import cythonize
    from setuptools import Extension, setup
    from setuptools.command.build_ext import build_ext

    HERE = os.path.dirname(os.path.abspath(__file__))

    class BuildExt(build_ext):
        def finalize_options(self):
            super().finalize_options()
            # The modules are independent: compile them in parallel unless told
            # otherwise (`build_ext -j N`; CYRELU_BUILD_JOBS=N for pip builds).
            if not self.parallel:
                jobs = os.environ.get("CYRELU_BUILD_JOBS", "").strip()
                self.parallel = int(jobs) if jobs.isdigit() else (os.cpu_count() or 1)

        def build_extensions(self):
            ctype = self.compiler.compiler_type
            flags = checked_openmp_flags(self.compiler, sys.platform, os.environ)
            if flags is None and _truthy(os.environ.get(DISABLE_ENV, "")):
                print("cyrelu: OpenMP disabled by %s; building the serial version" % DISABLE_ENV)
            compile_args, link_args = flags if flags is not None else ([], [])
            opt = optimisation_flags(ctype, os.environ)
            for ext in self.extensions:
                ext.extra_compile_args = opt + compile_args + list(ext.extra_compile_args)
                ext.extra_link_args = link_args + list(ext.extra_link_args)
            self._force_if_flags_changed(repr((opt, compile_args, link_args)))
            super().build_extensions()

        def _force_if_flags_changed(self, stamp):
            # setuptools skips an extension whose sources are older than the built
            # module, so a serial build after an OpenMP one (or the reverse) in the
            # same tree would silently keep the old module: rebuild when flags change.
            path = os.path.join(self.build_temp, "cyrelu-flags.txt")
            try:
                with open(path) as fh:
                    previous = fh.read()
            except OSError:
                previous = None
            if previous != stamp:
                self.force = True
                os.makedirs(self.build_temp, exist_ok=True)
                with open(path, "w") as fh:
                    fh.write(stamp)

    macros = [
        ("NPY_NO_DEPRECATED_API", "NPY_1_23_API_VERSION"),
        ("NPY_TARGET_VERSION", "NPY_1_23_API_VERSION"),
    ]
    directives = {
        "language_level": 3,
        "boundscheck": False,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": False,
        "embedsignature": True,
    }
    if _truthy(os.environ.get("CYRELU_CYTHON_TRACE", "")):
        directives.update(linetrace=True)
        macros.append(("CYTHON_TRACE_NOGIL", "1"))

    pyx_files = sorted(glob.glob(os.path.join("cyrelu", "*.pyx")))
    if not pyx_files:
        # Without this, a source tree missing its .pyx files builds a pure-Python
        # wheel that installs fine and fails on import.
        raise SystemExit(
            "cyrelu: no cyrelu/*.pyx found in %s; is this a complete source tree?" % os.getcwd()
        )
    extensions = [
        Extension(
            "cyrelu." + os.path.splitext(os.path.basename(path))[0],
            [path],
            include_dirs=["include", numpy.get_include()],
            depends=glob.glob(os.path.join("include", "cyrelu", "*.h"))
            + glob.glob(os.path.join("cyrelu", "cuda", "*.h")),
            define_macros=macros,
        )
        for path in pyx_files
    ]

    setup(
        ext_modules=cythonize(extensions, compiler_directives=directives),
        cmdclass={"build_ext": BuildExt},
    )
