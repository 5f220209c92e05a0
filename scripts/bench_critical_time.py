"""Benchmark: critical times by the closed forms, by one vmapped diffrax call, and by scipy.

All three are measured in one run on the same random configurations (mixed
depths 1..8, both objectives, rho in [0.05, 5], lam in [0.01, 10], eps in
[1e-4, 1e-2] below the fixed point, fraction 1/2). The baseline integrates the
*same* non-stiff clock formulation as ``method="ode"`` (see ``jepa_flow._ode``)
with ``scipy.integrate.solve_ivp`` at the same tolerances, one configuration at
a time, with a terminal event located by scipy's root finder; the faster of
RK45 and DOP853 is taken as the baseline.

Timings exclude compilation (each jitted call is run once first) and block on
the result. Targets on a 2-core CPU: exact >= 2e6 configurations/s; ode >= 500x
the scipy loop per configuration.

    python scripts/bench_critical_time.py [--n-exact 1048576] [--n-ode 65536] [--n-scipy 100]
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import jepa_flow as jf  # noqa: E402
from jepa_flow import _ode  # noqa: E402
from jepa_flow._fixed_point import clock_exponents, log_u_level  # noqa: E402


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
        return [jf.critical_time(o, lam[objective == o], var[objective == o],
                                 depth[objective == o], eps[objective == o], method=method)
                for o in ("jepa", "mae")]
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
    sol = solve_ivp(field, (0.0, s1), [y0, 0.0], method=method, rtol=_ode.RTOL, atol=_ode.ATOL,
                    events=event)
    return sol.y_events[0][0][1] * np.exp(-r * y0) / var


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-exact", type=int, default=1 << 20, help="configurations for method=exact")
    ap.add_argument("--n-ode", type=int, default=1 << 16, help="configurations for method=ode")
    ap.add_argument("--n-scipy", type=int, default=100, help="configurations for the scipy loop")
    args = ap.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {jax.device_count()} device(s), "
          f"float64")

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
    scipy_rates = {}
    for method in ("RK45", "DOP853"):
        t0 = time.perf_counter()
        vals = [scipy_critical_time(obj[i], lam[i], var[i], depth[i], eps[i], method)
                for i in range(args.n_scipy)]
        scipy_rates[method] = args.n_scipy / (time.perf_counter() - t0)
        ref = np.asarray(jf.critical_time(obj[0], lam[0], var[0], depth[0], eps[0]))
        assert abs(vals[0] / ref - 1) < 1e-6 or ref == 0, (vals[0], ref)
    base_method = max(scipy_rates, key=scipy_rates.get)
    base = scipy_rates[base_method]

    print(f"exact : {args.n_exact:>9d} configs in {dt_exact:8.4f} s = {exact_rate:12.4g} configs/s"
          f"   (target >= 2e6: {'met' if exact_rate >= 2e6 else 'NOT met'})")
    print(f"ode   : {args.n_ode:>9d} configs in {dt_ode:8.4f} s = {ode_rate:12.4g} configs/s"
          f"   max rel. error vs exact {ode_err:.2e}")
    for m, rate in scipy_rates.items():
        print(f"scipy : {args.n_scipy:>9d} configs, solve_ivp {m:6s} = {rate:12.4g} configs/s")
    ratio = ode_rate / base
    print(f"ratio ode / scipy ({base_method}, the faster) = {ratio:.1f}x"
          f"   (target >= 500x: {'met' if ratio >= 500 else 'NOT met'})")
    print(f"ratio exact / ode = {exact_rate / ode_rate:.1f}x")


if __name__ == "__main__":
    main()
