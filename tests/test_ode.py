"""The diffrax integration against the exact references, over the documented range."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow._core._batch import compiled_count
from jepa_flow._theory import _critical_time as ct
from jepa_flow._theory import _ode


def _random_configs(objective, n, seed):
    """depth 1..16, rho in [0.01, 10], lam in [1e-3, 1e3], eps in [1e-6, wbar*) (log-uniform)."""
    rng = np.random.default_rng(seed)
    depth = rng.integers(1, 17, n).astype(float)
    rho = 10 ** rng.uniform(-2, 1, n)
    lam = 10 ** rng.uniform(-3, 3, n)
    wbar_star = np.asarray(jf.fixed_point(objective, lam, lam / rho, depth))
    lo, hi = np.log(1e-6), np.log(np.maximum(wbar_star, 2e-6))
    eps = np.exp(lo + rng.uniform(0, 1, n) * (hi - lo))
    return lam, lam / rho, depth, eps


# Corners of the range: deepest, slowest (t* ~ 1e15), fastest, least and most influential.
CORNERS = np.array(
    [  # lam, var, depth, eps
        [1e-3, 1e-4, 16, 1e-6],
        [1e-3, 1e-3 / 1.5, 16, 1e-6],
        [1e3, 1e2, 16, 1e-6],
        [1e-3, 1e-1, 1, 1e-6],
        [1e3, 1e5, 1, 1e-6],
        [1.0, 0.1, 16, 1e15],
        [1.0, 1.0 / 1.2, 12, 1e-6],
    ]
)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_ode_critical_time_matches_exact(objective):
    lam, var, depth, eps = _random_configs(objective, 200, seed=1)
    lam, var, depth, eps = (
        np.concatenate([a, CORNERS[:, k]]) for k, a in enumerate((lam, var, depth, eps))
    )
    fraction = np.where(np.arange(lam.size) % 3 == 0, 0.9, 0.5)
    exact = np.asarray(jf.critical_time(objective, lam, var, depth, eps, fraction=fraction))
    ode = np.asarray(
        jf.critical_time(objective, lam, var, depth, eps, fraction=fraction, method="ode")
    )
    assert np.isfinite(ode).all()
    assert exact.max() > (1e12 if objective == "jepa" else 1e7)  # the slow corner is in
    rel = np.abs(ode - exact) / np.where(exact > 0, exact, 1.0)
    assert rel.max() < 1e-6, (rel.max(), np.argmax(rel))
    np.testing.assert_array_equal(ode == 0, exact == 0)


def test_simulate_lies_on_the_exact_trajectory():
    """Each simulated point (t, wbar) is reached at time t by the exact inverse t(wbar)."""
    depth = np.array([1.0, 2.0, 5.0, 16.0])[:, None]
    lam = np.array([1.0, 0.8, 300.0])
    var = np.array([2.0, 1.0, 30.0])
    eps = 1e-6
    for objective in ("jepa", "mae"):
        ws = np.asarray(jf.fixed_point(objective, lam, var, depth))
        fractions = np.array([0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
        t_marks = np.asarray(
            jf.critical_time(objective, lam, var, depth, eps, fraction=fractions[:, None, None])
        )
        t = np.unique(np.concatenate([[0.0], t_marks.ravel(), [10 * t_marks.max()]]))
        traj = jf.simulate(objective, lam, var, depth, eps, t)
        assert traj.wbar.shape == (t.size, 4, 3) and bool(np.all(traj.ok))
        wbar = np.asarray(traj.wbar)
        np.testing.assert_allclose(wbar[0], np.broadcast_to(eps, ws.shape), rtol=1e-12)
        np.testing.assert_allclose(wbar[-1], ws, rtol=1e-9)  # converged
        np.testing.assert_allclose(np.asarray(traj.u) ** depth, wbar, rtol=1e-12)
        frac = wbar / ws
        inner = (wbar > eps * (1 + 1e-6)) & (frac < 1 - 1e-7)
        t_of_w = np.asarray(
            jf.critical_time(
                objective,
                *np.broadcast_arrays(lam, var, depth, eps),
                fraction=np.where(inner, frac, 0.5),
            )
        )
        tt = np.broadcast_to(t[:, None, None], wbar.shape)
        rel = np.abs(t_of_w - tt)[inner] / tt[inner]
        assert inner.sum() > 60 and rel.max() < 1e-6, rel.max()
        # where the curve is not too steep the error in wbar itself is small too
        t_half = t_marks[3].ravel()
        order = np.argsort(t_half)
        half = np.asarray(jf.simulate(objective, lam, var, depth, eps, t_half[order]).wbar)
        got = np.empty(12)
        got[order] = half.reshape(12, 12)[np.arange(12), order]
        got /= ws.ravel()
        # steepness d log(wbar) / d log(t) at the half point: a time error delta
        # becomes a relative error kappa * delta in wbar
        L = np.broadcast_to(depth, ws.shape)
        u = (0.5 * ws) ** (1 / L)
        rate = (
            var * u ** (2 * L - 1) * (lam / var - u)
            if objective == "jepa"
            else (var * u ** (L - 1) * (lam / var - u ** (L + 1)))
        )
        kappa = (t_marks[3] * L * rate).ravel()
        assert np.all(np.abs(got / 0.5 - 1) <= 1e-8 * np.maximum(kappa, 1.0))


def test_simulate_decay_matches_closed_form():
    # lam = 0: du/dt = -var u^(2L+1) (JEPA), so u(t) = (u0^-2L + 2L var t)^(-1/2L)
    t = np.array([0.0, 1.0, 10.0, 1e3, 1e6])
    depth = np.array([1.0, 3.0])
    traj = jf.simulate("jepa", 0.0, 0.7, depth, 1e-2, t)
    u0 = 1e-2 ** (1 / depth)
    ref = (u0 ** (-2 * depth) + 2 * depth * 0.7 * t[:, None]) ** (-1 / (2 * depth))
    np.testing.assert_allclose(np.asarray(traj.u), ref, rtol=1e-9)
    assert np.all(np.asarray(traj.wbar_star) == 0)


def test_new_values_do_not_recompile():
    jf.critical_time("jepa", [1.0, 2.0], 1.0, [2, 3], 1e-3, method="ode")
    before = compiled_count()
    jf.critical_time("jepa", [0.5, 0.9, 3.0], 1.3, [4, 1, 7], 1e-4, fraction=0.7, method="ode")
    assert compiled_count() == before
    t = np.array([0.0, 1.0, 2.0])
    jf.simulate("mae", 1.0, 2.0, 3, 1e-3, t)
    before = compiled_count()
    jf.simulate("mae", [0.3, 2.0], 1.0, 2, 1e-2, t * 5)
    assert compiled_count() == before


def test_broadcasting_rules():
    lam = np.array([0.5, 1.0, 2.0])[:, None]  # (3, 1)
    depth = np.array([1, 2, 3, 4])  # (4,)
    t = np.asarray(jf.critical_time("mae", lam, 1.5, depth, 1e-3))
    assert t.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert t[i, j] == pytest.approx(
                float(jf.critical_time("mae", lam[i, 0], 1.5, depth[j], 1e-3)), rel=1e-14
            )
    assert np.asarray(jf.critical_time("jepa", 1.0, 2.0, 3, 1e-3)).shape == ()
    assert np.asarray(jf.fixed_point("jepa", lam, [1.0, 2.0], 1)).shape == (3, 2)
    traj = jf.simulate("jepa", lam, 1.0, depth, 1e-3, [0.0, 1.0])
    assert traj.wbar.shape == (2, 3, 4) and traj.wbar_star.shape == (3, 4)


BAD = [
    (dict(var=0.0), "var must be > 0"),
    (dict(var=-2.0), "var must be > 0"),
    (dict(depth=1.5), "depth must be an integer"),
    (dict(depth=0), "depth must be an integer in [1, 1024]"),
    (dict(eps=0.0), "eps must be > 0"),
    (dict(eps=-1e-3), "eps must be > 0"),
    (dict(fraction=0.0), "fraction must lie in the open interval (0, 1)"),
    (dict(fraction=1.0), "fraction must lie in the open interval (0, 1)"),
    (dict(lam=np.nan), "lam must be finite"),
    (dict(var=np.inf), "var must be finite"),
    (dict(eps=[1e-3, np.nan]), "eps must be finite"),
    (dict(lam=[1.0, 2.0], var=[1.0, 2.0, 3.0]), "do not broadcast"),
    (dict(objective="byol"), "objective must be one of"),
    (dict(method="euler"), "method must be one of"),
    (dict(lam="abc"), "lam must be a real number"),
    (dict(rtol=0.0), "rtol must lie in [3.55e-15, 0.1] in float64"),
    (dict(rtol=1e-20), "rtol must lie in [3.55e-15, 0.1] in float64"),
    (dict(rtol=0.5), "rtol must lie in [3.55e-15, 0.1] in float64"),
    (dict(rtol="tight"), "rtol must be a real number"),
]


@pytest.mark.parametrize(("override", "message"), BAD)
def test_bad_input_raises_one_line_error(override, message):
    """Values are checked inside the compiled function (one flag read back); names,
    types, shapes and ``rtol`` on the host, before anything is compiled."""
    kwargs = dict(objective="jepa", lam=1.0, var=2.0, depth=2, eps=1e-3, fraction=0.5, method="ode")
    kwargs.update(override)
    on_host = "rtol" in message or "must be one of" in message or "real number" in message
    on_host |= "broadcast" in message
    before = compiled_count()
    with pytest.raises(
        ValueError,
        match=message.replace("(", r"\(")
        .replace(")", r"\)")
        .replace("[", r"\[")
        .replace("]", r"\]"),
    ):
        jf.critical_time(**kwargs)
    if on_host:
        assert compiled_count() == before


def test_bad_save_times():
    for t, msg in [
        ([1.0, 0.5], "non-decreasing"),
        ([-1.0, 1.0], "t must be >= 0"),
        ([], "non-empty 1-D"),
        ([[0.0, 1.0]], "non-empty 1-D"),
    ]:
        with pytest.raises(ValueError, match=msg):
            jf.simulate("jepa", 1.0, 1.0, 1, 1e-3, t)


@pytest.mark.parametrize("rtol", [1e-3, 1e-6, 1e-10])
def test_ode_error_follows_rtol(rtol):
    """The error stays below the requested tolerance, deep networks included."""
    for objective in ("jepa", "mae"):
        lam, var, depth, eps = _random_configs(objective, 200, seed=5)
        depth = np.where(np.arange(200) % 4 == 0, depth * 8, depth)  # depths up to 128
        exact = np.asarray(jf.critical_time(objective, lam, var, depth, eps, fraction=0.9))
        ode = np.asarray(
            jf.critical_time(objective, lam, var, depth, eps, fraction=0.9, method="ode", rtol=rtol)
        )
        pos = (exact > 0) & np.isfinite(exact)
        assert pos.sum() > 100
        rel = np.abs(ode[pos] / exact[pos] - 1)
        assert rel.max() < rtol, (objective, rel.max())
    # the tolerance reaches the integrator: a loose one is measurably less accurate
    loose = jf.critical_time(
        "jepa", [0.5, 2.0], [0.5 / 3, 2.0 / 3], 32, 1e-4, method="ode", rtol=rtol
    )
    exact = jf.critical_time("jepa", [0.5, 2.0], [0.5 / 3, 2.0 / 3], 32, 1e-4)
    err = np.abs(np.asarray(loose) / np.asarray(exact) - 1).max()
    assert err < rtol
    if rtol >= 1e-3:  # 16 nodes instead of 64: visible at depth 32
        assert err > 1e-9


# Normal members, then members that used to abort the batch or come back as a silent NaN.
NORMAL = [(1.0, 2.0, 3, 1e-3), (0.8, 1.0, 3, 1e-3), (5.0, 50.0, 8, 1e-5), (1e-2, 1e-3, 1, 1e-2)]
HARD = [  # computable: rho = 1e4, lam = 1e300, eps = 1e-300 at depth 1
    (1e4, 1.0, 2, 1e-3),
    (1e300, 1.0, 1, 1e-3),
    (1.0, 1.0, 1, 1e-300),
]
OUT = [  # outside the float64 range: rho underflows or overflows, or the time does
    (1e-300, 1e300, 1, 1e-3),
    (1e300, 1e-300, 2, 1e-3),
    (1.0, 1.0, 8, 1e-300),
]


@pytest.mark.parametrize("method", ["exact", "ode"])
def test_bad_members_are_flagged_and_the_rest_is_unchanged(method):
    for objective in ("jepa", "mae"):
        rows = np.array(NORMAL + HARD + OUT + [(-1.0, 1.0, 2, 1e-3)])
        lam, var, depth, eps = rows.T
        with pytest.warns(RuntimeWarning, match=r"returned as NaN") as rec:
            mixed = np.asarray(jf.critical_time(objective, lam, var, depth, eps, method=method))
        alone = np.asarray(jf.critical_time(objective, *np.array(NORMAL).T, method=method))
        n, h = len(NORMAL), len(HARD)
        np.testing.assert_allclose(mixed[:n], alone, rtol=1e-13)
        assert mixed[-1] == np.inf  # never learned: not an error
        # the computable hard members agree with the closed forms
        exact = np.asarray(jf.critical_time(objective, *np.array(NORMAL + HARD).T))
        np.testing.assert_allclose(mixed[: n + h], exact, rtol=1e-9)
        # MAE at depth 8 from eps = 1e-300 is 4.5e261: finite, so only two are out of range
        n_out = 3 if objective == "jepa" else 2
        assert np.isnan(mixed[n + h : -1]).sum() == n_out
        assert f"{n_out} of 11 members returned as NaN: {n_out} outside the float64" in str(
            rec[0].message
        )
        # the kernel (what sweeps call) reports the same as ok=False, never NaN with
        # ok=True; a subnormal var (flushed to 0 by XLA) is one more such member
        rows = np.concatenate([rows, [(1.0, 1e-320, 1, 1e-3)]])
        flat = [jnp.asarray(x) for x in (*rows.T, np.full(len(rows), 0.5))]
        t, ok = jax.jit(lambda *a: ct.critical_time_kernel(objective, method, *a))(*flat)
        t, ok = np.asarray(t), np.asarray(ok)
        np.testing.assert_array_equal(ok, ~np.isnan(t))
        np.testing.assert_array_equal(np.isnan(t[:-1]), np.isnan(mixed))
        assert np.isnan(t[-1]) and not ok[-1]
        np.testing.assert_allclose(t[:n], alone, rtol=1e-13)


def test_step_budget_is_reported_not_returned(monkeypatch):
    """A solve that runs out of steps is 'not reached in the budget', distinct from range."""
    monkeypatch.setattr(_ode, "MAX_STEPS", 4)
    diffrax_ct = functools.partial(_ode.ode_critical_time, integrator="diffrax")
    monkeypatch.setattr(ct, "ode_critical_time", diffrax_ct)
    args = [jnp.asarray(x) for x in ([1.0, 1.0, -1.0], [2.0, 1e-320, 1.0], [4, 4, 4])]
    args += [jnp.full(3, 1e-6), jnp.full(3, 0.5)]
    t, status = jax.jit(lambda *a: ct.critical_time_status("jepa", "ode", *a))(*args)
    assert list(np.asarray(status)) == [ct.BUDGET_EXHAUSTED, ct.OUT_OF_RANGE, ct.NEVER]
    assert np.isnan(np.asarray(t[:2])).all() and np.asarray(t[2]) == np.inf
    # the same in simulate's dense solve: the member is NaN with ok False, not a flat curve
    monkeypatch.setattr(_ode, "MAX_STEPS_DENSE", 4)
    log_u, code, _ = jax.jit(
        lambda *a: _ode.ode_trajectory("mae", *a, jnp.asarray([0.0, 1e12]), 1e-12)
    )(*(jnp.asarray([x]) for x in (1.0, 2.0, 3.0, 1e-6)))
    assert int(code[0]) == _ode.BUDGET


def test_sweep_rtol_is_validated_and_fingerprinted(tmp_path):
    base = """
