"""``jepa-flow reproduce`` at the tiny level for experiments 4-9 (the noisy and slow
features, and the training-heavy 6-9): the second tier (``make test-slow``; about 120 s,
compilation-bound, on one core).

As ``test_reproduce.py`` (which runs experiments 1-3 and 10 in the first tier): one run,
then each claim's numbers checked against an independent direct computation. The two
checks of the run as a whole (``test_every_experiment_wrote_...`` and the committed
schema) are imported from there and run here on this module's ``results``.
"""

import numpy as np
import pytest
from test_reproduce import (  # noqa: F401  (the two imported tests run on this run)
    EPS,
    LAM,
    VAR,
    _claim,
    reproduce_tiny,
    test_committed_numbers_have_the_schema_reproduce_writes_now,
    test_every_experiment_wrote_figures_numbers_and_claims,
)

import jepa_flow as jf

pytestmark = pytest.mark.slow

SECOND_TIER = (4, 5, 6, 7, 8, 9)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return reproduce_tiny(tmp_path_factory, SECOND_TIER)


def test_training_errors_recomputed(results):
    _, claims, numbers = results
    worst = 0.0
    for r in numbers[6]["runs"]:
        lam, var = {1: (LAM, VAR)}.get(r["setup"], (None, None))
        if lam is not None:
            ref = np.asarray(jf.critical_time(r["objective"], lam, var, r["depth"], EPS))
            np.testing.assert_allclose(r["t_star_theory"], ref, rtol=1e-12)
        tt, th = np.asarray(r["t_star_training"]), np.asarray(r["t_star_theory"])
        worst = max(worst, float(np.max(np.abs(tt - th) / th)))
    assert _claim(claims, "6.max_rel_error")["values"]["max_rel_error"] == pytest.approx(worst)
    assert worst < 1e-2
    for r in numbers[6]["minibatch_runs"]:  # minibatch SGD, setup 1 (the pair): capture of B
        assert r["setup"] == 1
        ref = np.asarray(jf.critical_time(r["objective"], LAM, VAR, r["depth"], EPS))
        np.testing.assert_allclose(r["t_star_theory"], ref, rtol=1e-12)
        if r["objective"] == "jepa":  # A is learned first at depth 1: B is captured, early
            assert r["capture_predicted"] == [1] and r["t_star_training"][1] < 0.95 * ref[1]


def test_beyond_and_capture_recomputed(results):
    _, claims, numbers = results
    fr = numbers[7]["frozen"]
    for name in ("random", "jepa_trained"):
        c = np.asarray(fr[name]["c"])
        ref = np.asarray(jf.critical_time("mae", c * LAM, VAR, fr["student_depth"], EPS))
        np.testing.assert_allclose(fr[name]["t_star_theory"], ref, rtol=1e-12)
        np.testing.assert_allclose(fr[name]["t_star_training"], ref, rtol=1e-2)
    # the JEPA teacher's diagonal is rho^L_T
    np.testing.assert_allclose(
        fr["jepa_trained"]["c"], (LAM / VAR) ** fr["teacher_depth"], rtol=1e-2
    )
    gp = numbers[7]["general_phase"]  # the general-flow phase diagram (panel f)
    depth, ratio = np.asarray(gp["depth"], float), np.asarray(gp["init_ratio"])
    i1 = int(np.flatnonzero(ratio == 1.0)[0])
    balanced = jf.critical_time("jepa", LAM, VAR, depth[:, None], EPS)
    np.testing.assert_array_equal(
        np.asarray(gp["first_vs_init_ratio"])[:, i1], np.argmin(balanced, 1)
    )
    w0 = (EPS ** (1 / depth))[:, None, None]
    expected = jf.collapses(ratio[None, :, None] * w0, w0, LAM / VAR)
    np.testing.assert_array_equal(gp["collapsed_vs_init_ratio"], expected)
    assert expected.any() and not expected.all()
    rates = _claim(claims, "8.growth_rate")["values"]
    rho = LAM / VAR
    for key, v in rates.items():
        if key.startswith("jepa_L"):
            L = int(key[-1])
            assert v["gamma"] == pytest.approx(VAR[1] * rho[0] ** (2 * L - 1) * (rho[1] - rho[0]))
            assert v["measured"] == pytest.approx(v["gamma"], rel=0.05)
    cap = numbers[8]["t_star_B"]
    t_b = float(jf.critical_time("jepa", LAM, VAR, 2, EPS)[1])
    assert cap["jepa"]["theory"] == pytest.approx(t_b)
    assert max(cap["jepa"]["training"]) < cap["jepa"]["theory"]
    col = numbers[8]["collapse"]
    v0, w0 = np.meshgrid(col["v0"], col["w0"], indexing="ij")
    far = np.abs(v0**2 - w0**2 - col["rho"] ** 2) > 0.05
    collapsed = np.asarray(col["w_final"]) < 1e-3
    np.testing.assert_array_equal(collapsed[far], (v0**2 - w0**2 > col["rho"] ** 2)[far])


