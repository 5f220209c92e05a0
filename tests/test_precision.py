"""float32 (x64 off) is a supported precision: one subprocess checks every method.

tests/conftest.py turns x64 on for this process, so the float32 side runs in
one child process (``JAX_ENABLE_X64=0``, a module-scoped fixture) that writes
its results: the theory methods, ``train`` (population and minibatch),
``full_flow``, a balanced and a general sweep, and the command line; they are
checked here against float64 at the float32 tolerances of docs/precision.md.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow._cli import main

CHILD = textwrap.dedent(
    """
    import json, os, sys, warnings
    import numpy as np
    import jax
    warnings.simplefilter("error")  # no float32 warning, no failed member
    import jepa_flow as jf
    from jepa_flow._cli import main

    assert not jax.config.jax_enable_x64
    cfg = {k: np.asarray(v) for k, v in json.loads(sys.argv[1]).items()}
    TRAIN, FULL, SWEEPS = json.loads(sys.argv[4])
    a = (cfg["lam"], cfg["var"], cfg["depth"], cfg["eps"])
    out = {}
    for o in ("jepa", "mae"):
        for m in ("exact", "ode", "series"):
            t = jf.critical_time(o, *a, fraction=cfg["fraction"], method=m)
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
    # train: population (d = 2, JEPA and MAE) and minibatch (Wishart draws, two seeds)
    for name, kw in TRAIN.items():
        data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8], batch=kw.pop("batch"))
        r = jf.train(data, jf.TrainConfig(**kw))
        assert r.t_star.dtype == np.float32 and r.W.dtype == np.float32
        out[f"train_{name}"] = np.asarray(r.t_star).tolist()
    # full_flow from a perturbed balanced start under a rotation
    for name, kw in FULL.items():
        data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8], U="random", seed=1)
        ff = jf.full_flow(kw["objective"], data, np.asarray(kw["W0"]), np.asarray(kw["V0"]),
                          kw["depth"], t=kw["t"], level=kw["level"])
        assert bool(ff.ok) and ff.latent.dtype == np.float32
        out[f"full_{name}"] = [np.asarray(ff.t_star).tolist(), int(ff.num_steps),
                               np.asarray(ff.latent[-1]).tolist()]
    # sweeps: run in float32, checked by the parent; a float64-only rtol is refused first
    for name, text in SWEEPS.items():
        jf.run_sweep(jf.parse_sweep_config(text), f"{sys.argv[3]}/{name}")
    try:
        jf.run_sweep(jf.parse_sweep_config(SWEEPS["balanced"] + "rtol = 1e-12\\n"),
                     f"{sys.argv[3]}/refused")
        raise AssertionError("sweep.rtol=1e-12 accepted in float32")
    except ValueError as err:
        assert "sweep.rtol must lie in [1.91e-06, 0.1] in float32" in str(err), err
    assert not os.path.exists(f"{sys.argv[3]}/refused")
    # the CLI in float32
    assert main(["train", "--depth", "1", "--eta", "0.05", "--eps", "1e-2", "--t-max", "300",
                 "--lam", "1", "0.8", "--var", "2", "1", "--precision", "float32",
                 "--no-progress", "--out", f"{sys.argv[3]}/train"]) == 0
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


# training: the canonical pair, short runs (float32 vs float64 measured in docs/precision.md)
TRAIN = {
    "jepa": dict(
        objective="jepa", depth=[1, 2], eta=0.05, eps=1e-2, t_max=1300.0, n_t=4, batch=None
    ),
    "minibatch": dict(
        objective="jepa",
        depth=[1, 2],
        eta=0.05,
        eps=1e-2,
        seed=[0, 1],
        t_max=1300.0,
        n_t=4,
        batch=64,
    ),
}
SWEEP_BALANCED = """
[sweep]
objective = "jepa"
method = ["exact", "ode"]
depth = [1, 3, 8]
lam = [0.01, 1.0, 100.0]
rho = [0.05, 0.5, 3.0]
eps = [1e-6, 1e-3, 0.1]
"""
SWEEP_GENERAL = """
[sweep]
objective = ["jepa", "mae"]
flow = "general"
init_ratio = [0.25, 1.0, 4.0]
depth = [1, 2]
lam = 1.0
rho = [0.2, 0.9]
eps = 1e-3
"""


def _full_flow_cases():
    rng = np.random.default_rng(4)
    cases = {}
    for objective, depth, t_end in (("jepa", 2, 1300.0),):
        u0 = 1e-2 ** (1 / depth)
        W0 = u0 * (np.eye(2) + 1e-3 * rng.standard_normal((depth, 2, 2)))
        V0 = u0 * (np.eye(2) + 1e-3 * rng.standard_normal((2, 2)))
        level = 0.5 * np.asarray(jf.fixed_point(objective, [1.0, 0.8], [2.0, 1.0], depth))
        cases[objective] = dict(
            objective=objective,
            depth=depth,
            W0=W0.tolist(),
            V0=V0.tolist(),
            t=[t_end / 10, t_end],
            level=level.tolist(),
        )
    return cases


@pytest.fixture(scope="module")
def f32(tmp_path_factory):
    """Run the float32 child once; its outputs, inputs and directory."""
    tmp = tmp_path_factory.mktemp("f32")
    cfg = _configs()
    # one save-time grid for every member, spanning their half times
    t_half = np.asarray(jf.critical_time("jepa", cfg["lam"], cfg["var"], cfg["depth"], cfg["eps"]))
    t_grid = np.unique(np.concatenate([[0.0], np.geomspace(1e-2, 1e3, 40) * np.median(t_half)]))
    child_cfg = {**{k: v.tolist() for k, v in cfg.items()}, "t": t_grid.tolist()}
    full = _full_flow_cases()
    sweeps = {"balanced": SWEEP_BALANCED, "general": SWEEP_GENERAL}
    out_path = tmp / "f32.json"
    env = dict(os.environ, JAX_ENABLE_X64="0", JAX_PLATFORMS="cpu")
    args = [json.dumps(child_cfg), str(out_path), str(tmp), json.dumps([TRAIN, full, sweeps])]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(out_path.read_text())
    return dict(got=got, cfg=cfg, t_grid=t_grid, full=full, dir=tmp)


