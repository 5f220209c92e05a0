"""The command line end to end on tiny cases."""

import json

import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow._cli import build_parser, main


def test_simulate_writes_trajectory_summary_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "simulate",
        "--objective",
        "jepa",
        "--depth",
        "1",
        "4",
        "--lam",
        "1",
        "0.8",
        "--var",
        "2",
        "1",
        "--eps",
        "1e-3",
        "--n-t",
        "50",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "critical_times.png",
        "dynamics.png",
        "inputs.json",
        "summary.json",
        "trajectory.npz",
    ]
    data = np.load(out / "trajectory.npz")
    assert data["t"].shape == (50,) and data["wbar"].shape == (50, 1, 2, 2)
    assert np.all(np.diff(data["t"]) > 0) and data["t"][0] == 0
    ref = np.asarray(jf.critical_time("jepa", [1.0, 0.8], [2.0, 1.0], np.array([[1], [4]]), 1e-3))
    np.testing.assert_allclose(data["t_star"][0], ref, rtol=1e-14)
    summary = json.loads((out / "summary.json").read_text())
    jepa = summary["objectives"]["jepa"]
    assert jepa["learning_order"] == {"1": ["A", "B"], "4": ["B", "A"]}
    assert jepa["flip_depth"] == 4
    assert jepa["t_star"]["B"][1] == pytest.approx(43056.4, rel=1e-5)  # theory §4 table
    assert jepa["wbar_star"]["A"] == pytest.approx([0.5, 0.0625])
    assert (out / "dynamics.png").read_bytes()[:4] == b"\x89PNG"
    assert "order flips at depth: 4" in capsys.readouterr().out

    # the same command again: the study is complete, nothing is rewritten
    mtime = (out / "summary.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert "already holds this study, complete" in capsys.readouterr().out
    assert (out / "summary.json").stat().st_mtime_ns == mtime
    # another study is not written over it without --force
    assert main([*argv[:-5], "1e-4", *argv[-4:]]) == 2  # another eps
    err = capsys.readouterr().err.strip()
    assert err.startswith("jepa-flow: error:") and "--force" in err and "\n" not in err
    assert (out / "summary.json").stat().st_mtime_ns == mtime
    assert main(argv + ["--force", "--rho", "0.5"]) == 2  # --var and --rho exclude each other
    capsys.readouterr()
    assert main([a if a != "--var" else "--rho" for a in argv] + ["--force"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [f["var"] for f in summary["features"]] == [0.5, 0.8]  # var = lam / rho


def test_critical_time_json_and_table(capsys):
    argv = [
        "critical-time",
        "--depth",
        "1",
        "8",
        "--lam",
        "1",
        "0.8",
        "--rho",
        "0.5",
        "0.8",
        "--eps",
        "1e-3",
    ]
    assert main(argv + ["--json", "--method", "ode"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["objectives"]["mae"]["flip_depth"] is None
    assert result["objectives"]["jepa"]["learning_order"]["8"] == ["B", "A"]
    np.testing.assert_allclose(
        result["objectives"]["mae"]["t_star"]["A"], [6.0119, 60.419], rtol=2e-5
    )
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "t*_A" in table and "B < A" in table


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--var", "0"], "var must be > 0"),
        (["--var", "1", "--eps", "-1"], "eps must be > 0"),
        (["--var", "1", "--eps", "nan"], "eps must be finite"),
        (["--var", "1", "--depth", "0"], "depth must be an integer in [1, 1024]"),
        (["--var", "1", "--fraction", "1.5"], "fraction must lie in the open interval (0, 1)"),
        (["--var", "1", "2", "3"], "give the same number"),
        (["--var", "1", "--objective", "byol"], "invalid choice"),
        (["--var", "1", "--method", "rk4"], "invalid choice"),
        (["--var", "1", "--depth", "1.5"], "invalid int value"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    code = main(["critical-time", "--lam", "1", "0.5"] + argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err


def test_bad_flag_exits_2(capsys):
    assert main(["simulate", "--lam", "1", "--var", "1"]) == 2  # --out missing
    assert capsys.readouterr().err.startswith("jepa-flow: error:")


def test_every_flag_is_explained():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices
    for name in ("demo", "simulate", "critical-time"):
        for action in sub[name]._actions:
            if action.dest != "help":
                assert action.help, (name, action.dest)
    helps = {a.dest: a.help for a in sub["simulate"]._actions}
    assert "gradient-flow time" in helps["t_max"] and "default" in helps["t_max"]
    assert "default" in helps["eps"]
