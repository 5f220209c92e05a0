"""Experiment 10's pieces against independent references, and its tiny level end to end.

- the synthetic non-commutation family against scipy's logm, expm and
  generalized eigensolver;
- the scores against hand-computed cases;
- the stiff solver (reduced and layered) against ``full_flow`` (Tsit5), and
  the reduced field against the layers' chain rule at a balanced state;
- experiment 10 at its ``tiny`` level: figures, the theta = 0 exactness.
"""

import gzip
import json

import numpy as np
import pytest
import scipy.linalg as sl

import jepa_flow as jf
from jepa_flow._reproduce import exp10_offdiagonal as exp10
from jepa_flow._theory._fullflow import full_flow_field
from jepa_flow._theory._stiff import reduced_field, reduced_jacobian, stiff_flow
from jepa_flow._theory._validity import THEORIES, order_scores, theory_basis, theory_times
from jepa_flow._training._data import random_rotation
from jepa_flow._training._synthetic import rotation, rotation_generator
from jepa_flow._training._validity import dual_offdiag, refined_times, time_grid

VAR = np.geomspace(1.0, 0.1, 4)
RHO = np.linspace(0.3, 0.9, 4)


# -- the synthetic family --------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generator_is_the_scaled_logarithm_of_the_seeded_rotation(seed):
    Q = random_rotation(5, seed=seed)
    if np.linalg.det(Q) < 0:
        Q[:, 0] = -Q[:, 0]
    L = np.real(sl.logm(Q))
    K = rotation_generator(5, seed)
    assert np.allclose(K * np.abs(np.linalg.eigvals(L)).max(), L, atol=1e-12)
    assert np.isclose(np.abs(np.linalg.eigvals(K)).max(), 1.0)
    assert np.allclose(rotation(K, 0.7), sl.expm(0.7 * K), atol=1e-13)


def test_theta_zero_is_the_diagonal_source():
    data = jf.noncommuting(VAR, RHO, 0.0, seed=1)
    assert data.diagonal
    assert np.allclose(np.asarray(data.Syx), np.diag(RHO * VAR), atol=0)
    assert np.allclose(np.asarray(data.lam), RHO * VAR)


@pytest.mark.parametrize("theta", [0.05, 0.3, 0.8])
def test_generalized_eigenvalues_are_rho(theta):
    data = jf.noncommuting(VAR, RHO, theta, seed=2)
    Sxx, Syx = np.asarray(data.Sxx), np.asarray(data.Syx)
    assert np.allclose(Syx, Syx.T)
    ref = sl.eigh(Syx, Sxx, eigvals_only=True)
    assert np.allclose(np.sort(ref), np.sort(RHO), atol=1e-12)
    assert not data.diagonal
    assert jf.analyze(data).offdiag > 0.01
    with pytest.raises(ValueError, match="rho must lie in"):
        jf.noncommuting(VAR, [0.3, 0.5, 0.9, 1.0], theta)


# -- scores ------------------------------------------------------------------------------------


def test_scores_by_hand():
    # directions 2 (t = 0: learned at the start) and 4 (never) are left out
    pred = [4.0, 1.0, 3.0, 2.0, 5.0]
    obs = [40.0, 12.0, 0.0, 25.0, np.inf]
    s = order_scores(pred, obs, k=2)
    assert s.n == 3
    assert s.spearman == pytest.approx(1.0)  # 1 < 2 < 4 and 12 < 25 < 40
    assert s.overlap == 1.0
    err = sorted([abs(4 - 40) / 40, abs(1 - 12) / 12, abs(2 - 25) / 25])
    assert s.median_error == pytest.approx(err[1])
    assert s.max_error == pytest.approx(err[2])
    s = order_scores([1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 4.0, 3.0], k=2)
    assert s.spearman == pytest.approx(0.6)  # 1 - 6 * 4 / (4 * 15)
    assert s.overlap == 1.0
    s = order_scores([1.0, 2.0, 3.0], [3.0, 2.0, 1.0], k=1)
    assert s.spearman == pytest.approx(-1.0) and s.overlap == 0.0
    s = order_scores([1.0, 2.0], [1.0, 2.0], k=3)
    assert np.isnan(s.spearman) and np.isnan(s.overlap) and s.n == 2


