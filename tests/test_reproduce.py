"""``jepa-flow reproduce`` end to end at the test-only ``tiny`` level.

One run of every experiment (module fixture, about a minute on two cores,
compilation-bound), then each claim's numbers are checked against an
independent direct computation (``critical_time``, ``fixed_point``, the
closed-form rates of theory §7), so that no claim can be a copied constant.
"""

import json
from pathlib import Path

import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow._cli import main
from jepa_flow._reproduce import EXPERIMENTS

EPS = 1e-3
LAM, VAR = np.array([1.0, 0.8]), np.array([2.0, 1.0])


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert main(["reproduce", "--level", "tiny", "--out", str(out)]) == 0
    claims = json.loads((out / "claims.json").read_text())
    numbers = {
        n: json.loads((out / name / "numbers.json").read_text())
        for n, (_, name) in EXPERIMENTS.items()
    }
    return out, claims, numbers


def _claim(claims, cid):
    (c,) = [c for c in claims["claims"] if c["id"] == cid]
    return c


def test_every_experiment_wrote_figures_numbers_and_claims(results):
    out, claims, numbers = results
    assert set(claims["experiments"]) == {str(n) for n in EXPERIMENTS}
    for n, (_, name) in EXPERIMENTS.items():
        num = numbers[n]
        assert num["level"] == "tiny" and num["claims"], n
        for fig in num["figures"]:
            assert (out / name / fig).read_bytes()[:4] == b"\x89PNG", (name, fig)
    assert claims["n_claims"] == sum(len(v["claims"]) for v in numbers.values()) >= 30
    # experiments 9 and 10 (real data, the off-diagonal theories) record what they find,
    # held or not; checked below and in test_exp10
    failed = [c["id"] for c in claims["claims"] if not c["held"] and c["experiment"] not in (9, 10)]
    assert not failed, failed
    assert not list(out.rglob("*.tmp"))  # atomic writes left nothing behind


def test_resume_skips_and_bad_only_is_a_usage_error(results, capsys):
    out, claims, _ = results
    capsys.readouterr()
    assert main(["reproduce", "--level", "tiny", "--out", str(out), "--only", "1", "5"]) == 0
    text = capsys.readouterr().out
    assert text.count("skipped") == 2
    assert json.loads((out / "claims.json").read_text())["claims"] == claims["claims"]
    assert main(["reproduce", "--level", "tiny", "--out", str(out), "--only", "11"]) == 2
    assert "no experiment [11]" in capsys.readouterr().err


def test_order_reversal_against_critical_time(results):
    _, claims, numbers = results
    depths = np.asarray(numbers[1]["depth"], float)
    for obj in ("jepa", "mae"):
        ref = np.asarray(jf.critical_time(obj, LAM, VAR, depths[:, None], EPS))
        got = np.stack([numbers[1]["t_star"][obj]["A"], numbers[1]["t_star"][obj]["B"]], -1)
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    # independent flip depths at every eps (first depth where B < A)
    flip = _claim(claims, "1.flip_depth_vs_eps")["values"]
    for e, f in zip(flip["eps"], flip["flip_depth_jepa"]):
        t = np.asarray(jf.critical_time("jepa", LAM, VAR, np.arange(1, 25.0)[:, None], e))
        assert f == 1 + int(np.argmax(t[:, 1] < t[:, 0]))
    assert _claim(claims, "1.jepa_flip_depth")["values"]["flip_depth"] == 4


def test_critical_time_series_error_recomputed(results):
    _, _, numbers = results
    for obj in ("jepa", "mae"):
        s = numbers[2][obj]["series_rel_error"]
        d, e = np.asarray(s["depth"])[:, None], np.asarray(s["eps"])
        ex = np.asarray(jf.critical_time(obj, 1.0, 2.0, d, e))
        se = np.asarray(jf.critical_time(obj, 1.0, 2.0, d, e, method="series"))
        np.testing.assert_allclose(s["rel_error"], np.abs(se - ex) / ex, rtol=1e-9, atol=1e-15)
        tr = numbers[2][obj]["training"]["depth"]
        np.testing.assert_allclose(tr["t_star_training"], tr["t_star_exact"], rtol=1e-2)


def test_phase_disagreement_recomputed_without_the_sweep_engine(results):
    _, claims, numbers = results
    n3 = numbers[3]
    lam_b = np.asarray(n3["lam_ratio"])[:, None] * 1.0
    rho_b = np.asarray(n3["rho_ratio"])[None, :] * 0.5
    frac = []
    for L in n3["depth"]:
        first = {
            o: np.asarray(jf.critical_time(o, lam_b, lam_b / rho_b, L, n3["eps"][0]))
            < np.asarray(jf.critical_time(o, 1.0, 2.0, L, n3["eps"][0]))
            for o in ("jepa", "mae")
        }
        frac.append(np.mean(first["jepa"] != first["mae"]))
    np.testing.assert_allclose(
        _claim(claims, "3.disagreement")["values"]["fraction"], frac, atol=1e-12
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


# -- the committed results are what reproduce writes now (issue 18.6) -------------------------

COMMITTED = Path(__file__).resolve().parents[1] / "results"


def _schema(x):
    """The shape of a JSON value: keys of objects (recursively), kinds of leaves. Lists are
    one kind whatever their length and items (their sizes follow the level)."""
    if isinstance(x, dict):
        return {k: _schema(v) for k, v in x.items()}
    if isinstance(x, list):
        return "list"
    if isinstance(x, bool):
        return "bool"
    if x is None or isinstance(x, (int, float)):
        return "number"  # NaN and inf are written as null
    return type(x).__name__


def _differences(committed, now, path=""):
    """What the current code writes that the committed file lacks or writes differently.
    (Keys only in the committed file may be ones the tiny level does not compute.)"""
    if isinstance(committed, dict) and isinstance(now, dict):
        out = [f"{path}.{k}: not in the committed file" for k in now.keys() - committed.keys()]
        for k in now.keys() & committed.keys():
            out += _differences(committed[k], now[k], f"{path}.{k}")
        return out
    return [] if committed == now else [f"{path}: committed {committed}, written now {now}"]


# the parameters are the level's own
LEVEL_DEPENDENT = {"params", "level"}


def test_committed_numbers_have_the_schema_reproduce_writes_now(results):
    out, _, numbers = results
    diffs = []
    for n, (_, name) in EXPERIMENTS.items():
        committed = json.loads((COMMITTED / name / "numbers.json").read_text())
        assert committed["level"] == "full", name
        a, b = _schema(committed), _schema(numbers[n])
        for k in LEVEL_DEPENDENT:
            a.pop(k, None), b.pop(k, None)
        diffs += [f"{name}{d}" for d in _differences(a, b)]
    committed = json.loads((COMMITTED / "claims.json").read_text())
    assert {c["id"] for c in committed["claims"]} >= {c["id"] for c in results[1]["claims"]}
    assert not diffs, "committed results/ are stale (rerun reproduce):\n" + "\n".join(diffs)
