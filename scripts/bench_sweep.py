"""Sweep throughput: exact and ODE critical times against a scipy solve_ivp loop.

    python scripts/bench_sweep.py                       # one million configurations
    python scripts/bench_sweep.py --configs 20000 --scipy-sample 20 --repeats 1   # smoke run
    python scripts/bench_sweep.py --configs 10000000 --methods exact --scipy-sample 0

Two grids, both objectives and depths 1..8, lam log-spaced over 10^-2..10^1:
"paper" (rho linearly over 0.05..0.95, eps = 1e-3) and "near" (rho over
0.3..0.95, eps = 1e-2: features that start close to their level). Each method
runs the real sweep engine (chunks, files and all) into a temporary directory,
``--repeats`` times after a warm-up that compiles the chunk function; the
median, min and max wall time are printed with the machine's load average
(``os.getloadavg``), since the timings are only meaningful next to it.

The scipy baseline integrates the flow in the non-stiff clock of
``jepa_flow._theory._ode`` (dy/ds = rho - exp(q y), dtau/ds = exp(-r (y - y0)))
with DOP853 (the fastest of scipy's RK45, DOP853 and LSODA here at this
tolerance) at the same ``--rtol`` (atol = rtol) and a terminal event at the
level, one configuration per call, on a random sample of the grid. Peak
resident memory is reported from ``resource.getrusage``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", type=int, default=1_000_000, help="grid size (approximate)")
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="configurations per chunk (default: per method)",
    )
    p.add_argument("--methods", default="exact,ode", help="comma-separated: exact, ode, series")
    p.add_argument("--scipy-sample", type=int, default=200, help="configs for the scipy loop")
    p.add_argument("--scipy-method", default="DOP853", help="solve_ivp method of the baseline")
    p.add_argument("--grids", default="paper,near", help="comma-separated: paper, near")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per method and grid")
    p.add_argument(
        "--rtol", type=float, default=None, help="sweep.rtol (default: the library's, 1e-12)"
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary output directory")
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        help="CPU only: number of host devices (sets XLA_FLAGS before jax starts; "
        "default: one per core, as the jepa-flow command uses)",
    )
    return p.parse_args(argv)


GRIDS = {"paper": (0.05, 0.95, 1e-3), "near": (0.3, 0.95, 1e-2)}


def grid_toml(n_configs: int, method: str, grid: str = "paper", rtol=None) -> str:
    side = max(1, round((n_configs / 16) ** 0.5))
    lo, hi, eps = GRIDS[grid]
    extra = f"rtol = {rtol!r}\n" if rtol is not None else ""
    return f"""
