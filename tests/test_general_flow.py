"""The general per-feature flow (theory §6.1-§6.3, §7.2): general_critical_time and its sweeps."""

import importlib.util

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import jepa_flow as jf

LAM = np.array([1.0, 0.8, 0.3])
VAR = np.array([2.0, 1.0, 1.0])


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_balanced_start_reproduces_exact_times(objective):
    depth = np.array([[1], [2], [4], [7]])
    eps = np.array([[1e-3], [1e-3], [1e-2], [1e-4]])
    got = jf.general_critical_time(objective, LAM, VAR, depth, eps, init_ratio=1.0)
    exact = jf.critical_time(objective, LAM, VAR, depth, eps, method="exact")
    assert got.ok.all() and not got.collapsed.any()
    np.testing.assert_allclose(got.t_star, exact, rtol=1e-8)
    np.testing.assert_allclose(got.wbar_final, jf.fixed_point(objective, LAM, VAR, depth), 1e-12)


def test_frozen_teacher_is_mae_at_c_lam():
    c = np.array([[0.5], [2.0]])
    got = jf.general_critical_time("jepa", LAM, VAR, 2, 1e-3, target="frozen", teacher=c)
    lam_c = jf.frozen_teacher_lam(LAM, c)
    np.testing.assert_allclose(got.t_star, jf.critical_time("mae", lam_c, VAR, 2, 1e-3), 1e-8)
    # MAE has no target: target and c are ignored
    mae = jf.general_critical_time("mae", LAM, VAR, 2, 1e-3, target="frozen", teacher=c)
    np.testing.assert_allclose(mae.t_star, jf.critical_time("mae", LAM, VAR, 2, 1e-3), 1e-8)


def test_ema_delay_matches_first_order_at_small_tau():
    depth = np.array([[1], [2], [3]])
    tau = 0.01
    ema = jf.general_critical_time(
        "jepa", LAM[:2], VAR[:2], depth, 1e-3, target="ema", tau=tau, rtol=1e-11
    )
    sg = jf.critical_time("jepa", LAM[:2], VAR[:2], depth, 1e-3)
    delay = jf.ema_half_time_delay(LAM[:2], VAR[:2], depth, 1e-3, tau)
    assert ema.ok.all()
    np.testing.assert_allclose(ema.t_star - sg, delay, rtol=1e-3)  # theory §6.2: 0.1 %
    # tau = 0 is the stop-gradient flow itself
    zero = jf.general_critical_time(
        "jepa", LAM[:2], VAR[:2], 2, 1e-3, target="ema", tau=0.0, rtol=1e-11
    )
    np.testing.assert_allclose(zero.t_star, sg[1], rtol=1e-9)


def _full_flow_rhs(objective, lam, var, depth, target, tau, c):
    """theory §6.1 with every layer and target layer as its own variable (no reduction)."""

    def rhs(t, x):
        v, w = x[0], x[1 : 1 + depth]
        wbar = np.prod(w)
        if objective == "mae":
            wbar_t = 1.0
        elif target == "frozen":
            wbar_t = c
        elif target == "ema":
            wbar_t = np.prod(x[1 + depth :])
        else:
            wbar_t = wbar
        g = lam * wbar_t - var * v * wbar
        out = [wbar * g] + [wbar / w_a * v * g for w_a in w]
        if target == "ema" and objective == "jepa":
            out += list((w - x[1 + depth :]) / tau)
        return out

    return rhs


def _scipy_time(objective, lam, var, depth, eps, ratio, target="stopgrad", tau=0.0, c=1.0):
    """Reference: solve_ivp (Radau) of the unreduced flow, event at half the fixed point."""
    w0 = eps ** (1.0 / depth)
    x0 = [ratio * w0] + [w0] * depth + ([w0] * depth if target == "ema" else [])
    rhs = _full_flow_rhs(objective, lam, var, depth, target, tau, c)
    long = solve_ivp(rhs, (0, 1e7), x0, method="Radau", rtol=1e-11, atol=1e-14)
    wbar_final = np.prod(long.y[1 : 1 + depth, -1])

    def event(t, x):
        return np.prod(x[1 : 1 + depth]) - 0.5 * wbar_final

    event.terminal = True
    sol = solve_ivp(rhs, (0, 1e7), x0, method="Radau", rtol=1e-11, atol=1e-14, events=event)
    return sol.t_events[0][0], wbar_final


