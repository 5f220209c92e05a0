"""The public figures: ``plot_trajectory`` and ``plot_sweep`` draw the results' own numbers."""

import matplotlib

matplotlib.use("Agg")  # the tests draw off-screen (the library never switches backends)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import jepa_flow as jf  # noqa: E402

LAM, VAR, EPS = np.array([1.0, 0.8]), np.array([2.0, 1.0]), 1e-3
T = np.array([0.0, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5])


def _is_open(fig) -> bool:
    return fig.number in plt.get_fignums()


@pytest.fixture(scope="module")
def study():
    """JEPA and MAE at depths 1 and 3: trajectories ``[T, 2, 2]`` and critical times."""
    depth = np.array([[1], [3]])
    trajs = [jf.simulate(o, LAM, VAR, depth, EPS, T) for o in ("jepa", "mae")]
    stars = [np.asarray(jf.critical_time(o, LAM, VAR, depth, EPS)) for o in ("jepa", "mae")]
    return trajs, stars


def _lines(ax):
    """The feature curves of a panel (solid lines, not the dots or the half level)."""
    return [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 2]


def test_plot_trajectory_draws_wbar_over_its_fixed_point(study):
    trajs, stars = study
    fig = jf.plot_trajectory(trajs, t_star=stars, depth=[1, 3], lam=LAM, var=VAR)
    try:
        assert _is_open(fig)
        axes = [ax for ax in fig.axes if ax.get_visible()]
        assert len(axes) == 4  # 2 objectives x 2 depths
        wbar, wbar_star = np.asarray(trajs[1].wbar), np.asarray(trajs[1].wbar_star)
        mae_depth3 = axes[3]
        assert mae_depth3.get_title().startswith("MAE, depth L = 3")
        for j, line in enumerate(_lines(mae_depth3)):
            np.testing.assert_array_equal(line.get_xdata(), T[1:])  # t > 0 on a log axis
            np.testing.assert_allclose(line.get_ydata(), wbar[1:, 1, j] / wbar_star[1, j])
        assert [ln.get_label() for ln in _lines(axes[0])][0].startswith("A: λ=1")
        # the critical times are dots on the half level
        dots = [ln for ln in mae_depth3.get_lines() if ln.get_marker() == "o"]
        np.testing.assert_allclose([d.get_xdata()[0] for d in dots], stars[1][1])
        assert all(d.get_ydata()[0] == 0.5 for d in dots)
        first = "A" if stars[1][1, 0] < stars[1][1, 1] else "B"
        assert mae_depth3.get_title().endswith(f"first learned: {first}")
    finally:
        plt.close(fig)


def test_plot_trajectory_into_an_ax_returns_its_figure():
    traj = jf.simulate("jepa", LAM, VAR, 2, EPS, T)
    fig, ax = plt.subplots()
    try:
        assert jf.plot_trajectory(traj, ax=ax) is fig
        assert _is_open(fig)
        lines = _lines(ax)
        assert len(lines) == 2 and ax.get_title() == "JEPA"  # no t_star: no order claimed
        np.testing.assert_allclose(
            lines[0].get_ydata(), np.asarray(traj.wbar)[1:, 0] / np.asarray(traj.wbar_star)[0]
        )
        with pytest.raises(ValueError, match="ax: draws one panel"):
            jf.plot_trajectory(jf.simulate("jepa", LAM, VAR, [[1], [2]], EPS, T), ax=ax)
    finally:
        plt.close(fig)


def test_plot_trajectory_saves_to_path(tmp_path):
    traj = jf.simulate("mae", LAM, VAR, 1, EPS, T)
    fig = jf.plot_trajectory(traj, path=tmp_path / "d.png")
    plt.close(fig)
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"


PAIR = """
[sweep]
objective = ["jepa", "mae"]
depth = [1, 4]
eps = [1e-3, 1e-6]
[pair]
lam_a = 1.0
var_a = 2.0
lam_ratio = {logspace = [-0.4, 0.4, 5]}
rho_ratio = {logspace = [-0.1, 0.4, 4]}
"""


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    out = tmp_path_factory.mktemp("pair") / "sweep"
    jf.run_sweep(jf.parse_sweep_config(PAIR), out, progress=False)
    return jf.load_sweep(out)


def _phase_colours(result, **at) -> np.ndarray:
    """``log10(t*_B / t*_A)`` on ``[lam_ratio, rho_ratio]`` at the given axis values."""
    names = result.config.grid.names
    assert names.index("lam_ratio") < names.index("rho_ratio")  # lam_ratio varies slower
    rows = result.sel(**at)
    return np.log10(rows["t_star_b"] / rows["t_star_a"]).reshape(5, 4)