def test_theories_on_the_diagonal_and_off_it():
    Sxx, Syx = np.diag([2.0, 1.0]), np.diag([1.0, 0.8])
    ref = jf.critical_time("jepa", [1.0, 0.8], [2.0, 1.0], 2, 1e-3)
    for th in ("pca", "gen-dual", "gen-unit", "lam", "mae"):
        b = theory_basis(th, Sxx, Syx)
        t = theory_times(th, b, "jepa", 2, 1e-3)
        own = np.argmax(np.abs(b.vectors), axis=0)  # which axis each feature is
        assert np.allclose(t, ref[own], rtol=1e-12), th
    b = theory_basis("gen-sxx", Sxx, Syx)
    assert np.allclose(b.var, 1.0) and np.allclose(b.lam, b.rho)
    u = theory_basis("cited", Sxx, Syx)  # gen-unit's lam, rho
    c = theory_times("cited", u, "jepa", 2, 1e-4)
    assert np.allclose(c, 1.0 / (u.lam * u.rho**2 * 1e-2))
    assert set(THEORIES) == {"pca", "gen-dual", "gen-unit", "gen-sxx", "lam", "mae", "cited"}


def test_dual_offdiag_and_grids():
    A = np.array([[1.0, 0.6], [0.0, 0.8]])
    G = A.T @ A
    want = np.sqrt(2 * G[0, 1] ** 2) / np.linalg.norm(np.diag(G))
    assert dual_offdiag(np.eye(2)[None] * 3.0, A)[0] == pytest.approx(want)
    t = time_grid([2.0, 50.0, 0.0, np.inf], points_per_decade=10)
    assert t[0] == 0 and t[-1] == pytest.approx(500.0) and t[1] == pytest.approx(5e-4)
    extra = refined_times(t, np.array([3.0, np.inf]))
    assert extra.size == 33 and abs(extra.mean() - 3.0) < 1e-9


# -- the stiff solver --------------------------------------------------------------------------


def _balanced_layers(depth, d, seed):
    rng = np.random.default_rng(seed)
    R = [random_rotation(d, seed=seed + a) for a in range(depth + 1)]
    s = rng.uniform(0.3, 1.2, d)
    return np.stack([R[a + 1] @ np.diag(s) @ R[a].T for a in range(depth)])


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_reduced_field_is_the_layers_chain_rule(objective):
    depth, d = 3, 4
    data = jf.noncommuting(VAR, RHO, 0.4, seed=0)
    Sxx, Syx = np.asarray(data.Sxx), np.asarray(data.Syx)
    W = _balanced_layers(depth, d, 3)
    V = np.random.default_rng(1).normal(size=(d, d))
    args = (Sxx, Syx, np.zeros((d, d)), np.ones(depth), 0.0)
    dW, dV, _ = full_flow_field(objective, "stopgrad", 0.0, (W, V, None), args)
    dW = np.asarray(dW)
    dE = sum(
        np.linalg.multi_dot(
            [np.eye(d)]
            + [W[b] for b in range(depth - 1, a, -1)]
            + [dW[a]]
            + [W[b] for b in range(a - 1, -1, -1)]
        )
        for a in range(depth)
    )
    E = W[2] @ W[1] @ W[0]
    rE, rV = reduced_field(objective, depth, E, V, Sxx, Syx)
    assert np.allclose(rE, dE, rtol=1e-12, atol=1e-12)
    assert np.allclose(rV, np.asarray(dV), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "objective, target, depth, t_end",
    [("jepa", "stopgrad", 2, 1500.0), ("mae", "stopgrad", 3, 150.0), ("jepa", "ema", 2, 1500.0)],
)
def test_stiff_flow_against_full_flow(objective, target, depth, t_end):
    data = jf.noncommuting(VAR, RHO, 0.3, seed=1)
    eps = 1e-2
    u0 = eps ** (1.0 / depth)
    t = np.geomspace(1.0, t_end, 60)
    ff = jf.full_flow(
        objective,
        data,
        u0 * np.eye(4)[None].repeat(depth, 0),
        u0 * np.eye(4),
        depth,
        t,
        np.ones(4),
        target=target,
        tau=1.0,
    )
    sf = stiff_flow(objective, data.Sxx, data.Syx, depth, eps, t, target=target, tau=1.0)
    W = np.asarray(ff.latent)  # U = I
    assert ff.ok and sf.ok
    assert np.abs(sf.wbar - W).max() <= 1e-6 * np.abs(W).max()
    assert np.allclose(sf.wbar_at(t[[10, 40]]), sf.wbar[[10, 40]], rtol=1e-12, atol=1e-15)


