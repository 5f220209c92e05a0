"""float32 against float64 for ``train``, ``full_flow`` and the sweeps (docs/precision.md).

    python scripts/accuracy_float32.py [--out results/accuracy_float32.json] [--quick]

Each part runs twice, in a ``JAX_ENABLE_X64=0`` and a ``JAX_ENABLE_X64=1``
subprocess, on the same inputs and seeds, and the float32 outputs are compared
with the float64 ones (relative difference; the critical times of
``scripts/accuracy_precision.py --table float32`` cover the theory methods):

``train``: gradient descent from the balanced start ``eps = 1e-2``, JEPA and
MAE, depths 1-4, on d = 2 (the canonical pair of docs/theory.md §4, in its
eigenbasis) and d = 8 (the spectrum of ``scripts/accuracy_train.py`` under a
random rotation ``U``, so every matrix product is dense); population loss
(seed 0) and minibatches of 1024 (Wishart moments, seeds 0-2; the draws are
float32 in both precisions, so a seed gives the same minibatches). Step sizes
are those of ``scripts/accuracy_train.py``; each run lasts 2.5 times the
latest theory critical time. Reported: the training critical times' relative
difference float32 vs float64, and beside it the float64 run's own difference
from the per-feature theory (the gradient-descent bias), for scale.

``full_flow``: the full-matrix flow from the balanced start plus 1e-3 relative
Gaussian noise (the same numpy draw in both), JEPA (stop-gradient and EMA,
``tau = 5``) and MAE, depths 1-4, d = 2 and 8 (rotated), each feature's first
crossing of half its fixed point: relative difference of the crossing times,
of the final ``U^T Wbar U`` (largest entry difference over the largest entry),
and the solver's step counts.

``sweep``: one balanced sweep (methods exact, ode and series; depth 1-8,
``lam`` 1e-2..1e2, ``rho`` 10^-1.5..10^0.5, ``eps`` 1e-6..1e-1, fractions 0.5
and 0.9) and one general-flow sweep (JEPA stop-gradient, EMA and MAE;
``init_ratio`` 0.25-4, depths 1-4), through ``run_sweep``: ``t_star``,
``wbar_star``/``wbar_final`` and ``ok``/``collapsed``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _accuracy_setup import EPS, ETA, ETA_MB  # scripts/: the d = 8 setup of accuracy_train
from _accuracy_setup import LAM as LAM8
from _accuracy_setup import VAR as VAR8

LAM2, VAR2 = np.array([1.0, 0.8]), np.array([2.0, 1.0])

DEPTHS = (1, 2, 3, 4)
BALANCED_SWEEP = """
[sweep]
objective = ["jepa", "mae"]
method = ["exact", "ode", "series"]
depth = [1, 2, 3, 4, 5, 6, 7, 8]
lam = {{logspace = [-2, 2, {n}]}}
rho = {{logspace = [-1.5, 0.5, {n}]}}
eps = {{logspace = [-6, -1, {n}]}}
fraction = [0.5, 0.9]
"""
GENERAL_SWEEP = """
[sweep]
objective = ["jepa", "mae"]
flow = "general"
target = ["stopgrad", "ema"]
tau = [0.5, 5.0]
init_ratio = [0.25, 1.0, 4.0]
depth = [1, 2, 3, 4]
lam = 1.0
rho = [0.2, 0.5, 0.9]
eps = [1e-3, 1e-2]
"""


def _datasets():
    import jepa_flow as jf

    out = {}
    for batch in (None, 1024):
        mode = "population" if batch is None else "minibatch"
        out[f"d2_{mode}"] = jf.gaussian(Sxx=VAR2, Syx=LAM2, batch=batch)
        out[f"d8_{mode}"] = jf.gaussian(Sxx=VAR8, Syx=LAM8, U="random", seed=1, batch=batch)
    return out


def compute_train(res):
    import jepa_flow as jf

    for name, data in _datasets().items():
        lam, var = np.asarray(data.lam, float), np.asarray(data.var, float)
        minibatch = data.batch is not None
        for o in ("jepa", "mae"):
            for L in DEPTHS:
                t_th = np.asarray(jf.critical_time(o, lam, var, L, EPS), float)
                eta = (ETA_MB if minibatch else ETA)[o][L]
                cfg = jf.TrainConfig(
                    objective=o,
                    depth=L,
                    eta=eta,
                    eps=EPS,
                    seed=[0, 1, 2] if minibatch else 0,
                    t_max=2.5 * float(t_th.max()),
                    n_t=8,
                    t_extra=(),
                )
                t0 = time.perf_counter()
                r = jf.train(data, cfg)
                res[f"train/{name}/{o}/{L}/t_star"] = np.asarray(r.t_star[:, 0, 0], float)
                res[f"train/{name}/{o}/{L}/theory"] = t_th
                res[f"train/{name}/{o}/{L}/seconds"] = np.array(time.perf_counter() - t0)
                res[f"train/{name}/{o}/{L}/steps"] = np.array(cfg.n_steps)


def compute_full_flow(res):
    import jepa_flow as jf

    for name, data in _datasets().items():
        if name.endswith("minibatch"):
            continue
        d = data.d
        lam, var = np.asarray(data.lam, float), np.asarray(data.var, float)
        for o, target, tau in (("jepa", "stopgrad", 0.0), ("jepa", "ema", 5.0), ("mae", "", 0.0)):
            for L in DEPTHS:
                rng = np.random.default_rng(100 * L + d)
                u0 = EPS ** (1.0 / L)
                W0 = u0 * (np.eye(d) + 1e-3 * rng.standard_normal((L, d, d)))
                V0 = u0 * (np.eye(d) + 1e-3 * rng.standard_normal((d, d)))
                level = 0.5 * np.asarray(jf.fixed_point(o, lam, var, L), float)
                t_end = 2.5 * float(np.max(jf.critical_time(o, lam, var, L, EPS)))
                key = f"full_flow/{name.split('_')[0]}/{o}{'_' + target if target else ''}/{L}"
                t0 = time.perf_counter()
                ff = jf.full_flow(
                    o,
                    data,
                    W0,
                    V0,
                    L,
                    t=np.geomspace(1e-3, 1.0, 6) * t_end,
                    level=level,
                    target=target or "stopgrad",
                    tau=tau,
                )
                res[key + "/t_star"] = np.asarray(ff.t_star, float)
                res[key + "/latent"] = np.asarray(ff.latent[-1], float)
                res[key + "/ok"] = np.asarray(ff.ok)
                res[key + "/num_steps"] = np.asarray(ff.num_steps)
                res[key + "/seconds"] = np.array(time.perf_counter() - t0)


def compute_sweep(res, n):
    import jepa_flow as jf

    with tempfile.TemporaryDirectory() as tmp:
        for kind, text in (("balanced", BALANCED_SWEEP.format(n=n)), ("general", GENERAL_SWEEP)):
            cfg = jf.parse_sweep_config(text)
            t0 = time.perf_counter()
            jf.run_sweep(cfg, os.path.join(tmp, kind))
            res[f"sweep/{kind}/seconds"] = np.array(time.perf_counter() - t0)
            cols = jf.load_sweep(os.path.join(tmp, kind)).columns()
            for k, v in cols.items():
                if v.dtype.kind in "fbiu":
                    res[f"sweep/{kind}/{k}"] = v
                else:
                    res[f"sweep/{kind}/{k}"] = v.astype(str)


def compute(path, parts, n):
    import jax

    res = {"dtype": np.array(str(jax.numpy.zeros(1).dtype))}
    if "train" in parts:
        compute_train(res)
    if "full_flow" in parts:
        compute_full_flow(res)
    if "sweep" in parts:
        compute_sweep(res, n)
    np.savez(path, **res)


def _rel(a, b):
    """|a / b - 1| where both are finite and b > 0 (inf where exactly one is finite)."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    both = np.isfinite(a) & np.isfinite(b) & (b > 0)
    out = np.where(np.isfinite(a) == np.isfinite(b), 0.0, np.inf)
    out[both] = np.abs(a[both] / b[both] - 1)
    return out