def test_departure_sweep_recomputed(results):
    """Experiment 8's SGD departure claims, recomputed row by row from the sweep's chunks."""
    out, claims, numbers = results
    dep = numbers[8]["departure"]
    cols = jf.load_sweep(out / "8_capture_collapse" / dep["sweep_dir"]).columns()
    eps, depth = dep["eps"], dep["depth"]
    assert depth == 2 and np.all(cols["depth"] == depth)
    etas = np.asarray(dep["eta"])
    batches = [np.inf if b == "population" else float(b) for b in dep["batch"]]
    assert batches == sorted(batches) and batches[-1] == np.inf
    # the reference of the population runs is the balanced per-feature theory (theory §4)
    pop = (cols["batch"] == np.inf) & ~cols["use_full"].any(axis=1)
    assert pop.any()
    for obj in ("jepa", "mae"):
        m = pop & (cols["objective"] == obj)
        ref = np.asarray(jf.critical_time(obj, LAM, VAR, depth, eps))
        np.testing.assert_allclose(cols["t_theory"][m], np.broadcast_to(ref, (m.sum(), 2)))
    first, small, at_max = {}, {}, {}
    for obj in ("jepa", "mae"):
        med = np.full((len(batches), etas.size), np.nan)
        departed = np.zeros(med.shape, bool)
        for i, b in enumerate(batches):
            for k, eta in enumerate(etas):
                rows = (cols["objective"] == obj) & (cols["batch"] == b) & (cols["eta"] == eta)
                assert rows.sum() == dep["seeds"]
                worst = [
                    float(np.max(e)) if f and not np.isnan(e).any() else np.inf
                    for e, f in zip(cols["rel_error"][rows], cols["followed"][rows])
                ]
                med[i, k] = np.median(worst)
                departed[i, k] = not cols["followed"][rows].all() or not med[i, k] <= 0.05
                if i == len(batches) - 1 and k == 0:  # population loss, smallest eta
                    t_tr = cols["t_train"][rows]
                    ref = np.asarray(jf.critical_time(obj, LAM, VAR, depth, eps))
                    small[obj] = (
                        float(np.median(np.max(np.abs(t_tr - ref) / ref, axis=1))),
                        float(cols["order_match"][rows].mean()),
                    )
        np.testing.assert_allclose(
            np.asarray(dep[obj]["median_error"], float), med, rtol=1e-12, atol=0
        )
        np.testing.assert_array_equal(dep[obj]["departed"], departed)
        first[obj] = [int(np.argmax(d)) if d.any() else etas.size for d in departed]
        at_max[obj] = departed[:, -1]
    c = _claim(claims, "8.departure_small_eta")
    np.testing.assert_allclose(c["values"]["median_error"], [small[o][0] for o in ("jepa", "mae")])
    assert c["values"]["order_fraction"] == [small[o][1] for o in ("jepa", "mae")]
    assert c["held"] == all(e < 0.02 and f == 1.0 for e, f in small.values())
    c = _claim(claims, "8.departure_boundary_monotone")
    for obj in ("jepa", "mae"):
        assert c["values"][f"{obj}_first_departed_index"] == first[obj]
    assert c["held"] == all(np.all(np.diff(first[o]) >= 0) for o in first)
    c = _claim(claims, "8.departure_large_eta")
    assert c["held"] == any(v.any() for v in at_max.values())
    assert (out / "8_capture_collapse" / "departure.png").read_bytes()[:4] == b"\x89PNG"


