"""Training engine against the gradient-flow theory (theory §3, §6, §7).

Small cases (d <= 3, <= 40k steps of 2x2 matrices) so the whole file runs in
well under a minute on two cores; runs that several tests read are computed
once per module.
"""

import dataclasses

import numpy as np
import pytest
from _helpers import compilations

import jepa_flow as jf
from jepa_flow._training import _train as _train_module
from jepa_flow._training._train import record_steps


def _train(objective, data, start=None, teacher=None, **fields):
    """``jf.train`` with the configuration's fields as keywords."""
    if start is not None:
        fields["init"] = "given"
    return jf.train(
        data, jf.TrainConfig(objective=objective, **fields), start=start, teacher=teacher
    )


# Features learned in order of decreasing rho: no capture is predicted.
LAM = np.array([1.0, 0.6, 0.3])
VAR = np.array([1.1, 1.0, 0.8])
EPS = 0.05
ETA = 0.01  # GD time bias ~ eta * rate / 2: below 0.2 % here


def _run(U):
    data = jf.gaussian(Sxx=VAR, Syx=LAM, U=U, seed=7)
    return _train("jepa", data, depth=[1, 2], eta=ETA, eps=EPS, t_max=400.0)


@pytest.fixture(scope="module")
def diag_run():
    return _run(None)


@pytest.fixture(scope="module")
def rotated_run():
    return _run("random")


def test_gd_matches_per_feature_theory(diag_run):
    t_th = np.asarray(jf.critical_time("jepa", LAM, VAR, np.array([[1], [2]]), EPS))
    t_tr = diag_run.t_star[0, :, 0]
    assert np.all(np.abs(t_tr / t_th - 1) < 1e-2), (t_tr, t_th)
    # GD lags the flow by O(eta): the bias is positive and small
    assert np.all(t_tr > t_th) and np.all(t_tr / t_th - 1 < 3e-3)
    assert np.array_equal(np.argsort(t_tr, axis=1), np.argsort(t_th, axis=1))
    # learned encoder: wbar* = rho^L; singular values too
    rho = LAM / VAR
    final = diag_run.norm[0, :, 0, -1]
    np.testing.assert_allclose(final[0], rho, rtol=1e-8)
    np.testing.assert_allclose(final[1], rho**2, rtol=5e-2)  # depth 2 converges slowly
    np.testing.assert_allclose(
        np.sort(diag_run.sv[0, :, 0, -1], axis=1), np.sort(final, axis=1), rtol=1e-10
    )
    assert np.all(diag_run.offdiag == 0.0)  # stays exactly diagonal


def test_trajectory_matches_simulate(diag_run):
    t = diag_run.t[0, 1, 0]
    th = np.asarray(jf.simulate("jepa", LAM, VAR, 2, EPS, t).wbar)
    dev = np.abs(diag_run.norm[0, 1, 0] - th).max()
    assert dev < 5e-3 * (LAM / VAR).max() ** 2, dev


def test_rotation_invariance_without_capture(diag_run, rotated_run):
    for L in (1, 2):
        t_th = np.asarray(jf.critical_time("jepa", LAM, VAR, L, EPS))
        assert jf.capture_gain(LAM, VAR, L, t_th).max() == 0.0  # no capture predicted
    np.testing.assert_allclose(rotated_run.t_star, diag_run.t_star, rtol=1e-6)
    np.testing.assert_allclose(rotated_run.norm, diag_run.norm, rtol=1e-6, atol=1e-12)
    # in the rotated basis the diagonal entries still carry everything
    np.testing.assert_allclose(rotated_run.diag, diag_run.diag, rtol=1e-6, atol=1e-12)


def test_gd_matches_full_matrix_flow(rotated_run):
    r = rotated_run
    ff = jf.full_flow("jepa", r.data, r.W0[0, 1, 0], r.V0[0, 1, 0], 2, r.t[0, 1, 0], r.level[1])
    assert bool(ff.ok)
    np.testing.assert_allclose(r.t_star[0, 1, 0], np.asarray(ff.t_star), rtol=3e-3)


# Canonical pair (theory §4): A = (lam 1, var 2, rho 0.5) is learned before
# B = (lam 0.8, var 1, rho 0.8) at depth 1, so a converged channel A captures B.
PAIR_LAM = np.array([1.0, 0.8])
PAIR_VAR = np.array([2.0, 1.0])


