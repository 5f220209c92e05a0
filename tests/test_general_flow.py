"""The general per-feature flow (theory §6.1-§6.3, §7.2): general_critical_time and its sweeps."""

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
    got = jf.general_critical_time("jepa", LAM, VAR, 2, 1e-3, target="frozen", c=c)
    lam_c = jf.frozen_teacher_lam(LAM, c)
    np.testing.assert_allclose(got.t_star, jf.critical_time("mae", lam_c, VAR, 2, 1e-3), 1e-8)
    # MAE has no target: target and c are ignored
    mae = jf.general_critical_time("mae", LAM, VAR, 2, 1e-3, target="frozen", c=c)
    np.testing.assert_allclose(mae.t_star, jf.critical_time("mae", LAM, VAR, 2, 1e-3), 1e-8)


def test_ema_delay_matches_first_order_at_small_tau():
    depth = np.array([[1], [2], [3]])
    tau = 0.01
    ema = jf.general_critical_time("jepa", LAM[:2], VAR[:2], depth, 1e-3, target="ema", tau=tau)
    sg = jf.critical_time("jepa", LAM[:2], VAR[:2], depth, 1e-3)
    delay = jf.ema_half_time_delay(LAM[:2], VAR[:2], depth, 1e-3, tau)
    assert ema.ok.all()
    np.testing.assert_allclose(ema.t_star - sg, delay, rtol=1e-3)  # theory §6.2: 0.1 %
    # tau = 0 is the stop-gradient flow itself
    zero = jf.general_critical_time("jepa", LAM[:2], VAR[:2], 2, 1e-3, target="ema", tau=0.0)
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
        objective, lam, var, depth, eps, init_ratio=ratio, target=target, tau=tau, c=c
    )
    assert got.ok and not got.collapsed
    np.testing.assert_allclose(got.wbar_final, wbar_ref, rtol=1e-7)
    np.testing.assert_allclose(got.t_star, ref, rtol=1e-6)


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
    ratio = np.logspace(-1, 3, 41)
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
