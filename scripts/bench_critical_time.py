"""Benchmark: critical times by the closed forms, by one vmapped diffrax call, and by scipy.

All are measured in one run on random configurations (mixed depths 1..8, both
objectives, rho in [0.05, 5], lam in [0.01, 10], eps in [1e-4, 1e-2], fraction
1/2). Two scipy loops, one ``scipy.integrate.solve_ivp`` call per
configuration at the same tolerance (rtol = 1e-12) with a terminal event
located by scipy's root finder:

- "paper ODE": the per-feature ODE as theory §3 states it, ``du/dt = f(u)`` in
  time ``t`` (what a user would integrate); the fastest of LSODA, DOP853 and
  RK45 is the baseline for the target;
- "clock ODE": the same non-stiff clock formulation that ``method="ode"``
  integrates (see ``jepa_flow._theory._ode``), with DOP853 and RK45: this isolates
  what vectorization alone buys.

The JAX side uses one device per CPU core (``jax_num_cpu_devices``).
Timings exclude compilation (each jitted call is run once first) and block on
the result. Targets on a 2-core CPU: exact >= 2e6 configurations/s; ode >= 500x
the scipy loop per configuration.

    python scripts/bench_critical_time.py [--n-exact 1048576] [--n-ode 65536] [--n-scipy 100]
        [--json PATH]   # also write the figures and ratios as JSON (scripts/bench_all.py)
"""

from __future__ import annotations

import argparse
import os
import time

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_num_cpu_devices", int(os.environ.get("BENCH_DEVICES", os.cpu_count() or 1)))

import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import jepa_flow as jf  # noqa: E402
from jepa_flow._theory import _ode  # noqa: E402
from jepa_flow._theory._fixed_point import clock_exponents, log_u_level  # noqa: E402


def configs(n, seed=0):
    rng = np.random.default_rng(seed)
    depth = rng.integers(1, 9, n).astype(float)
    rho = 10 ** rng.uniform(np.log10(0.05), np.log10(5), n)
    lam = 10 ** rng.uniform(-2, 1, n)
    eps = 10 ** rng.uniform(-4, -2, n)
    objective = np.where(rng.uniform(size=n) < 0.5, "jepa", "mae")
    return objective, lam, lam / rho, depth, eps


def timed(fn, repeats=3):
    fn()  # compile
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def run_jax(method, objective, lam, var, depth, eps):
    """Both objectives' critical times; each objective is one vmapped call."""

    def fn():
        return [
            jf.critical_time(
                o,
                lam[objective == o],
                var[objective == o],
                depth[objective == o],
                eps[objective == o],
                method=method,
            )
            for o in ("jepa", "mae")
        ]

    return fn


def scipy_critical_time(objective, lam, var, depth, eps, method):
    rho = lam / var
    q, r = (float(x) for x in clock_exponents(objective, depth))
    y0 = np.log(eps) / depth
    y_level = float(log_u_level(objective, np.log(rho), depth, 0.5))
    if y0 >= y_level:
        return 0.0

    def field(s, state):
        return [rho - np.exp(q * state[0]), np.exp(-r * (state[0] - y0))]

    def event(s, state):
        return state[0] - y_level

    event.terminal, event.direction = True, 1.0
    s1 = 4.0 * (y_level - y0) / (rho * -np.expm1(q / depth * np.log(0.5))) + 1.0 / rho
    sol = solve_ivp(
        field, (0.0, s1), [y0, 0.0], method=method, rtol=_ode.RTOL, atol=_ode.ATOL, events=event
    )
    return sol.y_events[0][0][1] * np.exp(-r * y0) / var


