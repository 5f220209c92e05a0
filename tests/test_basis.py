"""Feature bases off the diagonal (theory §11): against scipy's generalized eigensolver,
the commuting case, the column-scale invariance and the full-matrix flow.

Small shapes (d <= 6); the full-matrix comparisons share one compilation per
objective (d = 3, depth 2) and take a few seconds.
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import jepa_flow as jf
from jepa_flow._theory._series import jepa_series


def _random_pair(d, seed):
    """A random SPD ``Sxx`` and a symmetric ``Syx`` that does not commute with it."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3 * d, d))
    Sxx = X.T @ X / (3 * d) + 0.1 * np.eye(d)
    Y = X + rng.standard_normal(X.shape)
    C = Y.T @ X / (3 * d)
    return Sxx, C  # C is not symmetric: the bases use its symmetric part


@pytest.mark.parametrize("normalize", ["dual", "unit", "sxx"])
def test_generalized_basis_against_scipy(normalize):
    Sxx, Syx = _random_pair(6, 0)
    S = 0.5 * (Syx + Syx.T)
    g = jf.generalized_basis(Sxx, Syx, normalize=normalize)
    w, W = scipy.linalg.eigh(S, Sxx)  # ascending, W^T Sxx W = I
    np.testing.assert_allclose(g.rho, w[::-1], rtol=1e-12, atol=1e-14)
    assert np.all(np.diff(g.rho) < 0)
    # the same directions (distinct eigenvalues): |cos| = 1 column by column
    Wn = W[:, ::-1] / np.linalg.norm(W[:, ::-1], axis=0)
    Vn = g.vectors / np.linalg.norm(g.vectors, axis=0)
    np.testing.assert_allclose(np.abs(np.sum(Wn * Vn, axis=0)), 1.0, atol=1e-12)
    # both congruences diagonal, with the reported var and lam
    np.testing.assert_allclose(g.vectors.T @ Sxx @ g.vectors, np.diag(g.var), atol=1e-12)
    np.testing.assert_allclose(g.vectors.T @ S @ g.vectors, np.diag(g.lam), atol=1e-12)
    np.testing.assert_allclose(g.lam, g.rho * g.var, rtol=1e-12)
    np.testing.assert_allclose(g.dual.T @ g.vectors, np.eye(6), atol=1e-12)
    scale = {
        "dual": np.linalg.norm(g.dual, axis=0),
        "unit": np.linalg.norm(g.vectors, axis=0),
        "sxx": g.var,
    }[normalize]
    np.testing.assert_allclose(scale, 1.0, rtol=1e-12)
    # the non-orthogonality measures, directly from the definitions
    C = Vn.T @ Vn - np.eye(6)
    assert g.nonorthogonality == pytest.approx(np.linalg.norm(C) / np.sqrt(6), rel=1e-12)
    assert g.max_cosine == pytest.approx(np.abs(C).max(), rel=1e-12)
    assert 0 < g.max_cosine < 1


def test_rate_times_var_is_scale_free_and_the_dual_scale():
    """``g_i var_i`` and ``g_i lam_i`` do not depend on the column scale (theory §11.3);
    the dual scale has ``g = 1``, and ``var = |Sxx v|^2 / (v^T Sxx v)``."""
    Sxx, Syx = _random_pair(5, 1)
    bases = {
        n: jf.generalized_basis(Sxx, Syx, normalize=n) for n in jf._theory._basis.NORMALIZATIONS
    }
    dual = bases["dual"]
    np.testing.assert_allclose(dual.rate, 1.0, rtol=1e-12)
    for b in bases.values():
        np.testing.assert_allclose(b.rate * b.var, dual.var, rtol=1e-10)
        np.testing.assert_allclose(b.rate * b.lam, dual.lam, rtol=1e-10, atol=1e-14)
        v = b.vectors
        np.testing.assert_allclose(
            np.sum((Sxx @ v) ** 2, axis=0) / np.einsum("ij,ik,kj->j", v, Sxx, v),
            dual.var,
            rtol=1e-10,
        )
    # the sxx scale: var 1 and lam = rho
    np.testing.assert_allclose(bases["sxx"].lam, bases["sxx"].rho, rtol=1e-12)


