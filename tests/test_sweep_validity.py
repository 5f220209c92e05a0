"""The ``[validity]`` sweep (issue 15 point 5): theories against the full-matrix flow as a sweep.

Reference: every configuration recomputed here straight from the library's
scoring (``noncommuting`` -> ``predictions`` -> ``time_grid`` ->
``observe_flow`` -> ``score_observation``, experiment 10's path), row by row
from ``itertools.product`` of the axes, not through the sweep's chunks. At
``theta = 0`` the covariances commute and the basis theories are exact
(docs/preregistration/exp10.md, claim 1).
"""

import itertools
import json

import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow._sweeps import _run
from jepa_flow._theory._validity import THEORIES
from jepa_flow._training._real import analyze
from jepa_flow._training._synthetic import noncommuting
from jepa_flow._training._validity import (
    observe_flow,
    predictions,
    score_observation,
    time_grid,
)

BASE = """
[validity]
objective = ["jepa", "mae"]
theta = [0.0, 20.0]
depth = [1, 2]
eps = 1e-2
seed = [1, 0]
d = 4
var = [1.0, 0.1]
rho = [0.3, 0.9]
"""
SPECTRA = {  # name -> var's and rho's ends, d
    "default": ((1.0, 0.1), (0.3, 0.9), 4),
    "narrow": ((1.0, 0.1), (0.3, 0.9), 3),
    "wide": ((1.0, 0.01), (0.2, 0.95), 3),
}
FLOWS = {"jepa": ("jepa", "stopgrad"), "mae": ("mae", "stopgrad")}
OUTPUTS = ("spearman", "overlap", "median_error", "max_error", "n", "nonorthogonality")
OUTPUTS += ("offdiag", "offdiag_dual", "n_learned", "ok")
BOTH = "var = [1.0, 0.1]\nrho = [0.3, 0.9]"  # the one spectrum of BASE
CHUNK = 3  # three chunks per objective: 3 + 3 + 2 rows


def _config(text=BASE, **replace):
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return jf.parse_sweep_config(text)


def _reference_row(label, spectrum, theta, depth, eps, seed):
    """One configuration through ``_training._validity`` directly (as experiment 10)."""
    (var0, var1), (rho0, rho1), d = SPECTRA[spectrum]
    var, rho = np.geomspace(var0, var1, d), np.linspace(rho0, rho1, d)
    data = noncommuting(var, rho, np.deg2rad(theta), seed=seed)
    Sxx, Syx = np.asarray(data.Sxx), np.asarray(data.Syx)
    objective, target = FLOWS[label]
    bases, t_star = predictions(Sxx, Syx, objective, depth, eps, target=target)
    t = time_grid(np.concatenate(list(t_star.values())), 300)
    dual = bases["gen-dual"].dual
    obs = observe_flow(objective, Sxx, Syx, depth, eps, t, target=target, dual=dual)
    scored = score_observation(obs.time, obs.directions, bases, t_star, 2)
    row = {
        s: [getattr(scored[n][3], s) for n in THEORIES]
        for s in ("spearman", "overlap", "median_error", "max_error", "n")
    }
    row["nonorthogonality"] = bases["gen-dual"].nonorthogonality
    row["offdiag"] = analyze(data).offdiag
    row["offdiag_dual"] = obs.offdiag
    row["n_learned"] = int(np.isfinite(obs.time).sum())
    row["ok"] = obs.ok
    return row


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("validity") / "run"
    summary = jf.run_sweep(_config(), out, chunk_size=CHUNK)
    return out, summary, jf.load_sweep(out)


def test_columns_equal_the_library_scores_of_each_configuration(swept):
    _, summary, r = swept
    assert summary.n_configs == 16 and summary.n_chunks == 6 and summary.failed == 0
    axes = (("jepa", "mae"), ("default",), (0.0, 20.0), (1, 2), (1e-2,), (1, 0))
    rows = [_reference_row(*p) for p in itertools.product(*axes)]
    assert r["objective"].tolist() == [p[0] for p in itertools.product(*axes)]
    assert r["theta"].tolist() == [p[2] for p in itertools.product(*axes)]
    assert r["seed"].tolist() == [p[5] for p in itertools.product(*axes)]
    assert [o.name for o in r.config.outputs()] == list(OUTPUTS)
    for name in OUTPUTS:
        ref = np.array([row[name] for row in rows])
        assert r[name].shape == ref.shape, name
        np.testing.assert_allclose(r[name], ref, rtol=1e-12, atol=0, err_msg=name)
    assert r["ok"].all() and (r["n_learned"] == 4).all()


