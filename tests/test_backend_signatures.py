"""Every backend function (the CuPy and the Dask backend) has its public twin's signature
(names, kinds, defaults), and the backends take their argument rules from
cyrelu._validation, not from the front-end modules.  Runs without CuPy and without dask:
the backend modules import them only when they are installed (CuPy) or on their first
call (dask)."""

import ast
import inspect
import os

import pytest

import cyrelu
from cyrelu import _activation_table, _backend, _validation

# every activation of the table, forward and backward, then BatchNorm and the diagnostics
BACKEND_FUNCTIONS = [f for name in _activation_table.NAMES for f in (name, name + "_backward")]
BACKEND_FUNCTIONS += ["batch_norm", "batch_norm_backward", "dead_units", "sparsity"]
BACKEND_FUNCTIONS += ["prelu", "prelu_backward"]
CUDA_DIR = os.path.join(os.path.dirname(cyrelu.__file__), "cuda")
DASK_DIR = os.path.join(os.path.dirname(cyrelu.__file__), "dask")
BACKENDS = ["cyrelu.cuda", "cyrelu.dask"]


def _strip(sig):
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def test_backend_is_registered():
    assert _backend.BACKENDS["cupy"] == "cyrelu.cuda"
    assert _backend.BACKENDS["dask"] == "cyrelu.dask"


@pytest.mark.parametrize("module", BACKENDS)
@pytest.mark.parametrize("name", BACKEND_FUNCTIONS)
def test_signature_matches_public_function(name, module):
    import importlib

    backend = getattr(importlib.import_module(module), name)  # works without CuPy or dask
    public = getattr(cyrelu, name)
    assert _strip(inspect.signature(backend)) == _strip(inspect.signature(public))


@pytest.mark.parametrize("module", BACKENDS)
def test_every_backend_function_is_checked(module):
    import importlib

    assert sorted(importlib.import_module(module).__all__) == sorted(BACKEND_FUNCTIONS)


@pytest.mark.parametrize("directory", [CUDA_DIR, DASK_DIR])
def test_backend_does_not_import_front_end_privates(directory):
    """Argument rules come from cyrelu._validation; the front-end modules dispatch to the
    backend, never the other way round (the Dask backend calls the public functions on
    its chunks through the package, ``cyrelu.relu``)."""
    front = {"cyrelu.batchnorm", "cyrelu.diagnostics", "cyrelu.activations", "cyrelu.nn"}
    for fname in sorted(os.listdir(directory)):
        if not fname.endswith(".py"):
            continue
        with open(os.path.join(directory, fname)) as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in front, (fname, node.module)
            elif isinstance(node, ast.Import):
                assert not {a.name for a in node.names} & front, fname


def test_activation_codes_match_the_kernels():
    """The argument rules, the CPU kernels and the GPU loader take their codes from the
    one table (cyrelu/cuda/activation_table.h)."""
    import importlib

    _activations = importlib.import_module("cyrelu._activations")  # the compiled module
    for name, code in _activation_table.CODES.items():
        assert _validation.activation_code(name) == code
    assert _activation_table.NONE == _activations.ACT_NONE
    from cyrelu.cuda import _loader

    assert _loader.ACT_CODES == _activation_table.CODES


@pytest.mark.parametrize("library,module", [("cupy", "cyrelu.cuda"), ("dask", "cyrelu.dask")])
def test_importing_the_backend_needs_no_array_library(library, module):
    import subprocess
    import sys

    # with the library hidden, the backend still imports and its signatures are readable
    code = (
        "import sys; sys.modules[%r] = None\n"
        "import inspect, %s as g\n"
        "print(inspect.signature(g.batch_norm).parameters['num_threads'].default)\n"
        % (library, module)
    )
    # from the directory holding the cyrelu under test (not a source tree that shadows it)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "None"