def test_orthonormal_bases_against_their_definitions():
    Sxx, Syx = _random_pair(5, 2)
    S = 0.5 * (Syx + Syx.T)
    lam_b = jf.feature_basis(Sxx, Syx, basis="lam")
    ev, U = scipy.linalg.eigh(S)
    np.testing.assert_allclose(lam_b.lam, ev[::-1], rtol=1e-12)
    np.testing.assert_allclose(np.abs(lam_b.vectors.T @ U[:, ::-1]), np.eye(5), atol=1e-10)
    np.testing.assert_allclose(lam_b.var, np.diag(lam_b.vectors.T @ Sxx @ lam_b.vectors))
    mae = jf.feature_basis(Sxx, Syx, basis="mae")
    s, B = jf.mae_end_directions(jf.gaussian(Sxx=Sxx, Syx=0.2 * Syx))  # a valid joint
    np.testing.assert_allclose(np.abs(mae.vectors.T @ B), np.eye(5), atol=1e-10)
    pca = jf.feature_basis(Sxx, Syx)
    np.testing.assert_allclose(pca.var, scipy.linalg.eigvalsh(Sxx)[::-1], rtol=1e-12)
    for b in (lam_b, mae, pca):
        np.testing.assert_allclose(b.vectors.T @ b.vectors, np.eye(5), atol=1e-12)
        assert b.nonorthogonality == b.max_cosine == 0.0 and b.normalize is None
        np.testing.assert_array_equal(b.dual, b.vectors)
        np.testing.assert_allclose(b.rho, b.lam / b.var)


def test_commuting_case_every_basis_is_the_principal_one():
    # var, lam and rho all descending: the four orders agree
    var, rho = np.array([2.0, 1.5, 1.0, 0.5]), np.array([0.9, 0.7, 0.6, 0.2])
    R = jf.random_rotation(4, seed=5)
    Sxx, Syx = R @ np.diag(var) @ R.T, R @ np.diag(rho * var) @ R.T
    for kind in jf._theory._basis.BASES:
        b = jf.feature_basis(Sxx, Syx, basis=kind)
        np.testing.assert_allclose(np.abs(b.vectors.T @ R), np.eye(4), atol=1e-10)
        np.testing.assert_allclose(b.var, var, rtol=1e-10)
        np.testing.assert_allclose(b.lam, rho * var, rtol=1e-10)
        assert b.nonorthogonality < 1e-12
    # the analysis in either basis gives the same (exact) critical times
    data = jf.gaussian(Sxx=var, Syx=rho * var, U=R)
    t_pca = jf.analyze(data).critical_time("jepa", 3, 1e-3)
    t_gen = jf.analyze(data, basis="generalized").critical_time("jepa", 3, 1e-3)
    np.testing.assert_allclose(t_gen, t_pca, rtol=1e-10)
    np.testing.assert_allclose(t_pca, jf.critical_time("jepa", rho * var, var, 3, 1e-3))


def test_bad_input_is_refused_with_the_parameter_name():
    Sxx, Syx = np.diag([1.0, 2.0]), np.eye(2)
    with pytest.raises(ValueError, match="normalize must be one of"):
        jf.generalized_basis(Sxx, Syx, normalize="l2")
    with pytest.raises(ValueError, match="normalize applies to basis='generalized' only"):
        jf.feature_basis(Sxx, Syx, basis="pca", normalize="dual")
    with pytest.raises(ValueError, match="Sxx must be positive definite"):
        jf.feature_basis(np.diag([1.0, -1.0]), Syx, basis="mae")
    with pytest.raises(ValueError, match="Sxx must be symmetric"):
        jf.generalized_basis([[1.0, 0.5], [0.0, 1.0]], Syx)
    with pytest.raises(ValueError, match="Syx must have the shape of Sxx"):
        jf.generalized_basis(Sxx, np.eye(3))
    with pytest.raises(ValueError, match="Sxx must be finite"):
        jf.generalized_basis([[1.0, np.nan], [np.nan, 1.0]], Syx)
    with pytest.raises(ValueError, match="basis must be one of"):
        jf.analyze(jf.gaussian(Sxx=[1.0, 2.0], Syx=[0.5, 0.5]), basis="pcs")


