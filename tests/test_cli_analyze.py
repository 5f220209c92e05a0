"""``jepa-flow analyze`` end to end: exit codes, one-line errors, and the JSON's numbers
against the library (theory §9, §11). Small data: 2000 digit pairs, a d = 4 FILE.npz."""

import json

import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow import _cli

DIGITS = ["analyze", "--data", "digits", "--n-samples", "2000"]


@pytest.fixture(scope="module")
def views_npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 4)) * [2.0, 1.5, 1.0, 0.5]
    y = x @ np.array([[0.8, 0.2, 0, 0], [0.2, 0.5, 0.1, 0], [0, 0.1, 0.4, 0], [0, 0, 0, -0.3]])
    y = y + 0.5 * rng.standard_normal(y.shape)
    path = tmp_path_factory.mktemp("npz") / "views.npz"
    np.savez(path, x=x, y=y)
    return path


def _json(out):
    return json.loads((out / "analysis.json").read_text())


def _floats(values):
    return np.array([np.inf if v == "inf" else np.nan if v is None else v for v in values], float)


def test_digits_generalized_json_matches_the_library(tmp_path, capsys):
    out = tmp_path / "a"
    argv = [*DIGITS, "--basis", "generalized", "--depth", "1", "3", "--eps", "0.01"]
    assert _cli.main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "basis generalized (dual)" in printed and "jepa L=3" in printed
    assert "... 44 more features" in printed  # 20 rows of 64
    rep = _json(out)
    fa = jf.analyze(jf.load_dataset("digits", n=2000), basis="generalized")
    assert rep["basis"] == "generalized" and rep["normalize"] == "dual" and rep["d"] == 64
    assert rep["nonorthogonality"] == pytest.approx(fa.nonorthogonality, rel=1e-12)
    np.testing.assert_allclose(rep["rho"], fa.rho, rtol=1e-12)
    np.testing.assert_allclose(rep["var"], fa.var, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(rep["dual"]), fa.dual, rtol=1e-12, atol=1e-15)
    for objective in ("jepa", "mae"):
        for L in (1, 3):
            t = jf.critical_time(objective, fa.lam, fa.var, L, 0.01)
            np.testing.assert_allclose(_floats(rep["t_star"][objective][str(L)]), t, rtol=1e-12)
            # rank: 0 for the earliest learned feature, -1 for those not learned
            rank = np.asarray(rep["rank"][objective][str(L)])
            learned = np.isfinite(t) & (t > 0)
            assert (rank[~learned] == -1).all()
            np.testing.assert_array_equal(np.argsort(rank[learned]), np.argsort(t[learned]))
    assert (out / "analysis.png").stat().st_size > 10_000
    # the same job again is accepted without --force (and recomputed)
    assert _cli.main([*argv, "--out", str(out)]) == 0
    # another job into the non-empty directory is refused
    assert _cli.main([*DIGITS, "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_npz_unit_normalization_and_components(views_npz, tmp_path, capsys):
    out = tmp_path / "b"
    argv = ["analyze", "--data", str(views_npz), "--basis", "generalized", "--normalize", "unit"]
    assert _cli.main([*argv, "--rows", "0", "--out", str(out)]) == 0
    rep = _json(out)
    fa = jf.analyze(jf.from_npz(views_npz), basis="generalized", normalize="unit")
    np.testing.assert_allclose(np.linalg.norm(np.asarray(rep["vectors"]), axis=0), 1.0)
    np.testing.assert_allclose(rep["lam"], fa.lam, rtol=1e-12)
    assert rep["normalize"] == "unit" and rep["n"] == 3000
    assert "more features" not in capsys.readouterr().out  # --rows 0: all four
    # two principal components, the mae basis (orthonormal)
    assert (
        _cli.main(["analyze", "--data", str(views_npz), "--n-features", "2", "--basis", "mae"]) == 0
    )
    printed = capsys.readouterr().out
    assert "d = 2" in printed and "basis mae, nonorthogonality 0," in printed


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "cifar"], "--data must be one of"),
        (
            ["--data", "digits", "--objective", "mae", "--normalize", "dual"],
            "--normalize applies to --basis generalized",
        ),
        (["--data", "digits", "--depth", "0"], "--depth must be integers in [1, 1024]"),
        (["--data", "digits", "--eps", "-1"], "--eps must be a finite number > 0"),
        (["--data", "digits", "--rows", "-2"], "--rows must be an integer >= 0"),
        (["--data", "digits", "--basis", "pcs"], "argument --basis: invalid choice"),
        (["--data", "digits", "--n-features", "65"], "--n-features must be None or an integer"),
        (["--data", "digits", "--window", "8"], "--window does not apply to --data digits"),
        (["--data", "missing.npz"], "missing.npz"),
    ],
)
def test_bad_input_one_line_error(argv, message, capsys, tmp_path):
    out = tmp_path / "never"
    assert _cli.main(["analyze", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jepa-flow: error:") and "\n" not in err and message in err, err
    assert not out.exists()


def test_every_flag_is_explained():
    sub = _cli.build_parser()._subparsers._group_actions[0].choices["analyze"]
    for action in sub._actions:
        assert action.dest == "help" or action.help, action.dest
