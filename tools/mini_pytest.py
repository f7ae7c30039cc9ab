"""A minimal stand-in for pytest, for machines where pytest is not installed and cannot be.

``tools/gpu_check.sh`` uses it only when ``import pytest`` fails.  It supports what
``tests/test_gpu.py`` and ``tests/test_cuda_compile.py`` use: ``importorskip``, ``skip``,
``raises(match=)``, ``mark.parametrize`` (stacked), ``mark.skipif`` (also as
``pytestmark``), and plain fixtures from ``tests/conftest.py`` plus ``tmp_path``.

    python tools/mini_pytest.py tests/test_gpu.py [more files]   (exit 1 on failures)
"""

import importlib.util
import inspect
import itertools
import os
import re
import shutil
import sys
import tempfile
import traceback
import types


class Skipped(Exception):
    pass


class _Mark:
    def __init__(self, name, args, kwargs):
        self.name, self.args, self.kwargs = name, args, kwargs

    def __call__(self, fn):
        fn.__dict__.setdefault("_marks", []).insert(0, self)
        return fn


class _MarkFactory:
    def __getattr__(self, name):
        return lambda *a, **k: _Mark(name, a, k)


class _Raises:
    def __init__(self, exc, match=None):
        self.exc, self.match = exc, match

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            raise AssertionError("DID NOT RAISE %s" % (self.exc,))
        if not issubclass(et, self.exc):
            return False
        if self.match is not None and not re.search(self.match, str(ev)):
            raise AssertionError("%r does not match %r" % (str(ev), self.match))
        return True


def _importorskip(name, reason=None):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise Skipped(reason or "could not import %r: %s" % (name, exc)) from exc


def _skip(reason="", allow_module_level=False):
    raise Skipped(reason)


def _fixture(fn=None, **kw):
    if fn is None:
        return lambda f: _fixture(f)
    fn._is_fixture = True
    return fn


pytest = types.ModuleType("pytest")
pytest.importorskip = _importorskip
pytest.skip = _skip
pytest.raises = _Raises
pytest.mark = _MarkFactory()
pytest.fixture = _fixture
pytest.Skipped = Skipped


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _cases(fn):
    """(id, kwargs) for every parametrisation of fn."""
    grids = []
    for m in fn.__dict__.get("_marks", []):
        if m.name != "parametrize":
            continue
        names, values = m.args[0], list(m.args[1])
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        rows = []
        for v in values:
            v = tuple(v) if len(names) > 1 else (v,)
            rows.append(dict(zip(names, v, strict=True)))
        grids.append(rows)
    for combo in itertools.product(*grids) if grids else [()]:
        kw = {}
        for part in combo:
            kw.update(part)
        yield "-".join(repr(v)[:20] for v in kw.values()), kw


def _skip_reason(marks):
    for m in marks:
        if m.name == "skipif" and m.args and m.args[0]:
            return m.kwargs.get("reason", "skipif")
    return None


def run(paths):
    sys.modules["pytest"] = pytest
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failures = []
    for path in paths:
        tests_dir = os.path.dirname(os.path.abspath(path))
        if tests_dir not in sys.path:
            sys.path.insert(0, tests_dir)
        fixtures = {}
        conftest = os.path.join(tests_dir, "conftest.py")
        if os.path.exists(conftest):
            cm = sys.modules.get("conftest") or _load(conftest, "conftest")
            fixtures.update(
                {k: v for k, v in vars(cm).items() if getattr(v, "_is_fixture", False)}
            )
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            mod = _load(path, name)
        except Skipped as exc:
            counts["skipped"] += 1
            print("SKIPPED %s: %s" % (path, exc))
            continue
        fixtures.update({k: v for k, v in vars(mod).items() if getattr(v, "_is_fixture", False)})
        pm = getattr(mod, "pytestmark", [])
        module_marks = pm if isinstance(pm, list) else [pm]
        for tname, fn in list(vars(mod).items()):
            if not tname.startswith("test_") or not callable(fn):
                continue
            reason = _skip_reason(module_marks + fn.__dict__.get("_marks", []))
            for cid, kw in _cases(fn):
                tid = "%s::%s[%s]" % (path, tname, cid)
                if reason:
                    counts["skipped"] += 1
                    continue
                tmp = None
                try:
                    args = dict(kw)
                    for p in inspect.signature(fn).parameters:
                        if p in args:
                            continue
                        if p == "tmp_path":
                            import pathlib

                            tmp = tempfile.mkdtemp()
                            args[p] = pathlib.Path(tmp)
                        else:
                            args[p] = fixtures[p]()
                    fn(**args)
                    counts["passed"] += 1
                except Skipped:
                    counts["skipped"] += 1
                except Exception:
                    counts["failed"] += 1
                    failures.append(tid)
                    print("FAILED %s\n%s" % (tid, traceback.format_exc()))
                finally:
                    if tmp:
                        shutil.rmtree(tmp, ignore_errors=True)
    for tid in failures:
        print("FAILED %s" % tid)
    print(
        "%d passed, %d failed, %d skipped (mini_pytest)"
        % (counts["passed"], counts["failed"], counts["skipped"])
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
