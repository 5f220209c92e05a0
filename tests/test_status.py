"""One ``Status`` enumeration for every solve: critical times, full flow, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow._core._status import crossing_status, failure_message, status_ok
from jepa_flow._theory import _critical_time as ct

S = jf.Status


def test_codes_order_outcomes_before_failures():
    assert [s.ok for s in S] == [True] * 4 + [False] * 4
    assert all(s.message and "{dtype}" not in s.message for s in S)
    assert "float32" in S.OUT_OF_RANGE.describe("float32")
    np.testing.assert_array_equal(status_ok(np.arange(8)), [s.ok for s in S])
    assert failure_message(np.array([0, 1, 2, 3]), "x", "float64") is None
    msg = failure_message(np.array([4, 6, 6, 0, 7]), "simulate", "float64")
    assert msg.startswith("simulate: 4 of 5 members returned as NaN: 1 not reached")
    assert "2 not computable" in msg and "1 diverged" in msg


def test_crossing_status_numpy_and_jax_agree():
    t = np.array([2.0, 0.0, np.inf, np.inf, 0.0])
    level = np.array([1.0, 1.0, 1.0, np.inf, np.inf])
    want = [S.SUCCESSFUL, S.STARTS_ABOVE_LEVEL, S.NOT_REACHED, S.NEVER_LEARNED, S.NEVER_LEARNED]
    np.testing.assert_array_equal(crossing_status(t, level), want)
    np.testing.assert_array_equal(crossing_status(jnp.asarray(t), jnp.asarray(level), jnp), want)


def test_critical_time_kernel_status():
    # learned, starts above its level (eps = 0.9 > rho / 2), never learned (lam < 0)
    args = [jnp.asarray(x) for x in ([1.0, 1.0, -1.0], [2.0, 1.0, 1.0], [1, 2, 2])]
    args += [jnp.asarray([1e-3, 0.9, 1e-3]), jnp.full(3, 0.5)]
    for method in ("exact", "ode"):
        t, status = jax.jit(lambda *a, m=method: ct.critical_time_status("jepa", m, *a))(*args)
        assert list(np.asarray(status)) == [S.SUCCESSFUL, S.STARTS_ABOVE_LEVEL, S.NEVER_LEARNED]
        want = [float(jf.critical_time("jepa", 1.0, 2.0, 1, 1e-3)), 0.0, np.inf]
        np.testing.assert_allclose(np.asarray(t), want, rtol=1e-12)
        _, ok = ct.critical_time_kernel("jepa", method, *args)
        assert np.asarray(ok).all()


def test_full_flow_status_per_feature():
    data = jf.gaussian(Sxx=[2.0, 1.0, 1.0], Syx=[1.0, 0.8, 0.5])
    W0, V0 = 1e-3 * np.eye(3)[None], 1e-3 * np.eye(3)
    half = 0.5 * np.asarray(jf.fixed_point("jepa", [1.0, 0.8, 0.5], [2.0, 1.0, 1.0], 1))
    # feature 0 crosses (t* = 1008.43), feature 1 not before t = 1100, feature 2's
    # level is below the start, and a level of inf marks a never-learned feature
    level = np.array([half[0], half[1], 1e-4])
    ff = jf.full_flow("jepa", data, W0, V0, 1, t=[1100.0], level=level)
    assert [S(s) for s in np.asarray(ff.status)] == [
        S.SUCCESSFUL,
        S.NOT_REACHED,
        S.STARTS_ABOVE_LEVEL,
    ]
    assert bool(ff.ok)
    ff = jf.full_flow("jepa", data, W0, V0, 1, t=[1100.0], level=[half[0], np.inf, np.inf])
    assert list(np.asarray(ff.status)) == [S.SUCCESSFUL, S.NEVER_LEARNED, S.NEVER_LEARNED]


def test_full_flow_status_reports_the_step_budget(monkeypatch):
    from jepa_flow._theory import _fullflow

    monkeypatch.setattr(_fullflow, "MAX_STEPS", 3)  # the solve's step budget (static)
    data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
    ff = jf.full_flow("mae", data, 1e-3 * np.eye(2)[None], 1e-3 * np.eye(2), 1, [50.0], [0.3, 0.3])
    assert list(np.asarray(ff.status)) == [S.MAX_STEPS_REACHED] * 2 and not bool(ff.ok)


def test_training_status():
    # levels 0.315 and 0.483 (MAE, depth 2): eps = 0.4 starts above the first
    data = jf.gaussian(Sxx=[1.0, 2.0], Syx=[0.5, 1.9])
    cfg = jf.TrainConfig(objective="mae", depth=2, eta=[0.1, 5.0], eps=0.4, steps=300)
    r = jf.train(data, cfg, on_divergence="keep")
    np.testing.assert_array_equal(
        r.status, [[[[S.STARTS_ABOVE_LEVEL, S.SUCCESSFUL], [S.DIVERGED, S.DIVERGED]]]]
    )
    np.testing.assert_array_equal(r.ok, ~jf.diverged_members(r)[..., None].repeat(2, -1))
    short = jf.train(data, jf.TrainConfig(objective="mae", eta=0.01, steps=3))
    assert (short.status == S.NOT_REACHED).all()


@pytest.mark.parametrize("name", ["BudgetError", "DirectoryLocked", "DivergenceError"])
def test_errors_are_exported_value_errors(name):
    assert issubclass(getattr(jf, name), ValueError) and name in jf.__all__


def test_general_flow_status():
    # feature A (lam 1, var 2) at depth 1: balanced, starting above half its level
    # (eps = 0.4 > 0.25), collapsing (init_ratio 600), never learned (lam < 0)
    res = jf.general_critical_time(
        "jepa", [1.0, 1.0, 1.0, -1.0], 2.0, 1, [1e-3, 0.4, 1e-3, 1e-3],
        init_ratio=[1.0, 1.0, 600.0, 1.0],
    )  # fmt: skip
    assert list(np.asarray(res.status)) == [
        S.SUCCESSFUL,
        S.STARTS_ABOVE_LEVEL,
        S.NEVER_LEARNED,
        S.NEVER_LEARNED,
    ]


def test_general_flow_status_reports_the_step_budget(monkeypatch):
    from jepa_flow._theory import _general

    monkeypatch.setattr(_general, "MAX_STEPS", 3)
    # a tolerance of its own: a program (and compilation) that no other test shares
    with pytest.warns(RuntimeWarning, match="solve failed"):
        res = jf.general_critical_time("mae", 1.0, 2.0, 3, 1e-3, init_ratio=0.1, rtol=3.3e-9)
    assert int(res.status) == S.MAX_STEPS_REACHED and np.isnan(res.t_star)
