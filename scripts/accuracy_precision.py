"""Accuracy of every method in float32 (x64 off) and of the ODE method at several rtol.

    python scripts/accuracy_precision.py            # every table
    python scripts/accuracy_precision.py --table rtol
    python scripts/accuracy_precision.py --table nodes
    python scripts/accuracy_precision.py --table float32

``rtol``: ``critical_time(method="ode", rtol=...)`` against ``method="exact"`` in
float64 over depth 1-16, rho 0.01-10, lam 1e-3..1e3, eps log-uniform from 1e-6
to the fixed point, fractions 0.5 and 0.9 (the table in
``jepa_flow._theory._ode``).

``nodes``: the same over an extended range (depth 1-1024, rho 1e-4..1e4, eps
down to 1e-300, fractions 0.01-0.999), where the node count that ``rtol``
selects matters.

``float32``: each method run with ``JAX_ENABLE_X64=0`` (in a subprocess)
against the same method in float64, over depth 1-8, lam 1e-2..1e2, rho
10^-1.5..10^0.5, eps 1e-6..1e-1 (log-uniform), fractions 0.5 and 0.9; for
``simulate`` the relative error of the time at which the float32 trajectory
passes each sampled ``wbar`` (the exact inverse ``t(wbar)`` in float64),
which is what float32 can resolve on the steep rise (the tables in
docs/precision.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

N = 2000


def float32_configs(n=N, seed=3):
    rng = np.random.default_rng(seed)
    depth = rng.integers(1, 9, n).astype(float)
    lam = 10 ** rng.uniform(-2, 2, n)
    rho = 10 ** rng.uniform(-1.5, 0.5, n)
    eps = 10 ** rng.uniform(-6, -1, n)
    fraction = np.where(np.arange(n) % 2, 0.9, 0.5)
    return lam, lam / rho, depth, eps, fraction


def compute(out_path):
    """Every method's output on the float32 grid in the current precision."""
    import jax

    import jepa_flow as jf

    lam, var, depth, eps, fraction = float32_configs()
    res = {}
    for o in ("jepa", "mae"):
        for m in ("exact", "ode", "series"):
            res[f"{o}_{m}"] = np.asarray(
                jf.critical_time(o, lam, var, depth, eps, fraction=fraction, method=m)
            )
        res[f"{o}_fixed_point"] = np.asarray(jf.fixed_point(o, lam, var, depth))
        sl = slice(0, 200)
        t_half = np.asarray(jf.critical_time(o, lam[sl], var[sl], depth[sl], eps[sl], fraction=0.5))
        t = np.geomspace(1e-3, 1.0, 64)[None, :] * (4 * t_half)[:, None]
        # one save-time grid per member: simulate member by member on a shared grid
        grid = np.unique(np.concatenate([[0.0], t.ravel()]))
        traj = jf.simulate(o, lam[sl], var[sl], depth[sl], eps[sl], grid)
        res[f"{o}_sim_t"] = grid
        res[f"{o}_sim_wbar"] = np.asarray(traj.wbar)
        res[f"{o}_sim_ok"] = np.asarray(traj.ok)
    res["dtype"] = np.array(str(jax.numpy.zeros(1).dtype))
    np.savez(out_path, **res)


def float32_table():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jepa_flow as jf

    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for x64 in ("0", "1"):
            paths[x64] = os.path.join(tmp, f"x64_{x64}.npz")
            env = dict(os.environ, JAX_ENABLE_X64=x64)
            subprocess.run([sys.executable, __file__, "--compute", paths[x64]], env=env, check=True)
        f32, f64 = np.load(paths["0"]), np.load(paths["1"])
        assert str(f32["dtype"]) == "float32" and str(f64["dtype"]) == "float64"
        lam, var, depth, eps, _ = float32_configs()
        print(
            "quantity               objective  max rel err  median   99th pct  (float32 vs float64)"
        )
        for o in ("jepa", "mae"):
            for m in ("exact", "ode", "series", "fixed_point"):
                a, b = f32[f"{o}_{m}"], f64[f"{o}_{m}"]
                pos = b > 0
                e = np.abs(a[pos] / b[pos] - 1)
                q99 = np.quantile(e, 0.99)
                print(f"{m:22s} {o:10s} {e.max():11.1e} {np.median(e):9.1e} {q99:9.1e}")
            # simulate: time error at which the float32 trajectory passes wbar
            sl = slice(0, 200)
            t, w = f32[f"{o}_sim_t"], f32[f"{o}_sim_wbar"]
            ws = np.asarray(jf.fixed_point(o, lam[sl], var[sl], depth[sl]))
            frac = w / ws
            inner = (frac > 1.01 * (eps[sl] / ws)) & (frac > 1e-6) & (frac < 0.999)
            frac_c = np.where(inner, frac, 0.5)
            t_exact = np.asarray(
                jf.critical_time(
                    o, *np.broadcast_arrays(lam[sl], var[sl], depth[sl], eps[sl]), fraction=frac_c
                )
            )
            tt = np.broadcast_to(t[:, None], w.shape)
            e = np.abs(tt[inner] / t_exact[inner] - 1)
            print(
                f"{'simulate (time at wbar)':22s} {o:10s} {e.max():11.1e} {np.median(e):9.1e} "
                f"{np.quantile(e, 0.99):9.1e}  ({int(inner.sum())} points, "
                f"ok {int(f32[f'{o}_sim_ok'].sum())}/200)"
            )