def test_cited_time_is_the_first_series_term():
    lam, var = np.array([1.0, 0.8]), np.array([2.0, 1.0])
    eps = 1e-3
    # depth 1: the series has one term, the cited time is the whole series
    np.testing.assert_allclose(
        jf.cited_critical_time(lam, var, 1, eps), jepa_series(lam, var, 1.0, eps), rtol=1e-12
    )
    # depth 3: the series minus its terms n = 2 .. 5 (by hand)
    rho = lam / var
    rest = sum(eps ** (-n / 3) / (n * rho ** (5 - n)) for n in range(2, 6)) / lam
    np.testing.assert_allclose(
        jf.cited_critical_time(lam, var, 3, eps), jepa_series(lam, var, 3.0, eps) - rest, rtol=1e-9
    )
    np.testing.assert_allclose(
        jf.cited_critical_time(lam, var, 3, eps), 1 / (lam * rho**4 * eps ** (1 / 3)), rtol=1e-12
    )


# -- the diagonal approximation against the full-matrix flow (theory §11.3) ------------------

_VAR, _RHO = np.array([1.0, 0.8, 0.6]), np.array([0.8, 0.6, 0.4])  # no capture: rho descending
_U0 = jf.random_rotation(3, seed=2)
_K = np.array([[0.0, 0.6, -0.3], [-0.6, 0.0, 0.7], [0.3, -0.7, 0.0]])


def _tilted(delta):
    """``Syx``'s eigenbasis tilted from ``Sxx``'s by a rotation of size ``delta``."""
    Ur = _U0 @ scipy.linalg.expm(delta * _K / np.linalg.norm(_K))
    return _U0 @ np.diag(_VAR) @ _U0.T, Ur @ np.diag(_RHO * _VAR) @ Ur.T


def _flow_times(objective, Sxx, Syx, fa, depth, eps):
    """First time ``|Wbar a_i|`` (unit dual vectors) reaches half the theory's ``wbar*``."""
    data = eqx.tree_at(lambda q: q.U, jf.gaussian(Sxx=Sxx, Syx=Syx), jnp.asarray(fa.dual))
    level = 0.5 * np.asarray(jf.fixed_point(objective, fa.lam, fa.var, depth))
    c, eye = eps ** (1 / depth), np.eye(3)
    t_theory = fa.critical_time(objective, depth, eps)
    ff = jf.full_flow(
        objective, data, c * np.stack([eye] * depth), c * eye, depth, [4 * t_theory.max()], level
    )
    return np.asarray(ff.t_star), t_theory


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_diagonal_approximation_is_second_order(objective):
    """Times in the dual-normalized generalized basis against the full-matrix flow.

    The error is even in the off-diagonal part of ``G`` (theory §11.3), so it
    falls by about 4 when the tilt halves (a first-order error would fall by
    2), and measured it is about ``1.5 nonorthogonality^2`` (depths 1-3, both
    objectives, tilts 0.025-0.2): the bound ``3 nonorthogonality^2`` leaves a
    factor 2.
    """
    err, nonorth = [], []
    for delta in (0.1, 0.2):
        Sxx, Syx = _tilted(delta)
        fa = jf.analyze(jf.gaussian(Sxx=Sxx, Syx=Syx), basis="generalized")
        t_flow, t_theory = _flow_times(objective, Sxx, Syx, fa, 2, 1e-3)
        err.append(np.max(np.abs(t_theory / t_flow - 1)))
        nonorth.append(fa.nonorthogonality)
    assert 0.01 < nonorth[0] < nonorth[1] < 0.1
    assert err[1] < 3 * nonorth[1] ** 2 and err[0] < 3 * nonorth[0] ** 2, (err, nonorth)
    assert 3.0 < err[1] / err[0] < 5.0, err


def test_objective_picks_experiment_10s_default_basis():
    """``analyze(data, objective=...)`` without a basis is ``DEFAULT_BASIS[objective]``
    (theory §11.7); without an objective, the principal components."""
    from jepa_flow._training._real import DEFAULT_BASIS

    data = jf.noncommuting([1.0, 0.5, 0.25], [0.9, 0.6, 0.3], 0.3, seed=1)
    for objective, (basis, normalize) in DEFAULT_BASIS.items():
        a = jf.analyze(data, objective=objective)
        b = jf.analyze(data, basis=basis, normalize=normalize)
        assert (a.basis_kind, a.normalize) == (b.basis_kind, b.normalize)
        np.testing.assert_array_equal(a.basis, b.basis)
        np.testing.assert_array_equal(a.lam, b.lam)
    assert jf.analyze(data).basis_kind == "pca"
    with pytest.raises(ValueError, match="objective must be one of"):
        jf.analyze(data, objective="ema")