def test_stiff_flow_is_scipys_lsoda_and_stops_at_its_step_budget():
    """Without a budget: ``scipy.integrate.solve_ivp`` (LSODA) to the bit; with one, the
    solve stops after that many steps, says so, and its dense output up to where it stopped
    is the unbudgeted solve's."""
    from scipy.integrate import solve_ivp

    data = jf.noncommuting(VAR, RHO, 0.3, seed=1)
    Sxx, Syx, depth, eps = np.asarray(data.Sxx), np.asarray(data.Syx), 2, 1e-2
    t = np.geomspace(1.0, 1500.0, 40)
    full = stiff_flow("jepa", Sxx, Syx, depth, eps, t)
    u0 = eps ** (1.0 / depth)
    y0 = np.concatenate([u0**depth * np.eye(4).ravel(), u0 * np.eye(4).ravel()])
    f = lambda _, y: reduced_flat(y, Sxx, Syx, depth)  # noqa: E731
    ref = solve_ivp(
        f,
        (0.0, t[-1]),
        y0,
        method="LSODA",
        dense_output=True,
        rtol=1e-8,
        atol=1e-12 * u0,
        jac=lambda _, y: reduced_jacobian(
            "jepa", depth, y[:16].reshape(4, 4), y[16:].reshape(4, 4), Sxx, Syx
        ),
    )
    assert full.ok and full.status == jf.Status.SUCCESSFUL and full.nfev == ref.nfev
    assert np.abs(full.wbar - np.moveaxis(ref.sol(t)[:16], 0, -1).reshape(-1, 4, 4)).max() == 0.0
    short = stiff_flow("jepa", Sxx, Syx, depth, eps, t, max_steps=50)
    assert (short.status, short.steps, short.ok) == (jf.Status.MAX_STEPS_REACHED, 50, False)
    assert 0.0 < short.t_reached < t[-1] and np.isnan(short.wbar).all()
    mid = np.linspace(0.0, short.t_reached, 7)
    assert np.array_equal(short.wbar_at(mid), full.wbar_at(mid))
    with pytest.raises(ValueError, match="max_steps"):
        stiff_flow("jepa", Sxx, Syx, depth, eps, t, max_steps=0)
    bdf = stiff_flow("jepa", Sxx, Syx, depth, eps, t, method="BDF")
    assert bdf.ok and bdf.method == "BDF"
    assert np.abs(bdf.wbar - full.wbar).max() <= 1e-6 * np.abs(full.wbar).max()


def reduced_flat(y, Sxx, Syx, depth, objective="jepa"):
    d = Sxx.shape[0]
    E, V = y[: d * d].reshape(d, d), y[d * d :].reshape(d, d)
    dE, dV = reduced_field(objective, depth, E, V, Sxx, Syx)
    return np.concatenate([dE.ravel(), dV.ravel()])


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_reduced_jacobian_is_exact_at_fixed_points_and_at_depth_one(objective):
    """Against forward differences of ``reduced_field``: equal (to the differences' own
    error) at fixed points (``G = 0``, any depth, non-commuting data, a full ``E``) and
    everywhere at depth 1 (``K = 1``); elsewhere it leaves out the SVD's derivative times
    ``G``, which must show (the check can fail)."""
    rng = np.random.default_rng(3)
    data = jf.noncommuting(VAR, RHO, 0.4, seed=2)
    Sxx, Syx, d = np.asarray(data.Sxx), np.asarray(data.Syx), 4
    E = rng.normal(size=(d, d))
    # R = V E Sxx - E Syx = 0 (JEPA) or V E Sxx - Syx = 0 (MAE)
    rhs = E @ Syx if objective == "jepa" else Syx
    V_fixed = rhs @ np.linalg.inv(E @ Sxx)
    V_any = rng.normal(size=(d, d))
    for depth, V, exact in [(2, V_fixed, True), (4, V_fixed, True), (1, V_any, True),
                            (3, V_any, False)]:  # fmt: skip
        y = np.concatenate([E.ravel(), V.ravel()])
        ref = _fd_jac(lambda _, y: reduced_flat(y, Sxx, Syx, depth, objective), y)
        got = reduced_jacobian(objective, depth, E, V, Sxx, Syx)
        err = np.abs(got - ref).max() / np.abs(ref).max()
        assert (err < 1e-6) if exact else (err > 1e-3), (depth, err)


def _fd_jac(f, y):
    """Forward differences as the module documents them (step 1.5e-8 of each entry's scale)."""
    h = 1.5e-8 * np.maximum(np.abs(y), np.mean(np.abs(y)))
    f0 = f(0.0, y)
    return np.stack([(f(0.0, y + h[i] * np.eye(y.size)[i]) - f0) / h[i] for i in range(y.size)], 1)


