"""Real two-view data: the samples constructor, the feature analysis, the shipped
data sets and training on rows (theory §9).

Small shapes (d <= 6, n <= 20000): the file runs in well under a minute.
"""

import jax
import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow._theory._order import learned_first
from jepa_flow._training._data import sample
from jepa_flow._training._model import Params, minibatch_loss, population_loss

# A simultaneously diagonal structure: x' ~ N(0, diag VAR), y' = A x' + noise, rotated by R.
VAR = np.array([2.0, 1.2, 0.7, 0.4])
A = np.array([0.9, -0.3, 0.6, 0.5])  # rho = A, lam = A * VAR
N = 20000


def _diag_pairs(n=N, seed=0):
    rng = np.random.default_rng(seed)
    R = jf.random_rotation(VAR.size, seed=11)
    xf = rng.standard_normal((n, VAR.size)) * np.sqrt(VAR)
    yf = A * xf + rng.standard_normal(xf.shape) * np.sqrt(VAR * (1 - A**2))
    return xf @ R.T + 3.0, yf @ R.T - 1.0, R  # offsets: the constructor centres


def _gaussian_pairs(Sxx, Syx, n, seed):
    d = Sxx.shape[0]
    joint = np.block([[Sxx, Syx.T], [Syx, Sxx]])
    z = np.random.default_rng(seed).standard_normal((n, 2 * d)) @ np.linalg.cholesky(joint).T
    return z[:, :d], z[:, d:]


def test_recovers_diagonal_structure_to_sampling_error():
    x, y, R = _diag_pairs()
    a = jf.analyze(jf.from_samples(x, y))
    lam = A * VAR
    # each estimate within 4 standard errors (the stderr itself checked against theory below)
    assert np.all(np.abs(a.lam - lam) < 4 * a.lam_stderr), (a.lam, lam, a.lam_stderr)
    # Var(x'y') for a Gaussian pair is var^2 (1 + a^2); the pooled, symmetrized product
    # has the same variance; relative size of the estimated stderr to within 5 %
    np.testing.assert_allclose(a.lam_stderr, VAR * np.sqrt((1 + A**2) / N), rtol=0.05)
    # pooled var: the sample variance of 2N draws, relative error ~ sqrt(1/N)
    np.testing.assert_allclose(a.var, VAR, rtol=5 * np.sqrt(1 / N))
    np.testing.assert_allclose(a.rho, A, atol=5 * np.sqrt(2 / N))
    # the basis: the rotated axes, up to sign
    np.testing.assert_allclose(np.abs(a.basis.T @ R), np.eye(VAR.size), atol=0.05)
    assert a.offdiag < 0.02 and a.commutator < 0.01
    assert a.asymmetry == 0.0 and a.view_mismatch == 0.0 and a.n == N


def test_offdiag_measure_exact_and_large_when_not_commuting():
    Sxx = np.diag(VAR)
    Q = jf.random_rotation(4, seed=3)
    Syx = Q @ np.diag([0.8, 0.5, 0.3, 0.1]) @ Q.T
    a = jf.analyze(jf.gaussian(Sxx=Sxx, Syx=Syx))
    # Sxx is diagonal with descending entries: the analysis basis is the identity
    np.testing.assert_allclose(np.abs(a.basis), np.eye(4), atol=1e-12)
    off = Syx - np.diag(np.diag(Syx))
    assert a.offdiag == pytest.approx(np.linalg.norm(off) / np.linalg.norm(Syx), rel=1e-12)
    assert a.offdiag > 0.3
    np.testing.assert_allclose(a.lam, np.diag(Syx), rtol=1e-12)
    # and estimated from samples of the same model, to sampling error
    x, y = _gaussian_pairs(Sxx, Syx, 20000, seed=1)
    b = jf.analyze(jf.from_samples(x, y))
    assert abs(b.offdiag - a.offdiag) < 0.03
    # the per-feature theory, fed the analysis: never-learned features are inf and last
    t = a.critical_time("jepa", 1, 1e-3)
    np.testing.assert_array_equal(t, jf.critical_time("jepa", a.lam, a.var, 1, 1e-3))
    c = jf.FeatureAnalysis(**{**a.__dict__, "lam": np.array([0.5, -0.1, 0.3, 0.0])})
    order = c.order("mae", 2, 1e-3)
    assert np.isinf(c.critical_time("mae", 2, 1e-3)[[1, 3]]).all()
    assert set(order[2:].tolist()) == {1, 3}