@pytest.fixture(scope="module")
def capture_report():
    data = jf.gaussian(Sxx=PAIR_VAR, Syx=PAIR_LAM, U="random", seed=3)
    cfg = jf.TrainConfig(objective="jepa", depth=1, eta=0.05, eps=1e-3, scale=1e-8, t_max=1600.0)
    cfg = dataclasses.replace(cfg, n_t=200, t_extra=jf.record_times(data, cfg), keep_latent=True)
    return jf.compare(jf.train(data, cfg))


def test_capture_against_full_flow(capture_report):
    c = capture_report
    t_th, t_full, t_tr = (x[0, 0, 0] for x in (c.t_star_theory, c.t_star_full, c.t_star_training))
    # per-feature theory (docs/theory.md §4 table): 1008.43, 1257.32
    np.testing.assert_allclose(t_th, [1008.43, 1257.32], rtol=1e-5)
    pred = c.captures_predicted[0][0][0]
    assert pred and pred[0].feature == 1 and pred[0].channel == 0
    # B is captured: learned ~14 % earlier than its own ODE says ...
    assert t_tr[1] < 0.9 * t_th[1]
    # ... and training follows the full-matrix flow from the same state within 1 %
    np.testing.assert_allclose(t_tr, t_full, rtol=1e-2)
    assert c.use_full[0, 0, 0].tolist() == [False, True]
    assert np.all(c.rel_error < 1e-2) and c.followed.all()
    seen = {(x.channel, x.feature) for x in c.captures}
    assert (0, 1) in seen
    assert {(x.channel, x.feature) for x in c.captures_full} == seen
    # the encoder still ends at the singular values rho
    np.testing.assert_allclose(np.sort(c.result.sv[0, 0, 0, -1]), [0.5, 0.8], rtol=5e-3)


def test_capture_growth_rate():
    """Off-diagonal entry of a converged channel grows at gamma = var_j rho_i (rho_j - rho_i)."""
    data = jf.gaussian(Sxx=PAIR_VAR, Syx=PAIR_LAM)
    delta = 1e-9
    W = np.array([[[0.5, delta], [0.0, 1e-3]]])
    V = np.array([[0.5, delta], [0.0, 1e-3]])
    eta = 0.05
    r = _train("jepa", data, depth=1, eta=eta, steps=2000, start=jf.Params(W=W, V=V))
    t, m01 = r.t[0, 0, 0], np.abs(r.latent[0, 0, 0, :, 0, 1])
    i0, i1 = np.searchsorted(t, 40.0), np.searchsorted(t, 100.0)
    rate = np.log(m01[i1] / m01[i0]) / (t[i1] - t[i0])
    gamma = PAIR_VAR[1] * 0.5 * (0.8 - 0.5)  # 0.15 (theory §7, exact at L = 1)
    assert abs(rate - gamma) < 0.01 * gamma, rate
    ff = jf.full_flow("jepa", data, W, V, 1, t, np.full(2, np.inf))
    fm = np.abs(np.asarray(ff.latent)[:, 0, 1])
    rate_flow = np.log(fm[i1] / fm[i0]) / (t[i1] - t[i0])
    assert abs(rate_flow - gamma) < 0.005 * gamma, rate_flow
    # MAE: the same entry decays
    r = _train("mae", data, depth=1, eta=eta, steps=2000, start=jf.Params(W=W, V=V))
    assert abs(r.latent[0, 0, 0, -1, 0, 1]) < delta


def test_collapse_from_unbalanced_start():
    """theory §7: v0 = 1, w0 = 0.3, rho = 0.5 at depth 1 -> v = sqrt(0.91), w -> 0."""
    data = jf.gaussian(Sxx=[1.0], Syx=[0.5])
    W0, V0 = np.array([[[0.3]]]), np.array([[1.0]])
    r = _train("jepa", data, depth=1, eta=0.01, t_max=200.0, start=jf.Params(W=W0, V=V0))
    v, w = r.V[0, 0, 0, 0, 0], r.W[0, 0, 0, 0, 0, 0]
    assert abs(v - np.sqrt(0.91)) < 2e-4  # v^2 - w^2 conserved up to O(eta) drift
    # late phase: dw/dt = v w (lam - var v), exponential decay at rate v (v - lam)
    t, norm = r.t[0, 0, 0], r.norm[0, 0, 0, :, 0]
    i0, i1 = np.searchsorted(t, 100.0), len(t) - 1
    rate = -np.log(norm[i1] / norm[i0]) / (t[i1] - t[i0])
    gd_rate = -np.log(1 - 0.01 * v * (v - 0.5)) / 0.01  # w <- (1 - eta rate) w per step
    assert abs(rate / gd_rate - 1) < 1e-4, (rate, gd_rate)
    assert 0 < w < 1e-30
    ff = jf.full_flow("jepa", data, W0, V0, 1, t, np.full(1, np.inf))
    np.testing.assert_allclose(norm, np.asarray(ff.norm)[:, 0], rtol=1e-2, atol=1e-5)
    assert abs(float(ff.norm[-1, 0])) < 1e-12  # the ODE's atol (1e-13) floors w