def test_rows_equal_experiment_10s_own_measurement(swept):
    """The same configurations through experiment 10's code (``_reproduce._offdiag_measure``)."""
    from jepa_flow._reproduce import _offdiag_measure as m

    _, _, r = swept
    p = {"d": 4, "spectra": {"default": {"var": [1.0, 0.1], "rho": [0.3, 0.9]}}, "seeds": [1, 0]}
    p.update(theta_deg=[20.0], tau=1.0, points_per_decade=300, k=2)
    sources = m.synthetic_sources(p)
    cached = json.loads(json.dumps(m.jsonable(m.observe_group(sources, "jepa", 2, 1e-2, p))))
    rows = m.score_group(sources, cached, "jepa", 2, 1e-2, p)  # as from its cache
    at = (r["objective"] == "jepa") & (r["theta"] == 20.0) & (r["depth"] == 2)
    for row in rows:
        (i,) = np.flatnonzero(at & (r["seed"] == row["seed"]))
        for t, name in enumerate(THEORIES):
            for score in ("spearman", "overlap", "median_error", "max_error", "n"):
                want = row["scores"][name][score]
                np.testing.assert_allclose(r[score][i, t], want, rtol=1e-12, err_msg=name)
        assert r["offdiag_dual"][i] == row["offdiag_dual"]


def test_the_diagonal_case_is_exact_and_off_it_theories_differ(swept):
    _, _, r = swept
    pca, dual, cited = (THEORIES.index(n) for n in ("pca", "gen-dual", "cited"))
    diagonal = r["theta"] == 0.0
    assert (r["max_error"][diagonal, pca] < 1e-3).all()  # exp10 claim 1, on this grid
    assert (r["max_error"][diagonal, dual] < 1e-3).all()
    assert (r["nonorthogonality"][diagonal] < 1e-12).all()
    assert (r["nonorthogonality"][~diagonal] > 0.1).all()
    assert (r["max_error"][~diagonal, pca] > 0.1).all()  # off the diagonal PCA is not exact
    mae = r["objective"] == "mae"
    assert np.isnan(r["spearman"][mae, cited]).all()  # the cited formula is JEPA's only