def test_symmetrized_rows_give_exactly_the_source_loss():
    # the mean loss over all rows, both orders, is the population loss of the moments
    x, y, _ = _diag_pairs(n=300)
    data = jf.from_samples(x, y, normalize="trace")
    rng = np.random.default_rng(0)
    p = Params(W=rng.standard_normal((2, 4, 4)), V=rng.standard_normal((4, 4)))
    ET = rng.standard_normal((4, 4))
    X, Y = data.X, data.Y
    for obj in ("jepa", "mae"):
        rows = 0.5 * (minibatch_loss(obj, p, ET, X, Y) + minibatch_loss(obj, p, ET, Y, X))
        pop = population_loss(obj, p, ET, data.Sxx, data.Syx, data.Syy)
        assert float(rows) == pytest.approx(float(pop), rel=1e-12)
    assert np.trace(np.asarray(data.Sxx)) == pytest.approx(4.0, rel=1e-12)
    # unpooled: the rows as given
    raw = jf.from_samples(x, y, symmetric=False)
    a = jf.analyze(raw)
    assert a.view_mismatch > 0 and a.asymmetry > 0
    pop = population_loss("mae", p, ET, raw.Sxx, raw.Syx, raw.Syy)
    assert float(minibatch_loss("mae", p, ET, raw.X, raw.Y)) == pytest.approx(float(pop), 1e-12)


def test_minibatches_are_rows_of_the_data_set():
    x, y, _ = _diag_pairs(n=40)
    data = jf.from_samples(x, y, batch=8)
    X, Y = (np.asarray(v) for v in sample(data, jax.random.PRNGKey(0), 20000))
    rows = {tuple(r) for r in np.round(np.concatenate([data.X, data.Y], 1), 12)}
    swapped = {tuple(r) for r in np.round(np.concatenate([data.Y, data.X], 1), 12)}
    drawn = [tuple(r) for r in np.round(np.concatenate([X, Y], 1), 12)]
    assert all(r in rows or r in swapped for r in drawn)
    frac = np.mean([r in swapped for r in drawn])
    assert abs(frac - 0.5) < 4 * 0.5 / np.sqrt(20000)


def test_principal_components_and_bad_input():
    x, y, R = _diag_pairs(n=2000)
    Q = jf.principal_components(x, y, n_features=2)
    data = jf.from_samples(x, y, n_features=2)
    assert data.d == 2
    np.testing.assert_allclose(np.abs(Q.T @ R[:, :2]), np.eye(2), atol=0.05)
    np.testing.assert_allclose(np.asarray(data.var), jf.analyze(jf.from_samples(x, y)).var[:2])
    # a compressed spectrum: var -> var^power, rho unchanged
    full, half = jf.analyze(jf.from_samples(x, y)), jf.analyze(jf.from_samples(x, y, power=0.5))
    np.testing.assert_allclose(half.var, np.sqrt(full.var), rtol=1e-10)
    np.testing.assert_allclose(half.rho, full.rho, rtol=1e-8)
    white = jf.analyze(jf.from_samples(x, y, power=0.0))
    np.testing.assert_allclose(white.var, 1.0, rtol=1e-10)
    with pytest.raises(ValueError, match="power must lie in"):
        jf.from_samples(x, y, power=1.5)
    with pytest.raises(ValueError, match="y must have the shape"):
        jf.from_samples(x, y[:, :3])
    with pytest.raises(ValueError, match="x must be finite"):
        jf.from_samples(np.where(x > 5, np.nan, x), y)
    with pytest.raises(ValueError, match="need n >= 5"):
        jf.from_samples(x[:4], y[:4])
    dup = np.concatenate([x, x[:, :1]], axis=1)
    with pytest.raises(ValueError, match="rank 4 < 5: d = 5 is too large"):
        jf.from_samples(dup, np.concatenate([y, y[:, :1]], axis=1))
    with pytest.raises(ValueError, match="n_features must be"):
        jf.from_samples(x, y, n_features=5)
    with pytest.raises(ValueError, match="normalize must be"):
        jf.from_samples(x, y, normalize="whiten")


