"""How much ``import cyrelu`` costs on top of ``import numpy``, in one run.

    python tools/import_cost.py [--runs 21] [--limit-ms 30]

Starts a fresh interpreter for each import, alternating the two commands so
that both see the same machine load, and compares the medians (and minima) of
the wall times.  Exits 1 when the median difference exceeds ``--limit-ms``.
Run it from outside the source tree so that the installed package is measured.
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
        print("import %-7s median %6.1f ms   min %6.1f ms   (%d runs)"
              % (n, med[n], low[n], args.runs))
    extra = med["cyrelu"] - med["numpy"]
    print("cyrelu adds %.1f ms (median; %.1f ms by minima); limit %.0f ms"
          % (extra, low["cyrelu"] - low["numpy"], args.limit_ms))
    return 1 if extra > args.limit_ms else 0


if __name__ == "__main__":
    sys.exit(main())