def _stats(e):
    e = np.asarray(e, float).ravel()
    return {"max": float(e.max()), "median": float(np.median(e)), "n": int(e.size)}


def tables(f32, f64, parts) -> dict:
    report = {}
    if "train" in parts:
        print("\ntrain: training critical times, float32 vs float64 (same seeds)")
        print(
            f"{'data':16s} {'obj':5s} {'L':>2s} {'steps':>7s} {'f32 vs f64':>11s} "
            f"{'f64 vs theory':>14s} {'s f32':>6s} {'s f64':>6s}"
        )
        groups = {}
        for key in sorted(k for k in f64.files if k.startswith("train/") and k.endswith("t_star")):
            _, name, o, L, _ = key.split("/")
            base = key.removesuffix("/t_star")
            e = _rel(f32[key], f64[key])
            e_th = _rel(f64[key], f64[base + "/theory"][None, :])
            groups.setdefault((name, o), []).append(e)
            report[base] = {
                "rel_diff_f32_f64": _stats(e),
                "rel_diff_f64_theory": _stats(e_th),
                "steps": int(f64[base + "/steps"]),
                "seconds_f32": float(f32[base + "/seconds"]),
                "seconds_f64": float(f64[base + "/seconds"]),
            }
            print(
                f"{name:16s} {o:5s} {L:>2s} {int(f64[base + '/steps']):7d} {e.max():11.1e} "
                f"{e_th.max():14.1e} {float(f32[base + '/seconds']):6.1f} "
                f"{float(f64[base + '/seconds']):6.1f}"
            )
        for (name, o), es in sorted(groups.items()):
            report[f"train/{name}/{o}"] = _stats(np.concatenate([x.ravel() for x in es]))
    if "full_flow" in parts:
        print("\nfull_flow: crossing times and final U^T Wbar U, float32 vs float64")
        print(
            f"{'case':26s} {'t* rel diff':>11s} {'latent':>9s} {'steps f32':>9s} "
            f"{'steps f64':>9s} {'ok':>5s}"
        )
        for key in sorted(k for k in f64.files if k.startswith("full_flow/") and "t_star" in k):
            base = key.removesuffix("/t_star")
            e = _rel(f32[key], f64[key])
            a, b = f32[base + "/latent"], f64[base + "/latent"]
            e_lat = float(np.abs(a - b).max() / np.abs(b).max())
            ok = bool(f32[base + "/ok"]) and bool(f64[base + "/ok"])
            report[base] = {
                "t_star_rel_diff": _stats(e),
                "latent_rel_diff": e_lat,
                "num_steps_f32": int(f32[base + "/num_steps"]),
                "num_steps_f64": int(f64[base + "/num_steps"]),
                "seconds_f32": float(f32[base + "/seconds"]),
                "seconds_f64": float(f64[base + "/seconds"]),
                "ok": ok,
            }
            print(
                f"{base.removeprefix('full_flow/'):26s} {e.max():11.1e} {e_lat:9.1e} "
                f"{int(f32[base + '/num_steps']):9d} {int(f64[base + '/num_steps']):9d} {ok!s:>5s}"
            )
    if "sweep" in parts:
        print("\nsweep: run_sweep in float32 vs float64")
        for kind in ("balanced", "general"):
            pre = f"sweep/{kind}/"
            t32, t64 = f32[pre + "t_star"], f64[pre + "t_star"]
            ok32, ok64 = f32[pre + "ok"], f64[pre + "ok"]
            split = "method" if kind == "balanced" else "target"
            labels = f64[pre + split]
            for lab in np.unique(labels):
                for o in np.unique(f64[pre + "objective"]):
                    sel = (labels == lab) & (f64[pre + "objective"] == o)
                    if not sel.any():
                        continue
                    e = _rel(t32[sel], t64[sel])
                    w = "wbar_star" if kind == "balanced" else "wbar_final"
                    e_w = _rel(f32[pre + w][sel], f64[pre + w][sel])
                    entry = {
                        "t_star": _stats(e),
                        w: _stats(e_w),
                        "ok_f32": int(ok32[sel].sum()),
                        "ok_f64": int(ok64[sel].sum()),
                        "n": int(sel.sum()),
                    }
                    if kind == "general":
                        entry["collapsed_differs"] = int(
                            (f32[pre + "collapsed"][sel] != f64[pre + "collapsed"][sel]).sum()
                        )
                    report[f"{pre}{o}/{lab}"] = entry
                    print(
                        f"{kind:8s} {o:5s} {lab:9s} t* max {e.max():8.1e} median "
                        f"{np.median(e):8.1e}  {w} max {e_w.max():8.1e}  ok "
                        f"{entry['ok_f32']}/{entry['n']} (f64 {entry['ok_f64']})"
                        + (
                            f"  collapsed differs {entry['collapsed_differs']}"
                            if kind == "general"
                            else ""
                        )
                    )
            report[pre + "seconds"] = {
                "f32": float(f32[pre + "seconds"]),
                "f64": float(f64[pre + "seconds"]),
            }
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--parts",
        nargs="+",
        default=["train", "full_flow", "sweep"],
        choices=("train", "full_flow", "sweep"),
    )
    ap.add_argument("--n", type=int, default=6, help="points per lam/rho/eps axis of the sweep")
    ap.add_argument("--out", default=None, help="write the report as JSON")
    ap.add_argument("--keep", metavar="DIR", help="keep the raw outputs (x64_0.npz, x64_1.npz)")
    ap.add_argument("--tables-from", metavar="DIR", help="only print the tables of kept outputs")
    ap.add_argument("--compute", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.compute:
        compute(args.compute, args.parts, args.n)
        return 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.tables_from or args.keep or tmp
        os.makedirs(tmp, exist_ok=True)
        paths = {}
        for x64 in ("0", "1"):
            paths[x64] = os.path.join(tmp, f"x64_{x64}.npz")
            if args.tables_from:
                continue
            env = dict(os.environ, JAX_ENABLE_X64=x64)
            cmd = [
                sys.executable,
                __file__,
                "--compute",
                paths[x64],
                "--n",
                str(args.n),
                "--parts",
                *args.parts,
            ]
            subprocess.run(cmd, env=env, check=True)
        f32, f64 = np.load(paths["0"]), np.load(paths["1"])
        assert str(f32["dtype"]) == "float32" and str(f64["dtype"]) == "float64"
        report = tables(f32, f64, args.parts)
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)
            fh.write("\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