def test_ema_tends_to_stopgrad():
    data = jf.gaussian(Sxx=[1.25], Syx=[1.0])  # rho = 0.8
    kw = dict(depth=1, eta=0.002, eps=EPS, t_max=60.0)
    sg = _train("jepa", data, **kw)
    ema0 = _train("jepa", data, target="ema", tau=0.0, **kw)
    assert np.array_equal(ema0.t_star, sg.t_star) and np.array_equal(ema0.norm, sg.norm)
    u0, rho = EPS, 0.8
    delays = []
    for tau in (0.1, 0.05):
        ema = _train("jepa", data, target="ema", tau=tau, **kw)
        # theory §6 at L = 1; the discrete EMA's time constant is tau - eta (see _train)
        predicted = (tau - kw["eta"]) * np.log((rho - u0) / (u0 * (2**1.0 - 1)))
        delays.append(ema.t_star[0, 0, 0, 0] - sg.t_star[0, 0, 0, 0])
        assert abs(delays[-1] / predicted - 1) < 0.03, (delays[-1], predicted)
        ff = jf.full_flow(
            "jepa",
            data,
            ema.W0[0, 0, 0],
            ema.V0[0, 0, 0],
            1,
            ema.t[0, 0, 0],
            ema.level[0],
            target="ema",
            tau=tau,
        )
        np.testing.assert_allclose(ema.t_star[0, 0, 0], np.asarray(ff.t_star), rtol=5e-4)
        np.testing.assert_allclose(ema.norm[0, 0, 0, -1], rho, rtol=1e-8)
    assert 1.8 < delays[0] / delays[1] < 2.2  # O(tau)


def test_frozen_teacher():
    lam, var = np.array([1.0, 0.6]), np.array([1.25, 1.0])
    data = jf.gaussian(Sxx=var, Syx=lam)
    teach = _train("jepa", data, depth=2, eta=0.05, eps=0.1, t_max=400.0)
    rho = lam / var
    np.testing.assert_allclose(np.diag(teach.wbar[0, 0, 0]), rho**2, rtol=1e-8)
    # started at the teacher's own converged state, the frozen run stays there
    init = jf.Params(W=teach.W[0, 0, 0], V=teach.V[0, 0, 0])
    same = _train(
        "jepa", data, depth=2, eta=0.05, steps=500, start=init, target="frozen", teacher=teach
    )
    np.testing.assert_allclose(same.W[0, 0, 0], teach.W[0, 0, 0], atol=1e-8)
    # from a small start the student follows MAE with lam -> c lam (theory §6)
    c = rho**2
    st = _train(
        "jepa",
        data,
        depth=2,
        eta=0.05,
        eps=0.1,
        t_max=400.0,
        target="frozen",
        teacher=teach.wbar[0, 0, 0],
    )
    np.testing.assert_allclose(np.diag(st.wbar[0, 0, 0]), (c * rho) ** (2 / 3), rtol=1e-6)
    np.testing.assert_allclose(np.diag(st.V[0, 0, 0] @ st.wbar[0, 0, 0]), c * rho, rtol=1e-6)
    t_th = np.asarray(jf.critical_time("mae", c * lam, var, 2, 0.1))
    np.testing.assert_allclose(st.t_star[0, 0, 0], t_th, rtol=1e-2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: jf.gaussian(
            Sxx=[[2.0, 0.3], [0.3, 1.0]],
            Syx=[[0.5, 0.1], [0.2, 0.4]],
            Syy=[[1.5, 0.0], [0.0, 1.2]],
            U="random",
        ),
        lambda: jf.noisy_views([1.0, 0.5], [0.5, 2.0], c=0.3, U="random", seed=1),
        lambda: jf.linear_dynamics([0.9, -0.4], [1.0, 3.0], U="random", seed=2),
    ],
)
def test_sampler_moments(make):
    import jax

    from jepa_flow._training._data import sample

    data = make()
    n = 200_000
    X, Y = jax.jit(sample, static_argnums=2)(data, jax.random.PRNGKey(0), n)
    X, Y = np.asarray(X), np.asarray(Y)
    tol = 6 * np.max(np.abs(np.asarray(data.Sxx))) / np.sqrt(n) * 2
    np.testing.assert_allclose(X.T @ X / n, data.Sxx, atol=tol)
    np.testing.assert_allclose(Y.T @ X / n, data.Syx, atol=tol)
    np.testing.assert_allclose(Y.T @ Y / n, data.Syy, atol=tol)


