"""Benchmark: the generalized feature basis (theory §11) against scipy's generalized solver.

For d = 256 and 1024, on moments of ``4 d`` random paired rows (a ``from_samples``
source, as real data gives), one run measures

- ``scipy``: ``scipy.linalg.eigh(S, Sxx)`` (LAPACK's generalized symmetric
  solver, eigenvalues and vectors), the baseline;
- ``generalized_basis``: ``jf.generalized_basis(Sxx, Syx)`` (Cholesky, one
  symmetric eigendecomposition, the dual vectors and the non-orthogonality);
- ``analyze generalized`` / ``analyze pca``: ``jf.analyze(data, basis=...)``,
  everything ``FeatureAnalysis`` holds (commutator, off-diagonal measures, the
  standard errors over the rows);
- ``critical times``: ``fa.critical_time("jepa", 4, 1e-3)`` of the ``d`` features
  (compiled once before timing).

Each is repeated (``--repeats``, default 5): the median is used for the ratios
against scipy, min-max printed as the spread, with the load average. The
target (issue 15): the generalized analysis of a d = 1024 source in under 1 s.

    python scripts/bench_analyze.py [--repeats 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

import jepa_flow as jf  # noqa: E402


def source(d, seed=0):
    """A ``from_samples`` source of ``4 d`` rows whose moments do not commute."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4 * d, d)) * np.linspace(1.0, 0.1, d)
    y = x @ (np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d))
    return jf.from_samples(x, y + 0.5 * rng.standard_normal(x.shape))


def timed(fn, repeats):
    """``(median, min, max)`` seconds of ``repeats`` calls."""
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), float(min(ts)), float(max(ts))


def bench(d, repeats):
    data = source(d)
    Sxx, Syx = np.asarray(data.Sxx), np.asarray(data.Syx)
    S = 0.5 * (Syx + Syx.T)
    fa = jf.analyze(data, basis="generalized")
    fa.critical_time("jepa", 4, 1e-3)  # compile
    cases = {
        "scipy": lambda: scipy.linalg.eigh(S, Sxx),
        "generalized_basis": lambda: jf.generalized_basis(Sxx, Syx),
        "analyze generalized": lambda: jf.analyze(data, basis="generalized"),
        "analyze pca": lambda: jf.analyze(data),
        "critical times": lambda: np.asarray(fa.critical_time("jepa", 4, 1e-3)),
    }
    return {name: timed(fn, repeats) for name, fn in cases.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--json", default=None, help="also write the timings as JSON here")
    args = p.parse_args()
    report = {"cpu_count": os.cpu_count(), "load_before": os.getloadavg()[0], "sizes": {}}
    for d in args.sizes:
        res = bench(d, args.repeats)
        base = res["scipy"][0]
        print(f"d = {d} (median, min-max of {args.repeats}; ratio = median / scipy's)")
        for name, (med, lo, hi) in res.items():
            print(
                f"  {name:20s} {med * 1e3:9.2f} ms  [{lo * 1e3:.2f}, {hi * 1e3:.2f}]  "
                f"x{med / base:.2f}"
            )
        report["sizes"][str(d)] = {
            k: dict(zip(("median", "min", "max"), v)) for k, v in res.items()
        }
    report["load_after"] = os.getloadavg()[0]
    print(
        f"load average {report['load_before']:.2f} -> {report['load_after']:.2f} "
        f"on {report['cpu_count']} CPUs"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
