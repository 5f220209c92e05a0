"""``jepa-flow train`` / ``jepa-flow compare`` end to end on tiny cases."""

import json

import numpy as np

import jepa_flow as jf
from jepa_flow import _cli

TINY = [
    "--lam",
    "1",
    "0.6",
    "--var",
    "1.25",
    "1",
    "--depth",
    "1",
    "2",
    "--eps",
    "0.1",
    "--eta",
    "0.05",
    "--n-t",
    "40",
    "--no-progress",
]


def test_compare_end_to_end(tmp_path):
    out = tmp_path / "cmp"
    assert _cli.main(["compare", *TINY, "--rotation", "random", "--out", str(out)]) == 0
    rep = json.loads((out / "summary.json").read_text())
    for key in ("t_star_theory", "t_star_training", "rel_error", "order_theory", "captures"):
        assert key in rep
    assert rep["config"]["eps"] == 0.1 and rep["config"]["depth"] == [1, 2]
    t_th = jf.critical_time(
        "jepa", np.array([1.0, 0.6]), np.array([1.25, 1.0]), np.array([[1], [2]]), 0.1
    )
    np.testing.assert_allclose(np.asarray(rep["t_star_theory"])[0, :, 0], t_th, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(rep["t_star_training"])[0, :, 0], t_th, rtol=1e-2)
    assert np.asarray(rep["rel_error"]).max() < 1e-2
    assert rep["order_theory"] == rep["order_training"]
    assert rep["captures"] == []
    c = jf.load_result(out / "compare")  # the typed result, saved beside the summary
    np.testing.assert_array_equal(c.t_star_training, np.asarray(rep["t_star_training"]))
    assert (out / "compare.png").stat().st_size > 1000
    # refuses to overwrite without --force
    assert _cli.main(["compare", *TINY, "--out", str(out)]) == 2


def test_train_then_frozen_teacher(tmp_path, capsys):
    a = tmp_path / "a"
    assert _cli.main(["train", *TINY, "--t-max", "200", "--out", str(a)]) == 0
    r = jf.load_result(a / "train")
    assert r.norm.shape[:3] == (1, 2, 1) and r.config.depth == (1, 2)
    np.testing.assert_allclose(np.diag(r.wbar[0, 0, 0]), [0.8, 0.6], rtol=1e-8)
    assert np.isfinite(r.t_star).all()
    b = tmp_path / "b"
    assert (
        _cli.main(
            [
                "train",
                *TINY,
                "--target",
                "frozen",
                "--teacher",
                str(a / "train.json"),
                "--t-max",
                "200",
                "--out",
                str(b),
            ]
        )
        == 0
    )
    student = jf.load_result(b / "train")  # depth-1 student of a depth-1 teacher c = rho
    np.testing.assert_allclose(np.diag(student.wbar[0, 0, 0]), [0.8, 0.6], rtol=1e-6)
    capsys.readouterr()
    assert _cli.main(["train", *TINY, "--depth", "0", "--out", str(tmp_path / "c")]) == 2
    assert "--depth must be an integer [1, 64]" in capsys.readouterr().err
    assert (
        _cli.main(["train", *TINY, "--eta", "50", "--steps", "100", "--out", str(tmp_path / "d")])
        == 2
    )
    assert "smaller learning rate" in capsys.readouterr().err


def test_cli_errors_name_the_flag(tmp_path, capsys):
    bad = [
        (["--var", "0", "1"], "--var must be > 0"),
        (["--optimizer", "momentum", "--momentum", "1"], "--momentum must lie in [0, 1)"),
        (["--momentum", "0.5"], "--momentum is not used by this run: it applies to --optim"),
        (["--tau", "5"], "--tau is not used by this run: it applies to --target ema"),
        (["--rotation-seed", "3"], "--rotation-seed is not used by this run: --rotation is"),
        (["--n-features", "1"], "--n-features is not used by this run: it applies to real"),
        (["--s", "1", "2"], "--s is not used by this run: --data gaussian does not use it"),
        (["--sampler", "samples"], "--sampler is not used by this run: it chooses the mini"),
        (["--eta", "1e300", "--t-max", "10"], "--eta must be at most t_max = 10 (one step"),
        (["--t-max", "1e-300"], "--eta must be at most t_max = 1e-300"),
        (["--max-disk", "1"], "about 1.0 MiB of disk space, more than the budget of 1 B"),
        (["--lam", "1", "--var", "1", "2"], "--lam and --var need one value per feature"),
        (["--fraction", "1.5"], "--fraction must lie in the open interval (0, 1)"),
        (["--rotation", "random", "--rotation-seed", "-1"], "--rotation-seed must be"),
        (["--steps", "1000000000000"], "more than --max-model-steps"),
        (["--t-max", "1e15"], "more than --max-model-steps"),
    ]
    for extra, msg in bad:
        out = tmp_path / "x"
        steps = [] if any(x in extra for x in ("--steps", "--t-max")) else ["--steps", "5"]
        assert _cli.main(["train", *TINY, *extra, *steps, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, err
        assert not out.exists()


def test_real_data_by_name_and_from_npz(tmp_path, capsys):
    """--data digits and --data FILE.npz: the rows themselves, principal components kept."""
    common = ["--depth", "1", "--eta", "0.05", "--steps", "300", "--n-t", "10", "--no-progress"]
    out = tmp_path / "digits"
    real = ["--data", "digits", "--n-samples", "600", "--n-features", "3", "--data-seed", "1"]
    assert _cli.main(["train", *real, *common, "--objective", "mae", "--out", str(out)]) == 0
    r = jf.load_result(out / "train")
    assert r.data.model == "samples" and r.data.d == 3
    # the same data in Python: the run used exactly these rows' moments
    ref = jf.load_dataset("digits", n=600, seed=1, n_features=3)
    np.testing.assert_allclose(r.data.Sxx, ref.Sxx, rtol=1e-12)
    x = np.random.default_rng(0).normal(size=(300, 2)) * [2.0, 1.0]
    np.savez(tmp_path / "views.npz", x=x, y=x + 0.3 * np.random.default_rng(1).normal(size=x.shape))
    out = tmp_path / "npz"
    npz = ["--data", str(tmp_path / "views.npz")]
    assert _cli.main(["compare", *npz, *common, "--objective", "mae", "--out", str(out)]) == 0
    c = jf.load_result(out / "compare")
    np.testing.assert_allclose(c.lam, jf.analyze(jf.from_npz(tmp_path / "views.npz")).lam)
    out = tmp_path / "mlp"
    mlp = ["train", *real, *common, "--encoder", "tanh", "--objective", "mae", "--out", str(out)]
    assert _cli.main(mlp) == 0
    nl = jf.load_result(out / "train")
    assert nl.activation == "tanh" and nl.time.shape == (1, 3)
    capsys.readouterr()
    bad = [
        (["--encoder", "relu"], "--encoder tanh/relu trains on rows"),
        (["--data", "digits", "--patch-size", "4"], "--patch-size does not apply to --data digits"),
        (["--data", "images"], "--data must be one of"),
        (["--data", "patches", "--n-features", "0"], "--n-features"),
    ]
    for extra, msg in bad:
        assert _cli.main(["train", *extra, *common, "--out", str(tmp_path / "x")]) == 2
        assert msg in capsys.readouterr().err