def rtol_table():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jepa_flow as jf

    def configs(objective, n, seed):
        rng = np.random.default_rng(seed)
        depth = rng.integers(1, 17, n).astype(float)
        rho = 10 ** rng.uniform(-2, 1, n)
        lam = 10 ** rng.uniform(-3, 3, n)
        ws = np.asarray(jf.fixed_point(objective, lam, lam / rho, depth))
        lo, hi = np.log(1e-6), np.log(np.maximum(ws, 2e-6))
        eps = np.exp(lo + rng.uniform(0, 1, n) * (hi - lo))
        return lam, lam / rho, depth, eps

    print("rtol   objective fraction  max rel err  median   99th pct  (ode vs exact, float64)")
    for rtol in (1e-6, 1e-8, 1e-10, 1e-12):
        for o in ("jepa", "mae"):
            for fr in (0.5, 0.9):
                lam, var, depth, eps = configs(o, 3000, 7)
                ex = np.asarray(jf.critical_time(o, lam, var, depth, eps, fraction=fr))
                od = np.asarray(
                    jf.critical_time(o, lam, var, depth, eps, fraction=fr, method="ode", rtol=rtol)
                )
                pos = ex > 0
                e = np.abs(od[pos] / ex[pos] - 1)
                print(
                    f"{rtol:<6.0e} {o:9s} {fr:<8} {e.max():11.1e} {np.median(e):9.1e} "
                    f"{np.quantile(e, 0.99):9.1e}"
                )


def nodes_table():
    """The ODE method's error by tolerance over an extended range (depth up to 1024)."""
    import warnings

    import jax

    jax.config.update("jax_enable_x64", True)
    import jepa_flow as jf
    from jepa_flow._theory._ode import gauss_nodes

    rng = np.random.default_rng(5)
    n = 20000
    print(
        "rtol   nodes  objective  max rel err  99.9th pct  median  (ode vs exact, float64; "
        "depth 1-1024, rho 1e-4..1e4, eps 1e-300..level, fraction 0.01-0.999)"
    )
    cases = {}
    for o in ("jepa", "mae"):
        depth = np.round(np.exp(rng.uniform(0, np.log(1024), n)))
        rho = 10 ** rng.uniform(-4, 4, n)
        lam = 10 ** rng.uniform(-3, 3, n)
        fraction = rng.choice([0.01, 0.1, 0.5, 0.9, 0.99, 0.999], n)
        ws = np.asarray(jf.fixed_point(o, lam, lam / rho, depth))
        lo, hi = np.log(1e-300), np.log(np.minimum(np.maximum(ws, 2e-300), 1e100))
        eps = np.exp(lo + rng.uniform(0, 1, n) * (hi - lo))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # times beyond float64 are NaN in both
            exact = np.asarray(jf.critical_time(o, lam, lam / rho, depth, eps, fraction=fraction))
        # times near the underflow threshold are inaccurate in the closed forms themselves
        pos = np.isfinite(exact) & (exact > 1e-290)
        cases[o] = (lam, lam / rho, depth, eps, fraction, exact, pos)
    for rtol in (1e-3, 1e-5, 1e-7, 1e-9, 1e-11, 1e-12):
        for o, (lam, var, depth, eps, fraction, exact, pos) in cases.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ode = np.asarray(
                    jf.critical_time(
                        o, lam, var, depth, eps, fraction=fraction, method="ode", rtol=rtol
                    )
                )
            e = np.abs(ode[pos] / exact[pos] - 1)
            print(
                f"{rtol:<6.0e} {gauss_nodes(rtol):5d}  {o:9s} {e.max():11.1e} "
                f"{np.quantile(e, 0.999):11.1e} {np.median(e):8.1e}"
            )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", choices=("rtol", "nodes", "float32", "both"), default="both")
    ap.add_argument("--compute", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.compute:
        compute(args.compute)
        return 0
    if args.table in ("rtol", "both"):
        rtol_table()
    if args.table in ("nodes", "both"):
        nodes_table()
    if args.table in ("float32", "both"):
        float32_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
