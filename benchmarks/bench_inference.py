"""The inference suite: examples/inference_mlp.py's MLP served four ways, in one run.

    256 -> 4 x [Linear 1024 -> BatchNorm1d -> ReLU] -> Linear 1024 -> 16, float32

  cyrelu+numpy   BatchNorm folded into the Linears (cyrelu.fold_batch_norm), NumPy's BLAS
                 for the matmuls, NumPy's add for the biases, cyrelu's relu in place
                 (one thread: see FoldedMLP), buffers reused
  torch          PyTorch eager, torch.inference_mode(), the same weights
  onnxruntime    the model exported with torch.onnx.export, run with I/O binding into
                 preallocated buffers (when onnxruntime and onnx are installed)
  numpy          plain NumPy: the matmul, BatchNorm unfolded, np.maximum

Per-request latency at batch 1, 8 and 64, and the time per batch of 512 (throughput).
Two more rows split cyrelu+numpy's time: "matmuls only" (the five BLAS calls) and
"cyrelu only" (the four bias adds and ReLUs).  Every implementation uses the same
thread count (BLAS limited with threadpoolctl, torch.set_num_threads, ONNX Runtime's
intra-op threads), except cyrelu's ReLUs, which run on one thread between the BLAS
calls.  Outputs are checked against PyTorch's before timing.
"""

import os
import shutil
import sys
import tempfile

import numpy as np

from harness import best_times

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

import inference_mlp as mlp_example  # noqa: E402

SUITE = "inference"
BATCHES = (1, 8, 64, 512)


def _blas_limits(threads):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def _onnx_session(model, torch, path, threads):
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime not installed"
    try:
        dummy = torch.zeros(2, mlp_example.IN_FEATURES)
        torch.onnx.export(
            model,
            (dummy,),
            path,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            dynamo=False,
        )
    except Exception as exc:  # the exporter's optional dependencies (onnx) may be missing
        return None, "torch.onnx.export failed: %s" % exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]), None


def _onnx_runner(sess, x, y):
    import onnxruntime as ort

    binding = sess.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_ortvalue_output("y", ort.OrtValue.ortvalue_from_numpy(y))

    def run():
        sess.run_with_iobinding(binding)

    return run


def _plain_numpy(sd):
    layers = []
    for i in range(mlp_example.DEPTH):
        lin, bn = 3 * i, 3 * i + 1
        layers.append(
            (
                sd["%d.weight" % lin].T,
                sd["%d.bias" % lin],
                sd["%d.running_mean" % bn],
                sd["%d.running_var" % bn],
                sd["%d.weight" % bn],
                sd["%d.bias" % bn],
            )
        )
    last = 3 * mlp_example.DEPTH
    w_last, b_last = sd["%d.weight" % last].T, sd["%d.bias" % last]
    eps = np.float32(mlp_example.BN_EPS)

    def forward(x):
        h = x
        for w, b, rm, rv, g, beta in layers:
            z = h @ w + b
            z = (z - rm) / np.sqrt(rv + eps) * g + beta
            h = np.maximum(z, 0)
        return h @ w_last + b_last

    return forward


def run(ctx):
    torch = ctx.torch
    if torch is None:
        print("suite inference: needs PyTorch (the model is trained and exported with it)")
        return []
    rows = []
    limits = _blas_limits(ctx.threads)
    tmp = tempfile.mkdtemp(prefix="cyrelu-inference-")
    try:
        model = mlp_example.build_torch_model()
        npz = os.path.join(tmp, "mlp.npz")
        mlp_example.export_npz(npz, model.state_dict())
        sd = dict(np.load(npz))
        # cyrelu's ReLUs on one thread, BLAS on ctx.threads (see FoldedMLP's docstring)
        folded = mlp_example.FoldedMLP(npz)
        plain = _plain_numpy(sd)
        sess, why = _onnx_session(model, torch, os.path.join(tmp, "mlp.onnx"), ctx.threads)
        if sess is None:
            print("suite inference: ONNX Runtime rows skipped (%s)" % why)
        rng = np.random.default_rng(0)
        for batch in BATCHES:
            x = rng.standard_normal((batch, mlp_example.IN_FEATURES), dtype=np.float32)
            xt = torch.from_numpy(x)
            with torch.inference_mode():
                want = model(xt).numpy().copy()
            got = folded(x).copy()
            scale = float(np.max(np.abs(want)))
            err = float(np.max(np.abs(got - want))) / scale
            if err > 1e-5:
                raise AssertionError(
                    "cyrelu+numpy differs from torch by %.2e (batch %d)" % (err, batch)
                )
            fns = {}
            fns["cyrelu+numpy"] = lambda: folded(x)

            def torch_eager(xt=xt):
                with torch.inference_mode():
                    model(xt)

            fns["torch"] = torch_eager
            if sess is not None:
                y_ort = np.empty((batch, mlp_example.OUT_FEATURES), np.float32)
                fns["onnxruntime"] = _onnx_runner(sess, x, y_ort)
                fns["onnxruntime"]()
                err_ort = float(np.max(np.abs(y_ort - want))) / scale
                if err_ort > 1e-4:
                    print("suite inference: onnxruntime differs from torch by %.2e" % err_ort)
            fns["numpy"] = lambda: plain(x)
            bufs = folded._buffers_for(batch)
            z = bufs[0]

            def matmuls_only(h=x, z=z, y=bufs[2]):
                np.matmul(h, folded.weights[0], out=z)
                for i in range(1, mlp_example.DEPTH):
                    np.matmul(z, folded.weights[i], out=bufs[i % 2])
                np.matmul(bufs[(mlp_example.DEPTH - 1) % 2], folded.weights[-1], out=y)

            def cyrelu_only(z=z):
                for i in range(mlp_example.DEPTH):
                    folded.bias_relu(z, i)

            fns["matmuls only"] = matmuls_only
            fns["cyrelu only"] = cyrelu_only
            rounds = 3 if ctx.quick else 7
            times = best_times(fns, rounds=rounds, min_time=0.02 if ctx.quick else 0.05)
            kind = "latency" if batch < 512 else "per batch (throughput)"
            case = "mlp batch=%d %s" % (batch, kind)
            for name, t in times.items():
                rows.append(
                    {
                        "suite": SUITE,
                        "case": case,
                        "impl": name,
                        "seconds": t,
                        "samples_per_s": batch / t,
                    }
                )
    finally:
        if limits is not None:
            limits.restore_original_limits()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows
