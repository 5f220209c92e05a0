"""Benchmark: time a public call spends outside the compiled computation it runs.

For each public numerical function, at sizes from 1e3 to 1e7 configurations
(members x steps for ``train``), the whole public call is timed against the
same computation under ``jax.jit``, called directly on the same inputs and
blocked on (``block_until_ready``):

- ``critical_time`` (exact and ode): ``critical_time_status`` jitted on the flat
  arrays (the ode kernel's inputs padded to its chunk, inside the jit);
- ``general_critical_time`` (stop-gradient, unbalanced starts): ``general_kernel``
  jitted likewise;
- ``simulate`` (8 save times): ``ode_trajectory`` jitted, with ``wbar``, ``u``
  and ``wbar*`` computed in the same jit;
- ``train`` (an ensemble of d = 16 models, population loss): the engine's own
  compiled program (``_engine.compiled_run``) called directly with prepared
  arguments.

What the call spends outside compiled code is the difference of the calling
thread's CPU time (``time.thread_time``) between the two: the compiled
computation runs on XLA's own threads, so this counts exactly the host-side
checks, conversions, copies, dispatches and the readback of the check flag,
and it barely moves with other processes' load. The target is at most 5 ns
per configuration (per member-step). The differences of wall time and of
process CPU time are printed too: they also count the device work the call
does beyond the computation itself (the element-wise checks, padding), but
on a shared machine they are noisy. Inputs are JAX arrays already
on the device (``--inputs numpy`` passes numpy arrays to both sides instead:
their transfer then costs both the same). Each size is timed ``--repeats``
times, the public call and the baseline one after the other in alternating
order, after one compiling call each; the report gives the median and spread
(min - max) over the repeats of the overhead per configuration, of the fixed
overhead per call, and the median ratio of the call's time to the baseline's.
The machine is shared, so only differences measured in one run mean anything.

    python scripts/bench_overhead.py [--max 1e7] [--repeats 5] [--only critical_time ...]
        [--inputs jax|numpy] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time

import jax

X64 = os.environ.get("JAX_ENABLE_X64", "1") != "0"
jax.config.update("jax_enable_x64", X64)
jax.config.update("jax_num_cpu_devices", int(os.environ.get("BENCH_DEVICES", "1")))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jepa_flow as jf  # noqa: E402
from jepa_flow._theory import _general, _ode  # noqa: E402
from jepa_flow._theory._critical_time import critical_time_status  # noqa: E402
from jepa_flow._theory._fixed_point import wbar_star  # noqa: E402

DTYPE = jnp.float64 if X64 else jnp.float32
# largest size per function by default (at about 1 s per call on a 2-core CPU)
CAPS = {"critical_time exact": 1e7, "critical_time ode": 1e6, "general_critical_time": 1e5,
        "simulate": 1e4, "train": 1e6}  # fmt: skip
SAVE_TIMES = np.geomspace(1.0, 1e5, 8)


def features(n, seed=0):
    rng = np.random.default_rng(seed)
    lam = 10 ** rng.uniform(-1, 1, n)
    var = lam / 10 ** rng.uniform(-1, 0.5, n)
    depth = rng.integers(1, 5, n).astype(float)
    eps = 10 ** rng.uniform(-4, -2, n)
    return lam, var, depth, eps


def padded(x, multiple):
    """``x`` padded to a multiple of ``multiple`` with copies of its last entry (a valid
    configuration, as the library's own padding is)."""
    return jnp.pad(x, (0, -x.shape[0] % multiple), mode="edge")


def case_critical_time(method, n, put):
    lam, var, depth, eps = (put(x) for x in features(n))
    fraction = put(np.full(n, 0.5))
    rtol = _ode.default_rtol(DTYPE)
    chunk = 1 if method == "exact" else _ode.CHUNK

    @jax.jit
    def baseline(*args):
        args = [padded(x, chunk) for x in args]
        return critical_time_status("jepa", method, *args, rtol=rtol)[0][:n]

    def public():
        return jf.critical_time("jepa", lam, var, depth, eps, fraction=fraction, method=method)

    return public, functools.partial(baseline, lam, var, depth, eps, fraction)


def case_general(n, put):
    lam, var, depth, eps = (put(x) for x in features(n))
    ratio = put(10 ** np.random.default_rng(1).uniform(-0.5, 1, n))
    fraction, tau = put(np.full(n, 0.5)), put(np.zeros(n))

    @jax.jit
    def baseline(lam, var, depth, eps, ratio, tau, fraction):
        args = [padded(x, _ode.CHUNK) for x in (lam, var, depth, eps, ratio, tau, fraction)]
        return [x[:n] for x in _general.general_kernel("jepa", *args)]

    def public():
        return jf.general_critical_time(
            "jepa", lam, var, depth, eps, init_ratio=ratio, fraction=fraction
        )

    return public, functools.partial(baseline, lam, var, depth, eps, ratio, tau, fraction)


def case_simulate(n, put):
    lam, var, depth, eps = (put(x) for x in features(n))
    t = put(SAVE_TIMES)
    rtol = _ode.default_rtol(DTYPE)

    @jax.jit
    def baseline(lam, var, depth, eps, t):
        log_u, code, _ = _ode.ode_trajectory("jepa", lam, var, depth, eps, t, rtol)
        log_u = jnp.where((code == _ode.SOLVED)[:, None], log_u, jnp.nan).T
        return jnp.exp(depth * log_u), jnp.exp(log_u), wbar_star("jepa", lam, var, depth)

    def public():
        return jf.simulate("jepa", lam, var, depth, eps, t)

    return public, functools.partial(baseline, lam, var, depth, eps, t)


def case_train(member_steps, put):
    """An ensemble of d = 16, depth-2 JEPA models on the population loss."""
    from jepa_flow._training import _engine, _train

    steps = 1000 if member_steps >= 1e4 else 100
    members = max(int(member_steps // steps), 1)
    rng = np.random.default_rng(0)
    var = rng.uniform(0.5, 2.0, 16)
    data = jf.gaussian(Sxx=var, Syx=var * rng.uniform(0.2, 0.9, 16))
    cfg = jf.TrainConfig(depth=2, eta=0.01, eps=0.1, seed=range(members), steps=steps, n_t=20)
    (st, data, shared, consts, slots), _ = _train.prepared(data, cfg)

    def baseline():
        return _engine.compiled_run(st, True)(data, shared, consts, slots)

    return lambda: jf.train(data, cfg).W, baseline


def make_case(name, n, put):
    if name.startswith("critical_time"):
        return case_critical_time(name.split()[1], n, put)
    return {"general_critical_time": case_general, "simulate": case_simulate,
            "train": case_train}[name](n, put)  # fmt: skip


def clock(fn, calls=1):
    """Wall, process CPU and calling-thread CPU seconds per call of ``fn``, over ``calls``
    calls in a row."""
    t0, c0, h0 = time.perf_counter(), time.process_time(), time.thread_time()
    for _ in range(calls):
        jax.block_until_ready(fn())
    t1, c1, h1 = time.perf_counter(), time.process_time(), time.thread_time()
    return (t1 - t0) / calls, (c1 - c0) / calls, (h1 - h0) / calls


def measure(name, n, repeats, put):
    public, baseline = make_case(name, n, put)
    clock(public), clock(baseline)  # compile both
    calls = max(1, min(100, int(0.2 / max(clock(baseline)[0], 1e-6))))  # >= 0.2 s per timing
    pub, base = [], []
    for r in range(repeats):
        order = [(public, pub), (baseline, base)]
        for fn, out in order if r % 2 == 0 else order[::-1]:
            out.append(clock(fn, calls))
    host = [(p[2] - b[2]) / n * 1e9 for p, b in zip(pub, base)]
    over = [(p[0] - b[0]) / n * 1e9 for p, b in zip(pub, base)]
    over_cpu = [(p[1] - b[1]) / n * 1e9 for p, b in zip(pub, base)]
    ratio = statistics.median(p[0] for p in pub) / statistics.median(b[0] for b in base)
    return {
        "n": n,
        "overhead ns/config": summary(host),
        "overhead us/call": summary([x * n / 1e3 for x in host]),
        "difference ns/config (wall)": summary(over),
        "difference ns/config (process CPU time)": summary(over_cpu),
        "public s": summary([p[0] for p in pub]),
        "baseline s": summary([b[0] for b in base]),
        "ratio public / baseline": ratio,
    }


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=float, default=1e7, help="largest size (default 1e7)")
    ap.add_argument("--min", type=float, default=1e3, help="smallest size (default 1e3)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", nargs="+", choices=sorted(CAPS), help="these functions only")
    ap.add_argument("--inputs", choices=("jax", "numpy"), default="jax")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = ap.parse_args()
    put = (lambda x: jnp.asarray(x, DTYPE)) if args.inputs == "jax" else np.asarray
    report = {"script": "bench_overhead", "figures": {}, "ratios": {}, "params": {
        "precision": "float64" if X64 else "float32", "inputs": args.inputs,
        "repeats": args.repeats, "devices": jax.device_count()}}  # fmt: skip
    print(
        f"{report['params']}; outside compiled code: calling thread's CPU time, ns per "
        "configuration and us per call, median (min - max); the wall and process CPU time "
        "differences also count device work beyond the computation, and the load"
    )
    for name in args.only or CAPS:
        sizes = [int(10**k) for k in range(3, 8) if args.min <= 10**k <= min(args.max, CAPS[name])]
        for n in sizes:
            res = measure(name, n, args.repeats, put)
            o, f = res["overhead ns/config"], res["overhead us/call"]
            w = res["difference ns/config (wall)"]
            c = res["difference ns/config (process CPU time)"]
            print(
                f"{name:>22} n={n:>6.0e}: {o['median']:7.3f} ns/config ({o['min']:.3f} - "
                f"{o['max']:.3f}), {f['median']:7.1f} us/call; wall {w['median']:.1f} "
                f"({w['min']:.1f} - {w['max']:.1f}), process {c['median']:.1f} ({c['min']:.1f} - "
                f"{c['max']:.1f}); call / jit {res['ratio public / baseline']:.3f}; jit "
                f"{res['baseline s']['median']:.3g} s",
                flush=True,
            )
            key = f"{name} n={n:.0e}"
            report["figures"][f"{key}: overhead ns/config"] = o["median"]
            report["figures"][f"{key}: overhead us/call"] = f["median"]
            report["figures"][f"{key}: difference ns/config (wall)"] = w["median"]
            report["figures"][f"{key}: difference ns/config (process CPU)"] = c["median"]
            report["ratios"][f"{key}: call / jit"] = res["ratio public / baseline"]
            report.setdefault("detail", {})[key] = res
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