@pytest.mark.parametrize(
    "objective, depth, ratio, target, tau",
    [
        ("jepa", 1, 0.3, "stopgrad", 0.0),
        ("jepa", 2, 3.0, "stopgrad", 0.0),
        ("mae", 2, 0.3, "stopgrad", 0.0),
        ("mae", 1, 20.0, "stopgrad", 0.0),
        ("jepa", 1, 3.0, "ema", 5.0),
        ("jepa", 2, 1.0, "frozen", 0.0),
    ],
)
def test_unbalanced_times_match_scipy(objective, depth, ratio, target, tau):
    lam, var, eps, c = 1.0, 2.0, 1e-2, 0.7
    ref, wbar_ref = _scipy_time(objective, lam, var, depth, eps, ratio, target, tau, c)
    got = jf.general_critical_time(
        objective, lam, var, depth, eps, init_ratio=ratio, target=target, tau=tau, teacher=c
    )
    assert got.ok and not got.collapsed
    np.testing.assert_allclose(got.wbar_final, wbar_ref, rtol=1e-7)
    np.testing.assert_allclose(got.t_star, ref, rtol=1e-6)


def _unreduced_ema_time(depth, lam, var, eps, ratio, tau):
    """Reference: LSODA at rtol 1e-12 on (v, w_1..w_L, w_T,1..w_T,L) in t (no reduction), event
    at half of w*^L, w*^2 = rho^2 - (v0^2 - w0^2) (theory §6.1; checked against a long run in
    test_unbalanced_times_match_scipy)."""
    w0 = eps ** (1.0 / depth)
    level = 0.5 * ((lam / var) ** 2 - w0**2 * (ratio**2 - 1)) ** (depth / 2)
    rhs = _full_flow_rhs("jepa", lam, var, depth, "ema", tau, 1.0)

    def event(t, x):
        return np.prod(x[1 : 1 + depth]) - level

    event.terminal = True
    x0 = [ratio * w0] + [w0] * 2 * depth
    sol = solve_ivp(rhs, (0, 1e9), x0, method="LSODA", rtol=1e-12, atol=1e-18, events=event)
    return sol.t_events[0][0]


def test_ema_times_match_unreduced_flow_at_default_rtol():
    # the benchmark's EMA grid: tau in [0.1, 100], init_ratio in [0.1, 1000], depth 1-4
    rng = np.random.default_rng(3)
    depth = rng.integers(1, 5, 16)
    rho = rng.uniform(0.1, 0.9, 16)
    ratio = 10 ** rng.uniform(-1, 3, 16)
    tau = 10 ** rng.uniform(-1, 2, 16)
    got = jf.general_critical_time(
        "jepa", 1.0, 1.0 / rho, depth, 1e-3, init_ratio=ratio, target="ema", tau=tau
    )
    w0 = 1e-3 ** (1.0 / depth)
    np.testing.assert_array_equal(got.collapsed, jf.collapses(ratio * w0, w0, rho))
    rising = np.flatnonzero(~got.collapsed)
    assert got.ok.all() and len(rising) >= 6 and (got.t_star[rising] > 0).all()
    ref = [_unreduced_ema_time(depth[i], 1.0, 1 / rho[i], 1e-3, ratio[i], tau[i]) for i in rising]
    # the documented accuracy of the default rtol (1e-8): about 1e-8, below 1e-7
    np.testing.assert_allclose(got.t_star[rising], ref, rtol=1e-7)