def test_float32_matches_float64(f32):
    got = {k: np.asarray(v) for k, v in f32["got"].items() if not k.startswith("full_")}
    cfg, t_grid = f32["cfg"], f32["t_grid"]
    a = (cfg["lam"], cfg["var"], cfg["depth"], cfg["eps"])
    for o in ("jepa", "mae"):
        ref = np.asarray(jf.critical_time(o, *a, fraction=cfg["fraction"]))
        pos = ref > 0
        for m, tol in (("exact", 1e-3), ("ode", 1e-3)):
            rel = np.abs(got[f"{o}_{m}"][pos] / ref[pos] - 1)
            assert rel.max() < tol, (o, m, rel.max())
            assert rel.max() > 1e-9  # it really ran in float32
        series = np.asarray(jf.critical_time(o, *a, fraction=cfg["fraction"], method="series"))
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


def test_train_float32_matches_float64(f32):
    """Same seeds, same minibatch draws (float32 in both): the float32 run's critical times."""
    for name, kw in TRAIN.items():
        kw = dict(kw)
        data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8], batch=kw.pop("batch"))
        ref = jf.train(data, jf.TrainConfig(**kw)).t_star
        got = np.asarray(f32["got"][f"train_{name}"])
        assert got.shape == ref.shape and np.isfinite(ref).all()
        rel = np.abs(got / ref - 1)
        assert 0 < rel.max() < 2e-5, (name, rel.max())  # rounding over 26,000 steps


def test_full_flow_float32_matches_float64(f32):
    """The solve's tolerances follow the dtype: float32 takes fewer steps, to 1e-5."""
    data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8], U="random", seed=1)
    for name, kw in f32["full"].items():
        ff = jf.full_flow(
            kw["objective"],
            data,
            np.asarray(kw["W0"]),
            np.asarray(kw["V0"]),
            kw["depth"],
            t=kw["t"],
            level=kw["level"],
        )
        t_star, steps, latent = f32["got"][f"full_{name}"]
        assert bool(ff.ok) and np.isfinite(ff.t_star).all()
        rel = np.abs(np.asarray(t_star) / np.asarray(ff.t_star) - 1)
        assert 0 < rel.max() < 1e-5, (name, rel.max())  # docs/precision.md: 2.1e-6 (d = 2)
        ref = np.asarray(ff.latent[-1])
        assert np.abs(np.asarray(latent) - ref).max() < 1e-5 * np.abs(ref).max(), name
        # rtol 1e-10 in float32 (the old fixed tolerance) took more steps than float64
        assert steps < int(ff.num_steps), (name, steps, int(ff.num_steps))


def test_sweep_float32_matches_float64_and_is_not_resumed_in_float64(f32, tmp_path):
    for name, text in (("balanced", SWEEP_BALANCED), ("general", SWEEP_GENERAL)):
        path = f32["dir"] / name
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["precision"] == "float32"
        got = jf.load_sweep(path)
        config = jf.parse_sweep_config(text)
        ref = jf.run_sweep(config, tmp_path / name)
        assert got["t_star"].dtype == np.float32 and ref["t_star"].dtype == np.float64
        np.testing.assert_array_equal(got["ok"], ref["ok"])
        assert got["ok"].all()
        t, t_ref = got["t_star"], ref["t_star"]
        np.testing.assert_array_equal(np.isfinite(t), np.isfinite(t_ref))
        fin = np.isfinite(t_ref) & (t_ref > 0)
        rel = np.abs(t[fin] / t_ref[fin] - 1)
        assert 1e-9 < rel.max() < 1e-4, (name, rel.max())  # docs/precision.md: up to 5.4e-5
        if name == "general":
            np.testing.assert_array_equal(got["collapsed"], ref["collapsed"])
        else:
            np.testing.assert_allclose(got["wbar_star"], ref["wbar_star"], rtol=1e-5)
        # a float32 directory is never resumed (mixed) in float64
        with pytest.raises(ValueError, match="holds a float32 sweep and this run is float64"):
            jf.run_sweep(config, path)


def test_cli_train_float32_records_its_precision(f32):
    out = f32["dir"] / "train"
    assert json.loads((out / "inputs.json").read_text())["precision"] == "float32"
    r = jf.load_result(out / "train")
    assert r.t_star.dtype == np.float32 and r.W.dtype == np.float32
    assert np.isfinite(r.t_star).all()


@pytest.mark.parametrize(
    "command", ["train", "compare", "sweep", "simulate", "critical-time", "demo", "reproduce"]
)
def test_every_computing_command_has_precision(command, capsys):
    assert main([command, "--precision", "float16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--precision: invalid choice: 'float16'" in err, err


def test_reproduce_skips_only_outputs_of_the_same_precision(tmp_path):
    from jepa_flow._reproduce import _done

    def numbers(**extra):
        (tmp_path / "numbers.json").write_text(
            json.dumps({"level": "tiny", "figures": [], "claims": [], **extra})
        )
        return _done(tmp_path, "tiny")

    assert numbers() is not None  # written before the precision was recorded: float64
    assert numbers(precision="float64") is not None
    assert numbers(precision="float32") is None  # recomputed, not reused, in float64
