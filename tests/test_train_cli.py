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
    "--records",
    "40",
    "--no-progress",
]


def test_compare_end_to_end(tmp_path):
    out = tmp_path / "cmp"
    assert _cli.main(["compare", *TINY, "--rotation", "random", "--out", str(out)]) == 0
    rep = json.loads((out / "compare.json").read_text())
    for key in (
        "t_star_theory",
        "t_star_training",
        "rel_error",
        "order_theory",
        "order_training",
        "capture",
    ):
        assert key in rep
    t_th = jf.critical_time(
        "jepa", np.array([1.0, 0.6]), np.array([1.25, 1.0]), np.array([[1], [2]]), 0.1
    )
    np.testing.assert_allclose(np.asarray(rep["t_star_theory"])[0, :, 0], t_th, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(rep["t_star_training"])[0, :, 0], t_th, rtol=1e-2)
    assert np.asarray(rep["rel_error"]).max() < 1e-2
    assert rep["order_theory"] == rep["order_training"]
    assert rep["capture"] == []
    assert (out / "compare.png").stat().st_size > 1000
    # refuses to overwrite without --force
    assert _cli.main(["compare", *TINY, "--out", str(out)]) == 2


def test_train_then_frozen_teacher(tmp_path, capsys):
    a = tmp_path / "a"
    assert _cli.main(["train", *TINY, "--t-max", "200", "--out", str(a)]) == 0
    with np.load(a / "train.npz") as z:
        wbar = z["wbar"]
        assert z["norm"].shape[:3] == (1, 2, 1)
    np.testing.assert_allclose(np.diag(wbar[0, 0, 0]), [0.8, 0.6], rtol=1e-8)
    meta = json.loads((a / "train.json").read_text())
    assert meta["depth"] == [1, 2] and np.isfinite(meta["t_star_training"]).all()
    b = tmp_path / "b"
    assert (
        _cli.main(
            [
                "train",
                *TINY,
                "--target",
                "frozen",
                "--teacher",
                str(a / "train.npz"),
                "--t-max",
                "200",
                "--out",
                str(b),
            ]
        )
        == 0
    )
    with np.load(b / "train.npz") as z:  # depth-1 student of a depth-1 teacher c = rho
        np.testing.assert_allclose(
            np.diag(z["wbar"][0, 0, 0]), np.array([0.8, 0.6]) ** 1.0, rtol=1e-6
        )
    capsys.readouterr()
    assert _cli.main(["train", *TINY, "--depth", "0", "--out", str(tmp_path / "c")]) == 2
    assert "--depth must be integers in [1, 64]" in capsys.readouterr().err
    assert (
        _cli.main(["train", *TINY, "--eta", "50", "--steps", "100", "--out", str(tmp_path / "d")])
        == 2
    )
    assert "smaller learning rate" in capsys.readouterr().err
