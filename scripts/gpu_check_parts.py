"""The benchmark parts of ``scripts/gpu_check.py``, one function each (float64).

Each runs in a fresh process (``gpu_check.py --worker PART SIZES``) and returns
its figures: medians and spreads (min, max) over repeats of a call that is
already compiled, except where a figure says it includes compilation.
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _timed(fn, repeats=3) -> list[float]:
    """Seconds of ``fn()`` (blocked on) per repeat, after one compiling call."""
    jax.block_until_ready(fn())
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - t0)
    return out


def _rate(count, seconds: list[float]) -> dict:
    rates = [count / s for s in seconds]
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def _peak_rss_gib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 2**20


def critical_time(n: int) -> dict:
    """Configurations per second of ``critical_time`` on ``n`` configurations (device arrays)."""
    import jepa_flow as jf

    k = jax.random.split(jax.random.PRNGKey(0), 4)
    lam = 10 ** jax.random.uniform(k[0], (n,), minval=-1.0, maxval=1.0)
    var = lam / 10 ** jax.random.uniform(k[1], (n,), minval=-1.0, maxval=0.5)
    depth = jax.random.randint(k[2], (n,), 1, 5).astype(lam.dtype)
    eps = 10 ** jax.random.uniform(k[3], (n,), minval=-4.0, maxval=-2.0)
    out = {"configurations": n}
    for method in ("exact", "ode"):
        seconds = _timed(lambda m=method: jf.critical_time("jepa", lam, var, depth, eps, method=m))
        out[f"{method} configs/s"] = _rate(n, seconds)
    return out


def overhead(n: int) -> dict:
    """``bench_overhead.py``'s measure for ``critical_time`` (exact) at ``n``: the time the
    call spends outside its compiled computation."""
    import bench_overhead

    res = bench_overhead.measure("critical_time exact", n, 5, jnp.asarray)
    keys = ("overhead ns/config", "overhead us/call", "ratio public / baseline")
    return {"configurations": n} | {k: res[k] for k in keys}


def sweep(rows: int) -> dict:
    """An exact sweep of about ``rows`` rows through ``jepa_flow.run_sweep``, twice (the first
    run includes compiling the chunk function), into a temporary directory."""
    from bench_sweep import grid_toml

    import jepa_flow as jf

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "sweep.toml"
        config.write_text(grid_toml(rows, "exact") + '\n[budget]\nmemory = "64G"\ndisk = "60G"\n')
        for run in ("first (compiles)", "second"):
            t0 = time.perf_counter()
            res = jf.run_sweep(str(config), Path(tmp) / run.split()[0])
            seconds = time.perf_counter() - t0
            out[f"{run}: seconds"] = seconds
            out[f"{run}: rows/s"] = res.computed / seconds
            out["rows"] = res.computed
            out["failed"] = res.failed
    out["peak RSS GiB"] = _peak_rss_gib()
    return out


def _training(members: int, d: int, steps: int, depth: int) -> dict:
    """Fraction of the matmul peak (``bench_train_flops.py``) and member-steps per second."""
    import bench_train_flops as b

    import jepa_flow as jf

    data = b.data_for(d)
    cfg = jf.TrainConfig(depth=depth, eta=1e-3, eps=0.1, seed=range(members), steps=10, n_t=2)
    flops = b.step_flops(data, cfg)
    # a 1024 x 1024 product is launch-bound on a GPU (an H200 showed 9-12 TFLOP/s in
    # float64, which a d = 1024 step then exceeded): 8192 there
    peak = b.peak_dot(1024 if jax.default_backend() == "cpu" else 8192)
    fractions, seconds = b.fractions_of_peak(data, cfg, flops, steps, 3, peak)
    wall, per_step = fractions[:, 0], float(np.median(seconds[:, 0]))
    return {
        "members": members,
        "d": d,
        "depth": depth,
        "MFLOP per member-step": flops / members / 1e6,
        "fraction of matmul peak (wall)": {
            "median": float(np.median(wall)), "min": float(wall.min()), "max": float(wall.max())
        },
        "matmul peak GFLOP/s": float(peak()[0]) / 1e9,
        "member-steps/s": members / per_step,
    }  # fmt: skip


def ensemble(members: int, d: int, steps: int) -> dict:
    return _training(members, d, steps, depth=4)


def large_model(members: int, d: int, steps: int) -> dict:
    return _training(members, d, steps, depth=2)


def full_flow(d: int) -> dict:
    """Seconds of one ``full_flow`` solve (JEPA, depth 2, non-commuting rotated data)."""
    import jepa_flow as jf

    rng = np.random.default_rng(0)
    var = rng.uniform(0.5, 2.0, d)
    lam = var * rng.uniform(0.3, 0.9, d)
    data = jf.gaussian(Sxx=var, Syx=lam, U=jf.random_rotation(d, seed=1))
    eps, depth = 0.05, 2
    t_end = 2.0 * float(np.max(np.asarray(jf.critical_time("jepa", lam, var, depth, eps))))
    u0 = eps ** (1 / depth)
    W0 = np.stack([u0 * np.eye(d) + 1e-4 * rng.normal(size=(d, d)) for _ in range(depth)])
    V0 = u0 * np.eye(d)
    level = 0.5 * np.asarray(jf.fixed_point("jepa", lam, var, depth))
    t = np.geomspace(t_end / 100, t_end, 8)

    def solve():
        return jf.full_flow("jepa", data, W0, V0, depth, t, level).t_star

    seconds = _timed(solve, repeats=2)
    res = jf.full_flow("jepa", data, W0, V0, depth, t, level)
    return {
        "d": d,
        "seconds": {"median": statistics.median(seconds), "min": min(seconds),
                    "max": max(seconds)},
        "solver steps": int(res.num_steps),
        "ok": bool(res.ok),
        "features crossed": int(np.isfinite(np.asarray(res.t_star)).sum()),
    }  # fmt: skip
