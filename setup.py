"""Build script for cyrelu's compiled core.

Every ``cyrelu/*.pyx`` file becomes the extension module ``cyrelu.<name>``,
compiled against ``include/`` and NumPy's headers, with OpenMP where the
compiler supports it.  The flag selection lives in :func:`openmp_flags` (a
pure function, unit-tested in ``tests/test_build_flags.py``); the probe that
decides whether the compiler really accepts those flags is in
:class:`BuildExt`.

Environment:
  CYRELU_DISABLE_OPENMP=1   build serially (debugging, or a compiler without OpenMP).
  CYRELU_REQUIRE_OPENMP=1   fail the build instead of falling back to a serial one
                            (release builds: a wheel must never lose OpenMP silently).
  CYRELU_OPENMP_PREFIX=DIR  macOS: where libomp lives (default: Homebrew's prefix).
  CYRELU_CYTHON_TRACE=1     compile with Cython line tracing (coverage, profiling).
"""

import os
import sys
import glob
import shutil
import tempfile
import textwrap
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


def optimisation_flags(compiler_type):
    """Speed flags that keep IEEE semantics: no fast-math, no native-architecture tuning."""
    if compiler_type == "msvc":
        return ["/O2"]
    # -fno-math-errno lets sqrt vectorise; -fno-trapping-math lets the compiler
    # if-convert `x > 0 ? x : a * x`.  Neither changes a single result bit.
    # -ffp-contract=off: no fused multiply-add where the source has a multiply and an
    # add (gcc fuses by default on aarch64, and would on x86 where FMA is enabled), so
    # every platform and instruction set rounds exactly as the source says.
    return ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]


if __name__ == "__main__":
    import numpy
    from setuptools import Extension, setup
    from setuptools.command.build_ext import build_ext
    from Cython.Build import cythonize

    HERE = os.path.dirname(os.path.abspath(__file__))

    def _probe_openmp(compiler, compile_args, link_args):
        """Compile and link a tiny OpenMP program: True if the toolchain can."""
        src = textwrap.dedent(
            """
            #include <omp.h>
            int main(void) {
                int n = 0;
                #pragma omp parallel reduction(+:n)
                n += 1;
                return n > 0 ? 0 : 1;
            }
            """
        )
        tmp = tempfile.mkdtemp(prefix="cyrelu-omp-")
        try:
            path = os.path.join(tmp, "probe.c")
            with open(path, "w") as fh:
                fh.write(src)
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=compile_args)
            compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=link_args)
            return True
        except Exception:  # any compile or link error means: no usable OpenMP
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    class BuildExt(build_ext):
        def build_extensions(self):
            ctype = self.compiler.compiler_type
            flags = openmp_flags(ctype, sys.platform, os.environ)
            if flags is not None and not _probe_openmp(self.compiler, *flags):
                if _truthy(os.environ.get(REQUIRE_ENV, "")):
                    raise RuntimeError(
                        "cyrelu: %s is set but the C compiler cannot build OpenMP code with "
                        "%r" % (REQUIRE_ENV, flags)
                    )
                warnings.warn(
                    "cyrelu: the C compiler cannot build OpenMP code; building the serial "
                    "version (install libgomp/libomp for multithreaded kernels)."
                )
                flags = None
            if flags is None and _truthy(os.environ.get(DISABLE_ENV, "")):
                print("cyrelu: OpenMP disabled by %s; building the serial version" % DISABLE_ENV)
            compile_args, link_args = flags if flags is not None else ([], [])
            opt = optimisation_flags(ctype)
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
        raise SystemExit("cyrelu: no cyrelu/*.pyx found in %s; is this a complete source tree?"
                         % os.getcwd())
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