def test_patch_pairs_deterministic_and_shifted():
    x, y = jf.patch_pairs(p=4, shift=1, n=300, seed=5)
    x2, y2 = jf.patch_pairs(p=4, shift=1, n=300, seed=5)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, jf.patch_pairs(p=4, shift=1, n=300, seed=6)[0])
    assert x.shape == (300, 16) and 0 <= x.min() and x.max() <= 1
    # y is x moved by one pixel along an axis: the overlapping 3 x 4 block matches
    X, Y = x.reshape(-1, 4, 4), y.reshape(-1, 4, 4)
    hits = [
        np.all(X[:, 1:] == Y[:, :-1], axis=(1, 2)),
        np.all(X[:, :-1] == Y[:, 1:], axis=(1, 2)),
        np.all(X[:, :, 1:] == Y[:, :, :-1], axis=(1, 2)),
        np.all(X[:, :, :-1] == Y[:, :, 1:], axis=(1, 2)),
    ]
    assert np.any(hits, axis=0).all()
    xn, yn = jf.patch_pairs(p=4, shift=0, n=300, noise=0.1, seed=5)
    assert 0.08 < np.std(xn - yn) / np.sqrt(2) < 0.12


def test_digit_pairs_deterministic_and_augmented():
    from sklearn.datasets import load_digits

    x, y = jf.digit_pairs(n=200, seed=2)
    np.testing.assert_array_equal(x, jf.digit_pairs(n=200, seed=2)[0])
    assert not np.array_equal(x, jf.digit_pairs(n=200, seed=3)[0])
    x0, y0 = jf.digit_pairs(n=200, shift=0, noise=0.0, seed=2)
    np.testing.assert_array_equal(x0, y0)
    digits = {tuple(r) for r in load_digits().data / 16.0}
    assert all(tuple(r) in digits for r in x0)
    # each view is the digit moved by some offset in {-1, 0, 1}^2, zero-filled
    xs, _ = jf.digit_pairs(n=200, shift=1, noise=0.0, seed=2)

    def moved(img, dr, dc):
        out = np.zeros((8, 8))
        for r in range(8):
            for c in range(8):
                if 0 <= r - dr < 8 and 0 <= c - dc < 8:
                    out[r, c] = img[r - dr, c - dc]
        return out.ravel()

    offsets = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
    for k in range(200):
        img = x0[k].reshape(8, 8)
        assert any(np.array_equal(xs[k], moved(img, *o)) for o in offsets), k
    assert not np.array_equal(xs, x0)