def test_collapse_boundary_at_depth_one():
    # theory §7.2: v0 = 1, w0 = 0.3, rho = 0.5 collapses, v -> sqrt(0.91)
    v0, w0, lam, var = 1.0, 0.3, 1.0, 2.0
    got = jf.general_critical_time("jepa", lam, var, 1, w0, init_ratio=v0 / w0)
    assert got.collapsed and got.t_star == np.inf and got.wbar_final == 0.0
    assert jf.collapses(v0, w0, 0.5)
    rhs = _full_flow_rhs("jepa", lam, var, 1, "stopgrad", 0.0, 1.0)
    end = solve_ivp(rhs, (0, 1e6), [v0, w0], method="Radau", rtol=1e-10, atol=1e-14).y[:, -1]
    np.testing.assert_allclose(end[0], jf.collapsed_predictor(v0, w0), rtol=1e-6)
    assert end[1] < 1e-3
    # just inside the boundary the feature is learned, at w* = sqrt(rho^2 - Delta)
    v_in = np.sqrt(0.5**2 + w0**2) * (1 - 1e-3)
    inside = jf.general_critical_time("jepa", lam, var, 1, w0, init_ratio=v_in / w0)
    assert not inside.collapsed and inside.t_star == 0.0  # v0 > rho: w falls to w*
    np.testing.assert_allclose(inside.wbar_final, np.sqrt(0.25 - (v_in**2 - w0**2)), 1e-12)
    # the boundary over a grid of init_ratio, at every depth and under an EMA target
    ratio = np.logspace(-1, 3, 8)  # 16 members: the compiled shape the other EMA tests use
    depth = np.array([[1], [3]])
    w0 = 1e-3 ** (1 / depth)
    for target in ("stopgrad", "ema"):
        res = jf.general_critical_time(
            "jepa", lam, var, depth, 1e-3, init_ratio=ratio, target=target, tau=0.5
        )
        np.testing.assert_array_equal(res.collapsed, jf.collapses(ratio * w0, w0, 0.5))
        assert 0 < res.collapsed.sum() < res.collapsed.size
        assert np.isinf(res.t_star[res.collapsed]).all()
        assert np.isfinite(res.t_star[~res.collapsed]).all() and res.ok.all()
    # MAE never collapses
    assert not jf.general_critical_time("mae", lam, var, 1, 1e-3, init_ratio=ratio).collapsed.any()


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="target must be one of"):
        jf.general_critical_time("jepa", 1.0, 2.0, 1, 1e-3, target="teacher")
    with pytest.raises(ValueError, match="init_ratio must be > 0"):
        jf.general_critical_time("jepa", 1.0, 2.0, 1, 1e-3, init_ratio=0.0)
    with pytest.raises(ValueError, match="tau must be >= 0"):
        jf.general_critical_time("jepa", 1.0, 2.0, 1, 1e-3, target="ema", tau=-1.0)
    with pytest.raises(ValueError, match="depth must be an integer"):
        jf.general_critical_time("jepa", 1.0, 2.0, 0, 1e-3)


GENERAL = """
[sweep]
objective = ["jepa", "mae"]
flow = "general"
target = ["stopgrad", "ema", "frozen"]
tau = [0.1, 1.0, 10.0]
c = [0.5, 2.0]
init_ratio = {logspace = [-1, 3, 5]}
depth = [1, 2]
lam = 1.0
rho = [0.5, 0.8]
eps = 1e-3
"""


def test_general_sweep_runs_resumes_and_loads(tmp_path):
    config = jf.parse_sweep_config(GENERAL)
    # inapplicable combinations collapse: 20 rows per group, times 3 taus, times 2 teachers
    assert config.describe() == "140 configurations (jepa/stopgrad 20, jepa/ema 60, " + (
        "jepa/frozen 40, mae 20)"
    )
    first = jf.run_sweep(config, tmp_path / "g", chunk_size=16)
    assert (first.n_configs, first.computed, first.failed) == (140, 140, 0)
    assert jf.run_sweep(config, tmp_path / "g").skipped == first.n_chunks
    res = jf.load_sweep(tmp_path / "g")
    assert res.n_configs == 140 and res["ok"].all()
    for target in ("stopgrad", "ema", "frozen", "none"):
        rows = np.flatnonzero(res["target"] == target)[:16]  # 16: one compiled shape
        objective = "mae" if target == "none" else "jepa"
        assert (res["objective"][rows] == objective).all()
        kw = dict(target=target, tau=res["tau"][rows], teacher=res["c"][rows])
        if target == "none":
            kw = {}
        elif target == "stopgrad":
            kw = {}
        elif target == "ema":
            kw.pop("teacher")
        else:
            kw.pop("tau")
        ref = jf.general_critical_time(
            objective,
            res["lam"][rows],
            res["var"][rows],
            res["depth"][rows],
            res["eps"][rows],
            init_ratio=res["init_ratio"][rows],
            **kw,
        )
        np.testing.assert_allclose(res["t_star"][rows], ref.t_star, rtol=1e-12)
        np.testing.assert_array_equal(res["collapsed"][rows], ref.collapsed)
    balanced = (res["init_ratio"] == 1.0) & (res["target"] == "stopgrad")
    exact = jf.critical_time("jepa", 1.0, res["var"][balanced], res["depth"][balanced], 1e-3)
    np.testing.assert_allclose(res["t_star"][balanced], exact, rtol=1e-8)
    assert np.isnan(res["tau"][res["target"] != "ema"]).all()
    # by name: the EMA rows at tau = 1.0, and (with xarray) the same cells over the axes
    picked = res.sel(target="ema", tau=1.0)
    mask = (res["target"] == "ema") & (res["tau"] == 1.0)
    np.testing.assert_array_equal(picked["t_star"], res["t_star"][mask])
    if importlib.util.find_spec("xarray") is not None:
        ds = res.to_xarray()
        cells = ds["t_star"].sel(objective="jepa", target="ema", tau=1.0, c=np.nan)
        np.testing.assert_array_equal(cells.values.ravel(), picked["t_star"])
        assert ds["t_star"].sel(objective="mae", target="stopgrad").isnull().all()
        assert not ds["ok"].sel(objective="mae", target="stopgrad").any()  # absent: False
    # a changed configuration is refused
    with pytest.raises(ValueError, match="different sweep configuration"):
        jf.run_sweep(jf.parse_sweep_config(GENERAL.replace("[0.5, 2.0]", "[0.5]")), tmp_path / "g")