def scipy_paper_time(objective, lam, var, depth, eps, method, t_end):
    """The critical time from ``du/dt = f(u)`` in ``t`` (theory §3), by solve_ivp."""
    u0, rho = eps ** (1 / depth), lam / var
    u_star = rho if objective == "jepa" else rho ** (1 / (depth + 1))
    u_p = 0.5 ** (1 / depth) * u_star
    if u0 >= u_p:
        return 0.0
    if objective == "jepa":

        def field(t, u):
            return u ** (2 * depth) * (lam - var * u)
    else:

        def field(t, u):
            return u**depth * (lam - var * u ** (depth + 1))

    def event(t, u):
        return u[0] - u_p

    event.terminal, event.direction = True, 1.0
    sol = solve_ivp(
        field, (0.0, t_end), [u0], method=method, rtol=_ode.RTOL, atol=_ode.ATOL * u0, events=event
    )
    return sol.t_events[0][0] if len(sol.t_events[0]) else np.nan


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n-exact", type=int, default=1 << 20, help="configurations for method=exact")
    ap.add_argument("--n-ode", type=int, default=1 << 16, help="configurations for method=ode")
    ap.add_argument("--n-scipy", type=int, default=100, help="configurations for the scipy loop")
    ap.add_argument(
        "--rtol",
        type=float,
        default=_ode.RTOL,
        help="tolerance of both the diffrax solve and the scipy loops",
    )
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = ap.parse_args()
    _ode.RTOL = _ode.ATOL = args.rtol
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, {jax.device_count()} device(s), "
        f"float64, rtol = atol = {args.rtol:g}"
    )

    cfg = configs(args.n_exact)
    dt_exact = timed(run_jax("exact", *cfg))
    exact_rate = args.n_exact / dt_exact

    cfg_ode = configs(args.n_ode, seed=1)
    dt_ode = timed(run_jax("ode", *cfg_ode), repeats=2)
    ode_rate = args.n_ode / dt_ode
    ode_vals = np.concatenate([np.asarray(v) for v in run_jax("ode", *cfg_ode)()])
    exact_vals = np.concatenate([np.asarray(v) for v in run_jax("exact", *cfg_ode)()])
    pos = exact_vals > 0
    ode_err = np.max(np.abs(ode_vals[pos] / exact_vals[pos] - 1))

    obj, lam, var, depth, eps = configs(args.n_scipy, seed=1)
    ref = np.array(
        [
            float(jf.critical_time(obj[i], lam[i], var[i], depth[i], eps[i]))
            for i in range(args.n_scipy)
        ]
    )
    runs = {
        ("paper ODE", m): lambda i, m=m: scipy_paper_time(
            obj[i], lam[i], var[i], depth[i], eps[i], m, 10 * ref[i] + 1.0
        )
        for m in ("LSODA", "DOP853", "RK45")
    }
    runs.update(
        {
            ("clock ODE", m): lambda i, m=m: scipy_critical_time(
                obj[i], lam[i], var[i], depth[i], eps[i], m
            )
            for m in ("DOP853", "RK45")
        }
    )
    scipy_rates, scipy_err = {}, {}
    for key, fn in runs.items():
        t0 = time.perf_counter()
        vals = np.array([fn(i) for i in range(args.n_scipy)])
        scipy_rates[key] = args.n_scipy / (time.perf_counter() - t0)
        pos = ref > 0
        scipy_err[key] = np.nanmax(np.abs(vals[pos] / ref[pos] - 1))

    print(
        f"exact : {args.n_exact:>9d} configs in {dt_exact:8.4f} s = {exact_rate:12.4g} configs/s"
        f"   (target >= 2e6: {'met' if exact_rate >= 2e6 else 'NOT met'})"
    )
    print(
        f"ode   : {args.n_ode:>9d} configs in {dt_ode:8.4f} s = {ode_rate:12.4g} configs/s"
        f"   max rel. error vs exact {ode_err:.2e}"
    )
    for (form, m), rate in scipy_rates.items():
        print(
            f"scipy : {args.n_scipy:>9d} configs, {form}, solve_ivp {m:6s} = {rate:10.4g} "
            f"configs/s   max rel. error {scipy_err[(form, m)]:.1e}"
        )
    for form in ("paper ODE", "clock ODE"):
        (_, m), base = max(
            ((k, r) for k, r in scipy_rates.items() if k[0] == form), key=lambda kr: kr[1]
        )
        ratio = ode_rate / base
        target = (
            f"   (target >= 500x: {'met' if ratio >= 500 else 'NOT met'})"
            if (form == "paper ODE")
            else "   (vectorization alone)"
        )
        print(f"ratio ode / scipy {form} ({m}, the fastest) = {ratio:8.1f}x{target}")
    print(f"ratio exact / ode = {exact_rate / ode_rate:.1f}x")
    if args.json:
        figures = {
            "exact configs/s": exact_rate,
            "ode configs/s": ode_rate,
            "ode max rel. error vs exact": float(ode_err),
        }
        figures.update({f"scipy {f} {m} configs/s": r for (f, m), r in scipy_rates.items()})
        ratios = {"exact / ode": exact_rate / ode_rate}
        for form in ("paper ODE", "clock ODE"):
            best = max(r for (f, _), r in scipy_rates.items() if f == form)
            ratios[f"ode / scipy {form} (fastest)"] = ode_rate / best
        params = {"n_exact": args.n_exact, "n_ode": args.n_ode, "n_scipy": args.n_scipy}
        _write_json(args.json, "bench_critical_time", params, figures, ratios)


def _write_json(path, script, params, figures, ratios):
    import json

    report = {"script": script, "params": params, "figures": figures, "ratios": ratios}
    with open(path, "w") as fh:
        json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
