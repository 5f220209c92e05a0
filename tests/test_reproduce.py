"""``jepa-flow reproduce`` end to end at the test-only ``tiny`` level.

One run of experiments 1-3 and 10 (module fixture, about 20 s on one core,
compilation-bound), then each claim's numbers are checked against an
independent direct computation (``critical_time``, ``fixed_point``, the
closed-form rates of theory §7), so that no claim can be a copied constant.
Experiments 4-9 (the noisy and slow features, and the training-heavy 6-9: about
120 s) are checked the same way in ``test_reproduce_training.py``, in the second
tier (``make test-slow``).
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


FIRST_TIER = (1, 2, 3, 10)  # the rest: test_reproduce_training.py


def reproduce_tiny(tmp_path_factory, only):
    """``reproduce --level tiny --only ...``: the output directory, claims.json, and
    ``{experiment: numbers.json}``."""
    out = tmp_path_factory.mktemp("results")
    assert main(["reproduce", "--level", "tiny", "--out", str(out), "--only", *map(str, only)]) == 0
    claims = json.loads((out / "claims.json").read_text())
    numbers = {n: json.loads((out / EXPERIMENTS[n][1] / "numbers.json").read_text()) for n in only}
    return out, claims, numbers


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return reproduce_tiny(tmp_path_factory, FIRST_TIER)


def _claim(claims, cid):
    (c,) = [c for c in claims["claims"] if c["id"] == cid]
    return c


def test_every_experiment_wrote_figures_numbers_and_claims(results):
    out, claims, numbers = results
    assert set(claims["experiments"]) == {str(n) for n in numbers}
    for n, num in numbers.items():
        name = EXPERIMENTS[n][1]
        assert num["level"] == "tiny" and num["claims"], n
        for fig in num["figures"]:
            assert (out / name / fig).read_bytes()[:4] == b"\x89PNG", (name, fig)
    assert claims["n_claims"] == sum(len(v["claims"]) for v in numbers.values()) >= 3 * len(numbers)
    # experiments 9 and 10 (real data, the off-diagonal theories) record what they find,
    # held or not; checked below and in test_exp10
    failed = [c["id"] for c in claims["claims"] if not c["held"] and c["experiment"] not in (9, 10)]
    assert not failed, failed
    assert not list(out.rglob("*.tmp"))  # atomic writes left nothing behind


def test_resume_skips_and_bad_only_is_a_usage_error(results, capsys):
    out, claims, _ = results
    capsys.readouterr()
    assert main(["reproduce", "--level", "tiny", "--out", str(out), "--only", "1", "3"]) == 0
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
    for n in numbers:
        name = EXPERIMENTS[n][1]
        committed = json.loads((COMMITTED / name / "numbers.json").read_text())
        assert committed["level"] == "full", name
        a, b = _schema(committed), _schema(numbers[n])
        for k in LEVEL_DEPENDENT:
            a.pop(k, None), b.pop(k, None)
        diffs += [f"{name}{d}" for d in _differences(a, b)]
    committed = json.loads((COMMITTED / "claims.json").read_text())
    assert {c["id"] for c in committed["claims"]} >= {c["id"] for c in results[1]["claims"]}
    assert not diffs, "committed results/ are stale (rerun reproduce):\n" + "\n".join(diffs)