def test_plot_sweep_phase_diagram_colours_are_the_sweeps_times(pair):
    fig = jf.plot_sweep(pair)
    try:
        assert _is_open(fig)
        panels = [ax for ax in fig.axes if ax.collections]
        assert len(panels) == 4 + 1  # objective x depth, and the colour bar
        mae_deep = panels[3]
        assert mae_deep.get_title() == "MAE (exact), depth L = 4"
        colours = np.ma.getdata(mae_deep.collections[0].get_array()).reshape(5, 4)
        expected = _phase_colours(pair, objective="mae", depth=4, eps=1e-3)  # eps: its first
        np.testing.assert_allclose(colours, expected, rtol=1e-12)
        assert "shown at eps = 0.001" in " ".join(fig.get_suptitle().split())
    finally:
        plt.close(fig)


def test_plot_sweep_at_holds_another_value_and_draws_into_an_ax(pair):
    fig, ax = plt.subplots()
    try:
        at = {"objective": "jepa", "depth": 4, "eps": 1e-6}
        assert jf.plot_sweep(pair, at=at, ax=ax) is fig
        assert _is_open(fig)
        colours = np.ma.getdata(ax.collections[0].get_array()).reshape(5, 4)
        expected = _phase_colours(pair, **at)
        np.testing.assert_allclose(colours, expected, rtol=1e-12)
        assert not np.allclose(expected, _phase_colours(pair, objective="jepa", depth=4, eps=1e-3))
        assert "shown at eps = 1e-06" in " ".join(fig.get_suptitle().split())
        with pytest.raises(ValueError, match="ax: this figure has 2 x 2 panels"):
            jf.plot_sweep(pair, ax=ax)
        with pytest.raises(ValueError, match="at: no axis 'tau'"):
            jf.plot_sweep(pair, at={"tau": 1.0})
        with pytest.raises(ValueError, match="eps = 0.5 is not on the grid"):
            jf.plot_sweep(pair, at={"eps": 0.5})
    finally:
        plt.close("all")


def test_plot_sweep_saves_what_the_command_line_writes(pair, tmp_path):
    from jepa_flow._plotting._sweep_figure import write_sweep_figure

    plt.close(jf.plot_sweep(pair, path=tmp_path / "phase.png"))
    assert write_sweep_figure(pair.path) == ["phase.png"]
    assert (tmp_path / "phase.png").read_bytes() == (pair.path / "phase.png").read_bytes()


TRAIN = """
[train]
objective = "mae"
data = "gaussian"
lam = [1.0, 0.8]
var = [2.0, 1.0]
depth = 1
eta = [0.01, 1.2]
batch = "population"
seed = {range = 2}
steps = 2000
eps = 0.05
n_t = 24
"""


def test_plot_sweep_of_a_training_sweep_draws_its_departure(tmp_path):
    result = jf.run_sweep(jf.parse_sweep_config(TRAIN), tmp_path / "t", progress=False)
    grid = jf.departure(result)
    assert grid.departed[0, 0, :, 0].tolist() == [False, True]
    fig = plt.figure()
    try:
        assert jf.plot_sweep(result, fig=fig) is fig
        error, order = (ax for ax in fig.axes if ax.images)
        median, shown = grid.median_error[0, :, :, 0], error.images[0].get_array()
        finite = np.isfinite(median)  # inf (not followed) is masked: drawn grey
        assert finite.any() and (median[finite] > 0).all()
        np.testing.assert_array_equal(np.ma.getmaskarray(shown), ~finite)
        np.testing.assert_allclose(np.ma.getdata(shown)[finite], median[finite])
        np.testing.assert_array_equal(order.images[0].get_array(), grid.order_fraction[0, :, :, 0])
        with pytest.raises(ValueError, match="at, ax: a .train. sweep"):
            jf.plot_sweep(result, at={"eta": 0.01})
    finally:
        plt.close(fig)


def test_plot_sweep_refuses_a_general_sweep(tmp_path):
    config = jf.parse_sweep_config(
        '[sweep]\nobjective = "jepa"\nflow = "general"\ninit_ratio = [1.0, 30.0]\n'
        "depth = 1\nlam = 1.0\nrho = 0.5\neps = 1e-3\n"
    )
    result = jf.SweepResult(tmp_path, config, config.size, 1, 0, 0, 0, 0.0)
    with pytest.raises(ValueError, match="general sweep has no default figure"):
        jf.plot_sweep(result)