@pytest.mark.parametrize("sampler", ["wishart", "samples"])
def test_minibatch_mae_and_determinism(sampler):
    data = jf.linear_dynamics([0.5, 0.9], [2.0, 1.0], batch=1024, sampler=sampler)
    kw = dict(depth=2, eta=0.05, eps=0.05, t_max=60.0, seed=[0, 1])
    r = _train("mae", data, **kw)
    t_th = np.asarray(jf.critical_time("mae", np.array([1.0, 0.9]), np.array([2.0, 1.0]), 2, 0.05))
    assert np.all(np.abs(r.t_star[:, 0, 0] / t_th - 1) < 0.05), (r.t_star, t_th)
    assert not np.array_equal(r.t_star[0], r.t_star[1])  # seeds differ
    again = _train("mae", data, **kw)
    assert np.array_equal(again.norm, r.norm) and np.array_equal(again.t_star, r.t_star)


def test_divergence_detected():
    data = jf.gaussian(Sxx=[1.0, 2.0], Syx=[0.5, 1.0])
    with pytest.raises(jf.DivergenceError, match=r"at step \d+.*smaller learning rate"):
        _train("mae", data, depth=2, eta=[0.01, 5.0], eps=0.5, steps=300)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(depth=0), "depth must be an integer"),
        (dict(target="moving"), "target must be one of"),
        (dict(optimizer="lbfgs"), "optimizer must be one of"),
        (dict(eta=-1.0), "eta must be > 0"),
        (dict(target="ema", tau=0.001, eta=0.01), "tau must be 0 or >= max"),
        (dict(momentum=1.0), r"momentum must lie in \[0, 1\)"),
        (dict(eps=None), "eps must be a real number"),
        (dict(fraction=None), "fraction must be a real number"),
        (dict(steps=10, t_max=5.0), "exactly one of t_max"),
    ],
)
def test_bad_training_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jf.TrainConfig(objective="jepa", **{"steps": 10, **kwargs})


def test_bad_train_calls():
    data = jf.gaussian(Sxx=[1.0, 2.0], Syx=[0.5, 1.0])
    cfg = jf.TrainConfig(steps=10)
    with pytest.raises(ValueError, match="needs a teacher"):
        jf.train(data, dataclasses.replace(cfg, target="frozen"))
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        jf.train(data, {"steps": 10})
    with pytest.raises(ValueError, match="data must be a jepa_flow Data"):
        jf.train(cfg, data)
    with pytest.raises(ValueError, match="init='given' needs start"):
        jf.train(data, dataclasses.replace(cfg, init="given"))


def test_config_round_trip_and_saved_result(tmp_path):
    """A result records its config; save/load gives the same config, data and arrays."""
    data = jf.gaussian(Sxx=[1.25, 1.0], Syx=[1.0, 0.6], U="random", seed=2)
    cfg = jf.TrainConfig(objective="mae", depth=[1, 2], eta=0.05, eps=0.1, steps=50, n_t=10)
    assert jf.TrainConfig.from_dict(cfg.to_dict()) == cfg
    r = jf.train(data, cfg)
    # t_extra="auto" is resolved by train into the record times it used
    cfg = dataclasses.replace(cfg, t_extra=jf.record_times(data, cfg))
    assert r.config == cfg and len(cfg.t_extra) == 200
    assert jf.train(data, cfg).config is cfg
    jf.save_result(r, tmp_path / "run")
    back = jf.load_result(tmp_path / "run")
    assert back.config == cfg and back.data.model == "gaussian"
    for k in ("t", "norm", "t_star", "level", "W0", "W", "V"):
        np.testing.assert_array_equal(getattr(back, k), getattr(r, k))
    np.testing.assert_array_equal(back.data.U, data.U)
    c = jf.compare(r, full=True)
    jf.save_result(c, tmp_path / "cmp")
    c2 = jf.load_result(tmp_path / "cmp")
    np.testing.assert_array_equal(c2.t_star_full, c.t_star_full)
    assert c2.result.config == cfg and c2.captures_predicted == c.captures_predicted


