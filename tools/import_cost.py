"""How much ``import cyrelu`` costs on top of ``import numpy``, in one run.

    python tools/import_cost.py [--runs 21] [--limit-ms 30]

Two measurements, each in fresh interpreters:
  * wall time of ``python -c "import numpy"`` against ``python -c "import cyrelu"``,
    alternated so that both see the same machine load (medians and minima);
  * inside one interpreter, the time ``import cyrelu`` takes once NumPy is imported:
    exactly what cyrelu adds, without the interpreter start-up whose jitter on a busy
    machine swamps a difference of a few milliseconds.
Exits 1 when the median of the second exceeds ``--limit-ms``.  Run it from outside
the source tree so that the installed package is measured.
"""

import argparse
import statistics
import subprocess
import sys
import time


def _time(code):
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - t0) * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--limit-ms", type=float, default=30.0)
    args = ap.parse_args(argv)
    cmds = {"numpy": "import numpy", "cyrelu": "import cyrelu"}
    for code in cmds.values():  # warm the file cache and any .pyc writing
        _time(code)
    times = {name: [] for name in cmds}
    for _ in range(args.runs):
        for name, code in cmds.items():
            times[name].append(_time(code))
    med = {n: statistics.median(t) for n, t in times.items()}
    low = {n: min(t) for n, t in times.items()}
    for n in cmds:
        print(
            "import %-7s median %6.1f ms   min %6.1f ms   (%d runs)"
            % (n, med[n], low[n], args.runs)
        )
    print(
        "wall-time difference: %.1f ms (medians), %.1f ms (minima)"
        % (med["cyrelu"] - med["numpy"], low["cyrelu"] - low["numpy"])
    )
    extra = statistics.median(_incremental() for _ in range(args.runs))
    print(
        "cyrelu adds %.1f ms to an interpreter that has imported numpy (median of %d); "
        "limit %.0f ms" % (extra, args.runs, args.limit_ms)
    )
    return 1 if extra > args.limit_ms else 0


def _incremental():
    code = (
        "import time; import numpy; t0 = time.perf_counter(); import cyrelu; "
        "print((time.perf_counter() - t0) * 1e3)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


if __name__ == "__main__":
    sys.exit(main())
