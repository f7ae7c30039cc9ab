"""BatchNorm's backward (training, float32) with an activation, from ``bias=``, on three
layouts: the fused call against BatchNorm's backward alone and against the same backward
composed by hand from the public functions (the pre-activation, ``<name>_backward``,
``batch_norm_backward``: bench_batchnorm's ``_composed_backward``), all taken in turn,
round after round, in one run.  For elu, celu and selu also the fused call from
``output=`` (the result gate).

    python benchmarks/bn_backward_fused.py THREADS [NAME,NAME,...]
"""

import sys

import numpy as np
from bench_batchnorm import _composed_backward

import cyrelu
from cyrelu import _bn_activation

import harness  # benchmarks/ is on sys.path when run from there (or via PYTHONPATH)

LAYOUTS = [
    ("NCHW (32,64,56,56)", (32, 64, 56, 56), 1),
    ("NHWC (32,56,56,64)", (32, 56, 56, 64), -1),
    ("NC (4096,1024)", (4096, 1024), 1),
]
DEFAULT = "hardsigmoid,hardswish,elu,silu,gelu,mish"


def main(argv):
    nt = int(argv[1]) if len(argv) > 1 else 2
    names = (argv[2] if len(argv) > 2 else DEFAULT).split(",")
    rng = np.random.default_rng(0)
    for label, shape, axis in LAYOUTS:
        C = shape[axis]
        x = rng.standard_normal(shape, dtype=np.float32)
        dy = rng.standard_normal(shape, dtype=np.float32)
        w = rng.uniform(0.5, 2, C).astype(np.float32)
        b = rng.standard_normal(C).astype(np.float32)
        dx, z = np.empty_like(x), np.empty_like(x)
        _, sm, si = cyrelu.batch_norm(x, None, None, w, b, True, axis=axis, return_stats=True)
        fns = {
            "alone": lambda: cyrelu.batch_norm_backward(
                dy, x, sm, si, w, axis=axis, out=dx, num_threads=nt
            ),
        }
        outputs = {}
        for name in names:
            fns["fused " + name] = lambda name=name: cyrelu.batch_norm_backward(
                dy, x, sm, si, w, axis=axis, activation=name, bias=b, out=dx, num_threads=nt
            )
            y = cyrelu.batch_norm(x, None, None, w, b, True, axis=axis, activation=name)
            if _bn_activation.result_gate(name, (), y):
                outputs[name] = y
                fns["output " + name] = lambda name=name: cyrelu.batch_norm_backward(
                    dy, x, sm, si, w, axis=axis, activation=name, output=outputs[name],
                    out=dx, num_threads=nt,
                )  # fmt: skip
            fns["composed " + name] = lambda name=name: _composed_backward(
                name, dy, x, sm, si, w, b, z, dx, nt, axis
            )
        t = harness.best_times(fns, rounds=5, min_time=0.05)
        print(
            "%s, %d thread(s): BatchNorm's backward alone %.0f us" % (label, nt, t["alone"] * 1e6)
        )
        for name in names:
            print(
                "  %-12s fused %.2fx   composed %.2fx%s"
                % (
                    name,
                    t["fused " + name] / t["alone"],
                    t["composed " + name] / t["alone"],
                    "   from output %.2fx" % (t["output " + name] / t["alone"])
                    if name in outputs
                    else "",
                )
            )


if __name__ == "__main__":
    main(sys.argv)
