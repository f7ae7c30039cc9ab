"""Array-backend dispatch, in one place.

The public functions run the compiled CPU kernels on NumPy arrays.  An array of a
registered library (CuPy, Dask) sends the whole call to that library's backend
module, imported only then (importing cyrelu never imports CuPy or Dask).  To add a
backend, register the top-level module name of its array type here and give the
backend module the public functions' names and signatures.
"""

import importlib
from types import ModuleType

import numpy as np

# top-level module of an array type -> the cyrelu module that implements the API for it
BACKENDS: dict[str, str] = {"cupy": "cyrelu.cuda", "dask": "cyrelu.dask"}
# backends of chunked arrays whose chunks are other libraries' arrays: they take those
# libraries' arrays beside their own, and check them (shapes, chunk types) themselves
COMBINING = frozenset({"dask"})


def _kind(value: object) -> str:
    root = type(value).__module__.partition(".")[0]
    return root if root in BACKENDS else "numpy"


# array type -> its backend module, for types already dispatched (a call with every
# array of one type is then decided without importing or comparing module names)
_MODULES: dict[type, ModuleType] = {}


def backend_for(*arrays: object) -> ModuleType | None:
    """The backend module for these arguments, or None for the NumPy (CPU) path.

    ``None`` entries are ignored.  A Dask array sends the call to the Dask backend,
    whatever comes with it (that backend checks the other arguments).  Otherwise,
    mixing a GPU array with NumPy arrays (or with another GPU library's arrays) raises
    TypeError: nothing is moved between devices implicitly.
    """
    for a in arrays:  # the common case, all NumPy arrays (or None), decided quickly
        if a is not None and type(a) is not np.ndarray:
            break
    else:
        return None
    first = type(a)
    module = _MODULES.get(first)
    if module is not None:  # the common case off NumPy: every array of one known type
        for a in arrays:
            if a is not None and type(a) is not first:
                break
        else:
            return module
    kinds = set()
    for a in arrays:
        if a is not None and type(a) is not np.ndarray:
            kinds.add(_kind(a))
        elif a is not None:
            kinds.add("numpy")
    libraries = kinds - {"numpy"}
    if not libraries:
        return None
    combining = libraries & COMBINING
    if combining:
        return importlib.import_module(BACKENDS[combining.pop()])
    if len(kinds) > 1:
        raise TypeError(
            "cannot mix array libraries in one call (got %s); move the arrays to one "
            "device first, e.g. cupy.asarray(a) or a.get()" % ", ".join(sorted(kinds))
        )
    module = importlib.import_module(BACKENDS[libraries.pop()])
    _MODULES[first] = module  # every array is of this library (first among them)
    return module
