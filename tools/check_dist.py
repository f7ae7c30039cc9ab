"""Check what the sdist and the (repaired) wheel contain.

    python tools/check_dist.py SDIST WHEEL [--source-root DIR]

sdist: every git-tracked file of the source tree under cyrelu/, include/ and
tests/ (the .pyx/.pxd sources, headers, CUDA kernels, stubs, tests), plus
setup.py, pyproject.toml, MANIFEST.in, README.md and LICENSE; no generated C.
wheel: every tracked file of the cyrelu package that is code or package data,
one compiled module per .pyx, no generated C or Cython HTML, and on Linux the
OpenMP runtime bundled under cyrelu.libs/ (unless the build is serial).
Prints a short summary; exits 1 with the reasons when anything is missing.
"""

import argparse
import fnmatch
import os
import subprocess
import sys
import tarfile
import zipfile

SDIST_TOP = ["setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE"]
SDIST_TREES = ("cyrelu/", "include/", "tests/")
WHEEL_DATA = ["*.py", "*.pyi", "*.pyx", "*.pxd", "py.typed", "*.cu", "*.cuh"]


def tracked_files(root):
    """git-tracked files (or, outside git, every file) under the source root."""
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
        ).stdout
        return sorted(line for line in out.splitlines() if line)
    except (OSError, subprocess.CalledProcessError):
        files = []
        for dirpath, _, names in os.walk(root):
            for name in names:
                files.append(os.path.relpath(os.path.join(dirpath, name), root))
        return sorted(f.replace(os.sep, "/") for f in files)


def sdist_members(path):
    with tarfile.open(path) as tf:
        names = [m.name for m in tf.getmembers() if m.isfile()]
    # strip the leading "cyrelu-X.Y.Z/"
    return {n.split("/", 1)[1] for n in names if "/" in n}


def check_sdist(path, tracked):
    problems = []
    members = sdist_members(path)
    wanted = set(SDIST_TOP)
    wanted |= {
        f for f in tracked if f.startswith(SDIST_TREES) and os.path.basename(f) != ".gitignore"
    }
    for name in sorted(wanted - members):
        problems.append("sdist lacks %s" % name)
    for name in sorted(members):
        if fnmatch.fnmatch(name, "cyrelu/*.c") or name.endswith((".so", ".pyd")):
            problems.append("sdist carries a build product: %s" % name)
    pyx = sorted(m for m in members if m.endswith(".pyx"))
    if not pyx:
        problems.append("sdist has no .pyx sources")
    print(
        "sdist: %d files, %d .pyx, %d headers, %d test files"
        % (
            len(members),
            len(pyx),
            sum(m.startswith("include/") for m in members),
            sum(m.startswith("tests/") for m in members),
        )
    )
    return problems


def check_wheel(path, tracked, expect_openmp):
    problems = []
    with zipfile.ZipFile(path) as zf:
        members = set(zf.namelist())
    for f in tracked:
        if (
            f.startswith("cyrelu/")
            and any(fnmatch.fnmatch(os.path.basename(f), pat) for pat in WHEEL_DATA)
            and f not in members
        ):
            problems.append("wheel lacks %s" % f)
    for f in tracked:
        if f.startswith("cyrelu/") and f.endswith(".pyx"):
            stem = f[: -len(".pyx")]
            if not any(m.startswith(stem + ".") and m.endswith((".so", ".pyd")) for m in members):
                problems.append("wheel has no compiled module for %s" % f)
    for m in sorted(members):
        if fnmatch.fnmatch(m, "cyrelu/*.c") or m.endswith(".html"):
            problems.append("wheel carries a build product: %s" % m)
    libs = sorted(m for m in members if (".libs/" in m or ".dylibs/" in m) and not m.endswith("/"))
    omp = [m for m in libs if os.path.basename(m).startswith(("libgomp", "libomp", "vcomp"))]
    if os.path.basename(path).count("linux") and expect_openmp and not omp:
        problems.append("wheel bundles no OpenMP runtime (libs: %s)" % (libs or "none"))
    print(
        "wheel: %s: %d files; bundled libraries: %s"
        % (os.path.basename(path), len(members), ", ".join(libs) or "none")
    )
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sdist")
    ap.add_argument("wheel")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--source-root", default=os.path.dirname(here))
    ap.add_argument(
        "--serial", action="store_true", help="the wheel is a serial (no OpenMP) build"
    )
    args = ap.parse_args(argv)
    tracked = tracked_files(args.source_root)
    problems = check_sdist(args.sdist, tracked) + check_wheel(args.wheel, tracked, not args.serial)
    for p in problems:
        print("  PROBLEM: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