def test_compare_uses_the_runs_own_settings():
    """Regression: compare(result) once used the default eps, fraction, init and scale."""
    data = jf.gaussian(Sxx=[1.25, 1.0], Syx=[1.0, 0.6])
    cfg = jf.TrainConfig(objective="jepa", depth=1, eta=0.01, eps=0.05, fraction=0.7, t_max=60.0)
    c = jf.compare(jf.train(data, cfg))
    t_th = jf.critical_time("jepa", [1.0, 0.6], [1.25, 1.0], 1, 0.05, fraction=0.7)
    np.testing.assert_allclose(c.t_star_theory[0, 0, 0], t_th, rtol=1e-12)
    assert not np.allclose(t_th, jf.critical_time("jepa", [1.0, 0.6], [1.25, 1.0], 1, 1e-3))
    assert np.all(c.rel_error < 1e-2) and c.order_agrees.all()


def test_compare_never_reports_agreement_for_a_run_that_did_not_follow():
    """A learning rate past the stability limit: crossings happen, but the run is flagged."""
    data = jf.gaussian(Sxx=[1.25, 1.0], Syx=[1.0, 0.6])
    rate = jf.convergence_rate("mae", [1.0, 0.6], [1.25, 1.0], 1)
    eta = 2.2 / float(rate.max())  # GD on the fastest feature oscillates without converging
    cfg = jf.TrainConfig(objective="mae", depth=1, eta=eta, eps=0.1, t_max=40.0)
    c = jf.compare(jf.train(data, cfg))
    assert not c.followed.all()
    assert np.isnan(c.rel_error[~c.followed]).all()
    assert not c.order_agrees.any()


@pytest.mark.parametrize(
    "args, match",
    [
        (([[1.0, 0.5], [0.0, 1.0]], [0.5, 0.5]), "Sxx must be symmetric"),
        (([[1.0, 2.0], [2.0, 1.0]], [0.5, 0.5]), "Sxx must be positive definite"),
        (([1.0, 1.0], [0.5, 0.5, 0.5]), r"Syx must be a square matrix of shape \(2, 2\)"),
        (([1.0, 1.0], [2.0, 0.5]), "joint covariance .* positive semi-definite"),
    ],
)
def test_bad_covariances(args, match):
    with pytest.raises(ValueError, match=match):
        jf.gaussian(Sxx=args[0], Syx=args[1])


def test_record_steps_log_spaced():
    rec = record_steps(10_000, 50)
    assert rec[0] == 0 and rec[-1] == 10_000 and np.all(np.diff(rec) > 0)
    assert 30 <= rec.size <= 50


def test_wishart_moments_match_explicit_minibatches():
    """The Bartlett-sampled moments have the mean and variance of B explicit samples."""
    import jax

    from jepa_flow._training._data import chi2, sample_moments

    data = jf.noisy_views([1.0, 0.5], [0.5, 2.0], c=0.3, U="random", seed=1, batch=6)
    B, n = 6, 40_000
    keys = jax.random.split(jax.random.PRNGKey(1), n)
    C = jax.jit(jax.vmap(lambda k: jnp_block(sample_moments(data, k, B))))(keys)
    C = np.asarray(C)
    S = np.block([[data.Sxx, data.Syx.T], [data.Syx, data.Syy]])
    var = (S**2 + np.outer(np.diag(S), np.diag(S))) / B  # Wishart: Var(C_ij)
    np.testing.assert_allclose(C.mean(0), S, atol=5 * np.sqrt(var.max() / n))
    np.testing.assert_allclose(C.var(0), var, rtol=0.06)
    x = np.asarray(jax.jit(jax.vmap(lambda k: chi2(k, np.array([1.0, 7.0, 120.0]))))(keys))
    np.testing.assert_allclose(x.mean(0), [1.0, 7.0, 120.0], rtol=0.02)
    np.testing.assert_allclose(x.var(0), [2.0, 14.0, 240.0], rtol=0.06)


def jnp_block(m):
    import jax.numpy as jnp

    Cxx, Cyx, Cyy = m
    return jnp.block([[Cxx, Cyx.T], [Cyx, Cyy]])


