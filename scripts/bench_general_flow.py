"""Benchmark: the general per-feature flow (``general_critical_time``) against scipy loops.

Measured in one run, on random JEPA stop-gradient configurations (depth 1..4,
rho in [0.1, 0.9], lam in [0.1, 10], eps = 1e-3, init_ratio log-uniform in
[0.1, 1000], so a share of them collapse), and on the issue's EMA grid
(the same with lam = 1 and tau log-uniform in [0.1, 100]):

- vectorized: the jitted, device-split kernel (``general_function``) on one
  flat batch, compiled first, ``repeats`` timings: median and spread, and
  the configurations per CPU-second (process time; the machine is shared,
  and its load inflates the wall time much more than the CPU time);
- scipy loops, one ``solve_ivp`` per configuration, on the first
  ``--n-scipy`` configurations (the same mix, collapses included), two
  baselines each (the issue's "same flow" can mean either):
  baseline 1, the kernel's own reduced flow in ``log w`` at the kernel's
  tolerance (stop-gradient: the integral ``dT/dy``, DOP853, rtol = atol =
  1e-10; EMA: ``d(T, z)/dy``, Radau, rtol = atol = 1e-8), which isolates what
  vectorization buys; baseline 2, the flow as theory §6.1-§6.2 states it,
  ``(v, w_1..w_L)`` and under EMA the target layers ``w_T,1..w_T,L``, in
  time ``t`` with a terminal event, what a user would write (LSODA;
  stop-gradient rtol 1e-12, atol 1e-14; EMA at the kernel's rtol 1e-8, atol
  1e-14);
- accuracy: stop-gradient, relative error against the exact times where they
  exist (``init_ratio = 1``: ``critical_time(method="exact")``); EMA (no
  closed form), against scipy Radau at rtol 1e-12, atol 1e-16 on the unreduced
  flow in ``t`` (it agrees with LSODA at 1e-12 to about 5e-10), on the rising
  configurations among the first ``--n-scipy``; each EMA baseline's own error
  against it is printed too;
- memory: peak resident memory of ``run_sweep`` over a general-flow grid of
  ``--memory-configs`` rows (default ten million; 0 skips it).

Targets on the 2-core machine: >= 50,000 configurations/s, >= 300x the scipy
loop, relative error < 1e-6, a ten-million-row sweep under 2 GiB. The machine
is shared: the load average is printed with the numbers.

    python scripts/bench_general_flow.py [--n 131072] [--n-ema 32768] [--n-scipy 40]
                                         [--repeats 5] [--memory-configs 10000000]

Measured on the 2 CPU cores, shared with other jobs, 2026-11-25 (medians of 5
repeats per run, three runs at load averages 8.0-8.5, 5.0-5.5 and 5.5):

- EMA target: 47,000, 59,000 and 81,000 configurations/s (single repeats
  27,000-88,000); 87,000-89,000 per CPU-second in the last two runs (spread
  under 3 % within a run; the first run did not print it), so up to about
  twice that on an idle machine; 73 steps (median) per rising
  configuration, at most 218, none failed. Relative error against the
  reference on the 24 rising configurations of the first 40: max 5.2e-8,
  median 5.7e-9. Baseline 1 (Radau, same flow, 1e-8): 803x, 625x and 838x
  (spread 457-1,220x); baseline 2 (LSODA, unreduced, 1e-8, whose own error is
  1.6e-6): 346x, 224x and 363x (spread 149-1,114x). Before the hand-written
  ESDIRK (diffrax Kvaerno5 at rtol 1e-11, load 1.2): 252/s, 17x Radau.
- Stop-gradient (the last two runs): 86,000 and 122,000 configurations/s,
  124,000 per CPU-second; baseline 1: 39x and 55x; baseline 2: 332x and
  295x; error 2.8e-11 against the exact times. At load 1.2 the same code gave
  244,000/s (238,000-247,000), 113x and 641x.
- Memory: a 10^7-row sweep peaked at 0.49 GiB RSS (133 s at load 9; 0.60 GiB
  and 39 s at load 1.2).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_num_cpu_devices", int(os.environ.get("BENCH_DEVICES", os.cpu_count() or 1)))

import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import jepa_flow as jf  # noqa: E402
from jepa_flow._theory import _general  # noqa: E402


def configs(n, seed=0, ema=False):
    """Stop-gradient: lam in [0.1, 10]; EMA: the issue's grid (lam 1, tau in [0.1, 100])."""
    rng = np.random.default_rng(seed)
    depth = rng.integers(1, 5, n).astype(float)
    rho = rng.uniform(0.1, 0.9, n)
    lam = np.ones(n) if ema else 10 ** rng.uniform(-1, 1, n)
    eps = np.full(n, 1e-3)
    ratio = 10 ** rng.uniform(-1, 3, n)
    tau = 10 ** rng.uniform(-1, 2, n) if ema else np.zeros(n)
    return {
        "lam": lam,
        "var": lam / rho,
        "depth": depth,
        "eps": eps,
        "init_ratio": ratio,
        "tau": tau,
        "fraction": np.full(n, 0.5),
    }


def vectorized(kind, p, repeats):
    """Wall times of ``repeats`` calls (compiled first), the last call's outputs, and the
    process CPU time per call (all threads: on a shared machine, what the work costs)."""
    devices = tuple(jax.local_devices())
    dispatch, gather = _general.general_function(kind, devices)
    args = [np.asarray(p[k]) for k in _general.KERNEL_INPUTS]
    out = gather(dispatch(*args))  # compile
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        gather(dispatch(*args))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    vectorized.cpu = np.array(cpu)
    return np.array(times), out


def cpu_line(n):
    """The last ``vectorized`` call's configurations per CPU-second (a shared machine's
    load inflates the wall time, much less the CPU time)."""
    rate = n / vectorized.cpu
    print(
        f"  per CPU-second (process time, all devices): {np.median(rate):,.0f} configs "
        f"(min {rate.min():,.0f}, max {rate.max():,.0f}); with its {jax.local_device_count()} "
        "cores to itself the wall rate would be up to that many times this"
    )


def scipy_same_flow(kind, p, i, rtol):
    """The kernel's flow d(T, z)/dy in log w, one solve_ivp per configuration.

    Stop-gradient: DOP853 (a quadrature); EMA: Radau (the flow is stiff), both at
    ``rtol = atol = rtol``.
    """
    L, lam, var = p["depth"][i], p["lam"][i], p["var"][i]
    rho, r = lam / var, p["init_ratio"][i]
    y0 = np.log(p["eps"][i]) / L
    delta = np.exp(2 * y0) * (r * r - 1)
    if delta >= rho**2:
        return np.inf
    y_level = 0.5 * np.log(rho**2 - delta) + np.log(0.5) / L
    if y0 >= y_level:
        return 0.0
    v0 = r * np.exp(y0)
    k0 = var * np.exp((2 * L - 2) * y0) * v0 * rho
    tau_k0 = p["tau"][i] * k0

    def rhs(y, s):
        vr = np.sqrt(r * r + np.expm1(2 * (y - y0))) / r
        dT = np.exp(-(2 * L - 2) * (y - y0)) * rho / (vr * (rho * np.exp(L * s[1]) - v0 * vr))
        dz = np.expm1(-s[1]) / tau_k0 * dT - 1 if kind == "ema" else 0.0
        return [dT, dz]

    method = "Radau" if kind == "ema" else "DOP853"
    sol = solve_ivp(rhs, (y0, y_level), [0.0, 0.0], method=method, rtol=rtol, atol=rtol)
    assert sol.success, sol.message
    return sol.y[0, -1] / k0


def scipy_unreduced(p, i, method="LSODA", rtol=1e-12, atol=1e-14):
    """theory §6.1 as stated: (v, w_1..w_L), and under an EMA target (tau > 0) the target
    layers w_T,1..w_T,L (§6.2), in time t, terminal event at half the fixed point."""
    L, lam, var = int(p["depth"][i]), p["lam"][i], p["var"][i]
    rho, r, tau = lam / var, p["init_ratio"][i], p["tau"][i]
    w0 = p["eps"][i] ** (1 / L)
    delta = w0**2 * (r * r - 1)
    if delta >= rho**2:
        return np.inf
    level = 0.5 * (rho**2 - delta) ** (L / 2)
    if p["eps"][i] >= level:
        return 0.0

    def rhs(t, x):
        v, w = x[0], x[1 : 1 + L]
        wbar = np.prod(w)
        if tau > 0:
            g = lam * np.prod(x[1 + L :]) - var * v * wbar
            return np.concatenate([[wbar * g], wbar / w * v * g, (w - x[1 + L :]) / tau])
        g = wbar * (lam - var * v)
        return np.concatenate([[wbar * g], wbar / w * v * g])

    def event(t, x):
        return np.prod(x[1 : 1 + L]) - level

    event.terminal = True
    x0 = [r * w0] + [w0] * L * (2 if tau > 0 else 1)
    sol = solve_ivp(rhs, (0, 1e12), x0, method=method, rtol=rtol, atol=atol, events=event)
    return sol.t_events[0][0] if sol.t_events[0].size else np.nan