def test_general_pair_sweep_learning_order(tmp_path):
    config = jf.parse_sweep_config(
        '[sweep]\nobjective = "jepa"\nflow = "general"\ninit_ratio = [1.0, 30.0]\n'
        "depth = [1, 4]\neps = 1e-3\n[pair]\nlam_a = 1.0\nvar_a = 2.0\nlam_b = 0.8\nvar_b = 1.0\n"
    )
    jf.run_sweep(config, tmp_path / "p", chunk_size=3)
    res = jf.load_sweep(tmp_path / "p")
    # rows: (depth, init_ratio) = (1, 1), (1, 30), (4, 1), (4, 30)
    np.testing.assert_array_equal(res["first"], [0, 0, 1, 2])  # depth 4, ratio 30: both collapse
    np.testing.assert_array_equal(res["collapsed_a"], [False, False, False, True])
    ref = jf.critical_time("jepa", [1.0, 0.8], [2.0, 1.0], np.array([[1], [4]]), 1e-3)
    np.testing.assert_allclose(res["t_star_a"][[0, 2]], ref[:, 0], rtol=1e-8)
    np.testing.assert_allclose(res["t_star_b"][[0, 2]], ref[:, 1], rtol=1e-8)
    # a looser tolerance is part of the sweep's identity and reaches the kernels
    text = config.text.replace("eps = 1e-3\n", "eps = 1e-3\nrtol = 1e-4\n")
    loose = jf.parse_sweep_config(text)
    assert loose.rtol == 1e-4 and loose.fingerprint() != config.fingerprint()
    jf.run_sweep(loose, tmp_path / "loose", chunk_size=3)
    coarse = jf.load_sweep(tmp_path / "loose")
    err = np.abs(coarse["t_star_a"][[0, 2]] / ref[:, 0] - 1)
    assert 1e-9 < err.max() < 1e-3  # looser than the default's 1e-8, within the tolerance


@pytest.mark.parametrize(
    "extra, message",
    [
        ('flow = "full"', "sweep.flow must be one of"),
        ('target = "teacher"', "sweep.target: target must be one of"),
        ('target = "ema"', "sweep.tau is required when sweep.target includes 'ema'"),
        ("tau = 1.0", "sweep.tau applies only to a JEPA target 'ema'"),
        ("init_ratio = [1.0, -2.0]", "init_ratio must be > 0"),
        ('target = "ema"\ntau = -1.0', "sweep.tau must be >= 0"),
        ('method = "ode"', "unknown key sweep.method for flow = 'general'"),
        ("rtol = 0.5", r"sweep.rtol must lie in \[3.55e-15, 0.1\]"),
    ],
)
def test_general_sweep_config_errors(extra, message):
    base = '[sweep]\nobjective = "jepa"\ndepth = 1\nlam = 1.0\nrho = 0.5\neps = 1e-3\n'
    flow = "" if extra.startswith("flow") else 'flow = "general"\n'
    with pytest.raises(ValueError, match=message):
        jf.parse_sweep_config(base + flow + extra)