def test_resume_after_an_interruption_gives_the_same_columns(swept, tmp_path, monkeypatch):
    out_ref, _, _ = swept
    out = tmp_path / "run"
    write, calls = _run._write_chunk, []

    def interrupted(writer, chunk, outputs):  # Ctrl-C while the second chunk is written
        if calls:
            raise KeyboardInterrupt
        calls.append(chunk)
        write(writer, chunk, outputs)

    monkeypatch.setattr(_run, "_write_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        jf.run_sweep(_config(), out, chunk_size=CHUNK)
    monkeypatch.setattr(_run, "_write_chunk", write)
    with pytest.raises(ValueError, match="5 of 6 chunks are missing"):
        jf.load_sweep(out)
    summary = jf.run_sweep(_config(), out)  # the chunk size read from the directory
    assert summary.skipped == 1 and summary.computed == 13
    before = {p.name: p.read_bytes() for p in (out_ref / "columns").iterdir()}
    assert {p.name: p.read_bytes() for p in (out / "columns").iterdir()} == before
    with pytest.raises(ValueError, match="different sweep configuration"):
        jf.run_sweep(_config(**{"d = 4": "d = 5"}), out)


def test_scoring_fewer_theories_gives_their_same_columns(swept, tmp_path):
    _, _, r = swept
    config = _config(**{"d = 4": 'd = 4\ntheories = ["gen-dual", "pca"]'})
    sub = jf.run_sweep(config, tmp_path / "two")
    cols = [THEORIES.index(n) for n in ("gen-dual", "pca")]
    for name in OUTPUTS:
        full = r[name][:, cols] if r[name].ndim == 2 else r[name]
        np.testing.assert_array_equal(sub[name], full, err_msg=name)


def test_named_spectra_are_an_axis(tmp_path):
    text = BASE.replace("d = 4", "d = 3").replace(BOTH, "")
    text = text.replace('["jepa", "mae"]', '"jepa"').replace("[0.0, 20.0]", "10.0")
    text = text.replace("[1, 2]", "2").replace("[1, 0]", "0")
    text += "spectrum = {narrow = {var = [1.0, 0.1], rho = [0.3, 0.9]},"
    text += " wide = {var = [1.0, 0.01], rho = [0.2, 0.95]}}\n"
    config = jf.parse_sweep_config(text)
    assert config.describe().startswith("2 full-matrix flows (objective 1 x spectrum 2 x theta 1")
    r = jf.run_sweep(config, tmp_path / "spectra")
    assert r["spectrum"].tolist() == ["narrow", "wide"]
    for i, name in enumerate(("narrow", "wide")):
        ref = _reference_row("jepa", name, 10.0, 2, 1e-2, 0)
        for out in OUTPUTS:
            np.testing.assert_allclose(r[out][i], ref[out], rtol=1e-12, atol=0, err_msg=out)
    assert r["max_error"][0].tolist() != r["max_error"][1].tolist()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "theta = [0.0, 20.0]",
            "theta = [0.0, 200.0]",
            "validity.theta values must lie in [0, 180] degrees; got 200",
        ),
        ("depth = [1, 2]", "depth = [1, 0]", "validity.depth must be integers in [1, 64]; got 0"),
        ("eps = 1e-2", "eps = [1e-2, 1.5]", "validity.eps values must lie in (0, 1); got 1.5"),
        ("eps = 1e-2", "eps = 0.0", "validity.eps values must lie in (0, 1); got 0"),
        ("d = 4", "d = 1", "validity.d must be an integer in [2, 64]; got 1"),
        ("rho = [0.3, 0.9]", "rho = [0.3, 1.0]", "validity.rho values must lie in (-1, 1)"),
        ("var = [1.0, 0.1]", "var = [1.0, -0.1]", "validity.var values must lie in > 0"),
        ("var = [1.0, 0.1]", "var = 1.0", "validity.var must be [first, last], two numbers"),
        ('["jepa", "mae"]', '["jepa", "byol"]', "validity.objective values must be among"),
        ("d = 4", "d = 4\nk = 4", "validity.k must be an integer in [1, 3]; got 4"),
        ("d = 4", "d = 4\ntau = 2.0", "validity.tau applies to objective 'ema' only"),
        ("d = 4", 'd = 4\ntheories = ["pca", "best"]', "validity.theories values must be among"),
        ("seed = [1, 0]", "seed = {range = 0}", "validity.seed: range must be an integer >= 1"),
        ("seed = [1, 0]", "seed = [0, 0]", "validity.seed: repeated values in [0, 0]"),
        (
            "d = 4",
            "d = 4\nlam = 1.0",
            "unknown key validity.lam; allowed: objective, spectrum, theta",
        ),
        ("d = 4\n", "", "validity.d is required"),
        ("d = 4", "d = 4\nspectrum = {a = {var = [1.0, 0.1]}}", "give either var and rho or"),
        (BOTH, "spectrum = {a = {var = [1.0, 0.1]}}", "validity.spectrum.a.rho is required"),
        (
            BOTH,
            "spectrum = {a = {var = [1.0, 0.1], rho = [0.3, 1.5]}}",
            "validity.spectrum.a.rho values must lie in (-1, 1); got [0.3, 1.5]",
        ),
        (BOTH, "spectrum = 3", "validity.spectrum must be a table of named"),
        ("d = 4", "d = 4\n[sweep]\ndepth = 1", "a [validity] sweep takes only [validity] and"),
    ],
)
def test_bad_values_get_one_line_errors_naming_the_key(old, new, message):
    with pytest.raises(ValueError) as err:
        _config(**{old: new})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_refuses_ema_in_float32_and_estimates_its_work():
    config = _config(**{'["jepa", "mae"]': '["ema"]'})
    with pytest.raises(ValueError, match="validity.objective 'ema' needs float64"):
        config.check_runnable(np.float32)
    config.check_runnable(np.float64)
    rows, per_row = config.work(config.default_chunk())
    assert rows == 1 and per_row == 8 * 4 * (20 * 300 + 33 * 4) * 16  # one flow at a time
    assert config.disk_bytes == 8 * (4 * 8 * 7 + 4 * 7 + 3 * 8 + 4 + 1)


def test_figure_and_cli(swept, tmp_path, capsys):
    from jepa_flow._cli import main

    out, _, r = swept
    fig = jf.plot_sweep(r, at={"objective": "mae"})
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["pca", "gen-dual", "gen-unit", "gen-sxx", "lam", "mae"]  # no cited: MAE
    cube = r["spearman"].reshape(2, 1, 2, 2, 1, 2, len(THEORIES))  # the axes, then theory
    for c, name in enumerate(titles):  # top row: Spearman [depth, theta], median over seeds
        drawn = np.ma.filled(fig.axes[c].images[0].get_array(), np.nan)
        ref = np.median(cube[1, 0, :, :, 0, :, THEORIES.index(name)], axis=-1).T
        np.testing.assert_allclose(drawn, ref, rtol=1e-12, err_msg=name)
    config = tmp_path / "validity.toml"
    config.write_text(BASE)
    assert main(["sweep", str(config), "--out", str(out)]) == 0  # finished: draws only
    printed = capsys.readouterr().out
    assert printed.startswith(
        "sweep: [validity], 16 full-matrix flows (objective 2 x spectrum 1 x theta 2"
    )
    assert "(6 already done); computed 0" in printed and "validity.png" in printed
    assert (out / "validity.png").stat().st_size > 10_000
    config.write_text(BASE.replace("d = 4", "d = 65"))
    assert main(["sweep", str(config), "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "validity.d must be an integer in [2, 64]" in err
    assert not (tmp_path / "new").exists()