[sweep]
objective = ["jepa", "mae"]
depth = [1, 2, 3, 4, 5, 6, 7, 8]
lam = {{logspace = [-2, 1, {side}]}}
rho = {{linspace = [{lo}, {hi}, {side}]}}
eps = {eps}
fraction = 0.5
method = "{method}"
{extra}"""


def _get(summary, key):
    """A run_sweep summary field (a dict or an object with attributes)."""
    return getattr(summary, key) if hasattr(summary, key) else summary[key]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scipy_times(rows, sample: int, method: str = "DOP853", seed: int = 0, rtol: float = 1e-12):
    """Critical times by solve_ivp, one configuration per call; returns (idx, t, seconds)."""
    import numpy as np
    from _scipy_reference import scipy_clock_time

    rng = np.random.default_rng(seed)
    idx = rng.choice(len(rows["lam"]), size=min(sample, len(rows["lam"])), replace=False)
    out = np.empty(len(idx))
    start = time.perf_counter()
    for j, i in enumerate(idx):
        args = (rows[k][i] for k in ("objective", "lam", "var", "depth", "eps"))
        out[j] = scipy_clock_time(*args, method=method, rtol=rtol)
    return idx, out, time.perf_counter() - start


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.devices is None:
        args.devices = os.cpu_count() or 1
    if args.devices:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={args.devices}"
        )
    import jax

    # float64 unless JAX_ENABLE_X64=0 (scripts/bench_all.py --precision float32)
    x64 = os.environ.get("JAX_ENABLE_X64", "1") != "0"
    jax.config.update("jax_enable_x64", x64)
    import numpy as np

    from jepa_flow import load_sweep, parse_sweep_config, run_sweep
    from jepa_flow._theory._ode import default_rtol

    precision = "float64" if x64 else "float32"
    rtol = args.rtol if args.rtol is not None else default_rtol(np.dtype(precision))
    print(
        f"devices: {jax.local_device_count()} x {jax.devices()[0].device_kind}; "
        f"chunk size {args.chunk_size or 'per method'}; jax {jax.__version__}; {precision}, "
        f"rtol {rtol:g}"
    )
    rates, figures, ratios = {}, {}, {}  # figures and ratios: for --json
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    results = {}
    for method in args.methods.split(","):
        # warm-up: compile both objectives' chunk functions at this chunk size
        t0 = time.perf_counter()
        run_sweep(
            parse_sweep_config(grid_toml(16, method, rtol=args.rtol)),
            tmp / f"warm_{method}",
            chunk_size=args.chunk_size,
        )
        compile_s = time.perf_counter() - t0
        for grid in args.grids.split(","):
            config = parse_sweep_config(grid_toml(args.configs, method, grid, args.rtol))
            seconds, loads = [], []
            for rep in range(args.repeats):
                out = tmp / f"{method}_{grid}_{rep}"
                load_before = os.getloadavg()[0]
                summary = run_sweep(config, out, chunk_size=args.chunk_size)
                seconds.append(_get(summary, "seconds"))
                loads.append((load_before + os.getloadavg()[0]) / 2)
                if rep + 1 < args.repeats or not args.scipy_sample:
                    shutil.rmtree(out)
            med = float(np.median(seconds))
            rates[method, grid] = _get(summary, "computed") / med
            key = f"{method} configs/s" if grid == "paper" else f"{method} {grid} configs/s"
            figures[key] = rates[method, grid]
            computed = _get(summary, "computed")
            print(
                f"{method:>6} {grid:>5}: {computed:>9} configs in {med:6.2f} s median "
                f"(min {min(seconds):.2f}, max {max(seconds):.2f}; {len(seconds)} runs) = "
                f"{rates[method, grid]:>12,.0f} configs/s; load average during the runs "
                f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores "
                f"(warm-up/compile {compile_s:.1f} s; failed {_get(summary, 'failed')}; "
                f"peak RSS {peak_rss_mib():.0f} MiB)"
            )
            if args.scipy_sample and method in ("exact", "ode"):
                results[method, grid] = load_sweep(out)
        if len(args.grids.split(",")) == 2:
            a, b = args.grids.split(",")
            ratios[f"{method} {b} / {a} time"] = rates[method, a] / rates[method, b]
            print(
                f"{method:>6}: {b} grid / {a} grid time = {rates[method, a] / rates[method, b]:.2f}"
            )
    if args.scipy_sample and results:
        for grid in args.grids.split(","):
            rows = next(r for (m, g), r in results.items() if g == grid)
            idx, t_scipy, seconds = scipy_times(
                rows, args.scipy_sample, args.scipy_method, rtol=rtol
            )
            rate = len(idx) / seconds
            if grid == "paper":
                figures[f"scipy {args.scipy_method} configs/s"] = rate
            print(
                f" scipy {grid:>5}: {len(idx):>9} configs in {seconds:7.2f} s = {rate:>12,.0f} "
                f"configs/s (solve_ivp {args.scipy_method}, rtol = atol = {rtol:g}, "
                "one call per config)"
            )
            for (method, g), r in results.items():
                if g != grid:
                    continue
                t = r["t_star"][idx].astype(float)  # float32 sweeps: 1e-300 is 0 in float32
                err = np.max(np.abs(t_scipy - t) / np.maximum(t, 1e-300))
                if grid == "paper":
                    ratios[f"{method} / scipy"] = rates[method, grid] / rate
                print(
                    f"{method:>6} {grid:>5}: {rates[method, grid] / rate:,.0f} x the scipy loop "
                    f"per configuration; max relative difference from scipy {err:.1e}"
                )
    print(f"peak resident memory: {peak_rss_mib():.0f} MiB")
    figures["peak RSS MiB"] = peak_rss_mib()
    if args.json:
        import json

        params = {"configs": args.configs, "methods": args.methods, "devices": args.devices}
        params.update(scipy_sample=args.scipy_sample, grids=args.grids, repeats=args.repeats)
        params.update(precision=precision, rtol=rtol)
        report = {"script": "bench_sweep", "params": params, "figures": figures}
        with open(args.json, "w") as fh:
            json.dump({**report, "ratios": ratios}, fh, indent=2)
    if args.keep:
        print(f"outputs kept in {tmp}")
    else:
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