def test_series_pairs_and_load_dataset(tmp_path):
    x, y = jf.series_pairs(window=8)
    assert x.shape == (12000 - 15, 8)
    np.testing.assert_array_equal(y[:-8], x[8:])  # y is the next window
    np.testing.assert_array_equal(x, jf.series_pairs(window=8)[0])
    data = jf.load_dataset("membrane", window=8, normalize="max", batch=64)
    assert data.d == 8 and data.batch == 64 and float(data.var[0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['p'\]"):
        jf.load_dataset("membrane", p=8)
    with pytest.raises(ValueError, match="name must be one of"):
        jf.load_dataset("cifar")
    np.savez(tmp_path / "pairs.npz", x=x, y=y)
    back = jf.from_npz(tmp_path / "pairs.npz", normalize="max")
    np.testing.assert_allclose(np.asarray(back.Sxx), np.asarray(data.Sxx), rtol=1e-12)
    np.savez(tmp_path / "bad.npz", x=x)
    with pytest.raises(ValueError, match="missing \\['y'\\]"):
        jf.from_npz(tmp_path / "bad.npz")


# -- training on rows against the full-matrix flow (theory §6.4, §8.4, §9) ---------------------

SXX3 = np.diag([1.0, 0.6, 0.3])
ROT3 = jf.random_rotation(3, seed=3)
SYX3 = np.sqrt(SXX3) @ ROT3 @ np.diag([0.9, 0.5, 0.2]) @ ROT3.T @ np.sqrt(SXX3)  # not commuting
ETA = 0.02
SEEDS = list(range(8))


def _train(objective, data, **kw):
    """Linear models trained on ``data`` (latent kept for the comparison with the flow)."""
    config = jf.TrainConfig(objective=objective, eta=ETA, n_t=40, keep_latent=True, **kw)
    return jf.train(data, config)


@pytest.fixture(scope="module")
def rows3():
    x, y = _gaussian_pairs(SXX3, SYX3, 4000, seed=0)
    return x, y


@pytest.mark.parametrize("objective,t_max", [("mae", 40.0), ("jepa", 120.0)])
def test_training_on_rows_follows_the_full_matrix_flow(rows3, objective, t_max):
    x, y = rows3
    full = jf.from_samples(x, y)
    assert jf.analyze(full).offdiag > 0.2  # the per-feature theory does not apply
    gd = _train(objective, full, depth=1, seed=0, eps=0.05, t_max=t_max)
    W0, V0 = gd.W0[0, 0, 0], gd.V0[0, 0, 0]
    t = gd.t[0, 0, 0][1:]
    flow = np.asarray(jf.full_flow(objective, full, W0, V0, 1, t, gd.level[0]).latent)
    scale = np.linalg.norm(flow[-1])
    # full-batch gradient descent on the rows is the flow to O(eta)
    gd_dev = np.linalg.norm(gd.latent[0, 0, 0, 1:] - flow, axis=(-2, -1)).max() / scale
    assert gd_dev < 0.5 * ETA, gd_dev
    # minibatches of 64 rows: the seeds' mean is the full-batch run to its standard error
    sgd = _train(
        objective, jf.from_samples(x, y, batch=64), depth=1, seed=SEEDS, eps=0.05, t_max=t_max
    )
    lat = sgd.latent[:, 0, 0, 1:]
    err = np.linalg.norm(lat.mean(0) - gd.latent[0, 0, 0, 1:], axis=(-2, -1))
    se = np.linalg.norm(lat.std(0, ddof=1), axis=(-2, -1)) / np.sqrt(len(SEEDS))
    late = t > 0.3 * t_max
    assert np.all(err[late] < 4 * se[late] + 1e-3 * scale), (err / se)[late]
    assert 1e-3 < (se[late] / scale).max() < 0.05  # the noise is there, and small


# -- the basis-invariant learned measure (theory §9) --------------------------------------------


def test_learned_directions_recover_per_feature_times_when_diagonal():
    lam, var, eps = np.array([0.8, 0.45, 0.2]), np.array([1.0, 0.7, 0.4]), 1e-2
    data = jf.gaussian(Sxx=var, Syx=lam, U="random", seed=4)
    U = np.asarray(data.U)
    for objective, L, t_end in (("mae", 1, 120.0), ("mae", 2, 400.0), ("jepa", 1, 3000.0)):
        t = np.geomspace(0.01, t_end, 2000)
        W0L = np.repeat(eps ** (1 / L) * np.eye(3)[None], L, 0)
        ff = jf.full_flow(objective, data, W0L, eps ** (1 / L) * np.eye(3), L, t, np.ones(3))
        wbar = U @ np.asarray(ff.latent) @ U.T  # back to the input coordinates
        ld = jf.learned_directions(t, wbar, level=0.5)
        th = np.asarray(jf.critical_time(objective, lam, var, L, eps))
        np.testing.assert_allclose(ld.s, jf.fixed_point(objective, lam, var, L), rtol=1e-3)
        al = jf.alignment(U, ld.directions)
        np.testing.assert_allclose(al, np.eye(3), atol=1e-3)  # s sorted like rho^L here
        np.testing.assert_allclose(ld.time, th, rtol=2e-3)
        # invariant to an orthogonal change of the representation
        R = jf.random_rotation(3, seed=9)
        np.testing.assert_allclose(jf.learned_directions(t, R @ wbar).time, ld.time, rtol=1e-12)


def test_learned_directions_edge_cases():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    wbar = np.array(
        [np.diag([0.1, 0.1]), np.diag([0.3, 0.1]), np.diag([0.9, 0.1]), np.diag([1.0, 0.1])]
    )
    ld = jf.learned_directions(t, wbar)
    assert ld.time[0] == pytest.approx(1.0 + (0.5 - 0.3) / (0.9 - 0.3))
    assert np.isinf(ld.time[1])  # did not grow
    with pytest.raises(ValueError, match="level must lie"):
        jf.learned_directions(t, wbar, level=1.0)
    with pytest.raises(ValueError, match="wbar must have shape"):
        jf.learned_directions(t[:3], wbar)


def test_nonlinear_encoders_learn_separated_features_in_the_theory_order():
    from jepa_flow._training._nonlinear import train_nonlinear

    x, y, _ = _diag_pairs(n=4000)  # rho 0.9, 0.3, 0.6, 0.5 with var 2, 1.2, 0.7, 0.4
    data = jf.from_samples(x, y, batch=128)
    a = jf.analyze(data)
    cfg = jf.TrainConfig(objective="mae", eta=0.05, seed=[0, 1], eps=1e-2, t_max=60.0, n_t=30)
    r = train_nonlinear(data, cfg)
    r2 = train_nonlinear(data, cfg)
    np.testing.assert_array_equal(r.time, r2.time)  # deterministic under the seeds
    th = a.critical_time("mae", 2, 1e-2)
    learned = np.isfinite(r.time).all(0)
    assert learned[[0, 2]].all()  # the two strongest features grow in every seed
    # the strongest feature (var 2, rho 0.9) first, as in the linear theory
    assert np.all(np.argmin(np.where(np.isfinite(r.time), r.time, np.inf), axis=1) == 0)
    assert np.argmin(th) == 0
    with pytest.raises(ValueError, match="activation must be"):
        train_nonlinear(data, jf.TrainConfig(objective="mae", t_max=1.0), activation="gelu")
    with pytest.raises(ValueError, match="'samples' source"):
        train_nonlinear(jf.gaussian(Sxx=VAR, Syx=A * VAR), jf.TrainConfig(t_max=1.0))


def test_rank_correlation_and_overlap_against_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    a, b = rng.random(9), rng.random(9)
    b[3] = b[5]  # a tie
    assert jf.rank_correlation(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    a[0] = np.inf  # dropped
    assert jf.rank_correlation(a, b) == pytest.approx(spearmanr(a[1:], b[1:]).statistic, 1e-12)
    assert np.isnan(jf.rank_correlation([1.0, 2.0], [2.0, 1.0]))
    assert jf.top_k_overlap([3, 1, 0, 2], [1, 2, 3, 0], 2) == 0.5


def test_orders_rank_only_learned_features():
    # JEPA, depth 2, eps 0.02: feature 1 (rho 0.164, wbar* = rho^2 = 0.027) starts above
    # half its level, so t* = 0; feature 3 (lam < 0) is never learned (theory §4, §10)
    lam, var = [1.0, 0.0056, 0.8, -0.1], [2.0, 0.0341, 1.0, 1.0]
    t = np.asarray(jf.critical_time("jepa", lam, var, 2, 0.02))
    wstar = np.asarray(jf.fixed_point("jepa", lam, var, 2))
    assert 0.5 * wstar[1] < 0.02 < 0.5 * wstar[[0, 2]].min()
    assert t[1] == 0 and np.isinf(t[3]) and 0 < t[0] < t[2] < np.inf
    np.testing.assert_array_equal(jf.learned_mask(t), [True, False, True, False])
    assert jf.learning_order(t).tolist() == [0, 2, 1, 3]
    assert jf.learning_order(np.append(t, [np.nan, 50.0])).tolist() == [5, 0, 2, 1, 3, 4]
    a = jf.analyze(jf.gaussian(Sxx=var[:3], Syx=lam[:3]))  # features by descending var
    np.testing.assert_allclose(a.var, [2.0, 1.0, 0.0341], rtol=1e-12)
    assert a.order("jepa", 2, 0.02).tolist() == [0, 1, 2]  # the t* = 0 one last, not first
    assert learned_first([t, [0.0, 0.0, np.inf, np.nan]]).tolist() == [0, -1]
    # a feature that starts learned at one depth cannot flip the order
    assert jf.flip_depth([1, 2, 3], [[0.0, 1.0, 5.0], [2.0, 1.0, 5.0], [2.0, 6.0, 5.0]]) == 3


def test_order_agreement_over_features_learned_in_both_against_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(2)
    a, b = rng.random(12) * 100, rng.random(12) * 100
    a[[0, 1, 2]] = [0.0, np.inf, np.nan]  # not learned in a
    b[[3, 4]] = [0.0, np.inf]  # not learned in b
    b[7] = b[8]  # a tie
    both = np.arange(12) >= 5
    r = jf.order_agreement(a, b, k=3)
    assert r.n_compared == 7
    assert r.spearman == pytest.approx(spearmanr(a[both], b[both]).statistic, abs=1e-12)
    top_a = set(np.flatnonzero(both)[np.argsort(a[both], kind="stable")[:3]])
    top_b = set(np.flatnonzero(both)[np.argsort(b[both], kind="stable")[:3]])
    assert r.overlap == pytest.approx(len(top_a & top_b) / 3)
    # rank_correlation alone keeps t* = 0 (it is finite): a different number
    assert jf.rank_correlation(a, b) != pytest.approx(r.spearman)
    assert np.isnan(jf.order_agreement(a, b, k=7).overlap)  # 7 compared: top-7 says nothing
    assert np.isnan(jf.order_agreement(a, b).overlap)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        jf.order_agreement(a, b, k=0)


def test_mae_end_directions_predict_the_full_flow_end_state():
    # non-commuting covariances: MAE's learned directions are the right singular
    # vectors of Syx Sxx^-1, not the eigenvectors of Sxx
    data = jf.gaussian(Sxx=SXX3, Syx=SYX3)
    s, B = jf.mae_end_directions(data)
    t = np.geomspace(0.01, 400.0, 400)
    eps = 1e-2
    ff = jf.full_flow("mae", data, eps * np.eye(3)[None], eps * np.eye(3), 1, t, np.ones(3))
    ld = jf.learned_directions(t, np.asarray(ff.latent))  # U = I: latent is Wbar
    np.testing.assert_allclose(jf.alignment(B, ld.directions), np.eye(3), atol=1e-6)
    np.testing.assert_allclose(ld.s, np.sqrt(s), rtol=1e-6)  # depth 1: s^(L/(L+1))
    a = jf.analyze(data)
    assert jf.alignment(a.basis, B).max(axis=0).min() < 0.95  # not the theory's basis