def test_departure_sweep_kept_only_to_resume(results, tmp_path):
    """The same sweep is kept (resume); another level's, or any after a finished run, is not."""
    import shutil

    from jepa_flow._reproduce import exp8_capture as exp8

    out, _, _ = results
    exp = out / "8_capture_collapse"
    for level, finished, kept in (
        ("tiny", False, True),
        ("quick", False, False),
        ("tiny", True, False),
    ):
        case = tmp_path / f"{level}_{finished}"
        shutil.copytree(exp / exp8.DEPARTURE_DIR, case / exp8.DEPARTURE_DIR)
        if finished:
            shutil.copy(exp / "numbers.json", case / "numbers.json")
        exp8.prepare_sweep_dir(case, exp8.departure_config(exp8.PARAMS[level]))
        assert (case / exp8.DEPARTURE_DIR).exists() == kept, (level, finished)
        assert not (case / "numbers.json").exists()


def test_real_data_numbers_recompute(results):
    from scipy.stats import spearmanr

    _, claims, numbers = results
    num = numbers[9]
    for name in num["params"]["k_scored"] and [
        k for k in num if k in ("patches", "digits", "membrane")
    ]:
        r = num[name]
        lam, var = np.array(r["lam"]), np.array(r["var"])
        np.testing.assert_allclose(lam / var, r["rho"], rtol=1e-12)
        for obj in ("jepa", "mae"):
            o = r[obj]
            t_th = np.array(o["t_star_theory"], float)
            L, eps = num["params"]["depth"], num["params"]["eps"]
            np.testing.assert_allclose(t_th, jf.critical_time(obj, lam, var, L, eps), rtol=1e-12)
            S = o["scored"]
            assert len(S) == num["params"]["k_scored"] and np.all(t_th[S] > 0)
            for t_lin, sp in zip(o["t_linear"], o["spearman_linear"]):
                t_lin = np.array(t_lin, float)[S]
                t_lin = np.where(np.isfinite(t_lin), t_lin, 10 * o["t_max"])
                assert sp == pytest.approx(spearmanr(t_th[S], t_lin).statistic, abs=1e-12)
            c = _claim(claims, f"9a.{name}.{obj}")
            assert c["held"] == (
                np.mean(o["spearman_linear"]) >= num["params"]["min_spearman_linear"]
            )


def test_noisy_and_slow_features_recomputed(results):
    _, claims, numbers = results
    n4 = numbers[4]
    rho, lam, var = (np.asarray(n4[k]) for k in ("rho", "lam", "var"))
    d = np.asarray(n4["depth"], float)
    v = _claim(claims, "4.final_weights")["values"]
    np.testing.assert_allclose(v["jepa"], rho.min() ** d, rtol=1e-12)
    np.testing.assert_allclose(v["mae"], rho.min() ** (d / (d + 1)), rtol=1e-12)
    np.testing.assert_allclose(
        n4["jepa"]["t_star"], jf.critical_time("jepa", lam, var, d[:, None], EPS), rtol=1e-12
    )
    n5 = numbers[5]
    a, var5 = np.asarray(n5["a"]), np.asarray(n5["var"])
    t = np.asarray(jf.critical_time("jepa", a * var5, var5, np.asarray(n5["depth"])[:, None], EPS))
    assert [list(np.argsort(r)) for r in t][-1] == list(range(a.size))  # slow first, deepest
    assert [list(np.argsort(r)) for r in t][0] == list(range(a.size))[::-1]
