"""float32 (x64 off) is a supported precision: one subprocess checks every method.

tests/conftest.py turns x64 on for this process, so the float32 side runs in
one child process (``JAX_ENABLE_X64=0``) that writes its results; they are
checked here against float64 at the float32 tolerances of docs/precision.md.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

import jepa_flow as jf

CHILD = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    import jax
    warnings.simplefilter("error")  # no float32 warning, no failed member
    import jepa_flow as jf
    from jepa_flow._cli import main

    assert not jax.config.jax_enable_x64
    cfg = {k: np.asarray(v) for k, v in json.loads(sys.argv[1]).items()}
    a = (cfg["lam"], cfg["var"], cfg["depth"], cfg["eps"])
    out = {}
    for o in ("jepa", "mae"):
        for m in ("exact", "ode", "series"):
            t = jf.critical_time(o, *a, cfg["fraction"], method=m)
            assert t.dtype == np.float32, t.dtype
            out[f"{o}_{m}"] = np.asarray(t).tolist()
        out[f"{o}_fixed_point"] = np.asarray(jf.fixed_point(o, *a[:3])).tolist()
        traj = jf.simulate(o, *a, cfg["t"])
        assert bool(np.all(traj.ok)) and traj.wbar.dtype == np.float32
        out[f"{o}_sim"] = np.asarray(traj.wbar).tolist()
    # a tolerance below float32 resolution is refused, not silently useless
    try:
        jf.critical_time("jepa", 1.0, 1.0, 2, 1e-3, method="ode", rtol=1e-12)
        raise AssertionError("rtol=1e-12 accepted in float32")
    except ValueError as err:
        assert "rtol must lie in [1.91e-06, 0.1] in float32" in str(err), err
    # an input outside the float32 range is flagged, the others are unchanged
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        t = np.asarray(jf.critical_time("jepa", [1.0, 1.0], [2.0, 1.0], [3, 3], [1e-3, 1e-50],
                                        method="ode"))
    assert np.isnan(t[1]) and np.isfinite(t[0]), t
    assert any("1 outside the float32 range" in str(w.message) for w in rec), rec
    out["lone"] = float(np.asarray(jf.critical_time("jepa", 1.0, 2.0, 3, 1e-3, method="ode")))
    out["flagged_ok_member"] = float(t[0])
    # the CLI in float32
    assert main(["critical-time", "--lam", "1", "--var", "2", "--depth", "3", "--method", "ode",
                 "--precision", "float32", "--rtol", "1e-5", "--objective", "jepa",
                 "--json"]) == 0
    json.dump(out, open(sys.argv[2], "w"))
    """
)


def _configs(n=256, seed=11):
    rng = np.random.default_rng(seed)
    depth = rng.integers(1, 9, n).astype(float)
    lam = 10 ** rng.uniform(-2, 2, n)
    rho = 10 ** rng.uniform(-1.5, 0.5, n)
    eps = 10 ** rng.uniform(-6, -1, n)
    fraction = np.where(np.arange(n) % 2, 0.9, 0.5)
    return dict(lam=lam, var=lam / rho, depth=depth, eps=eps, fraction=fraction)


def test_float32_matches_float64(tmp_path):
    cfg = _configs()
    # one save-time grid for every member, spanning their half times
    t_half = np.asarray(jf.critical_time("jepa", cfg["lam"], cfg["var"], cfg["depth"], cfg["eps"]))
    t_grid = np.unique(np.concatenate([[0.0], np.geomspace(1e-2, 1e3, 40) * np.median(t_half)]))
    child_cfg = {**{k: v.tolist() for k, v in cfg.items()}, "t": t_grid.tolist()}
    out_path = tmp_path / "f32.json"
    env = dict(os.environ, JAX_ENABLE_X64="0", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(child_cfg), str(out_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = {k: np.asarray(v) for k, v in json.loads(out_path.read_text()).items()}
    a = (cfg["lam"], cfg["var"], cfg["depth"], cfg["eps"])
    for o in ("jepa", "mae"):
        ref = np.asarray(jf.critical_time(o, *a, cfg["fraction"]))
        pos = ref > 0
        for m, tol in (("exact", 1e-3), ("ode", 1e-3)):
            rel = np.abs(got[f"{o}_{m}"][pos] / ref[pos] - 1)
            assert rel.max() < tol, (o, m, rel.max())
            assert rel.max() > 1e-9  # it really ran in float32
        series = np.asarray(jf.critical_time(o, *a, cfg["fraction"], method="series"))
        np.testing.assert_allclose(got[f"{o}_series"], series, rtol=1e-4)
        np.testing.assert_allclose(got[f"{o}_fixed_point"], jf.fixed_point(o, *a[:3]), rtol=1e-4)
        # trajectories: each float32 point (t, wbar) lies on the exact curve, in time
        wbar = got[f"{o}_sim"]
        ws = np.asarray(jf.fixed_point(o, *a[:3]))
        frac = wbar / ws
        inner = (frac > 1.05 * cfg["eps"] / ws) & (frac > 1e-4) & (frac < 0.99)
        t_of_w = np.asarray(
            jf.critical_time(o, *np.broadcast_arrays(*a), fraction=np.where(inner, frac, 0.5))
        )
        tt = np.broadcast_to(t_grid[:, None], wbar.shape)
        rel = np.abs(t_of_w[inner] / tt[inner] - 1)
        assert inner.sum() > 500 and rel.max() < 2e-3, (o, inner.sum(), rel.max())
    # the flagged member did not change its neighbour
    assert got["flagged_ok_member"] == got["lone"]