def per_config(fn, n, repeats=3):
    """Seconds per configuration of a loop over ``n`` configurations, ``repeats`` times."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = np.array([fn(i) for i in range(n)])
        times.append((time.perf_counter() - t0) / n)
    return np.array(times), out


def ratio(rate, per):
    """Median speed-up and its spread over the repeats of both sides."""
    return np.median(rate) * np.median(per), rate.min() * per.min(), rate.max() * per.max()


def memory(n_configs):
    """Peak RSS (GiB) of a child process running a general-flow sweep of ``n_configs`` rows."""
    n_ratio = max(1, n_configs // (4 * 2 * 1000))
    text = (
        '[sweep]\nobjective = "jepa"\nflow = "general"\ndepth = [1, 2, 3, 4]\neps = 1e-3\n'
        f"init_ratio = {{logspace = [-1, 3, {n_ratio}]}}\nlam = [1.0, 0.5]\n"
        "rho = {linspace = [0.1, 0.9, 1000]}\n"
    )
    code = (
        "import os, resource, sys, time, jax\n"
        "jax.config.update('jax_enable_x64', True)\n"
        "jax.config.update('jax_num_cpu_devices', os.cpu_count())\n"
        "import jepa_flow as jf\n"
        "cfg = jf.parse_sweep_config(sys.argv[1])\n"
        "r = jf.run_sweep(cfg, sys.argv[2])\n"
        "print(r.n_configs, r.seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", code, text, tmp + "/sweep"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    n, seconds, kib = int(out[0]), float(out[1]), int(out[2])
    return n, seconds, kib / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1 << 17)
    ap.add_argument("--n-ema", type=int, default=1 << 15)
    ap.add_argument("--n-scipy", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--memory-configs", type=int, default=10_000_000)
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = ap.parse_args()
    figures, ratios = {}, {}  # for --json (scripts/bench_all.py)
    print(f"devices: {jax.local_device_count()} x {jax.devices()[0].platform}")
    print("load before:", os.getloadavg())
    m = args.n_scipy

    p = configs(args.n)
    times, (t_star, _, collapsed, ok, steps) = vectorized("jepa", p, args.repeats)
    rate = args.n / times
    print(
        f"stop-gradient, unbalanced ({args.n} configs, {collapsed.mean():.0%} collapse): "
        f"{np.median(rate):,.0f} configs/s (min {rate.min():,.0f}, max {rate.max():,.0f}); "
        f"steps median {np.median(steps):.0f}, max {steps.max()}; failed {int((~ok).sum())}"
    )
    cpu_line(args.n)
    figures["stop-gradient configs/s"] = float(np.median(rate))
    balanced = dict(p, init_ratio=np.ones(args.n))
    _, (t_bal, *_) = vectorized("jepa", balanced, 1)
    exact = np.asarray(jf.critical_time("jepa", p["lam"], p["var"], p["depth"], p["eps"]))
    rising = exact > 0  # a start at or above its level takes 0 on both sides
    assert (t_bal[~rising] == 0).all()
    err = np.abs(t_bal[rising] / exact[rising] - 1).max()
    print(f"  init_ratio = 1: max relative error against the exact times {err:.1e}")
    figures["stop-gradient max rel error vs exact"] = float(err)
    t_same, ref_same = per_config(lambda i: scipy_same_flow("jepa", p, i, 1e-10), m)
    t_unred, ref_unred = per_config(lambda i: scipy_unreduced(p, i), m)
    finite = np.isfinite(ref_same) & (ref_same > 0)
    agree = np.abs(t_star[:m][finite] / ref_same[finite] - 1).max()
    agree_u = np.nanmax(np.abs(t_star[:m][finite] / ref_unred[finite] - 1))
    for key, name, per, err in (
        ("stop-gradient / scipy same integral",
         "baseline 1, the same reduced integral dT/dy in log w (DOP853, rtol=atol=1e-10)", t_same,
         agree),
        ("stop-gradient / scipy unreduced flow",
         "baseline 2, the unreduced flow (v, w_1..w_L) in t with a terminal event "
         "(LSODA, rtol 1e-12, atol 1e-14)", t_unred, agree_u),
    ):  # fmt: skip
        med, lo, hi = ratio(rate, per)
        ratios[key] = float(med)
        print(
            f"  scipy {name}, first {m} configs: {1 / np.median(per):,.0f} configs/s -> "
            f"ratio {med:,.0f}x (spread {lo:,.0f}-{hi:,.0f}); agreement {err:.1e}"
        )

    q = configs(args.n_ema, seed=1, ema=True)
    times, (t_ema, _, collapsed, ok, steps) = vectorized("ema", q, args.repeats)
    rate = args.n_ema / times
    live = ~collapsed & (t_ema > 0)
    rtol = _general.default_general_rtol("ema", np.float64)
    print(
        f"EMA target ({args.n_ema} configs: tau in [0.1, 100], init_ratio in [0.1, 1000], "
        f"depth 1-4, rho in [0.1, 0.9], lam 1, eps 1e-3; {collapsed.mean():.0%} collapse): "
        f"{np.median(rate):,.0f} configs/s (min {rate.min():,.0f}, max {rate.max():,.0f}); "
        f"steps of the rising ones median {np.median(steps[live]):.0f}, max {steps.max()}; "
        f"failed {int((~ok).sum())}"
    )
    cpu_line(args.n_ema)
    figures["EMA configs/s"] = float(np.median(rate))
    reference = np.array([scipy_unreduced(q, i, "Radau", 1e-12, 1e-16) for i in range(m)])
    rising = np.isfinite(reference) & (reference > 0)
    assert (np.isinf(reference) == collapsed[:m]).all()  # the same collapses
    assert (t_ema[:m][reference == 0] == 0).all()  # the same starts at the level
    err = np.abs(t_ema[:m][rising] / reference[rising] - 1)
    print(
        f"  accuracy at the default rtol {rtol:g}: relative error against the unreduced flow in t "
        f"(scipy Radau, rtol 1e-12, atol 1e-16) over the {int(rising.sum())} rising configs of "
        f"the first {m}: max {err.max():.1e}, median {np.median(err):.1e}"
    )
    figures["EMA max rel error vs reference"] = float(err.max())
    t_same, ref_same = per_config(lambda i: scipy_same_flow("ema", q, i, rtol), m)
    t_unred, ref_unred = per_config(lambda i: scipy_unreduced(q, i, "LSODA", rtol, 1e-14), m)
    for key, name, per, ref in (
        ("EMA / scipy same flow",
         f"baseline 1, the same flow d(T, z)/dy in log w (Radau, rtol=atol={rtol:g})", t_same,
         ref_same),
        ("EMA / scipy unreduced flow",
         f"baseline 2, the unreduced flow (v, w_1..w_L, w_T,1..w_T,L) in t with a terminal "
         f"event (LSODA, rtol {rtol:g}, atol 1e-14)", t_unred, ref_unred),
    ):  # fmt: skip
        med, lo, hi = ratio(rate, per)
        own = np.abs(ref[rising] / reference[rising] - 1).max()
        ratios[key] = float(med)
        print(
            f"  scipy {name}, first {m} configs: {1 / np.median(per):,.1f} configs/s -> "
            f"ratio {med:,.0f}x (spread {lo:,.0f}-{hi:,.0f}); its own error {own:.1e}"
        )
    if args.memory_configs:
        n, seconds, gib = memory(args.memory_configs)
        print(
            f"memory: run_sweep of {n:,} general-flow rows: peak RSS {gib:.2f} GiB, "
            f"{seconds:.0f} s ({n / seconds:,.0f} configs/s)"
        )
        figures["general sweep peak RSS GiB"] = float(gib)
    print("load after:", os.getloadavg(), "| self peak RSS", end=" ")
    print(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    if args.json:
        import json

        params = {
            k: getattr(args, k) for k in ("n", "n_ema", "n_scipy", "repeats", "memory_configs")
        }
        with open(args.json, "w") as fh:
            json.dump({"params": params, "figures": figures, "ratios": ratios}, fh, indent=2)


if __name__ == "__main__":
    main()