def test_depth_padding_is_exact_and_values_do_not_recompile():

    data = jf.gaussian(Sxx=[1.25, 1.0], Syx=[1.0, 0.6])
    kw = {"eta": 0.05, "eps": 0.1, "steps": 400, "init": "random", "scale": 0.3, "t_extra": ()}
    mixed = _train("jepa", data, depth=[1, 3], **kw)
    alone = _train("jepa", data, depth=1, **kw)
    # a depth-1 member padded with two identity layers computes the same numbers
    eye = np.broadcast_to(np.eye(2), (2, 2, 2))
    assert np.array_equal(mixed.W0[0, 0, 0, 1:], eye)
    assert np.array_equal(mixed.W[0, 0, 0, 1:], eye)
    np.testing.assert_array_equal(mixed.W[0, 0, 0, :1], alone.W[0, 0, 0])
    np.testing.assert_array_equal(mixed.norm[0, 0], alone.norm[0, 0])
    # random init: entries scale * N(0, 1) on the real layers
    assert 0.5 < np.std(mixed.W0[0, 1, 0]) / 0.3 < 1.5
    # new values of eta, eps, scale, seed, data and run length (hence a different
    # number of records) reuse the compiled engine; only the results' cut to the new
    # number of records (a reshape on the device) compiles
    shaping = _train_module._shaped._cache_size()
    with compilations() as compiles:
        again = _train(
            "jepa",
            jf.gaussian(Sxx=[2.0, 0.5], Syx=[1.5, 0.1]),
            depth=[1, 3],
            **{**kw, "eta": 0.02, "eps": 0.3, "scale": 0.1, "seed": 5, "steps": 2500},
        )
    assert len(compiles) == _train_module._shaped._cache_size() - shaping == 1
    assert again.step.size != mixed.step.size and again.step[-1] == 2500
    assert not np.array_equal(again.W, mixed.W)


def test_momentum_and_adam():
    data = jf.gaussian(Sxx=[1.25, 1.0], Syx=[1.0, 0.6])  # rho = 0.8, 0.6
    t_th = np.asarray(jf.critical_time("jepa", [1.0, 0.6], [1.25, 1.0], 1, 0.1))
    # heavy ball with momentum m follows the flow at rate eta / (1 - m), late by
    # its velocity's warm-up and lag, about 2 m / (1 - m) steps (0.36 flow time here)
    m = 0.9
    r = _train("jepa", data, eta=0.002, eps=0.1, steps=4000, optimizer="momentum", momentum=m)
    lag = r.t_star[0, 0, 0] / (1 - m) - t_th
    assert np.all((lag > 0.2) & (lag < 0.8)), lag
    # Adam has no flow counterpart but stops at the same fixed point
    a = _train("jepa", data, eta=0.01, eps=0.1, steps=3000, optimizer="adam")
    np.testing.assert_allclose(a.norm[0, 0, 0, -1], [0.8, 0.6], rtol=1e-3)


@pytest.mark.slow  # solves again with a tiny buffer (about 10 s): second tier (make test-slow)
def test_full_flow_step_buffer_does_not_change_the_solve(monkeypatch):
    """A small first dense buffer (and its rerun when it runs out) gives the same numbers."""
    from jepa_flow._theory import _fullflow

    data = jf.gaussian(Sxx=[2.0, 1.0, 0.5], Syx=[[1.0, 0.1, 0.0], [0.1, 0.8, 0.05], [0, 0.05, 0.2]])
    W0, V0 = 1e-2 * np.eye(3)[None], 1e-2 * np.eye(3)
    args = ("jepa", data, W0, V0, 1, np.geomspace(1.0, 200.0, 30), [0.1, 0.1, 0.05])
    ref = jf.full_flow(*args)  # a 3 x 3 state fits 200,000 steps in the buffer
    assert _fullflow.dense_steps(12, 8) == _fullflow.MAX_STEPS and int(ref.num_steps) < 500
    for min_steps in (int(ref.num_steps) + 1, 8):  # enough; too few: rerun with MAX_STEPS
        monkeypatch.setattr(_fullflow, "DENSE_BYTES", 1)
        monkeypatch.setattr(_fullflow, "MIN_STEPS", min_steps)
        ff = jf.full_flow(*args)
        np.testing.assert_array_equal(ff.latent, ref.latent)
        np.testing.assert_array_equal(ff.t_star, ref.t_star)
        assert bool(ff.ok) and int(ff.num_steps) == int(ref.num_steps)