[sweep]
objective = "jepa"
depth = [8, 32]
lam = [0.5, 2.0]
rho = [0.9, 3.0]
eps = 1e-4
method = "ode"
"""
    plain = jf.parse_sweep_config(base)
    loose = jf.parse_sweep_config(base + "rtol = 1e-3\n")
    tight = jf.parse_sweep_config(base + "rtol = 1e-10\n")
    assert plain.rtol is None and loose.rtol == 1e-3
    assert len({plain.fingerprint(), loose.fingerprint(), tight.fingerprint()}) == 3
    for bad, msg in [("0.5", r"sweep.rtol must lie in"), ("[1e-6]", r"sweep.rtol must be one")]:
        with pytest.raises(ValueError, match=msg):
            jf.parse_sweep_config(base + f"rtol = {bad}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no member fails
        jf.run_sweep(loose, tmp_path / "s", chunk_size=8)
    t = jf.load_sweep(tmp_path / "s")["t_star"]
    rows = loose.rows(0, loose.group_size)
    exact = np.asarray(
        jf.critical_time("jepa", rows["lam"], rows["var"], rows["depth"], rows["eps"])
    )
    rel = np.abs(t / exact - 1)
    assert 1e-8 < rel.max() < 1e-3  # the loose tolerance was used
    with pytest.raises(ValueError, match="different sweep configuration"):
        jf.run_sweep(tight, tmp_path / "s")  # resuming with another rtol is refused


def test_cli_rtol_reaches_the_library_and_is_checked(capsys):
    import json

    from jepa_flow._cli import main

    argv = ["critical-time", "--lam", "0.5", "--rho", "3", "--depth", "32", "--eps", "1e-4"]
    argv += ["--objective", "jepa", "--method", "ode", "--json"]
    assert main(argv + ["--rtol", "1e-3"]) == 0
    loose = json.loads(capsys.readouterr().out)["objectives"]["jepa"]["t_star"]["A"][0]
    exact = float(jf.critical_time("jepa", 0.5, 0.5 / 3, 32, 1e-4))
    assert 1e-9 < abs(loose / exact - 1) < 1e-3  # 16 nodes, not the default 64
    assert main(argv + ["--rtol", "1e-20"]) == 2
    err = capsys.readouterr().err
    assert err.strip().startswith("jepa-flow: error: rtol must lie in [3.55e-15, 0.1]")
