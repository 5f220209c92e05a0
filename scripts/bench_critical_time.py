"""Benchmark: critical times by the closed forms, by the ODE method, and by scipy.

All are measured in one run on random configurations (mixed depths 1..8, both
objectives, rho in [0.05, 5], lam in [0.01, 10], eps in [1e-4, 1e-2], fraction
1/2). ``method="ode"`` (the hitting-time integral by Gauss-Legendre, see
``jepa_flow._theory._ode``) is also timed with its adaptive diffrax integrator
(``integrator="diffrax"``: Dopri8 + PID on the same integral), which is what
the fixed rule replaced. Two scipy loops, one ``scipy.integrate.solve_ivp``
call per configuration at the same tolerance (``--rtol``, default 1e-12; 1.2e-5
when run in float32 with ``JAX_ENABLE_X64=0``, the scipy loops staying float64) with
a terminal event located by scipy's root finder:

- "paper ODE": the per-feature ODE as theory §3 states it, ``du/dt = f(u)`` in
  time ``t`` (what a user would integrate); the fastest of LSODA, DOP853 and
  RK45 is the baseline for the target;
- "clock ODE": the same non-stiff clock formulation that ``method="ode"``
  integrates (see ``jepa_flow._theory._ode``), with DOP853 and RK45: this isolates
  what vectorization alone buys.

The JAX side uses one device per CPU core (``jax_num_cpu_devices``).
Timings exclude compilation (each jitted call is run once first), block on the
result, and are repeated (``--repeats``): the median is used for ratios and
min-max is printed as the spread, with the load average
(``os.getloadavg``) of the machine. Targets on a 2-core CPU: exact >= 2e6
configurations/s; ode >= 500x the scipy loop per configuration with a
relative error below 1e-6 against exact.

    python scripts/bench_critical_time.py [--n-exact 1048576] [--n-ode 1048576] [--n-scipy 100]
        [--json PATH]   # also write the figures and ratios as JSON
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import jax

# float64 unless JAX_ENABLE_X64=0 (scripts/bench_all.py --precision float32)
X64 = os.environ.get("JAX_ENABLE_X64", "1") != "0"
PRECISION = "float64" if X64 else "float32"
jax.config.update("jax_enable_x64", X64)
jax.config.update("jax_num_cpu_devices", int(os.environ.get("BENCH_DEVICES", os.cpu_count() or 1)))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _scipy_reference import scipy_clock_time  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import jepa_flow as jf  # noqa: E402
from jepa_flow._core._devices import over_devices  # noqa: E402
from jepa_flow._theory import _ode  # noqa: E402

# of every solver here (--rtol): the dtype's default, 1e-12 in float64 and 1.2e-5 in float32
RTOL = _ode.default_rtol(jnp.float64 if X64 else jnp.float32)


def configs(n, seed=0):
    rng = np.random.default_rng(seed)
    depth = rng.integers(1, 9, n).astype(float)
    rho = 10 ** rng.uniform(np.log10(0.05), np.log10(5), n)
    lam = 10 ** rng.uniform(-2, 1, n)
    eps = 10 ** rng.uniform(-4, -2, n)
    objective = np.where(rng.uniform(size=n) < 0.5, "jepa", "mae")
    return objective, lam, lam / rho, depth, eps


def timed(fn, repeats=3):
    """``(median, min, max)`` seconds of ``fn()`` over ``repeats`` runs after a compile."""
    fn()  # compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), min(times), max(times)


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
                rtol=RTOL,
            )
            for o in ("jepa", "mae")
        ]

    return fn


@functools.cache
def _diffrax_fn(objective):
    def kernel(lam, var, depth, eps):
        log_rho = jnp.log(lam) - jnp.log(var)
        t, _, _ = _ode.ode_critical_time(
            objective, lam, log_rho, depth, jnp.log(eps), jnp.full_like(lam, 0.5), RTOL, "diffrax"
        )
        return t

    devices = jax.local_devices()
    return jax.jit(over_devices(kernel, devices)), len(devices)


def run_diffrax_integral(objective, lam, var, depth, eps):
    """The same integral by the adaptive diffrax integrator (lengths padded to the devices)."""

    def fn():
        out = []
        for o in ("jepa", "mae"):
            f, n_dev = _diffrax_fn(o)
            args = [x[objective == o] for x in (lam, var, depth, eps)]
            n = args[0].size
            pad = -n % (1024 * n_dev)
            args = [jnp.asarray(np.concatenate([x, np.full(pad, x[0])])) for x in args]
            out.append(f(*args)[:n])
        return out

    return fn


def scipy_critical_time(objective, lam, var, depth, eps, method):
    return scipy_clock_time(objective, lam, var, depth, eps, method, RTOL)


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
        field, (0.0, t_end), [u0], method=method, rtol=RTOL, atol=RTOL * u0, events=event
    )
    return sol.t_events[0][0] if len(sol.t_events[0]) else np.nan


def main():
    global RTOL
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n-exact", type=int, default=1 << 20, help="configurations for method=exact")
    ap.add_argument("--n-ode", type=int, default=1 << 20, help="configurations for method=ode")
    ap.add_argument(
        "--n-diffrax", type=int, default=1 << 15, help="configurations for the diffrax integrator"
    )
    ap.add_argument("--n-scipy", type=int, default=100, help="configurations for the scipy loop")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of each JAX call")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    ap.add_argument(
        "--rtol", type=float, default=RTOL, help="tolerance of the ODE method and the scipy loops"
    )
    args = ap.parse_args()
    RTOL = args.rtol
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, {jax.device_count()} device(s), "
        f"{PRECISION}, rtol = atol = {args.rtol:g}, {_ode.gauss_nodes(args.rtol)} Gauss nodes; "
        f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )

    def line(name, n, t):
        med, lo, hi = t
        return (
            f"{name:<15}: {n:>9d} configs in {med:8.4f} s (min {lo:.4f}, max {hi:.4f}) "
            f"= {n / med:12.4g} configs/s"
        )

    cfg = configs(args.n_exact)
    t_exact = timed(run_jax("exact", *cfg), args.repeats)
    exact_rate = args.n_exact / t_exact[0]

    cfg_ode = configs(args.n_ode, seed=1)
    t_ode = timed(run_jax("ode", *cfg_ode), args.repeats)
    ode_rate = args.n_ode / t_ode[0]
    ode_vals = np.concatenate([np.asarray(v) for v in run_jax("ode", *cfg_ode)()])
    exact_vals = np.concatenate([np.asarray(v) for v in run_jax("exact", *cfg_ode)()])
    pos = exact_vals > 0
    ode_err = np.max(np.abs(ode_vals[pos] / exact_vals[pos] - 1))

    cfg_dfx = configs(args.n_diffrax, seed=2)
    t_dfx = timed(run_diffrax_integral(*cfg_dfx), max(1, args.repeats // 2))
    dfx_rate = args.n_diffrax / t_dfx[0]
    dfx_vals = np.concatenate([np.asarray(v) for v in run_diffrax_integral(*cfg_dfx)()])
    exact_dfx = np.concatenate([np.asarray(v) for v in run_jax("exact", *cfg_dfx)()])
    pos = exact_dfx > 0
    dfx_err = np.max(np.abs(dfx_vals[pos] / exact_dfx[pos] - 1))

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

    ok = "met" if exact_rate >= 2e6 else "NOT met"
    print(line("exact", args.n_exact, t_exact) + f"   (target >= 2e6: {ok})")
    print(line("ode (Gauss)", args.n_ode, t_ode) + f"   max rel. error vs exact {ode_err:.2e}")
    print(
        line("ode (diffrax)", args.n_diffrax, t_dfx) + f"   max rel. error vs exact {dfx_err:.2e}"
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
        ok = "met" if ratio >= 500 and ode_err < 1e-6 else "NOT met"
        print(
            f"ratio ode / scipy {form} ({m}, the fastest) = {ratio:8.1f}x"
            f"   (target >= 500x at error < 1e-6: {ok})"
        )
    print(f"ratio ode (Gauss) / ode (diffrax integral) = {ode_rate / dfx_rate:.1f}x")
    print(f"ratio exact / ode = {exact_rate / ode_rate:.2f}x")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        import json

        figures = {
            "exact configs/s": exact_rate,
            "ode configs/s": ode_rate,
            "ode max rel. error vs exact": float(ode_err),
            "ode diffrax integral configs/s": dfx_rate,
        }
        figures.update({f"scipy {f} {m} configs/s": r for (f, m), r in scipy_rates.items()})
        ratios = {"exact / ode": exact_rate / ode_rate, "ode / ode diffrax": ode_rate / dfx_rate}
        for form in ("paper ODE", "clock ODE"):
            best = max(r for (f, _), r in scipy_rates.items() if f == form)
            ratios[f"ode / scipy {form} (fastest)"] = ode_rate / best
        params = {"n_exact": args.n_exact, "n_ode": args.n_ode, "n_scipy": args.n_scipy}
        params.update(n_diffrax=args.n_diffrax, repeats=args.repeats, rtol=args.rtol)
        params["precision"] = PRECISION
        report = {"script": "bench_critical_time", "params": params, "figures": figures}
        with open(args.json, "w") as fh:
            json.dump({**report, "ratios": ratios}, fh, indent=2)


if __name__ == "__main__":
    main()