def test_claims_count_flows_that_did_not_settle():
    """A data set whose flows did not settle has no reference: its medians are NaN, the
    claim does not hold, and the number of such flows is recorded."""
    from jepa_flow._reproduce._offdiag_claims import claim_all_sets

    def row(name, ok, g, c, status=0):
        scores = {"gen-dual": {"spearman": g}, "pca": {"spearman": c}}
        return {
            "set": name,
            "objective": "jepa",
            "depth": 2,
            "ok": ok,
            "status": status,
            "scores": scores,
        }

    p = {"real": {"sets": ["a", "b"]}}
    real = [
        row("a", True, 0.9, 0.5),
        row("a", True, 1.0, 0.2),
        row("b", False, None, None, int(jf.Status.MAX_STEPS_REACHED)),
    ]
    failed = row("b", False, None, None, int(jf.Status.FAILED))  # a failure is not "unsettled"
    c = claim_all_sets(real + [failed], p)
    assert c["held"] is False
    assert c["values"]["unsettled_configurations"] == {"a": 0, "b": 1}
    assert c["values"]["median_spearman"]["a"] == {"gen-dual": 0.95, "pca": pytest.approx(0.35)}
    assert claim_all_sets(real[:2], {"real": {"sets": ["a"]}})["held"] is True


def test_digits_claim_is_judged_by_its_complete_groups():
    """A complete group that fails decides the claim; otherwise a group with missing
    configurations leaves it unjudged."""
    from jepa_flow._reproduce._offdiag_claims import claim_digits

    def row(k, g, c):
        scores = {"gen-dual": {"spearman": g}, "pca": {"spearman": c}}
        return {
            "set": "digits",
            "objective": "jepa",
            "depth": 3,
            "n_features": k,
            "power": 1.0,
            "ok": True,
            "scores": scores,
        }

    p = {"real": {"n_features": [8, 16], "power": [1.0]}}
    gone = [{"set": "digits", "n_features": 16, "power": 1.0, "objective": "jepa", "depth": 4}]
    tie = claim_digits([row(8, 1.0, 1.0), row(16, 0.9, 0.1)], p, gone)
    assert tie["held"] is False and "judged" not in tie["values"]
    assert tie["values"]["failed_groups"] == ["n8_p1"]
    fine = claim_digits([row(8, 1.0, 0.2), row(16, 0.9, 0.1)], p, gone)
    assert fine["held"] is False and fine["values"]["judged"] is False
    assert fine["values"]["incomplete_groups"] == ["n16_p1"]
    assert claim_digits([row(8, 1.0, 0.2), row(16, 0.9, 0.1)], p)["held"] is True


# -- experiment 10 at the tiny level ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp10")
    numbers = exp10.run(out, exp10.PARAMS["tiny"], log=lambda *_: None)
    return out, numbers


def test_tiny_run_writes_its_figures_and_no_cache(tiny):
    out, numbers = tiny
    assert numbers["figures"] and all((out / f).exists() for f in numbers["figures"])
    assert not (out / "cache").exists()
    rows = json.loads(gzip.decompress((out / "synthetic.json.gz").read_bytes()))
    p = exp10.PARAMS["tiny"]
    n = len(p["spectra"]) * len(p["seeds"]) * len(p["theta_deg"]) * len(p["depths"])
    assert len(rows) == n * len(p["eps"]) * len(p["objectives"])
    assert numbers["failed_solves"] == 0 and numbers["unsettled_flows"] == []
    assert "## Synthetic family" in (out / "tables.md").read_text()


def test_tiny_theta_zero_is_exact(tiny):
    """Claim 1's check: on the diagonal each basis theory is the flow, up to 1e-3."""
    _, numbers = tiny
    c = next(c for c in numbers["claims"] if c["id"] == "10.1.exact_on_diagonal")
    worst = c["values"]["worst_by_theory"]
    for th in ("pca", "gen-dual", "gen-unit", "lam", "mae"):
        assert worst[th] <= 1e-3, th
    # gen-sxx rescales var to 1 and lam to rho: not the diagonal's parameters
    assert worst["gen-sxx"] > 0.1
    assert c["values"]["configurations"] > 0


# -- compare: the reference it used and its order scores ---------------------------------------


def test_compare_records_reference_and_order_scores():
    data = jf.gaussian(Sxx=[2.0, 1.0, 0.5], Syx=[1.0, 0.8, 0.1])
    c = jf.compare(jf.train(data, jf.TrainConfig(objective="mae", eta=2e-3, t_max=150.0)))
    assert c.reference.tolist() == [[["per-feature theory"]]]
    t_th, t_tr = c.t_star_reference[0, 0, 0], c.t_star_training[0, 0, 0]
    ref = order_scores(t_th, t_tr, 2)
    assert c.rank_correlation[0, 0, 0] == pytest.approx(ref.spearman) == pytest.approx(1.0)
    assert c.top_k_overlap[0, 0, 0] == 1.0
    assert set(c.summary()) >= {"reference", "rank_correlation", "top_k_overlap"}
